"""Speed of the MuJoCo Warp path: env steps/s with costs at several world counts, against the CPU vector env.

:func:`bench_warp` returns a JSON-ready dict (``taxbench bench warp --json`` prints it); every figure in one call is
measured on the same machine, so ratios within it are what to read. Training steps/s come from
:func:`bench_warp_training` (PPO and PPO-Lagrangian end to end, rollouts and updates on the device).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def warp_env_rate(env_id: str, worlds: int, steps: int, device: str, warmup: int = 3, seed: int = 0) -> float:
    """Env steps/s (worlds × control steps per second) of :class:`WarpVectorEnv` with costs, random actions.

    The first ``warmup`` steps (kernel compilation, CUDA graph capture) are not timed.
    """
    from taxbench.envs.warp.vector import WarpVectorEnv

    env = WarpVectorEnv(env_id, worlds, device=device, seed=seed, check_finite=False)
    env.reset()
    generator = torch.Generator(device=env.sim.torch_device).manual_seed(seed)
    shape = (worlds, env.num_actions)
    for _ in range(warmup):
        env.step(2.0 * torch.rand(shape, generator=generator, device=env.sim.torch_device) - 1.0)
    _sync(env.device)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(2.0 * torch.rand(shape, generator=generator, device=env.sim.torch_device) - 1.0)
    _sync(env.device)
    rate = worlds * steps / (time.perf_counter() - start)
    env.close()
    return rate


def cpu_env_rate(env_id: str, worlds: int, steps: int, seed: int = 0) -> float:
    """Env steps/s of the CPU vector env (:class:`~taxbench.envs.core.vector.SafeRobotVectorEnv`), random actions."""
    from taxbench.envs.core.vector import SafeRobotVectorEnv

    vec = SafeRobotVectorEnv.from_id(env_id, worlds)
    vec.reset(seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.0, 1.0, (steps, worlds, *vec.single_action_space.shape))
    start = time.perf_counter()
    for k in range(steps):
        vec.step_lists(actions[k])
    rate = worlds * steps / (time.perf_counter() - start)
    vec.close()
    return rate


def bench_warp(
    env_ids: Sequence[str] = ("taxbench/HalfCheetahVelocity-v0", "taxbench/AntVelocity-v0"),
    worlds: Sequence[int] = (256, 1024, 4096, 16384),
    *,
    device: str = "cuda",
    steps: int = 100,
    cpu_worlds: int = 16,
    cpu_steps: int = 200,
) -> dict[str, Any]:
    """Env steps/s with costs on MuJoCo Warp at each world count, and the CPU vector env's in the same run.

    Args:
        env_ids: Ids with a Warp version.
        worlds: World counts to time.
        device: ``cuda``/``cuda:k`` (the figures that matter) or ``cpu`` (Warp's CPU device: a smoke run).
        steps: Timed control steps per world count.
        cpu_worlds: Worlds of the CPU vector env baseline.
        cpu_steps: Timed control steps of the baseline.

    Returns:
        ``{"device": ..., "torch": ..., "envs": {env_id: {"warp": {N: steps/s}, "cpu_vector": steps/s,
        "cpu_worlds": n}}}`` (N as strings, for JSON).
    """
    from taxbench.envs.sim.warp_sim import check_device

    name = check_device(device)
    label = torch.cuda.get_device_name(torch.device(name)) if name.startswith("cuda") else "Warp CPU device"
    out: dict[str, Any] = {"device": name, "device_name": label, "torch": torch.__version__, "envs": {}}
    for env_id in env_ids:
        rates = {str(n): warp_env_rate(env_id, n, steps, name) for n in worlds}
        out["envs"][env_id] = {
            "warp": rates,
            "cpu_vector": cpu_env_rate(env_id, cpu_worlds, cpu_steps),
            "cpu_worlds": cpu_worlds,
        }
    return out


def bench_warp_training(
    env_id: str = "taxbench/HalfCheetahVelocity-v0",
    worlds: int = 4096,
    *,
    device: str = "cuda",
    rollouts: int = 5,
    arms: Sequence[str] = ("ppo", "ppo-lag"),
) -> dict[str, Any]:
    """End-to-end training steps/s (rollouts + updates) of each arm on the Warp path, and ppo-lag / ppo.

    The first rollout (compilation, graph capture) is left out of the rate: it is the median ``fps`` of the others.
    """
    from taxbench.policies.gpu.train import WarpPPOConfig, train_warp

    config = WarpPPOConfig()
    steps = worlds * config.steps_per_env * rollouts
    rates = {}
    for arm in arms:
        result = train_warp(env_id, worlds, steps, 0, arm, device=device, config=config)
        rates[arm] = float(np.median([row["fps"] for row in result.progress[1:]] or [result.progress[0]["fps"]]))
    out: dict[str, Any] = {"env_id": env_id, "worlds": worlds, "device": device, "train_steps_per_s": rates}
    if "ppo" in rates and "ppo-lag" in rates:
        out["ppo_lag_over_ppo"] = rates["ppo-lag"] / rates["ppo"]
    return out
