"""PPO-Lagrangian keeps the speed limit that PPO learns to break (toy point mass, seeded)."""

import numpy as np
import pytest
from toy_envs import SpeedLimitedPointEnv

from taxbench.policies import SafetyMetricsCallback, make_learner

COST_LIMIT = 10.0  # violating steps per 100-step episode
HYPERPARAMS = {"n_steps": 512, "batch_size": 128, "n_epochs": 5}


def _train(arm, seed, steps):
    model = make_learner(
        arm, SpeedLimitedPointEnv(), seed=seed, device="cpu", cost_limit=COST_LIMIT, hyperparams=HYPERPARAMS
    )
    callback = SafetyMetricsCallback()
    model.learn(steps, callback=callback)
    return model, callback.history


def _tail(history, key, n=4):
    return float(np.nanmean([row[key] for row in history[-n:]]))


def _check(seed, steps):
    _, ppo = _train("ppo", seed, steps)
    lag_model, lag = _train("ppo-lag", seed, steps)
    ppo_cost, lag_cost = _tail(ppo, "ep_cost"), _tail(lag, "ep_cost")
    # the unconstrained learner found that speed pays, and broke the limit
    assert ppo_cost > 3 * COST_LIMIT, ppo
    # the constrained one did not follow it there
    assert lag_cost < 0.5 * ppo_cost, (ppo_cost, lag_cost)
    # because its multiplier rose above its start (0) and acted on the policy
    assert max(row["lambda"] for row in lag) > 0.1
    assert lag_model.lagrange_multiplier > 0.0
    return ppo, lag


def test_ppo_lag_cuts_cost_short():
    """Always runs (~10 s): 8k steps per arm, where PPO already drives past the limit."""
    _check(seed=0, steps=8192)


@pytest.mark.slow
def test_ppo_lag_meets_limit():
    """24k steps per arm, another seed: PPO-Lag ends near its limit with a positive return, PPO far above it."""
    ppo, lag = _check(seed=1, steps=24_576)
    assert _tail(lag, "ep_cost", n=8) < 2 * COST_LIMIT
    assert _tail(lag, "ep_return", n=8) > 20.0  # it still moves forward (random policy: about 0)
    assert _tail(ppo, "ep_return") > _tail(lag, "ep_return")  # the tax
