"""A run's policy on disk: saved with a JSON sidecar, loaded back without unpickling (unless the user opts in).

Every subcommand that loads a model — ``eval``, ``gate``, ``rollout``, ``view``, ``shield`` — goes through
:func:`load_run_policy` or :func:`load_model_for_env`, which rebuild the learner from JSON and read only tensors
(:func:`taxbench.policies.safe_load.load_policy`). A model file is data: code in its pickled ``data`` entry
never runs unless ``trust_pickle`` (``--trust-pickle``) says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium

from taxbench.experiments.runs.config import RunConfig
from taxbench.experiments.runs.runfolder import MODEL_FILE

#: The file that marks a run whose policy came from the GPU path (``policy.pt`` holds its tensors).
WARP_POLICY_FILE = "policy.json"
#: The GPU path's policy tensors (``policies/gpu/train.py: POLICY_TENSORS``, not imported: it needs rsl-rl).
WARP_TENSORS_FILE = "policy.pt"

__all__ = ["TRUST_PICKLE_HELP", "has_policy", "load_model_for_env", "load_run_policy", "save_run_policy"]

#: ``--trust-pickle`` help, the same on every subcommand that loads a model.
TRUST_PICKLE_HELP = (
    "load the model with stable-baselines3's unpickler, which RUNS ANY CODE the file carries: only for models "
    "from a source you trust (needed for model zips saved before taxbench 0.2, which have no taxbench.json)"
)


def save_run_policy(model: Any, path: str | Path, env_id: str) -> None:
    """Save ``model`` as SB3 does, plus the JSON sidecar that lets it load without unpickling."""
    from taxbench.policies.safe_load import save_policy

    save_policy(model, path, env_id=env_id)


def _env(cfg: RunConfig | None, env_id: str, env_kwargs: dict[str, Any] | None = None) -> gymnasium.Env:
    """The env a policy acts in, as its arm sees it (e.g. Saute's budget appended).

    Its spaces and id are what a loaded model is checked against (a mismatch names both envs).
    """
    from taxbench.policies import env_wrapper

    default_kwargs = cfg.env_kwargs if cfg is not None else {}
    env = gymnasium.make(env_id, **(default_kwargs if env_kwargs is None else env_kwargs))
    wrapper = env_wrapper(cfg.arm, dict(cfg.hyperparams)) if cfg is not None else None
    return wrapper(env) if wrapper is not None else env


def has_policy(run_dir: str | Path) -> bool:
    """Whether a run folder holds a trained policy: ``model.zip``, or ``policy.json`` from the GPU path."""
    return (Path(run_dir) / MODEL_FILE).is_file() or (Path(run_dir) / WARP_POLICY_FILE).is_file()


def load_run_policy(run_dir: str | Path, cfg: RunConfig, *, device: str = "cpu", trust_pickle: bool = False) -> Any:
    """The learner saved in a run folder, checked against the run's env.

    That is ``model.zip``, or for a run trained on the GPU path ``policy.pt`` + ``policy.json`` (tensors, JSON).

    Raises:
        FileNotFoundError: No model.zip (the run has not finished).
        ValueError: The model cannot be loaded without unpickling (the message names ``--trust-pickle``), or
            it does not fit the run's env (the message names both).
    """
    path = Path(run_dir) / MODEL_FILE
    if not path.is_file() and (Path(run_dir) / WARP_POLICY_FILE).is_file():  # trained on the GPU path
        from taxbench.policies.gpu.train import load_policy as load_warp_policy

        return load_warp_policy(run_dir)  # torch tensors (weights_only) and JSON: nothing to unpickle
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the run has not finished training")
    return load_model_for_env(path, cfg.env_id, cfg.env_kwargs, cfg, device=device, trust_pickle=trust_pickle)


def load_model_for_env(
    model_path: str | Path,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    cfg: RunConfig | None = None,
    *,
    device: str = "cpu",
    trust_pickle: bool = False,
) -> Any:
    """A model zip (from a run folder or bare) for ``env_id``, checked against that env's spaces.

    ``cfg`` is the run's config when the zip came with one (arm, hyper-parameters, wrapper); a bare zip is
    rebuilt from its sidecar alone.
    """
    from taxbench.policies.safe_load import load_policy

    env = _env(cfg, env_id, env_kwargs)
    try:
        return load_policy(
            model_path,
            env,
            arm=cfg.arm if cfg is not None else None,
            hyperparams=cfg.hyperparams if cfg is not None else None,
            cost_limit=cfg.cost_limit if cfg is not None else None,
            device=device,
            trust_pickle=trust_pickle,
        )
    finally:
        env.close()
