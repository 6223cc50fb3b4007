"""The report's dose column names what sets each arm's intensity, read from the run's config."""

import pytest

from taxbench.experiments.analysis.runtable import dose
from taxbench.policies import intensity_settings

ENV = "taxbench/HopperVelocity-v0"


@pytest.mark.parametrize(
    ("arm", "expected"),
    [
        ("ppo-lag", "d=5"),
        ("saute", "d=5"),
        ("ppo-penalty", "β=2"),
        ("ppo-shield", "shield 0.75× +0.05 m"),
        ("ppo-track", "cap 0.75×"),
    ],
)
def test_dose_of_each_mechanism_at_strict(arm, expected):
    limit, hyperparams = intensity_settings(ENV, arm, "strict")
    cfg = {"hyperparams": hyperparams, "cost_limit": 25.0 if limit is None else limit}
    assert dose(cfg) == expected
