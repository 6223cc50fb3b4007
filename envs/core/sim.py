"""The surface every physics adapter offers to robots, tasks and cost terms.

Robots, tasks and cost terms never import a physics engine: they talk to a :class:`Sim` by the
*names* of bodies, joints, sites and actuators. That is what lets the same task and cost code
run on MuJoCo and on PyBullet.
"""

from __future__ import annotations

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

    def set_marker_position(self, name: str, position: np.ndarray) -> None:
        """Move a visual marker (see :class:`Marker`) to a world position in m."""
        ...

    def render(self, width: int, height: int, camera: str | None = None) -> np.ndarray:
        """Render an RGB image, uint8 array of shape (height, width, 3), without a display."""
        ...

    def close(self) -> None:
        """Release renderers and native resources (safe to call twice)."""
        ...
