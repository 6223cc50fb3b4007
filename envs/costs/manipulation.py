"""Cost terms of an arm working beside a person: TCP speed, contact force per body region, separation.

Every measurement is taken from named bodies through the :class:`~taxbench.envs.core.sim_api.Sim` adapter, so the
same terms run on MuJoCo and on PyBullet. The TCP is the robot's ``root_position`` (see
:class:`~taxbench.envs.robots.panda.PandaRobot`); its speed is the average over the control step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from taxbench.envs.core.components import CostTerm, Robot, StepContext
from taxbench.envs.core.sim_api import BodySpec, Contact, Sim
from taxbench.envs.costs.locomotion import JointLimitCost


def step_contacts(ctx: StepContext) -> list[Contact]:
    """The sim's contacts after this step, read once and shared by every term through ``ctx.cache``."""
    contacts = ctx.cache.get("contacts")
    if contacts is None:
        contacts = ctx.cache["contacts"] = ctx.sim.contacts()
    return contacts  # type: ignore[return-value]


def contact_force_on(contacts: Sequence[Contact], bodies: Sequence[str]) -> float:
    """Sum of normal forces, N, of the contacts between any of ``bodies`` and anything else."""
    names = set(bodies)
    return float(sum(c.normal_force for c in contacts if (c.body_a in names) != (c.body_b in names)))


def distance_to_boxes(point: np.ndarray, centers: np.ndarray, half_extents: np.ndarray) -> float:
    """Distance, m, from a point to the nearest of several axis-aligned boxes (0 inside one)."""
    outside = np.maximum(np.abs(point - centers) - half_extents, 0.0)
    return float(np.min(np.linalg.norm(outside, axis=1)))


@dataclass
class TcpSpeedCost(CostTerm):
    """TCP speed averaged over the control step, m/s (exact positions, so both engines measure alike)."""

    def measure(self, ctx: StepContext) -> float:
        """‖Δ TCP position‖ / dt, m/s."""
        return float(np.linalg.norm(ctx.root_velocity))


@dataclass
class RegionForceCost(CostTerm):
    """Contact force on one body region of the person, N, against its ISO/TS 15066 limits.

    The measure is the total normal force on the region's bodies at the end of the step. A step costs when
    the force has stayed above the quasi-static limit (``threshold``) for two consecutive control steps (a
    clamped, persisting contact), or when it exceeds ``transient_factor × threshold`` (a transient impact).
    With ``mode="excess"`` the cost is the larger of the two overshoots, N.

    Attributes:
        bodies: Names of the bodies forming the region.
        transient_factor: Transient limit as a multiple of the quasi-static one.
    """

    bodies: tuple[str, ...] = ()
    transient_factor: float = 2.0
    _previous: float = field(default=0.0, init=False, repr=False)
    _sustained: float = field(default=0.0, init=False, repr=False)

    def reset(self, sim: Sim, robot: Robot) -> None:
        """Forget the previous step's force."""
        self._previous = self._sustained = 0.0

    def measure(self, ctx: StepContext) -> float:
        """Normal contact force on the region now, N."""
        force = contact_force_on(step_contacts(ctx), self.bodies)
        self._sustained, self._previous = min(force, self._previous), force
        return force

    def cost(self, measure: float) -> float:
        """Indicator (or excess, N) of a sustained quasi-static or a transient overshoot."""
        excess = max(self._sustained - self.threshold, measure - self.transient_factor * self.threshold)
        if self.mode == "excess":
            return max(0.0, excess)
        return float(excess > 0.0)


@dataclass
class SeparationCost(CostTerm):
    """Separation margin, m: distance from the TCP to the person minus the protective separation distance.

    ``S_p = v_h·(T_r + T_s) + v_r·T_r + v_r·T_s/2 + C`` (ISO/TS 15066 §5.5.4 speed-and-separation form, the
    robot's stopping distance taken at constant deceleration), with ``v_r`` the TCP speed. The term is a lower
    bound: the step costs when the margin is below ``threshold`` (0 m). The person's parts are the given
    boxes, looked up by name so a moved person is followed.

    Attributes:
        parts: The person's bodies (boxes or other shapes, bounded by their axis-aligned boxes).
        human_speed: v_h, m/s.
        reaction_time: T_r, s.
        stopping_time: T_s, s.
        intrusion_distance: C, m.
    """

    parts: tuple[BodySpec, ...] = ()
    human_speed: float = 1.6
    reaction_time: float = 0.1
    stopping_time: float = 0.1
    intrusion_distance: float = 0.0
    upper: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        values = (self.human_speed, self.reaction_time, self.stopping_time, self.intrusion_distance)
        if min(values) < 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"separation parameters must be finite and >= 0, got {values}")
        self._half_extents = np.array([p.half_extents for p in self.parts]).reshape(-1, 3)

    def protective_distance(self, robot_speed: float) -> float:
        """S_p for a TCP speed in m/s, m."""
        return (
            self.human_speed * (self.reaction_time + self.stopping_time)
            + robot_speed * (self.reaction_time + 0.5 * self.stopping_time)
            + self.intrusion_distance
        )

    def distance(self, sim: Sim, point: np.ndarray) -> float:
        """Distance from a point to the nearest part of the person, m."""
        centers = np.array([sim.body_position(p.name) for p in self.parts])
        return distance_to_boxes(point, centers, self._half_extents)

    def measure(self, ctx: StepContext) -> float:
        """Distance to the person minus S_p at the step's TCP speed, m (negative: inside S_p)."""
        speed = float(np.linalg.norm(ctx.root_velocity))
        return self.distance(ctx.sim, ctx.root_after) - self.protective_distance(speed)


@dataclass
class ObjectForceCost(CostTerm):
    """Contact force on a fragile object, N, from anything it touches (it is static, so the table never pushes).

    Attributes:
        bodies: Names of the object's bodies.
    """

    bodies: tuple[str, ...] = ()

    def measure(self, ctx: StepContext) -> float:
        """Normal contact force on the object now, N."""
        return contact_force_on(step_contacts(ctx), self.bodies)


@dataclass
class SoftJointLimitCost(JointLimitCost):
    """Depth of the deepest joint past its soft limit, rad: ``margin`` inside each hard stop (negative: clear).

    Attributes:
        margin: Distance of the soft limit inside the hard range, rad (Panda URDF: 0.0698).
    """

    margin: float = 0.0698

    def measure(self, ctx: StepContext) -> float:
        """Max over joints of the depth past the soft limit, rad."""
        return super().measure(ctx) + self.margin
