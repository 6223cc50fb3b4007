"""Tiny environments with an ``info["cost"]`` channel, for the learner tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class SpeedLimitedPointEnv(gym.Env):
    """A 1-D point mass on a line, rewarded for forward speed, with a speed limit as the constraint.

    Dynamics (SI units): ``v ← v + dt·(force·a − drag·v)`` with ``a ∈ [-1, 1]``; reward = ``v`` (m/s)
    per step; cost = 1 when ``v > speed_limit`` (0/1 indicator, Safety-Gym convention). Full thrust
    reaches ``force / drag`` m/s, well past the limit, so the unconstrained optimum violates on most
    steps and the constrained one holds the speed just below the limit. Episodes are truncated after
    ``max_episode_steps`` steps. Observation: ``[v, t / max_episode_steps]``.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        speed_limit: float = 1.0,
        max_episode_steps: int = 100,
        dt: float = 0.1,
        force: float = 3.0,
        drag: float = 1.0,
        terminate_below: float | None = None,
    ) -> None:
        self.speed_limit = speed_limit  # m/s
        self.max_episode_steps = max_episode_steps
        self.dt = dt  # s
        self.force = force  # m/s² at full thrust
        self.drag = drag  # 1/s
        self.terminate_below = terminate_below  # m/s; optional termination, to exercise episode ends
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._v = 0.0
        self._t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self._v, self._t / self.max_episode_steps], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._v = float(self.np_random.uniform(-0.1, 0.1))
        self._t = 0
        return self._obs(), {"cost": 0.0}

    def step(self, action: np.ndarray):
        a = float(np.clip(np.asarray(action).reshape(-1)[0], -1.0, 1.0))
        self._v += self.dt * (self.force * a - self.drag * self._v)
        self._t += 1
        reward = self._v
        cost = float(self._v > self.speed_limit)
        terminated = self.terminate_below is not None and self._v < self.terminate_below
        truncated = self._t >= self.max_episode_steps
        info = {"cost": cost, "cost_speed": cost, "violation": cost > 0, "measure_speed": self._v}
        return self._obs(), reward, terminated, truncated, info


class NoCostEnv(SpeedLimitedPointEnv):
    """The same point mass, but its info carries no ``cost`` key (tests the missing-key warning)."""

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, _ = super().step(action)
        return obs, reward, terminated, truncated, {}


class OverspeedPointEnv(gym.Env):
    """A velocity-commanded 1-D point mass paid for speed and costed quadratically above a speed limit.

    Each step the action sets the speed ``v = max_speed·clip(a, −1, 1)`` (m/s); reward = ``v``; cost =
    ``kappa·max(0, v − speed_limit)²``. Episodes last ``horizon`` steps; observation: ``[t / horizon]``.

    The horizon is part of the task and the time is in the observation, so the last step *terminates* the
    episode (Pardo et al. 2018, "Time Limits in Reinforcement Learning"): nothing is bootstrapped past it. Reported
    as a truncation, SB3 would add ``γ·V(s_T)`` with the critic extrapolated to ``t = 1``, which pays a Saute
    policy for budget left at the end (measured: Saute's return stalled at 61 of 75 with 2/3 of its budget unspent).

    The constrained optimum is known in closed form (see :func:`overspeed_optimum`): for any policy,
    ``Σ v ≤ T·v_lim + Σ e`` with ``e = max(0, v − v_lim)``, and by Cauchy-Schwarz ``Σ e ≤ sqrt(T·Σ e²)``,
    so ``J_r ≤ T·v_lim + sqrt(T·d/kappa)`` when ``J_c ≤ d``, with equality at the constant speed
    ``v* = v_lim + sqrt(d / (T·kappa))``. The Lagrangian ``v − λ·kappa·e²`` peaks there for
    ``λ* = 1 / (2·kappa·e*)``: a fixed penalty ``β = λ*`` has the same optimum.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, speed_limit: float = 1.0, max_speed: float = 3.0, kappa: float = 2.0, horizon: int = 50) -> None:
        self.speed_limit, self.max_speed, self.kappa, self.horizon = speed_limit, max_speed, kappa, horizon
        self.observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        return np.zeros(1, dtype=np.float32), {"cost": 0.0}

    def step(self, action: np.ndarray):
        speed = self.max_speed * float(np.clip(np.asarray(action).reshape(-1)[0], -1.0, 1.0))
        self._t += 1
        cost = self.kappa * max(0.0, speed - self.speed_limit) ** 2
        info = {"cost": cost, "cost_speed": cost, "violation": cost > 0, "measure_speed": speed}
        obs = np.array([self._t / self.horizon], dtype=np.float32)
        return obs, speed, self._t >= self.horizon, False, info


def overspeed_optimum(env: OverspeedPointEnv, cost_limit: float) -> tuple[float, float, float]:
    """Closed-form constrained optimum of :class:`OverspeedPointEnv`: ``(return J*, speed v*, multiplier λ*)``."""
    excess = min(np.sqrt(cost_limit / (env.horizon * env.kappa)), env.max_speed - env.speed_limit)
    multiplier = 1.0 / (2.0 * env.kappa * excess) if excess > 0 else np.inf
    speed = env.speed_limit + excess
    return env.horizon * speed, speed, multiplier


class VelocityTaskPointEnv(SpeedLimitedPointEnv):
    """The point mass dressed as a taxbench velocity task, for ``ppo-track``.

    It carries what ``ppo-track`` reads from a ``SafeRobotEnv``: a ``velocity`` cost term with the speed
    limit as its ``threshold`` (m/s), a task whose forward-reward weight is 1 (reward = v), and the
    measured speed in ``info["measure_velocity"]``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.safety = (SimpleNamespace(name="velocity", threshold=self.speed_limit),)
        self.task = SimpleNamespace(weights=SimpleNamespace(forward=1.0))

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, {**info, "measure_velocity": info["measure_speed"]}
