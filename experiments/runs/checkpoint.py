"""A run's checkpoints: ``checkpoints/step_<steps>.zip`` with a JSON sidecar and the state for an exact resume.

Each checkpoint is three files (four for an off-policy learner), written atomically in this order:

* ``step_<steps>.resume.json``: :mod:`~taxbench.experiments.runs.resume_state` (RNG streams, last observations,
  every world's physics and counters, cost tallies and λ state, metrics tallies), plain JSON;
* ``step_<steps>.replay.npz`` (SAC arms, newest checkpoint only): the replay buffer as plain arrays
  (:mod:`~taxbench.experiments.runs.replay_state`); older checkpoints lose theirs, since a buffer of a 500k-step
  run weighs hundreds of MB, and the final checkpoint keeps none (a finished run trains no further);
* ``step_<steps>.zip``: the learner (weights and optimiser moments, with the JSON sidecar that lets it load
  without unpickling, :func:`~taxbench.experiments.runs.policy_files.save_run_policy`);
* ``step_<steps>.json``: steps and cumulative wall time.

The zip marks a checkpoint. One without a readable ``.resume.json`` (written before it existed, or damaged) is
still resumed, but not exactly: the run then goes on from re-seeded random streams and freshly reset envs. An
off-policy checkpoint without its replay buffer resumes with the rest of its state and an empty buffer (warned).
"""

from __future__ import annotations

import json
import logging
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from taxbench.experiments.runs.replay_state import REPLAY_SUFFIX, replay_path, save_replay_buffer
from taxbench.experiments.runs.resume_state import FORMAT
from taxbench.experiments.runs.runfolder import atomic_path, atomic_write_json, atomic_write_text, read_json
from taxbench.policies.safe_load import save_policy

__all__ = [
    "KEEP_CHECKPOINTS",
    "RESUME_SUFFIX",
    "Checkpoint",
    "CheckpointCallback",
    "checkpoint_path",
    "list_checkpoints",
    "load_newest_checkpoint",
    "read_resume_state",
    "resume_state_path",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

#: Checkpoints kept per run (older ones are deleted); more than one so a corrupt newest one
#: still leaves something to resume from.
KEEP_CHECKPOINTS = 3

#: Suffix of a checkpoint's resume state, beside its zip.
RESUME_SUFFIX = ".resume.json"

_CHECKPOINT_RE = re.compile(r"^step_(\d+)\.zip$")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file, its environment steps and the run's cumulative wall time then (s)."""

    path: Path
    steps: int
    wall_s: float


def checkpoint_path(directory: Path, steps: int) -> Path:
    """Path of the checkpoint taken at ``steps`` in a ``checkpoints/`` folder."""
    return directory / f"step_{steps:012d}.zip"


def resume_state_path(path: Path) -> Path:
    """Path of the resume state beside the checkpoint zip ``path``."""
    return path.with_suffix(RESUME_SUFFIX)


def save_checkpoint(
    model: Any,
    directory: Path,
    steps: int,
    wall_s: float,
    keep: int = KEEP_CHECKPOINTS,
    resume_state: dict[str, Any] | None = None,
    replay: bool = True,
) -> Path:
    """Save ``model`` atomically as a checkpoint (resume state, zip, then a JSON sidecar) and prune old ones.

    Args:
        model: The learner.
        directory: The ``checkpoints/`` folder.
        steps: Environment steps so far.
        wall_s: Cumulative training wall time, s.
        keep: Checkpoints kept (the newest).
        resume_state: From :func:`~taxbench.experiments.runs.resume_state.capture_resume_state`, or None.
        replay: Also save an off-policy learner's replay buffer with its resume state (older checkpoints' buffers
            are deleted either way).

    Returns:
        The checkpoint path.
    """
    path = checkpoint_path(directory, steps)
    if resume_state is not None:
        atomic_write_text(resume_state_path(path), json.dumps(resume_state, allow_nan=False, separators=(",", ":")))
        buffer = getattr(model, "replay_buffer", None)
        if replay and buffer is not None:
            save_replay_buffer(buffer, replay_path(path))
    with atomic_path(path, suffix=".zip") as tmp:
        save_policy(model, tmp)  # + taxbench.json: a resume reads tensors and JSON, never the pickled entry
    atomic_write_json(path.with_suffix(".json"), {"steps": steps, "wall_s": wall_s, "time": time.time()})
    for old in list_checkpoints(directory)[keep:]:
        for stale in (old.path, old.path.with_suffix(".json"), resume_state_path(old.path)):
            stale.unlink(missing_ok=True)
    kept_replay = replay_path(path) if replay else None
    for stale in directory.glob(f"step_*{REPLAY_SUFFIX}"):
        if stale != kept_replay:
            stale.unlink(missing_ok=True)
    return path


def list_checkpoints(directory: Path) -> list[Checkpoint]:
    """Checkpoints in ``directory``, newest (most steps) first; files are not validated."""
    found = []
    if directory.is_dir():
        for path in directory.iterdir():
            match = _CHECKPOINT_RE.match(path.name)
            if match:
                steps, wall_s = int(match.group(1)), 0.0
                try:
                    wall_s = float(read_json(path.with_suffix(".json"))["wall_s"])
                except (OSError, ValueError, KeyError, TypeError):
                    pass
                found.append(Checkpoint(path, steps, wall_s))
    return sorted(found, key=lambda c: c.steps, reverse=True)


def load_newest_checkpoint(directory: Path, load: Callable[[Path], Any]) -> tuple[Any, Checkpoint] | None:
    """Load the newest checkpoint that is a sound zip and that ``load`` accepts.

    Unreadable checkpoints are logged and skipped.

    Returns:
        ``(model, checkpoint)``, or None when no checkpoint can be loaded.
    """
    for ckpt in list_checkpoints(directory):
        try:
            if not zipfile.is_zipfile(ckpt.path):
                raise ValueError("not a zip file")
            with zipfile.ZipFile(ckpt.path) as zf:
                bad = zf.testzip()
            if bad is not None:
                raise ValueError(f"corrupt member {bad}")
            return load(ckpt.path), ckpt
        except Exception as exc:
            log.warning("skipping unreadable checkpoint %s: %s", ckpt.path, exc)
    return None


def read_resume_state(ckpt: Checkpoint) -> dict[str, Any] | None:
    """The checkpoint's resume state, or None (logged) when it is missing or unreadable."""
    path = resume_state_path(ckpt.path)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        log.warning("%s has no resume state: the resumed run will not match an uninterrupted one", ckpt.path.name)
        return None
    except (OSError, ValueError) as exc:
        log.warning("unreadable resume state %s (%s): the resumed run will not be exact", path.name, exc)
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        log.warning("%s is not a %s state: the resumed run will not be exact", path.name, FORMAT)
        return None
    return state


class CheckpointCallback(BaseCallback):
    """Checkpoint every ``every`` steps, between rollouts (after the update, before collecting).

    Checkpoints are taken at a rollout's start, where the weights (and λ) reflect every step
    counted in ``num_timesteps`` and the rollout buffer is about to be refilled, so a resumed run
    repeats no update and skips none, and ``capture`` (the resume state) needs no buffer contents.

    Args:
        directory: The ``checkpoints/`` folder.
        every: Steps between checkpoints.
        last_steps: Steps at the latest checkpoint (or the run's start).
        wall_s: Cumulative training wall time, s.
        capture: Returns the resume state to save with each checkpoint (None: none saved).
    """

    def __init__(
        self,
        directory: Path,
        every: int,
        last_steps: int,
        wall_s: Callable[[], float],
        capture: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.directory, self.every, self.last_steps, self.wall_s = directory, every, last_steps, wall_s
        self.capture = capture

    def _on_rollout_start(self) -> None:
        steps = int(self.model.num_timesteps)
        if steps - self.last_steps >= self.every:
            state = self.capture() if self.capture is not None else None
            save_checkpoint(self.model, self.directory, steps, self.wall_s(), resume_state=state)
            self.last_steps = steps

    def _on_step(self) -> bool:
        return True
