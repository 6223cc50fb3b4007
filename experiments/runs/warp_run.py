"""Train one run on the GPU path (``sim="warp"``): MuJoCo Warp worlds and the on-device learners.

The run folder is the usual one (config.json, status.json, progress.csv, episodes.csv, events.jsonl); the
policy is ``policy.pt`` + ``policy.json`` (torch tensors and JSON, :mod:`taxbench.policies.gpu.train`) in place
of SB3's ``model.zip``. Evaluation is the CPU env's, with the same seeded episodes as every CPU run, so a tax
from this path and one from the CPU path are measured by the same code. There are no mid-run checkpoints on
this path yet: a resumed run that did not finish trains again from the start.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from taxbench.experiments.runs.config import RunConfig

__all__ = ["WarpSession", "warp_config", "warp_device"]

log = logging.getLogger(__name__)


def warp_device(device: str) -> str:
    """The device of a Warp run: ``auto`` is CUDA when torch sees one, else Warp's CPU device (slow: tests only)."""
    from taxbench.policies.registry import resolve_device

    return resolve_device(device)


def warp_config(cfg: RunConfig) -> Any:
    """The on-device learner's settings: the run's hyper-parameters laid over the Warp learner's defaults.

    Only keys :class:`~taxbench.policies.gpu.train.WarpPPOConfig` knows apply (SB3-only keys such as
    ``n_steps`` do not); ``lagrange_method`` selects its multiplier.
    """
    from taxbench.policies.gpu.train import WarpPPOConfig

    names = {f.name for f in dataclasses.fields(WarpPPOConfig)}
    settings = {k: v for k, v in cfg.hyperparams.items() if k in names}
    if "lagrange_method" in cfg.hyperparams:
        settings["lagrange"] = cfg.hyperparams["lagrange_method"]
    if isinstance(settings.get("hidden_dims"), list):
        settings["hidden_dims"] = tuple(settings["hidden_dims"])
    return WarpPPOConfig(**settings)


class WarpSession:
    """One Warp training run, with the interface of the CPU path's session (``run``, ``close``, ``steps``).

    Args:
        cfg: The run config (``sim == "warp"``; ``n_envs`` is the number of worlds).
        run_dir: The run folder.
        evaluate: Evaluates a policy with ``predict`` on the CPU env and writes episodes.csv; returns the summary.
    """

    def __init__(self, cfg: RunConfig, run_dir: Path, evaluate: Callable[[Any, RunConfig, Path], dict[str, Any]]):
        self.cfg, self.run_dir, self.evaluate = cfg, run_dir, evaluate
        self.steps = 0

    def run(self, *, resume: bool, progress: bool, extra_callbacks: Sequence[Any]) -> dict[str, Any]:
        """Train on the device, save the policy, evaluate on the CPU env; progress goes to the pool's reporters."""
        from taxbench.policies.gpu.train import load_policy, train_warp

        cfg = self.cfg
        if resume:
            log.info("the Warp path keeps no mid-run checkpoints: %s trains from the start", self.run_dir)
        reporters = [cb for cb in extra_callbacks if callable(getattr(cb, "on_metrics", None))]

        def on_update(row: dict[str, float]) -> None:
            self.steps = int(row["steps"])
            for reporter in reporters:  # the pool's progress bars: steps, return, cost, λ (see runs/jobs.py)
                reporter.on_metrics(row)

        start = time.monotonic()
        result = train_warp(
            cfg.env_id,
            cfg.n_envs,
            cfg.steps,
            cfg.seed,
            cfg.arm,
            cfg.cost_limit,
            warp_device(cfg.device),
            out_dir=self.run_dir,
            config=warp_config(cfg),
            env_kwargs=dict(cfg.env_kwargs),
            on_update=on_update,
        )
        train_wall = time.monotonic() - start
        summary = self.evaluate(load_policy(self.run_dir), cfg, self.run_dir)
        lam = result.learner.lagrange_value if cfg.arm != "ppo" else None
        summary.update(train_steps=result.steps, train_wall_s=train_wall, wall_s=time.monotonic() - start)
        summary["lambda"] = None if lam is None else float(lam)
        return summary

    def close(self) -> None:
        """Nothing to release: :func:`train_warp` closes its worlds."""
