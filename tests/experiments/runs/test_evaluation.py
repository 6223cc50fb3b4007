import math

import numpy as np
import pytest
from pendulum_cost_env import ENV_ID, EPISODE_STEPS

from taxbench.experiments.runs.evaluation import (
    evaluate_policy,
    read_episodes,
    read_events,
    resolve_capability_metric,
    write_evaluation,
)


class ConstantPolicy:
    """Stands in for an SB3 model: always the same action."""

    def __init__(self, action):
        self.action = np.asarray(action, dtype=np.float32)

    def predict(self, obs, deterministic=True):
        return self.action, None


def test_rows_and_events_follow_the_info_contract():
    rows, events = evaluate_policy(ConstantPolicy([2.0]), ENV_ID, {"speed_limit": 1.0}, episodes=3, seed=40)
    assert [r["episode"] for r in rows] == [0, 1, 2] and [r["seed"] for r in rows] == [40, 41, 42]
    for row in rows:
        assert row["length"] == EPISODE_STEPS
        assert row["cost"] == pytest.approx(row["cost_speed"] + row["cost_low"])
        assert row["violation_rate"] == pytest.approx(row["violations"] / row["length"])
        assert isinstance(row["success"], bool)
        assert "unrelated_key" not in row
    # indicator costs: one event per violating step per term
    assert len(events) == sum(r["cost_speed"] + r["cost_low"] for r in rows) > 0
    first = events[0]
    assert set(first) == {"episode", "step", "term", "measure", "cost"}
    assert first["term"] in {"speed", "low"} and first["cost"] == 1.0 and first["measure"] >= 0
    speed_events = [e for e in events if e["term"] == "speed"]
    assert all(e["measure"] > 1.0 for e in speed_events)  # measured above the 1 rad/s limit
    assert all(0 <= e["step"] < EPISODE_STEPS for e in events)


def test_same_seed_same_episodes():
    a = evaluate_policy(ConstantPolicy([0.5]), ENV_ID, None, episodes=2, seed=7)
    b = evaluate_policy(ConstantPolicy([0.5]), ENV_ID, None, episodes=2, seed=7)
    assert a == b
    c = evaluate_policy(ConstantPolicy([0.5]), ENV_ID, None, episodes=2, seed=8)
    assert a[0][0]["return"] != c[0][0]["return"]


def test_non_finite_action_is_rejected():
    with pytest.raises(ValueError, match="non-finite action"):
        evaluate_policy(ConstantPolicy([math.nan]), ENV_ID, None, episodes=1, seed=0)


def test_write_and_read_back(tmp_path):
    rows, events = evaluate_policy(ConstantPolicy([-2.0]), ENV_ID, None, episodes=2, seed=0)
    write_evaluation(tmp_path, rows, events)
    header = (tmp_path / "episodes.csv").read_text().splitlines()[0].split(",")
    assert header[:8] == ["episode", "seed", "return", "length", "success", "cost", "violations", "violation_rate"]
    assert header[8:] == ["cost_low", "cost_speed"]
    back = read_episodes(tmp_path)
    assert back[1]["return"] == pytest.approx(rows[1]["return"]) and back[1]["success"] is rows[1]["success"]
    assert read_events(tmp_path) == events
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episodes.csv", "events.jsonl"]


def test_zero_episodes():
    assert evaluate_policy(ConstantPolicy([0.0]), ENV_ID, None, episodes=0, seed=0) == ([], [])


def test_capability_metric_resolution():
    assert resolve_capability_metric(ENV_ID, None, "success") == "success"
    assert resolve_capability_metric(ENV_ID, None, "auto") == "return"  # no task, no declaration
    with pytest.raises(ValueError):
        resolve_capability_metric(ENV_ID, None, "speed")


def test_capability_is_the_env_reward_even_when_an_arm_wrapper_replaces_the_learners():
    """Saute replaces the learner's reward once the budget is spent; the evaluated return stays the task's."""
    import numpy as np

    from taxbench.experiments.runs.evaluation import evaluate_policy
    from taxbench.policies.saute import make_saute_wrapper

    class Fast:
        def predict(self, obs, deterministic=True):
            return np.ones(1, dtype=np.float32), None  # full torque: over the speed limit, the budget is spent

    plain, _ = evaluate_policy(Fast(), ENV_ID, {"speed_limit": 0.5}, 2, 0)
    sauted, _ = evaluate_policy(Fast(), ENV_ID, {"speed_limit": 0.5}, 2, 0, wrap_env=make_saute_wrapper(1.0))
    assert [r["return"] for r in sauted] == [r["return"] for r in plain]
    assert all(r["cost"] > 1.0 for r in sauted)  # the budget was overspent, so Saute's own reward differed
