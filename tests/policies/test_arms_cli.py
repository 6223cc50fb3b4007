"""The new arms through the real `taxbench` command on tiny budgets, and the learning-curve figure."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ENV = "taxbench/HalfCheetahSlowZone-v0"
TINY = ["--env", ENV, "--steps", "512", "--n-envs", "1", "--eval-episodes", "1", "--no-progress"]


def taxbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taxbench.experiments.cli", *args], capture_output=True, text=True, timeout=600
    )


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())["config"]


def _status(run: Path) -> str:
    return json.loads((run / "status.json").read_text())["state"]


@pytest.fixture(scope="module")
def penalty_pair(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pair")
    result = taxbench(
        "pair",
        *TINY,
        "--safe-arm",
        "ppo-penalty",
        "--intensity",
        "strict",
        "--seeds",
        "0",
        "--workers",
        "1",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "ppo-penalty (constrained)" in result.stdout
    return out / "default"


def test_pair_with_penalty_arm_and_named_intensity(penalty_pair):
    runs = sorted(p.relative_to(penalty_pair).as_posix() for p in penalty_pair.glob("*/*/seed*"))
    assert runs == [f"HalfCheetahSlowZone-v0/{arm}/seed0" for arm in ("ppo-off", "ppo-penalty-strict")]
    safe = _config(penalty_pair / "HalfCheetahSlowZone-v0" / "ppo-penalty-strict" / "seed0")
    assert safe["arm"] == "ppo-penalty" and safe["hyperparams"]["penalty_coef"] == 4.0
    unc = _config(penalty_pair / "HalfCheetahSlowZone-v0" / "ppo-off" / "seed0")
    assert "penalty_coef" not in unc["hyperparams"]  # the partner's config carries no dose
    assert {k: v for k, v in safe["hyperparams"].items() if k != "penalty_coef"} == unc["hyperparams"]


def test_curves_figure_from_run_folders(penalty_pair, tmp_path):
    figure = tmp_path / "figs" / "curves.png"
    result = subprocess.run(
        [sys.executable, "-m", "taxbench.experiments.analysis.curves", str(penalty_pair), "--out", str(figure)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    from PIL import Image

    pixels = np.asarray(Image.open(figure).convert("L"), dtype=float)
    assert pixels.shape[0] > 300 and pixels.std() > 5  # a drawn figure, not a blank canvas
    empty = subprocess.run(
        [sys.executable, "-m", "taxbench.experiments.analysis.curves", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert empty.returncode == 2 and "no progress.csv" in empty.stderr


def test_train_shield_arm_evaluates_through_the_shield(tmp_path):
    result = taxbench("train", *TINY, "--arm", "ppo-shield", "--intensity", "strict", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run = tmp_path / "default" / "HalfCheetahSlowZone-v0" / "ppo-shield-strict" / "seed0"
    assert _status(run) == "done"
    assert _config(run)["hyperparams"]["shield_speed_fraction"] == 0.75
    with open(run / "episodes.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 1


def test_train_pid_lagrangian_logs_lambda(tmp_path):
    result = taxbench(
        "train",
        *TINY,
        "--arm",
        "ppo-lag",
        "--lagrange",
        "pid",
        "--intensity",
        "moderate",
        "--steps",
        "1024",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    run = tmp_path / "default" / "HalfCheetahSlowZone-v0" / "ppo-lag-moderate-pid" / "seed0"
    cfg = _config(run)
    assert cfg["hyperparams"]["lagrange_method"] == "pid" and cfg["cost_limit"] == 25.0
    with open(run / "progress.csv", newline="") as fh:
        lambdas = [float(row["lambda"]) for row in csv.DictReader(fh)]
    assert len(lambdas) == 2 and all(math.isfinite(v) and v >= 0 for v in lambdas)  # λ every update


def test_train_sac_lag(tmp_path):
    result = taxbench(
        "train", *TINY, "--arm", "sac-lag", "--intensity", "mild", "--device", "cpu", "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    run = tmp_path / "default" / "HalfCheetahSlowZone-v0" / "sac-lag-mild" / "seed0"
    assert _status(run) == "done" and _config(run)["cost_limit"] == 50.0


@pytest.mark.parametrize(
    "args", [["--arm", "td3"], ["--arm", "ppo-lag", "--intensity", "extreme"], ["--lagrange", "bang"]]
)
def test_bad_arm_and_intensity_refused(tmp_path, args, capsys):
    from taxbench.experiments.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", *TINY, *args, "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_envs_lists_intensities(capsys):
    from taxbench.experiments.cli import main

    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "safety intensities" in out and "moderate" in out and "d=25" in out and "β=4" in out
