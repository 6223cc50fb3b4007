"""Train many runs (a pair of arms over seeds, or a sweep) on a local process pool or Ray, with live progress bars.

The local pool starts one process per run, ``workers`` at a time (forked from a server that has
already imported torch and SB3), so a run that raises, crashes or is killed is recorded as
failed and takes no other run with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taxbench.experiments.metrics.feasibility import DEFAULT_PROTOCOL, PROTOCOLS
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


def summarize_pair(
    results: Sequence[JobResult], protocol: str = DEFAULT_PROTOCOL, *, n_boot: int = 10_000
) -> dict[str, Any]:
    """The honest pair summary (:func:`taxbench.experiments.metrics.honest.honest_pair_summary`) of the finished runs.

    Args:
        results: The pair's job results.
        protocol: The headline protocol (``deterministic`` or ``stochastic``); both are computed.
        n_boot: Bootstrap resamples.

    Returns:
        The headline protocol's paired estimates (τ, g, ΔC, feasibility, τ_constraint, τ_learner,
        τ(t), converged, …), both protocols under ``protocols``, and ``warnings``.
    """
    from taxbench.experiments.metrics.honest import honest_pair_summary
    from taxbench.experiments.runs.budgets import read_budgets

    finished = [r for r in results if r.summary is not None]

    def run(r: JobResult) -> dict[str, Any]:
        cfg = r.job.cfg
        return {
            **(r.summary or {}),
            "seed": cfg.seed,
            "arm": cfg.arm,
            "intensity": cfg.intensity,
            "cost_limit": cfg.cost_limit,
        }

    unc = [run(r) for r in finished if r.job.cfg.intensity == "off"]
    safe = [run(r) for r in finished if r.job.cfg.intensity != "off"]
    budgets: dict[str, Any] = {}
    for p in PROTOCOLS:
        budgets[p] = {
            side: {
                r.job.cfg.seed: read_budgets(r.job.directory, p)
                for r in finished
                if (r.job.cfg.intensity == "off") == (side == "unc")
            }
            for side in ("unc", "safe")
        }
    return honest_pair_summary(unc, safe, protocol, budgets=budgets, n_boot=n_boot)


def _jsonable(value: Any) -> Any:
    """Estimates (anywhere in a nested summary) as their dicts."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


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
    atomic_write_json(folder / "pair.json", _jsonable(summary))
