import math

import pytest
import torch as th
from stable_baselines3 import PPO
from toy_envs import NoCostEnv, SpeedLimitedPointEnv

from taxbench.policies import ARMS, PPOLagrangian, make_learner, resolve_device

HP = {"n_steps": 32, "batch_size": 16, "n_epochs": 1}


def test_arms():
    expected = ("ppo", "ppo-lag", "ppo-penalty", "ppo-shield", "ppo-track", "cup", "saute", "trpo", "cpo", "sac")
    expected = (*expected, "sac-lag")
    assert ARMS == expected


@pytest.mark.parametrize("arm", ["ppo", "ppo-lag"])
def test_make_learner_runs(arm):
    model = make_learner(arm, SpeedLimitedPointEnv(), seed=0, device="cpu", cost_limit=5.0, hyperparams=HP)
    assert isinstance(model, PPO)
    assert model.n_steps == 32 and model.batch_size == 16 and model.n_epochs == 1
    assert model.taxbench_arm == arm
    model.learn(64)
    if arm == "ppo-lag":
        assert isinstance(model, PPOLagrangian)
        assert model.cost_limit == 5.0
    else:
        assert type(model) is PPO


@pytest.mark.parametrize("arm", ["sac", "sac-lag", "ppo-lag"])
def test_make_learner_leaves_the_callers_hyperparams_alone(arm):
    """SB3 writes into policy_kwargs (SAC adds use_sde): a run config reused for a resume must not change."""
    hp = {"learning_starts": 10} if arm.startswith("sac") else dict(HP)
    hp["policy_kwargs"] = {"net_arch": [8]}
    before = repr(hp)
    model = make_learner(arm, SpeedLimitedPointEnv(), seed=0, device="cpu", hyperparams=hp)
    assert repr(hp) == before
    assert model.taxbench_build["hyperparams"] == hp  # the recorded build is what was asked for


def test_ppo_defaults_when_no_hyperparams():
    model = make_learner("ppo-lag", SpeedLimitedPointEnv(), seed=0, device="cpu")
    reference = PPO("MlpPolicy", SpeedLimitedPointEnv(), seed=0, device="cpu")
    for name in ("n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "ent_coef", "vf_coef", "max_grad_norm"):
        assert getattr(model, name) == getattr(reference, name), name
    assert model.cost_limit == 25.0 and model.cost_gamma == reference.gamma


def test_lagrangian_kwargs_ignored_by_ppo_arm():
    hp = {**HP, "lagrange_lr": 0.1, "cost_gamma": 0.9}
    assert type(make_learner("ppo", SpeedLimitedPointEnv(), seed=0, device="cpu", hyperparams=hp)) is PPO
    lag = make_learner("ppo-lag", SpeedLimitedPointEnv(), seed=0, device="cpu", hyperparams=hp)
    assert lag.lagrange.lr == 0.1 and lag.cost_gamma == 0.9


def test_unknown_arm_lists_valid_ones():
    valid = r"ppo, ppo-lag, ppo-penalty, ppo-shield, ppo-track, cup, saute, trpo, cpo, sac, sac-lag"
    with pytest.raises(ValueError, match=valid):
        make_learner("td3-lag", SpeedLimitedPointEnv(), seed=0)


@pytest.mark.parametrize("limit", [-1.0, math.nan, math.inf])
@pytest.mark.parametrize("arm", ARMS)
def test_bad_cost_limit(arm, limit):
    with pytest.raises(ValueError, match="cost_limit"):
        make_learner(arm, SpeedLimitedPointEnv(), seed=0, cost_limit=limit)


def test_reserved_hyperparams():
    with pytest.raises(ValueError, match="seed"):
        make_learner("ppo", SpeedLimitedPointEnv(), seed=0, hyperparams={"seed": 1})


@pytest.mark.parametrize(
    "kwargs",
    [{"lagrange_lr": -1.0}, {"cost_gamma": 1.5}, {"cost_gae_lambda": -0.1}, {"cost_critic_lr": 0.0}],
)
def test_bad_lagrangian_kwargs(kwargs):
    with pytest.raises(ValueError):
        PPOLagrangian("MlpPolicy", SpeedLimitedPointEnv(), **kwargs)


def test_rejects_foreign_buffer_class():
    from stable_baselines3.common.buffers import RolloutBuffer

    with pytest.raises(ValueError, match="CostRolloutBuffer"):
        PPOLagrangian("MlpPolicy", SpeedLimitedPointEnv(), rollout_buffer_class=RolloutBuffer)


def test_resolve_device():
    assert resolve_device("auto") == ("cuda" if th.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    # a CUDA device that is not there is refused, never silently replaced by the CPU
    missing = f"cuda:{th.cuda.device_count()}"
    with pytest.raises(ValueError, match="CUDA device"):
        resolve_device(missing)
    if not th.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device"):
            resolve_device("cuda")


def test_missing_cost_key_warns_once_and_counts_zero():
    model = PPOLagrangian("MlpPolicy", NoCostEnv(), seed=0, device="cpu", cost_limit=0.0, **HP)
    with pytest.warns(UserWarning, match="no 'cost' key") as record:
        model.learn(96)
    assert sum("no 'cost' key" in str(w.message) for w in record) == 1
    assert model.rollout_buffer.costs.sum() == 0.0
    assert model.lagrange_multiplier == 0.0


def test_negative_cost_is_rejected():
    class NegativeCost(SpeedLimitedPointEnv):
        def step(self, action):
            obs, reward, terminated, truncated, info = super().step(action)
            return obs, reward, terminated, truncated, {**info, "cost": -1.0}

    model = PPOLagrangian("MlpPolicy", NegativeCost(), seed=0, device="cpu", **HP)
    with pytest.raises(ValueError, match="finite and >= 0"):
        model.learn(32)
