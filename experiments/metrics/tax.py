"""Capability, safety and alignment-tax metrics with paired bootstrap confidence intervals.

Definitions (DESIGN.md §4), for per-seed capabilities ``C`` and violation rates ``V``, with
bars denoting the mean over seeds:

* absolute capability loss ``ΔC = C̄_unc − C̄_safe`` (always defined; report it always);
* alignment tax ``τ = (C̄_unc − C̄_safe) / |C̄_unc|``: undefined (NaN) when ``C̄_unc ≈ 0``.
  The absolute value keeps the sign convention "positive = capability lost" when returns are
  negative (e.g. ``C̄_unc = −200``, ``C̄_safe = −300`` gives ``τ = +0.5``);
* safety gain ``g = (V̄_unc − V̄_safe) / V̄_unc``: NaN when the unconstrained policy never
  violates (``V̄_unc ≈ 0``); price of safety ``τ / g``.

Confidence intervals are percentile bootstraps over seeds. The bootstrap is **paired**: one
draw of seed indices is applied to both arms, so the seed-to-seed variation the two arms share
(same env seeds, same initial weights seed) cancels. With fewer than two seeds the interval is
``(nan, nan)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from taxbench.experiments.metrics.estimates import (
    ZERO_ATOL,
    Estimate,
    aggregate_over_seeds,
    bootstrap_ci,
    percentile_interval,
)

# ----------------------------------------------------------------------------- per-run summary


def _floats(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([_to_float(r.get(key)) for r in rows], dtype=float)


def _to_float(value: Any) -> float:
    if value is None or value == "":
        return math.nan
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return float(lowered == "true")
    return float(value)


def run_summary(rows: Sequence[Mapping[str, Any]], success: bool) -> dict[str, Any]:
    """Summarise one run's evaluation episodes (rows of ``episodes.csv``, strings allowed).

    Args:
        rows: Episode rows with ``return``, ``length``, ``success``, ``cost`` and either
            ``violations`` (violating steps) or ``violation_rate``.
        success: Whether the env has success semantics: capability is then the success
            rate, otherwise the mean return.

    Returns:
        ``capability``, ``capability_metric`` (``success`` | ``return``), ``mean_return``,
        ``success_rate``, ``violation_rate`` (violating steps / steps over all episodes),
        ``episode_cost`` (mean cost per episode), ``episodes``, ``eval_steps``; NaN when empty.
    """
    returns = _floats(rows, "return")
    lengths = _floats(rows, "length")
    if rows and "violations" in rows[0]:
        violations = _floats(rows, "violations")
    else:
        violations = _floats(rows, "violation_rate") * lengths
    total_steps = float(np.nansum(lengths))
    nan_mean = _nan_mean
    summary = {
        "mean_return": nan_mean(returns),
        "success_rate": nan_mean(_floats(rows, "success")),
        "violation_rate": float(np.nansum(violations)) / total_steps if total_steps > 0 else math.nan,
        "episode_cost": nan_mean(_floats(rows, "cost")),
        "episodes": len(rows),
        "eval_steps": int(total_steps),
    }
    metric = "success" if success else "return"
    summary["capability_metric"] = metric
    summary["capability"] = summary["success_rate"] if success else summary["mean_return"]
    return summary


def _nan_mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


# ----------------------------------------------------------------------------- paired estimates


def _paired(
    unc: Sequence[float] | Mapping[Any, float],
    safe: Sequence[float] | Mapping[Any, float],
    seed_pairs: Sequence[Any] | None,
) -> np.ndarray:
    """Return an ``(n, 2)`` array of (unconstrained, safe) values, one row per seed pair.

    Pairs with a non-finite value on either side are dropped (``n`` counts the rest).
    """
    if isinstance(unc, Mapping) != isinstance(safe, Mapping):
        raise TypeError("pass both arms as sequences or both as mappings seed → value")
    if seed_pairs is None:
        if isinstance(unc, Mapping):
            assert isinstance(safe, Mapping)
            seed_pairs = sorted(set(unc) & set(safe))
        else:
            if len(unc) != len(safe):
                raise ValueError(f"paired arms need equal lengths, got {len(unc)} and {len(safe)}")
            seed_pairs = list(range(len(unc)))
    pairs = [p if isinstance(p, tuple) else (p, p) for p in seed_pairs]
    values = np.array([[_to_float(unc[a]), _to_float(safe[b])] for a, b in pairs], dtype=float).reshape(-1, 2)
    return values[np.isfinite(values).all(axis=1)]


def _relative_drop(mean_unc: np.ndarray, mean_safe: np.ndarray, use_abs: bool) -> np.ndarray:
    """``(mean_unc − mean_safe) / (|mean_unc| or mean_unc)``; NaN where the denominator ≈ 0."""
    denom = np.abs(mean_unc) if use_abs else mean_unc
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (mean_unc - mean_safe) / denom
    return np.where(np.abs(denom) <= ZERO_ATOL, np.nan, out)


def _difference(mean_unc: np.ndarray, mean_safe: np.ndarray) -> np.ndarray:
    return mean_unc - mean_safe


def _estimate(
    values: np.ndarray,
    of_means: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    n_boot: int,
    confidence: float,
    seed: int,
    aggregate: str = "mean",
) -> Estimate:
    """Point value and paired percentile bootstrap CI of ``of_means(C̄_unc, C̄_safe)``.

    Equivalent to :func:`bootstrap_ci` on the ``(n, 2)`` array (same resampling indices for
    the same ``seed``), vectorised over resamples because the statistic depends on the two
    column aggregates (``mean`` or ``iqm`` over seeds) only.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = values.shape[0]
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    agg = aggregate_over_seeds(values, aggregate, axis=0)
    point = float(of_means(np.array([agg[0]]), np.array([agg[1]]))[0])
    if not math.isfinite(point):
        return Estimate(math.nan, math.nan, math.nan, n)
    if n < 2:
        return Estimate(point, math.nan, math.nan, n)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    means = aggregate_over_seeds(values[idx], aggregate, axis=1)  # (n_boot, 2): seeds shared by both arms
    low, high = percentile_interval(of_means(means[:, 0], means[:, 1]), confidence)
    return Estimate(point, low, high, n)


def alignment_tax(
    c_unc: Sequence[float] | Mapping[Any, float],
    c_safe: Sequence[float] | Mapping[Any, float],
    seed_pairs: Sequence[Any] | None = None,
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    aggregate: str = "mean",
) -> Estimate:
    """Alignment tax ``τ = (C̄_unc − C̄_safe) / |C̄_unc|`` with a paired bootstrap CI over seeds.

    Args:
        c_unc: Capability per seed of the unconstrained arm: a sequence aligned with
            ``c_safe`` or a mapping seed → value.
        c_safe: Capability per seed of the constrained arm.
        seed_pairs: Which values pair up: keys (or indices) present in both arms, or
            ``(unc_key, safe_key)`` tuples. Default: the common seeds (mappings) or
            position (sequences).
        n_boot: Bootstrap resamples.
        confidence: Two-sided coverage.
        seed: Seed of the resampling RNG.
        aggregate: ``mean`` (the default, as in DESIGN.md) or ``iqm`` of each arm over the
            (resampled) seeds.

    Returns:
        The estimate; NaN point and CI when ``|C̄_unc| ≤ ZERO_ATOL`` (use
        :func:`capability_loss` then), CI ``(nan, nan)`` with fewer than 2 pairs. Resamples
        whose ``C̄_unc`` is 0 are left out of the percentiles.
    """
    values = _paired(c_unc, c_safe, seed_pairs)
    return _estimate(
        values,
        lambda u, s: _relative_drop(u, s, use_abs=True),
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        aggregate=aggregate,
    )


def safety_gain(
    v_unc: Sequence[float] | Mapping[Any, float],
    v_safe: Sequence[float] | Mapping[Any, float],
    seed_pairs: Sequence[Any] | None = None,
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    aggregate: str = "mean",
) -> Estimate:
    """Safety gain ``g = (V̄_unc − V̄_safe) / V̄_unc`` (violation rates) with a paired bootstrap CI.

    Arguments as in :func:`alignment_tax`. NaN when ``V̄_unc ≤ ZERO_ATOL`` (nothing to gain).
    """
    values = _paired(v_unc, v_safe, seed_pairs)
    return _estimate(
        values,
        lambda u, s: _relative_drop(u, s, use_abs=False),
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        aggregate=aggregate,
    )


def capability_loss(
    c_unc: Sequence[float] | Mapping[Any, float],
    c_safe: Sequence[float] | Mapping[Any, float],
    seed_pairs: Sequence[Any] | None = None,
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    aggregate: str = "mean",
) -> Estimate:
    """Absolute capability loss ``ΔC = C̄_unc − C̄_safe`` with a paired bootstrap CI.

    Arguments as in :func:`alignment_tax`. Defined whatever the sign or size of ``C̄_unc``.
    """
    values = _paired(c_unc, c_safe, seed_pairs)
    return _estimate(values, _difference, n_boot=n_boot, confidence=confidence, seed=seed, aggregate=aggregate)


def mean_estimate(
    values: Sequence[float], *, n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> Estimate:
    """Mean over seeds with a percentile bootstrap CI (NaN values dropped)."""
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    low, high = bootstrap_ci(arr, np.mean, n_boot=n_boot, confidence=confidence, seed=seed)
    return Estimate(float(arr.mean()), low, high, int(arr.size))


def pair_summary(
    unc_runs: Sequence[Mapping[str, Any]],
    safe_runs: Sequence[Mapping[str, Any]],
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare an unconstrained and a constrained arm over paired seeds.

    Args:
        unc_runs: Per-run summaries of the unconstrained arm, each with ``seed``,
            ``capability``, ``violation_rate`` and ``episode_cost`` (as in status.json's
            ``summary`` plus the seed).
        safe_runs: The same for the constrained arm.
        n_boot: Bootstrap resamples.
        confidence: Two-sided coverage.
        seed: Seed of the resampling RNG.

    Returns:
        A flat dict: ``n_pairs``, ``seeds`` (paired), ``unpaired_seeds``; :class:`Estimate`
        values ``capability_unc``, ``capability_safe``, ``violation_rate_unc``,
        ``violation_rate_safe``, ``episode_cost_unc``, ``episode_cost_safe``,
        ``capability_loss`` (ΔC), ``tax`` (τ), ``safety_gain`` (g); and ``price_of_safety``
        (τ/g point value, NaN when undefined). See :func:`format_pair_summary`.
    """
    unc = {int(r["seed"]): r for r in unc_runs}
    safe = {int(r["seed"]): r for r in safe_runs}
    seeds = sorted(set(unc) & set(safe))
    boot = {"n_boot": n_boot, "confidence": confidence, "seed": seed}

    def column(runs: Mapping[int, Mapping[str, Any]], key: str) -> list[float]:
        return [_to_float(runs[s].get(key)) for s in seeds]

    c_unc, c_safe = column(unc, "capability"), column(safe, "capability")
    v_unc, v_safe = column(unc, "violation_rate"), column(safe, "violation_rate")
    out: dict[str, Any] = {
        "n_pairs": len(seeds),
        "seeds": seeds,
        "unpaired_seeds": sorted(set(unc) ^ set(safe)),
        "capability_unc": mean_estimate(c_unc, **boot),
        "capability_safe": mean_estimate(c_safe, **boot),
        "violation_rate_unc": mean_estimate(v_unc, **boot),
        "violation_rate_safe": mean_estimate(v_safe, **boot),
        "episode_cost_unc": mean_estimate(column(unc, "episode_cost"), **boot),
        "episode_cost_safe": mean_estimate(column(safe, "episode_cost"), **boot),
        "capability_loss": capability_loss(c_unc, c_safe, **boot),
        "tax": alignment_tax(c_unc, c_safe, **boot),
        "safety_gain": safety_gain(v_unc, v_safe, **boot),
    }
    tax, gain = out["tax"].point, out["safety_gain"].point
    out["price_of_safety"] = tax / gain if math.isfinite(tax) and math.isfinite(gain) and gain != 0 else math.nan
    return out


def format_pair_summary(summary: Mapping[str, Any], digits: int = 3) -> list[tuple[str, str]]:
    """Turn :func:`pair_summary` output into ``(name, text)`` rows for a table or a log."""
    rows = []
    for key, value in summary.items():
        if isinstance(value, Estimate):
            text = value.format(digits)
        elif isinstance(value, float):
            text = "n/a" if not math.isfinite(value) else f"{value:.{digits}g}"
        else:
            text = str(value)
        rows.append((key, text))
    return rows
