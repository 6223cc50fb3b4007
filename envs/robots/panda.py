"""Franka Emika Panda from ``pybullet_data`` with Cartesian TCP-velocity control, on PyBullet or MuJoCo.

Both backends load the same URDF (``pybullet_data/franka_panda/panda.urdf``, Apache-2.0, shipped with the
``pybullet`` wheel): PyBullet directly, MuJoCo through :func:`taxbench.envs.sim.mujoco_urdf.urdf_spec`, which
matches masses, inertias, joint ranges, effort limits and kinematics (grasp target to 1e-5 m). The fingers are
held closed (neither reach nor push needs the gripper). Each arm joint is a velocity servo capped at the
URDF effort (87 N·m joints 1-4, 12 N·m joints 5-7); the robot's controller turns a commanded TCP velocity
into joint velocities by damped least squares on the world Jacobian, keeping the hand pointing down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from gymnasium import spaces

from taxbench.envs.core.sim_api import BodySpec, CameraSpec, Marker, Sim

ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
TCP_BODY = "panda_grasptarget"
#: Arm posture at reset, rad (the neutral pose of panda-gym with joint 1 turned by -0.9 rad): TCP at
#: (0.40, -0.50, 0.20) m, hand pointing down.
HOME = np.array([-0.9, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79])
PHYSICS_TIMESTEP = {"mujoco": 0.002, "pybullet": 0.004}  # s; both give a 0.04 s control period
CONTROL_PERIOD = 0.04  # s (25 Hz)


def panda_urdf() -> Path:
    """Path of ``franka_panda/panda.urdf`` in the installed ``pybullet_data`` package."""
    path = Path(str(resources.files("pybullet_data") / "franka_panda" / "panda.urdf"))
    if not path.is_file():
        raise FileNotFoundError(f"pybullet_data does not ship the Panda URDF (looked at {path})")
    return path


@dataclass
class PandaRobot:
    """A fixed-base Panda whose action is a TCP velocity command.

    Action: 3 numbers in [-1, 1], the TCP velocity (x, y, z) in units of ``max_tcp_speed`` m/s (its norm is
    clipped to ``max_tcp_speed``); the TCP is kept inside ``workspace`` and the hand pointing down.

    Observation (20): joint positions (7, rad), joint velocities (7, rad/s), TCP position (3, m, world),
    TCP velocity (3, m/s, world).

    ``root_position`` is the TCP (``panda_grasptarget``), the point tasks and cost terms track.

    Attributes:
        bodies: Scene bodies (table, person, block) the world is built with.
        cameras: Fixed cameras for rendering.
        max_tcp_speed: TCP speed of a unit action, m/s.
        workspace: (low, high) corners of the box the TCP is kept in, m, shape (2, 3).
        reset_noise: Half-width of the uniform joint noise at reset, rad.
        orientation_gain: Gain of the hand-orientation correction, 1/s.
        posture_gain: Gain of the null-space pull toward ``HOME``, 1/s.
        damping: Damped-least-squares regulariser (m/s per rad/s).
        velocity_gain: MuJoCo velocity-servo gain, N·m·s/rad.
    """

    bodies: Sequence[BodySpec] = ()
    cameras: Sequence[CameraSpec] = ()
    max_tcp_speed: float = 0.5
    workspace: np.ndarray = field(default_factory=lambda: np.array([[0.2, -0.55, 0.02], [0.85, 0.65, 0.5]]))
    reset_noise: float = 0.02
    orientation_gain: float = 5.0
    posture_gain: float = 1.0
    damping: float = 0.05
    velocity_gain: float = 300.0
    name: str = "panda"
    root_body: str = TCP_BODY

    def __post_init__(self) -> None:
        if not np.isfinite(self.max_tcp_speed) or self.max_tcp_speed <= 0:
            raise ValueError(f"max_tcp_speed must be > 0 m/s, got {self.max_tcp_speed}")
        self.workspace = np.asarray(self.workspace, dtype=np.float64)
        self._down: np.ndarray | None = None

    def build_sim(self, markers: Sequence[Marker], backend: str) -> Sim:
        """The Panda, the scene bodies and markers on ``mujoco`` or ``pybullet`` (0.04 s control period)."""
        substeps = round(CONTROL_PERIOD / PHYSICS_TIMESTEP.get(backend, 1.0))
        if backend == "pybullet":
            from taxbench.envs.sim.pybullet_sim import PyBulletSim

            return PyBulletSim(
                panda_urdf(),
                timestep=PHYSICS_TIMESTEP[backend],
                substeps=substeps,
                velocity_joints=ARM_JOINTS,
                held_joints=dict.fromkeys(FINGER_JOINTS, 0.0),
                initial_positions=dict(zip(ARM_JOINTS, HOME, strict=True)),
                bodies=self.bodies,
                markers=markers,
                cameras=self.cameras,
            )
        if backend == "mujoco":
            from taxbench.envs.sim.mujoco_sim import MujocoSim
            from taxbench.envs.sim.mujoco_urdf import urdf_spec

            spec = urdf_spec(
                panda_urdf(),
                timestep=PHYSICS_TIMESTEP[backend],
                velocity_joints=ARM_JOINTS,
                velocity_gain=self.velocity_gain,
                removed_joints=FINGER_JOINTS,
                bodies=self.bodies,
                cameras=self.cameras,
            )
            return MujocoSim(spec, substeps, markers)
        raise ValueError(f"backend must be 'mujoco' or 'pybullet', got {backend!r}")

    def action_space(self, sim: Sim) -> spaces.Box:
        """TCP velocity command in units of ``max_tcp_speed``: Box(-1, 1, (3,))."""
        return spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)

    def tcp_command(self, sim: Sim, action: np.ndarray) -> np.ndarray:
        """The TCP velocity, m/s, an action asks for after the speed clip and the workspace clamp."""
        velocity = np.asarray(action, dtype=np.float64) * self.max_tcp_speed
        speed = float(np.linalg.norm(velocity))
        if speed > self.max_tcp_speed:
            velocity *= self.max_tcp_speed / speed
        tcp = sim.body_position(TCP_BODY)
        target = np.clip(tcp + velocity * sim.dt, self.workspace[0], self.workspace[1])
        return (target - tcp) / sim.dt

    def control(self, sim: Sim, action: np.ndarray) -> np.ndarray:
        """Joint velocity targets, rad/s, that move the TCP at the commanded velocity (damped least squares)."""
        if self._down is None:
            raise RuntimeError("reset the robot before controlling it")
        rotation = sim.body_orientation(TCP_BODY)
        # Small-angle orientation error between the hand's axes and the reference (hand pointing down).
        error = 0.5 * np.sum(np.cross(rotation.T, self._down.T), axis=0)
        twist = np.concatenate([self.tcp_command(sim, action), self.orientation_gain * error])
        jac = sim.jacobian(TCP_BODY, ARM_JOINTS)
        gram = jac @ jac.T + self.damping**2 * np.eye(6)
        qdot = jac.T @ np.linalg.solve(gram, twist)
        q = np.array([sim.joint_position(j)[0] for j in ARM_JOINTS])
        null = np.eye(7) - jac.T @ np.linalg.solve(gram, jac)
        qdot += null @ (self.posture_gain * (HOME - q))
        limits = sim.control_range()[:, 1]
        scale = float(np.max(np.abs(qdot) / limits))
        return qdot / scale if scale > 1.0 else qdot

    def reset(self, sim: Sim, rng: np.random.Generator) -> None:
        """Home posture plus uniform joint noise; the hand's orientation at home is the reference."""
        sim.set_joint_positions(ARM_JOINTS, HOME)
        if self._down is None:
            self._down = sim.body_orientation(TCP_BODY)
        sim.set_joint_positions(ARM_JOINTS, HOME + rng.uniform(-self.reset_noise, self.reset_noise, size=7))

    def observation(self, sim: Sim) -> np.ndarray:
        """Joint positions (7) and velocities (7), TCP position (3) and velocity (3)."""
        q = [sim.joint_position(j)[0] for j in ARM_JOINTS]
        qd = [sim.joint_velocity(j)[0] for j in ARM_JOINTS]
        return np.concatenate([q, qd, sim.body_position(TCP_BODY), sim.body_velocity(TCP_BODY)])

    def root_position(self, sim: Sim) -> np.ndarray:
        """The TCP position, m."""
        return sim.body_position(TCP_BODY)

    def is_healthy(self, sim: Sim) -> bool:
        """A fixed-base arm cannot fall."""
        return True
