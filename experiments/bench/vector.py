"""``taxbench bench vector``: steps/s of the batched-physics vector env against one world's raw physics.

For each ``N`` the vector env (:class:`~taxbench.envs.core.vector.SafeRobotVectorEnv`: every world's
physics in one threaded call, then each env's reward, cost and observation code) is timed with random
actions, autoresets included, beside the plain single-thread loop of ``mj_step`` (``frame_skip``
substeps) on one world of the same model, replaying a trajectory that world ran under random actions
(the reference of ``taxbench bench envs``). Both are timed in the same process and interleaved in each
repeat, so their ratio holds on a shared machine; the figures are medians over repeats. Each env is timed in a
fresh process of its own.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

#: A light model (HalfCheetah: ~28 µs of physics per control step) and a heavy one (Ant: ~190 µs).
DEFAULT_ENVS = ("taxbench/HalfCheetahVelocity-v0", "taxbench/AntVelocity-v0")
DEFAULT_N_ENVS = (16, 32, 64)


def _raw_replay(env_id: str, steps: int, seed: int) -> tuple[Any, Any, list[tuple[np.ndarray, np.ndarray]]]:
    """One world's trajectory under random actions (autoresets included), recorded for the bare-physics replay.

    The same reference as ``taxbench bench envs``: the controls the env applied, replayed on its sim from each
    episode's start state (:func:`~taxbench.experiments.bench.record_trajectory`).
    """
    import gymnasium

    from taxbench.experiments.bench.envs import raw_physics, record_trajectory

    env = gymnasium.make(env_id)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    raw = raw_physics(env)
    return env, raw, record_trajectory(env, raw, actions, seed)


def _vector_rate(vec: Any, steps: int, seed: int) -> float:
    """World-steps/s of ``vec.step`` with random actions over ``steps`` calls."""
    rng = np.random.default_rng(seed)
    space = vec.single_action_space
    actions = rng.uniform(space.low, space.high, (steps, vec.num_envs, *space.shape))
    vec.reset(seed=seed)
    start = time.perf_counter()
    for batch in actions:
        vec.step_lists(batch)
    return steps * vec.num_envs / (time.perf_counter() - start)


def bench_vector(
    env_id: str = DEFAULT_ENVS[0],
    n_envs: Sequence[int] = DEFAULT_N_ENVS,
    *,
    nthread: int = 2,
    world_steps: int = 8192,
    repeats: int = 5,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Time the vector env at each ``N`` against the raw physics of one world.

    Args:
        env_id: A MuJoCo ``SafeRobotEnv`` id.
        n_envs: Numbers of worlds to time.
        nthread: Physics threads of the vector env (the caller's included).
        world_steps: World-steps timed per measurement (``world_steps // N`` vector steps, at least 10); the
            raw loop takes as many control steps.
        repeats: Interleaved repeats; rates are medians over them.
        seed: Seed of the actions and of the worlds.

    Returns:
        One row per ``N``: ``env_id``, ``n_envs``, ``nthread``, ``vector_steps_per_s``, ``serial_steps_per_s``
        (the same vector env on one thread) and ``tuned_steps_per_s`` (``tune_threads=True``, as training
        builds it), all in world-steps/s; ``raw_steps_per_s`` (one world, bare physics, control steps/s);
        ``ratio`` (vector / raw), ``serial_ratio``, ``tuned_ratio`` and ``repeats``.
    """
    from taxbench.envs.core.vector import SafeRobotVectorEnv
    from taxbench.experiments.bench.envs import time_raw_replay

    vecs = {
        (n, k): SafeRobotVectorEnv.from_id(env_id, n, nthread=k or nthread, tune_threads=k == 0)
        for n in n_envs
        for k in {0, 1, nthread}
    }  # k = 0: tuned (the faster of 1 and nthread, as training)
    raw: list[float] = []
    rates: dict[tuple[int, int], list[float]] = {key: [] for key in vecs}
    world, physics, episodes = _raw_replay(env_id, world_steps, seed)
    try:
        for rep in range(repeats):
            raw.append(time_raw_replay(physics, episodes))
            for (n, k), vec in vecs.items():
                rates[(n, k)].append(_vector_rate(vec, max(10, world_steps // n), seed + rep))
    finally:
        world.close()
        for vec in vecs.values():
            vec.close()
    raw_rate = statistics.median(raw)
    rows = []
    for n in n_envs:
        vector, serial = statistics.median(rates[(n, nthread)]), statistics.median(rates[(n, 1)])
        tuned = statistics.median(rates[(n, 0)])
        rows.append(
            {
                "env_id": env_id,
                "n_envs": n,
                "nthread": nthread,
                "vector_steps_per_s": vector,
                "serial_steps_per_s": serial,
                "tuned_steps_per_s": tuned,
                "raw_steps_per_s": raw_rate,
                "ratio": vector / raw_rate,
                "serial_ratio": serial / raw_rate,
                "tuned_ratio": tuned / raw_rate,
                "repeats": repeats,
            }
        )
    return rows


def bench_vector_in_fresh_process(env_id: str, n_envs: Sequence[int], **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`bench_vector` in a new Python process, as training builds one vector env per process.

    No env's figures then depend on what an env timed before it left behind in the process (hundreds of worlds
    built and freed, their threads, the allocator's state).
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(bench_vector, env_id, list(n_envs), **kwargs).result()


def print_bench_vector(rows: Sequence[dict[str, Any]], console: Any) -> None:
    """Print the rows as a rich table."""
    from rich.table import Table

    table = Table(title="vector env world-steps/s vs one world's raw single-thread physics (medians; one run)")
    for column in (
        "env",
        "N",
        "threads",
        "vector steps/s",
        "1-thread steps/s",
        "tuned steps/s",
        "raw 1-world steps/s",
        "vector / raw",
        "1-thread / raw",
        "tuned / raw",
    ):
        table.add_column(column, justify="left" if column == "env" else "right", no_wrap=column == "env")
    for r in rows:
        rates = (
            f"{r[key]:,.0f}"
            for key in ("vector_steps_per_s", "serial_steps_per_s", "tuned_steps_per_s", "raw_steps_per_s")
        )
        ratios = (f"{r[key]:.2f}" for key in ("ratio", "serial_ratio", "tuned_ratio"))
        table.add_row(r["env_id"], str(r["n_envs"]), str(r["nthread"]), *rates, *ratios)
    console.print(table)
