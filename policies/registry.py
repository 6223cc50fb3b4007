"""Learner registry: build and load the learner of each safety arm by name.

Arms of one family take the same hyper-parameters (SB3 PPO or SAC defaults unless given), so a pair trained
with the same ``seed`` and ``hyperparams`` differs only in the safety mechanism. Safety settings travel in
the same ``hyperparams`` dict under their own keys (:data:`SAFETY_KWARGS`); each arm drops the ones it does
not use, so one dict serves every arm. Arms whose mechanism sits between the policy and the env
(``ppo-shield``, ``saute``) also give an env wrapper through :func:`env_wrapper`.

Families: ``ppo`` with ``ppo-lag``, ``ppo-penalty``, ``ppo-shield``, ``cup`` and ``saute``; ``trpo`` (sb3-contrib)
with ``cpo``, which take the on-policy hyper-parameters that TRPO accepts (PPO's own, such as ``n_epochs`` or
``clip_range``, are dropped); ``sac`` with ``sac-lag``.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch as th
from sb3_contrib import TRPO
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import GymEnv

from .cpo import CPO
from .cup import CUP
from .lagrange import DEFAULT_COST_LIMIT, check_cost_limit
from .logger import run_logger
from .penalty import PPOPenalty
from .ppo_lag import PPOLagrangian
from .sac_lag import SACLagrangian
from .saute import DEFAULT_UNSAFE_REWARD, make_saute_wrapper, saute_budget_of
from .shield import make_shield_wrapper
from .track import PPOTrack

__all__ = [
    "ARMS",
    "CONSTRAINED_ARMS",
    "DEPLOY_AWARE_ARMS",
    "LAGRANGIAN_KWARGS",
    "SAFETY_KWARGS",
    "env_wrapper",
    "load_learner",
    "make_learner",
    "resolve_device",
    "unconstrained_partner",
]

#: Names of the learner arms: each unconstrained learner, then its safety arms.
ARMS = ("ppo", "ppo-lag", "ppo-penalty", "ppo-shield", "ppo-track", "cup", "saute", "trpo", "cpo", "sac", "sac-lag")
#: Arms with a safety mechanism, and the unconstrained arm each is paired with.
_PARTNERS = {
    "ppo-lag": "ppo",
    "ppo-penalty": "ppo",
    "ppo-shield": "ppo",
    "ppo-track": "ppo",
    "cup": "ppo",
    "saute": "ppo",
    "cpo": "trpo",
    "sac-lag": "sac",
}
CONSTRAINED_ARMS = tuple(_PARTNERS)
_CLASSES: dict[str, type[BaseAlgorithm]] = {
    "ppo": PPO,
    "ppo-lag": PPOLagrangian,
    "ppo-penalty": PPOPenalty,
    "ppo-shield": PPO,
    "ppo-track": PPOTrack,
    "cup": CUP,
    "saute": PPO,
    "trpo": TRPO,
    "cpo": CPO,
    "sac": SAC,
    "sac-lag": SACLagrangian,
}
#: Constructor kwargs of PPO-Lagrangian beyond PPO's.
LAGRANGIAN_KWARGS = frozenset(
    {
        "lagrange_lr",
        "lagrange_init",
        "lagrange_pinned",
        "lagrange_optimizer",
        "lagrange_method",
        "pid_kp",
        "pid_ki",
        "pid_kd",
        "cost_gamma",
        "cost_gae_lambda",
        "cost_critic_lr",
        "cost_batch_size",
    }
)
_SAC_LAG_KWARGS = frozenset(
    {
        "lagrange_lr",
        "lagrange_init",
        "lagrange_pinned",
        "lagrange_optimizer",
        "lagrange_method",
        "pid_kp",
        "pid_ki",
        "pid_kd",
        "lagrange_interval",
        "cost_gamma",
    }
)
_SHIELD_KWARGS = frozenset({"shield_speed_fraction", "shield_clearance"})
_TRACK_KWARGS = frozenset({"track_speed_fraction"})
#: The deployment-aware constraint of ppo-lag and sac-lag (policies/deploy_cost.py): λ also sees the
#: deterministic policy's episode cost.
_DEPLOY_KWARGS = frozenset({"deploy_cost_episodes", "deploy_cost_every"})
_CUP_KWARGS = LAGRANGIAN_KWARGS | {"projection_target_kl", "projection_coef"}
_CPO_KWARGS = frozenset({"cost_gamma", "cost_gae_lambda", "cost_critic_lr", "cost_batch_size"})
#: Read by :func:`env_wrapper` for ``saute``, never passed to a learner.
_SAUTE_KWARGS = frozenset({"saute_budget", "saute_unsafe_reward"})
#: Every safety-mechanism kwarg; an arm keeps only its own (see :data:`_ACCEPTS`) and drops the rest.
SAFETY_KWARGS = (
    LAGRANGIAN_KWARGS
    | _SAC_LAG_KWARGS
    | _SHIELD_KWARGS
    | _TRACK_KWARGS
    | _CUP_KWARGS
    | _SAUTE_KWARGS
    | _DEPLOY_KWARGS
    | {"penalty_coef"}
)
_ACCEPTS: dict[str, frozenset[str]] = {
    "ppo": frozenset(),
    "ppo-lag": LAGRANGIAN_KWARGS | _DEPLOY_KWARGS,
    "ppo-penalty": frozenset({"penalty_coef"}),
    "ppo-shield": frozenset(),
    "ppo-track": _TRACK_KWARGS,
    "cup": _CUP_KWARGS,
    "saute": frozenset(),
    "trpo": frozenset(),
    "cpo": _CPO_KWARGS,
    "sac": frozenset(),
    "sac-lag": _SAC_LAG_KWARGS | _DEPLOY_KWARGS,
}
#: Arms with the deployment-aware constraint (``deploy_cost_episodes``; policies/deploy_cost.py).
DEPLOY_AWARE_ARMS: tuple[str, ...] = tuple(arm for arm, accepted in _ACCEPTS.items() if _DEPLOY_KWARGS <= accepted)
#: Arms whose learner takes the episode-cost limit ``cost_limit``.
COST_LIMIT_ARMS = frozenset({"ppo-lag", "cup", "cpo", "sac-lag"})
#: Keywords sb3-contrib's TRPO accepts: the ``trpo`` and ``cpo`` arms drop the other (PPO-only) ones.
_TRPO_KWARGS = frozenset(inspect.signature(TRPO.__init__).parameters) - {"self"}
_RESERVED = frozenset({"env", "seed", "device", "verbose", "cost_limit", "_init_setup_model"})
#: Attribute saved in the model zip to tell ``load_learner`` which class to rebuild.
ARM_ATTRIBUTE = "taxbench_arm"
#: Attribute holding the ``make_learner`` arguments (seed, cost_limit, hyperparams) that ``save_policy`` records.
BUILD_ATTRIBUTE = "taxbench_build"


def resolve_device(device: str = "auto") -> str:
    """Turn ``"auto"`` into ``"cuda"`` when a GPU is visible, else ``"cpu"``; refuse a device that is not there.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"``.

    Returns:
        The concrete device string.

    Raises:
        ValueError: For any other device name, or a CUDA device this torch build or machine does not have
            (a run never records ``cuda`` while training on the CPU).
    """
    if device == "auto":
        return "cuda" if th.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        index = int(device[5:]) if ":" in device else 0
        if not th.cuda.is_available():
            build = f"CUDA {th.version.cuda} build" if th.version.cuda else "CPU-only build"
            raise ValueError(f"device {device!r} asked for, but torch {th.__version__} ({build}) sees no CUDA device")
        if index >= th.cuda.device_count():
            visible = th.cuda.device_count()
            raise ValueError(f"device {device!r} asked for, but only {visible} CUDA device(s) are visible")
        return device
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {device!r}")


def _check_arm(arm: str) -> None:
    if arm not in _CLASSES:
        raise ValueError(f"unknown arm {arm!r}; valid arms: {', '.join(ARMS)}")


def unconstrained_partner(arm: str) -> str:
    """The unconstrained arm a safety arm is paired with (``sac`` for ``sac-lag``, ``trpo`` for ``cpo``, else ppo)."""
    _check_arm(arm)
    return _PARTNERS.get(arm, arm)


def env_wrapper(arm: str, hyperparams: dict[str, Any] | None = None) -> Callable[[Any], Any] | None:
    """The per-env wrapper an arm needs around each training (and evaluation) env, or None.

    Args:
        arm: One of :data:`ARMS`.
        hyperparams: The run's hyperparams; ``ppo-shield`` reads ``shield_speed_fraction`` (default 1) and
            ``shield_clearance`` (m, default 0) from it; ``saute`` reads ``saute_budget`` (the episode-cost
            budget, default the default cost limit; set by the named intensities) and ``saute_unsafe_reward``.

    Returns:
        A picklable one-argument function ``env -> wrapped env`` (``ppo-shield``, ``saute``), or None.
    """
    _check_arm(arm)
    hp = hyperparams or {}
    if arm == "saute":
        budget = float(hp.get("saute_budget", DEFAULT_COST_LIMIT))
        return make_saute_wrapper(budget, float(hp.get("saute_unsafe_reward", DEFAULT_UNSAFE_REWARD)))
    if arm != "ppo-shield":
        return None
    return make_shield_wrapper(float(hp.get("shield_speed_fraction", 1.0)), float(hp.get("shield_clearance", 0.0)))


def _check_saute_env(env: Any, cost_limit: float) -> None:
    """``saute`` trains plain PPO: refuse an env without the Saute wrapper, or one whose budget is not the limit."""
    budget = saute_budget_of(env)
    if budget is None:
        raise ValueError("the saute arm needs an env wrapped by env_wrapper('saute', hyperparams) (SauteWrapper)")
    if budget != float(cost_limit) and math.isfinite(budget):  # an infinite budget (no constraint) pairs with any
        raise ValueError(
            f"saute: the env's budget ({budget:g}, hyperparams['saute_budget']) differs from cost_limit "
            f"({float(cost_limit):g}); an explicit limit d<N> needs saute_budget = N too"
        )


def make_learner(
    arm: str,
    env: GymEnv | str,
    *,
    seed: int,
    device: str = "auto",
    cost_limit: float = DEFAULT_COST_LIMIT,
    hyperparams: dict[str, Any] | None = None,
    verbose: int = 0,
) -> BaseAlgorithm:
    """Build the SB3 learner of one arm.

    Args:
        arm: One of :data:`ARMS`: ``ppo``, ``ppo-lag`` (PPO-Lagrangian; ``lagrange_method`` ``grad`` or
            ``pid``), ``ppo-penalty`` (reward − ``penalty_coef``·cost), ``ppo-shield`` (PPO; give it an env
            wrapped by :func:`env_wrapper`), ``ppo-track`` (PPO held under ``track_speed_fraction`` × the speed
            limit by its reward), ``cup`` (CUP), ``saute`` (PPO on the Saute-wrapped env of
            :func:`env_wrapper`), ``trpo`` (sb3-contrib TRPO), ``cpo`` (CPO), ``sac``, ``sac-lag`` (SAC-Lagrangian).
        env: Environment, VecEnv or registered id (SB3 wraps it).
        seed: Seed of every random stream of the learner.
        device: ``"auto"`` | ``"cpu"`` | ``"cuda"`` (see :func:`resolve_device`).
        cost_limit: Episode-cost limit (validated for all, used by ``*-lag``, ``cup``, ``cpo``; for ``saute`` it must
            equal the budget of the env's Saute wrapper).
        hyperparams: Constructor kwargs, the same for every arm of a family (SB3 defaults otherwise); may hold
            ``"policy"`` (default ``"MlpPolicy"``). Keys in :data:`SAFETY_KWARGS` are passed only to the arms
            that use them.
        verbose: SB3 verbosity.

    Returns:
        An SB3 algorithm (:class:`~stable_baselines3.PPO`, :class:`PPOLagrangian`, :class:`PPOPenalty`,
        :class:`PPOTrack`, :class:`~stable_baselines3.SAC` or :class:`SACLagrangian`) ready to ``learn``.

    Raises:
        ValueError: Unknown arm, negative or non-finite ``cost_limit``, or a reserved key in ``hyperparams``.
    """
    _check_arm(arm)
    check_cost_limit(cost_limit)
    given = copy.deepcopy(dict(hyperparams or {}))  # SB3 writes into nested dicts (SAC: policy_kwargs["use_sde"])
    kwargs = copy.deepcopy(given)
    reserved = sorted(_RESERVED & kwargs.keys())
    if reserved:
        raise ValueError(f"hyperparams may not set {reserved}: pass them as make_learner arguments")
    policy = kwargs.pop("policy", "MlpPolicy")
    common: dict[str, Any] = {"seed": seed, "device": resolve_device(device), "verbose": verbose}
    kwargs = {k: v for k, v in kwargs.items() if k not in SAFETY_KWARGS or k in _ACCEPTS[arm]}
    if isinstance(kwargs.get("train_freq"), list):  # JSON has no tuples: [1, "episode"] → (1, "episode")
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    if arm in COST_LIMIT_ARMS:
        common["cost_limit"] = float(cost_limit)
    if arm in ("trpo", "cpo"):
        kwargs = {k: v for k, v in kwargs.items() if k in _TRPO_KWARGS or k in _ACCEPTS[arm]}
        if kwargs.get("target_kl", 0.0) is None:  # PPO's "no early stop"; TRPO's trust region keeps its default
            del kwargs["target_kl"]
    if arm == "saute":
        _check_saute_env(env, cost_limit)
    model = _CLASSES[arm](policy, env, **common, **kwargs)
    setattr(model, ARM_ATTRIBUTE, arm)
    build = {"seed": seed, "cost_limit": float(cost_limit), "hyperparams": given}
    setattr(model, BUILD_ATTRIBUTE, build)
    model.set_logger(run_logger(verbose=verbose))  # SB3's default logger leaves an SB3-<date> folder in /tmp
    return model


def _zip_path(path: str | Path) -> Path:
    candidate = Path(path)
    if not candidate.exists() and candidate.suffix != ".zip":
        with_suffix = candidate.with_name(candidate.name + ".zip")
        if with_suffix.exists():
            return with_suffix
    if not candidate.is_file():
        raise FileNotFoundError(f"no saved learner at {str(path)!r}")
    return candidate


def _saved_arm(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data").decode("utf-8"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError, OSError) as exc:
        raise ValueError(f"{str(path)!r} is not a readable SB3 model zip ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{str(path)!r} is not a readable SB3 model zip (its 'data' entry is not an object)")
    arm = data.get(ARM_ATTRIBUTE)
    if arm is None:  # saved outside make_learner: guess from the pickled attributes
        if "cg_max_steps" in data:  # sb3-contrib's TRPO and CPO
            arm = "cpo" if "episode_cost_estimate" in data else "trpo"
        elif "projection_target_kl" in data:
            arm = "cup"
        elif "lagrange" in data:
            arm = "sac-lag" if "lagrange_interval" in data else "ppo-lag"
        elif "track_speed_fraction" in data:
            arm = "ppo-track"
        elif "penalty_coef" in data:
            arm = "ppo-penalty"
        else:
            arm = "sac" if "buffer_size" in data else "ppo"
    _check_arm(arm)
    return arm


def load_learner(path: str | Path, env: GymEnv | None = None, device: str = "auto") -> BaseAlgorithm:
    """Load a learner saved with ``model.save(path)``, choosing the right class.

    Args:
        path: The ``.zip`` written by SB3 (the suffix may be omitted, as with SB3's ``load``).
        env: Optional environment to attach (needed to continue training).
        device: ``"auto"`` | ``"cpu"`` | ``"cuda"``.

    Returns:
        The loaded learner, of the class its arm uses.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is not a valid model zip or cannot be restored.
    """
    zip_path = _zip_path(path)
    arm = _saved_arm(zip_path)
    try:
        model = _CLASSES[arm].load(zip_path, env=env, device=resolve_device(device))
    except (zipfile.BadZipFile, EOFError, KeyError, RuntimeError, pickle.UnpicklingError, AssertionError) as exc:
        raise ValueError(
            f"cannot restore {arm!r} learner from {str(zip_path)!r} ({type(exc).__name__}: {exc})"
        ) from exc
    setattr(model, ARM_ATTRIBUTE, arm)
    model.set_logger(run_logger(verbose=model.verbose))
    return model
