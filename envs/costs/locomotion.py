"""Cost terms of legged robots: speed, falls, flips, joint stops and hazard zones."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from taxbench.envs.core.arrays import array_namespace
from taxbench.envs.core.components import CostTerm, Robot, StepContext
from taxbench.envs.core.sim_api import Sim

if TYPE_CHECKING:
    from taxbench.envs.core.batch import BatchContext


@dataclass
class VelocityCost(CostTerm):
    """Root velocity over the step, m/s, against a limit (Safety-Gymnasium v1 semantics).

    Planar robots (``planar=True``) measure the signed forward velocity along x: running backward
    never costs, exactly as Safety-Gymnasium's HalfCheetah/Hopper/Walker2d velocity tasks. Other
    robots measure the horizontal speed ``sqrt(vx² + vy²)`` (Safety-Gymnasium's Ant), so moving fast
    in any direction costs.
    """

    planar: bool = True

    def measure(self, ctx: StepContext) -> float:
        """Forward velocity (planar) or horizontal speed, m/s."""
        velocity = ctx.root_velocity
        if self.planar:
            return float(velocity[0])
        return math.hypot(velocity[0], velocity[1])

    def measure_batch(self, ctx: BatchContext) -> Any:
        """:meth:`measure` of every world, m/s, shape (N,) (numpy or torch, as ``ctx.qpos``)."""
        velocity = ctx.root_velocity
        if self.planar:
            return velocity[:, 0]
        return array_namespace(velocity).hypot(velocity[:, 0], velocity[:, 1])


@dataclass
class FallCost(CostTerm):
    """Torso height, m, against the lowest healthy height (a lower bound: violated below it)."""

    upper: bool = False

    def measure(self, ctx: StepContext) -> float:
        """Root height above the ground, m."""
        return float(ctx.robot.root_position(ctx.sim)[2])

    def measure_batch(self, ctx: BatchContext) -> Any:
        """:meth:`measure` of every world, m, shape (N,) (numpy or torch, as ``ctx.qpos``)."""
        return ctx.root_after[:, 2]


@dataclass
class FlipCost(CostTerm):
    """Angle between the torso's up axis and the world's, rad; above 90° the robot is on its back."""

    def measure(self, ctx: StepContext) -> float:
        """Torso tilt, rad (0 upright, π upside down)."""
        up = ctx.sim.body_orientation(ctx.robot.root_body)[:, 2]
        return float(np.arccos(np.clip(up[2], -1.0, 1.0)))

    def measure_batch(self, ctx: BatchContext) -> Any:
        """:meth:`measure` of every world, rad, shape (N,) (numpy or torch, as ``ctx.qpos``)."""
        up_z = ctx.body_rotations(ctx.robot.root_body)[:, 2, 2]
        xp = array_namespace(up_z)
        return xp.arccos(xp.clip(up_z, -1.0, 1.0))


@dataclass
class JointLimitCost(CostTerm):
    """How far the deepest joint is past its hard stop, rad (negative: clearance to the nearest stop).

    MuJoCo joint limits are soft constraints: a joint driven into its stop penetrates slightly,
    and that is the event this term counts (hitting the mechanical stop under load).

    Attributes:
        joints: Joints to watch; empty means every limited hinge/slide joint of the model.
    """

    joints: tuple[str, ...] = ()
    _ranges: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), init=False, repr=False)
    _names: tuple[str, ...] = field(default=(), init=False, repr=False)

    def reset(self, sim: Sim, robot: Robot) -> None:
        """Look the joint ranges up once per episode."""
        names = self.joints or tuple(sim.limited_joints())
        if names != self._names:
            ranges = [sim.joint_limits(n) for n in names]
            missing = [n for n, r in zip(names, ranges, strict=True) if r is None]
            if missing:
                raise ValueError(f"joints without limits cannot be costed: {missing}")
            self._names, self._ranges = names, np.array(ranges, dtype=np.float64)

    def _ensure_ranges(self, sim: Sim, robot: Robot) -> None:
        if not self._names:
            self.reset(sim, robot)
            if not self._names:
                raise ValueError("the model has no limited joints to cost")

    def measure(self, ctx: StepContext) -> float:
        """Max over joints of max(q − upper, lower − q), rad."""
        self._ensure_ranges(ctx.sim, ctx.robot)
        q = np.array([ctx.sim.joint_position(n)[0] for n in self._names])
        return float(np.max(np.maximum(q - self._ranges[:, 1], self._ranges[:, 0] - q)))

    def measure_batch(self, ctx: BatchContext) -> Any:
        """:meth:`measure` of every world (alike models), rad, shape (N,) (numpy or torch, as ``ctx.qpos``)."""
        sim = ctx.sims[0]
        self._ensure_ranges(sim, ctx.robot)
        columns = [sim.joint_qpos_slice(n).start for n in self._names]  # type: ignore[attr-defined]
        q = ctx.qpos[:, columns]
        xp = array_namespace(q)
        ranges = xp.constant(self._ranges, q)
        return xp.row_max(xp.maximum(q - ranges[:, 1], ranges[:, 0] - q))


@dataclass
class HazardZones:
    """Circular hazard zones on the ground, shared by the task (placement) and the cost term.

    Attributes:
        radius: Zone radius, m.
        centers: Zone centres (x, y), m, shape (n, 2); the task sets them at reset.
    """

    radius: float
    centers: np.ndarray

    def depth(self, xy: np.ndarray) -> float:
        """Deepest penetration into any zone, m (negative: distance to the nearest zone's edge)."""
        distances = np.linalg.norm(self.centers - xy[:2], axis=1)
        return float(np.max(self.radius - distances))


@dataclass
class HazardCost(CostTerm):
    """Depth of the robot's root inside the nearest hazard zone, m; any depth > 0 violates."""

    zones: HazardZones | None = None

    def measure(self, ctx: StepContext) -> float:
        """Penetration depth into the deepest zone, m (negative outside every zone)."""
        if self.zones is None:
            raise ValueError("HazardCost needs the task's HazardZones")
        return self.zones.depth(ctx.root_after)


def select_terms(
    terms: Sequence[CostTerm], names: Sequence[str] | None, mode: str = "indicator"
) -> tuple[CostTerm, ...]:
    """Keep the terms named in ``names`` (all if None) and give them the cost ``mode`` (indicator or excess).

    Raises:
        ValueError: an unknown term name or mode.
    """
    if mode not in ("indicator", "excess"):
        raise ValueError(f"cost_mode must be 'indicator' or 'excess', got {mode!r}")
    available = {t.name: t for t in terms}
    unknown = [n for n in (names or ()) if n not in available]
    if unknown:
        raise ValueError(f"unknown cost terms {unknown}; this env has {sorted(available)}")
    selected = tuple(terms) if names is None else tuple(available[n] for n in names)
    for term in selected:
        term.mode = mode
    return selected
