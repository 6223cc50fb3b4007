"""One formula for numpy and torch: the few array operations the batched terms use, for either library.

The batched robot, task and cost-term methods (:mod:`taxbench.envs.core.batch`) are written once against an array
namespace, ``xp = array_namespace(ctx.qpos)``: :data:`NUMPY` on the CPU vector env (float64, the exact operations the
per-world methods use, so the numpy path stays bit-identical to them), :class:`TorchOps` on the MuJoCo Warp path
(float32 tensors on the device, never copied to the host). Only what differs between the libraries lives here;
arithmetic, comparisons, indexing and slicing are written directly in the formulas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from taxbench.envs.core import numerics


class NumpyOps:
    """The numpy namespace: each operation is the one the per-world (scalar) methods use, so the bits agree."""

    name = "numpy"

    @staticmethod
    def clip(x: np.ndarray, low: Any, high: Any) -> np.ndarray:
        """``np.clip`` as two ufunc calls (:func:`taxbench.envs.core.numerics.clip`)."""
        return numerics.clip(x, low, high)

    @staticmethod
    def concat(parts: Sequence[np.ndarray], axis: int = 1) -> np.ndarray:
        """Arrays joined along ``axis``."""
        return np.concatenate(parts, axis=axis)

    @staticmethod
    def stack(parts: Sequence[np.ndarray], axis: int = 1) -> np.ndarray:
        """Arrays stacked along a new ``axis``."""
        return np.stack(parts, axis=axis)

    @staticmethod
    def sum_squares(x: np.ndarray) -> np.ndarray:
        """Sum of squares of each row (all axes after the first), shape (N,)."""
        return np.add.reduce(np.square(x.reshape(len(x), -1)), axis=1)

    @staticmethod
    def hypot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``math.hypot`` of each pair (the per-world terms' function, so the same bits)."""
        return np.fromiter(map(math.hypot, x.tolist(), y.tolist()), dtype=np.float64, count=len(x))

    @staticmethod
    def as_float(x: np.ndarray) -> np.ndarray:
        """Booleans (or numbers) as float64."""
        return x.astype(np.float64)

    @staticmethod
    def false(like: np.ndarray) -> np.ndarray:
        """All-False flags, one per row of ``like``."""
        return np.zeros(len(like), dtype=bool)

    @staticmethod
    def zeros(like: np.ndarray) -> np.ndarray:
        """Zeros (float64), one per row of ``like``."""
        return np.zeros(len(like))

    @staticmethod
    def finite_rows(x: np.ndarray) -> np.ndarray:
        """Whether each row is finite throughout, shape (N,) bool."""
        return np.isfinite(x).all(axis=1)

    @staticmethod
    def row_max(x: np.ndarray) -> np.ndarray:
        """Largest entry of each row."""
        return np.max(x, axis=1)

    @staticmethod
    def row_min(x: np.ndarray) -> np.ndarray:
        """Smallest entry of each row."""
        return np.min(x, axis=1)

    @staticmethod
    def maximum(a: Any, b: Any) -> np.ndarray:
        """Element-wise maximum."""
        return np.maximum(a, b)

    @staticmethod
    def positive_part(x: np.ndarray) -> np.ndarray:
        """``max(0, x)`` element-wise, NaN kept as 0 (``x > 0`` is False for NaN)."""
        return np.where(x > 0.0, x, 0.0)

    @staticmethod
    def norm(x: np.ndarray) -> np.ndarray:
        """Euclidean norm over the last axis."""
        return np.linalg.norm(x, axis=-1)

    @staticmethod
    def atan2(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Element-wise ``arctan2(y, x)``, rad."""
        return np.arctan2(y, x)

    @staticmethod
    def arccos(x: np.ndarray) -> np.ndarray:
        """Element-wise arc cosine, rad."""
        return np.arccos(x)

    @staticmethod
    def cos(x: np.ndarray) -> np.ndarray:
        """Element-wise cosine."""
        return np.cos(x)

    @staticmethod
    def sin(x: np.ndarray) -> np.ndarray:
        """Element-wise sine."""
        return np.sin(x)

    @staticmethod
    def copy(x: np.ndarray) -> np.ndarray:
        """A copy."""
        return x.copy()

    @staticmethod
    def constant(values: Any, like: np.ndarray) -> np.ndarray:
        """``values`` as an array of ``like``'s dtype."""
        return np.asarray(values, dtype=like.dtype)


class TorchOps:
    """The torch namespace: tensors on their own device, dtype kept (float32 on the Warp path)."""

    name = "torch"

    def __init__(self) -> None:
        import torch

        self.torch = torch

    def clip(self, x: Any, low: Any, high: Any) -> Any:
        """``torch.clamp``."""
        return self.torch.clamp(x, low, high)

    def concat(self, parts: Sequence[Any], axis: int = 1) -> Any:
        """Tensors joined along ``axis``."""
        return self.torch.cat(list(parts), dim=axis)

    def stack(self, parts: Sequence[Any], axis: int = 1) -> Any:
        """Tensors stacked along a new ``axis``."""
        return self.torch.stack(list(parts), dim=axis)

    def sum_squares(self, x: Any) -> Any:
        """Sum of squares of each row (all axes after the first), shape (N,)."""
        return self.torch.square(x.reshape(len(x), -1)).sum(dim=1)

    def hypot(self, x: Any, y: Any) -> Any:
        """``torch.hypot`` element-wise."""
        return self.torch.hypot(x, y)

    def as_float(self, x: Any) -> Any:
        """Booleans as the default float dtype of this path (float32)."""
        return x.to(self.torch.float32)

    def false(self, like: Any) -> Any:
        """All-False flags, one per row of ``like``, on its device."""
        return self.torch.zeros(len(like), dtype=self.torch.bool, device=like.device)

    def zeros(self, like: Any) -> Any:
        """Zeros of ``like``'s dtype, one per row, on its device."""
        return self.torch.zeros(len(like), dtype=like.dtype, device=like.device)

    def finite_rows(self, x: Any) -> Any:
        """Whether each row is finite throughout, shape (N,) bool."""
        return self.torch.isfinite(x).all(dim=1)

    def row_max(self, x: Any) -> Any:
        """Largest entry of each row."""
        return x.amax(dim=1)

    def row_min(self, x: Any) -> Any:
        """Smallest entry of each row."""
        return x.amin(dim=1)

    def maximum(self, a: Any, b: Any) -> Any:
        """Element-wise maximum (tensors)."""
        return self.torch.maximum(a, b)

    def positive_part(self, x: Any) -> Any:
        """``max(0, x)`` element-wise, NaN kept as 0."""
        return self.torch.where(x > 0.0, x, self.torch.zeros_like(x))

    def norm(self, x: Any) -> Any:
        """Euclidean norm over the last axis."""
        return self.torch.linalg.vector_norm(x, dim=-1)

    def atan2(self, y: Any, x: Any) -> Any:
        """Element-wise ``atan2(y, x)``, rad."""
        return self.torch.atan2(y, x)

    def arccos(self, x: Any) -> Any:
        """Element-wise arc cosine, rad."""
        return self.torch.arccos(x)

    def cos(self, x: Any) -> Any:
        """Element-wise cosine."""
        return self.torch.cos(x)

    def sin(self, x: Any) -> Any:
        """Element-wise sine."""
        return self.torch.sin(x)

    def copy(self, x: Any) -> Any:
        """A copy."""
        return x.clone()

    def constant(self, values: Any, like: Any) -> Any:
        """``values`` as a tensor of ``like``'s dtype on its device."""
        return self.torch.as_tensor(np.asarray(values), dtype=like.dtype, device=like.device)


#: The numpy namespace (the CPU vector env's).
NUMPY = NumpyOps()
_TORCH: TorchOps | None = None


def array_namespace(x: Any) -> NumpyOps | TorchOps:
    """:data:`NUMPY` for a numpy array, a :class:`TorchOps` for a torch tensor (torch imported only then)."""
    global _TORCH
    if isinstance(x, np.ndarray):
        return NUMPY
    if type(x).__module__.startswith("torch"):
        if _TORCH is None:
            _TORCH = TorchOps()
        return _TORCH
    raise TypeError(f"expected a numpy array or a torch tensor, got {type(x).__name__}")
