"""Learners of taxbench: SB3 PPO (unconstrained) and PPO-Lagrangian, with safety metrics.

Build a learner by arm name with :func:`make_learner`, reload it with :func:`load_learner`, and record
per-rollout safety metrics with :class:`SafetyMetricsCallback`.
"""

from .buffers import CostRolloutBuffer, gae
from .callbacks import METRIC_KEYS, SafetyMetricsCallback
from .cost_critic import CostCritic
from .lagrange import Lagrange
from .ppo_lag import PPOLagrangian
from .presets import PRESETS, Preset, preset_for
from .registry import ARMS, LAGRANGIAN_KWARGS, load_learner, make_learner, resolve_device

__all__ = [
    "ARMS",
    "LAGRANGIAN_KWARGS",
    "METRIC_KEYS",
    "PRESETS",
    "CostCritic",
    "CostRolloutBuffer",
    "Lagrange",
    "PPOLagrangian",
    "Preset",
    "SafetyMetricsCallback",
    "gae",
    "load_learner",
    "make_learner",
    "preset_for",
    "resolve_device",
]
