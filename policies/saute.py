"""Saute RL (Sootla et al. 2022): the safety budget as part of the state, trained with unmodified SB3 PPO.

:class:`SauteWrapper` makes an almost-sure episode-cost constraint ``Σ_t c_t ≤ d`` part of the MDP:

* the observation gets one more entry, the remaining normalised budget
  ``z_t = 1 − (Σ_{τ<t} c_τ) / d`` (1 at reset, below 0 once the episode cost exceeds ``d``);
* the reward of every step after which ``z < 0`` (the budget is overspent) is replaced by
  ``unsafe_reward``, a large negative number; the env's own reward stays in ``info["reward_task"]``.

The budget is undiscounted, like the episode-cost limits of every other arm, and the episode is not ended
when the budget is spent. With ``d = ∞`` nothing changes but a constant 1.0 appended to the observation,
so the ``saute`` arm is PPO on the wrapped env's reward (``tests/policies/test_saute.py`` checks it bit for
bit). The wrapper only needs ``info["cost"]`` and a 1-D ``Box`` observation, so it composes with every env
of the suite.

Episode ends matter more here than for the other arms. At a time-limit *truncation* SB3 bootstraps
``γ·V(s_T, z_T)``, so budget left at the end still has value, as if the episode went on. On a task whose
horizon is in its observation, that bias is measured: reported as a truncation, the closed-form point mass
stalled at J ≈ 61 of 75 with two thirds of its budget unspent; reported as a termination (its true nature),
J ≈ 74 at cost ≈ 23 of 25 (``tests/policies/test_closed_form.py``). The suite's locomotion envs truncate at
1,000 steps without time in the observation, where the continuing-task reading is SB3's and Saute's own; a
Saute policy there may keep some budget in hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .cost_info import costs_from_infos

__all__ = ["DEFAULT_UNSAFE_REWARD", "SauteWrapper", "make_saute_wrapper", "saute_budget_of"]

#: Reward per step once the budget is overspent (OmniSafe's Saute default), reward units.
DEFAULT_UNSAFE_REWARD = -1.0


class SauteWrapper(gym.Wrapper):
    """Append the remaining normalised safety budget to the observation; replace the reward once it is spent.

    Args:
        env: An env with a 1-D ``Box`` observation space reporting ``info["cost"]`` (missing → 0).
        budget: Episode-cost budget ``d`` (> 0, cost units per episode; ``math.inf`` for no constraint).
        unsafe_reward: Reward of each step that ends with the budget overspent (reward units; should be below
            any reward the env can pay, so that overspending never pays).

    Raises:
        ValueError: For a budget that is not > 0, a non-finite ``unsafe_reward`` or a non-Box or multi-dimensional
            observation space.
    """

    def __init__(self, env: gym.Env, budget: float, unsafe_reward: float = DEFAULT_UNSAFE_REWARD) -> None:
        super().__init__(env)
        budget, unsafe_reward = float(budget), float(unsafe_reward)
        if math.isnan(budget) or budget <= 0:
            raise ValueError(f"saute budget must be > 0 (math.inf for none), got {budget}")
        if not math.isfinite(unsafe_reward):
            raise ValueError(f"saute unsafe_reward must be a finite number, got {unsafe_reward}")
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"SauteWrapper needs a 1-D Box observation space, got {space}")
        self.saute_budget = budget
        self.unsafe_reward = unsafe_reward
        self.observation_space = spaces.Box(
            low=np.append(space.low, -np.inf).astype(space.dtype),
            high=np.append(space.high, 1.0).astype(space.dtype),
            dtype=space.dtype,  # type: ignore[arg-type]
        )
        self.budget_left = 1.0  # normalised: 1 at reset, < 0 once overspent

    def _augment(self, obs: np.ndarray) -> np.ndarray:
        return np.append(obs, self.budget_left).astype(self.observation_space.dtype)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Reset the env and the budget (normalised budget 1)."""
        obs, info = self.env.reset(seed=seed, options=options)
        self.budget_left = 1.0
        return self._augment(obs), {**info, "saute_budget_left": self.budget_left}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Step the env, spend the step's cost from the budget, and replace the reward if it is overspent."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        cost = float(costs_from_infos([info], np.float64)[0])
        self.budget_left -= cost / self.saute_budget  # 0 for an infinite budget: stays exactly 1
        saute_reward = float(reward) if self.budget_left >= 0 else self.unsafe_reward
        info = {**info, "reward_task": float(reward), "saute_budget_left": self.budget_left}
        return self._augment(obs), saute_reward, terminated, truncated, info


@dataclass(frozen=True)
class _SauteFactory:
    budget: float
    unsafe_reward: float

    def __call__(self, env: gym.Env) -> gym.Env:
        return SauteWrapper(env, self.budget, self.unsafe_reward)


def make_saute_wrapper(budget: float, unsafe_reward: float = DEFAULT_UNSAFE_REWARD) -> Any:
    """A picklable one-argument function wrapping an env in :class:`SauteWrapper` with this budget."""
    if math.isnan(float(budget)) or float(budget) <= 0:
        raise ValueError(f"saute budget must be > 0 (math.inf for none), got {budget}")
    return _SauteFactory(float(budget), float(unsafe_reward))


def saute_budget_of(env: Any) -> float | None:
    """The budget of the :class:`SauteWrapper` inside an env or VecEnv (None if it has none).

    Args:
        env: A gymnasium env (possibly wrapped further) or an SB3 VecEnv of them.
    """
    if hasattr(env, "env_is_wrapped"):  # SB3 VecEnv: every sub-env must carry the wrapper
        if not all(env.env_is_wrapped(SauteWrapper)):
            return None
        budgets = {float(b) for b in env.get_attr("saute_budget")}
        return budgets.pop() if len(budgets) == 1 else None
    while isinstance(env, gym.Wrapper):
        if isinstance(env, SauteWrapper):
            return env.saute_budget
        env = env.env
    return None
