"""MuJoCo Warp adapter: ``N`` worlds of one compiled MuJoCo model on a Warp device (a GPU, or Warp's CPU device).

The only module of taxbench that imports ``warp`` and ``mujoco_warp`` (install them with ``pip install -e ".[gpu]"``).
The model is the one a CPU :class:`~taxbench.envs.sim.mujoco_sim.MujocoSim` compiled (the same MJCF, markers and
options), so both paths simulate the same robot. State is handed to torch without copies: :attr:`WarpSim.qpos`,
:attr:`WarpSim.qvel` and friends are ``wp.to_torch`` views of the device arrays, so writing them in place (``copy_``)
writes the simulator's state, and reading them after :meth:`WarpSim.step` reads the new state.

Warp runs in float32 where C MuJoCo runs in float64: trajectories from the same start drift apart chaotically after a
few dozen control steps (see NOTES.md), so the two paths are compared step by step from the same state and in
distribution, never as whole trajectories. First use compiles Warp kernels (20-45 s on a CPU), cached in
``~/.cache/warp``.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from taxbench.envs.sim.mujoco_sim import MujocoSim

_MISSING = 'MuJoCo Warp is not installed: pip install -e ".[gpu]" (brings mujoco-warp and warp-lang)'


def warp_available() -> bool:
    """Whether ``mujoco_warp`` (and so ``warp``) can be imported, without importing it."""
    return importlib.util.find_spec("mujoco_warp") is not None and importlib.util.find_spec("warp") is not None


def check_device(device: str) -> str:
    """``device`` as Warp and torch both name it: ``"cpu"`` or ``"cuda:k"`` (``"cuda"`` means ``"cuda:0"``).

    Raises:
        RuntimeError: if MuJoCo Warp is not installed.
        ValueError: for another name, or a CUDA device torch cannot see.
    """
    if not warp_available():
        raise RuntimeError(_MISSING)
    name = "cuda:0" if device == "cuda" else device
    if name != "cpu" and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<k>', got {device!r}")
    if name != "cpu" and (not torch.cuda.is_available() or int(name[5:]) >= torch.cuda.device_count()):
        raise ValueError(f"device {device!r}: torch sees no such CUDA device")
    return name


class WarpSim:
    """``num_worlds`` copies of one MuJoCo model stepped together by MuJoCo Warp.

    Args:
        template: A CPU world whose compiled model (``template.model``) and initial state this sim copies; its
            ``frame_skip`` sets the physics steps per control step.
        num_worlds: Number of worlds ``N`` (>= 1).
        device: ``"cpu"`` or ``"cuda:k"`` (see :func:`check_device`).
        nconmax: Contacts allocated per world (None: MuJoCo Warp's default).
        njmax: Constraint rows allocated per world (None: MuJoCo Warp's default).
        graph: Record one control step as a CUDA graph on first use and replay it (CUDA devices only; the same
            results, less launch overhead).

    Attributes:
        qpos: Generalised positions, torch view ``(N, nq)`` float32 (m, rad; free joints as position + quaternion).
        qvel: Generalised velocities, torch view ``(N, nv)`` float32 (m/s, rad/s).
        ctrl: Actuator controls, torch view ``(N, nu)`` float32.
        qacc_warmstart: The solver's warm start, torch view ``(N, nv)`` float32 (m/s², rad/s²).
        xmat: Body rotation matrices, torch view ``(N, nbody, 3, 3)``; as in C MuJoCo, after :meth:`step` they belong to
            the state before the last physics step's integration (call :meth:`forward` for the current state).
        init_qpos: The model's initial qpos, ``(nq,)`` float32 on the device.
        init_qvel: The model's initial qvel, ``(nv,)`` float32 on the device.

    Raises:
        RuntimeError: if MuJoCo Warp is not installed.
        ValueError: for ``num_worlds < 1`` or a bad device name.
    """

    def __init__(
        self,
        template: MujocoSim,
        num_worlds: int,
        device: str = "cpu",
        *,
        nconmax: int | None = None,
        njmax: int | None = None,
        graph: bool = True,
    ) -> None:
        if isinstance(num_worlds, bool) or not isinstance(num_worlds, int) or num_worlds < 1:
            raise ValueError(f"num_worlds must be an integer >= 1, got {num_worlds!r}")
        self.device = check_device(device)
        import warp as wp

        wp.config.quiet = True  # before mujoco_warp initialises Warp: no banner
        wp.config.log_level = max(wp.config.log_level, wp.LOG_WARNING)  # no per-module "load on device" lines
        import mujoco_warp as mjw

        self._wp, self._mjw = wp, mjw
        self.num_worlds, self.frame_skip, self.dt = num_worlds, template.frame_skip, template.dt
        self._template = template
        with wp.ScopedDevice(self.device):
            self.model = mjw.put_model(template.model)
            self.data = mjw.put_data(template.model, template.data, nworld=num_worlds, nconmax=nconmax, njmax=njmax)
        self.qpos = wp.to_torch(self.data.qpos)
        self.qvel = wp.to_torch(self.data.qvel)
        self.ctrl = wp.to_torch(self.data.ctrl)
        self.qacc_warmstart = wp.to_torch(self.data.qacc_warmstart)
        self.xmat = wp.to_torch(self.data.xmat)
        self._cfrc_ext = wp.to_torch(self.data.cfrc_ext)
        self.init_qpos = torch.as_tensor(template.init_qpos, dtype=torch.float32, device=self.device)
        self.init_qvel = torch.as_tensor(template.init_qvel, dtype=torch.float32, device=self.device)
        self._forces_valid = False
        self._graph_on = graph and self.device.startswith("cuda")
        self._graph = None

    @property
    def torch_device(self) -> torch.device:
        """The torch device of the state views."""
        return self.qpos.device

    def step(self, ctrl: torch.Tensor | None = None) -> None:
        """Set the controls (``(N, nu)``, if given) and advance every world ``frame_skip`` physics steps."""
        if ctrl is not None:
            self.ctrl.copy_(ctrl)
        wp, mjw = self._wp, self._mjw
        with wp.ScopedDevice(self.device):
            if not self._graph_on:
                for _ in range(self.frame_skip):
                    mjw.step(self.model, self.data)
            else:
                if self._graph is None:
                    with wp.ScopedCapture() as capture:
                        for _ in range(self.frame_skip):
                            mjw.step(self.model, self.data)
                    self._graph = capture.graph
                wp.capture_launch(self._graph)
        self._forces_valid = False

    def forward(self) -> None:
        """Recompute every world's derived quantities (kinematics, contacts, forces) from its qpos and qvel."""
        with self._wp.ScopedDevice(self.device):
            self._mjw.forward(self.model, self.data)
        self._forces_valid = False

    def external_forces(self) -> torch.Tensor:
        """``cfrc_ext`` of every body in every world, torch view ``(N, nbody, 6)`` (torque N·m, force N).

        Computed once per step on first request (``rne_postconstraint``), as the CPU sim does.
        """
        if not self._forces_valid:
            with self._wp.ScopedDevice(self.device):
                self._mjw.rne_postconstraint(self.model, self.data)
            self._forces_valid = True
        return self._cfrc_ext

    def reset(self, mask: torch.Tensor, qpos: torch.Tensor, qvel: torch.Tensor) -> None:
        """Reset the worlds where ``mask`` is True (``mj_resetData``) and give them ``qpos``/``qvel`` (rows of those).

        Args:
            mask: Worlds to reset, ``(N,)`` bool on the device.
            qpos: New generalised positions, ``(N, nq)``; only the masked rows are used.
            qvel: New generalised velocities, ``(N, nv)``; only the masked rows are used.
        """
        wp = self._wp
        with wp.ScopedDevice(self.device):
            self._mjw.reset_data(self.model, self.data, reset=wp.from_torch(mask.contiguous(), dtype=wp.bool))
        column = mask[:, None]
        self.qpos.copy_(torch.where(column, qpos.to(self.qpos.dtype), self.qpos))
        self.qvel.copy_(torch.where(column, qvel.to(self.qvel.dtype), self.qvel))
        self._forces_valid = False

    def set_state(
        self, qpos: torch.Tensor | np.ndarray, qvel: torch.Tensor | np.ndarray, warmstart: np.ndarray | None = None
    ) -> None:
        """Overwrite every world's qpos, qvel (and solver warm start, if given) in place, e.g. from CPU worlds."""
        self.qpos.copy_(torch.as_tensor(qpos, device=self.torch_device))
        self.qvel.copy_(torch.as_tensor(qvel, device=self.torch_device))
        if warmstart is not None:
            self.qacc_warmstart.copy_(torch.as_tensor(warmstart, device=self.torch_device))
        self._forces_valid = False

    def body_index(self, body: str) -> int:
        """Index of a body by name (into ``xmat`` and ``external_forces``), from the template world."""
        return self._template.body_index(body)
