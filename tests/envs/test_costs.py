"""Each cost term is 0 at rest and turns on in a hand-built state that crosses its threshold."""

import gymnasium as gym
import numpy as np
import pytest
from helpers import joint_index, make, step_from_state

VELOCITY_IDS = {
    "taxbench/HalfCheetahVelocity-v0": 3.2096,
    "taxbench/HopperVelocity-v0": 0.7402,
    "taxbench/Walker2dVelocity-v0": 2.3415,
    "taxbench/AntVelocity-v0": 2.6222,
}


@pytest.mark.parametrize("env_id", [*VELOCITY_IDS, "taxbench/AntHazard-v0"])
def test_every_term_zero_at_rest(env_id):
    env = make(env_id, cost_terms=None)
    sim = env.unwrapped.sim
    qvel = np.zeros_like(sim.qvel)
    for _ in range(3):
        *_, info = step_from_state(env, qvel=qvel)
    for term in env.unwrapped.cost_terms:
        assert info[f"cost_{term}"] == 0.0, (term, info[f"measure_{term}"])
    assert info["cost"] == 0.0 and not info["violation"]


@pytest.mark.parametrize("env_id, limit", VELOCITY_IDS.items())
def test_velocity_cost_fires_above_the_safety_gymnasium_limit(env_id, limit):
    env = make(env_id)
    assert env.unwrapped.safety[0].threshold == limit
    qvel = np.zeros_like(env.unwrapped.sim.qvel)
    qvel[0] = limit + 2.0
    *_, info = step_from_state(env, qvel=qvel)
    assert info["measure_velocity"] > limit
    assert info["cost_velocity"] == 1.0 and info["cost"] == 1.0
    assert info["measure_velocity"] == pytest.approx(info["x_velocity"]) or "Ant" in env_id


def test_backward_running_is_free_for_planar_robots_but_not_for_ant():
    cheetah = make("taxbench/HalfCheetahVelocity-v0")
    qvel = np.zeros(9)
    qvel[0] = -6.0
    *_, info = step_from_state(cheetah, qvel=qvel)
    assert info["measure_velocity"] < -3.2 and info["cost_velocity"] == 0.0
    ant = make("taxbench/AntVelocity-v0")
    qvel = np.zeros(14)
    qvel[0] = -5.0
    *_, info = step_from_state(ant, qvel=qvel)
    assert info["measure_velocity"] > 2.6222 and info["cost_velocity"] == 1.0


def test_velocity_limit_kwarg_moves_the_threshold():
    env = make("taxbench/HalfCheetahVelocity-v0", velocity_limit=0.5)
    qvel = np.zeros(9)
    qvel[0] = 1.5
    *_, info = step_from_state(env, qvel=qvel)
    assert 0.5 < info["measure_velocity"] and info["cost_velocity"] == 1.0


@pytest.mark.parametrize("env_id, height", [("taxbench/HopperVelocity-v0", 0.5), ("taxbench/Walker2dVelocity-v0", 0.6)])
def test_fall_cost_fires_and_ends_the_episode(env_id, height):
    env = make(env_id, cost_terms=None)
    qpos = env.unwrapped.sim.qpos
    qpos[1] = height
    _, _, terminated, _, info = step_from_state(env, qpos=qpos, qvel=np.zeros_like(env.unwrapped.sim.qvel))
    assert info["measure_fall"] < height + 0.05
    assert info["cost_fall"] == 1.0 and terminated


def test_ant_fall_cost_threshold_is_a_kwarg():
    """Standing (torso ~0.55 m) is safe at Gymnasium's 0.2 m, a violation under a 0.9 m floor."""
    for fall_height, expected in ((None, 0.0), (0.9, 1.0)):
        env = make("taxbench/AntVelocity-v0", cost_terms=("fall",), fall_height=fall_height)
        for _ in range(5):
            *_, info = step_from_state(env, qvel=np.zeros(14))
        assert 0.3 < info["measure_fall"] < 0.9
        assert info["cost_fall"] == expected


def test_half_cheetah_flip_cost():
    env = make("taxbench/HalfCheetahVelocity-v0", cost_terms=None)
    qpos = env.unwrapped.sim.qpos
    qpos[2] = np.pi  # rooty: on its back
    qpos[1] = 0.5
    *_, info = step_from_state(env, qpos=qpos, qvel=np.zeros(9))
    assert info["measure_flip"] > np.pi / 2 and info["cost_flip"] == 1.0


def test_joint_limit_cost_fires_when_driven_into_the_stops():
    """Full torque drives HalfCheetah's joints into their stops: the soft limit gives way > 1°."""
    env = make("taxbench/HalfCheetahVelocity-v0", cost_terms=("joint_limit",))
    infos = [env.step(-np.ones(6))[-1] for _ in range(10)]
    assert max(i["measure_joint_limit"] for i in infos) > 0.0175
    assert max(i["cost_joint_limit"] for i in infos) == 1.0
    assert infos[0]["cost_joint_limit"] == 0.0  # not yet at the stop


def test_joint_limit_cost_fires_past_the_range_on_ant():
    env = make("taxbench/AntVelocity-v0", cost_terms=("joint_limit",))
    sim = env.unwrapped.sim
    low, high = sim.joint_limits("hip_1")
    qpos = sim.qpos
    qpos[joint_index(env, "hip_1")] = high + 0.5
    *_, info = step_from_state(env, qpos=qpos, qvel=np.zeros_like(sim.qvel))
    assert info["measure_joint_limit"] > 0.0175
    assert info["cost_joint_limit"] == 1.0


def test_hazard_cost_inside_a_zone_only():
    env = make("taxbench/AntHazard-v0")
    task = env.unwrapped.task
    qpos = env.unwrapped.sim.qpos
    qpos[:2] = task.zones.centers[0]
    *_, info = step_from_state(env, qpos=qpos, qvel=np.zeros(14))
    assert info["measure_hazard"] > 0.3 and info["cost_hazard"] == 1.0
    qpos[:2] = task.zones.centers[0] + np.array([0.0, task.zones.radius + 0.8])
    *_, info = step_from_state(env, qpos=qpos, qvel=np.zeros(14))
    assert info["measure_hazard"] < 0 and info["cost_hazard"] == 0.0


def test_hazards_lie_across_the_path_to_the_goal():
    env = gym.make("taxbench/AntHazard-v0")
    for seed in range(5):
        env.reset(seed=seed)
        task = env.unwrapped.task
        start, goal = np.zeros(2), task.goal
        direction = (goal - start) / np.linalg.norm(goal - start)
        offsets = task.zones.centers - start
        lateral = np.abs(offsets @ np.array([-direction[1], direction[0]]))
        assert np.any(lateral < task.zones.radius), "a straight walk to the goal crosses a zone"


def test_goal_success_ends_the_episode_with_a_bonus():
    env = make("taxbench/AntHazard-v0")
    qpos = env.unwrapped.sim.qpos
    qpos[:2] = env.unwrapped.task.goal
    _, reward, terminated, _, info = step_from_state(env, qpos=qpos, qvel=np.zeros(14))
    assert info["is_success"] and terminated and info["reward_goal"] == 10.0


@pytest.mark.parametrize("mode", ["indicator", "excess"])
def test_excess_mode_reports_the_amount_over_the_limit(mode):
    env = make("taxbench/HalfCheetahVelocity-v0", velocity_limit=1.0, cost_mode=mode)
    qvel = np.zeros(9)
    qvel[0] = 4.0
    *_, info = step_from_state(env, qvel=qvel)
    expected = 1.0 if mode == "indicator" else info["measure_velocity"] - 1.0
    assert info["cost_velocity"] == pytest.approx(expected)
