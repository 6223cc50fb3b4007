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

    from taxbench.experiments.config import RunConfig
    from taxbench.experiments.train import make_vec_env
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


def add_train_parsers(bench_sub: Any, positive_int: Any, env_id: Any) -> None:
    """Add ``bench train`` and ``bench pair`` to the ``bench`` subparsers."""
    from taxbench.policies import ARMS

    train = bench_sub.add_parser("train", help="training steps/s of each arm vs ppo on the same env and n_envs")
    train.add_argument("--env", type=env_id, default="taxbench/HalfCheetahSlowZone-v0", help="env id")
    train.add_argument("--arms", nargs="+", choices=ARMS, default=["ppo", "ppo-lag"], help="arms to time")
    train.add_argument("--steps", type=positive_int, default=8192, help="env steps per timed run (default 8192)")
    train.add_argument("--repeats", type=positive_int, default=3, help="repeats per arm (default 3)")
    train.add_argument("--n-envs", type=positive_int, default=None, help="parallel envs (default: the preset's)")
    train.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    pair = bench_sub.add_parser("pair", help="wall time of `taxbench pair` end to end (default: the default pair)")
    pair.add_argument("pair_args", nargs="*", help="arguments for `taxbench pair` (put them after --)")
    pair.add_argument("--repeats", type=positive_int, default=1, help="repeats (default 1)")
    pair.add_argument("--json", type=Path, default=None, help="also write the result as JSON")


def cmd_bench_train(args: Any, console: Any) -> int:
    """Run ``taxbench bench train`` and print its table."""
    from rich.table import Table

    rows = bench_train(args.env, args.arms, args.steps, args.repeats, args.n_envs)
    table = Table(
        title=f"training throughput on {args.env} (medians of {args.repeats}, same run; the ratio is the "
        "median of per-repeat ratios)"
    )
    for column in ("arm", "n_envs", "steps/s", "ratio to ppo", "ratio range"):
        table.add_column(column, justify="right" if column != "arm" else "left")
    for row in rows:
        table.add_row(
            row["arm"],
            str(row["n_envs"]),
            f"{row['steps_per_s']:.0f}",
            f"{row['ratio_to_ppo']:.2f}",
            f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}",
        )
    console.print(table)
    _write_json(args.json, rows)
    return 0


def cmd_bench_pair(args: Any, console: Any) -> int:
    """Run ``taxbench bench pair`` and print the wall time."""
    result = bench_pair(args.pair_args, args.repeats)
    console.print(
        f"{result['command']}: {result['wall_s']:.1f} s wall (median of {result['repeats']})", highlight=False
    )
    for tax in result["taxes"]:
        if tax is not None:
            console.print(
                f"  tax τ = {tax['point']:.3g} [{tax['low']:.3g}, {tax['high']:.3g}], CI excludes 0: "
                f"{'yes' if tax['excludes_zero'] else 'no'}",
                highlight=False,
            )
    _write_json(args.json, result)
    return 0


def _write_json(path: Path | None, data: Any) -> None:
    if path is not None:
        from taxbench.experiments.runfolder import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
