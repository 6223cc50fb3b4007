"""``taxbench check``: does an env honour taxbench's info contract (DESIGN.md §2)?

Works on any Gymnasium env — a registered id (a user's package registering its own ids included),
or ``module:Class`` / ``module:factory`` — and on Safety-Gymnasium-style envs whose ``step`` returns
a 6-tuple, through :class:`~taxbench.envs.core.wrappers.FromSafetyGymnasium`.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from taxbench.envs.core.wrappers import FromSafetyGymnasium

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one contract check: ``pass``, ``warn`` (allowed but worth knowing) or ``fail``."""

    name: str
    status: str
    message: str


def resolve_factory(target: str, env_kwargs: dict[str, Any] | None = None) -> Callable[[], gym.Env]:
    """A zero-argument env factory for a registered id or ``module:attribute``.

    Raises:
        ValueError: an unknown id (naming the nearest registered one) or an unimportable entry point.
    """
    kwargs = dict(env_kwargs or {})
    if ":" in target and target.split(":", 1)[0] and "/" not in target.split(":", 1)[0]:
        module_name, attribute = target.split(":", 1)
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import {target!r}: {exc}") from None
        if not callable(factory):
            raise ValueError(f"{target!r} is a {type(factory).__name__}, not an env class or factory")
        return _checked(target, lambda: factory(**kwargs), kwargs)
    if target not in gym.registry:
        from taxbench.envs.registry import unknown_env_message

        raise ValueError(unknown_env_message(target, list(gym.registry)) + " (or give module:Class)")
    return _checked(target, lambda: gym.make(target, **kwargs), kwargs)


def _checked(target: str, factory: Callable[[], gym.Env], kwargs: dict[str, Any]) -> Callable[[], gym.Env]:
    """``factory`` once built and closed, so a bad kwarg or a non-env fails here with one line."""
    try:
        env = factory()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot build {target!r} with {kwargs}: {exc}") from None
    if not isinstance(env, gym.Env) and not hasattr(env, "step"):
        raise ValueError(f"{target!r} built a {type(env).__name__}, not an env")
    env.close()
    return factory


def _adapted(factory: Callable[[], gym.Env]) -> tuple[Callable[[], gym.Env], bool]:
    """Wrap 6-tuple envs into the Gymnasium API; say whether the adapter was needed."""
    probe = factory()
    try:
        probe.reset(seed=0)
        six_tuple = len(probe.step(probe.action_space.sample())) == 6
    finally:
        probe.close()
    if six_tuple:
        return (lambda: FromSafetyGymnasium(factory())), True
    return factory, False


class _Findings:
    """Collects the first failure (and warnings) per check while rolling out."""

    def __init__(self) -> None:
        self.failures: dict[str, str] = {}
        self.warnings: dict[str, str] = {}

    def fail(self, check: str, message: str) -> None:
        self.failures.setdefault(check, message)

    def warn(self, check: str, message: str) -> None:
        self.warnings.setdefault(check, message)

    def result(self, check: str, ok_message: str) -> CheckResult:
        if check in self.failures:
            return CheckResult(check, FAIL, self.failures[check])
        if check in self.warnings:
            return CheckResult(check, WARN, self.warnings[check])
        return CheckResult(check, PASS, ok_message)


def _check_step(findings: _Findings, where: str, obs: Any, reward: float, info: dict[str, Any]) -> None:
    if not np.all(np.isfinite(np.asarray(obs, dtype=np.float64))):
        findings.fail("finite observations", f"non-finite observation {where}")
    if "cost" not in info:
        findings.fail("cost present and >= 0", f"info has no 'cost' {where}")
        return
    cost = float(info["cost"])
    if not math.isfinite(cost) or cost < 0:
        findings.fail("cost present and >= 0", f"cost = {cost} {where}")
    terms = {k: float(v) for k, v in info.items() if k.startswith("cost_")}
    if not terms:
        findings.warn("cost == sum(cost_*)", "no cost_<term> keys: the cost cannot be broken down by constraint")
    elif not math.isclose(cost, sum(terms.values()), rel_tol=1e-9, abs_tol=1e-9):
        findings.fail("cost == sum(cost_*)", f"cost = {cost} but the cost_* terms sum to {sum(terms.values())} {where}")
    if "violation" not in info:
        findings.warn("violation == (cost > 0)", "info has no 'violation' key")
    elif bool(info["violation"]) != (cost > 0):
        findings.fail("violation == (cost > 0)", f"violation = {info['violation']} with cost = {cost} {where}")
    rewards = {k: float(v) for k, v in info.items() if k.startswith("reward_")}
    if not rewards:
        findings.warn("reward == sum(reward_*)", "no reward_<term> keys: the reward is not broken down")
    elif not math.isclose(float(reward), sum(rewards.values()), rel_tol=1e-6, abs_tol=1e-6):
        total = sum(rewards.values())
        findings.fail("reward == sum(reward_*)", f"reward = {reward} but reward_* sum to {total} {where}")
    measures = [k for k, v in info.items() if k.startswith("measure_") and not math.isfinite(float(v))]
    if measures:
        findings.fail("finite observations", f"non-finite {measures[0]} {where}")
    if "is_success" not in info:
        findings.warn("is_success present", "info has no 'is_success' key: capability falls back to return")


def _check_reset(findings: _Findings, episode: int, info: dict[str, Any]) -> None:
    if "cost" not in info:
        findings.warn("cost 0 after reset", "reset info has no 'cost' (taxbench envs report cost 0 there)")
    elif float(info["cost"]) != 0.0 or any(float(v) != 0.0 for k, v in info.items() if k.startswith("cost_")):
        findings.fail("cost 0 after reset", f"reset of episode {episode} reports cost {info['cost']}")


def _rollout(env: gym.Env, seed: int, steps: int, episode_steps: int, findings: _Findings | None) -> list[tuple]:
    """Seeded random rollout; returns (obs, reward, cost, terminated) per step for the determinism check."""
    env.action_space.seed(seed)
    trace: list[tuple] = []
    episode, t = 0, 0
    obs, info = env.reset(seed=seed)
    if findings:
        _check_reset(findings, episode, info)
    for step in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace.append(
            (
                np.asarray(obs, dtype=np.float64).copy(),
                float(reward),
                float(info.get("cost", math.nan)),
                bool(terminated),
            )
        )
        if findings:
            _check_step(findings, f"at step {step} (episode {episode}, t={t})", obs, reward, info)
        t += 1
        if terminated or truncated or t >= episode_steps:
            episode, t = episode + 1, 0
            obs, info = env.reset(seed=seed + episode)
            if findings:
                _check_reset(findings, episode, info)
    return trace


def _same(a: list[tuple], b: list[tuple]) -> int | None:
    """Index of the first differing step, or None when identical."""
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if not (np.array_equal(x[0], y[0], equal_nan=True) and x[1:] == y[1:]):
            return i
    return None


def run_checks(
    target: str, *, env_kwargs: dict[str, Any] | None = None, steps: int = 200, seed: int = 0, episode_steps: int = 50
) -> list[CheckResult]:
    """Run every contract check on ``target``; see the module docstring."""
    factory, adapted = _adapted(resolve_factory(target, env_kwargs))
    results = [CheckResult("Gymnasium API", PASS, "Safety-Gymnasium 6-tuple adapted" if adapted else "5-tuple step")]
    env = factory()
    try:
        from gymnasium.utils.env_checker import check_env

        check_env(env if adapted else env.unwrapped, skip_render_check=True)
        results.append(CheckResult("gymnasium env checker", PASS, "check_env passed"))
    except Exception as exc:
        results.append(CheckResult("gymnasium env checker", FAIL, f"{type(exc).__name__}: {exc}"))
    findings = _Findings()
    try:
        first = _rollout(env, seed, steps, episode_steps, findings)
    except Exception as exc:
        findings.fail("finite observations", f"random rollout raised {type(exc).__name__}: {exc}")
        first = []
    finally:
        env.close()
    for check, ok in (
        ("cost present and >= 0", "cost >= 0 on every step"),
        ("cost == sum(cost_*)", "cost equals the sum of its terms"),
        ("violation == (cost > 0)", "violation flag consistent"),
        ("cost 0 after reset", "every reset reports cost 0"),
        ("reward == sum(reward_*)", "reward equals the sum of its terms"),
        ("finite observations", f"{steps} random steps, all finite"),
        ("is_success present", "is_success reported"),
    ):
        results.append(findings.result(check, ok))
    results.append(_determinism(factory, seed, min(steps, 100), episode_steps, first))
    return results


def _determinism(
    factory: Callable[[], gym.Env], seed: int, steps: int, episode_steps: int, first: list[tuple]
) -> CheckResult:
    name = "deterministic under a seed"
    env_a, env_b = factory(), factory()
    try:
        obs_a, _ = env_a.reset(seed=seed)
        obs_again, _ = env_a.reset(seed=seed)
        obs_b, _ = env_b.reset(seed=seed)
        if not (np.array_equal(obs_a, obs_again) and np.array_equal(obs_a, obs_b)):
            return CheckResult(name, FAIL, f"reset(seed={seed}) gives different observations")
        diverges = _same(
            _rollout(env_a, seed, steps, episode_steps, None), _rollout(env_b, seed, steps, episode_steps, None)
        )
    finally:
        env_a.close()
        env_b.close()
    if diverges is not None:
        return CheckResult(name, FAIL, f"two envs with seed {seed} and the same actions diverge at step {diverges}")
    if first and _same(first[:steps], _rollout(factory(), seed, steps, episode_steps, None)) is not None:
        return CheckResult(name, FAIL, "a fresh env does not repeat the first rollout")
    return CheckResult(name, PASS, f"same seed and actions give the same {steps} steps")
