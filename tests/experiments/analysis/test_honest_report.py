"""The report's honest-tax columns and τ(t), from the committed fixture runs plus hand-written budgets.csv files.

Velocity-v0 (fixture): ppo-off capability 1000 and 800 at 100 and 60 violations per episode; ppo-lag-strict
(d = 5) capability 600 and 600 at 10 and 0. Every episode of a run costs the same, so each run's cost CI is
a point: ppo-lag seed 0 (10 > 5) is infeasible, seed 1 (0) feasible, both ppo-off runs infeasible at d = 5.
"""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from taxbench.experiments.analysis.report import ReportOptions, build_report

FIXTURE = Path(__file__).parents[1] / "fixtures" / "report_runs"
VELOCITY = {("ppo-off", 0): 1000.0, ("ppo-off", 1): 800.0, ("ppo-lag-strict", 0): 600.0, ("ppo-lag-strict", 1): 600.0}


@pytest.fixture
def runs_dir(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "runs")
    root = tmp_path / "runs" / "fixture"
    for (arm, seed), capability in VELOCITY.items():
        with open(root / "Velocity-v0" / arm / f"seed{seed}" / "budgets.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["budget", "steps", "protocol", "capability", "violation_rate"])
            writer.writeheader()
            for budget, fraction in ((1500, 0.5), (3000, 1.0)):  # capability doubles over the last doubling
                writer.writerow(
                    {
                        "budget": budget,
                        "steps": budget,
                        "protocol": "deterministic",
                        "capability": capability * fraction,
                        "violation_rate": 0.05,
                    }
                )
    return root


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_tax_csv_carries_feasibility_and_the_split_by_name(runs_dir):
    build_report(runs_dir, ReportOptions(n_boot=2000), figures=False)
    cells = {(r["env"], r["intensity"]): r for r in _rows(runs_dir / "tax.csv")}
    strict = cells[("Velocity-v0", "strict")]
    assert strict["protocol"] == "deterministic" and strict["feasible"] == "infeasible"
    assert strict["tax_label"] == "tax against an infeasible arm" and "infeasible arm" in strict["note"]
    # C*_feasible = 600 (ppo-lag seed 1, the only run with cost ≤ 5): τ = τ_constraint = (900 − 600)/900
    assert float(strict["c_feasible"]) == 600.0 and strict["c_feasible_source"] == "ppo-lag-strict seed 1"
    assert float(strict["tax"]) == pytest.approx(1 / 3)
    assert float(strict["tau_constraint"]) == pytest.approx(1 / 3) and float(strict["tau_learner"]) == pytest.approx(0)
    # resamples {1,1} → 0.25, {0,1} → 1/3; {0,0} has no feasible candidate and is left out
    assert float(strict["tau_constraint_low"]) == pytest.approx(0.25)
    assert float(strict["tau_constraint_high"]) == pytest.approx(1 / 3)
    assert strict["converged"] == "False" and strict["constraint_bound"] == "True"
    assert cells[("Reach-v0", "mild")]["feasible"] == "feasible" and cells[("Reach-v0", "mild")]["converged"] == ""
    both = _rows(runs_dir / "tax_by_protocol.csv")
    assert sorted({r["protocol"] for r in both}) == ["deterministic", "stochastic"]
    summary = _rows(runs_dir / "summary.csv")
    lag = [r for r in summary if r["env"] == "Velocity-v0" and r["arm"] == "ppo-lag" and r["state"] == "done"]
    assert [r["feasible_deterministic"] for r in lag] == ["infeasible", "feasible"]


def test_report_shows_tax_over_training_with_a_convergence_verdict(runs_dir):
    _, paths = build_report(runs_dir, ReportOptions(n_boot=1000))
    rows = [r for r in _rows(runs_dir / "tax_over_training.csv") if r["protocol"] == "deterministic"]
    assert [(r["env"], int(r["budget"])) for r in rows] == [("Velocity-v0", 1500), ("Velocity-v0", 3000)]
    assert float(rows[0]["tax"]) == pytest.approx(1 / 3)  # (450 − 300) / 450
    assert float(rows[0]["capability_unc"]) == pytest.approx(450.0)
    assert (runs_dir / "figures" / "tax_over_training.png").stat().st_size > 5000
    markdown = (runs_dir / "report.md").read_text()
    assert "## Tax over training" in markdown and "NOT CONVERGED" in markdown
    assert "τ_constraint" in markdown and "INFEASIBLE" in markdown
    assert 'id="fig-tax_over_training"' in (runs_dir / "report.html").read_text()


def test_the_report_protocol_is_an_option(runs_dir):
    build_report(runs_dir, ReportOptions(n_boot=500, protocol="stochastic"), figures=False)
    assert {r["protocol"] for r in _rows(runs_dir / "tax.csv")} == {"stochastic"}
    with pytest.raises(ValueError, match="protocol"):
        ReportOptions(protocol="greedy").validate()


def test_console_table_marks_the_tax_label_and_spells_it_out_below(runs_dir):
    """`taxbench report` at 120 columns: the τ cell holds the number and a mark, the legend names the label."""
    env = {**os.environ, "COLUMNS": "120"}
    result = subprocess.run(
        [sys.executable, "-m", "taxbench.experiments.cli", "report", str(runs_dir)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("│ Velocity-v0"))
    block = [lines[start]] + [line for line in lines[start + 1 : start + 4] if line.startswith("│      ")]
    assert "ppo-lag" in block[0] and any(" * │" in line for line in block)  # the CIs wrap: 3 lines at most
    assert len(block) <= 3 and not any("infeasible arm" in line for line in block)
    assert "* τ is a tax against an infeasible arm" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 120
