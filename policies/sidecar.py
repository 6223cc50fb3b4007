"""The ``taxbench.json`` sidecar a model zip carries beside SB3's entries: what it holds, how it is written.

Everything a learner needs beyond its tensors (arm, ``make_learner`` arguments, spaces, multiplier state,
random-stream state, counters) is written as plain JSON by :func:`save_policy`, so
:func:`~taxbench.policies.safe_load.load_policy` can rebuild the learner without unpickling anything. Each
codec reads only the types it names; classes are stored by name and restored only from the allowlist
:data:`CLASS_NAMES`, so a crafted sidecar can pick among a few known activations, optimisers and feature
extractors, never import or call anything else.

What each arm keeps beyond hyper-parameters and tensors is listed in :mod:`~taxbench.policies.arm_state`.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import stable_baselines3
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.vec_env import VecEnv

from . import registry
from .arm_state import SAFE_ARMS, STATE_CODECS

__all__ = [
    "CLASS_NAMES",
    "COUNTERS",
    "SIDECAR_FORMAT",
    "SIDECAR_NAME",
    "SIDECAR_VERSION",
    "decode_space",
    "decode_value",
    "describe_space",
    "encode_space",
    "encode_value",
    "env_id_of",
    "save_policy",
]

#: Name of the sidecar entry inside the model zip.
SIDECAR_NAME = "taxbench.json"
#: Value of the sidecar's ``format`` field.
SIDECAR_FORMAT = "taxbench-policy"
#: Version of the sidecar layout this module reads and writes.
SIDECAR_VERSION = 1
#: Whole-number counters of the learner the sidecar records (``_current_progress_remaining`` too, a float).
COUNTERS = ("num_timesteps", "_n_updates", "_episode_num")

_ALLOWED_CLASSES: tuple[type, ...] = (
    th.nn.Tanh,
    th.nn.ReLU,
    th.nn.ELU,
    th.nn.LeakyReLU,
    th.nn.GELU,
    th.nn.SiLU,
    th.nn.SELU,
    th.nn.Mish,
    th.nn.Sigmoid,
    th.nn.Softplus,
    th.nn.Identity,
    th.optim.Adam,
    th.optim.AdamW,
    th.optim.SGD,
    th.optim.RMSprop,
    FlattenExtractor,
    NatureCNN,
    CombinedExtractor,
)
_PUBLIC_MODULE = {"torch.nn": th.nn, "torch.optim": th.optim}


def _public_name(cls: type) -> str:
    for prefix, module in _PUBLIC_MODULE.items():
        if getattr(module, cls.__name__, None) is cls:
            return f"{prefix}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


#: Classes a sidecar may name (``{"$class": name}``), by name.
CLASS_NAMES: dict[str, type] = {_public_name(cls): cls for cls in _ALLOWED_CLASSES}
_NAME_OF = {cls: name for name, cls in CLASS_NAMES.items()}
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_MAX_DEPTH = 16


def encode_value(value: Any, _depth: int = 0) -> Any:
    """Turn a hyper-parameter value into plain JSON.

    Tuples become lists, allowlisted classes ``{"$class": name}``, non-finite floats ``{"$float": "inf"}``.

    Args:
        value: None, bool, int, float, str, list/tuple, dict with str keys, or a class of :data:`CLASS_NAMES`.

    Returns:
        A JSON-serialisable value that :func:`decode_value` turns back into ``value`` (tuples as lists).

    Raises:
        TypeError: For any other type (e.g. a function, an arbitrary class or object).
    """
    if _depth > _MAX_DEPTH:
        raise TypeError("value nested too deeply")
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": str(value)}
    if isinstance(value, list | tuple):
        return [encode_value(item, _depth + 1) for item in value]
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) and not key.startswith("$") for key in value):
            raise TypeError("dict keys must be strings not starting with '$'")
        return {key: encode_value(item, _depth + 1) for key, item in value.items()}
    if isinstance(value, type) and value in _NAME_OF:
        return {"$class": _NAME_OF[value]}
    raise TypeError(f"cannot store a {type(value).__name__} ({value!r:.60}) as JSON")


def decode_value(obj: Any, _depth: int = 0) -> Any:
    """Inverse of :func:`encode_value`.

    Raises:
        ValueError: For an unknown class name, a malformed ``$`` marker or nesting deeper than 16.
    """
    if _depth > _MAX_DEPTH:
        raise ValueError("value nested too deeply")
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, list):
        return [decode_value(item, _depth + 1) for item in obj]
    if not isinstance(obj, dict):
        raise ValueError(f"unexpected JSON value of type {type(obj).__name__}")
    if "$class" in obj:
        name = obj["$class"]
        if len(obj) != 1 or not isinstance(name, str) or name not in CLASS_NAMES:
            raise ValueError(f"class {name!r} is not one a sidecar may name")
        return CLASS_NAMES[name]
    if "$float" in obj:
        text = obj["$float"]
        if len(obj) != 1 or text not in _NON_FINITE:
            raise ValueError(f"bad non-finite float marker {text!r}")
        return _NON_FINITE[text]
    if any(key.startswith("$") for key in obj):
        raise ValueError(f"unknown marker in {sorted(obj)}")
    return {key: decode_value(item, _depth + 1) for key, item in obj.items()}


def _bound(array: np.ndarray) -> Any:
    """A Box bound as one number when uniform, else a nested list (non-finite numbers as markers)."""
    flat = array.reshape(-1)
    if flat.size and bool(np.all(flat == flat[0])):
        return encode_value(float(flat[0]))
    return encode_value(array.tolist())


def encode_space(space: spaces.Space) -> dict[str, Any]:
    """Describe a Gymnasium space as JSON (Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple).

    Raises:
        TypeError: For any other space.
    """
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).name,
            "low": _bound(space.low.astype(np.float64)),
            "high": _bound(space.high.astype(np.float64)),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": encode_value(space.n)}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {key: encode_space(sub) for key, sub in space.spaces.items()}}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [encode_space(sub) for sub in space.spaces]}
    raise TypeError(f"cannot store a {type(space).__name__} space")


_DTYPES = frozenset({"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "bool"})


def decode_space(obj: Any, _depth: int = 0) -> spaces.Space:
    """Inverse of :func:`encode_space`, with every field type-checked.

    Raises:
        ValueError: For an unknown space type or a malformed field.
    """
    if _depth > _MAX_DEPTH or not isinstance(obj, dict):
        raise ValueError("a space must be a JSON object")
    kind = obj.get("type")
    try:
        if kind == "Box":
            shape = tuple(int(n) for n in obj["shape"])
            if obj["dtype"] not in _DTYPES or any(n < 0 for n in shape):
                raise ValueError(f"bad Box dtype or shape: {obj['dtype']!r}, {shape}")
            dtype = np.dtype(obj["dtype"])
            low, high = (
                np.broadcast_to(np.asarray(decode_value(obj[key]), dtype=dtype), shape) for key in ("low", "high")
            )
            return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
        if kind == "Discrete":
            return spaces.Discrete(int(obj["n"]), start=int(obj.get("start", 0)))
        if kind == "MultiDiscrete":
            return spaces.MultiDiscrete(np.asarray(obj["nvec"], dtype=np.int64))
        if kind == "MultiBinary":
            return spaces.MultiBinary(decode_value(obj["n"]))
        if kind == "Dict":
            return spaces.Dict({str(k): decode_space(v, _depth + 1) for k, v in obj["spaces"].items()})
        if kind == "Tuple":
            return spaces.Tuple([decode_space(v, _depth + 1) for v in obj["spaces"]])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed {kind} space ({type(exc).__name__}: {exc})") from None
    raise ValueError(f"unknown space type {kind!r}")


def describe_space(space: spaces.Space | None) -> str:
    """Short one-line description, e.g. ``Box(2,) float32`` or ``Discrete(4)``."""
    if isinstance(space, spaces.Box):
        return f"Box{tuple(space.shape)} {np.dtype(space.dtype).name}"
    if isinstance(space, spaces.Discrete):
        return f"Discrete({space.n})"
    if isinstance(space, spaces.MultiDiscrete):
        return f"MultiDiscrete({space.nvec.tolist()})"
    return type(space).__name__ if space is not None else "no space"


def env_id_of(env: Any) -> str | None:
    """The registered id of a gymnasium env or of a VecEnv's first env, or None."""
    spec = getattr(env, "spec", None)
    if spec is None and isinstance(env, VecEnv):
        try:
            spec = env.get_attr("spec", [0])[0]
        except Exception:  # an env without a spec, or a worker that cannot answer
            spec = None
    env_id = getattr(spec, "id", None)
    return env_id if isinstance(env_id, str) else None


def _arm_of(model: BaseAlgorithm) -> str | None:
    arm = getattr(model, registry.ARM_ATTRIBUTE, None)
    if isinstance(arm, str):
        return arm
    return next((name for name, cls in registry._CLASSES.items() if type(model) is cls), None)


def _state_names(arm: str | None) -> tuple[str, ...]:
    entry = SAFE_ARMS.get(arm or "")
    return entry.state if entry is not None else ()


def _sidecar(model: BaseAlgorithm, env_id: str | None) -> dict[str, Any]:
    arm = _arm_of(model)
    sidecar: dict[str, Any] = {
        "format": SIDECAR_FORMAT,
        "version": SIDECAR_VERSION,
        "arm": arm,
        "learner_class": type(model).__name__,
        "env_id": env_id or env_id_of(model.get_env()),
        "observation_space": encode_space(model.observation_space),
        "action_space": encode_space(model.action_space),
        "counters": {
            **{name: int(getattr(model, name, 0)) for name in COUNTERS},
            "_current_progress_remaining": encode_value(float(model._current_progress_remaining)),
        },
        "state": {name: encode_value(STATE_CODECS[name].get(model)) for name in _state_names(arm)},
        "stable_baselines3": stable_baselines3.__version__,
        "build": None,
    }
    build = getattr(model, registry.BUILD_ATTRIBUTE, None)
    if build is None:
        sidecar["build_error"] = "built outside make_learner"
    else:
        try:
            sidecar["build"] = encode_value(build)
        except TypeError as exc:
            sidecar["build_error"] = f"hyper-parameters not storable as JSON: {exc}"
    return sidecar


def save_policy(model: BaseAlgorithm, path: str | Path | io.BufferedIOBase, *, env_id: str | None = None) -> None:
    """Save ``model`` as SB3's ``model.save`` does, plus the JSON sidecar that ``load_policy`` needs.

    The zip stays loadable by SB3 and :func:`~taxbench.policies.registry.load_learner`. It is written in one
    ``write`` (use the run folder's atomic-path helper around it for atomicity).

    Args:
        model: A learner, ideally built by :func:`~taxbench.policies.registry.make_learner` (which records the
            arm and hyper-parameters the sidecar needs; otherwise loading also needs the run's hyperparams).
        path: Target file (``.zip`` appended when the name has no suffix, as SB3 does) or a writable binary file.
        env_id: Id of the training env, for error messages; read from the model's env when omitted.

    Raises:
        TypeError: If the model's spaces cannot be described in JSON (Box, Discrete, MultiDiscrete,
            MultiBinary, Dict and Tuple can).
    """
    sidecar = json.dumps(_sidecar(model, env_id), indent=1, allow_nan=False)
    buffer = io.BytesIO()
    model.save(buffer)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(SIDECAR_NAME, sidecar)
    if isinstance(path, io.IOBase):
        path.write(buffer.getvalue())
        return
    target = Path(path)
    if target.suffix == "":
        target = target.with_name(target.name + ".zip")
    target.write_bytes(buffer.getvalue())
