"""The report's data: the summary.csv columns, the per-cell estimates, the statistics options and :class:`ReportData`.

Its own module so the figures and the HTML document can take a :class:`ReportData` without importing
the report builder that calls them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Columns of summary.csv, in order (``cost_<term>`` means per episode follow).
SUMMARY_FIELDS: tuple[str, ...] = (
    "experiment",
    "env",
    "task_kind",
    "constraint_kinds",
    "arm",
    "intensity",
    "dose",
    "seed",
    "cost_limit",
    "steps",
    "state",
    "capability_metric",
    "capability",
    "success_rate",
    "mean_return",
    "violation_rate",
    "episode_cost",
    "violations_per_episode",
    "lambda",
    "train_steps",
    "episodes",
    "feasible_deterministic",
    "feasible_stochastic",
    "capability_deterministic",
    "capability_stochastic",
    "violation_rate_stochastic",
    "episode_cost_deterministic",
    "episode_cost_deterministic_low",
    "episode_cost_deterministic_high",
    "episode_cost_stochastic",
    "episode_cost_stochastic_low",
    "episode_cost_stochastic_high",
    "constraint_bound",
    "pareto_arm",
    "pareto_env",
    "path",
    "error",
)


#: Estimates in tax.csv, each written as ``<name>``, ``<name>_low``, ``<name>_high``.
CELL_ESTIMATES: tuple[str, ...] = (
    "capability_unc",
    "capability_safe",
    "violation_rate_unc",
    "violation_rate_safe",
    "tax",
    "safety_gain",
    "capability_loss",
    "break_even_price",
)


@dataclass
class ReportOptions:
    """How the statistics are computed and priced.

    Attributes:
        value_per_success: Value of one unit of capability (a success, or a unit of return) in
            the currency of ``price_per_violation``; 1 when not given, so the break-even price is
            then in "successes per violation".
        price_per_violation: Price of one violation (violating step); when given, the report
            adds each arm's net value per episode ``X·C − Y·K`` and says which arm pays.
        aggregate: Aggregate over seeds for τ, g, ΔC and the break-even price: ``iqm``
            (interquartile mean, rliable's choice, the default) or ``mean``.
        n_boot: Bootstrap resamples.
        confidence: Two-sided coverage of every interval.
        seed: Seed of the resampling RNG (reports are reproducible).
        protocol: Evaluation protocol of the headline tables and figures (``deterministic``: the
            policy as deployed; ``stochastic``: as trained); tax_by_protocol.csv holds both.
    """

    value_per_success: float | None = None
    price_per_violation: float | None = None
    aggregate: str = "iqm"
    n_boot: int = 10_000
    confidence: float = 0.95
    seed: int = 0
    protocol: str = "deterministic"

    def validate(self) -> ReportOptions:
        """Raise ValueError on a negative or non-finite price, or an unknown aggregate."""
        for name in ("value_per_success", "price_per_violation"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        if self.aggregate not in ("iqm", "mean"):
            raise ValueError(f"aggregate must be iqm or mean, got {self.aggregate!r}")
        if self.protocol not in ("deterministic", "stochastic"):
            raise ValueError(f"protocol must be deterministic or stochastic, got {self.protocol!r}")
        if not 0 < self.confidence < 1 or self.n_boot < 1:
            raise ValueError("confidence must be in (0, 1) and n_boot >= 1")
        return self

    @property
    def boot(self) -> dict[str, Any]:
        """Keyword arguments of the estimators."""
        return {"n_boot": self.n_boot, "confidence": self.confidence, "seed": self.seed}


@dataclass
class ReportData:
    """Everything the figures and documents are made from."""

    root: Path
    runs: list[dict[str, Any]]
    cells: list[dict[str, Any]]
    headline: list[dict[str, Any]]
    breakdown: list[dict[str, Any]]
    envs: dict[str, dict[str, Any]]
    options: ReportOptions
    curves: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    """progress.csv rows per run path (relative)."""
    media: dict[str, list[str]] = field(default_factory=dict)
    """Video files per run path (relative to the report), when the rollout module provides them."""
    cells_by_protocol: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """The cells in each evaluation protocol (``cells`` is the headline protocol's)."""
    reference_comparison: list[dict[str, Any]] = field(default_factory=list)
    """The cells beside a reference's, when the report was built against one (``reference_comparison.csv``)."""
    appendix: list[tuple[str, list[str], tuple[list[str], list[list[str]]]]] = field(default_factory=list)
    """Extra sections of report.md/html before the runs: (title, sentences, (header, rows))."""
