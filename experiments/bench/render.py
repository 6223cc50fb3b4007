"""Headless rendering speed per physics backend: what ``taxbench bench render`` measures.

For each env and backend it times, on one core: the raw ``render()`` (MuJoCo through EGL or
OSMesa, PyBullet through TinyRenderer), the same frame with the safety HUD drawn, and H.264
encoding of those frames, all in frames per second.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Envs timed by default: one per robot family, when registered.
DEFAULT_ENVS = (
    "taxbench/HalfCheetahSlowZone-v0",
    "taxbench/AntHazard-v0",
    "taxbench/PandaReach-v0",
    "taxbench/PandaPush-v0",
)
BACKENDS = ("mujoco", "pybullet")


def _make(env_id: str, backend: str, width: int, height: int) -> Any | None:
    import gymnasium

    try:
        return gymnasium.make(env_id, backend=backend, render_mode="rgb_array", width=width, height=height)
    except (ValueError, TypeError, NotImplementedError, KeyError):
        return None  # this env does not run on this backend


def _time_once(env: Any, frames: int, hud: Any) -> tuple[float, float, float, float]:
    """One repeat: (render fps, render + HUD fps, H.264 encode fps, mean pixel std) over ``frames`` frames."""
    from taxbench.experiments.media.video import VideoWriter, annotate

    images, render_s = [], 0.0
    for _ in range(frames):
        env.step(env.action_space.sample())
        start = time.perf_counter()
        images.append(env.render())
        render_s += time.perf_counter() - start
    start = time.perf_counter()
    annotated = [annotate(image, hud) for image in images]
    hud_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with VideoWriter(Path(tmp) / "bench.mp4", 20.0) as writer:
            for image in annotated:
                writer.append(image)
        encode_s = time.perf_counter() - start
    return (
        frames / render_s,
        frames / (render_s + hud_s),
        frames / encode_s,
        float(np.mean([image.std() for image in images])),
    )


def bench_render(
    env_ids: Sequence[str] | None = None,
    *,
    width: int = 320,
    height: int = 240,
    frames: int = 60,
    seed: int = 0,
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """Frames per second of headless rendering for every env × backend that can be built.

    Args:
        env_ids: Envs to time (default :data:`DEFAULT_ENVS` that are registered).
        width: Frame width, pixels.
        height: Frame height, pixels.
        frames: Frames timed per repeat (after one warm-up frame).
        seed: Reset seed; random actions between frames are drawn from it.
        repeats: Repeats per env and backend; the rates are medians over them.

    Returns:
        One row per env and backend: ``env_id``, ``backend``, ``size``, ``render_fps`` (raw frames),
        ``hud_fps`` (render + HUD + red frame), ``encode_fps`` (H.264 encoding of the HUD frames), ``gl``
        (the MuJoCo GL backend, from ``MUJOCO_GL``), ``mean_pixel_std`` (0 would mean blank frames) and
        ``repeats``.
    """
    import os

    import gymnasium

    import taxbench.envs  # noqa: F401 - registers the ids
    from taxbench.experiments.media.video import HudState

    if frames < 1 or repeats < 1:
        raise ValueError(f"frames and repeats must be >= 1, got {frames} and {repeats}")
    ids = list(env_ids) if env_ids else [e for e in DEFAULT_ENVS if e in gymnasium.registry]
    hud = HudState("bench", 0, seed, 1, 0.05, 1.0, 1.0, 1.0, 1.0, 0.5, ("velocity 3.2>1 m/s",))
    rows = []
    for env_id in ids:
        if env_id not in gymnasium.registry:
            raise ValueError(f"unknown env id {env_id!r}")
        for backend in BACKENDS:
            env = _make(env_id, backend, width, height)
            if env is None:
                continue
            try:
                env.reset(seed=seed)
                env.action_space.seed(seed)
                env.render()
                runs = [_time_once(env, frames, hud) for _ in range(repeats)]
            finally:
                env.close()
            render_fps, hud_fps, encode_fps, pixel_std = (
                statistics.median(column) for column in zip(*runs, strict=True)
            )
            rows.append(
                {
                    "env_id": env_id,
                    "backend": backend,
                    "size": f"{width}x{height}",
                    "render_fps": render_fps,
                    "hud_fps": hud_fps,
                    "encode_fps": encode_fps,
                    "gl": os.environ.get("MUJOCO_GL", "default") if backend == "mujoco" else "TinyRenderer",
                    "mean_pixel_std": pixel_std,
                    "repeats": repeats,
                }
            )
    return rows


def print_bench_render(rows: Sequence[dict[str, Any]], console: Any = None) -> None:
    """Print :func:`bench_render` rows as a rich table."""
    from rich.console import Console
    from rich.table import Table

    repeats = max((row["repeats"] for row in rows), default=1)
    table = Table(title=f"headless rendering, frames/s (one process; medians of {repeats})")
    for column in ("env", "backend", "size", "GL", "render", "render + HUD", "H.264 encode"):
        table.add_column(column, justify="right" if column in ("render", "render + HUD", "H.264 encode") else "left")
    for row in rows:
        table.add_row(
            row["env_id"],
            row["backend"],
            row["size"],
            row["gl"],
            f"{row['render_fps']:.0f}",
            f"{row['hud_fps']:.0f}",
            f"{row['encode_fps']:.0f}",
        )
    (console or Console()).print(table)
