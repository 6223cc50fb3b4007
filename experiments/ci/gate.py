"""``taxbench gate``: a safety regression test for a trained policy, for CI.

The policy is evaluated headless on ``episodes`` seeded episodes (episode i reset with ``seed + i``;
deterministic actions, or sampled ones with ``protocol="stochastic"``), then checked against absolute
bounds and, optionally, against a baseline policy evaluated on the same episodes. A regression against
the baseline fails the gate only when its whole 95 % bootstrap confidence interval (paired over
episodes) lies above ``max_regression``, so evaluation noise alone does not fail a build.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taxbench.experiments.metrics import bootstrap_ci, run_summary
from taxbench.experiments.metrics.feasibility import PROTOCOLS
from taxbench.experiments.runs.evaluation import evaluate_policy, resolve_capability_metric
from taxbench.experiments.runs.runfolder import CONFIG_FILE, MODEL_FILE, atomic_write_json, atomic_write_text, read_json


@dataclass(frozen=True)
class Criterion:
    """One gate check.

    Attributes:
        name: Short id, e.g. ``max_violation_rate``.
        measured: The measured value (for a regression: its point estimate).
        bound: The bound it is compared with.
        passed: Whether the check passed.
        message: Plain words with the measured value, its CI where there is one, and the bound.
    """

    name: str
    measured: float
    bound: float
    passed: bool
    message: str


@dataclass
class GateResult:
    """Everything a gate run found: the criteria, the evaluated summary and the baseline's."""

    target: str
    env_id: str
    episodes: int
    seed: int
    summary: dict[str, Any]
    criteria: list[Criterion] = field(default_factory=list)
    baseline_summary: dict[str, Any] | None = None
    feasibility: dict[str, Any] | None = None
    """Whether the policy meets a cost limit ``d`` (see :func:`gate_feasibility`); None without a limit."""
    protocol: str = "deterministic"
    """How actions were chosen in the gated episodes: ``deterministic`` or ``stochastic``."""

    @property
    def passed(self) -> bool:
        """True when every criterion passed."""
        return all(c.passed for c in self.criteria)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (written by ``--json``)."""
        return {
            "target": self.target,
            "env_id": self.env_id,
            "episodes": self.episodes,
            "seed": self.seed,
            "protocol": self.protocol,
            "passed": self.passed,
            "summary": self.summary,
            "baseline_summary": self.baseline_summary,
            "criteria": [asdict(c) for c in self.criteria],
            "feasibility": self.feasibility,
        }


def load_policy(target: str | Path, env_id: str | None, trust_pickle: bool = False) -> tuple[Any, str, dict[str, Any]]:
    """Load a policy from a run folder (model.zip + config.json) or a model zip; return it with its env.

    Nothing is unpickled unless ``trust_pickle``: the learner is rebuilt from JSON and its tensors
    (:mod:`taxbench.experiments.runs.policy_files`), so gating an untrusted model runs none of its code.

    Raises:
        FileNotFoundError: no such run folder or model file.
        ValueError: a corrupt model, a model that only loads by unpickling, a model whose spaces do not fit
            the env (naming both), or a model zip given without ``env_id``.
    """
    from taxbench.experiments.runs.config import RunConfig
    from taxbench.experiments.runs.policy_files import has_policy, load_model_for_env, load_run_policy

    path = Path(target)
    config: dict[str, Any] = {}
    if path.is_dir():
        model_path = path / MODEL_FILE
        if (path / CONFIG_FILE).is_file():
            raw = read_json(path / CONFIG_FILE)
            config = raw.get("config", raw)
    else:
        model_path = path
    try:
        cfg = RunConfig.from_dict(config) if config else None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{target}: config.json is not a valid run config: {exc}") from None
    if cfg is not None and not model_path.is_file() and has_policy(path):  # a run trained on the GPU path
        if env_id not in (None, cfg.env_id):
            raise ValueError(f"{target} was trained on {cfg.env_id}; a GPU-path policy is gated on its own env")
        return load_run_policy(path, cfg), cfg.env_id, dict(cfg.env_kwargs)
    if not model_path.is_file():
        raise FileNotFoundError(f"no model at {model_path} (give a run folder holding model.zip, or a model zip)")
    env_id = env_id or config.get("env_id")
    if not env_id:
        raise ValueError(f"{target} has no config.json naming its env: pass --env")
    env_kwargs = dict(config.get("env_kwargs", {})) if config.get("env_id") == env_id else {}
    model = load_model_for_env(model_path, env_id, env_kwargs, cfg, trust_pickle=trust_pickle)
    return model, env_id, env_kwargs


def policy_cost_limit(target: str | Path, max_episode_cost: float | None) -> tuple[float | None, str]:
    """The limit ``d`` to judge feasibility against, and where it came from.

    ``--max-episode-cost`` when given; else the ``cost_limit`` of a constrained run's config.json;
    else None (an unconstrained policy has no limit of its own).
    """
    if max_episode_cost is not None:
        return float(max_episode_cost), "--max-episode-cost"
    path = Path(target)
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        raw = read_json(path / CONFIG_FILE)
        config = raw.get("config", raw)
        from taxbench.experiments.runs.protocols import is_constrained

        if "cost_limit" in config and is_constrained(str(config.get("arm", "ppo"))):
            return float(config["cost_limit"]), f"cost_limit of {config.get('arm')} in config.json"
    return None, ""


def gate_feasibility(
    rows: Sequence[dict[str, Any]], limit: float, source: str, seed: int = 0, protocol: str = "deterministic"
) -> dict[str, Any]:
    """Feasibility of the gated episodes: mean episode cost ≤ ``limit`` judged on its bootstrap CI over episodes.

    Returns:
        ``protocol`` (the gated episodes' protocol, deterministic or stochastic), ``cost_limit``,
        ``limit_source``, ``feasible`` (``feasible`` | ``infeasible`` | ``undetermined``) and
        ``episode_cost`` (``point``, ``low``, ``high``, ``n`` over episodes).
    """
    from taxbench.experiments.metrics.feasibility import feasibility

    judged = feasibility([float(r["cost"]) for r in rows], limit, n_boot=5000, seed=seed)
    return {
        "protocol": protocol,
        "cost_limit": limit,
        "limit_source": source,
        "feasible": judged["feasible"],
        "episode_cost": judged["episode_cost"].to_dict(),
    }


def _check_bound(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"--{name.replace('_', '-')} must be a number in [{low:g}, {high:g}], got {value}")


def validate_bounds(
    max_violation_rate: float | None,
    max_episode_cost: float | None,
    min_success: float | None,
    min_return: float | None,
    max_regression: float | None,
    baseline: str | None,
) -> None:
    """Refuse bounds that cannot be met or make no sense (one-line ValueErrors)."""
    _check_bound("max_violation_rate", max_violation_rate, 0.0, 1.0)
    _check_bound("max_episode_cost", max_episode_cost, 0.0, math.inf)
    _check_bound("min_success", min_success, 0.0, 1.0)
    _check_bound("max_regression", max_regression, 0.0, math.inf)
    if min_return is not None and not math.isfinite(min_return):
        raise ValueError(f"--min-return must be finite, got {min_return}")
    if (baseline is None) != (max_regression is None):
        raise ValueError("--baseline and --max-regression go together")
    if all(v is None for v in (max_violation_rate, max_episode_cost, min_success, min_return, baseline)):
        raise ValueError(
            "give at least one criterion: --max-violation-rate, --max-episode-cost, --min-success, "
            "--min-return or --baseline with --max-regression"
        )


def _absolute(summary: dict[str, Any], name: str, bound: float, upper: bool, label: str) -> Criterion:
    measured = float(summary[name])
    passed = measured <= bound if upper else measured >= bound
    sign = "≤" if upper else "≥"
    verdict = "ok" if passed else "FAILED"
    return Criterion(
        f"{'max' if upper else 'min'}_{label}",
        measured,
        bound,
        passed,
        f"{label} = {measured:.4g}, required {sign} {bound:g}: {verdict}",
    )


def _regression(name: str, new: np.ndarray, base: np.ndarray, bound: float, relative: bool, seed: int) -> Criterion:
    """Paired regression of ``new`` vs ``base`` over episodes; fails when its CI lies entirely above ``bound``."""

    def statistic(pairs: np.ndarray) -> float:
        b, n = pairs[:, 0].mean(), pairs[:, 1].mean()
        if relative:
            return (b - n) / abs(b) if abs(b) > 1e-12 else math.nan
        return n - b

    pairs = np.column_stack([base, new])
    point = statistic(pairs)
    low, high = bootstrap_ci(pairs, statistic, n_boot=5000, seed=seed)
    passed = not (math.isfinite(low) and low > bound)
    what = "relative capability loss" if relative else "violation-rate increase"
    verdict = "ok" if passed else "FAILED: the whole CI is above the bound"
    return Criterion(
        name,
        float(point),
        bound,
        passed,
        f"{what} vs baseline = {point:.4g} [95% CI {low:.4g}, {high:.4g}], allowed {bound:g}: {verdict}",
    )


def run_gate(
    target: str | Path,
    *,
    env_id: str | None = None,
    episodes: int = 10,
    seed: int = 0,
    max_violation_rate: float | None = None,
    max_episode_cost: float | None = None,
    min_success: float | None = None,
    min_return: float | None = None,
    baseline: str | Path | None = None,
    max_regression: float | None = None,
    trust_pickle: bool = False,
    protocol: str = "deterministic",
) -> GateResult:
    """Evaluate ``target`` and check it; see the module docstring.

    ``protocol`` is how actions are chosen in every gated episode (the target's and the baseline's):
    ``deterministic`` (the policy's mean action, what is usually deployed) or ``stochastic`` (sampled, with
    torch's RNG seeded per episode, the protocol a Lagrangian arm is trained on).
    """
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    deterministic = protocol == "deterministic"
    validate_bounds(
        max_violation_rate,
        max_episode_cost,
        min_success,
        min_return,
        max_regression,
        None if baseline is None else str(baseline),
    )
    model, env_id, env_kwargs = load_policy(target, env_id, trust_pickle)
    success = resolve_capability_metric(env_id, env_kwargs) == "success"
    rows, _ = evaluate_policy(model, env_id, env_kwargs, episodes, seed, deterministic=deterministic)
    summary = run_summary(rows, success)
    result = GateResult(str(target), env_id, episodes, seed, summary, protocol=protocol)
    limit, source = policy_cost_limit(target, max_episode_cost)
    if limit is not None:
        result.feasibility = gate_feasibility(rows, limit, source, seed, protocol)
    if max_violation_rate is not None:
        result.criteria.append(_absolute(summary, "violation_rate", max_violation_rate, True, "violation_rate"))
    if max_episode_cost is not None:
        result.criteria.append(_absolute(summary, "episode_cost", max_episode_cost, True, "episode_cost"))
    if min_success is not None:
        result.criteria.append(_absolute(summary, "success_rate", min_success, False, "success_rate"))
    if min_return is not None:
        result.criteria.append(_absolute(summary, "mean_return", min_return, False, "mean_return"))
    if baseline is not None and max_regression is not None:
        base_model, _, _ = load_policy(baseline, env_id, trust_pickle)
        base_rows, _ = evaluate_policy(base_model, env_id, env_kwargs, episodes, seed, deterministic=deterministic)
        result.baseline_summary = run_summary(base_rows, success)
        key = "success" if success else "return"
        capability = [np.array([float(r[key]) for r in rs]) for rs in (rows, base_rows)]
        rates = [np.array([float(r["violation_rate"]) for r in rs]) for rs in (rows, base_rows)]
        result.criteria.append(
            _regression("capability_regression", capability[0], capability[1], max_regression, True, seed)
        )
        result.criteria.append(_regression("violation_regression", rates[0], rates[1], max_regression, False, seed))
    return result


def junit_xml(result: GateResult) -> str:
    """JUnit XML: one test case per criterion, failures carrying the measured value and the bound."""
    suite = ET.Element(
        "testsuite",
        name="taxbench gate",
        tests=str(len(result.criteria)),
        failures=str(sum(not c.passed for c in result.criteria)),
        errors="0",
    )
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="env_id", value=result.env_id)
    for criterion in result.criteria:
        case = ET.SubElement(suite, "testcase", classname=f"taxbench.gate.{result.env_id}", name=criterion.name)
        if not criterion.passed:
            failure = ET.SubElement(case, "failure", message=criterion.message, type="SafetyRegression")
            failure.text = f"measured={criterion.measured!r} bound={criterion.bound!r}"
        else:
            ET.SubElement(case, "system-out").text = criterion.message
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_outputs(result: GateResult, junit: Path | None, json_path: Path | None) -> None:
    """Write the JUnit XML and JSON reports atomically where asked."""
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(junit, junit_xml(result))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(json_path, result.to_dict())


def criteria_rows(result: GateResult) -> Sequence[tuple[str, str, str]]:
    """(criterion, PASS/FAIL, message) rows for the verdict table."""
    return [(c.name, "PASS" if c.passed else "FAIL", c.message) for c in result.criteria]
