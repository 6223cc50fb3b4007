"""The options of the training subcommands (train, pair) and the RunConfig they resolve to, checked before any run.

:func:`add_run_options` adds them; :func:`base_config` turns them into one validated
:class:`~taxbench.experiments.runs.config.RunConfig` per arm; :func:`check_learners` builds each learner once.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from taxbench.experiments.cli.options import (
    DEFAULT_ENV,
    UsageError,
    cost_limit_arg,
    device_arg,
    env_id_arg,
    out_dir_arg,
    parse_env_kwargs,
    positive_int,
    steps_arg,
)
from taxbench.experiments.cli.sim_options import add_sim_options, sim_settings
from taxbench.experiments.runs.vec_envs import single_env_factory
from taxbench.policies.lagrange import DEFAULT_COST_LIMIT
from taxbench.policies.presets import INTENSITY_NAMES, preset_for, resolve_dose


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
        "ppo-penalty, the shield margins of ppo-shield, the speed cap of ppo-track; overrides --cost-limit (default: "
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
    add_sim_options(parser)


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
    sim = sim_settings(args, args.env, arm)
    return RunConfig(
        env_id=args.env,
        arm=arm,
        seed=seed,
        steps=args.steps or preset.quick_steps,
        cost_limit=dose.cost_limit,
        intensity=dose.intensity,
        experiment=args.experiment,
        env_kwargs=env_kwargs,
        n_envs=sim.get("n_envs") or args.n_envs or n_envs,
        hyperparams=hyperparams,
        device=args.device,
        torch_threads=args.threads,
        eval_episodes=args.eval_episodes,
        tensorboard=args.tensorboard,
        sim=sim["sim"],
    ).validate()


def check_learners(configs: Iterable[Any]) -> None:
    """Build each distinct (env, arm, hyper-parameters) learner once, before any run starts.

    A bad ``--hyperparam`` key or value then fails here with one line instead of inside every worker. SAC
    replay buffers are capped at 1,000 transitions for this check only (their size is checked to be a whole
    number > 0 separately).
    """
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
        env = single_env_factory(cfg)()  # with Saute's budget, the shield: the learner sees the env it trains on
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
