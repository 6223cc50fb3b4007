"""``taxbench bench envs`` on a tiny budget: one row per backend the env supports, with consistent ratios."""

import csv
import subprocess
import sys


def test_bench_envs_cli_times_both_backends_and_writes_csv(tmp_path):
    out = tmp_path / "bench.csv"
    cmd = [sys.executable, "-m", "taxbench.experiments.cli", "bench", "envs", "--env", "taxbench/PandaReach-v0",
           "--env", "taxbench/HopperVelocity-v0", "--steps", "30", "--csv", str(out), "--no-progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "env / raw" in result.stdout
    rows = list(csv.DictReader(out.open()))
    pairs = {(r["env_id"], r["backend"]) for r in rows}
    # Hopper runs on MuJoCo only; the Panda on both.
    assert pairs == {("taxbench/PandaReach-v0", "mujoco"), ("taxbench/PandaReach-v0", "pybullet"),
                     ("taxbench/HopperVelocity-v0", "mujoco")}
    for r in rows:
        env_rate, raw_rate, ratio = float(r["env_steps_per_s"]), float(r["raw_steps_per_s"]), float(r["ratio"])
        assert env_rate > 0 and raw_rate > 0
        assert abs(ratio - env_rate / raw_rate) < 1e-9
        assert float(r["physics_steps_per_s"]) >= raw_rate


def test_bench_rejects_unknown_env():
    cmd = [sys.executable, "-m", "taxbench.experiments.cli", "bench", "envs", "--env", "taxbench/PandaReech-v0"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "PandaReach-v0" in result.stderr
