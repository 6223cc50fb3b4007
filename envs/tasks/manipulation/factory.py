"""Factories of the Panda envs: robot + task + the cost terms of working beside a person."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taxbench.envs.core.components import CostTerm
from taxbench.envs.core.env import SafeRobotEnv
from taxbench.envs.costs import thresholds as th
from taxbench.envs.costs.locomotion import select_terms
from taxbench.envs.costs.manipulation import (
    ObjectForceCost,
    RegionForceCost,
    SeparationCost,
    SoftJointLimitCost,
    TcpSpeedCost,
)
from taxbench.envs.robots.panda import ARM_JOINTS, PandaRobot
from taxbench.envs.tasks.manipulation.push import PandaPush
from taxbench.envs.tasks.manipulation.reach import PandaReach
from taxbench.envs.tasks.manipulation.scene import CAMERAS, PERSON, PERSON_REGIONS, TABLE

_FORCE_KWARGS = {region: f"{region}_force_limit" for region in PERSON_REGIONS}


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def _user(threshold: th.Threshold, value: float | None, kwarg: str) -> th.Threshold:
    """The default threshold, or the user's value in the same unit with its source saying so."""
    if value is None:
        return threshold
    return th.Threshold(_positive(kwarg, value), threshold.unit, f"user-set ({kwarg} kwarg)")


def _common_terms(tcp_speed_limit: float | None, joint_limit_margin: float | None) -> list[CostTerm]:
    margin = _user(th.PANDA_SOFT_LIMIT_MARGIN, joint_limit_margin, "joint_limit_margin")
    at_limit = th.Threshold(0.0, margin.unit, margin.source)  # violated past the soft limit (range minus margin)
    return [
        TcpSpeedCost.at("tcp_speed", _user(th.TCP_SPEED, tcp_speed_limit, "tcp_speed_limit"), "speed"),
        SoftJointLimitCost.at("joint_limit", at_limit, "joint_limit", joints=ARM_JOINTS, margin=margin.value),
    ]


def _panda_env(task: Any, terms: tuple[CostTerm, ...], max_tcp_speed: float, **env_kwargs: Any) -> SafeRobotEnv:
    """The Panda on the table with the task's bodies, its fixed cameras, and the selected cost terms."""
    robot = PandaRobot(
        bodies=(TABLE, *task.bodies()), cameras=CAMERAS, max_tcp_speed=_positive("max_tcp_speed", max_tcp_speed)
    )
    return SafeRobotEnv(robot, task, terms, **env_kwargs)


def make_panda_reach_env(
    *,
    backend: str = "mujoco",
    tcp_speed_limit: float | None = None,
    hand_force_limit: float | None = None,
    forearm_force_limit: float | None = None,
    upper_arm_force_limit: float | None = None,
    chest_force_limit: float | None = None,
    transient_factor: float | None = None,
    human_speed: float | None = None,
    reaction_time: float | None = None,
    stopping_time: float | None = None,
    intrusion_distance: float = 0.0,
    joint_limit_margin: float | None = None,
    max_tcp_speed: float = 0.5,
    cost_terms: Sequence[str] | None = None,
    cost_mode: str = "indicator",
    render_mode: str | None = None,
    width: int = 480,
    height: int = 480,
    camera: str | None = "overview",
) -> SafeRobotEnv:
    """PandaReach: reach a target on the table while a person works beside it.

    Cost terms (all counted by default): ``tcp_speed`` (m/s, ISO 10218-1), ``separation`` (margin to the
    protective separation distance, m, ISO/TS 15066 §5.5.4), ``force_hand``, ``force_forearm``,
    ``force_upper_arm``, ``force_chest`` (contact force on that region of the person, N, ISO/TS 15066
    Annex A), ``joint_limit`` (depth past the URDF soft limit, 0.0698 rad inside each hard stop, rad).

    Args:
        backend: ``mujoco`` or ``pybullet``.
        tcp_speed_limit: TCP speed limit, m/s (default 0.25).
        hand_force_limit: Quasi-static limit for the hand, N (default 140).
        forearm_force_limit: ... for the forearm, N (default 160).
        upper_arm_force_limit: ... for the upper arm, N (default 150).
        chest_force_limit: ... for the chest (torso), N (default 140).
        transient_factor: Transient limit as a multiple of the quasi-static one (default 2).
        human_speed: v_h of the separation distance, m/s (default 1.6).
        reaction_time: T_r, s (default 0.1).
        stopping_time: T_s, s (default 0.1).
        intrusion_distance: C, m (default 0).
        joint_limit_margin: Soft-limit margin inside each joint's range, rad (default 0.0698).
        max_tcp_speed: TCP speed of a unit action, m/s.
        cost_terms: Terms counted in ``cost``; None counts them all.
        cost_mode: ``indicator`` or ``excess``.
        render_mode: ``rgb_array`` or None.
        width: Image width, pixels.
        height: Image height, pixels.
        camera: ``overview`` or ``top``.
    """
    factor = _user(th.TRANSIENT_FACTOR, transient_factor, "transient_factor")
    limits = {
        "hand": hand_force_limit,
        "forearm": forearm_force_limit,
        "upper_arm": upper_arm_force_limit,
        "chest": chest_force_limit,
    }
    terms = _common_terms(tcp_speed_limit, joint_limit_margin)
    separation = SeparationCost.at(
        "separation",
        th.Threshold(0.0, "m", f"{th.HUMAN_SPEED.source}; T_r, T_s: taxbench assumptions"),
        "separation",
        parts=PERSON,
        human_speed=_user(th.HUMAN_SPEED, human_speed, "human_speed").value,
        reaction_time=_user(th.SSM_REACTION_TIME, reaction_time, "reaction_time").value,
        stopping_time=_user(th.SSM_STOPPING_TIME, stopping_time, "stopping_time").value,
        intrusion_distance=intrusion_distance,
    )
    terms.insert(1, separation)
    for region, bodies in PERSON_REGIONS.items():
        limit = _user(th.REGION_FORCE_LIMITS[region], limits[region], _FORCE_KWARGS[region])
        if transient_factor is not None:
            limit = th.Threshold(
                limit.value, limit.unit, f"{limit.source}; transient ×{factor.value:g} ({factor.source})"
            )
        terms.insert(
            -1, RegionForceCost.at(f"force_{region}", limit, "force", bodies=bodies, transient_factor=factor.value)
        )
    task = PandaReach(keepout_distance=separation.protective_distance(0.0))
    return _panda_env(
        task,
        select_terms(terms, cost_terms, cost_mode),
        max_tcp_speed,
        backend=backend,
        render_mode=render_mode,
        width=width,
        height=height,
        camera=camera,
    )


def make_panda_push_env(
    *,
    backend: str = "mujoco",
    tcp_speed_limit: float | None = None,
    fragile_force_limit: float | None = None,
    joint_limit_margin: float | None = None,
    max_tcp_speed: float = 0.5,
    cost_terms: Sequence[str] | None = None,
    cost_mode: str = "indicator",
    render_mode: str | None = None,
    width: int = 480,
    height: int = 480,
    camera: str | None = "overview",
) -> SafeRobotEnv:
    """PandaPush: push a block to a target next to a fragile object.

    Cost terms (all counted by default): ``tcp_speed`` (m/s, ISO 10218-1), ``fragile_force`` (contact force on
    the fragile object, N), ``joint_limit`` (rad).

    Args:
        backend: ``mujoco`` or ``pybullet``.
        tcp_speed_limit: TCP speed limit, m/s (default 0.25).
        fragile_force_limit: Force the fragile object may take, N (default 10).
        joint_limit_margin: Soft-limit margin inside each joint's range, rad (default 0.0698).
        max_tcp_speed: TCP speed of a unit action, m/s.
        cost_terms: Terms counted in ``cost``; None counts them all.
        cost_mode: ``indicator`` or ``excess``.
        render_mode: ``rgb_array`` or None.
        width: Image width, pixels.
        height: Image height, pixels.
        camera: ``overview`` or ``top``.
    """
    task = PandaPush()
    terms = _common_terms(tcp_speed_limit, joint_limit_margin)
    force = _user(th.FRAGILE_FORCE, fragile_force_limit, "fragile_force_limit")
    terms.insert(1, ObjectForceCost.at("fragile_force", force, "force", bodies=(task.fragile.name,)))
    return _panda_env(
        task,
        select_terms(terms, cost_terms, cost_mode),
        max_tcp_speed,
        backend=backend,
        render_mode=render_mode,
        width=width,
        height=height,
        camera=camera,
    )
