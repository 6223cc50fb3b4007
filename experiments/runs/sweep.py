"""Dose-response sweeps: envs × safety arms × intensities × seeds, resumable, on a local pool or on Ray.

Every constrained cell is compared with its unconstrained baseline (``ppo`` at intensity
``off``; ``sac`` for ``sac-*`` arms), which the sweep always trains. A named intensity maps to
RunConfig fields in :func:`intensity_overrides`, the one place to change the dose. Rerunning the
same sweep skips finished runs and resumes interrupted or failed ones from their checkpoint.

Besides the run folders, the experiment folder gets ``sweep.json`` (the sweep's spec) and
``envs.json`` (task kind and cost terms of each env, read by the report).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from taxbench.experiments.runs.config import RunConfig, known_arms
from taxbench.experiments.runs.pair import Job, JobResult
from taxbench.experiments.runs.pool import run_jobs
from taxbench.experiments.runs.runfolder import atomic_write_json, env_name, read_json, run_dir
from taxbench.policies.presets import default_cost_limit, resolve_dose

#: Named safety intensities, from none to the strictest.
INTENSITIES: tuple[str, ...] = ("off", "mild", "moderate", "strict")
_EXPLICIT = re.compile(r"^d(\d+(?:\.\d+)?)$")


def baseline_arm(arm: str) -> str:
    """The unconstrained arm a safety arm is compared with (``sac`` for ``sac-lag``, else ``ppo``).

    Unconstrained arms map to themselves. Asks ``taxbench.policies.unconstrained_partner``; arms it
    does not know map by name.
    """
    try:
        from taxbench.policies import unconstrained_partner

        return unconstrained_partner(arm)
    except (ImportError, ValueError):
        return "sac" if arm.startswith("sac") else "ppo"


def is_unconstrained(arm: str) -> bool:
    """True for arms trained without any safety mechanism (they run at intensity ``off`` only)."""
    return baseline_arm(arm) == arm


def check_intensity(label: str) -> str:
    """Return ``label`` if it is ``off``, a named level or an explicit cost limit ``d<number>``.

    Raises:
        ValueError: otherwise, naming the valid forms.
    """
    if label in INTENSITIES or _EXPLICIT.match(label):
        return label
    raise ValueError(f"unknown intensity {label!r}: use {', '.join(INTENSITIES)} or d<cost limit>, e.g. d10")


def intensity_rank(label: str) -> float:
    """Sort key from laxest to strictest: off < mild < moderate < strict; ``d<N>`` by decreasing N."""
    if label in INTENSITIES:
        return float(INTENSITIES.index(label))
    match = _EXPLICIT.match(label)
    if match:
        return 10.0 + 1.0 / (1.0 + float(match.group(1)))
    return math.inf


def intensity_overrides(env_id: str, arm: str, intensity: str) -> dict[str, Any]:
    """RunConfig fields that set the safety dose of ``arm`` at ``intensity`` on ``env_id``.

    ``off`` sets nothing; a named level or ``d<N>`` goes through
    :func:`taxbench.policies.presets.resolve_dose`, the one route from an intensity to a dose that the
    command line uses too (cost limit of arms that have one; β, shield margins as ``hyperparams``).
    """
    check_intensity(intensity)
    if intensity == "off":
        return {}
    dose = resolve_dose(env_id, arm, intensity)
    out: dict[str, Any] = {"cost_limit": dose.cost_limit}
    if dose.hyperparams:
        out["hyperparams"] = dict(dose.hyperparams)
    return out


@dataclass
class SweepSpec:
    """What a sweep trains: the grid, the budget and the shared run settings.

    Units: ``steps`` are env steps per run (summed over ``n_envs``); ``checkpoint_every`` in env steps.
    """

    envs: tuple[str, ...]
    arms: tuple[str, ...]
    intensities: tuple[str, ...] = INTENSITIES
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    steps: int | None = None
    """Budget per run; None takes each env's preset ``quick_steps``."""
    experiment: str = "sweep"
    out: Path = Path("runs")
    n_envs: int | None = None
    """Parallel envs per run; None takes the env's preset."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """Learner kwargs laid over the env's preset (same for every arm)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    torch_threads: int = 1
    eval_episodes: int = 10
    checkpoint_every: int = 10_000
    tensorboard: str | None = None
    sim: str = "cpu"
    worlds: int | None = None

    def validate(self) -> SweepSpec:
        """Check the grid; raises ValueError with a one-line message on the first problem."""
        for name in ("envs", "arms", "intensities", "seeds"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"a sweep needs at least one of {name}")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must be distinct, got {list(values)}")
        arms = known_arms()
        for arm in self.arms:
            if arm not in arms:
                raise ValueError(f"unknown arm {arm!r}; choose from {', '.join(arms)}")
        for intensity in self.intensities:
            check_intensity(intensity)
        return self

    def cells(self) -> list[tuple[str, str, str]]:
        """``(env, arm, intensity)`` of every run group: baselines at ``off``, constrained arms at the others."""
        out = []
        for env in self.envs:
            baselines = [a for a in self.arms if is_unconstrained(a)]
            baselines += [b for b in dict.fromkeys(baseline_arm(a) for a in self.arms) if b not in baselines]
            out += [(env, arm, "off") for arm in baselines]
            for arm in self.arms:
                if not is_unconstrained(arm):
                    out += [(env, arm, level) for level in self.intensities if level != "off"]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy of the spec."""
        data = asdict(self)
        data["out"] = str(self.out)
        return data


def run_config(spec: SweepSpec, env_id: str, arm: str, intensity: str, seed: int) -> RunConfig:
    """The validated RunConfig of one run of the sweep (env preset, then the spec, then the dose)."""
    from taxbench.policies.presets import preset_for

    preset = preset_for(env_id)
    n_envs, hyperparams = preset.for_arm(arm) if hasattr(preset, "for_arm") else (preset.n_envs, preset.hyperparams)
    fields: dict[str, Any] = {
        "env_id": env_id,
        "arm": arm,
        "intensity": intensity,
        "seed": int(seed),
        "steps": spec.steps or preset.quick_steps,
        "experiment": spec.experiment,
        "env_kwargs": dict(spec.env_kwargs),
        "n_envs": (spec.worlds if spec.sim == "warp" else None) or spec.n_envs or n_envs,
        "hyperparams": {**hyperparams, **spec.hyperparams},
        "device": spec.device,
        "torch_threads": spec.torch_threads,
        "eval_episodes": spec.eval_episodes,
        "checkpoint_every": spec.checkpoint_every,
        "tensorboard": spec.tensorboard,
        "sim": spec.sim,
        "cost_limit": default_cost_limit(env_id),
    }
    overrides = intensity_overrides(env_id, arm, intensity)
    if "hyperparams" in overrides:
        overrides["hyperparams"] = {**fields["hyperparams"], **overrides["hyperparams"]}
    fields.update(overrides)
    return RunConfig.from_dict(fields).validate()


def sweep_jobs(spec: SweepSpec) -> list[Job]:
    """Every run of the sweep, seed-major (all cells of seed 0 first), so pairs complete early."""
    spec.validate()
    jobs = []
    for seed in spec.seeds:
        for env_id, arm, intensity in spec.cells():
            cfg = run_config(spec, env_id, arm, intensity, seed)
            directory = run_dir(spec.out, spec.experiment, env_id, arm, intensity, int(seed))
            jobs.append(Job(cfg, directory, f"{env_name(env_id)} {arm}-{intensity} s{seed}"))
    return jobs


def env_metadata(env_id: str, env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Task kind, default cost limit and counted cost terms (name, kind, threshold, unit) of an env."""
    import gymnasium as gym

    import taxbench.envs  # noqa: F401 - registers the ids

    meta: dict[str, Any] = {"task_kind": "unknown", "default_cost_limit": default_cost_limit(env_id)}
    try:
        from taxbench.envs.registry import entry_for

        meta["task_kind"] = entry_for(env_id).task_kind
    except (ImportError, ValueError):
        pass
    env = gym.make(env_id, **dict(env_kwargs or {}))
    try:
        terms = getattr(env.unwrapped, "safety", ())
        meta["constraints"] = [
            {"name": t.name, "kind": t.kind, "threshold": t.threshold, "unit": t.unit} for t in terms
        ]
        task = getattr(env.unwrapped, "task", None)
        if meta["task_kind"] == "unknown" and getattr(task, "kind", None):
            meta["task_kind"] = str(task.kind)
    finally:
        env.close()
    return meta


def write_sweep_files(spec: SweepSpec) -> Path:
    """Write ``sweep.json`` and merge this sweep's envs into ``envs.json``; returns the experiment folder."""
    folder = Path(spec.out) / spec.experiment
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "sweep.json", spec.to_dict())
    path = folder / "envs.json"
    envs: dict[str, Any] = {}
    if path.exists():
        try:
            envs = dict(read_json(path))
        except (OSError, ValueError):
            envs = {}
    for env_id in spec.envs:
        envs[env_id] = env_metadata(env_id, spec.env_kwargs)
    atomic_write_json(path, envs)
    return folder


def run_sweep(
    spec: SweepSpec,
    *,
    workers: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
    ray_init_kwargs: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> list[JobResult]:
    """Train (or resume) every run of the sweep; failed runs are recorded and do not stop the others.

    Args:
        spec: The sweep.
        workers: Runs at once (also the CPUs of a local Ray instance).
        backend: ``local`` or ``ray``.
        ray_address: Existing Ray cluster; None starts a local instance.
        ray_init_kwargs: Extra ``ray.init`` arguments.
        overwrite: Train every run again from scratch (default: skip done runs, resume the others).
        progress: Show progress bars.
        console: Where the bars go.

    Returns:
        One result per run, in :func:`sweep_jobs` order.
    """
    jobs = sweep_jobs(spec)
    if backend == "ray":
        from taxbench.experiments.runs.ray_pool import require_ray

        require_ray()
    write_sweep_files(spec)
    return run_jobs(
        jobs,
        workers=workers,
        resume=not overwrite,
        overwrite=overwrite,
        progress=progress,
        console=console,
        backend=backend,
        ray_address=ray_address,
        ray_init_kwargs=ray_init_kwargs,
    )


def describe(spec: SweepSpec, jobs: Sequence[Job]) -> str:
    """One line: how many runs over which grid."""
    cells = spec.cells()
    per_env = len(cells) // max(1, len(spec.envs))
    return (
        f"sweep '{spec.experiment}': {len(spec.envs)} env(s) × {per_env} arm/intensity cell(s) × "
        f"{len(spec.seeds)} seed(s) = {len(jobs)} runs"
    )
