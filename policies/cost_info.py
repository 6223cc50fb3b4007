"""Reading the per-step constraint cost every learner takes from ``info["cost"]``, and tallying episode costs.

One reader for every arm (PPO-Lagrangian, SAC-Lagrangian, the fixed penalty and its wrapper), so a missing key,
a NaN or a negative cost is treated the same way whichever learner meets it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


def costs_from_infos(
    infos: Sequence[Mapping[str, Any]], dtype: type = np.float32, on_missing: Callable[[], None] | None = None
) -> np.ndarray:
    """``info["cost"]`` of each env as an array (a missing key counts as 0 and calls ``on_missing`` once per call).

    Raises:
        ValueError: a cost that is not finite or is negative.
    """
    raw = [info.get("cost") for info in infos]
    if None in raw:
        if on_missing is not None:
            on_missing()
        raw = [0.0 if cost is None else cost for cost in raw]
    costs = np.asarray(raw, dtype=dtype).reshape(len(infos))
    # NaN fails both comparisons; a few Python floats compare faster than numpy reductions run
    if not all(0.0 <= cost < math.inf for cost in costs.tolist()):
        raise ValueError(f"info['cost'] must be finite and >= 0, got {costs.tolist()}")
    return costs


def tally_episode_costs(running: np.ndarray, finished: list[float], costs: np.ndarray, dones: np.ndarray) -> np.ndarray:
    """Add this step's ``costs`` to each env's running episode cost and close the episodes that ended.

    The totals of the episodes flagged in ``dones`` go to ``finished`` and their running costs restart at 0.

    Returns:
        The indices of the envs whose episode ended.
    """
    running += costs
    ended = np.flatnonzero(dones)
    for idx in ended:
        finished.append(float(running[idx]))
        running[idx] = 0.0
    return ended
