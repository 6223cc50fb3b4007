"""Load learners without running code from the model file.

stable-baselines3's ``load`` unpickles the ``data`` entry of a ``model.zip`` (cloudpickle), so a crafted zip
runs code. :func:`load_policy` never reads that entry. It rebuilds the learner with
:func:`~taxbench.policies.registry.make_learner` from the arm, hyper-parameters and spaces recorded in the
zip's JSON sidecar (``taxbench.json``, written by :func:`save_policy`), loads the tensor entries
(``policy.pth``, optimisers, cost critics, ``pytorch_variables.pth``) with ``torch.load(weights_only=True)``,
and restores the JSON state of the arm (multiplier λ, random streams) through :data:`SAFE_ARMS`. A zip that
cannot be loaded this way (no sidecar: saved by plain ``model.save``) raises :class:`ModelLoadError` unless
the caller opts in with ``trust_pickle=True`` (the CLI's ``--trust-pickle``), which takes the old path.

Adding an arm to the registry takes one :class:`~taxbench.policies.arm_state.SafeArm` entry in
:data:`~taxbench.policies.arm_state.SAFE_ARMS`: the names of the JSON state codecs
(:data:`~taxbench.policies.arm_state.STATE_CODECS`) it needs beside its tensors (none when all of its state
is in tensors), and the arm to build it as when its own build path needs the training env.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import recursive_getattr
from stable_baselines3.common.vec_env import VecEnv

from . import registry
from .arm_state import SAFE_ARMS, STATE_CODECS, SafeArm, StateCodec
from .sidecar import (
    COUNTERS,
    SIDECAR_FORMAT,
    SIDECAR_NAME,
    SIDECAR_VERSION,
    decode_space,
    decode_value,
    describe_space,
    env_id_of,
    save_policy,
)

__all__ = [
    "SAFE_ARMS",
    "STATE_CODECS",
    "TRUST_PICKLE_HINT",
    "ModelLoadError",
    "SafeArm",
    "StateCodec",
    "load_policy",
    "read_sidecar",
    "save_policy",
]

#: The end of every "cannot load safely" message: the opt-in and what it allows.
TRUST_PICKLE_HINT = (
    "pass --trust-pickle (trust_pickle=True) to load it with stable-baselines3's unpickler, "
    "which runs any code the file carries: only for models from a source you trust"
)
_MAX_SIDECAR_BYTES = 1 << 20
_MAX_TENSOR_BYTES = 4 << 30  # all tensor entries together, uncompressed
_VARIABLES_ENTRY = "pytorch_variables.pth"


class ModelLoadError(ValueError):
    """A model file that cannot be loaded without unpickling, or that does not fit the env; one-line message."""


class _SpacesOnlyEnv(gym.Env):
    """Stands in for the env while the learner is built: it has the spaces, and refuses to run."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        self.observation_space = observation_space
        self.action_space = action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        """Refuse: a learner rebuilt for inference has no env (attach one with ``set_env``)."""
        raise RuntimeError("this learner was loaded for inference: attach an env with set_env() to train it")

    def step(self, action: Any) -> Any:
        """Refuse, as :meth:`reset`."""
        raise RuntimeError("this learner was loaded for inference: attach an env with set_env() to train it")


def _one_line(exc: BaseException | str, limit: int = 240) -> str:
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _zip_file(model_path: str | Path) -> Path:
    path = Path(model_path)
    if not path.exists() and path.suffix != ".zip" and path.with_name(path.name + ".zip").is_file():
        path = path.with_name(path.name + ".zip")
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(model_path)!r}")
    return path


def _read_sidecar(archive: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    try:
        info = archive.getinfo(SIDECAR_NAME)
    except KeyError:
        raise ModelLoadError(f"{path} has no {SIDECAR_NAME} (saved without save_policy); {TRUST_PICKLE_HINT}") from None
    if info.file_size > _MAX_SIDECAR_BYTES:
        raise ModelLoadError(f"{path}: {SIDECAR_NAME} is larger than 1 MiB; {TRUST_PICKLE_HINT}")
    sidecar = json.loads(archive.read(info).decode("utf-8"))
    if not isinstance(sidecar, dict) or sidecar.get("format") != SIDECAR_FORMAT:
        raise ModelLoadError(f"{path}: {SIDECAR_NAME} is not a taxbench policy sidecar; {TRUST_PICKLE_HINT}")
    if sidecar.get("version") != SIDECAR_VERSION:
        raise ModelLoadError(
            f"{path}: sidecar version {sidecar.get('version')!r} is not {SIDECAR_VERSION} (another taxbench "
            f"version?); {TRUST_PICKLE_HINT}"
        )
    return sidecar


def read_sidecar(model_path: str | Path) -> dict[str, Any] | None:
    """The JSON sidecar of a model zip (arm, env id, spaces, hyper-parameters), or None if it has none.

    Raises:
        FileNotFoundError: If there is no file at ``model_path``.
        ValueError: For an unknown device name or a CUDA device torch cannot see (from ``resolve_device``).
        TypeError: If ``env_or_spaces`` is neither an env nor a pair of spaces.
        ModelLoadError: If the file is not a zip or its sidecar is malformed.
    """
    path = _zip_file(model_path)
    try:
        with zipfile.ZipFile(path) as archive:
            if SIDECAR_NAME not in archive.namelist():
                return None
            return _read_sidecar(archive, path)
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not a readable model zip ({_one_line(exc)})") from None


def _class_name(env: Any) -> str:
    """The class of the (first) env, for messages about envs without a registered id."""
    inner = getattr(env, "unwrapped", env)
    if isinstance(inner, VecEnv):
        envs = getattr(inner, "envs", None)
        inner = getattr(envs[0], "unwrapped", envs[0]) if envs else inner
    return type(inner).__name__


def _target(env_or_spaces: Any) -> tuple[spaces.Space, spaces.Space, str] | None:
    if env_or_spaces is None:
        return None
    if isinstance(env_or_spaces, tuple | list) and len(env_or_spaces) == 2:
        return env_or_spaces[0], env_or_spaces[1], "the given spaces"
    if hasattr(env_or_spaces, "observation_space") and hasattr(env_or_spaces, "action_space"):
        label = env_id_of(env_or_spaces) or _class_name(env_or_spaces)
        return env_or_spaces.observation_space, env_or_spaces.action_space, f"env {label}"
    raise TypeError(
        f"env_or_spaces must be an env, a VecEnv or (observation_space, action_space), got {env_or_spaces!r}"
    )


def _check_fit(
    path: Path, observation_space: spaces.Space, action_space: spaces.Space, trained_on: str | None, target: Any
) -> None:
    if target is None:
        return
    env_obs, env_act, label = target
    if observation_space == env_obs and action_space == env_act:
        return
    model_side = f"observations {describe_space(observation_space)}, actions {describe_space(action_space)}"
    env_side = f"observations {describe_space(env_obs)}, actions {describe_space(env_act)}"
    detail = " (same shapes, different bounds or dtypes)" if model_side == env_side else ""
    raise ModelLoadError(
        f"{path} does not fit {label}: the model was trained on {trained_on or 'an env'} with {model_side}, "
        f"{label} has {env_side}{detail}"
    )


def _build_args(
    sidecar: dict[str, Any],
    path: Path,
    arm: str | None,
    hyperparams: Mapping[str, Any] | None,
    cost_limit: float | None,
) -> tuple[str, dict[str, Any]]:
    """The arm and the ``make_learner`` keywords (seed, cost_limit, hyperparams) to rebuild with."""
    saved_arm = sidecar.get("arm")
    if saved_arm is not None and not isinstance(saved_arm, str):
        raise ValueError(f"bad arm {saved_arm!r} in the sidecar")
    if saved_arm and arm and registry._CLASSES.get(saved_arm) is not registry._CLASSES.get(arm):
        raise ModelLoadError(f"{path} holds a {saved_arm!r} learner, but the run names arm {arm!r}")
    use_arm = saved_arm or arm
    if use_arm not in SAFE_ARMS or use_arm not in registry._CLASSES:
        known = ", ".join(a for a in SAFE_ARMS if a in registry._CLASSES)
        raise ModelLoadError(f"{path}: arm {use_arm!r} has no safe loader (known: {known}); {TRUST_PICKLE_HINT}")
    if sidecar.get("build") is not None:
        build = decode_value(sidecar["build"])
        if not isinstance(build, dict) or not isinstance(build.get("hyperparams"), dict):
            raise ValueError("the sidecar's build record is not an object with hyperparams")
        seed = build.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"bad seed {seed!r} in the sidecar")
        return use_arm, {"seed": seed, "cost_limit": build.get("cost_limit"), "hyperparams": build["hyperparams"]}
    if hyperparams is None:
        reason = _one_line(str(sidecar.get("build_error", "no build record")))
        raise ModelLoadError(f"{path} records no hyper-parameters ({reason}) and none were given; {TRUST_PICKLE_HINT}")
    fallback: dict[str, Any] = {"seed": 0, "hyperparams": dict(hyperparams)}
    if cost_limit is not None:
        fallback["cost_limit"] = cost_limit
    return use_arm, fallback


def _torch_entry(archive: zipfile.ZipFile, name: str, device: str | th.device) -> Any:
    return th.load(io.BytesIO(archive.read(name)), map_location=device, weights_only=True)


def _load_tensors(model: BaseAlgorithm, archive: zipfile.ZipFile, device: str | th.device) -> None:
    """State dicts and torch variables the rebuilt model expects, read with ``weights_only=True``."""
    state_names, variable_names = model._get_torch_save_params()
    entries = {info.filename: info for info in archive.infolist()}
    missing = [f"{name}.pth" for name in state_names if f"{name}.pth" not in entries]
    if missing:
        raise ValueError(f"tensor entries missing: {', '.join(missing)}")
    wanted = [f"{name}.pth" for name in state_names] + [_VARIABLES_ENTRY] * (_VARIABLES_ENTRY in entries)
    if sum(entries[entry].file_size for entry in wanted) > _MAX_TENSOR_BYTES:
        raise ValueError("tensor entries larger than 4 GiB")
    params = {name: _torch_entry(archive, f"{name}.pth", device) for name in state_names}
    if not all(isinstance(state, dict) for state in params.values()):
        raise ValueError("a tensor entry does not hold a state dict")
    model.set_parameters(params, exact_match=True, device=device)
    if variable_names and _VARIABLES_ENTRY in entries:
        variables = _torch_entry(archive, _VARIABLES_ENTRY, device)
        if not isinstance(variables, dict):
            raise ValueError(f"{_VARIABLES_ENTRY} does not hold a dict")
        for name in variable_names:
            value = variables.get(name)
            if value is None:
                continue
            target = recursive_getattr(model, name)
            if not isinstance(value, th.Tensor) or not isinstance(target, th.Tensor) or value.shape != target.shape:
                raise ValueError(f"torch variable {name!r} does not match the learner's")
            target.data = value.data
    if model.use_sde:
        model.policy.reset_noise()


def _restore_state(model: BaseAlgorithm, sidecar: dict[str, Any], arm: str) -> None:
    counters = sidecar.get("counters", {})
    if not isinstance(counters, dict):
        raise ValueError("counters must be a JSON object")
    for name in COUNTERS:
        value = counters.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"counter {name} must be a whole number >= 0, got {value!r}")
        setattr(model, name, value)
    progress = decode_value(counters.get("_current_progress_remaining", 1.0))
    if isinstance(progress, bool) or not isinstance(progress, int | float) or not math.isfinite(progress):
        raise ValueError(f"_current_progress_remaining must be a finite number, got {progress!r}")
    model._current_progress_remaining = float(progress)
    state = sidecar.get("state", {})
    if not isinstance(state, dict):
        raise ValueError("state must be a JSON object")
    for name in SAFE_ARMS[arm].state:
        if name not in state:
            raise ValueError(f"the sidecar has no {name!r} state, which arm {arm!r} needs")
        STATE_CODECS[name].put(model, decode_value(state[name]))


def _load_safely(
    path: Path,
    target: Any,
    arm: str | None,
    hyperparams: Mapping[str, Any] | None,
    cost_limit: float | None,
    device: str,
) -> BaseAlgorithm:
    with zipfile.ZipFile(path) as archive:
        sidecar = _read_sidecar(archive, path)
        observation_space = decode_space(sidecar.get("observation_space"))
        action_space = decode_space(sidecar.get("action_space"))
        env_id = sidecar.get("env_id") if isinstance(sidecar.get("env_id"), str) else None
        _check_fit(path, observation_space, action_space, env_id, target)
        use_arm, build = _build_args(sidecar, path, arm, hyperparams, cost_limit)
        build_as = SAFE_ARMS[use_arm].build_as or use_arm
        model = registry.make_learner(build_as, _SpacesOnlyEnv(observation_space, action_space), device=device, **build)
        setattr(model, registry.ARM_ATTRIBUTE, use_arm)
        model.env = None  # as SB3's load without an env: ready to predict, not to learn
        _load_tensors(model, archive, model.device)
        _restore_state(model, sidecar, use_arm)
    return model


def load_into(model: BaseAlgorithm, model_path: str | Path) -> BaseAlgorithm:
    """Put a saved learner's tensors, counters and arm state into ``model``, reading tensors and JSON only.

    The caller built ``model`` for the same arm and env (e.g. to resume training on its own envs).

    Raises:
        ModelLoadError: A zip without a usable sidecar, of another arm, or whose tensors do not fit ``model``.
    """
    path = _zip_file(model_path)
    arm = getattr(model, registry.ARM_ATTRIBUTE, None)
    try:
        with zipfile.ZipFile(path) as archive:
            sidecar = _read_sidecar(archive, path)
            if sidecar.get("arm") != arm:
                raise ModelLoadError(f"{path} holds a {sidecar.get('arm')!r} learner, not {arm!r}")
            _load_tensors(model, archive, model.device)
            _restore_state(model, sidecar, arm)
    except ModelLoadError:
        raise
    except Exception as exc:  # bad JSON, tensors that do not fit, a damaged zip
        raise ModelLoadError(f"cannot restore {path} without pickle ({_one_line(exc)})") from None
    return model


def load_policy(
    model_path: str | Path,
    env_or_spaces: gym.Env | VecEnv | tuple[spaces.Space, spaces.Space] | None = None,
    *,
    arm: str | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    cost_limit: float | None = None,
    device: str = "cpu",
    trust_pickle: bool = False,
) -> BaseAlgorithm:
    """Load a saved learner for inference without unpickling anything (unless ``trust_pickle``).

    The learner is rebuilt from the zip's sidecar (arm, hyper-parameters, spaces); ``arm``, ``hyperparams``
    and ``cost_limit`` (the run's config.json) are used only when the sidecar records no hyper-parameters,
    and ``arm`` must name the same learner class as the sidecar's (``ppo-shield`` and ``ppo`` do). The
    returned learner has no env attached (as SB3's ``load`` without one); ``predict`` works.

    Args:
        model_path: The model zip (``.zip`` may be omitted).
        env_or_spaces: The env the policy will act in (gymnasium env, VecEnv, or an
            ``(observation_space, action_space)`` pair), checked against the model's spaces; None skips it.
        arm: The run's arm, checked against the sidecar's.
        hyperparams: The run's hyper-parameters (fallback only, see above).
        cost_limit: The run's cost limit (fallback only).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:<i>"`` or ``"auto"``.
        trust_pickle: Load with stable-baselines3's own ``load`` (via
            :func:`~taxbench.policies.registry.load_learner`), which unpickles the zip's ``data`` entry and so
            runs any code in it; also loads zips without a sidecar.

    Returns:
        The learner, of the class its arm uses, with its tensors, multiplier λ and counters restored.

    Raises:
        FileNotFoundError: If there is no file at ``model_path``.
        ValueError: For an unknown device name or a CUDA device torch cannot see (from ``resolve_device``).
        TypeError: If ``env_or_spaces`` is neither an env nor a pair of spaces.
        ModelLoadError: If the zip cannot be loaded without unpickling (no or bad sidecar, unknown arm,
            tensors that do not fit, ...) or its spaces do not fit ``env_or_spaces``; the message is one line.
    """
    path = _zip_file(model_path)
    target = _target(env_or_spaces)
    device = registry.resolve_device(device)
    if trust_pickle:
        try:
            model = registry.load_learner(path, device=device)
        except Exception as exc:  # what the unpickled data raised, or a corrupt file
            raise ModelLoadError(f"cannot load {path}: {_one_line(exc)}") from None
        _check_fit(path, model.observation_space, model.action_space, None, target)
        return model
    try:
        return _load_safely(path, target, arm, hyperparams, cost_limit, device)
    except ModelLoadError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelLoadError(f"{path} is not a readable model zip ({_one_line(exc)})") from None
    except Exception as exc:  # anything else the file caused: bad JSON, tensors that do not fit, ...
        raise ModelLoadError(f"cannot rebuild {path} without pickle ({_one_line(exc)}); {TRUST_PICKLE_HINT}") from None
