"""``taxbench view RUN_DIR``: watch a trained policy live in the physics engine's interactive viewer.

The viewer needs a display. Without one (no ``DISPLAY`` / ``WAYLAND_DISPLAY`` on Linux) it says
so in one line and points at ``taxbench rollout``, which renders the same episodes headless.
Violations are printed as they happen, with the step and the measured value.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class NoDisplayError(RuntimeError):
    """The live viewer cannot open: there is no display."""


def has_display() -> bool:
    """Whether a window can be opened (always assumed on macOS and Windows)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def no_display_message(run_dir: str | Path) -> str:
    """The one-line explanation printed when there is no display."""
    return (
        f"no display: DISPLAY and WAYLAND_DISPLAY are unset, so the live viewer cannot open here. "
        f"Render a video instead: taxbench rollout {run_dir}"
    )


def view_run(
    run_dir: str | Path,
    *,
    episodes: int | None = None,
    seed: int | None = None,
    realtime: bool = True,
    open_viewer: Callable[[Any], Any] | None = None,
    log: Callable[[str], None] = print,
    trust_pickle: bool = False,
) -> int:
    """Play a run's policy in the live viewer until the window closes or ``episodes`` end.

    Args:
        run_dir: The run folder.
        episodes: Episodes to play (default: until the window is closed).
        seed: Reset seed of episode 0 (default: the run's ``eval_seed``; episode i uses seed + i).
        realtime: Sleep so that one control step takes its simulated duration.
        open_viewer: ``sim -> handle`` with ``is_running()`` and ``sync()`` (default: ``sim.open_viewer()``,
            MuJoCo's passive viewer); tests pass a fake.
        log: Where violation lines go.
        trust_pickle: Load the model with SB3's unpickler (runs code the file carries); default: tensors only.

    Returns:
        The number of steps played.

    Raises:
        NoDisplayError: without a display (and no ``open_viewer`` given).
        ValueError: if the env's physics backend has no live viewer.
    """
    import gymnasium

    from taxbench.experiments.media.renderer import load_run

    if open_viewer is None and not has_display():
        raise NoDisplayError(no_display_message(run_dir))
    run = load_run(run_dir, trust_pickle=trust_pickle)
    env = gymnasium.make(run.cfg.env_id, **run.cfg.env_kwargs)
    sim = getattr(env.unwrapped, "sim", None)
    if open_viewer is None:
        if not hasattr(sim, "open_viewer"):
            env.close()
            backend = getattr(env.unwrapped, "backend", "this")
            raise ValueError(
                f"the {backend} backend of {run.cfg.env_id} has no live viewer; use taxbench rollout {run_dir}"
            )
        open_viewer = type(sim).open_viewer
    first_seed = run.cfg.eval_seed if seed is None else seed
    handle = open_viewer(sim)
    steps = 0
    try:
        episode = 0
        while handle.is_running() and (episodes is None or episode < episodes):
            obs, _ = env.reset(seed=first_seed + episode)
            done, step = False, 0
            handle.sync()
            while not done and handle.is_running():
                start = time.monotonic()
                action, _ = run.model.predict(obs, deterministic=True)
                with _lock(handle):
                    obs, _, terminated, truncated, info = env.step(action)
                handle.sync()
                done = bool(terminated or truncated)
                fired = [
                    k[5:] for k, v in info.items() if k.startswith("cost_") and isinstance(v, int | float) and v > 0
                ]
                for term in fired:
                    log(f"ep {episode} step {step}: {term} violated (measure {info.get(f'measure_{term}')})")
                step, steps = step + 1, steps + 1
                if realtime:
                    time.sleep(max(0.0, sim.dt - (time.monotonic() - start)))
            episode += 1
    finally:
        close = getattr(handle, "close", None)
        if callable(close):
            close()
        env.close()
    return steps


class _lock:
    """The viewer's lock while the physics changes, when the handle has one."""

    def __init__(self, handle: Any) -> None:
        self._inner = handle.lock() if hasattr(handle, "lock") else None

    def __enter__(self) -> None:
        if self._inner is not None:
            self._inner.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._inner is not None:
            self._inner.__exit__(*exc)
