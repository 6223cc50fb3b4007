"""Contact-force arrows: drawn by each sim's overlay hook and recorded where a force cost fires."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

from taxbench.envs.core.components import CostTerm
from taxbench.experiments.media.rollout import LoadedRun, RunRenderer

FORCE_ENV = "taxbench-test/CheetahContactForce-v0"


@dataclass
class _LargestContactForce(CostTerm):
    """Largest normal contact force in the scene, N (a stand-in for a force limit on a human proxy)."""

    def measure(self, ctx):
        return max((c.normal_force for c in ctx.sim.contacts()), default=0.0)


def _make_force_env(render_mode=None, width=96, height=96, camera=None):
    from taxbench.envs.core.env import SafeRobotEnv
    from taxbench.envs.robots.legged import ROBOTS
    from taxbench.envs.tasks.locomotion.velocity import V5_WEIGHTS, RunForward

    robot = ROBOTS["half_cheetah"]()
    term = _LargestContactForce("contact_force", 5.0, "N", "test", "force")
    return SafeRobotEnv(
        robot,
        RunForward(robot, V5_WEIGHTS["half_cheetah"]),
        (term,),
        render_mode=render_mode,
        width=width,
        height=height,
        camera=camera,
    )


if FORCE_ENV not in gym.registry:
    gym.register(FORCE_ENV, entry_point=_make_force_env, max_episode_steps=50)


class _ZeroPolicy:
    def __init__(self, size):
        self.size = size

    def predict(self, obs, deterministic=True):
        return np.zeros(self.size), None


def _red_pixels(frame):
    frame = frame.astype(int)
    return int(((frame[..., 0] > 180) & (frame[..., 1] < 80) & (frame[..., 2] < 80)).sum())


def test_mujoco_draw_arrows_adds_an_arrow_and_clears():
    env = gym.make("taxbench/AntHazard-v0", render_mode="rgb_array", width=96, height=96)
    env.reset(seed=0)
    sim = env.unwrapped.sim
    before = env.render()
    above_torso = sim.body_position("torso") + np.array([0.0, 0.0, 0.3])
    sim.draw_arrows([(above_torso, np.array([0.0, 0.0, 0.8]), (1.0, 0.0, 0.0, 1.0))])
    with_arrow = env.render()
    sim.draw_arrows(())
    assert _red_pixels(with_arrow) > _red_pixels(before) + 10
    assert np.array_equal(env.render(), before)
    env.close()


def test_force_cost_records_contact_arrows_and_draws_them(tmp_path):
    env = gym.make(FORCE_ENV)
    model = _ZeroPolicy(env.action_space.shape)
    env.close()
    cfg = SimpleNamespace(env_id=FORCE_ENV, env_kwargs={}, eval_seed=0)
    renderer = RunRenderer(LoadedRun(tmp_path, cfg, model, "zero", None), 96, 96)
    try:
        episode = renderer.record(0, 0, max_steps=30)
        firing = [i for i, f in enumerate(episode.frames) if "contact_force" in f.violated]
        assert firing, "the cheetah standing on the floor should exceed 5 N"
        index = firing[-1]
        frame = episode.frames[index]
        assert 1 <= len(frame.arrows) <= 4
        for start, vector, _ in frame.arrows:
            assert start[2] < 0.3 and np.linalg.norm(vector) > 0.01  # at a foot, not at the origin
            assert vector[2] > 0  # the floor pushes the foot up
        assert all(not f.arrows for f in episode.frames if not f.violated)
        drawn = renderer.raw_frame(episode, index)
        frame.arrows = ()
        plain = renderer.raw_frame(episode, index)
        assert _red_pixels(drawn) > _red_pixels(plain)
        assert renderer.hud(episode, index).violations[0].startswith("contact_force ")
    finally:
        renderer.close()


def test_pybullet_arrows_are_projected_into_the_tiny_renderer_image():
    pybullet_data = pytest.importorskip("pybullet_data")
    from pathlib import Path

    from taxbench.envs.core.sim_api import CameraSpec
    from taxbench.envs.sim.pybullet_sim import PyBulletSim

    sim = PyBulletSim(
        Path(pybullet_data.getDataPath()) / "franka_panda" / "panda.urdf",
        timestep=1 / 240,
        substeps=1,
        velocity_joints=["panda_joint1"],
        cameras=[CameraSpec("front", (1.5, 0.0, 1.0), (0.3, 0, 0.4))],
    )
    try:
        plain = sim.render(96, 96)
        sim.draw_arrows([(np.array([0.3, 0.0, 0.3]), np.array([0.0, 0.0, 0.3]), (1.0, 0.0, 0.0, 1.0))])
        drawn = sim.render(96, 96)
        red = np.argwhere((drawn.astype(int) - plain).any(axis=2))
        assert _red_pixels(drawn) > 20
        # The arrow points up the image (world +z is image-up for this camera).
        assert red[:, 0].max() - red[:, 0].min() > 10
        sim.draw_arrows(())
        assert np.array_equal(sim.render(96, 96), plain)
    finally:
        sim.close()
