"""Shipped reference results: export a report's cells and runs, read them back, compare a user's cells, render Markdown.

A reference folder holds two files, each merged per env (an export replaces the rows of the envs it
carries and keeps every other env's rows):

* ``reference.csv``: one row per env × constrained arm × intensity × protocol (:data:`REFERENCE_COLUMNS`):
  the values of the report's ``tax_by_protocol.csv`` plus the training budget of the runs (env steps)
  and the package versions they were trained with;
* ``runs.csv``: the report's ``summary.csv`` rows of those envs, ``path`` starting at the env folder
  (``<env>/<arm>-<intensity>/seed<k>``) so that it names no local folder.

:func:`compare_to_reference` puts a user's cells beside the reference's (``reference_comparison.csv`` and
the report's "Against the reference" section, written by :mod:`~taxbench.experiments.analysis.reference_text`,
which also renders README's results table).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taxbench.experiments.analysis.report_data import SUMMARY_FIELDS, ReportData
from taxbench.experiments.analysis.runtable import to_float
from taxbench.experiments.metrics.feasibility import PROTOCOLS
from taxbench.experiments.runs.runfolder import CONFIG_FILE, atomic_write_csv, read_csv_rows, read_json
from taxbench.experiments.runs.sweep import baseline_arm, intensity_rank

REFERENCE_FILE = "reference.csv"
RUNS_FILE = "runs.csv"
COMPARISON_FILE = "reference_comparison.csv"

#: Columns of reference.csv. ``steps`` is the training budget per run (env steps), ``cost_limit`` the
#: constrained arm's d (cost per episode), ``versions`` the runs' package versions.
REFERENCE_COLUMNS: tuple[str, ...] = (
    "env",
    "arm",
    "intensity",
    "dose",
    "cost_limit",
    "protocol",
    "steps",
    "n_pairs",
    "seeds",
    "capability_metric",
    "capability_unc",
    "capability_safe",
    "tax",
    "tax_low",
    "tax_high",
    "tau_constraint",
    "tau_constraint_low",
    "tau_constraint_high",
    "tau_learner",
    "tau_learner_low",
    "tau_learner_high",
    "c_feasible_source",
    "safety_gain",
    "safety_gain_low",
    "safety_gain_high",
    "feasible",
    "feasible_seeds",
    "constraint_bound",
    "converged",
    "tax_label",
    "versions",
)

#: One row per env × arm × intensity × protocol.
KEY_COLUMNS: tuple[str, ...] = ("env", "arm", "intensity", "protocol")
#: Estimates compared point and CI (``<name>``, ``<name>_low``, ``<name>_high``).
ESTIMATES: tuple[str, ...] = ("tax", "tau_constraint", "tau_learner", "safety_gain")
#: Text values compared as they are.
COMPARED_TEXT: tuple[str, ...] = ("feasible", "feasible_seeds", "tax_label", "c_feasible_source", "steps", "n_pairs")
#: Suffixes of an estimate's point, low and high columns.
CI_PARTS: tuple[str, ...] = ("", "_low", "_high")
#: Columns a file must have to be read as a reference.
REQUIRED_COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS,
    *(f"{name}{part}" for name in ESTIMATES for part in CI_PARTS),
    *COMPARED_TEXT,
)
#: Columns of reference_comparison.csv.
COMPARISON_COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS,
    "reference_found",
    *(
        f"{side}_{name}"
        for name in (*(e + p for e in ESTIMATES for p in CI_PARTS), *COMPARED_TEXT)
        for side in ("user", "reference")
    ),
)
#: Packages named in ``versions``, in order.
VERSION_PACKAGES: tuple[str, ...] = ("torch", "mujoco", "stable_baselines3", "gymnasium", "numpy")


# ----------------------------------------------------------------------------- values


def _text(value: Any) -> str:
    """A value as the report's CSV files write it: NaN and None empty, anything else ``str``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def whole_text(value: Any) -> str:
    """A whole number without ``.0`` (``4096.0`` → ``4096``); other values as :func:`_text`."""
    number = to_float(value)
    return str(int(number)) if math.isfinite(number) and number == int(number) else _text(value)


def _joined(values: Iterable[str]) -> str:
    """The distinct non-empty values, in first-seen order, joined with `` | ``."""
    return " | ".join(dict.fromkeys(v for v in values if v))


def package_versions(config_files: Iterable[Path]) -> str:
    """``torch 2.13.0+cpu; mujoco 4.0.1; …`` from the runs' config.json provenance (distinct sets joined by `` | ``).

    A config without provenance (or a missing file) adds nothing.
    """
    found = []
    for path in config_files:
        try:
            packages = dict((read_json(path).get("provenance") or {}).get("packages") or {})
        except (OSError, ValueError, AttributeError, TypeError):
            continue
        found.append("; ".join(f"{name} {packages[name]}" for name in VERSION_PACKAGES if packages.get(name)))
    return _joined(found)


def _cell_runs(cell: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The done runs a cell pairs: the constrained arm at its intensity and its baseline, on the cell's seeds."""
    seeds = set(str(cell.get("seeds", "")).split())
    sides = {(cell["arm"], cell["intensity"]), (baseline_arm(cell["arm"]), "off")}
    return [
        r
        for r in runs
        if r.get("state") == "done"
        and r.get("experiment") == cell.get("experiment")
        and r.get("env") == cell["env"]
        and (r["arm"], r["intensity"]) in sides
        and str(r["seed"]) in seeds
    ]


def _path_from_env(path: str, env: str) -> str:
    """``<env>/<arm>-<intensity>/seed<k>``: the run's path from its env folder on."""
    parts = Path(str(path)).parts
    starts = [i for i, part in enumerate(parts) if part == env]
    return "/".join(parts[starts[-1] :] if starts else parts[-2:])


# ----------------------------------------------------------------------------- export


@dataclass(frozen=True)
class ReferenceExport:
    """What :func:`export_reference` wrote: the two files, the envs replaced, and row counts."""

    reference_csv: Path
    runs_csv: Path
    envs: tuple[str, ...]
    cells: int
    """Rows of ``envs`` written to reference.csv."""
    runs: int
    """Rows of ``envs`` written to runs.csv."""
    kept: int
    """Rows of other envs kept in reference.csv."""


def reference_rows(
    cells: Iterable[Mapping[str, Any]], runs: Sequence[Mapping[str, Any]], runs_root: Path
) -> list[dict[str, str]]:
    """reference.csv rows of ``cells`` (report cells or tax_by_protocol.csv rows), budget and versions from ``runs``.

    Raises:
        ValueError: When two cells share env, arm, intensity and protocol (two experiments of one env).
    """
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    for cell in cells:
        members = _cell_runs(cell, runs)
        row = {column: _text(cell.get(column)) for column in REFERENCE_COLUMNS}
        row["cost_limit"] = _joined(_text(to_float(r.get("cost_limit"))) for r in members if r["arm"] == cell["arm"])
        row["steps"] = _joined(whole_text(r.get("steps")) for r in members)
        row["versions"] = package_versions(runs_root / str(r["path"]) / CONFIG_FILE for r in members)
        key = tuple(row[k] for k in KEY_COLUMNS)
        if key in rows:
            raise ValueError(f"{' '.join(key)} comes from more than one experiment: export one experiment's folder")
        rows[key] = row
    return list(rows.values())


def _report_tables(
    source: ReportData | str | Path, runs_root: str | Path | None
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]], Path]:
    """Cells of both protocols, run rows and the runs' root, from a ReportData or a report folder's CSV files."""
    if isinstance(source, ReportData):
        cells = [c for p in PROTOCOLS for c in source.cells_by_protocol.get(p, [])]
        return cells, list(source.runs), Path(runs_root or source.root)
    folder = Path(source)
    if not ((folder / "tax_by_protocol.csv").is_file() and (folder / "summary.csv").is_file()):
        raise ValueError(f"{folder} has no tax_by_protocol.csv and summary.csv: run `taxbench report` on it first")
    return (
        read_csv_rows(folder / "tax_by_protocol.csv"),
        read_csv_rows(folder / "summary.csv"),
        Path(runs_root or folder),
    )


def cell_order(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Sort key of reference rows: env, arm, intensity (laxest first), protocol."""
    return (row["env"], row["arm"], intensity_rank(row["intensity"]), row["intensity"], row["protocol"])


def _run_order(row: Mapping[str, str]) -> tuple[Any, ...]:
    return (row["env"], row["arm"], intensity_rank(row["intensity"]), row["intensity"], to_float(row["seed"]))


def _merged(
    old: Sequence[Mapping[str, str]], new: Sequence[dict[str, str]], envs: set[str], order: Callable
) -> tuple[list[Mapping[str, str]], int]:
    """``new`` plus the rows of ``old`` whose env is not in ``envs``, sorted; and how many were kept."""
    kept = [r for r in old if r.get("env") not in envs]
    return sorted([*kept, *new], key=order), len(kept)


def export_reference(
    source: ReportData | str | Path, out_dir: str | Path, runs_root: str | Path | None = None
) -> ReferenceExport:
    """Write or merge ``out_dir/reference.csv`` (cells of both protocols) and ``out_dir/runs.csv`` (per-run rows).

    Args:
        source: A report's data, or a folder holding the report's tax_by_protocol.csv and summary.csv.
        out_dir: The reference folder (created if missing).
        runs_root: Where the runs' ``path`` starts, for their config.json (default: the report's root, or
            ``source`` when it is a folder).

    Returns:
        What was written. The rows of every env in ``source`` replace that env's rows already in the files.

    Raises:
        ValueError: When ``source`` holds no report, an existing reference.csv is unreadable, or an env
            comes from more than one experiment.
    """
    cells, runs, root = _report_tables(source, runs_root)
    new_cells = reference_rows(cells, runs, root)
    envs = {str(c["env"]) for c in cells} | {str(r["env"]) for r in runs}
    terms = sorted({k for r in runs for k in r if k.startswith("cost_") and k != "cost_limit"})
    new_runs = [
        {**{k: _text(r.get(k)) for k in (*SUMMARY_FIELDS, *terms)}, "path": _path_from_env(r["path"], str(r["env"]))}
        for r in runs
    ]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    old_cells = load_reference(out / REFERENCE_FILE) if (out / REFERENCE_FILE).exists() else []
    cell_rows, kept = _merged(old_cells, new_cells, envs, cell_order)
    run_rows, _ = _merged(read_csv_rows(out / RUNS_FILE), new_runs, envs, _run_order)
    terms = sorted({k for r in run_rows for k in r if k.startswith("cost_") and k != "cost_limit"})
    atomic_write_csv(out / REFERENCE_FILE, cell_rows, REFERENCE_COLUMNS)
    atomic_write_csv(out / RUNS_FILE, run_rows, [*SUMMARY_FIELDS, *terms])
    return ReferenceExport(out / REFERENCE_FILE, out / RUNS_FILE, tuple(sorted(envs)), len(new_cells), len(runs), kept)


# ----------------------------------------------------------------------------- read, compare


def load_reference(path: str | Path) -> list[dict[str, str]]:
    """Read and check a reference.csv: its rows, as strings.

    Raises:
        ValueError: (one line) when the file is missing, not a CSV text file, lacks a column of
            :data:`REQUIRED_COLUMNS`, has no rows, an unknown protocol or the same cell twice.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"reference {str(path)!r} " + ("is a folder, not a CSV file" if path.exists() else "does not exist")
        )
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            header, rows = list(reader.fieldnames or []), list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"reference {str(path)!r} is not a CSV text file ({' '.join(str(exc).split())})") from None
    except OSError as exc:
        raise ValueError(f"cannot read reference {str(path)!r}: {exc.strerror}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise ValueError(f"reference {str(path)!r} is not a taxbench reference.csv: no column {shown}")
    if not rows:
        raise ValueError(f"reference {str(path)!r} has no rows")
    seen: set[tuple[str, ...]] = set()
    for line, row in enumerate(rows, start=2):
        if row.get("protocol") not in PROTOCOLS:
            raise ValueError(f"reference {str(path)!r} line {line}: unknown protocol {row.get('protocol')!r}")
        key = tuple(str(row.get(k)) for k in KEY_COLUMNS)
        if key in seen:
            raise ValueError(f"reference {str(path)!r} line {line}: {' '.join(key)} appears twice")
        seen.add(key)
    return rows


def _user_steps(cell: Mapping[str, Any]) -> str:
    """A cell's training budget (env steps) from its paired runs, else its own ``steps`` value."""
    pairs = cell.get("pairs") or {}
    return _joined(whole_text(run.get("steps")) for pair in pairs.values() for run in pair) or whole_text(
        cell.get("steps")
    )


def compare_to_reference(
    cells_by_protocol: Mapping[str, Sequence[Mapping[str, Any]]], reference_rows: Sequence[Mapping[str, str]]
) -> list[dict[str, Any]]:
    """One row per user cell (every protocol): ``user_<x>`` beside ``reference_<x>`` (:data:`COMPARISON_COLUMNS`).

    Estimates are floats (NaN where missing); ``reference_found`` is False, and every reference value
    empty, where the reference has no row for the cell's env, arm, intensity and protocol.
    """
    index = {tuple(str(r.get(k, "")) for k in KEY_COLUMNS): r for r in reference_rows}
    out = []
    for protocol, cells in cells_by_protocol.items():
        for cell in cells:
            key = (str(cell["env"]), str(cell["arm"]), str(cell["intensity"]), str(cell.get("protocol") or protocol))
            found = index.get(key)
            row: dict[str, Any] = {**dict(zip(KEY_COLUMNS, key, strict=True)), "reference_found": found is not None}
            for side, values in (("user", cell), ("reference", found or {})):
                row.update({f"{side}_{e}{p}": to_float(values.get(e + p)) for e in ESTIMATES for p in CI_PARTS})
                row.update({f"{side}_{name}": _text(values.get(name)) for name in COMPARED_TEXT})
                row[f"{side}_n_pairs"] = whole_text(values.get("n_pairs"))
            row["user_steps"] = _user_steps(cell)
            out.append(row)
    return out


def write_comparison(rows: Sequence[Mapping[str, Any]], out_dir: str | Path) -> Path:
    """Write ``reference_comparison.csv`` (NaN as empty) into ``out_dir``; returns its path."""
    path = Path(out_dir) / COMPARISON_FILE
    atomic_write_csv(path, [{k: _text(v) for k, v in r.items()} for r in rows], COMPARISON_COLUMNS)
    return path
