"""Is a printed estimate strong enough for its claim? CI widths, and rliable's probability of improvement.

rliable (Agarwal et al. 2021) supplies the probability of improvement ``P(X > Y)`` (a Mann-Whitney
statistic over runs) and its stratified bootstrap CI. The paired ratio statistics (τ, g, ΔC,
τ_constraint) stay on this package's numpy bootstrap: rliable resamples each algorithm's runs
independently, which would break the seed pairing those ratios rely on.

rliable is imported lazily (it pulls in arch, statsmodels and seaborn, about 1.5 s).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from taxbench.experiments.metrics.estimates import Estimate

#: A CI of τ (a fraction of capability) wider than this cannot support the printed tax.
MAX_TAX_CI_WIDTH = 0.3


def ci_width(est: Estimate) -> float:
    """``high − low`` (NaN when either end is missing)."""
    if not (math.isfinite(est.low) and math.isfinite(est.high)):
        return math.nan
    return est.high - est.low


def width_warning(name: str, est: Estimate, max_width: float = MAX_TAX_CI_WIDTH) -> str:
    """A one-line warning when ``est``'s CI is wider than ``max_width`` or missing (``""`` otherwise)."""
    if not math.isfinite(est.point):
        return ""
    width = ci_width(est)
    if not math.isfinite(width):
        return f"{name} has no confidence interval ({est.n} paired seed(s)): it supports no claim"
    if width > max_width:
        return (
            f"{name} CI is {width:.2f} wide (> {max_width:g}) with {est.n} paired seeds: too wide to support the "
            f"printed value; add seeds"
        )
    return ""


def probability_of_improvement(
    x: Sequence[float], y: Sequence[float], *, n_boot: int = 1_000, confidence: float = 0.95, seed: int = 0
) -> Estimate:
    """Rliable's ``P(X > Y)`` over runs (ties count one half) with its stratified bootstrap CI.

    Args:
        x: Scores of the runs of X (e.g. the unconstrained arm's capability per seed).
        y: Scores of the runs of Y.
        n_boot: Bootstrap replications (0: the point only; rliable's bootstrap runs a Mann-Whitney
            test per replication, about 1 s per 1,000).
        confidence: Two-sided coverage.
        seed: Seed of the bootstrap's RandomState.

    Returns:
        The estimate (``n`` = runs of X); NaN when either side is empty, no CI with < 2 runs a side.
    """
    xs = np.asarray([v for v in x if math.isfinite(float(v))], dtype=float)
    ys = np.asarray([v for v in y if math.isfinite(float(v))], dtype=float)
    if xs.size == 0 or ys.size == 0:
        return Estimate(math.nan, math.nan, math.nan, int(xs.size))
    from rliable import library, metrics

    point = float(metrics.probability_of_improvement(xs[:, None], ys[:, None]))
    if min(xs.size, ys.size) < 2 or n_boot < 1:
        return Estimate(point, math.nan, math.nan, int(xs.size))
    with warnings.catch_warnings():  # arch deprecates the RandomState that rliable passes it
        warnings.simplefilter("ignore", FutureWarning)
        _, intervals = library.get_interval_estimates(
            {"pair": (xs[:, None], ys[:, None])},
            metrics.probability_of_improvement,
            reps=n_boot,
            confidence_interval_size=confidence,
            random_state=np.random.RandomState(seed),
        )
    low, high = (float(v) for v in np.asarray(intervals["pair"]).reshape(-1)[:2])
    return Estimate(point, low, high, int(xs.size))


def rliable_iqm(values: Sequence[float]) -> float:
    """Rliable's interquartile mean of ``values`` (NaN dropped; NaN when empty)."""
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return math.nan
    from rliable import metrics

    return float(metrics.aggregate_iqm(arr))


def warnings_for(summary: dict[str, Any], max_width: float = MAX_TAX_CI_WIDTH) -> list[str]:
    """Width warnings for the tax estimates of a pair or cell summary (keys ``tax``, ``tau_constraint``)."""
    out = []
    for key, name in (("tax", "τ"), ("tau_constraint", "τ_constraint"), ("tau_learner", "τ_learner")):
        est = summary.get(key)
        if isinstance(est, Estimate):
            text = width_warning(name, est, max_width)
            if text:
                out.append(text)
    return out
