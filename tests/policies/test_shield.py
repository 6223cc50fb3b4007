"""The safety shield: its filter as a pure function (property tests) and on real envs (scripted driving)."""

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import taxbench.envs  # noqa: F401 - registers the ids
from taxbench.policies import SafetyShield, env_wrapper, filter_tcp_velocity, governor_scale
from taxbench.policies.shield import box_distance

coord = st.floats(-1.0, 1.0, allow_nan=False)
vec3 = st.tuples(coord, coord, coord).map(np.array)
size = st.floats(0.01, 0.4, allow_nan=False)


@st.composite
def scenes(draw):
    n = draw(st.integers(1, 3))
    centers = np.array([draw(vec3) for _ in range(n)])
    halves = np.array([[draw(size), draw(size), draw(size)] for _ in range(n)])
    return centers, halves


@settings(max_examples=300, deadline=None)
@given(
    position=vec3,
    velocity=st.tuples(*[st.floats(-20.0, 20.0, allow_nan=False)] * 3).map(np.array),
    dt=st.floats(0.001, 0.5),
    cap=st.floats(0.0, 3.0),
    scene=scenes(),
    clearance=st.floats(0.0, 0.5),
)
def test_filtered_command_keeps_speed_and_keepout(position, velocity, dt, cap, scene, clearance):
    centers, halves = scene
    filtered = filter_tcp_velocity(position, velocity, dt, cap, centers, halves, clearance)
    assert np.linalg.norm(filtered) <= cap
    start = box_distance(position, centers, halves)
    end = box_distance(position + filtered * dt, centers, halves)
    if start >= clearance:  # outside the keep-out volume: one step never enters it
        assert end >= clearance
    else:  # inside it: never closer
        assert end >= start


@settings(max_examples=100, deadline=None)
@given(velocity=st.tuples(*[st.floats(-1.0, 1.0, allow_nan=False)] * 3).map(np.array))
def test_safe_commands_pass_unchanged(velocity):
    # far from a small box and under the cap: the filter is the identity
    out = filter_tcp_velocity(
        np.zeros(3), velocity * 0.1, 0.04, 0.25, np.array([[5.0, 5.0, 5.0]]), np.full((1, 3), 0.1), 0.3
    )
    np.testing.assert_array_equal(out, velocity * 0.1)


def test_heading_at_the_box_slides_or_stops():
    centers, halves = np.array([[0.5, 0.0, 0.0]]), np.full((1, 3), 0.1)
    # straight at the box (0.4 m away, clearance 0.05 m), a 0.5 m step: nothing to slide with, it stops short
    out = filter_tcp_velocity(np.zeros(3), np.array([0.25, 0.0, 0.0]), 2.0, 0.25, centers, halves, 0.05)
    assert out[1] == out[2] == 0.0 and 0.0 < out[0] < 0.25
    assert box_distance(out * 2.0, centers, halves) == pytest.approx(0.05, abs=1e-6)
    out = filter_tcp_velocity(np.array([0.0, 0.0, 0.0]), np.array([0.2, 0.1, 0.0]), 3.0, 0.25, centers, halves, 0.05)
    assert out[0] <= 0.2 and out[1] > 0  # the tangential part survives


def test_governor_scale():
    assert governor_scale(0.0, 1.0, 0.25) == 1.0
    assert governor_scale(0.875, 1.0, 0.25) == pytest.approx(0.5)
    assert governor_scale(1.2, 1.0, 0.25) == 0.0
    assert governor_scale(float("nan"), 1.0, 0.25) == 0.0


def test_velocity_governor_cuts_speed_violations():
    """Scripted policy that drives HalfCheetah hard: the governor keeps it out of the 1 m/s slow zone more."""
    rng = np.random.default_rng(0)

    def run(env):
        env.reset(seed=0)
        speeds, costs, shielded = [], 0.0, 0
        for action in pattern:
            _, _, terminated, truncated, info = env.step(action)
            speeds.append(info["measure_velocity"])
            costs += info["cost"]
            shielded += int(info.get("shield_active", False))
        return max(speeds), costs, shielded

    # a bang-bang gait that runs fast: alternate the pattern's sign every 5 steps
    pattern = np.repeat(np.sign(rng.uniform(-1, 1, size=(60, 6))), 5, axis=0)
    raw = run(gym.make("taxbench/HalfCheetahSlowZone-v0"))
    shield = run(SafetyShield(gym.make("taxbench/HalfCheetahSlowZone-v0"), speed_fraction=0.75))
    assert shield[2] > 0  # it intervened
    assert shield[1] < raw[1] or raw[1] == 0  # and cut the violating steps
    assert shield[0] <= raw[0] + 1e-9


def test_unsupported_env_is_named():
    with pytest.raises(ValueError, match="Pendulum"):
        SafetyShield(gym.make("Pendulum-v1"))


def test_bad_margins():
    with pytest.raises(ValueError, match="speed_fraction"):
        SafetyShield(gym.make("taxbench/HalfCheetahSlowZone-v0"), speed_fraction=1.5)


def test_registry_wrapper_only_for_shield_arm():
    assert env_wrapper("ppo-lag") is None
    wrap = env_wrapper("ppo-shield", {"shield_speed_fraction": 0.5, "shield_clearance": 0.1})
    env = wrap(gym.make("taxbench/HalfCheetahSlowZone-v0"))
    assert isinstance(env, SafetyShield) and env.adapter.speed_cap == pytest.approx(0.5)


@pytest.mark.skipif("taxbench/PandaReach-v0" not in gym.registry, reason="Panda envs not registered")
def test_arm_shield_holds_tcp_speed_and_separation_on_panda():
    """Random full-scale TCP commands on PandaReach: with the shield, the TCP-speed and separation costs stay 0."""
    env = SafetyShield(gym.make("taxbench/PandaReach-v0"), speed_fraction=0.8, clearance=0.02)
    raw_env = gym.make("taxbench/PandaReach-v0")
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, size=(60, 3))
    totals = {}
    for name, e in (("shield", env), ("raw", raw_env)):
        e.reset(seed=3)
        totals[name] = {"tcp_speed": 0.0, "separation": 0.0}
        for action in actions:
            *_, info = e.step(action)
            for term in totals[name]:
                totals[name][term] += info.get(f"cost_{term}", 0.0)
    assert totals["raw"]["tcp_speed"] > 0  # the raw commands do break the speed limit
    assert totals["shield"]["tcp_speed"] == 0.0, totals
    assert totals["shield"]["separation"] <= totals["raw"]["separation"], totals
