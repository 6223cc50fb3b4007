"""``taxbench``: the command line. One table, :data:`SUBCOMMANDS`, registers every subcommand.

Every command prints a one-line error and exits 2 on bad input, and never deletes a run unless
``--overwrite`` says so. The handlers live in the ``cli/*_cmds.py`` modules beside this one; they import
the running, analysis and media code they need only when they run, so ``taxbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from taxbench.experiments.cli import bench_cmds, ci_cmds, media_cmds, run_cmds, shield_cmd, sweep_cmds
from taxbench.experiments.cli.options import Parser, UsageError, console, err_console
from taxbench.experiments.runs.runfolder import file_mode


@dataclass(frozen=True)
class Subcommand:
    """One ``taxbench`` subcommand: the function that adds its parser and the handler that runs it."""

    name: str
    add_parser: Callable[[Any], None]
    run: Callable[[argparse.Namespace, Console, Console], int]


#: Every subcommand, in the order ``taxbench --help`` lists them.
SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("envs", run_cmds.add_envs_parser, run_cmds.cmd_envs),
    Subcommand("train", run_cmds.add_train_parser, run_cmds.cmd_train),
    Subcommand("eval", run_cmds.add_eval_parser, run_cmds.cmd_eval),
    Subcommand("pair", run_cmds.add_pair_parser, run_cmds.cmd_pair),
    Subcommand("gate", ci_cmds.add_gate_parser, ci_cmds.cmd_gate),
    Subcommand("check", ci_cmds.add_check_parser, ci_cmds.cmd_check),
    Subcommand("rollout", media_cmds.add_rollout_parser, media_cmds.cmd_rollout),
    Subcommand("view", media_cmds.add_view_parser, media_cmds.cmd_view),
    Subcommand("bench", bench_cmds.add_bench_parser, bench_cmds.cmd_bench),
    Subcommand("sweep", sweep_cmds.add_sweep_parser, sweep_cmds.cmd_sweep),
    Subcommand("report", sweep_cmds.add_report_parser, sweep_cmds.cmd_report),
    Subcommand("shield", shield_cmd.add_shield_parser, shield_cmd.cmd_shield),
)


def build_parser(parser_class: type[argparse.ArgumentParser] = Parser) -> argparse.ArgumentParser:
    """The ``taxbench`` argument parser: one sub-parser per entry of :data:`SUBCOMMANDS`.

    ``parser_class`` decides what a bad argument does: :class:`Parser` prints one line and exits 2 (the
    command line); the Python API passes one that raises ValueError.
    """
    parser = parser_class(prog="taxbench", description="Measure the embodied alignment tax of safe robot learning.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=parser_class)
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    """The error as one line: an OSError names its file and reason; other messages lose their line breaks."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}:{where}"
    return " ".join(str(exc).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``taxbench`` console script."""
    import taxbench.envs  # noqa: F401 - registers the taxbench/ ids before any command builds an env

    args = build_parser().parse_args(argv)
    handler = next(c.run for c in SUBCOMMANDS if c.name == args.command)
    try:
        file_mode()  # a bad TAXBENCH_FILE_MODE is refused before anything is written
        return handler(args, console, err_console)
    except (UsageError, ValueError, OSError) as exc:  # bad input, or a path the user named that cannot be used
        err_console.print(f"taxbench {args.command}: error: {_one_line(exc)}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("taxbench: interrupted; rerun the same command with --resume to continue")
        return 130


if __name__ == "__main__":
    sys.exit(main())
