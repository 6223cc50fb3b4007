"""The honest pair summary: the tax per protocol, with feasibility, its two parts, τ(t) and a convergence verdict.

Inputs are run summaries (status.json's ``summary`` plus ``seed``, ``arm``, ``intensity``,
``cost_limit``) carrying the per-protocol fields of :mod:`taxbench.experiments.runs.protocols`
(``capability_<p>``, ``episode_cost_<p>_low``, …); runs from before those fields existed are read
as deterministic-only. Nothing here reads files.

Fields of the result, for the headline protocol (and per protocol under ``protocols``): everything
of :func:`.tax.pair_summary`, then ``protocol``, ``cost_limit``, ``feasible`` (arm verdict),
``feasible_seeds`` / ``infeasible_seeds`` / ``undetermined_seeds``, ``constraint_bound``,
``tax_label``, ``tau_constraint``, ``tau_learner``, ``c_feasible``, ``c_feasible_source``,
``decomposition_note``, ``prob_improvement`` (rliable P(C_unc > C_safe)), ``tax_ci_width``,
``tax_over_training`` (rows), ``converged``, ``convergence``; and at the top ``warnings`` and
``protocol_disagreement``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from taxbench.experiments.metrics.budget import convergence, convergence_text, tax_over_training
from taxbench.experiments.metrics.decompose import best_feasible, decompose_tax
from taxbench.experiments.metrics.estimates import Estimate
from taxbench.experiments.metrics.feasibility import (
    FEASIBLE,
    INFEASIBLE,
    NEVER_BOUND,
    PROTOCOLS,
    UNDETERMINED,
    arm_verdict,
    check_protocol,
    disagreement,
    tax_label,
    verdict,
)
from taxbench.experiments.metrics.reliability import ci_width, probability_of_improvement, warnings_for
from taxbench.experiments.metrics.tax import _to_float, pair_summary

_FIELDS = ("capability", "violation_rate", "episode_cost")


def protocol_values(run: Mapping[str, Any], protocol: str) -> dict[str, Any]:
    """A run's ``capability``, ``violation_rate``, ``episode_cost`` (+ ``_low``/``_high``) in ``protocol``.

    Runs without per-protocol fields give their unsuffixed (deterministic) values for
    ``deterministic`` and NaN for ``stochastic``.
    """
    out: dict[str, Any] = {"seed": run.get("seed")}
    legacy = f"capability_{protocol}" not in run
    for key in _FIELDS:
        source = key if legacy and protocol == "deterministic" else f"{key}_{protocol}"
        out[key] = _to_float(run.get(source))
    for end in ("low", "high"):
        out[f"episode_cost_{end}"] = _to_float(run.get(f"episode_cost_{protocol}_{end}"))
    return out


def run_verdict(run: Mapping[str, Any], protocol: str, limit: float) -> str:
    """Feasibility of one run in ``protocol`` against ``limit`` (from its stored CI of the episode cost)."""
    values = protocol_values(run, protocol)
    est = Estimate(values["episode_cost"], values["episode_cost_low"], values["episode_cost_high"], 0)
    return verdict(est, limit)


def _bound(runs: Sequence[Mapping[str, Any]]) -> bool | None:
    flags = [r.get("constraint_bound") for r in runs]
    flags = [f if isinstance(f, bool) else str(f).lower() == "true" for f in flags if f not in (None, "")]
    if not flags:
        return None
    return any(flags)


def _source(run: Mapping[str, Any]) -> str:
    return f"{run.get('arm', '?')}-{run.get('intensity', '?')} seed {run.get('seed')}"


def protocol_block(
    unc_runs: Sequence[Mapping[str, Any]],
    safe_runs: Sequence[Mapping[str, Any]],
    protocol: str,
    *,
    candidates: Sequence[Mapping[str, Any]] | None = None,
    budgets: Mapping[str, Mapping[int, Mapping[int, Mapping[str, Any]]]] | None = None,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    aggregate: str = "mean",
    poi_boot: int = 1_000,
) -> dict[str, Any]:
    """The pair's estimates in one protocol (see the module docstring).

    Args:
        unc_runs: Unconstrained arm's run summaries (with ``seed``).
        safe_runs: Constrained arm's run summaries (with ``seed`` and ``cost_limit``).
        protocol: ``deterministic`` or ``stochastic``.
        candidates: Runs that may supply ``C*_feasible`` (default: both arms' runs); each judged
            against the constrained arm's limit in this protocol.
        budgets: ``{"unc"|"safe": {seed: {budget: row}}}`` rows of budgets.csv in this protocol.
        n_boot: Bootstrap resamples.
        confidence: Two-sided coverage.
        seed: Seed of the resampling RNG.
        aggregate: ``mean`` or ``iqm`` over seeds for τ, τ_constraint, τ_learner and τ(t) (the
            per-arm levels and g, ΔC of :func:`.tax.pair_summary` use the mean).
        poi_boot: rliable bootstrap replications of ``prob_improvement`` (0: point only).
    """
    check_protocol(protocol)
    boot = {"n_boot": n_boot, "confidence": confidence, "seed": seed}
    unc = [protocol_values(r, protocol) for r in unc_runs]
    safe = [protocol_values(r, protocol) for r in safe_runs]
    out = pair_summary(unc, safe, **boot)
    limit = _to_float(safe_runs[0].get("cost_limit")) if safe_runs else math.nan
    verdicts = [run_verdict(r, protocol, limit) for r in safe_runs if int(r["seed"]) in out["seeds"]]
    bound = _bound(safe_runs)
    feasible = arm_verdict(verdicts)
    out.update(
        protocol=protocol,
        cost_limit=limit,
        feasible=feasible,
        feasible_seeds=verdicts.count(FEASIBLE),
        infeasible_seeds=verdicts.count(INFEASIBLE),
        undetermined_seeds=verdicts.count(UNDETERMINED),
        constraint_bound=bound,
        tax_label=tax_label(feasible, bound),
    )
    pool = list(candidates) if candidates is not None else [*unc_runs, *safe_runs]
    best = best_feasible(
        [
            {
                "seed": r["seed"],
                "capability": protocol_values(r, protocol)["capability"],
                "feasible": run_verdict(r, protocol, limit),
                "source": _source(r),
            }
            for r in pool
        ]
    )
    c_unc = {int(r["seed"]): _to_float(r["capability"]) for r in unc}
    c_safe = {int(r["seed"]): _to_float(r["capability"]) for r in safe}
    parts = decompose_tax(c_unc, c_safe, {s: c for s, (c, _) in best.items()}, aggregate=aggregate, **boot)
    paired_best = {s: v for s, v in best.items() if s in out["seeds"]}
    out.update(
        tau_constraint=parts["tau_constraint"],
        tau_learner=parts["tau_learner"],
        c_feasible=parts["c_feasible"],
        c_feasible_source=max(paired_best.values())[1] if paired_best else "",
        decomposition_note=parts["note"],
        prob_improvement=probability_of_improvement(
            [r["capability"] for r in unc], [r["capability"] for r in safe], n_boot=poi_boot, seed=seed
        ),
        tax_ci_width=ci_width(out["tax"]),
    )
    rows = (
        tax_over_training(budgets.get("unc", {}), budgets.get("safe", {}), aggregate=aggregate, **boot)
        if budgets
        else []
    )
    out["tax_over_training"] = rows
    verdict_ = convergence(
        {
            "unconstrained": {r["budget"]: r["capability_unc"] for r in rows},
            "constrained": {r["budget"]: r["capability_safe"] for r in rows},
        }
    )
    out["converged"] = verdict_["converged"]
    out["convergence"] = convergence_text(verdict_)
    return out


def honest_pair_summary(
    unc_runs: Sequence[Mapping[str, Any]],
    safe_runs: Sequence[Mapping[str, Any]],
    protocol: str,
    *,
    budgets: Mapping[str, Mapping[str, Any]] | None = None,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Both protocols' blocks, the headline protocol's fields at the top, and the warnings to print.

    Args:
        unc_runs: Unconstrained arm's run summaries.
        safe_runs: Constrained arm's run summaries.
        protocol: The headline protocol.
        budgets: ``{protocol: {"unc"|"safe": {seed: {budget: row}}}}``.
        n_boot: Bootstrap resamples.
        confidence: Two-sided coverage.
        seed: Seed of the resampling RNG.
    """
    check_protocol(protocol)
    blocks = {
        p: protocol_block(
            unc_runs,
            safe_runs,
            p,
            budgets=(budgets or {}).get(p),
            n_boot=n_boot,
            confidence=confidence,
            seed=seed,
        )
        for p in PROTOCOLS
    }
    out = dict(blocks[protocol])
    out["protocols"] = blocks
    out["protocol_disagreement"] = disagreement({p: b["feasible"] for p, b in blocks.items() if b["n_pairs"]})
    out["warnings"] = pair_warnings(out)
    return out


def _all_zero(summary: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
    """Whether every one of these per-arm estimates is there and exactly 0 (point of an Estimate or its dict)."""
    points = []
    for key in keys:
        value = summary.get(key)
        point = getattr(value, "point", value.get("point") if isinstance(value, Mapping) else value)
        points.append(point)
    return all(isinstance(p, int | float) and p == 0 for p in points)


def pair_warnings(summary: Mapping[str, Any]) -> list[str]:
    """One-line warnings (headline protocol): infeasible arm, λ never bound, disagreement, wide CIs, convergence."""
    p = summary["protocol"]
    out = []
    if _all_zero(summary, ("capability_unc", "capability_safe", "violation_rate_unc", "violation_rate_safe")):
        out.append(
            "this budget measured no tax: both arms score 0 on capability and on violations; train longer "
            "(--steps) until the unconstrained arm succeeds and violates"
        )
    if summary.get("constraint_bound") is False:
        out.append(
            f"{NEVER_BOUND} (λ stayed 0 in every constrained run: both arms are the same learner); train longer "
            "(--steps) or lower the limit (--cost-limit, --intensity strict) so that it binds"
        )
    if summary["feasible"] == INFEASIBLE:
        out.append(
            f"constrained arm INFEASIBLE under {p} evaluation ({summary['infeasible_seeds']} of "
            f"{summary['n_pairs']} seeds cost more than d = {summary['cost_limit']:g}/episode): "
            "its τ is a tax against an infeasible arm"
        )
    elif summary["feasible"] == UNDETERMINED:
        out.append(f"constrained arm's feasibility is undetermined under {p} evaluation (CI of the cost straddles d)")
    if summary.get("protocol_disagreement"):
        out.append(summary["protocol_disagreement"])
    if summary.get("decomposition_note"):
        out.append(summary["decomposition_note"])
    out.extend(warnings_for(dict(summary)))
    if summary.get("converged") is False:
        out.append(f"tax {summary['convergence']}")
    return out
