"""The rich progress bar of a single run trained in the foreground (``train_run(progress=True)``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from taxbench.experiments.runs.checkpoint import (
    KEEP_CHECKPOINTS,  # noqa: F401 - re-exported (moved to checkpoint.py)
    checkpoint_path,  # noqa: F401 - re-exported
    list_checkpoints,  # noqa: F401 - re-exported
)


class RichProgressCallback(BaseCallback):
    """A ``rich`` progress bar over environment steps, with the latest return and cost.

    On a terminal it refreshes live; elsewhere rich prints it once when training stops.
    """

    def __init__(self, total: int, description: str, latest: Callable[[], Mapping[str, Any] | None]) -> None:
        super().__init__()
        from rich import console, progress

        self.total, self.latest = total, latest
        self.progress = progress.Progress(
            *progress.Progress.get_default_columns()[:2],
            progress.MofNCompleteColumn(),
            progress.TextColumn("{task.fields[stats]}"),
            progress.TimeElapsedColumn(),
            progress.TimeRemainingColumn(),
            console=console.Console(stderr=True),
        )
        self.task = self.progress.add_task(description, total=total, stats="")
        self.started = False

    def _on_training_start(self) -> None:
        self.progress.update(self.task, completed=self.model.num_timesteps)
        self.progress.start()
        self.started = True

    def _on_step(self) -> bool:
        if self.n_calls % 256 == 0:
            self.progress.update(self.task, completed=min(self.model.num_timesteps, self.total))
        return True

    def _on_rollout_end(self) -> None:
        row = self.latest() or {}
        stats = "  ".join(f"{k} {row[k]:.3g}" for k in ("ep_return", "ep_cost") if isinstance(row.get(k), (int, float)))
        self.progress.update(self.task, completed=min(self.model.num_timesteps, self.total), stats=stats)

    def close(self) -> None:
        """Stop the live display (idempotent)."""
        if self.started:
            self.progress.update(self.task, completed=min(self.model.num_timesteps, self.total))
            self.progress.stop()
            self.started = False
