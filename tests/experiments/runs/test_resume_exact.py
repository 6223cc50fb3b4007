"""A run killed after a checkpoint and resumed ends exactly where an uninterrupted run ends.

Compared: every tensor the final model saves (networks, Adam moments, cost critic, SAC's temperature), the
multiplier state, progress.csv (all columns but the timing ones), episodes.csv and events.jsonl. The kill is an
exception raised mid-rollout in process, and once a real SIGKILL of a training subprocess.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.save_util import recursive_getattr

from taxbench.experiments.runs.checkpoint import list_checkpoints, resume_state_path
from taxbench.experiments.runs.replay_state import replay_path
from taxbench.experiments.runs.train import train_run
from taxbench.policies import load_learner

TIMING_COLUMNS = ("fps", "wall_s")
HERE = Path(__file__).resolve().parent.parent  # tests/experiments, where pendulum_cost_env lives


class Crash(BaseCallback):
    """Raises once training passes ``at`` steps, as a killed process would stop."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.model.num_timesteps > self.at:
            raise RuntimeError(f"simulated kill at {self.model.num_timesteps}")
        return True


def _rows(path: Path, drop: tuple[str, ...] = ()) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(fh)]


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor the learner saves (networks, optimiser moments, SAC's temperature), and its counters."""
    model = load_learner(folder / "model.zip", device="cpu")
    state_dicts, variables = model._get_torch_save_params()
    out: dict[str, torch.Tensor] = {}
    for name in state_dicts:
        obj = recursive_getattr(model, name)
        state = obj.state_dict()
        if isinstance(obj, torch.optim.Optimizer):
            state = {f"{i}.{k}": v for i, moments in state["state"].items() for k, v in moments.items()}
        out.update({f"{name}.{k}": torch.as_tensor(v) for k, v in state.items()})
    for name in variables:
        out[name] = getattr(model, name).detach()
    if hasattr(model, "lagrange"):
        out.update(
            {
                f"lagrange.{k}": torch.tensor(float(v))
                for k, v in model.lagrange.state_dict().items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
        )
    out["num_timesteps"] = torch.tensor(model.num_timesteps)
    return out


def _identical(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bit for bit, NaN where the other is NaN (a multiplier never updated records its cost as NaN)."""
    if a.is_floating_point() and b.is_floating_point():
        return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())
    return torch.equal(a, b)


def assert_same_run(resumed: Path, reference: Path) -> None:
    """Equal weights, optimiser and multiplier state, progress rows, episodes and events."""
    got, want = _tensors(resumed), _tensors(reference)
    assert got.keys() == want.keys()
    different = [k for k in want if not _identical(got[k], want[k])]
    assert not different, f"tensors differ after resume: {different}"
    assert _rows(resumed / "progress.csv", TIMING_COLUMNS) == _rows(reference / "progress.csv", TIMING_COLUMNS)
    assert _rows(resumed / "episodes.csv") == _rows(reference / "episodes.csv")
    assert (resumed / "events.jsonl").read_text() == (reference / "events.jsonl").read_text()


def assert_resumes_exactly(cfg, tmp_path: Path, kill_at: int) -> tuple[Path, Path]:
    """Train ``cfg`` once uninterrupted and once killed after ``kill_at`` steps then resumed; the two must agree.

    Returns:
        The resumed and the reference run folders.
    """
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    train_run(cfg, reference, progress=False)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train_run(cfg, resumed, progress=False, callbacks=[Crash(at=kill_at)])
    saved = list_checkpoints(resumed / "checkpoints")
    assert saved and 0 < saved[0].steps <= kill_at, "no checkpoint before the kill: a rerun from scratch proves nothing"
    train_run(cfg, resumed, resume=True, progress=False)
    assert_same_run(resumed, reference)
    return resumed, reference


@pytest.mark.parametrize(
    ("arm", "n_envs", "extra"),
    [
        ("ppo", 1, {}),
        ("ppo", 4, {}),
        ("ppo-lag", 1, {"lagrange_method": "pid"}),
        ("ppo-lag", 4, {}),
    ],
)
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, tiny_config, arm, n_envs, extra):
    # 64 steps per env per rollout: checkpoints every 2 rollouts, the kill mid-way through the rollout after one
    steps_per_rollout = 64 * n_envs
    cfg = tiny_config(
        arm=arm,
        intensity="off" if arm == "ppo" else "d5",
        n_envs=n_envs,
        steps=8 * steps_per_rollout if n_envs == 1 else 4 * steps_per_rollout,
        checkpoint_every=2 * steps_per_rollout,
        hyperparams={**tiny_config().hyperparams, **extra},
    )
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    train_run(cfg, reference, progress=False)

    kill_at = 2 * steps_per_rollout + steps_per_rollout // 2
    with pytest.raises(RuntimeError, match="simulated kill"):
        train_run(cfg, resumed, progress=False, callbacks=[Crash(at=kill_at)])
    newest = list_checkpoints(resumed / "checkpoints")[0]
    assert newest.steps == 2 * steps_per_rollout and resume_state_path(newest.path).exists()
    train_run(cfg, resumed, resume=True, progress=False)
    assert_same_run(resumed, reference)
    if arm == "ppo-lag":  # the constraint was active: λ moved, so the multiplier state was exercised
        assert float(_rows(reference / "progress.csv")[-1]["lambda"]) > 0


@pytest.mark.parametrize(("backend", "arm", "n_envs"), [("mujoco", "ppo-lag", 4), ("pybullet", "ppo", 2)])
def test_panda_worlds_resume_exactly(tmp_path, tiny_config, backend, arm, n_envs):
    """Panda worlds, whose controller reads body frames and Jacobians between steps.

    Batched MuJoCo worlds replay their last step for the derived quantities; PyBullet worlds carry their contact
    caches in the checkpoint (the adapter's ``exact_state``).
    """
    steps_per_rollout = 64 * n_envs
    cfg = tiny_config(
        env_id="taxbench/PandaPush-v0",
        env_kwargs={"max_episode_steps": 40, "backend": backend},
        arm=arm,
        intensity="d5" if arm == "ppo-lag" else "off",
        n_envs=n_envs,
        steps=4 * steps_per_rollout,
        checkpoint_every=2 * steps_per_rollout,
        eval_episodes=1,
    )
    assert_resumes_exactly(cfg, tmp_path, kill_at=2 * steps_per_rollout + steps_per_rollout // 2)


def test_sac_lag_resumes_exactly_with_its_replay_buffer(tmp_path, tiny_config):
    """SAC-Lagrangian on batched Panda worlds: replay buffer (with costs), temperature, λ and its update clock."""
    cfg = tiny_config(
        env_id="taxbench/PandaPush-v0",
        env_kwargs={"max_episode_steps": 40},
        arm="sac-lag",
        intensity="d1",
        cost_limit=1.0,
        n_envs=2,
        steps=600,
        checkpoint_every=256,
        eval_episodes=1,
        hyperparams={
            "learning_starts": 64,
            "batch_size": 32,
            "buffer_size": 5000,
            "policy_kwargs": {"net_arch": [32, 32]},
            "lagrange_interval": 200,  # λ updates at 200 and 400 steps: one between the checkpoint and the kill
        },
    )
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    train_run(cfg, reference, progress=False)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train_run(cfg, resumed, progress=False, callbacks=[Crash(at=400)])
    newest = list_checkpoints(resumed / "checkpoints")[0]
    assert newest.steps == 256 and replay_path(newest.path).exists()
    train_run(cfg, resumed, resume=True, progress=False)
    assert_same_run(resumed, reference)
    assert float(_rows(reference / "progress.csv")[-1]["lambda"]) > 0
    assert not list((resumed / "checkpoints").glob("*.npz")), "a finished run keeps no replay buffer"


def test_checkpoint_without_resume_state_still_resumes(tmp_path, tiny_config, caplog):
    cfg = tiny_config(arm="ppo", intensity="off")
    folder = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated kill"):
        train_run(cfg, folder, progress=False, callbacks=[Crash(at=300)])
    newest = list_checkpoints(folder / "checkpoints")[0]
    resume_state_path(newest.path).unlink()  # a checkpoint from before exact resumes
    with caplog.at_level("WARNING"):
        assert train_run(cfg, folder, resume=True, progress=False)["train_steps"] == 512
    assert "no resume state" in caplog.text


def test_damaged_replay_buffer_resumes_with_an_empty_one(tmp_path, tiny_config, caplog):
    """A replay file that cannot be read costs the buffer only: the run still resumes from its checkpoint."""
    cfg = tiny_config(
        arm="sac",
        intensity="off",
        steps=300,
        checkpoint_every=100,
        eval_episodes=1,
        hyperparams={"learning_starts": 50, "batch_size": 16, "policy_kwargs": {"net_arch": [16]}},
    )
    folder = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated kill"):
        train_run(cfg, folder, progress=False, callbacks=[Crash(at=250)])
    newest = list_checkpoints(folder / "checkpoints")[0]
    replay_path(newest.path).write_bytes(b"truncated")
    with caplog.at_level("INFO"):
        assert train_run(cfg, folder, resume=True, progress=False)["train_steps"] == 300
    assert "empty replay buffer" in caplog.text
    assert f"from {newest.path.name} ({newest.steps} steps, exact but for an empty replay buffer)" in caplog.text


_CHILD = """
import sys, time
sys.path.insert(0, {here!r})
import pendulum_cost_env  # noqa: F401 (registers the env)
from pathlib import Path
from stable_baselines3.common.callbacks import BaseCallback
from taxbench.experiments.runs.config import RunConfig
from taxbench.experiments.runs.runfolder import read_json
from taxbench.experiments.runs.train import train_run

class Hang(BaseCallback):
    def _on_step(self):
        if self.model.num_timesteps > {hang_at}:
            Path({marker!r}).write_text("hung")
            time.sleep(600)
        return True

cfg = RunConfig.from_dict(read_json({config!r}))
train_run(cfg, Path({folder!r}), progress=False, callbacks=[Hang()])
"""


def test_sigkilled_subprocess_resumes_exactly(tmp_path, tiny_config):
    cfg = tiny_config(arm="ppo-lag", n_envs=2, steps=768, checkpoint_every=256)  # 128-step rollouts
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    train_run(cfg, reference, progress=False)

    config_file, marker = tmp_path / "cfg.json", tmp_path / "hung"
    config_file.write_text(json.dumps(cfg.to_dict()))
    code = _CHILD.format(here=str(HERE), hang_at=320, marker=str(marker), config=str(config_file), folder=str(resumed))
    child = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, "training subprocess ended before its kill"
            assert time.monotonic() < deadline, "training subprocess never reached the kill point"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert [c.steps for c in list_checkpoints(resumed / "checkpoints")] == [256]
    train_run(cfg, resumed, resume=True, progress=False)
    assert_same_run(resumed, reference)
