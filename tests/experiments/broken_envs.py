"""A tiny env that honours the info contract, and copies of it each breaking one rule (for `taxbench check`)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class GoodEnv(gym.Env):
    """A point on a line; cost 1 while |x| > 1 m. Honours every rule of the contract."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.x = self.v = 0.0

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.v])

    def _costs(self) -> dict:
        zone = float(abs(self.x) > 1.0)
        return {"cost": zone, "cost_zone": zone, "measure_zone": abs(self.x), "violation": zone > 0}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.v = float(self.np_random.uniform(-0.5, 0.5)), 0.0
        return self._obs(), {**self._costs(), "cost": 0.0, "cost_zone": 0.0, "violation": False, "is_success": False}

    def step(self, action):
        self.v = 0.9 * self.v + 0.5 * float(np.asarray(action).reshape(-1)[0])
        self.x += 0.1 * self.v
        progress, effort = 0.1 * self.v, -0.01 * float(np.square(action).sum())
        info = {**self._costs(), "reward_progress": progress, "reward_effort": effort, "is_success": self.x > 2.0}
        return self._obs(), progress + effort, False, False, info


class NegativeCost(GoodEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, {**info, "cost": -0.5, "cost_zone": -0.5, "violation": False}


class CostNotSumOfTerms(GoodEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, {**info, "cost": info["cost"] + 1.0, "violation": True}


class CostAfterReset(GoodEnv):
    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        return obs, {**info, "cost": 1.0, "cost_zone": 1.0, "violation": True}


class NaNObservation(GoodEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        obs[1] = np.nan if abs(self.x) > 0.3 else obs[1]
        return obs, reward, terminated, truncated, info


class NondeterministicReset(GoodEnv):
    _calls = 0

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        NondeterministicReset._calls += 1
        self.x += 0.001 * NondeterministicReset._calls
        return self._obs(), info


class SafetyGymnasiumStyle(GoodEnv):
    """Valid, but with Safety-Gymnasium's 6-tuple step and no cost in info."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        cost = info.pop("cost")
        info.pop("violation")
        return obs, reward, cost, terminated, truncated, info


LINE_ID = "taxbench-test/Line-v0"
if LINE_ID not in gym.registry:
    gym.register(LINE_ID, entry_point=GoodEnv, max_episode_steps=50)
