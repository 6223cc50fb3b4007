"""The tables ``taxbench pair`` prints: both arms in both protocols, the tax and its two parts, τ(t), warnings.

The headline protocol (``--protocol``) is named in every title. A tax against an infeasible arm, or
a pair whose constraint never bound, is printed with its label, never as a plain "tax".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from taxbench.experiments.cli.options import console
from taxbench.experiments.metrics.estimates import Estimate
from taxbench.experiments.metrics.feasibility import FEASIBLE, INFEASIBLE, PROTOCOLS


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, Estimate):
        return value.format(digits)
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.{digits}g}"
    return "n/a" if value is None else str(value)


def _width(est: Estimate) -> str:
    width = est.high - est.low
    return f"{width:.2f}" if math.isfinite(width) else "n/a"


def feasibility_cell(block: Mapping[str, Any]) -> str:
    """``feasible (2/2 seeds)``, ``INFEASIBLE (1/2 seeds)`` or ``undetermined (…)`` for the constrained arm."""
    n = block["n_pairs"]
    if block["feasible"] == FEASIBLE:
        return f"feasible ({block['feasible_seeds']}/{n} seeds)"
    if block["feasible"] == INFEASIBLE:
        return f"INFEASIBLE ({block['infeasible_seeds']}/{n} seeds over d)"
    return f"undetermined ({block['undetermined_seeds']}/{n} seeds straddle d)"


#: Short forms of the tax labels for the table cells (the warnings below the table say it in full).
SHORT_LABELS = {
    "tax": "tax",
    "constraint never bound: this pair measures no tax": "NO TAX MEASURED: constraint never bound",
    "tax against an infeasible arm": "vs INFEASIBLE arm",
    "tax against an arm of undetermined feasibility": "vs arm of undetermined feasibility",
}


def tax_row_label(block: Mapping[str, Any]) -> str:
    """The τ row's label: the plain name only for a feasible arm whose constraint bound."""
    if block["tax_label"] == "tax":
        return "tax τ = (C_unc − C_safe)/|C_unc|"
    return f"τ, {SHORT_LABELS.get(block['tax_label'], block['tax_label'])} (not a plain tax)"


def _arm_table(base: Any, results: Sequence[Any], summary: Mapping[str, Any]) -> Table:
    metric = next((r.summary.get("capability_metric") for r in results if r.summary), "capability")
    names = {("unc" if r.job.cfg.intensity == "off" else "safe"): r.job.cfg.arm for r in results}
    headline = summary["protocol"]
    table = Table(
        title=f"{base.env_id}: {summary['n_pairs']} paired seeds, {base.steps:,} steps, "
        f"{names.get('safe', 'ppo-lag')} cost limit d = {summary['cost_limit']:g}/episode; "
        f"headline protocol: {headline} (*)"
    )
    for column in ("arm", "protocol", f"capability ({metric})", "violation rate", "episode cost", "meets d?"):
        left = column in ("arm", "protocol", "meets d?")
        table.add_column(column, justify="left" if left else "right", no_wrap=column in ("arm", "protocol"))
    for side, label in (("unc", "unconstrained"), ("safe", "constrained")):
        for protocol in PROTOCOLS:
            block = summary["protocols"][protocol]
            table.add_row(
                f"{names.get(side, '?')} ({label})",
                protocol + (" *" if protocol == headline else ""),
                *(block[f"{key}_{side}"].format(3) for key in ("capability", "violation_rate", "episode_cost")),
                feasibility_cell(block) if side == "safe" else "",
            )
    return table


def _tax_table(summary: Mapping[str, Any]) -> Table:
    headline = summary["protocol"]
    other = next(p for p in PROTOCOLS if p != headline)
    blocks = summary["protocols"]
    table = Table(title=f"alignment tax, mean [95% paired bootstrap CI] over seeds; headline protocol: {headline}")
    table.add_column("quantity")
    table.add_column(f"{headline} (headline)", justify="right")
    table.add_column("CI width", justify="right")
    table.add_column("CI excludes 0", justify="center")
    table.add_column(other, justify="right")

    def row(label: str, key: str) -> None:
        est, alt = blocks[headline][key], blocks[other][key]
        table.add_row(label, _fmt(est), _width(est), "yes" if est.excludes_zero else "no", _fmt(alt))

    def split(label: str, key: str) -> None:
        """τ_constraint or τ_learner, or "no feasible policy" in a protocol where none was shown feasible."""
        cells = [
            _fmt(blocks[p][key])
            if math.isfinite(blocks[p][key].point) or not blocks[p]["decomposition_note"]
            else "no feasible policy"
            for p in (headline, other)
        ]
        est = blocks[headline][key]
        finite = math.isfinite(est.point)
        table.add_row(
            label,
            cells[0],
            _width(est) if finite else "",
            ("yes" if est.excludes_zero else "no") if finite else "",
            cells[1],
        )

    table.add_row(
        tax_row_label(blocks[headline]),
        _fmt(blocks[headline]["tax"]),
        _width(blocks[headline]["tax"]),
        "yes" if blocks[headline]["tax"].excludes_zero else "no",
        f"{_fmt(blocks[other]['tax'])} ({SHORT_LABELS.get(blocks[other]['tax_label'], '?')})",
    )
    split("τ_constraint = 1 − C*_feasible/C_unc", "tau_constraint")
    split("τ_learner = τ − τ_constraint", "tau_learner")

    def best(p: str) -> str:
        if not math.isfinite(blocks[p]["c_feasible"]):
            return "none feasible"
        return f"{_fmt(blocks[p]['c_feasible'])} ({blocks[p]['c_feasible_source']})"

    table.add_row("C*_feasible (best feasible run)", best(headline), "", "", best(other))
    row("safety gain g = (V_unc − V_safe)/V_unc", "safety_gain")
    row("capability loss ΔC = C_unc − C_safe", "capability_loss")
    row("P(C_unc > C_safe) (rliable)", "prob_improvement")
    table.add_row(
        "price of safety τ/g",
        _fmt(blocks[headline].get("price_of_safety", math.nan)),
        "",
        "",
        _fmt(blocks[other].get("price_of_safety", math.nan)),
    )
    return table


def _budget_table(summary: Mapping[str, Any]) -> Table | None:
    rows = summary.get("tax_over_training") or []
    if not rows:
        return None
    table = Table(title=f"tax over training ({summary['protocol']} protocol): τ(t), g(t) [95% CI]")
    for column in ("budget (steps)", "C_unc", "C_safe", "τ(t)", "g(t)"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            f"{int(row['budget']):,}",
            _fmt(row["capability_unc"]),
            _fmt(row["capability_safe"]),
            _fmt(row["tax"]),
            _fmt(row["safety_gain"]),
        )
    return table


def print_pair_table(base: Any, results: Sequence[Any], summary: Mapping[str, Any]) -> None:
    """Arms in both protocols, the tax with τ_constraint and τ_learner, τ(t), the verdict and the warnings."""
    if not summary["n_pairs"]:
        console.print("no seed finished in both arms: nothing to compare (see the run failures above)", highlight=False)
        return
    console.print(_arm_table(base, results, summary))
    console.print(_tax_table(summary))
    budget = _budget_table(summary)
    if budget is not None:
        console.print(budget)
    console.print(f"verdict: {summary['convergence']}", highlight=False, soft_wrap=True)
    for warning in summary.get("warnings", []):
        console.print(f"[bold red]warning:[/] {warning}", highlight=False, soft_wrap=True)
