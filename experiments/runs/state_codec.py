"""JSON for the values a resume state records: numbers, strings, numpy arrays and scalars, random generators.

:func:`encode` turns a value into plain JSON (arrays as base64 bytes with dtype and shape, tuples, deques and
dicts tagged), or returns :data:`SKIP` for anything it does not record; :func:`decode` reverses it. Only the
tags below are read and only numeric dtypes are rebuilt, so decoding never imports or calls anything a file names.
"""

from __future__ import annotations

import base64
import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th

__all__ = ["SKIP", "ResumeStateError", "decode", "encode"]

_BIT_GENERATORS = {name: getattr(np.random, name) for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")}

#: What :func:`encode` returns for a value it does not record.
SKIP = object()


class ResumeStateError(ValueError):
    """A resume state that does not fit the run rebuilt from the config (or is malformed)."""


def _array_json(array: np.ndarray, tag: str) -> dict[str, Any]:
    data = base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")
    return {tag: array.dtype.str, "shape": list(array.shape), "b64": data}


def _encode_leaf(value: Any) -> Any:
    """A number, string, numpy array or scalar, or random generator as JSON (``SKIP`` for anything else)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, np.ndarray | np.generic):
        if value.dtype.kind not in "biufc":
            return SKIP
        return _array_json(np.asarray(value), "$nd" if isinstance(value, np.ndarray) else "$np")
    if isinstance(value, np.random.Generator):
        return {"$rng": encode(value.bit_generator.state)}
    if isinstance(value, np.random.RandomState):
        return {"$randomstate": encode(value.get_state(legacy=False))}
    if isinstance(value, th.Generator):
        return {"$torchgen": encode(value.get_state().numpy()), "device": str(value.device)}
    return SKIP


def encode(value: Any) -> Any:
    """A JSON-able form of a recordable value, or :data:`SKIP` for anything else."""
    if isinstance(value, list | tuple | deque):
        items = [encode(item) for item in value]
        if any(item is SKIP for item in items):
            return SKIP
        if isinstance(value, list):
            return items
        if isinstance(value, tuple):
            return {"$tuple": items}
        return {"$deque": items, "maxlen": value.maxlen}
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            return SKIP
        mapping = {key: encode(item) for key, item in value.items()}
        return SKIP if any(item is SKIP for item in mapping.values()) else {"$dict": mapping}
    return _encode_leaf(value)


def _decode_array(obj: dict[str, Any]) -> Any:
    dtype = np.dtype(obj.get("$nd", obj.get("$np")))
    if dtype.kind not in "biufc":
        raise ResumeStateError(f"dtype {dtype} is not allowed in a resume state")
    array = np.frombuffer(base64.b64decode(obj["b64"]), dtype=dtype).reshape(obj["shape"]).copy()
    return array if "$nd" in obj else array[()]


def _decode_rng(obj: dict[str, Any]) -> np.random.Generator:
    state = decode(obj["$rng"])
    generator = np.random.Generator(_BIT_GENERATORS[state["bit_generator"]]())
    generator.bit_generator.state = state
    return generator


def _decode_randomstate(obj: dict[str, Any]) -> np.random.RandomState:
    legacy = np.random.RandomState()
    legacy.set_state(decode(obj["$randomstate"]))
    return legacy


def _decode_torchgen(obj: dict[str, Any]) -> th.Generator:
    generator = th.Generator(device=obj["device"])
    generator.set_state(th.from_numpy(decode(obj["$torchgen"])))
    return generator


#: Decoder of each tagged entry.
_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "$float": lambda obj: float(obj["$float"]),
    "$nd": _decode_array,
    "$np": _decode_array,
    "$rng": _decode_rng,
    "$randomstate": _decode_randomstate,
    "$torchgen": _decode_torchgen,
    "$tuple": lambda obj: tuple(decode(item) for item in obj["$tuple"]),
    "$deque": lambda obj: deque((decode(item) for item in obj["$deque"]), maxlen=obj["maxlen"]),
    "$dict": lambda obj: {key: decode(item) for key, item in obj["$dict"].items()},
}


def decode(obj: Any) -> Any:
    """The value :func:`encode` recorded (arrays writable copies; generators new objects).

    Raises:
        ResumeStateError: For a malformed or unknown entry.
    """
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, list):
        return [decode(item) for item in obj]
    if not isinstance(obj, dict):
        raise ResumeStateError(f"unexpected {type(obj).__name__} in a resume state")
    tag = next((key for key in obj if key in _DECODERS), None)
    if tag is None:
        raise ResumeStateError(f"unknown resume state entry with keys {sorted(obj)}")
    try:
        return _DECODERS[tag](obj)
    except ResumeStateError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ResumeStateError(f"malformed resume state entry {tag}: {exc}") from exc
