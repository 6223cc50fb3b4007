"""`taxbench check` passes every taxbench env and names the broken rule of each broken env."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from taxbench.envs import ENV_IDS
from taxbench.experiments.ci.check import FAIL, PASS, run_checks

HERE = Path(__file__).parents[1]  # tests/experiments: broken_envs.py, pendulum_cost_env.py


def by_name(results):
    return {r.name: r for r in results}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_taxbench_env_passes(env_id):
    results = run_checks(env_id, steps=60)
    assert [r for r in results if r.status == FAIL] == []
    assert by_name(results)["deterministic under a seed"].status == PASS


def test_a_valid_custom_env_passes_by_entry_point():
    results = by_name(run_checks("broken_envs:GoodEnv", steps=120))
    assert all(r.status == PASS for r in results.values()), results


@pytest.mark.parametrize(
    "entry_point, check, words",
    [
        ("broken_envs:NegativeCost", "cost present and >= 0", "cost = -0.5"),
        ("broken_envs:CostNotSumOfTerms", "cost == sum(cost_*)", "terms sum to"),
        ("broken_envs:CostAfterReset", "cost 0 after reset", "reports cost 1.0"),
        ("broken_envs:NaNObservation", "finite observations", "non-finite observation"),
        ("broken_envs:NondeterministicReset", "deterministic under a seed", "different observations"),
    ],
)
def test_each_broken_env_fails_with_the_right_message(entry_point, check, words):
    results = by_name(run_checks(entry_point, steps=120))
    assert results[check].status == FAIL, results[check]
    assert words in results[check].message
    others = [r.name for r in results.values() if r.status == FAIL and r.name not in (check, "gymnasium env checker")]
    assert others == [], others


def test_safety_gymnasium_six_tuple_env_is_adapted_and_passes():
    results = by_name(run_checks("broken_envs:SafetyGymnasiumStyle", steps=120))
    assert "6-tuple adapted" in results["Gymnasium API"].message
    assert all(r.status == PASS for r in results.values()), results


def run_cli(*args):
    env = {"PYTHONPATH": str(HERE), "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "taxbench.experiments.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_exit_codes():
    good = run_cli("check", "broken_envs:GoodEnv", "--steps", "60")
    assert good.returncode == 0 and "all checks passed" in good.stdout
    bad = run_cli("check", "broken_envs:CostNotSumOfTerms", "--steps", "60")
    assert bad.returncode == 1 and "cost == sum(cost_*)" in bad.stdout
    unknown = run_cli("check", "taxbench/HalfCheetahVelocty-v0")
    assert unknown.returncode == 2 and "did you mean 'taxbench/HalfCheetahVelocity-v0'" in unknown.stderr
