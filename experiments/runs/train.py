"""Train one run into its run folder, resumably, then evaluate it.

:func:`train_run` writes ``config.json`` and ``status.json`` first, appends a
``progress.csv`` row per rollout, checkpoints between rollouts into ``checkpoints/``, saves
``model.zip``, evaluates into ``episodes.csv``/``events.jsonl`` and marks the run ``done``.
A killed or failed run is continued with ``resume=True`` from its newest readable
checkpoint; :func:`evaluate_run` re-evaluates a finished one.
"""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv

from taxbench.experiments.runs.budgets import BUDGET_DIR, BUDGETS_FILE, budget_callbacks, evaluate_budgets
from taxbench.experiments.runs.checkpoint import (
    KEEP_CHECKPOINTS,  # noqa: F401 - re-exported (moved to checkpoint.py)
    Checkpoint,
    CheckpointCallback,
    checkpoint_path,  # noqa: F401 - re-exported
    list_checkpoints,  # noqa: F401 - re-exported
    load_newest_checkpoint,
    read_resume_state,
    save_checkpoint,
)
from taxbench.experiments.runs.config import RunConfig, load_run_config, write_run_config
from taxbench.experiments.runs.policy_files import (
    WARP_POLICY_FILE,
    WARP_TENSORS_FILE,
    has_policy,
    load_run_policy,
    save_run_policy,
)
from taxbench.experiments.runs.progress_bar import RichProgressCallback
from taxbench.experiments.runs.protocols import STOCHASTIC_EPISODES_FILE, evaluate_and_write
from taxbench.experiments.runs.replay_state import load_replay_buffer, replay_path
from taxbench.experiments.runs.resume_state import ResumeStateCallback, ResumeStateError, restore_resume_state
from taxbench.experiments.runs.runfolder import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    EPISODES_FILE,
    EVENTS_FILE,
    MODEL_FILE,
    PROGRESS_FILE,
    STATUS_FILE,
    ProgressCsv,
    atomic_path,
    read_status,
    write_status,
)
from taxbench.experiments.runs.vec_envs import arm_env_wrapper, make_vec_env, single_env_factory
from taxbench.experiments.runs.warp_run import WarpSession

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- run folder helpers


def _check_resume_config(cfg: RunConfig, run_dir: Path) -> None:
    try:
        old = load_run_config(run_dir)
    except FileNotFoundError:
        return
    except ValueError as exc:
        log.warning("cannot compare with the saved config (%s); continuing", exc)
        return
    diff = cfg.identity_diff(old)
    if diff:
        raise ValueError(f"cannot resume {run_dir}: config differs from config.json in {', '.join(diff)}")


def _clear_run(run_dir: Path) -> None:
    """Delete what a run wrote (``--overwrite``): a stale budget copy would otherwise stand in for the new run's."""
    for name in (
        CONFIG_FILE,
        PROGRESS_FILE,
        MODEL_FILE,
        EPISODES_FILE,
        STOCHASTIC_EPISODES_FILE,
        EVENTS_FILE,
        STATUS_FILE,
        BUDGETS_FILE,
        WARP_POLICY_FILE,
        WARP_TENSORS_FILE,
    ):
        (run_dir / name).unlink(missing_ok=True)
    for folder in (CHECKPOINT_DIR, BUDGET_DIR):
        shutil.rmtree(run_dir / folder, ignore_errors=True)


def evaluate_arm(
    model: Any, cfg: RunConfig, run_dir: Path, episodes: int | None = None, seed: int | None = None
) -> dict[str, Any]:
    """:func:`evaluate_and_write`, through the arm's env wrapper when it has one (a shield acts at deployment too)."""
    return evaluate_and_write(model, cfg, run_dir, episodes, seed, wrap_env=arm_env_wrapper(cfg))


def _lagrange_value(model: Any) -> float | None:
    """The learner's final multiplier (λ; CPO's dual ν), or None for learners without one."""
    value = getattr(model, "lagrange_multiplier", None)
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


# ----------------------------------------------------------------------------- entry points


def train_run(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    callbacks: Sequence[BaseCallback] = (),
) -> dict[str, Any]:
    """Train, checkpoint, save and evaluate one run in ``run_dir``.

    Args:
        cfg: The run config (validated here).
        run_dir: The run folder (created if needed), normally from
            :func:`taxbench.experiments.runfolder.run_dir`.
        resume: Continue an interrupted run from its newest readable checkpoint (progress.csv
            is cut back to that step); a run already ``done`` is returned as is. Its saved
            config must agree with ``cfg`` on the identity fields (``steps`` may grow).
        progress: Show a rich progress bar on stderr.
        overwrite: Delete an existing run in ``run_dir`` and start again.
        callbacks: Extra SB3 callbacks run after the built-in ones.

    Returns:
        The run summary (also in status.json): ``capability``, ``capability_metric``,
        ``mean_return``, ``success_rate``, ``violation_rate``, ``episode_cost``,
        ``episodes``, ``eval_steps``, ``eval_seed``, ``violation_events``, ``train_steps``,
        ``lambda`` (final λ; None for unconstrained learners), ``train_wall_s`` and ``wall_s``
        (training, and training + evaluation, cumulative over resumed sessions, seconds).

    Raises:
        ValueError: for an invalid config or a resume whose config does not match.
        FileExistsError: if ``run_dir`` holds a run and neither ``resume`` nor ``overwrite``.
        Exception: whatever training raised, after status.json was set to ``failed``.
    """
    cfg.validate()
    run_dir = Path(run_dir)
    status = read_status(run_dir) if (run_dir / STATUS_FILE).exists() else None
    if overwrite:
        _clear_run(run_dir)
        status = None
    elif status is not None and not resume:
        raise FileExistsError(f"{run_dir} already holds a run ({status['state']}): pass resume=True or overwrite=True")
    if resume and status is not None and status["state"] == "done":
        return dict(status.get("summary", {}))
    if resume:
        _check_resume_config(cfg, run_dir)

    import torch

    torch.set_num_threads(cfg.torch_threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_config(cfg, run_dir, resuming=resume and status is not None)
    write_status(run_dir, "running")
    session: Any = WarpSession(cfg, run_dir, evaluate_arm) if cfg.sim == "warp" else _Session(cfg, run_dir)
    try:
        summary = session.run(resume=resume, progress=progress, extra_callbacks=callbacks)
    except BaseException as exc:
        error, trace = f"{type(exc).__name__}: {exc}", traceback.format_exc()
        write_status(run_dir, "failed", error=error, traceback=trace, steps=session.steps)
        raise
    finally:
        session.close()
    write_status(run_dir, "done", summary=summary, steps=summary["train_steps"])
    return summary


class _Session:
    """State of one train_run call (kept on an object so a failure can report the step reached)."""

    def __init__(self, cfg: RunConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        self.steps = 0
        self.wall_offset = 0.0
        self.t0 = time.monotonic()
        self.venv: VecEnv | None = None
        self.csv: ProgressCsv | None = None
        self.bar: RichProgressCallback | None = None
        self.last_row: dict[str, Any] | None = None
        self.reporters: list[Any] = []

    def wall_s(self) -> float:
        return self.wall_offset + time.monotonic() - self.t0

    def _sink(self, row: Mapping[str, Any]) -> None:
        for reporter in self.reporters:  # the pool's progress bars: live return, cost and λ
            reporter.on_metrics(row)
        self.last_row = {**row, "wall_s": round(self.wall_s(), 3)}
        self.steps = int(row.get("steps", self.steps))
        assert self.csv is not None
        self.csv.append(self.last_row)

    def run(self, *, resume: bool, progress: bool, extra_callbacks: Sequence[BaseCallback]) -> dict[str, Any]:
        self.reporters = [cb for cb in extra_callbacks if callable(getattr(cb, "on_metrics", None))]
        from taxbench.policies import SafetyMetricsCallback, load_learner, make_learner
        from taxbench.policies.logger import run_logger

        cfg, ckpt_dir = self.cfg, self.run_dir / CHECKPOINT_DIR
        self.venv = make_vec_env(cfg)
        metrics = SafetyMetricsCallback(sink=self._sink)
        loaded = None
        if resume:
            loaded = load_newest_checkpoint(ckpt_dir, lambda p: self._load_checkpoint(p))
        if loaded is not None:
            model, ckpt = loaded
            self.steps, self.wall_offset = int(model.num_timesteps), ckpt.wall_s
            self._use_deploy_env(model)
            exact = self._restore(model, ckpt, metrics)
            log.info("resuming %s from %s (%d steps, %s)", self.run_dir, ckpt.path.name, self.steps, exact)
        else:
            kwargs = {"seed": cfg.seed, "device": cfg.device, "cost_limit": cfg.cost_limit}
            model = make_learner(cfg.arm, self.venv, hyperparams=dict(cfg.hyperparams), verbose=0, **kwargs)
            self._use_deploy_env(model)
        write_status(self.run_dir, "running", steps=self.steps, resumed_from=self.steps if loaded else None)
        self.csv = ProgressCsv(self.run_dir / PROGRESS_FILE, resume_steps=self.steps)

        remaining = cfg.steps - self.steps
        if remaining > 0:
            resume_state = ResumeStateCallback({"metrics": metrics})
            cbs: list[BaseCallback] = [
                metrics,
                resume_state,
                CheckpointCallback(ckpt_dir, cfg.checkpoint_every, self.steps, self.wall_s, resume_state.capture),
                *budget_callbacks(cfg, self.run_dir),  # copies at log-spaced budgets, for τ(t)
            ]
            if progress:
                self.bar = RichProgressCallback(
                    cfg.steps, f"{cfg.arm}-{cfg.intensity} seed{cfg.seed}", lambda: self.last_row
                )
                cbs.append(self.bar)
            if cfg.tensorboard is not None:
                # <experiment>/<env>/<arm>-<intensity>/seed<k>, as under --out
                model.set_logger(run_logger(Path(cfg.tensorboard, *self.run_dir.resolve().parts[-4:])))
            model.learn(remaining, callback=CallbackList([*cbs, *extra_callbacks]), reset_num_timesteps=loaded is None)
            self.close_bar()
            self.steps = int(model.num_timesteps)
            # a finished run trains no further: its last checkpoint keeps no replay buffer
            save_checkpoint(
                model, ckpt_dir, self.steps, self.wall_s(), resume_state=resume_state.capture(), replay=False
            )
        with atomic_path(self.run_dir / MODEL_FILE, suffix=".zip") as tmp:
            save_run_policy(model, tmp, cfg.env_id)  # with the JSON sidecar: loads without unpickling
        train_wall = self.wall_s()

        summary = evaluate_arm(model, cfg, self.run_dir)
        summary.update(train_steps=self.steps, train_wall_s=train_wall, wall_s=self.wall_s())
        summary["lambda"] = _lagrange_value(model)
        budget_rows = evaluate_budgets(
            cfg, self.run_dir, summary, self.steps, lambda p: load_learner(p, device=cfg.device), arm_env_wrapper(cfg)
        )
        summary["budgets"] = len({row["budget"] for row in budget_rows})
        return summary

    def _use_deploy_env(self, model: Any) -> None:
        """A deployment-aware learner probes on an env built as the training envs are (not a copy of its spec)."""
        if callable(getattr(model, "use_deploy_env", None)):
            model.use_deploy_env(single_env_factory(self.cfg))

    def _restore(self, model: Any, ckpt: Checkpoint, metrics: BaseCallback) -> str:
        """Put the checkpoint's resume state back (exact); without a usable one, re-seed (repeatable only)."""
        state = read_resume_state(ckpt)
        if state is not None:
            try:
                buffer_restored = self._restore_replay(model, ckpt)
                restore_resume_state(state, model, self.venv, {"metrics": metrics})
                return "exact" if buffer_restored else "exact but for an empty replay buffer"
            except ResumeStateError as exc:
                log.warning("cannot restore %s (%s): the resumed run will not be exact", ckpt.path.name, exc)
        set_random_seed(self.cfg.seed + self.steps)  # a resume from the same checkpoint is repeatable
        return "re-seeded"

    @staticmethod
    def _restore_replay(model: Any, ckpt: Checkpoint) -> bool:
        """Refill an off-policy learner's replay buffer from the checkpoint.

        Returns False (warned) when the checkpoint has none or one that does not fit: the buffer then stays
        empty and the rest of the state is still restored.
        """
        buffer = getattr(model, "replay_buffer", None)
        if buffer is None:
            return True
        path = replay_path(ckpt.path)
        try:
            if not path.exists():
                raise ResumeStateError("no replay buffer saved")
            load_replay_buffer(buffer, path)
        except ResumeStateError as exc:
            log.warning("%s: %s; the resumed run starts from an empty replay buffer", ckpt.path.name, exc)
            return False
        return True

    def _load_checkpoint(self, path: Path) -> Any:
        """A checkpoint's learner, with nothing unpickled.

        Built as a fresh run's on this run's envs, then given the zip's tensors, counters and arm state.
        """
        from taxbench.policies import make_learner
        from taxbench.policies.safe_load import load_into

        cfg = self.cfg
        kwargs = {"seed": cfg.seed, "device": cfg.device, "cost_limit": cfg.cost_limit}
        return load_into(make_learner(cfg.arm, self.venv, hyperparams=dict(cfg.hyperparams), verbose=0, **kwargs), path)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        self.close_bar()
        if self.csv is not None:
            self.csv.close()
        if self.venv is not None:
            self.venv.close()


def evaluate_run(
    run_dir: str | Path, episodes: int | None = None, seed: int | None = None, *, trust_pickle: bool = False
) -> dict[str, Any]:
    """Re-evaluate a trained run from its ``config.json`` and ``model.zip``.

    Rewrites episodes.csv and events.jsonl; when the run is ``done`` its status summary is
    updated with the new evaluation numbers (training fields are kept).

    Args:
        run_dir: The run folder.
        episodes: Number of episodes (default: the config's ``eval_episodes``).
        seed: Seed of episode 0 (default: the config's ``eval_seed``).
        trust_pickle: Load the model with SB3's unpickler (runs code the file carries); default: tensors only.

    Returns:
        The evaluation summary (see :func:`taxbench.experiments.metrics.run_summary`).

    Raises:
        FileNotFoundError: if config.json or model.zip is missing.
        ValueError: if either cannot be read.
    """
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if not has_policy(run_dir):
        raise FileNotFoundError(
            f"{run_dir / MODEL_FILE} not found: the run has not finished training (state: "
            f"{(read_status(run_dir) or {}).get('state', 'unknown')}); resume it first"
        )
    model = load_run_policy(run_dir, cfg, device=cfg.device, trust_pickle=trust_pickle)

    import torch

    torch.set_num_threads(cfg.torch_threads)
    summary = evaluate_arm(model, cfg, run_dir, episodes, seed)
    status = read_status(run_dir)
    if status is not None and status["state"] == "done":
        extra = {k: v for k, v in status.items() if k not in ("state", "updated", "host", "pid", "error")}
        extra["summary"] = {**status.get("summary", {}), **summary}
        write_status(run_dir, "done", **extra)
    return summary
