"""PyBullet adapter: the only module of taxbench that imports ``pybullet``.

One fixed-base URDF robot plus simple collision bodies (:class:`~taxbench.envs.core.sim_api.BodySpec`) and
visual markers, in DIRECT mode (no display). Rendering uses the CPU TinyRenderer. Each instance owns its
own physics client, and ``deterministicOverlappingPairs=1`` makes clients in one process agree (NOTES.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from taxbench.envs.core.sim_api import BodySpec, CameraSpec, Contact, Marker


@contextlib.contextmanager
def _quiet_native_stdout() -> Iterator[None]:
    """Silence what PyBullet's C code prints on stdout (build time, ``argv[0]=``) so CLI tables stay clean."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture or a non-file stdout: nothing to silence
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            try:
                yield
            finally:
                with contextlib.suppress(OSError, AttributeError):
                    ctypes.CDLL("libc.so.6").fflush(None)
                os.dup2(saved, fd)
    finally:
        os.close(saved)


with _quiet_native_stdout():
    import pybullet
    from pybullet_utils.bullet_client import BulletClient

_MAX_RENDER_SIZE = (1920, 1080)
_GRAVITY = -9.81  # m/s²


class PyBulletSim:
    """A PyBullet world: one URDF robot with joint-velocity motors, scene bodies and markers.

    The actuators are the ``velocity_joints``: the control of each is a target joint velocity (rad/s or
    m/s), tracked by PyBullet's velocity motor with at most the URDF ``effort`` (N·m or N). Joints in
    ``held_joints`` are held at a fixed position by a position motor (e.g. closed fingers).

    Args:
        urdf_path: Robot URDF file.
        timestep: Physics time step, s.
        substeps: Physics steps per control step; the control period is ``timestep × substeps`` s.
        velocity_joints: Joints driven by velocity motors, in control order.
        held_joints: Joint name → position (rad or m) held by a position motor.
        initial_positions: Joint name → position at reset (others start at 0).
        bodies: Collision bodies added to the scene.
        markers: Visual-only scene elements.
        cameras: Fixed named cameras for :meth:`render`.
        base_position: World position of the robot's base, m.
    """

    def __init__(
        self,
        urdf_path: str | Path,
        *,
        timestep: float,
        substeps: int,
        velocity_joints: Sequence[str],
        held_joints: Mapping[str, float] | None = None,
        initial_positions: Mapping[str, float] | None = None,
        bodies: Sequence[BodySpec] = (),
        markers: Sequence[Marker] = (),
        cameras: Sequence[CameraSpec] = (),
        base_position: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> None:
        if substeps < 1 or timestep <= 0:
            raise ValueError(f"timestep must be > 0 s and substeps >= 1, got {timestep}, {substeps}")
        with _quiet_native_stdout():
            self.client = BulletClient(connection_mode=pybullet.DIRECT)
        pb = self.client
        pb.setPhysicsEngineParameter(fixedTimeStep=timestep, numSubSteps=0, deterministicOverlappingPairs=1)
        pb.setGravity(0.0, 0.0, _GRAVITY)
        self.timestep, self.substeps = float(timestep), int(substeps)
        self.robot = pb.loadURDF(str(urdf_path), basePosition=base_position, useFixedBase=True)
        self._links: dict[str, tuple[int, int]] = {pb.getBodyInfo(self.robot)[0].decode(): (self.robot, -1)}
        self._joints: dict[str, int] = {}
        self._movable: list[int] = []
        self._limits: dict[str, tuple[float, float]] = {}
        self._effort: dict[str, float] = {}
        self._max_velocity: dict[str, float] = {}
        for j in range(pb.getNumJoints(self.robot)):
            info = pb.getJointInfo(self.robot, j)
            name, jtype = info[1].decode(), info[2]
            self._links[info[12].decode()] = (self.robot, j)
            self._joints[name] = j
            if jtype in (pybullet.JOINT_REVOLUTE, pybullet.JOINT_PRISMATIC):
                self._movable.append(j)
                if info[8] < info[9]:
                    self._limits[name] = (float(info[8]), float(info[9]))
                self._effort[name], self._max_velocity[name] = float(info[10]), float(info[11])
        self._joint_names = {j: n for n, j in self._joints.items()}
        self._link_names = {idx: n for n, (_, idx) in self._links.items()}
        self._velocity_joints = [self._joint(n) for n in velocity_joints]
        self._actuator_names = list(velocity_joints)
        self._forces = [self._effort[n] for n in velocity_joints]
        self._held = {self._joint(n): float(q) for n, q in (held_joints or {}).items()}
        self._held_force = [self._effort[self._joint_names[j]] for j in self._held]
        self._dynamic: list[int] = []
        self._names_by_uid: dict[int, str] = {}
        for body in bodies:
            uid = self._add_body(body)
            self._links[body.name] = (uid, -1)
            self._names_by_uid[uid] = body.name
            if body.mass > 0:
                self._dynamic.append(uid)
        self._markers: dict[str, int] = {m.name: self._add_marker(m) for m in markers}
        self._cameras = {c.name: c for c in cameras}
        self._movable_index = {j: i for i, j in enumerate(self._movable)}
        self._time = 0.0
        start = {**(initial_positions or {}), **{self._joint_names[j]: q for j, q in self._held.items()}}
        for name, q in start.items():
            pb.resetJointState(self.robot, self._joint(name), q, 0.0)
        self._apply_held()
        self._initial_state = pb.saveState()
        self.init_qpos, self.init_qvel = self.qpos, self.qvel

    # ----------------------------------------------------------------- construction
    def _joint(self, name: str) -> int:
        try:
            return self._joints[name]
        except KeyError:
            raise KeyError(f"no joint named {name!r}; the robot has: {', '.join(self._joints)}") from None

    def _shape_kwargs(self, shape: str, size: Sequence[float]) -> dict:
        if shape == "box":
            return {"shapeType": pybullet.GEOM_BOX, "halfExtents": list(size)}
        if shape == "sphere":
            return {"shapeType": pybullet.GEOM_SPHERE, "radius": size[0]}
        if shape == "cylinder":
            length = 2 * size[1]
            return {"shapeType": pybullet.GEOM_CYLINDER, "radius": size[0], "height": length, "length": length}
        raise ValueError(f"shape must be box, sphere or cylinder, got {shape!r}")

    def _add_body(self, body: BodySpec) -> int:
        pb = self.client
        kwargs = self._shape_kwargs(body.shape, body.size)
        visual_kwargs = {k: v for k, v in kwargs.items() if k != "height"}
        collision_kwargs = {k: v for k, v in kwargs.items() if k != "length"}
        collision = pb.createCollisionShape(**collision_kwargs)
        visual = pb.createVisualShape(**visual_kwargs, rgbaColor=list(body.rgba))
        uid = pb.createMultiBody(
            baseMass=body.mass,
            baseCollisionShapeIndex=collision,
            baseVisualShapeIndex=visual,
            basePosition=list(body.position),
        )
        pb.changeDynamics(uid, -1, lateralFriction=body.friction)
        return uid

    def _add_marker(self, marker: Marker) -> int:
        pb = self.client
        kwargs = {k: v for k, v in self._shape_kwargs(marker.shape, marker.size).items() if k != "height"}
        visual = pb.createVisualShape(**kwargs, rgbaColor=list(marker.rgba))
        return pb.createMultiBody(
            baseMass=0.0, baseCollisionShapeIndex=-1, baseVisualShapeIndex=visual, basePosition=list(marker.position)
        )

    def _apply_held(self) -> None:
        if self._held:
            self.client.setJointMotorControlArray(
                self.robot,
                list(self._held),
                pybullet.POSITION_CONTROL,
                targetPositions=list(self._held.values()),
                forces=self._held_force,
            )

    def has_body(self, name: str) -> bool:
        """Whether the world has a body (robot link or scene body) of this name."""
        return name in self._links

    # ----------------------------------------------------------------- stepping
    @property
    def dt(self) -> float:
        """Control period in s."""
        return self.timestep * self.substeps

    @property
    def time(self) -> float:
        """Simulated time in s since the last reset."""
        return self._time

    def reset(self) -> None:
        """Restore the state saved at construction (contact caches included)."""
        self.client.restoreState(self._initial_state)
        self.client.setJointMotorControlArray(
            self.robot,
            self._velocity_joints,
            pybullet.VELOCITY_CONTROL,
            targetVelocities=[0.0] * len(self._velocity_joints),
            forces=self._forces,
        )
        self._apply_held()
        self._time = 0.0

    def step(self, ctrl: np.ndarray) -> None:
        """Set the velocity motors' targets (rad/s or m/s) and advance ``substeps`` physics steps."""
        self.client.setJointMotorControlArray(
            self.robot,
            self._velocity_joints,
            pybullet.VELOCITY_CONTROL,
            targetVelocities=np.asarray(ctrl, dtype=np.float64).tolist(),
            forces=self._forces,
        )
        for _ in range(self.substeps):
            self.client.stepSimulation()
        self._time += self.dt

    def forward(self) -> None:
        """Recompute contacts for the current state (kinematics are always current in PyBullet)."""
        self.client.performCollisionDetection()

    @property
    def qpos(self) -> np.ndarray:
        """Robot joint positions (movable joints, URDF order), then each dynamic body's position and wxyz quaternion."""
        states = self.client.getJointStates(self.robot, self._movable)
        parts = [np.array([s[0] for s in states])]
        for uid in self._dynamic:
            pos, (x, y, z, w) = self.client.getBasePositionAndOrientation(uid)
            parts.append(np.array([*pos, w, x, y, z]))
        return np.concatenate(parts)

    @property
    def qvel(self) -> np.ndarray:
        """Robot joint velocities, then each dynamic body's linear and angular velocity."""
        states = self.client.getJointStates(self.robot, self._movable)
        parts = [np.array([s[1] for s in states])]
        for uid in self._dynamic:
            linear, angular = self.client.getBaseVelocity(uid)
            parts.append(np.array([*linear, *angular]))
        return np.concatenate(parts)

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Set joint and dynamic-body states (layout of :attr:`qpos` / :attr:`qvel`)."""
        pb, n = self.client, len(self._movable)
        for i, j in enumerate(self._movable):
            pb.resetJointState(self.robot, j, float(qpos[i]), float(qvel[i]))
        for k, uid in enumerate(self._dynamic):
            p, v = qpos[n + 7 * k : n + 7 * k + 7], qvel[n + 6 * k : n + 6 * k + 6]
            pb.resetBasePositionAndOrientation(uid, p[:3].tolist(), [p[4], p[5], p[6], p[3]])
            pb.resetBaseVelocity(uid, v[:3].tolist(), v[3:].tolist())
        self.forward()

    def get_state(self) -> np.ndarray:
        """``[time, qpos, qvel]`` as one flat array."""
        return np.concatenate([[self._time], self.qpos, self.qvel])

    def restore_state(self, state: np.ndarray) -> None:
        """Restore a state from :meth:`get_state` (solver caches are not part of it: see :meth:`exact_state`)."""
        state = np.asarray(state, dtype=np.float64)
        nq = self.init_qpos.size
        self._time = float(state[0])
        self.set_state(state[1 : 1 + nq], state[1 + nq :])

    def exact_state(self) -> np.ndarray:
        """PyBullet's own serialisation of the world (``saveBullet``), zlib-compressed, as a uint8 array.

        Beside positions and velocities it holds what :meth:`get_state` lacks and the next steps depend on: the
        contact manifolds that warm-start the solver. Restoring only positions and velocities of a Panda pushing a
        cube drifts by 0.18 in the observation within 200 steps; restoring this continues bit for bit
        (``tests/envs/manipulation/test_panda_backends.py``). About 40 kB per Panda world.
        """
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "world.bullet"
            self.client.saveBullet(str(path))
            return np.frombuffer(zlib.compress(path.read_bytes(), 6), dtype=np.uint8).copy()

    def restore_exact_state(self, state: np.ndarray, exact: np.ndarray) -> bool:
        """Restore ``state`` (:meth:`get_state`) with the solver caches of ``exact`` (:meth:`exact_state`).

        PyBullet refuses a file with other bodies but may read a damaged one without complaint, so the restored
        world is also checked against ``state`` bit for bit.

        Returns:
            True when ``exact`` landed on ``state``; otherwise (another scene, a damaged blob) False, and ``state``
            is restored as :meth:`restore_state` does.
        """
        state = np.asarray(state, dtype=np.float64)
        self.reset()
        try:
            blob = zlib.decompress(np.asarray(exact, dtype=np.uint8).tobytes())
        except zlib.error:
            blob = None
        if blob is not None:
            with tempfile.TemporaryDirectory() as folder, _quiet_native_stdout():
                path = Path(folder) / "world.bullet"
                path.write_bytes(blob)
                try:
                    self.client.restoreState(fileName=str(path))
                    restored = True
                except pybullet.error:  # another scene: PyBullet counts the bodies; a damaged file may pass
                    restored = False
            self._time = float(state[0])
            if restored and self.get_state().tobytes() == state.tobytes():
                return True
        self.restore_state(state)
        return False

    # ----------------------------------------------------------------- bodies and joints
    def _link(self, name: str) -> tuple[int, int]:
        try:
            return self._links[name]
        except KeyError:
            raise KeyError(f"no body named {name!r}; the world has: {', '.join(self._links)}") from None

    def _frame(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        uid, link = self._link(name)
        if link < 0:
            pos, quat = self.client.getBasePositionAndOrientation(uid)
        else:
            state = self.client.getLinkState(uid, link, computeForwardKinematics=1)
            pos, quat = state[4], state[5]
        matrix = self.client.getMatrixFromQuaternion(quat)
        # built row by row so the array owns its memory: a reshaped view is what a resume state treats as an alias
        return np.array(pos), np.array([matrix[0:3], matrix[3:6], matrix[6:9]])

    def body_position(self, name: str) -> np.ndarray:
        """World position of the body frame (URDF link frame), m."""
        return self._frame(name)[0]

    def body_orientation(self, name: str) -> np.ndarray:
        """World rotation matrix of the body frame."""
        return self._frame(name)[1]

    def body_velocity(self, name: str) -> np.ndarray:
        """World-frame linear velocity of the body frame's origin, m/s."""
        uid, link = self._link(name)
        if link < 0:
            return np.array(self.client.getBaseVelocity(uid)[0])
        state = self.client.getLinkState(uid, link, computeLinkVelocity=1, computeForwardKinematics=1)
        com, frame = np.array(state[0]), np.array(state[4])
        return np.array(state[6]) + np.cross(np.array(state[7]), frame - com)

    def joint_position(self, name: str) -> np.ndarray:
        """Position of a joint, rad or m, shape (1,)."""
        return np.array([self.client.getJointState(self.robot, self._joint(name))[0]])

    def joint_velocity(self, name: str) -> np.ndarray:
        """Velocity of a joint, rad/s or m/s, shape (1,)."""
        return np.array([self.client.getJointState(self.robot, self._joint(name))[1]])

    def joint_limits(self, name: str) -> tuple[float, float] | None:
        """(lower, upper) URDF range of a joint, rad or m; None if unlimited."""
        self._joint(name)
        return self._limits.get(name)

    def limited_joints(self) -> list[str]:
        """Names of the joints with a URDF range."""
        return list(self._limits)

    def set_joint_positions(self, joints: Sequence[str], positions: np.ndarray) -> None:
        """Put named robot joints at positions (rad or m) with zero velocity."""
        for name, value in zip(joints, np.asarray(positions, dtype=np.float64), strict=True):
            self.client.resetJointState(self.robot, self._joint(name), float(value), 0.0)
        self.forward()

    def set_body_position(self, name: str, position: np.ndarray) -> None:
        """Move a free scene body to a position in m, upright and at rest."""
        uid, _ = self._link(name)
        if uid not in self._dynamic:
            raise ValueError(f"{name!r} is not a free body")
        self.client.resetBasePositionAndOrientation(uid, np.asarray(position, dtype=np.float64).tolist(), (0, 0, 0, 1))
        self.client.resetBaseVelocity(uid, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
        self.forward()

    def jacobian(self, body: str, joints: Sequence[str]) -> np.ndarray:
        """World-frame Jacobian (6, len(joints)) of a robot link frame's origin (``calculateJacobian``)."""
        uid, link = self._link(body)
        if uid != self.robot or link < 0:
            raise ValueError(f"jacobian needs a moving robot link, got {body!r}")
        pb = self.client
        state = pb.getLinkState(uid, link, computeForwardKinematics=1)
        com_pos, com_quat = state[0], state[1]
        inv_pos, inv_quat = pb.invertTransform(com_pos, com_quat)
        local, _ = pb.multiplyTransforms(inv_pos, inv_quat, state[4], (0.0, 0.0, 0.0, 1.0))
        q = [s[0] for s in pb.getJointStates(uid, self._movable)]
        zeros = [0.0] * len(q)
        linear, angular = pb.calculateJacobian(uid, link, list(local), q, zeros, zeros)
        columns = [self._movable_index[self._joint(n)] for n in joints]
        return np.vstack([np.asarray(linear)[:, columns], np.asarray(angular)[:, columns]])

    # ----------------------------------------------------------------- actuators and contacts
    @property
    def actuator_names(self) -> list[str]:
        """Velocity-motor names (their joints' names), in control order."""
        return list(self._actuator_names)

    def control_range(self) -> np.ndarray:
        """Per-motor (low, high) target velocity: ± the URDF velocity limit, rad/s or m/s."""
        limits = np.array([self._max_velocity[n] for n in self._actuator_names])
        return np.stack([-limits, limits], axis=1)

    def actuator_forces(self) -> np.ndarray:
        """Torque (N·m) or force (N) each velocity motor applied in the last physics step."""
        return np.array([s[3] for s in self.client.getJointStates(self.robot, self._velocity_joints)])

    def _body_name(self, uid: int, link: int) -> str:
        if uid == self.robot:
            return self._link_names[link]
        return self._names_by_uid.get(uid, f"body{uid}")

    def contacts(self) -> list[Contact]:
        """Active contact points with their normal forces (``getContactPoints``), N."""
        return [
            Contact(
                body_a=self._body_name(c[1], c[3]),
                body_b=self._body_name(c[2], c[4]),
                normal_force=float(c[9]),
                position=np.array(c[5]),
            )
            for c in self.client.getContactPoints()
        ]

    def body_external_force(self, name: str) -> np.ndarray:
        """Net contact force on a body (torque part not computed: zeros), N."""
        uid, link = self._link(name)
        total = np.zeros(6)
        for c in self.client.getContactPoints(bodyA=uid, linkIndexA=link):
            total[3:] += c[9] * np.array(c[7])
        for c in self.client.getContactPoints(bodyB=uid, linkIndexB=link):
            total[3:] -= c[9] * np.array(c[7])
        return total

    def set_marker_position(self, name: str, position: np.ndarray) -> None:
        """Move a visual marker, m."""
        if name not in self._markers:
            raise KeyError(f"no marker named {name!r}; the scene has: {', '.join(self._markers)}")
        self.client.resetBasePositionAndOrientation(self._markers[name], np.asarray(position).tolist(), (0, 0, 0, 1))

    # ----------------------------------------------------------------- rendering
    def render(self, width: int, height: int, camera: str | None = None) -> np.ndarray:
        """RGB image (height, width, 3) uint8 from a named camera (the first one if None), TinyRenderer."""
        if not (0 < width <= _MAX_RENDER_SIZE[0] and 0 < height <= _MAX_RENDER_SIZE[1]):
            raise ValueError(f"render size must be within 1..{_MAX_RENDER_SIZE}, got {(width, height)}")
        if not self._cameras:
            raise ValueError("this world has no camera to render from")
        if camera is not None and camera not in self._cameras:
            raise KeyError(f"no camera named {camera!r}; the scene has: {', '.join(self._cameras)}")
        cam = self._cameras[camera] if camera is not None else next(iter(self._cameras.values()))
        view = self.client.computeViewMatrix(cam.position, cam.target, (0.0, 0.0, 1.0))
        projection = self.client.computeProjectionMatrixFOV(cam.fovy, width / height, 0.01, 20.0)
        image = self.client.getCameraImage(width, height, view, projection, renderer=pybullet.ER_TINY_RENDERER)[2]
        frame = np.asarray(image, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()
        return _paint_arrows(frame, self._arrows, view, projection)  # rollout overlay (see draw_arrows)

    # ----------------------------------------------------------------- overlays (rollout videos)
    _arrows: tuple = ()

    def draw_arrows(self, arrows: Sequence[tuple[np.ndarray, np.ndarray, Sequence[float]]]) -> None:
        """Draw arrows ``(start m, vector m, rgba)`` in every following render until replaced; ``()`` clears.

        TinyRenderer ignores debug lines, so arrows are projected with the camera matrices and painted in 2-D.
        """
        self._arrows = tuple(
            (np.asarray(a, float).reshape(3), np.asarray(v, float).reshape(3), np.asarray(c, float).reshape(4))
            for a, v, c in arrows
        )

    def contact_force_vectors(self) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
        """``(body_a, body_b, world point m, contact force on body_b N)`` for each contact point."""
        return [
            (self._body_name(c[1], c[3]), self._body_name(c[2], c[4]), np.array(c[6]), -float(c[9]) * np.array(c[7]))
            for c in self.client.getContactPoints()
        ]

    def close(self) -> None:
        """Disconnect the physics client (idempotent)."""
        if getattr(self, "client", None) is not None:
            try:
                self.client.disconnect()
            except pybullet.error:
                pass
            self.client = None  # type: ignore[assignment]


def _paint_arrows(
    frame: np.ndarray, arrows: Sequence[tuple], view: Sequence[float], projection: Sequence[float]
) -> np.ndarray:
    """Paint 3-D arrows (start m, vector m, rgba) into an image rendered with these OpenGL matrices."""
    if not arrows:
        return frame
    height, width = frame.shape[:2]
    clip = np.asarray(projection).reshape(4, 4).T @ np.asarray(view).reshape(4, 4).T
    thickness = max(1, round(min(height, width) / 120))

    def pixel(point: np.ndarray) -> np.ndarray | None:
        x = clip @ np.append(point, 1.0)
        return None if x[3] <= 1e-6 else np.array([(x[0] / x[3] + 1) * width / 2, (1 - x[1] / x[3]) * height / 2])

    for start, vector, rgba in arrows:
        a, b = pixel(start), pixel(start + vector)
        if a is None or b is None:
            continue
        side = np.array([-(b - a)[1], (b - a)[0]]) * 0.25
        for p, q in ((a, b), (b, b - (b - a) * 0.3 + side), (b, b - (b - a) * 0.3 - side)):  # shaft, two barbs
            n = int(np.linalg.norm(q - p)) + 2
            for x, y in np.linspace(p, q, n).round().astype(int):
                frame[max(0, y - thickness) : y + thickness + 1, max(0, x - thickness) : x + thickness + 1] = (
                    np.asarray(rgba[:3]) * 255
                ).astype(np.uint8)
    return frame
