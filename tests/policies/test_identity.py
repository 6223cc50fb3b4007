"""PPOLagrangian with λ pinned at 0 is SB3 PPO, bit for bit (DESIGN.md §3)."""

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv
from toy_envs import SpeedLimitedPointEnv

from taxbench.policies import PPOLagrangian


def _env(n_envs):
    # low speed limit: costs on many steps, so the cost critic really trains; short episodes and an
    # early termination so rollouts cross truncations (cost bootstrap path) and terminations
    return DummyVecEnv(
        [lambda: SpeedLimitedPointEnv(speed_limit=0.1, max_episode_steps=40, terminate_below=-0.6)] * n_envs
    )


def _assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert th.equal(a[key], b[key]), key


def _assert_same_optimizer(opt_a, opt_b):
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for idx in sa["state"]:
        _assert_same_tensors(sa["state"][idx], sb["state"][idx])


@pytest.mark.parametrize("n_envs", [1, 4])
def test_pinned_zero_lambda_is_bit_identical_to_ppo(n_envs):
    kwargs = {"n_steps": 64, "batch_size": 32, "n_epochs": 4, "seed": 7, "device": "cpu"}
    total = 2 * 64 * n_envs  # two rollouts, two updates
    # SB3 seeds the *global* RNGs at construction: build and train one model after the other
    ppo = PPO("MlpPolicy", _env(n_envs), **kwargs)
    ppo_at_init = {k: v.clone() for k, v in ppo.policy.state_dict().items()}
    ppo.learn(total)
    lag = PPOLagrangian("MlpPolicy", _env(n_envs), lagrange_pinned=True, lagrange_init=0.0, **kwargs)
    _assert_same_tensors(ppo_at_init, lag.policy.state_dict())
    critic_at_init = {k: v.clone() for k, v in lag.cost_critic.state_dict().items()}
    lag.learn(total)
    assert ppo._n_updates == lag._n_updates == 2 * 4

    _assert_same_tensors(ppo.policy.state_dict(), lag.policy.state_dict())
    _assert_same_optimizer(ppo.policy.optimizer, lag.policy.optimizer)
    # the cost side was really exercised, not skipped
    assert lag.rollout_buffer.costs.sum() > 0
    assert lag.lagrange.last_episode_cost > 0
    assert lag.lagrange_multiplier == 0.0
    assert any(not th.equal(critic_at_init[k], v) for k, v in lag.cost_critic.state_dict().items())

    obs = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    for deterministic in (True, False):
        th.manual_seed(1)
        actions_ppo, _ = ppo.predict(obs, deterministic=deterministic)
        th.manual_seed(1)
        actions_lag, _ = lag.predict(obs, deterministic=deterministic)
        assert np.array_equal(actions_ppo, actions_lag)


def test_unpinned_lambda_changes_the_update():
    """Sanity check of the test above: with λ > 0 the weights do differ."""
    kwargs = {"n_steps": 64, "batch_size": 32, "n_epochs": 4, "seed": 7, "device": "cpu"}
    ppo = PPO("MlpPolicy", _env(1), **kwargs).learn(128)
    lag = PPOLagrangian("MlpPolicy", _env(1), lagrange_pinned=True, lagrange_init=1.0, **kwargs).learn(128)
    weights_ppo, weights_lag = ppo.policy.state_dict(), lag.policy.state_dict()
    assert any(not th.equal(weights_ppo[k], weights_lag[k]) for k in weights_ppo)
