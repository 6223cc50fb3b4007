"""load_policy: every arm rebuilt from the JSON sidecar and tensors only, crafted zips never run code."""

import base64
import json
import os
import pickle
import shlex
import zipfile

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.save_util import recursive_getattr
from stable_baselines3.common.vec_env import DummyVecEnv
from toy_envs import OverspeedPointEnv, SpeedLimitedPointEnv, VelocityTaskPointEnv

from taxbench.policies import (
    ARMS,
    ModelLoadError,
    PIDLagrange,
    env_wrapper,
    load_learner,
    load_policy,
    make_learner,
    save_policy,
)
from taxbench.policies.arm_state import STATE_CODECS, decode_rng, encode_rng
from taxbench.policies.safe_load import SAFE_ARMS, TRUST_PICKLE_HINT, read_sidecar
from taxbench.policies.sidecar import SIDECAR_NAME, decode_space, encode_space, encode_value

PPO_HP = {"n_steps": 64, "batch_size": 32, "n_epochs": 2}
RELU_NETS = {"activation_fn": th.nn.ReLU, "net_arch": {"pi": [8], "vf": [16]}}  # a class in the hyperparams
SAC_HP = {
    "learning_starts": 32,
    "batch_size": 32,
    "buffer_size": 2_000,
    "policy_kwargs": {"net_arch": [16, 16]},
    "train_freq": [16, "step"],
    "gradient_steps": 4,
}
#: case → (arm, hyperparams, training steps); every arm of the registry, PID multiplier included.
CASES = {
    "ppo": ("ppo", PPO_HP, 128),
    "ppo-lag": ("ppo-lag", PPO_HP, 256),
    "ppo-lag-pid": ("ppo-lag", {**PPO_HP, "lagrange_method": "pid"}, 256),
    "ppo-penalty": ("ppo-penalty", {**PPO_HP, "penalty_coef": 0.5, "policy_kwargs": RELU_NETS}, 128),
    "ppo-shield": ("ppo-shield", {**PPO_HP, "shield_speed_fraction": 0.8}, 128),
    "ppo-track": ("ppo-track", {**PPO_HP, "track_speed_fraction": 0.8}, 128),
    "sac": ("sac", SAC_HP, 160),
    "sac-lag": ("sac-lag", {**SAC_HP, "lagrange_interval": 32}, 160),
    "cup": ("cup", {**PPO_HP, "lagrange_init": 0.5}, 256),
    "saute": ("saute", {**PPO_HP, "saute_budget": 1.0}, 128),
    "trpo": ("trpo", {"n_steps": 64, "batch_size": 64}, 128),
    "cpo": ("cpo", {"n_steps": 64, "batch_size": 64}, 192),
}
OBS = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)


def _point_env(case="ppo"):
    """The toy env, wrapped as the arm of ``case`` needs it for training and evaluation (saute)."""
    arm, hp, _ = CASES[case]
    env_class = VelocityTaskPointEnv if arm == "ppo-track" else SpeedLimitedPointEnv  # ppo-track reads a speed limit
    env = env_class(speed_limit=0.1, max_episode_steps=32)
    return env_wrapper(arm, hp)(env) if arm == "saute" else env


def _env(case="ppo"):
    return DummyVecEnv([lambda: _point_env(case)])


def _obs(model):
    return np.random.default_rng(0).normal(size=(32, *model.observation_space.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each case trained for a few hundred steps and saved with save_policy (trained once per module)."""
    folder = tmp_path_factory.mktemp("safe_load")
    out = {}
    for case, (arm, hp, steps) in CASES.items():
        if arm not in ARMS:
            continue
        model = make_learner(arm, _env(case), seed=3, device="cpu", cost_limit=1.0, hyperparams=hp)
        model.learn(steps)
        save_policy(model, folder / f"{case}.zip")
        out[case] = folder / f"{case}.zip"
    return out


def _same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            _same_state(a[key], b[key])
        elif isinstance(a[key], th.Tensor):
            assert th.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def test_every_registry_arm_has_a_safe_loader_entry():
    assert set(ARMS) <= set(SAFE_ARMS), "add one SAFE_ARMS entry (policies/arm_state.py) per new arm"


@pytest.mark.parametrize("case", list(CASES))
def test_safe_load_matches_sb3_load(saved, case):
    if case not in saved:
        pytest.skip(f"arm {CASES[case][0]!r} is not in the registry yet")
    safe = load_policy(saved[case], _point_env(case))
    trusted = load_learner(saved[case], device="cpu")  # SB3's unpickling load, the reference
    obs = _obs(trusted)
    assert type(safe) is type(trusted)
    assert safe.taxbench_arm == trusted.taxbench_arm == CASES[case][0]
    assert safe.num_timesteps == trusted.num_timesteps > 0
    assert safe._n_updates == trusted._n_updates
    assert safe.get_env() is None
    _same_state(safe.policy.state_dict(), trusted.policy.state_dict())
    for name in trusted._get_torch_save_params()[0]:  # every saved state dict, optimisers and cost critics included
        _same_state(recursive_getattr(safe, name).state_dict(), recursive_getattr(trusted, name).state_dict())
    for name in trusted._get_torch_save_params()[1]:
        assert th.equal(getattr(safe, name), getattr(trusted, name)), name
    assert np.array_equal(safe.predict(obs, deterministic=True)[0], trusted.predict(obs, deterministic=True)[0])
    if hasattr(trusted, "lagrange"):
        assert trusted.lagrange_multiplier > 0  # λ moved, so comparing it means something
        # exact, NaN included (a JSON dump spells NaN the same on both sides; pytest.approx refuses nested lists)
        assert json.dumps(safe.lagrange.state_dict(), sort_keys=True) == json.dumps(
            trusted.lagrange.state_dict(), sort_keys=True
        )
        assert type(safe.lagrange) is type(trusted.lagrange)
        assert safe.cost_limit == trusted.cost_limit == 1.0
    for name in SAFE_ARMS[CASES[case][0]].state:  # every JSON state of the arm (multiplier, own streams, estimates)
        codec = STATE_CODECS[name]
        assert json.dumps(encode_value(codec.get(safe))) == json.dumps(encode_value(codec.get(trusted))), name
    if hasattr(trusted, "_cost_rng"):
        assert safe._cost_rng.integers(1 << 30) == trusted._cost_rng.integers(1 << 30)
    if case in ("ppo-lag", "cup", "cpo"):
        assert np.array_equal(safe.predict_cost_values(obs), trusted.predict_cost_values(obs))
    if case == "ppo-lag-pid":
        assert isinstance(safe.lagrange, PIDLagrange)
    if case == "ppo-penalty":
        assert safe.penalty_coef == trusted.penalty_coef == 0.5
        assert isinstance(safe.policy.activation_fn(), th.nn.ReLU)
    if case == "sac-lag":
        actions = safe.predict(obs, deterministic=True)[0]
        assert np.array_equal(safe.predict_cost_values(obs, actions), trusted.predict_cost_values(obs, actions))


def test_sidecar_records_arm_spaces_and_hyperparams(saved):
    sidecar = read_sidecar(saved["ppo-penalty"])
    assert sidecar["arm"] == "ppo-penalty"
    assert decode_space(sidecar["observation_space"]) == SpeedLimitedPointEnv().observation_space
    assert sidecar["build"]["hyperparams"]["policy_kwargs"]["activation_fn"] == {"$class": "torch.nn.ReLU"}
    assert sidecar["build"]["cost_limit"] == 1.0
    assert "lagrange" in read_sidecar(saved["ppo-lag"])["state"]


class _Touch:
    """Unpickling this runs ``touch <path>``: the payload of a crafted model zip."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.path)}",))


def _craft(source, target, marker, keep_sidecar=True, poison="data"):
    """Copy a model zip, adding a pickle payload that creates ``marker`` to its ``data`` (or a tensor) entry."""
    payload = pickle.dumps(_Touch(marker))
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            content = zin.read(item)
            if item.filename == SIDECAR_NAME and not keep_sidecar:
                continue
            if item.filename == "data" and poison == "data":
                data = json.loads(content)
                data["payload"] = {":serialized:": base64.b64encode(payload).decode()}
                content = json.dumps(data).encode()
            elif item.filename == poison:
                content = payload
            zout.writestr(item, content)
    return target


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_data_entry_does_not_run(saved, tmp_path, case):
    if case not in saved:
        pytest.skip(f"arm {CASES[case][0]!r} is not in the registry yet")
    marker = tmp_path / "pwned"
    crafted = _craft(saved[case], tmp_path / "model.zip", marker)
    model = load_policy(crafted, _point_env(case))  # loads: the data entry is never read
    assert not marker.exists()
    reference, obs = load_policy(saved[case]), _obs(model)
    assert np.array_equal(model.predict(obs, deterministic=True)[0], reference.predict(obs, deterministic=True)[0])
    # the payload is real: the old path runs it, which is what --trust-pickle opts into
    load_policy(crafted, _point_env(case), trust_pickle=True)
    assert marker.exists()


def test_crafted_zip_without_sidecar_is_refused_in_one_line(saved, tmp_path):
    marker = tmp_path / "pwned"
    crafted = _craft(saved["ppo"], tmp_path / "model.zip", marker, keep_sidecar=False)
    with pytest.raises(ModelLoadError) as info:
        load_policy(crafted, SpeedLimitedPointEnv())
    message = str(info.value)
    assert "\n" not in message and "--trust-pickle" in message and "runs any code" in message
    assert TRUST_PICKLE_HINT in message
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("entry", ["policy.pth", "pytorch_variables.pth"])
def test_pickle_in_a_tensor_entry_is_refused(saved, tmp_path, entry):
    marker = tmp_path / "pwned"
    case = "sac" if entry == "pytorch_variables.pth" else "ppo"
    crafted = _craft(saved[case], tmp_path / "model.zip", marker, poison=entry)
    with pytest.raises(ModelLoadError, match="--trust-pickle"):
        load_policy(crafted)
    assert not marker.exists()


def test_plain_model_save_needs_trust_pickle(tmp_path):
    model = make_learner("ppo-lag", _env(), seed=0, device="cpu", cost_limit=1.0, hyperparams=PPO_HP)
    model.save(tmp_path / "old.zip")
    with pytest.raises(ModelLoadError, match=r"has no taxbench\.json.*--trust-pickle"):
        load_policy(tmp_path / "old.zip")
    loaded = load_policy(tmp_path / "old", trust_pickle=True)  # suffix optional, as with SB3
    assert loaded.taxbench_arm == "ppo-lag"


@pytest.mark.parametrize("trust_pickle", [False, True])
@pytest.mark.parametrize("env", ["env", "vecenv", "spaces"])
def test_mismatched_spaces_one_line_error(saved, env, trust_pickle):
    other = {
        "env": OverspeedPointEnv(),
        "vecenv": DummyVecEnv([OverspeedPointEnv]),
        "spaces": (spaces.Box(0.0, 1.0, (1,)), spaces.Box(-1.0, 1.0, (1,))),
    }[env]
    with pytest.raises(ModelLoadError) as info:
        load_policy(saved["ppo"], other, trust_pickle=trust_pickle)
    message = str(info.value)
    assert "\n" not in message
    assert "Box(2,)" in message and "Box(1,)" in message
    assert "OverspeedPointEnv" in message if env != "spaces" else "the given spaces" in message


def test_same_shapes_other_bounds_are_named(saved):
    obs = SpeedLimitedPointEnv().observation_space
    with pytest.raises(ModelLoadError, match="different bounds"):
        load_policy(saved["ppo"], (obs, spaces.Box(-2.0, 2.0, (1,), dtype=np.float32)))


def test_arm_must_name_the_same_learner(saved):
    assert type(load_policy(saved["ppo"], arm="ppo-shield")) is PPO  # deployed shield runs load their ppo model
    with pytest.raises(ModelLoadError, match=r"holds a 'sac' learner.*'ppo-lag'"):
        load_policy(saved["sac"], arm="ppo-lag")


def test_model_built_outside_make_learner_uses_the_run_hyperparams(tmp_path):
    model = PPO("MlpPolicy", SpeedLimitedPointEnv(), n_steps=64, batch_size=32, policy_kwargs={"net_arch": [8]}, seed=1)
    model.learn(64)
    save_policy(model, tmp_path / "plain")
    with pytest.raises(ModelLoadError, match=r"records no hyper-parameters.*--trust-pickle"):
        load_policy(tmp_path / "plain.zip")
    loaded = load_policy(tmp_path / "plain.zip", arm="ppo", hyperparams={"policy_kwargs": {"net_arch": [8]}})
    assert np.array_equal(model.predict(OBS, deterministic=True)[0], loaded.predict(OBS, deterministic=True)[0])
    with pytest.raises(ModelLoadError, match="loading state_dict"):  # wrong architecture: tensors do not fit
        load_policy(tmp_path / "plain.zip", arm="ppo", hyperparams={})


def _edit_sidecar(source, target, edit):
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            content = zin.read(item)
            if item.filename == SIDECAR_NAME:
                sidecar = json.loads(content)
                edit(sidecar)
                content = json.dumps(sidecar).encode()
            zout.writestr(item, content)
    return target


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda s: s["build"]["hyperparams"].update(policy_kwargs={"activation_fn": {"$class": "os.system"}}),
            "os.system",
        ),
        (lambda s: s["state"]["lagrange"].update(value=-1.0), "value must be >= 0"),
        (lambda s: s["state"].pop("cost_rng"), "no 'cost_rng' state"),
        (lambda s: s.update(arm="cpo-unknown"), "has no safe loader"),
        (lambda s: s.update(version=99), "version 99"),
        (lambda s: s["counters"].update(num_timesteps="x"), "num_timesteps"),
        (lambda s: s["build"]["hyperparams"].update(n_steps="many"), "cannot rebuild"),
    ],
)
def test_bad_sidecar_is_refused(saved, tmp_path, edit, match):
    crafted = _edit_sidecar(saved["ppo-lag"], tmp_path / "model.zip", edit)
    with pytest.raises(ModelLoadError, match=match) as info:
        load_policy(crafted)
    assert "\n" not in str(info.value) and "--trust-pickle" in str(info.value)


def test_not_a_zip_and_missing_file(tmp_path):
    (tmp_path / "model.zip").write_text("not a zip")
    with pytest.raises(ModelLoadError, match="not a readable model zip"):
        load_policy(tmp_path / "model.zip")
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path / "absent.zip")


def test_space_and_rng_codecs_round_trip():
    for space in (
        spaces.Discrete(4, start=1),
        spaces.MultiDiscrete([2, 3]),
        spaces.MultiBinary(3),
        spaces.Box(np.array([0.0, -1.0]), np.array([1.0, np.inf]), dtype=np.float64),
        spaces.Dict({"a": spaces.Box(-1.0, 1.0, (2, 2)), "b": spaces.Tuple([spaces.Discrete(2)])}),
    ):
        assert decode_space(json.loads(json.dumps(encode_space(space)))) == space
    rng = np.random.default_rng(7)
    rng.random(3)
    restored = decode_rng(json.loads(json.dumps(encode_rng(rng))))
    assert restored.integers(1 << 40) == rng.integers(1 << 40)
    with pytest.raises(ValueError, match="bit generator"):
        decode_rng({"bit_generator": "os.system"})
