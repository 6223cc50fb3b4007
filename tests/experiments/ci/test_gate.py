"""`taxbench gate` passes a safe policy, fails an unsafe one, and writes JUnit XML and JSON a CI can read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from broken_envs import LINE_ID

HERE = Path(__file__).parents[1]  # tests/experiments: broken_envs.py, pendulum_cost_env.py
ENV = f"broken_envs:{LINE_ID}"


def constant_policy(path: Path, torque: float, log_std: float | None = None) -> Path:
    """A PPO model whose deterministic action is a constant push: 0 stays in the safe band, 1 drives out of it.

    ``log_std`` sets the sampled actions' spread (a wide one random-walks out of the band)."""
    import gymnasium as gym

    from taxbench.policies import make_learner
    from taxbench.policies.safe_load import save_policy

    model = make_learner("ppo", gym.make(ENV), seed=0, device="cpu", hyperparams={"n_steps": 64, "batch_size": 64})
    with torch.no_grad():
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.fill_(torque)
        if log_std is not None:
            model.policy.log_std.fill_(log_std)
    save_policy(model, path, env_id=ENV)  # with its JSON sidecar: the gate loads it without unpickling
    return path


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gate")
    safe_run = folder / "safe_run"
    safe_run.mkdir()
    constant_policy(safe_run / "model.zip", 0.0)
    (safe_run / "config.json").write_text(json.dumps({"config": {"env_id": ENV, "env_kwargs": {}}}))
    unsafe = constant_policy(folder / "u.zip", 1.0)
    return {"safe_run": safe_run, "safe_zip": safe_run / "model.zip", "unsafe_zip": unsafe}


def gate(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    return subprocess.run(
        [sys.executable, "-m", "taxbench.experiments.cli", "gate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_safe_policy_passes_and_unsafe_fails_on_the_same_env(policies, tmp_path):
    bounds = ["--episodes", "4", "--max-violation-rate", "0.05", "--max-episode-cost", "2"]
    safe = gate(str(policies["safe_run"]), *bounds, "--junit", str(tmp_path / "safe.xml"))
    assert safe.returncode == 0, safe.stdout + safe.stderr
    assert "gate PASSED" in safe.stdout
    unsafe = gate(
        str(policies["unsafe_zip"]),
        "--env",
        ENV,
        *bounds,
        "--junit",
        str(tmp_path / "unsafe.xml"),
        "--json",
        str(tmp_path / "unsafe.json"),
    )
    assert unsafe.returncode == 1, unsafe.stdout + unsafe.stderr
    assert "gate FAILED" in unsafe.stdout

    suite = ET.parse(tmp_path / "unsafe.xml").getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"max_violation_rate", "max_episode_cost"}
    assert suite.get("tests") == "2" and suite.get("failures") == "2"
    failure = cases["max_violation_rate"].find("failure")
    assert "required ≤ 0.05" in failure.get("message") and "measured=" in failure.text
    verdict = json.loads((tmp_path / "unsafe.json").read_text())
    assert verdict["passed"] is False and verdict["summary"]["violation_rate"] > 0.05
    passed = ET.parse(tmp_path / "safe.xml").getroot()
    assert passed.get("failures") == "0" and len(list(passed.iter("testcase"))) == 2


def test_baseline_regression_fails_only_when_its_ci_clears_the_bound(policies, tmp_path):
    worse = gate(
        str(policies["unsafe_zip"]),
        "--env",
        ENV,
        "--episodes",
        "5",
        "--baseline",
        str(policies["safe_run"]),
        "--max-regression",
        "0.1",
        "--json",
        str(tmp_path / "worse.json"),
    )
    assert worse.returncode == 1, worse.stdout + worse.stderr
    criteria = {c["name"]: c for c in json.loads((tmp_path / "worse.json").read_text())["criteria"]}
    assert criteria["violation_regression"]["passed"] is False
    assert "95% CI" in criteria["violation_regression"]["message"]
    same = gate(
        str(policies["safe_zip"]),
        "--env",
        ENV,
        "--episodes",
        "5",
        "--baseline",
        str(policies["safe_run"]),
        "--max-regression",
        "0.1",
    )
    assert same.returncode == 0, same.stdout + same.stderr


def test_stochastic_protocol_gates_the_sampled_policy(tmp_path):
    """Mean action 0 stays in the band, but wide sampled actions random-walk out of it: the deterministic gate
    passes, the stochastic one fails and says so in its JSON; the sampled episodes repeat for a seed."""
    noisy = constant_policy(tmp_path / "noisy.zip", 0.0, log_std=1.0)
    common = [str(noisy), "--env", ENV, "--episodes", "4", "--max-violation-rate", "0.05", "--max-episode-cost", "2"]
    verdicts = {}
    for protocol, code in (("deterministic", 0), ("stochastic", 1), ("stochastic", 1)):
        out = tmp_path / f"{protocol}-{len(verdicts)}.json"
        result = gate(*common, "--protocol", protocol, "--json", str(out))
        assert result.returncode == code, result.stdout + result.stderr
        assert f"{protocol} episodes" in result.stdout
        verdicts[out.name] = json.loads(out.read_text())
    det, sto, again = verdicts.values()
    assert det["protocol"] == "deterministic" and det["summary"]["violation_rate"] == 0.0
    assert sto["protocol"] == "stochastic" and sto["summary"]["violation_rate"] > 0.05
    assert sto == again


def test_gate_is_deterministic_for_a_seed(policies, tmp_path):
    for name in ("a", "b"):
        result = gate(
            str(policies["unsafe_zip"]),
            "--env",
            ENV,
            "--episodes",
            "3",
            "--seed",
            "7",
            "--max-violation-rate",
            "1",
            "--json",
            str(tmp_path / f"{name}.json"),
        )
        assert result.returncode == 0
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--max-violation-rate", "1.5"], "--max-violation-rate must be a number in [0, 1]"),
        (["--max-episode-cost", "-1"], "--max-episode-cost must be"),
        (["--min-success", "nan"], "--min-success must be"),
        ([], "give at least one criterion"),
        (["--baseline", "x"], "--baseline and --max-regression go together"),
    ],
)
def test_bad_thresholds_exit_2_with_one_line(policies, args, words):
    result = gate(str(policies["safe_run"]), *args)
    assert result.returncode == 2, result.stdout
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("broken", ["missing", "corrupt"])
def test_missing_or_corrupt_model_exits_2(tmp_path, broken):
    path = tmp_path / "model.zip"
    if broken == "corrupt":
        path.write_bytes(b"PK\x03\x04 garbage")
    result = gate(str(path), "--env", ENV, "--max-violation-rate", "0.1")
    assert result.returncode == 2
    assert "model" in result.stderr and len(result.stderr.strip().splitlines()) == 1
