"""The on-device learners on Warp's CPU device: λ = 0 is PPO bit for bit; the saved policy loads without pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mujoco_warp")
pytest.importorskip("rsl_rl")
torch = pytest.importorskip("torch")

from taxbench.policies.gpu.train import WarpPPOConfig, load_policy, train_warp  # noqa: E402

ENV = "taxbench/HalfCheetahSlowZone-v0"  # 1 m/s: random actions cross it, so costs are non-zero
WORLDS, ROLLOUTS = 4, 2
SMALL = {"hidden_dims": (16, 16), "steps_per_env": 16, "num_mini_batches": 2, "num_learning_epochs": 2}


def _train(arm: str, tmp_path, name: str, **cfg):
    config = WarpPPOConfig(**SMALL, **cfg)
    steps = WORLDS * config.steps_per_env * ROLLOUTS
    return train_warp(ENV, WORLDS, steps, 3, arm, cost_limit=0.0, device="cpu", out_dir=tmp_path / name, config=config)


def _weights(result) -> list[torch.Tensor]:
    learner = result.learner
    return [p.detach().clone() for p in (*learner.actor.parameters(), *learner.critic.parameters())]


def test_ppo_lag_with_lambda_pinned_at_zero_is_ppo_bit_for_bit(tmp_path):
    ppo = _train("ppo", tmp_path, "ppo")
    lag = _train("ppo-lag", tmp_path, "lag", pin_lambda=True)
    assert lag.learner.constrained and lag.learner.lagrange_value == 0.0
    assert float(lag.learner.costs.sum()) > 0  # costs were seen, and a cost critic was trained on them
    for a, b in zip(_weights(ppo), _weights(lag), strict=True):
        assert torch.equal(a, b)
    assert [r["ep_return"] for r in ppo.progress] == [r["ep_return"] for r in lag.progress]
    # the same state of the optimiser too
    sa, sb = ppo.learner.optimizer.state_dict()["state"], lag.learner.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) for k in sa)


def test_a_positive_lambda_changes_the_policy(tmp_path):
    ppo = _train("ppo", tmp_path, "ppo")
    lag = _train("ppo-lag", tmp_path, "lag", pin_lambda=True, lagrange_init=1.0)
    assert lag.learner.lagrange_value == 1.0
    assert any(not torch.equal(a, b) for a, b in zip(_weights(ppo), _weights(lag), strict=True))


def test_the_multiplier_is_the_lagrange_module_and_moves_only_on_finished_episodes(tmp_path):
    from taxbench.policies.lagrange import Lagrange, PIDLagrange

    grad = _train("ppo-lag", tmp_path, "grad")
    pid = _train("ppo-lag", tmp_path, "pid", lagrange="pid")
    assert isinstance(grad.learner.multiplier, Lagrange) and isinstance(pid.learner.multiplier, PIDLagrange)
    # no episode ends within 32 steps of a 1000-step limit, so λ has not moved ...
    assert all(r["episodes"] == 0 for r in grad.progress) and grad.learner.lagrange_value == 0.0
    assert grad.learner.update_multiplier(None) == 0.0
    # ... and a mean episode cost of 10 over the limit 0 moves it by lr x 10
    assert grad.learner.update_multiplier(10.0) == pytest.approx(0.035 * 10.0)
    assert pid.learner.update_multiplier(10.0) > 0.0


def test_saved_policy_loads_on_the_cpu_and_acts_like_the_learner(tmp_path):
    result = _train("ppo-lag", tmp_path, "run")
    folder = tmp_path / "run"
    header = json.loads((folder / "policy.json").read_text())
    assert header["format"] == "taxbench-warp-policy" and header["meta"]["arm"] == "ppo-lag"
    assert (folder / "progress.csv").read_text().startswith("steps,")
    policy = load_policy(folder)
    obs = np.random.default_rng(0).normal(size=(5, header["obs_dim"]))
    actions, state = policy.predict(obs, deterministic=True)
    assert state is None and actions.shape == (5, header["act_dim"])
    learner = result.learner
    learner.eval_mode()
    from taxbench.policies.gpu.learner import obs_dict

    with torch.no_grad():
        want = learner.actor(obs_dict(torch.as_tensor(obs, dtype=torch.float32))).clamp(-1, 1).numpy()
    np.testing.assert_allclose(actions, want, rtol=1e-5, atol=1e-6)
    single, _ = policy.predict(obs[0])
    np.testing.assert_allclose(single, actions[0], rtol=1e-6, atol=1e-7)
