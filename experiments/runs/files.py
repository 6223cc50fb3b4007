"""Files written atomically (temp file in the same folder, fsync, rename) with a configurable mode, and read back.

Every file of a run folder goes through here, so a killed run never leaves half a file and the permission
bits are the same everywhere (:data:`FILE_MODE_ENV_VAR`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

STATES: tuple[str, ...] = ("running", "done", "failed")
#: Environment variable giving the permission bits of every file a run writes, in octal (default ``600``: only
#: the owner reads run files; ``644`` or ``664`` to share run folders with other users or a group).
FILE_MODE_ENV_VAR = "TAXBENCH_FILE_MODE"
DEFAULT_FILE_MODE = 0o600


def file_mode() -> int:
    """The permission bits run files are written with (:data:`FILE_MODE_ENV_VAR`, else 0600).

    Raises:
        ValueError: When the variable is not an octal mode between 000 and 777 (one line, for the CLI's exit 2).
    """
    text = os.environ.get(FILE_MODE_ENV_VAR, "").strip()
    if not text:
        return DEFAULT_FILE_MODE
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise ValueError(f"{FILE_MODE_ENV_VAR} must be an octal file mode such as 600 or 644, got {text!r}")
    return mode


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    Use it for writers that want a file name (``model.save(tmp)``). On an exception the
    temporary file is removed and ``path`` is left as it was.

    Args:
        path: Final destination.
        suffix: Suffix of the temporary name (``.zip`` for SB3, which appends one otherwise).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _fsync_file(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: temp file in the same folder, fsync, replace."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths and tuples to JSON types; NaN and ±inf become None."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return to_jsonable(tolist())
    return str(obj)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> None:
    """Write ``obj`` as strict JSON (see :func:`to_jsonable`) to ``path`` atomically."""
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)
    atomic_write_text(path, text + "\n")


def atomic_write_csv(
    path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]], fieldnames: Sequence[str]
) -> None:
    """Write ``rows`` with a header to ``path`` atomically (missing keys are left empty)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fieldnames), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
