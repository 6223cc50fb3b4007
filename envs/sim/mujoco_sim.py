"""MuJoCo adapter: the only module of taxbench that imports ``mujoco``.

Rendering is headless: without a display, ``MUJOCO_GL`` defaults to ``egl`` (set it to
``osmesa`` for software rendering) before MuJoCo is first imported.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco
import numpy as np

from taxbench.envs.core.sim_api import Contact, Marker

_GEOM_TYPES = {
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
    "box": mujoco.mjtGeom.mjGEOM_BOX,
}
_MAX_RENDER_SIZE = (1920, 1080)
_QPOS_QVEL = int(mujoco.mjtState.mjSTATE_QPOS | mujoco.mjtState.mjSTATE_QVEL)
_USER = int(mujoco.mjtState.mjSTATE_USER)  # controls, applied forces, mocap, equality flags, userdata


def _extend_planes(spec: mujoco.MjSpec, half_extent_m: float) -> None:
    """Draw every plane geom at least ``half_extent_m`` m wide each way, keeping its texture's square size.

    Only the drawn extent (``size[0:2]``) and the material's ``texrepeat`` change: a plane collides as an
    infinite half-space, so stepping is bit-identical (``tests/envs/test_floor.py``).
    """
    for geom in spec.geoms:
        if geom.type != mujoco.mjtGeom.mjGEOM_PLANE or min(geom.size[0], geom.size[1]) >= half_extent_m:
            continue
        factor = half_extent_m / max(min(geom.size[0], geom.size[1]), 1e-9)
        geom.size[0], geom.size[1] = geom.size[0] * factor, geom.size[1] * factor
        material = spec.material(geom.material) if geom.material else None
        if material is not None and not material.texuniform:
            material.texrepeat[0] *= factor
            material.texrepeat[1] *= factor


class MujocoSim:
    """One MuJoCo world loaded from an MJCF file, stepped ``frame_skip`` physics steps per control.

    Args:
        model_path: MJCF file (e.g. one of Gymnasium's bundled models), or an ``mujoco.MjSpec`` built in code
            (e.g. by :func:`taxbench.envs.sim.mujoco_urdf.urdf_spec`).
        frame_skip: Physics steps per control step; the control period is ``timestep × frame_skip`` s.
        markers: Visual-only bodies added to the scene (hazard zones, goals); they never collide.
        shadows: Cast shadows when rendering (off by default: about 3× faster headless video).
        track_body: Body the default camera follows when ``render`` is called without a camera name.
        frame_bodies: Bodies (e.g. a goal and hazard markers) the default camera keeps in view with ``track_body``.
        floor_half_extent_m: Draw plane geoms at least this far from the origin, m (their texture scaled to match).
            Visual only: MuJoCo collides with a plane as an infinite half-space whatever its drawn size.
    """

    def __init__(
        self,
        model_path: str | Path | mujoco.MjSpec,
        frame_skip: int,
        markers: Sequence[Marker] = (),
        *,
        shadows: bool = False,
        track_body: str | None = None,
        frame_bodies: Sequence[str] = (),
        floor_half_extent_m: float | None = None,
    ) -> None:
        if frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
        spec = model_path if isinstance(model_path, mujoco.MjSpec) else mujoco.MjSpec.from_file(str(model_path))
        spec.visual.global_.offwidth, spec.visual.global_.offheight = _MAX_RENDER_SIZE
        for marker in markers:
            self._add_marker(spec, marker)
        if floor_half_extent_m is not None:
            _extend_planes(spec, floor_half_extent_m)
        with warnings.catch_warnings():
            # Gymnasium's ant.xml still uses the deprecated settotalmass attribute.
            warnings.filterwarnings("ignore", message=".*settotalmass.*")
            self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        if not shadows:
            self.model.light_castshadow[:] = 0
        self.frame_skip = frame_skip
        self._track_body = track_body
        self._frame_bodies = tuple(frame_bodies)
        self._frame_margin_m = 0.6
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._cfrc_valid = False
        self._state_out: np.ndarray | None = None
        self._forces_out: np.ndarray | None = None
        self._names = {
            kind: {mujoco.mj_id2name(self.model, obj, i): i for i in range(count)}
            for kind, obj, count in (
                ("body", mujoco.mjtObj.mjOBJ_BODY, self.model.nbody),
                ("joint", mujoco.mjtObj.mjOBJ_JOINT, self.model.njnt),
                ("actuator", mujoco.mjtObj.mjOBJ_ACTUATOR, self.model.nu),
                ("site", mujoco.mjtObj.mjOBJ_SITE, self.model.nsite),
            )
        }
        self._body_names = [
            mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_BODY, i) or f"body{i}" for i in range(self.model.nbody)
        ]
        self._velocity_buffer = np.zeros(6)
        self._slices: dict[str, tuple[slice, slice]] = {}
        self._force_buffer = np.zeros(6)
        self.init_qpos = self.data.qpos.copy()
        self.init_qvel = self.data.qvel.copy()
        self._bind_views()
        mujoco.mj_forward(self.model, self.data)

    def _bind_views(self) -> None:
        """Keep views of the data's arrays the hot path reads (``data.ctrl`` builds a new array object per access)."""
        self._qpos_view, self._qvel_view = self.data.qpos.view(), self.data.qvel.view()
        self._qpos_view.flags.writeable = self._qvel_view.flags.writeable = False
        self._ctrl = self.data.ctrl
        self._cfrc_ext = self.data.cfrc_ext

    @staticmethod
    def _add_marker(spec: mujoco.MjSpec, marker: Marker) -> None:
        if marker.shape not in _GEOM_TYPES:
            raise ValueError(f"marker shape must be one of {sorted(_GEOM_TYPES)}, got {marker.shape!r}")
        body = spec.worldbody.add_body(name=marker.name, pos=list(marker.position), mocap=True)
        size = [*marker.size, 0.0, 0.0, 0.0][:3]
        body.add_geom(
            name=f"{marker.name}_geom",
            type=_GEOM_TYPES[marker.shape],
            size=size,
            rgba=list(marker.rgba),
            contype=0,
            conaffinity=0,
            group=1,
            mass=0.0,
            density=0.0,
        )

    # ----------------------------------------------------------------- one model, many worlds
    def _model_bytes(self) -> bytes:
        buffer = np.empty(mujoco.mj_sizeModel(self.model), dtype=np.uint8)
        mujoco.mj_saveModel(self.model, None, buffer)
        return buffer.tobytes()

    def same_model(self, other: MujocoSim) -> bool:
        """Whether ``other``'s compiled model equals this world's in every parameter (the same MJB bytes)."""
        return other.model is self.model or other._model_bytes() == self._model_bytes()

    def share_model(self, other: MujocoSim) -> None:
        """Step with ``other``'s ``MjModel`` from now on, in place of this world's own equal copy.

        Worlds stepped together (a vector env's) then read one set of model parameters instead of one each, and this
        world's copy is freed. In interleaved A/B runs of the vector env on 2 cores the speed changed by 0.995-1.03x
        (Ant, N = 32 and 64) and 1.00-1.10x (HalfCheetah): within this host's noise. Nothing else changes:
        ``mj_copyData`` moves the whole ``MjData`` (state, warm start, derived quantities) to one allocated for the
        shared model, so the world goes on bit for bit. Renderers built on the old model are closed (the next
        ``render`` builds one on the shared model).

        The shared model must then be treated as read-only: a change made through one world changes them all.

        Raises:
            ValueError: if the two models differ in any parameter (see :meth:`same_model`).
        """
        if other.model is self.model:
            return
        if not self.same_model(other):
            raise ValueError("share_model needs an identical compiled model (the same model file, markers and options)")
        data = mujoco.MjData(other.model)
        mujoco.mj_copyData(data, other.model, self.data)
        self.close()
        self.model, self.data = other.model, data
        self._bind_views()

    # ----------------------------------------------------------------- lookups
    def _id(self, kind: str, name: str) -> int:
        try:
            return self._names[kind][name]
        except KeyError:
            known = ", ".join(sorted(n for n in self._names[kind] if n))
            raise KeyError(f"no {kind} named {name!r}; the model has: {known}") from None

    def has_body(self, name: str) -> bool:
        """Whether the model has a body of this name."""
        return name in self._names["body"]

    def body_index(self, name: str) -> int:
        """Index of a body by name (rows of ``xmat``, ``cfrc_ext``), for batched simulators of this model."""
        return self._id("body", name)

    # ----------------------------------------------------------------- stepping
    @property
    def dt(self) -> float:
        """Control period in s."""
        return float(self.model.opt.timestep) * self.frame_skip

    @property
    def time(self) -> float:
        """Simulated time in s."""
        return float(self.data.time)

    def reset(self) -> None:
        """Reset to the model's initial state (``mj_resetData``)."""
        mujoco.mj_resetData(self.model, self.data)
        self.forward()

    def step(self, ctrl: np.ndarray) -> None:
        """Set controls and advance ``frame_skip`` physics steps."""
        self.set_control(ctrl)
        self.advance()

    def set_control(self, ctrl: np.ndarray) -> None:
        """Set the actuator controls the next :meth:`advance` applies."""
        self._ctrl[:] = ctrl

    def advance(self) -> None:
        """Advance ``frame_skip`` physics steps with the controls already set (``mj_step`` releases the GIL)."""
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        self._cfrc_valid = False
        if self._state_out is not None:  # see capture_after_step
            mujoco.mj_getState(self.model, self.data, self._state_out, _QPOS_QVEL)
            if self._forces_out is not None:
                mujoco.mj_rnePostConstraint(self.model, self.data)
                self._cfrc_valid = True
                np.copyto(self._forces_out, self._cfrc_ext)

    def capture_after_step(self, state: np.ndarray | None, forces: np.ndarray | None = None) -> None:
        """Copy the state (and contact forces) into given arrays at the end of every :meth:`advance` from now on.

        Each advance copies qpos then qvel into ``state`` (shape (nq + nv,)) and, if given, ``cfrc_ext`` into
        ``forces`` (shape (nbody, 6)); ``state=None`` stops it.

        The copies happen on whichever thread stepped the world, while its data is still in that core's cache: a
        vector env gathers all its worlds' state into the rows of one array this way (reading 32 worlds' data
        after they have all stepped cost it ~3 µs a world). The values are those :attr:`qpos_view`,
        :attr:`qvel_view` and :meth:`external_forces` would give.
        """
        self._state_out = state
        self._forces_out = forces if state is not None else None

    def forward(self) -> None:
        """Recompute kinematics, contacts and forces for the current state."""
        mujoco.mj_forward(self.model, self.data)
        self._cfrc_valid = False

    @property
    def qpos(self) -> np.ndarray:
        """Generalised positions (copy)."""
        return self.data.qpos.copy()

    @property
    def qvel(self) -> np.ndarray:
        """Generalised velocities (copy)."""
        return self.data.qvel.copy()

    @property
    def qpos_view(self) -> np.ndarray:
        """Generalised positions as a read-only live view: it changes as the sim steps (copy it to keep it)."""
        return self._qpos_view

    @property
    def qvel_view(self) -> np.ndarray:
        """Generalised velocities as a read-only live view (see :attr:`qpos_view`)."""
        return self._qvel_view

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Set generalised state and recompute derived quantities."""
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        if self.model.na:
            self.data.act[:] = 0.0
        self.forward()

    _STATE = mujoco.mjtState.mjSTATE_INTEGRATION

    def get_state(self) -> np.ndarray:
        """Everything that determines the future (time, qpos, qvel, act, warm start, mocap, ctrl)."""
        state = np.empty(mujoco.mj_stateSize(self.model, self._STATE))
        mujoco.mj_getState(self.model, self.data, state, self._STATE)
        return state

    def restore_state(self, state: np.ndarray) -> None:
        """Restore a state from :meth:`get_state`."""
        mujoco.mj_setState(self.model, self.data, np.asarray(state, dtype=np.float64), self._STATE)
        self.forward()

    def restore_stepped_state(self, before: np.ndarray, state: np.ndarray) -> bool:
        """Restore ``state`` (:meth:`get_state`) that one :meth:`advance` reached from ``before``, exactly.

        After ``mj_step`` the derived quantities in ``mjData`` (body frames, Jacobians, contact forces) are those
        of the last substep's start, and a controller reads them before the next step; :meth:`restore_state`
        recomputes them at ``state`` instead. Replaying the step, from ``before``'s physics (time, qpos, qvel,
        act, warm start, plugins) with ``state``'s inputs (controls, applied forces, mocap), gives them bit for bit.
        Used to resume a run exactly.

        Returns:
            True when the replay landed on ``state``; otherwise (the world was reset after that step, say) False,
            and ``state`` is restored as :meth:`restore_state` does.
        """
        state = np.asarray(state, dtype=np.float64)
        mujoco.mj_setState(self.model, self.data, state, self._STATE)
        inputs = np.empty(mujoco.mj_stateSize(self.model, _USER))
        mujoco.mj_getState(self.model, self.data, inputs, _USER)
        mujoco.mj_setState(self.model, self.data, np.asarray(before, dtype=np.float64), self._STATE)
        mujoco.mj_setState(self.model, self.data, inputs, _USER)
        self.advance()
        if self.get_state().tobytes() == state.tobytes():
            return True
        self.restore_state(state)
        return False

    # ----------------------------------------------------------------- bodies and joints
    def body_position(self, name: str) -> np.ndarray:
        """World position of the body frame, m."""
        return self.data.xpos[self._id("body", name)].copy()

    def body_orientation(self, name: str) -> np.ndarray:
        """World rotation matrix of the body frame."""
        return self.data.xmat[self._id("body", name)].reshape(3, 3).copy()

    def body_velocity(self, name: str) -> np.ndarray:
        """World-frame linear velocity of the body's centre of mass, m/s."""
        mujoco.mj_objectVelocity(
            self.model, self.data, mujoco.mjtObj.mjOBJ_BODY, self._id("body", name), self._velocity_buffer, 0
        )
        return self._velocity_buffer[3:].copy()

    def site_position(self, name: str) -> np.ndarray:
        """World position of a site, m."""
        return self.data.site_xpos[self._id("site", name)].copy()

    def _joint_slices(self, name: str) -> tuple[slice, slice]:
        cached = self._slices.get(name)
        if cached is not None:
            return cached
        self._slices[name] = self._compute_joint_slices(name)
        return self._slices[name]

    def _compute_joint_slices(self, name: str) -> tuple[slice, slice]:
        jid = self._id("joint", name)
        qadr, vadr = self.model.jnt_qposadr[jid], self.model.jnt_dofadr[jid]
        jtype = self.model.jnt_type[jid]
        nq, nv = {int(mujoco.mjtJoint.mjJNT_FREE): (7, 6), int(mujoco.mjtJoint.mjJNT_BALL): (4, 3)}.get(
            int(jtype), (1, 1)
        )
        return slice(qadr, qadr + nq), slice(vadr, vadr + nv)

    def joint_qpos_slice(self, name: str) -> slice:
        """Where a joint's generalised position(s) sit in qpos (for robots that read :attr:`qpos_view`)."""
        return self._joint_slices(name)[0]

    def joint_position(self, name: str) -> np.ndarray:
        """Generalised position(s) of a joint (rad, m, or free-joint 7-vector)."""
        return self.data.qpos[self._joint_slices(name)[0]].copy()

    def joint_velocity(self, name: str) -> np.ndarray:
        """Generalised velocity of a joint (rad/s, m/s, or free-joint 6-vector)."""
        return self.data.qvel[self._joint_slices(name)[1]].copy()

    def joint_limits(self, name: str) -> tuple[float, float] | None:
        """(lower, upper) position range of a limited joint, rad or m; None if unlimited."""
        jid = self._id("joint", name)
        if not self.model.jnt_limited[jid]:
            return None
        low, high = self.model.jnt_range[jid]
        return float(low), float(high)

    def limited_joints(self) -> list[str]:
        """Names of every limited hinge or slide joint."""
        scalar = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
        return [
            mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_JOINT, j)
            for j in range(self.model.njnt)
            if self.model.jnt_limited[j] and int(self.model.jnt_type[j]) in scalar
        ]

    # ----------------------------------------------------------------- actuators and contacts
    @property
    def actuator_names(self) -> list[str]:
        """Actuator names in control order."""
        return [mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) for i in range(self.model.nu)]

    def control_range(self) -> np.ndarray:
        """Per-actuator (low, high) control bounds; ±inf where the control is unlimited."""
        ranges = self.model.actuator_ctrlrange.copy()
        ranges[~self.model.actuator_ctrllimited.astype(bool)] = (-np.inf, np.inf)
        return ranges

    def actuator_forces(self) -> np.ndarray:
        """Actuator forces/torques now, N or N·m."""
        return self.data.actuator_force.copy()

    def contacts(self) -> list[Contact]:
        """Active contacts with their normal forces (``mj_contactForce``), N."""
        found = []
        for i in range(self.data.ncon):
            contact = self.data.contact[i]
            mujoco.mj_contactForce(self.model, self.data, i, self._force_buffer)
            found.append(
                Contact(
                    body_a=self._body_names[self.model.geom_bodyid[contact.geom1]],
                    body_b=self._body_names[self.model.geom_bodyid[contact.geom2]],
                    normal_force=float(abs(self._force_buffer[0])),
                    position=contact.pos.copy(),
                )
            )
        return found

    def external_forces(self) -> np.ndarray:
        """``cfrc_ext`` of every body: net contact wrench (torque N·m, force N), shape (nbody, 6)."""
        if not self._cfrc_valid:
            mujoco.mj_rnePostConstraint(self.model, self.data)
            self._cfrc_valid = True
        return self.data.cfrc_ext

    def body_external_force(self, name: str) -> np.ndarray:
        """Net external (contact) wrench on one body: torque N·m (3) then force N (3)."""
        return self.external_forces()[self._id("body", name)].copy()

    def set_joint_positions(self, joints: Sequence[str], positions: np.ndarray) -> None:
        """Put named hinge/slide joints at positions (rad or m) with zero velocity."""
        for name, value in zip(joints, np.asarray(positions, dtype=np.float64), strict=True):
            qpos, qvel = self._joint_slices(name)
            self.data.qpos[qpos] = value
            self.data.qvel[qvel] = 0.0
        self.forward()

    def set_body_position(self, name: str, position: np.ndarray) -> None:
        """Move a free body (its joint is ``<name>_free``) to a position in m, upright and at rest."""
        qpos, qvel = self._joint_slices(f"{name}_free")
        self.data.qpos[qpos] = [*np.asarray(position, dtype=np.float64), 1.0, 0.0, 0.0, 0.0]
        self.data.qvel[qvel] = 0.0
        self.forward()

    def jacobian(self, body: str, joints: Sequence[str]) -> np.ndarray:
        """World-frame Jacobian (6, len(joints)) of a body frame's origin: linear rows, then angular."""
        jacp, jacr = np.zeros((3, self.model.nv)), np.zeros((3, self.model.nv))
        mujoco.mj_jacBody(self.model, self.data, jacp, jacr, self._id("body", body))
        columns = [self._joint_slices(name)[1].start for name in joints]
        return np.vstack([jacp[:, columns], jacr[:, columns]])

    def set_marker_position(self, name: str, position: np.ndarray) -> None:
        """Move a visual marker's mocap body, m."""
        self.data.mocap_pos[self.model.body_mocapid[self._id("body", name)]] = position

    # ----------------------------------------------------------------- rendering
    def _scene(self, width: int, height: int, camera: str | None) -> mujoco.Renderer:
        """The renderer for this size with its scene updated to the current state, seen from ``camera``."""
        if not (0 < width <= _MAX_RENDER_SIZE[0] and 0 < height <= _MAX_RENDER_SIZE[1]):
            raise ValueError(f"render size must be within 1..{_MAX_RENDER_SIZE}, got {(width, height)}")
        renderer = self._renderers.get((width, height))
        if renderer is None:
            renderer = self._renderers[(width, height)] = mujoco.Renderer(self.model, height, width)
            # Floor reflections redraw the whole scene: 4-5x slower on a software GL (llvmpipe), for a mirror image.
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        if camera is None and self._track_body is None and self.model.ncam:
            camera = mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_CAMERA, 0)
        if camera is not None:
            renderer.update_scene(self.data, camera=camera)
        else:
            renderer.update_scene(self.data, camera=self._tracking_camera())
        return renderer

    def _tracking_camera(self) -> mujoco.MjvCamera:
        """The default free camera: follows ``track_body``; with ``frame_bodies`` it also keeps them in view."""
        cam = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(self.model, cam)
        cam.distance, cam.elevation, cam.azimuth = 4.0, -20.0, 90.0
        if self._track_body is None:
            return cam
        tracked = self.data.xpos[self._id("body", self._track_body)]
        if not self._frame_bodies:
            cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
            cam.trackbodyid = self._id("body", self._track_body)
            return cam
        points = np.vstack([tracked, *(self.data.xpos[self._id("body", b)] for b in self._frame_bodies)])
        low, high = points.min(axis=0), points.max(axis=0)
        radius = max(0.5 * float(np.linalg.norm(high[:2] - low[:2])), 1.0) + self._frame_margin_m
        half_fov = np.deg2rad(self.model.vis.global_.fovy) / 2
        # Seen from -y (azimuth 90), +x is image-right: shift the view so the scene sits right of the HUD's boxes.
        cam.lookat[:] = [(low[0] + high[0]) / 2 - 0.3 * radius, (low[1] + high[1]) / 2, 0.0]
        cam.distance = max(4.0, radius / np.tan(half_fov))
        cam.elevation, cam.azimuth = -45.0, 90.0
        return cam

    def set_render_samples(self, samples: int) -> None:
        """Multisample anti-aliasing of later renders (MuJoCo's ``offsamples``, default 4; 0 turns it off).

        Visual only (no physics reads it). On a software GL (llvmpipe, 2 cores) 0 renders an Ant frame at
        320x240 about 3x as fast as 4 (192 vs 66 frames/s), with jaggier edges. Renderers are rebuilt.
        """
        if samples < 0:
            raise ValueError(f"samples must be >= 0, got {samples}")
        self.close()
        self.model.vis.quality.offsamples = samples

    def render(self, width: int, height: int, camera: str | None = None) -> np.ndarray:
        """RGB image (height, width, 3) uint8.

        From the named camera; else from a camera tracking ``track_body`` (and keeping ``frame_bodies`` in
        view); else (no tracked body) from the model's first fixed camera.
        """
        renderer = self._scene(width, height, camera)
        self._add_arrows(renderer.scene)  # rollout overlay (see draw_arrows)
        return renderer.render()

    def project(self, points: np.ndarray, width: int, height: int, camera: str | None = None) -> np.ndarray:
        """Where world points (n, 3) m appear in ``render(width, height, camera)``: (n, 3) column px, row px, depth m.

        Depth is along the camera's view axis; points behind the camera have depth <= 0.
        """
        cam = self._scene(width, height, camera).scene.camera[0]
        forward, up = np.asarray(cam.forward, float), np.asarray(cam.up, float)
        right = np.cross(forward, up)
        rel = np.atleast_2d(np.asarray(points, float)) - np.asarray(cam.pos, float)
        x, y, depth = rel @ right, rel @ up, rel @ forward
        half_h = (cam.frustum_top - cam.frustum_bottom) / 2
        half_w = cam.frustum_width if cam.frustum_width > 0 else half_h * width / height
        with np.errstate(divide="ignore", invalid="ignore"):
            x_ndc = (cam.frustum_near * x / depth - cam.frustum_center) / half_w
            y_ndc = (cam.frustum_near * y / depth - (cam.frustum_top + cam.frustum_bottom) / 2) / half_h
        return np.column_stack([(x_ndc + 1) / 2 * width, (1 - y_ndc) / 2 * height, depth])

    def segment(self, width: int, height: int, camera: str | None = None) -> np.ndarray:
        """Body index (see :meth:`body_index`) seen at each pixel of ``render(width, height, camera)``, -1 for none."""
        renderer = self._scene(width, height, camera)
        renderer.enable_segmentation_rendering()
        try:
            ids = renderer.render()
        finally:
            renderer.disable_segmentation_rendering()
        geom = ids[..., 0]
        bodies = np.full(geom.shape, -1, dtype=np.int64)
        is_geom = (ids[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)) & (geom >= 0)
        bodies[is_geom] = self.model.geom_bodyid[geom[is_geom]]
        return bodies

    # ----------------------------------------------------------------- overlays (rollout videos, viewer)
    _arrows: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...] = ()

    def draw_arrows(self, arrows: Sequence[tuple[np.ndarray, np.ndarray, Sequence[float]]]) -> None:
        """Draw arrows ``(start m, vector m, rgba)`` in every following render until replaced; ``()`` clears."""
        self._arrows = tuple(
            (np.asarray(a, float).reshape(3), np.asarray(v, float).reshape(3), np.asarray(c, np.float32).reshape(4))
            for a, v, c in arrows
        )

    def _add_arrows(self, scene: mujoco.MjvScene) -> None:
        for start, vector, rgba in self._arrows:
            if scene.ngeom >= scene.maxgeom or not np.linalg.norm(vector) > 1e-9:
                continue
            geom = scene.geoms[scene.ngeom]
            mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_ARROW, np.zeros(3), np.zeros(3), np.eye(3).ravel(), rgba)
            mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_ARROW, 0.04, start, start + vector)
            geom.emission = 0.6  # stays bright red in shade
            scene.ngeom += 1

    def contact_force_vectors(self) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
        """``(body_a, body_b, world point m, contact force on body_b N)`` for each active contact."""
        found = []
        for i in range(self.data.ncon):
            contact = self.data.contact[i]
            mujoco.mj_contactForce(self.model, self.data, i, self._force_buffer)
            force = contact.frame.reshape(3, 3).T @ self._force_buffer[:3]  # contact frame -> world
            found.append(
                (
                    self._body_names[self.model.geom_bodyid[contact.geom1]],
                    self._body_names[self.model.geom_bodyid[contact.geom2]],
                    contact.pos.copy(),
                    force,
                )
            )
        return found

    def open_viewer(self) -> object:
        """Open MuJoCo's interactive viewer on this world (needs a display); returns its passive handle."""
        import mujoco.viewer

        return mujoco.viewer.launch_passive(self.model, self.data)

    def close(self) -> None:
        """Free renderers (idempotent)."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
