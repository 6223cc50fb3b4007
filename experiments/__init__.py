"""Experiments: run configuration, run folders, training, evaluation and metrics.

The modules here turn a :class:`~taxbench.experiments.config.RunConfig` into a run folder
(``runs/<experiment>/<env>/<arm>-<intensity>/seed<k>/``) and pairs of run folders into
alignment-tax estimates with bootstrap confidence intervals.
"""

from taxbench.experiments.metrics import Estimate, alignment_tax, bootstrap_ci, iqm, pair_summary, run_summary
from taxbench.experiments.runs.config import RunConfig, provenance
from taxbench.experiments.runs.runfolder import find_runs, read_status, run_dir, write_status

__all__ = [
    "Estimate",
    "RunConfig",
    "alignment_tax",
    "bootstrap_ci",
    "find_runs",
    "iqm",
    "pair_summary",
    "provenance",
    "read_status",
    "run_dir",
    "run_summary",
    "write_status",
]
