"""The real `taxbench` command on tiny budgets: its output files are read back, bad input is refused."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ENV = "taxbench/HalfCheetahSlowZone-v0"
TINY = ["--env", ENV, "--steps", "512", "--n-envs", "1", "--eval-episodes", "2", "--no-progress"]
RUN_FILES = ("config.json", "progress.csv", "model.zip", "episodes.csv", "events.jsonl", "status.json")


def taxbench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taxbench.experiments.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def pair_out(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("pair")
    result = taxbench("pair", *TINY, "--seeds", "0", "1", "--workers", "2", "--out", str(out))
    return out, result


def test_pair_writes_every_run_file_and_they_parse(pair_out):
    out, result = pair_out
    assert result.returncode == 0, result.stderr
    runs = sorted((out / "default" / "HalfCheetahSlowZone-v0").glob("*/seed*"))
    assert [f"{p.parent.name}/{p.name}" for p in runs] == [
        "ppo-lag-d25/seed0",
        "ppo-lag-d25/seed1",
        "ppo-off/seed0",
        "ppo-off/seed1",
    ]
    for run in runs:
        assert all((run / name).is_file() for name in RUN_FILES), run
        config = json.loads((run / "config.json").read_text())
        assert config["config"]["env_id"] == ENV if "config" in config else config["env_id"] == ENV
        progress = list(csv.DictReader((run / "progress.csv").open()))
        assert progress and int(progress[-1]["steps"]) >= 512
        assert {"ep_return", "ep_cost", "violation_rate", "lambda", "fps"} <= set(progress[0])
        assert zipfile.is_zipfile(run / "model.zip")
        episodes = list(csv.DictReader((run / "episodes.csv").open()))
        assert len(episodes) == 2 and {"return", "length", "success", "cost", "cost_velocity"} <= set(episodes[0])
        for line in (run / "events.jsonl").read_text().splitlines():
            event = json.loads(line)
            assert event["term"] == "velocity" and event["measure"] > 1.0
        assert json.loads((run / "status.json").read_text())["state"] == "done"
    summary = list(csv.DictReader((out / "default" / "summary.csv").open()))
    assert len(summary) == 4 and {r["state"] for r in summary} == {"done"}
    pair = json.loads((out / "default" / "pair.json").read_text())
    assert pair["n_pairs"] == 2 and {"tax", "safety_gain", "capability_loss"} <= set(pair)


def test_pair_prints_both_arms_and_the_tax(pair_out):
    _, result = pair_out
    for text in ("ppo (unconstrained)", "ppo-lag (constrained)", "safety gain g", "CI excludes 0"):
        assert text in result.stdout
    # both protocols, the split, a convergence verdict; a plain "tax τ" only for a feasible arm whose λ bound
    for text in ("deterministic *", "stochastic", "τ_constraint", "τ_learner", "verdict: ", "meets d?"):
        assert text in result.stdout
    pair = json.loads((pair_out[0] / "default" / "pair.json").read_text())
    assert ("tax τ =" in result.stdout) == (pair["tax_label"] == "tax")
    assert pair["protocol"] == "deterministic" and set(pair["protocols"]) == {"deterministic", "stochastic"}


def test_pair_refuses_an_output_folder_with_finished_runs_and_deletes_nothing(pair_out):
    out, _ = pair_out
    before = snapshot(out)
    result = taxbench("pair", *TINY, "--seeds", "0", "1", "--workers", "1", "--out", str(out))
    assert result.returncode == 2
    assert "already holds" in result.stderr and "--resume" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(out) == before


def test_pair_resume_reuses_finished_runs(pair_out):
    out, _ = pair_out
    models = {p: p.read_bytes() for p in out.rglob("model.zip")}
    result = taxbench("pair", *TINY, "--seeds", "0", "1", "--workers", "1", "--out", str(out), "--resume")
    assert result.returncode == 0, result.stderr
    assert {p: p.read_bytes() for p in out.rglob("model.zip")} == models


def test_train_then_eval(tmp_path):
    result = taxbench("train", *TINY, "--arm", "ppo-lag", "--seed", "3", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run = tmp_path / "default" / "HalfCheetahSlowZone-v0" / "ppo-lag-d25" / "seed3"
    assert json.loads((run / "status.json").read_text())["state"] == "done"
    result = taxbench("eval", str(run), "--episodes", "3")
    assert result.returncode == 0, result.stderr
    assert len(list(csv.DictReader((run / "episodes.csv").open()))) == 3
    assert "violation_rate" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["pair", "--env", "taxbench/HalfCheetahVelocty-v0"], "did you mean 'taxbench/HalfCheetahVelocity-v0'"),
        (["pair", "--env", "CartPole-v9"], "unknown env id"),
        (["pair", "--cost-limit", "-1"], "must be a finite number >= 0"),
        (["pair", "--cost-limit", "abc"], "expected a number"),
        (["pair", "--cost-limit", "nan"], "must be a finite number >= 0"),
        (["pair", "--steps", "0"], "must be > 0"),
        (["pair", "--steps", "-5"], "must be > 0"),
        (["pair", "--seeds", "0", "0"], "--seeds must be distinct"),
        (["pair", "--env-kwarg", "velocity_limit=-2"], "velocity_limit must be > 0"),
        (["train", "--arm", "dqn"], "invalid choice"),
        (["pair", "--resume", "--overwrite"], "exclude each other"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(tmp_path, args, message):
    result = taxbench(*args, "--out", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("broken", ["missing", "corrupt"])
def test_eval_of_a_missing_or_corrupt_model_is_refused(pair_out, tmp_path, broken):
    out, _ = pair_out
    source = next(out.rglob("ppo-off/seed0"))
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "status.json"):
        (run / name).write_bytes((source / name).read_bytes())
    if broken == "corrupt":
        (run / "model.zip").write_bytes(b"not a zip")
    result = taxbench("eval", str(run))
    assert result.returncode == 2
    assert "model" in result.stderr.lower()
    assert len(result.stderr.strip().splitlines()) == 1


def test_envs_lists_every_id_with_thresholds_and_units():
    from taxbench.envs import ENV_IDS

    result = taxbench("envs")
    assert result.returncode == 0, result.stderr
    for env_id in ENV_IDS:
        assert env_id in result.stdout
    assert "velocity > 3.2096 m/s" in result.stdout and "velocity > 1 m/s" in result.stdout
