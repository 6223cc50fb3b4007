"""--device: auto picks CUDA when present; every Lagrangian piece follows the policy onto the device."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from taxbench.policies import make_learner, resolve_device


def test_auto_resolves_to_what_is_present():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("arm", ["ppo", "ppo-lag", "sac-lag"])
def test_training_on_cuda_keeps_every_network_on_the_gpu(arm):
    env = gym.make("taxbench/HalfCheetahSlowZone-v0")
    hyperparams = (
        {"learning_starts": 64, "batch_size": 32} if arm.startswith("sac") else {"n_steps": 128, "batch_size": 64}
    )
    model = make_learner(arm, env, seed=0, device="cuda", hyperparams=hyperparams)
    model.learn(256)
    assert all(p.device.type == "cuda" for p in model.policy.parameters())
    critic = getattr(model, "cost_critic", None)
    if critic is not None:
        assert all(p.device.type == "cuda" for p in critic.parameters())
