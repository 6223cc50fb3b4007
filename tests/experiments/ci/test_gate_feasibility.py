"""The gate's JSON verdict says whether the gated policy meets its cost limit (a CI over episodes)."""

import json

from taxbench.experiments.ci.gate import GateResult, gate_feasibility, policy_cost_limit


def _config(tmp_path, arm, cost_limit=25.0):
    (tmp_path / "config.json").write_text(json.dumps({"config": {"env_id": "x", "arm": arm, "cost_limit": cost_limit}}))
    return tmp_path


def test_the_limit_comes_from_the_option_else_a_constrained_runs_config(tmp_path):
    assert policy_cost_limit(tmp_path, 10.0) == (10.0, "--max-episode-cost")
    run = _config(tmp_path, "ppo-lag", 25.0)
    limit, source = policy_cost_limit(run, None)
    assert limit == 25.0 and "ppo-lag" in source
    assert policy_cost_limit(_config(tmp_path, "ppo"), None) == (None, "")  # unconstrained: no limit of its own


def test_feasibility_in_the_verdict_json():
    rows = [{"cost": c} for c in (89.0, 114.0, 100.0, 95.0)]
    result = GateResult("run", "env", 4, 0, summary={})
    result.feasibility = gate_feasibility(rows, 25.0, "cost_limit of ppo-lag in config.json")
    saved = json.loads(json.dumps(result.to_dict()))
    feas = saved["feasibility"]
    assert feas["feasible"] == "infeasible" and feas["protocol"] == "deterministic" and feas["cost_limit"] == 25.0
    assert feas["episode_cost"]["point"] == 99.5 and feas["episode_cost"]["low"] > 25
    assert gate_feasibility([{"cost": 3.0}, {"cost": 5.0}], 25.0, "x")["feasible"] == "feasible"
    assert GateResult("run", "env", 1, 0, summary={}).to_dict()["feasibility"] is None
    assert gate_feasibility([{"cost": 3.0}], 25.0, "x", protocol="stochastic")["protocol"] == "stochastic"
