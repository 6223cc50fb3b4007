"""Fixtures for the experiments tests (torch on one thread; the Pendulum-with-cost env id)."""

from __future__ import annotations

import pytest
import torch
from pendulum_cost_env import ENV_ID, TINY_HYPERPARAMS

torch.set_num_threads(1)


@pytest.fixture
def tiny_config():
    """Factory of a 512-step PPO-Lag config on the Pendulum-with-cost env (2 envs, 128-step rollouts)."""
    from taxbench.experiments.runs.config import RunConfig

    def make(**overrides) -> RunConfig:
        fields = {
            "env_id": ENV_ID,
            "env_kwargs": {"speed_limit": 2.0},
            "arm": "ppo-lag",
            "intensity": "d5",
            "cost_limit": 5.0,
            "seed": 3,
            "steps": 512,
            "n_envs": 2,
            "device": "cpu",
            "hyperparams": dict(TINY_HYPERPARAMS),
            "eval_episodes": 3,
            "eval_seed": 100,
            "checkpoint_every": 128,
            "experiment": "test",
        }
        fields.update(overrides)
        return RunConfig(**fields)

    return make
