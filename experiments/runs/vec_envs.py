"""The training envs of a run: its arm's wrapper, Monitor, and SB3's VecEnv (batched MuJoCo worlds where possible).

:func:`make_vec_env` is what training, the budget evaluations and ``taxbench bench train`` build their envs with.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from taxbench.experiments.runs.checkpoint import (
    KEEP_CHECKPOINTS,  # noqa: F401 - re-exported (moved to checkpoint.py)
    checkpoint_path,  # noqa: F401 - re-exported
    list_checkpoints,  # noqa: F401 - re-exported
)
from taxbench.experiments.runs.config import RunConfig


def arm_env_wrapper(cfg: RunConfig) -> Callable[[gymnasium.Env], gymnasium.Env] | None:
    """The wrapper the run's arm puts around each env (the ``ppo-shield`` filter), or None."""
    from taxbench.policies import env_wrapper

    return env_wrapper(cfg.arm, dict(cfg.hyperparams))


def single_env_factory(cfg: RunConfig) -> Callable[[], gymnasium.Env]:
    """A factory of one env as the run's training envs are built, before Monitor (the arm's wrapper, if any).

    The deployment probe plays on it too.
    """
    wrap = arm_env_wrapper(cfg)

    def make() -> gymnasium.Env:
        env = gymnasium.make(cfg.env_id, **dict(cfg.env_kwargs))
        return wrap(env) if wrap is not None else env

    return make


def _monitored(make_env: Callable[[], gymnasium.Env], seed: int) -> Callable[[], gymnasium.Env]:
    """A factory of ``make_env``'s env inside SB3's Monitor, its action space seeded ``seed``."""

    def make() -> gymnasium.Env:
        env = Monitor(make_env())
        env.action_space.seed(seed)
        return env

    return make


#: Set this environment variable to ``0`` to train on a ``DummyVecEnv`` even where batched physics is possible.
BATCHED_PHYSICS_ENV_VAR = "TAXBENCH_BATCHED_PHYSICS"


def make_vec_env(cfg: RunConfig, *, batched: bool | None = None) -> VecEnv:
    """Build the ``n_envs`` training envs (arm wrapper, then Monitor) seeded ``seed``, ``seed + 1``, and so on.

    With ``n_envs > 1``, no arm wrapper and a MuJoCo ``SafeRobotEnv``, the worlds are stepped together by
    :class:`~taxbench.envs.core.vector.SafeRobotVectorEnv` (bit-identical to the ``DummyVecEnv``, faster);
    ``batched=False`` or ``TAXBENCH_BATCHED_PHYSICS=0`` keeps the ``DummyVecEnv``.
    """
    wrap = arm_env_wrapper(cfg)
    if batched is None:
        batched = os.environ.get(BATCHED_PHYSICS_ENV_VAR, "1") != "0"
    if batched and cfg.n_envs > 1 and wrap is None:
        from taxbench.envs.core.vector import NotBatchableError, SafeRobotVectorEnv
        from taxbench.policies.sb3_vec_env import SB3VectorEnv

        try:
            vec = SafeRobotVectorEnv.from_id(cfg.env_id, cfg.n_envs, env_kwargs=dict(cfg.env_kwargs), tune_threads=True)
        except NotBatchableError:
            pass
        else:
            for i, env in enumerate(vec.envs):
                env.action_space.seed(cfg.seed + i)
            batched_venv = SB3VectorEnv(vec)
            batched_venv.seed(cfg.seed)
            return batched_venv
    make_env = single_env_factory(cfg)
    venv = DummyVecEnv([_monitored(make_env, cfg.seed + i) for i in range(cfg.n_envs)])
    venv.seed(cfg.seed)
    return venv
