"""Loose ends of issue 18, each driven through the real command: impossible devices refused before any run,
no SB3 temp folders, the torch build in every config, TensorBoard event files a TensorBoard reader loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
TINY = ["--env", "taxbench/HalfCheetahVelocity-v0", "--steps", "1024", "--n-envs", "1", "--eval-episodes", "1"]


def taxbench(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taxbench.experiments.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "gpu"])
def test_unknown_device_is_refused_at_parse_time(tmp_path, device):
    result = taxbench("pair", "--device", device, "--out", str(tmp_path / "runs"), "--no-progress")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "device" in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing started


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
@pytest.mark.parametrize("command", ["train", "pair", "sweep"])
def test_cuda_without_a_gpu_is_refused_before_any_run(tmp_path, command):
    result = taxbench(command, "--device", "cuda", "--out", str(tmp_path / "runs"), "--no-progress")
    assert result.returncode == 2, result.stderr
    assert "sees no CUDA device" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_typer_is_not_a_dependency_nobody_imports():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any(d.startswith("typer") for d in deps)


@pytest.fixture(scope="module")
def tb_pair(tmp_path_factory):
    """A tiny pair with --tensorboard, its TMPDIR an empty folder of its own."""
    base = tmp_path_factory.mktemp("tb_pair")
    tmp = base / "tmp"
    tmp.mkdir()
    env = {"TMPDIR": str(tmp)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "taxbench.experiments.cli",
            "pair",
            *TINY,
            "--seeds",
            "0",
            "--workers",
            "1",
            "--out",
            "runs",
            "--tensorboard",
            "runs/tb",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=base,
        env={k: v for k, v in {**os.environ, **env}.items() if k != "SB3_LOGDIR"},
    )
    return base, tmp, result


def test_pair_with_tensorboard_writes_event_files_tensorboard_reads(tb_pair):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    base, _, result = tb_pair
    assert result.returncode == 0, result.stderr
    for arm in ("ppo-off", "ppo-lag-d25"):
        folder = base / "runs" / "tb" / "default" / "HalfCheetahVelocity-v0" / arm / "seed0"
        events = EventAccumulator(str(folder))
        events.Reload()
        scalars = set(events.Tags()["scalars"])
        assert {"safety/ep_cost", "safety/violation_rate", "safety/lambda", "train/value_loss"} <= scalars, scalars
        steps = [e.step for e in events.Scalars("safety/violation_rate")]
        assert steps == sorted(steps) and steps[-1] >= 1024


def test_a_run_writes_nothing_in_the_temp_folder(tb_pair):
    _, tmp, result = tb_pair
    assert result.returncode == 0, result.stderr
    assert not [p.name for p in tmp.iterdir() if p.name.startswith("SB3-")]


def test_every_run_config_records_the_torch_build(tb_pair):
    base, _, _ = tb_pair
    configs = sorted((base / "runs" / "default").rglob("config.json"))
    assert len(configs) == 2
    for path in configs:
        build = json.loads(path.read_text())["provenance"]["torch_build"]
        assert build["version"] == torch.__version__
        assert build["cuda"] == torch.version.cuda


@pytest.mark.parametrize("width", [100, 120])
def test_envs_table_fits_the_width_and_wraps_thresholds_not_task_names(width):
    import argparse
    import io

    from rich.console import Console

    from taxbench.experiments.cli.run_cmds import cmd_envs

    out = io.StringIO()
    console = Console(file=out, width=width)
    assert cmd_envs(argparse.Namespace(), console, console) == 0
    lines = out.getvalue().splitlines()
    assert max(map(len, lines)) <= width
    end = next(i for i, line in enumerate(lines) if line.startswith("Default cost limit"))
    table_rows = [line for line in lines[:end] if line.startswith("│ ")]
    task_cells = [line.split("│")[2].strip() for line in table_rows]
    # the task column keeps phrases together (the old table, piped, squeezed it to one word per line)
    top = next(line for line in lines if line.startswith("┏"))
    task_width = len(top.split("┳")[1]) - 2  # minus the cell padding
    assert task_width >= 20 and max(len(cell) for cell in task_cells) >= 18, (task_width, task_cells)


def test_sweep_builds_wrapper_arms_on_their_wrapped_env_before_any_run(tmp_path):
    """saute and ppo-shield need their env wrapper: the pre-run learner check builds them the way training does."""
    from taxbench.experiments.cli.run_options import check_learners
    from taxbench.experiments.runs.sweep import SweepSpec, sweep_jobs

    spec = SweepSpec(
        envs=("taxbench/PandaReach-v0",), arms=("saute", "ppo-shield", "cpo"), intensities=("off", "strict"),
        seeds=(0,), steps=64, out=tmp_path,
    )  # fmt: skip
    check_learners(job.cfg for job in sweep_jobs(spec))  # raises UsageError on a learner that cannot be built


def test_rollout_says_when_the_runs_shown_measured_nothing(tmp_path):
    from taxbench.experiments.cli.media_cmds import measured_nothing
    from taxbench.experiments.runs.runfolder import write_status

    unc, lag = tmp_path / "ppo-off" / "seed0", tmp_path / "ppo-lag-d25" / "seed0"
    for run, lam in ((unc, ""), (lag, "0.0")):
        run.mkdir(parents=True)
        write_status(run, "done", summary={"capability": 0.0, "violation_rate": 0.0})
        (run / "progress.csv").write_text(f"steps,ep_return,lambda\n512,0.0,{lam}\n1024,0.0,{lam}\n")
    lines = measured_nothing([unc, lag])
    assert any("measured nothing" in line for line in lines)
    assert any(line.startswith("ppo-lag-d25: λ never left 0") for line in lines)
    (lag / "progress.csv").write_text("steps,ep_return,lambda\n512,3.0,0.0\n1024,5.0,0.4\n")
    write_status(lag, "done", summary={"capability": 5.0, "violation_rate": 0.0})
    assert measured_nothing([unc, lag]) == []
