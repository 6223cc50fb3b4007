"""Which env ids run on MuJoCo Warp, and the one check of a request for the Warp path (for the CLI's exit 2)."""

from __future__ import annotations

from taxbench.envs.sim.warp_sim import check_device

#: Ids with a MuJoCo Warp version (the locomotion suite); the Panda envs run on the CPU only.
WARP_ENV_IDS: tuple[str, ...] = (
    "taxbench/HalfCheetahVelocity-v0",
    "taxbench/HalfCheetahSlowZone-v0",
    "taxbench/HopperVelocity-v0",
    "taxbench/Walker2dVelocity-v0",
    "taxbench/AntVelocity-v0",
    "taxbench/AntHazard-v0",
)


def warp_env_ids() -> tuple[str, ...]:
    """The registered ids that have a MuJoCo Warp version (``taxbench envs`` can mark them)."""
    return WARP_ENV_IDS


def has_warp_version(env_id: str) -> bool:
    """Whether ``env_id`` can run on MuJoCo Warp."""
    return env_id in WARP_ENV_IDS


def check_warp_request(env_id: str, num_worlds: int, device: str) -> str:
    """Validate a request for the Warp path; return the device as Warp names it (``cpu`` or ``cuda:k``).

    Every message is one line, meant for a CLI that prints it and exits 2. Nothing is built or imported from Warp.

    Raises:
        ValueError: an id without a Warp version, ``num_worlds < 1``, or an unknown or absent device.
        RuntimeError: MuJoCo Warp is not installed.
    """
    if not has_warp_version(env_id):
        raise ValueError(f"{env_id} has no MuJoCo Warp version; Warp runs {', '.join(WARP_ENV_IDS)}")
    if isinstance(num_worlds, bool) or not isinstance(num_worlds, int) or num_worlds < 1:
        raise ValueError(f"worlds must be an integer >= 1, got {num_worlds!r}")
    return check_device(device)
