"""``taxbench bench envs`` on a tiny budget: one row per backend the env supports, with consistent ratios."""

import csv
import json
import subprocess
import sys

import gymnasium as gym
import numpy as np

import taxbench.envs  # noqa: F401 - registers the ids
from taxbench.experiments.bench.envs import raw_physics, record_trajectory


def test_bench_envs_cli_times_both_backends_and_writes_csv(tmp_path):
    out, out_json = tmp_path / "bench.csv", tmp_path / "bench.json"
    cmd = [
        sys.executable,
        "-m",
        "taxbench.experiments.cli",
        "bench",
        "envs",
        "--env",
        "taxbench/PandaReach-v0",
        "--env",
        "taxbench/HopperVelocity-v0",
        "--steps",
        "30",
        "--repeats",
        "1",
        "--csv",
        str(out),
        "--json",
        str(out_json),
        "--no-progress",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "env / raw" in result.stdout
    rows = list(csv.DictReader(out.open()))
    pairs = {(r["env_id"], r["backend"]) for r in rows}
    # Hopper runs on MuJoCo only; the Panda on both.
    assert pairs == {
        ("taxbench/PandaReach-v0", "mujoco"),
        ("taxbench/PandaReach-v0", "pybullet"),
        ("taxbench/HopperVelocity-v0", "mujoco"),
    }
    for r in rows:
        env_rate, raw_rate, ratio = float(r["env_steps_per_s"]), float(r["raw_steps_per_s"]), float(r["ratio"])
        assert env_rate > 0 and raw_rate > 0
        assert abs(ratio - env_rate / raw_rate) < 1e-9
        assert float(r["physics_steps_per_s"]) >= raw_rate
    json_rows = json.loads(out_json.read_text())["rows"]
    assert [(j["env_id"], j["backend"], j["repeats"]) for j in json_rows] == [
        (r["env_id"], r["backend"], 1) for r in rows
    ]
    assert all(abs(j["ratio"] - float(r["ratio"])) < 1e-9 for j, r in zip(json_rows, rows, strict=True))


def test_raw_replay_simulates_the_trajectory_the_env_simulated():
    """The raw loop replays the env's own controls from its own episode starts: same physics, so the ratio is
    the env's overhead only. Hopper with random actions falls, so several episodes (resets) are replayed."""
    env = gym.make("taxbench/HopperVelocity-v0")
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(300)]
    raw = raw_physics(env)
    episodes = record_trajectory(env, raw, actions, seed=0)
    assert len(episodes) > 1 and sum(len(c) for _, c in episodes) == len(actions)
    # the env, run again from the same seed, ends exactly where the replay of the last episode ends
    env.reset(seed=0)
    for action in actions:
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    env_end = env.unwrapped.sim.get_state()
    for state, ctrls in episodes:
        raw.restore(state)
        for ctrl in ctrls:
            raw.step(ctrl)
    np.testing.assert_array_equal(env.unwrapped.sim.get_state(), env_end)
    assert "step" not in vars(env.unwrapped.sim)  # the recording hook is gone
    env.close()


def test_bench_rejects_unknown_env():
    cmd = [sys.executable, "-m", "taxbench.experiments.cli", "bench", "envs", "--env", "taxbench/PandaReech-v0"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "PandaReach-v0" in result.stderr
