import gymnasium as gym
import numpy as np
import pytest

from taxbench.envs import ENV_IDS


def _rollout(env_id, seed, steps=50):
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append(np.r_[obs, reward, terminated, info["cost"]])
        if terminated or truncated:
            obs, _ = env.reset()
            out.append(obs)
    return out


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_trajectory(env_id):
    a, b = _rollout(env_id, seed=7), _rollout(env_id, seed=7)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_different_seed_different_start():
    a, b = _rollout("taxbench/AntHazard-v0", 1, 0), _rollout("taxbench/AntHazard-v0", 2, 0)
    assert not np.array_equal(a[0], b[0])


def test_save_restore_state_replays_exactly():
    env = gym.make("taxbench/HalfCheetahVelocity-v0")
    env.reset(seed=0)
    sim = env.unwrapped.sim
    state = sim.get_state()
    actions = np.random.default_rng(0).uniform(-1, 1, size=(20, 6))
    first = [env.step(a)[0] for a in actions]
    sim.restore_state(state)
    second = [env.step(a)[0] for a in actions]
    np.testing.assert_array_equal(first, second)
