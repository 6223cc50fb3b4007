import json
import math
import os
from pathlib import Path

import pytest

from taxbench.experiments.runs import runfolder
from taxbench.experiments.runs.runfolder import (
    ProgressCsv,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    find_runs,
    read_status,
    run_dir,
    to_jsonable,
    write_status,
)


def test_run_dir_layout(tmp_path):
    path = run_dir(tmp_path, "exp", "taxbench/HalfCheetahVelocity-v0", "ppo-lag", "d25", 3)
    assert path == tmp_path / "exp" / "HalfCheetahVelocity-v0" / "ppo-lag-d25" / "seed3"
    assert run_dir("runs", "e", "Pendulum-v1", "ppo", "off", 0) == Path("runs/e/Pendulum-v1/ppo-off/seed0")
    with pytest.raises(ValueError, match="intensity"):
        run_dir(tmp_path, "exp", "Pendulum-v1", "ppo", "a/b", 0)
    with pytest.raises(ValueError, match="seed"):
        run_dir(tmp_path, "exp", "Pendulum-v1", "ppo", "off", -1)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic_write_json(target, {"x": 1, "nan": math.nan, "t": (1, 2)})
    assert json.loads(target.read_text()) == {"x": 1, "nan": None, "t": [1, 2]}
    atomic_write_text(target, "replaced")
    assert target.read_text() == "replaced"
    assert _leftovers(target.parent) == []


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a fi")
        raise RuntimeError("killed while writing")
    assert target.read_text() == "old" and _leftovers(tmp_path) == []

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(runfolder.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(target, {"new": True})
    assert target.read_text() == "old" and _leftovers(tmp_path) == []


def test_status_round_trip(tmp_path):
    assert read_status(tmp_path) is None
    write_status(tmp_path, "running")
    assert read_status(tmp_path)["state"] == "running"
    write_status(tmp_path, "failed", error="boom", steps=128)
    status = read_status(tmp_path)
    assert status["state"] == "failed" and status["error"] == "boom" and status["steps"] == 128
    with pytest.raises(ValueError, match="state"):
        write_status(tmp_path, "paused")
    (tmp_path / "status.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        read_status(tmp_path)


def test_to_jsonable_numpy():
    import numpy as np

    assert to_jsonable({"a": np.float32(1.5), "b": np.arange(2), "c": np.inf, "d": np.bool_(True)}) == {
        "a": 1.5,
        "b": [0, 1],
        "c": None,
        "d": True,
    }


def _steps(path: Path) -> list[int]:
    return [int(r["steps"]) for r in ProgressCsv(path).rows()]


def test_progress_csv_header_once_and_resume_truncation(tmp_path):
    path = tmp_path / "progress.csv"
    with ProgressCsv(path) as csv_file:
        for steps in (64, 128, 192, 256):
            csv_file.append({"steps": steps, "ep_return": -steps / 10, "lambda": math.nan, "extra": "x"})
    assert path.read_text().splitlines()[0] == "steps,ep_return,lambda,extra"
    with open(path, "a") as fh:  # a row cut short by a kill
        fh.write("320,-3")
    # resume from a checkpoint at 128 steps: later rows go, the header stays single
    with ProgressCsv(path, resume_steps=128) as csv_file:
        assert [int(r["steps"]) for r in csv_file.rows()] == [64, 128]
        csv_file.append({"steps": 192, "ep_return": 1.0, "unknown": 5})
    assert _steps(path) == [64, 128, 192]
    assert path.read_text().count("steps,") == 1
    assert ProgressCsv(path).rows()[0]["lambda"] == ""  # NaN written empty
    ProgressCsv(path, resume_steps=0)
    assert _steps(path) == []
    assert ProgressCsv(tmp_path / "absent.csv", resume_steps=10).rows() == []


def test_find_runs(tmp_path):
    a = run_dir(tmp_path, "exp", "taxbench/Ant-v0", "ppo-lag", "strict", 1)
    b = run_dir(tmp_path, "exp", "taxbench/Ant-v0", "ppo", "off", 0)
    c = run_dir(tmp_path, "exp", "taxbench/Ant-v0", "ppo", "off", 2)
    for folder in (a, b, c):
        folder.mkdir(parents=True)
    write_status(a, "done")
    write_status(b, "failed", error="x")
    (c / "status.json").write_text("garbage")
    config = {"experiment": "exp", "env_id": "taxbench/Ant-v0", "arm": "ppo-lag", "intensity": "strict", "seed": 1}
    atomic_write_json(a / "config.json", {"config": config})
    records = {(r.arm, r.intensity, r.seed): r for r in find_runs(tmp_path)}
    assert set(records) == {("ppo-lag", "strict", 1), ("ppo", "off", 0), ("ppo", "off", 2)}
    assert records["ppo-lag", "strict", 1].state == "done" and records["ppo-lag", "strict", 1].env == "Ant-v0"
    assert records["ppo", "off", 0].state == "failed" and records["ppo", "off", 0].experiment == "exp"
    assert records["ppo", "off", 2].state == "unreadable"
    assert [r.path for r in find_runs(tmp_path / "exp" / "Ant-v0" / "ppo-off")] == [b, c]
    assert os.path.isdir(records["ppo", "off", 0].path)


def test_run_files_are_private_by_default_and_the_mode_is_configurable(tmp_path, monkeypatch):
    from taxbench.experiments.runs.runfolder import FILE_MODE_ENV_VAR, atomic_write_json

    monkeypatch.delenv(FILE_MODE_ENV_VAR, raising=False)
    atomic_write_json(tmp_path / "private.json", {"a": 1})
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv(FILE_MODE_ENV_VAR, "644")
    atomic_write_json(tmp_path / "shared.json", {"a": 1})
    assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o644
    monkeypatch.setenv(FILE_MODE_ENV_VAR, "rw-r--r--")
    with pytest.raises(ValueError, match="octal file mode"):
        atomic_write_json(tmp_path / "bad.json", {"a": 1})
    assert not (tmp_path / "bad.json").exists()
