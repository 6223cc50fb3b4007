"""Learning curves from run folders: return and cost per arm (mean and min–max band over seeds), cost-limit line.

Reads every ``progress.csv`` under one or more experiment folders
(``<out>/<experiment>/<env>/<arm>-<intensity>/seed<k>/``), groups runs by env and by ``<arm>-<intensity>``,
and draws one row per env: episode return (left) and episode cost (right) against env steps, with the cost
limit of the constrained runs as a dashed line. Seeds are aligned on a common step grid by linear
interpolation of each run's rollouts (rollouts that finished no episode are skipped).

Usage::

    python -m taxbench.experiments.analysis.curves runs/curves --out docs/figures/learning_curves.png
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from taxbench.policies.presets import uses_cost_limit

GRID_POINTS = 100


def _read_progress(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))

    def column(name: str) -> np.ndarray:
        return np.array([float(r[name]) if r.get(name) not in (None, "") else math.nan for r in rows])

    return {name: column(name) for name in ("steps", "ep_return", "ep_cost")}


def collect_runs(folders: Sequence[Path]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{env: {"<arm>-<intensity>": [run, ...]}}`` where a run is its progress columns plus ``cost_limit``.

    Raises:
        FileNotFoundError: If no ``progress.csv`` is found under the folders.
    """
    groups: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    found = 0
    for folder in folders:
        for progress in sorted(Path(folder).glob("**/seed*/progress.csv")):
            run_dir = progress.parent
            try:
                config = json.loads((run_dir / "config.json").read_text())["config"]
                env, label, limit = config["env_id"], f"{config['arm']}-{config['intensity']}", config["cost_limit"]
                constrained = config["intensity"] != "off" and uses_cost_limit(str(config["arm"]))
            except (OSError, ValueError, KeyError):
                env, label, limit, constrained = run_dir.parent.parent.name, run_dir.parent.name, math.nan, False
            data = _read_progress(progress)
            if len(data["steps"]) == 0:
                continue
            groups[env][label].append({**data, "cost_limit": limit if constrained else math.nan})
            found += 1
    if not found:
        raise FileNotFoundError(f"no progress.csv under {', '.join(map(str, folders))}")
    return groups


def _on_grid(runs: list[dict[str, Any]], key: str, grid: np.ndarray) -> np.ndarray:
    curves = []
    for run in runs:
        ok = np.isfinite(run[key])
        if ok.sum() >= 2:
            curve = np.interp(grid, run["steps"][ok], run[key][ok], left=np.nan, right=np.nan)
            curves.append(curve)
    return np.array(curves) if curves else np.full((1, len(grid)), np.nan)


def plot_curves(groups: dict[str, dict[str, list[dict[str, Any]]]], out: Path, title: str | None = None) -> Path:
    """Draw the figure (one row per env: return, cost) and save it to ``out`` (PNG, parents created)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted(groups)
    fig, axes = plt.subplots(len(envs), 2, figsize=(11, 3.6 * len(envs)), squeeze=False)
    for row, env in enumerate(envs):
        labels = sorted(groups[env])
        end = max(float(np.nanmax(r["steps"])) for lab in labels for r in groups[env][lab])
        grid = np.linspace(0.0, end, GRID_POINTS)
        limits = set()
        for color, label in zip(plt.cm.tab10.colors, labels, strict=False):
            runs = groups[env][label]
            limits.update(r["cost_limit"] for r in runs if math.isfinite(r["cost_limit"]))
            for col, key in enumerate(("ep_return", "ep_cost")):
                curves = _on_grid(runs, key, grid)
                with warnings.catch_warnings():  # all-NaN columns (before a run's first episode) stay NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean, low, high = np.nanmean(curves, 0), np.nanmin(curves, 0), np.nanmax(curves, 0)
                ax = axes[row, col]
                ax.plot(grid, mean, color=color, label=f"{label} ({len(runs)} seeds)")
                ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
        for limit in sorted(limits):
            axes[row, 1].axhline(limit, color="black", linestyle="--", linewidth=1, label=f"cost limit {limit:g}")
        short = env.rsplit("/", 1)[-1]
        axes[row, 0].set(title=f"{short}: episode return", xlabel="env steps", ylabel="return")
        axes[row, 1].set(title=f"{short}: episode cost", xlabel="env steps", ylabel="cost per episode")
        for ax in axes[row]:
            ax.grid(alpha=0.3)
        axes[row, 1].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m taxbench.experiments.analysis.curves FOLDER... --out FIG.png``; exit 2 on bad input."""
    parser = argparse.ArgumentParser(prog="taxbench-curves", description=__doc__.split("\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="experiment folders (or any folder above run folders)")
    parser.add_argument("--out", type=Path, default=Path("learning_curves.png"), help="PNG to write")
    parser.add_argument("--title", default=None, help="figure title")
    args = parser.parse_args(argv)
    try:
        path = plot_curves(collect_runs(args.folders), args.out, args.title)
    except (FileNotFoundError, ValueError) as exc:
        print(f"taxbench curves: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
