"""Typed run configuration and provenance.

A :class:`RunConfig` is everything that determines one training run; it is saved as
``config.json`` beside the results, together with :func:`provenance` (package versions,
git commit, device), so every number in a report can be traced to the code that made it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from taxbench.experiments.runs.runfolder import CONFIG_FILE, atomic_write_json, read_json
from taxbench.policies.lagrange import DEFAULT_COST_LIMIT, check_cost_limit

log = logging.getLogger(__name__)

#: Capability metrics a run can be scored with (see :func:`taxbench.experiments.metrics.run_summary`).
CAPABILITY_METRICS: tuple[str, ...] = ("auto", "success", "return")

#: Fields that identify a run; a resumed run must agree with its config.json on all of them.
IDENTITY_FIELDS: tuple[str, ...] = (
    "experiment",
    "env_id",
    "env_kwargs",
    "arm",
    "intensity",
    "cost_limit",
    "seed",
    "n_envs",
    "hyperparams",
    "sim",
)

#: Whole-number fields and their smallest valid value.
_INT_FIELDS = {
    "seed": 0,
    "steps": 1,
    "n_envs": 1,
    "torch_threads": 1,
    "eval_episodes": 0,
    "eval_seed": 0,
    "checkpoint_every": 1,
}

#: Where the physics of training runs: ``cpu`` (the env's own engine, MuJoCo or PyBullet, on the CPU; SB3
#: learners) or ``warp`` (MuJoCo Warp worlds on a Warp device with the on-device learners of
#: :mod:`taxbench.policies.gpu`; ``n_envs`` is then the number of worlds). Evaluation is on the CPU env for both.
SIMS: tuple[str, ...] = ("cpu", "warp")


def known_arms() -> tuple[str, ...]:
    """Return the learner arms that ``taxbench.policies`` provides (its ``ARMS``)."""
    from taxbench.policies import ARMS

    return tuple(ARMS)


@dataclass
class RunConfig:
    """One training run: env, learner arm, safety intensity, seed and budget.

    Units: steps are environment steps summed over all parallel envs; cost limits are in
    cost units per episode (with the default 0/1 cost terms: violating steps per episode).
    """

    env_id: str
    """Gymnasium id of the environment, e.g. ``taxbench/HalfCheetahVelocity-v0``."""

    arm: str = "ppo"
    """Learner arm: one of ``taxbench.policies.ARMS`` (``ppo``, ``ppo-lag``, ...)."""

    intensity: str = "off"
    """Safety-intensity label used in the run folder: ``off`` for unconstrained arms, a named
    level (``mild``/``moderate``/``strict``) or an explicit one such as ``d25``."""

    cost_limit: float = DEFAULT_COST_LIMIT
    """Constraint threshold d for constrained arms, in cost per episode (ignored by ``ppo``)."""

    seed: int = 0
    """Seed of the learner and of the first training env (env i gets ``seed + i``)."""

    steps: int = 100_000
    """Training budget in environment steps (summed over the ``n_envs`` parallel envs)."""

    experiment: str = "default"
    """Experiment name: the top folder under the output directory."""

    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Constructor kwargs passed to ``gymnasium.make`` (backend, thresholds, ...)."""

    n_envs: int = 1
    """Number of parallel training envs in the ``DummyVecEnv``."""

    device: str = "auto"
    """Torch device for the learner: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ..."""

    torch_threads: int = 1
    """``torch.set_num_threads`` for the run (1 keeps parallel runs from oversubscribing cores)."""

    hyperparams: dict[str, Any] = field(default_factory=dict)
    """Learner keyword arguments (SB3 names, e.g. ``n_steps``, ``batch_size``); JSON-serialisable."""

    eval_episodes: int = 10
    """Number of evaluation episodes after training."""

    eval_seed: int = 1_000_000
    """Reset seed of evaluation episode 0 (episode i uses ``eval_seed + i``); the same for every
    run by default so both arms of a pair face the same initial states."""

    checkpoint_every: int = 10_000
    """Checkpoint period in environment steps (checkpoints are taken between rollouts)."""

    tensorboard: str | None = None
    """Folder for this run's TensorBoard event files (SB3's scalars plus ``safety/*``), or None for none.
    Where the run writes its logs, not what it trains: not one of :data:`IDENTITY_FIELDS`."""

    sim: str = "cpu"
    """Training physics: ``cpu`` or ``warp`` (see :data:`SIMS`); part of the run's identity."""

    capability: str = "auto"
    """Capability metric: ``success`` (success rate), ``return`` (mean return), or ``auto``
    (ask the env; see :func:`taxbench.experiments.evaluation.resolve_capability_metric`)."""

    def validate(self) -> RunConfig:
        """Check every field, raising on the first problem.

        Returns:
            ``self``, so calls can be chained.

        Raises:
            ValueError: with a one-line message naming the offending field.
        """
        if not isinstance(self.env_id, str) or not self.env_id.strip():
            raise ValueError("env_id must be a non-empty gymnasium id")
        arms = known_arms()
        if self.arm not in arms:
            raise ValueError(f"unknown arm {self.arm!r}; choose one of {', '.join(arms)}")
        for name in ("experiment", "intensity"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or "/" in value or "\\" in value or value in (".", ".."):
                raise ValueError(f"{name} must be a non-empty name without path separators, got {value!r}")
        for name, minimum in _INT_FIELDS.items():
            _check_int(name, getattr(self, name), minimum=minimum)
        if not isinstance(self.cost_limit, (int, float)):
            raise ValueError(f"cost_limit must be a finite number >= 0, got {self.cost_limit!r}")
        check_cost_limit(self.cost_limit)
        self._check_options()
        for name in ("env_kwargs", "hyperparams"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must be JSON-serialisable: {exc}") from None
        return self

    def _check_options(self) -> None:
        """The string-valued choices: sim, tensorboard folder, device, capability metric."""
        if self.sim not in SIMS:
            raise ValueError(f"sim must be one of {', '.join(SIMS)}, got {self.sim!r}")
        if self.tensorboard is not None and (not isinstance(self.tensorboard, str) or not self.tensorboard):
            raise ValueError(f"tensorboard must be a folder path or None, got {self.tensorboard!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be a string such as 'auto' or 'cpu', got {self.device!r}")
        if self.capability not in CAPABILITY_METRICS:
            raise ValueError(f"capability must be one of {', '.join(CAPABILITY_METRICS)}, got {self.capability!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-ready dict (deep copies of the kwargs dicts)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build a config from :meth:`to_dict` output.

        Args:
            data: Field values; missing fields take their defaults.

        Raises:
            ValueError: if ``data`` has keys that are not fields, or lacks ``env_id``.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown RunConfig field(s): {', '.join(unknown)}")
        if "env_id" not in data:
            raise ValueError("RunConfig needs an env_id")
        return cls(**data)

    def identity_diff(self, other: RunConfig) -> list[str]:
        """Names of the :data:`IDENTITY_FIELDS` on which two configs differ."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [name for name in IDENTITY_FIELDS if mine[name] != theirs[name]]


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


_PACKAGES: dict[str, str] = {
    "taxbench": "taxbench",
    "torch": "torch",
    "stable_baselines3": "stable-baselines3",
    "gymnasium": "gymnasium",
    "mujoco": "mujoco",
    "numpy": "numpy",
    "pybullet": "pybullet",
}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """Return ``{"commit", "dirty"}`` for the git work tree containing ``path`` (default: cwd).

    Returns:
        None when ``path`` is not in a git repository, the repository has no commit yet, or
        git is not installed; never raises.
    """
    cwd = Path(path) if path is not None else Path.cwd()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def torch_build() -> dict[str, Any]:
    """The torch build a run used: version, the CUDA version it was built for (None: CPU-only) and visible GPUs.

    PyPI's CUDA wheels carry no ``+cu`` suffix in their version, so the version alone does not say which build
    ran; results differ in their digits between builds and versions (README, "Reproducibility").
    """
    import torch

    return {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
    }


def resolve_device_name(device: str = "auto") -> str:
    """Resolve ``auto`` to the torch device a learner will use (``cuda`` when present, else ``cpu``)."""
    try:
        from taxbench.policies import resolve_device
    except ImportError:
        resolve_device = None
    if resolve_device is not None:
        return str(resolve_device(device))
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def provenance(device: str = "auto") -> dict[str, Any]:
    """Describe the software and machine a run executes on.

    Args:
        device: The requested device, resolved as the learner resolves it.

    Returns:
        A JSON-ready dict: ``packages`` (distribution versions, None if not installed),
        ``python``, ``platform``, ``git`` (see :func:`git_commit`), ``device``, ``cpu_count``,
        ``hostname`` and ``argv``.
    """
    try:
        resolved = resolve_device_name(device)
    except Exception as exc:  # provenance must never fail a run
        resolved = f"unresolved ({exc})"
    return {
        "packages": {name: _version(dist) for name, dist in _PACKAGES.items()},
        "torch_build": torch_build(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git": git_commit(),
        "device": resolved,
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
        "argv": list(sys.argv),
    }


def load_run_config(run_dir: str | Path) -> RunConfig:
    """Read the :class:`RunConfig` saved in a run folder's ``config.json``.

    Raises:
        FileNotFoundError: if there is no config.json.
        ValueError: if it cannot be parsed into a config.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run folder?")
    try:
        return RunConfig.from_dict(read_json(path)["config"]).validate()
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise ValueError(f"{path} is not a valid run config: {exc}") from None


def write_run_config(cfg: RunConfig, run_dir: str | Path, resuming: bool = False) -> None:
    """Write ``config.json`` (``config``, ``provenance``, ``resumes``) in a run folder atomically.

    A resumed run keeps its first provenance and appends this session's to ``resumes``.
    """
    path = Path(run_dir) / CONFIG_FILE
    record: dict[str, Any] = {"config": cfg.to_dict(), "provenance": provenance(cfg.device), "resumes": []}
    if resuming and path.exists():
        try:
            old = read_json(path)
            record["provenance"] = old.get("provenance", record["provenance"])
            record["resumes"] = list(old.get("resumes", []))
        except (OSError, ValueError):
            log.warning("rewriting unreadable %s", path)
        record["resumes"].append({"time": time.time(), "provenance": provenance(cfg.device)})
    atomic_write_json(path, record)
