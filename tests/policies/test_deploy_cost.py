"""The deployment-aware constraint of ppo-lag and sac-lag: λ also sees the deterministic policy's episode cost.

The toy env makes the two protocols disagree the way HalfCheetahVelocity does: cost 1 per step with the
throttle above 0.5, reward = throttle. Action noise (σ = 1) spreads a stochastic policy's throttle, so
a mean throttle of 0.8 costs 20 × P(0.8 + ε > 0.5) ≈ 12.4 per episode stochastically (under d = 14:
feasible, λ falls) but 20 deterministically (over d: infeasible).
"""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from taxbench.policies import PPOLagrangian, SACLagrangian
from taxbench.policies.deploy_cost import DeployedCostProbe

EPISODE = 20
LIMIT = 14.0


class ThrottleEnv(gym.Env):
    """One-step-state bandit: reward = throttle a ∈ [−1, 1]; cost 1 when a > 0.5; 20-step episodes."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {"cost": 0.0}

    def step(self, action):
        a = float(np.clip(action[0], -1.0, 1.0))
        self.t += 1
        return np.zeros(1, np.float32), a, False, self.t >= EPISODE, {"cost": float(a > 0.5)}


def _model(deploy_episodes, lr=0.0, **kwargs):
    model = PPOLagrangian(
        "MlpPolicy",
        DummyVecEnv([ThrottleEnv]),
        cost_limit=LIMIT,
        lagrange_lr=0.05,
        n_steps=40,
        batch_size=40,
        n_epochs=1,
        learning_rate=lr,
        seed=0,
        device="cpu",
        deploy_cost_episodes=deploy_episodes,
        deploy_env=ThrottleEnv,
        **kwargs,
    )
    with th.no_grad():  # a fixed policy: mean throttle 0.8, σ = 1
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.fill_(0.8)
        model.policy.log_std.zero_()
    return model


def test_lambda_rises_only_when_the_deterministic_policy_is_probed():
    plain = _model(0).learn(400)  # 10 rollouts of 2 episodes
    assert plain.lagrange_multiplier == 0.0  # stochastic episodes cost ~12.4 < 14: the constraint never binds
    aware = _model(1).learn(400)
    assert aware.lagrange_multiplier > 0.0  # the deterministic episode costs 20 > 14
    assert aware._deploy_probe.last_cost == EPISODE and aware._deploy_probe.probes == 10


def test_probe_every_k_rollouts_and_bad_settings():
    model = _model(2, deploy_cost_every=5).learn(400)
    assert model._deploy_probe.probes == 2  # rollouts 1 and 6 of 10
    with pytest.raises(ValueError, match="deploy_cost"):
        _model(-1)
    with pytest.raises(ValueError, match="deploy_cost"):
        DeployedCostProbe(1, every=0)


def test_the_probe_keeps_the_lambda_zero_identity():
    kwargs = {"n_steps": 40, "batch_size": 20, "n_epochs": 2, "seed": 3, "device": "cpu"}
    ppo = PPO("MlpPolicy", DummyVecEnv([ThrottleEnv]), **kwargs).learn(120)
    lag = PPOLagrangian(
        "MlpPolicy",
        DummyVecEnv([ThrottleEnv]),
        lagrange_pinned=True,
        lagrange_init=0.0,
        deploy_cost_episodes=1,
        deploy_env=ThrottleEnv,
        **kwargs,
    ).learn(120)
    assert lag._deploy_probe.probes == 3
    for key, value in ppo.policy.state_dict().items():
        assert th.equal(value, lag.policy.state_dict()[key]), key


def test_save_and_load_keep_the_option_without_the_env(tmp_path):
    model = _model(1).learn(80)
    model.save(tmp_path / "m.zip")
    loaded = PPOLagrangian.load(tmp_path / "m.zip", env=DummyVecEnv([ThrottleEnv]), device="cpu")
    assert loaded.deploy_cost_episodes == 1 and getattr(loaded, "_deploy_probe", None) is None


@pytest.mark.slow
def test_the_option_makes_the_trained_policy_feasible_where_it_is_deployed():
    """Trained from scratch: plain ppo-lag ends deterministically infeasible, the deployment-aware one feasible."""

    def deterministic_cost(model):
        return DeployedCostProbe(3, make_env=ThrottleEnv, seed=123).measure(model)

    results = {}
    for episodes in (0, 1):
        model = PPOLagrangian(
            "MlpPolicy",
            DummyVecEnv([ThrottleEnv]),
            cost_limit=LIMIT,
            lagrange_lr=0.05,
            n_steps=200,
            batch_size=50,
            learning_rate=3e-3,
            seed=0,
            device="cpu",
            deploy_cost_episodes=episodes,
            deploy_env=ThrottleEnv,
        ).learn(12_000)
        results[episodes] = deterministic_cost(model)
    assert results[0] > LIMIT  # feasible on its stochastic training episodes only
    assert results[1] <= LIMIT


def test_the_probe_env_keeps_the_registered_time_limit_behind_a_batched_vector_env():
    from taxbench.envs.core.vector import SafeRobotVectorEnv
    from taxbench.policies.deploy_cost import env_copy
    from taxbench.policies.sb3_vec_env import SB3VectorEnv

    venv = SB3VectorEnv(SafeRobotVectorEnv.from_id("taxbench/HalfCheetahVelocity-v0", 2))
    try:
        env = env_copy(venv)
        assert env.spec.id == "taxbench/HalfCheetahVelocity-v0" and env.spec.max_episode_steps == 1000
        env.close()
    finally:
        venv.close()


def test_the_probe_env_is_rebuilt_without_sb3s_monitor_and_refuses_other_wrappers():
    """SB3's ``make_vec_env`` wraps each env in a Monitor, which a spec cannot rebuild; the probe goes without it.

    A wrapper of the user's that cannot be rebuilt is named in the error instead of being dropped silently.
    """
    from stable_baselines3.common.env_util import make_vec_env

    from taxbench.policies.deploy_cost import env_copy

    venv = make_vec_env("taxbench/HalfCheetahVelocity-v0", n_envs=1)
    env = env_copy(venv)
    assert env.spec.id == "taxbench/HalfCheetahVelocity-v0" and env.spec.additional_wrappers == ()
    env.reset(seed=0)
    assert "cost" in env.step(env.action_space.sample())[4]
    env.close()
    venv.close()

    class Unrecorded(gym.Wrapper):
        """A wrapper without RecordConstructorArgs: its spec entry has no kwargs."""

    venv = make_vec_env("taxbench/HalfCheetahVelocity-v0", n_envs=1, wrapper_class=Unrecorded)
    with pytest.raises(ValueError, match="cannot rebuild the env's wrapper Unrecorded: pass a deploy_env"):
        env_copy(venv)
    venv.close()


def _sac(deploy_episodes, **kwargs):
    """SAC-Lagrangian with a fixed squashed-Gaussian policy: pre-tanh mean 0.8 (throttle tanh 0.8 = 0.66), σ = 1.

    Stochastic throttle > 0.5 with probability P(ε > atanh 0.5 − 0.8) = 0.60: 12 per episode (< d = 14);
    deterministic: 20 per episode (> d)."""
    settings = {"learning_starts": 0, "batch_size": 20, "lagrange_interval": 2 * EPISODE, "learning_rate": 0.0}
    model = SACLagrangian(
        "MlpPolicy",
        DummyVecEnv([ThrottleEnv]),
        cost_limit=LIMIT,
        lagrange_lr=0.05,
        seed=0,
        device="cpu",
        deploy_cost_episodes=deploy_episodes,
        deploy_env=ThrottleEnv,
        **{**settings, **kwargs},
    )
    with th.no_grad():
        for layer, value in ((model.actor.mu, 0.8), (model.actor.log_std, 0.0)):
            layer.weight.zero_()
            layer.bias.fill_(value)
    return model


def test_sac_lag_lambda_rises_only_when_the_deterministic_policy_is_probed():
    plain = _sac(0).learn(400)  # 10 λ updates of 2 episodes each
    assert plain.lagrange_multiplier == 0.0
    aware = _sac(1).learn(400)
    assert aware.lagrange_multiplier > 0.0
    assert aware._deploy_probe.last_cost == EPISODE and aware._deploy_probe.probes == 10
    assert _sac(1, deploy_cost_every=5).learn(400)._deploy_probe.probes == 2
    with pytest.raises(ValueError, match="deploy_cost"):
        _sac(-1)


def test_sac_lag_probe_keeps_the_lambda_zero_identity():
    kwargs = {"learning_starts": 20, "batch_size": 16, "seed": 3, "device": "cpu"}
    sac = SAC("MlpPolicy", DummyVecEnv([ThrottleEnv]), **kwargs).learn(100)
    lag = SACLagrangian(
        "MlpPolicy",
        DummyVecEnv([ThrottleEnv]),
        lagrange_pinned=True,
        lagrange_init=0.0,
        lagrange_interval=40,
        deploy_cost_episodes=1,
        deploy_env=ThrottleEnv,
        **kwargs,
    ).learn(100)
    assert lag._deploy_probe.probes == 2
    for key, value in sac.policy.state_dict().items():
        assert th.equal(value, lag.policy.state_dict()[key]), key
