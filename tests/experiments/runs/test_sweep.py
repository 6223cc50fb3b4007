"""``taxbench sweep``: the grid and its doses, failures that stop nothing, Ray = local pool, kill and resume.

Runs are tiny (128-2048 steps of HalfCheetah with 20-step episodes and a 0.05 m/s limit, so the
constraint binds at once); the point is the bookkeeping, not learning.
"""

import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from taxbench.experiments.analysis.report import analyse, write_tables
from taxbench.experiments.cli import main
from taxbench.experiments.runs.runfolder import read_status
from taxbench.experiments.runs.sweep import SweepSpec, baseline_arm, intensity_overrides, run_sweep, sweep_jobs

ENV = "taxbench/HalfCheetahVelocity-v0"
ENV_KWARGS = {"velocity_limit": 0.05, "max_episode_steps": 20}
TINY = {"n_steps": 64, "batch_size": 64, "n_epochs": 1}


def tiny_spec(out: Path, **overrides) -> SweepSpec:
    fields = {
        "envs": (ENV,),
        "arms": ("ppo-lag",),
        "intensities": ("off", "strict"),
        "seeds": (0, 1),
        "steps": 128,
        "experiment": "tiny",
        "out": out,
        "n_envs": 1,
        "hyperparams": dict(TINY),
        "env_kwargs": ENV_KWARGS,
        "device": "cpu",
        "eval_episodes": 2,
        "checkpoint_every": 64,
    }
    fields.update(overrides)
    return SweepSpec(**fields).validate()


def test_grid_includes_the_baseline_and_maps_each_intensity_to_a_cost_limit(tmp_path):
    spec = tiny_spec(tmp_path, arms=("ppo-lag",), intensities=("mild", "moderate", "strict", "d10"), seeds=(3,))
    assert spec.cells() == [
        (ENV, "ppo", "off"),
        (ENV, "ppo-lag", "mild"),
        (ENV, "ppo-lag", "moderate"),
        (ENV, "ppo-lag", "strict"),
        (ENV, "ppo-lag", "d10"),
    ]
    jobs = sweep_jobs(spec)
    assert [j.cfg.cost_limit for j in jobs[1:]] == [50.0, 25.0, 5.0, 10.0]  # 2×, 1×, 0.2× the default 25; d10
    assert [j.directory.relative_to(tmp_path).as_posix() for j in jobs[:2]] == [
        "tiny/HalfCheetahVelocity-v0/ppo-off/seed3",
        "tiny/HalfCheetahVelocity-v0/ppo-lag-mild/seed3",
    ]
    assert all(j.cfg.hyperparams["n_steps"] == 64 and "policy_kwargs" in j.cfg.hyperparams for j in jobs)  # preset kept
    assert len({j.label for j in jobs}) == len(jobs)
    assert intensity_overrides(ENV, "ppo", "off") == {}
    assert baseline_arm("sac-lag") == "sac" and baseline_arm("ppo-lag") == "ppo"
    with pytest.raises(ValueError, match="unknown intensity 'extreme'"):
        tiny_spec(tmp_path, intensities=("extreme",))
    with pytest.raises(ValueError, match="unknown arm 'dqn'"):
        tiny_spec(tmp_path, arms=("dqn",))
    with pytest.raises(ValueError, match="d10 sets a cost limit, which ppo-penalty does not use"):
        sweep_jobs(tiny_spec(tmp_path, arms=("ppo-penalty",), intensities=("d10",)))
    penalty = sweep_jobs(tiny_spec(tmp_path, arms=("ppo-penalty", "sac-lag"), intensities=("strict",), seeds=(0,)))
    assert [j.label.split()[1] for j in penalty] == ["ppo-off", "sac-off", "ppo-penalty-strict", "sac-lag-strict"]
    assert penalty[2].cfg.hyperparams["penalty_coef"] > 0 and penalty[3].cfg.cost_limit == 5.0
    with pytest.raises(ValueError, match="distinct"):
        tiny_spec(tmp_path, seeds=(1, 1))


def test_a_failing_run_is_recorded_and_the_others_finish_then_reruns_skip_done_runs(tmp_path):
    # lagrange_lr < 0 makes every ppo-lag run fail at construction; ppo ignores Lagrangian kwargs
    spec = tiny_spec(tmp_path, seeds=(0,), hyperparams={**TINY, "lagrange_lr": -1.0})
    results = run_sweep(spec, workers=1, progress=False)
    assert [(r.job.cfg.arm, r.summary is not None) for r in results] == [("ppo", True), ("ppo-lag", False)]
    failed = read_status(results[1].job.directory)
    assert failed["state"] == "failed" and "lagrange lr must be >= 0" in failed["error"]
    assert read_status(results[0].job.directory)["state"] == "done"
    assert json.loads((tmp_path / "tiny" / "envs.json").read_text())[ENV]["constraints"][0]["kind"] == "velocity"

    again = run_sweep(spec, workers=1, progress=False)
    assert again[0].extra.get("skipped") and again[0].summary == results[0].summary
    assert again[1].error and not again[1].extra.get("skipped")


def _summary(folder: Path) -> str:
    write_tables(analyse(folder), folder)
    return (folder / "summary.csv").read_text()


def test_ray_backend_writes_the_same_summary_as_the_local_pool(tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'taxbench[ray]')")
    import ray

    local = run_sweep(tiny_spec(tmp_path / "local", seeds=(0,)), workers=2, progress=False)
    assert all(r.summary for r in local), [r.error for r in local]
    assert not ray.is_initialized()
    remote = run_sweep(
        tiny_spec(tmp_path / "ray", seeds=(0,)),
        workers=2,
        backend="ray",
        progress=False,
        ray_init_kwargs={"num_cpus": 2},
    )
    assert all(r.summary for r in remote), [r.error for r in remote]
    assert not ray.is_initialized()  # the instance started for the sweep is shut down
    expected = _summary(tmp_path / "local" / "tiny")
    assert _summary(tmp_path / "ray" / "tiny") == expected
    rows = list(csv.DictReader(expected.splitlines()))
    assert [(r["arm"], r["state"]) for r in rows] == [("ppo", "done"), ("ppo-lag", "done")]
    assert any(float(r["violation_rate"]) > 0 for r in rows)  # the constraint binds: a real comparison


def _progress(folder: Path) -> list[dict]:
    with open(folder / "progress.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k not in ("fps", "wall_s")} for row in csv.DictReader(fh)]


def test_killed_run_is_completed_by_the_rerun_with_nothing_lost_or_duplicated(tmp_path, capsys):
    out = tmp_path / "runs"
    args = [
        "sweep",
        "--envs",
        ENV,
        "--arms",
        "ppo-lag",
        "--intensities",
        "off",
        "strict",
        "--seeds",
        "1",
        "--steps",
        "1024",
        "--workers",
        "2",
        "--n-envs",
        "1",
        "--eval-episodes",
        "2",
        "--checkpoint-every",
        "64",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--experiment",
        "kill",
        "--no-report",
        "--no-progress",
        *(f"--hyperparam={k}={v}" for k, v in TINY.items()),
        *(f"--env-kwarg={k}={v}" for k, v in ENV_KWARGS.items()),
    ]
    folder = out / "kill" / "HalfCheetahVelocity-v0" / "ppo-lag-strict" / "seed0"
    victim: list[int] = []

    def kill_one_run_midway() -> None:  # the run's own process, after its second checkpoint
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                status = read_status(folder)
            except ValueError:
                status = None
            if status and status["state"] == "running" and len(list((folder / "checkpoints").glob("step_*.zip"))) >= 2:
                os.kill(status["pid"], signal.SIGKILL)
                victim.append(status["pid"])
                return
            if status and status["state"] != "running":
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_run_midway)
    killer.start()
    first = main(args)  # the real command, in this process (its runs are child processes)
    killer.join()
    assert victim, "the run finished before it could be killed"
    assert first == 1
    killed = read_status(folder)
    assert killed["state"] == "failed" and "killed by SIGKILL" in killed["error"]
    resume_at = max(int(p.stem.split("_")[1]) for p in (folder / "checkpoints").glob("step_*.zip"))
    kept = [row for row in _progress(folder) if int(row["steps"]) <= resume_at]
    [other] = [p for p in (out / "kill").glob("*/*/seed*") if p != folder]
    assert read_status(other)["state"] == "done"  # the kill stopped no other run
    mtime = (other / "model.zip").stat().st_mtime_ns
    capsys.readouterr()

    assert main(args) == 0  # the same command again
    assert "2 of 2 runs done (1 already done before)" in capsys.readouterr().out.replace("\n", " ")
    assert read_status(folder)["state"] == "done"
    rows = _progress(folder)
    assert [int(r["steps"]) for r in rows] == list(range(64, 1025, 64))  # every rollout once: none lost or doubled
    assert rows[: len(kept)] == kept and len(kept) >= 2  # what was trained before the kill is kept as it was
    assert len(json.loads((folder / "config.json").read_text())["resumes"]) == 1  # continued, not restarted
    assert (other / "model.zip").stat().st_mtime_ns == mtime  # the finished run was skipped
    with open(out / "kill" / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted((r["arm"], r["seed"], r["state"]) for r in rows) == [("ppo", "0", "done"), ("ppo-lag", "0", "done")]
