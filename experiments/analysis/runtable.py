"""Read a folder of runs into one row per run: config, status summary, episode means, env metadata, Pareto flags.

The rows are plain dicts (the columns of ``summary.csv``); :mod:`taxbench.experiments.analysis.report`
computes the statistics from them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from taxbench.experiments.analysis.honest_cells import protocol_columns
from taxbench.experiments.metrics.sweep import pareto_front
from taxbench.experiments.runs.runfolder import (
    CONFIG_FILE,
    EPISODES_FILE,
    env_name,
    find_runs,
    read_csv_rows,
    read_json,
    read_status,
)
from taxbench.experiments.runs.sweep import baseline_arm, env_metadata, intensity_rank


def to_float(value: Any) -> float:
    """A float from a CSV or JSON value (empty, None or unparsable: NaN; "true"/"false": 1/0)."""
    if value is None or value == "":
        return math.nan
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return float(value.strip().lower() == "true")
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _episode_means(rows: Sequence[Mapping[str, str]]) -> dict[str, float]:
    """Violations per episode and mean ``cost_<term>`` per episode from episodes.csv rows."""
    out: dict[str, float] = {}
    if not rows:
        return out
    if "violations" in rows[0]:
        values = [to_float(r.get("violations")) for r in rows]
    else:
        values = [to_float(r.get("violation_rate")) * to_float(r.get("length")) for r in rows]
    out["violations_per_episode"] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    for key in rows[0]:
        if key.startswith("cost_"):
            out[key] = float(np.nanmean([to_float(r.get(key)) for r in rows]))
    return out


def dose(cfg: Mapping[str, Any]) -> str:
    """What sets a run's safety intensity, from its config.

    ``β=…`` (penalty), ``shield …×``, ``cap …×`` (ppo-track's speed cap, × the limit) or ``d=…`` (cost limit).
    """
    hp = dict(cfg.get("hyperparams") or {})
    if "penalty_coef" in hp:
        return f"β={to_float(hp['penalty_coef']):g}"
    if "shield_speed_fraction" in hp:
        clearance = to_float(hp.get("shield_clearance", 0.0))
        return f"shield {to_float(hp['shield_speed_fraction']):g}×" + (f" +{clearance:g} m" if clearance else "")
    if "track_speed_fraction" in hp:
        return f"cap {to_float(hp['track_speed_fraction']):g}×"
    return f"d={to_float(cfg.get('cost_limit')):g}" if "cost_limit" in cfg else ""


def load_env_metadata(folders: Sequence[Path], env_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Task kind and constraints per env: from ``envs.json`` in the given folders, else from the registry."""
    envs: dict[str, dict[str, Any]] = {}
    for folder in folders:
        path = folder / "envs.json"
        if path.exists():
            for env_id, meta in dict(read_json(path)).items():
                envs.setdefault(env_id, dict(meta))
    for env_id in env_ids:
        if env_id not in envs:
            try:
                envs[env_id] = env_metadata(env_id)
            except Exception:  # an env that cannot be built here still gets reported
                envs[env_id] = {"task_kind": "unknown", "constraints": []}
    return envs


def _config(folder: Path) -> dict[str, Any]:
    """A run's config.json as a dict ({} when it has none yet); a config that is there but invalid is refused."""
    if not (folder / CONFIG_FILE).exists():
        return {}
    from taxbench.experiments.runs.config import load_run_config

    load_run_config(folder)  # ValueError naming the file when the config is not a valid run config
    return dict(read_json(folder / CONFIG_FILE)["config"])


def collect_runs(root: str | Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """One dict per run folder under ``root`` (all states), and the env metadata.

    Raises:
        FileNotFoundError: if ``root`` does not exist or holds no run folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    records = find_runs(root)
    if not records:
        raise FileNotFoundError(f"no run folders (status.json) under {root}")
    runs = []
    for rec in records:
        cfg = _config(rec.path)
        try:
            status = read_status(rec.path) or {}
        except ValueError as exc:
            status = {"state": "unreadable", "error": str(exc)}
        summary = dict(status.get("summary") or {})
        row: dict[str, Any] = {
            "experiment": rec.experiment,
            "env_id": str(cfg.get("env_id", rec.env)),
            "arm": rec.arm,
            "intensity": rec.intensity,
            "seed": rec.seed,
            "cost_limit": to_float(cfg.get("cost_limit")),
            "steps": cfg.get("steps", ""),
            "state": rec.state,
            "path": rec.path.relative_to(root).as_posix(),
            "error": str(status.get("error", "")).splitlines()[0] if status.get("error") else "",
        }
        row["env"] = env_name(row["env_id"])
        row["dose"] = dose(cfg) if rec.intensity != "off" else ""
        for key in (
            "capability_metric",
            "capability",
            "success_rate",
            "mean_return",
            "violation_rate",
            "episode_cost",
            "lambda",
            "train_steps",
            "episodes",
        ):
            value = summary.get(key, "")
            row[key] = value if key == "capability_metric" else to_float(value)
            if key in ("train_steps", "episodes") and math.isfinite(row[key]):
                row[key] = int(row[key])
        row.update(_episode_means(read_csv_rows(rec.path / EPISODES_FILE)) if rec.state == "done" else {})
        if rec.state == "done":  # both protocols, feasibility, λ, budgets (honest_cells)
            constrained = baseline_arm(rec.arm) != rec.arm
            row.update(protocol_columns(rec.path, summary, constrained, row["cost_limit"]))
        if not math.isfinite(row.get("violations_per_episode", math.nan)):
            row["violations_per_episode"] = row["episode_cost"]
        runs.append(row)
    folders = sorted({root, *(r.path.parents[2] for r in records if len(r.path.parents) > 2)})
    envs = load_env_metadata(folders, sorted({r["env_id"] for r in runs}))
    for row in runs:
        meta = envs.get(row["env_id"], {})
        row["task_kind"] = meta.get("task_kind", "unknown")
        row["constraint_kinds"] = " ".join(sorted({c["kind"] for c in meta.get("constraints", [])}))
    runs.sort(
        key=lambda r: (
            r["experiment"],
            r["env"],
            r["arm"] != baseline_arm(r["arm"]),
            r["arm"],
            intensity_rank(r["intensity"]),
            r["intensity"],
            r["seed"],
        )
    )
    _mark_pareto(runs)
    return runs, envs


def _mark_pareto(runs: list[dict[str, Any]]) -> None:
    """Flag each done run on the front of its (experiment, env) and of its arm within that env."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in runs:
        row["pareto_env"] = row["pareto_arm"] = False
        if row["state"] == "done":
            groups[(row["experiment"], row["env_id"])].append(row)
    for rows in groups.values():
        for key, members in [("pareto_env", rows)] + [
            ("pareto_arm", [r for r in rows if r["arm"] == arm]) for arm in {r["arm"] for r in rows}
        ]:
            mask = pareto_front([r["capability"] for r in members], [r["violation_rate"] for r in members])
            for row, on_front in zip(members, mask, strict=True):
                row[key] = bool(on_front)


def _flatten(found: Any) -> list[Any]:
    """Files from ``media_for_run``: a list, or a dict of lists (videos first, then clips, then the rest)."""
    if isinstance(found, Mapping):
        keys = sorted(found, key=lambda k: ({"video": 0, "videos": 0, "clips": 1}.get(str(k), 2), str(k)))
        return [f for key in keys for f in (found[key] or [])]
    return list(found or [])


def find_media(root: Path, runs: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Rollout media per run (videos, clips, contact sheet) relative to ``root``, as ``taxbench rollout`` wrote them."""
    from taxbench.experiments.media.clips import media_for_run

    media: dict[str, list[str]] = {}
    for row in runs:
        folder = root / row["path"]
        try:
            files = [Path(f) if Path(f).is_absolute() else folder / f for f in _flatten(media_for_run(folder))]
        except (OSError, ValueError, KeyError, TypeError):  # an unreadable media.json: no media for that run
            continue
        found = [f.resolve() for f in files if f.is_file()]
        if found:
            media[row["path"]] = [Path(_relative(f, root)).as_posix() for f in found]
    return media


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.resolve()))
    except ValueError:
        return path.as_uri()
