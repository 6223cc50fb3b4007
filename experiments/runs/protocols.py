"""Evaluate a run under both protocols (deterministic and stochastic policy) and judge its feasibility.

Both protocols play the same seeded episodes (episode ``i`` reset with ``seed + i``); the
stochastic policy's action noise is seeded per episode too (``torch.manual_seed(seed + i)``), so
two arms face the same noise stream and a re-evaluation repeats itself.

Files in the run folder: ``episodes.csv`` and ``events.jsonl`` (deterministic, as before, now
with a ``protocol`` column) and ``episodes_stochastic.csv``.

Fields added to the run summary (status.json, summary.csv), for ``<p>`` in ``deterministic``,
``stochastic``: ``capability_<p>``, ``mean_return_<p>``, ``success_rate_<p>``,
``violation_rate_<p>``, ``episode_cost_<p>``, ``episode_cost_<p>_low``, ``episode_cost_<p>_high``
(95 % bootstrap CI over episodes) and ``feasible_<p>`` (``feasible`` | ``infeasible`` |
``undetermined``, empty for unconstrained arms); then ``protocol`` (the protocol of the unsuffixed
fields: ``deterministic``), ``feasible`` (its verdict), ``constrained``, ``lambda_max`` and
``constraint_bound`` (λ left 0 during training; empty without a multiplier).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium

from taxbench.experiments.metrics import run_summary
from taxbench.experiments.metrics.feasibility import PROTOCOLS, constraint_bound, feasibility
from taxbench.experiments.runs.runfolder import EPISODES_FILE, PROGRESS_FILE, atomic_write_csv, read_csv_rows

if TYPE_CHECKING:
    from taxbench.experiments.runs.config import RunConfig

STOCHASTIC_EPISODES_FILE = "episodes_stochastic.csv"

#: Run-summary fields repeated per protocol as ``<field>_<protocol>``.
PROTOCOL_FIELDS: tuple[str, ...] = ("capability", "mean_return", "success_rate", "violation_rate", "episode_cost")

#: Bootstrap resamples of a run's feasibility CI (over its evaluation episodes).
FEASIBILITY_BOOT = 4_000


def episodes_file(protocol: str) -> str:
    """File name of a protocol's episode rows in a run folder."""
    return EPISODES_FILE if protocol == "deterministic" else f"episodes_{protocol}.csv"


def is_constrained(arm: str) -> bool:
    """True for a safety arm (one that is not its own unconstrained partner)."""
    from taxbench.policies.registry import unconstrained_partner

    try:
        return unconstrained_partner(arm) != arm
    except ValueError:  # an arm this version does not know (e.g. from another run folder): by name
        return arm not in ("ppo", "sac", "trpo")


def read_lambda(run_dir: str | os.PathLike[str]) -> tuple[bool | None, float]:
    """``(constraint_bound, lambda_max)`` from progress.csv's ``lambda`` column (``(None, nan)`` without one)."""
    rows = read_csv_rows(Path(run_dir) / PROGRESS_FILE) if (Path(run_dir) / PROGRESS_FILE).exists() else []
    values = [row.get("lambda") for row in rows]
    bound = constraint_bound(values)
    finite = []
    for value in values:
        try:
            number = float(value) if value not in (None, "") else math.nan
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            finite.append(number)
    return bound, (max(finite) if finite else math.nan)


def protocol_fields(
    rows: Mapping[str, Sequence[Mapping[str, Any]]], *, success: bool, cost_limit: float | None
) -> dict[str, Any]:
    """The per-protocol summary fields of one run (see the module docstring).

    Args:
        rows: Episode rows per protocol.
        success: Capability is the success rate (else the mean return).
        cost_limit: The run's own limit ``d`` (cost per episode); None for an unconstrained arm.
    """
    out: dict[str, Any] = {}
    for protocol, episode_rows in rows.items():
        summary = run_summary(episode_rows, success=success)
        out.update({f"{key}_{protocol}": summary[key] for key in PROTOCOL_FIELDS})
        costs = [float(r["cost"]) for r in episode_rows]
        limit = math.inf if cost_limit is None else cost_limit
        judged = feasibility(costs, limit, n_boot=FEASIBILITY_BOOT)
        est = judged["episode_cost"]
        out[f"episode_cost_{protocol}_low"], out[f"episode_cost_{protocol}_high"] = est.low, est.high
        out[f"feasible_{protocol}"] = judged["feasible"] if cost_limit is not None else ""
    return out


def evaluate_protocols(
    model: Any,
    cfg: RunConfig,
    run_dir: str | os.PathLike[str] | None,
    episodes: int | None = None,
    seed: int | None = None,
    wrap_env: Callable[[gymnasium.Env], gymnasium.Env] | None = None,
) -> tuple[dict[str, Any], dict[str, list[dict]]]:
    """Evaluate ``model`` under every protocol on the same seeded episodes.

    Args:
        model: A trained learner.
        cfg: The run's config (env, eval episodes and seed, capability metric, arm, cost limit).
        run_dir: Where to write episodes.csv, events.jsonl and episodes_stochastic.csv; None writes
            nothing (the budget checkpoints are evaluated this way) and skips the λ fields.
        episodes: Overrides ``cfg.eval_episodes``.
        seed: Overrides ``cfg.eval_seed``.
        wrap_env: The arm's env wrapper (a shield acts at deployment too).

    Returns:
        ``(summary, rows per protocol)``: :func:`run_summary` of the deterministic episodes plus
        ``eval_seed``, ``violation_events`` and the fields of the module docstring.
    """
    from taxbench.experiments.runs.evaluation import evaluate_policy, resolve_capability_metric, write_evaluation

    metric = resolve_capability_metric(cfg.env_id, cfg.env_kwargs, cfg.capability)
    n = cfg.eval_episodes if episodes is None else episodes
    first_seed = cfg.eval_seed if seed is None else seed
    rows: dict[str, list[dict]] = {}
    n_events = 0
    for protocol in PROTOCOLS:
        found, events = evaluate_policy(
            model,
            cfg.env_id,
            cfg.env_kwargs,
            n,
            first_seed,
            deterministic=protocol == "deterministic",
            wrap_env=wrap_env,
        )
        for row in found:
            row["protocol"] = protocol
        rows[protocol] = found
        if run_dir is None:
            continue
        if protocol == "deterministic":
            write_evaluation(run_dir, found, events)
            n_events = len(events)
        else:
            from taxbench.experiments.runs.evaluation import episode_fieldnames

            atomic_write_csv(Path(run_dir) / episodes_file(protocol), found, episode_fieldnames(found))
    constrained = is_constrained(cfg.arm)
    summary = run_summary(rows["deterministic"], success=metric == "success")
    summary.update(eval_seed=first_seed, violation_events=n_events)
    summary.update(
        protocol_fields(rows, success=metric == "success", cost_limit=cfg.cost_limit if constrained else None)
    )
    summary.update(protocol="deterministic", feasible=summary["feasible_deterministic"], constrained=constrained)
    if run_dir is not None:
        bound, lam_max = read_lambda(run_dir)
        summary.update(lambda_max=lam_max, constraint_bound="" if bound is None else bound)
    for key, value in summary.items():  # NaN is written as null: keep the summary equal to its status.json copy
        if isinstance(value, float) and math.isnan(value) and (key.endswith(("_low", "_high")) or key == "lambda_max"):
            summary[key] = None
    return summary, rows


def read_protocol_costs(run_dir: str | os.PathLike[str]) -> dict[str, list[float]]:
    """Episode costs per protocol from a run folder's episode files (protocols without a file are left out)."""
    out: dict[str, list[float]] = {}
    for protocol in PROTOCOLS:
        path = Path(run_dir) / episodes_file(protocol)
        if path.exists():
            costs = []
            for row in read_csv_rows(path):
                try:
                    costs.append(float(row["cost"]))
                except (KeyError, TypeError, ValueError):
                    costs.append(math.nan)
            out[protocol] = costs
    return out


def evaluate_and_write(
    model: Any,
    cfg: RunConfig,
    run_dir: str | os.PathLike[str],
    episodes: int | None = None,
    seed: int | None = None,
    wrap_env: Callable[[gymnasium.Env], gymnasium.Env] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` as ``cfg`` says in both protocols, write the episode files, return the summary.

    Args:
        model: A trained learner.
        cfg: The run's config (env, eval episodes and seed, capability metric).
        run_dir: Where to write the files.
        episodes: Overrides ``cfg.eval_episodes``.
        seed: Overrides ``cfg.eval_seed``.
        wrap_env: Env wrapper of the run's arm (see :func:`evaluate_policy`).

    Returns:
        :func:`taxbench.experiments.metrics.run_summary` of the deterministic episodes plus
        ``eval_seed``, ``violation_events`` (lines in events.jsonl) and the per-protocol and
        feasibility fields of :mod:`taxbench.experiments.runs.protocols`.
    """
    summary, _ = evaluate_protocols(model, cfg, run_dir, episodes, seed, wrap_env)
    return summary
