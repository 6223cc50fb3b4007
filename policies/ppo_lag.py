"""PPO-Lagrangian on stable-baselines3: SB3's PPO plus a cost critic, cost GAE and a multiplier λ.

The diff on :class:`stable_baselines3.PPO` is kept small and visible. PPO's ``collect_rollouts()`` and
``train()`` run unchanged; the cost side (shared with ``cpo`` and ``cup`` through
:class:`~taxbench.policies.cost_learner.CostLearnerMixin`) hooks in around them:

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

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.type_aliases import MaybeCallback

from .buffers import CostRolloutBuffer
from .cost_critic import CostCritic
from .cost_learner import CostLearnerMixin
from .deploy_cost import DeployAwareLagrangian
from .lagrange import DEFAULT_COST_LIMIT, LagrangeOptimizer, make_multiplier

__all__ = ["PPOLagrangian"]

SelfPPOLagrangian = TypeVar("SelfPPOLagrangian", bound="PPOLagrangian")


class PPOLagrangian(DeployAwareLagrangian, CostLearnerMixin, PPO):
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
        deploy_cost_episodes: Deployment-aware constraint (:mod:`~taxbench.policies.deploy_cost`): with ``n > 0``,
            play ``n`` deterministic episodes every ``deploy_cost_every`` rollouts and update λ from the larger of
            the training episodes' and the deterministic episodes' mean cost. 0 (default): training episodes only.
        deploy_cost_every: Rollouts between two deterministic probes.
        deploy_env: Factory of the probe's env; None copies the training env from its registered spec.
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
        cost_limit: float = DEFAULT_COST_LIMIT,
        lagrange_lr: float = 0.035,
        lagrange_init: float = 0.0,
        lagrange_pinned: bool = False,
        lagrange_optimizer: LagrangeOptimizer = "sgd",
        lagrange_method: str = "grad",
        pid_kp: float = 0.1,
        pid_ki: float = 0.01,
        pid_kd: float = 0.01,
        deploy_cost_episodes: int = 0,
        deploy_cost_every: int = 1,
        deploy_env: Callable[[], Any] | None = None,
        cost_gamma: float | None = None,
        cost_gae_lambda: float | None = None,
        cost_critic_lr: float | None = None,
        cost_batch_size: int | None = None,
        _init_setup_model: bool = True,
        **ppo_kwargs: Any,
    ) -> None:
        buffer_class = self._cost_buffer_class(ppo_kwargs)
        self._check_cost_settings(cost_gamma, cost_gae_lambda, cost_critic_lr, cost_batch_size)
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
        self._init_deploy_cost(deploy_cost_episodes, deploy_cost_every, deploy_env)
        super().__init__(policy, env, rollout_buffer_class=buffer_class, _init_setup_model=False, **ppo_kwargs)
        self._init_cost_settings(cost_gamma, cost_gae_lambda, cost_critic_lr, cost_batch_size)
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ public read-outs
    @property
    def lagrange_multiplier(self) -> float:
        """float: The current λ (the value used for the latest policy update)."""
        return self.lagrange.value

    @property
    def cost_limit(self) -> float:
        """float: The episode-cost limit ``d``."""
        return self.lagrange.cost_limit

    # ------------------------------------------------------------------ rollout end, training
    def _finish_rollout(self, last_obs: np.ndarray, dones: np.ndarray) -> None:
        """λ update, cost GAE and the advantage of the policy update, after SB3 computed the reward GAE."""
        episode_costs, _ = self._pop_finished_episodes()
        # deployment-aware (deploy_cost_episodes > 0): the deterministic policy must meet d too
        cost = self._with_deployed_cost(float(np.mean(episode_costs)) if episode_costs else None)
        if cost is not None:
            self.lagrange.update(cost)
        self._compute_cost_advantages(last_obs, dones)
        self._set_policy_advantages()
        self.logger.record("lagrange/lambda", self.lagrange.value)
        self.logger.record("lagrange/cost_limit", self.lagrange.cost_limit)

    def _set_policy_advantages(self) -> None:
        """Write the advantage PPO's update reads: the Lagrangian combination (subclasses may keep ``A_r``)."""
        self.rollout_buffer.combine_advantages(self.lagrange.value)

    def train(self) -> None:
        """PPO's update on the combined advantage, then one fit of the cost critic."""
        super().train()
        self._train_cost_critic()

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
