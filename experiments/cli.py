"""``taxbench``: the command line (envs, train, eval, pair).

Every command prints a one-line error and exits 2 on bad input, and never deletes a run unless
``--overwrite`` says so.
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
from rich.table import Table

from taxbench.policies.presets import INTENSITY_NAMES, intensity_settings, preset_for
from taxbench.policies.registry import ARMS, CONSTRAINED_ARMS

DEFAULT_ENV = "taxbench/HalfCheetahSlowZone-v0"
DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_COST_LIMIT = 25.0

# Wide enough for the tables when output goes to a file or a CI log (rich uses 80 columns there).
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        err_console.print(f"taxbench: error: {message} (see {self.prog} --help)", highlight=False, soft_wrap=True)
        raise SystemExit(2)


# ----------------------------------------------------------------------------- argument types
def _positive_int(text: str) -> int:
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


def _cost_limit(text: str) -> float:
    return nonneg_float(text, "a number (cost per episode)")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are whole numbers >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seeds are whole numbers >= 0, got {value}")
    return value


def _env_id(text: str) -> str:
    import gymnasium as gym

    import taxbench.envs  # noqa: F401 - registers the ids
    from taxbench.envs.registry import unknown_env_message

    if text not in gym.registry:
        raise argparse.ArgumentTypeError(unknown_env_message(text))
    return text


# ----------------------------------------------------------------------------- shared options
def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", type=_env_id, default=DEFAULT_ENV, help=f"Gymnasium env id (default {DEFAULT_ENV})")
    parser.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="training budget per run, env steps (default: the env's quick budget, "
        f"{preset_for(DEFAULT_ENV).quick_steps:,} for {DEFAULT_ENV})",
    )
    parser.add_argument(
        "--cost-limit",
        type=_cost_limit,
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
        type=_positive_int,
        default=None,
        help="parallel envs per run (default: the env's preset, e.g. 4 for HalfCheetah)",
    )
    parser.add_argument("--device", default="auto", help="torch device: auto (CUDA if present, else CPU), cpu, cuda")
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="torch threads per run (default 1: more never helped PPO on 2 cores)",
    )
    parser.add_argument(
        "--eval-episodes",
        type=_positive_int,
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


def _env_kwargs(pairs: Sequence[str]) -> dict[str, Any]:
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


def _base_config(args: argparse.Namespace, arm: str, seed: int) -> Any:
    from taxbench.experiments.config import RunConfig

    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    env_kwargs = _env_kwargs(args.env_kwarg)
    _check_env_kwargs(args.env, env_kwargs)
    preset = preset_for(args.env)
    n_envs, hyperparams = preset.for_arm(arm)
    cost_limit, intensity = _arm_dose(args, arm, hyperparams)
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


def _arm_dose(args: argparse.Namespace, arm: str, hyperparams: dict[str, Any]) -> tuple[float, str]:
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


def _check_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Build the env once so a bad kwarg fails now, not inside every worker."""
    import gymnasium as gym

    try:
        gym.make(env_id, **env_kwargs).close()
    except (TypeError, ValueError) as exc:
        raise UsageError(f"cannot build {env_id} with {env_kwargs}: {exc}") from None


# ----------------------------------------------------------------------------- commands
def cmd_envs(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from taxbench.envs import ENTRIES

    table = Table(title="taxbench environments (thresholds are constructor kwargs)", show_lines=True)
    table.add_column("id", no_wrap=True)
    table.add_column("task")
    table.add_column("counted in `cost`", no_wrap=True)
    table.add_column("also available (cost_terms=None)", no_wrap=True)
    table.add_column("cost limit / episode", justify="right")
    sources: dict[str, None] = {}
    for entry in ENTRIES:
        counted = gym.make(entry.env_id).unwrapped.safety
        everything = gym.make(entry.env_id, cost_terms=None).unwrapped.safety
        extra = [t for t in everything if t.name not in {c.name for c in counted}]
        sources.update({f"{t.describe()}: {t.source}": None for t in everything})
        table.add_row(
            entry.env_id,
            f"{entry.task_kind}: {entry.summary}",
            "\n".join(t.describe() for t in counted),
            "\n".join(t.describe() for t in extra),
            f"{entry.default_cost_limit:g} ({entry.max_episode_steps} steps)",
        )
    console.print(table)
    doses = Table(title="safety intensities (--intensity): cost limit d of *-lag, β of ppo-penalty, shield cap")
    doses.add_column("id", no_wrap=True)
    for name in INTENSITY_NAMES:
        doses.add_column(name)
    for entry in ENTRIES:
        levels = preset_for(entry.env_id).intensities
        doses.add_row(entry.env_id, *(levels[name].describe() for name in INTENSITY_NAMES))
    console.print(doses)
    console.print("Threshold sources:", highlight=False)
    for line in sources:
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from taxbench.experiments.pair import Job, run_jobs
    from taxbench.experiments.runfolder import run_dir

    cfg = _base_config(args, args.arm, args.seed)
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
        "lambda",
        "wall_s",
    ):
        if key in summary:
            value = summary[key]
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)


def cmd_eval(args: argparse.Namespace) -> int:
    from taxbench.experiments.train import evaluate_run

    summary = evaluate_run(args.run_dir, episodes=args.episodes, seed=args.seed)
    _print_run(Path(args.run_dir), summary)
    return 0


def cmd_pair(args: argparse.Namespace) -> int:
    from taxbench.experiments.pair import check_existing, pair_jobs, run_jobs, summarize_pair, write_pair_outputs

    if len(set(args.seeds)) != len(args.seeds):
        raise UsageError(f"--seeds must be distinct, got {args.seeds}")
    from taxbench.policies import unconstrained_partner

    safe = _base_config(args, args.safe_arm, args.seeds[0])
    base = _base_config(args, unconstrained_partner(args.safe_arm), args.seeds[0])
    jobs = pair_jobs(base, args.seeds, args.out, safe=safe)
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
    summary = summarize_pair(results)
    folder = Path(args.out) / base.experiment
    write_pair_outputs(results, summary, folder)
    print_pair_table(base, results, summary)
    console.print(f"run folders and summary.csv / pair.json in {folder}", highlight=False)
    return 1 if any(r.error for r in results) else 0


def print_pair_table(base: Any, results: Sequence[Any], summary: dict[str, Any]) -> None:
    """Per-arm capability and violations, then the tax and safety gain with their 95% CIs."""
    metric = next((r.summary.get("capability_metric") for r in results if r.summary), "capability")
    arms = Table(
        title=f"{base.env_id}: {summary['n_pairs']} paired seeds, {base.steps:,} steps, "
        f"ppo-lag cost limit {base.cost_limit:g}/episode"
    )
    for column in ("arm", f"capability ({metric})", "violation rate", "episode cost"):
        arms.add_column(column, justify="right" if column != "arm" else "left")
    arm_names = {("unc" if r.job.cfg.intensity == "off" else "safe"): r.job.cfg.arm for r in results}
    for arm, suffix in (
        (f"{arm_names.get('unc', 'ppo')} (unconstrained)", "unc"),
        (f"{arm_names.get('safe', 'ppo-lag')} (constrained)", "safe"),
    ):
        arms.add_row(
            arm, *(summary[f"{key}_{suffix}"].format(3) for key in ("capability", "violation_rate", "episode_cost"))
        )
    console.print(arms)
    tax = Table(title="alignment tax (mean [95% paired bootstrap CI] over seeds)")
    tax.add_column("quantity")
    tax.add_column("estimate", justify="right")
    tax.add_column("CI excludes 0", justify="center")
    rows = (
        ("tax τ = (C_unc − C_safe)/|C_unc|", "tax"),
        ("safety gain g = (V_unc − V_safe)/V_unc", "safety_gain"),
        ("capability loss ΔC = C_unc − C_safe", "capability_loss"),
    )
    for label, key in rows:
        estimate = summary[key]
        tax.add_row(label, estimate.format(3), "yes" if estimate.excludes_zero else "no")
    price = summary.get("price_of_safety", math.nan)
    tax.add_row("price of safety τ/g", "n/a" if not math.isfinite(price) else f"{price:.3g}", "")
    console.print(tax)


# ----------------------------------------------------------------------------- parser and entry point
def build_parser() -> argparse.ArgumentParser:
    """The ``taxbench`` argument parser."""
    parser = _Parser(prog="taxbench", description="Measure the embodied alignment tax of safe robot learning.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("envs", help="list every env with its cost terms, thresholds (units) and default cost limit")

    train = sub.add_parser("train", help="train one arm for one seed into its run folder")
    train.add_argument("--arm", default="ppo", choices=ARMS, help="learner (default ppo)")
    train.add_argument("--seed", type=_seed, default=0, help="seed (default 0)")
    _add_run_options(train)

    evaluate = sub.add_parser("eval", help="re-evaluate a finished run folder (rewrites episodes.csv, events.jsonl)")
    evaluate.add_argument("run_dir", type=Path, help="a run folder holding config.json and model.zip")
    evaluate.add_argument("--episodes", type=_positive_int, default=None, help="episodes (default: as trained)")
    evaluate.add_argument("--seed", type=_seed, default=None, help="first evaluation reset seed (default: as trained)")

    pair = sub.add_parser("pair", help="train ppo and ppo-lag on the same env and seeds, then report the tax")
    pair.add_argument("--seeds", type=_seed, nargs="+", default=list(DEFAULT_SEEDS), help="seeds (default 0 1 2)")
    pair.add_argument(
        "--safe-arm",
        choices=CONSTRAINED_ARMS,
        default="ppo-lag",
        help="the constrained arm, paired with its unconstrained learner (sac for sac-lag, else ppo) (default ppo-lag)",
    )
    pair.add_argument(
        "--workers",
        type=_positive_int,
        default=min(2, os.cpu_count() or 1),
        help="runs trained at once, one process each (default: 2, or 1 on a 1-core machine)",
    )
    _add_run_options(pair)
    from taxbench.experiments.gate_cli import add_ci_parsers

    add_ci_parsers(sub)  # gate, check
    from taxbench.experiments.rollout_cli import add_media_parsers

    add_media_parsers(sub)  # rollout, view
    from taxbench.experiments.bench import add_bench_parser

    add_bench_parser(sub, _positive_int, _env_id)  # bench envs
    from taxbench.experiments.sweep_cli import add_sweep_parsers

    add_sweep_parsers(sub)  # sweep, report
    from taxbench.experiments.shield_deploy import add_shield_parser

    add_shield_parser(sub)  # shield
    return parser


def cmd_bench(args: argparse.Namespace) -> int:
    from taxbench.experiments.bench import BENCH_COMMANDS

    return BENCH_COMMANDS[args.bench_command](args, console)


COMMANDS = {"bench": cmd_bench, "envs": cmd_envs, "train": cmd_train, "eval": cmd_eval, "pair": cmd_pair}

#: Subcommands whose code lives in its own module, imported only when the command runs:
#: ``name -> (module, function)``, the function taking ``(args, console, err_console)``.
DELEGATED = {
    "gate": ("gate_cli", "cmd_gate"),
    "check": ("gate_cli", "cmd_check"),
    "rollout": ("rollout_cli", "cmd_rollout"),
    "view": ("rollout_cli", "cmd_view"),
    "sweep": ("sweep_cli", "cmd_sweep"),
    "report": ("sweep_cli", "cmd_report"),
    "shield": ("shield_deploy", "cmd_shield"),
}


def _run_command(args: argparse.Namespace) -> int:
    if args.command in DELEGATED:
        import importlib

        module, function = DELEGATED[args.command]
        return getattr(importlib.import_module(f"taxbench.experiments.{module}"), function)(args, console, err_console)
    return COMMANDS[args.command](args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``taxbench`` console script."""
    import taxbench.envs  # noqa: F401 - registers the taxbench/ ids before any command builds an env

    args = build_parser().parse_args(argv)
    try:
        return _run_command(args)
    except (UsageError, ValueError, FileExistsError, FileNotFoundError) as exc:
        err_console.print(f"taxbench {args.command}: error: {exc}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("taxbench: interrupted; rerun the same command with --resume to continue")
        return 130


if __name__ == "__main__":
    sys.exit(main())
