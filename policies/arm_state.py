"""State of each arm beyond its tensors, as JSON: the per-arm table of the safe loader.

:data:`SAFE_ARMS` lists, for every learner arm the safe loader rebuilds, the :data:`STATE_CODECS` whose JSON
the sidecar carries (multipliers, the learner's own random streams, running estimates); everything else is a
hyper-parameter or a tensor. A new arm takes one entry in :data:`SAFE_ARMS` (plus a codec if it keeps a new
kind of non-tensor state); an arm of the registry without an entry is refused by the loader, since loading it
could silently drop state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SAFE_ARMS", "STATE_CODECS", "SafeArm", "StateCodec", "decode_rng", "encode_rng"]


_BIT_GENERATORS = {name: getattr(np.random, name) for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")}


def encode_rng(generator: np.random.Generator) -> dict[str, Any]:
    """The state of a numpy ``Generator`` as JSON (its bit generator's ``state`` dict, arrays as lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return {"ndarray": value.tolist(), "dtype": value.dtype.name}
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return int(value) if isinstance(value, np.integer) else value

    return plain(generator.bit_generator.state)


def decode_rng(obj: Any) -> np.random.Generator:
    """Inverse of :func:`encode_rng`, for the bit generators numpy ships.

    Raises:
        ValueError: For an unknown bit generator or a state numpy refuses.
    """

    def restore(value: Any) -> Any:
        if isinstance(value, dict) and "ndarray" in value:
            if value.get("dtype") not in ("uint32", "uint64"):
                raise ValueError(f"bad array dtype in random state: {value.get('dtype')!r}")
            return np.asarray(value["ndarray"], dtype=value["dtype"])
        if isinstance(value, dict):
            return {key: restore(item) for key, item in value.items()}
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise ValueError(f"unexpected {type(value).__name__} in random state")

    name = obj.get("bit_generator") if isinstance(obj, dict) else None
    if name not in _BIT_GENERATORS:
        raise ValueError(f"unknown bit generator in random state: {name!r}")
    bit_generator = _BIT_GENERATORS[name]()
    try:
        bit_generator.state = restore(obj)
    except (TypeError, KeyError, OverflowError) as exc:
        raise ValueError(f"bad random state ({type(exc).__name__}: {exc})") from None
    return np.random.Generator(bit_generator)


@dataclass(frozen=True)
class StateCodec:
    """JSON state of a learner beyond its tensors.

    Attributes:
        get: Reads the state from a learner at save time (plain JSON values; NaN/inf allowed).
        put: Restores it on a freshly rebuilt learner; raises ``ValueError``/``KeyError``/``TypeError`` on bad input.
    """

    get: Callable[[Any], Any]
    put: Callable[[Any, Any], None]


def _put_lagrange(model: Any, state: Any) -> None:
    if not isinstance(state, dict):
        raise ValueError("the multiplier state must be a JSON object")
    model.lagrange.load_state_dict(state)  # validates every value; the method must match the hyperparams


def _rng_codec(attribute: str) -> StateCodec:
    """A numpy ``Generator`` held in ``attribute`` (an own random stream of the learner)."""

    def put(model: Any, state: Any) -> None:
        setattr(model, attribute, decode_rng(state))

    return StateCodec(lambda model: encode_rng(getattr(model, attribute)), put)


def _numbers_codec(*attributes: str) -> StateCodec:
    """Plain number attributes (float or None), e.g. running estimates kept between updates."""

    def put(model: Any, state: Any) -> None:
        if not isinstance(state, dict):
            raise ValueError(f"{'/'.join(attributes)} state must be a JSON object")
        for name in attributes:
            value = state.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"{name} must be a number or null, got {value!r}")
            setattr(model, name, None if value is None else float(value))

    return StateCodec(lambda model: {name: getattr(model, name) for name in attributes}, put)


#: JSON state codecs by name: multipliers, own random streams, running estimates.
STATE_CODECS: dict[str, StateCodec] = {
    "lagrange": StateCodec(lambda model: model.lagrange.state_dict(), _put_lagrange),
    "cost_rng": _rng_codec("_cost_rng"),  # the cost critic's minibatch shuffle (on-policy cost learners)
    "projection_rng": _rng_codec("_projection_rng"),  # CUP's projection shuffle
    # CPO's running estimates and the dual ν of its latest update (its last_step readout is transient)
    "cpo_estimates": _numbers_codec("episode_cost_estimate", "episode_length_estimate", "last_nu"),
}


@dataclass(frozen=True)
class SafeArm:
    """How the safe loader rebuilds one arm.

    Attributes:
        state: Names of the :data:`STATE_CODECS` whose JSON the learner needs beside its tensors.
        build_as: Arm to build the learner with when the arm's own ``make_learner`` path needs the training
            env (``saute`` checks its env wrapper); the learner class must be the same. None: the arm itself.
    """

    state: tuple[str, ...] = ()
    build_as: str | None = None


#: Arms the safe loader rebuilds. An arm of the registry missing here is refused (loading it could drop state).
SAFE_ARMS: dict[str, SafeArm] = {
    "ppo": SafeArm(),
    "ppo-lag": SafeArm(("lagrange", "cost_rng")),
    "ppo-penalty": SafeArm(),  # penalty_coef is a hyper-parameter
    "ppo-shield": SafeArm(),  # PPO; the shield is an env wrapper the caller adds
    "ppo-track": SafeArm(),  # track_speed_fraction is a hyper-parameter; the cap is read from the env at learn time
    "cup": SafeArm(("lagrange", "cost_rng", "projection_rng")),
    "saute": SafeArm(build_as="ppo"),  # PPO on the Saute-wrapped env (the caller wraps it, as for training)
    "trpo": SafeArm(),
    "cpo": SafeArm(("cost_rng", "cpo_estimates")),
    "sac": SafeArm(),  # the entropy coefficient is in pytorch_variables.pth
    "sac-lag": SafeArm(("lagrange",)),
}
