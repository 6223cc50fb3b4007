"""Experiments: everything between an env and a printed tax, in rooms (see docs/ARCHITECTURE.md).

* ``cli/``: the ``taxbench`` command (one table of subcommands); :mod:`.api`: the same from Python;
* ``runs/``: run config, run folders, training, the process pool, pairs, sweeps, evaluation;
* ``metrics/``: estimates with CIs, the tax and its parts (pure functions, no files);
* ``analysis/``: reports, tables and figures from run folders;
* ``media/``: rollout videos, clips, contact sheets, the live viewer;
* ``bench/``: ``taxbench bench`` measurements; ``ci/``: ``gate`` and ``check``.

For notebooks::

    from taxbench.experiments import load_runs, pair

    result = pair(env="taxbench/HalfCheetahVelocity-v0", steps=4096, seeds=[0, 1])
    result.tax, load_runs(result.folder).column("capability")
"""

from taxbench.experiments.api import PairResult, RunTable, load_runs, pair
from taxbench.experiments.metrics import Estimate, alignment_tax, bootstrap_ci, iqm, pair_summary, run_summary
from taxbench.experiments.runs.config import RunConfig, provenance
from taxbench.experiments.runs.runfolder import find_runs, read_status, run_dir, write_status

__all__ = [
    "Estimate",
    "PairResult",
    "RunConfig",
    "RunTable",
    "alignment_tax",
    "bootstrap_ci",
    "find_runs",
    "iqm",
    "load_runs",
    "pair",
    "pair_summary",
    "provenance",
    "read_status",
    "run_dir",
    "run_summary",
    "write_status",
]
