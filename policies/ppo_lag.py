"""PPO-Lagrangian on stable-baselines3: SB3's PPO plus a cost critic, cost GAE and a multiplier λ.

The diff on :class:`stable_baselines3.PPO` is kept small and visible. PPO's ``collect_rollouts()`` and
``train()`` run unchanged; the cost side hooks in around them:

* **Costs in.** ``learn()`` prepends a private callback whose ``on_step`` reads ``infos[i]["cost"]``
  (missing → 0 with one warning) into :class:`~taxbench.policies.buffers.CostRolloutBuffer` at the
  position PPO is about to fill, tallies episode costs, and, on a time-limit truncation, bootstraps
  the cost with ``γ_c·V_c(terminal_obs)`` as SB3 does for rewards.
* **Rollout end.** Its ``on_rollout_end`` (after SB3's reward GAE): λ ← Lagrange update from the mean
  cost of the episodes that *finished in this rollout*; if none finished, λ is kept (no estimate from
  partial episodes; a long-episode env therefore updates λ less often, never with a biased cost).
  Then cost values, cost GAE, and the combined advantage written into the buffer's ``advantages``.
* **Train.** ``super().train()`` (PPO's update, reading the combined advantage), then the cost critic
  is fitted on the cost returns for ``n_epochs`` with its own optimiser
  (:meth:`~taxbench.policies.cost_critic.CostCritic.fit_minibatches`: without autograd on CPU with Adam,
  the same numbers as autograd + ``torch.optim.Adam`` bit for bit, at about a third of the time).

λ = 0 reproduces SB3 PPO bit for bit (same seed → same weights and Adam state), thanks to two fences
(see NOTES.md): the cost critic is initialised inside ``torch.random.fork_rng()`` and its minibatches
are shuffled by its own ``numpy.random.Generator``, so the global RNG streams PPO draws from never move.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.utils import explained_variance

from .buffers import CostRolloutBuffer
from .cost_critic import CostCritic, value_net_arch
from .cost_info import costs_from_infos, tally_episode_costs
from .lagrange import LagrangeOptimizer, make_multiplier

__all__ = ["PPOLagrangian"]

SelfPPOLagrangian = TypeVar("SelfPPOLagrangian", bound="PPOLagrangian")
# Attributes rebuilt at setup / per learn() call, never pickled into the zip.
_TRANSIENT = ("_cost_collector", "_running_ep_cost", "_finished_ep_costs", "_warned_missing_cost")


def _check_unit_interval(name: str, value: float | None) -> None:
    if value is not None and not (0.0 <= float(value) <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {value}")


class _CostCollector(BaseCallback):
    """Internal callback feeding ``info["cost"]`` to a :class:`PPOLagrangian` (see module docstring)."""

    model: PPOLagrangian

    def _on_step(self) -> bool:
        self.model._record_costs(self.locals["infos"], self.locals["dones"])
        return True

    def _on_rollout_end(self) -> None:
        self.model._finish_rollout(self.locals["new_obs"], self.locals["dones"])


class PPOLagrangian(PPO):
    """PPO-Lagrangian: PPO on the advantage ``(Â_r − λ·Ā_c)/(1 + λ)`` with λ adapted to a cost limit.

    All arguments of :class:`stable_baselines3.PPO` are accepted as keywords (``learning_rate``,
    ``n_steps``, ``batch_size``, ``n_epochs``, ``gamma``, ``gae_lambda``, ``seed``, ``device``, ...).
    The env must report a per-step constraint cost in ``info["cost"]`` (float >= 0).

    Args:
        policy: Policy class or name (``"MlpPolicy"``); Dict observations are not supported.
        env: Environment, VecEnv or registered id.
        cost_limit: Limit ``d`` on the expected (undiscounted) episode cost.
        lagrange_lr: Step size of the λ update (see :class:`~taxbench.policies.lagrange.Lagrange`).
        lagrange_init: Initial λ.
        lagrange_pinned: Keep λ at ``lagrange_init`` (with 0: plain PPO, bit-identical).
        lagrange_optimizer: ``"sgd"`` (projected gradient ascent) or ``"adam"`` (OmniSafe-like).
        lagrange_method: ``"grad"`` (gradient ascent, :class:`~taxbench.policies.lagrange.Lagrange`) or
            ``"pid"`` (PID-Lagrangian, :class:`~taxbench.policies.lagrange.PIDLagrange`).
        pid_kp: Proportional gain of the PID multiplier (OmniSafe default 0.1).
        pid_ki: Integral gain of the PID multiplier (0.01).
        pid_kd: Derivative gain of the PID multiplier (0.01).
        cost_gamma: Discount of the costs; None → PPO's ``gamma``.
        cost_gae_lambda: GAE factor of the costs; None → PPO's ``gae_lambda``.
        cost_critic_lr: Learning rate of the cost critic; None → PPO's learning rate (schedule included).
        cost_batch_size: Minibatch size of the cost critic fit; None → PPO's ``batch_size``.
        _init_setup_model: Build the networks now (SB3 convention; ``load`` passes False).
        **ppo_kwargs: Everything else goes to :class:`stable_baselines3.PPO`.

    Raises:
        ValueError: On an invalid cost/Lagrange setting or a rollout buffer class that cannot hold costs.
    """

    rollout_buffer: CostRolloutBuffer
    cost_critic: CostCritic
    cost_critic_optimizer: th.optim.Optimizer

    def __init__(
        self,
        policy: Any,
        env: Any,
        cost_limit: float = 25.0,
        lagrange_lr: float = 0.035,
        lagrange_init: float = 0.0,
        lagrange_pinned: bool = False,
        lagrange_optimizer: LagrangeOptimizer = "sgd",
        lagrange_method: str = "grad",
        pid_kp: float = 0.1,
        pid_ki: float = 0.01,
        pid_kd: float = 0.01,
        cost_gamma: float | None = None,
        cost_gae_lambda: float | None = None,
        cost_critic_lr: float | None = None,
        cost_batch_size: int | None = None,
        _init_setup_model: bool = True,
        **ppo_kwargs: Any,
    ) -> None:
        buffer_class = ppo_kwargs.pop("rollout_buffer_class", None) or CostRolloutBuffer
        if not (isinstance(buffer_class, type) and issubclass(buffer_class, CostRolloutBuffer)):
            raise ValueError(f"rollout_buffer_class must subclass CostRolloutBuffer, got {buffer_class!r}")
        _check_unit_interval("cost_gamma", cost_gamma)
        _check_unit_interval("cost_gae_lambda", cost_gae_lambda)
        if cost_critic_lr is not None and not (np.isfinite(cost_critic_lr) and cost_critic_lr > 0):
            raise ValueError(f"cost_critic_lr must be a finite number > 0, got {cost_critic_lr}")
        if cost_batch_size is not None and int(cost_batch_size) < 1:
            raise ValueError(f"cost_batch_size must be >= 1, got {cost_batch_size}")
        # The multiplier validates cost_limit, lr, gains and init (ValueError with the offending name).
        self.lagrange = make_multiplier(
            lagrange_method,
            cost_limit=cost_limit,
            lr=lagrange_lr,
            init=lagrange_init,
            pinned=lagrange_pinned,
            optimizer=lagrange_optimizer,
            kp=pid_kp,
            ki=pid_ki,
            kd=pid_kd,
        )
        super().__init__(policy, env, rollout_buffer_class=buffer_class, _init_setup_model=False, **ppo_kwargs)
        self.cost_gamma = self.gamma if cost_gamma is None else float(cost_gamma)
        self.cost_gae_lambda = self.gae_lambda if cost_gae_lambda is None else float(cost_gae_lambda)
        self.cost_critic_lr = cost_critic_lr
        self.cost_batch_size = cost_batch_size
        # Own stream for the cost critic's minibatch shuffle: the global numpy RNG is PPO's.
        self._cost_rng = np.random.default_rng(self.seed)
        self._init_transient()
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ setup, save / load
    def _init_transient(self) -> None:
        self._cost_collector: _CostCollector | None = None
        self._running_ep_cost = np.zeros(getattr(self, "n_envs", 1), dtype=np.float64)
        self._finished_ep_costs: list[float] = []
        self._warned_missing_cost = False

    def _setup_model(self) -> None:
        if isinstance(self.observation_space, spaces.Dict):
            raise NotImplementedError("PPOLagrangian does not support Dict observation spaces yet")
        self.rollout_buffer_kwargs = {
            **self.rollout_buffer_kwargs,
            "cost_gamma": self.cost_gamma,
            "cost_gae_lambda": self.cost_gae_lambda,
        }
        super()._setup_model()
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
        state_dicts, torch_vars = super()._get_torch_save_params()
        return [*state_dicts, "cost_critic", "cost_critic_optimizer"], torch_vars

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), *_TRANSIENT]

    # ------------------------------------------------------------------ public read-outs
    @property
    def lagrange_multiplier(self) -> float:
        """float: The current λ (the value used for the latest policy update)."""
        return self.lagrange.value

    @property
    def cost_limit(self) -> float:
        """float: The episode-cost limit ``d``."""
        return self.lagrange.cost_limit

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
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        user_callback = super()._init_callback(callback, progress_bar)
        self._cost_collector = _CostCollector()
        # Costs are collected first, so user callbacks see this rollout's λ at on_rollout_end.
        combined = CallbackList([self._cost_collector, user_callback])
        combined.init_callback(self)
        return combined

    def _extract_costs(self, infos: list[dict[str, Any]]) -> np.ndarray:
        return costs_from_infos(infos, np.float32, on_missing=self._warn_missing_cost)

    def _warn_missing_cost(self) -> None:
        if not self._warned_missing_cost:
            warnings.warn(
                "info has no 'cost' key: treating the cost as 0 (warned once). "
                "PPOLagrangian needs envs that report info['cost'].",
                UserWarning,
                stacklevel=4,
            )
            self._warned_missing_cost = True

    def _record_costs(self, infos: list[dict[str, Any]], dones: np.ndarray) -> None:
        """Store this step's costs at the buffer slot PPO fills next and tally episode costs."""
        costs = self._extract_costs(infos)
        buffer_costs = self.rollout_buffer.costs[self.rollout_buffer.pos]  # a view: written in place
        buffer_costs[:] = costs
        for idx in tally_episode_costs(self._running_ep_cost, self._finished_ep_costs, costs, dones):
            terminal_obs = infos[idx].get("terminal_observation")
            if terminal_obs is not None and infos[idx].get("TimeLimit.truncated", False):
                # Same timeout handling as SB3 applies to rewards (GitHub issue #633).
                terminal_value = self.predict_cost_values(np.asarray(terminal_obs)[None])[0]
                buffer_costs[idx] += self.cost_gamma * terminal_value

    def _finish_rollout(self, last_obs: np.ndarray, dones: np.ndarray) -> None:
        """λ update, cost GAE and combined advantage, after SB3 computed the reward GAE."""
        buffer = self.rollout_buffer
        if self._finished_ep_costs:
            mean_ep_cost = float(np.mean(self._finished_ep_costs))
            self.lagrange.update(mean_ep_cost)
            self.logger.record("lagrange/ep_cost_mean", mean_ep_cost)
            self.logger.record("lagrange/episodes", len(self._finished_ep_costs))
        self._finished_ep_costs = []
        obs = buffer.observations.reshape(-1, *buffer.obs_shape)
        buffer.cost_values = self.predict_cost_values(obs).reshape(buffer.buffer_size, buffer.n_envs)
        buffer.compute_cost_returns_and_advantage(self.predict_cost_values(last_obs), np.asarray(dones))
        buffer.combine_advantages(self.lagrange.value)
        self.logger.record("lagrange/lambda", self.lagrange.value)
        self.logger.record("lagrange/cost_limit", self.lagrange.cost_limit)

    # ------------------------------------------------------------------ training
    def _cost_critic_current_lr(self) -> float:
        if self.cost_critic_lr is not None:
            return float(self.cost_critic_lr)
        return float(self.lr_schedule(self._current_progress_remaining))

    def train(self) -> None:
        """PPO's update on the combined advantage, then one fit of the cost critic."""
        super().train()
        self._train_cost_critic()

    def _cost_minibatches(
        self, features: th.Tensor, returns: th.Tensor, batch_size: int
    ) -> Iterator[tuple[th.Tensor, th.Tensor]]:
        """``n_epochs`` shuffled passes over the rollout, in minibatches (drawn lazily, one per fit step)."""
        n_samples = returns.shape[0]
        for _ in range(self.n_epochs):
            # Fence 2: own Generator, so PPO's next np.random.permutation is unaffected.
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
        batch_size = self.cost_batch_size or self.batch_size
        minibatches = self._cost_minibatches(features, returns, batch_size)
        losses = self.cost_critic.fit_minibatches(self.cost_critic_optimizer, minibatches, self.max_grad_norm)
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

    def learn(
        self: SelfPPOLagrangian,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "PPOLagrangian",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfPPOLagrangian:
        """Train for ``total_timesteps`` env steps (SB3 semantics; only the log name differs from PPO)."""
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
