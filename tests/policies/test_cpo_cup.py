"""CPO (on sb3-contrib TRPO) and CUP (on PPO): the subproblem's solution, the identities with their
unconstrained learners, the constrained steps, save/load."""

import math

import numpy as np
import pytest
import torch as th
from sb3_contrib import TRPO
from scipy.optimize import minimize
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv
from toy_envs import OverspeedPointEnv, SpeedLimitedPointEnv

from taxbench.policies import CPO, CUP, load_learner, make_learner
from taxbench.policies.cpo import cpo_step

DELTA = 0.01
OBS = np.linspace(0, 1, 7, dtype=np.float32).reshape(-1, 1)


def _env(n_envs=2):
    # low speed limit: costs on many steps; truncations and terminations inside the rollouts
    return DummyVecEnv(
        [lambda: SpeedLimitedPointEnv(speed_limit=0.1, max_episode_steps=40, terminate_below=-0.6)] * n_envs
    )


def _same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert th.equal(a[key], b[key]), key


def _same_optimizer(opt_a, opt_b):
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert sa["param_groups"] == sb["param_groups"] and sa["state"].keys() == sb["state"].keys()
    for idx in sa["state"]:
        _same_tensors(sa["state"][idx], sb["state"][idx])


def _step_of(g, b, c, solution):
    if solution.case in (3, 4):
        return math.sqrt(2 * DELTA / (g @ g)) * g
    if solution.case == 0:
        return -math.sqrt(2 * DELTA / (b @ b)) * b
    return (g - solution.nu * b) / solution.lam


def _brute_force(g, b, c, rng):
    constraints = [
        {"type": "ineq", "fun": lambda x: -(c + b @ x)},
        {"type": "ineq", "fun": lambda x: DELTA - 0.5 * x @ x},
    ]
    best = None
    for _ in range(4):
        res = minimize(lambda x: -g @ x, rng.normal(size=len(g)) * 0.01, constraints=constraints, method="SLSQP")
        ok = res.success and c + b @ res.x <= 1e-7 and 0.5 * res.x @ res.x <= DELTA + 1e-7
        if ok and (best is None or g @ res.x > g @ best):
            best = res.x
    return best


def test_cpo_step_solves_the_trust_region_problem():
    """With H = I, the dual solution is the maximiser of gᵀx s.t. c + bᵀx ≤ 0, ½|x|² ≤ δ (SLSQP), in every case;
    the recovery step comes exactly when no point of the trust region is feasible."""
    rng = np.random.default_rng(0)
    cases = set()
    for _ in range(150):
        g, b = rng.normal(size=4), rng.normal(size=4) * rng.choice([0.1, 1.0, 10.0])
        c = rng.normal() * rng.choice([0.01, 0.1, 1.0])
        solution = cpo_step(g @ g, g @ b, b @ b, c, DELTA)
        cases.add(solution.case)
        feasible_somewhere = c - math.sqrt(2 * DELTA * (b @ b)) <= 0
        assert (solution.case == 0) == (not feasible_somewhere)
        if solution.case == 0:
            continue
        expected = _brute_force(g, b, c, rng)
        np.testing.assert_allclose(_step_of(g, b, c, solution), expected, atol=1e-4)
    assert cases >= {0, 1, 2, 3}
    assert cpo_step(1.0, 0.0, 0.0, -1.0, DELTA).case == 4 and cpo_step(1.0, 0.0, 0.0, 1.0, DELTA).case == 5
    assert cpo_step(1.0, 0.5, 1.0, None, DELTA).case == 3  # no episode cost measured yet


def test_cpo_with_a_slack_constraint_is_trpo_bit_for_bit():
    """Same seed, 2 envs, 4 updates, cost limit 1e9 (trust region always inside the linearised constraint):
    policy weights (actor and reward critic) and Adam state after training equal TRPO's exactly."""
    kwargs = {"n_steps": 64, "batch_size": 32, "n_critic_updates": 3, "seed": 3, "device": "cpu"}
    trpo = TRPO("MlpPolicy", _env(), **kwargs).learn(4 * 128)
    cpo = CPO("MlpPolicy", _env(), cost_limit=1e9, **kwargs)
    critic_at_init = {k: v.clone() for k, v in cpo.cost_critic.state_dict().items()}
    cpo.learn(4 * 128)
    assert trpo._n_updates == cpo._n_updates == 4
    _same_tensors(trpo.policy.state_dict(), cpo.policy.state_dict())
    _same_optimizer(trpo.policy.optimizer, cpo.policy.optimizer)
    # the cost side really ran: costs were recorded, J_c estimated, the cost critic trained, the case was "slack"
    assert cpo.rollout_buffer.costs.sum() > 0 and cpo.episode_cost_estimate > 0
    assert cpo.last_step.case == 3 and cpo.lagrange_multiplier == 0.0
    assert any(not th.equal(critic_at_init[k], v) for k, v in cpo.cost_critic.state_dict().items())


def test_cpo_infeasible_steps_away_from_trpo_and_lowers_speed():
    """Limit 0 on the speed-limited point mass (every fast step costs): the update is a recovery or a binding
    step, and the policy ends slower than TRPO's from the same seed."""
    kwargs = {"n_steps": 64, "batch_size": 32, "n_critic_updates": 3, "seed": 3, "device": "cpu"}
    trpo = TRPO("MlpPolicy", _env(), **kwargs).learn(6 * 128)
    cpo = CPO("MlpPolicy", _env(), cost_limit=0.0, **kwargs).learn(6 * 128)
    assert cpo.last_step.case in (0, 1)
    obs = np.stack([np.linspace(0, 1, 11), np.zeros(11)], axis=1).astype(np.float32)
    speed_cpo = cpo.predict(obs, deterministic=True)[0].mean()
    speed_trpo = trpo.predict(obs, deterministic=True)[0].mean()
    assert speed_cpo < speed_trpo


def test_cup_at_lambda_zero_is_ppo_bit_for_bit():
    kwargs = {"n_steps": 64, "batch_size": 32, "n_epochs": 4, "seed": 7, "device": "cpu"}
    ppo = PPO("MlpPolicy", _env(), **kwargs).learn(256)
    cup = CUP("MlpPolicy", _env(), lagrange_pinned=True, lagrange_init=0.0, **kwargs).learn(256)
    _same_tensors(ppo.policy.state_dict(), cup.policy.state_dict())
    _same_optimizer(ppo.policy.optimizer, cup.policy.optimizer)
    assert cup.rollout_buffer.costs.sum() > 0


def test_cup_projection_lowers_the_cost_surrogate():
    """λ pinned at 1: after the same stage 1 (PPO), the projection moves the policy to a lower cost surrogate
    mean(ρ·Ā_c) on the rollout than PPO's policy, and stays within a small KL of it."""
    kwargs = {"n_steps": 256, "batch_size": 64, "n_epochs": 4, "seed": 1, "device": "cpu"}
    env_fn = [OverspeedPointEnv] * 2
    ppo = CUP("MlpPolicy", DummyVecEnv(env_fn), lagrange_pinned=True, lagrange_init=0.0, **kwargs).learn(512)
    cup = CUP("MlpPolicy", DummyVecEnv(env_fn), lagrange_pinned=True, lagrange_init=1.0, **kwargs).learn(512)
    buffer = cup.rollout_buffer
    np.testing.assert_array_equal(buffer.costs, ppo.rollout_buffer.costs)  # the same rollout
    obs, actions = th.as_tensor(buffer.observations), th.as_tensor(buffer.actions)
    old_log_prob = th.as_tensor(buffer.log_probs)
    cost_adv = th.as_tensor(buffer.flat_cost_advantages())
    cost_adv = cost_adv - cost_adv.mean()

    def surrogate(model):
        with th.no_grad():
            log_prob = model.policy.get_distribution(obs).log_prob(actions)
        return float((th.exp(log_prob - old_log_prob) * cost_adv).mean())

    assert surrogate(cup) < surrogate(ppo)
    assert cup.logger.name_to_value["cup/projection_kl"] <= 3 * cup.projection_target_kl


@pytest.mark.parametrize("arm", ["cpo", "cup", "trpo"])
def test_arm_round_trips(tmp_path, arm):
    hp = {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "lagrange_lr": 0.5, "clip_range": 0.3}
    model = make_learner(
        arm, DummyVecEnv([OverspeedPointEnv] * 2), seed=1, device="cpu", cost_limit=1.0, hyperparams=hp
    )
    model.learn(256)
    model.save(tmp_path / "m.zip")
    loaded = load_learner(tmp_path / "m.zip", device="cpu")
    assert type(loaded) is type(model) and loaded.taxbench_arm == arm
    np.testing.assert_array_equal(model.predict(OBS, deterministic=True)[0], loaded.predict(OBS, deterministic=True)[0])
    if arm != "trpo":
        _same_tensors(model.cost_critic.state_dict(), loaded.cost_critic.state_dict())
        assert loaded.cost_limit == 1.0
        np.testing.assert_equal(loaded.lagrange_multiplier, model.lagrange_multiplier)  # NaN after a recovery step
    if arm == "cup":
        assert model.lagrange_multiplier > 0 and loaded.lagrange.state_dict() == model.lagrange.state_dict()
    if arm == "cpo":
        assert loaded.episode_cost_estimate == model.episode_cost_estimate > 1.0


def test_cpo_family_drops_ppo_only_hyperparams():
    hp = {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "clip_range": 0.3, "ent_coef": 0.1, "target_kl": None}
    model = make_learner("cpo", OverspeedPointEnv(), seed=0, device="cpu", cost_limit=5.0, hyperparams=hp)
    assert isinstance(model, CPO) and model.target_kl == 0.01 and model.n_steps == 64 and model.cost_limit == 5.0
    with pytest.raises(ValueError, match="cost_limit"):
        CPO("MlpPolicy", OverspeedPointEnv(), cost_limit=-1.0)
