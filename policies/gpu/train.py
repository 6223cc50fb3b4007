"""Train PPO or PPO-Lagrangian on MuJoCo Warp worlds, rollouts and updates on one device; save a pickle-free policy.

:func:`train_warp` is the function API the CLI calls for ``--sim warp``. Its policy is saved in the format of
:func:`save_policy` (torch tensors + JSON, no pickle), which :func:`load_policy` reads back on the CPU without Warp or
rsl-rl into a :class:`WarpPolicy` with SB3's ``predict(obs, deterministic=True) -> (actions, None)``, so the CPU
evaluator runs GPU-trained policies through the same seeded episodes as CPU-trained ones.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rsl_rl.storage import RolloutStorage

from taxbench.envs.warp.vector import WarpVectorEnv
from taxbench.policies.gpu.learner import SafePPO, build_cost_critic, build_models, obs_dict
from taxbench.policies.lagrange import check_cost_limit, make_multiplier

#: Arms this path trains.
WARP_ARMS: tuple[str, ...] = ("ppo", "ppo-lag")
POLICY_FORMAT, POLICY_VERSION = "taxbench-warp-policy", 1
POLICY_TENSORS, POLICY_JSON = "policy.pt", "policy.json"


@dataclass
class WarpPPOConfig:
    """Hyper-parameters of the on-device learners (rsl-rl's defaults for locomotion, mjlab-like).

    Attributes:
        steps_per_env: Control steps each world collects per update (rollout length).
        num_learning_epochs: Passes over a rollout per update.
        num_mini_batches: Minibatches per pass.
        learning_rate: Adam step size (adapted to ``desired_kl`` by rsl-rl's ``adaptive`` schedule).
        gamma: Discount per control step.
        lam: GAE λ.
        clip_param: PPO ratio clip.
        entropy_coef: Entropy bonus weight.
        desired_kl: Target KL of the adaptive learning rate.
        hidden_dims: Hidden layer widths of actor, critic and cost critic.
        activation: Hidden activation (rsl-rl name).
        init_std: Initial action standard deviation.
        lagrange: Multiplier update rule, ``grad`` or ``pid`` (:func:`taxbench.policies.lagrange.make_multiplier`).
        lagrange_lr: Step size of the ``grad`` multiplier.
        lagrange_init: Initial λ.
        pin_lambda: Keep λ at ``lagrange_init`` (with 0: the constrained learner is PPO, bit for bit).
    """

    steps_per_env: int = 24
    num_learning_epochs: int = 5
    num_mini_batches: int = 4
    learning_rate: float = 1e-3
    gamma: float = 0.99
    lam: float = 0.95
    clip_param: float = 0.2
    entropy_coef: float = 0.005
    desired_kl: float = 0.01
    hidden_dims: tuple[int, ...] = (256, 128, 128)
    activation: str = "elu"
    init_std: float = 1.0
    lagrange: str = "grad"
    lagrange_lr: float = 0.035
    lagrange_init: float = 0.0
    pin_lambda: bool = False


@dataclass
class WarpTrainResult:
    """What :func:`train_warp` returns.

    Attributes:
        learner: The trained learner (on its device).
        progress: One row per update: ``steps``, ``ep_return``, ``ep_cost`` (means over episodes finished in that
            rollout; NaN if none), ``episodes``, ``lambda``, ``fps`` (env steps/s, whole update), ``violation_rate``.
        steps: Env steps taken (worlds × control steps).
        seconds: Wall-clock time, s.
        out_dir: Where the policy was saved (None: not saved).
    """

    learner: SafePPO
    progress: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    out_dir: Path | None = None


def train_warp(
    env_id: str,
    n_worlds: int,
    steps: int,
    seed: int,
    arm: str = "ppo",
    cost_limit: float | None = None,
    device: str = "cpu",
    out_dir: str | Path | None = None,
    *,
    config: WarpPPOConfig | None = None,
    env_kwargs: dict[str, Any] | None = None,
    on_update: Callable[[dict[str, float]], None] | None = None,
) -> WarpTrainResult:
    """Train ``arm`` on ``n_worlds`` MuJoCo Warp worlds of ``env_id`` for ``steps`` env steps.

    Args:
        env_id: An id with a Warp version (:func:`taxbench.envs.warp.has_warp_version`).
        n_worlds: Worlds stepped together (4096 on a GPU; 8 on Warp's CPU device for tests).
        steps: Env steps in all (worlds × control steps), rounded up to whole rollouts.
        seed: Seeds torch (network init, action noise, minibatches) and the env's reset generator.
        arm: ``ppo`` or ``ppo-lag``.
        cost_limit: Episode-cost limit ``d`` of ``ppo-lag`` (None: the id's default limit).
        device: ``cpu`` or ``cuda``/``cuda:k``.
        out_dir: Folder for ``policy.pt``, ``policy.json`` and ``progress.csv`` (None: nothing written).
        config: Hyper-parameters (:class:`WarpPPOConfig`).
        env_kwargs: Constructor kwargs of the id (thresholds, cost terms).
        on_update: Called with each update's progress row (steps, ep_return, ep_cost, lambda, …), e.g. a
            progress bar or a progress.csv writer; once per update, so it costs no extra host sync.

    Raises:
        ValueError: an unknown arm, a bad cost limit, ``steps < 1``, or what :class:`WarpVectorEnv` refuses.
    """
    if arm not in WARP_ARMS:
        raise ValueError(f"arm must be one of {', '.join(WARP_ARMS)} on the Warp path, got {arm!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    cfg = config or WarpPPOConfig()
    env = WarpVectorEnv(env_id, n_worlds, device=device, seed=seed, env_kwargs=env_kwargs, check_finite=False)
    if cost_limit is None:
        from taxbench.envs.registry import entry_for

        cost_limit = entry_for(env_id).default_cost_limit
    cost_limit = check_cost_limit(cost_limit)
    tdev = env.sim.torch_device
    torch.manual_seed(seed)
    obs, _ = env.reset(seed=seed)
    learner = _build_learner(env, obs, cfg, arm, cost_limit, seed)
    learner.train_mode()
    result = WarpTrainResult(learner)
    ep_return = torch.zeros(n_worlds, device=tdev)
    ep_cost = torch.zeros(n_worlds, device=tdev)
    start = time.perf_counter()
    rollouts = math.ceil(steps / (n_worlds * cfg.steps_per_env))
    for _ in range(rollouts):
        tick = time.perf_counter()
        sums = torch.zeros(4, device=tdev)  # finished episodes: count, return, cost; violating steps
        with torch.inference_mode():
            for _ in range(cfg.steps_per_env):
                actions = learner.act(obs_dict(obs))
                obs, reward, terminated, truncated, info = env.step(actions)
                done = terminated | truncated
                extras = {"time_outs": (truncated & ~terminated).float(), "costs": info["cost"]}
                learner.process_env_step(obs_dict(obs), reward, done, extras)
                ep_return += reward
                ep_cost += info["cost"]
                finished = done.float()
                sums += torch.stack(
                    (finished.sum(), (ep_return * finished).sum(), (ep_cost * finished).sum(), info["violation"].sum())
                )
                ep_return *= 1.0 - finished
                ep_cost *= 1.0 - finished
            learner.compute_returns(obs_dict(obs))
        count, total_return, total_cost, violations = sums.tolist()  # one host sync per update
        mean_cost = total_cost / count if count else None
        learner.update()
        lam = learner.update_multiplier(mean_cost)
        result.steps += n_worlds * cfg.steps_per_env
        result.progress.append(
            {
                "steps": result.steps,
                "ep_return": total_return / count if count else math.nan,
                "ep_cost": math.nan if mean_cost is None else mean_cost,
                "episodes": count,
                "lambda": lam,
                "violation_rate": violations / (n_worlds * cfg.steps_per_env),
                "fps": n_worlds * cfg.steps_per_env / (time.perf_counter() - tick),
            }
        )
        if on_update is not None:
            on_update(result.progress[-1])
    result.seconds = time.perf_counter() - start
    if out_dir is not None:
        result.out_dir = Path(out_dir)
        meta = {"env_id": env_id, "arm": arm, "seed": seed, "steps": result.steps, "n_worlds": n_worlds}
        meta |= {"cost_limit": cost_limit if arm == "ppo-lag" else None, "lambda": learner.lagrange_value}
        meta |= {"device": env.device, "config": asdict(cfg)}
        save_policy(learner, env, result.out_dir, meta)
        _write_progress(result.out_dir / "progress.csv", result.progress)
    env.close()
    return result


def _build_learner(
    env: WarpVectorEnv, obs: torch.Tensor, cfg: WarpPPOConfig, arm: str, cost_limit: float, seed: int
) -> SafePPO:
    dims = {"hidden_dims": tuple(cfg.hidden_dims), "activation": cfg.activation}
    actor, critic = build_models(obs, env.num_actions, init_std=cfg.init_std, **dims)
    storage = RolloutStorage("rl", env.num_envs, cfg.steps_per_env, obs_dict(obs), [env.num_actions], str(obs.device))
    constrained = arm == "ppo-lag"
    multiplier = None
    if constrained:
        multiplier = make_multiplier(
            cfg.lagrange, cost_limit=cost_limit, lr=cfg.lagrange_lr, init=cfg.lagrange_init, pinned=cfg.pin_lambda
        )
    return SafePPO(
        actor,
        critic,
        storage,
        cost_critic=build_cost_critic(obs, **dims) if constrained else None,
        multiplier=multiplier,
        cost_seed=seed,
        num_learning_epochs=cfg.num_learning_epochs,
        num_mini_batches=cfg.num_mini_batches,
        clip_param=cfg.clip_param,
        gamma=cfg.gamma,
        lam=cfg.lam,
        learning_rate=cfg.learning_rate,
        entropy_coef=cfg.entropy_coef,
        desired_kl=cfg.desired_kl,
        device=str(obs.device),
    )


def _write_progress(path: Path, rows: list[dict[str, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["steps"])
        writer.writeheader()
        writer.writerows(rows)


# --------------------------------------------------------------------- the saved policy (no pickle)
def save_policy(learner: SafePPO, env: WarpVectorEnv, out_dir: Path, meta: dict[str, Any]) -> None:
    """Write the deterministic policy as ``policy.pt`` (tensors) and ``policy.json`` (everything else).

    Format ``taxbench-warp-policy`` version 1:

    * ``policy.pt``: ``torch.save`` of a flat ``dict[str, Tensor]`` (float32, CPU), read with
      ``torch.load(path, weights_only=True)``: ``layers.<k>.weight`` (out, in) and ``layers.<k>.bias`` (out,) for
      the actor's linear layers ``k = 0..L-1`` in order; ``obs_mean`` and ``obs_std`` (obs,), the observation
      normaliser; ``action_std`` (act,), the Gaussian's standard deviation (not used by a deterministic policy).
    * ``policy.json``: ``format``, ``version``, ``obs_dim``, ``act_dim``, ``activation`` (``elu``, ``relu``,
      ``tanh``, ...: applied after every layer but the last), ``obs_eps`` (normaliser ε), ``action_low`` and
      ``action_high`` (the env's action bounds), ``tensors`` (name → shape), and the run's ``meta`` (env id, arm, seed,
      steps, cost limit, final λ, device, hyper-parameters).

    The deterministic action is ``clip(mlp((obs − obs_mean) / (obs_std + obs_eps)), action_low, action_high)`` where
    ``mlp`` alternates ``layers.<k>`` and the activation. Observations are the CPU env's, as float32.
    """
    actor = learner.get_policy()
    linears = [m for m in actor.mlp if isinstance(m, torch.nn.Linear)]
    tensors = {}
    for k, layer in enumerate(linears):
        tensors[f"layers.{k}.weight"] = layer.weight.detach().float().cpu().clone()
        tensors[f"layers.{k}.bias"] = layer.bias.detach().float().cpu().clone()
    tensors["obs_mean"] = actor.obs_normalizer.mean.float().cpu()
    tensors["obs_std"] = actor.obs_normalizer.std.float().cpu()
    std_range = actor.distribution.std_range
    tensors["action_std"] = actor.distribution.std_param.detach().clamp(*std_range).float().cpu().clone()
    header = {
        "format": POLICY_FORMAT,
        "version": POLICY_VERSION,
        "obs_dim": env.num_obs,
        "act_dim": env.num_actions,
        "activation": meta.get("config", {}).get("activation", "elu"),
        "obs_eps": float(actor.obs_normalizer.eps),
        "action_low": env.action_low.cpu().tolist(),
        "action_high": env.action_high.cpu().tolist(),
        "tensors": {name: list(t.shape) for name, t in tensors.items()},
        "meta": meta,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(tensors, out_dir / POLICY_TENSORS)
    (out_dir / POLICY_JSON).write_text(json.dumps(header, indent=2))


_ACTIVATIONS = {"elu": torch.nn.ELU, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "selu": torch.nn.SELU}


class WarpPolicy:
    """A saved Warp-trained policy on the CPU, with SB3's ``predict`` (see :func:`save_policy` for the format)."""

    def __init__(self, tensors: dict[str, torch.Tensor], header: dict[str, Any]) -> None:
        if header.get("format") != POLICY_FORMAT or header.get("version") != POLICY_VERSION:
            raise ValueError(f"not a {POLICY_FORMAT} v{POLICY_VERSION} policy: {header.get('format')!r}")
        activation = _ACTIVATIONS[header["activation"]]
        count = sum(1 for name in tensors if name.endswith(".weight"))
        modules: list[torch.nn.Module] = []
        for k in range(count):
            weight, bias = tensors[f"layers.{k}.weight"], tensors[f"layers.{k}.bias"]
            layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
            layer.weight.data.copy_(weight)
            layer.bias.data.copy_(bias)
            modules += [layer] if k == count - 1 else [layer, activation()]
        self.mlp = torch.nn.Sequential(*modules).eval()
        self.obs_mean, self.obs_std, self.obs_eps = tensors["obs_mean"], tensors["obs_std"], header["obs_eps"]
        self.action_std = tensors["action_std"]
        self.action_low = np.asarray(header["action_low"], dtype=np.float32)
        self.action_high = np.asarray(header["action_high"], dtype=np.float32)
        self.meta = header.get("meta", {})

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ):
        """Actions for one observation (obs,) or a batch (N, obs): ``(actions, None)`` as SB3 returns them."""
        obs = torch.as_tensor(np.asarray(observation, dtype=np.float32))
        single = obs.ndim == 1
        with torch.no_grad():
            mean = self.mlp((obs.reshape(-1, obs.shape[-1]) - self.obs_mean) / (self.obs_std + self.obs_eps))
            actions = mean if deterministic else mean + self.action_std * torch.randn_like(mean)
        out = np.clip(actions.numpy(), self.action_low, self.action_high)
        return (out[0] if single else out), None


def load_policy(path: str | Path) -> WarpPolicy:
    """Read a policy folder written by :func:`save_policy` (``torch.load(weights_only=True)``: no pickle runs)."""
    folder = Path(path)
    header = json.loads((folder / POLICY_JSON).read_text())
    tensors = torch.load(folder / POLICY_TENSORS, map_location="cpu", weights_only=True)
    return WarpPolicy(tensors, header)
