import gymnasium as gym
import numpy as np
import pytest


@pytest.mark.parametrize("env_id", ["taxbench/HalfCheetahVelocity-v0", "taxbench/AntHazard-v0"])
def test_render_is_a_non_blank_rgb_frame_of_the_requested_size(env_id):
    env = gym.make(env_id, render_mode="rgb_array", width=160, height=120)
    env.reset(seed=0)
    env.action_space.seed(0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    assert frame.std() > 0
    env.close()


def test_hazard_zones_are_visible():
    """Moving the hazards out of view changes the picture: they are drawn in the scene."""
    env = gym.make("taxbench/AntHazard-v0", render_mode="rgb_array", width=160, height=120)
    env.reset(seed=0)
    with_zones = env.render().astype(int)
    sim = env.unwrapped.sim
    for i in range(3):
        sim.set_marker_position(f"hazard{i}", np.array([100.0, 100.0, -10.0]))
    sim.forward()
    without = env.render().astype(int)
    assert np.abs(with_zones - without).sum() > 0
    # The zones are blue: more blue than red where they differ.
    diff = np.abs(with_zones - without).sum(axis=2) > 0
    assert with_zones[diff][:, 2].mean() > with_zones[diff][:, 0].mean()


def test_render_without_mode_warns_and_returns_none():
    env = gym.make("taxbench/HopperVelocity-v0")
    env.reset(seed=0)
    with pytest.warns(UserWarning):
        assert env.unwrapped.render() is None
