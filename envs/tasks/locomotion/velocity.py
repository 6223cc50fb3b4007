"""Run forward as fast as possible: Gymnasium v5's locomotion reward, with no success notion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from taxbench.envs.core.arrays import array_namespace
from taxbench.envs.core.components import StepContext
from taxbench.envs.core.numerics import clip
from taxbench.envs.core.sim_api import Marker, Sim
from taxbench.envs.robots.legged import LeggedRobot

if TYPE_CHECKING:
    from taxbench.envs.core.batch import BatchContext


@dataclass
class LocomotionWeights:
    """Reward weights of a Gymnasium v5 locomotion env.

    Attributes:
        forward: Reward per m/s of forward (x) root velocity, per step.
        ctrl: Penalty per unit of squared action norm, per step.
        healthy: Reward per step while the posture is healthy.
        contact: Penalty per unit of squared clipped external contact wrench (Ant-v5), per step.
        terminate_when_unhealthy: End the episode when the robot falls.
    """

    forward: float = 1.0
    ctrl: float = 0.1
    healthy: float = 0.0
    contact: float = 0.0
    terminate_when_unhealthy: bool = False


#: Gymnasium v5 defaults per robot (HalfCheetah-v5, Hopper-v5, Walker2d-v5, Ant-v5).
V5_WEIGHTS = {
    "half_cheetah": LocomotionWeights(ctrl=0.1),
    "hopper": LocomotionWeights(ctrl=1e-3, healthy=1.0, terminate_when_unhealthy=True),
    "walker2d": LocomotionWeights(ctrl=1e-3, healthy=1.0, terminate_when_unhealthy=True),
    "ant": LocomotionWeights(ctrl=0.5, healthy=1.0, contact=5e-4, terminate_when_unhealthy=True),
}


def locomotion_rewards(
    ctx: StepContext, weights: LocomotionWeights, robot: LeggedRobot, terms: dict[str, float] | None = None
) -> dict[str, float]:
    """Control, healthy and contact terms shared by every locomotion task, added to ``terms`` (a new dict if None).

    The task's own terms go first in ``terms``: the reward is summed in dict order. ``np.add.reduce`` is
    ``np.sum`` without its Python-level dispatch (the same values).
    """
    terms = {} if terms is None else terms
    terms["ctrl"] = -weights.ctrl * float(np.add.reduce(np.square(ctx.action)))
    if weights.healthy:
        terms["healthy"] = weights.healthy * float(robot.is_healthy(ctx.sim))
    if weights.contact:
        forces = clip(ctx.sim.external_forces(), -1.0, 1.0)
        terms["contact"] = -weights.contact * float(np.add.reduce(np.square(forces), axis=None))
    return terms


def locomotion_rewards_batch(
    ctx: BatchContext, weights: LocomotionWeights, robot: LeggedRobot, terms: dict[str, Any]
) -> dict[str, Any]:
    """:func:`locomotion_rewards` of ``N`` worlds, each term an array (N,); added to ``terms`` after the task's own.

    Numpy or torch, as ``ctx.qpos`` (:mod:`taxbench.envs.core.arrays`).
    """
    xp = array_namespace(ctx.qpos)
    terms["ctrl"] = -weights.ctrl * xp.sum_squares(ctx.action)
    if weights.healthy:
        terms["healthy"] = weights.healthy * xp.as_float(robot.healthy(ctx))
    if weights.contact:
        terms["contact"] = -weights.contact * xp.sum_squares(xp.clip(ctx.external_forces(), -1.0, 1.0))
    return terms


class RunForward:
    """Move along +x as fast as possible (the task of Gymnasium's locomotion envs).

    Reward terms (per step): ``forward`` = weight × root x velocity (m/s), ``ctrl`` = −weight × |a|²,
    and where the robot has them ``healthy`` and ``contact``. There is no goal, so ``is_success`` is
    always False and capability is measured by return.

    Args:
        robot: The legged robot (used for health checks).
        weights: Reward weights (Gymnasium v5's by default).
    """

    name = "run_forward"
    kind = "velocity"
    capability_metric = "return"  # what the tax is measured on

    def __init__(self, robot: LeggedRobot, weights: LocomotionWeights) -> None:
        self.robot, self.weights = robot, weights
        self.reward_terms = ("forward", *locomotion_reward_names(weights))

    def markers(self) -> Sequence[Marker]:
        """No scene elements."""
        return ()

    def observation_size(self) -> int:
        """No task observation."""
        return 0

    def reset(self, sim: Sim, robot: LeggedRobot, rng: np.random.Generator) -> None:
        """Nothing to place."""

    def observation(self, sim: Sim, robot: LeggedRobot) -> np.ndarray:
        """Empty."""
        return np.zeros(0)

    def rewards(self, ctx: StepContext) -> dict[str, float]:
        """Forward velocity reward plus the shared locomotion terms."""
        terms = {"forward": self.weights.forward * float(ctx.root_velocity[0])}
        return locomotion_rewards(ctx, self.weights, self.robot, terms)

    def is_success(self, sim: Sim, robot: LeggedRobot) -> bool:
        """Velocity tasks have no success state."""
        return False

    def is_terminated(self, sim: Sim, robot: LeggedRobot) -> bool:
        """The robot fell (when the weights ask to terminate on it)."""
        return self.weights.terminate_when_unhealthy and not robot.is_healthy(sim)

    def info(self, ctx: StepContext) -> dict[str, float]:
        """Root x position (m) and x velocity (m/s), as Gymnasium reports them."""
        return {"x_position": float(ctx.root_after[0]), "x_velocity": float(ctx.root_velocity[0])}

    # ----------------------------------------------------------------- many worlds at once (envs/core/batch.py)
    def rewards_batch(self, ctx: BatchContext) -> dict[str, Any]:
        """:meth:`rewards` of every world, each term an array (N,) (numpy or torch, as ``ctx.qpos``)."""
        terms = {"forward": self.weights.forward * ctx.root_velocity[:, 0]}
        return locomotion_rewards_batch(ctx, self.weights, self.robot, terms)

    def is_success_batch(self, ctx: BatchContext) -> Any:
        """All False, shape (N,)."""
        return array_namespace(ctx.qpos).false(ctx.qpos)

    def is_terminated_batch(self, ctx: BatchContext) -> Any:
        """:meth:`is_terminated` of every world, shape (N,) bool."""
        if not self.weights.terminate_when_unhealthy:
            return array_namespace(ctx.qpos).false(ctx.qpos)
        return ~self.robot.healthy(ctx)

    def info_batch(self, ctx: BatchContext) -> dict[str, Any]:
        """:meth:`info` of every world, each key an array (N,)."""
        return {"x_position": ctx.root_after[:, 0], "x_velocity": ctx.root_velocity[:, 0]}


def locomotion_reward_names(weights: LocomotionWeights) -> tuple[str, ...]:
    """Names of the shared terms :func:`locomotion_rewards` returns for these weights."""
    return ("ctrl",) + (("healthy",) if weights.healthy else ()) + (("contact",) if weights.contact else ())
