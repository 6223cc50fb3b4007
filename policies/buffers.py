"""Rollout buffer with a cost channel: cost GAE and the Lagrangian advantage.

:class:`CostRolloutBuffer` is SB3's :class:`~stable_baselines3.common.buffers.RolloutBuffer` plus four
arrays (``costs``, ``cost_values``, ``cost_advantages``, ``cost_returns``) and two steps that run after
SB3 has computed the reward GAE:

1. :meth:`CostRolloutBuffer.compute_cost_returns_and_advantage`: GAE(γ_c, λ_c) on the costs, with the
   same episode-boundary handling as SB3's reward GAE (:func:`gae` is that recursion, shared by both).
2. :meth:`CostRolloutBuffer.combine_advantages`: replaces ``advantages`` (what PPO's ``train()`` reads)
   by the Lagrangian advantage, see its docstring for the normalisation convention.

The reward path (``rewards``, ``values``, ``returns``, ``advantages`` before combining) is SB3's, untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.type_aliases import RolloutBufferSamples

__all__ = ["ADV_STD_EPS", "CostRolloutBuffer", "gae"]

ADV_STD_EPS = 1e-8  # as in SB3's / OmniSafe's advantage standardisation


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    episode_starts: np.ndarray,
    last_values: np.ndarray,
    dones: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> np.ndarray:
    """Generalised advantage estimation over a ``(n_steps, n_envs)`` rollout.

    The same recursion as SB3's ``RolloutBuffer.compute_returns_and_advantage`` (so it reproduces SB3's
    reward advantages exactly when given the reward arrays), usable for any per-step signal:
    ``δ_t = r_t + γ·V_{t+1}·(1 − done_t) − V_t`` and ``A_t = δ_t + γ·λ·(1 − done_t)·A_{t+1}``,
    where ``done_t`` is ``episode_starts[t + 1]`` inside the rollout and ``dones`` after its last step.

    Args:
        rewards: Per-step signal (reward or cost), shape ``(n_steps, n_envs)``.
        values: Value estimates of the visited states, same shape.
        episode_starts: 1.0 where a step is the first of an episode, same shape.
        last_values: Value of the state after the last step, shape ``(n_envs,)``.
        dones: Whether the last step ended an episode, shape ``(n_envs,)``.
        gamma: Discount factor.
        gae_lambda: GAE trade-off factor (1 = Monte Carlo, 0 = one-step TD).

    Returns:
        The advantages, float32, shape ``(n_steps, n_envs)``.
    """
    n_steps = rewards.shape[0]
    # Everything but the recursion is elementwise: computed for all steps at once, with the operations of the
    # step-by-step formulas above in the same order and dtypes (float32 for the buffers' arrays): same numbers.
    next_values = np.empty_like(values)
    next_values[:-1] = values[1:]
    next_values[-1] = np.asarray(last_values, dtype=np.float32).flatten()
    next_non_terminal = np.empty_like(episode_starts)
    next_non_terminal[:-1] = 1.0 - episode_starts[1:]
    next_non_terminal[-1] = 1.0 - np.asarray(dones).astype(np.float32)
    deltas = rewards + gamma * next_values * next_non_terminal - values
    decays = gamma * gae_lambda * next_non_terminal
    advantages = np.zeros(rewards.shape, dtype=np.float32)
    last_gae_lam: np.ndarray | float = 0
    for step in reversed(range(n_steps)):
        last_gae_lam = deltas[step] + decays[step] * last_gae_lam
        advantages[step] = last_gae_lam
    return advantages


class CostRolloutBuffer(RolloutBuffer):
    """SB3 rollout buffer that also holds per-step costs and their GAE.

    Args:
        buffer_size: Steps per environment in one rollout (PPO's ``n_steps``).
        observation_space: Observation space.
        action_space: Action space.
        device: Torch device of the sampled tensors.
        gae_lambda: GAE factor of the reward advantages.
        gamma: Discount factor of the rewards.
        n_envs: Number of parallel environments.
        cost_gamma: Discount factor of the costs; None means ``gamma``.
        cost_gae_lambda: GAE factor of the cost advantages; None means ``gae_lambda``.
    """

    costs: np.ndarray
    cost_values: np.ndarray
    cost_advantages: np.ndarray
    cost_returns: np.ndarray
    reward_advantages: np.ndarray

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        gae_lambda: float = 1,
        gamma: float = 0.99,
        n_envs: int = 1,
        cost_gamma: float | None = None,
        cost_gae_lambda: float | None = None,
    ) -> None:
        self.cost_gamma = gamma if cost_gamma is None else cost_gamma
        self.cost_gae_lambda = gae_lambda if cost_gae_lambda is None else cost_gae_lambda
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            gae_lambda=gae_lambda,
            gamma=gamma,
            n_envs=n_envs,
        )

    def reset(self) -> None:
        """Clear the rollout, cost arrays included."""
        shape = (self.buffer_size, self.n_envs)
        self.costs = np.zeros(shape, dtype=np.float32)
        self.cost_values = np.zeros(shape, dtype=np.float32)
        self.cost_advantages = np.zeros(shape, dtype=np.float32)
        self.cost_returns = np.zeros(shape, dtype=np.float32)
        self.reward_advantages = np.zeros(shape, dtype=np.float32)
        super().reset()

    def compute_cost_returns_and_advantage(self, last_cost_values: np.ndarray, dones: np.ndarray) -> None:
        """Cost GAE and TD(λ_c) cost returns; call after ``costs`` and ``cost_values`` are filled.

        Args:
            last_cost_values: Cost value of the observation after the last step, shape ``(n_envs,)``.
            dones: Whether the last step ended an episode, shape ``(n_envs,)``.
        """
        self.cost_advantages = gae(
            self.costs,
            self.cost_values,
            self.episode_starts,
            last_cost_values,
            dones,
            self.cost_gamma,
            self.cost_gae_lambda,
        )
        self.cost_returns = self.cost_advantages + self.cost_values

    def combine_advantages(self, lagrange_multiplier: float) -> None:
        """Replace ``advantages`` by the Lagrangian advantage ``(Â_r − λ·Ā_c) / (1 + λ)``.

        Normalisation follows OmniSafe's PPOLag (``standardized_adv_r`` and ``standardized_adv_c``):
        the reward advantage is standardised over the rollout (``Â_r = (A_r − μ_r) / σ_r``) and the
        cost advantage is only centred (``Ā_c = A_c − μ_c``), so λ weighs a unit-scale reward
        advantage against a cost advantage in cost units. The result is stored in reward units,
        i.e. multiplied by σ_r and shifted by μ_r::

            A = (A_r − λ·σ_r·Ā_c) / (1 + λ)

        which PPO's own per-minibatch standardisation (``normalize_advantage=True``) maps back to
        the standardised combination, and which at λ = 0 is ``A_r`` bit for bit: plain PPO. Because
        PPO re-standardises, the ``1 / (1 + λ)`` factor only matters when ``normalize_advantage`` is
        off. The raw reward advantages stay available in ``reward_advantages``.

        Args:
            lagrange_multiplier: λ >= 0.
        """
        lam = float(lagrange_multiplier)
        self.reward_advantages = self.advantages.copy()
        a_r = self.advantages.astype(np.float64)
        a_c = self.cost_advantages.astype(np.float64)
        sigma_r = a_r.std() + ADV_STD_EPS
        combined = (a_r - lam * sigma_r * (a_c - a_c.mean())) / (1.0 + lam)
        self.advantages = combined.astype(np.float32)

    def _get_samples(self, batch_inds: np.ndarray, env: Any = None) -> RolloutBufferSamples:
        """SB3's samples of these rows; the rows are kept in ``last_batch_inds`` to index the cost arrays alike."""
        self.last_batch_inds = batch_inds
        return super()._get_samples(batch_inds, env)

    def flat_cost_advantages(self, batch_inds: np.ndarray | None = None) -> np.ndarray:
        """Cost advantages flattened to ``(n_steps * n_envs,)`` as SB3 flattens ``advantages``, optionally rows.

        Args:
            batch_inds: Rows to keep (e.g. ``last_batch_inds``, the rows of the latest sample); None for all.
        """
        flat = self.swap_and_flatten(self.cost_advantages).reshape(-1)
        return flat if batch_inds is None else flat[batch_inds]

    def flat_cost_data(self) -> tuple[np.ndarray, np.ndarray]:
        """Observations and cost returns flattened to ``(n_steps * n_envs, ...)`` in the same order.

        Works before and after PPO's ``get()`` (which flattens ``observations`` in place).

        Returns:
            ``(observations, cost_returns)``.
        """
        obs = self.observations if self.generator_ready else self.swap_and_flatten(self.observations)
        return obs, self.swap_and_flatten(self.cost_returns).reshape(-1)
