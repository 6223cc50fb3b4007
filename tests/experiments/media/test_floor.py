"""The drawn floor reaches as far as a HalfCheetah runs, and drawing it larger changes no physics."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from taxbench.envs.core.assets import gymnasium_model
from taxbench.envs.robots.legged import FLOOR_HALF_EXTENT_M
from taxbench.envs.sim.mujoco_sim import MujocoSim


def test_extended_floor_steps_bit_identically():
    plain = MujocoSim(gymnasium_model("half_cheetah.xml"), 5)
    extended = MujocoSim(gymnasium_model("half_cheetah.xml"), 5, floor_half_extent_m=FLOOR_HALF_EXTENT_M)
    floor = plain.model.geom("floor").id
    assert plain.model.geom_size[floor, 0] < 100 <= extended.model.geom_size[floor, 0]
    rng = np.random.default_rng(0)
    for _ in range(300):
        ctrl = rng.uniform(-1, 1, plain.model.nu)
        plain.step(ctrl)
        extended.step(ctrl)
        assert np.array_equal(plain.get_state(), extended.get_state())
    assert np.array_equal(plain.data.cfrc_ext, extended.data.cfrc_ext)


def test_floor_is_under_a_cheetah_that_ran_far():
    env = gym.make("taxbench/HalfCheetahVelocity-v0", render_mode="rgb_array", width=160, height=120)
    env.reset(seed=0)
    sim = env.unwrapped.sim
    qpos, qvel = sim.qpos.copy(), sim.qvel.copy()
    qpos[0] = 600.0  # 1,000 steps at 12 m/s
    sim.set_state(qpos, qvel)
    seen = sim.segment(160, 120)
    world = 0  # the floor is a geom of the world body; -1 is the void beyond it
    assert (seen[-20:] == world).mean() > 0.95, "the floor ends before the robot does"
    assert (seen == sim.body_index("torso")).any()
    env.close()
