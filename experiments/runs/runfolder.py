"""Run folders: layout, status files, the progress CSV and finding runs (atomic writes: ``runs/files.py``).

Layout (DESIGN.md §4)::

    <out>/<experiment>/<env>/<arm>-<intensity>/seed<k>/
        config.json  progress.csv  model.zip  checkpoints/  episodes.csv  events.jsonl  status.json

Every file except ``progress.csv`` is written whole through a temporary file in the same
folder and ``os.replace``, so a reader (or a killed writer) never sees half a file.
``progress.csv`` is appended one flushed row at a time and truncated on resume.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Re-exported: every run file is written through them (their home is runs/files.py).
from taxbench.experiments.runs.files import DEFAULT_FILE_MODE as DEFAULT_FILE_MODE
from taxbench.experiments.runs.files import FILE_MODE_ENV_VAR as FILE_MODE_ENV_VAR
from taxbench.experiments.runs.files import atomic_path as atomic_path
from taxbench.experiments.runs.files import atomic_write_csv as atomic_write_csv
from taxbench.experiments.runs.files import atomic_write_json as atomic_write_json
from taxbench.experiments.runs.files import atomic_write_text as atomic_write_text
from taxbench.experiments.runs.files import file_mode as file_mode
from taxbench.experiments.runs.files import read_json as read_json
from taxbench.experiments.runs.files import to_jsonable as to_jsonable

STATES: tuple[str, ...] = ("running", "done", "failed")

STATUS_FILE = "status.json"
CONFIG_FILE = "config.json"
PROGRESS_FILE = "progress.csv"
MODEL_FILE = "model.zip"
EPISODES_FILE = "episodes.csv"
EVENTS_FILE = "events.jsonl"
CHECKPOINT_DIR = "checkpoints"

#: Preferred column order of progress.csv; other keys follow in first-seen order.
PROGRESS_FIELDS: tuple[str, ...] = (
    "steps",
    "episodes",
    "ep_return",
    "ep_cost",
    "ep_length",
    "success_rate",
    "violation_rate",
    "lambda",
    "fps",
    "wall_s",
)


def env_name(env_id: str) -> str:
    """Return a gymnasium id without its namespace: ``taxbench/Ant-v0`` → ``Ant-v0``."""
    return env_id.rsplit("/", 1)[-1]


def run_dir(out: str | os.PathLike[str], experiment: str, env_id: str, arm: str, intensity: str, seed: int) -> Path:
    """Return the folder of one run: ``out/<experiment>/<env>/<arm>-<intensity>/seed<k>/``.

    Args:
        out: Root output folder (e.g. ``runs``).
        experiment: Experiment name.
        env_id: Gymnasium id; its namespace is dropped.
        arm: Learner arm (``ppo``, ``ppo-lag``, ...).
        intensity: Safety-intensity label (``off``, ``d25``, ``strict``, ...).
        seed: Run seed (a non-negative integer).

    Raises:
        ValueError: if a part is empty or contains a path separator.
    """
    parts = {"experiment": experiment, "env": env_name(env_id), "arm": arm, "intensity": intensity}
    for name, value in parts.items():
        if not value or "/" in value or "\\" in value or value in (".", ".."):
            raise ValueError(f"{name} must be a non-empty name without path separators, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return Path(out) / experiment / parts["env"] / f"{arm}-{intensity}" / f"seed{seed}"


# ----------------------------------------------------------------------------- status


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_status(directory: str | os.PathLike[str], state: str, error: str | None = None, **extra: Any) -> dict:
    """Write ``status.json`` in a run folder atomically.

    Args:
        directory: The run folder.
        state: ``running``, ``done`` or ``failed``.
        error: Error message (for ``failed``).
        **extra: Further JSON-ready fields (``summary``, ``traceback``, ``steps``, ...).

    Returns:
        The dict written.

    Raises:
        ValueError: for an unknown state.
    """
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    status: dict[str, Any] = {"state": state, "updated": _now(), "host": socket.gethostname(), "pid": os.getpid()}
    if error is not None:
        status["error"] = error
    status.update(extra)
    atomic_write_json(Path(directory) / STATUS_FILE, status)
    return status


def read_status(directory: str | os.PathLike[str]) -> dict | None:
    """Read ``status.json`` of a run folder.

    Returns:
        The status dict, or None when the folder has no status file.

    Raises:
        ValueError: if the file is not a JSON object with a ``state``.
    """
    path = Path(directory) / STATUS_FILE
    try:
        data = read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable {path}: {exc}") from None
    if not isinstance(data, dict) or "state" not in data:
        raise ValueError(f"{path} has no 'state'")
    return data


# ----------------------------------------------------------------------------- progress.csv


def read_csv_rows(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Read a CSV file with a header into dicts of strings (empty list when missing)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


def _steps_of(row: Mapping[str, Any]) -> float:
    try:
        return float(row.get("steps", "nan"))
    except (TypeError, ValueError):
        return math.nan


class ProgressCsv:
    """Append-only ``progress.csv``: header written once, each row flushed as it comes.

    The column set is fixed by the existing header or, for a new file, by the first row
    (:data:`PROGRESS_FIELDS` first, then other keys in order). Keys outside it are dropped.

    Args:
        path: The CSV file.
        resume_steps: When given, rows with ``steps`` greater than this (and unparsable
            rows, e.g. a line cut by a kill) are removed before appending, so a run resumed
            from a checkpoint at that step writes no duplicate rows. Use 0 to start over.
    """

    def __init__(self, path: str | os.PathLike[str], resume_steps: int | None = None) -> None:
        self.path = Path(path)
        self.fieldnames: list[str] | None = None
        self._fh: Any = None
        self._writer: csv.DictWriter | None = None
        if resume_steps is not None:
            self.truncate(resume_steps)
        existing = self.path.exists() and self.path.stat().st_size > 0
        if existing:
            with open(self.path, encoding="utf-8", newline="") as fh:
                header = next(csv.reader(fh), None)
            self.fieldnames = list(header) if header else None

    def truncate(self, max_steps: int) -> int:
        """Drop rows with ``steps > max_steps`` (rewriting the file atomically).

        Returns:
            The number of rows kept.
        """
        self.close()
        if not self.path.exists():
            return 0
        with open(self.path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            fieldnames = list(reader.fieldnames or [])
            rows = list(reader)
        kept = [r for r in rows if _steps_of(r) <= max_steps and None not in r and None not in r.values()]
        if fieldnames:
            atomic_write_csv(self.path, kept, fieldnames)
        return len(kept)

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row and flush it to disk."""
        if self.fieldnames is None:
            self.fieldnames = [k for k in PROGRESS_FIELDS if k in row] + [k for k in row if k not in PROGRESS_FIELDS]
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists() or self.path.stat().st_size == 0
            self._fh = open(self.path, "a", encoding="utf-8", newline="")
            self._writer = csv.DictWriter(self._fh, fieldnames=self.fieldnames, extrasaction="ignore")
            if new:
                self._writer.writeheader()
        assert self._writer is not None
        self._writer.writerow({k: _csv_value(v) for k, v in row.items()})
        self._fh.flush()

    def rows(self) -> list[dict[str, str]]:
        """Return the rows on disk (strings, as read by ``csv.DictReader``)."""
        if self._fh is not None:
            self._fh.flush()
        return read_csv_rows(self.path)

    def close(self) -> None:
        """Close the file handle (appending again reopens it)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self._writer = None

    def __enter__(self) -> ProgressCsv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _csv_value(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalar → python
    if callable(item) and getattr(value, "ndim", 1) == 0:
        value = item()
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value


# ----------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class RunRecord:
    """One run folder found by :func:`find_runs`."""

    experiment: str
    env: str
    arm: str
    intensity: str
    seed: int
    path: Path
    state: str
    """``running``, ``done``, ``failed``, or ``unreadable`` when status.json cannot be parsed."""


def parse_arm_intensity(name: str, arms: Sequence[str] = ()) -> tuple[str, str]:
    """Split ``<arm>-<intensity>`` (arms may contain ``-``; the longest known arm wins)."""
    for arm in sorted(arms, key=len, reverse=True):
        if name.startswith(arm + "-") and len(name) > len(arm) + 1:
            return arm, name[len(arm) + 1 :]
    arm, _, intensity = name.rpartition("-")
    return (arm, intensity) if arm else (name, "")


def find_runs(root: str | os.PathLike[str]) -> list[RunRecord]:
    """Find every run folder under ``root`` by its ``status.json``.

    ``root`` may be the output folder, an experiment folder or anything below; fields are
    read from ``config.json`` when present, else from the folder names.

    Returns:
        Records sorted by path.
    """
    from taxbench.policies import ARMS

    arms = tuple(ARMS)
    records = []
    for status_path in sorted(Path(root).rglob(STATUS_FILE)):
        folder = status_path.parent
        if folder.parent.name == CHECKPOINT_DIR:
            continue
        try:
            state = (read_status(folder) or {}).get("state", "unreadable")
        except ValueError:
            state = "unreadable"
        records.append(_record(folder, state, arms))
    return records


def _record(folder: Path, state: str, arms: Sequence[str]) -> RunRecord:
    try:
        cfg = read_json(folder / CONFIG_FILE)["config"]
        return RunRecord(
            experiment=str(cfg["experiment"]),
            env=env_name(str(cfg["env_id"])),
            arm=str(cfg["arm"]),
            intensity=str(cfg["intensity"]),
            seed=int(cfg["seed"]),
            path=folder,
            state=state,
        )
    except (OSError, ValueError, KeyError, TypeError):
        pass
    arm, intensity = parse_arm_intensity(folder.parent.name, arms)
    seed_text = folder.name.removeprefix("seed")
    return RunRecord(
        experiment=folder.parents[2].name if len(folder.parents) > 2 else "",
        env=folder.parents[1].name if len(folder.parents) > 1 else "",
        arm=arm,
        intensity=intensity,
        seed=int(seed_text) if seed_text.isdigit() else -1,
        path=folder,
        state=state,
    )
