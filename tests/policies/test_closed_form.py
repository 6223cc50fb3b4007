"""Safety arms against a constrained optimum known in closed form (OverspeedPointEnv, seeded).

Env: 50-step episodes, speed limit 1 m/s, cost 2·(v − 1)₊² per step, limit d = 25 per episode, so
J* = 75 (constant 1.5 m/s), λ* = 0.5; the unconstrained optimum (3 m/s) earns 150 at cost 400.
"""

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv
from toy_envs import OverspeedPointEnv, overspeed_optimum

from taxbench.policies import SafetyMetricsCallback, env_wrapper, make_learner

COST_LIMIT = 25.0
J_STAR, V_STAR, LAMBDA_STAR = overspeed_optimum(OverspeedPointEnv(), COST_LIMIT)
PPO_HP = {
    "n_steps": 256,
    "batch_size": 256,
    "n_epochs": 10,
    "learning_rate": 1e-3,
    "policy_kwargs": {"log_std_init": -1.0},
}
SAC_HP = {
    "learning_starts": 500,
    "batch_size": 128,
    "policy_kwargs": {"net_arch": [64, 64]},
    "train_freq": 50,
    "gradient_steps": 50,
    "lagrange_interval": 500,
    "lagrange_lr": 0.01,
}


def test_closed_form():
    assert (J_STAR, V_STAR, LAMBDA_STAR) == pytest.approx((75.0, 1.5, 0.5))


def _train(arm, seed, steps, **extra):
    if arm.startswith("sac"):
        env, hp = OverspeedPointEnv(), {**SAC_HP, **extra}
    else:  # saute: PPO on the budget-augmented env (budget = the limit); cpo and trpo drop PPO-only keys
        hp = {**PPO_HP, "saute_budget": COST_LIMIT, **extra}
        wrap = env_wrapper(arm, hp)
        env = DummyVecEnv([(lambda: wrap(OverspeedPointEnv())) if wrap else OverspeedPointEnv] * 4)
    model = make_learner(arm, env, seed=seed, device="cpu", cost_limit=COST_LIMIT, hyperparams=hp)
    callback = SafetyMetricsCallback()
    model.learn(steps, callback=callback)
    return model, callback.history


def _deterministic_episode(model):
    wrap = env_wrapper(model.taxbench_arm, {"saute_budget": COST_LIMIT})
    env = wrap(OverspeedPointEnv()) if wrap else OverspeedPointEnv()
    obs, _ = env.reset(seed=0)
    total_return = total_cost = 0.0
    for _ in range(OverspeedPointEnv().horizon):
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, _, _, info = env.step(action)
        total_return += info.get("reward_task", reward)  # the env's reward, not Saute's replacement
        total_cost += info["cost"]
    return total_return, total_cost


def first_overshoot(history, limit=COST_LIMIT):
    """Peak of the episode cost above the limit during its first excursion above it (0 if it never crosses)."""
    costs = [row["ep_cost"] for row in history]
    start = next((i for i, cost in enumerate(costs) if cost > limit), None)
    if start is None:
        return 0.0
    end = next((i for i in range(start, len(costs)) if costs[i] <= limit), len(costs))
    return max(costs[start:end]) - limit


def _assert_near_optimum(model):
    ret, cost = _deterministic_episode(model)
    assert abs(ret - J_STAR) <= 0.15 * J_STAR, (ret, cost)
    assert cost <= COST_LIMIT, (ret, cost)
    return ret, cost


def test_penalty_at_matching_beta_short():
    """Always runs (~6 s): β = λ* moves the policy off both trivial answers (1 m/s: 50, 3 m/s: 150)."""
    model, _ = _train("ppo-penalty", 0, 16_384, penalty_coef=LAMBDA_STAR)
    ret, _ = _deterministic_episode(model)
    assert 55.0 < ret < 90.0


def test_pid_overshoots_less_short():
    """Always runs (~12 s): one seed, the PID multiplier's first overshoot is below the gradient one's."""
    _, grad = _train("ppo-lag", 0, 20_480)
    _, pid = _train("ppo-lag", 0, 20_480, lagrange_method="pid")
    assert first_overshoot(grad) > 0  # the limit was crossed, so the comparison means something
    assert first_overshoot(pid) < first_overshoot(grad)


def test_sac_lag_multiplier_rises_short():
    """Always runs (~10 s): SAC-Lag's λ rises once episodes cost more than the limit, and its cost critic
    ranks the fast action costlier than the slow one."""
    model, _ = _train("sac-lag", 0, 1_500, learning_starts=300, lagrange_lr=0.05)
    assert model.lagrange_multiplier > 0.0
    obs = np.array([[0.5], [0.5]], dtype=np.float32)
    fast_slow = model.predict_cost_values(obs, np.array([[1.0], [0.0]], dtype=np.float32))
    assert fast_slow[0] > fast_slow[1]


def _late_cost(history, rollouts=4):
    return float(np.mean([row["ep_cost"] for row in history[-rollouts:]]))


@pytest.mark.parametrize(("arm", "partner"), [("cpo", "trpo"), ("cup", "ppo"), ("saute", "ppo")])
def test_new_arm_holds_cost_below_its_partner_short(arm, partner):
    """Always runs (~10-15 s each): 10k steps from the same seed, the unconstrained partner climbs well above the
    limit (it heads for 3 m/s, cost 400) while the arm's late episode cost stays near it; and its mechanism
    engaged: CPO took constrained steps (ν > 0 or a recovery step), CUP's λ left 0, Saute's policy slows down
    when the budget is spent."""
    _, free = _train(partner, 0, 10_240)
    model, history = _train(arm, 0, 10_240)
    assert _late_cost(free) > 2 * COST_LIMIT
    assert _late_cost(history) < 1.5 * COST_LIMIT < _late_cost(free)
    if arm == "cpo":
        assert any(not (row["lambda"] == 0.0) for row in history)  # ν > 0 or NaN (recovery)
    elif arm == "cup":
        assert max(row["lambda"] for row in history) > 0.0
    else:
        t = np.full(1, 0.5, dtype=np.float32)
        fresh, spent = np.append(t, 1.0)[None], np.append(t, -0.5)[None]
        assert model.predict(spent, deterministic=True)[0][0, 0] < model.predict(fresh, deterministic=True)[0][0, 0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arm", "steps", "extra"),
    [
        ("ppo-lag", 61_440, {}),
        # Kp 0.5: at OmniSafe's Kp 0.1 the PID multiplier still hovers around d at 61k steps (deterministic cost
        # 25.4-26.0, stochastic 25.9-29.0 at 61k-102k steps); Kp 0.5 settles below it (23.1 / 23.7 on seeds 0 / 1)
        ("ppo-lag", 61_440, {"lagrange_method": "pid", "pid_kp": 0.5}),
        # β = 1.2·λ*: at β = λ* the penalised optimum sits exactly on d, so its deterministic cost lands on either
        # side of 25 with the last digits of the arithmetic (25 or below on one machine, 28.3 on another with the
        # same library versions); at 1.2·λ* the optimum is v = 1 + 1/(4β) = 1.417 m/s, J = 70.8 at cost 17.4
        # (measured: J 73.2 at cost 21.5)
        ("ppo-penalty", 61_440, {"penalty_coef": 1.2 * LAMBDA_STAR}),
        ("sac-lag", 8_000, {}),
    ],
    ids=["ppo-lag-grad", "ppo-lag-pid", "ppo-penalty", "sac-lag"],
)
def test_arm_reaches_constrained_optimum(arm, steps, extra):
    """Each arm ends within 15% of J* = 75 and within its limit (deterministic policy)."""
    model, _ = _train(arm, 0, steps, **extra)
    _assert_near_optimum(model)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("arm", "steps", "extra"), [("cpo", 61_440, {}), ("cup", 122_880, {}), ("saute", 61_440, {})])
def test_new_arm_reaches_constrained_optimum(arm, steps, extra, seed):
    """CPO, CUP and Saute, seeds 0-2: within 15% of J* = 75 and within the limit (deterministic policy).

    Measured (torch 2.13, SB3 2.9.2, seeds 0/1/2): cpo J 74.9 / 74.9 / 74.9 at cost 24.8 / 24.8 / 24.8; cup 69.6 /
    70.9 / 73.9 at 15.6 / 17.6 / 22.8. Saute reaches the band only because the horizon terminates the episode (see
    ``OverspeedPointEnv``): with it reported as a truncation, SB3's bootstrap paid for budget left at the end and
    Saute stalled at J 60.8 / 60.6 / 60.7 with cost 4.9 of 25 (neither a smaller action std, γ = 0.999, a harsher
    unsafe reward nor 123k steps moved it).
    """
    model, _ = _train(arm, seed, steps, **extra)
    print(arm, seed, _assert_near_optimum(model))


@pytest.mark.slow
def test_pid_overshoot_smaller_over_seeds():
    """Seeds 0-2, 24k steps: the PID multiplier's mean first overshoot is below the gradient multiplier's."""
    grad = [first_overshoot(_train("ppo-lag", seed, 24_576)[1]) for seed in range(3)]
    pid = [first_overshoot(_train("ppo-lag", seed, 24_576, lagrange_method="pid")[1]) for seed in range(3)]
    print("first overshoot, grad:", grad, "pid:", pid)
    assert np.mean(pid) < np.mean(grad), (grad, pid)
