"""CUP, Constrained Update Projection (Yang et al. 2022), on SB3 PPO and PPO-Lagrangian's cost side.

Each update has two stages:

1. **Policy improvement**: SB3 PPO's own ``train()`` on the *reward* advantage, unchanged: ``π_k → π_{k+½}``.
2. **Projection**: ``n_epochs`` passes of minibatch gradient steps on::

       L(θ) = mean[ λ·κ·ρ_θ·Ā_c + KL(π_{k+½}(·|s) ‖ π_θ(·|s)) ],   ρ_θ = π_θ(a|s) / π_k(a|s)

   i.e. lower the cost surrogate while staying near the improved policy; ``κ = (1 − γ_c·λ_c)/(1 − γ_c)`` is
   the GAE factor of the paper's bound (as in OmniSafe's CUP), ``Ā_c`` the centred cost advantage (cost units
   per step). The pass stops early once the mean KL from ``π_{k+½}`` exceeds ``projection_target_kl``.

λ is PPO-Lagrangian's multiplier (:mod:`taxbench.policies.lagrange`: gradient ascent or PID on the episode cost
against ``cost_limit``; the same ``lagrange_*`` / ``pid_*`` settings), updated once per rollout. With λ = 0 the
projection is skipped and the learner is SB3 PPO bit for bit: the projection shuffles with its own generator,
so the random streams PPO draws from never move.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import kl_divergence

from .ppo_lag import PPOLagrangian

__all__ = ["CUP"]


def _per_sample(kl: th.Tensor) -> th.Tensor:
    """KL per sample: summed over action dimensions when the distribution reports them separately."""
    return kl.sum(dim=-1) if kl.ndim > 1 else kl


class CUP(PPOLagrangian):
    """CUP: PPO on the reward, then a projection step that lowers the cost surrogate, weighted by λ.

    Accepts every argument of :class:`~taxbench.policies.ppo_lag.PPOLagrangian` (``cost_limit``, the
    ``lagrange_*`` and ``pid_*`` settings of the multiplier, the cost critic's settings, all PPO keywords).

    Args:
        policy: Policy class or name (``"MlpPolicy"``).
        env: Environment, VecEnv or registered id; it must report ``info["cost"]``.
        projection_target_kl: Stop the projection once the mean KL (nats) from the stage-1 policy exceeds it.
        projection_coef: κ; None → ``(1 − γ_c·λ_c)/(1 − γ_c)`` (needs ``cost_gamma < 1``).
        **kwargs: Passed to :class:`~taxbench.policies.ppo_lag.PPOLagrangian`.

    Raises:
        ValueError: On a non-positive ``projection_target_kl`` or ``projection_coef``, or κ undefined (γ_c = 1).
    """

    def __init__(
        self,
        policy: Any,
        env: Any,
        projection_target_kl: float = 0.02,
        projection_coef: float | None = None,
        **kwargs: Any,
    ) -> None:
        if not (np.isfinite(projection_target_kl) and projection_target_kl > 0):
            raise ValueError(f"projection_target_kl must be a finite number > 0, got {projection_target_kl}")
        if projection_coef is not None and not (np.isfinite(projection_coef) and projection_coef > 0):
            raise ValueError(f"projection_coef must be a finite number > 0, got {projection_coef}")
        self.projection_target_kl = float(projection_target_kl)
        self.projection_coef = projection_coef
        super().__init__(policy, env, **kwargs)
        if projection_coef is None and self.cost_gamma >= 1.0:
            raise ValueError("projection_coef must be given when cost_gamma is 1")
        # Own stream for the projection's minibatch shuffle: the global numpy RNG is PPO's.
        self._projection_rng = np.random.default_rng(None if self.seed is None else self.seed + 1)

    @property
    def cost_coef(self) -> float:
        """float: κ, the weight of the cost surrogate per unit λ."""
        if self.projection_coef is not None:
            return float(self.projection_coef)
        return (1.0 - self.cost_gamma * self.cost_gae_lambda) / (1.0 - self.cost_gamma)

    def _set_policy_advantages(self) -> None:
        """Stage 1 is PPO on the reward: the buffer's ``advantages`` stay SB3's reward GAE."""

    def train(self) -> None:
        """Stage 1 (SB3 PPO on the reward advantage), the cost critic fit, then stage 2 (projection) if λ > 0."""
        super().train()
        if self.lagrange.value > 0:
            self._project()

    def _reference_policy(self) -> Any:
        """A frozen copy of the current policy (π_{k+½}); built once like SB3 builds the policy, RNG fenced."""
        if getattr(self, "_reference", None) is None:
            with th.random.fork_rng(devices=[]):
                self._reference = self.policy_class(
                    self.observation_space,
                    self.action_space,
                    self.lr_schedule,
                    use_sde=self.use_sde,
                    **self.policy_kwargs,
                ).to(self.device)
        self._reference.load_state_dict(self.policy.state_dict())
        self._reference.set_training_mode(False)
        for param in self._reference.parameters():
            param.requires_grad_(False)
        return self._reference

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_reference"]

    def _project(self) -> None:
        """Stage 2: minibatch steps on ``λ·κ·ρ·Ā_c + KL(π_{k+½} ‖ π)`` with the policy's optimiser."""
        buffer = self.rollout_buffer
        if not buffer.generator_ready:  # PPO's get() flattens the arrays in place; do it if it has not run
            for _ in buffer.get(None):
                pass
        obs = th.as_tensor(buffer.observations, device=self.device)
        actions = th.as_tensor(buffer.actions, device=self.device)
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        old_log_prob = th.as_tensor(buffer.log_probs, device=self.device).flatten()
        cost_adv = th.as_tensor(buffer.flat_cost_advantages(), device=self.device)
        cost_adv = cost_adv - cost_adv.mean()
        weight = self.lagrange.value * self.cost_coef
        reference = self._reference_policy()
        self.policy.set_training_mode(True)
        n_samples, losses, kl, epochs = len(cost_adv), [], 0.0, 0
        for epochs in range(1, self.n_epochs + 1):  # noqa: B007  (the count is logged)
            for idx in np.array_split(
                self._projection_rng.permutation(n_samples), max(n_samples // self.batch_size, 1)
            ):
                batch = th.as_tensor(idx, device=self.device)
                with th.no_grad():
                    ref_dist = reference.get_distribution(obs[batch])
                dist = self.policy.get_distribution(obs[batch])
                ratio = th.exp(dist.log_prob(actions[batch]) - old_log_prob[batch])
                loss = (weight * ratio * cost_adv[batch] + _per_sample(kl_divergence(ref_dist, dist))).mean()
                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()
                losses.append(loss.detach())
            with th.no_grad():
                kl = float(
                    _per_sample(
                        kl_divergence(reference.get_distribution(obs), self.policy.get_distribution(obs))
                    ).mean()
                )
            if kl > self.projection_target_kl:
                break
        self.policy.set_training_mode(False)
        self.logger.record("cup/projection_loss", float(th.stack(losses).mean()) if losses else 0.0)
        self.logger.record("cup/projection_kl", kl)
        self.logger.record("cup/projection_epochs", epochs)
