"""One run to train (a job), what it ended with, and the bookkeeping shared by the local pool and Ray.

A job runs :func:`taxbench.experiments.runs.train.train_run` on its config and folder; a job whose
process died is recorded as failed in its status.json so a rerun with resume continues it.
"""

from __future__ import annotations

import math
import signal
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from taxbench.experiments.runs.config import RunConfig
from taxbench.experiments.runs.runfolder import read_status, write_status


@dataclass
class Job:
    """One run to train: its config, its folder and a short label for the progress bar."""

    cfg: RunConfig
    directory: Path
    label: str


@dataclass
class JobResult:
    """What a job ended with: the run summary, or the error that stopped it."""

    job: Job
    summary: dict[str, Any] | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def progress_text(row: Mapping[str, Any]) -> str:
    """The live numbers of a progress bar from a progress.csv row: training-episode return, cost, λ."""

    def number(key: str, spec: str) -> str:
        value = row.get(key)
        return "–" if value is None or not math.isfinite(float(value)) else format(float(value), spec)

    text = f"R {number('ep_return', '.4g')}  C {number('ep_cost', '.3g')}"
    lam = row.get("lambda")
    return text + (f"  λ {number('lambda', '.3g')}" if lam is not None and math.isfinite(float(lam)) else "")


class _ProgressCallback(BaseCallback):
    """Reports ``num_timesteps`` to a sink at most every ``every_s`` seconds, and each rollout's training numbers.

    The sink is called as ``sink(key, steps)`` and, once per rollout, ``sink(key, steps, text)`` with
    :func:`progress_text` of the run's progress row (the training session calls :meth:`on_metrics`).
    """

    def __init__(self, key: str, sink: Callable[..., None], every_s: float = 0.5) -> None:
        super().__init__()
        self.key, self.sink, self.every_s, self._last = key, sink, every_s, 0.0

    def on_metrics(self, row: Mapping[str, Any]) -> None:
        """One progress.csv row (training episodes of the last rollout): shown beside the bar."""
        self.sink(self.key, int(row.get("steps", self.num_timesteps)), progress_text(row))

    def _on_step(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.sink(self.key, int(self.num_timesteps))
        return True

    def _on_training_end(self) -> None:
        self.sink(self.key, int(self.num_timesteps))


def run_job(job: Job, resume: bool, overwrite: bool, sink: Callable[..., None]) -> dict[str, Any]:
    import torch

    import taxbench.envs  # noqa: F401 - registers the env ids in this process
    from taxbench.experiments.runs.train import train_run

    torch.set_num_threads(job.cfg.torch_threads)
    return train_run(
        job.cfg,
        job.directory,
        resume=resume,
        overwrite=overwrite,
        progress=False,
        callbacks=[_ProgressCallback(job.label, sink)],
    )


def check_existing(jobs: Sequence[Job], resume: bool, overwrite: bool) -> None:
    """Refuse to touch folders holding runs unless the user said ``--resume`` or ``--overwrite``."""
    if resume or overwrite:
        return
    taken = [f"{job.directory} ({status['state']})" for job in jobs if (status := read_status(job.directory))]
    if taken:
        raise FileExistsError(
            f"the output folder already holds {len(taken)} run(s), e.g. {taken[0]}: pass --resume to continue "
            "or reuse them, or --overwrite to train them again"
        )


def guarded(job: Job, call: Callable[[], dict[str, Any]]) -> JobResult:
    try:
        return JobResult(job, summary=call())
    except Exception as exc:
        return JobResult(job, error=f"{type(exc).__name__}: {exc}", extra={"traceback": traceback.format_exc()})


def died(job: Job, exitcode: int | None) -> JobResult:
    """Record a job whose process ended without a result (killed, crashed, out of memory)."""
    if exitcode is not None and exitcode < 0:
        try:
            how = f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    else:
        how = f"exit code {exitcode}"
    return record_failure(job, f"worker process died ({how}) before reporting a result")


def record_failure(job: Job, error: str) -> JobResult:
    """Set a run's status.json to ``failed`` with ``error`` (unless it is ``done``), keeping the steps reached.

    A rerun with resume then continues the run from its newest checkpoint.
    """
    try:
        status = read_status(job.directory) or {}
    except ValueError:
        status = {}
    if status.get("state") != "done":
        keep = {k: v for k, v in status.items() if k in ("steps", "resumed_from")}
        write_status(job.directory, "failed", error=error, **keep)
    return JobResult(job, error=error)
