"""ppo-track: PPO held under a fraction of the speed limit by its reward, the purpose-built feasible reference."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv
from toy_envs import SpeedLimitedPointEnv, VelocityTaskPointEnv

import taxbench.envs  # noqa: F401 - registers the suite
from taxbench.policies import PPOTrack, intensity_settings, make_learner
from taxbench.policies.presets import INTENSITY_NAMES
from taxbench.policies.track import speed_limit_and_weight, speed_overshoot

HP = {"n_steps": 512, "batch_size": 128, "n_epochs": 5}


def test_overshoot_is_the_speed_above_the_cap():
    assert speed_overshoot(np.array([-1.0, 0.5, 0.8, 1.3]), 0.8).tolist() == pytest.approx([0.0, 0.0, 0.0, 0.5])


def test_stored_reward_is_the_task_reward_with_speed_capped():
    """Every stored reward is v − 2·max(0, v − f·v_max) (weight 1): a tent peaked at the cap."""
    env = DummyVecEnv([lambda: VelocityTaskPointEnv(max_episode_steps=1000)])
    hp = {"n_steps": 256, "batch_size": 64, "n_epochs": 1, "policy_kwargs": {"log_std_init": 0.5}}
    model = make_learner("ppo-track", env, seed=0, device="cpu", hyperparams={**hp, "track_speed_fraction": 0.3})
    model.learn(256)
    assert model.track_speed == pytest.approx(0.3) and model.penalty_coef == 2.0
    buf = model.rollout_buffer  # one env: its rows are the rollout's steps in order
    speed_after = buf.observations.reshape(256, 2)[1:, 0]  # obs[t + 1] holds v after step t, its true reward
    stored = buf.rewards.reshape(256)[:-1]
    assert (speed_after > 0.3).sum() >= 10  # the random policy ran past the cap often enough to test it
    assert np.allclose(stored, speed_after - 2 * np.maximum(speed_after - 0.3, 0), atol=1e-6)


def test_holds_near_its_cap_under_the_limit():
    """The deterministic ppo-track policy runs near its cap (0.8 m/s) at zero cost (PPO breaks this limit on most
    steps: test_learns.py). At half this budget it still drifted over the limit late in the episode (cost 13)."""
    model = make_learner(
        "ppo-track", VelocityTaskPointEnv(), seed=0, device="cpu", hyperparams={**HP, "track_speed_fraction": 0.8}
    )
    model.learn(40_960)
    env = VelocityTaskPointEnv()
    obs, _ = env.reset(seed=1)
    ret = cost = 0.0
    for _ in range(env.max_episode_steps):
        obs, reward, _, truncated, info = env.step(model.predict(obs, deterministic=True)[0])
        ret, cost = ret + reward, cost + info["cost"]
    assert cost == 0.0
    # reaching 0.8 m/s takes a few steps at 0.3 m/s per step; 100 steps at the cap pay about 78
    assert ret > 0.85 * 78, ret


def test_reads_limit_and_weight_from_a_suite_env():
    env = gym.make("taxbench/HopperVelocity-v0")
    limit, weight = speed_limit_and_weight(env)
    assert limit == pytest.approx(0.7402) and weight == 1.0
    model = make_learner("ppo-track", env, seed=0, device="cpu", hyperparams={"n_steps": 64, "batch_size": 64})
    model.learn(64)
    assert model.track_speed == pytest.approx(0.9 * 0.7402)


def test_refuses_an_env_without_a_speed_limit():
    with pytest.raises(ValueError, match="velocity-limited env"):
        make_learner("ppo-track", gym.make("taxbench/PandaReach-v0"), seed=0, device="cpu")
    with pytest.raises(ValueError, match="velocity-limited env"):  # a plain gym env: refused when learning starts
        make_learner("ppo-track", SpeedLimitedPointEnv(), seed=0, device="cpu").learn(64)
    with pytest.raises(ValueError, match="track_speed_fraction"):
        PPOTrack("MlpPolicy", VelocityTaskPointEnv(), track_speed_fraction=1.5)


def test_intensities_cap_lower_as_they_tighten():
    caps = [
        intensity_settings("taxbench/HopperVelocity-v0", "ppo-track", name)[1]["track_speed_fraction"]
        for name in INTENSITY_NAMES
    ]
    assert caps == sorted(caps, reverse=True) and caps[-1] < 1.0
