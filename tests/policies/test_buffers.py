import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer

from taxbench.policies import CostRolloutBuffer, gae

OBS = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
ACT = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)


def _fill(buffers, n_steps, n_envs, seed=0):
    rng = np.random.default_rng(seed)
    for step in range(n_steps):
        obs = rng.normal(size=(n_envs, 3)).astype(np.float32)
        action = rng.normal(size=(n_envs, 2)).astype(np.float32)
        reward = rng.normal(size=n_envs).astype(np.float32)
        start = rng.random(n_envs) < 0.2 if step else np.ones(n_envs, dtype=bool)
        value = th.as_tensor(rng.normal(size=(n_envs, 1)).astype(np.float32))
        log_prob = th.as_tensor(rng.normal(size=n_envs).astype(np.float32))
        for buffer in buffers:
            buffer.add(obs, action, reward, start, value, log_prob)
    last_values = th.as_tensor(rng.normal(size=(n_envs, 1)).astype(np.float32))
    dones = rng.random(n_envs) < 0.5
    return last_values, dones


def test_cost_gae_hand_computed():
    buf = CostRolloutBuffer(3, OBS, ACT, device="cpu", gamma=0.99, gae_lambda=0.95, cost_gamma=0.9, cost_gae_lambda=0.8)
    buf.costs[:, 0] = [1.0, 0.0, 1.0]
    buf.cost_values[:, 0] = [0.5, 0.2, 0.4]
    buf.episode_starts[:, 0] = [1.0, 0.0, 1.0]  # step 1 ends an episode, step 2 starts the next
    buf.compute_cost_returns_and_advantage(np.array([0.3], dtype=np.float32), np.array([False]))
    # step 2: δ = 1 + 0.9·0.3 − 0.4 = 0.87                  A = 0.87
    # step 1: terminal (next start) δ = 0 − 0.2 = −0.2       A = −0.2
    # step 0: δ = 1 + 0.9·0.2 − 0.5 = 0.68                  A = 0.68 + 0.9·0.8·(−0.2) = 0.536
    np.testing.assert_allclose(buf.cost_advantages[:, 0], [0.536, -0.2, 0.87], rtol=1e-6)
    np.testing.assert_allclose(buf.cost_returns[:, 0], [1.036, 0.0, 1.27], rtol=1e-6, atol=1e-7)


def test_cost_gae_terminal_last_step_ignores_bootstrap():
    buf = CostRolloutBuffer(2, OBS, ACT, device="cpu", gamma=0.5, gae_lambda=1.0)
    buf.costs[:, 0] = [1.0, 1.0]
    buf.compute_cost_returns_and_advantage(np.array([100.0], dtype=np.float32), np.array([True]))
    # cost_gamma defaults to gamma: returns are the discounted cost-to-go, no bootstrap after `done`
    np.testing.assert_allclose(buf.cost_returns[:, 0], [1.5, 1.0])


@pytest.mark.parametrize("n_envs", [1, 4])
def test_reward_gae_unchanged_vs_sb3(n_envs):
    ours = CostRolloutBuffer(16, OBS, ACT, device="cpu", gamma=0.97, gae_lambda=0.9, n_envs=n_envs)
    sb3 = RolloutBuffer(16, OBS, ACT, device="cpu", gamma=0.97, gae_lambda=0.9, n_envs=n_envs)
    last_values, dones = _fill([ours, sb3], 16, n_envs)
    ours.compute_returns_and_advantage(last_values, dones)
    sb3.compute_returns_and_advantage(last_values, dones)
    assert np.array_equal(ours.advantages, sb3.advantages)
    assert np.array_equal(ours.returns, sb3.returns)
    # the shared recursion reproduces SB3's advantages bit for bit
    again = gae(sb3.rewards, sb3.values, sb3.episode_starts, last_values.numpy(), dones, 0.97, 0.9)
    assert np.array_equal(again, sb3.advantages)


def test_combine_is_identity_at_lambda_zero_and_formula_otherwise():
    buf = CostRolloutBuffer(32, OBS, ACT, device="cpu", n_envs=2)
    last_values, dones = _fill([buf], 32, 2, seed=1)
    buf.compute_returns_and_advantage(last_values, dones)
    rng = np.random.default_rng(2)
    buf.costs[:] = (rng.random(buf.costs.shape) < 0.3).astype(np.float32)
    buf.cost_values[:] = rng.random(buf.cost_values.shape).astype(np.float32)
    buf.compute_cost_returns_and_advantage(np.zeros(2, dtype=np.float32), dones)
    a_r = buf.advantages.copy()

    buf.combine_advantages(0.0)
    assert buf.advantages.dtype == np.float32
    assert np.array_equal(buf.advantages, a_r)

    buf.advantages = a_r.copy()
    buf.combine_advantages(2.0)
    a_c = buf.cost_advantages.astype(np.float64)
    expected = (a_r - 2.0 * a_r.astype(np.float64).std() * (a_c - a_c.mean())) / 3.0
    np.testing.assert_allclose(buf.advantages, expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(buf.reward_advantages, a_r)
    # standardised, the combination is (Â_r − λ·Ā_c)/(1+λ) up to scale and shift
    std = buf.advantages.astype(np.float64)
    standardised = (std - std.mean()) / std.std()
    reference = ((a_r - a_r.mean()) / a_r.std() - 2.0 * (a_c - a_c.mean())) / 3.0
    reference = (reference - reference.mean()) / reference.std()
    np.testing.assert_allclose(standardised, reference, atol=1e-5)


def test_flat_cost_data_matches_sb3_order():
    buf = CostRolloutBuffer(4, OBS, ACT, device="cpu", n_envs=3)
    last_values, dones = _fill([buf], 4, 3)
    buf.cost_returns[:] = np.arange(12, dtype=np.float32).reshape(4, 3)
    obs_before, ret_before = buf.flat_cost_data()
    buf.compute_returns_and_advantage(last_values, dones)
    list(buf.get(batch_size=4))  # PPO's get() flattens observations in place
    obs_after, ret_after = buf.flat_cost_data()
    assert np.array_equal(obs_before, obs_after)
    assert np.array_equal(ret_before, ret_after)
    # env-major, like SB3's swap_and_flatten: env 0's steps first
    assert ret_after[:4].tolist() == [0.0, 3.0, 6.0, 9.0]


def test_reset_clears_costs():
    buf = CostRolloutBuffer(2, OBS, ACT, device="cpu")
    buf.costs[:] = 1.0
    buf.reset()
    assert not buf.costs.any() and not buf.cost_returns.any()
