"""The batched post-step (numpy over all worlds) gives exactly what each world's own ``after_physics`` gives."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from taxbench.envs import SafeRobotVectorEnv
from taxbench.envs.core.batch import BatchContext, batch_post_step_for
from taxbench.envs.costs.locomotion import FallCost, VelocityCost

N = 4


def _pair(env_id: str, **env_kwargs):
    """The same worlds stepped with the batched post-step and world by world."""
    return [
        SafeRobotVectorEnv.from_id(env_id, N, max_episode_steps=40, env_kwargs=env_kwargs, batched_post_step=batched)
        for batched in (True, False)
    ]


# Every term of each env in excess mode (the amount over the limit: real values, not 0/1), so a term measured
# the wrong way shows up in the cost as well as the measure; Hopper and Walker2d fall (termination resets).
@pytest.mark.parametrize(
    "env_id",
    [
        "taxbench/AntVelocity-v0",
        "taxbench/HopperVelocity-v0",
        "taxbench/Walker2dVelocity-v0",
        "taxbench/HalfCheetahSlowZone-v0",
    ],
)
def test_batched_post_step_equals_world_by_world(env_id):
    batched, plain = _pair(env_id, cost_terms=None, cost_mode="excess")
    assert batched.post_step is not None and plain.post_step is None
    for vec in (batched, plain):
        vec.reset(seed=3)
    rng = np.random.default_rng(4)
    seen_cost = ends = 0
    for _ in range(120):
        actions = rng.uniform(-1.5, 1.5, (N, *batched.single_action_space.shape))
        a = batched.step_lists(actions)
        b = plain.step_lists(actions)
        for got, want in zip(a[:4], b[:4], strict=True):
            assert np.array_equal(got, want)
        for got, want in zip(a[4], b[4], strict=True):
            assert list(got) == list(want) and got == want  # same keys, same order, same values
            assert all(type(got[k]) is type(want[k]) for k in want)
            seen_cost += got["cost"] > 0
        ends += int((a[2] | a[3]).sum())
        assert [f is None for f in a[6]] == [f is None for f in b[6]]
        assert all(f == g for f, g in zip(a[6], b[6], strict=True) if f is not None)
    assert seen_cost > 0 and ends > 0  # costs were paid and worlds were reset
    for vec in (batched, plain):
        vec.close()


def test_envs_without_batched_components_go_world_by_world():
    for env_id in ("taxbench/AntHazard-v0", "taxbench/PandaReach-v0"):  # per-world task state / no batch methods
        envs = [gym.make(env_id).unwrapped for _ in range(2)]
        assert batch_post_step_for(envs) is None
        for env in envs:
            env.close()


def test_worlds_built_differently_go_world_by_world():
    """The batch computes every world with the first world's settings, so worlds that differ must not batch."""
    ids = ("taxbench/HalfCheetahVelocity-v0", "taxbench/HalfCheetahSlowZone-v0")  # velocity limits 3.2 vs 1 m/s
    vec = SafeRobotVectorEnv([gym.make(env_id).unwrapped for env_id in ids])
    singles = [gym.make(env_id).unwrapped for env_id in ids]
    assert vec.post_step is None
    assert SafeRobotVectorEnv([gym.make(ids[1]).unwrapped for _ in ids]).post_step is not None
    vec.reset(seed=0)
    for i, env in enumerate(singles):
        env.reset(seed=i)
    for env in (*vec.envs, *singles):  # running forward at ~2.5 m/s: over the slow zone's limit, under the other
        qvel = env.sim.qvel.copy()
        qvel[0] = 2.5
        env.sim.set_state(env.sim.qpos, qvel)
    actions = np.zeros((2, 6))
    _, _, _, _, infos, *_ = vec.step_lists(actions)
    assert (
        [info["cost"] for info in infos]
        == [env.step(a)[4]["cost"] for env, a in zip(singles, actions, strict=True)]
        == [0.0, 1.0]
    )


def test_capture_after_step_copies_state_and_contact_forces():
    env = gym.make("taxbench/AntVelocity-v0").unwrapped
    env.reset(seed=0)
    env.action_space.seed(0)
    sim = env.sim
    state = np.full(sim.qpos_view.size + sim.qvel_view.size, np.nan)
    forces = np.full(sim.external_forces().shape, np.nan)
    sim.capture_after_step(state, forces)
    largest = 0.0
    for _ in range(50):
        env.step(env.action_space.sample())
        assert np.array_equal(state, np.concatenate((sim.qpos_view, sim.qvel_view)))
        assert np.array_equal(forces, sim.external_forces())
        largest = max(largest, float(np.abs(forces).max()))
    assert largest > 0  # the ant lands on the floor: the forces copied were not all zero
    sim.capture_after_step(None)
    kept = state.copy()
    env.step(env.action_space.sample())
    assert np.array_equal(state, kept)
    env.close()


@pytest.mark.parametrize("mode", ["indicator", "excess"])
@pytest.mark.parametrize(
    "term", [VelocityCost("v", 1.0, "m/s", "test", "velocity"), FallCost("fall", 0.3, "m", "test", "fall")]
)
def test_cost_batch_is_cost_of_each_measure(term, mode):
    term.mode = mode
    measures = np.array([-2.0, 0.0, 0.3, 0.3000001, 1.0, 1.5, np.inf, -np.inf, np.nan, -0.0])
    batch = term.cost_batch(measures)
    assert batch.dtype == np.float64
    assert [float(c) for c in batch] == [term.cost(float(m)) for m in measures]


@pytest.mark.parametrize(
    "env_id", ["taxbench/HopperVelocity-v0", "taxbench/Walker2dVelocity-v0", "taxbench/AntVelocity-v0"]
)
def test_batched_health_check_agrees_on_each_way_to_fail(env_id):
    """Worlds put just inside and outside each healthy range (height, pitch, state range, finiteness)."""
    envs = [gym.make(env_id).unwrapped for _ in range(12)]
    robot = envs[0].robot
    for env in envs:
        env.reset(seed=0)
    height = envs[0].sim.joint_qpos_slice(robot.root_joint[-1]).start + (0 if robot.planar else 2)
    pitch = None if robot.healthy_angle_range is None else envs[0].sim.joint_qpos_slice("rooty").start
    low, high = robot.healthy_z_range
    high = min(high, 5.0)  # Hopper has no upper bound
    edits = [
        ("q", height, low + 1e-3),
        ("q", height, low - 1e-3),
        ("q", height, high - 1e-3),
        ("q", height, high + 1e-3),
    ]
    if pitch is not None:
        low, high = robot.healthy_angle_range
        edits += [("q", pitch, low - 1e-3), ("q", pitch, high - 1e-3), ("q", pitch, high + 1e-3)]
    if robot.healthy_state_range is not None:
        edits += [("v", 3, robot.healthy_state_range[1] + 1.0)]
    edits += [("v", 0, np.nan), ("v", 1, np.inf)]
    for env, (kind, index, value) in zip(envs, edits, strict=False):
        qpos, qvel = env.sim.qpos.copy(), env.sim.qvel.copy()
        (qpos if kind == "q" else qvel)[index] = value
        env.sim.set_state(qpos, qvel)
    sims = [env.sim for env in envs]
    roots = robot.root_positions(np.array([sim.qpos_view for sim in sims]), sims[0])
    ctx = BatchContext(sims, robot, np.zeros((len(envs), envs[0].action_space.shape[0])), envs[0].sim.dt, roots)
    expected = [robot.is_healthy(sim) for sim in sims]
    assert robot.healthy(ctx).tolist() == expected
    assert True in expected and False in expected
    for env in envs:
        env.close()
