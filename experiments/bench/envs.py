"""``taxbench bench envs``: steps/s of every env on each backend beside the raw physics rate of the same model.

The raw rate replays, on the env's own sim, the very controls the env applied and the very states its
episodes started from (``sim.step`` with those controls, ``sim.restore_state`` where the env reset), so
both loops simulate the same trajectory and their ratio is the env's own overhead (action checks,
controller, observation, reward, cost terms, info, wrappers) and nothing else. Both are timed in one
process, interleaved in each repeat; the figures are medians over the repeats.

``--reference`` adds Gymnasium's own v5 envs timed the same way (their raw step: ``mj_step`` with
``frame_skip`` substeps), as a yardstick for the ratios.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

BACKENDS = ("mujoco", "pybullet")
#: Gymnasium's own envs timed with ``--reference`` (the models of our locomotion envs).
REFERENCE_ENVS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5")


@dataclass
class EnvBench:
    """One env on one backend.

    Attributes:
        env_id: Gymnasium id.
        backend: ``mujoco`` or ``pybullet``.
        env_steps_per_s: ``env.step`` calls per second through ``gymnasium.make``'s wrappers, with random
            actions (resets included), 1/s; median over repeats.
        raw_steps_per_s: Control periods per second of the bare sim replaying the env's own controls and
            episode starts, 1/s; median over repeats.
        physics_steps_per_s: Physics time steps per second of the bare sim, 1/s.
        ratio: Median over repeats of ``env rate / raw rate`` (1 = no env overhead).
        control_period_s: Control period, s.
        repeats: Interleaved repeats behind the medians.
    """

    env_id: str
    backend: str
    env_steps_per_s: float
    raw_steps_per_s: float
    physics_steps_per_s: float
    ratio: float
    control_period_s: float
    repeats: int = 1


@dataclass
class RawPhysics:
    """The bare physics of one env: a control step, a state restore, and the control period, s."""

    step: Callable[[np.ndarray], None]
    restore: Callable[[np.ndarray], None]
    state: Callable[[], np.ndarray]
    substeps: int
    dt: float


def raw_physics(env: Any) -> RawPhysics:
    """The bare physics under a taxbench env (its ``Sim``) or a Gymnasium ``MujocoEnv`` (``mj_step``)."""
    inner = env.unwrapped
    sim = getattr(inner, "sim", None)
    if sim is not None:
        substeps = int(getattr(sim, "frame_skip", None) or getattr(sim, "substeps", 1))
        return RawPhysics(sim.step, sim.restore_state, sim.get_state, substeps, sim.dt)
    import mujoco

    model, data, frame_skip = inner.model, inner.data, int(inner.frame_skip)
    spec = mujoco.mjtState.mjSTATE_INTEGRATION

    def step(ctrl: np.ndarray) -> None:
        data.ctrl[:] = ctrl
        mujoco.mj_step(model, data, nstep=frame_skip)

    def state() -> np.ndarray:
        out = np.empty(mujoco.mj_stateSize(model, spec))
        mujoco.mj_getState(model, data, out, spec)
        return out

    def restore(saved: np.ndarray) -> None:
        mujoco.mj_setState(model, data, saved, spec)
        mujoco.mj_forward(model, data)

    return RawPhysics(step, restore, state, frame_skip, float(inner.dt))


def record_trajectory(
    env: Any, raw: RawPhysics, actions: Sequence[np.ndarray], seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Run the env once, untimed: each episode's start state and the controls the env applied in it."""
    inner = env.unwrapped
    applied: list[np.ndarray] = []
    if getattr(inner, "sim", None) is not None:
        sim, step = inner.sim, inner.sim.step

        def recording_step(ctrl: np.ndarray) -> None:
            applied.append(np.array(ctrl, dtype=np.float64))
            step(ctrl)

        sim.step = recording_step
        read_ctrl = None
    else:
        read_ctrl = inner.data.ctrl
    episodes: list[tuple[np.ndarray, list[np.ndarray]]] = []
    try:
        env.reset(seed=seed)
        start, first = raw.state(), 0
        for action in actions:
            *_, terminated, truncated, _ = env.step(action)
            if read_ctrl is not None:
                applied.append(read_ctrl.copy())
            if terminated or truncated:
                episodes.append((start, applied[first:]))
                env.reset()
                start, first = raw.state(), len(applied)
        episodes.append((start, applied[first:]))
    finally:
        if read_ctrl is None:
            del inner.sim.step  # back to the class's method
    return [(state, np.array(ctrls).reshape(len(ctrls), -1)) for state, ctrls in episodes if len(ctrls)]


def _time_env(env: Any, actions: Sequence[np.ndarray], seed: int) -> float:
    env.reset(seed=seed)
    start = time.perf_counter()
    for action in actions:
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return len(actions) / (time.perf_counter() - start)


def time_raw_replay(raw: RawPhysics, episodes: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Control steps/s of the bare physics replaying recorded episodes (each from its start state)."""
    steps = sum(len(ctrls) for _, ctrls in episodes)
    start = time.perf_counter()
    for state, ctrls in episodes:
        raw.restore(state)
        for ctrl in ctrls:
            raw.step(ctrl)
    return steps / (time.perf_counter() - start)


def bench_env(env_id: str, backend: str | None, steps: int, seed: int = 0, repeats: int = 3) -> EnvBench | None:
    """Time ``steps`` env steps and the raw replay of the same trajectory, ``repeats`` times interleaved.

    Args:
        env_id: A registered id (a taxbench env, or with ``backend=None`` any Gymnasium ``MujocoEnv``).
        backend: Physics backend of a taxbench env; None for an env without a ``backend`` kwarg.
        steps: Env steps per timed run (the raw replay runs as many control steps).
        seed: Seed of the env and of the random actions.
        repeats: Interleaved repeats; the rates and the ratio are medians over them.

    Returns:
        The figures, or None if the env does not run on ``backend``.
    """
    import gymnasium as gym

    try:
        env = gym.make(env_id) if backend is None else gym.make(env_id, backend=backend)
    except ValueError:
        return None
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    raw = raw_physics(env)
    episodes = record_trajectory(env, raw, actions, seed)
    env_rates, raw_rates = [], []
    try:
        for _ in range(repeats):
            env_rates.append(_time_env(env, actions, seed))
            raw_rates.append(time_raw_replay(raw, episodes))
    finally:
        env.close()
    env_rate, raw_rate = statistics.median(env_rates), statistics.median(raw_rates)
    ratio = statistics.median(e / r for e, r in zip(env_rates, raw_rates, strict=True))
    return EnvBench(
        env_id, backend or "mujoco (gymnasium)", env_rate, raw_rate, raw_rate * raw.substeps, ratio, raw.dt, repeats
    )


def bench_envs(
    env_ids: Sequence[str],
    backends: Sequence[str] = BACKENDS,
    steps: int = 1000,
    repeats: int = 3,
    reference: Sequence[str] = (),
    progress: bool = True,
) -> list[EnvBench]:
    """Benchmark every (env, backend) pair the env supports, then each ``reference`` Gymnasium env."""
    from rich.progress import Progress

    pairs: list[tuple[str, str | None]] = [(env_id, backend) for env_id in env_ids for backend in backends]
    pairs += [(env_id, None) for env_id in reference]
    results = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("bench envs", total=len(pairs))
        for env_id, backend in pairs:
            bar.update(task, description=f"{env_id} ({backend or 'gymnasium'})")
            result = bench_env(env_id, backend, steps, repeats=repeats)
            if result is not None:
                results.append(result)
            bar.advance(task)
    return results


def results_table(results: Sequence[EnvBench]) -> Any:
    """A rich table of the results."""
    from rich.table import Table

    repeats = max((r.repeats for r in results), default=1)
    table = Table(
        title=f"env steps/s vs the raw physics replaying the same trajectory (medians of {repeats}; "
        "one run, trust the ratios)"
    )
    table.add_column("env", no_wrap=True)
    table.add_column("backend")
    for column in ("ctrl period s", "env steps/s", "raw sim steps/s", "physics steps/s", "env / raw"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r.env_id,
            r.backend,
            f"{r.control_period_s:.4g}",
            f"{r.env_steps_per_s:,.0f}",
            f"{r.raw_steps_per_s:,.0f}",
            f"{r.physics_steps_per_s:,.0f}",
            f"{r.ratio:.2f}",
        )
    return table


def as_rows(results: Sequence[EnvBench]) -> list[dict[str, Any]]:
    """Results as plain dicts (for CSV/JSON)."""
    return [asdict(r) for r in results]
