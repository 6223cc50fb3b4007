import csv
import json
from dataclasses import replace

import pytest
from stable_baselines3.common.callbacks import BaseCallback

from taxbench.experiments.runs.config import RunConfig
from taxbench.experiments.runs.evaluation import read_episodes, read_events
from taxbench.experiments.runs.runfolder import read_csv_rows, read_status, run_dir
from taxbench.experiments.runs.train import evaluate_run, list_checkpoints, make_vec_env, train_run
from taxbench.policies import load_learner

ROLLOUTS = [128, 256, 384, 512]  # 2 envs x 64 steps per rollout, 512 steps


class Crash(BaseCallback):
    """Raises once training passes ``at`` steps, as a killed process would stop."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.model.num_timesteps > self.at:
            raise RuntimeError(f"simulated kill at {self.model.num_timesteps}")
        return True


def _folder(tmp_path, cfg: RunConfig):
    return run_dir(tmp_path, cfg.experiment, cfg.env_id, cfg.arm, cfg.intensity, cfg.seed)


def _progress_steps(folder) -> list[int]:
    with open(folder / "progress.csv", newline="") as fh:
        return [int(row["steps"]) for row in csv.DictReader(fh)]


def test_train_run_writes_every_file(tmp_path, tiny_config):
    cfg = tiny_config()
    folder = _folder(tmp_path, cfg)
    summary = train_run(cfg, folder, progress=False)

    names = {p.name for p in folder.iterdir()}
    assert names >= {"config.json", "progress.csv", "model.zip", "episodes.csv", "events.jsonl", "status.json"}
    assert not [n for n in names if n.startswith(".")]  # no temp files left behind
    saved = json.loads((folder / "config.json").read_text())
    assert RunConfig.from_dict(saved["config"]) == cfg
    assert saved["provenance"]["packages"]["stable_baselines3"] and saved["provenance"]["device"] == "cpu"
    assert _progress_steps(folder) == ROLLOUTS
    with open(folder / "progress.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert {"ep_return", "ep_cost", "violation_rate", "lambda", "fps", "wall_s"} <= set(row)
    episodes = read_episodes(folder)
    assert len(episodes) == cfg.eval_episodes and [e["seed"] for e in episodes] == [100, 101, 102]
    assert len(read_events(folder)) == summary["violation_events"]
    status = read_status(folder)
    assert status["state"] == "done" and status["summary"] == pytest.approx(summary, nan_ok=True)
    for key in ("capability", "violation_rate", "episode_cost", "wall_s"):
        assert isinstance(summary[key], float)
    assert summary["train_steps"] == 512 and summary["capability_metric"] == "return"
    assert summary["lambda"] is not None and summary["lambda"] >= 0
    venv = make_vec_env(replace(cfg, n_envs=1))
    assert load_learner(folder / "model.zip", env=venv, device="cpu").num_timesteps == 512
    venv.close()
    assert [c.steps for c in list_checkpoints(folder / "checkpoints")] == [512, 384, 256]

    # done + resume: nothing retrained; without resume: refuse to clobber
    mtime = (folder / "model.zip").stat().st_mtime_ns
    assert train_run(cfg, folder, resume=True, progress=False) == status["summary"]
    assert (folder / "model.zip").stat().st_mtime_ns == mtime
    with pytest.raises(FileExistsError, match="resume"):
        train_run(cfg, folder, progress=False)


def test_killed_run_fails_then_resumes_without_duplicates(tmp_path, tiny_config):
    cfg = tiny_config(arm="ppo", intensity="off", hyperparams={**tiny_config().hyperparams})
    folder = _folder(tmp_path, cfg)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train_run(cfg, folder, progress=False, callbacks=[Crash(at=300)])
    status = read_status(folder)
    assert status["state"] == "failed" and "simulated kill" in status["error"]
    assert "Traceback" in status["traceback"] and status["steps"] == 256
    assert _progress_steps(folder) == [128, 256]
    assert [c.steps for c in list_checkpoints(folder / "checkpoints")] == [256, 128]
    assert not (folder / "model.zip").exists()

    with pytest.raises(ValueError, match="seed"):  # a resume must be the same run
        train_run(tiny_config(arm="ppo", intensity="off", seed=4), folder, resume=True, progress=False)

    summary = train_run(cfg, folder, resume=True, progress=True)
    assert read_status(folder)["state"] == "done" and summary["train_steps"] == 512
    assert summary["lambda"] is None  # unconstrained arm
    assert _progress_steps(folder) == ROLLOUTS
    assert len(json.loads((folder / "config.json").read_text())["resumes"]) == 1


def test_corrupt_checkpoint_is_skipped(tmp_path, tiny_config):
    cfg = tiny_config()
    folder = _folder(tmp_path, cfg)
    with pytest.raises(RuntimeError):
        train_run(cfg, folder, progress=False, callbacks=[Crash(at=400)])
    assert _progress_steps(folder) == [128, 256, 384]
    newest = list_checkpoints(folder / "checkpoints")[0]
    assert newest.steps == 384
    newest.path.write_bytes(newest.path.read_bytes()[:100])  # truncated by a crash mid-write

    summary = train_run(cfg, folder, resume=True, progress=False)
    assert summary["train_steps"] == 512
    # resumed from 256: the 384 row was dropped and written again once
    assert _progress_steps(folder) == ROLLOUTS


def test_evaluate_run(tmp_path, tiny_config):
    cfg = tiny_config(arm="ppo", intensity="off", steps=128, capability="success")
    folder = _folder(tmp_path, cfg)
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        evaluate_run(folder)
    with pytest.raises(RuntimeError):
        train_run(cfg, folder, progress=False, callbacks=[Crash(at=10)])
    with pytest.raises(FileNotFoundError, match=r"model\.zip not found.*failed"):
        evaluate_run(folder)

    train_run(cfg, folder, overwrite=True, progress=False)
    summary = evaluate_run(folder, episodes=2, seed=7)
    assert summary["episodes"] == 2 and summary["eval_seed"] == 7 and summary["capability_metric"] == "success"
    assert [e["seed"] for e in read_episodes(folder)] == [7, 8]
    status = read_status(folder)
    assert status["state"] == "done" and status["summary"]["episodes"] == 2 and status["summary"]["train_steps"] == 128

    (folder / "model.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable model zip"):
        evaluate_run(folder)


def test_overwrite_trains_budget_copies_afresh(tmp_path, tiny_config):
    """--overwrite deletes the old run's budget copies: kept, they would be evaluated as the new run's τ(t)."""
    cfg = tiny_config(arm="ppo", intensity="off", steps=512)
    folder = _folder(tmp_path, cfg)
    train_run(cfg, folder, progress=False)
    copies = sorted((folder / "budgets").glob("*.zip"))
    assert copies and (folder / "budgets.csv").is_file() and (folder / "episodes_stochastic.csv").is_file()
    for copy in copies:
        copy.write_bytes(b"stale copy of the old run")
    summary = train_run(cfg, folder, overwrite=True, progress=False)
    assert summary["train_steps"] == 512
    assert all(copy.read_bytes() != b"stale copy of the old run" for copy in copies)
    assert len(read_csv_rows(folder / "budgets.csv")) == 2 * (len(copies) + 1)  # both protocols, final included
