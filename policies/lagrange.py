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

:class:`PIDLagrange` is the PID-controlled multiplier of Stooke, Achiam & Abbeel, "Responsive Safety in
Reinforcement Learning by PID Lagrangian Methods" (ICML 2020): the integral term is the gradient-ascent
multiplier above, and a proportional and a derivative term on the episode cost damp its overshoot. Its
gains (Kp 0.1, Ki 0.01, Kd 0.01) are OmniSafe's ``CPPOPID`` defaults; its smoothing is off by default
(see the class). Both classes share the read-out (``value``, ``cost_limit``, ``pinned``, ``update``,
``state_dict``), so a learner can hold either; :func:`make_multiplier` builds one by method name.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from taxbench.envs.costs.thresholds import DEFAULT_COST_LIMIT as _DEFAULT_COST_LIMIT

__all__ = ["DEFAULT_COST_LIMIT", "LAGRANGE_METHODS", "Lagrange", "PIDLagrange", "check_cost_limit", "make_multiplier"]

LagrangeOptimizer = Literal["sgd", "adam"]
LagrangeMethod = Literal["grad", "pid"]
#: Multiplier update rules: projected gradient ascent (``grad``) or PID control (``pid``).
LAGRANGE_METHODS: tuple[str, ...] = ("grad", "pid")
#: Episode-cost limit d of every constrained learner unless given (the one definition lives in
#: :data:`taxbench.envs.costs.thresholds.DEFAULT_COST_LIMIT`, with its source), cost per episode.
DEFAULT_COST_LIMIT: float = _DEFAULT_COST_LIMIT.value
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


def check_cost_limit(value: Any) -> float:
    """The one validation of an episode-cost limit ``d`` (cost per episode): a finite number >= 0, not a bool.

    Raises:
        ValueError: Naming ``cost_limit`` and the offending value.
    """
    if isinstance(value, bool):
        raise ValueError(f"cost_limit must be a finite number >= 0, got {value!r}")
    return _check_non_negative("cost_limit", value)


class _Multiplier:
    """What both multipliers share: λ ≥ 0 (optionally capped), the last observed cost, pinning."""

    cost_limit: float
    pinned: bool
    upper_bound: float | None
    n_updates: int
    last_episode_cost: float
    _value: float

    @property
    def value(self) -> float:
        """float: The current multiplier λ (>= 0)."""
        return self._value

    def update(self, mean_episode_cost: float) -> float:
        """One update of λ from the observed mean episode cost ``J_c``.

        Args:
            mean_episode_cost: Mean cost of the episodes finished since the last update.

        Returns:
            The new value of λ (unchanged if ``pinned``), clipped to ``[0, upper_bound]``.

        Raises:
            ValueError: If ``mean_episode_cost`` is negative or not finite.
        """
        jc = _check_non_negative("mean_episode_cost", mean_episode_cost)
        self.last_episode_cost = jc
        if self.pinned:
            return self._value
        self.n_updates += 1
        new_value = max(0.0, self._next_value(jc))
        if self.upper_bound is not None:
            new_value = min(new_value, self.upper_bound)
        self._value = new_value
        return self._value

    def _next_value(self, jc: float) -> float:
        """The unclipped λ after this update (``n_updates`` already counts it)."""
        raise NotImplementedError

    #: Constructor arguments saved in :meth:`state_dict` (each subclass lists its own).
    _CONFIG: tuple[str, ...] = ()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict`.

        Args:
            state: The dict returned by ``state_dict()``.

        Raises:
            ValueError: If a value is invalid (negative or non-finite) or a key is missing.
        """
        try:
            fresh = type(self)(**{key: state[key] for key in self._CONFIG})
            fresh._value = _check_non_negative("value", state["value"])
            fresh.n_updates = int(state["n_updates"])
            fresh.last_episode_cost = float(state["last_episode_cost"])
            fresh._restore_internals(state)
        except KeyError as exc:
            raise ValueError(f"{type(self).__name__} state is missing key {exc}") from exc
        self.__dict__.update(fresh.__dict__)

    def _restore_internals(self, state: dict[str, Any]) -> None:
        """Set the subclass's own internal state (optimiser moments, PID terms) from ``state``, validated."""
        raise NotImplementedError


class Lagrange(_Multiplier):
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
        cost_limit: float = DEFAULT_COST_LIMIT,
        lr: float = 0.035,
        init: float = 0.0,
        pinned: bool = False,
        optimizer: LagrangeOptimizer = "sgd",
        upper_bound: float | None = None,
    ) -> None:
        self.cost_limit = check_cost_limit(cost_limit)
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

    def _next_value(self, jc: float) -> float:
        """Projected gradient ascent (or Adam) on λ·(J_c − d)."""
        gradient = jc - self.cost_limit  # d/dλ of λ·(J_c − d)
        if self.optimizer == "adam":
            self._m = _ADAM_BETA1 * self._m + (1 - _ADAM_BETA1) * gradient
            self._v = _ADAM_BETA2 * self._v + (1 - _ADAM_BETA2) * gradient * gradient
            m_hat = self._m / (1 - _ADAM_BETA1**self.n_updates)
            v_hat = self._v / (1 - _ADAM_BETA2**self.n_updates)
            step = self.lr * m_hat / (math.sqrt(v_hat) + _ADAM_EPS)
        else:
            step = self.lr * gradient
        return self._value + step

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

    _CONFIG = ("cost_limit", "lr", "init", "pinned", "optimizer", "upper_bound")

    def _restore_internals(self, state: dict[str, Any]) -> None:
        self._m = _check_finite("adam_m", state["adam_m"])
        self._v = _check_non_negative("adam_v", state["adam_v"])

    def __repr__(self) -> str:
        pinned = ", pinned" if self.pinned else ""
        return (
            f"Lagrange(value={self._value:.6g}, cost_limit={self.cost_limit}, lr={self.lr}, "
            f"optimizer={self.optimizer!r}{pinned})"
        )


class PIDLagrange(_Multiplier):
    """A non-negative multiplier λ set by a PID controller on the episode cost (Stooke et al. 2020).

    With ``e_k = J_c,k − d`` the constraint violation at update ``k``::

        I_k = max(0, I_{k−1} + Ki·e_k)                    (integral: the gradient-ascent multiplier)
        P_k = α_p·P_{k−1} + (1 − α_p)·e_k                 (proportional, on an EMA of the violation)
        D_k = max(0, C_k − C_{k−delay})                   (derivative, on an EMA C of J_c; only rises count)
        λ_k = clip(Kp·P_k + I_k + Kd·D_k, 0, upper_bound)

    The proportional and derivative terms raise λ as soon as the cost climbs, before the integral has
    accumulated, which is what damps the overshoot of a pure integrator above the limit.

    The gains default to OmniSafe's; the smoothing defaults to none (``α_p = 0``, EMA off, delay 1), which is
    the plain controller of Stooke et al.'s Algorithm 2. OmniSafe smooths both terms with 0.95 EMAs and a
    10-update delay: on the toy speed-limit env of the tests (``OverspeedPointEnv``, limit 25, seeds 0-2, 24k
    steps) that made the controller lag, and its mean first overshoot above the limit (19.2 cost units) was
    larger than the gradient multiplier's (lr 0.035: 11.5), while the unsmoothed controller's was smaller
    (7.0). Pass ``p_ema=0.95, d_ema=0.95, d_delay=10`` for OmniSafe's behaviour.

    Args:
        cost_limit: Constraint threshold ``d`` on the expected episode cost. Finite, >= 0.
        kp: Proportional gain (λ per unit of episode cost).
        ki: Integral gain (λ per unit of episode cost per update).
        kd: Derivative gain (λ per unit of episode-cost rise over ``d_delay`` updates).
        init: Initial value of the integral term (and so of λ).
        pinned: If True, ``update`` never changes λ.
        d_delay: Updates between the two cost EMAs the derivative compares (>= 1; OmniSafe: 10).
        p_ema: Smoothing ``α_p`` of the proportional term, in [0, 1) (OmniSafe: 0.95).
        d_ema: Smoothing of the cost EMA the derivative reads, in [0, 1) (OmniSafe: 0.95).
        upper_bound: Cap on λ (OmniSafe's ``penalty_max``: 100); None for no cap.

    Raises:
        ValueError: If a number is negative, not finite or out of range.

    Example:
        >>> pid = PIDLagrange(cost_limit=25.0)
        >>> round(pid.update(45.0), 6)  # Kp·20 + Ki·20 (no derivative at the first update)
        2.2
        >>> round(pid.update(55.0), 6)  # Kp·30 + Ki·(20 + 30) + Kd·(55 − 45)
        3.6
    """

    def __init__(
        self,
        cost_limit: float = DEFAULT_COST_LIMIT,
        kp: float = 0.1,
        ki: float = 0.01,
        kd: float = 0.01,
        init: float = 0.0,
        pinned: bool = False,
        d_delay: int = 1,
        p_ema: float = 0.0,
        d_ema: float = 0.0,
        upper_bound: float | None = 100.0,
    ) -> None:
        self.cost_limit = check_cost_limit(cost_limit)
        self.kp = _check_non_negative("pid kp", kp)
        self.ki = _check_non_negative("pid ki", ki)
        self.kd = _check_non_negative("pid kd", kd)
        self.init = _check_non_negative("lagrange init", init)
        if isinstance(d_delay, bool) or int(d_delay) != d_delay or d_delay < 1:
            raise ValueError(f"pid d_delay must be a whole number >= 1, got {d_delay!r}")
        self.d_delay = int(d_delay)
        for name, alpha in (("pid p_ema", p_ema), ("pid d_ema", d_ema)):
            if not 0.0 <= _check_finite(name, alpha) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {alpha}")
        self.p_ema, self.d_ema = float(p_ema), float(d_ema)
        self.upper_bound = None if upper_bound is None else _check_non_negative("upper_bound", upper_bound)
        if self.upper_bound is not None and self.init > self.upper_bound:
            raise ValueError(f"lagrange init {self.init} is above upper_bound {self.upper_bound}")
        self.pinned = bool(pinned)
        self._value = self.init
        self._integral = self.init
        self._p = 0.0
        self._cost_ema = 0.0
        self._cost_history: list[float] = []
        self.n_updates = 0
        self.last_episode_cost = math.nan

    def _next_value(self, jc: float) -> float:
        """PID on the violation ``J_c − d``: λ = Kp·P + I + Kd·D (see the class docstring)."""
        error = jc - self.cost_limit
        self._integral = max(0.0, self._integral + self.ki * error)
        self._p = self.p_ema * self._p + (1.0 - self.p_ema) * error
        if self.n_updates == 1:
            self._cost_ema = jc
        else:
            self._cost_ema = self.d_ema * self._cost_ema + (1.0 - self.d_ema) * jc
        past = self._cost_history[0] if self._cost_history else self._cost_ema
        derivative = max(0.0, self._cost_ema - past)
        self._cost_history = [*self._cost_history, self._cost_ema][-self.d_delay :]
        return self.kp * self._p + self._integral + self.kd * derivative

    def state_dict(self) -> dict[str, Any]:
        """Return the full controller state as a JSON-serialisable dict."""
        return {
            "method": "pid",
            "cost_limit": self.cost_limit,
            "kp": self.kp,
            "ki": self.ki,
            "kd": self.kd,
            "init": self.init,
            "pinned": self.pinned,
            "d_delay": self.d_delay,
            "p_ema": self.p_ema,
            "d_ema": self.d_ema,
            "upper_bound": self.upper_bound,
            "value": self._value,
            "integral": self._integral,
            "proportional": self._p,
            "cost_ema": self._cost_ema,
            "cost_history": list(self._cost_history),
            "n_updates": self.n_updates,
            "last_episode_cost": self.last_episode_cost,
        }

    _CONFIG = ("cost_limit", "kp", "ki", "kd", "init", "pinned", "d_delay", "p_ema", "d_ema", "upper_bound")

    def _restore_internals(self, state: dict[str, Any]) -> None:
        self._integral = _check_non_negative("integral", state["integral"])
        self._p = _check_finite("proportional", state["proportional"])
        self._cost_ema = _check_non_negative("cost_ema", state["cost_ema"])
        self._cost_history = [_check_non_negative("cost_history", c) for c in state["cost_history"]]

    def __repr__(self) -> str:
        pinned = ", pinned" if self.pinned else ""
        return (
            f"PIDLagrange(value={self._value:.6g}, cost_limit={self.cost_limit}, kp={self.kp}, ki={self.ki}, "
            f"kd={self.kd}{pinned})"
        )


def make_multiplier(
    method: str = "grad",
    *,
    cost_limit: float = DEFAULT_COST_LIMIT,
    lr: float = 0.035,
    init: float = 0.0,
    pinned: bool = False,
    optimizer: LagrangeOptimizer = "sgd",
    kp: float = 0.1,
    ki: float = 0.01,
    kd: float = 0.01,
) -> Lagrange | PIDLagrange:
    """Build the multiplier of a Lagrangian learner by method name.

    Args:
        method: ``"grad"`` (:class:`Lagrange`, gradient ascent) or ``"pid"`` (:class:`PIDLagrange`).
        cost_limit: Episode-cost limit ``d``.
        lr: Step size of ``grad`` (ignored by ``pid``).
        init: Initial λ.
        pinned: Keep λ at ``init``.
        optimizer: ``sgd`` or ``adam`` for ``grad`` (ignored by ``pid``).
        kp: Proportional gain of ``pid``.
        ki: Integral gain of ``pid``.
        kd: Derivative gain of ``pid``.

    Raises:
        ValueError: For an unknown method or an invalid number.
    """
    if method == "grad":
        return Lagrange(cost_limit=cost_limit, lr=lr, init=init, pinned=pinned, optimizer=optimizer)
    if method == "pid":
        return PIDLagrange(cost_limit=cost_limit, kp=kp, ki=ki, kd=kd, init=init, pinned=pinned)
    raise ValueError(f"lagrange method must be one of {', '.join(LAGRANGE_METHODS)}, got {method!r}")
