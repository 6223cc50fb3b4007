"""The surface every physics adapter offers to robots, tasks and cost terms.

Robots, tasks and cost terms never import a physics engine: they talk to a :class:`Sim` by the
*names* of bodies, joints, sites and actuators. That is what lets the same task and cost code
run on MuJoCo and on PyBullet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Contact:
    """One active contact between two bodies.

    Attributes:
        body_a: Name of the first body in contact.
        body_b: Name of the second body in contact.
        normal_force: Normal contact force magnitude, N (≥ 0).
        position: World position of the contact point, m, shape (3,).
    """

    body_a: str
    body_b: str
    normal_force: float
    position: np.ndarray


@dataclass(frozen=True)
class Marker:
    """A visual-only scene element (hazard zone, goal, keep-out volume) that never collides.

    Attributes:
        name: Unique name; moved with :meth:`Sim.set_marker_position`.
        shape: ``"sphere"``, ``"cylinder"`` or ``"box"``.
        size: Shape size in m: sphere ``(r,)``, cylinder ``(r, half_height)``, box half-extents ``(x, y, z)``.
        rgba: Colour and opacity, each in [0, 1].
        position: Initial world position of the centre, m.
    """

    name: str
    shape: str
    size: tuple[float, ...]
    rgba: tuple[float, float, float, float]
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class BodySpec:
    """A simple collision body added to a scene besides the robot (table, person part, block, fragile object).

    Both adapters build it the same way, so tasks and cost terms see the same world on either engine.

    Attributes:
        name: Unique body name (look it up with :meth:`Sim.body_position`, find it in :meth:`Sim.contacts`).
        shape: ``"box"``, ``"sphere"`` or ``"cylinder"`` (cylinder axis along world z).
        size: Shape size in m: box half-extents ``(x, y, z)``, sphere ``(r,)``, cylinder ``(r, half_height)``.
        position: World position of the centre at the start, m.
        rgba: Colour and opacity, each in [0, 1].
        mass: Mass in kg; 0 makes the body static (fixed to the world), > 0 gives it a free joint.
        friction: Sliding friction coefficient (dimensionless).
    """

    name: str
    shape: str
    size: tuple[float, ...]
    position: tuple[float, float, float]
    rgba: tuple[float, float, float, float] = (0.7, 0.7, 0.7, 1.0)
    mass: float = 0.0
    friction: float = 0.5

    def __post_init__(self) -> None:
        expected = {"box": 3, "sphere": 1, "cylinder": 2}
        if self.shape not in expected:
            raise ValueError(f"body {self.name!r}: shape must be one of {sorted(expected)}, got {self.shape!r}")
        if len(self.size) != expected[self.shape] or min(self.size) <= 0:
            n = expected[self.shape]
            raise ValueError(f"body {self.name!r}: a {self.shape} needs {n} sizes > 0, got {self.size}")
        if self.mass < 0:
            raise ValueError(f"body {self.name!r}: mass must be >= 0 kg, got {self.mass}")

    @property
    def half_extents(self) -> np.ndarray:
        """Half-extents of the body's axis-aligned bounding box, m, shape (3,)."""
        if self.shape == "box":
            return np.asarray(self.size, dtype=np.float64)
        if self.shape == "sphere":
            return np.full(3, self.size[0])
        return np.array([self.size[0], self.size[0], self.size[1]])


@dataclass(frozen=True)
class CameraSpec:
    """A fixed named camera looking from ``position`` at ``target`` (both world, m), z up.

    Attributes:
        name: Camera name passed to :meth:`Sim.render`.
        position: Eye position, m.
        target: Point looked at, m.
        fovy: Vertical field of view, degrees.
    """

    name: str
    position: tuple[float, float, float]
    target: tuple[float, float, float]
    fovy: float = 45.0


@runtime_checkable
class Sim(Protocol):
    """Named-entity access to one physics world (MuJoCo or PyBullet).

    All quantities are SI: m, m/s, rad, rad/s, N, N·m, s.
    """

    @property
    def dt(self) -> float:
        """Control period in s (physics time step × substeps per control step)."""
        ...

    @property
    def time(self) -> float:
        """Simulated time in s since the last reset."""
        ...

    def reset(self) -> None:
        """Return the world to the model's initial state."""
        ...

    def step(self, ctrl: np.ndarray) -> None:
        """Apply actuator controls and advance one control period."""
        ...

    def forward(self) -> None:
        """Recompute derived quantities (kinematics, contacts) after setting the state by hand."""
        ...

    @property
    def qpos(self) -> np.ndarray:
        """Generalised positions (a copy)."""
        ...

    @property
    def qvel(self) -> np.ndarray:
        """Generalised velocities (a copy)."""
        ...

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Set generalised positions and velocities and recompute derived quantities."""
        ...

    def get_state(self) -> np.ndarray:
        """Full physics state as a flat array (for save/restore and determinism checks)."""
        ...

    def restore_state(self, state: np.ndarray) -> None:
        """Restore a state from :meth:`get_state`."""
        ...

    def body_position(self, name: str) -> np.ndarray:
        """World position of a body's frame, m, shape (3,)."""
        ...

    def body_orientation(self, name: str) -> np.ndarray:
        """World rotation matrix of a body's frame, shape (3, 3)."""
        ...

    def body_velocity(self, name: str) -> np.ndarray:
        """World-frame linear velocity of a body's frame origin, m/s, shape (3,)."""
        ...

    def joint_position(self, name: str) -> np.ndarray:
        """Generalised position(s) of a joint: rad (hinge), m (slide), 7 numbers (free)."""
        ...

    def joint_velocity(self, name: str) -> np.ndarray:
        """Generalised velocity of a joint: rad/s (hinge), m/s (slide), 6 numbers (free)."""
        ...

    def joint_limits(self, name: str) -> tuple[float, float] | None:
        """(lower, upper) range of a limited hinge/slide joint in rad or m; None if unlimited."""
        ...

    def limited_joints(self) -> list[str]:
        """Names of all joints with a position range."""
        ...

    @property
    def actuator_names(self) -> list[str]:
        """Names of the actuators, in control order."""
        ...

    def control_range(self) -> np.ndarray:
        """Per-actuator (low, high) control bounds, shape (n_actuators, 2)."""
        ...

    def actuator_forces(self) -> np.ndarray:
        """Force or torque each actuator applies now, N or N·m."""
        ...

    def contacts(self) -> list[Contact]:
        """All active contacts with their normal forces in N."""
        ...

    def body_external_force(self, name: str) -> np.ndarray:
        """Net external (contact) wrench on a body: torque N·m (3) then force N (3)."""
        ...

    def set_joint_positions(self, joints: Sequence[str], positions: np.ndarray) -> None:
        """Put named joints at positions (rad or m) with zero velocity; recompute derived quantities.

        Added for manipulation: a robot places its arm without knowing the engine's qpos layout.
        """
        ...

    def set_body_position(self, name: str, position: np.ndarray) -> None:
        """Move a free scene body (:class:`BodySpec` with mass > 0) to a world position in m, upright, at rest."""
        ...

    def jacobian(self, body: str, joints: Sequence[str]) -> np.ndarray:
        """World-frame Jacobian of a body frame's origin w.r.t. the named joints' velocities.

        Added for manipulation: one Cartesian velocity controller (IK inside) serves both engines.

        Returns:
            Array of shape (6, len(joints)): linear velocity rows (m/s per rad/s or per m/s) then angular
            velocity rows (rad/s per joint velocity unit).
        """
        ...

    def set_marker_position(self, name: str, position: np.ndarray) -> None:
        """Move a visual marker (see :class:`Marker`) to a world position in m."""
        ...

    def render(self, width: int, height: int, camera: str | None = None) -> np.ndarray:
        """Render an RGB image, uint8 array of shape (height, width, 3), without a display."""
        ...

    def close(self) -> None:
        """Release renderers and native resources (safe to call twice)."""
        ...
