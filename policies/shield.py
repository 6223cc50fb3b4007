"""Runtime safety shield: a filter between the policy's action and the robot (the ``ppo-shield`` arm).

The shield's math is two pure functions, checked by property tests:

* :func:`filter_tcp_velocity` (arms): scale a commanded TCP velocity down to a speed cap, then, if one
  control step at that velocity would end inside the keep-out volume (every point closer than
  ``clearance`` to a box around the person), either remove the velocity component toward the person
  (deflect: slide along the volume) or shorten the step to end at the volume's edge (stop short), whichever
  safe command keeps more speed.
* :func:`governor_scale` (legged robots): a throttle that scales the actuator command from 1 down to 0
  as the measured speed rises through a band below the speed cap.

:class:`SafetyShield` applies them to a taxbench env through small adapters:

* **Arm** (:class:`ArmAdapter`): the robot exposes ``max_tcp_speed`` (m/s per unit action: the action is
  the commanded Cartesian TCP velocity divided by it) and ``root_position(sim)`` (the TCP); the env's
  ``tcp_speed`` cost term gives the speed limit, and a term with ``parts`` and ``protective_distance(v)``
  (the ``separation`` term) gives the person's boxes and the ISO/TS 15066 protective distance.
* **Legged** (:class:`GovernorAdapter`): the env reports ``measure_velocity`` (m/s) in ``info`` and has a
  ``velocity`` cost term whose ``threshold`` is the limit.

Any other env raises ``ValueError`` naming it. The guarantee is on the *command*: the robot's controller
may lag it, which is why the intensity margins shrink the cap and grow the clearance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = [
    "ArmAdapter",
    "GovernorAdapter",
    "SafetyShield",
    "box_distance",
    "filter_tcp_velocity",
    "governor_scale",
    "make_shield_wrapper",
]

_BISECTION_STEPS = 30


def box_distance(point: np.ndarray, centers: np.ndarray, half_extents: np.ndarray) -> float:
    """Distance, m, from a point to the nearest of several axis-aligned boxes (0 inside one).

    Args:
        point: Shape (3,), m.
        centers: Box centres, shape (n, 3), m.
        half_extents: Box half sizes, shape (n, 3), m.
    """
    gap = np.maximum(np.abs(np.asarray(point) - centers) - half_extents, 0.0)
    return float(np.min(np.linalg.norm(gap, axis=1))) if len(centers) else math.inf


def _away_direction(point: np.ndarray, centers: np.ndarray, half_extents: np.ndarray) -> np.ndarray:
    """Unit vector from the nearest box's closest point to ``point`` (zeros when inside a box)."""
    gaps = np.maximum(np.abs(point - centers) - half_extents, 0.0)
    nearest = int(np.argmin(np.linalg.norm(gaps, axis=1)))
    closest = np.clip(point, centers[nearest] - half_extents[nearest], centers[nearest] + half_extents[nearest])
    offset = point - closest
    norm = float(np.linalg.norm(offset))
    return offset / norm if norm > 0 else np.zeros(3)


def filter_tcp_velocity(
    position: np.ndarray,
    velocity: np.ndarray,
    dt: float,
    speed_cap: float,
    centers: np.ndarray | None = None,
    half_extents: np.ndarray | None = None,
    clearance: float = 0.0,
) -> np.ndarray:
    """Filter a commanded TCP velocity so one step keeps the speed cap and stays out of the keep-out volume.

    Args:
        position: TCP position now, m, shape (3,).
        velocity: Commanded TCP velocity, m/s, shape (3,).
        dt: Control period, s.
        speed_cap: Largest allowed TCP speed, m/s (>= 0).
        centers: Keep-out box centres, m, shape (n, 3); None or empty for no keep-out.
        half_extents: Keep-out box half sizes, m, shape (n, 3).
        clearance: Keep-out distance around the boxes, m: the step must end at least this far from them.

    Returns:
        The filtered velocity, m/s, shape (3,): ``‖v‖ <= speed_cap`` always; and if ``position`` is at least
        ``clearance`` from every box, so is ``position + v·dt``. From inside the keep-out volume only moves
        that do not get closer are let through.
    """
    v = np.asarray(velocity, dtype=np.float64).reshape(3).copy()
    speed = float(np.linalg.norm(v))
    if speed > speed_cap:
        v *= speed_cap / speed
        # rounding can leave the norm a hair above the cap
        while float(np.linalg.norm(v)) > speed_cap:
            v *= 1.0 - 1e-12
    if centers is None or len(centers) == 0:
        return v
    p = np.asarray(position, dtype=np.float64).reshape(3)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 3)
    half_extents = np.asarray(half_extents, dtype=np.float64).reshape(-1, 3)
    start = box_distance(p, centers, half_extents)
    required = min(clearance, start)  # from inside the volume: do not get closer

    def safe(candidate: np.ndarray) -> bool:
        return box_distance(p + candidate * dt, centers, half_extents) >= required

    if safe(v):
        return v
    away = _away_direction(p, centers, half_extents)
    deflected = v - min(0.0, float(v @ away)) * away  # drop the approach component: slide along the volume
    low, high = 0.0, 1.0  # stop short: the largest safe fraction of the step (0 is safe by construction)
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (low + high)
        if safe(mid * v):
            low = mid
        else:
            high = mid
    short = low * v
    if safe(deflected) and float(np.linalg.norm(deflected)) > float(np.linalg.norm(short)):
        return deflected
    return short


def governor_scale(speed: float, speed_cap: float, band: float) -> float:
    """Throttle of a velocity governor: 1 below ``speed_cap − band``, 0 at or above ``speed_cap``, linear between.

    Args:
        speed: Measured speed, m/s.
        speed_cap: Speed at which the command is cut to 0, m/s.
        band: Width of the linear ramp below the cap, m/s (> 0).
    """
    if not math.isfinite(speed):
        return 0.0
    return float(np.clip((speed_cap - speed) / band, 0.0, 1.0))


@dataclass
class ArmAdapter:
    """Speed-and-separation filter for a TCP-velocity-controlled arm (see the module docstring)."""

    env: Any
    speed_fraction: float
    clearance: float

    def __post_init__(self) -> None:
        base = self.env.unwrapped
        self.robot, self.sim = base.robot, base.sim
        terms = {term.name: term for term in base.safety}
        if "tcp_speed" not in terms:
            raise ValueError(f"{_env_name(self.env)} has no 'tcp_speed' cost term: the arm shield needs its limit")
        self.speed_cap = self.speed_fraction * float(terms["tcp_speed"].threshold)
        keepout = [t for t in base.safety if hasattr(t, "parts") and hasattr(t, "protective_distance")]
        self.separation = keepout[0] if keepout else None

    def filter(self, action: np.ndarray) -> np.ndarray:
        """Filtered action (a TCP velocity in units of ``max_tcp_speed``)."""
        scale = float(self.robot.max_tcp_speed)
        velocity = np.asarray(action, dtype=np.float64)[:3] * scale
        position = np.asarray(self.robot.root_position(self.sim), dtype=np.float64)
        if self.separation is None:
            filtered = filter_tcp_velocity(position, velocity, self.sim.dt, self.speed_cap)
        else:
            centers = np.array([self.sim.body_position(p.name) for p in self.separation.parts]).reshape(-1, 3)
            halves = np.array([p.half_extents for p in self.separation.parts]).reshape(-1, 3)
            clearance = float(self.separation.protective_distance(self.speed_cap)) + self.clearance
            filtered = filter_tcp_velocity(position, velocity, self.sim.dt, self.speed_cap, centers, halves, clearance)
        out = np.asarray(action, dtype=np.float64).copy()
        out[:3] = filtered / scale
        return out


@dataclass
class GovernorAdapter:
    """Velocity governor for a legged robot: scales the actuator command by :func:`governor_scale`."""

    env: Any
    speed_fraction: float
    band_fraction: float = 0.25

    def __post_init__(self) -> None:
        terms = {term.name: term for term in getattr(self.env.unwrapped, "safety", ())}
        if "velocity" not in terms:
            raise ValueError(f"{_env_name(self.env)} has no 'velocity' cost term: the velocity governor needs it")
        limit = float(terms["velocity"].threshold)
        self.speed_cap = self.speed_fraction * limit
        self.band = self.band_fraction * limit
        self.speed = 0.0

    def observe(self, info: dict[str, Any]) -> None:
        """Read the speed measured on the last step (``measure_velocity``, m/s)."""
        self.speed = float(info.get("measure_velocity", 0.0))

    def filter(self, action: np.ndarray) -> np.ndarray:
        """The action scaled by the governor's throttle."""
        return np.asarray(action, dtype=np.float64) * governor_scale(self.speed, self.speed_cap, self.band)


def _env_name(env: Any) -> str:
    spec = getattr(env, "spec", None)
    return getattr(spec, "id", None) or type(getattr(env, "unwrapped", env)).__name__


class SafetyShield(gym.Wrapper):
    """Filters every action through the env's shield adapter; ``info`` tells when it intervened.

    ``info["shield_active"]`` (bool) is set when the applied action differs from the policy's, and
    ``info["shield_correction"]`` is the norm of the difference (action units).

    Args:
        env: A taxbench arm (``tcp_speed`` term, TCP-velocity actions) or legged env (``velocity`` term).
        speed_fraction: Speed cap as a fraction of the env's speed limit (0, 1].
        clearance: Extra keep-out distance beyond the protective separation distance, m (arms only).

    Raises:
        ValueError: If the env supports neither adapter, or a margin is out of range.
    """

    def __init__(self, env: gym.Env, speed_fraction: float = 1.0, clearance: float = 0.0) -> None:
        super().__init__(env)
        if not (math.isfinite(speed_fraction) and 0.0 < speed_fraction <= 1.0):
            raise ValueError(f"shield speed_fraction must be in (0, 1], got {speed_fraction!r}")
        if not (math.isfinite(clearance) and clearance >= 0.0):
            raise ValueError(f"shield clearance must be a finite distance >= 0 m, got {clearance!r}")
        robot = getattr(env.unwrapped, "robot", None)
        self.adapter: ArmAdapter | GovernorAdapter
        if robot is not None and hasattr(robot, "max_tcp_speed"):
            self.adapter = ArmAdapter(env, speed_fraction, clearance)
        elif "velocity" in {t.name for t in getattr(env.unwrapped, "safety", ())}:
            self.adapter = GovernorAdapter(env, speed_fraction)
        else:
            raise ValueError(
                f"no safety shield for {_env_name(env)}: it needs a TCP-velocity arm with a 'tcp_speed' cost term "
                "or a legged robot with a 'velocity' cost term"
            )
        self.interventions = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the env and the adapter's measurements."""
        obs, info = self.env.reset(**kwargs)
        if isinstance(self.adapter, GovernorAdapter):
            self.adapter.observe(info)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Filter the action, step the env, record the intervention."""
        raw = np.clip(np.asarray(action, dtype=np.float64), self.action_space.low, self.action_space.high)
        filtered = self.adapter.filter(raw)
        obs, reward, terminated, truncated, info = self.env.step(filtered.astype(self.action_space.dtype))
        if isinstance(self.adapter, GovernorAdapter):
            self.adapter.observe(info)
        correction = float(np.linalg.norm(filtered - raw))
        active = correction > 1e-9
        self.interventions += int(active)
        return obs, reward, terminated, truncated, {**info, "shield_active": active, "shield_correction": correction}


def make_shield_wrapper(speed_fraction: float = 1.0, clearance: float = 0.0) -> Any:
    """A one-argument function wrapping an env in :class:`SafetyShield` with these margins (picklable)."""
    return _ShieldFactory(float(speed_fraction), float(clearance))


@dataclass(frozen=True)
class _ShieldFactory:
    speed_fraction: float
    clearance: float

    def __call__(self, env: gym.Env) -> gym.Env:
        return SafetyShield(env, self.speed_fraction, self.clearance)
