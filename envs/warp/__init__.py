"""The GPU path: locomotion envs on MuJoCo Warp, every quantity a torch tensor on the device (DESIGN.md §4b).

Importing this package does not import Warp; building a :class:`~taxbench.envs.warp.vector.WarpVectorEnv` does.
"""

from taxbench.envs.warp.ids import WARP_ENV_IDS, check_warp_request, has_warp_version, warp_env_ids

__all__ = ["WARP_ENV_IDS", "check_warp_request", "has_warp_version", "warp_env_ids"]
