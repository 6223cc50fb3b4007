"""A model zip is data: no subcommand that loads one runs the code a crafted zip carries (issue 19)."""

from __future__ import annotations

import base64
import json
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ENV = "taxbench/HalfCheetahVelocity-v0"


class Touch:
    """Unpickling this runs ``touch <path>``: the payload of a crafted model zip."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.path)}",))


def craft(model: Path, marker: Path, keep_sidecar: bool = True) -> None:
    """Rewrite ``model`` in place with a pickle payload that creates ``marker`` in its ``data`` entry."""
    payload = base64.b64encode(pickle.dumps(Touch(marker))).decode()
    entries = {}
    with zipfile.ZipFile(model) as zin:
        for item in zin.infolist():
            content = zin.read(item)
            if item.filename == "data":
                data = json.loads(content)
                data["payload"] = {":serialized:": payload}
                content = json.dumps(data).encode()
            if item.filename != "taxbench.json" or keep_sidecar:
                entries[item.filename] = content
    with zipfile.ZipFile(model, "w") as zout:
        for name, content in entries.items():
            zout.writestr(name, content)


def taxbench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    env.pop("DISPLAY", None)
    return subprocess.run(
        [sys.executable, "-m", "taxbench.experiments.cli", *args],
        capture_output=True, text=True, timeout=600, env=env, cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished ppo run (512 steps), trained once for the module."""
    out = tmp_path_factory.mktemp("trusted")
    result = taxbench("train", "--env", ENV, "--steps", "512", "--n-envs", "1", "--eval-episodes", "1",
                      "--out", str(out), "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr
    [run] = list(out.rglob("seed0"))
    return run


def poisoned_copy(trained: Path, tmp_path: Path, keep_sidecar: bool) -> tuple[Path, Path]:
    run = tmp_path / "runs" / "default" / "HalfCheetahVelocity-v0" / "ppo-off" / "seed0"
    shutil.copytree(trained, run)
    marker = tmp_path / "PWNED"
    craft(run / "model.zip", marker, keep_sidecar)
    return run, marker


def commands(run: Path, tmp_path: Path) -> dict[str, list[str]]:
    return {
        "eval": ["eval", str(run), "--episodes", "1"],
        "gate": ["gate", str(run), "--episodes", "1", "--max-violation-rate", "1"],
        "gate-zip": ["gate", str(run / "model.zip"), "--env", ENV, "--episodes", "1", "--max-violation-rate", "1"],
        "rollout": ["rollout", str(run), "--episodes", "1", "--max-steps", "5", "--no-clips", "--no-sheet",
                    "--no-progress", "--out", str(tmp_path / "v.gif")],
        "shield": ["shield", str(run), "--intensity", "mild", "--out", str(tmp_path / "shielded")],
        "view": ["view", str(run), "--episodes", "1"],
    }  # fmt: skip


@pytest.mark.parametrize("command", ["eval", "gate", "gate-zip", "rollout", "shield", "view"])
def test_a_payload_beside_the_tensors_never_runs(trained, tmp_path, command):
    run, marker = poisoned_copy(trained, tmp_path, keep_sidecar=True)
    result = taxbench(*commands(run, tmp_path)[command])
    assert not marker.exists(), f"{command} ran the payload"
    assert "Traceback" not in result.stderr
    if command != "view":  # view has no display here: it says so after loading
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", ["eval", "gate", "rollout", "shield"])
def test_a_zip_that_only_loads_by_unpickling_is_refused_in_one_line(trained, tmp_path, command):
    run, marker = poisoned_copy(trained, tmp_path, keep_sidecar=False)
    result = taxbench(*commands(run, tmp_path)[command])
    assert not marker.exists()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--trust-pickle" in result.stderr


def test_trust_pickle_is_an_explicit_opt_in_that_does_unpickle(trained, tmp_path):
    run, marker = poisoned_copy(trained, tmp_path, keep_sidecar=False)
    result = taxbench("eval", str(run), "--episodes", "1", "--trust-pickle")
    assert result.returncode == 0, result.stderr
    assert marker.exists()  # the payload was real: the opt-in runs it, as its help says


def test_gate_on_a_model_for_another_env_names_both(trained, tmp_path):
    result = taxbench("gate", str(trained / "model.zip"), "--env", "taxbench/HopperVelocity-v0", "--episodes", "1",
                      "--max-violation-rate", "1")  # fmt: skip
    assert result.returncode == 2
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "HalfCheetahVelocity-v0" in line and "HopperVelocity-v0" in line
