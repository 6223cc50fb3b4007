"""The GPU path through the real command, on Warp's CPU device: a pair writes normal run folders that report, eval
and gate read; bad requests are refused in one line before any run (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mujoco_warp")

ENV = "taxbench/HalfCheetahVelocity-v0"


def taxbench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # Warp's CPU device even where a GPU is present
    return subprocess.run(
        [sys.executable, "-m", "taxbench.experiments.cli", *args], capture_output=True, text=True, timeout=900, env=env
    )


@pytest.fixture(scope="module")
def warp_pair(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("warp")
    result = taxbench("pair", "--sim", "warp", "--device", "cpu", "--worlds", "8", "--steps", "384", "--seeds", "0",
                      "--env", ENV, "--workers", "1", "--eval-episodes", "1", "--out", str(out),
                      "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "default"


def test_warp_pair_writes_run_folders_with_a_tensor_policy(warp_pair):
    for arm in ("ppo-off", "ppo-lag-d25"):
        run = warp_pair / "HalfCheetahVelocity-v0" / arm / "seed0"
        config = json.loads((run / "config.json").read_text())["config"]
        assert config["sim"] == "warp" and config["n_envs"] == 8
        assert (run / "policy.pt").is_file() and not (run / "model.zip").exists()
        status = json.loads((run / "status.json").read_text())
        assert status["state"] == "done" and status["summary"]["train_steps"] >= 384
        assert len((run / "episodes.csv").read_text().splitlines()) == 2  # header + the CPU env's one episode
    assert json.loads((warp_pair / "pair.json").read_text())["n_pairs"] == 1


def test_report_eval_and_gate_read_a_warp_run(warp_pair, tmp_path):
    report = taxbench("report", str(warp_pair), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    assert (tmp_path / "report" / "report.html").is_file()
    run = warp_pair / "HalfCheetahVelocity-v0" / "ppo-lag-d25" / "seed0"
    assert taxbench("eval", str(run), "--episodes", "1").returncode == 0
    gate = taxbench("gate", str(run), "--episodes", "1", "--max-violation-rate", "1")
    assert gate.returncode == 0, gate.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "taxbench/PandaReach-v0"], "has no MuJoCo Warp version"),
        (["--env", ENV, "--safe-arm", "ppo-penalty"], "trains ppo and ppo-lag only"),
        (["--env", ENV, "--worlds", "0"], "must be > 0"),
    ],
)
def test_bad_warp_requests_exit_2_before_any_run(tmp_path, args, message):
    result = taxbench("pair", "--sim", "warp", "--device", "cpu", *args, "--out", str(tmp_path / "runs"))
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
