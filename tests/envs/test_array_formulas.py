"""One formula, two libraries: the batched terms give the same numbers on numpy arrays and on torch tensors.

The numpy half is checked bit for bit against the per-world methods in test_batch.py; here the torch half (what the
MuJoCo Warp env runs on the device) is checked against the numpy half on identical states (float64 tensors, so any
difference is a formula difference, not float32 rounding), and the AntHazard batch functions against the per-world
task and cost term.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from taxbench.envs import SafeRobotVectorEnv
from taxbench.envs.core.batch import BatchContext
from taxbench.envs.tasks.locomotion.hazard_goal import goal_distances, hazard_depths, hazard_layout, heading_frame

torch = pytest.importorskip("torch")

N = 6
IDS = (
    "taxbench/HalfCheetahVelocity-v0",
    "taxbench/HopperVelocity-v0",
    "taxbench/Walker2dVelocity-v0",
    "taxbench/AntVelocity-v0",
)


class _TorchContext:
    """A :class:`BatchContext` whose arrays are torch tensors (float64) of the same numbers."""

    def __init__(self, ctx: BatchContext) -> None:
        t = lambda a: torch.as_tensor(np.ascontiguousarray(a))  # noqa: E731
        self.sims, self.robot, self.dt = ctx.sims, ctx.robot, ctx.dt
        self.action, self.qpos, self.qvel = t(ctx.action), t(ctx.qpos), t(ctx.qvel)
        self.root_before, self.root_after, self.root_velocity = t(ctx.root_before), t(ctx.root_after), None
        self.root_after = ctx.robot.root_positions(self.qpos, ctx.sims[0])
        self.root_velocity = (self.root_after - self.root_before) / ctx.dt
        self._forces, self._rotations = t(ctx.external_forces()), ctx.body_rotations
        self.cache: dict = {}

    @property
    def num_worlds(self) -> int:
        return len(self.qpos)

    def external_forces(self):
        return self._forces

    def body_rotations(self, body: str):
        return torch.as_tensor(self._rotations(body))


def _close(a, b) -> None:
    np.testing.assert_allclose(
        np.asarray(b.numpy() if hasattr(b, "numpy") else b, dtype=float), a, rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("env_id", IDS)
def test_every_batched_term_gives_the_same_numbers_on_numpy_and_torch(env_id):
    vec = SafeRobotVectorEnv.from_id(env_id, N, env_kwargs={"cost_terms": None, "cost_mode": "excess"})
    vec.reset(seed=5)
    rng = np.random.default_rng(0)
    env = vec.envs[0]
    for _ in range(25):  # move the worlds somewhere away from the start (contacts, joint stops)
        vec.step_lists(rng.uniform(-1, 1, (N, *vec.single_action_space.shape)))
    roots = vec.post_step.root_positions()
    actions = env.check_action(rng.uniform(-1, 1, (N, *vec.single_action_space.shape)), batch=N)
    vec.stepper.step(actions)
    ctx = BatchContext([e.sim for e in vec.envs], env.robot, actions, env.sim.dt, roots)
    tctx = _TorchContext(ctx)
    robot, task = env.robot, env.task
    _close(robot.root_positions(ctx.qpos, ctx.sims[0]), tctx.root_after)
    _close(robot.observations(ctx), robot.observations(tctx))
    assert robot.healthy(ctx).tolist() == robot.healthy(tctx).tolist()
    for (name, a), (name_t, b) in zip(task.rewards_batch(ctx).items(), task.rewards_batch(tctx).items(), strict=True):
        assert name == name_t
        _close(a, b)
    assert task.is_terminated_batch(ctx).tolist() == task.is_terminated_batch(tctx).tolist()
    for term in env.safety:
        measure, measure_t = term.measure_batch(ctx), term.measure_batch(tctx)
        _close(measure, measure_t)
        for mode in ("excess", "indicator"):
            term.mode = mode
            _close(term.cost_batch(measure), term.cost_batch(measure_t))
    vec.close()


def test_hazard_batch_functions_match_the_per_world_task_and_cost():
    envs = [gym.make("taxbench/AntHazard-v0").unwrapped for _ in range(N)]
    rng = np.random.default_rng(1)
    xy, forward, goals, centers, depths, obs, distances = [], [], [], [], [], [], []
    for i, env in enumerate(envs):
        env.reset(seed=i)
        for _ in range(10):
            env.step(rng.uniform(-1, 1, env.action_space.shape))
        root = env.robot.root_position(env.sim)
        xy.append(root)
        forward.append(env.sim.body_orientation("torso")[:, 0])
        goals.append(env.task.goal.copy())
        centers.append(env.task.zones.centers.copy())
        depths.append(env.task.zones.depth(root))
        obs.append(env.task.observation(env.sim, env.robot))
        distances.append(np.linalg.norm(env.task.goal - root[:2]))
    radius = envs[0].task.zones.radius
    arrays = [np.array(x) for x in (xy, forward, goals, centers)]
    for lib in (np, torch):
        a_xy, a_fwd, a_goal, a_centers = (x if lib is np else torch.as_tensor(x) for x in arrays)
        points = (
            lib.concatenate((a_goal[:, None], a_centers), 1)
            if lib is np
            else torch.cat((a_goal[:, None], a_centers), 1)
        )
        _close(np.array(depths), hazard_depths(a_xy, a_centers, radius))
        _close(np.array(distances), goal_distances(a_goal, a_xy))
        _close(np.array(obs), heading_frame(a_xy, a_fwd, points))
    # the layout a reset draws, from the same draws as the per-world reset
    task = envs[0].task
    start = np.array([[0.3, -0.2, 0.7]])
    angle, lateral = np.array([0.4]), np.array([[0.1, -0.3, 0.2]])
    goal, centers = hazard_layout(torch.as_tensor(start), torch.as_tensor(angle), torch.as_tensor(lateral), 3.0)
    direction = np.array([np.cos(0.4), np.sin(0.4)])
    normal = np.array([-direction[1], direction[0]])
    fractions = (np.arange(3) + 1.0) / 4.0
    want = start[0, :2] + np.outer(fractions * 3.0, direction) + np.outer(lateral[0], normal)
    _close(want, centers[0])
    _close(start[0, :2] + 3.0 * direction, goal[0])
    assert task.n_hazards == 3
    for env in envs:
        env.close()
