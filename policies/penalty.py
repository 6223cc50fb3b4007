"""Fixed-penalty PPO: the learner trains on ``reward − β·cost`` with a constant β (the dose).

The penalty is applied where the learner stores its rewards, not in the env: the env, its ``Monitor`` and
the safety metrics (``progress.csv``) keep the true reward, so a penalty run's learning curve is comparable
with every other arm's, and both members of a pair still step the identical env. :func:`penalized_reward`
is the one formula; :class:`CostPenaltyWrapper` applies it as a Gymnasium wrapper for users who want it
on an env instead.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.type_aliases import MaybeCallback

from .cost_info import costs_from_infos

__all__ = ["CostPenaltyWrapper", "PPOPenalty", "PenaltyRolloutBuffer", "penalized_reward"]


def _check_coef(penalty_coef: float) -> float:
    try:
        beta = float(penalty_coef)
    except (TypeError, ValueError):
        raise ValueError(f"penalty_coef must be a finite number >= 0, got {penalty_coef!r}") from None
    if not math.isfinite(beta) or beta < 0:
        raise ValueError(f"penalty_coef must be a finite number >= 0, got {penalty_coef!r}")
    return beta


def penalized_reward(reward: np.ndarray | float, cost: np.ndarray | float, penalty_coef: float) -> np.ndarray:
    """``reward − β·cost`` (β in reward units per cost unit), elementwise."""
    return np.asarray(reward, dtype=np.float32) - np.float32(penalty_coef) * np.asarray(cost, dtype=np.float32)


class PenaltyRolloutBuffer(RolloutBuffer):
    """SB3 rollout buffer that stores ``reward − β·cost``; ``pending_costs`` is set before each ``add``."""

    penalty_coef: float = 0.0
    pending_costs: np.ndarray | None = None

    def add(self, obs: Any, action: Any, reward: np.ndarray, *args: Any, **kwargs: Any) -> None:
        """Store one step with its reward penalised by the costs of the same step."""
        if self.pending_costs is not None:
            reward = penalized_reward(reward, self.pending_costs, self.penalty_coef)
            self.pending_costs = None
        super().add(obs, action, reward, *args, **kwargs)


class _CostTap(BaseCallback):
    """Hands each step's penalised signal (``info["cost"]`` for ``ppo-penalty``) to the buffer.

    SB3 calls ``on_step`` just before ``add``; the learner's :meth:`PPOPenalty.penalised_signal` says what is
    penalised.
    """

    model: PPOPenalty

    def _on_step(self) -> bool:
        buffer = self.model.rollout_buffer
        assert isinstance(buffer, PenaltyRolloutBuffer)
        buffer.pending_costs = self.model.penalised_signal(self.locals["infos"])
        return True


class PPOPenalty(PPO):
    """SB3 PPO on the reward ``r − β·c``: the fixed-penalty safety arm (``ppo-penalty``).

    Every PPO keyword is accepted. With ``penalty_coef=0`` it is SB3 PPO exactly.

    Args:
        policy: Policy class or name (``"MlpPolicy"``).
        env: Environment, VecEnv or id; it must report ``info["cost"]`` (missing → 0).
        penalty_coef: β >= 0, reward units per cost unit.
        **ppo_kwargs: Everything else goes to :class:`stable_baselines3.PPO`.

    Raises:
        ValueError: If β is negative or not finite, or an env reports a negative or non-finite cost.
    """

    def __init__(self, policy: Any, env: Any, penalty_coef: float = 1.0, **ppo_kwargs: Any) -> None:
        self.penalty_coef = _check_coef(penalty_coef)
        ppo_kwargs.setdefault("rollout_buffer_class", PenaltyRolloutBuffer)
        super().__init__(policy, env, **ppo_kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        if not isinstance(self.rollout_buffer, PenaltyRolloutBuffer):
            raise ValueError("PPOPenalty needs a PenaltyRolloutBuffer (rollout_buffer_class)")
        self.rollout_buffer.penalty_coef = self.penalty_coef

    def penalised_signal(self, infos: list[dict[str, Any]]) -> np.ndarray:
        """What β multiplies, per env of one step: the step's ``info["cost"]`` (cost units)."""
        return costs_from_infos(infos)

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        combined = CallbackList([_CostTap(), super()._init_callback(callback, progress_bar)])
        combined.init_callback(self)
        return combined


class CostPenaltyWrapper(gym.Wrapper):
    """Gymnasium wrapper returning ``reward − β·info["cost"]``; the true reward stays in ``info["reward_task"]``.

    Args:
        env: An env reporting ``info["cost"]``.
        penalty_coef: β >= 0, reward units per cost unit.
    """

    def __init__(self, env: gym.Env, penalty_coef: float) -> None:
        super().__init__(env)
        self.penalty_coef = _check_coef(penalty_coef)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the env and penalise its reward by the step's cost."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        cost = float(costs_from_infos([info])[0])
        penalized = float(penalized_reward(reward, cost, self.penalty_coef))
        return obs, penalized, terminated, truncated, {**info, "reward_task": float(reward)}
