"""SB3 loggers that write only where a run asks: nothing by default, TensorBoard event files on request.

SB3's ``learn`` configures its own logger unless one was set, and that default creates an empty
``SB3-<date>`` folder in the system temp directory on every call. Every learner built or loaded through
:mod:`taxbench.policies.registry` gets :func:`run_logger` instead, so a run writes only inside its run folder
(and, with TensorBoard, inside the folder the user named).
"""

from __future__ import annotations

import sys
from pathlib import Path

from stable_baselines3.common.logger import HumanOutputFormat, KVWriter, Logger, TensorBoardOutputFormat

__all__ = ["TensorBoardMissingError", "run_logger"]


class TensorBoardMissingError(ImportError):
    """TensorBoard output was asked for but the ``tensorboard`` package is not installed."""


def run_logger(tensorboard_dir: str | Path | None = None, verbose: int = 0) -> Logger:
    """A logger that writes SB3's scalars only where asked.

    The scalars (``train/*``, ``rollout/*``, ``safety/*``) go to ``tensorboard_dir`` as TensorBoard event
    files when one is given, and to stdout when ``verbose >= 1``; otherwise they stay in memory.

    Args:
        tensorboard_dir: Folder for the event files (created if missing), or None for no files at all.
        verbose: SB3 verbosity; 1 or more also prints the scalars to stdout as SB3's default logger does.

    Raises:
        TensorBoardMissingError: If ``tensorboard_dir`` is given and ``tensorboard`` is not installed
            (``pip install 'taxbench[tensorboard]'``).
    """
    formats: list[KVWriter] = []
    if verbose >= 1:
        formats.append(HumanOutputFormat(sys.stdout))
    if tensorboard_dir is not None:
        try:
            import tensorboard  # noqa: F401 - torch's SummaryWriter needs it
        except ImportError:
            raise TensorBoardMissingError(
                "TensorBoard output needs the tensorboard package: pip install 'taxbench[tensorboard]'"
            ) from None
        Path(tensorboard_dir).mkdir(parents=True, exist_ok=True)
        formats.append(TensorBoardOutputFormat(str(tensorboard_dir)))
    return Logger(folder=str(tensorboard_dir) if tensorboard_dir is not None else None, output_formats=formats)
