"""Train many runs (a pair of arms over seeds, or a sweep) on a local process pool or Ray, with live progress bars.

The local pool starts one process per run, ``workers`` at a time (forked from a server that has
already imported torch and SB3), so a run that raises, crashes or is killed is recorded as
failed and takes no other run with it.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_connections
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from stable_baselines3.common.callbacks import BaseCallback

from taxbench.experiments.config import RunConfig
from taxbench.experiments.metrics import pair_summary
from taxbench.experiments.runfolder import atomic_write_csv, atomic_write_json, read_status, run_dir, write_status

UNCONSTRAINED_ARM = "ppo"
CONSTRAINED_ARM = "ppo-lag"
#: Where runs can execute: ``local`` (process pool on this machine) or ``ray`` (Ray tasks).
BACKENDS = ("local", "ray")


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
    import torch

    import taxbench.envs  # noqa: F401 - registers the env ids in this process
    from taxbench.experiments.train import train_run

    torch.set_num_threads(job.cfg.torch_threads)
    return train_run(
        job.cfg,
        job.directory,
        resume=resume,
        overwrite=overwrite,
        progress=False,
        callbacks=[_ProgressCallback(job.label, sink)],
    )


def _child(job: Job, resume: bool, overwrite: bool, conn: Connection) -> None:
    """Body of one pool process: train, sending ``(kind, label, payload)`` messages to the parent."""

    def sink(key: str, steps: int) -> None:
        conn.send(("progress", key, steps))

    try:
        conn.send(("done", job.label, _run_job(job, resume, overwrite, sink)))
    except BaseException as exc:  # report everything, KeyboardInterrupt included, then exit
        conn.send(("failed", job.label, (f"{type(exc).__name__}: {exc}", traceback.format_exc())))
    finally:
        conn.close()


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
            see :mod:`taxbench.experiments.ray_pool`).
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
    )
    results: dict[str, JobResult] = {}
    with Progress(*columns, console=console, disable=not progress, transient=False) as bars:
        tasks = {job.label: bars.add_task(job.label, total=job.cfg.steps) for job in jobs}

        def sink(key: str, steps: int) -> None:
            bars.update(tasks[key], completed=min(steps, bars.tasks[tasks[key]].total or steps))

        todo = []
        for job in jobs:
            status = read_status(job.directory) if resume and not overwrite else None
            if status is not None and status["state"] == "done":
                results[job.label] = JobResult(job, summary=dict(status.get("summary", {})), extra={"skipped": True})
                sink(job.label, job.cfg.steps)
            else:
                todo.append(job)
        if backend == "ray":
            from taxbench.experiments.ray_pool import run_ray

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
                results[job.label] = _guarded(job, lambda j=job: _run_job(j, resume, overwrite, sink))
        else:
            _run_pool(todo, workers, resume, overwrite, sink, results)
    return [results[job.label] for job in jobs]


def _guarded(job: Job, call: Callable[[], dict[str, Any]]) -> JobResult:
    try:
        return JobResult(job, summary=call())
    except Exception as exc:
        return JobResult(job, error=f"{type(exc).__name__}: {exc}", extra={"traceback": traceback.format_exc()})


#: Modules the fork server imports once, so each run's process starts without re-importing torch and SB3.
_PRELOAD = ["taxbench.envs", "taxbench.experiments.train", "taxbench.experiments.pair"]


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
    sink: Callable[[str, int], None],
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
                    sink(label, payload)
                elif kind == "done":
                    results[label] = JobResult(job, summary=payload)
                else:
                    results[label] = JobResult(job, error=payload[0], extra={"traceback": payload[1]})
    finally:
        for _, process in running.values():
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


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


def pair_jobs(base: RunConfig, seeds: Sequence[int], out: Path, safe: RunConfig | None = None) -> list[Job]:
    """An unconstrained and a constrained run per seed, identical but for the learner.

    ``safe`` is the constrained arm's config (arm, intensity label, cost limit, dose in hyperparams); by default
    ppo-lag at ``base.cost_limit``. The unconstrained arm is its partner (``sac`` for ``sac-lag``, else ``ppo``).
    """
    from taxbench.policies import unconstrained_partner

    if safe is None:
        safe = RunConfig.from_dict({**base.to_dict(), "arm": CONSTRAINED_ARM, "intensity": f"d{base.cost_limit:g}"})
    unconstrained = {**base.to_dict(), "arm": unconstrained_partner(safe.arm), "intensity": "off"}
    jobs = []
    for template in (unconstrained, safe.to_dict()):
        for seed in seeds:
            cfg = RunConfig.from_dict({**template, "seed": int(seed)})
            cfg.validate()
            arm, intensity = cfg.arm, cfg.intensity
            directory = run_dir(out, cfg.experiment, cfg.env_id, arm, intensity, int(seed))
            jobs.append(Job(cfg, directory, f"{arm} seed {seed}"))
    return jobs


def summarize_pair(results: Sequence[JobResult]) -> dict[str, Any]:
    """Paired alignment tax, safety gain and capability loss from the finished runs."""
    finished = [r for r in results if r.summary is not None]
    unc = [{**r.summary, "seed": r.job.cfg.seed} for r in finished if r.job.cfg.intensity == "off"]
    safe = [{**r.summary, "seed": r.job.cfg.seed} for r in finished if r.job.cfg.intensity != "off"]
    return pair_summary(unc, safe)


def write_pair_outputs(results: Sequence[JobResult], summary: dict[str, Any], folder: Path) -> None:
    """``summary.csv`` (one row per run) and ``pair.json`` (the paired estimates) in the experiment folder."""
    rows = []
    for result in results:
        cfg = result.job.cfg
        row = {
            "env": cfg.env_id,
            "arm": cfg.arm,
            "intensity": cfg.intensity,
            "seed": cfg.seed,
            "cost_limit": cfg.cost_limit,
            "steps": cfg.steps,
            "state": "done" if result.summary else "failed",
            "path": str(result.job.directory),
            "error": result.error or "",
        }
        row.update({k: v for k, v in (result.summary or {}).items() if not isinstance(v, dict | list)})
        rows.append(row)
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    atomic_write_csv(folder / "summary.csv", rows, fieldnames)
    atomic_write_json(
        folder / "pair.json", {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in summary.items()}
    )
