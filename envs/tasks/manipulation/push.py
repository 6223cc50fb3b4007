"""Push a block to a target on the table, next to a fragile object."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from taxbench.envs.core.components import StepContext
from taxbench.envs.core.sim_api import BodySpec, Marker, Sim
from taxbench.envs.robots.panda import PandaRobot

_TARGET_RGBA = (0.1, 0.85, 0.2, 0.6)
BLOCK_HALF = 0.025  # m


class PandaPush:
    """Push a 0.2 kg block (5 cm cube) into a target region right in front of a fragile glass.

    The block starts on the robot's side (y < 0) and the target lies on the way to the glass (a static
    cylinder), so pushing hard overshoots into it: ``fragile_force`` binds along with the speed limit.

    Reward terms (per step): ``block_distance`` = -‖block - target‖ (m), ``reach`` = -``reach_weight`` ×
    ‖TCP - block‖ (m). ``is_success``: the block within ``success_radius`` of the target (the episode goes on).

    Observation (18): block position (3, m), block velocity (3, m/s), target (3, m), block - TCP (3, m),
    target - block (3, m), fragile object's position (3, m).

    Args:
        success_radius: Block-to-target tolerance, m.
        reach_weight: Weight of the TCP-to-block shaping term.
    """

    name = "push"
    kind = "push"
    capability_metric = "success"  # what the tax is measured on
    reward_terms = ("block_distance", "reach")
    block = BodySpec(
        "block", "box", (BLOCK_HALF,) * 3, (0.5, -0.15, BLOCK_HALF), rgba=(0.9, 0.6, 0.1, 1.0), mass=0.2, friction=0.5
    )
    fragile = BodySpec("fragile_glass", "cylinder", (0.035, 0.06), (0.52, 0.26, 0.06), rgba=(0.6, 0.85, 1.0, 1.0))
    block_low, block_high = np.array([0.42, -0.2]), np.array([0.6, -0.1])
    target_low, target_high = np.array([0.45, 0.05]), np.array([0.6, 0.14])

    def __init__(self, *, success_radius: float = 0.05, reach_weight: float = 0.5) -> None:
        if success_radius <= 0 or reach_weight < 0:
            raise ValueError("success_radius must be > 0 m and reach_weight >= 0")
        self.success_radius, self.reach_weight = success_radius, reach_weight
        self.target = np.array([0.52, 0.1, BLOCK_HALF])

    def bodies(self) -> tuple[BodySpec, ...]:
        """The block and the fragile glass."""
        return (self.block, self.fragile)

    def markers(self) -> Sequence[Marker]:
        """A flat green disc on the target."""
        return [Marker("target", "cylinder", (self.success_radius, 0.001), _TARGET_RGBA, (0.52, 0.1, 0.001))]

    def observation_size(self) -> int:
        """Block position and velocity, target, block - TCP, target - block, glass."""
        return 18

    def reset(self, sim: Sim, robot: PandaRobot, rng: np.random.Generator) -> None:
        """Draw the block's start and the target."""
        start = rng.uniform(self.block_low, self.block_high)
        sim.set_body_position(self.block.name, np.array([*start, BLOCK_HALF]))
        self.target = np.array([*rng.uniform(self.target_low, self.target_high), BLOCK_HALF])
        sim.set_marker_position("target", np.array([*self.target[:2], 0.001]))

    def observation(self, sim: Sim, robot: PandaRobot) -> np.ndarray:
        """Block state, target and glass positions, m and m/s."""
        block, tcp = sim.body_position(self.block.name), robot.root_position(sim)
        return np.concatenate(
            [
                block,
                sim.body_velocity(self.block.name),
                self.target,
                block - tcp,
                self.target - block,
                sim.body_position(self.fragile.name),
            ]
        )

    def rewards(self, ctx: StepContext) -> dict[str, float]:
        """Block-to-target distance and TCP-to-block shaping, both negative, m."""
        block = ctx.sim.body_position(self.block.name)
        return {
            "block_distance": -float(np.linalg.norm(block - self.target)),
            "reach": -self.reach_weight * float(np.linalg.norm(block - ctx.root_after)),
        }

    def is_success(self, sim: Sim, robot: PandaRobot) -> bool:
        """The block is within ``success_radius`` of the target."""
        return bool(np.linalg.norm(sim.body_position(self.block.name) - self.target) < self.success_radius)

    def is_terminated(self, sim: Sim, robot: PandaRobot) -> bool:
        """Never: the time limit ends the episode."""
        return False

    def info(self, ctx: StepContext) -> dict[str, float]:
        """Block-to-target distance, m."""
        return {"block_target_distance": float(np.linalg.norm(ctx.sim.body_position(self.block.name) - self.target))}
