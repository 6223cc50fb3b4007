"""taxbench environments: robots doing tasks while every safety constraint is measured.

Importing this package registers the ``taxbench/`` ids with Gymnasium.
"""

from taxbench.envs.core.components import CostTerm, SafetySpec, StepContext
from taxbench.envs.core.env import SafeRobotEnv
from taxbench.envs.core.wrappers import SafetyGymnasiumAPI
from taxbench.envs.registry import (
    ENTRIES,
    ENV_IDS,
    entry_for,
    make_hazard_env,
    make_velocity_env,
    register_all,
)

register_all()

__all__ = [
    "ENTRIES",
    "ENV_IDS",
    "CostTerm",
    "SafeRobotEnv",
    "SafetyGymnasiumAPI",
    "SafetySpec",
    "StepContext",
    "entry_for",
    "make_hazard_env",
    "make_velocity_env",
    "register_all",
]
