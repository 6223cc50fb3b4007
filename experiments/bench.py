"""``taxbench bench envs``: steps/s of every env on each backend beside the raw physics rate of the same model.

Both rates come from one process and one run, so their ratio (env overhead: controller, observation, reward
and cost terms) is meaningful on a shared machine even when the absolute figures are not.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

BACKENDS = ("mujoco", "pybullet")


@dataclass
class EnvBench:
    """One env on one backend.

    Attributes:
        env_id: Gymnasium id.
        backend: ``mujoco`` or ``pybullet``.
        env_steps_per_s: ``env.step`` calls per second with random actions (resets included), 1/s.
        raw_steps_per_s: Control periods per second of the bare sim (``sim.step`` with zero controls), 1/s.
        physics_steps_per_s: Physics time steps per second of the bare sim, 1/s.
        ratio: ``env_steps_per_s / raw_steps_per_s`` (1 = no env overhead).
        control_period_s: Control period, s.
    """

    env_id: str
    backend: str
    env_steps_per_s: float
    raw_steps_per_s: float
    physics_steps_per_s: float
    ratio: float
    control_period_s: float


def _substeps(sim: Any) -> int:
    return int(getattr(sim, "frame_skip", None) or getattr(sim, "substeps", 1))


def bench_env(env_id: str, backend: str, steps: int, seed: int = 0) -> EnvBench | None:
    """Time ``steps`` env steps and ``steps`` raw sim steps of one env; None if the backend is not supported."""
    import gymnasium as gym

    try:
        env = gym.make(env_id, backend=backend)
    except ValueError:
        return None
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for action in actions:
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    env_rate = steps / (time.perf_counter() - start)
    sim = env.unwrapped.sim
    sim.reset()
    ctrl = np.zeros(len(sim.actuator_names))
    start = time.perf_counter()
    for _ in range(steps):
        sim.step(ctrl)
    raw_rate = steps / (time.perf_counter() - start)
    result = EnvBench(env_id, backend, env_rate, raw_rate, raw_rate * _substeps(sim), env_rate / raw_rate, sim.dt)
    env.close()
    return result


def bench_envs(env_ids: Sequence[str], backends: Sequence[str] = BACKENDS, steps: int = 1000,
               progress: bool = True) -> list[EnvBench]:
    """Benchmark every (env, backend) pair the env supports."""
    from rich.progress import Progress

    pairs = [(env_id, backend) for env_id in env_ids for backend in backends]
    results = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("bench envs", total=len(pairs))
        for env_id, backend in pairs:
            bar.update(task, description=f"{env_id} ({backend})")
            result = bench_env(env_id, backend, steps)
            if result is not None:
                results.append(result)
            bar.advance(task)
    return results


def results_table(results: Sequence[EnvBench]) -> Any:
    """A rich table of the results."""
    from rich.table import Table

    table = Table(title="env steps/s vs the raw physics of the same model (one run; trust the ratios)")
    table.add_column("env", no_wrap=True)
    table.add_column("backend")
    for column in ("ctrl period s", "env steps/s", "raw sim steps/s", "physics steps/s", "env / raw"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r.env_id, r.backend, f"{r.control_period_s:.4g}", f"{r.env_steps_per_s:,.0f}",
                      f"{r.raw_steps_per_s:,.0f}", f"{r.physics_steps_per_s:,.0f}", f"{r.ratio:.2f}")
    return table


def as_rows(results: Sequence[EnvBench]) -> list[dict[str, Any]]:
    """Results as plain dicts (for CSV/JSON)."""
    return [asdict(r) for r in results]


# ----------------------------------------------------------------------------- command line
def add_bench_parser(sub: Any, positive_int: Any, env_id: Any) -> Any:
    """Add ``bench`` (with its ``envs`` subcommand) to the ``taxbench`` subparsers; returns the ``bench`` parser.

    Further benchmarks add their own subcommand to ``bench.choices`` through the returned parser's
    ``_bench_sub`` attribute.
    """
    bench = sub.add_parser("bench", help="benchmarks: `bench envs` times every env against its raw physics")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, parser_class=type(bench))
    envs = bench_sub.add_parser("envs", help="env steps/s on each backend beside the raw physics step rate (ratios)")
    envs.add_argument("--env", dest="envs", type=env_id, action="append", default=None,
                      help="env id to time (repeatable; default: every registered taxbench env)")
    envs.add_argument("--backend", dest="backends", choices=BACKENDS, action="append", default=None,
                      help="physics backend (repeatable; default: both; envs a backend cannot run are skipped)")
    envs.add_argument("--steps", type=positive_int, default=1000,
                      help="env steps and raw sim steps timed per env and backend (default 1000)")
    envs.add_argument("--csv", type=str, default=None, help="also write the results to this CSV file")
    envs.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    from taxbench.experiments.bench_render import add_render_parser

    add_render_parser(bench_sub, positive_int, env_id)  # bench render
    from taxbench.experiments.bench_train import add_train_parsers

    add_train_parsers(bench_sub, positive_int, env_id)  # bench train, bench pair
    from taxbench.experiments.bench_vector import add_vector_parser

    add_vector_parser(bench_sub, positive_int, env_id)  # bench vector
    bench._bench_sub = bench_sub  # type: ignore[attr-defined]
    return bench


def cmd_bench_envs(args: Any, console: Any) -> int:
    """Run ``taxbench bench envs``: print the table and optionally write a CSV."""
    from pathlib import Path

    from taxbench.envs import ENV_IDS
    from taxbench.experiments.runfolder import atomic_write_csv

    results = bench_envs(args.envs or list(ENV_IDS), args.backends or list(BACKENDS), args.steps,
                         progress=not args.no_progress)
    console.print(results_table(results))
    if args.csv:
        atomic_write_csv(Path(args.csv), as_rows(results), list(EnvBench.__dataclass_fields__))
        console.print(f"wrote {args.csv}", highlight=False)
    return 0


def cmd_bench_render(args: Any, console: Any) -> int:
    """Run ``taxbench bench render`` (see :mod:`taxbench.experiments.bench_render`)."""
    from taxbench.experiments.bench_render import cmd_bench_render as run

    return run(args, console)


def cmd_bench_train(args: Any, console: Any) -> int:
    """Run ``taxbench bench train`` (see :mod:`taxbench.experiments.bench_train`)."""
    from taxbench.experiments.bench_train import cmd_bench_train as run

    return run(args, console)


def cmd_bench_pair(args: Any, console: Any) -> int:
    """Run ``taxbench bench pair`` (see :mod:`taxbench.experiments.bench_train`)."""
    from taxbench.experiments.bench_train import cmd_bench_pair as run

    return run(args, console)


def cmd_bench_vector(args: Any, console: Any) -> int:
    """Run ``taxbench bench vector`` (see :mod:`taxbench.experiments.bench_vector`)."""
    from taxbench.experiments.bench_vector import cmd_bench_vector as run

    return run(args, console)


#: ``taxbench bench <name>`` handlers: (args, console) -> exit status.
BENCH_COMMANDS = {"envs": cmd_bench_envs, "render": cmd_bench_render, "train": cmd_bench_train,
                  "pair": cmd_bench_pair, "vector": cmd_bench_vector}
