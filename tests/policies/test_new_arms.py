"""ppo-penalty, sac, sac-lag, PID multiplier and intensities: construction, identity, save/load, dose tables."""

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.vec_env import DummyVecEnv
from toy_envs import OverspeedPointEnv

from taxbench.policies import (
    ARMS,
    INTENSITY_NAMES,
    PIDLagrange,
    PPOLagrangian,
    PPOPenalty,
    SACLagrangian,
    intensity_settings,
    load_learner,
    make_learner,
    preset_for,
    unconstrained_partner,
)

PPO_HP = {"n_steps": 64, "batch_size": 32, "n_epochs": 2}
SAC_HP = {
    "learning_starts": 32,
    "batch_size": 32,
    "policy_kwargs": {"net_arch": [16, 16]},
    "train_freq": 16,
    "gradient_steps": 4,
    "lagrange_interval": 50,
}
OBS = np.linspace(0, 1, 7, dtype=np.float32).reshape(-1, 1)


def _same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert th.equal(a[key], b[key]), key


def test_penalty_zero_is_ppo_bit_for_bit():
    ppo = PPO("MlpPolicy", DummyVecEnv([OverspeedPointEnv] * 2), seed=5, device="cpu", **PPO_HP)
    ppo.learn(256)
    env = DummyVecEnv([OverspeedPointEnv] * 2)
    pen = PPOPenalty("MlpPolicy", env, penalty_coef=0.0, seed=5, device="cpu", **PPO_HP)
    pen.learn(256)
    _same_tensors(ppo.policy.state_dict(), pen.policy.state_dict())


def test_penalty_subtracts_beta_cost():
    model = PPOPenalty("MlpPolicy", OverspeedPointEnv(), penalty_coef=0.5, seed=0, device="cpu", **PPO_HP)
    model.learn(64)
    speeds = 3.0 * np.clip(model.rollout_buffer.actions.reshape(64, -1)[:, 0], -1, 1)
    costs = 2.0 * np.maximum(speeds - 1.0, 0.0) ** 2
    stored = model.rollout_buffer.rewards.reshape(64)
    keep = np.arange(64) != 49  # step 50 ends the episode by time limit: SB3 adds the bootstrap value there
    np.testing.assert_allclose(stored[keep], (speeds - 0.5 * costs)[keep], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="penalty_coef"):
        PPOPenalty("MlpPolicy", OverspeedPointEnv(), penalty_coef=-1.0)


def test_sac_lag_pinned_zero_is_sac_bit_for_bit():
    sac = SAC(
        "MlpPolicy",
        OverspeedPointEnv(),
        seed=2,
        device="cpu",
        **{k: v for k, v in SAC_HP.items() if k != "lagrange_interval"},
    )
    sac.learn(200)
    lag = SACLagrangian("MlpPolicy", OverspeedPointEnv(), seed=2, device="cpu", lagrange_pinned=True, **SAC_HP)
    lag.learn(200)
    _same_tensors(sac.policy.state_dict(), lag.policy.state_dict())
    assert lag.replay_buffer.costs[:200].sum() > 0  # costs were stored, and the cost critic trained on them


@pytest.mark.parametrize("arm", ["ppo-penalty", "ppo-shield", "sac", "sac-lag"])
def test_arm_builds_learns_and_round_trips(tmp_path, arm):
    env = DummyVecEnv([OverspeedPointEnv]) if arm.startswith("sac") else DummyVecEnv([OverspeedPointEnv] * 2)
    hp = {**(SAC_HP if arm.startswith("sac") else PPO_HP), "penalty_coef": 0.3, "lagrange_lr": 0.2}
    model = make_learner(arm, env, seed=1, device="cpu", cost_limit=1.0, hyperparams=hp)
    model.learn(256)
    assert model.taxbench_arm == arm and str(model.device) == "cpu"
    model.save(tmp_path / "m.zip")
    loaded = load_learner(tmp_path / "m.zip", device="cpu")
    assert type(loaded) is type(model) and loaded.taxbench_arm == arm
    np.testing.assert_array_equal(model.predict(OBS, deterministic=True)[0], loaded.predict(OBS, deterministic=True)[0])
    if arm == "sac-lag":
        assert model.lagrange_multiplier > 0 and loaded.lagrange_multiplier == model.lagrange_multiplier
        _same_tensors(model.cost_critic.state_dict(), loaded.cost_critic.state_dict())
    if arm == "ppo-penalty":
        assert loaded.penalty_coef == 0.3 and loaded.rollout_buffer.penalty_coef == 0.3


def test_each_arm_keeps_only_its_safety_kwargs():
    hp = {**PPO_HP, "penalty_coef": 2.0, "lagrange_method": "pid", "shield_speed_fraction": 0.5}
    assert type(make_learner("ppo", OverspeedPointEnv(), seed=0, device="cpu", hyperparams=hp)) is PPO
    lag = make_learner("ppo-lag", OverspeedPointEnv(), seed=0, device="cpu", hyperparams=hp)
    assert isinstance(lag, PPOLagrangian) and isinstance(lag.lagrange, PIDLagrange)
    assert make_learner("ppo-penalty", OverspeedPointEnv(), seed=0, device="cpu", hyperparams=hp).penalty_coef == 2.0


def test_pid_ppo_lag_round_trip(tmp_path):
    model = make_learner(
        "ppo-lag",
        OverspeedPointEnv(),
        seed=0,
        device="cpu",
        cost_limit=0.0,
        hyperparams={**PPO_HP, "lagrange_method": "pid"},
    )
    model.learn(256)
    model.save(tmp_path / "pid.zip")
    loaded = load_learner(tmp_path / "pid.zip", device="cpu")
    assert isinstance(loaded.lagrange, PIDLagrange)
    assert loaded.lagrange.state_dict() == model.lagrange.state_dict() and model.lagrange_multiplier > 0


def test_partners():
    partners = ["ppo", "ppo", "ppo", "ppo", "ppo", "ppo", "ppo", "trpo", "trpo", "sac", "sac"]
    assert [unconstrained_partner(a) for a in ARMS] == partners


def test_intensities_order_the_dose():
    env_id = "taxbench/HalfCheetahSlowZone-v0"
    limits = [intensity_settings(env_id, "ppo-lag", name)[0] for name in INTENSITY_NAMES]
    betas = [intensity_settings(env_id, "ppo-penalty", name)[1]["penalty_coef"] for name in INTENSITY_NAMES]
    caps = [intensity_settings(env_id, "ppo-shield", name)[1]["shield_speed_fraction"] for name in INTENSITY_NAMES]
    assert limits == sorted(limits, reverse=True) and betas == sorted(betas) and caps == sorted(caps, reverse=True)
    assert intensity_settings(env_id, "sac-lag", "strict")[0] == limits[-1]
    assert intensity_settings(env_id, "ppo", "mild") == (None, {})
    with pytest.raises(ValueError, match="mild, moderate, strict"):
        intensity_settings(env_id, "ppo-lag", "extreme")


def test_presets_share_hyperparams_within_a_family():
    preset = preset_for("taxbench/HalfCheetahSlowZone-v0")
    assert preset.for_arm("ppo") == preset.for_arm("ppo-lag") == preset.for_arm("ppo-shield")
    assert preset.for_arm("sac") == preset.for_arm("sac-lag") != preset.for_arm("ppo")
