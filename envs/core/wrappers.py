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


class FromSafetyGymnasium(gym.Wrapper):
    """Turns a Safety-Gymnasium-style env (6-tuple ``step``) into a Gymnasium one with ``info["cost"]``.

    The other direction of :class:`SafetyGymnasiumAPI`: lets taxbench train on, check and gate envs
    from Safety-Gymnasium or any env whose ``step`` returns ``(obs, reward, cost, terminated, truncated, info)``.
    ``cost_<term>`` keys the env already reports are kept; ``violation`` is added when missing.
    """

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        """Reset; the cost of a fresh episode is 0."""
        obs, info = self.env.reset(**kwargs)
        return obs, {"cost": 0.0, "violation": False, **info}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        """Step and move the cost into ``info``."""
        obs, reward, cost, terminated, truncated, info = self.env.step(action)
        info = {**info, "cost": float(cost)}
        info.setdefault("violation", info["cost"] > 0.0)
        return obs, reward, terminated, truncated, info
