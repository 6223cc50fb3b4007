"""Lagrange multiplier for constrained policy optimisation.

The constrained problem ``max_π J_r(π)  s.t.  J_c(π) <= d`` is solved through its Lagrangian
``L(π, λ) = J_r(π) − λ·(J_c(π) − d)``: the policy ascends ``L`` in π (done by the learner) and the
multiplier descends it in λ, i.e. ascends ``λ·(J_c − d)``, projected on ``λ >= 0``.

Modelled on OmniSafe's ``omnisafe/common/lagrange.py`` (a torch parameter driven by a torch optimiser,
``lambda_lr = 0.035`` in its PPOLag config). Here the multiplier is a plain Python float, with two update
rules:

* ``"sgd"`` (default): projected gradient ascent ``λ ← max(0, λ + lr·(J_c − d))``. The step is
  proportional to the constraint violation in cost units (episode cost).
* ``"adam"``: the step direction ``J_c − d`` goes through Adam moments (β = 0.9, 0.999, ε = 1e-8) as
  OmniSafe does with ``lambda_optimizer: Adam``; steps are then about ``lr`` per update whatever the
  size of the violation, then projected on ``λ >= 0``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

__all__ = ["Lagrange"]

LagrangeOptimizer = Literal["sgd", "adam"]
_ADAM_BETA1 = 0.9
_ADAM_BETA2 = 0.999
_ADAM_EPS = 1e-8


def _check_finite(name: str, value: float) -> float:
    """Return ``value`` as a float, raising ``ValueError`` if it is not a finite number."""
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a finite number, got {value!r}") from exc
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {out}")
    return out


def _check_non_negative(name: str, value: float) -> float:
    out = _check_finite(name, value)
    if out < 0:
        raise ValueError(f"{name} must be >= 0, got {out}")
    return out


class Lagrange:
    """A non-negative Lagrange multiplier λ updated from the mean episode cost.

    Args:
        cost_limit: Constraint threshold ``d`` on the expected episode cost (same units as
            ``info["cost"]`` summed over an episode). Must be finite and >= 0.
        lr: Step size of the multiplier update. Must be finite and >= 0.
        init: Initial value of λ. Must be finite and >= 0.
        pinned: If True, ``update`` never changes λ (it stays at ``init``). With ``init=0`` this
            turns PPO-Lagrangian into plain PPO.
        optimizer: ``"sgd"`` (projected gradient ascent) or ``"adam"`` (OmniSafe-like).
        upper_bound: Optional cap on λ (OmniSafe's ``lagrangian_upper_bound``); None for no cap.

    Raises:
        ValueError: If any number is negative or not finite, or the optimizer is unknown.

    Example:
        >>> lag = Lagrange(cost_limit=25.0, lr=0.035)
        >>> lag.update(45.0)  # 20 above the limit: λ = 0.035 * 20
        0.7000000000000001
        >>> lag.update(0.0)  # below the limit: λ falls, clipped at 0
        0.0
    """

    def __init__(
        self,
        cost_limit: float = 25.0,
        lr: float = 0.035,
        init: float = 0.0,
        pinned: bool = False,
        optimizer: LagrangeOptimizer = "sgd",
        upper_bound: float | None = None,
    ) -> None:
        self.cost_limit = _check_non_negative("cost_limit", cost_limit)
        self.lr = _check_non_negative("lagrange lr", lr)
        self.init = _check_non_negative("lagrange init", init)
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
        self.optimizer: LagrangeOptimizer = optimizer
        self.upper_bound = None if upper_bound is None else _check_non_negative("upper_bound", upper_bound)
        if self.upper_bound is not None and self.init > self.upper_bound:
            raise ValueError(f"lagrange init {self.init} is above upper_bound {self.upper_bound}")
        self.pinned = bool(pinned)
        self._value = self.init
        self.n_updates = 0
        self.last_episode_cost = math.nan
        # Adam moments (used by optimizer="adam" only).
        self._m = 0.0
        self._v = 0.0

    @property
    def value(self) -> float:
        """float: The current multiplier λ (>= 0)."""
        return self._value

    def update(self, mean_episode_cost: float) -> float:
        """Take one ascent step on λ from the observed mean episode cost ``J_c``.

        Args:
            mean_episode_cost: Mean cost of the episodes finished since the last update.

        Returns:
            The new value of λ (unchanged if ``pinned``).

        Raises:
            ValueError: If ``mean_episode_cost`` is negative or not finite.
        """
        jc = _check_non_negative("mean_episode_cost", mean_episode_cost)
        self.last_episode_cost = jc
        if self.pinned:
            return self._value
        gradient = jc - self.cost_limit  # d/dλ of λ·(J_c − d)
        self.n_updates += 1
        if self.optimizer == "adam":
            self._m = _ADAM_BETA1 * self._m + (1 - _ADAM_BETA1) * gradient
            self._v = _ADAM_BETA2 * self._v + (1 - _ADAM_BETA2) * gradient * gradient
            m_hat = self._m / (1 - _ADAM_BETA1**self.n_updates)
            v_hat = self._v / (1 - _ADAM_BETA2**self.n_updates)
            step = self.lr * m_hat / (math.sqrt(v_hat) + _ADAM_EPS)
        else:
            step = self.lr * gradient
        new_value = max(0.0, self._value + step)
        if self.upper_bound is not None:
            new_value = min(new_value, self.upper_bound)
        self._value = new_value
        return self._value

    def state_dict(self) -> dict[str, Any]:
        """Return the full state as a JSON-serialisable dict."""
        return {
            "cost_limit": self.cost_limit,
            "lr": self.lr,
            "init": self.init,
            "pinned": self.pinned,
            "optimizer": self.optimizer,
            "upper_bound": self.upper_bound,
            "value": self._value,
            "n_updates": self.n_updates,
            "last_episode_cost": self.last_episode_cost,
            "adam_m": self._m,
            "adam_v": self._v,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict`.

        Args:
            state: The dict returned by ``state_dict()``.

        Raises:
            ValueError: If a value is invalid (negative or non-finite) or a key is missing.
        """
        try:
            fresh = Lagrange(
                cost_limit=state["cost_limit"],
                lr=state["lr"],
                init=state["init"],
                pinned=state["pinned"],
                optimizer=state["optimizer"],
                upper_bound=state["upper_bound"],
            )
            fresh._value = _check_non_negative("value", state["value"])
            fresh.n_updates = int(state["n_updates"])
            fresh.last_episode_cost = float(state["last_episode_cost"])
            fresh._m = _check_finite("adam_m", state["adam_m"])
            fresh._v = _check_non_negative("adam_v", state["adam_v"])
        except KeyError as exc:
            raise ValueError(f"Lagrange state is missing key {exc}") from exc
        self.__dict__.update(fresh.__dict__)

    def __repr__(self) -> str:
        pinned = ", pinned" if self.pinned else ""
        return (
            f"Lagrange(value={self._value:.6g}, cost_limit={self.cost_limit}, lr={self.lr}, "
            f"optimizer={self.optimizer!r}{pinned})"
        )
