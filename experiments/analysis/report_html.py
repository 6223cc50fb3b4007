"""``report.md`` and a self-contained ``report.html`` (figures inline as base64 PNG, tables, video links).

The HTML page carries a small self-check: once loaded it sets ``data-selfcheck`` on ``<html>`` to
``ok`` when every image decoded with a non-zero size, else to the list of broken images, so a
headless browser (or a person) can verify the page in one look.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxbench.experiments.analysis.budget import budget_table
from taxbench.experiments.analysis.figures import FIGURES
from taxbench.experiments.analysis.protocol_gap import gap_lines, protocol_gaps
from taxbench.experiments.runs.runfolder import atomic_write_text

if TYPE_CHECKING:
    from taxbench.experiments.analysis.report_data import ReportData

Table = tuple[list[str], list[list[str]]]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.85em;width:100%}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;overflow-wrap:anywhere}
th{background:#f0f0f0;position:sticky;top:0}td:first-child,th:first-child{text-align:left}
td.note{text-align:left;color:#8a4b00;min-width:12em}
.scroll{overflow-x:auto}
img{max-width:100%;border:1px solid #eee}
figure{margin:1.5em 0}figcaption{font-style:italic;color:#555}
code{background:#f5f5f5;padding:0 3px}
"""

_SELFCHECK = """
window.addEventListener('load', function () {
  var bad = [];
  document.querySelectorAll('img').forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0 || img.getBoundingClientRect().width === 0) { bad.push(img.alt); }
  });
  document.documentElement.setAttribute('data-selfcheck', bad.length ? 'broken: ' + bad.join(', ') : 'ok');
});
"""


def fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; ``∞``, ``n/a`` for NaN/empty; other values as text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:.{digits}g}"
    return "" if value is None else str(value)


def fmt_ci(row: Mapping[str, Any], key: str) -> str:
    """``point [low, high]`` from ``key``, ``key_low``, ``key_high`` of a row."""
    point = fmt(row.get(key, math.nan))
    low, high = row.get(f"{key}_low", math.nan), row.get(f"{key}_high", math.nan)
    if isinstance(low, float) and isinstance(high, float) and math.isnan(low) and math.isnan(high):
        return point
    return f"{point} [{fmt(low)}, {fmt(high)}]"


# ----------------------------------------------------------------------------- tables


def headline_table(data: ReportData) -> Table:
    """Per arm × intensity: τ and g averaged over envs."""
    header = ["arm", "intensity", "tax τ [95% CI]", "safety gain g [95% CI]", "envs", "paired runs", "note"]
    rows = [
        [
            r["arm"],
            r["intensity"],
            fmt_ci(r, "tax"),
            fmt_ci(r, "safety_gain"),
            fmt(r["n_envs"]),
            fmt(r["n_pairs"]),
            r["note"],
        ]
        for r in data.headline
    ]
    return header, rows


def cells_table(data: ReportData) -> Table:
    """Per env × arm × intensity: levels, τ, g, ΔC, break-even (and net values when priced)."""
    priced = data.options.price_per_violation is not None
    header = [
        "env",
        "arm",
        "intensity",
        "dose",
        "seeds",
        "capability unc",
        "capability safe",
        "violation rate unc",
        "violation rate safe",
        "protocol",
        "feasible",
        "tax τ",
        "τ_constraint",
        "τ_learner",
        "converged",
        "safety gain g",
        "ΔC",
        "τ/g",
        "break-even price",
    ]
    header += ["net value unc", "net value safe", "pays?"] if priced else []
    header.append("note")
    rows = []
    for c in data.cells:
        row = [
            c["env"],
            c["arm"],
            c["intensity"],
            c["dose"],
            fmt(c["n_pairs"]),
            fmt_ci(c, "capability_unc"),
            fmt_ci(c, "capability_safe"),
            fmt_ci(c, "violation_rate_unc"),
            fmt_ci(c, "violation_rate_safe"),
            c.get("protocol", ""),
            c.get("feasible", "").upper() if c.get("feasible") == "infeasible" else c.get("feasible", ""),
            fmt_ci(c, "tax") + ("" if c.get("tax_label", "tax") == "tax" else f" ({c['tax_label']})"),
            fmt_ci(c, "tau_constraint") if math.isfinite(c.get("tau_constraint", math.nan)) else "no feasible policy",
            fmt_ci(c, "tau_learner") if math.isfinite(c.get("tau_learner", math.nan)) else "n/a",
            fmt(c.get("converged", "")) if c.get("converged", "") != "" else "unknown",
            fmt_ci(c, "safety_gain"),
            fmt_ci(c, "capability_loss"),
            fmt(c["price_of_safety"]),
            fmt_ci(c, "break_even_price"),
        ]
        if priced:
            row += [fmt(c["net_value_unc"]), fmt(c["net_value_safe"]), fmt(c["pays_at_price"])]
        rows.append([*row, c["note"]])
    return header, rows


def breakdown_table(data: ReportData, by: str) -> Table:
    """τ and g per task or constraint type."""
    header = [f"{by} type", "arm", "intensity", "tax τ [95% CI]", "safety gain g [95% CI]", "envs", "note"]
    rows = [
        [r["group"], r["arm"], r["intensity"], fmt_ci(r, "tax"), fmt_ci(r, "safety_gain"), fmt(r["n_envs"]), r["note"]]
        for r in data.breakdown
        if r["by"] == by
    ]
    return header, rows


def runs_table(data: ReportData, with_media: bool) -> Table:
    """Every run: state, capability, violations, λ, Pareto flags (and video links)."""
    header = [
        "run",
        "state",
        "capability",
        "violation rate",
        "violations/episode",
        "λ",
        "front (arm)",
        "front (env)",
        "error",
    ]
    rows = []
    for r in data.runs:
        row = [
            r["path"],
            r["state"],
            fmt(r.get("capability")),
            fmt(r.get("violation_rate")),
            fmt(r.get("violations_per_episode")),
            fmt(r.get("lambda")),
            fmt(r["pareto_arm"]),
            fmt(r["pareto_env"]),
            r["error"],
        ]
        rows.append(row + ([" ".join(data.media.get(r["path"], []))] if with_media else []))
    return header + (["videos"] if with_media else []), rows


# ----------------------------------------------------------------------------- markdown


def md_table(table: Table) -> str:
    """A Markdown table (``|`` in a cell escaped, line breaks made spaces)."""
    header, rows = table
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _intro(data: ReportData) -> list[str]:
    states = {s: sum(r["state"] == s for r in data.runs) for s in sorted({r["state"] for r in data.runs})}
    opts = data.options
    x = "1 (price in units of capability)" if opts.value_per_success is None else f"{opts.value_per_success:g}"
    y = "not given" if opts.price_per_violation is None else f"{opts.price_per_violation:g}"
    return [
        f"{len(data.runs)} runs ({', '.join(f'{n} {s}' for s, n in states.items())}) in {len(data.envs)} env(s).",
        f"τ = (C_unc − C_safe)/|C_unc| and g = (V_unc − V_safe)/V_unc are paired by seed with the baseline "
        f"(ppo-off; sac-off for sac arms), {opts.aggregate} over seeds; intervals are {100 * opts.confidence:g}% "
        f"percentile bootstrap CIs ({opts.n_boot} resamples; over several envs, stratified: seeds resampled "
        f"within each env). Levels are interquartile means.",
        f"Value per success X = {x}; price per violation Y = {y}. Net value per episode = X·C − Y·K, K the "
        f"violating steps per episode; the break-even price is the Y above which the constrained arm is worth more.",
        f"Protocols: every table and the dose-response, Pareto and break-even figures evaluate the "
        f"{data.options.protocol} policy on seeded episodes; the learning curves show the training episodes, played "
        "by the stochastic policy. Where the two differ by more than half, it is said below.",
        *gap_lines(protocol_gaps(data.runs, data.curves)),
    ]


def markdown(data: ReportData, figures: Mapping[str, Path]) -> str:
    """The report as Markdown, figures referenced as ``figures/<name>.png``."""
    parts = [
        "# Alignment-tax report",
        "",
        *_intro(data),
        "",
        "## Headline: tax and safety gain per arm and intensity",
        "",
        md_table(headline_table(data)),
        "",
    ]
    captions = dict(FIGURES)
    for name, title, table in _sections(data):
        parts += [f"## {title}", ""]
        if name in figures:
            parts += [f"![{captions[name]}](figures/{name})", ""]
        if table is not None and table[1]:
            parts += [md_table(table), ""]
    for title, sentences, table in data.appendix:
        parts += [f"## {title}", "", *sentences, "", md_table(table), ""]
    parts += ["## Runs", "", md_table(runs_table(data, bool(data.media))), ""]
    return "\n".join(parts)


def _sections(data: ReportData) -> list[tuple[str, str, Table | None]]:
    return [
        ("dose_response.png", "Dose-response per env", cells_table(data)),
        ("pareto.png", "Pareto front", None),
        ("tax_by_task.png", "Tax by task type", breakdown_table(data, "task")),
        (
            "tax_by_constraint.png",
            "Each env's tax listed under every constraint it has (not a per-constraint attribution)",
            breakdown_table(data, "constraint"),
        ),
        ("learning_curves.png", "Learning curves (training episodes: the stochastic policy)", None),
        ("break_even.png", "Break-even violation price", None),
        ("tax_over_training.png", "Tax over training", budget_table(data)),
    ]


# ----------------------------------------------------------------------------- html


def _html_table(table: Table, table_id: str) -> str:
    header, rows = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for h, value in zip(header, row, strict=True):
            if h == "videos" and value:
                links = " ".join(f'<a href="{html.escape(v)}">{html.escape(Path(v).name)}</a>' for v in value.split())
                cells.append(f"<td>{links}</td>")
            else:
                cls = ' class="note"' if h in ("note", "error") else ""
                cells.append(f"<td{cls}>{html.escape(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _html_figure(path: Path, caption: str, name: str) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure id="fig-{name.removesuffix(".png")}"><img alt="{html.escape(caption)}" '
        f'src="data:image/png;base64,{encoded}"><figcaption>{html.escape(caption)}</figcaption></figure>'
    )


def html_page(data: ReportData, figures: Mapping[str, Path]) -> str:
    """The self-contained report page."""
    captions = dict(FIGURES)
    parts = [
        "<h1>Alignment-tax report</h1>",
        *(f"<p>{html.escape(p)}</p>" for p in _intro(data)),
        "<h2>Headline: tax and safety gain per arm and intensity</h2>",
        _html_table(headline_table(data), "headline"),
    ]
    for name, title, table in _sections(data):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if name in figures:
            parts.append(_html_figure(figures[name], captions[name], name))
        if table is not None and table[1]:
            parts.append(_html_table(table, name.removesuffix(".png")))
    for title, sentences, table in data.appendix:
        parts += [f"<h2>{html.escape(title)}</h2>", *(f"<p>{html.escape(p)}</p>" for p in sentences)]
        parts.append(_html_table(table, title.lower().replace(" ", "-")))
    parts += ["<h2>Runs</h2>", _html_table(runs_table(data, bool(data.media)), "runs")]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<title>Alignment-tax report</title><link rel="icon" href="data:,">'
        f"<style>{_CSS}</style><script>{_SELFCHECK}</script></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def write_documents(data: ReportData, figures: Mapping[str, Path], out: Path) -> dict[str, Path]:
    """Write report.md and report.html into ``out``."""
    paths = {"report.md": Path(out) / "report.md", "report.html": Path(out) / "report.html"}
    atomic_write_text(paths["report.md"], markdown(data, figures))
    atomic_write_text(paths["report.html"], html_page(data, figures))
    return paths


def table_rows(table: Table) -> Sequence[Sequence[str]]:
    """The body rows of a table (for tests and the CLI)."""
    return table[1]
