"""Two numpy idioms of the step's hot path, written once: they give numpy's values with less Python around them.

On the small arrays of one control step (6-100 entries) numpy's cost is call overhead: ``np.clip`` spends ~1 µs in
Python-level dispatch and ``np.isfinite(x).all()`` makes two calls, where the forms below make one or two ufunc calls.
"""

from __future__ import annotations

import math

import numpy as np


def clip(x: np.ndarray, low: np.ndarray | float, high: np.ndarray | float) -> np.ndarray:
    """``np.clip(x, low, high)`` of an array, the same values, as two ufunc calls into one new array."""
    clipped = np.maximum(x, low)
    return np.minimum(clipped, high, out=clipped)


def all_finite(*arrays: np.ndarray) -> bool:
    """Whether every entry of every array is finite.

    The sum of the arrays' squared norms is finite exactly when every entry is (squares cannot cancel), unless it
    overflows (entries beyond ~1e154): only then does the element-wise test decide.
    """
    total = 0.0
    for a in arrays:
        total += np.vdot(a, a)
    if math.isfinite(total):
        return True
    return all(bool(np.isfinite(a).all()) for a in arrays)
