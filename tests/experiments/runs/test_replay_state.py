"""A replay buffer written as plain arrays comes back equal, wrapped or not; one that does not fit is refused."""

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

from taxbench.experiments.runs.replay_state import load_replay_buffer, save_replay_buffer
from taxbench.experiments.runs.state_codec import ResumeStateError
from taxbench.policies.sac_lag import CostReplayBuffer

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = spaces.Box(-1.0, 1.0, (2,), np.float32)


def _fill(buffer, transitions: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n = buffer.n_envs
    for _ in range(transitions):
        obs = rng.normal(size=(n, 3)).astype(np.float32)
        infos = [{"cost": float(rng.integers(0, 2)), "TimeLimit.truncated": bool(rng.integers(0, 2))} for _ in range(n)]
        buffer.add(obs, obs + 1, rng.normal(size=(n, 2)), rng.normal(size=n), rng.integers(0, 2, size=n), infos)


def _same(a, b) -> None:
    assert (a.pos, a.full) == (b.pos, b.full)
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts", "costs"):
        if hasattr(a, name):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("transitions", [0, 7, 10, 23])  # empty, part-filled, exactly full (wrapped to 0), wrapped
def test_cost_buffer_round_trip(tmp_path, transitions):
    saved = CostReplayBuffer(10, OBS, ACT, n_envs=2)
    _fill(saved, transitions)
    save_replay_buffer(saved, tmp_path / "b.replay.npz")
    fresh = CostReplayBuffer(10, OBS, ACT, n_envs=2)
    load_replay_buffer(fresh, tmp_path / "b.replay.npz")
    _same(fresh, saved)
    assert fresh.costs.any() == (transitions > 0)  # the subclass's own column travels too


def test_dict_buffer_round_trip(tmp_path):
    space = spaces.Dict({"a": OBS, "b": spaces.Box(0.0, 1.0, (1,), np.float32)})
    saved = DictReplayBuffer(6, space, ACT)
    for k in range(4):
        obs = {"a": np.full((1, 3), k, np.float32), "b": np.full((1, 1), -k, np.float32)}
        saved.add(obs, obs, np.ones((1, 2)), np.array([k]), np.array([0]), [{}])
    save_replay_buffer(saved, tmp_path / "d.npz")
    fresh = DictReplayBuffer(6, space, ACT)
    load_replay_buffer(fresh, tmp_path / "d.npz")
    assert fresh.pos == 4
    for key in ("a", "b"):
        np.testing.assert_array_equal(fresh.observations[key], saved.observations[key])
    np.testing.assert_array_equal(fresh.rewards, saved.rewards)


@pytest.mark.parametrize(
    "other",
    [
        lambda: ReplayBuffer(10, OBS, ACT, n_envs=2),  # no cost column
        lambda: CostReplayBuffer(20, OBS, ACT, n_envs=2),  # another capacity
        lambda: CostReplayBuffer(10, OBS, ACT, n_envs=1),  # another number of envs
        lambda: CostReplayBuffer(10, spaces.Box(-1, 1, (4,), np.float32), ACT, n_envs=2),  # another observation
    ],
)
def test_a_buffer_that_does_not_fit_is_refused_and_left_alone(tmp_path, other):
    saved = CostReplayBuffer(10, OBS, ACT, n_envs=2)
    _fill(saved, 5)
    save_replay_buffer(saved, tmp_path / "b.npz")
    fresh = other()
    with pytest.raises(ResumeStateError):
        load_replay_buffer(fresh, tmp_path / "b.npz")
    assert fresh.pos == 0 and not fresh.full and not fresh.observations.any()


def test_pickled_arrays_are_never_loaded(tmp_path):
    """A file holding an object array (which only unpickling could read) is refused, not executed."""
    path = tmp_path / "evil.npz"
    np.savez(path, observations=np.array([object()], dtype=object), __pos__=np.int64(0), __full__=np.bool_(False))
    with pytest.raises(ResumeStateError, match="unreadable"):
        load_replay_buffer(CostReplayBuffer(10, OBS, ACT, n_envs=2), path)


def test_an_unreadable_file_is_refused(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(ResumeStateError, match="unreadable"):
        load_replay_buffer(CostReplayBuffer(10, OBS, ACT, n_envs=2), path)
