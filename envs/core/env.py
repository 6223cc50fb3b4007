"""``SafeRobotEnv``: a Gymnasium env composed of one sim, one robot, one task and a safety spec."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from taxbench.envs.core.components import CostTerm, Robot, StepContext, Task
from taxbench.envs.core.numerics import all_finite, clip


class SafeRobotEnv(gym.Env[np.ndarray, np.ndarray]):
    """A robot doing a task while every safety constraint is measured and reported.

    The env steps the physics once per call and then asks the task for its reward terms and each
    cost term for its measurement. The reward never contains a cost: both members of a pair train
    on this same env and only the learner decides what to do with ``info["cost"]``.

    ``info`` on every step (and on reset, where every cost is 0):

    * ``cost``: sum of the ``cost_<term>`` values (≥ 0); ``violation``: ``cost > 0``;
    * ``cost_<term>`` and ``measure_<term>`` (SI units, see each term's ``unit``);
    * ``reward_<term>``: the signed reward terms, which sum to the reward;
    * ``is_success``: the task's success flag; plus task diagnostics (e.g. ``x_velocity`` in m/s).

    Args:
        robot: The robot (model, action mapping, observation).
        task: What the robot must do and how it is paid.
        safety: Cost terms reported every step; an empty tuple gives an unconstrained env.
        backend: Physics engine, ``"mujoco"`` or ``"pybullet"`` where the robot supports it.
        render_mode: ``"rgb_array"`` or None.
        width: Rendered image width, pixels.
        height: Rendered image height, pixels.
        camera: Named camera to render from; None follows the robot.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}  # noqa: RUF012 - Gymnasium convention

    def __init__(
        self,
        robot: Robot,
        task: Task,
        safety: Sequence[CostTerm],
        *,
        backend: str = "mujoco",
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        names = [term.name for term in safety]
        if len(set(names)) != len(names):
            raise ValueError(f"cost term names must be unique, got {names}")
        self.robot, self.task, self.safety = robot, task, tuple(safety)
        self.backend = backend
        self.sim = robot.build_sim(task.markers(), backend)
        self.render_mode, self.width, self.height, self.camera = render_mode, width, height, camera
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.sim.dt)}
        self.action_space = robot.action_space(self.sim)
        self._action_low = self.action_space.low.astype(np.float64)
        self._action_high = self.action_space.high.astype(np.float64)
        obs_size = robot.observation(self.sim).size + task.observation_size()
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(obs_size,), dtype=np.float64)
        #: ``(term, "cost_<name>", "measure_<name>")`` per cost term, in order: the info keys each term fills.
        self.cost_slots = [(term, f"cost_{term.name}", f"measure_{term.name}") for term in self.safety]
        #: ``"reward_<term>"`` info key of each reward term.
        self.reward_keys = {term: f"reward_{term}" for term in task.reward_terms}
        self._task_observes = task.observation_size() > 0
        self._dt = self.sim.dt  # the control period is fixed at construction (render_fps above relies on it too)

    @property
    def capability_metric(self) -> str:
        """What the alignment tax is measured on: ``return`` or ``success`` (success rate), as the task declares."""
        return self.task.capability_metric

    @property
    def cost_terms(self) -> tuple[str, ...]:
        """Names of the reported cost terms."""
        return tuple(term.name for term in self.safety)

    def _observation(self) -> np.ndarray:
        if not self._task_observes:
            return self.robot.observation(self.sim)
        return np.concatenate([self.robot.observation(self.sim), self.task.observation(self.sim, self.robot)])

    def check_action(self, action: Any, batch: int | None = None) -> np.ndarray:
        """``action`` as float64, clipped to the action space; ``batch`` rows of actions if given (a vector env).

        Raises:
            ValueError: on a wrong shape or a non-finite entry.
        """
        action = np.asarray(action, dtype=np.float64)
        expected = self._action_low.shape if batch is None else (batch, *self._action_low.shape)
        if action.shape != expected:
            raise ValueError(f"action must have shape {expected}, got {action.shape}")
        if not all_finite(action):
            raise ValueError(f"action must be finite, got {action.tolist()}")
        return clip(action, self._action_low, self._action_high)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode; ``info`` carries every key of the contract with all costs at 0."""
        super().reset(seed=seed)
        self.sim.reset()
        self.robot.reset(self.sim, self.np_random)
        self.task.reset(self.sim, self.robot, self.np_random)
        self.sim.forward()
        root = self.robot.root_position(self.sim)
        ctx = StepContext(self.sim, self.robot, np.zeros(self.action_space.shape), self._dt, root, root)
        info: dict[str, Any] = {"cost": 0.0, "violation": False}
        for term, cost_key, measure_key in self.cost_slots:
            term.reset(self.sim, self.robot)
            info[cost_key] = 0.0
            info[measure_key] = float(term.measure(ctx))
        info.update({key: 0.0 for key in self.reward_keys.values()})
        info["is_success"] = bool(self.task.is_success(self.sim, self.robot))
        info.update(self.task.info(ctx))
        return self._observation(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Apply ``action`` for one control period; see the class docstring for ``info``."""
        action, root_before = self.before_physics(action)
        self.sim.step(self.robot.control(self.sim, action))
        obs, reward, terminated, info = self.after_physics(action, root_before)
        return obs, reward, terminated, False, info

    def before_physics(self, action: Any, *, checked: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Validate and clip ``action`` (unless ``checked``); return it with the root position before the step, m.

        :meth:`step` is ``before_physics`` → ``sim.step(robot.control(...))`` → :meth:`after_physics`; a vector env
        that steps many worlds' physics in one native call runs the same two halves around it (checking all its
        worlds' actions in one call first, with ``checked=True`` here).
        """
        return action if checked else self.check_action(action), self.robot.root_position(self.sim)

    def after_physics(self, action: np.ndarray, root_before: np.ndarray) -> tuple[np.ndarray, float, bool, dict]:
        """Rewards, costs, success and termination of the step just simulated: ``(obs, reward, terminated, info)``."""
        sim, robot, task = self.sim, self.robot, self.task
        ctx = StepContext(sim, robot, action, self._dt, root_before, robot.root_position(sim))
        info: dict[str, Any] = {}
        reward = 0.0
        for name, value in task.rewards(ctx).items():
            info[self.reward_keys[name]] = value
            reward += value
        total_cost = 0.0
        for term, cost_key, measure_key in self.cost_slots:
            measure = float(term.measure(ctx))
            cost = term.cost(measure)
            info[cost_key] = cost
            info[measure_key] = measure
            total_cost += cost
        info["cost"] = total_cost
        info["violation"] = total_cost > 0.0
        info["is_success"] = bool(task.is_success(sim, robot))
        info.update(task.info(ctx))
        terminated = bool(task.is_terminated(sim, robot))
        return self._observation(), float(reward), terminated, info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """RGB frame (height, width, 3) uint8 when ``render_mode="rgb_array"``."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        return self.sim.render(self.width, self.height, self.camera)

    def close(self) -> None:
        """Release the sim's renderers (safe to call twice)."""
        self.sim.close()
