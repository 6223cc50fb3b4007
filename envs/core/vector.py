"""Many MuJoCo ``SafeRobotEnv`` worlds stepped per call: a Gymnasium ``VectorEnv`` and an SB3 ``VecEnv``.

The vector env holds ``N`` ordinary :class:`~taxbench.envs.core.env.SafeRobotEnv` instances, each with
its own ``MjData``, and replaces only their physics step: every world is advanced in one call by a
:class:`~taxbench.envs.sim.mujoco_batch.MujocoBatchStepper` (``mj_step`` on a pool of threads, GIL
released). Observations, rewards, costs and infos of all worlds are then computed together in numpy over
their stacked state (:class:`~taxbench.envs.core.batch.BatchPostStep`) where the env's robot, task and cost
terms offer batched methods (the locomotion velocity envs), and by each world's own ``after_physics`` otherwise.
Either way ``N`` worlds reproduce ``N`` single envs seeded ``seed, seed + 1, ...`` bit for bit.

Autoreset is Gymnasium's ``SAME_STEP`` mode (what SB3 does too): a world that terminates or reaches the
time limit is reset inside the same ``step``; the returned observation is the new episode's first one,
and the last one of the old episode travels in ``info`` (``final_obs``/``final_info`` in the Gymnasium
API, ``terminal_observation`` in the SB3 API).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from taxbench.envs.core.batch import batch_post_step_for
from taxbench.envs.core.env import SafeRobotEnv
from taxbench.envs.sim.mujoco_batch import MujocoBatchStepper
from taxbench.envs.sim.mujoco_sim import MujocoSim


class NotBatchableError(ValueError):
    """The env cannot be stepped by :class:`SafeRobotVectorEnv` (not a ``SafeRobotEnv`` on MuJoCo)."""


def batchable(env: gymnasium.Env) -> bool:
    """Whether an env can be stepped by :class:`SafeRobotVectorEnv` (a ``SafeRobotEnv`` on MuJoCo)."""
    inner = env.unwrapped
    return isinstance(inner, SafeRobotEnv) and isinstance(inner.sim, MujocoSim)


class _ThreadTuner:
    """Picks the faster of 1 and ``nthread`` stepping threads from timed calls, and checks again now and then.

    Threads pay where a world's physics is long beside the Python run on it (Ant: 1.3-1.4x one world's raw
    rate on 2 cores, 0.75-0.85x on one thread) and can cost where it is short (HalfCheetah at N <= 16: GIL
    hand-offs can make 2 threads slower than 1). The choice changes speed only: every thread count gives
    bit-identical results.
    """

    def __init__(self, nthread: int, trials: int = 12, every: int = 5000) -> None:
        self.options = (1, nthread)
        self.trials, self.every = trials, every
        self.times: dict[int, list[float]] = {k: [] for k in self.options}
        self.calls = 0
        self.choice = nthread

    def next_threads(self) -> tuple[int, bool]:
        """Threads for the next call, and whether to time it."""
        phase = self.calls % self.every
        self.calls += 1
        if phase < 2 * self.trials:
            return self.options[phase % 2], True
        return self.choice, False

    def record(self, nthread: int, seconds: float) -> None:
        """Record a timed call; after the last trial, choose the faster option (median time)."""
        self.times[nthread].append(seconds)
        if all(len(t) >= self.trials for t in self.times.values()):
            medians = {k: float(np.median(t)) for k, t in self.times.items()}
            self.choice = min(medians, key=medians.__getitem__)
            self.times = {k: [] for k in self.options}


class SafeRobotVectorEnv(VectorEnv):
    """``N`` MuJoCo ``SafeRobotEnv`` worlds whose physics is stepped in one call (autoreset ``SAME_STEP``).

    Args:
        envs: The worlds: unwrapped ``SafeRobotEnv`` instances on MuJoCo with identical spaces.
        max_episode_steps: Time limit in control steps (``truncated`` is set on reaching it); None for none.
        nthread: Threads stepping the physics, the caller's included (2 for a 2-core machine).
        tune_threads: Time calls on 1 and ``nthread`` threads now and then and use the faster (results are
            the same either way); False always uses ``nthread``.
        batched_post_step: Compute rewards, costs and observations of all worlds at once in numpy where the
            env's components allow it (:mod:`taxbench.envs.core.batch`); False runs each world's own
            ``after_physics``. Results are the same either way.
        share_model: Worlds whose compiled model equals the first world's step with the first world's ``MjModel``
            (:meth:`~taxbench.envs.sim.mujoco_sim.MujocoSim.share_model`: one set of parameters in the caches for
            all of them and one copy in memory; the same results). The shared model is then read-only: to vary
            physics per world (domain randomisation), pass False, or change the worlds' models before building the
            vector env (worlds whose model then differs keep their own).

    Raises:
        ValueError: if ``envs`` is empty, an env is not a MuJoCo ``SafeRobotEnv``, or the spaces differ.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}  # noqa: RUF012 - Gymnasium convention

    def __init__(
        self,
        envs: Sequence[SafeRobotEnv],
        *,
        max_episode_steps: int | None = None,
        nthread: int = 2,
        tune_threads: bool = False,
        batched_post_step: bool = True,
        share_model: bool = True,
    ) -> None:
        if not envs:
            raise ValueError("SafeRobotVectorEnv needs at least one env")
        if not all(isinstance(env, SafeRobotEnv) and isinstance(env.sim, MujocoSim) for env in envs):
            raise ValueError("SafeRobotVectorEnv steps unwrapped SafeRobotEnv instances on MuJoCo only")
        first = envs[0]
        if any(
            env.observation_space != first.observation_space or env.action_space != first.action_space for env in envs
        ):
            raise ValueError("every env of a SafeRobotVectorEnv must have the same observation and action spaces")
        if max_episode_steps is not None and (isinstance(max_episode_steps, bool) or max_episode_steps < 1):
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps!r}")
        self.envs = tuple(envs)
        self.num_envs = len(envs)
        self.max_episode_steps = max_episode_steps
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(first.observation_space, self.num_envs)
        self.action_space = batch_space(first.action_space, self.num_envs)
        self.render_mode = first.render_mode
        self.metadata = {**self.metadata, "render_fps": first.metadata["render_fps"]}
        if share_model:
            for env in self.envs[1:]:
                try:
                    env.sim.share_model(first.sim)  # compares the two compiled models once
                except ValueError:
                    pass  # a world whose model differs (e.g. randomised physics) keeps its own
        self.stepper = MujocoBatchStepper([env.sim for env in envs], nthread)
        #: Rewards, costs and observations of all worlds in numpy (None: world by world, see ``batched_post_step``).
        self.post_step = batch_post_step_for(self.envs) if batched_post_step else None
        self._tuner = _ThreadTuner(self.stepper.nthread) if tune_threads and self.stepper.nthread > 1 else None
        self.elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = True
        self.closed = False

    @classmethod
    def from_id(
        cls,
        env_id: str,
        num_envs: int,
        *,
        env_kwargs: dict[str, Any] | None = None,
        nthread: int = 2,
        max_episode_steps: int | None = None,
        tune_threads: bool = False,
        batched_post_step: bool = True,
        share_model: bool = True,
    ) -> SafeRobotVectorEnv:
        """Build ``num_envs`` worlds with ``gymnasium.make(env_id, **env_kwargs)``.

        Args:
            env_id: A registered id whose env is a ``SafeRobotEnv`` on MuJoCo.
            num_envs: Number of worlds.
            env_kwargs: Constructor kwargs of every world.
            nthread: Threads stepping the physics, the caller's included.
            max_episode_steps: Time limit in control steps; None takes the id's registered limit.
            tune_threads: Use the faster of 1 and ``nthread`` threads (see the class docstring).
            batched_post_step: Rewards, costs and observations of all worlds at once where possible.
            share_model: Step every world with one shared ``MjModel`` (see the class docstring).

        Raises:
            NotBatchableError: if the id does not build a MuJoCo ``SafeRobotEnv``.
            ValueError: if ``num_envs < 1``.
        """
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        kwargs = dict(env_kwargs or {})
        if max_episode_steps is not None:
            kwargs["max_episode_steps"] = max_episode_steps
        made = [gymnasium.make(env_id, **kwargs)]
        if not batchable(made[0]):
            made[0].close()
            raise NotBatchableError(f"{env_id} is not a SafeRobotEnv on MuJoCo; step it in a DummyVecEnv")
        made += [gymnasium.make(env_id, **kwargs) for _ in range(num_envs - 1)]
        spec = made[0].spec
        limit = spec.max_episode_steps if spec is not None else None
        vec = cls(
            [env.unwrapped for env in made],
            max_episode_steps=limit,
            nthread=nthread,  # type: ignore[misc]
            tune_threads=tune_threads,
            batched_post_step=batched_post_step,
            share_model=share_model,
        )
        vec.spec = spec
        return vec

    # ----------------------------------------------------------------- list-based core (shared by both APIs)
    def reset_world(
        self, index: int, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        """Reset one world (``SafeRobotEnv.reset``) and its step counter."""
        self.elapsed[index] = 0
        return self.envs[index].reset(seed=seed, options=options)

    def reset_lists(
        self, seeds: Sequence[int | None], options: Sequence[dict[str, Any] | None]
    ) -> tuple[np.ndarray, list[dict]]:
        """Reset every world with its own seed and options; observations stacked, infos as a list."""
        results = [self.reset_world(i, seeds[i], options[i]) for i in range(self.num_envs)]
        self._needs_reset = False
        return np.stack([obs for obs, _ in results]), [info for _, info in results]

    def step_lists(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict], list[np.ndarray | None], list[dict | None]]:
        """Step every world; worlds that end are reset in the same call.

        Returns:
            ``(obs, rewards, terminated, truncated, infos, final_obs, final_infos)``: stacked arrays, the
            per-world info dicts, and for each world that ended its last observation and info (else None).
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape[:1] != (self.num_envs,):
            raise ValueError(f"actions must have {self.num_envs} rows, got shape {actions.shape}")
        if self._tuner is None:
            return self._step_lists(actions)
        self.stepper.active_threads, timed = self._tuner.next_threads()
        start = time.perf_counter()
        result = self._step_lists(actions)
        if timed:
            self._tuner.record(self.stepper.active_threads, time.perf_counter() - start)
        return result

    def _step_lists(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict], list[np.ndarray | None], list[dict | None]]:
        checked = self.envs[0].check_action(actions, batch=self.num_envs)  # every world's action in one call
        if self.post_step is None:
            obs, rewards, terminated, infos = self._step_world_by_world(checked)
        else:
            roots = self.post_step.root_positions()
            self.stepper.step(self.post_step.controls(checked))
            obs, rewards, terminated, infos = self.post_step.after_physics(checked, roots)
        self.elapsed += 1
        if self.max_episode_steps is None:
            truncated = np.zeros(self.num_envs, dtype=bool)
        else:
            truncated = self.elapsed >= self.max_episode_steps
        final_obs: list[np.ndarray | None] = [None] * self.num_envs
        final_infos: list[dict | None] = [None] * self.num_envs
        for i in np.flatnonzero(terminated | truncated).tolist():  # autoreset, same step
            final_obs[i], final_infos[i] = obs[i].copy(), infos[i]
            obs[i], infos[i] = self.reset_world(i)
        return obs, rewards, terminated, truncated, infos, final_obs, final_infos

    def _step_world_by_world(self, checked: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        """Physics in one batched call; each world's ``after_physics`` as soon as its physics is done."""
        n = self.num_envs
        roots, ctrls = [], []
        for env, action in zip(self.envs, checked, strict=True):  # SafeRobotEnv.step before the physics
            _, root = env.before_physics(action, checked=True)
            roots.append(root)
            ctrls.append(env.robot.control(env.sim, action))
        obs = np.empty((n, *self.single_observation_space.shape), dtype=self.single_observation_space.dtype)
        rewards, terminated = np.zeros(n), np.zeros(n, dtype=bool)
        infos: list[dict] = [{}] * n
        for i in self.stepper.step_iter(ctrls):  # overlaps this Python with the physics of other worlds
            obs[i], rewards[i], terminated[i], infos[i] = self.envs[i].after_physics(checked[i], roots[i])
        return obs, rewards, terminated, infos

    # ----------------------------------------------------------------- Gymnasium VectorEnv API
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every world: world ``i`` gets ``seed + i`` (or ``seed[i]`` from a list)."""
        if seed is None or isinstance(seed, int | np.integer):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        obs, infos = self.reset_lists(seeds, [options] * self.num_envs)
        vector_info: dict[str, Any] = {}
        for i, info in enumerate(infos):
            vector_info = self._add_info(vector_info, info, i)
        return obs, vector_info

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every world; see the module docstring for autoreset and ``final_obs``/``final_info``."""
        obs, rewards, terminated, truncated, infos, final_obs, final_infos = self.step_lists(actions)
        vector_info: dict[str, Any] = {}
        for i, info in enumerate(infos):
            if final_obs[i] is not None:
                vector_info = self._add_info(vector_info, {"final_obs": final_obs[i], "final_info": final_infos[i]}, i)
            vector_info = self._add_info(vector_info, info, i)
        return obs, rewards, terminated, truncated, vector_info

    def render(self) -> tuple[np.ndarray | None, ...] | None:
        """One frame per world when ``render_mode="rgb_array"``."""
        if self.render_mode is None:
            return None
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        """Stop the stepping threads and close every world."""
        self.stepper.close()
        for env in self.envs:
            env.close()
