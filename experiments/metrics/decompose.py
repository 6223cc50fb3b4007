"""The tax split in two: what the constraint itself forbids, and what the learner failed to reach.

For per-seed capabilities ``C`` of an unconstrained and a constrained arm (bars: aggregate over
seeds) and ``C*_feasible``, the best capability of any policy shown *feasible* (mean episode cost
CI ≤ ``d``, :mod:`.feasibility`) in the same evaluation protocol, env and cost limit:

* ``τ = (C̄_unc − C̄_safe) / |C̄_unc|`` (the alignment tax, as in :mod:`.tax`);
* ``τ_constraint = max(0, (C̄_unc − C*_feasible) / |C̄_unc|)`` (``= 1 − C*/C̄_unc`` for positive
  capabilities): the capability a feasible policy must give up at the least, as far as has been
  shown. It is clipped at 0: a feasible policy at least as capable as the unconstrained mean shows
  that the constraint itself costs nothing;
* ``τ_learner = τ − τ_constraint``: the rest, the constrained learner's shortfall from the best
  feasible policy (negative when the constrained arm beats every feasible policy, i.e. when it is
  itself infeasible).

``C*_feasible`` is the maximum over candidate runs (every arm and seed of the pair or sweep cell,
shielded runs included) and fixed references (e.g. a purpose-built policy). The bootstrap draws
seeds once and applies the draw to both arms *and* to the candidates of those seeds, so
``τ = τ_constraint + τ_learner`` holds in every resample; resamples that contain no feasible
candidate are left out of the τ_constraint and τ_learner percentiles (the CI is conditional on a
feasible policy being drawn). When no feasible policy exists the two parts are NaN, with a reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from taxbench.experiments.metrics.estimates import ZERO_ATOL, Estimate, aggregate_over_seeds, percentile_interval

NO_FEASIBLE = "no feasible policy in this protocol: τ_constraint and τ_learner cannot be separated"


def best_feasible(candidates: Sequence[Mapping[str, Any]]) -> dict[int, tuple[float, str]]:
    """Per seed, the most capable feasible candidate: ``{seed: (capability, source)}``.

    Args:
        candidates: Rows with ``seed``, ``capability``, ``feasible`` (a verdict string) and
            ``source`` (a label such as ``"ppo-lag-d25 seed 1"``).
    """
    best: dict[int, tuple[float, str]] = {}
    for row in candidates:
        if row.get("feasible") != "feasible":
            continue
        cap = float(row.get("capability", math.nan))
        if not math.isfinite(cap):
            continue
        seed = int(row["seed"])
        if seed not in best or cap > best[seed][0]:
            best[seed] = (cap, str(row.get("source", f"seed {seed}")))
    return best


def _parts(u: np.ndarray, s: np.ndarray, best: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    denom = np.abs(u)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = (u - s) / denom
        tau_c = np.maximum(0.0, (u - best) / denom)
    zero = denom <= ZERO_ATOL
    tau = np.where(zero, np.nan, tau)
    tau_c = np.where(zero | ~np.isfinite(best), np.nan, tau_c)
    return tau, tau_c, tau - tau_c


def decompose_tax(
    c_unc: Mapping[int, float],
    c_safe: Mapping[int, float],
    c_feasible: Mapping[int, float],
    references: Sequence[float] = (),
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    aggregate: str = "mean",
) -> dict[str, Any]:
    """τ, τ_constraint and τ_learner with paired bootstrap CIs over seeds.

    Args:
        c_unc: Capability per seed of the unconstrained arm.
        c_safe: Capability per seed of the constrained arm.
        c_feasible: Per seed, the best capability of a feasible candidate run of that seed (seeds
            without one are left out or NaN); candidates of unpaired seeds are not used.
        references: Capabilities of fixed feasible references (not resampled).
        n_boot: Bootstrap resamples.
        confidence: Two-sided coverage.
        seed: Seed of the resampling RNG (the same draws as :func:`.tax.alignment_tax`).
        aggregate: ``mean`` or ``iqm`` of each arm over seeds.

    Returns:
        ``tax``, ``tau_constraint``, ``tau_learner`` (:class:`Estimate`), ``c_feasible`` (the point
        ``C*_feasible``, NaN when none) and ``note`` (:data:`NO_FEASIBLE` or ``""``).
    """
    seeds = sorted(s for s in set(c_unc) & set(c_safe) if math.isfinite(c_unc[s]) and math.isfinite(c_safe[s]))
    n = len(seeds)
    nan = Estimate(math.nan, math.nan, math.nan, n)
    refs = [float(r) for r in references if math.isfinite(float(r))]
    ref = max(refs) if refs else -math.inf
    if n == 0:
        return {"tax": nan, "tau_constraint": nan, "tau_learner": nan, "c_feasible": math.nan, "note": NO_FEASIBLE}
    values = np.array(
        [[c_unc[s], c_safe[s], c_feasible.get(s, math.nan)] for s in seeds],
        dtype=float,
    )
    feas = np.where(np.isfinite(values[:, 2]), values[:, 2], -np.inf)
    agg = aggregate_over_seeds(values[:, :2], aggregate, axis=0)
    best = max(float(feas.max()), ref)
    points = _parts(np.array([agg[0]]), np.array([agg[1]]), np.array([best]))
    out: dict[str, Any] = {"c_feasible": best if math.isfinite(best) else math.nan}
    out["note"] = "" if math.isfinite(best) else NO_FEASIBLE
    names = ("tax", "tau_constraint", "tau_learner")
    if n < 2:
        for name, p in zip(names, points, strict=True):
            out[name] = Estimate(float(p[0]), math.nan, math.nan, n)
        return out
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    means = aggregate_over_seeds(values[idx, :2], aggregate, axis=1)
    boot_best = np.maximum(feas[idx].max(axis=1), ref)
    boots = _parts(means[:, 0], means[:, 1], boot_best)
    for name, p, b in zip(names, points, boots, strict=True):
        point = float(p[0])
        low, high = percentile_interval(b, confidence) if math.isfinite(point) else (math.nan, math.nan)
        out[name] = Estimate(point, low, high, n) if math.isfinite(point) else nan
    return out
