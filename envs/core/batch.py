"""The second half of ``SafeRobotEnv.step`` for many MuJoCo worlds at once, in numpy over stacked state.

After a vector env has stepped every world's physics, :class:`BatchPostStep` computes what each world's
:meth:`~taxbench.envs.core.env.SafeRobotEnv.after_physics` would: observations, reward terms, costs,
termination and the info dicts, with one numpy call per quantity for all ``N`` worlds instead of one
Python pass per world. The worlds must be built alike (same robot, task and cost terms, e.g. by the same
``gymnasium.make`` call), and the components must offer the batched methods below; an env without them
is stepped world by world (:func:`batch_post_step_for` returns None).

Batched methods, each the exact counterpart of a per-world one (tests compare them bit for bit):

* robot: ``controls(actions) -> (N, nu)``, ``root_positions(qpos, sim) -> (N, 3)`` m,
  ``observations(ctx) -> (N, obs)``, ``healthy(ctx) -> (N,)`` bool;
* task (no task observation): ``rewards_batch(ctx) -> {term: (N,)}``, ``is_success_batch(ctx)``,
  ``is_terminated_batch(ctx)`` (bool arrays), ``info_batch(ctx) -> {key: (N,)}``;
* cost term: ``measure_batch(ctx) -> (N,)`` in the term's unit, offered only by terms whose state (if any) is the
  same in every world. A term without it (e.g. hazard zones placed at reset) is measured world by world with each
  world's own term object.

The worlds' state reaches the batch without a Python pass over them: each world copies its qpos, qvel (and, once a
component has asked for them, its contact forces) into its row of one array right after its physics step, on the
thread that stepped it (:meth:`~taxbench.envs.sim.mujoco_sim.MujocoSim.capture_after_step`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from taxbench.envs.core.arrays import NUMPY
from taxbench.envs.core.components import StepContext

if TYPE_CHECKING:
    from taxbench.envs.core.env import SafeRobotEnv
    from taxbench.envs.sim.mujoco_sim import MujocoSim

_ROBOT_METHODS = ("controls", "root_positions", "observations", "healthy")
_TASK_METHODS = ("rewards_batch", "is_success_batch", "is_terminated_batch", "info_batch")


def stack_rows(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The arrays as the rows of one new array (``np.array`` of equal-shaped arrays: one C-level copy per row)."""
    return np.array(arrays)


class BatchContext:
    """What one control step did in ``N`` worlds: :class:`StepContext` with a leading world axis.

    Attributes:
        sims: The worlds, after the step.
        robot: The robot (the same kind in every world).
        action: The validated, clipped actions, shape (N, action size).
        dt: Control period, s.
        qpos: Generalised positions after the step, shape (N, nq) (m, rad; free joints as position + quaternion).
        qvel: Generalised velocities after the step, shape (N, nv) (m/s, rad/s).
        root_before: Root positions before the step, m, shape (N, 3).
        root_after: Root positions after the step, m, shape (N, 3).
        root_velocity: Average root velocities over the step, m/s, shape (N, 3).
        cache: Values one component computes and others reuse within this step (e.g. health flags).
    """

    __slots__ = ("action", "cache", "dt", "qpos", "qvel", "robot", "root_after", "root_before", "root_velocity", "sims")

    def __init__(
        self,
        sims: Sequence[MujocoSim],
        robot: Any,
        action: np.ndarray,
        dt: float,
        root_before: np.ndarray,
        qpos: np.ndarray | None = None,
        qvel: np.ndarray | None = None,
        external_forces: np.ndarray | None = None,
    ) -> None:
        self.sims, self.robot, self.action, self.dt = sims, robot, action, dt
        self.qpos = stack_rows([sim.qpos_view for sim in sims]) if qpos is None else qpos
        self.qvel = stack_rows([sim.qvel_view for sim in sims]) if qvel is None else qvel
        self.root_before = root_before
        self.root_after = robot.root_positions(self.qpos, sims[0])
        self.root_velocity = (self.root_after - root_before) / dt
        self.cache: dict[str, Any] = {}
        if external_forces is not None:
            self.cache["external_forces"] = external_forces

    @property
    def num_worlds(self) -> int:
        """Number of worlds."""
        return len(self.sims)

    def external_forces(self) -> np.ndarray:
        """``cfrc_ext`` of every body in every world, shape (N, nbody, 6) (torque N·m, force N); computed once."""
        forces = self.cache.get("external_forces")
        if forces is None:
            forces = self.cache["external_forces"] = stack_rows([sim.external_forces() for sim in self.sims])
        return forces

    def body_rotations(self, body: str) -> np.ndarray:
        """Each world's rotation matrix of ``body``'s frame, shape (N, 3, 3) (as the sims hold it after the step)."""
        return stack_rows([sim.body_orientation(body) for sim in self.sims])

    def world(self, index: int, robot: Any) -> StepContext:
        """World ``index``'s own :class:`StepContext` (for components measured world by world)."""
        return StepContext(
            self.sims[index], robot, self.action[index], self.dt, self.root_before[index], self.root_after[index]
        )


def hypot_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``math.hypot`` of each pair, as an array: the same function as the per-world terms, so the same bits."""
    return NUMPY.hypot(x, y)


def _configuration(env: SafeRobotEnv) -> str:
    """The robot's, task's and cost terms' settings, as text (equal for worlds built alike)."""
    task = {key: value for key, value in vars(env.task).items() if not key.startswith("_")}
    return repr((env.robot, type(env.task).__name__, sorted(task.items()), env.safety))


def batch_post_step_for(envs: Sequence[SafeRobotEnv]) -> BatchPostStep | None:
    """A :class:`BatchPostStep` for these worlds, or None where it cannot stand in for their own ``after_physics``.

    None where the robot or task has no batched methods, the task observes, or the worlds are not built alike (the
    batch computes every world with the first world's robot, task and cost-term settings).
    """
    first = envs[0]
    if not all(callable(getattr(first.robot, name, None)) for name in _ROBOT_METHODS):
        return None
    if not all(callable(getattr(first.task, name, None)) for name in _TASK_METHODS):
        return None
    if first.task.observation_size() > 0 or len({_configuration(env) for env in envs}) > 1:
        return None
    return BatchPostStep(envs)


class BatchPostStep:
    """``SafeRobotEnv.after_physics`` of ``N`` alike worlds in numpy; see the module docstring.

    Args:
        envs: The worlds (unwrapped ``SafeRobotEnv`` on MuJoCo, built alike). The first world's robot, task and
            stateless cost terms stand for all of them.
    """

    def __init__(self, envs: Sequence[SafeRobotEnv]) -> None:
        self.envs = tuple(envs)
        first = self.envs[0]
        self.robot, self.task, self.dt = first.robot, first.task, first.sim.dt
        self.sims = [env.sim for env in self.envs]
        # Each world copies its state into its row of these as soon as it has stepped (MujocoSim.capture_after_step).
        self._nq = self.sims[0].qpos_view.size
        self._state = np.zeros((len(self.sims), self._nq + self.sims[0].qvel_view.size))
        self._forces: np.ndarray | None = None
        for sim, row in zip(self.sims, self._state, strict=True):
            sim.capture_after_step(row)
        self._reward_keys, self._cost_slots = first.reward_keys, first.cost_slots  # the info keys: the env's own

    def controls(self, actions: np.ndarray) -> np.ndarray:
        """Every world's actuator controls for its (checked) action, one row per world."""
        return self.robot.controls(actions)

    def root_positions(self) -> np.ndarray:
        """Every world's root position now, m, shape (N, 3)."""
        return self.robot.root_positions(stack_rows([sim.qpos_view for sim in self.sims]), self.sims[0])

    def after_physics(
        self, actions: np.ndarray, root_before: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """``(obs, rewards, terminated, infos)`` of the step every world just took: arrays over worlds, one dict each.

        Each row and dict equals that world's ``SafeRobotEnv.after_physics(actions[i], root_before[i])``.
        """
        state = self._state.copy()  # the rows are the worlds' own: the next step overwrites them
        forces = None if self._forces is None else self._forces.copy()
        ctx = BatchContext(
            self.sims, self.robot, actions, self.dt, root_before, state[:, : self._nq], state[:, self._nq :], forces
        )
        columns: dict[str, np.ndarray] = {}
        reward = np.zeros(ctx.num_worlds)
        for name, value in self.task.rewards_batch(ctx).items():
            columns[self._reward_keys[name]] = value
            reward += value  # summed in the task's term order, as the per-world step does
        total = np.zeros(ctx.num_worlds)
        for j, (term, cost_key, measure_key) in enumerate(self._cost_slots):
            measure = self._measure(j, term, ctx)
            cost = term.cost_batch(measure)
            columns[cost_key], columns[measure_key] = cost, measure
            total += cost
        columns["cost"] = total
        columns["violation"] = total > 0.0
        columns["is_success"] = self.task.is_success_batch(ctx)
        columns.update(self.task.info_batch(ctx))
        terminated = self.task.is_terminated_batch(ctx)
        obs = self.robot.observations(ctx)
        if self._forces is None and "external_forces" in ctx.cache:  # needed: from now on, gathered like the state
            self._forces = np.zeros(ctx.cache["external_forces"].shape)
            for sim, row, forces_row in zip(self.sims, self._state, self._forces, strict=True):
                sim.capture_after_step(row, forces_row)
        keys = list(columns)
        infos = [
            dict(zip(keys, row, strict=True)) for row in zip(*(col.tolist() for col in columns.values()), strict=True)
        ]
        return obs, reward, terminated, infos

    def _measure(self, j: int, term: Any, ctx: BatchContext) -> np.ndarray:
        """Term ``j``'s measure in every world: batched where the term can be, else world by world with its own term."""
        if callable(getattr(term, "measure_batch", None)):
            return np.asarray(term.measure_batch(ctx), dtype=np.float64)
        return np.array([float(env.safety[j].measure(ctx.world(i, env.robot))) for i, env in enumerate(self.envs)])
