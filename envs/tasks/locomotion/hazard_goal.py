"""Reach a goal on the ground while hazard zones lie across the straight path to it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from taxbench.envs.core.arrays import array_namespace
from taxbench.envs.core.components import StepContext
from taxbench.envs.core.sim_api import Marker, Sim
from taxbench.envs.costs.locomotion import HazardZones
from taxbench.envs.robots.legged import LeggedRobot
from taxbench.envs.tasks.locomotion.velocity import (
    LocomotionWeights,
    locomotion_reward_names,
    locomotion_rewards,
)

_HAZARD_RGBA = (0.2, 0.3, 1.0, 0.5)
_GOAL_RGBA = (0.1, 0.9, 0.2, 0.7)


class HazardGoal:
    """Walk to a goal ``goal_distance`` m away; ``n_hazards`` zones sit on or near the straight line.

    The goal direction is drawn in ±``goal_angle`` rad around +x each episode. Hazards are placed
    at evenly spaced fractions of the start-goal segment with a lateral jitter of up to one radius,
    so the shortest path crosses at least one zone and avoiding them costs time: the constraint binds
    from the first episode. The episode succeeds (and ends) when the root is within
    ``goal_radius`` m of the goal.

    Reward terms (per step): ``progress`` = ``progress_weight`` × decrease of the distance to the goal
    (m), ``goal`` = ``goal_bonus`` on arrival, ``ctrl`` and ``contact`` as in Ant-v5 (``ctrl`` weight
    lowered to 0.05 so progress dominates), no survival bonus (it would pay for dawdling).

    Observation: the goal's and each hazard centre's (x, y) in the torso's heading frame, m.

    Args:
        robot: The legged robot.
        zones: The hazard zones shared with :class:`~taxbench.envs.costs.locomotion.HazardCost`.
        n_hazards: Number of zones.
        goal_distance: Start-to-goal distance, m.
        goal_radius: Arrival tolerance, m.
        goal_angle: Half-width of the goal's direction range, rad.
        progress_weight: Reward per m of progress.
        goal_bonus: Reward on arrival.
    """

    name = "hazard_goal"
    kind = "navigation"
    capability_metric = "success"  # what the tax is measured on

    def __init__(
        self,
        robot: LeggedRobot,
        zones: HazardZones,
        *,
        n_hazards: int = 3,
        goal_distance: float = 3.0,
        goal_radius: float = 0.5,
        goal_angle: float = np.pi / 4,
        progress_weight: float = 10.0,
        goal_bonus: float = 10.0,
    ) -> None:
        if n_hazards < 0 or goal_distance <= 0 or goal_radius <= 0 or zones.radius <= 0:
            raise ValueError("n_hazards must be >= 0 and distances/radii > 0")
        self.robot, self.zones, self.n_hazards = robot, zones, n_hazards
        self.goal_distance, self.goal_radius, self.goal_angle = goal_distance, goal_radius, goal_angle
        self.progress_weight, self.goal_bonus = progress_weight, goal_bonus
        self.weights = LocomotionWeights(forward=0.0, ctrl=0.05, contact=5e-4, terminate_when_unhealthy=True)
        self.reward_terms = ("progress", "goal", *locomotion_reward_names(self.weights))
        self.goal = np.array([goal_distance, 0.0])
        self.zones.centers = np.zeros((n_hazards, 2))
        self._distance = goal_distance

    def markers(self) -> Sequence[Marker]:
        """A flat disc for the goal and one per hazard zone."""
        goal = Marker("goal", "cylinder", (self.goal_radius, 0.005), _GOAL_RGBA)
        hazards = [
            Marker(f"hazard{i}", "cylinder", (self.zones.radius, 0.01), _HAZARD_RGBA) for i in range(self.n_hazards)
        ]
        return [goal, *hazards]

    def observation_size(self) -> int:
        """Goal (x, y) and each hazard's (x, y)."""
        return 2 + 2 * self.n_hazards

    def reset(self, sim: Sim, robot: LeggedRobot, rng: np.random.Generator) -> None:
        """Draw the goal direction and put the hazards across the path."""
        start = robot.root_position(sim)[:2]
        angle = rng.uniform(-self.goal_angle, self.goal_angle)
        direction = np.array([np.cos(angle), np.sin(angle)])
        normal = np.array([-direction[1], direction[0]])
        self.goal = start + self.goal_distance * direction
        fractions = (np.arange(self.n_hazards) + 1.0) / (self.n_hazards + 1.0)
        lateral = rng.uniform(-self.zones.radius, self.zones.radius, size=self.n_hazards)
        self.zones.centers = start + np.outer(fractions * self.goal_distance, direction) + np.outer(lateral, normal)
        sim.set_marker_position("goal", np.array([*self.goal, 0.005]))
        for i, center in enumerate(self.zones.centers):
            sim.set_marker_position(f"hazard{i}", np.array([*center, 0.01]))
        self._distance = float(np.linalg.norm(self.goal - start))

    def _heading_frame(self, sim: Sim, robot: LeggedRobot, points: np.ndarray) -> np.ndarray:
        xy = robot.root_position(sim)[:2]
        forward = sim.body_orientation(robot.root_body)[:2, 0]
        yaw = np.arctan2(forward[1], forward[0])
        rotation = np.array([[np.cos(yaw), np.sin(yaw)], [-np.sin(yaw), np.cos(yaw)]])
        return (np.atleast_2d(points) - xy) @ rotation.T

    def observation(self, sim: Sim, robot: LeggedRobot) -> np.ndarray:
        """Goal and hazard centres in the robot's heading frame, m."""
        points = np.vstack([self.goal[None, :], self.zones.centers])
        return self._heading_frame(sim, robot, points).ravel()

    def rewards(self, ctx: StepContext) -> dict[str, float]:
        """Progress toward the goal, arrival bonus, control and contact penalties."""
        distance = float(np.linalg.norm(self.goal - ctx.root_after[:2]))
        progress = self._distance - distance
        self._distance = distance
        arrived = distance < self.goal_radius
        return {
            "progress": self.progress_weight * progress,
            "goal": self.goal_bonus * float(arrived),
            **locomotion_rewards(ctx, self.weights, self.robot),
        }

    def is_success(self, sim: Sim, robot: LeggedRobot) -> bool:
        """The root is within ``goal_radius`` of the goal."""
        return bool(np.linalg.norm(self.goal - robot.root_position(sim)[:2]) < self.goal_radius)

    def is_terminated(self, sim: Sim, robot: LeggedRobot) -> bool:
        """Arrived, or fell."""
        return self.is_success(sim, robot) or not robot.is_healthy(sim)

    def info(self, ctx: StepContext) -> dict[str, float]:
        """Distance to the goal, m."""
        return {"goal_distance": float(np.linalg.norm(self.goal - ctx.root_after[:2]))}


# --------------------------------------------------------------------- many worlds at once, numpy or torch
# Pure functions of batched state (:mod:`taxbench.envs.core.arrays`): the MuJoCo Warp env computes AntHazard with
# them, and tests check them against the per-world methods above on the same states.
def hazard_depths(xy: Any, centers: Any, radius: float) -> Any:
    """:meth:`HazardZones.depth` of every world: deepest penetration into any of its zones, m, shape (N,).

    Args:
        xy: Root positions, m, shape (N, 2) (or (N, 3): the first two columns are used).
        centers: Each world's zone centres, m, shape (N, n, 2).
        radius: Zone radius, m.
    """
    xp = array_namespace(centers)
    return xp.row_max(radius - xp.norm(centers - xy[:, None, :2]))


def goal_distances(goal: Any, xy: Any) -> Any:
    """Distance from each world's root (N, 2+) to its goal (N, 2), m, shape (N,)."""
    return array_namespace(goal).norm(goal - xy[:, :2])


def heading_frame(xy: Any, forward: Any, points: Any) -> Any:
    """Points (N, k, 2) in each world's heading frame (origin at the root, x along its heading), m, shape (N, 2k).

    Args:
        xy: Root positions, m, shape (N, 2+).
        forward: The torso's x axis in the world, shape (N, 2+) (its horizontal part gives the heading).
        points: Points in the world, m, shape (N, k, 2).
    """
    xp = array_namespace(points)
    yaw = xp.atan2(forward[:, 1], forward[:, 0])
    cos, sin = xp.cos(yaw)[:, None], xp.sin(yaw)[:, None]
    relative = points - xy[:, None, :2]
    x, y = relative[..., 0], relative[..., 1]
    return xp.stack((cos * x + sin * y, cos * y - sin * x), axis=2).reshape(len(points), -1)


def hazard_layout(start: Any, angle: Any, lateral: Any, goal_distance: float) -> tuple[Any, Any]:
    """:meth:`HazardGoal.reset` of every world from its draws: ``(goal (N, 2), centers (N, n, 2))``, m.

    Args:
        start: Root positions at reset, m, shape (N, 2+).
        angle: Goal directions, rad, shape (N,) (drawn in ±``goal_angle``).
        lateral: Lateral offsets of the zones from the start-goal line, m, shape (N, n) (drawn in ±radius).
        goal_distance: Start-to-goal distance, m.
    """
    xp = array_namespace(angle)
    direction = xp.stack((xp.cos(angle), xp.sin(angle)), axis=1)
    normal = xp.stack((-direction[:, 1], direction[:, 0]), axis=1)
    n = lateral.shape[1]
    fractions = xp.constant((np.arange(n) + 1.0) / (n + 1.0), angle)
    along = (fractions * goal_distance)[None, :, None] * direction[:, None, :]
    centers = start[:, None, :2] + along + lateral[:, :, None] * normal[:, None, :]
    return start[:, :2] + goal_distance * direction, centers
