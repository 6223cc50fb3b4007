"""``taxbench report --reference FILE`` and ``--export-reference DIR``: the options, their checks and what they print.

``--reference`` is read and checked while the arguments are parsed (a bad file: one line, exit 2, nothing
written); the report then carries the comparison (:mod:`taxbench.experiments.analysis.reference`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NamedTuple

from rich.console import Console
from rich.table import Table

from taxbench.experiments.cli.options import out_dir_arg


class ReferenceFile(NamedTuple):
    """A reference.csv named on the command line, and its checked rows."""

    path: Path
    rows: list[dict[str, str]]


def reference_file_arg(text: str) -> ReferenceFile:
    """Argparse type of ``--reference``: a readable reference.csv with the columns the comparison needs."""
    from taxbench.experiments.analysis.reference import load_reference

    try:
        return ReferenceFile(Path(text), load_reference(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def export_dir_arg(text: str) -> Path:
    """Argparse type of ``--export-reference``: a folder that is or can be made, whose reference.csv (if any) reads."""
    from taxbench.experiments.analysis.reference import REFERENCE_FILE, load_reference

    path = out_dir_arg(text)
    if (path / REFERENCE_FILE).exists():
        try:
            load_reference(path / REFERENCE_FILE)  # merged into: refused now, before the report is written
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return path


def add_reference_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--reference`` and ``--export-reference`` to the ``report`` parser."""
    parser.add_argument(
        "--reference",
        type=reference_file_arg,
        default=None,
        metavar="FILE",
        help="a reference.csv (e.g. one shipped with taxbench): write reference_comparison.csv, print your τ, "
        "τ_constraint, τ_learner, g and feasibility beside the reference's, and add the comparison to the report",
    )
    parser.add_argument(
        "--export-reference",
        type=export_dir_arg,
        default=None,
        metavar="DIR",
        help="write or merge DIR/reference.csv (cells of both protocols) and DIR/runs.csv (one row per run); "
        "the envs of this report replace their rows there, other envs' rows are kept",
    )


def print_comparison(data: Any, reference: ReferenceFile, console: Console) -> None:
    """The report's headline-protocol cells, each on a line above the reference's, and the summary sentences."""
    from taxbench.experiments.analysis.reference_text import SIDE_COLUMNS, comparison_section, side_texts

    protocol = data.options.protocol
    title, sentences, _ = comparison_section(data.reference_comparison, protocol)
    table = Table(title=f"{title}: {reference.path} ({protocol} protocol)")
    for i, name in enumerate(("env", "arm", "intensity", "", *SIDE_COLUMNS)):
        table.add_column(name, justify="left" if i < 4 else "right")
    for row in (r for r in data.reference_comparison if r["protocol"] == protocol):
        table.add_row(row["env"], row["arm"], row["intensity"], "yours", *side_texts(row, "user"))
        missing = ["not in the reference", *[""] * (len(SIDE_COLUMNS) - 1)]
        found = side_texts(row, "reference") if row["reference_found"] else missing
        table.add_row("", "", "", "reference", *found, end_section=True)
    console.print(table)
    for sentence in sentences:
        console.print(sentence, highlight=False)


def export_and_print(data: Any, directory: Path, console: Console) -> None:
    """Export the report's cells and runs into ``directory`` and say what was written."""
    from taxbench.experiments.analysis.reference import export_reference

    done = export_reference(data, directory)
    console.print(
        f"wrote {done.reference_csv} ({done.cells} cells of {', '.join(done.envs)}; {done.kept} rows of other envs "
        f"kept) and {done.runs_csv} ({done.runs} runs)",
        highlight=False,
        soft_wrap=True,
    )
