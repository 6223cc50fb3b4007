"""Estimates with confidence intervals: interquartile mean, seed aggregates and percentile bootstraps.

Pure statistics over arrays of per-seed numbers; :mod:`taxbench.experiments.metrics.tax` builds the
alignment tax and safety gain on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

#: |C̄_unc| (or V̄_unc) at or below this is treated as zero: the relative measure is NaN.
ZERO_ATOL = 1e-12


def iqm(x: Sequence[float] | np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """Interquartile mean: the mean of the middle 50 % (``scipy.stats.trim_mean(x, 0.25)``).

    With fewer than 4 values nothing is trimmed (it equals the mean). NaN for empty input.
    """
    arr = np.asarray(x, dtype=float)
    if arr.size == 0:
        return math.nan
    result = stats.trim_mean(arr, 0.25, axis=axis)
    return float(result) if np.ndim(result) == 0 else result


#: Aggregates over seeds accepted by the estimators: the mean, or the interquartile mean (rliable's choice).
AGGREGATES: tuple[str, ...] = ("mean", "iqm")


def aggregate_over_seeds(x: np.ndarray, aggregate: str = "mean", axis: int = 0) -> np.ndarray:
    """``mean`` or ``iqm`` of ``x`` along ``axis`` (seeds), vectorised over the other axes.

    Raises:
        ValueError: for an aggregate not in :data:`AGGREGATES`.
    """
    if aggregate == "mean":
        return np.mean(x, axis=axis)
    if aggregate == "iqm":
        return np.asarray(stats.trim_mean(x, 0.25, axis=axis))
    raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Central ``confidence`` interval of the finite ``values`` (``(nan, nan)`` when none are finite)."""
    alpha = (1.0 - confidence) / 2.0
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def bootstrap_ci(
    samples: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic(samples)``.

    Args:
        samples: 1-D values, or a 2-D array whose rows are resampled jointly (rows = seeds,
            columns = paired quantities); ``statistic`` receives an array of the same rank.
        statistic: Function of a resample returning a scalar.
        n_boot: Number of bootstrap resamples.
        confidence: Two-sided coverage, e.g. 0.95.
        seed: Seed of the resampling RNG (results are deterministic in it).

    Returns:
        ``(low, high)``; ``(nan, nan)`` with fewer than two samples. Non-finite statistics of
        individual resamples are ignored.

    Raises:
        ValueError: for ``n_boot < 1`` or ``confidence`` outside (0, 1).
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    arr = np.asarray(samples, dtype=float)
    n = arr.shape[0] if arr.ndim else 0
    if n < 2:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.array([statistic(arr[i]) for i in idx], dtype=float)
    return percentile_interval(values, confidence)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a bootstrap confidence interval over ``n`` seeds."""

    point: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies strictly on one side of 0 (False if it is NaN)."""
        return bool((self.low > 0 and self.high > 0) or (self.low < 0 and self.high < 0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with ``point``, ``low``, ``high``, ``n``, ``excludes_zero``."""
        return {
            "point": self.point,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "excludes_zero": self.excludes_zero,
        }

    def format(self, digits: int = 3) -> str:
        """``point [low, high]`` with ``digits`` significant digits; ``n/a`` for NaN."""

        def f(v: float) -> str:
            return "n/a" if not math.isfinite(v) else f"{v:.{digits}g}"

        return f"{f(self.point)} [{f(self.low)}, {f(self.high)}]"

    def __str__(self) -> str:
        return self.format()
