"""Copies of a run's policy at log-spaced budgets, and their evaluation: the data of τ(t) and g(t).

While a run trains, :class:`BudgetCheckpointCallback` saves the model once it has passed each
budget ``T / 2^k`` (``k = 1 … BUDGET_DOUBLINGS``; at a rollout's start, so the copy holds every
update up to then) into ``budgets/budget_<T/2^k>.zip`` with a JSON sidecar giving the env steps
actually trained. These copies live apart from ``checkpoints/`` (resume's rotating checkpoints,
pruned) and are never deleted by training. After training, :func:`evaluate_budgets` evaluates each
copy under both protocols on the run's evaluation episodes and writes ``budgets.csv``: one row per
budget × protocol, the final budget being the finished run's own evaluation.

``budgets.csv`` columns: ``budget`` (target env steps), ``steps`` (env steps trained), ``protocol``,
``capability``, ``mean_return``, ``success_rate``, ``violation_rate``, ``episode_cost``,
``episode_cost_low``, ``episode_cost_high``, ``feasible``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stable_baselines3.common.callbacks import BaseCallback

from taxbench.experiments.metrics.budget import BUDGET_DOUBLINGS, budget_steps
from taxbench.experiments.metrics.feasibility import PROTOCOLS
from taxbench.experiments.runs.protocols import PROTOCOL_FIELDS
from taxbench.experiments.runs.runfolder import (
    atomic_path,
    atomic_write_csv,
    atomic_write_json,
    read_csv_rows,
    read_json,
)

if TYPE_CHECKING:
    from taxbench.experiments.runs.config import RunConfig

BUDGET_DIR = "budgets"
BUDGETS_FILE = "budgets.csv"
BUDGET_FIELDS: tuple[str, ...] = (
    "budget",
    "steps",
    "protocol",
    *PROTOCOL_FIELDS,
    "episode_cost_low",
    "episode_cost_high",
    "feasible",
)


def budget_path(run_dir: str | os.PathLike[str], budget: int) -> Path:
    """Where the copy for target ``budget`` (env steps) is kept."""
    return Path(run_dir) / BUDGET_DIR / f"budget_{budget:012d}.zip"


class BudgetCheckpointCallback(BaseCallback):
    """Save a copy of the model at the first rollout start at or past each budget below the final one.

    When one rollout passes several budgets, only the largest is saved (the smaller ones would be
    the same weights). Budgets whose copy already exists (a resumed run) are not saved again.
    """

    def __init__(self, run_dir: Path, budgets: list[int]) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.pending = [b for b in sorted(budgets) if not budget_path(run_dir, b).exists()]

    def _on_rollout_start(self) -> None:
        steps = int(self.model.num_timesteps)
        passed = [b for b in self.pending if steps >= b]
        if not passed:
            return
        self.pending = [b for b in self.pending if b not in passed]
        path = budget_path(self.run_dir, passed[-1])
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".zip") as tmp:
            self.model.save(tmp)
        atomic_write_json(path.with_suffix(".json"), {"budget": passed[-1], "steps": steps})

    def _on_step(self) -> bool:
        return True


def budget_callbacks(cfg: RunConfig, run_dir: Path) -> list[BaseCallback]:
    """The callbacks a run adds to keep its budget copies (none below 2 budgets)."""
    budgets = budget_steps(cfg.steps, BUDGET_DOUBLINGS)[:-1]
    return [BudgetCheckpointCallback(run_dir, budgets)] if budgets else []


def _rows(budget: int, steps: int, summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for protocol in PROTOCOLS:
        row: dict[str, Any] = {"budget": budget, "steps": steps, "protocol": protocol}
        row.update({key: summary.get(f"{key}_{protocol}", math.nan) for key in PROTOCOL_FIELDS})
        for end in ("low", "high"):
            row[f"episode_cost_{end}"] = summary.get(f"episode_cost_{protocol}_{end}", math.nan)
        row["feasible"] = summary.get(f"feasible_{protocol}", "")
        rows.append(row)
    return rows


def evaluate_budgets(
    cfg: RunConfig,
    run_dir: str | os.PathLike[str],
    final_summary: Mapping[str, Any],
    final_steps: int,
    load: Callable[[Path], Any],
    wrap_env: Callable[[Any], Any] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate every budget copy under both protocols and write budgets.csv (with the final run's rows).

    Args:
        cfg: The run's config.
        run_dir: The run folder.
        final_summary: The finished run's evaluation summary (its per-protocol fields).
        final_steps: Env steps the finished run trained.
        load: Loads a model zip (e.g. ``load_learner`` with the run's env and device).
        wrap_env: The arm's env wrapper, as for the final evaluation.

    Returns:
        The rows written (ascending budget, then protocol).
    """
    from taxbench.experiments.runs.protocols import evaluate_protocols

    rows: list[dict[str, Any]] = []
    for budget in budget_steps(cfg.steps, BUDGET_DOUBLINGS)[:-1]:
        path = budget_path(run_dir, budget)
        if not path.exists():
            continue
        try:
            steps = int(read_json(path.with_suffix(".json"))["steps"])
        except (OSError, ValueError, KeyError, TypeError):
            steps = budget
        summary, _ = evaluate_protocols(load(path), cfg, None, wrap_env=wrap_env)
        rows.extend(_rows(budget, steps, summary))
    rows.extend(_rows(cfg.steps, final_steps, final_summary))
    atomic_write_csv(Path(run_dir) / BUDGETS_FILE, rows, BUDGET_FIELDS)
    return rows


def read_budgets(run_dir: str | os.PathLike[str], protocol: str) -> dict[int, dict[str, Any]]:
    """``{budget: row}`` of one protocol from a run's budgets.csv (empty when the file is missing)."""
    path = Path(run_dir) / BUDGETS_FILE
    if not path.exists():
        return {}
    out: dict[int, dict[str, Any]] = {}
    for row in read_csv_rows(path):
        if row.get("protocol") == protocol:
            try:
                out[int(float(row["budget"]))] = dict(row)
            except (KeyError, TypeError, ValueError):
                continue
    return out
