"""Reference results as text: README's results table and the report's "Against the reference" section.

The numbers go through the report's one formatter (:func:`~taxbench.experiments.analysis.report_html.fmt_ci`,
three significant digits, ``point [low, high]``). A τ whose ``tax_label`` says it is not a plain tax
carries that label (a pair whose constraint never bound shows only the label), and a missing
τ_constraint or τ_learner says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from taxbench.experiments.analysis.reference import CI_PARTS, COMPARISON_FILE, ESTIMATES, cell_order, whole_text
from taxbench.experiments.analysis.report_html import Table, fmt_ci, md_table
from taxbench.experiments.analysis.runtable import to_float
from taxbench.experiments.metrics.feasibility import INFEASIBLE, NEVER_BOUND

#: The alignment tax reported for language models at each named intensity (capability lost to safety
#: training, % of the unconstrained model's), printed beside the robot's τ; ``d<N>`` intensities have none. These
#: are the project brief's brackets, not traced to a single published study (README, "Results").
LANGUAGE_MODEL_TAX: dict[str, str] = {"mild": "2–3 %", "moderate": "5–10 %", "strict": "10–20 %"}


def _numbers(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with its estimate columns as floats (for the formatters)."""
    return {**row, **{e + p: to_float(row.get(e + p)) for e in ESTIMATES for p in CI_PARTS}}


def tau_text(row: Mapping[str, Any]) -> str:
    """``τ [low, high]``; a τ that is not a plain tax carries its label, and a never-bound pair shows only the label."""
    label = str(row.get("tax_label") or "tax")
    if label == NEVER_BOUND:
        return label
    text = fmt_ci(_numbers(row), "tax")
    return text if label == "tax" else f"{text} ({label})"


def part_text(row: Mapping[str, Any], key: str) -> str:
    """τ_constraint or τ_learner with its CI, or why it is missing (``no feasible policy``)."""
    values = _numbers(row)
    if math.isfinite(values[key]):
        return fmt_ci(values, key)
    return "n/a" if row.get("c_feasible_source") else "no feasible policy"


def feasible_text(row: Mapping[str, Any]) -> str:
    """``feasible (2/2 seeds feasible)``, ``INFEASIBLE (1/2 seeds feasible)``; ``n/a`` when not judged."""
    verdict = str(row.get("feasible") or "")
    if not verdict:
        return "n/a"
    shown = verdict.upper() if verdict == INFEASIBLE else verdict
    seeds, pairs = whole_text(row.get("feasible_seeds")), whole_text(row.get("n_pairs"))
    return f"{shown} ({seeds}/{pairs} seeds feasible)" if seeds and pairs else shown


def reference_markdown(rows: Sequence[Mapping[str, Any]], protocol: str = "deterministic") -> str:
    """README's results table: one line per env × constrained arm × intensity of reference.csv ``rows`` in ``protocol``.

    The last column is the tax reported for language models at the same named intensity
    (:data:`LANGUAGE_MODEL_TAX`).
    """
    header = [
        "env",
        "arm",
        "intensity (d)",
        "τ [95% CI]",
        "τ_constraint [CI]",
        "τ_learner [CI]",
        "g [CI]",
        "feasible (seeds)",
        "converged",
        "language-model tax reported",
    ]
    converged = {"True": "yes", "False": "no"}
    body = [
        [
            str(r["env"]),
            str(r["arm"]),
            f"{r['intensity']} ({r['dose']})" if r.get("dose") else str(r["intensity"]),
            tau_text(r),
            part_text(r, "tau_constraint"),
            part_text(r, "tau_learner"),
            fmt_ci(_numbers(r), "safety_gain"),
            feasible_text(r),
            converged.get(str(r.get("converged")), "unknown"),
            LANGUAGE_MODEL_TAX.get(str(r["intensity"]), ""),
        ]
        for r in sorted(rows, key=cell_order)
        if r["protocol"] == protocol
    ]
    return md_table((header, body))


#: What :func:`side_texts` gives, in order: the columns of each side of a comparison.
SIDE_COLUMNS: tuple[str, ...] = ("τ", "τ_constraint", "τ_learner", "g", "feasible", "steps")


def side_texts(row: Mapping[str, Any], side: str) -> list[str]:
    """τ, τ_constraint, τ_learner, g, feasibility and steps of one side (``user`` or ``reference``) of a row."""
    view = {k.removeprefix(f"{side}_"): v for k, v in row.items() if k.startswith(f"{side}_")}
    return [
        tau_text(view),
        part_text(view, "tau_constraint"),
        part_text(view, "tau_learner"),
        fmt_ci(view, "safety_gain"),
        feasible_text(view),
        str(view.get("steps", "")),
    ]


def comparison_section(rows: Sequence[Mapping[str, Any]], protocol: str) -> tuple[str, list[str], Table]:
    """The report's "Against the reference" section: title, sentences and the table of ``protocol``'s cells."""
    header = ["env", "arm", "intensity"]
    for name in SIDE_COLUMNS:
        header += [f"{name} (yours)", f"{name} (reference)"]
    body, inside, comparable = [], 0, 0
    for row in (r for r in rows if r["protocol"] == protocol):
        user = side_texts(row, "user")
        reference = side_texts(row, "reference") if row["reference_found"] else ["not in the reference"] * len(user)
        body.append(
            [row["env"], row["arm"], row["intensity"], *(t for pair in zip(user, reference, strict=True) for t in pair)]
        )
        low, high, ref = row["user_tax_low"], row["user_tax_high"], row["reference_tax"]
        if all(math.isfinite(v) for v in (low, high, ref)):
            comparable += 1
            inside += low <= ref <= high
    found = sum(bool(r["reference_found"]) for r in rows if r["protocol"] == protocol)
    sentences = [
        f"Your cells in the {protocol} protocol beside the reference's ({found} of {len(body)} found in it; "
        f"both protocols in {COMPARISON_FILE}).",
        f"The reference τ lies inside the CI of your τ in {inside} of the {comparable} cells where both are numbers.",
    ]
    return "Against the reference", sentences, (header, body)
