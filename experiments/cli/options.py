"""Shared pieces of every ``taxbench`` subcommand: consoles, ``UsageError``, argument validators, the run options.

Every front door (``cli/*_cmds.py``) takes its validators from here, so a bad input gets the same
one-line error from every subcommand.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from taxbench.policies.lagrange import check_cost_limit

DEFAULT_ENV = "taxbench/HalfCheetahSlowZone-v0"


DEFAULT_SEEDS = (0, 1, 2)


# Wide enough for the tables when output goes to a file or a CI log (rich uses 80 columns there).
console = Console(width=None if sys.stdout.isatty() else 120)


err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        err_console.print(f"taxbench: error: {message} (see {self.prog} --help)", highlight=False, soft_wrap=True)
        raise SystemExit(2)


#: Largest training budget accepted, env steps per run (10 billion: 1,000× OmniSafe's 10M-step benchmark tables).
MAX_STEPS = 10_000_000_000


# ----------------------------------------------------------------------------- argument types
def steps_arg(text: str) -> int:
    """Argparse type of a training budget in env steps: a whole number in 1 .. :data:`MAX_STEPS`."""
    value = positive_int(text)
    if value > MAX_STEPS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_STEPS:,} env steps, got {text}")
    return value


def _first_existing(path: Path) -> Path:
    return next((p for p in (path, *path.parents) if p.exists()), Path.cwd())


def _writable_below(path: Path, text: str, what: str) -> None:
    existing = _first_existing(path)
    if existing != path and not existing.is_dir():
        raise argparse.ArgumentTypeError(f"cannot create {what} {text!r}: {existing} is a file, not a folder")
    if not os.access(existing if existing.is_dir() else existing.parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {what} {text!r}: {existing} is not writable")


def out_dir_arg(text: str) -> Path:
    """Argparse type of an output folder: an existing writable folder, or one that can be created."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"output folder {text!r} is a file")
    _writable_below(path, text, "output folder")
    return path


def out_file_arg(text: str) -> Path:
    """Argparse type of an output file (JSON, CSV, JUnit): not a folder, in a folder that is or can be made writable."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot overwrite {text!r}: it is not writable")
    _writable_below(path.parent if str(path.parent) else Path("."), text, "file")
    return path


def run_dir_arg(text: str) -> Path:
    """Argparse type of an existing run folder (it holds ``config.json``), as an absolute path."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder" if path.exists() else f"{text!r} does not exist")
    if not (path / "config.json").is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not a run folder (no config.json)")
    return path.resolve()


def existing_dir_arg(text: str) -> Path:
    """Argparse type of a folder that must exist (e.g. a folder of runs to report on)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder" if path.exists() else f"{text!r} does not exist")
    return path


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def nonneg_float(text: str, what: str = "a number") -> float:
    """Argparse type: a finite number >= 0 (``what`` names it in the error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def cost_limit_arg(text: str) -> float:
    """Argparse type of ``--cost-limit`` (cost per episode), checked by the same function the learners use."""
    return check_cost_limit(nonneg_float(text, "a number (cost per episode)"))


def device_arg(text: str) -> str:
    """Argparse type of ``--device``: refuses an unknown name or a CUDA device that is not there."""
    from taxbench.policies.registry import resolve_device

    try:
        resolve_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def seed_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are whole numbers >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seeds are whole numbers >= 0, got {value}")
    return value


def env_id_arg(text: str) -> str:
    """Argparse type of an env id: registered, or Gymnasium's ``module:id`` (the module registers it on import)."""
    import importlib

    import gymnasium as gym

    import taxbench.envs  # noqa: F401 - registers the ids
    from taxbench.envs.registry import unknown_env_message

    module, sep, env_name = text.partition(":")
    if sep and module and "/" not in module:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise argparse.ArgumentTypeError(f"cannot import {module!r} for env {text!r}: {exc}") from None
    else:
        env_name = text
    if env_name not in gym.registry:
        raise argparse.ArgumentTypeError(unknown_env_message(env_name))
    return text


def parse_env_kwargs(pairs: Sequence[str]) -> dict[str, Any]:
    import json

    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--env-kwarg expects KEY=VALUE, got {pair!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs
