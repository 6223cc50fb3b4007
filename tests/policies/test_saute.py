"""Saute RL: the budget-augmented env wrapper, the ``saute`` arm (plain PPO), and its dose."""

import math
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv
from toy_envs import OverspeedPointEnv

from taxbench.envs import ENV_IDS
from taxbench.policies import SauteWrapper, env_wrapper, load_learner, make_learner
from taxbench.policies.presets import intensity_settings, resolve_dose

PPO_HP = {"n_steps": 64, "batch_size": 32, "n_epochs": 2}


def test_budget_is_spent_and_the_reward_replaced_once_overspent():
    """Speed 3 m/s costs 2·(3 − 1)² = 8 per step: with d = 20 the normalised budget goes 1 → 0.6 → 0.2 → −0.2;
    the third step overspends it, so its reward (and every later one) is the unsafe reward."""
    env = SauteWrapper(OverspeedPointEnv(), budget=20.0, unsafe_reward=-5.0)
    obs, info = env.reset(seed=0)
    assert obs.shape == (2,) and obs[-1] == 1.0 and info["saute_budget_left"] == 1.0
    rewards, budgets = [], []
    for action in (1.0, 1.0, 1.0, 0.0):
        obs, reward, _, _, info = env.step(np.array([action], dtype=np.float32))
        rewards.append(reward)
        budgets.append(obs[-1])
        assert info["reward_task"] == pytest.approx(3.0 * action)
    np.testing.assert_allclose(budgets, [0.6, 0.2, -0.2, -0.2], atol=1e-6)
    assert rewards == [3.0, 3.0, -5.0, -5.0]
    obs, _ = env.reset()
    assert obs[-1] == 1.0  # a new episode gets the whole budget back


def test_spending_exactly_the_budget_is_allowed():
    env = SauteWrapper(OverspeedPointEnv(), budget=8.0)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.array([1.0], dtype=np.float32))
    assert info["saute_budget_left"] == 0.0 and reward == 3.0


def test_infinite_budget_is_ppo_on_the_wrapped_env_bit_for_bit():
    """d = ∞: the saute arm is SB3 PPO on the env with a constant 1 appended to the observation and the same reward
    (built here with gymnasium's own TransformObservation, not with the wrapper): same seed, same weights."""

    def ones_appended():
        env = OverspeedPointEnv()
        space = spaces.Box(np.array([0.0, -np.inf], np.float32), np.array([1.0, 1.0], np.float32))
        return gym.wrappers.TransformObservation(env, lambda o: np.append(o, 1.0).astype(np.float32), space)

    ppo = PPO("MlpPolicy", DummyVecEnv([ones_appended] * 2), seed=4, device="cpu", **PPO_HP).learn(256)
    wrap = env_wrapper("saute", {"saute_budget": math.inf})
    saute = make_learner(
        "saute",
        DummyVecEnv([lambda: wrap(OverspeedPointEnv())] * 2),
        seed=4,
        device="cpu",
        hyperparams={**PPO_HP, "saute_budget": math.inf},
    )
    saute.learn(256)
    assert type(saute) is PPO
    for key, value in ppo.policy.state_dict().items():
        assert th.equal(value, saute.policy.state_dict()[key]), key
    assert (saute.rollout_buffer.observations[..., -1] == 1.0).all()


def test_saute_arm_refuses_an_unwrapped_env_or_another_budget():
    with pytest.raises(ValueError, match="SauteWrapper"):
        make_learner("saute", DummyVecEnv([OverspeedPointEnv]), seed=0, device="cpu", hyperparams=PPO_HP)
    wrap = env_wrapper("saute", {"saute_budget": 10.0})
    with pytest.raises(ValueError, match="differs from cost_limit"):
        make_learner("saute", DummyVecEnv([lambda: wrap(OverspeedPointEnv())]), seed=0, cost_limit=5.0)
    with pytest.raises(ValueError, match="budget"):
        SauteWrapper(OverspeedPointEnv(), budget=0.0)
    with pytest.raises(ValueError, match="1-D Box"):
        SauteWrapper(gym.make("FrozenLake-v1"), budget=1.0)  # Discrete observations
    pickle.loads(pickle.dumps(wrap))  # the run folder's workers receive it pickled


def test_saute_round_trips_and_acts_on_the_budget(tmp_path):
    wrap = env_wrapper("saute", {"saute_budget": 10.0})
    venv = DummyVecEnv([lambda: wrap(OverspeedPointEnv())] * 2)
    model = make_learner("saute", venv, seed=0, device="cpu", cost_limit=10.0, hyperparams=PPO_HP)
    model.learn(128)
    model.save(tmp_path / "s.zip")
    loaded = load_learner(tmp_path / "s.zip", device="cpu")
    assert loaded.taxbench_arm == "saute" and loaded.observation_space.shape == (2,)
    obs = np.array([[0.5, 1.0], [0.5, -0.5]], dtype=np.float32)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])


def test_the_budget_is_the_dose():
    env_id = "taxbench/PandaReach-v0"
    limits = [intensity_settings(env_id, "saute", name) for name in ("mild", "moderate", "strict")]
    assert all(extra == {"saute_budget": limit} for limit, extra in limits)
    assert [limit for limit, _ in limits] == sorted((limit for limit, _ in limits), reverse=True)
    explicit = resolve_dose(env_id, "saute", "d7")
    assert explicit.cost_limit == 7.0 and explicit.hyperparams["saute_budget"] == 7.0
    assert resolve_dose(env_id, "saute", "moderate", lagrange="pid").intensity == "moderate"  # no multiplier


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_wrapper_composes_with_every_env(env_id):
    env = SauteWrapper(gym.make(env_id), budget=1.0)
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    assert env.observation_space.contains(obs) and obs.shape[0] == env.env.observation_space.shape[0] + 1
    total_cost = 0.0
    for _ in range(5):
        obs, _, _, _, info = env.step(env.action_space.sample())
        total_cost += info["cost"]
        assert obs[-1] == pytest.approx(1.0 - total_cost) and env.observation_space.contains(obs)
    env.close()
