"""Progress bars carry each run's latest training numbers; a queued run's clock waits for it to start."""

from __future__ import annotations

import io
import math
import re

from rich.console import Console

from taxbench.experiments.runs.jobs import Job, progress_text
from taxbench.experiments.runs.pool import run_jobs


def test_progress_text_shows_return_cost_and_lambda_when_there_is_one():
    assert progress_text({"ep_return": -123.456, "ep_cost": 4.0, "lambda": 0.125}) == "R -123.5  C 4  λ 0.125"
    assert progress_text({"ep_return": math.nan, "ep_cost": math.nan, "lambda": math.nan}) == "R –  C –"


def test_bars_show_live_numbers_and_queued_runs_start_their_clock_late(tiny_config, tmp_path):
    jobs = [
        Job(tiny_config(arm=arm, intensity=intensity), tmp_path / arm, f"{arm} run")
        for arm, intensity in (("ppo", "off"), ("ppo-lag", "d5"))
    ]
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    results = run_jobs(jobs, workers=1, progress=True, console=console)
    assert all(r.error is None for r in results)
    final = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()).replace("\r", "\n").splitlines()
    lag_lines = [line for line in final if "ppo-lag run" in line]
    assert lag_lines and "R " in lag_lines[-1] and "λ " in lag_lines[-1]
    ppo_lines = [line for line in final if line.lstrip().startswith("ppo run")]
    assert ppo_lines and "R " in ppo_lines[-1] and "λ" not in ppo_lines[-1]
    # the second run waited: its first frames say "queued" and its clock has not started (rich shows -:--:--)
    assert "queued" in lag_lines[0] and "-:--:--" in lag_lines[0]
