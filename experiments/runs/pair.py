"""Train many runs (a pair of arms over seeds, or a sweep) on a local process pool or Ray, with live progress bars.

The local pool starts one process per run, ``workers`` at a time (forked from a server that has
already imported torch and SB3), so a run that raises, crashes or is killed is recorded as
failed and takes no other run with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taxbench.experiments.metrics import pair_summary
from taxbench.experiments.runs.config import RunConfig
from taxbench.experiments.runs.jobs import Job, JobResult
from taxbench.experiments.runs.runfolder import atomic_write_csv, atomic_write_json, run_dir

UNCONSTRAINED_ARM = "ppo"
CONSTRAINED_ARM = "ppo-lag"




























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
