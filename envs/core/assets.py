"""One resolver for every model file taxbench loads (no hand-built paths elsewhere)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def gymnasium_model(filename: str) -> Path:
    """Path of an MJCF model shipped with Gymnasium (``gymnasium/envs/mujoco/assets``).

    Gymnasium's models are MIT-licensed and installed with ``gymnasium[mujoco]``/``gymnasium``.
    """
    path = Path(str(resources.files("gymnasium.envs.mujoco") / "assets" / filename))
    if not path.is_file():
        raise FileNotFoundError(f"Gymnasium does not ship {filename!r} (looked in {path.parent})")
    return path


def taxbench_asset(relative: str) -> Path:
    """Path of a file under taxbench's own ``assets/`` package (see the SOURCE.md beside it)."""
    path = Path(str(resources.files("taxbench.assets") / relative))
    if not path.exists():
        raise FileNotFoundError(f"taxbench asset {relative!r} is missing (looked at {path})")
    return path
