"""The cost side shared by every on-policy constrained learner: cost collection, cost critic, cost GAE.

:class:`CostLearnerMixin` goes in front of an SB3 on-policy algorithm (PPO for ``ppo-lag`` and ``cup``,
sb3-contrib's TRPO for ``cpo``) and adds, without copying the algorithm's ``collect_rollouts()`` or its policy
update:

* **Costs in.** ``learn()`` prepends a private callback whose ``on_step`` reads ``infos[i]["cost"]``
  (missing → 0 with one warning) into :class:`~taxbench.policies.buffers.CostRolloutBuffer` at the
  position the algorithm is about to fill, tallies episode costs and lengths, and, on a time-limit
  truncation, bootstraps the cost with ``γ_c·V_c(terminal_obs)`` as SB3 does for rewards.
* **Rollout end.** The callback's ``on_rollout_end`` (after SB3's reward GAE) calls the learner's
  ``_finish_rollout``; :meth:`CostLearnerMixin._compute_cost_advantages` fills cost values and cost GAE.
* **Cost critic.** :meth:`CostLearnerMixin._train_cost_critic` fits V_c on the cost returns.

The algorithm's random streams never move (see NOTES.md): the cost critic is initialised inside
``torch.random.fork_rng()`` and its minibatches are shuffled by its own ``numpy.random.Generator``, which is
what lets ``ppo-lag`` at λ = 0 be SB3 PPO and ``cpo`` with a slack constraint be TRPO, bit for bit.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.utils import explained_variance

from .buffers import CostRolloutBuffer
from .cost_critic import CostCritic, value_net_arch
from .cost_info import costs_from_infos, tally_episode_costs

__all__ = ["CostLearnerMixin"]

#: Attributes rebuilt at setup / per learn() call, never pickled into the zip.
COST_TRANSIENT = (
    "_cost_collector",
    "_running_ep_cost",
    "_finished_ep_costs",
    "_running_ep_length",
    "_finished_ep_lengths",
    "_warned_missing_cost",
)


def _check_unit_interval(name: str, value: float | None) -> None:
    if value is not None and not (0.0 <= float(value) <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {value}")


class _CostCollector(BaseCallback):
    """Internal callback feeding ``info["cost"]`` to a :class:`CostLearnerMixin` learner (see module docstring)."""

    model: Any

    def _on_step(self) -> bool:
        self.model._record_costs(self.locals["infos"], self.locals["dones"])
        return True

    def _on_rollout_end(self) -> None:
        self.model._finish_rollout(self.locals["new_obs"], self.locals["dones"])


class CostLearnerMixin:
    """Cost critic, cost GAE and episode-cost bookkeeping for an SB3 on-policy algorithm.

    Use as the first base: ``class MyLearner(CostLearnerMixin, PPO)``. The subclass calls
    :meth:`_cost_buffer_class` on its kwargs before ``super().__init__`` and :meth:`_init_cost_settings` after
    it, implements ``_finish_rollout(last_obs, dones)`` (usually calling :meth:`_compute_cost_advantages`)
    and calls :meth:`_train_cost_critic` from its ``train()``.
    """

    rollout_buffer: CostRolloutBuffer
    cost_critic: CostCritic
    cost_critic_optimizer: th.optim.Optimizer
    # provided by the SB3 algorithm this mixin is combined with
    gamma: float
    gae_lambda: float
    seed: int | None
    device: th.device
    n_envs: int
    policy: Any
    observation_space: spaces.Space
    logger: Any
    lr_schedule: Any
    _current_progress_remaining: float
    _last_obs: Any

    @staticmethod
    def _cost_buffer_class(kwargs: dict[str, Any]) -> type[CostRolloutBuffer]:
        """Pop ``rollout_buffer_class`` from ``kwargs`` (default :class:`CostRolloutBuffer`) and check it.

        Raises:
            ValueError: If the class cannot hold costs.
        """
        buffer_class = kwargs.pop("rollout_buffer_class", None) or CostRolloutBuffer
        if not (isinstance(buffer_class, type) and issubclass(buffer_class, CostRolloutBuffer)):
            raise ValueError(f"rollout_buffer_class must subclass CostRolloutBuffer, got {buffer_class!r}")
        return buffer_class

    @staticmethod
    def _check_cost_settings(
        cost_gamma: float | None,
        cost_gae_lambda: float | None,
        cost_critic_lr: float | None,
        cost_batch_size: int | None,
    ) -> None:
        """Validate the cost-side settings (before the algorithm is built, so a bad one fails fast)."""
        _check_unit_interval("cost_gamma", cost_gamma)
        _check_unit_interval("cost_gae_lambda", cost_gae_lambda)
        if cost_critic_lr is not None and not (np.isfinite(cost_critic_lr) and cost_critic_lr > 0):
            raise ValueError(f"cost_critic_lr must be a finite number > 0, got {cost_critic_lr}")
        if cost_batch_size is not None and int(cost_batch_size) < 1:
            raise ValueError(f"cost_batch_size must be >= 1, got {cost_batch_size}")

    def _init_cost_settings(
        self,
        cost_gamma: float | None,
        cost_gae_lambda: float | None,
        cost_critic_lr: float | None,
        cost_batch_size: int | None,
    ) -> None:
        """Store the cost settings (None → the reward side's value) and seed the cost critic's own RNG."""
        self.cost_gamma = self.gamma if cost_gamma is None else float(cost_gamma)
        self.cost_gae_lambda = self.gae_lambda if cost_gae_lambda is None else float(cost_gae_lambda)
        self.cost_critic_lr = cost_critic_lr
        self.cost_batch_size = cost_batch_size
        # Own stream for the cost critic's minibatch shuffle: the global numpy RNG is the algorithm's.
        self._cost_rng = np.random.default_rng(self.seed)
        self._init_transient()

    # ------------------------------------------------------------------ setup, save / load
    def _init_transient(self) -> None:
        n_envs = getattr(self, "n_envs", 1)
        self._cost_collector: _CostCollector | None = None
        self._running_ep_cost = np.zeros(n_envs, dtype=np.float64)
        self._finished_ep_costs: list[float] = []
        self._running_ep_length = np.zeros(n_envs, dtype=np.float64)
        self._finished_ep_lengths: list[float] = []
        self._warned_missing_cost = False

    def _setup_model(self) -> None:
        if isinstance(self.observation_space, spaces.Dict):
            raise NotImplementedError(f"{type(self).__name__} does not support Dict observation spaces yet")
        self.rollout_buffer_kwargs = {
            **self.rollout_buffer_kwargs,
            "cost_gamma": self.cost_gamma,
            "cost_gae_lambda": self.cost_gae_lambda,
        }
        super()._setup_model()  # type: ignore[misc]
        self._init_transient()
        # Fence 1: initialise the cost critic without moving the global torch RNG (CPU; CUDA untouched).
        with th.random.fork_rng(devices=[]):
            self.cost_critic = CostCritic(
                self.observation_space,
                hidden_sizes=value_net_arch(self.policy),
                activation_fn=self.policy.activation_fn,
                ortho_init=self.policy.ortho_init,
                normalize_images=self.policy.normalize_images,
            ).to(self.device)
        self.cost_critic_optimizer = self.policy.optimizer_class(
            self.cost_critic.parameters(), lr=self._cost_critic_current_lr(), **self.policy.optimizer_kwargs
        )

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, torch_vars = super()._get_torch_save_params()  # type: ignore[misc]
        return [*state_dicts, "cost_critic", "cost_critic_optimizer"], torch_vars

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), *COST_TRANSIENT]  # type: ignore[misc]

    # ------------------------------------------------------------------ public read-outs
    def predict_cost_values(self, observations: np.ndarray) -> np.ndarray:
        """Cost-critic estimates ``V_c(s)`` for a batch of (already vec-normalised) observations.

        Args:
            observations: Shape ``(batch, *obs_shape)``.

        Returns:
            float32 array of shape ``(batch,)``.
        """
        return self.cost_critic.predict_numpy(observations, self.device)

    # ------------------------------------------------------------------ learn hooks
    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if reset_num_timesteps or self._last_obs is None:  # the env is about to be reset
            self._running_ep_cost = np.zeros(self.n_envs, dtype=np.float64)
            self._finished_ep_costs = []
            self._running_ep_length = np.zeros(self.n_envs, dtype=np.float64)
            self._finished_ep_lengths = []
        return super()._setup_learn(  # type: ignore[misc]
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        user_callback = super()._init_callback(callback, progress_bar)  # type: ignore[misc]
        self._cost_collector = _CostCollector()
        # Costs are collected first, so user callbacks see this rollout's λ at on_rollout_end.
        combined = CallbackList([self._cost_collector, user_callback])
        combined.init_callback(self)  # type: ignore[arg-type]
        return combined

    def _warn_missing_cost(self) -> None:
        if not self._warned_missing_cost:
            name = type(self).__name__
            warnings.warn(
                f"info has no 'cost' key: treating the cost as 0 (warned once). {name} needs envs that report "
                "info['cost'].",
                UserWarning,
                stacklevel=4,
            )
            self._warned_missing_cost = True

    def _record_costs(self, infos: list[dict[str, Any]], dones: np.ndarray) -> None:
        """Store this step's costs at the buffer slot the algorithm fills next; tally episode costs and lengths."""
        costs = costs_from_infos(infos, np.float32, on_missing=self._warn_missing_cost)
        buffer_costs = self.rollout_buffer.costs[self.rollout_buffer.pos]  # a view: written in place
        buffer_costs[:] = costs
        self._running_ep_length += 1
        for idx in tally_episode_costs(self._running_ep_cost, self._finished_ep_costs, costs, dones):
            self._finished_ep_lengths.append(float(self._running_ep_length[idx]))
            self._running_ep_length[idx] = 0
            terminal_obs = infos[idx].get("terminal_observation")
            if terminal_obs is not None and infos[idx].get("TimeLimit.truncated", False):
                # Same timeout handling as SB3 applies to rewards (GitHub issue #633).
                terminal_value = self.predict_cost_values(np.asarray(terminal_obs)[None])[0]
                buffer_costs[idx] += self.cost_gamma * terminal_value

    def _pop_finished_episodes(self) -> tuple[list[float], list[float]]:
        """Costs and lengths (steps) of the episodes finished since the last call; the lists restart empty."""
        costs, lengths = self._finished_ep_costs, self._finished_ep_lengths
        self._finished_ep_costs, self._finished_ep_lengths = [], []
        if costs:
            self.logger.record("lagrange/ep_cost_mean", float(np.mean(costs)))
            self.logger.record("lagrange/episodes", len(costs))
        return costs, lengths

    def _compute_cost_advantages(self, last_obs: np.ndarray, dones: np.ndarray) -> None:
        """Cost values of the rollout's observations, then cost GAE and cost returns, into the buffer."""
        buffer = self.rollout_buffer
        obs = buffer.observations.reshape(-1, *buffer.obs_shape)
        buffer.cost_values = self.predict_cost_values(obs).reshape(buffer.buffer_size, buffer.n_envs)
        buffer.compute_cost_returns_and_advantage(self.predict_cost_values(last_obs), np.asarray(dones))

    # ------------------------------------------------------------------ cost critic fit
    def _cost_critic_current_lr(self) -> float:
        if self.cost_critic_lr is not None:
            return float(self.cost_critic_lr)
        return float(self.lr_schedule(self._current_progress_remaining))

    def _cost_critic_epochs(self) -> int:
        """Passes over the rollout per cost critic fit (PPO's ``n_epochs``; TRPO learners override)."""
        return int(self.n_epochs)  # type: ignore[attr-defined]

    def _cost_critic_max_grad_norm(self) -> float:
        """Gradient-norm clip of the cost critic fit (PPO's ``max_grad_norm``; TRPO learners override)."""
        return float(self.max_grad_norm)  # type: ignore[attr-defined]

    def _cost_minibatches(
        self, features: th.Tensor, returns: th.Tensor, batch_size: int
    ) -> Iterator[tuple[th.Tensor, th.Tensor]]:
        """Shuffled passes over the rollout, in minibatches (drawn lazily, one per fit step)."""
        n_samples = returns.shape[0]
        for _ in range(self._cost_critic_epochs()):
            # Fence 2: own Generator, so the algorithm's next np.random.permutation is unaffected.
            order = th.as_tensor(self._cost_rng.permutation(n_samples), device=self.device)
            # One gather per epoch; minibatches are contiguous slices of it (the same rows in the same order).
            yield from zip(features[order].split(batch_size), returns[order].split(batch_size), strict=True)

    def _train_cost_critic(self) -> None:
        lr = self._cost_critic_current_lr()
        for group in self.cost_critic_optimizer.param_groups:
            group["lr"] = lr
        self.cost_critic.train()
        obs_np, returns_np = self.rollout_buffer.flat_cost_data()
        features = self.cost_critic.preprocess(th.as_tensor(obs_np, device=self.device))
        returns = th.as_tensor(returns_np, device=self.device)
        batch_size = self.cost_batch_size or self.batch_size  # type: ignore[attr-defined]
        minibatches = self._cost_minibatches(features, returns, batch_size)
        losses = self.cost_critic.fit_minibatches(
            self.cost_critic_optimizer, minibatches, self._cost_critic_max_grad_norm()
        )
        self.cost_critic.eval()
        # One device-to-host copy; float64 as the mean of the per-step Python floats it replaces.
        self.logger.record("train/cost_value_loss", float(np.mean(th.stack(losses).cpu().numpy().astype(np.float64))))
        self.logger.record(
            "train/cost_explained_variance",
            float(
                explained_variance(
                    self.rollout_buffer.cost_values.flatten(), self.rollout_buffer.cost_returns.flatten()
                )
            ),
        )
