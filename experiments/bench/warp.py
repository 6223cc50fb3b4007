"""``taxbench bench warp``: the GPU path against the CPU path, measured in one run.

Env steps/s with costs on MuJoCo Warp at N worlds beside the CPU vector env, and end-to-end training steps/s
of ppo and ppo-lag on Warp beside SB3 ppo and ppo-lag on the CPU (:func:`taxbench.experiments.bench.train.bench_train`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taxbench.experiments.bench.train import bench_train

DEFAULT_ENVS = ("taxbench/HalfCheetahVelocity-v0", "taxbench/AntVelocity-v0")
DEFAULT_WORLDS = (256, 1024, 4096, 16384)


def bench_warp_all(
    envs: Sequence[str],
    worlds: Sequence[int],
    *,
    device: str,
    steps: int = 100,
    train_worlds: int = 4096,
    rollouts: int = 5,
    cpu_train_steps: int = 8192,
) -> dict[str, Any]:
    """Physics+costs steps/s (Warp at each N, CPU vector env) and training steps/s (Warp vs CPU) per env.

    Args:
        envs: Ids with a Warp version.
        worlds: World counts for the physics+costs rates.
        device: ``cuda``/``cuda:k`` for the figures that matter, ``cpu`` (Warp's CPU device) for a smoke run.
        steps: Timed control steps per world count.
        train_worlds: Worlds of the training measurement.
        rollouts: Timed training updates on Warp (the first, with compilation, is left out of the median).
        cpu_train_steps: Env steps of each CPU training measurement (SB3, the env's preset n_envs).

    Returns:
        ``{"physics": bench_warp(...), "training": {env_id: {"warp": {...}, "cpu": [rows]}}}``.
    """
    from taxbench.envs.warp.bench import bench_warp, bench_warp_training

    out: dict[str, Any] = {"physics": bench_warp(envs, worlds, device=device, steps=steps), "training": {}}
    for env_id in envs:
        out["training"][env_id] = {
            "warp": bench_warp_training(env_id, train_worlds, device=device, rollouts=rollouts),
            "cpu": bench_train(env_id, ["ppo", "ppo-lag"], cpu_train_steps, 1, None),
        }
    return out
