"""PPO and PPO-Lagrangian on the device: rsl-rl-lib's ``PPO`` plus a cost critic, cost GAE and a multiplier.

:class:`SafePPO` subclasses ``rsl_rl.algorithms.PPO`` (the PPO behind mjlab and Isaac Lab) and adds only what a
constrained learner needs; rsl-rl's ``act``, ``process_env_step``, ``compute_returns`` and ``update`` run unchanged:

* ``act`` also records the cost critic's value ``V_c(s_t)`` (a forward pass, no random numbers);
* ``process_env_step`` reads the step's cost from ``extras["costs"]`` (bootstrapped on time-outs as rsl-rl does the
  reward);
* ``compute_returns`` also computes cost GAE, and before rsl-rl's ``update`` the policy's advantage becomes
  ``(A_r − λ·A_c) / (1 + λ)`` (OmniSafe's PPOLag surrogate), λ read from the multiplier of
  :mod:`taxbench.policies.lagrange` (``Lagrange`` or ``PIDLagrange``: no second copy of its logic);
* ``update`` then fits the cost critic over its own minibatches, drawn from a private generator.

Without a cost critic it is rsl-rl's PPO. With λ pinned to 0 it reproduces that PPO bit for bit for the same seed: the
cost critic is initialised inside ``torch.random.fork_rng`` and shuffled by its own generator, so the global random
stream PPO draws from is untouched, and ``(A_r − 0·A_c) / 1`` is ``A_r`` exactly (tests/policies/test_gpu_learner.py).
"""

from __future__ import annotations

from typing import Any

import torch
from rsl_rl.algorithms import PPO
from rsl_rl.models import MLPModel
from rsl_rl.storage import RolloutStorage
from tensordict import TensorDict

from taxbench.policies.lagrange import Lagrange, PIDLagrange


def obs_dict(obs: torch.Tensor) -> TensorDict:
    """An observation batch (N, obs) as the ``TensorDict`` rsl-rl's models read (group ``"policy"``)."""
    return TensorDict({"policy": obs}, batch_size=[obs.shape[0]], device=obs.device)


#: rsl-rl observation sets: actor, critic and cost critic all read the env's observation.
OBS_GROUPS = {"actor": ["policy"], "critic": ["policy"], "cost_critic": ["policy"]}


class SafePPO(PPO):
    """rsl-rl ``PPO`` with an optional cost critic, cost GAE and Lagrange multiplier (see the module docstring).

    Args:
        actor: The stochastic policy (rsl-rl ``MLPModel`` with a Gaussian distribution).
        critic: The reward value function.
        storage: rsl-rl rollout storage of ``num_steps`` × ``num_envs`` transitions.
        cost_critic: The cost value function; None gives plain PPO.
        multiplier: λ and its update rule; needed with a cost critic.
        cost_gamma: Discount of the cost return.
        cost_lam: GAE λ of the cost advantage.
        cost_critic_lr: Adam step size of the cost critic.
        cost_seed: Seed of the cost critic's minibatch shuffles (a private generator).
        **ppo_kwargs: rsl-rl ``PPO`` arguments (``num_learning_epochs``, ``num_mini_batches``, ``clip_param``,
            ``gamma``, ``lam``, ``learning_rate``, ``entropy_coef``, ``schedule``, ``desired_kl``, ``device``, ...).
    """

    def __init__(
        self,
        actor: MLPModel,
        critic: MLPModel,
        storage: RolloutStorage,
        *,
        cost_critic: MLPModel | None = None,
        multiplier: Lagrange | PIDLagrange | None = None,
        cost_gamma: float | None = None,
        cost_lam: float | None = None,
        cost_critic_lr: float = 1e-3,
        cost_seed: int = 0,
        **ppo_kwargs: Any,
    ) -> None:
        super().__init__(actor, critic, storage, **ppo_kwargs)
        if (cost_critic is None) != (multiplier is None):
            raise ValueError("a cost critic and a multiplier come together (both or neither)")
        self.cost_critic = None if cost_critic is None else cost_critic.to(self.device)
        self.multiplier = multiplier
        self.cost_gamma = self.gamma if cost_gamma is None else cost_gamma
        self.cost_lam = self.lam if cost_lam is None else cost_lam
        if self.cost_critic is not None:
            shape = (storage.num_transitions_per_env, storage.num_envs, 1)
            self.cost_values = torch.zeros(shape, device=self.device)
            self.costs = torch.zeros(shape, device=self.device)
            self.cost_returns = torch.zeros(shape, device=self.device)
            self.cost_advantages = torch.zeros(shape, device=self.device)
            self.cost_optimizer = torch.optim.Adam(self.cost_critic.parameters(), lr=cost_critic_lr)
            self.cost_generator = torch.Generator(device=self.device)
            self.cost_generator.manual_seed(int(cost_seed))
        self._step_cost_values: torch.Tensor | None = None

    @property
    def constrained(self) -> bool:
        """Whether this learner has a cost critic and a multiplier."""
        return self.cost_critic is not None

    @property
    def lagrange_value(self) -> float:
        """λ now (0 for the unconstrained learner)."""
        return 0.0 if self.multiplier is None else self.multiplier.value

    def act(self, obs: TensorDict) -> torch.Tensor:
        """rsl-rl's ``act``; also records ``V_c(s_t)``."""
        actions = super().act(obs)
        if self.cost_critic is not None:
            self._step_cost_values = self.cost_critic(obs).detach()
        return actions

    def process_env_step(
        self, obs: TensorDict, rewards: torch.Tensor, dones: torch.Tensor, extras: dict[str, torch.Tensor]
    ) -> None:
        """rsl-rl's ``process_env_step``; also stores ``extras["costs"]`` (N,) and the cost value of the step."""
        if self.cost_critic is not None:
            step = self.storage.step
            costs = extras["costs"].reshape(-1, 1).to(self.device, torch.float32)
            if "time_outs" in extras:
                costs = costs + self.cost_gamma * self._step_cost_values * extras["time_outs"].reshape(-1, 1)
            self.costs[step].copy_(costs)
            self.cost_values[step].copy_(self._step_cost_values)
        super().process_env_step(obs, rewards, dones, extras)

    def compute_returns(self, obs: TensorDict) -> None:
        """rsl-rl's reward GAE; then cost GAE and the Lagrangian advantage ``(A_r − λ·A_c) / (1 + λ)``."""
        super().compute_returns(obs)
        if self.cost_critic is None:
            return
        last = self.cost_critic(obs).detach()
        dones = self.storage.dones.float()
        advantage = torch.zeros_like(last)
        for step in reversed(range(self.storage.num_transitions_per_env)):
            following = last if step == self.storage.num_transitions_per_env - 1 else self.cost_values[step + 1]
            alive = 1.0 - dones[step]
            delta = self.costs[step] + alive * self.cost_gamma * following - self.cost_values[step]
            advantage = delta + alive * self.cost_gamma * self.cost_lam * advantage
            self.cost_returns[step] = advantage + self.cost_values[step]
        self.cost_advantages = self.cost_returns - self.cost_values
        centred = self.cost_advantages - self.cost_advantages.mean()  # centred, not scaled (OmniSafe's cost advantage)
        lam = self.lagrange_value
        self.storage.advantages = (self.storage.advantages - lam * centred) / (1.0 + lam)

    def update(self) -> dict[str, float]:
        """rsl-rl's ``update``; then the cost critic's regression on the cost returns (its own minibatches)."""
        losses = super().update()
        if self.cost_critic is not None:
            losses["cost_value"] = self._update_cost_critic()
        return losses

    def _update_cost_critic(self) -> float:
        observations = self.storage.observations.flatten(0, 1)
        returns = self.cost_returns.flatten(0, 1)
        size = len(returns) // self.num_mini_batches
        total = 0.0 * returns.sum()
        for _ in range(self.num_learning_epochs):
            order = torch.randperm(len(returns), generator=self.cost_generator, device=self.device)
            for k in range(self.num_mini_batches):
                index = order[k * size : (k + 1) * size]
                loss = (self.cost_critic(observations[index]) - returns[index]).pow(2).mean()
                self.cost_optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.cost_critic.parameters(), self.max_grad_norm)
                self.cost_optimizer.step()
                total = total + loss.detach()
        self.cost_critic.update_normalization(observations)
        return float(total) / (self.num_learning_epochs * self.num_mini_batches)

    def update_multiplier(self, mean_episode_cost: float | None) -> float:
        """Update λ from the mean cost of the episodes finished in the last rollout (none finished: unchanged)."""
        if self.multiplier is not None and mean_episode_cost is not None:
            self.multiplier.update(mean_episode_cost)
        return self.lagrange_value


def build_models(
    obs: torch.Tensor, num_actions: int, *, hidden_dims: tuple[int, ...], activation: str, init_std: float, **kw: Any
) -> tuple[MLPModel, MLPModel]:
    """The actor (Gaussian, learned scalar std) and critic of rsl-rl, observation normalisation on (``kw`` ignored)."""
    sample = obs_dict(obs)
    actor = MLPModel(
        sample,
        OBS_GROUPS,
        "actor",
        num_actions,
        hidden_dims=hidden_dims,
        activation=activation,
        obs_normalization=True,
        distribution_cfg={"class_name": "rsl_rl.modules.GaussianDistribution", "init_std": init_std},
    )
    critic = MLPModel(
        sample, OBS_GROUPS, "critic", 1, hidden_dims=hidden_dims, activation=activation, obs_normalization=True
    )
    return actor, critic


def build_cost_critic(obs: torch.Tensor, *, hidden_dims: tuple[int, ...], activation: str) -> MLPModel:
    """The cost critic, initialised inside ``torch.random.fork_rng`` so the global random stream is untouched."""
    devices = [obs.device] if obs.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        return MLPModel(
            obs_dict(obs),
            OBS_GROUPS,
            "cost_critic",
            1,
            hidden_dims=hidden_dims,
            activation=activation,
            obs_normalization=True,
        )
