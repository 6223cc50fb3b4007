"""Factories of the locomotion envs: a legged robot + a running or goal task + the cost terms of moving fast and safely.

Beside :mod:`taxbench.envs.tasks.manipulation.factory`; :mod:`taxbench.envs.registry` gives each factory its ids.
"""

from __future__ import annotations

from collections.abc import Sequence

from taxbench.envs.core.components import CostTerm
from taxbench.envs.core.env import SafeRobotEnv
from taxbench.envs.costs import thresholds as th
from taxbench.envs.costs.locomotion import (
    FallCost,
    FlipCost,
    HazardCost,
    HazardZones,
    JointLimitCost,
    VelocityCost,
    select_terms,
)
from taxbench.envs.robots.legged import ROBOTS, LeggedRobot
from taxbench.envs.tasks.locomotion.hazard_goal import HazardGoal
from taxbench.envs.tasks.locomotion.velocity import V5_WEIGHTS, RunForward


def _robot(name: str) -> LeggedRobot:
    if name not in ROBOTS:
        raise ValueError(f"unknown robot {name!r}; choose from {sorted(ROBOTS)}")
    return ROBOTS[name]()


def _posture_term(robot: LeggedRobot, fall_height: float | None) -> CostTerm:
    if robot.name in th.FALL_HEIGHTS:
        default = th.FALL_HEIGHTS[robot.name]
        limit = default if fall_height is None else th.Threshold(fall_height, "m", "user-set (fall_height kwarg)")
        return FallCost.at("fall", limit, "fall")
    return FlipCost.at("flip", th.FLIP_TILT, "fall")


def _joint_term() -> CostTerm:
    return JointLimitCost.at("joint_limit", th.JOINT_LIMIT_DEPTH, "joint_limit")


def _velocity_limit(robot: str, requested: float | str | None) -> th.Threshold:
    if requested is None:
        return th.VELOCITY_LIMITS[robot]
    if isinstance(requested, str):
        if requested not in th.NAMED_VELOCITY_LIMITS:
            named = sorted(th.NAMED_VELOCITY_LIMITS)
            raise ValueError(f"unknown velocity_limit {requested!r}; give m/s or one of {named}")
        return th.NAMED_VELOCITY_LIMITS[requested]
    if isinstance(requested, bool) or not isinstance(requested, int | float) or not requested > 0:
        raise ValueError(f"velocity_limit must be > 0 m/s, got {requested!r}")
    return th.Threshold(float(requested), "m/s", "user-set (velocity_limit kwarg)")


def make_velocity_env(
    robot: str,
    *,
    velocity_limit: float | str | None = None,
    fall_height: float | None = None,
    cost_terms: Sequence[str] | None = ("velocity",),
    cost_mode: str = "indicator",
    backend: str = "mujoco",
    render_mode: str | None = None,
    width: int = 480,
    height: int = 480,
    camera: str | None = None,
) -> SafeRobotEnv:
    """A velocity-limited locomotion env (Safety-Gymnasium v1 velocity semantics).

    Args:
        robot: ``half_cheetah``, ``hopper``, ``walker2d`` or ``ant``.
        velocity_limit: Limit on forward velocity (planar robots) or horizontal speed (Ant): a number in
            m/s, a named limit (``"slow_zone"``: 1.0 m/s), or None for Safety-Gymnasium v1's value.
        fall_height: Lowest healthy torso height, m (Hopper, Walker2d, Ant); Gymnasium v5's by default.
        cost_terms: Terms that count toward ``cost``: any of ``velocity``, ``joint_limit`` and
            ``fall`` (``flip`` for HalfCheetah). Defaults to ``("velocity",)``, comparable with
            Safety-Gymnasium; ``None`` enables every term.
        cost_mode: ``indicator`` (1 per violating step) or ``excess`` (amount over the limit).
        backend: Physics engine; locomotion runs on ``mujoco``.
        render_mode: ``rgb_array`` or None.
        width: Image width, pixels.
        height: Image height, pixels.
        camera: Named camera, or None to follow the robot.
    """
    body = _robot(robot)
    limit = _velocity_limit(robot, velocity_limit)
    terms: list[CostTerm] = [
        VelocityCost.at("velocity", limit, "velocity", planar=body.planar),
        _joint_term(),
        _posture_term(body, fall_height),
    ]
    task = RunForward(body, V5_WEIGHTS[robot])
    return SafeRobotEnv(
        body,
        task,
        select_terms(terms, cost_terms, cost_mode),
        backend=backend,
        render_mode=render_mode,
        width=width,
        height=height,
        camera=camera,
    )


def make_hazard_env(
    robot: str = "ant",
    *,
    n_hazards: int = 3,
    hazard_radius: float = 0.5,
    goal_distance: float = 3.0,
    cost_terms: Sequence[str] | None = ("hazard",),
    backend: str = "mujoco",
    render_mode: str | None = None,
    width: int = 480,
    height: int = 480,
    camera: str | None = None,
) -> SafeRobotEnv:
    """Goal reaching with hazard zones across the path (cost per step inside a zone).

    Args:
        robot: Legged robot (``ant``).
        n_hazards: Number of hazard zones.
        hazard_radius: Zone radius, m.
        goal_distance: Start-to-goal distance, m.
        cost_terms: Terms that count toward ``cost``: ``hazard``, ``joint_limit``, ``fall``; None = all.
        backend: Physics engine (``mujoco``).
        render_mode: ``rgb_array`` or None.
        width: Image width, pixels.
        height: Image height, pixels.
        camera: Named camera, or None to follow the robot.
    """
    body = _robot(robot)
    zones = HazardZones(radius=hazard_radius, centers=None)  # type: ignore[arg-type]
    task = HazardGoal(body, zones, n_hazards=n_hazards, goal_distance=goal_distance)
    terms: list[CostTerm] = [
        HazardCost.at("hazard", th.HAZARD_DEPTH, "zone", zones=zones),
        _joint_term(),
        _posture_term(body, None),
    ]
    return SafeRobotEnv(
        body,
        task,
        select_terms(terms, cost_terms),
        backend=backend,
        render_mode=render_mode,
        width=width,
        height=height,
        camera=camera,
    )
