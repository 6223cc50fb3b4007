"""Per-rollout safety metrics for any SB3 on-policy learner (PPO, PPO-Lagrangian, ...)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["METRIC_KEYS", "SafetyMetricsCallback"]

#: Keys of each metrics dict, in CSV column order.
METRIC_KEYS = (
    "steps",
    "episodes",
    "ep_return",
    "ep_cost",
    "ep_length",
    "success_rate",
    "violation_rate",
    "lambda",
    "fps",
)


def _mean_or_nan(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


class SafetyMetricsCallback(BaseCallback):
    """Compute, log and forward safety metrics once per rollout.

    Episode returns, costs and lengths are accumulated here from ``self.locals["rewards"]``,
    ``["infos"]`` and ``["dones"]`` (no Monitor wrapper needed). An episode ends when ``dones`` is set,
    which a VecEnv does for termination and time-limit truncation alike. Rewards are the ones the learner
    receives (after a ``VecNormalize`` reward scaling, if any); the cost is ``info["cost"]`` (0 if absent).

    Each rollout (``_on_rollout_end``) produces a dict with:

    * ``steps``: ``model.num_timesteps``;
    * ``episodes``: episodes finished during this rollout;
    * ``ep_return``, ``ep_cost``, ``ep_length``: means over those episodes (NaN if none);
    * ``success_rate``: mean of ``info["is_success"]`` at episode end (NaN if the key never appears);
    * ``violation_rate``: env steps with ``cost > 0`` / env steps in this rollout;
    * ``lambda``: the learner's ``lagrange_multiplier`` (after this rollout's update) or NaN;
    * ``fps``: env steps per second since training started.

    The values are recorded under ``safety/<key>`` in SB3's logger, appended to :attr:`history` and
    passed to ``sink``.

    Args:
        sink: Optional function called with each metrics dict (e.g. a CSV row writer).
        verbose: SB3 verbosity level.
    """

    def __init__(self, sink: Callable[[dict[str, float]], None] | None = None, verbose: int = 0) -> None:
        super().__init__(verbose=verbose)
        self.sink = sink
        self.history: list[dict[str, float]] = []
        self._ep_return = np.zeros(0)
        self._ep_cost = np.zeros(0)
        self._ep_length = np.zeros(0, dtype=np.int64)
        self._start_time = 0.0
        self._start_steps = 0
        self._pending_state: dict[str, Any] | None = None
        self._reset_rollout()

    def _reset_rollout(self) -> None:
        self._returns: list[float] = []
        self._costs: list[float] = []
        self._lengths: list[float] = []
        self._successes: list[float] = []
        self._rollout_steps = 0
        self._violating_steps = 0

    def _on_training_start(self) -> None:
        n_envs = self.training_env.num_envs
        self._ep_return = np.zeros(n_envs)
        self._ep_cost = np.zeros(n_envs)
        self._ep_length = np.zeros(n_envs, dtype=np.int64)
        self._start_time = time.perf_counter()
        self._start_steps = self.model.num_timesteps
        self._reset_rollout()
        if self._pending_state is not None:
            self._apply_state(self._pending_state)
            self._pending_state = None

    def state_dict(self) -> dict[str, Any]:
        """The running tallies (plain lists and ints): each env's partial episode and this rollout's so far.

        With :meth:`load_state_dict` a resumed run reports the episodes that straddle its checkpoint whole.
        """
        return {
            "ep_return": self._ep_return.tolist(),
            "ep_cost": self._ep_cost.tolist(),
            "ep_length": self._ep_length.tolist(),
            "returns": list(self._returns),
            "costs": list(self._costs),
            "lengths": list(self._lengths),
            "successes": list(self._successes),
            "rollout_steps": self._rollout_steps,
            "violating_steps": self._violating_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore tallies from :meth:`state_dict` when training next starts (``on_training_start`` clears them)."""
        self._pending_state = dict(state)

    def _apply_state(self, state: dict[str, Any]) -> None:
        n_envs = self.training_env.num_envs
        if any(len(state[key]) != n_envs for key in ("ep_return", "ep_cost", "ep_length")):
            raise ValueError(f"the saved metrics tallies are not for {n_envs} envs")
        self._ep_return = np.array(state["ep_return"], dtype=np.float64)
        self._ep_cost = np.array(state["ep_cost"], dtype=np.float64)
        self._ep_length = np.array(state["ep_length"], dtype=np.int64)
        self._returns, self._costs = [float(v) for v in state["returns"]], [float(v) for v in state["costs"]]
        self._lengths, self._successes = [float(v) for v in state["lengths"]], [float(v) for v in state["successes"]]
        self._rollout_steps, self._violating_steps = int(state["rollout_steps"]), int(state["violating_steps"])

    def _on_rollout_start(self) -> None:
        self._reset_rollout()

    def _on_step(self) -> bool:
        infos: list[dict[str, Any]] = self.locals["infos"]
        dones = np.asarray(self.locals["dones"])
        rewards = np.asarray(self.locals["rewards"], dtype=np.float64).reshape(-1)
        costs = np.array([float(info.get("cost", 0.0)) for info in infos], dtype=np.float64)
        self._ep_return += rewards
        self._ep_cost += costs
        self._ep_length += 1
        self._rollout_steps += len(infos)
        self._violating_steps += int(np.count_nonzero(costs > 0))
        for idx in np.flatnonzero(dones):
            self._returns.append(float(self._ep_return[idx]))
            self._costs.append(float(self._ep_cost[idx]))
            self._lengths.append(float(self._ep_length[idx]))
            success = infos[idx].get("is_success")
            if success is not None:
                self._successes.append(float(success))
            self._ep_return[idx] = 0.0
            self._ep_cost[idx] = 0.0
            self._ep_length[idx] = 0
        return True

    def _on_rollout_end(self) -> None:
        metrics = self.compute_metrics()
        for key, value in metrics.items():
            if key != "steps":
                self.logger.record(f"safety/{key}", value)
        self.history.append(metrics)
        if self.sink is not None:
            self.sink(metrics)

    def compute_metrics(self) -> dict[str, float]:
        """Metrics of the rollout collected so far (see the class docstring for the keys)."""
        elapsed = max(time.perf_counter() - self._start_time, 1e-9)
        violation_rate = self._violating_steps / self._rollout_steps if self._rollout_steps else math.nan
        lam = getattr(self.model, "lagrange_multiplier", None)
        return {
            "steps": int(self.model.num_timesteps),
            "episodes": len(self._returns),
            "ep_return": _mean_or_nan(self._returns),
            "ep_cost": _mean_or_nan(self._costs),
            "ep_length": _mean_or_nan(self._lengths),
            "success_rate": _mean_or_nan(self._successes),
            "violation_rate": float(violation_rate),
            "lambda": math.nan if lam is None else float(lam),
            "fps": (self.model.num_timesteps - self._start_steps) / elapsed,
        }
