"""The task declares what the tax is measured on; evaluation asks the env instead of keeping its own table."""

import gymnasium as gym
import pytest

from taxbench.envs import ENTRIES
from taxbench.experiments.runs.evaluation import resolve_capability_metric


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.env_id)
def test_each_task_declares_its_capability_metric_and_evaluation_uses_it(entry):
    env = gym.make(entry.env_id)
    try:
        declared = env.unwrapped.task.capability_metric
    finally:
        env.close()
    # running has no success notion; reaching, pushing and navigating do
    assert declared == ("return" if entry.task_kind == "velocity" else "success")
    assert resolve_capability_metric(entry.env_id) == declared
    assert resolve_capability_metric(entry.env_id, requested="return") == "return"
