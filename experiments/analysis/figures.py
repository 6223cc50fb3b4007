"""Figures of the alignment-tax report (matplotlib, headless Agg backend, PNG files).

Each function draws one figure from :class:`taxbench.experiments.report.ReportData` tables
and returns the path it wrote (or None when there is nothing to draw).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from taxbench.experiments.analysis.budget import tax_over_training_figure
from taxbench.experiments.runs.sweep import intensity_rank

if TYPE_CHECKING:
    from taxbench.experiments.analysis.report_data import ReportData

DPI = 100
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def arm_colors(arms: Sequence[str]) -> dict[str, Any]:
    """A stable colour per arm (tab10, in sorted order)."""
    cmap = plt.get_cmap("tab10")
    return {arm: cmap(i % 10) for i, arm in enumerate(sorted(set(arms)))}


def _levels(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({str(r["intensity"]) for r in rows} | {"off"}, key=lambda s: (intensity_rank(s), s))


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _band(ax: Any, xs: list[float], rows: list[Mapping[str, Any]], key: str, color: Any, label: str) -> None:
    y = [_f(r[key]) for r in rows]
    low = [_f(r[f"{key}_low"]) for r in rows]
    high = [_f(r[f"{key}_high"]) for r in rows]
    ax.plot(xs, y, marker="o", color=color, label=label)
    lo = np.where(np.isfinite(low), low, y)
    hi = np.where(np.isfinite(high), high, y)
    ax.fill_between(xs, lo, hi, color=color, alpha=0.2, linewidth=0)


def _mark_infeasible(ax: Any, xs: list[float], rows: Sequence[Mapping[str, Any]], key: str) -> None:
    """A red ✕ over each point whose constrained arm is infeasible in the report's protocol."""
    bad = [(x, _f(r[key])) for x, r in zip(xs, rows, strict=True) if r.get("feasible") == "infeasible"]
    if bad:
        ax.scatter(*zip(*bad, strict=True), marker="x", s=80, color="red", zorder=5, label="infeasible arm")


def dose_response(data: ReportData, path: Path) -> Path | None:
    """τ and g against intensity, one line per arm with its CI band; one row per env (+ all envs)."""
    if not data.cells:
        return None
    panels: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for cell in data.cells:
        panels[cell["env"]].append(cell)
    if len(panels) > 1:
        panels["all envs (mean, stratified CI)"] = list(data.headline)
    levels = _levels(data.cells)
    colors = arm_colors([c["arm"] for c in data.cells])
    fig, axes = plt.subplots(len(panels), 2, figsize=(10, 3.2 * len(panels)), squeeze=False)
    for (title, rows), row_axes in zip(panels.items(), axes, strict=True):
        for arm in sorted({r["arm"] for r in rows}):
            mine = sorted((r for r in rows if r["arm"] == arm), key=lambda r: intensity_rank(r["intensity"]))
            zero = {
                k: 0.0 for k in ("tax", "tax_low", "tax_high", "safety_gain", "safety_gain_low", "safety_gain_high")
            }
            series = [zero, *mine]
            xs = [0.0] + [float(levels.index(r["intensity"])) for r in mine]
            for ax, key in zip(row_axes, ("tax", "safety_gain"), strict=True):
                _band(ax, xs, series, key, colors[arm], arm)
                _mark_infeasible(ax, xs[1:], mine, key)
        for ax, label, key in zip(row_axes, ("alignment tax τ", "safety gain g"), ("tax", "safety_gain"), strict=True):
            if not any(math.isfinite(_f(r.get(key))) for r in rows):  # nothing to draw: say what is missing
                why = "the baseline's capability is 0" if key == "tax" else "the baseline never violated"
                ax.clear()
                ax.text(0.5, 0.5, f"{title}: {label} undefined at every intensity\n({why}; see ΔC in tax.csv)",
                        ha="center", va="center", fontsize=9, transform=ax.transAxes)  # fmt: skip
                ax.set_axis_off()
                continue
            ax.axhline(0, color="grey", linewidth=0.8)
            ax.set_xticks(range(len(levels)), levels)
            ax.set_xlabel("safety intensity")
            ax.set_ylabel(label)
            ax.set_title(f"{title}: {label}", fontsize=10)
            ax.grid(alpha=0.3)
        if row_axes[0].get_legend_handles_labels()[0]:
            row_axes[0].legend(fontsize=8)
    fig.suptitle(f"Dose-response ({data.options.aggregate} over seeds, {100 * data.options.confidence:g}% CI)")
    fig.tight_layout()
    return _save(fig, path)


def pareto(data: ReportData, path: Path) -> Path | None:
    """Capability against violation rate, every run a point, the Pareto front of each arm a step line."""
    done = [r for r in data.runs if r["state"] == "done"]
    if not done:
        return None
    envs = sorted({r["env"] for r in done})
    colors = arm_colors([r["arm"] for r in done])
    levels = _levels(done)
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 4), squeeze=False)
    for env, ax in zip(envs, axes[0], strict=True):
        rows = [r for r in done if r["env"] == env]
        for arm in sorted({r["arm"] for r in rows}):
            mine = [r for r in rows if r["arm"] == arm]
            for level in sorted({r["intensity"] for r in mine}, key=intensity_rank):
                pts = [r for r in mine if r["intensity"] == level]
                ax.scatter(
                    [_f(r["violation_rate"]) for r in pts],
                    [_f(r["capability"]) for r in pts],
                    color=colors[arm],
                    marker=_MARKERS[levels.index(level) % len(_MARKERS)],
                    alpha=0.75,
                    label=f"{arm}-{level}",
                )
            front = sorted((r for r in mine if r["pareto_arm"]), key=lambda r: _f(r["violation_rate"]))
            if front:
                ax.step(
                    [_f(r["violation_rate"]) for r in front],
                    [_f(r["capability"]) for r in front],
                    where="post",
                    color=colors[arm],
                    linewidth=1.5,
                )
        metric = rows[0].get("capability_metric") or "capability"
        ax.set_xlabel("violation rate (violating steps / steps)")
        ax.set_ylabel(f"capability ({metric})")
        ax.set_title(f"{env}: Pareto front per arm", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def breakdown_bars(data: ReportData, by: str, path: Path) -> Path | None:
    """τ and g per task type (``by="task"``) or constraint type, bars per arm × intensity with CI whiskers."""
    rows = [r for r in data.breakdown if r["by"] == by]
    if not rows:
        return None
    groups = sorted({r["group"] for r in rows})
    series = sorted({(r["arm"], r["intensity"]) for r in rows}, key=lambda s: (s[0], intensity_rank(s[1])))
    colors = arm_colors([a for a, _ in series])
    width = 0.8 / len(series)
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(groups) * 2), 3.8), squeeze=False)
    for ax, key, label in zip(axes[0], ("tax", "safety_gain"), ("alignment tax τ", "safety gain g"), strict=True):
        for j, (arm, level) in enumerate(series):
            found = {r["group"]: r for r in rows if r["arm"] == arm and r["intensity"] == level}
            xs = np.arange(len(groups)) + (j - (len(series) - 1) / 2) * width
            ys = np.array([_f(found[g][key]) if g in found else math.nan for g in groups])
            lo = np.array([_f(found[g][f"{key}_low"]) if g in found else math.nan for g in groups])
            hi = np.array([_f(found[g][f"{key}_high"]) if g in found else math.nan for g in groups])
            err = np.vstack([np.where(np.isfinite(lo), ys - lo, 0), np.where(np.isfinite(hi), hi - ys, 0)])
            shade = 0.35 + 0.65 * (intensity_rank(level) / 3 if intensity_rank(level) <= 3 else 1.0)
            ax.bar(
                xs,
                np.nan_to_num(ys),
                width,
                yerr=np.nan_to_num(err),
                color=colors[arm],
                alpha=shade,
                capsize=2,
                label=f"{arm}-{level}",
            )
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xticks(range(len(groups)), groups)
        ax.set_xlabel(f"{by} type")
        ax.set_ylabel(label)
        ax.set_title(f"{label} by {by} type", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _curve(rows: Sequence[Mapping[str, str]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(_f(r.get("steps")), _f(r.get(key))) for r in rows]
    pts = [(s, v) for s, v in pts if math.isfinite(s) and math.isfinite(v)]
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def learning_curves(data: ReportData, path: Path) -> Path | None:
    """Mean episode return and cost against steps per arm × intensity (band: min–max over seeds), cost limits dashed."""
    done = [r for r in data.runs if r["state"] == "done" and data.curves.get(r["path"])]
    if not done:
        return None
    envs = sorted({r["env"] for r in done})
    colors = arm_colors([r["arm"] for r in done])
    fig, axes = plt.subplots(len(envs), 2, figsize=(10, 3.2 * len(envs)), squeeze=False)
    for env, (ax_r, ax_c) in zip(envs, axes, strict=True):
        rows = [r for r in done if r["env"] == env]
        cells = sorted({(r["arm"], r["intensity"]) for r in rows}, key=lambda s: (s[0], intensity_rank(s[1])))
        for arm, level in cells:
            runs = [r for r in rows if r["arm"] == arm and r["intensity"] == level]
            style = "-" if level == "off" else ("--", ":", "-.")[int(intensity_rank(level)) % 3]
            for ax, key in ((ax_r, "ep_return"), (ax_c, "ep_cost")):
                curves = [_curve(data.curves[r["path"]], key) for r in runs]
                curves = [c for c in curves if c[0].size]
                if not curves:
                    continue
                grid = np.unique(np.concatenate([c[0] for c in curves]))
                ys = np.array([np.interp(grid, s, v) for s, v in curves])
                ax.plot(grid, ys.mean(axis=0), style, color=colors[arm], label=f"{arm}-{level}")
                ax.fill_between(grid, ys.min(axis=0), ys.max(axis=0), color=colors[arm], alpha=0.12, linewidth=0)
            if str(runs[0].get("dose", "")).startswith("d=") and math.isfinite(_f(runs[0]["cost_limit"])):
                ax_c.axhline(_f(runs[0]["cost_limit"]), linestyle=style, color=colors[arm], linewidth=1, alpha=0.8)
        ax_r.set_ylabel("episode return")
        ax_c.set_ylabel("episode cost (limit dashed)")
        for ax in (ax_r, ax_c):
            ax.set_xlabel("env steps")
            ax.set_title(env, fontsize=10)
            ax.grid(alpha=0.3)
        ax_r.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def break_even(data: ReportData, path: Path) -> Path | None:
    """Break-even price per violation against intensity per arm (log scale); ∞ marks arms that never pay."""
    if not data.cells:
        return None
    envs = sorted({c["env"] for c in data.cells})
    levels = [lv for lv in _levels(data.cells) if lv != "off"]
    colors = arm_colors([c["arm"] for c in data.cells])
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.8), squeeze=False)
    price = data.options.price_per_violation
    for env, ax in zip(envs, axes[0], strict=True):
        cells = [c for c in data.cells if c["env"] == env]
        finite = [
            _f(c[k])
            for c in cells
            for k in ("break_even_price", "break_even_price_low", "break_even_price_high")
            if 0 < _f(c[k]) < math.inf
        ]
        if not finite:  # no arm pays at any price: a sentence, not points on an arbitrary log axis
            never = all(_f(c["break_even_price"]) == math.inf for c in cells)
            text = "never pays at these prices" if never else "no break-even price measured (see tax.csv)"
            ax.text(0.5, 0.5, f"{env}: {text}", ha="center", va="center", fontsize=10, transform=ax.transAxes)
            ax.set_axis_off()
            continue
        top = max([*finite, price or 0, 1e-3]) * 10
        for i, arm in enumerate(sorted({c["arm"] for c in cells})):
            mine = sorted((c for c in cells if c["arm"] == arm), key=lambda c: intensity_rank(c["intensity"]))
            xs = np.array([levels.index(c["intensity"]) for c in mine]) + 0.08 * i
            ys = np.array([min(max(_f(c["break_even_price"]), top / 1e6), top) for c in mine])
            lo = np.array([min(max(_f(c["break_even_price_low"]), top / 1e6), top) for c in mine])
            hi = np.array([min(max(_f(c["break_even_price_high"]), top / 1e6), top) for c in mine])
            err = np.vstack([np.nan_to_num(ys - lo), np.nan_to_num(hi - ys)]).clip(min=0)
            ax.errorbar(xs, ys, yerr=err, fmt="o", color=colors[arm], capsize=3, label=arm)
            for x, c in zip(xs, mine, strict=True):
                if _f(c["break_even_price"]) == math.inf:
                    ax.annotate("never pays at\nthese prices", (x, top), fontsize=7, ha="center", va="top")
        if price is not None:
            ax.axhline(price, color="black", linestyle="--", linewidth=1, label=f"your price {price:g}")
        ax.set_yscale("log")
        ax.set_ylim(top / 1e6, top * 1.5)
        ax.set_xticks(range(len(levels)), levels)
        ax.set_xlabel("safety intensity")
        unit = "value per success" if data.options.value_per_success is not None else "successes (or return units)"
        ax.set_ylabel(f"break-even price per violation\n({unit})")
        ax.set_title(f"{env}: constrained pays above the point", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


#: Figure files and what draws them, in report order.
FIGURES: tuple[tuple[str, str], ...] = (
    ("dose_response.png", "Dose-response: tax τ and safety gain g against intensity"),
    ("pareto.png", "Pareto front: capability against violation rate"),
    ("tax_by_task.png", "Tax and safety gain by task type"),
    ("tax_by_constraint.png", "Tax and safety gain by constraint type"),
    ("learning_curves.png", "Learning curves with the cost limit"),
    ("break_even.png", "Break-even violation price"),
    (
        "tax_over_training.png",
        "Tax over training: τ(t) and g(t) at log-spaced budgets (open marker: infeasible arm)",
    ),
)


def make_figures(data: ReportData, folder: Path) -> dict[str, Path]:
    """Draw every figure that has data into ``folder``; returns file name → path."""
    makers = {
        "dose_response.png": dose_response,
        "pareto.png": pareto,
        "tax_by_task.png": lambda d, p: breakdown_bars(d, "task", p),
        "tax_by_constraint.png": lambda d, p: breakdown_bars(d, "constraint", p),
        "learning_curves.png": learning_curves,
        "break_even.png": break_even,
        "tax_over_training.png": tax_over_training_figure,
    }
    out = {}
    for name, _ in FIGURES:
        written = makers[name](data, Path(folder) / name)
        if written is not None:
            out[name] = written
    return out
