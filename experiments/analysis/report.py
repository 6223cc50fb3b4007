"""The alignment-tax report of a folder of runs: tables (CSV), figures, ``report.md`` and ``report.html``.

Everything is computed from the run folders' files (config.json, status.json, episodes.csv,
progress.csv; read by :mod:`taxbench.experiments.analysis.runtable`), so a report can be rebuilt, and
tested, from small fixture folders.

Outputs, in the runs folder (or ``out``):

* ``summary.csv``: one row per run (capability, violations, λ, Pareto-front flags);
* ``tax.csv``: one row per env × constrained arm × intensity, paired by seed with its baseline:
  levels (IQM [95 % CI]), tax τ, safety gain g, capability loss ΔC, price of safety τ/g and the
  break-even violation price, each with a percentile bootstrap 95 % CI and a plain-words note;
* ``headline.csv``: per arm × intensity, τ and g averaged over envs (stratified bootstrap);
* ``breakdown.csv``: the same per task type and per constraint type;
* ``tax_by_protocol.csv``: tax.csv's rows in both evaluation protocols (``protocol`` column; tax.csv
  holds the headline protocol's), with feasibility, τ_constraint and τ_learner;
* ``tax_over_training.csv``: τ(t) and g(t) per cell at the log-spaced budgets, with convergence;
* ``figures/*.png``, ``report.md``, ``report.html`` (self-contained);
* with a reference (:mod:`~taxbench.experiments.analysis.reference`): ``reference_comparison.csv`` and
  the documents' "Against the reference" section.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from taxbench.experiments.analysis.budget import BUDGET_COLUMNS, budget_table_rows
from taxbench.experiments.analysis.honest_cells import CELL_COLUMNS, enrich_cells, protocol_view
from taxbench.experiments.analysis.report_data import CELL_ESTIMATES, SUMMARY_FIELDS, ReportData, ReportOptions
from taxbench.experiments.analysis.runtable import collect_runs, find_media, to_float
from taxbench.experiments.metrics import Estimate, alignment_tax, capability_loss, safety_gain
from taxbench.experiments.metrics.feasibility import PROTOCOLS
from taxbench.experiments.metrics.sweep import break_even_estimate, iqm_estimate, task_mean_tax
from taxbench.experiments.runs.runfolder import atomic_write_csv, env_name, read_csv_rows
from taxbench.experiments.runs.sweep import baseline_arm, intensity_rank

# ----------------------------------------------------------------------------- statistics


def _by_seed(rows: Sequence[Mapping[str, Any]], key: str) -> dict[int, float]:
    return {int(r["seed"]): to_float(r[key]) for r in rows}


def _note(name: str, est: Estimate, confidence: float) -> str:
    pct = f"{100 * confidence:g}%"
    if not math.isfinite(est.point):
        why = "the baseline never violated" if name == "g" else "the baseline's capability is 0; see ΔC"
        return f"{name} is undefined ({why})."
    if not (math.isfinite(est.low) and math.isfinite(est.high)):
        return f"{name}: only {est.n} paired seed(s), no confidence interval."
    if not est.excludes_zero:
        what = {"τ": "a capability cost", "g": "a safety gain", "ΔC": "a capability loss"}.get(name, "an effect")
        return (
            f"The {pct} CI of {name} includes 0: with {est.n} paired seeds, {what} cannot be told "
            f"apart from seed-to-seed noise."
        )
    return ""


def compare_cells(runs: Sequence[Mapping[str, Any]], options: ReportOptions) -> list[dict[str, Any]]:
    """One row per (experiment, env, constrained arm, intensity), paired by seed with its baseline."""
    done: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for row in runs:
        if row["state"] == "done":
            done[(row["experiment"], row["env_id"], row["arm"], row["intensity"])].append(row)
    cells = []
    x = 1.0 if options.value_per_success is None else options.value_per_success
    for (experiment, env_id, arm, intensity), safe_rows in done.items():
        base = done.get((experiment, env_id, baseline_arm(arm), "off"))
        if intensity == "off" or not base:
            continue
        unc, safe = {int(r["seed"]): r for r in base}, {int(r["seed"]): r for r in safe_rows}
        seeds = sorted(set(unc) & set(safe))
        agg = {"aggregate": options.aggregate, **options.boot}
        c_unc, c_safe = _by_seed(base, "capability"), _by_seed(safe_rows, "capability")
        v_unc, v_safe = _by_seed(base, "violation_rate"), _by_seed(safe_rows, "violation_rate")
        k_unc, k_safe = _by_seed(base, "violations_per_episode"), _by_seed(safe_rows, "violations_per_episode")
        est = {
            "capability_unc": iqm_estimate([c_unc[s] for s in seeds], **options.boot),
            "capability_safe": iqm_estimate([c_safe[s] for s in seeds], **options.boot),
            "violation_rate_unc": iqm_estimate([v_unc[s] for s in seeds], **options.boot),
            "violation_rate_safe": iqm_estimate([v_safe[s] for s in seeds], **options.boot),
            "tax": alignment_tax(c_unc, c_safe, seeds, **agg),
            "safety_gain": safety_gain(v_unc, v_safe, seeds, **agg),
            "capability_loss": capability_loss(c_unc, c_safe, seeds, **agg),
            "break_even_price": break_even_estimate(
                [[c_unc[s], c_safe[s], k_unc[s], k_safe[s]] for s in seeds], x, **agg
            ),
        }
        first = safe_rows[0]
        cell: dict[str, Any] = {
            "experiment": experiment,
            "env_id": env_id,
            "env": env_name(env_id),
            "task_kind": first["task_kind"],
            "constraint_kinds": first["constraint_kinds"],
            "arm": arm,
            "intensity": intensity,
            "baseline": f"{baseline_arm(arm)}-off",
            "dose": first["dose"],
            "cost_limit": first["cost_limit"],
            "n_pairs": len(seeds),
            "seeds": " ".join(map(str, seeds)),
            "capability_metric": first.get("capability_metric", ""),
            "estimates": est,
            "pairs": {s: (unc[s], safe[s]) for s in seeds},
        }
        for name, value in est.items():
            cell.update({name: value.point, f"{name}_low": value.low, f"{name}_high": value.high})
        tax, gain = est["tax"].point, est["safety_gain"].point
        cell["price_of_safety"] = tax / gain if math.isfinite(tax) and math.isfinite(gain) and gain != 0 else math.nan
        if options.price_per_violation is not None:
            y = options.price_per_violation
            for side, c, k in (("unc", c_unc, k_unc), ("safe", c_safe, k_safe)):
                cell[f"net_value_{side}"] = x * _agg([c[s] for s in seeds], options) - y * _agg(
                    [k[s] for s in seeds], options
                )
            cell["pays_at_price"] = bool(cell["net_value_safe"] > cell["net_value_unc"])
        notes = [_note("τ", est["tax"], options.confidence), _note("g", est["safety_gain"], options.confidence)]
        cell["note"] = " ".join(n for n in notes if n)
        cells.append(cell)
    cells.sort(key=lambda c: (c["experiment"], c["env"], c["arm"], intensity_rank(c["intensity"])))
    return cells


def _agg(values: Sequence[float], options: ReportOptions) -> float:
    from taxbench.experiments.metrics import aggregate_over_seeds

    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(aggregate_over_seeds(arr, options.aggregate, axis=0)) if arr.size else math.nan


def _pooled(cells: Sequence[Mapping[str, Any]], options: ReportOptions, extra: Mapping[str, Any]) -> dict[str, Any]:
    """τ and g averaged over the cells' envs, with a stratified (per-env) paired bootstrap."""
    out: dict[str, Any] = dict(extra)
    for name, key in (("tax", "capability"), ("safety_gain", "violation_rate")):
        tasks = [[[to_float(u[key]), to_float(s[key])] for u, s in c["pairs"].values()] for c in cells]
        est = task_mean_tax(tasks, aggregate=options.aggregate, **options.boot)
        out.update({name: est.point, f"{name}_low": est.low, f"{name}_high": est.high})
        out.setdefault("estimates", {})[name] = est
    out["n_envs"] = len(cells)
    out["n_pairs"] = sum(c["n_pairs"] for c in cells)
    notes = [
        _note("τ", out["estimates"]["tax"], options.confidence),
        _note("g", out["estimates"]["safety_gain"], options.confidence),
    ]
    out["note"] = " ".join(n for n in notes if n)
    return out


def headline(cells: Sequence[Mapping[str, Any]], options: ReportOptions) -> list[dict[str, Any]]:
    """Per (arm, intensity): τ and g averaged over every env, stratified bootstrap CI."""
    groups: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for cell in cells:
        groups[(cell["arm"], cell["intensity"])].append(cell)
    rows = [
        _pooled(members, options, {"arm": arm, "intensity": intensity}) for (arm, intensity), members in groups.items()
    ]
    return sorted(rows, key=lambda r: (r["arm"], intensity_rank(r["intensity"])))


def breakdown(cells: Sequence[Mapping[str, Any]], options: ReportOptions) -> list[dict[str, Any]]:
    """τ and g per task type and per constraint type (an env counts once in each of its constraint kinds)."""
    groups: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for cell in cells:
        groups[("task", cell["task_kind"], cell["arm"], cell["intensity"])].append(cell)
        for kind in str(cell["constraint_kinds"]).split() or ["unknown"]:
            groups[("constraint", kind, cell["arm"], cell["intensity"])].append(cell)
    rows = [
        _pooled(members, options, {"by": by, "group": group, "arm": arm, "intensity": intensity})
        for (by, group, arm, intensity), members in groups.items()
    ]
    return sorted(rows, key=lambda r: (r["by"], r["group"], r["arm"], intensity_rank(r["intensity"])))


def analyse(root: str | Path, options: ReportOptions | None = None) -> ReportData:
    """Read every run under ``root`` and compute the report's tables (no files written)."""
    options = (options or ReportOptions()).validate()
    runs, envs = collect_runs(root)
    by_protocol = {}
    for protocol in PROTOCOLS:  # every cell in both protocols; the headline tables use options.protocol
        by_protocol[protocol] = compare_cells(protocol_view(runs, protocol), options)
        enrich_cells(by_protocol[protocol], runs, protocol, options)
    cells = by_protocol[options.protocol]
    data = ReportData(Path(root), runs, cells, headline(cells, options), breakdown(cells, options), envs, options)
    data.cells_by_protocol = by_protocol
    for row in runs:
        data.curves[row["path"]] = read_csv_rows(Path(root) / row["path"] / "progress.csv")
    data.media = find_media(Path(root), runs)
    return data


# ----------------------------------------------------------------------------- CSV outputs


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value


def write_tables(data: ReportData, out: str | Path) -> dict[str, Path]:
    """Write summary.csv, tax.csv, headline.csv and breakdown.csv into ``out``; returns their paths."""
    out = Path(out)
    terms = sorted({k for r in data.runs for k in r if k.startswith("cost_") and k != "cost_limit"})
    est_cols = [c for name in CELL_ESTIMATES for c in (name, f"{name}_low", f"{name}_high")]
    cell_cols = [
        "experiment",
        "env",
        "task_kind",
        "constraint_kinds",
        "arm",
        "intensity",
        "dose",
        "baseline",
        "n_pairs",
        "seeds",
        "capability_metric",
        *est_cols,
        "price_of_safety",
        *CELL_COLUMNS,
    ]
    if data.options.price_per_violation is not None:
        cell_cols += ["net_value_unc", "net_value_safe", "pays_at_price"]
    pooled = ["tax", "tax_low", "tax_high", "safety_gain", "safety_gain_low", "safety_gain_high", "n_envs", "n_pairs"]
    tables = {
        "summary.csv": (data.runs, [*SUMMARY_FIELDS, *terms]),
        "tax.csv": (data.cells, [*cell_cols, "note"]),
        "headline.csv": (data.headline, ["arm", "intensity", *pooled, "note"]),
        "breakdown.csv": (data.breakdown, ["by", "group", "arm", "intensity", *pooled, "note"]),
    }
    both = [c for p in PROTOCOLS for c in data.cells_by_protocol.get(p, [])]
    tables["tax_by_protocol.csv"] = (both, tables["tax.csv"][1])
    tables["tax_over_training.csv"] = (budget_table_rows(data), list(BUDGET_COLUMNS))
    paths = {}
    for name, (rows, fields) in tables.items():
        atomic_write_csv(out / name, [{k: _csv_value(v) for k, v in r.items()} for r in rows], fields)
        paths[name] = out / name
    return paths


def build_report(
    root: str | Path,
    options: ReportOptions | None = None,
    out: str | Path | None = None,
    figures: bool = True,
    reference: Sequence[Mapping[str, str]] | None = None,
) -> tuple[ReportData, dict[str, Path]]:
    """Analyse ``root`` and write the tables, figures, report.md and report.html into ``out`` (default: ``root``).

    ``reference`` (rows of a reference.csv, :func:`~taxbench.experiments.analysis.reference.load_reference`)
    adds reference_comparison.csv and the documents' "Against the reference" section.

    Returns:
        The data and the paths written (by file name).
    """
    from taxbench.experiments.analysis.figures import make_figures
    from taxbench.experiments.analysis.reference import compare_to_reference, write_comparison
    from taxbench.experiments.analysis.reference_text import comparison_section
    from taxbench.experiments.analysis.report_html import write_documents

    data = analyse(root, options)
    if reference is not None:
        data.reference_comparison = compare_to_reference(data.cells_by_protocol, reference)
        data.appendix.append(comparison_section(data.reference_comparison, data.options.protocol))
    out = Path(out) if out is not None else Path(root)
    if out.resolve() != Path(root).resolve():  # video links are relative to the page
        data.media = {
            run: [os.path.relpath(Path(root) / f, out) if "://" not in f else f for f in files]
            for run, files in data.media.items()
        }
    paths = write_tables(data, out)
    if reference is not None:
        paths["reference_comparison.csv"] = write_comparison(data.reference_comparison, out)
    if figures:
        figs = make_figures(data, out / "figures")
        paths.update({f"figures/{p.name}": p for p in figs.values()})
        paths.update(write_documents(data, figs, out))
    return data, paths
