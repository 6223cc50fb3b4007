"""Legged robots built from Gymnasium's bundled MuJoCo models, composed rather than subclassed.

Observation, reset noise and healthy ranges follow Gymnasium's v5 envs (HalfCheetah-v5, Hopper-v5,
Walker2d-v5, Ant-v5) so returns are comparable with published Gymnasium results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

from taxbench.envs.core.arrays import array_namespace
from taxbench.envs.core.assets import gymnasium_model
from taxbench.envs.core.numerics import all_finite, clip
from taxbench.envs.core.sim_api import Marker, Sim

#: Drawn half-size of the floor, m: a 1,000-step episode at 15 m/s (a fast HalfCheetah) stays on it.
#: Gymnasium's models draw 20-40 m; the floor collides as an infinite plane either way.
FLOOR_HALF_EXTENT_M = 1000.0

if TYPE_CHECKING:
    from taxbench.envs.core.batch import BatchContext
    from taxbench.envs.sim.mujoco_sim import MujocoSim


@dataclass
class LeggedRobot:
    """A Gymnasium locomotion model driven by torque actuators in [-1, 1].

    Attributes:
        name: Robot name (``half_cheetah``, ``hopper``, ``walker2d``, ``ant``).
        model_file: MJCF file name in Gymnasium's assets folder.
        frame_skip: Physics steps per control step.
        root_body: Body whose pose stands for the robot (``torso``).
        root_joint: Joint(s) giving the exact root position: a free joint, or slide joints (x, z) for planar robots.
        planar: Whether the robot moves in the x-z plane only.
        position_obs_skip: Leading qpos entries left out of the observation (the root's x, or x and y).
        velocity_clip: Clip for qvel in the observation (rad/s, m/s); None keeps it unclipped.
        include_contact_forces: Append clipped ``cfrc_ext`` of every body but the world (Ant-v5).
        reset_noise_scale: Half-width of the uniform qpos noise at reset (m or rad).
        gaussian_velocity_noise: qvel reset noise is ``scale·N(0,1)`` if True, else uniform ±scale.
        healthy_z_range: Torso height range (m) outside which the robot has fallen; None = never.
        healthy_angle_range: Torso pitch range (rad) for planar robots; None = unchecked.
        healthy_state_range: Range every other generalised coordinate must stay in (Hopper-v5); None = unchecked.
    """

    name: str
    model_file: str
    frame_skip: int
    root_body: str
    root_joint: tuple[str, ...]
    planar: bool
    position_obs_skip: int
    velocity_clip: float | None = None
    include_contact_forces: bool = False
    reset_noise_scale: float = 0.1
    gaussian_velocity_noise: bool = True
    healthy_z_range: tuple[float, float] | None = None
    healthy_angle_range: tuple[float, float] | None = None
    healthy_state_range: tuple[float, float] | None = None
    _root_qpos: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def build_sim(self, markers: Sequence[Marker], backend: str) -> Sim:
        """Load the model on MuJoCo (PyBullet's MJCF import gives a different robot: see NOTES.md)."""
        if backend != "mujoco":
            raise ValueError(
                f"{self.name} runs on backend='mujoco' only (PyBullet's MJCF loader changes masses and "
                f"drops actuators), got backend={backend!r}"
            )
        from taxbench.envs.sim.mujoco_sim import MujocoSim

        framed = tuple(m.name for m in markers if m.name == "goal" or m.name.startswith("hazard"))
        return MujocoSim(
            gymnasium_model(self.model_file),
            self.frame_skip,
            markers,
            track_body=self.root_body,
            frame_bodies=framed,
            floor_half_extent_m=FLOOR_HALF_EXTENT_M,
        )

    def action_space(self, sim: Sim) -> spaces.Box:
        """Box over the actuators' control range (torque fraction, [-1, 1] for these models)."""
        ranges = sim.control_range()
        return spaces.Box(ranges[:, 0].astype(np.float32), ranges[:, 1].astype(np.float32), dtype=np.float32)

    def control(self, sim: Sim, action: np.ndarray) -> np.ndarray:
        """Actions are actuator controls directly."""
        return action

    def reset(self, sim: Sim, rng: np.random.Generator) -> None:
        """Initial pose plus Gymnasium-v5 reset noise."""
        scale = self.reset_noise_scale
        qpos = sim.init_qpos + rng.uniform(-scale, scale, size=sim.init_qpos.size)
        if self.gaussian_velocity_noise:
            qvel = sim.init_qvel + scale * rng.standard_normal(sim.init_qvel.size)
        else:
            qvel = sim.init_qvel + rng.uniform(-scale, scale, size=sim.init_qvel.size)
        sim.set_state(qpos, qvel)

    def observation(self, sim: MujocoSim) -> np.ndarray:  # type: ignore[override]
        """Qpos without the root's horizontal position, qvel (clipped where v5 clips), contact forces (Ant)."""
        qvel = sim.qvel_view
        if self.velocity_clip is not None:
            qvel = clip(qvel, -self.velocity_clip, self.velocity_clip)
        if not self.include_contact_forces:
            return np.concatenate((sim.qpos_view[self.position_obs_skip :], qvel))
        forces = clip(sim.external_forces()[1:], -1.0, 1.0)
        return np.concatenate((sim.qpos_view[self.position_obs_skip :], qvel, forces.ravel()))

    def _root_index(self, sim: MujocoSim) -> tuple[int, ...]:
        """Indices into qpos of the root's (x, z) for planar robots, (x, y, z) otherwise; looked up once.

        Every sim this robot builds loads the same model file, so the indices hold for all of them.
        """
        if not self._root_qpos:
            slices = [sim.joint_qpos_slice(name) for name in self.root_joint]
            self._root_qpos = (
                tuple(s.start for s in slices) if self.planar else tuple(range(slices[0].start, slices[0].start + 3))
            )
        return self._root_qpos

    def root_position(self, sim: MujocoSim) -> np.ndarray:  # type: ignore[override]
        """Exact root position from generalised coordinates, m: (x, y, z); y = 0 for planar robots."""
        qpos, index = sim.qpos_view, self._root_qpos or self._root_index(sim)
        if self.planar:
            return np.array((qpos[index[0]], 0.0, qpos[index[1]]))
        return qpos[index[0] : index[2] + 1].copy()

    def torso_height(self, sim: MujocoSim) -> float:
        """Height of the root above the ground plane, m (relative height for planar models)."""
        return float(sim.qpos_view[(self._root_qpos or self._root_index(sim))[-1]])

    def torso_pitch(self, sim: Sim) -> float:
        """Torso angle of a planar robot about the y axis, rad (the ``rooty`` hinge)."""
        return float(sim.joint_position("rooty")[0])

    def torso_tilt(self, sim: Sim) -> float:
        """Angle between the torso's up axis and the world's, rad (0 upright, π upside down)."""
        up = sim.body_orientation(self.root_body)[:, 2]
        return float(np.arccos(np.clip(up[2], -1.0, 1.0)))

    def is_healthy(self, sim: MujocoSim) -> bool:  # type: ignore[override]
        """Gymnasium-v5 health check: finite state, torso height and pitch within range."""
        qpos, qvel = sim.qpos_view, sim.qvel_view
        if not all_finite(qpos, qvel):
            return False
        if self.healthy_state_range is not None:
            low, high = self.healthy_state_range
            rest = np.concatenate((qpos, qvel))[2:]
            if not (low < rest.min() and rest.max() < high):
                return False
        if self.healthy_z_range is not None:
            low, high = self.healthy_z_range
            if not low < self.torso_height(sim) < high:
                return False
        if self.healthy_angle_range is not None:
            low, high = self.healthy_angle_range
            if not low < self.torso_pitch(sim) < high:
                return False
        return True

    # ----------------------------------------------------------------- many worlds at once (envs/core/batch.py)
    def controls(self, actions: Any) -> Any:
        """:meth:`control` of every world: the actions themselves, shape (N, number of actuators)."""
        return actions

    def root_positions(self, qpos: Any, sim: MujocoSim) -> Any:
        """:meth:`root_position` of each row of stacked qpos (N, nq), m, shape (N, 3); ``sim`` is any world.

        ``qpos`` is a numpy array or a torch tensor (:mod:`taxbench.envs.core.arrays`); the result is the same kind.
        """
        xp = array_namespace(qpos)
        index = self._root_qpos or self._root_index(sim)
        if not self.planar:
            return xp.copy(qpos[:, index[0] : index[2] + 1])
        x, z = qpos[:, index[0]], qpos[:, index[1]]
        return xp.stack((x, xp.zeros(x), z), axis=1)

    def observations(self, ctx: BatchContext) -> Any:
        """:meth:`observation` of every world, shape (N, observation size) (numpy or torch, as ``ctx.qpos``)."""
        xp = array_namespace(ctx.qpos)
        qvel = ctx.qvel if self.velocity_clip is None else xp.clip(ctx.qvel, -self.velocity_clip, self.velocity_clip)
        parts = [ctx.qpos[:, self.position_obs_skip :], qvel]
        if self.include_contact_forces:
            forces = xp.clip(ctx.external_forces()[:, 1:], -1.0, 1.0)
            parts.append(forces.reshape(len(forces), -1))
        return xp.concat(parts, axis=1)

    def healthy(self, ctx: BatchContext) -> Any:
        """:meth:`is_healthy` of every world, shape (N,) bool; computed once per step."""
        cached = ctx.cache.get("healthy")
        if cached is not None:
            return cached
        xp = array_namespace(ctx.qpos)
        qpos, qvel = ctx.qpos, ctx.qvel
        ok = xp.finite_rows(qpos) & xp.finite_rows(qvel)
        if self.healthy_state_range is not None:
            low, high = self.healthy_state_range
            rest = xp.concat((qpos, qvel), axis=1)[:, 2:]
            ok &= (low < xp.row_min(rest)) & (xp.row_max(rest) < high)
        if self.healthy_z_range is not None:
            low, high = self.healthy_z_range
            z = ctx.root_after[:, 2]
            ok &= (low < z) & (z < high)
        if self.healthy_angle_range is not None:
            low, high = self.healthy_angle_range
            pitch = qpos[:, ctx.sims[0].joint_qpos_slice("rooty").start]
            ok &= (low < pitch) & (pitch < high)
        ctx.cache["healthy"] = ok
        return ok


def half_cheetah() -> LeggedRobot:
    """HalfCheetah (planar, 6 torque actuators, 0.05 s control period), as HalfCheetah-v5."""
    return LeggedRobot(
        name="half_cheetah",
        model_file="half_cheetah.xml",
        frame_skip=5,
        root_body="torso",
        root_joint=("rootx", "rootz"),
        planar=True,
        position_obs_skip=1,
        reset_noise_scale=0.1,
    )


def hopper() -> LeggedRobot:
    """Hopper (planar, 3 actuators, 0.008 s control period), as Hopper-v5."""
    return LeggedRobot(
        name="hopper",
        model_file="hopper.xml",
        frame_skip=4,
        root_body="torso",
        root_joint=("rootx", "rootz"),
        planar=True,
        position_obs_skip=1,
        velocity_clip=10.0,
        reset_noise_scale=5e-3,
        gaussian_velocity_noise=False,
        healthy_z_range=(0.7, np.inf),
        healthy_angle_range=(-0.2, 0.2),
        healthy_state_range=(-100.0, 100.0),
    )


def walker2d() -> LeggedRobot:
    """Walker2d (planar, 6 actuators, 0.008 s control period), as Walker2d-v5 (its v5 model)."""
    return LeggedRobot(
        name="walker2d",
        model_file="walker2d_v5.xml",
        frame_skip=4,
        root_body="torso",
        root_joint=("rootx", "rootz"),
        planar=True,
        position_obs_skip=1,
        velocity_clip=10.0,
        reset_noise_scale=5e-3,
        gaussian_velocity_noise=False,
        healthy_z_range=(0.8, 2.0),
        healthy_angle_range=(-1.0, 1.0),
    )


def ant() -> LeggedRobot:
    """Ant (quadruped, 8 actuators, 0.05 s control period), as Ant-v5 with contact forces observed."""
    return LeggedRobot(
        name="ant",
        model_file="ant.xml",
        frame_skip=5,
        root_body="torso",
        root_joint=("root",),
        planar=False,
        position_obs_skip=2,
        include_contact_forces=True,
        reset_noise_scale=0.1,
        healthy_z_range=(0.2, 1.0),
    )


ROBOTS = {"half_cheetah": half_cheetah, "hopper": hopper, "walker2d": walker2d, "ant": ant}
