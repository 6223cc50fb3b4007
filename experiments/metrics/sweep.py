"""Metrics across many runs: per-cell IQM estimates, stratified bootstrap over tasks, Pareto fronts, break-even price.

These extend :mod:`taxbench.experiments.metrics` (kept there: per-pair τ, g and ΔC) to a sweep of
envs × arms × intensities × seeds.

* **Stratified bootstrap** (Agarwal et al. 2021, the rliable method): an aggregate over several
  tasks is resampled by drawing seeds *within* each task independently, so every resample keeps
  every task; a tax that is paired by seed draws the same seeds for both arms of a task.
* **Pareto front** of capability (higher is better) against violation rate (lower is better):
  a run is on the front when no other run is at least as capable *and* at most as violating,
  and strictly better in one of the two.
* **Break-even violation price**: with a value ``X`` per unit of capability (one success, or one
  unit of return) and a price ``Y`` per violation (a violating step), an arm's net value per
  episode is ``X·C − Y·K`` (``K``: violations per episode). The break-even price is the lowest
  ``Y ≥ 0`` above which the constrained arm's net value exceeds the unconstrained one's at every
  price: ``max(0, X·ΔC/ΔK)`` when the constrained arm violates less (``ΔK = K_unc − K_safe > 0``),
  0 when it violates as often but is more capable, and ``inf`` when it never pays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from taxbench.experiments.metrics.estimates import ZERO_ATOL, Estimate, aggregate_over_seeds


def _check_boot(n_boot: int, confidence: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval that keeps ±inf (order statistics, no interpolation); NaNs are dropped."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    if np.isfinite(values).all():
        low, high = np.percentile(values, [100 * alpha, 100 * (1 - alpha)])
    else:
        low, high = np.percentile(values, [100 * alpha, 100 * (1 - alpha)], method="inverted_cdf")
    return float(low), float(high)


def stratified_estimate(
    tasks: Sequence[np.ndarray | Sequence[Sequence[float]]],
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    aggregate: str = "mean",
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean over tasks of ``statistic(aggregate over seeds)``, with a stratified paired bootstrap CI.

    Args:
        tasks: One ``(n_seeds, k)`` array per task: rows are seeds, columns paired quantities
            (e.g. ``(C_unc, C_safe)``); rows with a non-finite value are dropped. A 1-D sequence
            is read as one column.
        statistic: Maps an ``(m, k)`` array of per-task aggregates (one row per resample) to
            ``m`` values, e.g. the relative drop ``(a[:, 0] − a[:, 1]) / |a[:, 0]|``.
        aggregate: ``mean`` or ``iqm`` over seeds.
        n_boot: Bootstrap resamples.
        confidence: Two-sided coverage.
        seed: Seed of the resampling RNG.

    Returns:
        The estimate: its point is the mean of the per-task statistics; tasks whose point is not
        finite (e.g. a tax with ``C_unc = 0``) are left out of point and interval alike; ``n``
        counts the runs (seed rows) used. The CI is NaN when no task has two seeds.
    """
    _check_boot(n_boot, confidence)
    arrays = []
    for values in tasks:
        arr = np.asarray(values, dtype=float)
        arr = arr.reshape(-1, 1) if arr.ndim == 1 else arr
        arr = arr[np.isfinite(arr).all(axis=1)]
        if arr.shape[0] == 0:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            point = float(statistic(aggregate_over_seeds(arr, aggregate, axis=0)[None, :])[0])
        if math.isfinite(point):
            arrays.append((arr, point))
    if not arrays:
        return Estimate(math.nan, math.nan, math.nan, 0)
    point = float(np.mean([p for _, p in arrays]))
    n = sum(arr.shape[0] for arr, _ in arrays)
    if all(arr.shape[0] < 2 for arr, _ in arrays):
        return Estimate(point, math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    per_task = np.empty((n_boot, len(arrays)))
    for j, (arr, _) in enumerate(arrays):
        idx = rng.integers(0, arr.shape[0], size=(n_boot, arr.shape[0]))
        with np.errstate(divide="ignore", invalid="ignore"):
            per_task[:, j] = statistic(aggregate_over_seeds(arr[idx], aggregate, axis=1))
    with np.errstate(invalid="ignore"):
        resampled = per_task.mean(axis=1)
    low, high = _percentiles(resampled, confidence)
    return Estimate(point, low, high, n)


def relative_drop(aggregates: np.ndarray) -> np.ndarray:
    """``(a_unc − a_safe) / |a_unc|`` per row of ``(m, 2)`` aggregates; NaN where ``|a_unc| ≈ 0`` (the tax τ)."""
    unc, safe = aggregates[:, 0], aggregates[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (unc - safe) / np.abs(unc)
    return np.where(np.abs(unc) <= ZERO_ATOL, np.nan, out)


def level(aggregates: np.ndarray) -> np.ndarray:
    """The first column: an arm's own aggregate (capability or violation rate)."""
    return aggregates[:, 0]


def iqm_estimate(values: Sequence[float], *, n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0) -> Estimate:
    """Interquartile mean over seeds with a percentile bootstrap CI (one task: stratified = plain).

    The same estimator as rliable's ``get_interval_estimates`` (IQM, stratified percentile bootstrap), kept in
    numpy because it is seeded: rliable 1.2 on arch 7.2 gives other CI digits on every call for the same
    ``random_state`` (measured), and a report must rebuild to the same numbers. A test checks the two agree.
    """
    return stratified_estimate(
        [np.asarray(values, dtype=float)], level, aggregate="iqm", n_boot=n_boot, confidence=confidence, seed=seed
    )


def task_mean_tax(
    tasks: Sequence[np.ndarray | Sequence[Sequence[float]]],
    *,
    aggregate: str = "mean",
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean over tasks of the paired relative drop: τ from ``(C_unc, C_safe)`` rows, g from ``(V_unc, V_safe)`` rows.

    With one task this equals :func:`taxbench.experiments.metrics.alignment_tax` (for ``V``:
    the safety gain, since ``V ≥ 0``) up to the resampling RNG.
    """
    return stratified_estimate(
        tasks, relative_drop, aggregate=aggregate, n_boot=n_boot, confidence=confidence, seed=seed
    )


# ----------------------------------------------------------------------------- Pareto front


def pareto_front(capability: Sequence[float], violation_rate: Sequence[float]) -> np.ndarray:
    """Mask of the points on the Pareto front (maximise capability, minimise violation rate).

    A point is dominated when another is at least as capable and at most as violating, and
    strictly better in one; identical points do not dominate each other. Points with a NaN
    are never on the front.

    Returns:
        A boolean array, one entry per point.
    """
    c = np.asarray(capability, dtype=float)
    v = np.asarray(violation_rate, dtype=float)
    if c.shape != v.shape or c.ndim != 1:
        raise ValueError(f"capability and violation_rate must be 1-D of equal length, got {c.shape} and {v.shape}")
    ok = np.isfinite(c) & np.isfinite(v)
    geq = (c[None, :] >= c[:, None]) & (v[None, :] <= v[:, None])  # [i, j]: j at least as good as i
    better = (c[None, :] > c[:, None]) | (v[None, :] < v[:, None])
    dominated = (geq & better & ok[None, :]).any(axis=1)
    return ok & ~dominated


# ----------------------------------------------------------------------------- break-even price


def break_even_price(
    c_unc: float | np.ndarray,
    c_safe: float | np.ndarray,
    k_unc: float | np.ndarray,
    k_safe: float | np.ndarray,
    value_per_success: float = 1.0,
) -> float | np.ndarray:
    """Price per violation above which the constrained arm delivers more net value per episode.

    Args:
        c_unc: Capability of the unconstrained arm (success rate, i.e. successes per episode,
            or mean return).
        c_safe: Capability of the constrained arm.
        k_unc: Violations (violating steps) per episode of the unconstrained arm.
        k_safe: The same for the constrained arm.
        value_per_success: ``X``, the value of one unit of capability (one success or one unit
            of return), in the currency the price is wanted in.

    Returns:
        ``max(0, X·(c_unc − c_safe)/(k_unc − k_safe))`` when ``k_safe < k_unc``; 0 when
        ``k_safe == k_unc`` and ``c_safe > c_unc``; ``inf`` otherwise (the constrained arm never
        pays at high prices); NaN when an input is NaN. Vectorised over arrays.
    """
    if not math.isfinite(value_per_success) or value_per_success < 0:
        raise ValueError(f"value_per_success must be a finite number >= 0, got {value_per_success}")
    dc = np.asarray(c_unc, dtype=float) - np.asarray(c_safe, dtype=float)
    dk = np.asarray(k_unc, dtype=float) - np.asarray(k_safe, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.maximum(0.0, value_per_success * dc / dk)
    out = np.where(dk > 0, ratio, np.where((dk == 0) & (dc < 0), 0.0, np.inf))
    out = np.where(np.isnan(dc) | np.isnan(dk), np.nan, out)
    return float(out) if out.ndim == 0 else out


def break_even_estimate(
    rows: np.ndarray | Sequence[Sequence[float]],
    value_per_success: float = 1.0,
    *,
    aggregate: str = "mean",
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Break-even price from paired seeds with a paired bootstrap CI (bounds may be ``inf``).

    Args:
        rows: ``(n_seeds, 4)``: ``C_unc, C_safe, K_unc, K_safe`` per seed.
        value_per_success: ``X`` (see :func:`break_even_price`).
        aggregate: ``mean`` or ``iqm`` over seeds, applied to each column.
        n_boot: Bootstrap resamples.
        confidence: Two-sided coverage.
        seed: Seed of the resampling RNG.
    """

    def statistic(a: np.ndarray) -> np.ndarray:
        return np.asarray(break_even_price(a[:, 0], a[:, 1], a[:, 2], a[:, 3], value_per_success), dtype=float)

    _check_boot(n_boot, confidence)
    arr = np.asarray(rows, dtype=float).reshape(-1, 4)
    arr = arr[np.isfinite(arr).all(axis=1)]
    n = arr.shape[0]
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    point = float(statistic(aggregate_over_seeds(arr, aggregate, axis=0)[None, :])[0])
    if n < 2:
        return Estimate(point, math.nan, math.nan, n)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    low, high = _percentiles(statistic(aggregate_over_seeds(arr[idx], aggregate, axis=1)), confidence)
    return Estimate(point, low, high, n)
