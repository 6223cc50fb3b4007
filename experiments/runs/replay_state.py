"""An off-policy learner's replay buffer as plain arrays (``.npz``), so a resumed SAC run changes nothing.

SB3's own ``save_replay_buffer`` pickles the buffer object; a run folder is data and is never unpickled, so the
buffer is written here as numeric arrays only and read back with ``numpy.load(..., allow_pickle=False)`` into
the buffer of the freshly built learner:

* every array attribute whose first axis is the buffer's capacity (observations, next observations, actions,
  rewards, dones, timeouts, and any a subclass adds, such as ``sac-lag``'s costs), and the same inside dicts
  (a ``DictReplayBuffer``'s observations), cut to the rows written so far;
* ``pos`` and ``full``.

Rows not written yet are zeros in every fresh SB3 buffer, so the restored buffer equals the saved one entirely.
A buffer the saved arrays do not fit (another capacity, shape, dtype or set of fields) raises
:class:`~taxbench.experiments.runs.state_codec.ResumeStateError` before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from taxbench.experiments.runs.files import atomic_path
from taxbench.experiments.runs.state_codec import ResumeStateError

__all__ = ["REPLAY_SUFFIX", "load_replay_buffer", "replay_path", "save_replay_buffer"]

#: Suffix of a checkpoint's replay buffer, beside its zip.
REPLAY_SUFFIX = ".replay.npz"

_POSITION = "__pos__"
_FULL = "__full__"


def replay_path(checkpoint: Path) -> Path:
    """Path of the replay buffer beside the checkpoint zip ``checkpoint``."""
    return checkpoint.with_suffix(REPLAY_SUFFIX)


def _arrays(buffer: Any) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, array)`` for each of the buffer's per-transition arrays (first axis = capacity)."""
    size = int(buffer.buffer_size)
    for name, value in sorted(vars(buffer).items()):
        items = sorted(value.items()) if isinstance(value, dict) else [(None, value)]
        for key, array in items:
            if isinstance(array, np.ndarray) and array.ndim >= 1 and array.shape[0] == size:
                yield (name if key is None else f"{name}/{key}"), array


def _rows(buffer: Any) -> int:
    """Rows written so far (all of them once the buffer has wrapped)."""
    return int(buffer.buffer_size) if bool(buffer.full) else int(buffer.pos)


def save_replay_buffer(buffer: Any, path: Path) -> None:
    """Write ``buffer``'s contents to ``path`` atomically (uncompressed ``.npz``, no pickled objects).

    Args:
        buffer: An SB3 ``ReplayBuffer`` (or subclass, or ``DictReplayBuffer``).
        path: Destination, normally :func:`replay_path` of a checkpoint.
    """
    rows = _rows(buffer)
    arrays = {name: array[:rows] for name, array in _arrays(buffer)}
    arrays[_POSITION] = np.asarray(int(buffer.pos), dtype=np.int64)
    arrays[_FULL] = np.asarray(bool(buffer.full))
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def load_replay_buffer(buffer: Any, path: Path) -> None:
    """Fill the freshly built ``buffer`` with what :func:`save_replay_buffer` wrote to ``path``.

    Raises:
        ResumeStateError: If the file is unreadable or does not fit ``buffer``; ``buffer`` is then unchanged.
    """
    try:
        with np.load(path, allow_pickle=False) as saved:
            data = {name: saved[name] for name in saved.files}
    except (OSError, ValueError) as exc:
        raise ResumeStateError(f"unreadable replay buffer {path.name}: {exc}") from exc
    try:
        position, full = int(data.pop(_POSITION)), bool(data.pop(_FULL))
    except KeyError as exc:
        raise ResumeStateError(f"replay buffer {path.name} lacks {exc}") from exc
    size = int(buffer.buffer_size)
    rows = size if full else position
    targets = dict(_arrays(buffer))
    if set(data) != set(targets):
        raise ResumeStateError(f"replay buffer {path.name} holds {sorted(data)}, the learner's has {sorted(targets)}")
    if not 0 <= position < size:
        raise ResumeStateError(f"replay buffer {path.name}: position {position} outside a buffer of {size}")
    for name, target in targets.items():
        array = data[name]
        if array.dtype != target.dtype or array.shape != (rows, *target.shape[1:]):
            raise ResumeStateError(
                f"replay buffer {path.name}: {name} is {array.dtype}{list(array.shape)}, "
                f"the learner needs {target.dtype}{[rows, *target.shape[1:]]}"
            )
    for name, target in targets.items():
        target[:rows] = data[name]
    buffer.pos, buffer.full = position, full
