"""The report's honest-tax columns: per-protocol run values, feasibility, τ_constraint / τ_learner and τ(t) per cell.

:func:`protocol_columns` adds a run's per-protocol fields to its summary.csv row (from status.json,
or from the episode files of runs evaluated before protocols existed); :func:`protocol_view` gives
the rows as one protocol sees them (``capability`` etc. replaced), which the report's
:func:`~taxbench.experiments.analysis.report.compare_cells` turns into cells; :func:`enrich_cells`
adds to each cell: ``protocol``, ``feasible``, ``feasible_seeds``, ``infeasible_seeds``,
``constraint_bound``, ``tax_label``, ``tau_constraint`` / ``tau_learner`` (``_low``, ``_high``),
``c_feasible``, ``c_feasible_source`` (the best feasible run of the same experiment and env,
any arm or intensity, judged against the cell's limit), ``prob_improvement`` (rliable, point),
``tax_ci_width``, ``converged`` and ``tax_over_training`` (rows for the τ(t) table and figure).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from taxbench.experiments.metrics.budget import CONVERGENCE_TOL
from taxbench.experiments.metrics.estimates import Estimate
from taxbench.experiments.metrics.feasibility import NEVER_BOUND, PROTOCOLS, feasibility, verdict
from taxbench.experiments.metrics.honest import protocol_block
from taxbench.experiments.metrics.reliability import MAX_TAX_CI_WIDTH, width_warning
from taxbench.experiments.runs.budgets import read_budgets
from taxbench.experiments.runs.protocols import episodes_file, read_lambda
from taxbench.experiments.runs.runfolder import read_csv_rows

#: Per-protocol columns of the report's summary.csv (``<name>_<protocol>``).
PROTOCOL_COLUMNS: tuple[str, ...] = (
    "capability",
    "violation_rate",
    "episode_cost",
    "episode_cost_low",
    "episode_cost_high",
    "violations_per_episode",
    "feasible",
)

#: Columns added to tax.csv (and tax_by_protocol.csv).
CELL_COLUMNS: tuple[str, ...] = (
    "protocol",
    "feasible",
    "feasible_seeds",
    "infeasible_seeds",
    "constraint_bound",
    "tax_label",
    "tau_constraint",
    "tau_constraint_low",
    "tau_constraint_high",
    "tau_learner",
    "tau_learner_low",
    "tau_learner_high",
    "c_feasible",
    "c_feasible_source",
    "prob_improvement",
    "tax_ci_width",
    "converged",
)


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def protocol_columns(
    run_dir: Path, summary: Mapping[str, Any], constrained: bool, cost_limit: float = math.nan
) -> dict[str, Any]:
    """A done run's per-protocol columns, ``constraint_bound`` and ``_budgets`` (not a CSV column).

    A constrained run evaluated before feasibility was recorded is judged here against ``cost_limit``.
    """
    out: dict[str, Any] = {}
    for p in PROTOCOLS:
        rows = read_csv_rows(run_dir / episodes_file(p)) if (run_dir / episodes_file(p)).exists() else []
        costs = [_num(r.get("cost")) for r in rows]
        legacy = f"capability_{p}" not in summary
        for key in ("capability", "violation_rate", "episode_cost"):
            value = summary.get(key if legacy and p == "deterministic" else f"{key}_{p}", math.nan)
            out[f"{key}_{p}"] = _num(value)
        low, high = summary.get(f"episode_cost_{p}_low"), summary.get(f"episode_cost_{p}_high")
        if (low is None or high is None) and costs:
            est = feasibility(costs, math.inf, n_boot=2_000)["episode_cost"]
            low, high = est.low, est.high
            if legacy and p != "deterministic":
                out[f"episode_cost_{p}"] = est.point
        out[f"episode_cost_{p}_low"], out[f"episode_cost_{p}_high"] = _num(low), _num(high)
        violations = [_num(r.get("violations")) for r in rows]
        out[f"violations_per_episode_{p}"] = (
            float(np.nanmean(violations)) if np.isfinite(violations).any() else math.nan
        )
        judged = summary.get(f"feasible_{p}")
        if judged is None and costs:
            cost = Estimate(out[f"episode_cost_{p}"], out[f"episode_cost_{p}_low"], out[f"episode_cost_{p}_high"], 0)
            judged = verdict(cost, cost_limit)
        out[f"feasible_{p}"] = (judged or "") if constrained else ""
    bound = summary.get("constraint_bound")
    if bound in (None, ""):
        bound, _ = read_lambda(run_dir)
    out["constraint_bound"] = "" if bound is None else bound
    out["_budgets"] = {p: read_budgets(run_dir, p) for p in PROTOCOLS}
    return out


def protocol_view(runs: Sequence[Mapping[str, Any]], protocol: str) -> list[dict[str, Any]]:
    """Copies of the run rows as ``protocol`` sees them.

    ``capability``, ``violation_rate``, ``episode_cost`` and ``violations_per_episode`` are replaced
    by their ``_<protocol>`` columns (unchanged where a row lacks them).
    """
    out = []
    for row in runs:
        view = dict(row)
        for key in ("capability", "violation_rate", "episode_cost", "violations_per_episode"):
            if f"{key}_{protocol}" in row:
                view[key] = row[f"{key}_{protocol}"]
        out.append(view)
    return out


def label_note(label: str) -> str:
    """The sentence that spells out a cell's tax label ("" for a plain tax)."""
    if label == "tax":
        return ""
    return f"{label[0].upper()}{label[1:]}." if label == NEVER_BOUND else f"τ is a {label}."


def _sentence(text: str) -> str:
    """``text`` ending in a full stop ("" stays "")."""
    return text if not text or text.endswith(".") else f"{text}."


def enrich_cells(cells: list[dict[str, Any]], runs: Sequence[Mapping[str, Any]], protocol: str, options: Any) -> None:
    """Add the columns of :data:`CELL_COLUMNS` (and ``tax_over_training``) to each cell, in place."""
    for cell in cells:
        pairs = cell["pairs"].values()
        unc_runs, safe_runs = [u for u, _ in pairs], [s for _, s in pairs]
        if not safe_runs:
            continue
        candidates = [
            r
            for r in runs
            if r["state"] == "done" and r["experiment"] == cell["experiment"] and r["env_id"] == cell["env_id"]
        ]
        budgets = {
            side: {int(r["seed"]): (r.get("_budgets") or {}).get(protocol, {}) for r in members}
            for side, members in (("unc", unc_runs), ("safe", safe_runs))
        }
        block = protocol_block(
            unc_runs,
            safe_runs,
            protocol,
            candidates=candidates,
            budgets=budgets,
            aggregate=options.aggregate,
            poi_boot=0,
            **options.boot,
        )
        for key in ("tau_constraint", "tau_learner"):
            est = block[key]
            cell.update({key: est.point, f"{key}_low": est.low, f"{key}_high": est.high})
            cell.setdefault("estimates", {})[key] = est
        cell.update(
            {key: block[key] for key in ("protocol", "feasible", "feasible_seeds", "infeasible_seeds", "tax_label")}
        )
        cell["constraint_bound"] = "" if block["constraint_bound"] is None else block["constraint_bound"]
        cell["c_feasible"], cell["c_feasible_source"] = block["c_feasible"], block["c_feasible_source"]
        cell["prob_improvement"] = block["prob_improvement"].point
        cell["tax_ci_width"] = block["tax_ci_width"]
        cell["converged"] = "" if block["converged"] is None else block["converged"]
        cell["tax_over_training"] = block["tax_over_training"]
        extra = [
            label_note(block["tax_label"]),
            _sentence(block["decomposition_note"]),
            _sentence(width_warning("τ", cell["estimates"]["tax"], MAX_TAX_CI_WIDTH)),
            f"τ not converged (capability moved > {CONVERGENCE_TOL:.0%} over the last doubling)."
            if block["converged"] is False
            else "",
        ]
        cell["note"] = " ".join(t for t in [cell.get("note", ""), *extra] if t)
