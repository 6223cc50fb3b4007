import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch

import taxbench.envs  # noqa: F401  (registers the ids)

torch.set_num_threads(1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
