"""The hot-path numpy idioms give numpy's own answers, overflow included."""

import numpy as np
import pytest

from taxbench.envs.core.numerics import all_finite, clip


@pytest.mark.parametrize(
    "arrays",
    [
        (np.array([0.5, -1.0]),),
        (np.array([1e200, -1e300]),),  # squares overflow to inf: the element-wise test must still say finite
        (np.zeros((3, 2)), np.array([2.0])),
        (np.array([1.0, np.nan]),),
        (np.array([1.0]), np.array([-np.inf])),
        (np.array([[1e200], [np.nan]]),),
    ],
)
def test_all_finite_matches_isfinite(arrays):
    assert all_finite(*arrays) == all(np.isfinite(a).all() for a in arrays)


def test_clip_matches_np_clip_bit_for_bit():
    x = np.random.default_rng(0).normal(scale=3.0, size=(50, 6))
    low, high = -np.linspace(0.5, 2.0, 6), np.linspace(0.5, 2.0, 6)
    np.testing.assert_array_equal(clip(x, low, high), np.clip(x, low, high))
    np.testing.assert_array_equal(clip(np.array([np.nan, 5.0]), -1.0, 1.0), np.clip(np.array([np.nan, 5.0]), -1, 1))
