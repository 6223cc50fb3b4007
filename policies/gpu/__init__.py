"""On-device learners for the MuJoCo Warp path (DESIGN.md 4b): PPO and PPO-Lagrangian built on rsl-rl-lib.

Importing this package needs ``pip install -e ".[gpu]"`` (rsl-rl-lib, mujoco-warp); the CPU-only install never does.
"""
