"""taxbench from Python (notebooks): :func:`pair` trains a pair as ``taxbench pair`` does, :func:`load_runs` reads runs.

``pair`` goes through the command line's own parser and handler, so it has the same defaults, the same
validation (a bad value raises :class:`ValueError` with the CLI's message), the same progress bars and the
same files; it returns what those files say::

    from taxbench.experiments import load_runs, pair

    result = pair(env="taxbench/HalfCheetahVelocity-v0", steps=4096, seeds=[0, 1], out="runs")
    print(result.tax, result.tax.excludes_zero)  # τ with its 95% paired-bootstrap CI
    table = load_runs(result.folder)  # one dict per run: arm, seed, capability, violation_rate, ...
    table.column("capability")
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from taxbench.experiments.metrics.estimates import Estimate

__all__ = ["PairResult", "RunTable", "load_runs", "pair"]

#: pair.json entries that are estimates with a CI (``point``, ``low``, ``high``, ``n``).
_ESTIMATES = ("tax", "safety_gain", "capability_loss")


@dataclass(frozen=True)
class PairResult:
    """What a pair returned: the paired estimates, the run folders and where the files are.

    Attributes:
        tax: Alignment tax τ = (C_unc − C_safe)/|C_unc| with its 95 % paired-bootstrap CI over seeds.
        safety_gain: g = (V_unc − V_safe)/V_unc with its CI (violation rate V per step).
        capability_loss: ΔC = C_unc − C_safe (units of the capability metric) with its CI.
        summary: Everything ``pair.json`` holds (per-arm estimates, price of safety, n_pairs, …).
        runs: The pair's runs, one row per run (see :func:`load_runs`).
        folder: The experiment folder holding ``summary.csv`` and ``pair.json``.
        exit_code: What ``taxbench pair`` would have exited with (0, or 1 when a run failed).
    """

    tax: Estimate
    safety_gain: Estimate
    capability_loss: Estimate
    summary: dict[str, Any]
    runs: RunTable
    folder: Path
    exit_code: int = 0

    @property
    def run_dirs(self) -> list[Path]:
        """The run folders of the pair, unconstrained and constrained, every seed."""
        return [Path(row["path"]) for row in self.runs]


@dataclass
class RunTable:
    """A list of runs as plain dicts (the columns of ``summary.csv``), with a few conveniences; no pandas."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]

    @property
    def columns(self) -> list[str]:
        """Every column name, in first-seen order."""
        return list(dict.fromkeys(key for row in self.rows for key in row))

    def column(self, name: str) -> list[Any]:
        """The values of one column (None where a run lacks it)."""
        return [row.get(name) for row in self.rows]

    def where(self, **equal: Any) -> RunTable:
        """The runs whose columns equal the given values, e.g. ``table.where(arm="ppo-lag", seed=0)``."""
        return RunTable([row for row in self.rows if all(row.get(k) == v for k, v in equal.items())])


def load_runs(folder: str | Path) -> RunTable:
    """Every run folder under ``folder`` (an output, experiment or run folder), one row per run.

    Rows carry the run's config (env_id, arm, intensity, seed, cost_limit, steps), its state and its evaluation
    summary (capability, mean_return, success_rate, violation_rate, episode_cost, lambda, …) and ``path``.

    Raises:
        FileNotFoundError: When ``folder`` does not exist or holds no run.
    """
    from taxbench.experiments.analysis.runtable import collect_runs

    root = Path(folder)
    rows, _ = collect_runs(root)
    for row in rows:
        row["path"] = str((root / row["path"]).resolve()) if not Path(row["path"]).is_absolute() else row["path"]
    return RunTable(rows)


class _RaisingParser(argparse.ArgumentParser):
    """The CLI's parser, raising ValueError instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def _argv(options: Mapping[str, Any]) -> list[str]:
    argv: list[str] = []
    for name, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif name == "env_kwargs":
            argv += [a for key, v in dict(value).items() for a in ("--env-kwarg", f"{key}={json.dumps(v)}")]
        elif isinstance(value, list | tuple):
            argv += [flag, *(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def pair(
    env: str | None = None,
    *,
    steps: int | None = None,
    seeds: Sequence[int] | None = None,
    safe_arm: str | None = None,
    intensity: str | None = None,
    cost_limit: float | None = None,
    lagrange: str | None = None,
    n_envs: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    device: str | None = None,
    workers: int | None = None,
    eval_episodes: int | None = None,
    out: str | Path | None = None,
    experiment: str | None = None,
    tensorboard: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> PairResult:
    """Train the unconstrained and the constrained arm on the same env and seeds, then measure the tax.

    Every argument left as None takes the ``taxbench pair`` default (see ``taxbench pair --help``): the env's
    preset budget and n_envs, seeds 0 1 2, ppo-lag at the env's default cost limit, ``./runs``.

    Args:
        env: Gymnasium id, e.g. ``taxbench/HalfCheetahVelocity-v0``.
        steps: Training budget per run, env steps.
        seeds: Seeds; each trains one run per arm.
        safe_arm: The constrained arm (``ppo-lag``, ``ppo-penalty``, ``ppo-shield``, ``sac-lag``, …).
        intensity: Named dose (``mild | moderate | strict``).
        cost_limit: Episode-cost limit d, cost per episode.
        lagrange: ``grad`` or ``pid`` multiplier.
        n_envs: Parallel envs per run.
        env_kwargs: Env constructor kwargs (thresholds, backend).
        device: Torch device (``auto``, ``cpu``, ``cuda``).
        workers: Runs trained at once.
        eval_episodes: Deterministic evaluation episodes per run.
        out: Output folder.
        experiment: Experiment name (folder under ``out``).
        tensorboard: Folder for TensorBoard event files.
        resume: Continue interrupted runs and reuse finished ones.
        overwrite: Delete runs in the way and train again.
        progress: Show the progress bars (the tables are printed as the CLI prints them).

    Raises:
        ValueError: For any bad input (the CLI's one-line message), before any run starts.
        FileExistsError: When runs are in the way and neither ``resume`` nor ``overwrite`` is given.
    """
    import taxbench.envs  # noqa: F401 - registers the ids
    from taxbench.experiments.cli.main import build_parser
    from taxbench.experiments.cli.run_cmds import cmd_pair

    options = {
        "env": env, "steps": steps, "seeds": list(seeds) if seeds is not None else None, "safe_arm": safe_arm,
        "intensity": intensity, "cost_limit": cost_limit, "lagrange": lagrange, "n_envs": n_envs,
        "env_kwargs": env_kwargs or None, "device": device, "workers": workers, "eval_episodes": eval_episodes,
        "out": out, "experiment": experiment, "tensorboard": tensorboard, "resume": resume,
        "overwrite": overwrite, "no_progress": not progress,
    }  # fmt: skip
    args = build_parser(parser_class=_RaisingParser).parse_args(["pair", *_argv(options)])
    from taxbench.experiments.cli.options import UsageError, console, err_console

    try:
        code = cmd_pair(args, console, err_console)
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    folder = Path(args.out) / args.experiment
    return _pair_result(folder, code)


def _pair_result(folder: Path, exit_code: int) -> PairResult:
    from taxbench.experiments.runs.runfolder import read_csv_rows, read_json

    summary = dict(read_json(folder / "pair.json"))
    estimates = {key: _estimate(summary.get(key)) for key in _ESTIMATES}
    rows = [dict(row) for row in read_csv_rows(folder / "summary.csv")]
    return PairResult(**estimates, summary=summary, runs=RunTable(rows), folder=folder, exit_code=exit_code)


def _estimate(saved: Any) -> Estimate:
    """An :class:`Estimate` from its pair.json form (NaN is written as null)."""
    saved = saved if isinstance(saved, Mapping) else {}

    def number(key: str) -> float:
        value = saved.get(key)
        return math.nan if value is None else float(value)

    return Estimate(number("point"), number("low"), number("high"), int(saved.get("n") or 0))
