"""`taxbench bench train` times each arm against ppo in one run and writes JSON."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_train_prints_ratios_and_writes_json(tmp_path):
    out = tmp_path / "train.json"
    result = subprocess.run([sys.executable, "-m", "taxbench.experiments.cli", "bench", "train", "--env",
                             "taxbench/HalfCheetahSlowZone-v0", "--steps", "512", "--repeats", "1", "--n-envs", "1",
                             "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = {row["arm"]: row for row in json.loads(out.read_text())}
    assert set(rows) == {"ppo", "ppo-lag"}
    assert rows["ppo"]["ratio_to_ppo"] == 1.0
    assert 0.2 < rows["ppo-lag"]["ratio_to_ppo"] < 5 and rows["ppo-lag"]["steps_per_s"] > 0
    assert "ratio to ppo" in result.stdout
