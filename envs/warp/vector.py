"""``N`` locomotion worlds on MuJoCo Warp, with rewards, costs, observations and resets computed on the device.

:class:`WarpVectorEnv` is the GPU counterpart of :class:`~taxbench.envs.core.vector.SafeRobotVectorEnv` for the ids in
:data:`~taxbench.envs.warp.ids.WARP_ENV_IDS`. It builds one CPU world with ``gymnasium.make(env_id, **env_kwargs)``
(so thresholds, kwargs, cost modes and intensities are the CPU id's, by construction), copies its compiled model onto
a Warp device, and computes every quantity with the robot's, task's and cost terms' batched methods on torch tensors
(the same formulas as the CPU vector env's numpy path: :mod:`taxbench.envs.core.arrays`). Nothing leaves the device
inside :meth:`WarpVectorEnv.step` unless ``check_finite`` asks for it.

Info contract (every step, each value a tensor ``(N,)`` on the device): ``cost``, ``cost_<term>``,
``measure_<term>`` (SI units), ``reward_<term>``, ``violation`` (bool), ``is_success`` (bool) and the task's
diagnostics, as the CPU env reports them. Autoreset is Gymnasium's ``SAME_STEP`` mode: worlds that terminate or reach
the time limit are reset inside the step, the returned observation is the new episode's first, and
``info["final_obs"]`` holds every world's observation before the reset (the rows where ``terminated | truncated``
are the old episodes' last). Resets draw from the CPU env's initial-state distribution (Gymnasium v5 reset noise;
AntHazard: goal direction and zone offsets per world) with a torch generator on the device: the same distribution,
not the same draws.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch

from taxbench.envs.core.env import SafeRobotEnv
from taxbench.envs.sim.warp_sim import WarpSim
from taxbench.envs.tasks.locomotion.hazard_goal import (
    HazardGoal,
    goal_distances,
    hazard_depths,
    hazard_layout,
    heading_frame,
)
from taxbench.envs.tasks.locomotion.velocity import locomotion_rewards_batch
from taxbench.envs.warp.ids import check_warp_request


class WarpStepContext:
    """:class:`~taxbench.envs.core.batch.BatchContext` of the Warp worlds: torch tensors on the device.

    ``sims`` holds the CPU template world only (for name lookups: joint columns, limits); the state is the Warp one.
    """

    __slots__ = (
        "_sim",
        "action",
        "cache",
        "dt",
        "qpos",
        "qvel",
        "robot",
        "root_after",
        "root_before",
        "root_velocity",
        "sims",
    )

    def __init__(self, env: WarpVectorEnv, action: torch.Tensor, root_before: torch.Tensor) -> None:
        self.sims, self.robot, self.action, self.dt = (env.template.sim,), env.robot, action, env.dt
        self.qpos, self.qvel = env.sim.qpos, env.sim.qvel
        self.root_before = root_before
        self.root_after = env.robot.root_positions(self.qpos, env.template.sim)
        self.root_velocity = (self.root_after - root_before) / self.dt
        self.cache: dict[str, Any] = {}
        self._sim = env.sim

    @property
    def num_worlds(self) -> int:
        """Number of worlds."""
        return len(self.qpos)

    def body_rotations(self, body: str) -> torch.Tensor:
        """Each world's rotation matrix of ``body``'s frame, ``(N, 3, 3)`` (as C MuJoCo holds it after a step)."""
        return self._sim.xmat[:, self._sim.body_index(body)]

    def external_forces(self) -> torch.Tensor:
        """``cfrc_ext`` of every body in every world, ``(N, nbody, 6)`` (torque N·m, force N)."""
        return self._sim.external_forces()


class WarpVectorEnv:
    """Locomotion worlds on MuJoCo Warp; see the module docstring for the info contract and autoreset.

    Args:
        env_id: An id of :data:`~taxbench.envs.warp.ids.WARP_ENV_IDS`.
        num_worlds: Number of worlds ``N``.
        device: ``"cpu"`` (Warp's CPU device: tests) or ``"cuda"``/``"cuda:k"``.
        seed: Seed of the device generator that draws every reset.
        env_kwargs: Constructor kwargs of the id (thresholds, ``cost_terms``, ``cost_mode``), as for ``gymnasium.make``.
        max_episode_steps: Time limit, control steps; None takes the id's registered limit.
        check_finite: Raise ``ValueError`` on a non-finite action (one host sync per step); False leaves NaN to the
            simulator.
        nconmax: Contacts allocated per world (None: MuJoCo Warp's default).
        njmax: Constraint rows allocated per world (None: MuJoCo Warp's default).

    Raises:
        ValueError: an id without a Warp version, ``num_worlds < 1`` or a bad device.
        RuntimeError: MuJoCo Warp is not installed.
    """

    def __init__(
        self,
        env_id: str,
        num_worlds: int,
        *,
        device: str = "cpu",
        seed: int = 0,
        env_kwargs: dict[str, Any] | None = None,
        max_episode_steps: int | None = None,
        check_finite: bool = True,
        nconmax: int | None = None,
        njmax: int | None = None,
    ) -> None:
        self.device = check_warp_request(env_id, num_worlds, device)
        made = gymnasium.make(env_id, **dict(env_kwargs or {}))
        self.template: SafeRobotEnv = made.unwrapped  # type: ignore[assignment]
        spec = made.spec
        self.env_id, self.num_envs = env_id, num_worlds
        self.max_episode_steps = max_episode_steps or (spec.max_episode_steps if spec is not None else None)
        self.robot, self.task = self.template.robot, self.template.task
        self.template.reset(seed=seed)  # looks joint ranges up once (JointLimitCost) and sets the start state
        self.sim = WarpSim(self.template.sim, num_worlds, self.device, nconmax=nconmax, njmax=njmax)
        self.dt = self.sim.dt
        self.check_finite = check_finite
        tdev = self.sim.torch_device
        space = self.template.action_space
        self.action_low = torch.as_tensor(space.low, dtype=torch.float32, device=tdev)
        self.action_high = torch.as_tensor(space.high, dtype=torch.float32, device=tdev)
        self.num_actions = int(space.shape[0])
        self.num_obs = int(self.template.observation_space.shape[0])
        self.cost_slots = self.template.cost_slots
        self.reward_keys = self.template.reward_keys
        self.hazard = isinstance(self.task, HazardGoal)
        # Derived quantities (contact forces, body frames) read at reset need a forward pass after it.
        self._forward_on_reset = self.hazard or bool(getattr(self.robot, "include_contact_forces", False))
        self.generator = torch.Generator(device=tdev)
        self.generator.manual_seed(int(seed))
        self.elapsed = torch.zeros(num_worlds, dtype=torch.int64, device=tdev)
        if self.hazard:
            n = self.task.n_hazards
            self.goal = torch.zeros(num_worlds, 2, device=tdev)
            self.centers = torch.zeros(num_worlds, n, 2, device=tdev)
            self.distance = torch.zeros(num_worlds, device=tdev)
        self.closed = False

    # ----------------------------------------------------------------- resets
    def _uniform(self, shape: tuple[int, ...], half_width: float) -> torch.Tensor:
        draw = torch.rand(shape, generator=self.generator, device=self.sim.torch_device)
        return (2.0 * draw - 1.0) * half_width

    def _reset_worlds(self, mask: torch.Tensor) -> None:
        """Reset the masked worlds: Gymnasium-v5 noise around the initial state, then the task's layout."""
        n, robot, sim = self.num_envs, self.robot, self.sim
        scale = robot.reset_noise_scale
        qpos = sim.init_qpos + self._uniform((n, sim.qpos.shape[1]), scale)
        if robot.gaussian_velocity_noise:
            noise = torch.randn((n, sim.qvel.shape[1]), generator=self.generator, device=sim.torch_device)
            qvel = sim.init_qvel + scale * noise
        else:
            qvel = sim.init_qvel + self._uniform((n, sim.qvel.shape[1]), scale)
        sim.reset(mask, qpos, qvel)
        self.elapsed = torch.where(mask, torch.zeros_like(self.elapsed), self.elapsed)
        if self.hazard:
            task = self.task
            start = robot.root_positions(sim.qpos, self.template.sim)
            angle = self._uniform((n,), task.goal_angle)
            lateral = self._uniform((n, task.n_hazards), task.zones.radius)
            goal, centers = hazard_layout(start, angle, lateral, task.goal_distance)
            self.goal = torch.where(mask[:, None], goal, self.goal)
            self.centers = torch.where(mask[:, None, None], centers, self.centers)
            self.distance = torch.where(mask, goal_distances(self.goal, start), self.distance)
        if self._forward_on_reset:
            sim.forward()

    def _observations(self, ctx: WarpStepContext) -> torch.Tensor:
        obs = self.robot.observations(ctx)
        if not self.hazard:
            return obs
        points = torch.cat((self.goal[:, None, :], self.centers), dim=1)
        forward = ctx.body_rotations(self.robot.root_body)[:, :, 0]  # the torso's x axis
        return torch.cat((obs, heading_frame(ctx.root_after, forward, points)), dim=1)

    def reset(self, seed: int | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reset every world (reseeding the generator if ``seed`` is given): ``(obs (N, obs), info)``.

        ``info`` has the contract's keys with every cost and reward term at 0 (as the CPU env's reset).
        """
        if seed is not None:
            self.generator.manual_seed(int(seed))
        mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.sim.torch_device)
        self._reset_worlds(mask)
        roots = self.robot.root_positions(self.sim.qpos, self.template.sim)
        ctx = WarpStepContext(self, torch.zeros(self.num_envs, self.num_actions, device=self.sim.torch_device), roots)
        zeros = torch.zeros(self.num_envs, device=self.sim.torch_device)
        info: dict[str, torch.Tensor] = {"cost": zeros, "violation": zeros > 0}
        for j, (_, cost_key, measure_key) in enumerate(self.cost_slots):
            info[cost_key], info[measure_key] = zeros, self._measure(j, ctx)
        info.update({key: zeros for key in self.reward_keys.values()})
        info.update(self._task_columns(ctx, update_distance=False))
        return self._observations(ctx), info

    # ----------------------------------------------------------------- step
    def _measure(self, j: int, ctx: WarpStepContext) -> torch.Tensor:
        term = self.cost_slots[j][0]
        if term.name == "hazard":
            return hazard_depths(ctx.root_after, self.centers, self.task.zones.radius)
        return term.measure_batch(ctx)

    def _task_columns(self, ctx: WarpStepContext, *, update_distance: bool) -> dict[str, torch.Tensor]:
        """``is_success`` and the task's diagnostics (and, when stepping, AntHazard's progress bookkeeping)."""
        if not self.hazard:
            return {"is_success": self.task.is_success_batch(ctx), **self.task.info_batch(ctx)}
        distance = goal_distances(self.goal, ctx.root_after)
        if update_distance:
            ctx.cache["progress"] = self.distance - distance
            self.distance = distance
        return {"is_success": distance < self.task.goal_radius, "goal_distance": distance}

    def _rewards(self, ctx: WarpStepContext, columns: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self.hazard:
            return self.task.rewards_batch(ctx)
        task = self.task
        terms = {
            "progress": task.progress_weight * ctx.cache["progress"],
            "goal": task.goal_bonus * columns["is_success"].to(torch.float32),
        }
        return locomotion_rewards_batch(ctx, task.weights, self.robot, terms)

    def step(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Apply ``actions`` (N, action size) for one control period: ``(obs, reward, terminated, truncated, info)``.

        Actions are clipped to the action space. Worlds that end are reset in the same call (see the module docstring).

        Raises:
            ValueError: on a wrong shape, or (with ``check_finite``) a non-finite action.
        """
        actions = torch.as_tensor(actions, dtype=torch.float32, device=self.sim.torch_device)
        if actions.shape != (self.num_envs, self.num_actions):
            raise ValueError(f"actions must have shape {(self.num_envs, self.num_actions)}, got {tuple(actions.shape)}")
        if self.check_finite and not bool(torch.isfinite(actions).all()):
            raise ValueError("actions must be finite")
        actions = torch.clamp(actions, self.action_low, self.action_high)
        root_before = self.robot.root_positions(self.sim.qpos, self.template.sim)
        self.sim.step(self.robot.controls(actions))
        ctx = WarpStepContext(self, actions, root_before)
        columns = self._task_columns(ctx, update_distance=True)
        info: dict[str, torch.Tensor] = {}
        reward = torch.zeros(self.num_envs, device=self.sim.torch_device)
        for name, value in self._rewards(ctx, columns).items():
            info[self.reward_keys[name]] = value
            reward = reward + value
        total = torch.zeros_like(reward)
        for j, (term, cost_key, measure_key) in enumerate(self.cost_slots):
            measure = self._measure(j, ctx)
            cost = term.cost_batch(measure)
            info[cost_key], info[measure_key] = cost, measure
            total = total + cost
        info["cost"], info["violation"] = total, total > 0.0
        info.update(columns)
        if self.hazard:
            terminated = columns["is_success"] | ~self.robot.healthy(ctx)
        else:
            terminated = self.task.is_terminated_batch(ctx)
        obs = self._observations(ctx)
        self.elapsed += 1
        if self.max_episode_steps is None:
            truncated = torch.zeros_like(terminated)
        else:
            truncated = self.elapsed >= self.max_episode_steps
        done = terminated | truncated
        info["final_obs"] = obs
        # On a GPU the masked reset runs every step (asking whether any world ended would cost a host sync); on Warp's
        # CPU device that question is free and the reset kernels are not.
        if self.device != "cpu" or bool(done.any()):
            self._reset_worlds(done)
            obs = torch.where(done[:, None], self._observations(self._reset_context()), obs)
        return obs, reward, terminated, truncated, info

    def _reset_context(self) -> WarpStepContext:
        roots = self.robot.root_positions(self.sim.qpos, self.template.sim)
        return WarpStepContext(self, torch.zeros(self.num_envs, self.num_actions, device=self.sim.torch_device), roots)

    def close(self) -> None:
        """Close the CPU template world (idempotent); the device arrays go with the object."""
        if not self.closed:
            self.template.close()
            self.closed = True


def warp_initial_state_draws(env: WarpVectorEnv, num: int) -> np.ndarray:
    """``num`` resets of world 0..N-1 (repeated), as host rows ``[qpos, qvel]``: for distribution tests."""
    rows = []
    mask = torch.ones(env.num_envs, dtype=torch.bool, device=env.sim.torch_device)
    while sum(len(r) for r in rows) < num:
        env._reset_worlds(mask)
        rows.append(torch.cat((env.sim.qpos, env.sim.qvel), dim=1).cpu().numpy().astype(np.float64))
    return np.concatenate(rows)[:num]
