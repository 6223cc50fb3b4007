import zipfile

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv
from toy_envs import SpeedLimitedPointEnv

from taxbench.policies import PPOLagrangian, load_learner, make_learner

HP = {"n_steps": 64, "batch_size": 32, "n_epochs": 2}
OBS = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)


def _trained_lag(n_envs=1):
    env = DummyVecEnv([lambda: SpeedLimitedPointEnv(speed_limit=0.1, max_episode_steps=32)] * n_envs)
    model = make_learner("ppo-lag", env, seed=3, device="cpu", cost_limit=1.0, hyperparams=HP)
    model.learn(4 * 64 * n_envs)
    assert model.lagrange_multiplier > 0  # λ moved, so the round trip is meaningful
    return model


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert th.equal(a[key], b[key]), key


def _assert_same_optimizer(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["state"].keys() == sb["state"].keys()
    for idx in sa["state"]:
        _assert_same_state(sa["state"][idx], sb["state"][idx])


@pytest.mark.parametrize("loader", ["class", "registry"])
def test_ppo_lag_round_trip(tmp_path, loader):
    model = _trained_lag()
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = PPOLagrangian.load(path, device="cpu") if loader == "class" else load_learner(path, device="cpu")
    assert isinstance(loaded, PPOLagrangian)
    assert loaded.lagrange_multiplier == model.lagrange_multiplier
    assert loaded.lagrange.state_dict() == model.lagrange.state_dict()
    assert loaded.cost_limit == model.cost_limit == 1.0
    assert loaded.cost_gamma == model.cost_gamma
    _assert_same_state(model.cost_critic.state_dict(), loaded.cost_critic.state_dict())
    _assert_same_optimizer(model.cost_critic_optimizer, loaded.cost_critic_optimizer)
    _assert_same_state(model.policy.state_dict(), loaded.policy.state_dict())
    actions, _ = model.predict(OBS, deterministic=True)
    loaded_actions, _ = loaded.predict(OBS, deterministic=True)
    assert np.array_equal(actions, loaded_actions)
    assert np.array_equal(model.predict_cost_values(OBS), loaded.predict_cost_values(OBS))
    # the cost critic's own shuffle stream continues where it was
    assert model._cost_rng.integers(1 << 30) == loaded._cost_rng.integers(1 << 30)


def test_loaded_model_keeps_training_with_more_envs(tmp_path):
    model = _trained_lag()
    model.save(tmp_path / "m")
    env = DummyVecEnv([lambda: SpeedLimitedPointEnv(speed_limit=0.1, max_episode_steps=32)] * 2)
    loaded = load_learner(tmp_path / "m", env=env, device="cpu")  # suffix optional, like SB3
    before = loaded.lagrange_multiplier
    loaded.learn(2 * 64 * 2, reset_num_timesteps=False)
    assert loaded.rollout_buffer.costs.shape == (64, 2)
    assert loaded.lagrange_multiplier != before


def test_ppo_arm_round_trip(tmp_path):
    model = make_learner("ppo", SpeedLimitedPointEnv(), seed=1, device="cpu", hyperparams=HP)
    model.learn(64)
    model.save(tmp_path / "ppo.zip")
    loaded = load_learner(tmp_path / "ppo.zip", device="cpu")
    assert type(loaded) is PPO
    assert loaded.taxbench_arm == "ppo"
    assert np.array_equal(model.predict(OBS, deterministic=True)[0], loaded.predict(OBS, deterministic=True)[0])


def test_plain_sb3_zip_is_recognised(tmp_path):
    PPOLagrangian("MlpPolicy", SpeedLimitedPointEnv(), seed=0, device="cpu", **HP).save(tmp_path / "lag.zip")
    PPO("MlpPolicy", SpeedLimitedPointEnv(), seed=0, device="cpu", **HP).save(tmp_path / "ppo.zip")
    assert isinstance(load_learner(tmp_path / "lag.zip", device="cpu"), PPOLagrangian)
    assert type(load_learner(tmp_path / "ppo.zip", device="cpu")) is PPO


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved learner"):
        load_learner(tmp_path / "nope.zip")


def test_not_a_zip(tmp_path):
    path = tmp_path / "garbage.zip"
    path.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="not a readable SB3 model zip"):
        load_learner(path)


def test_truncated_zip(tmp_path):
    model = _trained_lag()
    path = tmp_path / "model.zip"
    model.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable SB3 model zip"):
        load_learner(path)


def test_corrupt_parameters(tmp_path):
    model = _trained_lag()
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    model.save(good)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            payload = src.read(item.filename)
            dst.writestr(item, b"\x00" * 64 if item.filename == "policy.pth" else payload)
    with pytest.raises(ValueError, match="cannot restore 'ppo-lag'"):
        load_learner(bad)
