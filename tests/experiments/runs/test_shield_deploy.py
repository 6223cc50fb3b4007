"""`taxbench shield`: an unconstrained policy deployed behind the shield, no retraining; the report pairs it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from taxbench.experiments.runs.config import RunConfig
from taxbench.experiments.runs.runfolder import run_dir
from taxbench.experiments.runs.train import train_run

ENV = "taxbench/HalfCheetahSlowZone-v0"


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("shield")
    cfg = RunConfig(
        env_id=ENV,
        env_kwargs={"velocity_limit": 0.3},
        arm="ppo",
        seed=0,
        steps=256,
        n_envs=1,
        device="cpu",
        hyperparams={"n_steps": 256, "batch_size": 64, "n_epochs": 1},
        eval_episodes=2,
        experiment="exp",
    )
    directory = run_dir(out, "exp", ENV, "ppo", "off", 0)
    train_run(cfg, directory, progress=False)
    return out, directory


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "taxbench.experiments.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_shield_deploys_on_the_same_episodes_and_the_report_pairs_it(ppo_run):
    out, source = ppo_run
    result = run_cli("shield", str(source), "--intensity", "strict")
    assert result.returncode == 0, result.stderr
    target = out / "exp" / "HalfCheetahSlowZone-v0" / "ppo-shield-deploy-strict" / "seed0"
    status = json.loads((target / "status.json").read_text())
    assert status["state"] == "done" and status["deployed_from"] == str(source)
    config = json.loads((target / "config.json").read_text())["config"]
    assert config["arm"] == "ppo-shield" and config["hyperparams"]["shield_speed_fraction"] < 1
    shielded = list(csv.DictReader((target / "episodes.csv").open()))
    plain = list(csv.DictReader((source / "episodes.csv").open()))
    assert [r["seed"] for r in shielded] == [r["seed"] for r in plain]  # the same evaluation episodes
    assert sum(float(r["violations"]) for r in shielded) <= sum(float(r["violations"]) for r in plain)
    report = run_cli("report", str(out / "exp"))
    assert report.returncode == 0, report.stderr
    tax = list(csv.DictReader((out / "exp" / "tax.csv").open()))
    assert any(r["arm"] == "ppo-shield" and r["intensity"] == "deploy-strict" for r in tax), tax


def test_shield_refuses_a_constrained_or_unfinished_run(tmp_path, ppo_run):
    out, source = ppo_run
    result = run_cli("shield", str(tmp_path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    result = run_cli("shield", str(source), "--intensity", "extreme")
    assert result.returncode == 2 and "unknown intensity" in result.stderr
