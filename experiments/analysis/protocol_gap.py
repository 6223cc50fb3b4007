"""The gap between what the learning curves show and what the tables measure.

Learning curves come from the training episodes, played by the **stochastic** policy; the tables evaluate the
**deterministic** policy (the headline protocol) on seeded episodes. When the two disagree a lot, a reader
comparing a curve with a table would be misled: :func:`protocol_gaps` finds those cells so the report can say so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from taxbench.experiments.analysis.runtable import to_float

#: A gap is flagged when |training − evaluated| exceeds this fraction of the larger magnitude (and 1 return unit).
GAP_FRACTION = 0.5
#: Training return = the mean of the last this-many progress rows with episodes (smooths one noisy rollout).
LAST_ROWS = 3


def final_training_return(progress: Sequence[Mapping[str, Any]]) -> float:
    """Mean ``ep_return`` of the last :data:`LAST_ROWS` progress rows that finished episodes (NaN without any)."""
    values = [to_float(row.get("ep_return")) for row in progress]
    values = [v for v in values if math.isfinite(v)][-LAST_ROWS:]
    return sum(values) / len(values) if values else math.nan


def protocol_gaps(
    runs: Sequence[Mapping[str, Any]], curves: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """Cells (env, arm, intensity) whose training return and evaluated return differ by more than :data:`GAP_FRACTION`.

    Args:
        runs: Run rows of the report (``env``, ``arm``, ``intensity``, ``state``, ``mean_return``, ``path``).
        curves: progress.csv rows per run path.

    Returns:
        One dict per flagged cell: ``env``, ``arm``, ``intensity``, ``training_return`` (seed mean of the final
        training episodes, stochastic policy) and ``evaluated_return`` (seed mean, deterministic policy).
    """
    cells: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for row in runs:
        if row.get("state") != "done":
            continue
        train, evaluated = final_training_return(curves.get(row["path"], [])), to_float(row.get("mean_return"))
        if math.isfinite(train) and math.isfinite(evaluated):
            cells[(row["env"], row["arm"], row["intensity"])].append((train, evaluated))
    gaps = []
    for (env, arm, intensity), pairs in sorted(cells.items()):
        train = sum(p[0] for p in pairs) / len(pairs)
        evaluated = sum(p[1] for p in pairs) / len(pairs)
        if abs(train - evaluated) > GAP_FRACTION * max(abs(train), abs(evaluated), 1.0):
            gaps.append({"env": env, "arm": arm, "intensity": intensity, "training_return": train,
                         "evaluated_return": evaluated})  # fmt: skip
    return gaps


def gap_lines(gaps: Sequence[Mapping[str, Any]]) -> list[str]:
    """One sentence per flagged cell, for report.md and report.html."""
    return [
        f"Protocol gap: {g['env']} {g['arm']}-{g['intensity']}: training episodes (stochastic policy) return "
        f"{g['training_return']:.4g}, the evaluated deterministic policy {g['evaluated_return']:.4g}; the learning "
        "curves and the tables measure different policies here."
        for g in gaps
    ]
