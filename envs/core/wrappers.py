"""Wrappers around taxbench envs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class SafetyGymnasiumAPI(gym.Wrapper):
    """Gives the Safety-Gymnasium 6-tuple ``(obs, reward, cost, terminated, truncated, info)``.

    So Safety-Gymnasium and OmniSafe tooling can drive a taxbench env. The cost is ``info["cost"]``
    (0.0 where an env reports none); ``info`` is passed through unchanged.
    """

    def step(self, action: Any) -> tuple[np.ndarray, float, float, bool, bool, dict]:  # type: ignore[override]
        """Step and split the cost out of ``info``."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, float(reward), float(info.get("cost", 0.0)), terminated, truncated, info
