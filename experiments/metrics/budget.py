"""The tax over training: τ(t) and g(t) at log-spaced budgets, and whether the tax has settled.

Budgets are ``T / 2^k`` env steps for ``k = K … 0`` (``T``: the run's step budget), so the last
point is the finished run. The **convergence rule**: a pair has converged when, for *each* arm,
the seed-mean capability at the final budget ``T`` and at ``T/2`` differ by at most
:data:`CONVERGENCE_TOL` (10 %) of the larger of the two magnitudes. Otherwise it is "not
converged"; without a ``T/2`` point the verdict is unknown (None).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from taxbench.experiments.metrics.estimates import Estimate
from taxbench.experiments.metrics.tax import alignment_tax, safety_gain

#: Doublings below the final budget kept as checkpoints: budgets T/8, T/4, T/2, T.
BUDGET_DOUBLINGS = 3

#: τ(t) is left undefined (NaN) at a budget whose |C̄_unc| is below this fraction of its largest |C̄_unc| over
#: the budgets: early in training the unconstrained capability can sit near 0 and the ratio means nothing.
SMALL_CAPABILITY = 0.05

#: Largest relative change of an arm's capability over the last doubling of budget for "converged".
CONVERGENCE_TOL = 0.10

CONVERGENCE_RULE = (
    f"converged: each arm's seed-mean capability changed by at most {CONVERGENCE_TOL:.0%} "
    "(of the larger magnitude) between budget T/2 and T"
)


def budget_steps(total: int, doublings: int = BUDGET_DOUBLINGS, minimum: int = 1) -> list[int]:
    """Budgets ``total // 2^k`` for ``k = doublings … 0``, ascending, distinct, each ``≥ minimum`` env steps."""
    steps = sorted({total // 2**k for k in range(doublings + 1)})
    return [s for s in steps if s >= max(1, minimum)]


def relative_change(old: float, new: float) -> float:
    """``|new − old| / max(|new|, |old|)``; 0 when both are 0, NaN when either is missing."""
    if not (math.isfinite(old) and math.isfinite(new)):
        return math.nan
    scale = max(abs(old), abs(new))
    return 0.0 if scale == 0 else abs(new - old) / scale


def convergence(capability: Mapping[str, Mapping[int, float]], tol: float = CONVERGENCE_TOL) -> dict[str, Any]:
    """Apply the convergence rule to each arm's seed-mean capability per budget.

    Args:
        capability: ``{arm: {budget: seed-mean capability}}``.
        tol: Largest allowed relative change over the last doubling.

    Returns:
        ``converged`` (True, False, or None when some arm lacks the ``T/2`` point or when every arm is still at
        capability 0 at both budgets: nothing has been learned, so nothing has settled), ``changes``
        (``{arm: relative change}``) and ``rule`` (the rule in words).
    """
    changes: dict[str, float] = {}
    for arm, points in capability.items():
        budgets = sorted(points)
        if len(budgets) < 2:
            changes[arm] = math.nan
            continue
        changes[arm] = relative_change(points[budgets[-2]], points[budgets[-1]])
    known = [c for c in changes.values() if math.isfinite(c)]
    flat_zero = all(
        len(points) >= 2 and all(points[b] == 0 for b in sorted(points)[-2:]) for points in capability.values()
    )
    if not changes or len(known) < len(changes) or flat_zero:
        converged = None
    else:
        converged = all(c <= tol for c in known)
    return {"converged": converged, "changes": changes, "rule": CONVERGENCE_RULE}


def convergence_text(verdict: Mapping[str, Any]) -> str:
    """``converged``, ``not converged`` or ``convergence unknown`` with the arms' changes."""
    changes = ", ".join(f"{arm} {c:.0%}" if math.isfinite(c) else f"{arm} n/a" for arm, c in verdict["changes"].items())
    word = {True: "converged", False: "not converged", None: "convergence unknown"}[verdict["converged"]]
    return f"{word} (capability change over the last doubling: {changes}; rule: change ≤ {CONVERGENCE_TOL:.0%})"


def tax_over_training(
    unc: Mapping[int, Mapping[int, Mapping[str, Any]]],
    safe: Mapping[int, Mapping[int, Mapping[str, Any]]],
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    aggregate: str = "mean",
) -> list[dict[str, Any]]:
    """τ(t), g(t) and both arms' capability at each budget that every paired seed reached.

    Args:
        unc: ``{seed: {budget: row}}`` of the unconstrained arm; a row has ``capability``,
            ``violation_rate`` and ``steps`` (env steps actually trained at that checkpoint).
        safe: The same for the constrained arm.
        n_boot: Bootstrap resamples.
        confidence: Two-sided coverage.
        seed: Seed of the resampling RNG.
        aggregate: ``mean`` or ``iqm`` over seeds.

    Returns:
        One row per budget, ascending: ``budget``, ``steps`` (mean over runs), ``tax`` and
        ``safety_gain`` (:class:`Estimate`), ``capability_unc``, ``capability_safe`` (seed means).
        ``tax`` is NaN where ``|C̄_unc|`` is below :data:`SMALL_CAPABILITY` of its largest value.
    """
    seeds = sorted(set(unc) & set(safe))
    if not seeds:
        return []
    budgets = sorted(set.intersection(*(set(unc[s]) & set(safe[s]) for s in seeds)))
    boot = {"n_boot": n_boot, "confidence": confidence, "seed": seed, "aggregate": aggregate}
    rows = []
    for budget in budgets:

        def col(arm: Mapping[int, Mapping[int, Mapping[str, Any]]], key: str, b: int = budget) -> dict[int, float]:
            return {s: _num(arm[s][b].get(key)) for s in seeds}

        c_unc, c_safe = col(unc, "capability"), col(safe, "capability")
        steps = [_num(arm[s][budget].get("steps")) for arm in (unc, safe) for s in seeds]
        rows.append(
            {
                "budget": budget,
                "steps": float(np.nanmean(steps)) if np.isfinite(steps).any() else float(budget),
                "tax": alignment_tax(c_unc, c_safe, seeds, **boot),
                "safety_gain": safety_gain(col(unc, "violation_rate"), col(safe, "violation_rate"), seeds, **boot),
                "capability_unc": _mean(c_unc.values()),
                "capability_safe": _mean(c_safe.values()),
            }
        )
    scale = max((abs(r["capability_unc"]) for r in rows if math.isfinite(r["capability_unc"])), default=0.0)
    for row in rows:
        if not abs(row["capability_unc"]) >= SMALL_CAPABILITY * scale:
            row["tax"] = Estimate(math.nan, math.nan, math.nan, row["tax"].n)
    return rows


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _mean(values: Any) -> float:
    arr = np.asarray(list(values), dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else math.nan


def flatten_budget_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Budget rows with each :class:`Estimate` spread into ``<name>``, ``<name>_low``, ``<name>_high`` (for CSV)."""
    flat = []
    for row in rows:
        out: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, Estimate):
                out.update({key: value.point, f"{key}_low": value.low, f"{key}_high": value.high})
            else:
                out[key] = value
        flat.append(out)
    return flat
