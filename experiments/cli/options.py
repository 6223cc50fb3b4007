"""Shared pieces of every ``taxbench`` subcommand: consoles, ``UsageError``, argument validators, the run options.

Every front door (``cli/*_cmds.py``) takes its validators from here, so a bad input gets the same
one-line error from every subcommand.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from taxbench.policies.presets import INTENSITY_NAMES, intensity_settings, preset_for

DEFAULT_ENV = "taxbench/HalfCheetahSlowZone-v0"


DEFAULT_SEEDS = (0, 1, 2)


DEFAULT_COST_LIMIT = 25.0


# Wide enough for the tables when output goes to a file or a CI log (rich uses 80 columns there).
console = Console(width=None if sys.stdout.isatty() else 120)


err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        err_console.print(f"taxbench: error: {message} (see {self.prog} --help)", highlight=False, soft_wrap=True)
        raise SystemExit(2)


# ----------------------------------------------------------------------------- argument types
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
    return nonneg_float(text, "a number (cost per episode)")


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
        type=positive_int,
        default=None,
        help="training budget per run, env steps (default: the env's quick budget, "
        f"{preset_for(DEFAULT_ENV).quick_steps:,} for {DEFAULT_ENV})",
    )
    parser.add_argument(
        "--cost-limit",
        type=cost_limit_arg,
        default=DEFAULT_COST_LIMIT,
        help="constraint d for ppo-lag: expected cost per episode, i.e. violating steps per episode "
        f"with the default 0/1 cost terms (default {DEFAULT_COST_LIMIT:g})",
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
    parser.add_argument("--device", default="auto", help="torch device: auto (CUDA if present, else CPU), cpu, cuda")
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
    parser.add_argument("--out", type=Path, default=Path("runs"), help="output folder (default ./runs)")
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
    cost_limit, intensity = arm_dose(args, arm, hyperparams)
    return RunConfig(
        env_id=args.env,
        arm=arm,
        seed=seed,
        steps=args.steps or preset.quick_steps,
        cost_limit=cost_limit,
        intensity=intensity,
        experiment=args.experiment,
        env_kwargs=env_kwargs,
        n_envs=args.n_envs or n_envs,
        hyperparams=hyperparams,
        device=args.device,
        torch_threads=args.threads,
        eval_episodes=args.eval_episodes,
    ).validate()


def arm_dose(args: argparse.Namespace, arm: str, hyperparams: dict[str, Any]) -> tuple[float, str]:
    """Cost limit and intensity label of one arm; its dose kwargs are added to ``hyperparams``."""
    if arm in ("ppo", "sac"):
        return args.cost_limit, "off"
    named = getattr(args, "intensity", None) or (None if arm.endswith("-lag") else "moderate")
    cost_limit, label = args.cost_limit, f"d{args.cost_limit:g}"
    if named is not None:
        limit, extra = intensity_settings(args.env, arm, named)
        hyperparams.update(extra)
        cost_limit, label = (limit if limit is not None else cost_limit), named
    if arm.endswith("-lag") and getattr(args, "lagrange", "grad") == "pid":
        hyperparams["lagrange_method"] = "pid"
        label += "-pid"
    return cost_limit, label


def check_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Build the env once so a bad kwarg fails now, not inside every worker."""
    import gymnasium as gym

    try:
        gym.make(env_id, **env_kwargs).close()
    except (TypeError, ValueError) as exc:
        raise UsageError(f"cannot build {env_id} with {env_kwargs}: {exc}") from None
