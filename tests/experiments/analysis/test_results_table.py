"""README's "Results" tables are the shipped ``results/`` files, and those files agree with their own runs.

``results/reference.csv`` holds every cell of the reference sweeps in both protocols, ``results/runs.csv``
the per-run summaries they were computed from (``taxbench report SWEEP --export-reference results``).
"""

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from taxbench.experiments.analysis.reference import load_reference
from taxbench.experiments.analysis.reference_text import reference_markdown
from taxbench.experiments.metrics import alignment_tax
from taxbench.experiments.metrics.estimates import aggregate_over_seeds
from taxbench.experiments.metrics.feasibility import PROTOCOLS
from taxbench.experiments.runs.runfolder import read_csv_rows
from taxbench.experiments.runs.sweep import baseline_arm

ROOT = Path(__file__).parents[3]
RESULTS = ROOT / "results"
MIN_STEPS, MIN_SEEDS = 500_000, 5  # the floor for the CPU path


@pytest.fixture(scope="module")
def reference():
    return load_reference(RESULTS / "reference.csv")


@pytest.fixture(scope="module")
def runs():
    by_cell = defaultdict(dict)
    for row in read_csv_rows(RESULTS / "runs.csv"):
        by_cell[(row["env"], row["arm"], row["intensity"])][int(row["seed"])] = row
    return by_cell


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_readme_results_table_is_rendered_from_reference_csv(reference, protocol):
    table = reference_markdown(reference, protocol)
    assert table.count("\n") >= 2, "no cell of this protocol in results/reference.csv"
    assert table in (ROOT / "README.md").read_text(encoding="utf-8"), f"README's {protocol} table is stale"


def test_every_reference_cell_is_recomputed_from_its_runs(reference, runs):
    """τ's point estimate, the seeds, the budget and the feasible-seed count follow from runs.csv."""
    for cell in reference:
        protocol, env = cell["protocol"], cell["env"]
        base = runs[(env, baseline_arm(cell["arm"]), "off")]
        safe = runs[(env, cell["arm"], cell["intensity"])]
        seeds = [int(s) for s in cell["seeds"].split()]
        assert len(seeds) >= MIN_SEEDS and sorted(base) == sorted(safe) == seeds, cell
        for row in [*base.values(), *safe.values()]:
            assert row["state"] == "done" and int(row["steps"]) >= MIN_STEPS, row["path"]
        assert int(cell["steps"]) == int(safe[seeds[0]]["steps"])
        key = f"capability_{protocol}"
        c_unc = {s: float(base[s][key]) for s in seeds}
        c_safe = {s: float(safe[s][key]) for s in seeds}
        tax = alignment_tax(c_unc, c_safe, seeds, aggregate="iqm", n_boot=10)
        assert tax.point == pytest.approx(float(cell["tax"]), rel=1e-9, abs=1e-12), cell
        feasible = sum(safe[s][f"feasible_{protocol}"] == "feasible" for s in seeds)
        assert feasible == int(cell["feasible_seeds"]), cell


def test_every_tau_constraint_follows_from_the_best_feasible_run(reference, runs):
    """τ_constraint = max(0, 1 − C*/IQM(C_unc)), C* the best run of the env (any arm, intensity or reference run,
    paired seeds) whose episode-cost CI lies under the cell's d in the cell's protocol; its source is named."""
    for cell in reference:
        protocol, env, limit = cell["protocol"], cell["env"], float(cell["cost_limit"])
        seeds = [int(s) for s in cell["seeds"].split()]
        key = f"capability_{protocol}"
        pool = [
            (float(row[key]), f"{row['arm']}-{row['intensity']} seed {seed}")
            for (run_env, _, _), by_seed in runs.items()
            if run_env == env
            for seed, row in by_seed.items()
            if seed in seeds and row["state"] == "done" and float(row[f"episode_cost_{protocol}_high"]) <= limit
        ]
        if not pool:
            assert cell["tau_constraint"] == "" and cell["c_feasible_source"] == "", cell
            continue
        best, source = max(pool)
        base = runs[(env, baseline_arm(cell["arm"]), "off")]
        c_unc = aggregate_over_seeds(np.array([float(base[s][key]) for s in seeds]), "iqm", axis=0)
        assert float(cell["tau_constraint"]) == pytest.approx(max(0.0, (c_unc - best) / abs(c_unc)), abs=1e-12), cell
        assert cell["c_feasible_source"] == source, cell
