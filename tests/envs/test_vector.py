"""The batched-physics vector env reproduces N single envs step for step, bit for bit."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from taxbench.envs import SafeRobotVectorEnv
from taxbench.envs.core.vector import NotBatchableError
from taxbench.envs.sim.mujoco_batch import MujocoBatchStepper
from taxbench.policies import SB3VectorEnv

N, STEPS, LIMIT, SEED = 3, 200, 60, 11


def _info_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys(), a.keys() ^ b.keys()
    for key in b:
        if isinstance(b[key], np.ndarray):
            assert np.array_equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], (key, a[key], b[key])


def _unbatch(info: dict, i: int) -> dict:
    skip = ("final_obs", "final_info")
    return {k: v[i] for k, v in info.items() if not k.startswith("_") and k not in skip and info[f"_{k}"][i]}


# Hopper falls within tens of steps under random actions (termination resets); the time limit
# (LIMIT steps) ends the others' episodes (truncation resets); AntHazard places hazards at reset;
# the Panda maps actions to controls through the sim's state (and takes MuJoCo by default).
# The velocity envs take the batched post-step (numpy over all worlds); the others go world by world.
BATCHED = (
    "taxbench/HalfCheetahVelocity-v0",
    "taxbench/HopperVelocity-v0",
    "taxbench/Walker2dVelocity-v0",
    "taxbench/AntVelocity-v0",
)
FALLS = ("taxbench/HopperVelocity-v0", "taxbench/Walker2dVelocity-v0")


@pytest.mark.parametrize("env_id", [*BATCHED, "taxbench/AntHazard-v0", "taxbench/PandaReach-v0"])
def test_matches_single_envs_bit_for_bit(env_id):
    vec = SafeRobotVectorEnv.from_id(env_id, N, max_episode_steps=LIMIT, env_kwargs={"cost_terms": None})
    assert (vec.post_step is not None) == (env_id in BATCHED)
    assert all(env.sim.model is vec.envs[0].sim.model for env in vec.envs)  # one shared MjModel, same results
    singles = [gym.make(env_id, max_episode_steps=LIMIT, cost_terms=None) for _ in range(N)]
    obs, info = vec.reset(seed=SEED)
    for i, env in enumerate(singles):
        obs_i, info_i = env.reset(seed=SEED + i)
        assert np.array_equal(obs[i], obs_i)
        _info_equal(_unbatch(info, i), info_i)
    rng = np.random.default_rng(0)
    terminations = truncations = 0
    for _ in range(STEPS):
        actions = rng.uniform(-1.2, 1.2, (N, *vec.single_action_space.shape)).astype(np.float32)
        obs, rewards, terminated, truncated, info = vec.step(actions)
        for i, env in enumerate(singles):
            obs_i, reward_i, terminated_i, truncated_i, info_i = env.step(actions[i])
            assert (rewards[i], terminated[i], truncated[i]) == (reward_i, terminated_i, truncated_i)
            if terminated_i or truncated_i:
                terminations += terminated_i
                truncations += truncated_i and not terminated_i
                assert np.array_equal(info["final_obs"][i], obs_i)
                _info_equal(_unbatch(info["final_info"], i), info_i)
                obs_i, info_i = env.reset()
            assert np.array_equal(obs[i], obs_i)  # exact: same mj_step calls, same warm start
            _info_equal(_unbatch(info, i), info_i)
    falls = env_id in FALLS
    assert (terminations if falls else truncations) >= N  # every world was reset at least once
    vec.close()
    vec.close()


def test_sb3_adapter_matches_dummy_vec_env_of_monitors():
    env_id = "taxbench/HopperVelocity-v0"
    batched = SB3VectorEnv(SafeRobotVectorEnv.from_id(env_id, N, max_episode_steps=LIMIT))
    dummy = DummyVecEnv([lambda: Monitor(gym.make(env_id, max_episode_steps=LIMIT))] * N)
    batched.seed(SEED)
    dummy.seed(SEED)
    assert np.array_equal(batched.reset(), dummy.reset())
    rng = np.random.default_rng(1)
    ends = 0
    for _ in range(STEPS):
        actions = rng.uniform(-1, 1, (N, 3)).astype(np.float32)
        obs_b, rew_b, done_b, infos_b = batched.step(actions)
        obs_d, rew_d, done_d, infos_d = dummy.step(actions)
        assert np.array_equal(obs_b, obs_d) and np.array_equal(done_b, done_d)
        assert rew_b.dtype == rew_d.dtype and np.array_equal(rew_b, rew_d)
        for info_b, info_d in zip(infos_b, infos_d, strict=True):
            assert info_b.keys() == info_d.keys()
            if "episode" in info_d:
                ends += 1
                ep_b, ep_d = info_b.pop("episode"), info_d.pop("episode")
                assert (ep_b["r"], ep_b["l"]) == (ep_d["r"], ep_d["l"]) and ep_b.keys() == ep_d.keys()
                assert np.array_equal(info_b.pop("terminal_observation"), info_d.pop("terminal_observation"))
            _info_equal(info_b, info_d)
        for reset_b, reset_d in zip(batched.reset_infos, dummy.reset_infos, strict=True):
            _info_equal(reset_b, reset_d)
    assert ends > N
    assert batched.get_attr("render_mode") == [None] * N and batched.env_is_wrapped(Monitor) == [True] * N
    batched.close()


def test_ppo_trains_on_the_sb3_adapter():
    from taxbench.policies import make_learner

    venv = SB3VectorEnv(SafeRobotVectorEnv.from_id("taxbench/HalfCheetahVelocity-v0", 4, max_episode_steps=64))
    model = make_learner(
        "ppo-lag", venv, seed=0, device="cpu", hyperparams={"n_steps": 64, "batch_size": 64, "n_epochs": 1}
    )
    model.learn(512)
    assert model.num_timesteps == 512 and len(model.ep_info_buffer) == 8  # 4 worlds × 2 episodes of 64 steps
    assert all(ep["l"] == 64 for ep in model.ep_info_buffer)
    venv.close()


def test_make_vec_env_batches_mujoco_envs_and_keeps_dummy_otherwise(monkeypatch):
    from taxbench.experiments.runs.config import RunConfig
    from taxbench.experiments.runs.vec_envs import make_vec_env

    cfg = RunConfig(env_id="taxbench/HalfCheetahVelocity-v0", arm="ppo", n_envs=2, seed=5)
    batched, plain = make_vec_env(cfg), make_vec_env(cfg, batched=False)
    assert isinstance(batched, SB3VectorEnv) and isinstance(plain, DummyVecEnv)
    assert np.array_equal(batched.reset(), plain.reset())  # seeded 5 and 6, like the DummyVecEnv
    for venv in (batched, plain):
        venv.close()
    pybullet = RunConfig(env_id="taxbench/PandaReach-v0", arm="ppo", n_envs=2, env_kwargs={"backend": "pybullet"})
    assert isinstance(make_vec_env(pybullet), DummyVecEnv)
    assert isinstance(
        make_vec_env(RunConfig(env_id="taxbench/HalfCheetahVelocity-v0", arm="ppo-shield", n_envs=2)), DummyVecEnv
    )  # the shield wraps each env
    monkeypatch.setenv("TAXBENCH_BATCHED_PHYSICS", "0")
    assert isinstance(make_vec_env(cfg), DummyVecEnv)


def test_one_thread_two_threads_and_tuned_threads_step_identically():
    vecs = [
        SafeRobotVectorEnv.from_id("taxbench/AntVelocity-v0", 4, nthread=1),
        SafeRobotVectorEnv.from_id("taxbench/AntVelocity-v0", 4, nthread=2),
        SafeRobotVectorEnv.from_id("taxbench/AntVelocity-v0", 4, nthread=2, tune_threads=True),
    ]
    assert [v.stepper.nthread for v in vecs] == [1, 2, 2]
    for vec in vecs:
        vec.reset(seed=0)
    rng = np.random.default_rng(2)
    used = set()
    for _ in range(30):  # the tuner alternates 1 and 2 threads over its first 24 calls, then keeps the faster
        actions = rng.uniform(-1, 1, (4, 8))
        results = [vec.step(actions) for vec in vecs]
        used.add(vecs[2].stepper.active_threads)
        for obs, *_ in results[1:]:
            assert np.array_equal(obs, results[0][0])
    assert used == {1, 2} and vecs[2]._tuner.choice in (1, 2)
    for vec in vecs:
        vec.close()


def test_a_world_moved_to_a_shared_model_goes_on_bit_for_bit():
    """Sharing mid-episode keeps state, warm start and derived quantities (contact forces) exactly."""
    envs = [gym.make("taxbench/AntVelocity-v0").unwrapped for _ in range(3)]
    for env in envs:
        env.reset(seed=5)
    rng = np.random.default_rng(1)
    for _ in range(30):  # the Ant lands and makes contacts; the solver's warm start is then non-zero
        action = rng.uniform(-1, 1, 8)
        for env in envs:
            env.step(action)
    shared, moved, alone = (env.sim for env in envs)
    own_model = moved.model
    moved.share_model(shared)
    assert moved.model is shared.model and moved.model is not own_model
    assert np.array_equal(moved.external_forces(), alone.external_forces())
    for _ in range(30):
        action = rng.uniform(-1, 1, 8)
        steps = [env.step(action) for env in envs[1:]]
        assert np.array_equal(steps[0][0], steps[1][0]) and steps[0][1] == steps[1][1]
        assert steps[0][4] == steps[1][4]
    assert np.array_equal(moved.get_state(), alone.get_state())


def test_worlds_with_different_models_keep_their_own():
    envs = [gym.make("taxbench/HalfCheetahVelocity-v0").unwrapped for _ in range(3)]
    envs[2].sim.model.body_mass[1] *= 2.0  # domain randomisation of one world before the vector env is built
    assert envs[0].sim.same_model(envs[1].sim) and not envs[0].sim.same_model(envs[2].sim)
    with pytest.raises(ValueError, match="identical compiled model"):
        envs[2].sim.share_model(envs[0].sim)
    vec = SafeRobotVectorEnv(envs)
    models = [env.sim.model for env in vec.envs]
    assert models[1] is models[0] and models[2] is not models[0]
    vec.close()
    unshared = SafeRobotVectorEnv.from_id("taxbench/HalfCheetahVelocity-v0", 2, share_model=False)
    assert unshared.envs[1].sim.model is not unshared.envs[0].sim.model
    unshared.close()


def test_bad_input_is_refused():
    vec = SafeRobotVectorEnv.from_id("taxbench/HalfCheetahVelocity-v0", 2)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros((2, 6)))
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="2 rows"):
        vec.step(np.zeros((3, 6)))
    with pytest.raises(ValueError, match="finite"):
        vec.step(np.full((2, 6), np.nan))
    with pytest.raises(NotBatchableError, match="DummyVecEnv"):
        SafeRobotVectorEnv.from_id("taxbench/PandaReach-v0", 2, env_kwargs={"backend": "pybullet"})
    with pytest.raises(ValueError, match="num_envs"):
        SafeRobotVectorEnv.from_id("taxbench/HalfCheetahVelocity-v0", 0)
    with pytest.raises(ValueError, match="nthread"):
        MujocoBatchStepper(vec.stepper.sims, nthread=0)
    with pytest.raises(ValueError, match="control rows"):
        vec.stepper.step(np.zeros((1, 6)))
    vec.close()


def test_a_failing_world_raises_instead_of_hanging():
    import threading

    vec = SafeRobotVectorEnv.from_id("taxbench/HalfCheetahVelocity-v0", 8)
    vec.reset(seed=0)

    def boom():
        raise FloatingPointError("world blew up")

    for env in vec.envs[2:]:
        env.sim.advance = boom
    raised: list[BaseException] = []

    def run() -> None:
        try:
            vec.step(np.zeros((8, 6)))
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20.0)
    assert not worker.is_alive() and isinstance(raised[0], FloatingPointError)
    vec.close()


def test_bench_vector_cli_writes_json(tmp_path):
    import json

    from taxbench.experiments.cli import main

    out = tmp_path / "vector.json"
    assert (
        main(["bench", "vector", "--n-envs", "2", "4", "--world-steps", "64", "--repeats", "1", "--json", str(out)])
        == 0
    )
    rows = json.loads(out.read_text())["rows"]
    assert [(r["env_id"], r["n_envs"]) for r in rows] == [
        (env, n) for env in ("taxbench/HalfCheetahVelocity-v0", "taxbench/AntVelocity-v0") for n in (2, 4)
    ]
    for row in rows:
        assert row["vector_steps_per_s"] > 0 and row["raw_steps_per_s"] > 0
        assert row["ratio"] == row["vector_steps_per_s"] / row["raw_steps_per_s"]
    assert (
        main(
            [
                "bench",
                "vector",
                "--env",
                "taxbench/PandaReach-v0",
                "--n-envs",
                "2",
                "--world-steps",
                "8",
                "--repeats",
                "1",
            ]
        )
        == 0
    )  # MuJoCo Panda batches too
