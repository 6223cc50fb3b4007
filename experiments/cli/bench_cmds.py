"""The ``taxbench bench`` subcommands: ``envs``, ``render``, ``train``, ``pair``, ``vector`` (parsers and handlers).

The benchmarks themselves live in :mod:`taxbench.experiments.bench`; this module parses the options and
prints or writes their results.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from taxbench.experiments.bench.envs import BACKENDS, REFERENCE_ENVS, EnvBench, as_rows, bench_envs, results_table
from taxbench.experiments.bench.render import DEFAULT_ENVS as RENDER_ENVS
from taxbench.experiments.bench.render import bench_render, print_bench_render
from taxbench.experiments.bench.train import bench_pair, bench_train
from taxbench.experiments.bench.vector import DEFAULT_ENVS as VECTOR_ENVS
from taxbench.experiments.bench.vector import DEFAULT_N_ENVS, bench_vector_in_fresh_process, print_bench_vector
from taxbench.experiments.cli.options import env_id_arg, out_file_arg, positive_int


def add_bench_parser(sub: Any) -> None:
    """Add ``bench`` and its subcommands (one per entry of :data:`BENCH_COMMANDS`)."""
    bench = sub.add_parser("bench", help="benchmarks: `bench envs` times every env against its raw physics")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, parser_class=type(bench))
    envs = bench_sub.add_parser("envs", help="env steps/s on each backend beside the raw physics step rate (ratios)")
    envs.add_argument(
        "--env",
        dest="envs",
        type=env_id_arg,
        action="append",
        default=None,
        help="env id to time (repeatable; default: every registered taxbench env)",
    )
    envs.add_argument(
        "--backend",
        dest="backends",
        choices=BACKENDS,
        action="append",
        default=None,
        help="physics backend (repeatable; default: both; envs a backend cannot run are skipped)",
    )
    envs.add_argument(
        "--steps",
        type=positive_int,
        default=1000,
        help="env steps and raw sim steps timed per env and backend (default 1000)",
    )
    envs.add_argument(
        "--repeats",
        type=positive_int,
        default=3,
        help="interleaved repeats of the env and raw loops; medians (default 3)",
    )
    envs.add_argument(
        "--reference", action="store_true", help=f"also time Gymnasium's own {', '.join(REFERENCE_ENVS)} the same way"
    )
    envs.add_argument("--csv", type=out_file_arg, default=None, help="also write the results to this CSV file")
    envs.add_argument("--json", type=out_file_arg, default=None, help="also write the results to this JSON file")
    envs.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_render_parser(bench_sub)  # bench render
    add_train_parsers(bench_sub)  # bench train, bench pair
    add_vector_parser(bench_sub)  # bench vector
    add_warp_parser(bench_sub)  # bench warp


def cmd_bench_envs(args: Any, console: Any) -> int:
    """Run ``taxbench bench envs``: print the table and optionally write CSV/JSON."""
    from pathlib import Path

    from taxbench.envs import ENV_IDS
    from taxbench.experiments.runs.runfolder import atomic_write_csv, atomic_write_json

    results = bench_envs(
        args.envs or list(ENV_IDS),
        args.backends or list(BACKENDS),
        args.steps,
        args.repeats,
        REFERENCE_ENVS if args.reference else (),
        progress=not args.no_progress,
    )
    console.print(results_table(results))
    if args.csv:
        atomic_write_csv(Path(args.csv), as_rows(results), list(EnvBench.__dataclass_fields__))
        console.print(f"wrote {args.csv}", highlight=False)
    if args.json:
        atomic_write_json(Path(args.json), {"rows": as_rows(results)})
        console.print(f"wrote {args.json}", highlight=False)
    return 0


def add_render_parser(bench_sub: Any) -> None:
    """Add ``render`` to the ``taxbench bench`` subcommands."""
    render = bench_sub.add_parser("render", help="frames/s of headless rendering per backend (raw, with HUD, H.264)")
    render.add_argument(
        "--env",
        dest="envs",
        type=env_id_arg,
        action="append",
        default=None,
        help=f"env id to time (repeatable; default: {', '.join(RENDER_ENVS)} where registered)",
    )
    render.add_argument("--width", type=positive_int, default=320, help="frame width, pixels (default 320)")
    render.add_argument("--height", type=positive_int, default=240, help="frame height, pixels (default 240)")
    render.add_argument("--frames", type=positive_int, default=60, help="frames timed per env and backend (default 60)")
    render.add_argument("--repeats", type=positive_int, default=3, help="repeats; medians (default 3)")
    render.add_argument("--csv", type=out_file_arg, default=None, help="also write the results to this CSV file")
    render.add_argument("--json", type=out_file_arg, default=None, help="also write the results to this JSON file")


def cmd_bench_render(args: Any, console: Any) -> int:
    """Run ``taxbench bench render``: print the table and optionally write CSV/JSON."""
    from taxbench.experiments.runs.runfolder import atomic_write_csv, atomic_write_json

    rows = bench_render(args.envs, width=args.width, height=args.height, frames=args.frames, repeats=args.repeats)
    print_bench_render(rows, console)
    if args.csv:
        atomic_write_csv(Path(args.csv), rows, list(rows[0]) if rows else ["env_id"])
        console.print(f"wrote {args.csv}", highlight=False)
    if args.json:
        atomic_write_json(Path(args.json), {"rows": rows})
        console.print(f"wrote {args.json}", highlight=False)
    return 0


def add_train_parsers(bench_sub: Any) -> None:
    """Add ``bench train`` and ``bench pair`` to the ``bench`` subparsers."""
    from taxbench.policies import ARMS

    train = bench_sub.add_parser("train", help="training steps/s of each arm vs ppo on the same env and n_envs")
    train.add_argument("--env", type=env_id_arg, default="taxbench/HalfCheetahSlowZone-v0", help="env id")
    train.add_argument("--arms", nargs="+", choices=ARMS, default=["ppo", "ppo-lag"], help="arms to time")
    train.add_argument("--steps", type=positive_int, default=8192, help="env steps per timed run (default 8192)")
    train.add_argument("--repeats", type=positive_int, default=3, help="repeats per arm (default 3)")
    train.add_argument("--n-envs", type=positive_int, default=None, help="parallel envs (default: the preset's)")
    train.add_argument("--json", type=out_file_arg, default=None, help="also write the results as JSON")
    pair = bench_sub.add_parser("pair", help="wall time of `taxbench pair` end to end (default: the default pair)")
    pair.add_argument("pair_args", nargs="*", help="arguments for `taxbench pair` (put them after --)")
    pair.add_argument("--repeats", type=positive_int, default=1, help="repeats (default 1)")
    pair.add_argument("--json", type=out_file_arg, default=None, help="also write the result as JSON")


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
        from taxbench.experiments.runs.runfolder import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def add_vector_parser(bench_sub: Any) -> None:
    """Add ``vector`` to the ``taxbench bench`` subcommands."""
    vector = bench_sub.add_parser("vector", help="batched-physics vector env steps/s vs one world's raw physics")
    vector.add_argument(
        "--env",
        dest="envs",
        type=env_id_arg,
        action="append",
        default=None,
        help=f"MuJoCo env id (repeatable; default {' and '.join(VECTOR_ENVS)})",
    )
    vector.add_argument(
        "--n-envs",
        type=positive_int,
        nargs="+",
        default=list(DEFAULT_N_ENVS),
        help="numbers of worlds to time (default 16 32 64)",
    )
    vector.add_argument(
        "--threads",
        type=positive_int,
        default=2,
        help="physics threads of the vector env, the caller's included (default 2)",
    )
    vector.add_argument(
        "--world-steps", type=positive_int, default=8192, help="world-steps timed per measurement (default 8192)"
    )
    vector.add_argument("--repeats", type=positive_int, default=5, help="interleaved repeats; medians (default 5)")
    vector.add_argument("--json", type=out_file_arg, default=None, help="also write the rows to this JSON file")
    vector.add_argument("--csv", type=out_file_arg, default=None, help="also write the rows to this CSV file")


def cmd_bench_vector(args: Any, console: Any) -> int:
    """Run ``taxbench bench vector``: print the table and optionally write JSON/CSV; exit 2 on a non-MuJoCo env."""
    from taxbench.envs.core.vector import NotBatchableError
    from taxbench.experiments.runs.runfolder import atomic_write_csv, atomic_write_json

    try:
        rows = [
            row
            for env in args.envs or VECTOR_ENVS
            for row in bench_vector_in_fresh_process(
                env, args.n_envs, nthread=args.threads, world_steps=args.world_steps, repeats=args.repeats
            )
        ]
    except NotBatchableError as exc:
        console.print(f"taxbench bench vector: error: {exc}", highlight=False)
        return 2
    print_bench_vector(rows, console)
    if args.json:
        atomic_write_json(Path(args.json), {"rows": rows})
        console.print(f"wrote {args.json}", highlight=False)
    if args.csv:
        atomic_write_csv(Path(args.csv), rows, list(rows[0]))
        console.print(f"wrote {args.csv}", highlight=False)
    return 0


def add_warp_parser(bench_sub: Any) -> None:
    """Add ``warp`` to the ``taxbench bench`` subcommands."""
    from taxbench.experiments.bench.warp import DEFAULT_ENVS as WARP_ENVS
    from taxbench.experiments.bench.warp import DEFAULT_WORLDS

    warp = bench_sub.add_parser(
        "warp", help="GPU path: Warp env steps/s at N worlds and training steps/s, vs the CPU path in the same run"
    )
    warp.add_argument("--env", dest="envs", type=env_id_arg, action="append", default=None,
                      help=f"id with a Warp version (repeatable; default {' and '.join(WARP_ENVS)})")  # fmt: skip
    warp.add_argument("--worlds", type=positive_int, nargs="+", default=list(DEFAULT_WORLDS),
                      help="world counts for physics+costs steps/s (default 256 1024 4096 16384)")  # fmt: skip
    warp.add_argument(
        "--device", default="cuda", help="Warp device: cuda, cuda:<k>, or cpu for a smoke run (default cuda)"
    )
    warp.add_argument(
        "--steps", type=positive_int, default=100, help="timed control steps per world count (default 100)"
    )
    warp.add_argument("--train-worlds", type=positive_int, default=4096, help="worlds of the training timing (4096)")
    warp.add_argument("--rollouts", type=positive_int, default=5, help="timed training updates on Warp (default 5)")
    warp.add_argument(
        "--cpu-train-steps", type=positive_int, default=8192, help="env steps of each CPU training timing"
    )
    warp.add_argument("--json", type=out_file_arg, default=None, help="also write the results to this JSON file")


def cmd_bench_warp(args: Any, console: Any) -> int:
    """Run ``taxbench bench warp``: tables of the physics and training rates; exit 2 without Warp or the device."""
    from rich.table import Table

    from taxbench.envs.warp import check_warp_request
    from taxbench.experiments.bench.warp import DEFAULT_ENVS as WARP_ENVS
    from taxbench.experiments.bench.warp import bench_warp_all

    envs = args.envs or list(WARP_ENVS)
    try:
        for env_id in envs:
            check_warp_request(env_id, max(args.worlds), args.device)
    except (ValueError, RuntimeError) as exc:
        console.print(f"taxbench bench warp: error: {exc}", highlight=False)
        return 2
    result = bench_warp_all(envs, args.worlds, device=args.device, steps=args.steps, train_worlds=args.train_worlds,
                            rollouts=args.rollouts, cpu_train_steps=args.cpu_train_steps)  # fmt: skip
    physics = result["physics"]
    table = Table(title=f"env steps/s with costs on {physics['device_name']} (torch {physics['torch']})")
    for column in ("env", *(f"Warp N={n}" for n in args.worlds), "CPU vector env (N)"):
        table.add_column(column, justify="right" if column != "env" else "left")
    for env_id, row in physics["envs"].items():
        table.add_row(env_id, *(f"{row['warp'][str(n)]:,.0f}" for n in args.worlds),
                      f"{row['cpu_vector']:,.0f} ({row['cpu_worlds']})")  # fmt: skip
    console.print(table)
    training = Table(title=f"training steps/s (Warp: {args.train_worlds} worlds; CPU: SB3, the env's preset n_envs)")
    for column in ("env", "Warp ppo", "Warp ppo-lag", "ratio", "CPU ppo", "CPU ppo-lag"):
        training.add_column(column, justify="right" if column != "env" else "left")
    for env_id, row in result["training"].items():
        warp, cpu = row["warp"]["train_steps_per_s"], {r["arm"]: r["steps_per_s"] for r in row["cpu"]}
        training.add_row(env_id, f"{warp['ppo']:,.0f}", f"{warp['ppo-lag']:,.0f}",
                         f"{row['warp'].get('ppo_lag_over_ppo', float('nan')):.2f}", f"{cpu['ppo']:,.0f}",
                         f"{cpu['ppo-lag']:,.0f}")  # fmt: skip
    console.print(training)
    if args.json:
        _write_json(args.json, result)
        console.print(f"wrote {args.json}", highlight=False)
    return 0


#: ``taxbench bench <name>`` handlers: (args, console) -> exit status.
BENCH_COMMANDS = {
    "envs": cmd_bench_envs,
    "render": cmd_bench_render,
    "train": cmd_bench_train,
    "pair": cmd_bench_pair,
    "vector": cmd_bench_vector,
    "warp": cmd_bench_warp,
}


def cmd_bench(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """Run ``taxbench bench <name>``."""
    return BENCH_COMMANDS[args.bench_command](args, console)
