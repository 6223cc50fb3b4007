"""Train many runs (a pair of arms over seeds) on a local process pool, with live progress bars."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from stable_baselines3.common.callbacks import BaseCallback
from taxbench.experiments.config import RunConfig
from taxbench.experiments.metrics import pair_summary
from taxbench.experiments.runfolder import atomic_write_csv, atomic_write_json, read_status, run_dir

UNCONSTRAINED_ARM = "ppo"
CONSTRAINED_ARM = "ppo-lag"


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


class _ProgressCallback(BaseCallback):
    """Reports ``num_timesteps`` to a sink at most every ``every_s`` seconds."""

    def __init__(self, key: str, sink: Callable[[str, int], None], every_s: float = 0.5) -> None:
        super().__init__()
        self.key, self.sink, self.every_s, self._last = key, sink, every_s, 0.0

    def _on_step(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.sink(self.key, int(self.num_timesteps))
        return True

    def _on_training_end(self) -> None:
        self.sink(self.key, int(self.num_timesteps))


def _run_job(job: Job, resume: bool, overwrite: bool, sink: Callable[[str, int], None]) -> dict[str, Any]:
    import taxbench.envs  # noqa: F401 - registers the env ids in this process
    import torch
    from taxbench.experiments.train import train_run

    torch.set_num_threads(job.cfg.torch_threads)
    return train_run(job.cfg, job.directory, resume=resume, overwrite=overwrite, progress=False,
                     callbacks=[_ProgressCallback(job.label, sink)])


def _queue_sink(progress_queue: Any) -> Callable[[str, int], None]:
    def sink(key: str, steps: int) -> None:
        progress_queue.put((key, steps))

    return sink


def _worker(job: Job, resume: bool, overwrite: bool, progress_queue: Any) -> dict[str, Any]:
    return _run_job(job, resume, overwrite, _queue_sink(progress_queue))


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


def run_jobs(
    jobs: Sequence[Job], *, workers: int = 1, resume: bool = False, overwrite: bool = False,
    progress: bool = True, console: Console | None = None,
) -> list[JobResult]:
    """Train every job (``workers`` at a time), show one progress bar per run, never stop on a failure.

    A job that raises is recorded (its status.json says ``failed`` with the error) and the
    others go on; the results list keeps the jobs' order.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    check_existing(jobs, resume, overwrite)
    console = console or Console(stderr=True)
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    results: dict[str, JobResult] = {}
    with Progress(*columns, console=console, disable=not progress, transient=False) as bars:
        tasks = {job.label: bars.add_task(job.label, total=job.cfg.steps) for job in jobs}

        def sink(key: str, steps: int) -> None:
            bars.update(tasks[key], completed=min(steps, bars.tasks[tasks[key]].total or steps))

        if workers == 1:
            for job in jobs:
                results[job.label] = _guarded(job, lambda j=job: _run_job(j, resume, overwrite, sink))
        else:
            _run_pool(jobs, workers, resume, overwrite, sink, results)
    return [results[job.label] for job in jobs]


def _guarded(job: Job, call: Callable[[], dict[str, Any]]) -> JobResult:
    try:
        return JobResult(job, summary=call())
    except Exception as exc:
        return JobResult(job, error=f"{type(exc).__name__}: {exc}", extra={"traceback": traceback.format_exc()})


def _run_pool(jobs: Sequence[Job], workers: int, resume: bool, overwrite: bool,
              sink: Callable[[str, int], None], results: dict[str, JobResult]) -> None:
    context = mp.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        progress_queue = manager.Queue()
        pending: dict[Future, Job] = {pool.submit(_worker, job, resume, overwrite, progress_queue): job for job in jobs}
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(progress_queue, sink)
            for future in done:
                job = pending.pop(future)
                results[job.label] = _guarded(job, future.result)
        _drain(progress_queue, sink)


def _drain(progress_queue: Any, sink: Callable[[str, int], None]) -> None:
    while True:
        try:
            sink(*progress_queue.get_nowait())
        except queue_module.Empty:
            return


def pair_jobs(base: RunConfig, seeds: Sequence[int], out: Path) -> list[Job]:
    """An unconstrained and a constrained run per seed, identical but for the learner."""
    jobs = []
    for arm in (UNCONSTRAINED_ARM, CONSTRAINED_ARM):
        intensity = "off" if arm == UNCONSTRAINED_ARM else f"d{base.cost_limit:g}"
        for seed in seeds:
            cfg = RunConfig.from_dict({**base.to_dict(), "arm": arm, "seed": int(seed), "intensity": intensity})
            cfg.validate()
            directory = run_dir(out, cfg.experiment, cfg.env_id, arm, intensity, int(seed))
            jobs.append(Job(cfg, directory, f"{arm} seed {seed}"))
    return jobs


def summarize_pair(results: Sequence[JobResult]) -> dict[str, Any]:
    """Paired alignment tax, safety gain and capability loss from the finished runs."""
    finished = [r for r in results if r.summary is not None]
    unc = [{**r.summary, "seed": r.job.cfg.seed} for r in finished if r.job.cfg.arm == UNCONSTRAINED_ARM]
    safe = [{**r.summary, "seed": r.job.cfg.seed} for r in finished if r.job.cfg.arm == CONSTRAINED_ARM]
    return pair_summary(unc, safe)


def write_pair_outputs(results: Sequence[JobResult], summary: dict[str, Any], folder: Path) -> None:
    """``summary.csv`` (one row per run) and ``pair.json`` (the paired estimates) in the experiment folder."""
    rows = []
    for result in results:
        cfg = result.job.cfg
        row = {"env": cfg.env_id, "arm": cfg.arm, "intensity": cfg.intensity, "seed": cfg.seed,
               "cost_limit": cfg.cost_limit, "steps": cfg.steps, "state": "done" if result.summary else "failed",
               "path": str(result.job.directory), "error": result.error or ""}
        row.update({k: v for k, v in (result.summary or {}).items() if not isinstance(v, dict | list)})
        rows.append(row)
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    atomic_write_csv(folder / "summary.csv", rows, fieldnames)
    atomic_write_json(folder / "pair.json", {k: (v.to_dict() if hasattr(v, "to_dict") else v)
                                             for k, v in summary.items()})
