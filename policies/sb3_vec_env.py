"""SB3's ``VecEnv`` API over taxbench's batched vector env, so SB3 learners train on batched MuJoCo worlds.

Kept beside the learners (the env package imports no stable-baselines3): the batched vector env itself is
:class:`taxbench.envs.core.vector.SafeRobotVectorEnv`, a plain Gymnasium ``VectorEnv``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv

from taxbench.envs.core.vector import SafeRobotVectorEnv

__all__ = ["SB3VectorEnv"]


class SB3VectorEnv(VecEnv):
    """A :class:`SafeRobotVectorEnv` behind SB3's ``VecEnv`` API, as ``DummyVecEnv`` of ``Monitor`` envs gives it.

    ``infos`` is a list of dicts with ``TimeLimit.truncated``, ``terminal_observation`` and Monitor's
    ``episode`` (``r`` return, ``l`` length in steps, ``t`` seconds since the adapter was built) at each
    episode's end; rewards are float32, as in ``DummyVecEnv``. Seeds set with :meth:`seed` apply to the
    next reset only (world ``i`` gets ``seed + i``); later resets continue each world's RNG.

    Args:
        venv: The vector env to drive.
    """

    def __init__(self, venv: SafeRobotVectorEnv) -> None:
        self.venv = venv
        self.envs = venv.envs
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self.metadata = dict(venv.envs[0].metadata)
        self._actions: np.ndarray | None = None
        self._t_start = time.time()
        self._ep_return = np.zeros(self.num_envs)  # summed step by step, in order: Monitor's sum(rewards)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)

    def reset(self) -> np.ndarray:
        """Reset every world with the pending seeds and options."""
        obs, infos = self.venv.reset_lists(self._seeds, [opts or None for opts in self._options])
        self.reset_infos = infos
        self._ep_return[:], self._ep_length[:] = 0.0, 0
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        """Step every world (see the class docstring for ``infos``)."""
        if self._actions is None:
            raise RuntimeError("step_async() must come before step_wait()")
        obs, rewards, terminated, truncated, infos, final_obs, final_infos = self.venv.step_lists(self._actions)
        self._actions = None
        dones = terminated | truncated
        self._ep_return += rewards
        self._ep_length += 1
        for i in np.flatnonzero(~dones).tolist():
            infos[i]["TimeLimit.truncated"] = False
        for i in np.flatnonzero(dones).tolist():
            self.reset_infos[i] = infos[i]  # the new episode's reset info, as DummyVecEnv keeps it
            info = final_infos[i]
            assert info is not None
            elapsed_s = round(time.time() - self._t_start, 6)
            info["episode"] = {"r": round(float(self._ep_return[i]), 6), "l": int(self._ep_length[i]), "t": elapsed_s}
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            info["terminal_observation"] = final_obs[i]
            infos[i] = info
            self._ep_return[i], self._ep_length[i] = 0.0, 0
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        """Close the vector env and its worlds (idempotent)."""
        if not self.venv.closed:
            self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One RGB frame per world (None without ``render_mode="rgb_array"``)."""
        return [env.render() if env.render_mode == "rgb_array" else None for env in self.envs]

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """An attribute of each world's ``SafeRobotEnv``."""
        return [getattr(self.envs[i], attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute on each world's ``SafeRobotEnv``."""
        for i in self._get_indices(indices):
            setattr(self.envs[i], attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        """Call a method of each world's ``SafeRobotEnv``."""
        return [getattr(self.envs[i], method_name)(*method_args, **method_kwargs) for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gymnasium.Wrapper], indices: Any = None) -> list[bool]:
        """True for ``Monitor`` (this adapter reports Monitor's ``episode`` info), else False."""
        return [issubclass(Monitor, wrapper_class) for _ in self._get_indices(indices)]
