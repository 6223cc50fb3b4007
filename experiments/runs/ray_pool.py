"""Run jobs as Ray tasks, on an existing cluster or on a Ray instance started here.

Ray is an optional extra (``pip install 'taxbench[ray]'``); nothing imports it unless
``--backend ray`` is asked for. Each run is one task that calls the same ``train_run`` as the
local pool, so it writes the same run folder: on a multi-machine cluster the output folder
must be on storage every node sees. Progress is read back from each run's ``progress.csv``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from taxbench.experiments.runs.jobs import Job, JobResult, record_failure, run_job
from taxbench.experiments.runs.runfolder import PROGRESS_FILE

#: Seconds between two looks at the runs' progress.csv files.
POLL_S = 1.0


def require_ray() -> Any:
    """Import Ray, or raise a ValueError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs Ray: pip install ray (the taxbench extra named ray)") from None
    return ray


def _train_task(job: Job, resume: bool, overwrite: bool) -> dict[str, Any]:
    """Body of one Ray task (progress travels through progress.csv, not through Ray)."""
    return run_job(job, resume, overwrite, lambda *progress: None)


def last_steps(directory: Path) -> int | None:
    """Steps of the last complete row of a run's progress.csv (None when there is none yet)."""
    path = Path(directory) / PROGRESS_FILE
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4096))
            lines = fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines[1:] if len(lines) > 1 else []):
        head = line.split(",", 1)[0]
        if head.isdigit():
            return int(head)
    return None


def _error_text(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # RayTaskError wraps what the task raised
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def run_ray(
    jobs: Sequence[Job],
    *,
    resume: bool,
    overwrite: bool,
    sink: Callable[..., None],
    results: dict[str, JobResult],
    workers: int = 1,
    address: str | None = None,
    init_kwargs: dict[str, Any] | None = None,
) -> None:
    """Run every job as a Ray task (``num_cpus`` = its torch threads) and fill ``results``.

    Args:
        jobs: Runs to train.
        resume: Passed to ``train_run``.
        overwrite: Passed to ``train_run``.
        sink: Called with ``(label, steps)`` as runs progress.
        results: Filled with one :class:`JobResult` per job (label → result).
        workers: CPUs of the Ray instance started here when ``address`` is None.
        address: Existing cluster to connect to (``auto``, ``ray://host:10001``, ...).
        init_kwargs: Extra ``ray.init`` arguments.

    Raises:
        ValueError: if Ray is not installed.
    """
    ray = require_ray()
    if not jobs:
        return
    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        if address is None:
            kwargs.update(num_cpus=workers, include_dashboard=False)
        kwargs.update(init_kwargs or {})
        ray.init(address=address, **kwargs)
        started_here = True
    try:
        task = ray.remote(max_retries=0)(_train_task)
        pending = {
            task.options(num_cpus=job.cfg.torch_threads, name=job.label).remote(job, resume, overwrite): job
            for job in jobs
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in done:
                job = pending.pop(ref)
                try:
                    results[job.label] = JobResult(job, summary=ray.get(ref))
                except Exception as exc:
                    results[job.label] = _failed(job, exc)
            for job in pending.values():
                steps = last_steps(job.directory)
                if steps is not None:
                    sink(job.label, steps)
    finally:
        if started_here:
            ray.shutdown()


def _failed(job: Job, exc: BaseException) -> JobResult:
    """A task that raised (status.json already says why) or whose worker died (we say it)."""
    import ray

    if isinstance(exc, ray.exceptions.RayTaskError):
        return JobResult(job, error=_error_text(exc))
    return record_failure(job, f"Ray worker lost before reporting a result: {_error_text(exc)}")
