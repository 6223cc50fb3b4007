"""Learners of taxbench: SB3 PPO, TRPO and SAC, and their safety arms (Lagrangian, penalty, shield, CUP, Saute, CPO).

Build a learner by arm name with :func:`make_learner`, save it with :func:`save_policy` and load it with
:func:`load_policy` (no code runs from the file; :func:`load_learner` is SB3's unpickling load), and record
per-rollout safety metrics with :class:`SafetyMetricsCallback`.
"""

from .buffers import CostRolloutBuffer, gae
from .callbacks import METRIC_KEYS, SafetyMetricsCallback
from .cost_critic import CostCritic
from .cpo import CPO
from .cup import CUP
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
from .safe_load import ModelLoadError, load_policy, save_policy
from .saute import SauteWrapper
from .sb3_vec_env import SB3VectorEnv
from .shield import SafetyShield, filter_tcp_velocity, governor_scale
from .track import PPOTrack

__all__ = [
    "ARMS",
    "CONSTRAINED_ARMS",
    "CPO",
    "CUP",
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
    "ModelLoadError",
    "PIDLagrange",
    "PPOLagrangian",
    "PPOPenalty",
    "PPOTrack",
    "Preset",
    "SACLagrangian",
    "SB3VectorEnv",
    "SafetyMetricsCallback",
    "SafetyShield",
    "SauteWrapper",
    "env_wrapper",
    "filter_tcp_velocity",
    "gae",
    "governor_scale",
    "intensity_settings",
    "load_learner",
    "load_policy",
    "make_learner",
    "make_multiplier",
    "preset_for",
    "resolve_device",
    "save_policy",
    "unconstrained_partner",
]
