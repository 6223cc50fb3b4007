"""``--sim`` and ``--worlds``: choosing the GPU path (MuJoCo Warp) for train, pair and sweep, checked before any run."""

from __future__ import annotations

import argparse
from typing import Any

from taxbench.experiments.cli.options import UsageError, positive_int
from taxbench.experiments.runs.config import SIMS

#: Worlds per run on the Warp path unless ``--worlds`` says otherwise: a GPU's worth, or a few on Warp's CPU device.
DEFAULT_WORLDS = {"cuda": 4096, "cpu": 64}


def add_sim_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--sim`` and ``--worlds`` to a training subcommand."""
    parser.add_argument(
        "--sim",
        choices=SIMS,
        default="cpu",
        help="where training physics runs: cpu (the env's engine on the CPU, SB3 learners; default) or warp "
        "(MuJoCo Warp worlds on --device with on-device PPO / PPO-Lagrangian; needs pip install -e '.[gpu]'; "
        "evaluation stays on the CPU env)",
    )
    parser.add_argument(
        "--worlds",
        type=positive_int,
        default=None,
        help=f"worlds per run with --sim warp (default {DEFAULT_WORLDS['cuda']} on CUDA, {DEFAULT_WORLDS['cpu']} on "
        "Warp's CPU device)",
    )


def sim_settings(args: argparse.Namespace, env_id: str, arm: str) -> dict[str, Any]:
    """RunConfig fields for the chosen physics (``sim``, and ``n_envs`` = worlds on Warp), or a UsageError.

    Checks, with one line each: ``--worlds`` without ``--sim warp``; an id without a Warp version; an arm the
    Warp path has no learner for; MuJoCo Warp not installed; a device Warp cannot use.
    """
    sim = getattr(args, "sim", "cpu")
    if sim != "warp":
        if getattr(args, "worlds", None) is not None:
            raise UsageError("--worlds applies to --sim warp only (use --n-envs on the CPU path)")
        return {"sim": "cpu"}
    from taxbench.envs.warp import check_warp_request
    from taxbench.experiments.runs.warp_run import warp_device

    warp_arms = ("ppo", "ppo-lag")
    if arm not in warp_arms:
        raise UsageError(f"--sim warp trains {' and '.join(warp_arms)} only, not {arm}")
    device = warp_device(args.device)
    worlds = args.worlds or DEFAULT_WORLDS["cuda" if device.startswith("cuda") else "cpu"]
    try:
        check_warp_request(env_id, worlds, device)
    except (ValueError, RuntimeError) as exc:
        raise UsageError(str(exc)) from None
    return {"sim": "warp", "n_envs": worlds}
