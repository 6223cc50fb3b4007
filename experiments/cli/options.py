"""Shared pieces of every ``taxbench`` subcommand: consoles, ``UsageError``, argument validators, the run options.

Every front door (``cli/*_cmds.py``) takes its validators from here, so a bad input gets the same
one-line error from every subcommand.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from taxbench.policies.lagrange import DEFAULT_COST_LIMIT, check_cost_limit
from taxbench.policies.presets import INTENSITY_NAMES, preset_for, resolve_dose

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
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number (cost per episode), got {text!r}") from None
    try:
        return check_cost_limit(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}") from None


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
    import gymnasium as gym

    import taxbench.envs  # noqa: F401 - registers the ids
    from taxbench.envs.registry import unknown_env_message

    if text not in gym.registry:
        raise argparse.ArgumentTypeError(unknown_env_message(text))
    return text


# ----------------------------------------------------------------------------- shared options
def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", type=env_id_arg, default=DEFAULT_ENV, help=f"Gymnasium env id (default {DEFAULT_ENV})")
    parser.add_argument(
        "--steps",
        type=steps_arg,
        default=None,
        help="training budget per run, env steps (default: the env's quick budget, "
        f"{preset_for(DEFAULT_ENV).quick_steps:,} for {DEFAULT_ENV})",
    )
    parser.add_argument(
        "--cost-limit",
        type=cost_limit_arg,
        default=None,
        help="constraint d of the arms with a cost limit: expected cost per episode, i.e. violating steps per "
        f"episode with the default 0/1 cost terms (default: the env's, {DEFAULT_COST_LIMIT:g} for every suite env)",
    )
    parser.add_argument(
        "--intensity",
        choices=INTENSITY_NAMES,
        default=None,
        help="named safety dose of the env (see `taxbench envs`): the cost limit of *-lag arms, β of "
        "ppo-penalty, the shield margins of ppo-shield; overrides --cost-limit (default: "
        "--cost-limit for *-lag arms, moderate for the others)",
    )
    parser.add_argument(
        "--lagrange",
        choices=("grad", "pid"),
        default="grad",
        help="multiplier of the *-lag arms: grad (gradient ascent) or pid (PID-Lagrangian, "
        "Kp 0.1, Ki 0.01, Kd 0.01) (default grad)",
    )
    parser.add_argument(
        "--n-envs",
        type=positive_int,
        default=None,
        help="parallel envs per run (default: the env's preset, e.g. 4 for HalfCheetah)",
    )
    parser.add_argument(
        "--device",
        type=device_arg,
        default="auto",
        help="torch device: auto (CUDA if present, else CPU), cpu, cuda, cuda:<index>; "
        "a device this machine lacks is refused before any run starts",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch threads per run (default 1: more never helped PPO on 2 cores)",
    )
    parser.add_argument(
        "--eval-episodes",
        type=positive_int,
        default=10,
        help="deterministic evaluation episodes per run after training (default 10)",
    )
    parser.add_argument("--out", type=out_dir_arg, default=Path("runs"), help="output folder (default ./runs)")
    parser.add_argument("--experiment", default="default", help="experiment name: the folder under --out")
    parser.add_argument(
        "--env-kwarg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="env constructor kwarg, e.g. velocity_limit=0.5 (repeatable; VALUE parsed as JSON)",
    )
    parser.add_argument("--resume", action="store_true", help="continue interrupted runs and reuse finished ones")
    parser.add_argument("--overwrite", action="store_true", help="delete existing runs in the way and train again")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_tensorboard_option(parser)


def tensorboard_arg(text: str) -> str:
    """Argparse type of ``--tensorboard``: the package must be installed and the folder creatable."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise argparse.ArgumentTypeError("needs the tensorboard package: pip install 'taxbench[tensorboard]'") from None
    folder = Path(text)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise argparse.ArgumentTypeError(
            f"cannot write TensorBoard logs under {text!r} ({existing} is not a writable folder)"
        )
    return text


def add_tensorboard_option(parser: argparse.ArgumentParser) -> None:
    """``--tensorboard DIR``: one event-file folder per run under DIR (<experiment>/<env>/<arm>-<intensity>/seed<k>)."""
    parser.add_argument(
        "--tensorboard",
        type=tensorboard_arg,
        default=None,
        metavar="DIR",
        help="write SB3's scalars and safety/* (episode cost, violation rate, λ) as TensorBoard event files, one "
        "folder per run under DIR; watch live with `tensorboard --logdir DIR`",
    )


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


def base_config(args: argparse.Namespace, arm: str, seed: int) -> Any:
    from taxbench.experiments.runs.config import RunConfig

    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    env_kwargs = parse_env_kwargs(args.env_kwarg)
    check_env_kwargs(args.env, env_kwargs)
    preset = preset_for(args.env)
    n_envs, hyperparams = preset.for_arm(arm)
    dose = resolve_dose(
        args.env, arm, getattr(args, "intensity", None), args.cost_limit, getattr(args, "lagrange", "grad")
    )
    hyperparams.update(dose.hyperparams)
    return RunConfig(
        env_id=args.env,
        arm=arm,
        seed=seed,
        steps=args.steps or preset.quick_steps,
        cost_limit=dose.cost_limit,
        intensity=dose.intensity,
        experiment=args.experiment,
        env_kwargs=env_kwargs,
        n_envs=args.n_envs or n_envs,
        hyperparams=hyperparams,
        device=args.device,
        torch_threads=args.threads,
        eval_episodes=args.eval_episodes,
        tensorboard=args.tensorboard,
    ).validate()


def check_learners(configs: Iterable[Any]) -> None:
    """Build each distinct (env, arm, hyper-parameters) learner once, before any run starts.

    A bad ``--hyperparam`` key or value then fails here with one line instead of inside every worker. SAC
    replay buffers are capped at 1,000 transitions for this check only (their size is checked to be a whole
    number > 0 separately).
    """
    import gymnasium as gym

    from taxbench.policies.registry import make_learner

    seen: set[str] = set()
    for cfg in configs:
        key = repr((cfg.env_id, cfg.env_kwargs, cfg.arm, cfg.hyperparams, cfg.cost_limit))
        if key in seen:
            continue
        seen.add(key)
        hyperparams = dict(cfg.hyperparams)
        size = hyperparams.get("buffer_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise UsageError(f"--hyperparam buffer_size must be a whole number > 0, got {size!r}")
            hyperparams["buffer_size"] = min(size, 1000)
        env = gym.make(cfg.env_id, **cfg.env_kwargs)
        try:
            make_learner(cfg.arm, env, seed=0, cost_limit=cfg.cost_limit, device="cpu", hyperparams=hyperparams)
        except (TypeError, ValueError, AssertionError) as exc:
            raise UsageError(f"{cfg.arm} cannot be built with hyper-parameters {cfg.hyperparams}: {exc}") from None
        finally:
            env.close()


def check_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Build the env once so a bad kwarg fails now, not inside every worker."""
    import gymnasium as gym

    try:
        gym.make(env_id, **env_kwargs).close()
    except (TypeError, ValueError) as exc:
        raise UsageError(f"cannot build {env_id} with {env_kwargs}: {exc}") from None
