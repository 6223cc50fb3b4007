"""Hyper-parameters and safety intensities per env, shared by every arm so a pair differs only in its safety mechanism.

Each env has one :class:`Preset`: on-policy hyper-parameters (``ppo`` and its safety arms), off-policy ones
(``sac`` and ``sac-lag``), a quick budget, and its named safety intensities ``mild | moderate | strict``. An
:class:`Intensity` holds the dose of every mechanism at once (cost limit for Lagrangian arms, β for the
penalty, margins for the shield), so a sweep over intensities compares mechanisms at matching names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .lagrange import DEFAULT_COST_LIMIT

__all__ = [
    "INTENSITY_NAMES",
    "PRESETS",
    "Dose",
    "Intensity",
    "Preset",
    "default_cost_limit",
    "intensity_settings",
    "preset_for",
    "resolve_dose",
    "uses_cost_limit",
]

#: Arms whose dose is the cost limit alone, and those with a Lagrange multiplier (``--lagrange pid`` applies).
_LIMIT_ARMS = ("ppo-lag", "sac-lag", "cup", "cpo")
_MULTIPLIER_ARMS = ("ppo-lag", "sac-lag", "cup")

#: Named safety intensities, mildest first (``off`` means the unconstrained arm).
INTENSITY_NAMES: tuple[str, ...] = ("mild", "moderate", "strict")


@dataclass(frozen=True)
class Intensity:
    """The dose of each safety mechanism at one named intensity.

    Attributes:
        cost_limit: Episode-cost limit ``d`` of the arms with a limit (``ppo-lag``, ``sac-lag``, ``cup``, ``cpo``) and
            the budget of ``saute``, cost per episode.
        penalty_coef: β of ``ppo-penalty``, reward units per cost unit.
        shield_speed_fraction: Speed cap of ``ppo-shield`` (and the reward cap of ``ppo-track``) as a fraction of
            the env's speed limit, (0, 1].
        shield_clearance: Extra keep-out distance of the arm shield beyond the protective separation distance, m.
    """

    cost_limit: float
    penalty_coef: float
    shield_speed_fraction: float
    shield_clearance: float = 0.0

    def describe(self) -> str:
        """One line for ``taxbench envs``."""
        return f"d={self.cost_limit:g}  β={self.penalty_coef:g}  shield {self.shield_speed_fraction:g}×limit" + (
            f" +{self.shield_clearance:g} m" if self.shield_clearance else ""
        )


#: Generic doses for 1000-step episodes with 0/1 cost terms; β is in reward units per violating step.
_DEFAULT_INTENSITIES: dict[str, Intensity] = {
    "mild": Intensity(cost_limit=50.0, penalty_coef=0.1, shield_speed_fraction=1.0, shield_clearance=0.0),
    "moderate": Intensity(
        cost_limit=DEFAULT_COST_LIMIT, penalty_coef=0.5, shield_speed_fraction=0.9, shield_clearance=0.02
    ),
    "strict": Intensity(cost_limit=5.0, penalty_coef=2.0, shield_speed_fraction=0.75, shield_clearance=0.05),
}


@dataclass(frozen=True)
class Preset:
    """Training settings of one env.

    Attributes:
        n_envs: Parallel training envs (DummyVecEnv) of the on-policy arms.
        hyperparams: On-policy learner kwargs (SB3 PPO names), the same for ``ppo`` and every PPO safety arm.
        quick_steps: A budget, in env steps, at which the env's constraint already binds.
        note: Why these values (with the measurement behind them).
        sac_n_envs: Parallel training envs of the off-policy arms.
        sac_hyperparams: Off-policy learner kwargs (SB3 SAC names), the same for ``sac`` and ``sac-lag``.
        intensities: Named safety intensities (``mild``, ``moderate``, ``strict``).
    """

    n_envs: int = 1
    hyperparams: dict[str, Any] = field(default_factory=dict)
    quick_steps: int = 100_000
    note: str = "SB3 PPO defaults"
    sac_n_envs: int = 1
    sac_hyperparams: dict[str, Any] = field(default_factory=dict)
    intensities: dict[str, Intensity] = field(default_factory=lambda: dict(_DEFAULT_INTENSITIES))

    def for_arm(self, arm: str) -> tuple[int, dict[str, Any]]:
        """``(n_envs, hyperparams)`` of an arm: the off-policy settings for ``sac*`` arms, else the on-policy ones."""
        if arm.startswith("sac"):
            return self.sac_n_envs, dict(self.sac_hyperparams)
        return self.n_envs, dict(self.hyperparams)


_HALF_CHEETAH = Preset(
    n_envs=4,
    hyperparams={"n_steps": 512, "policy_kwargs": {"log_std_init": -1.0}},
    quick_steps=120_000,
    note=(
        "4 envs × 512 steps keep PPO's 2048-step rollout and run ~1.3× faster than 1 env; an initial action std "
        "of e^-1 lets HalfCheetah run at 0.8-1.7 m/s after 120k steps (0.7-1.0 m/s with std 1), seeds 0-2"
    ),
    # SAC: one rollout per 1000-step episode then as many gradient steps (SB3's 1:1 ratio, one progress row
    # per episode); λ updated each episode.
    sac_hyperparams={
        "train_freq": [1, "episode"],
        "gradient_steps": -1,
        "learning_starts": 5000,
        "lagrange_interval": 1000,
    },
    # Reward ≈ forward speed (m/s) per step: a violating step at 1.5 m/s through the 1 m/s zone gains ~0.5,
    # so β of 0.25 / 1 / 4 per violating step runs from "worth it" to "never worth it".
    intensities={
        "mild": Intensity(cost_limit=50.0, penalty_coef=0.25, shield_speed_fraction=1.0),
        "moderate": Intensity(cost_limit=25.0, penalty_coef=1.0, shield_speed_fraction=0.9),
        "strict": Intensity(cost_limit=5.0, penalty_coef=4.0, shield_speed_fraction=0.75),
    },
)

#: Panda episodes are 100 steps (the env's default limit is 25 per episode).
_PANDA_INTENSITIES = {
    "mild": Intensity(cost_limit=25.0, penalty_coef=0.1, shield_speed_fraction=1.0, shield_clearance=0.0),
    "moderate": Intensity(cost_limit=10.0, penalty_coef=0.5, shield_speed_fraction=0.9, shield_clearance=0.02),
    "strict": Intensity(cost_limit=2.0, penalty_coef=2.0, shield_speed_fraction=0.75, shield_clearance=0.05),
}

PRESETS: dict[str, Preset] = {
    "taxbench/HalfCheetahVelocity-v0": _HALF_CHEETAH,
    "taxbench/HalfCheetahSlowZone-v0": _HALF_CHEETAH,
    "taxbench/PandaReach-v0": Preset(
        n_envs=4,
        hyperparams={"n_steps": 512, "policy_kwargs": {"log_std_init": -1.0}},
        quick_steps=60_000,
        intensities=_PANDA_INTENSITIES,
        note="4 envs × 512 steps (PPO's 2048-step rollout); initial action std e^-1 (0.18 m/s per axis at "
        "0.5 m/s per unit action). At 60k steps, seeds 0-2, d=25: ppo success 0.97, violation rate 0.254; "
        "ppo-lag success 0.30, violation rate 0.122 (measured)",
    ),
    "taxbench/PandaPush-v0": Preset(intensities=_PANDA_INTENSITIES, note="SB3 PPO defaults"),
}


def preset_for(env_id: str) -> Preset:
    """The preset of an env id (SB3 defaults with 1 env and the generic intensities when none is registered)."""
    return PRESETS.get(env_id, Preset())


def intensity_settings(env_id: str, arm: str, intensity: str) -> tuple[float | None, dict[str, Any]]:
    """The dose of one arm at a named intensity on one env.

    Args:
        env_id: Gymnasium id.
        arm: Learner arm (``ppo-lag``, ``sac-lag``, ``cup``, ``cpo``, ``saute``, ``ppo-penalty``, ``ppo-shield``,
            ``ppo-track``; others get no dose).
        intensity: ``mild``, ``moderate`` or ``strict``.

    Returns:
        ``(cost_limit, extra_hyperparams)``: the cost limit for arms with one (None otherwise) and the
        learner or wrapper kwargs carrying the dose (``penalty_coef``, ``shield_speed_fraction``,
        ``shield_clearance``, ``track_speed_fraction``, ``saute_budget``: Saute's budget is the level's cost limit).

    Raises:
        ValueError: For an unknown intensity name.
    """
    levels = preset_for(env_id).intensities
    if intensity not in levels:
        raise ValueError(f"unknown intensity {intensity!r} for {env_id}; choose one of {', '.join(levels)}")
    level = levels[intensity]
    if arm in _LIMIT_ARMS:
        return level.cost_limit, {}
    if arm == "saute":
        return level.cost_limit, {"saute_budget": level.cost_limit}
    if arm == "ppo-penalty":
        return None, {"penalty_coef": level.penalty_coef}
    if arm == "ppo-shield":
        return None, {"shield_speed_fraction": level.shield_speed_fraction, "shield_clearance": level.shield_clearance}
    if arm == "ppo-track":  # the reference is held under the shield's speed cap at the same intensity
        return None, {"track_speed_fraction": level.shield_speed_fraction}
    return None, {}


def uses_cost_limit(arm: str) -> bool:
    """Whether an arm's dose is an episode-cost limit d (ppo-lag, cup, cpo, saute's budget, sac-lag)."""
    return intensity_settings("", arm, INTENSITY_NAMES[1])[0] is not None


def default_cost_limit(env_id: str) -> float:
    """An env's default episode-cost limit: its suite entry's, else :data:`DEFAULT_COST_LIMIT` (cost per episode)."""
    from taxbench.envs.registry import entry_for

    try:
        return float(entry_for(env_id).default_cost_limit)
    except ValueError:  # an env outside the suite
        return DEFAULT_COST_LIMIT


@dataclass(frozen=True)
class Dose:
    """The resolved safety dose of one run: what :func:`resolve_dose` returns.

    Attributes:
        cost_limit: Episode-cost limit ``d`` recorded with the run, cost per episode (used by arms with a
            cost limit; kept for the others so every run of a pair names the same ``d``).
        intensity: Label of the dose: ``off``, a named level (``mild`` …), or ``d<N>`` for an explicit limit;
            ``-pid`` is appended for the PID multiplier.
        hyperparams: Learner or wrapper kwargs that carry the dose (β, shield margins, ``lagrange_method``).
    """

    cost_limit: float
    intensity: str
    hyperparams: dict[str, Any] = field(default_factory=dict)


def resolve_dose(
    env_id: str,
    arm: str,
    intensity: str | None = None,
    cost_limit: float | None = None,
    lagrange: str = "grad",
) -> Dose:
    """The one route from an intensity (or an explicit cost limit) to a run's dose, for the CLI and the sweep.

    Args:
        env_id: Gymnasium id; its default limit (``EnvEntry.default_cost_limit``) applies when none is given.
        arm: Learner arm. Unconstrained arms (their own partner) always get ``off``.
        intensity: ``None``, ``off``, ``mild | moderate | strict`` or ``d<N>``. ``None`` means: the explicit
            (or default) cost limit for arms that have one, ``moderate`` for the others.
        cost_limit: Explicit episode-cost limit, cost per episode (``None``: the env's default).
        lagrange: Multiplier of arms with a cost limit, ``grad`` or ``pid``.

    Raises:
        ValueError: For an unknown intensity, an invalid cost limit, or ``d<N>`` on an arm without a cost limit.
    """
    from .lagrange import check_cost_limit
    from .registry import unconstrained_partner

    limit = check_cost_limit(default_cost_limit(env_id) if cost_limit is None else cost_limit)
    if unconstrained_partner(arm) == arm or intensity == "off":
        return Dose(limit, "off")
    uses_limit = uses_cost_limit(arm)
    if intensity is not None and intensity.startswith("d") and intensity not in INTENSITY_NAMES:
        if not uses_limit:
            raise ValueError(
                f"{intensity} sets a cost limit, which {arm} does not use: give it mild, moderate or strict"
            )
        try:
            limit = check_cost_limit(float(intensity[1:]))
        except ValueError:
            raise ValueError(
                f"unknown intensity {intensity!r}: use off, mild, moderate, strict or d<cost limit>"
            ) from None
        intensity = None
    named = intensity if intensity is not None else (None if uses_limit else INTENSITY_NAMES[1])
    label, hyperparams = f"d{limit:g}", {}
    if named is not None:
        level_limit, hyperparams = intensity_settings(env_id, arm, named)
        limit, label = (limit if level_limit is None else float(level_limit)), named
    if arm == "saute":  # the budget is the run's limit, however it was given
        hyperparams = {**hyperparams, "saute_budget": limit}
    if arm in _MULTIPLIER_ARMS and lagrange == "pid":
        hyperparams = {**hyperparams, "lagrange_method": "pid"}
        label += "-pid"
    return Dose(limit, label, dict(hyperparams))
