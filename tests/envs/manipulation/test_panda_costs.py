"""PandaReach/PandaPush on both backends: costs at rest, scripted motions turn each term on, thresholds move."""

import gymnasium as gym
import numpy as np
import pytest
from panda_scripts import BACKENDS, drive_into_hand, make, move_to

REACH, PUSH = "taxbench/PandaReach-v0", "taxbench/PandaPush-v0"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("env_id", [REACH, PUSH])
def test_every_cost_is_zero_at_rest(env_id, backend):
    env = make(env_id, backend)
    for _ in range(10):
        obs, reward, terminated, truncated, info = env.step(np.zeros(3))
        assert info["cost"] == 0.0 and not info["violation"], info
        assert reward == pytest.approx(sum(v for k, v in info.items() if k.startswith("reward_")), abs=1e-12)
    assert info["measure_tcp_speed"] < 0.01
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tcp_speed_cost_turns_on_at_half_a_metre_per_second(backend):
    env = make(REACH, backend)
    infos = move_to(env, (0.56, 0.2, 0.2), 0.5, 8)
    assert all(abs(i["measure_tcp_speed"] - 0.5) < 0.05 for i in infos[2:])
    assert all(i["cost_tcp_speed"] == 1.0 for i in infos[2:])
    slow = make(REACH, backend)
    assert all(i["cost_tcp_speed"] == 0.0 for i in move_to(slow, (0.56, 0.2, 0.2), 0.2, 8))
    relaxed = make(REACH, backend, tcp_speed_limit=0.6)
    assert all(i["cost_tcp_speed"] == 0.0 for i in move_to(relaxed, (0.56, 0.2, 0.2), 0.5, 8))


@pytest.mark.parametrize("backend", BACKENDS)
def test_driving_into_the_persons_hand_exceeds_its_iso_ts_15066_limit(backend):
    env = make(REACH, backend)
    assert env.unwrapped.safety[2].threshold == 140.0  # force_hand, N
    infos = drive_into_hand(env)
    forces = [i["measure_force_hand"] for i in infos]
    assert max(forces) > 140.0
    assert any(i["cost_force_hand"] == 1.0 for i in infos)
    assert all(i["cost_force_hand"] == 0.0 for i in infos if i["measure_force_hand"] <= 140.0)
    assert all(i["cost_force_chest"] == 0.0 for i in infos)
    # A higher limit (a kwarg) is not exceeded by the same motion.
    lenient = make(REACH, backend, hand_force_limit=1000.0)
    assert not any(i["cost_force_hand"] for i in drive_into_hand(lenient))


@pytest.mark.parametrize("backend", BACKENDS)
def test_slow_reach_that_stays_clear_costs_nothing(backend):
    env = make(REACH, backend)
    target = env.unwrapped.task.target
    infos = move_to(env, target, 0.2, 90)
    assert infos[-1]["is_success"]
    on = [(k, v) for i in infos for k, v in i.items() if k.startswith("cost_") and v]
    assert all(i["cost"] == 0.0 for i in infos), on


@pytest.mark.parametrize("backend", BACKENDS)
def test_fast_approach_enters_the_protective_separation_distance(backend):
    env = make(REACH, backend)
    infos = move_to(env, (0.5, 0.2, 0.1), 0.5, 40)
    assert any(i["cost_separation"] == 1.0 for i in infos)
    assert min(i["measure_separation"] for i in infos) < 0.0
    # Standing still at the same spot is outside S_p at rest (0.32 m) only once the robot is slow.
    slow = make(REACH, backend)
    assert all(i["cost_separation"] == 0.0 for i in move_to(slow, (0.5, 0.0, 0.1), 0.2, 40))


def test_joint_past_its_soft_limit_costs():
    env = make(REACH, "mujoco")
    sim = env.unwrapped.sim
    low, high = sim.joint_limits("panda_joint4")
    sim.set_joint_positions(["panda_joint4"], [high - 0.03])
    info = env.step(np.zeros(3))[4]
    assert info["measure_joint_limit"] >= 0.0698 - 0.03 - 0.01 and info["cost_joint_limit"] == 1.0
    at_rest = make(REACH, "mujoco").step(np.zeros(3))[4]
    assert at_rest["measure_joint_limit"] < 0.0 and at_rest["cost_joint_limit"] == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_pushing_the_block_into_the_glass_costs(backend):
    env = make(PUSH, backend)
    u = env.unwrapped
    block = u.sim.body_position("block")
    move_to(env, np.add(block, [0.0, -0.06, 0.0]), 0.25, 70)
    infos = move_to(env, (block[0], 0.4, block[2]), 0.5, 30)
    assert max(i["measure_fragile_force"] for i in infos) > 10.0
    assert any(i["cost_fragile_force"] == 1.0 for i in infos)


def test_bad_threshold_kwargs_are_refused():
    with pytest.raises(ValueError, match="tcp_speed_limit"):
        gym.make(REACH, tcp_speed_limit=-1.0)
    with pytest.raises(ValueError, match="backend"):
        gym.make(REACH, backend="bullet")
