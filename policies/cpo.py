"""Constrained Policy Optimization (Achiam et al. 2017) on sb3-contrib's TRPO.

CPO solves, at each update, the trust-region problem of TRPO with one more linear constraint::

    max_x  gᵀx   s.t.   c + bᵀx ≤ 0,   ½ xᵀHx ≤ δ

with ``g`` the gradient of TRPO's surrogate (standardised reward advantage), ``b`` the gradient of the
predicted change of the episode cost, ``c = J_c − d`` the current episode cost minus the limit, ``H`` the
Fisher matrix (sb3-contrib's Hessian-vector product and conjugate gradient) and ``δ = target_kl``.

What comes from where:

* **TRPO (sb3-contrib)**: rollout collection, ``_compute_actor_grad``, ``hessian_vector_product``,
  ``conjugate_gradient_solver``, the step size ``sqrt(2δ / xᵀHx)``, the backtracking schedule and the
  reward critic's update, so that when the constraint cannot bind the update *is* TRPO's (same seed, same
  weights, bit for bit; ``tests/policies/test_cpo_cup.py``).
* **taxbench's cost side** (:class:`~taxbench.policies.cost_learner.CostLearnerMixin`): costs from
  ``info["cost"]``, the cost critic and cost GAE.
* **CPO**: the dual solution of the problem above (:func:`cpo_step`, the case analysis of the paper's
  appendix), the *recovery step* ``x = −sqrt(2δ / bᵀH⁻¹b)·H⁻¹b`` when no point of the trust region is
  predicted feasible, and a line search that also requires the predicted cost change to stay within the slack.

Units: the cost surrogate is the mean over the rollout of ``ratio·Ā_c`` (centred cost advantage, cost units
per step); multiplied by the mean episode length (steps) it predicts the change of the episode cost, the units of
``c``. ``J_c`` is the mean cost of the episodes finished in the last rollout (the previous estimate if none
finished; before the first finished episode the constraint is treated as inactive).
"""

from __future__ import annotations

import copy
import math
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import TRPO
from sb3_contrib.common.utils import conjugate_gradient_solver, flat_grad
from stable_baselines3.common.distributions import kl_divergence
from stable_baselines3.common.type_aliases import RolloutBufferSamples
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from .cost_learner import CostLearnerMixin

__all__ = ["CPO", "CPOStep", "cpo_step"]

_EPS = 1e-8


class CPOStep(NamedTuple):
    """Solution of one CPO subproblem, with the step ``x = (H⁻¹g − ν·H⁻¹b) / λ`` (or the recovery step).

    Attributes:
        case: 0 infeasible (recovery), 1 infeasible but recoverable, 2 feasible with the constraint
            possibly binding, 3 feasible and the whole trust region predicted feasible (TRPO's step),
            4 no usable cost gradient and feasible (TRPO's step), 5 no usable cost gradient and infeasible (no step).
        lam: Dual variable of the trust region (NaN in cases 0, 3, 4, 5).
        nu: Dual variable of the cost constraint: 0 when it does not bind, NaN in cases 0 and 5.
    """

    case: int
    lam: float
    nu: float


def cpo_step(q: float, r: float, s: float, c: float | None, delta: float) -> CPOStep:
    """Case and dual variables of ``max gᵀx s.t. c + bᵀx ≤ 0, ½xᵀHx ≤ δ`` (Achiam et al. 2017, appendix 10.2).

    Args:
        q: ``gᵀH⁻¹g``.
        r: ``gᵀH⁻¹b``.
        s: ``bᵀH⁻¹b`` (0 when the cost gradient vanishes).
        c: Constraint value ``J_c − d``, episode-cost units; None when unknown (treated as inactive).
        delta: Trust-region radius δ (KL).

    Returns:
        The :class:`CPOStep`.
    """
    if c is None:
        return CPOStep(3, math.nan, 0.0)
    if s <= _EPS:
        return CPOStep(4, math.nan, 0.0) if c <= 0 else CPOStep(5, math.nan, math.nan)
    a_term = max(q - r * r / s, 0.0)
    b_term = 2.0 * delta - c * c / s
    if b_term < 0:
        return CPOStep(3, math.nan, 0.0) if c < 0 else CPOStep(0, math.nan, math.nan)
    # Dual (for the maximisation; the paper's appendix writes it for min −gᵀx, hence the signs of r):
    # ν(λ) = (λc + r)₊/s; λ in Λ_a (ν > 0, the constraint binds) or Λ_b (ν = 0); maximise each branch.
    t = -r / c if c != 0 else math.copysign(math.inf, -r if r != 0 else -1.0)
    if c < 0:
        range_a, range_b = (0.0, t), (max(0.0, t), math.inf)
    else:
        range_a, range_b = (max(0.0, t), math.inf), (0.0, max(0.0, t))
    lam_a = min(max(math.sqrt(a_term / b_term) if b_term > 0 else math.inf, range_a[0]), range_a[1])
    lam_b = min(max(math.sqrt(q / (2.0 * delta)), range_b[0]), range_b[1])
    lam_a, lam_b = max(lam_a, _EPS), max(lam_b, _EPS)

    def dual_a(lam: float) -> float:
        return -(a_term / lam + b_term * lam) / 2.0 + r * c / s

    def dual_b(lam: float) -> float:
        return -(q / lam + 2.0 * delta * lam) / 2.0

    value_a = dual_a(lam_a) if range_a[0] < range_a[1] and math.isfinite(lam_a) else -math.inf
    value_b = dual_b(lam_b) if range_b[0] <= range_b[1] and math.isfinite(lam_b) else -math.inf
    lam = lam_a if value_a >= value_b else lam_b
    nu = max(0.0, lam * c + r) / s
    return CPOStep(1 if c >= 0 else 2, lam, nu)


class CPO(CostLearnerMixin, TRPO):
    """Constrained Policy Optimization: TRPO's trust-region step projected on a linearised cost constraint.

    All arguments of :class:`sb3_contrib.TRPO` are accepted as keywords (``n_steps``, ``batch_size``,
    ``target_kl``, ``cg_max_steps``, ``n_critic_updates``, ``seed``, ``device``, ...). The env must report a
    per-step constraint cost in ``info["cost"]`` (float >= 0).

    Args:
        policy: Policy class or name (``"MlpPolicy"``); Dict observations are not supported.
        env: Environment, VecEnv or registered id.
        cost_limit: Limit ``d`` on the expected (undiscounted) episode cost.
        cost_gamma: Discount of the costs; None → ``gamma``.
        cost_gae_lambda: GAE factor of the costs; None → ``gae_lambda``.
        cost_critic_lr: Learning rate of the cost critic; None → TRPO's (critic) learning rate.
        cost_batch_size: Minibatch size of the cost critic fit; None → ``batch_size``.
        _init_setup_model: Build the networks now (SB3 convention; ``load`` passes False).
        **trpo_kwargs: Everything else goes to :class:`sb3_contrib.TRPO`.

    Raises:
        ValueError: On a negative or non-finite ``cost_limit`` or an invalid cost setting.
    """

    def __init__(
        self,
        policy: Any,
        env: Any,
        cost_limit: float = 25.0,
        cost_gamma: float | None = None,
        cost_gae_lambda: float | None = None,
        cost_critic_lr: float | None = None,
        cost_batch_size: int | None = None,
        _init_setup_model: bool = True,
        **trpo_kwargs: Any,
    ) -> None:
        if not (isinstance(cost_limit, int | float) and math.isfinite(cost_limit) and cost_limit >= 0):
            raise ValueError(f"cost_limit must be a finite number >= 0, got {cost_limit!r}")
        buffer_class = self._cost_buffer_class(trpo_kwargs)
        self._check_cost_settings(cost_gamma, cost_gae_lambda, cost_critic_lr, cost_batch_size)
        super().__init__(policy, env, rollout_buffer_class=buffer_class, _init_setup_model=False, **trpo_kwargs)
        self._init_cost_settings(cost_gamma, cost_gae_lambda, cost_critic_lr, cost_batch_size)
        self.cost_limit = float(cost_limit)
        self.episode_cost_estimate: float | None = None  # J_c, cost per episode
        self.episode_length_estimate: float | None = None  # steps per episode
        self.last_step = CPOStep(3, math.nan, 0.0)  # transient; its ν is saved as last_nu
        self.last_nu = 0.0
        if _init_setup_model:
            self._setup_model()

    @property
    def lagrange_multiplier(self) -> float:
        """float: ν of the latest update, the cost constraint's dual (0: not binding; NaN: recovery step)."""
        return float(self.last_nu)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "last_step"]

    # ------------------------------------------------------------------ cost side hooks
    def _cost_critic_epochs(self) -> int:
        return int(self.n_critic_updates)

    def _cost_critic_max_grad_norm(self) -> float:
        return math.inf  # TRPO's reward critic is not clipped either

    def _finish_rollout(self, last_obs: np.ndarray, dones: np.ndarray) -> None:
        """Update the episode cost and length estimates, then cost GAE (the reward advantage is left as it is)."""
        costs, lengths = self._pop_finished_episodes()
        if costs:
            self.episode_cost_estimate = float(np.mean(costs))
            self.episode_length_estimate = float(np.mean(lengths))
        self._compute_cost_advantages(last_obs, dones)

    # ------------------------------------------------------------------ update
    def _fenced_cg(self, hvp: Any, vector: th.Tensor) -> th.Tensor:
        """Conjugate gradient without moving the global RNG its random start draws from (TRPO's stream)."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with th.random.fork_rng(devices=devices):
            return conjugate_gradient_solver(hvp, vector, max_iter=self.cg_max_steps)

    def _sample_rollout(self) -> tuple[RolloutBufferSamples, th.Tensor]:
        """The whole rollout as TRPO draws it (one shuffled batch) and the matching centred cost advantages."""
        rollout_data = next(iter(self.rollout_buffer.get(batch_size=None)))
        cost_adv = th.as_tensor(self.rollout_buffer.flat_cost_advantages(self.rollout_buffer.last_batch_inds))
        cost_adv = cost_adv.to(self.device)
        if self.sub_sampling_factor > 1:
            k = self.sub_sampling_factor
            rollout_data = RolloutBufferSamples(
                rollout_data.observations[::k],
                rollout_data.actions[::k],
                None,  # type: ignore[arg-type]
                rollout_data.old_log_prob[::k],
                rollout_data.advantages[::k],
                None,  # type: ignore[arg-type]
            )
            cost_adv = cost_adv[::k]
        return rollout_data, cost_adv - cost_adv.mean()

    def train(self) -> None:
        """One CPO policy update (see the module docstring), TRPO's critic update, one cost critic fit."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        rollout_data, cost_adv = self._sample_rollout()
        actions = rollout_data.actions
        if isinstance(self.action_space, spaces.Discrete):
            actions = rollout_data.actions.long().flatten()
        with th.no_grad():
            old_distribution = copy.copy(self.policy.get_distribution(rollout_data.observations))
        distribution = self.policy.get_distribution(rollout_data.observations)
        log_prob = distribution.log_prob(actions)
        advantages = rollout_data.advantages
        if self.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (rollout_data.advantages.std() + 1e-8)
        ratio = th.exp(log_prob - rollout_data.old_log_prob)
        policy_objective = (advantages * ratio).mean()
        cost_objective = (cost_adv * ratio).mean()
        kl_div = kl_divergence(distribution, old_distribution).mean()
        self.policy.optimizer.zero_grad()
        actor_params, g, grad_kl, grad_shape = self._compute_actor_grad(kl_div, policy_objective)
        horizon = self.episode_length_estimate or float(self.n_steps)  # steps per episode
        b = horizon * flat_grad(cost_objective, actor_params, retain_graph=True)
        hvp = partial(self.hessian_vector_product, actor_params, grad_kl)
        x_g = conjugate_gradient_solver(hvp, g, max_iter=self.cg_max_steps)
        x_b = self._fenced_cg(hvp, b)
        q = float(th.matmul(x_g, hvp(x_g, retain_graph=False)))  # xᵀHx, as TRPO computes it
        trpo_step = np.sqrt(2 * self.target_kl / q)  # TRPO's step length, bit for bit
        r, s = float(g @ x_b), float(b @ x_b)
        slack_c = None if self.episode_cost_estimate is None else self.episode_cost_estimate - self.cost_limit
        self.last_step = step = cpo_step(q, r, s, slack_c, self.target_kl)
        self.last_nu = step.nu
        if step.case in (3, 4):
            direction, scale = x_g, trpo_step
        elif step.case == 0:
            direction, scale = -x_b, math.sqrt(2 * self.target_kl / s)
        elif step.case == 5:
            direction, scale = th.zeros_like(x_g), 0.0
        else:
            direction, scale = x_g - step.nu * x_b, 1.0 / step.lam
        cost_slack = max(-(slack_c if slack_c is not None else -math.inf), 0.0)  # episode-cost units
        must_improve = slack_c is None or slack_c < 0

        coeff = 1.0
        original_actor_params = [param.detach().clone() for param in actor_params]
        success = False
        new_policy_objective, new_kl = policy_objective, th.zeros(())
        with th.no_grad():
            for _ in range(self.line_search_max_iter if scale > 0 else 0):
                start_idx = 0
                for param, original_param, shape in zip(actor_params, original_actor_params, grad_shape, strict=True):
                    n_params = param.numel()
                    param.data = original_param.data + coeff * scale * direction[start_idx : start_idx + n_params].view(
                        shape
                    )
                    start_idx += n_params
                distribution = self.policy.get_distribution(rollout_data.observations)
                ratio = th.exp(distribution.log_prob(actions) - rollout_data.old_log_prob)
                new_policy_objective = (advantages * ratio).mean()
                cost_change = horizon * float((cost_adv * ratio).mean() - cost_objective)
                new_kl = kl_divergence(distribution, old_distribution).mean()
                improves = bool(new_policy_objective > policy_objective) or not must_improve
                if new_kl < self.target_kl and improves and cost_change <= cost_slack:
                    success = True
                    break
                coeff *= self.line_search_shrinking_factor
            if not success:
                for param, original_param in zip(actor_params, original_actor_params, strict=True):
                    param.data = original_param.data.clone()

        value_losses = self._train_reward_critic(actor_params)
        self._n_updates += 1
        self._train_cost_critic()
        self._log_update(step, success, policy_objective, new_policy_objective, new_kl, value_losses)

    def _train_reward_critic(self, actor_params: list[th.nn.Parameter]) -> list[float]:
        """TRPO's critic update: ``n_critic_updates`` shuffled passes, actor gradients dropped."""
        value_losses = []
        for _ in range(self.n_critic_updates):
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                values_pred = self.policy.predict_values(rollout_data.observations)
                value_loss = F.mse_loss(rollout_data.returns, values_pred.flatten())
                value_losses.append(value_loss.item())
                self.policy.optimizer.zero_grad()
                value_loss.backward()
                for param in actor_params:  # shared with the actor: the KL constraint must hold
                    param.grad = None
                self.policy.optimizer.step()
        return value_losses

    def _log_update(
        self,
        step: CPOStep,
        success: bool,
        objective: th.Tensor,
        new_objective: th.Tensor,
        kl: th.Tensor,
        value_losses: list[float],
    ) -> None:
        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())
        self.logger.record("train/policy_objective", float((new_objective if success else objective).detach()))
        self.logger.record("train/value_loss", float(np.mean(value_losses)))
        self.logger.record("train/kl_divergence_loss", float(kl) if success else 0.0)
        self.logger.record("train/explained_variance", explained_var)
        self.logger.record("train/is_line_search_success", float(success))
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("cpo/case", step.case)
        self.logger.record("cpo/nu", step.nu)
        self.logger.record("lagrange/lambda", step.nu)
        self.logger.record("lagrange/cost_limit", self.cost_limit)
