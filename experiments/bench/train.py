"""``taxbench bench train`` and ``bench pair``: learner throughput and end-to-end pair time.

``bench train`` times every arm on the same env, preset and number of envs, interleaving the arms in each
repeat so that a busy machine slows all of them alike; it prints medians and the ratio of each arm to
``ppo`` measured in the same run. ``bench pair`` times the real ``taxbench pair`` command end to end.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def bench_train(
    env_id: str,
    arms: Sequence[str] = ("ppo", "ppo-lag"),
    steps: int = 8192,
    repeats: int = 3,
    n_envs: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Training steps/s of each arm (median over ``repeats``) and its ratio to ``ppo`` (median of per-repeat ratios).

    Args:
        env_id: Env to train on (its preset gives the hyper-parameters, shared by every arm).
        arms: Arms to time; ``ppo`` is added as the reference if missing.
        steps: Env steps per timed ``learn`` call (whole rollouts are always collected).
        repeats: Timed repeats per arm.
        n_envs: Parallel envs (default: the preset's).
        seed: Seed of every run.
    """
    import torch

    from taxbench.experiments.runs.config import RunConfig
    from taxbench.experiments.runs.vec_envs import make_vec_env
    from taxbench.policies import make_learner
    from taxbench.policies.presets import preset_for

    torch.set_num_threads(1)
    arms = ["ppo", *[a for a in arms if a != "ppo"]]
    preset = preset_for(env_id)
    rates: dict[str, list[float]] = {arm: [] for arm in arms}
    for repeat in range(repeats):
        # Alternate the order (ppo first, then ppo last, ...) so a machine that speeds up or slows down during
        # the run does not favour one arm in the per-repeat ratios.
        for arm in arms if repeat % 2 == 0 else arms[::-1]:
            envs, hyperparams = preset.for_arm(arm)
            cfg = RunConfig(
                env_id=env_id,
                arm=arm,
                seed=seed,
                steps=steps,
                n_envs=n_envs or envs,
                hyperparams=dict(hyperparams),
                device="cpu",
            )
            venv = make_vec_env(cfg)
            model = make_learner(arm, venv, seed=seed, device="cpu", hyperparams=dict(hyperparams))
            start = time.perf_counter()
            model.learn(steps)
            rates[arm].append(model.num_timesteps / (time.perf_counter() - start))
            venv.close()
    reference = rates["ppo"]
    rows = []
    for arm, values in rates.items():
        ratios = [v / r for v, r in zip(values, reference, strict=True)]
        rows.append(
            {
                "env_id": env_id,
                "arm": arm,
                "n_envs": n_envs or preset.for_arm(arm)[0],
                "steps": steps,
                "repeats": repeats,
                "steps_per_s": statistics.median(values),
                "ratio_to_ppo": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
            }
        )
    return rows


def bench_pair(args: Sequence[str] = (), repeats: int = 1) -> dict[str, Any]:
    """Wall time of ``taxbench pair ARGS`` (in a fresh output folder each time), median over ``repeats``, s."""
    walls, taxes = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "taxbench.experiments.cli", "pair", *args, "--out", out, "--no-progress"],
                check=True,
                capture_output=True,
            )
            walls.append(time.perf_counter() - start)
            summaries = sorted(Path(out).glob("*/pair.json"))
            taxes.append(json.loads(summaries[0].read_text())["tax"] if summaries else None)
    return {
        "command": "taxbench pair " + " ".join(args),
        "repeats": repeats,
        "wall_s": statistics.median(walls),
        "walls_s": walls,
        "taxes": taxes,
    }
