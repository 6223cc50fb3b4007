"""Feasibility of a constrained policy: does it meet its own cost limit ``d``, and did its constraint ever bind?

Definitions (DESIGN.md §4, "An honest tax"):

* a run is **feasible** in a protocol when the upper end of the percentile-bootstrap CI (over
  evaluation episodes) of its mean episode cost is ``≤ d``; **infeasible** when the lower end is
  ``> d``; **undetermined** when the CI straddles ``d`` (or has fewer than 2 episodes);
* an arm (a set of seeds) is feasible only when every run is, infeasible when any run is, and
  undetermined otherwise: a tax averaged over seeds that include an infeasible run is a tax
  against an infeasible arm;
* the constraint **never bound** when the Lagrange multiplier λ stayed at 0 for the whole of
  training (progress.csv's ``lambda`` column): the constrained learner was then the
  unconstrained one, and the pair measures no tax.

Costs are per episode (the sum of ``info["cost"]``), in the units of the env's cost terms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from taxbench.experiments.metrics.estimates import Estimate, bootstrap_ci

FEASIBLE = "feasible"
INFEASIBLE = "infeasible"
UNDETERMINED = "undetermined"
VERDICTS: tuple[str, ...] = (FEASIBLE, INFEASIBLE, UNDETERMINED)

#: Evaluation protocols: the deterministic policy (deployment), the stochastic one (training, Safety-Gym, OmniSafe).
PROTOCOLS: tuple[str, ...] = ("deterministic", "stochastic")

#: The protocol the pair table and report headline by default: the policy as deployed.
DEFAULT_PROTOCOL = "deterministic"

#: λ at or below this counts as 0 (the multiplier never left 0).
LAMBDA_ATOL = 1e-12

NEVER_BOUND = "constraint never bound: this pair measures no tax"


def check_protocol(protocol: str) -> str:
    """Return ``protocol`` if it is one of :data:`PROTOCOLS`; raise ValueError otherwise."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return protocol


def feasibility(
    costs: Sequence[float] | np.ndarray,
    limit: float,
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Whether the mean episode cost of one run meets ``limit``, judged on its bootstrap CI over episodes.

    Args:
        costs: Episode costs (sum of ``info["cost"]`` per episode); NaN entries are dropped.
        limit: The cost limit ``d`` (cost per episode).
        n_boot: Bootstrap resamples.
        confidence: Two-sided coverage of the CI.
        seed: Seed of the resampling RNG.

    Returns:
        ``feasible`` (:data:`FEASIBLE`, :data:`INFEASIBLE` or :data:`UNDETERMINED`), ``episode_cost``
        (:class:`Estimate` over episodes), ``cost_limit``, ``margin`` (``d −`` mean cost; > 0 is inside).
    """
    arr = np.asarray(costs, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        est = Estimate(math.nan, math.nan, math.nan, 0)
    else:
        low, high = bootstrap_ci(arr, np.mean, n_boot=n_boot, confidence=confidence, seed=seed)
        est = Estimate(float(arr.mean()), low, high, int(arr.size))
    return {
        "feasible": verdict(est, limit),
        "episode_cost": est,
        "cost_limit": float(limit),
        "margin": float(limit) - est.point if math.isfinite(est.point) else math.nan,
    }


def verdict(cost: Estimate, limit: float) -> str:
    """:data:`FEASIBLE` when ``cost.high ≤ limit``, :data:`INFEASIBLE` when ``cost.low > limit``, else undetermined."""
    if not math.isfinite(limit) or not (math.isfinite(cost.low) and math.isfinite(cost.high)):
        return UNDETERMINED
    if cost.high <= limit:
        return FEASIBLE
    if cost.low > limit:
        return INFEASIBLE
    return UNDETERMINED


def arm_verdict(verdicts: Iterable[str | None]) -> str:
    """One verdict for an arm's runs: feasible if all are, infeasible if any is, else undetermined."""
    found = [v for v in verdicts if v]
    if not found:
        return UNDETERMINED
    if any(v == INFEASIBLE for v in found):
        return INFEASIBLE
    if all(v == FEASIBLE for v in found):
        return FEASIBLE
    return UNDETERMINED


def constraint_bound(lambdas: Iterable[Any]) -> bool | None:
    """True when the multiplier λ left 0 at some update, False when it stayed at 0, None without a λ.

    Args:
        lambdas: The ``lambda`` column of progress.csv (strings, floats or NaN for learners without one).
    """
    values = []
    for value in lambdas:
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            values.append(number)
    if not values:
        return None
    return bool(max(values) > LAMBDA_ATOL)


def disagreement(verdicts: Mapping[str, str]) -> str:
    """A sentence when the protocols' verdicts differ (``""`` when they agree)."""
    if len(set(verdicts.values())) <= 1:
        return ""
    parts = [f"{v} under {p} evaluation" for p, v in verdicts.items()]
    return "protocols disagree on feasibility: " + ", ".join(parts)


def tax_label(feasible: str, bound: bool | None) -> str:
    """How a tax against a constrained arm must be read: ``tax``, or a qualifier that replaces it.

    Returns:
        ``"tax"`` for a feasible arm whose constraint bound (or an arm without a multiplier);
        :data:`NEVER_BOUND`; ``"tax against an infeasible arm"``; or
        ``"tax against an arm of undetermined feasibility"``.
    """
    if bound is False:
        return NEVER_BOUND
    if feasible == INFEASIBLE:
        return "tax against an infeasible arm"
    if feasible == UNDETERMINED:
        return "tax against an arm of undetermined feasibility"
    return "tax"
