import math

import numpy as np
import pytest
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv
from toy_envs import SpeedLimitedPointEnv

from taxbench.policies import METRIC_KEYS, SafetyMetricsCallback, make_learner

HP = {"n_steps": 32, "batch_size": 16, "n_epochs": 1}


class SuccessEnv(SpeedLimitedPointEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, {**info, "is_success": self._v > 0.0}


@pytest.mark.parametrize("arm", ["ppo", "ppo-lag"])
def test_metrics_per_rollout(arm):
    env = DummyVecEnv([lambda: SpeedLimitedPointEnv(speed_limit=0.05, max_episode_steps=10)] * 2)
    model = make_learner(arm, env, seed=0, device="cpu", cost_limit=1.0, hyperparams=HP)
    rows = []
    callback = SafetyMetricsCallback(sink=rows.append)
    model.learn(3 * 32 * 2, callback=callback)
    assert rows == callback.history
    assert len(rows) == 3
    for index, row in enumerate(rows):
        assert tuple(row) == METRIC_KEYS
        assert row["steps"] == (index + 1) * 64
        # 10-step episodes (truncation), 32 steps × 2 envs per rollout
        assert row["episodes"] in (6, 8)
        assert row["ep_length"] == 10.0
        assert 0.0 <= row["violation_rate"] <= 1.0
        assert 0.0 <= row["ep_cost"] <= 10.0
        assert math.isnan(row["success_rate"])
        assert row["fps"] > 0
    if arm == "ppo":
        assert all(math.isnan(row["lambda"]) for row in rows)
    else:
        assert rows[-1]["lambda"] == model.lagrange_multiplier
        assert any(row["lambda"] > 0 for row in rows)


def test_episode_stats_match_monitor_and_learner():
    """Episode stats equal SB3's Monitor (returns, lengths) and the learner's own cost tally."""
    env = SpeedLimitedPointEnv(speed_limit=0.05, max_episode_steps=8)  # SB3 wraps it in a Monitor
    model = make_learner("ppo-lag", env, seed=1, device="cpu", hyperparams={**HP, "n_steps": 16})
    callback = SafetyMetricsCallback()
    model.learn(16, callback=callback)
    row = callback.history[0]
    assert row["episodes"] == 2
    assert row["ep_length"] == 8.0
    assert row["ep_return"] == pytest.approx(np.mean([info["r"] for info in model.ep_info_buffer]), abs=1e-5)
    assert row["ep_cost"] == model.lagrange.last_episode_cost
    assert row["violation_rate"] == pytest.approx(row["ep_cost"] * 2 / 16)


def test_logs_under_safety_prefix(tmp_path):
    model = make_learner("ppo-lag", SpeedLimitedPointEnv(max_episode_steps=8), seed=0, device="cpu", hyperparams=HP)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(64, callback=SafetyMetricsCallback())
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    for key in ("safety/ep_cost", "safety/violation_rate", "safety/lambda", "lagrange/lambda", "train/cost_value_loss"):
        assert key in header


def test_success_rate():
    env = DummyVecEnv([lambda: SuccessEnv(max_episode_steps=8)])
    model = make_learner("ppo", env, seed=0, device="cpu", hyperparams=HP)
    callback = SafetyMetricsCallback()
    model.learn(32, callback=callback)
    assert 0.0 <= callback.history[0]["success_rate"] <= 1.0


def test_no_episode_finished_gives_nan():
    env = DummyVecEnv([lambda: SpeedLimitedPointEnv(max_episode_steps=1000)])
    model = make_learner("ppo-lag", env, seed=0, device="cpu", cost_limit=0.0, hyperparams=HP)
    callback = SafetyMetricsCallback()
    model.learn(32, callback=callback)
    row = callback.history[0]
    assert row["episodes"] == 0
    assert math.isnan(row["ep_return"]) and math.isnan(row["ep_cost"]) and math.isnan(row["ep_length"])
    assert row["lambda"] == 0.0  # no finished episode: λ kept
