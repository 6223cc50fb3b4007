"""SAC-Lagrangian on stable-baselines3: SAC plus a cost critic ``Q_c(s, a)`` and a multiplier λ.

The diff on :class:`stable_baselines3.SAC`:

* **Costs in.** :class:`CostReplayBuffer` stores ``info["cost"]`` beside each transition (it receives
  the infos in ``add``) and returns them with each batch; the learner tallies episode costs as
  transitions are stored.
* **λ.** Every ``lagrange_interval`` env steps, λ is updated from the mean cost of the episodes that
  finished since the last update (kept when none did), by the same :mod:`~taxbench.policies.lagrange`
  rules as PPO-Lagrangian (``grad`` or ``pid``); with ``deploy_cost_episodes > 0``, from the larger of that
  and the deterministic policy's episode cost (:mod:`~taxbench.policies.deploy_cost`).
* **Train.** SAC's temperature and reward-critic updates are unchanged; a twin cost critic is fitted by TD
  on ``c + γ_c·(1 − done)·Q̄_c'(s', a')`` (mean of its two heads, no entropy term), and the actor
  minimises ``α·log π − min Q_r + λ·Q̄_c``.

With λ pinned at 0 the actor, reward critics and temperature follow SB3 SAC's updates exactly: the cost
critics are initialised inside ``torch.random.fork_rng()`` and fitted on the same batches, so the random
streams SAC draws from never move.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.common.vec_env import VecNormalize

from .cost_info import costs_from_infos, tally_episode_costs
from .deploy_cost import DeployAwareLagrangian
from .lagrange import DEFAULT_COST_LIMIT, LagrangeOptimizer, make_multiplier

__all__ = ["CostReplayBuffer", "CostReplaySamples", "SACLagrangian"]

_TRANSIENT = ("_running_ep_cost", "_finished_ep_costs", "_last_lagrange_step")


class CostReplaySamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` plus the per-transition ``costs`` (shape ``(batch, 1)``)."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None = None
    costs: th.Tensor | None = None


class CostReplayBuffer(ReplayBuffer):
    """SB3 replay buffer that also stores ``info["cost"]`` (float >= 0; missing → 0) per transition."""

    costs: np.ndarray

    def __init__(
        self, buffer_size: int, observation_space: spaces.Space, action_space: spaces.Space, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(buffer_size, observation_space, action_space, *args, **kwargs)
        if self.optimize_memory_usage:
            raise ValueError("CostReplayBuffer does not support optimize_memory_usage=True")
        self.costs = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Store one transition per env, with its cost."""
        self.costs[self.pos] = costs_from_infos(infos, np.float32)
        super().add(obs, next_obs, action, reward, done, infos)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> CostReplaySamples:  # type: ignore[override]
        env_idx = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # one draw, as SB3 makes
        not_timeout = 1.0 - self.timeouts[batch_inds, env_idx]
        arrays = (
            self._normalize_obs(self.observations[batch_inds, env_idx, :], env),
            self.actions[batch_inds, env_idx, :],
            self._normalize_obs(self.next_observations[batch_inds, env_idx, :], env),
            (self.dones[batch_inds, env_idx] * not_timeout).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, env_idx].reshape(-1, 1), env),
        )
        tensors = [self.to_torch(a) for a in arrays]
        return CostReplaySamples(
            *tensors, discounts=None, costs=self.to_torch(self.costs[batch_inds, env_idx].reshape(-1, 1))
        )


class SACLagrangian(DeployAwareLagrangian, SAC):
    """SAC-Lagrangian: SAC whose actor also minimises ``λ·Q_c``, with λ adapted to an episode-cost limit.

    Every keyword of :class:`stable_baselines3.SAC` is accepted (``learning_rate``, ``buffer_size``,
    ``batch_size``, ``train_freq``, ``gradient_steps``, ``seed``, ``device``, ...).

    Args:
        policy: Policy class or name (``"MlpPolicy"``).
        env: Environment, VecEnv or id reporting ``info["cost"]``.
        cost_limit: Limit ``d`` on the expected (undiscounted) episode cost.
        lagrange_lr: Step size of the ``grad`` multiplier.
        lagrange_init: Initial λ.
        lagrange_pinned: Keep λ at ``lagrange_init`` (with 0: SAC's actor/critic updates exactly).
        lagrange_optimizer: ``sgd`` or ``adam`` (``grad`` method only).
        lagrange_method: ``grad`` or ``pid``.
        pid_kp: Proportional gain of the PID multiplier.
        pid_ki: Integral gain of the PID multiplier.
        pid_kd: Derivative gain of the PID multiplier.
        lagrange_interval: Env steps (summed over envs) between λ updates.
        cost_gamma: Discount of the costs; None → ``gamma``.
        deploy_cost_episodes: Deployment-aware constraint: with ``n > 0``, play ``n`` deterministic episodes every
            ``deploy_cost_every`` λ updates and update λ from the larger of their mean cost and the training
            episodes' (0: training episodes only, SAC-Lagrangian as before).
        deploy_cost_every: λ updates between two deterministic probes.
        deploy_env: Factory of the probe's env; None copies the training env from its registered spec.
        _init_setup_model: Build the networks now (SB3 convention).
        **sac_kwargs: Everything else goes to :class:`stable_baselines3.SAC`.

    Raises:
        ValueError: On an invalid Lagrange setting or a replay buffer class that cannot hold costs.
    """

    replay_buffer: CostReplayBuffer

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
        lagrange_interval: int = 1000,
        cost_gamma: float | None = None,
        deploy_cost_episodes: int = 0,
        deploy_cost_every: int = 1,
        deploy_env: Callable[[], Any] | None = None,
        _init_setup_model: bool = True,
        **sac_kwargs: Any,
    ) -> None:
        buffer_class = sac_kwargs.pop("replay_buffer_class", None) or CostReplayBuffer
        if not (isinstance(buffer_class, type) and issubclass(buffer_class, CostReplayBuffer)):
            raise ValueError(f"replay_buffer_class must subclass CostReplayBuffer, got {buffer_class!r}")
        if isinstance(lagrange_interval, bool) or int(lagrange_interval) != lagrange_interval or lagrange_interval < 1:
            raise ValueError(f"lagrange_interval must be a whole number >= 1, got {lagrange_interval!r}")
        if cost_gamma is not None and not 0.0 <= float(cost_gamma) <= 1.0:
            raise ValueError(f"cost_gamma must be in [0, 1], got {cost_gamma}")
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
        self.lagrange_interval = int(lagrange_interval)
        self._init_deploy_cost(deploy_cost_episodes, deploy_cost_every, deploy_env)
        super().__init__(policy, env, replay_buffer_class=buffer_class, _init_setup_model=False, **sac_kwargs)
        self.cost_gamma = self.gamma if cost_gamma is None else float(cost_gamma)
        self._init_transient()
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ setup, save / load
    def _init_transient(self) -> None:
        self._running_ep_cost = np.zeros(getattr(self, "n_envs", 1), dtype=np.float64)
        self._finished_ep_costs: list[float] = []
        self._last_lagrange_step = int(getattr(self, "num_timesteps", 0))

    def _setup_model(self) -> None:
        super()._setup_model()
        self._init_transient()
        with th.random.fork_rng(devices=[]):  # leave SAC's torch stream where it is
            self.cost_critic = self.policy.make_critic(features_extractor=None)
            self.cost_critic_target = self.policy.make_critic(features_extractor=None)
        self.cost_critic_target.load_state_dict(self.cost_critic.state_dict())
        self.cost_critic_target.set_training_mode(False)
        self.cost_critic_optimizer = self.policy.optimizer_class(
            self.cost_critic.parameters(), lr=self.lr_schedule(1), **self.policy.optimizer_kwargs
        )

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "cost_critic", "cost_critic_target", "cost_critic_optimizer"], variables

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), *_TRANSIENT]

    # ------------------------------------------------------------------ read-outs
    @property
    def lagrange_multiplier(self) -> float:
        """float: The current λ."""
        return self.lagrange.value

    @property
    def cost_limit(self) -> float:
        """float: The episode-cost limit ``d``."""
        return self.lagrange.cost_limit

    def predict_cost_values(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Mean cost-critic estimate ``Q̄_c(s, a)`` for a batch, shape ``(batch,)``."""
        with th.no_grad():
            obs = th.as_tensor(np.asarray(observations), device=self.device).float()
            act = th.as_tensor(np.asarray(actions), device=self.device).float()
            q = th.cat(self.cost_critic(obs, act), dim=1).mean(dim=1)
        return q.cpu().numpy()

    # ------------------------------------------------------------------ cost bookkeeping and λ
    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        fresh = reset_num_timesteps or self._last_obs is None  # the env is about to be reset
        if fresh:
            self._running_ep_cost = np.zeros(self.n_envs, dtype=np.float64)
            self._finished_ep_costs = []
        result = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        if fresh:  # a continued run (a resume among them) keeps counting towards its next λ update
            self._last_lagrange_step = self.num_timesteps
        return result

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: Any,
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        tally_episode_costs(self._running_ep_cost, self._finished_ep_costs, costs_from_infos(infos, np.float64), dones)
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    def _on_step(self) -> None:
        super()._on_step()
        if self.num_timesteps - self._last_lagrange_step < self.lagrange_interval:
            return
        self._last_lagrange_step = self.num_timesteps
        mean_cost = float(np.mean(self._finished_ep_costs)) if self._finished_ep_costs else None
        if mean_cost is not None:
            self.logger.record("lagrange/ep_cost_mean", mean_cost)
            self._finished_ep_costs = []
        cost = self._with_deployed_cost(mean_cost)  # deploy_cost_episodes > 0: the deterministic policy's too
        if cost is not None:
            self.lagrange.update(cost)
        self.logger.record("lagrange/lambda", self.lagrange.value)

    # ------------------------------------------------------------------ training
    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """SAC's updates with a cost critic beside the reward critics and ``λ·Q_c`` in the actor loss."""
        self.policy.set_training_mode(True)
        self.cost_critic.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer, self.cost_critic_optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        lam = float(self.lagrange.value)
        logs: dict[str, list[float]] = {"ent_coef": [], "actor_loss": [], "critic_loss": [], "cost_critic_loss": []}
        for step in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            assert batch.costs is not None
            discount = batch.discounts if batch.discounts is not None else self.gamma
            if self.use_sde:
                self.actor.reset_noise()
            actions_pi, log_prob = self.actor.action_log_prob(batch.observations)
            log_prob = log_prob.reshape(-1, 1)
            ent_coef = self._temperature_step(log_prob)
            logs["ent_coef"].append(ent_coef.item())

            with th.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(batch.next_observations)
                next_q = th.cat(self.critic_target(batch.next_observations, next_actions), dim=1)
                next_q = th.min(next_q, dim=1, keepdim=True)[0] - ent_coef * next_log_prob.reshape(-1, 1)
                target_q = batch.rewards + (1 - batch.dones) * discount * next_q
                next_qc = th.cat(self.cost_critic_target(batch.next_observations, next_actions), dim=1)
                target_qc = batch.costs + (1 - batch.dones) * self.cost_gamma * next_qc.mean(dim=1, keepdim=True)

            critic_loss = 0.5 * sum(F.mse_loss(q, target_q) for q in self.critic(batch.observations, batch.actions))
            assert isinstance(critic_loss, th.Tensor)
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            logs["critic_loss"].append(critic_loss.item())

            cost_loss = 0.5 * sum(F.mse_loss(q, target_qc) for q in self.cost_critic(batch.observations, batch.actions))
            assert isinstance(cost_loss, th.Tensor)
            self.cost_critic_optimizer.zero_grad()
            cost_loss.backward()
            self.cost_critic_optimizer.step()
            logs["cost_critic_loss"].append(cost_loss.item())

            q_pi = th.min(th.cat(self.critic(batch.observations, actions_pi), dim=1), dim=1, keepdim=True)[0]
            actor_loss = (ent_coef * log_prob - q_pi).mean()
            if lam > 0.0:
                qc_pi = th.cat(self.cost_critic(batch.observations, actions_pi), dim=1).mean(dim=1, keepdim=True)
                actor_loss = actor_loss + lam * qc_pi.mean()
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            logs["actor_loss"].append(actor_loss.item())

            if step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
                polyak_update(self.cost_critic.parameters(), self.cost_critic_target.parameters(), self.tau)
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logs.items():
            self.logger.record(f"train/{key}", float(np.mean(values)) if values else float("nan"))
        self.logger.record("lagrange/lambda", lam)

    def _temperature_step(self, log_prob: th.Tensor) -> th.Tensor:
        """SAC's entropy-temperature update; returns the α used in this gradient step."""
        if self.ent_coef_optimizer is None or self.log_ent_coef is None:
            return self.ent_coef_tensor
        ent_coef = th.exp(self.log_ent_coef.detach())
        assert isinstance(self.target_entropy, float)
        loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
        self.ent_coef_optimizer.zero_grad()
        loss.backward()
        self.ent_coef_optimizer.step()
        return ent_coef
