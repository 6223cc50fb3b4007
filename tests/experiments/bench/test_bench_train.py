"""`taxbench bench train` times each arm against ppo in one run and writes JSON."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_train_prints_ratios_and_writes_json(tmp_path):
    out = tmp_path / "train.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "taxbench.experiments.cli",
            "bench",
            "train",
            "--env",
            "taxbench/HalfCheetahSlowZone-v0",
            "--steps",
            "512",
            "--repeats",
            "2",
            "--n-envs",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["arm"]: row for row in json.loads(out.read_text())}
    assert set(rows) == {"ppo", "ppo-lag"}
    assert rows["ppo"]["ratio_to_ppo"] == 1.0
    assert 0.2 < rows["ppo-lag"]["ratio_to_ppo"] < 5 and rows["ppo-lag"]["steps_per_s"] > 0
    lag = rows["ppo-lag"]
    assert lag["ratio_min"] <= lag["ratio_to_ppo"] <= lag["ratio_max"] and lag["repeats"] == 2
    assert "ratio to ppo" in result.stdout


def test_bench_pair_times_the_real_command_and_reports_its_tax(tmp_path):
    out = tmp_path / "pair.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "taxbench.experiments.cli",
            "bench",
            "pair",
            "--json",
            str(out),
            "--",
            "--steps",
            "1024",
            "--seeds",
            "0",
            "1",
            "--workers",
            "1",
            "--eval-episodes",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["command"].startswith("taxbench pair --steps 1024") and data["wall_s"] > 0
    [tax] = data["taxes"]  # read from the pair's own pair.json
    assert set(tax) >= {"point", "low", "high", "excludes_zero"} and tax["low"] <= tax["point"] <= tax["high"]
    assert "tax τ =" in result.stdout
