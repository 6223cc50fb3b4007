"""A Pendulum with taxbench-style cost info, registered as ``taxbench-test/PendulumCost-v0``."""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium.envs.classic_control.pendulum import PendulumEnv

ENV_ID = "taxbench-test/PendulumCost-v0"
EPISODE_STEPS = 50


class PendulumCost(gymnasium.Wrapper):
    """Pendulum-v1 whose info follows the taxbench contract.

    Constraints: angular speed above ``speed_limit`` rad/s (``cost_speed``) and the pole
    below horizontal (``cost_low``); success: the pole within 0.3 rad of upright.
    """

    def __init__(self, env: gymnasium.Env, speed_limit: float = 2.0) -> None:
        super().__init__(env)
        self.speed_limit = speed_limit

    def _info(self, obs: np.ndarray, reward: float | None) -> dict:
        cos, sin, thdot = (float(v) for v in obs)
        speed, angle = abs(thdot), abs(float(np.arctan2(sin, cos)))
        cost_speed = float(speed > self.speed_limit) if reward is not None else 0.0
        cost_low = float(cos < 0.0) if reward is not None else 0.0
        cost = cost_speed + cost_low
        return {
            "cost": cost,
            "cost_speed": cost_speed,
            "cost_low": cost_low,
            "measure_speed": speed,
            "measure_low": angle,
            "violation": cost > 0,
            "reward_pendulum": 0.0 if reward is None else float(reward),
            "is_success": angle < 0.3,
            "unrelated_key": "ignored",
        }

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, **self._info(obs, None)}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, **self._info(obs, float(reward))}


def make_pendulum_cost(speed_limit: float = 2.0) -> gymnasium.Env:
    return PendulumCost(PendulumEnv(), speed_limit=speed_limit)


if ENV_ID not in gymnasium.registry:
    gymnasium.register(ENV_ID, entry_point=make_pendulum_cost, max_episode_steps=EPISODE_STEPS)


#: Tiny PPO budget: 64-step rollouts, one epoch.
TINY_HYPERPARAMS = {"n_steps": 64, "batch_size": 64, "n_epochs": 1}
