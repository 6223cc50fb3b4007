"""The ``sweep`` and ``report`` subcommands of ``taxbench`` (parsers and handlers; ``cli.py`` wires them in)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from taxbench.experiments.cli.options import (
    DEFAULT_ENV,
    device_arg,
    env_id_arg,
    existing_dir_arg,
    nonneg_float,
    out_dir_arg,
    positive_int,
    seed_arg,
    steps_arg,
)
from taxbench.experiments.cli.reference_cmds import add_reference_options, export_and_print, print_comparison
from taxbench.experiments.cli.run_options import add_tensorboard_option, check_learners
from taxbench.experiments.cli.sim_options import add_sim_options, sim_settings


def _intensity(text: str) -> str:
    from taxbench.experiments.runs.sweep import check_intensity

    try:
        return check_intensity(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_sweep_parser(sub: Any) -> None:
    """Add the ``sweep`` subcommand."""
    from taxbench.experiments.runs.sweep import INTENSITIES

    sweep = sub.add_parser(
        "sweep",
        help="train envs × safety arms × intensities × seeds (resumable), then write the tax report",
        description="Train every env × arm × intensity × seed, plus the unconstrained baseline of each arm (ppo-off; "
        "sac-off for sac arms) that every tax is measured against. Rerunning the same command skips "
        "finished runs and resumes interrupted or failed ones from their checkpoint; a failing run is "
        "recorded in its status.json and does not stop the others. Named intensities (mild, moderate, "
        "strict) are each env's own doses, listed by `taxbench envs` (e.g. d = 50/25/5 on HalfCheetah, 25/10/2 on "
        "the Panda); d<N> sets the cost limit to N per episode.",
    )
    sweep.add_argument(
        "--envs",
        type=env_id_arg,
        nargs="+",
        default=[DEFAULT_ENV],
        metavar="ID",
        help=f"Gymnasium env ids (default {DEFAULT_ENV})",
    )
    sweep.add_argument(
        "--arms",
        nargs="+",
        default=["ppo", "ppo-lag"],
        metavar="ARM",
        help="learner arms (default ppo ppo-lag); see taxbench.policies.ARMS",
    )
    sweep.add_argument(
        "--intensities",
        type=_intensity,
        nargs="+",
        default=list(INTENSITIES),
        metavar="LEVEL",
        help="off, mild, moderate, strict or d<cost limit per episode> (default: all four named)",
    )
    sweep.add_argument("--seeds", type=positive_int, default=5, help="number of seeds per cell (default 5)")
    sweep.add_argument("--first-seed", type=seed_arg, default=0, help="seeds run from this one (default 0)")
    sweep.add_argument(
        "--steps",
        type=steps_arg,
        default=None,
        help="training budget per run, env steps (default: each env's quick budget)",
    )
    sweep.add_argument(
        "--workers",
        type=positive_int,
        default=min(2, os.cpu_count() or 1),
        help="runs trained at once, one process each; with a local Ray instance its CPUs (default 2)",
    )
    sweep.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local process pool (default) or one Ray task per run (pip install 'taxbench[ray]')",
    )
    sweep.add_argument(
        "--ray-address",
        default=None,
        help="existing Ray cluster (e.g. auto, ray://head:10001); default: start a local instance",
    )
    sweep.add_argument("--n-envs", type=positive_int, default=None, help="parallel envs per run (default: preset)")
    sweep.add_argument("--device", type=device_arg, default="auto", help="torch device: auto, cpu, cuda, cuda:<index>")
    sweep.add_argument("--threads", type=positive_int, default=1, help="torch threads per run (default 1)")
    sweep.add_argument("--eval-episodes", type=positive_int, default=10, help="evaluation episodes per run (10)")
    sweep.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=10_000,
        help="checkpoint period, env steps (default 10000): a killed run resumes from the last one",
    )
    sweep.add_argument("--out", type=out_dir_arg, default=Path("runs"), help="output folder (default ./runs)")
    sweep.add_argument("--experiment", default="sweep", help="experiment name: the folder under --out (sweep)")
    sweep.add_argument(
        "--env-kwarg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="env constructor kwarg for every env (repeatable; VALUE parsed as JSON)",
    )
    sweep.add_argument(
        "--hyperparam",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="learner kwarg laid over the env preset, e.g. n_steps=256 (repeatable; JSON value)",
    )
    sweep.add_argument("--overwrite", action="store_true", help="train every run again from scratch")
    sweep.add_argument("--no-report", action="store_true", help="write the tables only (no figures, report.html)")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_tensorboard_option(sweep)
    add_sim_options(sweep)
    _add_report_options(sweep)


def add_report_parser(sub: Any) -> None:
    """Add the ``report`` subcommand."""
    report = sub.add_parser(
        "report",
        help="tables, figures, report.md and a self-contained report.html from a folder of runs",
        description="Read every run under RUNS_DIR and write summary.csv (one row per run), tax.csv, headline.csv, "
        "breakdown.csv, figures/*.png, report.md and report.html: dose-response, Pareto fronts, tax by "
        "task and constraint type, learning curves and the break-even violation price.",
    )
    report.add_argument(
        "runs_dir", type=existing_dir_arg, metavar="RUNS_DIR", help="an experiment folder (or any folder of runs)"
    )
    report.add_argument("--out", type=out_dir_arg, default=None, help="where to write (default: RUNS_DIR)")
    _add_report_options(report)
    add_reference_options(report)


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--value-per-success",
        type=nonneg_float,
        default=None,
        metavar="X",
        help="value of one success (or one unit of return for return-scored envs); default 1",
    )
    parser.add_argument(
        "--price-per-violation",
        type=nonneg_float,
        default=None,
        metavar="Y",
        help="price of one violating step: adds each arm's net value X·C − Y·K and whether safety pays",
    )
    parser.add_argument(
        "--aggregate",
        choices=("iqm", "mean"),
        default="iqm",
        help="aggregate over seeds for τ, g and the break-even price (default iqm)",
    )
    parser.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument(
        "--protocol",
        choices=("deterministic", "stochastic"),
        default="deterministic",
        help="evaluation protocol of the headline tables and figures: the deterministic policy (as deployed; "
        "default) or the stochastic one (as trained); tax_by_protocol.csv holds both",
    )


def _options(args: argparse.Namespace) -> Any:
    from taxbench.experiments.analysis.report import ReportOptions

    return ReportOptions(
        value_per_success=args.value_per_success,
        price_per_violation=args.price_per_violation,
        aggregate=args.aggregate,
        n_boot=args.n_boot,
        protocol=getattr(args, "protocol", "deterministic"),
    ).validate()


#: Columns of the console tables (the full tables are in tax.csv and the report).
_CONSOLE_COLUMNS = frozenset(
    {
        "env",
        "arm",
        "intensity",
        "dose",
        "seeds",
        "tax τ",
        "feasible",
        "τ_constraint",
        "τ_learner",
        "converged",
        "safety gain g",
        "tax τ [95% CI]",
        "safety gain g [95% CI]",
        "pays?",
        "envs",
        "paired runs",
    }
)


#: Console columns kept whole (the numbers wrap or shrink instead).
_NO_WRAP = frozenset({"env", "arm", "intensity", "feasible"})
#: Marks of the tax labels in the console table, in order of first appearance.
_LABEL_MARKS = ("*", "†", "‡", "§")


def _print_table(title: str, header: list[str], rows: list[list[str]], console: Console) -> None:
    """The :data:`_CONSOLE_COLUMNS` of one table (nothing when it has no rows)."""
    if not rows:
        return
    keep = [i for i, h in enumerate(header) if h in _CONSOLE_COLUMNS]
    table = Table(title=title)
    for i in keep:
        table.add_column(header[i], justify="left" if i < 3 else "right", no_wrap=header[i] in _NO_WRAP)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    console.print(table)


def print_headline(data: Any, console: Console) -> None:
    """The per-env tax table with its label legend, then the headline table (averaged over envs), on the console."""
    from taxbench.experiments.analysis.honest_cells import label_note
    from taxbench.experiments.analysis.report_html import cells_table, fmt_ci, headline_table

    legend: dict[str, str] = {}  # a cell's tax label → its mark in the console table (the files spell it out)
    cells_header, cells_rows = cells_table(data)
    tax_column = cells_header.index("tax τ")
    for row, cell in zip(cells_rows, data.cells, strict=True):
        label = cell.get("tax_label", "tax")
        if label != "tax":
            mark = legend.setdefault(label, _LABEL_MARKS[len(legend) % len(_LABEL_MARKS)])
            row[tax_column] = f"{fmt_ci(cell, 'tax')} {mark}"
    _print_table("alignment tax per env", cells_header, cells_rows, console)
    for label, mark in legend.items():
        console.print(f"{mark} {label_note(label)}", highlight=False)
    _print_table("headline: mean over envs", *headline_table(data), console)
    notes = sorted({c["note"] for c in data.cells if c["note"]})
    for note in notes:
        console.print(f"note: {note}", highlight=False)


def _sim_fields(args: argparse.Namespace) -> dict[str, Any]:
    """``sim`` and ``worlds`` of the sweep, every env × arm checked (one line and exit 2 before any run)."""
    fields: dict[str, Any] = {}
    for env_id in args.envs:
        for arm in args.arms:
            settings = sim_settings(args, env_id, arm)
            fields = {"sim": settings["sim"], "worlds": settings.get("n_envs")}
    return fields


def cmd_sweep(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """Run a sweep; exit 1 when a run failed (its status.json says why), 0 otherwise."""
    from taxbench.experiments.analysis.report import analyse, build_report, write_tables
    from taxbench.experiments.cli.options import UsageError, parse_env_kwargs
    from taxbench.experiments.cli.run_options import check_env_kwargs
    from taxbench.experiments.runs.sweep import SweepSpec, describe, run_sweep, sweep_jobs

    options = _options(args)
    env_kwargs = parse_env_kwargs(args.env_kwarg)
    hyperparams = parse_env_kwargs(args.hyperparam)
    for env_id in args.envs:
        check_env_kwargs(env_id, env_kwargs)
    if args.ray_address and args.backend != "ray":
        raise UsageError("--ray-address needs --backend ray")
    spec = SweepSpec(
        envs=tuple(args.envs),
        arms=tuple(args.arms),
        intensities=tuple(args.intensities),
        seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)),
        steps=args.steps,
        experiment=args.experiment,
        out=args.out,
        n_envs=args.n_envs,
        hyperparams=hyperparams,
        env_kwargs=env_kwargs,
        device=args.device,
        torch_threads=args.threads,
        eval_episodes=args.eval_episodes,
        checkpoint_every=args.checkpoint_every,
        tensorboard=args.tensorboard,
        **_sim_fields(args),
    ).validate()
    jobs = sweep_jobs(spec)
    check_learners(job.cfg for job in jobs)
    err_console.print(f"{describe(spec, jobs)}, {args.workers} worker(s), backend {args.backend}", highlight=False)
    results = run_sweep(
        spec,
        workers=args.workers,
        backend=args.backend,
        ray_address=args.ray_address,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        console=err_console,
    )
    skipped = sum(bool(r.extra.get("skipped")) for r in results)
    failed = [r for r in results if r.error]
    for result in failed:
        err_console.print(f"run failed: {result.job.directory}: {result.error}", highlight=False, soft_wrap=True)
    folder = Path(args.out) / args.experiment
    if args.no_report:
        data = analyse(folder, options)
        write_tables(data, folder)
    else:
        data, _ = build_report(folder, options)
    print_headline(data, console)
    console.print(
        f"{len(results) - len(failed)} of {len(results)} runs done ({skipped} already done before), "
        f"{len(failed)} failed; summary.csv{'' if args.no_report else ', report.html'} in {folder}",
        highlight=False,
    )
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """Write the report of a folder of runs."""
    from taxbench.experiments.analysis.report import build_report

    reference = args.reference.rows if args.reference else None
    data, paths = build_report(args.runs_dir, _options(args), out=args.out, reference=reference)
    print_headline(data, console)
    if args.reference:
        print_comparison(data, args.reference, console)
    failed = [r for r in data.runs if r["state"] != "done"]
    if failed:
        console.print(
            f"{len(failed)} run(s) not done, left out of the statistics: "
            + ", ".join(f"{r['path']} ({r['state']})" for r in failed[:5]),
            highlight=False,
        )
    folder = paths["report.html"].parent
    written = ", ".join(sorted(p.name for p in paths.values() if p.parent == folder))
    figures = sum(p.parent.name == "figures" for p in paths.values())
    console.print(f"wrote {written} and {figures} figures in {folder}", highlight=False)
    if args.export_reference:
        export_and_print(data, args.export_reference, console)
    return 0
