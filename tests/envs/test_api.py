import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from taxbench.envs import ENV_IDS, SafetyGymnasiumAPI


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_and_sb3_checkers(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    env.close()
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_info_contract_every_step(env_id):
    env = gym.make(env_id, cost_terms=None)
    obs, info = env.reset(seed=3)
    env.action_space.seed(3)
    terms = env.unwrapped.cost_terms
    assert info["cost"] == 0.0 and info["violation"] is False
    assert all(info[f"cost_{t}"] == 0.0 for t in terms)
    for _ in range(60):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert info["cost"] >= 0.0
        assert info["cost"] == pytest.approx(sum(info[f"cost_{t}"] for t in terms))
        assert info["violation"] == (info["cost"] > 0)
        assert all(np.isfinite(info[f"measure_{t}"]) for t in terms)
        reward_terms = [v for k, v in info.items() if k.startswith("reward_")]
        assert reward == pytest.approx(sum(reward_terms), abs=1e-12)
        assert isinstance(info["is_success"], bool)
        if terminated or truncated:
            obs, info = env.reset()
            assert info["cost"] == 0.0


def test_cost_never_folded_into_reward():
    """The same trajectory gives the same reward whatever the cost terms and limits."""
    rewards = []
    for kwargs in ({"cost_terms": ()}, {"cost_terms": None, "velocity_limit": 0.01}):
        env = gym.make("taxbench/HalfCheetahVelocity-v0", **kwargs)
        env.reset(seed=1)
        env.action_space.seed(1)
        rewards.append([env.step(env.action_space.sample())[1] for _ in range(40)])
    np.testing.assert_array_equal(rewards[0], rewards[1])


def test_unconstrained_level_reports_no_cost_terms():
    env = gym.make("taxbench/HopperVelocity-v0", cost_terms=())
    _, info = env.reset(seed=0)
    env.action_space.seed(0)
    *_, info = env.step(env.action_space.sample())
    assert not [k for k in info if k.startswith(("cost_", "measure_"))]
    assert info["cost"] == 0.0


def test_safety_gymnasium_six_tuple():
    env = SafetyGymnasiumAPI(gym.make("taxbench/HalfCheetahVelocity-v0", velocity_limit=0.01))
    env.reset(seed=0)
    env.unwrapped.sim.set_state(env.unwrapped.sim.qpos, np.r_[3.0, np.zeros(8)])
    obs, reward, cost, terminated, truncated, info = env.step(np.zeros(6))
    assert cost == info["cost"] == 1.0
    assert isinstance(reward, float) and obs.shape == (17,)


@pytest.mark.parametrize("bad", [np.full(6, np.nan), np.zeros(5), np.zeros((2, 6))])
def test_bad_actions_are_refused(bad):
    env = gym.make("taxbench/HalfCheetahVelocity-v0")
    env.reset(seed=0)
    before = env.unwrapped.sim.get_state()
    with pytest.raises(ValueError, match="action must"):
        env.unwrapped.step(bad)
    np.testing.assert_array_equal(env.unwrapped.sim.get_state(), before)


def test_unknown_cost_term_and_bad_limit():
    with pytest.raises(ValueError, match="unknown cost terms"):
        gym.make("taxbench/HopperVelocity-v0", cost_terms=("speed",))
    with pytest.raises(ValueError, match="velocity_limit"):
        gym.make("taxbench/HopperVelocity-v0", velocity_limit=-1.0)


def test_locomotion_refuses_pybullet():
    with pytest.raises(ValueError, match="mujoco"):
        gym.make("taxbench/AntVelocity-v0", backend="pybullet")


def test_unknown_cost_mode_is_refused():
    with pytest.raises(ValueError, match="cost_mode must be"):
        gym.make("taxbench/HalfCheetahVelocity-v0", cost_mode="linear")
