"""The ``taxbench`` command line: :func:`main` is the console script; :mod:`.main` holds the subcommand table."""

from taxbench.experiments.cli.main import SUBCOMMANDS, build_parser, main

__all__ = ["SUBCOMMANDS", "build_parser", "main"]
