"""Scripted motions for env tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


def make(env_id: str, **kwargs) -> gym.Env:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    return env


def step_from_state(env: gym.Env, qpos=None, qvel=None, action=None):
    """Put the sim in a hand-built state, then take one env step (zero action by default)."""
    sim = env.unwrapped.sim
    sim.set_state(sim.qpos if qpos is None else qpos, sim.qvel if qvel is None else qvel)
    if action is None:
        action = np.zeros(env.action_space.shape)
    return env.step(action)


def joint_index(env: gym.Env, joint: str) -> int:
    model = env.unwrapped.sim.model
    return int(model.jnt_qposadr[model.joint(joint).id])
