"""Deployment-aware constraint: measure the episode cost of the *deterministic* policy for the λ update.

A Lagrangian learner (``ppo-lag``, ``sac-lag``) adapts λ to the cost of its stochastic training
episodes; the policy users deploy is the deterministic one, which can cost several times more
(NOTES.md, "Evaluation protocol matters": HalfCheetahVelocity at 200k steps, stochastic 4–16 per
episode, deterministic 89–114). With
``deploy_cost_episodes = n > 0`` the learner plays ``n`` deterministic episodes on its own copy of the
env every ``deploy_cost_every`` λ updates (a rollout for ``ppo-lag``, ``lagrange_interval`` env steps for
``sac-lag``) and updates λ from ``max(training-episode cost, deterministic cost)``, so the limit ``d`` must
hold for both protocols. :class:`DeployAwareLagrangian` gives a learner this option.

The probe draws no random numbers from the global streams (deterministic actions; the env copy is
reset with its own seeds ``seed + k``), so with λ pinned at 0 the learner stays PPO bit for bit. The
probe's env steps are not counted in ``num_timesteps``; they cost ``n × episode length`` env steps
per probe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np

#: First reset seed of the probe's episodes (far from the training and evaluation seeds).
PROBE_SEED = 7_000_000

#: Entry point of SB3's Monitor in an env spec's wrapper list.
_MONITOR = "stable_baselines3.common.monitor:Monitor"

#: Safety net against an env without a time limit (steps per probe episode).
MAX_PROBE_STEPS = 100_000


def env_copy(vec_env: Any) -> gymnasium.Env:
    """A fresh single env like the first of ``vec_env``, built from its registered spec (with its kwargs).

    Raises:
        ValueError: when the env has no registered spec (pass ``deploy_env`` to the learner then).
    """
    spec = None
    try:
        spec = vec_env.get_attr("spec", indices=[0])[0]
    except Exception:  # a VecEnv that does not forward attributes
        spec = getattr(getattr(vec_env, "unwrapped", None), "spec", None)
    if spec is None:
        raise ValueError("deploy_cost_episodes needs a registered env (with a spec) or an explicit deploy_env factory")
    # SB3's Monitor only tallies training episodes (and cannot be rebuilt from a spec): the probe goes without it
    wrappers = tuple(w for w in spec.additional_wrappers if w.entry_point != _MONITOR)
    if any(w.kwargs is None for w in wrappers):
        names = ", ".join(w.name for w in wrappers if w.kwargs is None)
        raise ValueError(f"deploy_cost_episodes cannot rebuild the env's wrapper {names}: pass a deploy_env factory")
    spec = dataclasses.replace(spec, additional_wrappers=wrappers)
    if spec.max_episode_steps is None and spec.id in gymnasium.registry:
        # a batched vector env keeps time limits itself: its worlds' specs lose the registered one
        return gymnasium.make(spec.id, max_episode_steps=gymnasium.spec(spec.id).max_episode_steps, **spec.kwargs)
    return gymnasium.make(spec)


class DeployedCostProbe:
    """Plays deterministic episodes of a model on its own env and returns their mean episode cost.

    Args:
        episodes: Deterministic episodes per probe (> 0).
        every: Probe after every ``every``-th rollout (>= 1).
        make_env: Factory of the probe's env; None copies the training env from its spec.
        seed: Reset seed of the first probe episode; probe ``k`` episode ``i`` uses ``seed + k·episodes + i``.
    """

    def __init__(
        self, episodes: int, every: int = 1, make_env: Callable[[], gymnasium.Env] | None = None, seed: int = PROBE_SEED
    ) -> None:
        if int(episodes) < 1 or int(every) < 1:
            raise ValueError(f"deploy_cost_episodes must be >= 1 and deploy_cost_every >= 1, got {episodes}, {every}")
        self.episodes, self.every, self.make_env, self.seed = int(episodes), int(every), make_env, int(seed)
        self.rollouts = 0
        self.probes = 0
        self.env: gymnasium.Env | None = None
        self.last_cost = float("nan")

    def due(self) -> bool:
        """Count one rollout; True when this one is probed."""
        self.rollouts += 1
        return (self.rollouts - 1) % self.every == 0

    def measure(self, model: Any) -> float:
        """Mean episode cost (sum of ``info["cost"]``) of ``episodes`` deterministic episodes of ``model``."""
        if self.env is None:
            self.env = self.make_env() if self.make_env is not None else env_copy(model.get_env())
        costs = []
        for i in range(self.episodes):
            obs, _ = self.env.reset(seed=self.seed + self.probes * self.episodes + i)
            total, done, steps = 0.0, False, 0
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, _, terminated, truncated, info = self.env.step(action)
                total += float(info.get("cost", 0.0))
                done = bool(terminated or truncated)
                steps += 1
                if steps >= MAX_PROBE_STEPS:
                    raise RuntimeError(f"probe episode ran {MAX_PROBE_STEPS} steps: does the env have a time limit?")
            costs.append(total)
        self.probes += 1
        self.last_cost = float(np.mean(costs))
        return self.last_cost

    def close(self) -> None:
        """Close the probe's env (idempotent)."""
        if self.env is not None:
            self.env.close()
            self.env = None


class DeployAwareLagrangian:
    """Mixin for a Lagrangian learner: the episode cost its λ update sees, made deployment-aware.

    The learner calls :meth:`_init_deploy_cost` in its constructor and passes its training episodes' mean cost
    through :meth:`_with_deployed_cost` before each λ update; the probe and the env factory are never saved
    (a loaded model builds its probe again). It needs ``predict``, ``logger`` and ``_excluded_save_params``
    (any SB3 algorithm has them); the class defaults below are those of a model saved before the option existed.
    """

    deploy_cost_episodes: int = 0
    deploy_cost_every: int = 1
    deploy_env: Callable[[], gymnasium.Env] | None = None
    _deploy_probe: DeployedCostProbe | None = None

    def _init_deploy_cost(self, episodes: int, every: int, make_env: Callable[[], gymnasium.Env] | None) -> None:
        """Validate and keep the option (``episodes`` 0 turns it off)."""
        self.deploy_cost_episodes, self.deploy_cost_every = int(episodes), int(every)
        if self.deploy_cost_episodes < 0 or self.deploy_cost_every < 1:
            raise ValueError(f"deploy_cost_episodes must be >= 0 and deploy_cost_every >= 1, got {episodes}, {every}")
        self.deploy_env, self._deploy_probe = make_env, None

    def use_deploy_env(self, make_env: Callable[[], gymnasium.Env]) -> None:
        """Play the probe's episodes on envs from ``make_env``.

        The probe is built now (when the option is on), so that a resume state finds it and restores its counters.
        """
        self.deploy_env = make_env
        probe = self._deployed_cost_probe()
        if probe is not None:
            probe.make_env = make_env

    def _deployed_cost_probe(self) -> DeployedCostProbe | None:
        """The deterministic-episode probe (built on first use; None when ``deploy_cost_episodes`` is 0)."""
        if self.deploy_cost_episodes <= 0:
            return None
        if self._deploy_probe is None:
            self._deploy_probe = DeployedCostProbe(self.deploy_cost_episodes, self.deploy_cost_every, self.deploy_env)
        return self._deploy_probe

    def _with_deployed_cost(self, cost: float | None) -> float | None:
        """The episode cost for this λ update, from the training episodes' mean ``cost`` (None when none finished).

        When a probe is due, the larger of ``cost`` and the deterministic probe's mean episode cost (logged as
        ``lagrange/deployed_ep_cost``); otherwise ``cost`` unchanged.
        """
        probe = self._deployed_cost_probe()
        if probe is None or not probe.due():
            return cost
        deployed = probe.measure(self)
        self.logger.record("lagrange/deployed_ep_cost", deployed)  # type: ignore[attr-defined]
        return deployed if cost is None else max(cost, deployed)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_deploy_probe", "deploy_env"]  # type: ignore[misc]
