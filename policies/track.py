"""A reference built for the purpose: PPO trained to run no faster than a fraction of the speed limit (``ppo-track``).

On a velocity-limited task the constraint forbids speed above the limit ``v_max`` and nothing else, so the
best policy the constraint allows runs *just under* ``v_max``. ``ppo-track`` learns such a policy directly:
plain PPO on the task reward with the speed overshoot above ``v_cap = f · v_max`` charged at twice the
task's forward-reward weight ``w``::

    r_track = r − 2w · max(0, v − v_cap)

where ``v`` is what the env's ``velocity`` cost term measures (forward velocity of planar robots, horizontal
speed of the Ant; ``info["measure_velocity"]``, m/s). For a planar robot the forward term ``w·v`` becomes a
tent peaked at ``v_cap``: ``w·v`` below it, ``w·(2·v_cap − v)`` above, so the best speed is the cap. (A
forward term merely *capped* at ``w·v_cap`` leaves the policy indifferent to speed above the cap wherever
the control cost is small, e.g. Hopper's 1e-3·|a|²; on the toy point mass, with no control cost, such a
policy ran at full thrust, over the limit on 96 of 100 steps.) The learner never sees the cost signal or a
multiplier: its safety comes from the task knowledge that speed is all the constraint limits. Its
evaluated runs are candidates for ``C*_feasible`` (``metrics/decompose.py``) like any other run: a
``ppo-track`` run counts there only where its own evaluation shows it feasible against the cell's limit,
so a cap too close to ``v_max`` (a gait's speed oscillates about its mean) shows as an infeasible run and
is never trusted by construction.

The dose is ``track_speed_fraction`` ``f`` in (0, 1] (the named intensities use the shield's speed
fractions). The penalty is applied where the learner stores its rewards, as ``ppo-penalty`` does
(:mod:`.penalty`, the same formula ``r − β·x`` with ``β = 2w`` and ``x`` the overshoot): the env, its
``Monitor`` and ``progress.csv`` keep the true task reward.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import MaybeCallback

from .penalty import PPOPenalty

__all__ = ["PPOTrack", "speed_overshoot"]

#: The info key of the speed the env's ``velocity`` cost term measures, m/s.
SPEED_KEY = "measure_velocity"
#: Overshoot charge per unit of forward-reward weight: 2 turns the forward term into a tent peaked at the cap.
OVERSHOOT_CHARGE = 2.0


def speed_overshoot(speed: np.ndarray | float, cap: float) -> np.ndarray:
    """``max(0, speed − cap)``, m/s, elementwise."""
    return np.maximum(np.asarray(speed, dtype=np.float32) - np.float32(cap), np.float32(0.0))


def _check_fraction(fraction: float) -> float:
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise ValueError(f"track_speed_fraction must be a number in (0, 1], got {fraction!r}") from None
    if not (0.0 < value <= 1.0):
        raise ValueError(f"track_speed_fraction must be a number in (0, 1], got {fraction!r}")
    return value


def speed_limit_and_weight(env: Any) -> tuple[float, float]:
    """The speed limit ``v_max`` (m/s) of an env's ``velocity`` cost term and its task's forward-reward weight.

    Args:
        env: A taxbench ``SafeRobotEnv``, or a VecEnv of them (its first env is read).

    Raises:
        ValueError: If the env has no ``velocity`` cost term or its task no forward-reward weight.
    """
    if hasattr(env, "get_attr"):
        try:
            safety, task = env.get_attr("safety")[0], env.get_attr("task")[0]
        except AttributeError:  # not a taxbench env
            safety, task = (), None
    else:
        base = getattr(env, "unwrapped", env)
        safety, task = getattr(base, "safety", ()), getattr(base, "task", None)
    terms = {term.name: term for term in safety}
    if "velocity" not in terms:
        raise ValueError(
            "the ppo-track arm needs a velocity-limited env (a 'velocity' cost term, e.g. taxbench/HopperVelocity-v0); "
            f"this env's cost terms are {sorted(terms) or 'none'}"
        )
    weight = getattr(getattr(task, "weights", None), "forward", None)
    if weight is None or not weight > 0:
        raise ValueError("the ppo-track arm needs a task that rewards forward velocity (weights.forward > 0)")
    return float(terms["velocity"].threshold), float(weight)


def _has_cost_terms(venv: Any) -> bool:
    """Whether a VecEnv's envs carry taxbench cost terms (a spaces-only env, as the safe loader builds, does not)."""
    try:
        venv.get_attr("safety")
    except AttributeError:
        return False
    return True


class PPOTrack(PPOPenalty):
    """SB3 PPO on ``r − 2w·max(0, v − f·v_max)``: the purpose-built feasible reference of velocity tasks.

    Every PPO keyword is accepted. The cap ``track_speed`` (m/s) and the weight are read from the env when
    learning starts (a learner rebuilt without an env, e.g. by the safe loader, only acts).

    Args:
        policy: Policy class or name (``"MlpPolicy"``).
        env: A velocity-limited taxbench env, VecEnv or id.
        track_speed_fraction: ``f`` in (0, 1]: the cap as a fraction of the env's speed limit.
        **ppo_kwargs: Everything else goes to :class:`stable_baselines3.PPO`.

    Raises:
        ValueError: For ``f`` outside (0, 1], or a taxbench env without a ``velocity`` cost term (checked at
            construction and again when learning starts).
    """

    def __init__(self, policy: Any, env: Any, track_speed_fraction: float = 0.9, **ppo_kwargs: Any) -> None:
        self.track_speed_fraction = _check_fraction(track_speed_fraction)
        self.track_speed = math.nan  # m/s, set from the env when learning starts
        ppo_kwargs.pop("penalty_coef", None)  # the weight comes from the task
        super().__init__(policy, env, penalty_coef=1.0, **ppo_kwargs)
        if self.env is not None and _has_cost_terms(self.env):  # refuse a wrong env now, not when learning starts
            speed_limit_and_weight(self.env)

    def penalised_signal(self, infos: list[dict[str, Any]]) -> np.ndarray:
        """Per env of one step, the speed above the cap, m/s (``info["measure_velocity"]``; missing → 0)."""
        return speed_overshoot(np.array([float(info.get(SPEED_KEY, 0.0)) for info in infos]), self.track_speed)

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        limit, weight = speed_limit_and_weight(self.env)
        self.track_speed = self.track_speed_fraction * limit
        self.penalty_coef = OVERSHOOT_CHARGE * weight
        self.rollout_buffer.penalty_coef = self.penalty_coef
        return super()._init_callback(callback, progress_bar)
