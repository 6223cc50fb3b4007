"""taxbench environments: robots doing tasks while every safety constraint is measured.

Importing this package registers the ``taxbench/`` ids with Gymnasium.
"""

from taxbench.envs.core.components import CostTerm, SafetySpec, StepContext
from taxbench.envs.core.env import SafeRobotEnv
from taxbench.envs.core.wrappers import SafetyGymnasiumAPI
from taxbench.envs.registry import ENTRIES, ENV_IDS, entry_for, register_all
from taxbench.envs.tasks.locomotion.factory import make_hazard_env, make_velocity_env

register_all()

#: Exported lazily: plain env users need not pay for the batched stepper (SB3's adapter is
#: ``taxbench.policies.SB3VectorEnv``).
_VECTOR_EXPORTS = ("SafeRobotVectorEnv",)


def __getattr__(name: str) -> object:
    if name in _VECTOR_EXPORTS:
        from taxbench.envs.core import vector

        return getattr(vector, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENTRIES",
    "ENV_IDS",
    "CostTerm",
    "SafeRobotEnv",
    "SafeRobotVectorEnv",
    "SafetyGymnasiumAPI",
    "SafetySpec",
    "StepContext",
    "entry_for",
    "make_hazard_env",
    "make_velocity_env",
    "register_all",
]
