"""Learner registry: build and load the learner of each safety arm by name.

Both arms take the same hyper-parameters (SB3 PPO defaults unless given), so a pair trained with the
same ``seed`` and ``hyperparams`` differs only in the safety mechanism.
"""

from __future__ import annotations

import json
import math
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.type_aliases import GymEnv

from .ppo_lag import PPOLagrangian

__all__ = ["ARMS", "LAGRANGIAN_KWARGS", "load_learner", "make_learner", "resolve_device"]

#: Names of the learner arms, unconstrained first.
ARMS = ("ppo", "ppo-lag")
_CLASSES: dict[str, type[PPO]] = {"ppo": PPO, "ppo-lag": PPOLagrangian}
#: Constructor kwargs that only the constrained arm understands; ``make_learner("ppo", ...)`` drops them
#: so one ``hyperparams`` dict can serve both members of a pair.
LAGRANGIAN_KWARGS = frozenset(
    {
        "lagrange_lr",
        "lagrange_init",
        "lagrange_pinned",
        "lagrange_optimizer",
        "cost_gamma",
        "cost_gae_lambda",
        "cost_critic_lr",
        "cost_batch_size",
    }
)
_RESERVED = frozenset({"env", "seed", "device", "verbose", "cost_limit", "_init_setup_model"})
#: Attribute saved in the model zip to tell ``load_learner`` which class to rebuild.
ARM_ATTRIBUTE = "taxbench_arm"


def resolve_device(device: str = "auto") -> str:
    """Turn ``"auto"`` into ``"cuda"`` when a GPU is visible, else ``"cpu"``.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"``.

    Returns:
        The concrete device string.

    Raises:
        ValueError: For any other device name.
    """
    if device == "auto":
        return "cuda" if th.cuda.is_available() else "cpu"
    if device == "cpu" or device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {device!r}")


def _check_arm(arm: str) -> None:
    if arm not in _CLASSES:
        raise ValueError(f"unknown arm {arm!r}; valid arms: {', '.join(ARMS)}")


def make_learner(
    arm: str,
    env: GymEnv | str,
    *,
    seed: int,
    device: str = "auto",
    cost_limit: float = 25.0,
    hyperparams: dict[str, Any] | None = None,
    verbose: int = 0,
) -> PPO:
    """Build the SB3 learner of one arm.

    Args:
        arm: One of :data:`ARMS`: ``"ppo"`` (unconstrained) or ``"ppo-lag"`` (PPO-Lagrangian).
        env: Environment, VecEnv or registered id (SB3 wraps it).
        seed: Seed of every random stream of the learner.
        device: ``"auto"`` | ``"cpu"`` | ``"cuda"`` (see :func:`resolve_device`).
        cost_limit: Episode-cost limit of the constrained arm (validated for both, used by ``ppo-lag``).
        hyperparams: Constructor kwargs, the same for both arms (SB3 PPO defaults otherwise); may hold
            ``"policy"`` (default ``"MlpPolicy"``). Keys in :data:`LAGRANGIAN_KWARGS` are ignored by ``"ppo"``.
        verbose: SB3 verbosity.

    Returns:
        A :class:`stable_baselines3.PPO` (or :class:`PPOLagrangian`) ready to ``learn``.

    Raises:
        ValueError: Unknown arm, negative or non-finite ``cost_limit``, or a reserved key in ``hyperparams``.
    """
    _check_arm(arm)
    if not isinstance(cost_limit, int | float) or not math.isfinite(cost_limit) or cost_limit < 0:
        raise ValueError(f"cost_limit must be a finite number >= 0, got {cost_limit!r}")
    kwargs = dict(hyperparams or {})
    reserved = sorted(_RESERVED & kwargs.keys())
    if reserved:
        raise ValueError(f"hyperparams may not set {reserved}: pass them as make_learner arguments")
    policy = kwargs.pop("policy", "MlpPolicy")
    common: dict[str, Any] = {"seed": seed, "device": resolve_device(device), "verbose": verbose}
    if arm == "ppo":
        kwargs = {k: v for k, v in kwargs.items() if k not in LAGRANGIAN_KWARGS}
        model: PPO = PPO(policy, env, **common, **kwargs)
    else:
        model = PPOLagrangian(policy, env, cost_limit=float(cost_limit), **common, **kwargs)
    setattr(model, ARM_ATTRIBUTE, arm)
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
    if arm is None:  # saved outside make_learner: a PPOLagrangian has a pickled `lagrange`
        arm = "ppo-lag" if "lagrange" in data else "ppo"
    _check_arm(arm)
    return arm


def load_learner(path: str | Path, env: GymEnv | None = None, device: str = "auto") -> PPO:
    """Load a learner saved with ``model.save(path)``, choosing the right class.

    Args:
        path: The ``.zip`` written by SB3 (the suffix may be omitted, as with SB3's ``load``).
        env: Optional environment to attach (needed to continue training).
        device: ``"auto"`` | ``"cpu"`` | ``"cuda"``.

    Returns:
        The loaded :class:`stable_baselines3.PPO` or :class:`PPOLagrangian`.

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
    return model
