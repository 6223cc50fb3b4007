"""The Panda envs on PyBullet and MuJoCo: API, determinism, rendering, and parity of one scripted trajectory."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from panda_scripts import BACKENDS, HAND_FRONT, INTO_HAND, make, move_to

REACH, PUSH = "taxbench/PandaReach-v0", "taxbench/PandaPush-v0"

# Parity tolerances (stated, measured on this trajectory): kinematics and speeds come from identical FK and
# the same controller; forces differ by engine (PyBullet's velocity motor is an infinitely stiff servo that
# saturates every joint at its effort limit, MuJoCo's is a 300 N·m·s/rad damper; hard vs soft contact).
SPEED_TOL = 0.03  # m/s, on 90% of the steps (cruise); 0.1 m/s on every step (the servos accelerate differently)
SEPARATION_TOL = 0.02  # m
FORCE_RATIO = 3.0  # max/min of the two engines' peak force on the hand
ONSET_TOL = 1  # control steps


def test_pybullet_passes_the_env_checker():
    env = gym.make(REACH, backend="pybullet")
    check_env(env.unwrapped, skip_render_check=True)
    env.close()
    env.close()


@pytest.mark.parametrize("env_id", [REACH, PUSH])
def test_pybullet_same_seed_same_trajectory(env_id):
    runs = []
    for _ in range(2):
        env = gym.make(env_id, backend="pybullet")
        obs, _ = env.reset(seed=5)
        env.action_space.seed(5)
        out = [obs]
        for _ in range(30):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            out.append(np.r_[obs, reward, info["cost"]])
        runs.append(out)
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("env_id", [REACH, PUSH])
def test_same_task_layout_on_both_backends(env_id):
    envs = {b: gym.make(env_id, backend=b) for b in BACKENDS}
    starts = {b: env.reset(seed=3) for b, env in envs.items()}
    (obs_m, info_m), (obs_p, info_p) = starts["mujoco"], starts["pybullet"]
    assert obs_m.shape == obs_p.shape
    np.testing.assert_allclose(obs_m, obs_p, atol=1e-4)
    assert envs["mujoco"].unwrapped.cost_terms == envs["pybullet"].unwrapped.cost_terms
    assert {t.unit for t in envs["mujoco"].unwrapped.safety} == {t.unit for t in envs["pybullet"].unwrapped.safety}
    assert info_m.keys() == info_p.keys()


def test_one_scripted_trajectory_gives_the_same_costs_on_both_backends():
    """Fast reach toward the person, then through the hand: terms switch on at the same steps."""
    logs = {}
    for backend in BACKENDS:
        env = make(REACH, backend)
        infos = move_to(env, (0.5, 0.2, 0.1), 0.5, 35) + move_to(env, HAND_FRONT, 0.25, 40)
        infos += move_to(env, INTO_HAND, 0.5, 15)
        logs[backend] = infos
    mj, pb = logs["mujoco"], logs["pybullet"]
    terms = [k for k in mj[0] if k.startswith("cost_")]
    for term in terms:
        on_m = {i for i, info in enumerate(mj) if info[term]}
        on_p = {i for i, info in enumerate(pb) if info[term]}
        assert bool(on_m) == bool(on_p), term
        if on_m:
            assert abs(min(on_m) - min(on_p)) <= ONSET_TOL, (term, min(on_m), min(on_p))
            if not term.startswith("cost_force"):  # how long a blocked push stays above the limit is engine-specific
                mismatched = on_m ^ on_p
                assert len(mismatched) <= max(3, len(on_m | on_p) // 3), (term, sorted(on_m), sorted(on_p))
    assert any(info["cost_tcp_speed"] for info in mj) and any(info["cost_force_hand"] for info in mj)
    speed_gap = np.abs([a["measure_tcp_speed"] - b["measure_tcp_speed"] for a, b in zip(mj[:75], pb[:75], strict=True)])
    assert np.mean(speed_gap < SPEED_TOL) >= 0.9 and speed_gap.max() < 0.1, speed_gap.round(3)
    for a, b in zip(mj[:75], pb[:75], strict=True):  # before contact
        assert abs(a["measure_separation"] - b["measure_separation"]) < SEPARATION_TOL
    peaks = [max(info["measure_force_hand"] for info in log) for log in (mj, pb)]
    assert min(peaks) > 140.0 and max(peaks) / min(peaks) < FORCE_RATIO, peaks


@pytest.mark.parametrize("backend", BACKENDS)
def test_render_shows_the_person_and_the_keepout_zone(backend):
    env = gym.make(REACH, backend=backend, render_mode="rgb_array", width=160, height=120)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8 and frame.std() > 0
    # The person's skin and shirt colours and the red keep-out footprint are in the picture.
    pixels = frame.reshape(-1, 3).astype(int)
    shirt = (pixels[:, 2] > pixels[:, 0] + 40).mean()
    assert shirt > 0.005, shirt
    sim = env.unwrapped.sim
    sim.set_marker_position("keepout", np.array([50.0, 50.0, -10.0]))
    sim.forward()
    without = env.render().astype(int)
    diff = np.abs(frame.astype(int) - without).sum(axis=2) > 0
    assert diff.mean() > 0.01
    assert frame[diff][:, 0].mean() > frame[diff][:, 1].mean()  # the zone is red
    env.close()


def _pushing(steps: int) -> tuple[gym.Env, list[np.ndarray]]:
    """PandaPush on PyBullet after ``steps`` seeded random actions, and 150 more actions to continue with."""
    env = gym.make(PUSH, backend="pybullet", max_episode_steps=1000)
    env.reset(seed=3)
    actions = list(np.random.default_rng(0).uniform(-1, 1, size=(steps + 150, 3)).astype(np.float32))
    for action in actions[:steps]:
        env.step(action)
    return env, actions[steps:]


def _continue(env: gym.Env, actions: list[np.ndarray]) -> np.ndarray:
    return np.array([np.r_[obs, reward, info["cost"]] for obs, reward, _, _, info in map(env.step, actions)])


def test_pybullet_exact_state_resumes_bit_for_bit():
    """Positions and velocities alone lose the contact caches; the engine's own serialisation keeps them."""
    reference, rest = _pushing(80)
    sim = reference.unwrapped.sim
    state, exact = sim.get_state(), sim.exact_state()
    want = _continue(reference, rest)

    approximate, _ = _pushing(80)
    approximate.unwrapped.sim.reset()
    approximate.unwrapped.sim.restore_state(state)
    drift = np.abs(_continue(approximate, rest) - want).max()
    assert drift > 1e-6, "positions and velocities alone now resume exactly: exact_state is no longer needed"

    restored, _ = _pushing(80)
    restored.unwrapped.sim.reset()
    assert restored.unwrapped.sim.restore_exact_state(state, exact)
    np.testing.assert_array_equal(_continue(restored, rest), want)


@pytest.mark.parametrize("damage", ["another scene", "not zlib", "not a bullet file"])
def test_pybullet_exact_state_that_does_not_fit_falls_back(damage):
    env, _ = _pushing(20)
    sim = env.unwrapped.sim
    state = sim.get_state()
    if damage == "another scene":
        other = gym.make(REACH, backend="pybullet")
        other.reset(seed=1)
        exact = other.unwrapped.sim.exact_state()
    elif damage == "not zlib":
        exact = np.frombuffer(b"garbage" * 50, dtype=np.uint8)
    else:
        import zlib

        exact = np.frombuffer(zlib.compress(b"garbage" * 50), dtype=np.uint8)
    sim.reset()
    assert not sim.restore_exact_state(state, exact)
    np.testing.assert_array_equal(sim.get_state(), state)
