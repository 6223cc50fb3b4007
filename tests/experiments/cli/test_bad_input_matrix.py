"""Every subcommand × bad input: exit 2, one line on stderr, no traceback, and the run folders unchanged (issue 19).

In-process through ``main`` (one import for the whole matrix, no training), so it takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import gymnasium as gym
import pytest

from taxbench.experiments.cli import main
from taxbench.experiments.runs.config import RunConfig, write_run_config
from taxbench.experiments.runs.policy_files import save_run_policy
from taxbench.experiments.runs.runfolder import run_dir, write_status
from taxbench.policies import make_learner

ENV = "taxbench/HalfCheetahVelocity-v0"


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """A folder with a finished (untrained) ppo run, a run with a broken config, a file and a folder."""
    root = tmp_path_factory.mktemp("matrix")
    cfg = RunConfig(env_id=ENV, arm="ppo", intensity="off", steps=64, eval_episodes=1, experiment="e")
    run = run_dir(root / "runs", "e", ENV, "ppo", "off", 0)
    run.mkdir(parents=True)
    write_run_config(cfg, run)
    env = gym.make(ENV)
    save_run_policy(make_learner("ppo", env, seed=0, hyperparams={"n_steps": 64}), run / "model.zip", ENV)
    env.close()
    write_status(run, "done", summary={"capability": 1.0, "violation_rate": 0.0}, steps=64)
    broken = run_dir(root / "broken", "e", ENV, "ppo", "off", 0)
    shutil.copytree(run, broken)
    record = json.loads((broken / "config.json").read_text())
    record["config"]["steps"] = 1e400  # json.loads reads this as inf
    (broken / "config.json").write_text(json.dumps(record).replace("Infinity", "1e400"))
    (root / "afile").write_text("not a folder\n")
    (root / "adir").mkdir()
    return root


def manifest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


RUN = "runs/e/HalfCheetahVelocity-v0/ppo-off/seed0"
BROKEN = "broken/e/HalfCheetahVelocity-v0/ppo-off/seed0"
CASES = {
    # output paths: a file where a folder goes, a folder where a file goes, below a file
    "pair --out file": ["pair", "--out", "afile"],
    "pair --out below a file": ["pair", "--out", "afile/runs"],
    "train --out file": ["train", "--out", "afile"],
    "sweep --out file": ["sweep", "--out", "afile"],
    "shield --out file": ["shield", RUN, "--out", "afile"],
    "rollout --out folder": ["rollout", RUN, "--out", "adir"],
    "report --out file": ["report", "runs", "--out", "afile"],
    "gate --junit folder": ["gate", RUN, "--max-violation-rate", "1", "--junit", "adir"],
    "gate --json below a file": ["gate", RUN, "--max-violation-rate", "1", "--json", "afile/v.json"],
    "bench train --json folder": ["bench", "train", "--json", "adir"],
    # env ids and kwargs
    "pair --env typo": ["pair", "--env", "taxbench/HalfCheetahVelocty-v0"],
    "gate --env typo": ["gate", RUN, "--env", "taxbench/HalfCheetahVelocty-v0", "--max-violation-rate", "1"],
    "check unknown id": ["check", "foo/Bar-v0"],
    "check bad kwarg": ["check", ENV, "--env-kwarg", "bogus=1"],
    "check a module": ["check", "os:path"],
    "pair bad kwarg": ["pair", "--env-kwarg", "bogus=1"],
    "pair kwarg without =": ["pair", "--env-kwarg", "bogus"],
    # numbers, devices, budgets
    "pair --steps huge": ["pair", "--steps", "99999999999999999999"],
    "pair --steps 0": ["pair", "--steps", "0"],
    "sweep --steps huge": ["sweep", "--steps", "99999999999999999999"],
    "pair --cost-limit -1": ["pair", "--cost-limit", "-1"],
    "pair --cost-limit nan": ["pair", "--cost-limit", "nan"],
    "pair --seeds repeated": ["pair", "--seeds", "0", "0"],
    "pair --device tpu": ["pair", "--device", "tpu"],
    "train --device gpu0": ["train", "--device", "gpu0"],
    "pair --resume --overwrite": ["pair", "--resume", "--overwrite"],
    "sweep --hyperparam key": ["sweep", "--envs", ENV, "--arms", "ppo-lag", "--hyperparam", "bogus=1"],
    "sweep --hyperparam value": ["sweep", "--envs", ENV, "--arms", "ppo-lag", "--hyperparam", "n_steps=-5"],
    "sweep --intensities": ["sweep", "--intensities", "extreme"],
    "gate bound": ["gate", RUN, "--max-violation-rate", "2"],
    "gate no criterion": ["gate", RUN],
    # run folders
    "eval missing": ["eval", "nowhere"],
    "eval a file": ["eval", "afile"],
    "eval not a run": ["eval", "adir"],
    "eval broken config": ["eval", BROKEN],
    "rollout missing": ["rollout", "nowhere"],
    "rollout --compare missing": ["rollout", RUN, "--compare", "nowhere"],
    "view missing": ["view", "nowhere"],
    "shield missing": ["shield", "nowhere"],
    "shield unconstrained only": ["shield", RUN, "--intensity", "extreme"],
    "gate missing": ["gate", "nowhere", "--max-violation-rate", "1"],
    "report missing": ["report", "nowhere"],
    "report broken config": ["report", "broken"],
    "report empty folder": ["report", "adir"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line_and_touches_nothing(place, case, capsys, monkeypatch):
    monkeypatch.chdir(place)

    def refuse(*args, **kwargs):
        raise AssertionError(f"{case}: a run started")

    import taxbench.experiments.runs.sweep  # noqa: F401 - imported before patching, so it sees the patch below

    monkeypatch.setattr("taxbench.experiments.runs.pool.run_jobs", refuse)
    monkeypatch.setattr("taxbench.experiments.runs.sweep.run_jobs", refuse)
    before = manifest(place)
    try:
        code = main(CASES[case])
    except SystemExit as exc:  # argparse's refusal
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, f"{case}: exit {code}\n{err}"
    assert len(err.strip().splitlines()) == 1, f"{case}: {err}"
    assert "Traceback" not in err
    after = manifest(place)
    assert {k: v for k, v in after.items() if k in before} == before, f"{case} changed or deleted files"
    assert not [k for k in after if k not in before and k.startswith(("runs/", "broken/"))], f"{case} wrote runs"


def test_a_bad_file_mode_is_refused_before_anything_is_written(place, capsys, monkeypatch):
    monkeypatch.chdir(place)
    monkeypatch.setenv("TAXBENCH_FILE_MODE", "rw-r--r--")
    before = manifest(place)
    assert main(["report", "runs", "--out", "fresh"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "TAXBENCH_FILE_MODE" in err
    assert manifest(place) == before and not (place / "fresh").exists()
