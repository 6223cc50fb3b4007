"""``taxbench shield``: the price of safety without retraining.

An unconstrained policy is deployed behind the ``ppo-shield`` safety filter at a named intensity and evaluated on
the run's own evaluation episodes. The result is written as a run folder of its own, arm ``ppo-shield`` at
intensity ``deploy-<level>`` next to the source run, so ``taxbench report`` pairs it with the unconstrained run of
the same seed like any other arm: its τ and g are what the shield costs and buys with no training at all.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from taxbench.experiments.runs.config import load_run_config, write_run_config
from taxbench.experiments.runs.protocols import evaluate_and_write
from taxbench.experiments.runs.runfolder import MODEL_FILE, read_status, run_dir, write_status

SHIELD_ARM = "ppo-shield"


def deploy_shield(
    source: str | Path, intensity: str = "moderate", out: str | Path | None = None, trust_pickle: bool = False
) -> tuple[Path, dict]:
    """Evaluate the finished unconstrained run ``source`` behind the shield; return the new run folder and summary.

    Args:
        source: A finished run folder of an unconstrained arm (``ppo``).
        intensity: Named intensity giving the shield's speed fraction and clearance (see ``taxbench envs``).
        out: Output root (default: the source run's output root, so the report finds both).
        trust_pickle: Load the model with SB3's unpickler (runs code the file carries); default: tensors only.

    Raises:
        FileNotFoundError: no config or model in ``source``.
        ValueError: ``source`` is not a finished unconstrained run, or the env cannot be shielded.
    """
    from taxbench.experiments.runs.policy_files import load_run_policy
    from taxbench.policies import env_wrapper
    from taxbench.policies.presets import intensity_settings

    source = Path(source)
    status = read_status(source)
    cfg = load_run_config(source)
    if status is None or status.get("state") != "done":
        raise ValueError(f"{source} is not a finished run (status: {None if status is None else status.get('state')})")
    if cfg.intensity != "off":
        raise ValueError(f"{source} is a {cfg.arm}-{cfg.intensity} run: deploy the shield on an unconstrained one")
    _, dose = intensity_settings(cfg.env_id, SHIELD_ARM, intensity)
    deployed = replace(cfg, arm=SHIELD_ARM, intensity=f"deploy-{intensity}", hyperparams={**cfg.hyperparams, **dose})
    root = Path(out) if out is not None else source.parents[3]
    target = run_dir(root, deployed.experiment, deployed.env_id, deployed.arm, deployed.intensity, deployed.seed)
    target.mkdir(parents=True, exist_ok=True)
    write_run_config(deployed, target)
    write_status(target, "running", deployed_from=str(source))
    try:
        model = load_run_policy(source, cfg, trust_pickle=trust_pickle)
        summary = evaluate_and_write(model, deployed, target, wrap_env=env_wrapper(SHIELD_ARM, deployed.hyperparams))
    except Exception as exc:
        write_status(target, "failed", error=f"{type(exc).__name__}: {exc}", deployed_from=str(source))
        raise
    shutil.copyfile(source / MODEL_FILE, target / MODEL_FILE)  # the policy that was shielded, for rollouts
    summary.update({"train_steps": 0, "lambda": None, "wall_s": 0.0})
    write_status(target, "done", summary=summary, deployed_from=str(source))
    return target, summary
