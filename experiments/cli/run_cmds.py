"""The ``envs``, ``train``, ``eval`` and ``pair`` subcommands of ``taxbench`` (handlers and their tables)."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from taxbench.experiments.cli.options import DEFAULT_SEEDS, UsageError, console, positive_int, run_dir_arg, seed_arg
from taxbench.experiments.cli.pair_table import print_pair_table
from taxbench.experiments.cli.run_options import add_run_options, base_config, check_learners
from taxbench.experiments.metrics.feasibility import DEFAULT_PROTOCOL, PROTOCOLS
from taxbench.experiments.runs.policy_files import TRUST_PICKLE_HELP
from taxbench.policies.presets import INTENSITY_NAMES, preset_for
from taxbench.policies.registry import ARMS, CONSTRAINED_ARMS, DEPLOY_AWARE_ARMS


# ----------------------------------------------------------------------------- commands
def cmd_envs(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    import gymnasium as gym

    from taxbench.envs import ENTRIES
    from taxbench.envs.warp import has_warp_version

    table = Table(title="taxbench environments: id taxbench/<name>; thresholds are constructor kwargs", show_lines=True)
    # the thresholds wrap, never the task: readable at 100 columns and when piped
    table.add_column("name", no_wrap=True)
    table.add_column("task", min_width=20)
    table.add_column("counted in `cost`", min_width=11)
    table.add_column("also available (cost_terms=None)", min_width=11)
    sources: dict[str, None] = {}
    for entry in ENTRIES:
        counted = gym.make(entry.env_id).unwrapped.safety
        everything = gym.make(entry.env_id, cost_terms=None).unwrapped.safety
        extra = [t for t in everything if t.name not in {c.name for c in counted}]
        sources.update({f"{t.describe()}: {t.source}": None for t in everything})
        table.add_row(
            entry.env_id.removeprefix("taxbench/"),
            f"{entry.task_kind}, {entry.max_episode_steps}-step episodes: {entry.summary}",
            "\n".join(t.describe() for t in counted),
            "\n".join(t.describe() for t in extra),
        )
    console.print(table)
    limits = sorted({entry.default_cost_limit for entry in ENTRIES})
    console.print(
        f"Default cost limit d (--cost-limit): {', '.join(f'{d:g}' for d in limits)} per episode "
        "(violating steps per episode with the 0/1 cost terms); the named doses follow.",
        highlight=False,
    )
    warp = [entry.env_id for entry in ENTRIES if has_warp_version(entry.env_id)]
    console.print(f"Train on MuJoCo Warp (--sim warp, GPU): {', '.join(warp)}; the others train on the CPU only.",
                  highlight=False)  # fmt: skip
    doses = Table(
        title="safety intensities (--intensity): cost limit d (ppo-lag, cup, cpo, sac-lag; saute's budget), "
        "β of ppo-penalty, shield cap (also ppo-track's reward cap)"
    )
    doses.add_column("id", no_wrap=True)
    for name in INTENSITY_NAMES:
        doses.add_column(name)
    for entry in ENTRIES:
        levels = preset_for(entry.env_id).intensities
        doses.add_row(entry.env_id, *(levels[name].describe() for name in INTENSITY_NAMES))
    console.print(doses)
    console.print("Threshold sources:", highlight=False)
    for line in sources:
        console.print(f"  {line}", highlight=False)
    return 0


def cmd_train(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    from taxbench.experiments.runs.pair import Job
    from taxbench.experiments.runs.pool import run_jobs
    from taxbench.experiments.runs.runfolder import run_dir

    cfg = base_config(args, args.arm, args.seed)
    directory = run_dir(args.out, cfg.experiment, cfg.env_id, cfg.arm, cfg.intensity, cfg.seed)
    [result] = run_jobs(
        [Job(cfg, directory, f"{cfg.arm} seed {cfg.seed}")],
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    if result.error:
        err_console.print(f"taxbench: run failed: {result.error} (details in {directory / 'status.json'})")
        return 1
    _print_run(directory, result.summary or {})
    return 0


def _print_run(directory: Path, summary: dict[str, Any]) -> None:
    table = Table(title=str(directory))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (
        "capability_metric",
        "capability",
        "mean_return",
        "success_rate",
        "violation_rate",
        "episode_cost",
        "episodes",
        "capability_stochastic",
        "episode_cost_stochastic",
        "feasible_deterministic",
        "feasible_stochastic",
        "constraint_bound",
        "lambda",
        "wall_s",
    ):
        if key in summary:
            value = summary[key]
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)


def cmd_eval(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    from taxbench.experiments.runs.train import evaluate_run

    summary = evaluate_run(args.run_dir, episodes=args.episodes, seed=args.seed, trust_pickle=args.trust_pickle)
    _print_run(Path(args.run_dir), summary)
    return 0


def cmd_pair(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    from taxbench.experiments.runs.jobs import check_existing
    from taxbench.experiments.runs.pair import pair_jobs, summarize_pair, write_pair_outputs
    from taxbench.experiments.runs.pool import run_jobs

    if len(set(args.seeds)) != len(args.seeds):
        raise UsageError(f"--seeds must be distinct, got {args.seeds}")
    from taxbench.policies import unconstrained_partner

    safe = base_config(args, args.safe_arm, args.seeds[0])
    deploy = getattr(args, "deploy_cost_episodes", 0)
    if deploy:
        if deploy < 0:
            raise UsageError(f"--deploy-cost-episodes must be >= 0, got {deploy}")
        if args.safe_arm not in DEPLOY_AWARE_ARMS:
            raise UsageError(
                f"--deploy-cost-episodes applies to {' and '.join(DEPLOY_AWARE_ARMS)} only, not {args.safe_arm}"
            )
        safe = replace(safe, hyperparams={**safe.hyperparams, "deploy_cost_episodes": deploy})
    base = base_config(args, unconstrained_partner(args.safe_arm), args.seeds[0])
    jobs = pair_jobs(base, args.seeds, args.out, safe=safe)
    check_learners([base, safe])  # a learner that cannot be built fails now in one line, before any run starts
    check_existing(jobs, args.resume, args.overwrite)
    err_console.print(
        f"pair: {base.env_id}, {len(args.seeds)} seeds × ({base.arm}, {safe.arm} {safe.intensity}), "
        f"{base.steps:,} steps each, {args.workers} worker(s)",
        highlight=False,
    )
    results = run_jobs(
        jobs, workers=args.workers, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress
    )
    for result in results:
        if result.error:
            err_console.print(f"run failed: {result.job.directory}: {result.error}", highlight=False)
    summary = summarize_pair(results, getattr(args, "protocol", DEFAULT_PROTOCOL))
    folder = Path(args.out) / base.experiment
    write_pair_outputs(results, summary, folder)
    print_pair_table(base, results, summary)
    console.print(f"run folders and summary.csv / pair.json in {folder}", highlight=False)
    return 1 if any(r.error for r in results) else 0


def add_envs_parser(sub: Any) -> None:
    """Add the ``envs`` subcommand."""
    sub.add_parser("envs", help="list every env with its cost terms, thresholds (units) and default cost limit")


def add_train_parser(sub: Any) -> None:
    """Add the ``train`` subcommand."""
    train = sub.add_parser("train", help="train one arm for one seed into its run folder")
    train.add_argument("--arm", default="ppo", choices=ARMS, help="learner (default ppo)")
    train.add_argument("--seed", type=seed_arg, default=0, help="seed (default 0)")
    add_run_options(train)


def add_eval_parser(sub: Any) -> None:
    """Add the ``eval`` subcommand."""
    evaluate = sub.add_parser("eval", help="re-evaluate a finished run folder (rewrites episodes.csv, events.jsonl)")
    evaluate.add_argument("run_dir", type=run_dir_arg, help="a run folder holding config.json and model.zip")
    evaluate.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    evaluate.add_argument("--episodes", type=positive_int, default=None, help="episodes (default: as trained)")
    evaluate.add_argument(
        "--seed", type=seed_arg, default=None, help="first evaluation reset seed (default: as trained)"
    )


def add_pair_parser(sub: Any) -> None:
    """Add the ``pair`` subcommand."""
    pair = sub.add_parser("pair", help="train ppo and ppo-lag on the same env and seeds, then report the tax")
    pair.add_argument("--seeds", type=seed_arg, nargs="+", default=list(DEFAULT_SEEDS), help="seeds (default 0 1 2)")
    pair.add_argument(
        "--safe-arm",
        "--arm",
        dest="safe_arm",
        choices=CONSTRAINED_ARMS,
        default="ppo-lag",
        help="the constrained arm, paired with its unconstrained learner (trpo for cpo, sac for sac-lag, else ppo) "
        "(default ppo-lag)",
    )
    pair.add_argument(
        "--workers",
        type=positive_int,
        default=min(2, os.cpu_count() or 1),
        help="runs trained at once, one process each (default: 2, or 1 on a 1-core machine)",
    )
    pair.add_argument(
        "--deploy-cost-episodes",
        type=int,
        default=0,
        metavar="N",
        help="deployment-aware constraint (ppo-lag, sac-lag): at each λ update play N deterministic episodes and "
        "update λ from the larger of their mean cost and the training episodes' (default 0: training episodes only)",
    )
    pair.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=DEFAULT_PROTOCOL,
        help="evaluation protocol of the headline tax: the deterministic policy (as deployed; default) or the "
        "stochastic one (what the constraint is trained on, what Safety-Gym and OmniSafe report); both are "
        "measured and shown",
    )
    add_run_options(pair)
