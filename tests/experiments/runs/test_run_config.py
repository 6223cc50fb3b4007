import math

import pytest

from taxbench.experiments.runs.config import RunConfig, git_commit, provenance


def _cfg(**kw) -> RunConfig:
    return RunConfig(env_id="taxbench-test/PendulumCost-v0", **kw)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": -5}, "steps"),
        ({"cost_limit": -1.0}, "cost_limit"),
        ({"cost_limit": math.nan}, "cost_limit"),
        ({"cost_limit": math.inf}, "cost_limit"),
        ({"arm": "dqn"}, "arm"),
        ({"n_envs": 0}, "n_envs"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"torch_threads": 0}, "torch_threads"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"eval_episodes": -1}, "eval_episodes"),
        ({"intensity": ""}, "intensity"),
        ({"experiment": "a/b"}, "experiment"),
        ({"capability": "speed"}, "capability"),
        ({"hyperparams": {"activation_fn": object()}}, "hyperparams"),
        ({"env_kwargs": {"x": math.nan}}, "env_kwargs"),
    ],
)
def test_validate_rejects(overrides, field):
    with pytest.raises(ValueError, match=field) as info:
        _cfg(**overrides).validate()
    assert "\n" not in str(info.value)


def test_validate_accepts_and_round_trips():
    cfg = _cfg(arm="ppo-lag", intensity="d25", env_kwargs={"speed_limit": 1.0}, hyperparams={"n_steps": 64})
    assert cfg.validate() is cfg
    data = cfg.to_dict()
    assert RunConfig.from_dict(data) == cfg
    data["env_kwargs"]["speed_limit"] = 9.0  # to_dict is a deep copy
    assert cfg.env_kwargs["speed_limit"] == 1.0
    with pytest.raises(ValueError, match="unknown RunConfig field"):
        RunConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    assert _cfg(seed=1).identity_diff(_cfg(seed=2, steps=10)) == ["seed"]


def test_provenance(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a git repository: no failure, no commit
    assert git_commit() is None
    info = provenance("cpu")
    assert info["git"] is None and info["device"] == "cpu" and info["cpu_count"] >= 1
    assert set(info["packages"]) >= {
        "taxbench",
        "torch",
        "stable_baselines3",
        "gymnasium",
        "mujoco",
        "numpy",
        "pybullet",
    }
    assert info["packages"]["numpy"] and info["python"].count(".") == 2
