"""Every registered env, on each backend it supports, continues bit for bit from its recorded resume state.

The training-level resume tests use three envs; the reference sweeps resume runs of all of them. Here an env is
stepped, its state recorded (through JSON, as on disk) and put into a freshly built env (not reset, as in a
resumed run), and the two then take the same actions across an episode end and a reset: observations, rewards,
costs, every info value and the episode flags must agree exactly. An attribute the walk misses (a view it takes
for an alias, a goal drawn at reset) shows up as a difference here.
"""

import json

import gymnasium as gym
import numpy as np
import pytest

import taxbench.envs  # noqa: F401  (registers the envs)
from taxbench.experiments.runs.resume_state import capture_tree, find_sims, plan_tree

EPISODE = 40  # steps: the continuation crosses one episode end and a reset
CASES = [(env_id, "mujoco") for env_id in sorted(k for k in gym.registry if k.startswith("taxbench/"))] + [
    ("taxbench/PandaReach-v0", "pybullet"),
    ("taxbench/PandaPush-v0", "pybullet"),
]


def _make(env_id: str, backend: str) -> gym.Env:
    kwargs = {"max_episode_steps": EPISODE} | ({"backend": backend} if backend != "mujoco" else {})
    return gym.make(env_id, **kwargs)


def _flat(value) -> np.ndarray:
    if isinstance(value, dict):
        return np.concatenate([_flat(value[k]) for k in sorted(value)]) if value else np.zeros(0)
    return np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()


def _continue(env: gym.Env, actions: np.ndarray) -> list[np.ndarray]:
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out.append(np.r_[_flat(obs), reward, terminated, truncated, _flat(info)])
        if terminated or truncated:
            obs, info = env.reset()
            out.append(np.r_[_flat(obs), _flat(info)])
    return out


@pytest.mark.parametrize(("env_id", "backend"), CASES, ids=[f"{e.split('/')[1]}-{b}" for e, b in CASES])
def test_env_continues_exactly_from_its_resume_state(env_id, backend):
    reference = _make(env_id, backend)
    reference.reset(seed=1)
    space = reference.action_space
    actions = np.random.default_rng(0).uniform(space.low, space.high, size=(25 + 2 * EPISODE, *space.shape))
    for action in actions[:24]:
        reference.step(action.astype(space.dtype))
    before = {id(sim): sim.get_state() for sim in find_sims(reference)}
    reference.step(actions[24].astype(space.dtype))
    saved = json.loads(json.dumps(capture_tree(reference, set(), before=before)))

    resumed = _make(env_id, backend)  # never reset, as a resumed run's envs are not
    ops: list = []
    plan_tree(resumed, saved, ops, "env")
    for op in ops:
        op()
    rest = actions[25:].astype(space.dtype)
    want, got = _continue(reference, rest), _continue(resumed, rest)
    assert len(got) == len(want)
    for step, (a, b) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"{env_id} ({backend}) differs {step} steps after the resume")
