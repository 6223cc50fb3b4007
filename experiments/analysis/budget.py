"""τ(t) and g(t) in the report: the ``tax_over_training.csv`` rows, the table and the figure.

Each cell (env × constrained arm × intensity, headline protocol) carries ``tax_over_training`` rows
from :func:`taxbench.experiments.metrics.budget.tax_over_training` (budgets ``T/8 … T`` env steps);
the figure draws τ and g against env steps (log scale) with their CI bands, an open marker where
the cell's constrained arm is infeasible, and the cell's convergence verdict in the legend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from taxbench.experiments.metrics.budget import flatten_budget_rows

if TYPE_CHECKING:
    from taxbench.experiments.analysis.report_data import ReportData

BUDGET_COLUMNS: tuple[str, ...] = (
    "experiment",
    "env",
    "arm",
    "intensity",
    "protocol",
    "budget",
    "steps",
    "capability_unc",
    "capability_safe",
    "tax",
    "tax_low",
    "tax_high",
    "safety_gain",
    "safety_gain_low",
    "safety_gain_high",
    "feasible",
    "converged",
)

FIGURE = (
    "tax_over_training.png",
    "Tax over training: τ(t) and g(t) at log-spaced budgets (open marker: infeasible arm)",
)


def budget_table_rows(data: ReportData) -> list[dict[str, Any]]:
    """One row per cell × budget in every protocol (the rows of tax_over_training.csv)."""
    rows = []
    for cells in data.cells_by_protocol.values():
        for cell in cells:
            keep = {k: cell.get(k, "") for k in ("experiment", "env", "arm", "intensity", "protocol", "feasible")}
            keep["converged"] = cell.get("converged", "")
            rows += [{**keep, **row} for row in flatten_budget_rows(cell.get("tax_over_training") or [])]
    return rows


def _fmt(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "n/a" if not math.isfinite(number) else f"{number:.3g}"


def _ci(row: Mapping[str, Any], key: str) -> str:
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    ends = f" [{_fmt(low)}, {_fmt(high)}]" if _fmt(low) != "n/a" else ""
    return _fmt(row.get(key)) + ends


def budget_table(data: ReportData) -> tuple[list[str], list[list[str]]]:
    """τ(t) table of the headline protocol: env, arm, intensity, budget, capabilities, τ, g, converged."""
    header = ["env", "arm", "intensity", "budget (steps)", "C_unc", "C_safe", "τ(t) [95% CI]", "g(t) [95% CI]"]
    header += ["feasible (final)", "converged"]
    rows = []
    for row in budget_table_rows(data):
        if row["protocol"] != data.options.protocol:
            continue
        converged = {True: "yes", False: "NOT CONVERGED", "": "unknown"}.get(row["converged"], str(row["converged"]))
        rows.append(
            [
                row["env"],
                row["arm"],
                row["intensity"],
                f"{int(row['budget']):,}",
                _fmt(row["capability_unc"]),
                _fmt(row["capability_safe"]),
                _ci(row, "tax"),
                _ci(row, "safety_gain"),
                str(row["feasible"]),
                converged,
            ]
        )
    return header, rows


def tax_over_training_figure(data: ReportData, path: Path) -> Path | None:
    """τ(t) (left) and g(t) (right) per env, one line per arm × intensity with CI bands; None without budgets."""
    cells = [c for c in data.cells if c.get("tax_over_training")]
    if not cells:
        return None
    envs = sorted({c["env"] for c in cells})
    fig, axes = plt.subplots(len(envs), 2, figsize=(10, 3.2 * len(envs)), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for env, row_axes in zip(envs, axes, strict=True):
        mine = [c for c in cells if c["env"] == env]
        for i, cell in enumerate(mine):
            rows = flatten_budget_rows(cell["tax_over_training"])
            xs = [float(r["steps"]) for r in rows]
            verdict = {True: "converged", False: "not converged"}.get(cell.get("converged"), "convergence unknown")
            infeasible = cell.get("feasible") == "infeasible"
            label = f"{cell['arm']}-{cell['intensity']} ({verdict}{', INFEASIBLE' if infeasible else ''})"
            for ax, key in zip(row_axes, ("tax", "safety_gain"), strict=True):
                ys = [float(r[key]) for r in rows]
                lo = [
                    float(r[f"{key}_low"]) if math.isfinite(float(r[f"{key}_low"])) else y
                    for r, y in zip(rows, ys, strict=True)
                ]
                hi = [
                    float(r[f"{key}_high"]) if math.isfinite(float(r[f"{key}_high"])) else y
                    for r, y in zip(rows, ys, strict=True)
                ]
                color = cmap(i % 10)
                ax.plot(xs, ys, marker="o", color=color, label=label, markerfacecolor="none" if infeasible else color)
                ax.fill_between(xs, lo, hi, color=color, alpha=0.2, linewidth=0)
        for ax, name in zip(row_axes, ("alignment tax τ(t)", "safety gain g(t)"), strict=True):
            if not any(np.isfinite(line.get_ydata()).any() for line in ax.get_lines()):
                # nothing measurable at any budget (e.g. C_unc ≈ 0): say so instead of drawing empty axes
                ax.text(0.5, 0.5, f"{name}: undefined at every budget", ha="center", va="center", fontsize=9,
                        transform=ax.transAxes)  # fmt: skip
                ax.set_axis_off()
                continue
            ax.set_xscale("log", base=2)
            ax.axhline(0, color="grey", linewidth=0.8)
            ax.set_xlabel("env steps trained")
            ax.set_ylabel(name)
            ax.set_title(f"{env} ({data.options.protocol} protocol)", fontsize=10)
            ax.grid(alpha=0.3)
        row_axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
