"""Everything a run's next step depends on beyond the model zip, as plain JSON, so a resume changes nothing.

A checkpoint's ``model.zip`` holds the weights and optimiser moments (torch tensors). What else decides the next
step is captured here, at a rollout boundary, and restored before training continues:

* the global random streams: Python ``random``, numpy's global ``RandomState``, torch's CPU (and CUDA) generator;
* the learner's non-tensor state: SB3's ``_last_obs``, ``_last_episode_starts``, ``_last_original_obs``,
  ``num_timesteps``, ``_n_updates``, learning-rate progress, ``ep_info_buffer``/``ep_success_buffer``, every
  ``numpy.random.Generator`` it owns (the cost critic's shuffle), its cost tallies and its multiplier objects
  (λ, Adam moments, PID integral and history) — read generically from the learner's attributes;
* the envs: every world's physics (``sim.get_state()``: time, qpos, qvel, act, warm start, mocap, controls;
  where the adapter offers ``exact_state()``, the engine's own serialisation too: PyBullet's contact caches),
  episode step counters (``TimeLimit``, the vector env's ``elapsed``), Monitor tallies, each world's
  ``np_random`` and each space's RNG, task and cost-term attributes, pending seeds, ``VecNormalize`` statistics;
* named extra objects with ``state_dict()``/``load_state_dict()`` (the run's safety-metrics callback).

The env and learner are walked attribute by attribute: objects of ``taxbench`` modules, Gymnasium envs, wrappers
and vector envs, SB3 ``VecEnv``s and ``RunningMeanStd`` are entered; values that are numbers, strings, numpy
arrays and scalars, random generators, and lists/tuples/dicts of those are recorded; anything else (functions,
MuJoCo handles, torch modules, threads) is left alone. An object with ``get_state()`` and ``restore_state()`` (a
simulator adapter) is recorded as its state vector. Arrays that are views of other memory are not recorded (they
alias state recorded elsewhere). On restore the same walk runs over the freshly built run and every difference
is checked first, then written (arrays in place, so aliases stay aliases); a structure that does not match raises
:class:`ResumeStateError` before anything is changed.

Nothing here unpickles: the file is JSON, arrays are base64 bytes with their dtype and shape.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium
import numpy as np
import torch as th
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv

from taxbench.experiments.runs.state_codec import SKIP, ResumeStateError, decode, encode

__all__ = ["FORMAT", "ResumeStateCallback", "ResumeStateError", "capture_resume_state", "restore_resume_state"]

log = logging.getLogger(__name__)

#: Format tag of a resume state; a file with another tag is not restored.
FORMAT = "taxbench-resume/1"

#: Learner attributes not restored: the env (walked on its own), networks and buffers (in the zip, or refilled
#: before they are read), and bookkeeping that ``learn()`` sets afresh or that only times and labels logs.
_MODEL_SKIP = frozenset(
    {
        "env",
        "_vec_normalize_env",
        "policy",
        "rollout_buffer",
        "replay_buffer",
        "_logger",
        "_custom_logger",
        "tensorboard_log",
        "verbose",
        "start_time",
        "_total_timesteps",
        "_num_timesteps_at_start",
        "_cost_collector",
    }
)

#: Attributes left alone in any walked object, by class name: BatchPostStep re-enables its force gathering
#: (and wires the worlds to it) on first use, with the same numbers; the deployment probe builds its env on first
#: use and reseeds it for every episode, so only its counters matter.
_CLASS_SKIP: dict[str, frozenset[str]] = {
    "BatchPostStep": frozenset({"_forces"}),
    "DeployedCostProbe": frozenset({"env"}),
}

_MISSING = object()


# ----------------------------------------------------------------------------- object walk


def _is_sim(obj: Any) -> bool:
    return callable(getattr(obj, "get_state", None)) and callable(getattr(obj, "restore_state", None))


def _walkable(value: Any) -> bool:
    """Whether the walk enters ``value`` (see the module docstring)."""
    if not hasattr(value, "__dict__") or isinstance(value, type):
        return False
    if isinstance(value, th.nn.Module | th.optim.Optimizer | BaseCallback | BaseAlgorithm | BaseBuffer):
        return False
    if isinstance(value, gymnasium.Env | VectorEnv | VecEnv | RunningMeanStd | spaces.Space):
        return True
    module = type(value).__module__
    return module == "taxbench" or module.startswith("taxbench.")


def _fields(obj: Any, skip: frozenset[str] = frozenset()) -> list[tuple[str, Any]]:
    if isinstance(obj, spaces.Space):  # a space's only state is its RNG
        return [("_np_random", obj.__dict__.get("_np_random"))]
    skip = skip | _CLASS_SKIP.get(type(obj).__name__, frozenset())
    return [(name, value) for name, value in vars(obj).items() if name not in skip]


def _is_view(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.base is not None and not value.flags.owndata


def _object_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(_walkable(item) for item in value)


def find_sims(obj: Any, seen: set[int] | None = None) -> list[Any]:
    """Every simulator adapter (an object with ``get_state`` and ``restore_state``) the walk reaches from ``obj``."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if _is_sim(obj):
        return [obj]
    found = []
    for _, value in _fields(obj):
        for item in value if _object_list(value) else [value] if _walkable(value) else []:
            found += find_sims(item, seen)
    return found


def capture_tree(
    obj: Any, seen: set[int], skip: frozenset[str] = frozenset(), before: Mapping[int, np.ndarray] | None = None
) -> dict[str, Any]:
    """Record ``obj``'s state (see the module docstring).

    Args:
        obj: The object.
        seen: Ids of the objects already recorded (each is recorded once).
        skip: Attribute names of ``obj`` not to record.
        before: Each simulator's state before the latest step, by ``id``, where known (see
            :class:`ResumeStateCallback`).
    """
    before = before or {}
    if id(obj) in seen:
        return {"$seen": type(obj).__name__}
    seen.add(id(obj))
    if _is_sim(obj):
        previous = before.get(id(obj))
        exact = getattr(obj, "exact_state", None)
        return {
            "$sim": encode(np.asarray(obj.get_state())),
            "before": None if previous is None else encode(previous),
            "exact": encode(exact()) if callable(exact) else None,
            "class": type(obj).__name__,
        }
    attrs: dict[str, Any] = {}
    children: dict[str, Any] = {}
    for name, value in _fields(obj, skip):
        if _walkable(value):
            children[name] = capture_tree(value, seen, before=before)
        elif _object_list(value):
            children[name] = {"$items": [capture_tree(item, seen, before=before) for item in value]}
        elif not _is_view(value):
            encoded = encode(value)
            if encoded is not SKIP:
                attrs[name] = encoded
    return {"class": type(obj).__name__, "attrs": attrs, "children": children}


def _assign(obj: Any, name: str, saved: Any) -> Callable[[], None] | None:
    """The write that puts a recorded attribute back (None when it already holds that value)."""
    current = getattr(obj, name, _MISSING) if not isinstance(obj, spaces.Space) else obj.__dict__.get(name)
    if current is not _MISSING and not _is_view(current) and encode(current) == saved:
        return None
    value = decode(saved)
    if isinstance(current, np.random.Generator) and isinstance(value, np.random.Generator):
        if type(current.bit_generator) is type(value.bit_generator):
            state = value.bit_generator.state
            return lambda: setattr(current.bit_generator, "state", state)
    if isinstance(current, np.ndarray) and isinstance(value, np.ndarray) and current.flags.writeable:
        if current.shape == value.shape and current.dtype == value.dtype:
            return lambda: np.copyto(current, value)
    if isinstance(current, deque) and isinstance(value, deque) and current.maxlen == value.maxlen:
        return lambda: (current.clear(), current.extend(value))  # type: ignore[func-returns-value]
    return lambda: setattr(obj, name, value)


def _plan_sim(sim: Any, saved: Mapping[str, Any], path: str) -> Callable[[], None]:
    if not _is_sim(sim):
        raise ResumeStateError(f"{path} has no get_state/restore_state")
    state = decode(saved["$sim"])
    previous = decode(saved.get("before"))
    exact = decode(saved.get("exact"))
    if exact is not None and callable(getattr(sim, "restore_exact_state", None)):
        return lambda: _warn_unless(sim.restore_exact_state(state, exact), f"{path}'s solver caches")
    if previous is not None and callable(getattr(sim, "restore_stepped_state", None)):
        return lambda: sim.restore_stepped_state(previous, state)  # derived quantities too
    return lambda: sim.restore_state(state)


def _warn_unless(restored: bool, what: str) -> None:
    if not restored:
        log.warning("%s did not fit the rebuilt world; resumed from positions and velocities only", what)


def plan_tree(obj: Any, saved: Mapping[str, Any], ops: list[Callable[[], None]], path: str) -> None:
    """Append to ``ops`` the writes that restore ``saved`` (from :func:`capture_tree`) into ``obj``.

    Raises:
        ResumeStateError: If ``obj`` is not built like the object that was recorded.
    """
    if "$seen" in saved:
        return
    if saved.get("class") != type(obj).__name__:
        raise ResumeStateError(f"{path} is a {type(obj).__name__}, the checkpoint recorded a {saved.get('class')}")
    if "$sim" in saved:
        ops.append(_plan_sim(obj, saved, path))
        return
    for name, encoded in saved["attrs"].items():
        op = _assign(obj, name, encoded)
        if op is not None:
            ops.append(op)
    for name, child in saved["children"].items():
        value = getattr(obj, name, _MISSING)
        if "$items" in child:
            if not isinstance(value, list | tuple) or len(value) != len(child["$items"]):
                raise ResumeStateError(f"{path}.{name} does not hold {len(child['$items'])} objects")
            for i, (item, item_state) in enumerate(zip(value, child["$items"], strict=True)):
                plan_tree(item, item_state, ops, f"{path}.{name}[{i}]")
        elif value is _MISSING or not _walkable(value):
            raise ResumeStateError(f"{path}.{name} is missing or not an object")
        else:
            plan_tree(value, child, ops, f"{path}.{name}")


# ----------------------------------------------------------------------------- global random streams


def capture_global_rng() -> dict[str, Any]:
    """Python ``random``, numpy's global ``RandomState`` and torch's CPU and CUDA generators."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": encode(np.random.get_state(legacy=False)),
        "torch": encode(th.get_rng_state().numpy()),
    }
    if th.cuda.is_available() and th.cuda.is_initialized():
        state["cuda"] = [encode(s.numpy()) for s in th.cuda.get_rng_state_all()]
    return state


def _plan_global_rng(state: Mapping[str, Any], ops: list[Callable[[], None]]) -> None:
    py = state["python"]
    python_state = (int(py["version"]), tuple(int(v) for v in py["internal"]), py["gauss"])
    numpy_state = decode(state["numpy"])
    torch_state = th.from_numpy(decode(state["torch"]))
    ops.append(lambda: random.setstate(python_state))
    ops.append(lambda: np.random.set_state(numpy_state))
    ops.append(lambda: th.set_rng_state(torch_state))
    if "cuda" in state and th.cuda.is_available():
        cuda_states = [th.from_numpy(decode(s)) for s in state["cuda"]]
        if len(cuda_states) == th.cuda.device_count():
            ops.append(lambda: th.cuda.set_rng_state_all(cuda_states))


# ----------------------------------------------------------------------------- entry points


def capture_resume_state(
    model: BaseAlgorithm,
    venv: VecEnv,
    extras: Mapping[str, Any] | None = None,
    before: Mapping[int, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Everything the next step of ``model`` training on ``venv`` depends on beyond the model zip, as JSON.

    Take it at a rollout boundary (``on_rollout_start``, or after ``learn()`` returned): the rollout buffer is
    not recorded, because the next rollout overwrites it before reading it. Use :class:`ResumeStateCallback`,
    which also supplies ``before``.

    Args:
        model: The learner.
        venv: Its training env (as passed to the learner).
        extras: Named objects with ``state_dict()`` (e.g. ``{"metrics": SafetyMetricsCallback}``).
        before: Each simulator's state before the latest env step, by ``id`` (restores MuJoCo's derived
            quantities exactly; without it they are recomputed at the current state).

    Returns:
        A JSON-serialisable dict (strict JSON: no NaN), for :func:`restore_resume_state`.
    """
    seen: set[int] = set()
    return {
        "format": FORMAT,
        "env": capture_tree(venv, seen, before=before),
        "model": capture_tree(model, seen, _MODEL_SKIP),
        "extras": {name: encode(obj.state_dict()) for name, obj in (extras or {}).items()},
        "rng": capture_global_rng(),  # last: nothing above draws, but keep the order obvious
    }


def restore_resume_state(
    state: Mapping[str, Any], model: BaseAlgorithm, venv: VecEnv, extras: Mapping[str, Any] | None = None
) -> None:
    """Put a :func:`capture_resume_state` state back into a freshly built ``venv`` and the loaded ``model``.

    Every write is planned (and checked) first and made only if all fit, the global random streams last: call
    this right before ``model.learn(..., reset_num_timesteps=False)`` with nothing drawing random numbers in
    between. ``extras`` receive ``load_state_dict(state)``.

    Raises:
        ResumeStateError: If the state has another format or does not fit ``model``/``venv``; nothing was changed.
    """
    if not isinstance(state, Mapping) or state.get("format") != FORMAT:
        raise ResumeStateError(f"not a {FORMAT} resume state")
    ops: list[Callable[[], None]] = []
    try:
        plan_tree(venv, state["env"], ops, "env")
        plan_tree(model, state["model"], ops, "model")
        for name, obj in (extras or {}).items():
            extra_state = decode(state["extras"][name])
            ops.append(lambda obj=obj, extra_state=extra_state: obj.load_state_dict(extra_state))
        _plan_global_rng(state["rng"], ops)
    except (KeyError, TypeError) as exc:
        raise ResumeStateError(f"malformed resume state: {type(exc).__name__}: {exc}") from exc
    for op in ops:
        op()


class ResumeStateCallback(BaseCallback):
    """Captures resume states for checkpoints: :meth:`capture` at a rollout boundary.

    It also records every simulator's state just before each rollout's last env step (once per rollout for
    on-policy learners; before every step for off-policy ones, whose rollouts may end after any step), so the
    state captured at the next boundary can replay that step and restore MuJoCo's derived quantities bit for bit
    (see ``MujocoSim.restore_stepped_state``). Put it in the learner's callback list.

    Args:
        extras: Named objects with ``state_dict()``/``load_state_dict()`` saved alongside.
    """

    def __init__(self, extras: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.extras = dict(extras or {})
        self._sims: list[Any] = []
        self._before: dict[int, np.ndarray] = {}
        self._latest: dict[int, np.ndarray] = {}  # off-policy: each simulator's state after the latest step

    def _states(self) -> dict[int, np.ndarray]:
        return {id(sim): np.asarray(sim.get_state()) for sim in self._sims}

    def _on_training_start(self) -> None:
        self._sims = find_sims(self.training_env)
        self._before = {}
        self._latest = self._states()

    def _on_step(self) -> bool:
        if "n_rollout_steps" not in self.locals:  # off-policy: the state after the previous step preceded this one
            self._before, self._latest = self._latest, self._states()
            return True
        step, last = self.locals.get("n_steps"), self.locals.get("n_rollout_steps")
        if isinstance(step, int) and isinstance(last, int) and (step == last - 2 or last == 1):
            # the next env step is the rollout's last (with 1-step rollouts, every step is)
            self._before = self._states()
        return True

    def capture(self) -> dict[str, Any]:
        """The resume state now (call at a rollout boundary)."""
        return capture_resume_state(self.model, self.training_env, self.extras, self._before)
