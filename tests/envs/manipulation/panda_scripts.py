"""Scripted TCP motions for the Panda env tests (a straight-line move at a set speed)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

BACKENDS = ("mujoco", "pybullet")
HAND_FRONT = (0.5, 0.25, 0.035)  # m: in front of the person's hand, at its height
INTO_HAND = (0.5, 0.6, 0.035)  # m: through the person's hand


def make(env_id: str, backend: str, **kwargs) -> gym.Env:
    env = gym.make(env_id, backend=backend, **kwargs)
    env.reset(seed=0)
    return env


def move_to(env: gym.Env, point, speed: float, steps: int) -> list[dict]:
    """Command the TCP toward ``point`` at ``speed`` m/s (slowing to land on it); the infos of each step."""
    u = env.unwrapped
    infos = []
    for _ in range(steps):
        delta = np.asarray(point, dtype=float) - u.robot.root_position(u.sim)
        distance = float(np.linalg.norm(delta))
        velocity = delta / max(distance, 1e-9) * min(speed, distance / u.sim.dt)
        infos.append(env.step(velocity / u.robot.max_tcp_speed)[4])
    return infos


def drive_into_hand(env: gym.Env, speed: float = 0.5) -> list[dict]:
    """Approach the person's hand slowly, then drive through it at ``speed``; infos of the second part."""
    move_to(env, HAND_FRONT, 0.25, 100)
    return move_to(env, INTO_HAND, speed, 20)
