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


@pytest.fixture(scope="session", autouse=True)
def _sb3_logs_under_pytest_tmp(tmp_path_factory):
    """SB3's own logger (used where a test builds SB3 learners directly) writes under pytest's tmp, not /tmp."""
    os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3_logs"))
    yield
    os.environ.pop("SB3_LOGDIR", None)
