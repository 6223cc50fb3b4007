"""Learners of taxbench: SB3 PPO and SAC, and their safety arms (Lagrangian, PID-Lagrangian, penalty, shield).

Build a learner by arm name with :func:`make_learner`, reload it with :func:`load_learner`, and record
per-rollout safety metrics with :class:`SafetyMetricsCallback`.
"""

from .buffers import CostRolloutBuffer, gae
from .callbacks import METRIC_KEYS, SafetyMetricsCallback
from .cost_critic import CostCritic
from .lagrange import LAGRANGE_METHODS, Lagrange, PIDLagrange, make_multiplier
from .penalty import CostPenaltyWrapper, PPOPenalty
from .ppo_lag import PPOLagrangian
from .presets import INTENSITY_NAMES, PRESETS, Intensity, Preset, intensity_settings, preset_for
from .registry import (
    ARMS,
    CONSTRAINED_ARMS,
    LAGRANGIAN_KWARGS,
    SAFETY_KWARGS,
    env_wrapper,
    load_learner,
    make_learner,
    resolve_device,
    unconstrained_partner,
)
from .sac_lag import CostReplayBuffer, SACLagrangian
from .shield import SafetyShield, filter_tcp_velocity, governor_scale

__all__ = [
    "ARMS",
    "CONSTRAINED_ARMS",
    "INTENSITY_NAMES",
    "LAGRANGE_METHODS",
    "LAGRANGIAN_KWARGS",
    "METRIC_KEYS",
    "PRESETS",
    "SAFETY_KWARGS",
    "CostCritic",
    "CostPenaltyWrapper",
    "CostReplayBuffer",
    "CostRolloutBuffer",
    "Intensity",
    "Lagrange",
    "PIDLagrange",
    "PPOLagrangian",
    "PPOPenalty",
    "Preset",
    "SACLagrangian",
    "SafetyMetricsCallback",
    "SafetyShield",
    "env_wrapper",
    "filter_tcp_velocity",
    "gae",
    "governor_scale",
    "intensity_settings",
    "load_learner",
    "make_learner",
    "make_multiplier",
    "preset_for",
    "resolve_device",
    "unconstrained_partner",
]
