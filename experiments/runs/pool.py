"""Train many runs (a pair of arms over seeds, or a sweep) on a local process pool or Ray, with live progress bars.

The local pool starts one process per run, ``workers`` at a time (forked from a server that has
already imported torch and SB3), so a run that raises, crashes or is killed is recorded as
failed and takes no other run with it.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_connections
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from taxbench.experiments.runs.jobs import Job, JobResult, check_existing, died, guarded, run_job
from taxbench.experiments.runs.runfolder import read_status

#: Where runs can execute: ``local`` (process pool on this machine) or ``ray`` (Ray tasks).
BACKENDS = ("local", "ray")


def _child(job: Job, resume: bool, overwrite: bool, conn: Connection) -> None:
    """Body of one pool process: train, sending ``(kind, label, payload)`` messages to the parent."""

    def sink(key: str, steps: int, text: str | None = None) -> None:
        conn.send(("progress", key, (steps, text)))

    try:
        conn.send(("done", job.label, run_job(job, resume, overwrite, sink)))
    except BaseException as exc:  # report everything, KeyboardInterrupt included, then exit
        conn.send(("failed", job.label, (f"{type(exc).__name__}: {exc}", traceback.format_exc())))
    finally:
        conn.close()


def run_jobs(
    jobs: Sequence[Job],
    *,
    workers: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    console: Console | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    ray_init_kwargs: dict[str, Any] | None = None,
) -> list[JobResult]:
    """Train every job (``workers`` at a time), show one progress bar per run, never stop on a failure.

    A job that raises, or whose process dies, is recorded (its status.json says ``failed``
    with the error) and the others go on; the results list keeps the jobs' order. With
    ``resume``, runs already ``done`` are returned from their status.json without starting
    a process.

    Args:
        jobs: Runs to train (labels must be unique).
        workers: Runs at once (local backend; also the CPUs of a Ray instance started here).
        resume: Continue interrupted or failed runs from their checkpoint; reuse finished ones.
        overwrite: Delete existing runs and train them again.
        progress: Show the progress bars.
        console: Where the bars go (default: stderr).
        backend: ``local`` (one spawned process per run) or ``ray`` (one Ray task per run;
            see :mod:`taxbench.experiments.runs.ray_pool`).
        ray_address: Address of an existing Ray cluster (``auto``, ``ray://host:10001``, ...);
            None starts a local Ray instance.
        ray_init_kwargs: Extra ``ray.init`` arguments (e.g. ``runtime_env``).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if len({job.label for job in jobs}) != len(jobs):
        raise ValueError("job labels must be unique")
    check_existing(jobs, resume, overwrite)
    console = console or Console(stderr=True)
    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[live]}"),
    )
    results: dict[str, JobResult] = {}
    with Progress(*columns, console=console, disable=not progress, transient=False) as bars:
        # a run's clock starts when its first progress arrives; until then it is "queued"
        tasks = {job.label: bars.add_task(job.label, total=job.cfg.steps, start=False, live="queued") for job in jobs}

        def sink(key: str, steps: int, text: str | None = None) -> None:
            task = bars.tasks[tasks[key]]
            if not task.started:
                bars.start_task(tasks[key])
            live = text if text is not None else ("" if task.fields.get("live") == "queued" else task.fields["live"])
            bars.update(tasks[key], completed=min(steps, task.total or steps), live=live)

        todo = []
        for job in jobs:
            status = read_status(job.directory) if resume and not overwrite else None
            if status is not None and status["state"] == "done":
                results[job.label] = JobResult(job, summary=dict(status.get("summary", {})), extra={"skipped": True})
                sink(job.label, job.cfg.steps)
            else:
                todo.append(job)
        if backend == "ray":
            from taxbench.experiments.runs.ray_pool import run_ray

            run_ray(
                todo,
                resume=resume,
                overwrite=overwrite,
                sink=sink,
                results=results,
                workers=workers,
                address=ray_address,
                init_kwargs=ray_init_kwargs,
            )
        elif workers == 1:
            for job in todo:
                results[job.label] = guarded(job, lambda j=job: run_job(j, resume, overwrite, sink))
        else:
            _run_pool(todo, workers, resume, overwrite, sink, results)
    return [results[job.label] for job in jobs]


#: Modules the fork server imports once, so each run's process starts without re-importing torch and SB3.
_PRELOAD = ["taxbench.envs", "taxbench.experiments.runs.train", "taxbench.experiments.runs.jobs"]


def _pool_context() -> Any:
    """A ``forkserver`` context preloaded with the training stack where the platform has one, else ``spawn``."""
    if "forkserver" in mp.get_all_start_methods():
        context = mp.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context
    return mp.get_context("spawn")


def _run_pool(
    jobs: Sequence[Job],
    workers: int,
    resume: bool,
    overwrite: bool,
    sink: Callable[..., None],
    results: dict[str, JobResult],
) -> None:
    """One process per job, ``workers`` at a time; each reports through its own pipe."""
    context = _pool_context()
    waiting = list(jobs)
    running: dict[Connection, tuple[Job, Any]] = {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                job = waiting.pop(0)
                reader, writer = context.Pipe(duplex=False)
                process = context.Process(target=_child, args=(job, resume, overwrite, writer), name=job.label)
                process.start()
                writer.close()  # the child holds the only writer: EOF means it has exited
                running[reader] = (job, process)
            for reader in wait_connections(list(running), timeout=1.0):
                job, process = running[reader]
                try:
                    kind, label, payload = reader.recv()
                except (EOFError, OSError):
                    process.join()
                    if job.label not in results:
                        results[job.label] = died(job, process.exitcode)
                    reader.close()
                    del running[reader]
                    continue
                if kind == "progress":
                    sink(label, *payload)
                elif kind == "done":
                    results[label] = JobResult(job, summary=payload)
                else:
                    results[label] = JobResult(job, error=payload[0], extra={"traceback": payload[1]})
    finally:
        for _, process in running.values():
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
