"""The taxbench env suite: factories, ids and the table ``taxbench envs`` prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from taxbench.envs.costs import thresholds as th
from taxbench.envs.tasks.locomotion.factory import make_hazard_env, make_velocity_env
from taxbench.envs.tasks.manipulation.factory import make_panda_push_env, make_panda_reach_env

NAMESPACE = "taxbench"


@dataclass(frozen=True)
class EnvEntry:
    """One registered env.

    Attributes:
        env_id: Gymnasium id, e.g. ``taxbench/HalfCheetahVelocity-v0``.
        robot: Robot name.
        task_kind: Task type for reports (velocity, navigation, reach, push).
        default_cost_limit: Episode cost limit for constrained learners (violating steps per episode;
            :data:`~taxbench.envs.costs.thresholds.DEFAULT_COST_LIMIT` unless the id sets its own).
        max_episode_steps: Time limit, control steps.
        summary: One line for the env table.
        kwargs: Factory kwargs fixed by the id (robot, thresholds).
    """

    env_id: str
    robot: str
    task_kind: str
    max_episode_steps: int
    summary: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    default_cost_limit: float = th.DEFAULT_COST_LIMIT.value


ENTRIES: tuple[EnvEntry, ...] = (
    EnvEntry(
        "taxbench/HalfCheetahVelocity-v0",
        "half_cheetah",
        "velocity",
        1000,
        "HalfCheetah runs forward; forward velocity limited",
    ),
    EnvEntry(
        "taxbench/HalfCheetahSlowZone-v0",
        "half_cheetah",
        "velocity",
        1000,
        "HalfCheetah runs forward through a 1 m/s slow zone (binds at quick budgets)",
        {"velocity_limit": "slow_zone"},
    ),
    EnvEntry(
        "taxbench/HopperVelocity-v0",
        "hopper",
        "velocity",
        1000,
        "Hopper hops forward; forward velocity limited; falls end the episode",
    ),
    EnvEntry(
        "taxbench/Walker2dVelocity-v0",
        "walker2d",
        "velocity",
        1000,
        "Walker2d walks forward; forward velocity limited; falls end the episode",
    ),
    EnvEntry(
        "taxbench/AntVelocity-v0",
        "ant",
        "velocity",
        1000,
        "Ant runs forward; horizontal speed limited; falls end the episode",
    ),
    EnvEntry(
        "taxbench/AntHazard-v0",
        "ant",
        "navigation",
        1000,
        "Ant walks to a goal 3 m away; hazard zones lie across the path",
    ),
    EnvEntry(
        "taxbench/PandaReach-v0",
        "panda",
        "reach",
        100,
        "Franka Panda reaches a target on a table beside a person (TCP speed, separation, contact force)",
    ),
    EnvEntry(
        "taxbench/PandaPush-v0",
        "panda",
        "push",
        100,
        "Franka Panda pushes a block to a target next to a fragile glass (TCP speed, force on the glass)",
    ),
)

ENV_IDS: tuple[str, ...] = tuple(entry.env_id for entry in ENTRIES)


def register_all() -> None:
    """Register every taxbench env with Gymnasium (idempotent)."""
    for entry in ENTRIES:
        if entry.env_id in gym.registry:
            continue
        if entry.task_kind == "velocity":
            factory, kwargs = make_velocity_env, {"robot": entry.robot, **entry.kwargs}
        elif entry.task_kind in ("reach", "push"):
            factory = make_panda_reach_env if entry.task_kind == "reach" else make_panda_push_env
            kwargs = dict(entry.kwargs)
        else:
            factory, kwargs = make_hazard_env, {"robot": entry.robot, **entry.kwargs}
        gym.register(entry.env_id, entry_point=factory, kwargs=kwargs, max_episode_steps=entry.max_episode_steps)


def entry_for(env_id: str) -> EnvEntry:
    """The suite entry of an id; unknown ids raise ValueError naming the closest id."""
    for entry in ENTRIES:
        if entry.env_id == env_id:
            return entry
    raise ValueError(unknown_env_message(env_id))


def unknown_env_message(env_id: str, others: Sequence[str] = ()) -> str:
    """'unknown env id X; did you mean Y?': the nearest taxbench id first.

    Args:
        env_id: The id that was not found.
        others: Further ids that may be meant (e.g. every Gymnasium id, for ``taxbench check``); one of them is
            suggested only when no taxbench id is close (difflib ratio 0.6) and it is.
    """
    import difflib

    candidates = list(ENV_IDS)
    short = {c.split("/", 1)[1]: c for c in candidates}
    close = difflib.get_close_matches(env_id.split("/")[-1], list(short), n=1, cutoff=0.6)
    if not close and others:
        foreign = difflib.get_close_matches(env_id, [o for o in others if o not in short.values()], n=1, cutoff=0.6)
        if foreign:
            return f"unknown env id {env_id!r}; did you mean {foreign[0]!r}? (taxbench envs lists taxbench's)"
    short_match = close or difflib.get_close_matches(env_id.split("/")[-1], list(short), n=1, cutoff=0.0)
    best = short[short_match[0]] if short_match else candidates[0]
    return f"unknown env id {env_id!r}; did you mean {best!r}? (taxbench envs lists them all)"
