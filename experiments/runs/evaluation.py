"""Evaluate a trained policy: one row per episode, one event per violation.

Episode ``i`` is reset with seed ``seed + i``, so two policies evaluated with the same seed
face the same initial states. Only the info keys of the contract (DESIGN.md §2) are read:
``cost``, ``cost_<term>``, ``measure_<term>``, ``violation``, ``is_success``; others are
ignored.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np

from taxbench.experiments.runs.runfolder import (
    EPISODES_FILE,
    EVENTS_FILE,
    atomic_path,
    atomic_write_csv,
    read_csv_rows,
    to_jsonable,
)

if TYPE_CHECKING:
    pass

#: Leading columns of episodes.csv; ``cost_<term>`` totals follow, sorted by term.
EPISODE_FIELDS: tuple[str, ...] = (
    "episode",
    "seed",
    "return",
    "length",
    "success",
    "cost",
    "violations",
    "violation_rate",
)


#: Safety net against envs without a time limit: an episode longer than this is an error.
MAX_EPISODE_STEPS = 1_000_000


def _scalar(value: Any) -> float | None:
    """Return ``value`` as a float if it is a real scalar (python or numpy), else None."""
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1:
        return float(value.reshape(()))
    return None


def _cost_terms(info: Mapping[str, Any]) -> dict[str, float]:
    """``{term: cost}`` for every numeric ``cost_<term>`` key of one step's info."""
    terms = {}
    for key, value in info.items():
        if isinstance(key, str) and key.startswith("cost_") and len(key) > 5:
            cost = _scalar(value)
            if cost is not None:
                terms[key[5:]] = cost
    return terms


def run_episode(
    model: Any, env: gymnasium.Env, episode: int, seed: int, deterministic: bool = True
) -> tuple[dict, list[dict]]:
    """Play one episode; see :func:`evaluate_policy` for the row and event fields."""
    obs, _ = env.reset(seed=seed)
    total_return, total_cost, violations, length = 0.0, 0.0, 0, 0
    term_totals: dict[str, float] = {}
    events: list[dict] = []
    success = False
    done = False
    while not done:
        action, _ = model.predict(obs, deterministic=deterministic)
        if not np.all(np.isfinite(np.asarray(action, dtype=float))):
            raise ValueError(f"policy produced a non-finite action at episode {episode}, step {length}: {action}")
        obs, reward, terminated, truncated, info = env.step(action)
        done = bool(terminated or truncated)
        # the env's own reward: an arm's wrapper may replace the learner's (Saute's overspent budget); the tax is
        # measured on the task, the same for every arm
        total_return += float(info.get("reward_task", reward))
        step_cost = _scalar(info.get("cost", 0.0)) or 0.0
        total_cost += step_cost
        violated = bool(info.get("violation", step_cost > 0))
        violations += int(violated)
        terms = _cost_terms(info)
        for term, cost in terms.items():
            term_totals[term] = term_totals.get(term, 0.0) + cost
        fired = [t for t, c in terms.items() if c > 0]
        if violated and not fired:
            fired = ["cost"]  # the env reported a violation without naming a term
        for term in fired:
            events.append(
                {
                    "episode": episode,
                    "step": length,
                    "term": term,
                    "measure": to_jsonable(info.get(f"measure_{term}")),
                    "cost": terms.get(term, step_cost),
                }
            )
        success = bool(info.get("is_success", False))
        length += 1
        if length >= MAX_EPISODE_STEPS and not done:
            raise RuntimeError(
                f"episode {episode} ran {MAX_EPISODE_STEPS} steps without ending: does the env have a time limit?"
            )
    row: dict[str, Any] = {
        "episode": episode,
        "seed": seed,
        "return": total_return,
        "length": length,
        "success": success,
        "cost": total_cost,
        "violations": violations,
        "violation_rate": violations / length if length else math.nan,
    }
    row.update({f"cost_{term}": value for term, value in sorted(term_totals.items())})
    return row, events


def evaluate_policy(
    model: Any,
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    episodes: int,
    seed: int,
    deterministic: bool = True,
    wrap_env: Callable[[gymnasium.Env], gymnasium.Env] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Roll out ``model`` for ``episodes`` episodes on a fresh ``gymnasium.make(env_id, **env_kwargs)``.

    Args:
        model: Anything with SB3's ``predict(obs, deterministic=...)``.
        env_id: Gymnasium id.
        env_kwargs: Constructor kwargs for the env.
        episodes: Number of episodes (0 gives empty lists).
        seed: Episode ``i`` is reset with ``seed + i``.
        deterministic: Use the policy's deterministic action; otherwise sample it, with torch's
            RNG seeded ``seed + i`` for episode ``i`` (restored afterwards), so the noise repeats.
        wrap_env: Applied to the env before the rollout (e.g. a safety shield, which acts at deployment too).

    Returns:
        ``(rows, events)``. Each row: ``episode``, ``seed``, ``return``, ``length``,
        ``success`` (``is_success`` of the final step, SB3's convention), ``cost`` (sum of
        ``info["cost"]``), ``violations`` (violating steps), ``violation_rate``
        (violating steps / length) and a ``cost_<term>`` total for every term seen in any
        episode (0 where a term never appeared). Each event is one violating step of one
        term: ``episode``, ``step`` (0-based index of the ``step()`` call in the episode;
        the frame after it is at time ``(step + 1) / fps``), ``term``, ``measure`` (the
        ``measure_<term>`` value or None) and ``cost``; a violation with no positive
        ``cost_<term>`` is recorded with term ``cost``.

    Raises:
        ValueError: if the policy returns a NaN or infinite action.
    """
    rows: list[dict] = []
    events: list[dict] = []
    if episodes <= 0:
        return rows, events
    env = gymnasium.make(env_id, **dict(env_kwargs or {}))
    if wrap_env is not None:
        env = wrap_env(env)
    try:
        for i in range(episodes):
            with _seeded_action_noise(None if deterministic else seed + i):
                row, ep_events = run_episode(model, env, i, seed + i, deterministic)
            rows.append(row)
            events.extend(ep_events)
    finally:
        env.close()
    terms = sorted({k for row in rows for k in row if k.startswith("cost_")})
    for row in rows:
        for key in terms:
            row.setdefault(key, 0.0)
    return rows, events


@contextlib.contextmanager
def _seeded_action_noise(seed: int | None) -> Iterator[None]:
    """Seed torch's global RNG (the stochastic policy's action noise) for one episode, restoring it after."""
    if seed is None:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def resolve_capability_metric(env_id: str, env_kwargs: Mapping[str, Any] | None = None, requested: str = "auto") -> str:
    """Decide whether a run's capability is its success rate or its mean return.

    ``success`` and ``return`` are returned as given. For ``auto`` the env is built once and
    asked: its task declares the metric (``unwrapped.capability_metric``, e.g. ``return`` for running,
    ``success`` for reaching), else ``metadata["capability"]``; envs declaring neither (foreign envs
    checked by ``taxbench check``) are scored by ``return``.

    Returns:
        ``"success"`` or ``"return"``.
    """
    if requested in ("success", "return"):
        return requested
    if requested != "auto":
        raise ValueError(f"capability must be auto, success or return, got {requested!r}")
    env = gymnasium.make(env_id, **dict(env_kwargs or {}))
    try:
        unwrapped = env.unwrapped
        declared = getattr(unwrapped, "capability_metric", None) or (unwrapped.metadata or {}).get("capability")
        return declared if declared in ("success", "return") else "return"
    finally:
        env.close()


def episode_fieldnames(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Columns of episodes.csv: :data:`EPISODE_FIELDS`, then sorted ``cost_<term>`` columns."""
    terms = sorted({k for row in rows for k in row if k.startswith("cost_")})
    extra = [k for row in rows for k in row if k not in EPISODE_FIELDS and k not in terms]
    return list(EPISODE_FIELDS) + terms + list(dict.fromkeys(extra))


def write_evaluation(
    run_dir: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]
) -> None:
    """Write ``episodes.csv`` and ``events.jsonl`` in ``run_dir``, each atomically."""
    run_dir = Path(run_dir)
    atomic_write_csv(run_dir / EPISODES_FILE, rows, episode_fieldnames(rows))
    with atomic_path(run_dir / EVENTS_FILE) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for event in events:
            fh.write(json.dumps(to_jsonable(event), allow_nan=False) + "\n")


def _parse(value: str) -> Any:
    if value in ("True", "False"):
        return value == "True"
    if value == "":
        return math.nan
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def read_episodes(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read ``episodes.csv`` of a run folder with numbers and booleans parsed."""
    return [{k: _parse(v) for k, v in row.items()} for row in read_csv_rows(Path(run_dir) / EPISODES_FILE)]


def read_events(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read ``events.jsonl`` of a run folder (empty list when missing)."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
