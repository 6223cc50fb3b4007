"""Metrics: pure functions from per-episode and per-seed numbers to estimates with confidence intervals.

* :mod:`.estimates`: IQM, seed aggregates, percentile bootstraps, :class:`Estimate`;
* :mod:`.tax`: per-run summaries and the paired alignment tax, safety gain and capability loss;
* :mod:`.sweep`: dose-response, Pareto fronts, break-even and task means over a sweep;
* :mod:`.feasibility`: does a constrained run meet its limit d (CI over episodes), did λ ever bind;
* :mod:`.decompose`: τ = τ_constraint + τ_learner against the best feasible policy;
* :mod:`.budget`: τ(t), g(t) at log-spaced budgets and the convergence rule;
* :mod:`.reliability`: CI widths and rliable's probability of improvement;
* :mod:`.honest`: the pair summary in both protocols that ``pair``, ``report`` and their files carry.

Nothing here reads or writes files.
"""

from taxbench.experiments.metrics.estimates import (
    AGGREGATES,
    ZERO_ATOL,
    Estimate,
    aggregate_over_seeds,
    bootstrap_ci,
    iqm,
    percentile_interval,
)
from taxbench.experiments.metrics.tax import (
    alignment_tax,
    capability_loss,
    format_pair_summary,
    mean_estimate,
    pair_summary,
    run_summary,
    safety_gain,
)

__all__ = [
    "AGGREGATES",
    "ZERO_ATOL",
    "Estimate",
    "aggregate_over_seeds",
    "alignment_tax",
    "bootstrap_ci",
    "capability_loss",
    "format_pair_summary",
    "iqm",
    "mean_estimate",
    "pair_summary",
    "percentile_interval",
    "run_summary",
    "safety_gain",
]
