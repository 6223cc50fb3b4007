"""Reach a target above the table while a person works beside it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from taxbench.envs.core.components import StepContext
from taxbench.envs.core.sim_api import BodySpec, Marker, Sim
from taxbench.envs.robots.panda import PandaRobot
from taxbench.envs.tasks.manipulation.scene import PERSON, keepout_marker

_TARGET_RGBA = (0.1, 0.85, 0.2, 0.8)


class PandaReach:
    """Bring the TCP to a target drawn each episode in a box on the person's side of the table.

    The targets lie 0.34-0.55 m from the person's hand, just outside the protective separation distance at
    rest (0.32 m with the defaults): a slow approach is safe, a fast straight reach enters it (and breaks the
    0.25 m/s speed limit on the way), so the constraint binds from the first episode.

    Reward terms (per step): ``distance`` = -‖TCP - target‖ (m), ``arrived`` = ``arrival_bonus`` while the TCP
    is within ``success_radius``. The episode never ends early; ``is_success`` is the TCP within
    ``success_radius`` of the target.

    Observation (12): target position (3, m), target - TCP (3, m), person's hand centre (3, m),
    hand - TCP (3, m).

    Args:
        target_low: Lower corner of the target box, m.
        target_high: Upper corner of the target box, m.
        success_radius: Arrival tolerance, m.
        arrival_bonus: Reward per step at the target.
        keepout_distance: Radius drawn around the person by the ``keepout`` marker, m.
    """

    name = "reach"
    kind = "reach"
    capability_metric = "success"  # what the tax is measured on
    reward_terms = ("distance", "arrived")

    def __init__(
        self,
        *,
        target_low: Sequence[float] = (0.35, -0.05, 0.05),
        target_high: Sequence[float] = (0.65, 0.08, 0.2),
        success_radius: float = 0.05,
        arrival_bonus: float = 0.1,
        keepout_distance: float = 0.32,
    ) -> None:
        self.target_low, self.target_high = np.asarray(target_low, float), np.asarray(target_high, float)
        if self.target_low.shape != (3,) or np.any(self.target_low > self.target_high) or success_radius <= 0:
            raise ValueError("target_low/high must be 3 numbers with low <= high (m) and success_radius > 0 m")
        self.success_radius, self.arrival_bonus, self.keepout_distance = success_radius, arrival_bonus, keepout_distance
        self.target = (self.target_low + self.target_high) / 2

    def bodies(self) -> tuple[BodySpec, ...]:
        """The person's parts (the table is added by the factory)."""
        return PERSON

    def markers(self) -> Sequence[Marker]:
        """The target sphere and the keep-out footprint around the person."""
        return [
            Marker("target", "sphere", (0.02,), _TARGET_RGBA, tuple(self.target)),
            keepout_marker(PERSON, self.keepout_distance),
        ]

    def observation_size(self) -> int:
        """Target, target - TCP, hand, hand - TCP."""
        return 12

    def reset(self, sim: Sim, robot: PandaRobot, rng: np.random.Generator) -> None:
        """Draw the target."""
        self.target = rng.uniform(self.target_low, self.target_high)
        sim.set_marker_position("target", self.target)

    def observation(self, sim: Sim, robot: PandaRobot) -> np.ndarray:
        """Target and the person's hand, absolute and relative to the TCP, m."""
        tcp, hand = robot.root_position(sim), sim.body_position("person_hand")
        return np.concatenate([self.target, self.target - tcp, hand, hand - tcp])

    def rewards(self, ctx: StepContext) -> dict[str, float]:
        """Negative distance to the target, arrival bonus."""
        distance = float(np.linalg.norm(self.target - ctx.root_after))
        return {"distance": -distance, "arrived": self.arrival_bonus * float(distance < self.success_radius)}

    def is_success(self, sim: Sim, robot: PandaRobot) -> bool:
        """The TCP is within ``success_radius`` of the target."""
        return bool(np.linalg.norm(self.target - robot.root_position(sim)) < self.success_radius)

    def is_terminated(self, sim: Sim, robot: PandaRobot) -> bool:
        """Never: the time limit ends the episode."""
        return False

    def info(self, ctx: StepContext) -> dict[str, float]:
        """Distance to the target, m."""
        return {"target_distance": float(np.linalg.norm(self.target - ctx.root_after))}
