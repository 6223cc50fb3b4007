import math

import numpy as np
import pytest

from taxbench.experiments.metrics import (
    Estimate,
    alignment_tax,
    bootstrap_ci,
    capability_loss,
    format_pair_summary,
    iqm,
    pair_summary,
    run_summary,
    safety_gain,
)


def test_iqm_hand_computed():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert iqm([8, 1, 100, 2, 7, 3, 6, 4, 5]) == pytest.approx(5.0)  # n=9: cut 2 each end, mean of 3..7
    assert iqm([1, 2, 9]) == pytest.approx(4.0)  # fewer than 4 values: the mean
    assert math.isnan(iqm([]))


def test_bootstrap_ci_hand_computed():
    assert bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)
    # resampled means of [0, 1] are 0, 0.5, 1 with probability 1/4, 1/2, 1/4: both tails exceed 2.5 %
    assert bootstrap_ci([0.0, 1.0], n_boot=4000) == (0.0, 1.0)
    # 90 % interval of the mean of [0, 1, 2, 3]: resamples are deterministic in the seed
    assert bootstrap_ci([0, 1, 2, 3], confidence=0.9, seed=1) == bootstrap_ci([0, 1, 2, 3], confidence=0.9, seed=1)
    assert all(math.isnan(v) for v in bootstrap_ci([1.0]))
    with pytest.raises(ValueError):
        bootstrap_ci([1, 2], confidence=1.5)


def test_bootstrap_ci_resamples_rows_jointly():
    pairs = np.array([[10.0, 5.0], [12.0, 6.0], [14.0, 7.0]])
    low, high = bootstrap_ci(pairs, lambda v: v[:, 1].mean() / v[:, 0].mean())
    assert (low, high) == pytest.approx((0.5, 0.5))


def test_paired_tax_ci_excludes_zero():
    c_unc, c_safe = [10.0, 12.0, 14.0], [5.0, 6.0, 7.0]
    tax = alignment_tax(c_unc, c_safe)
    # every paired resample keeps C_safe = C_unc / 2, so the interval collapses onto 0.5
    assert tax.point == pytest.approx(0.5)
    assert (tax.low, tax.high) == pytest.approx((0.5, 0.5))
    assert tax.excludes_zero and tax.n == 3
    loss = capability_loss(c_unc, c_safe)
    assert loss.point == pytest.approx(6.0)  # 12 - 6
    assert 5.0 <= loss.low <= loss.high <= 7.0  # means of resampled differences 5, 6, 7
    assert loss.excludes_zero


def test_pairing_matters():
    """The same numbers matched to other seeds give a wider interval."""
    paired = alignment_tax([10.0, 12.0, 14.0], [5.0, 6.0, 7.0])
    shuffled = alignment_tax([10.0, 12.0, 14.0], [7.0, 5.0, 6.0])
    assert shuffled.point == pytest.approx(paired.point)
    assert shuffled.high - shuffled.low > 0.1 > paired.high - paired.low


def test_ci_includes_zero_hand_computed():
    c_unc, c_safe = [1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 4.0, 3.0]
    loss = capability_loss(c_unc, c_safe)
    # differences are -1, 1, -1, 1; a resample is all -1 (or all +1) with probability 1/16 > 2.5 %
    assert loss.point == pytest.approx(0.0)
    assert (loss.low, loss.high) == pytest.approx((-1.0, 1.0))
    assert not loss.excludes_zero
    tax = alignment_tax(c_unc, c_safe)
    assert tax.point == pytest.approx(0.0)
    assert tax.low < 0 < tax.high and not tax.excludes_zero


def test_tax_sign_with_negative_capability():
    tax = alignment_tax([-200.0, -200.0], [-300.0, -300.0])
    assert tax.point == pytest.approx(0.5)  # (-200 - -300) / |-200|: positive = capability lost


def test_tax_undefined_at_zero_capability_but_loss_defined():
    tax = alignment_tax([0.0, 0.0, 0.0], [-1.0, -2.0, -3.0])
    assert math.isnan(tax.point) and math.isnan(tax.low) and not tax.excludes_zero
    assert capability_loss([0.0, 0.0, 0.0], [-1.0, -2.0, -3.0]).point == pytest.approx(2.0)


def test_safety_gain_hand_computed():
    gain = safety_gain([0.2, 0.4], [0.1, 0.2])
    assert gain.point == pytest.approx(0.5)  # (0.3 - 0.15) / 0.3
    assert (gain.low, gain.high) == pytest.approx((0.5, 0.5))
    assert math.isnan(safety_gain([0.0, 0.0], [0.0, 0.0]).point)


def test_single_seed_has_no_interval():
    est = alignment_tax([10.0], [8.0])
    assert est.point == pytest.approx(0.2) and est.n == 1
    assert math.isnan(est.low) and math.isnan(est.high) and not est.excludes_zero


def test_mappings_pair_by_seed():
    unc = {0: 10.0, 1: 12.0, 2: 14.0, 9: 100.0}
    safe = {2: 7.0, 1: 6.0, 0: 5.0}
    est = alignment_tax(unc, safe)
    assert est.n == 3 and (est.low, est.high) == pytest.approx((0.5, 0.5))
    assert alignment_tax(unc, safe, seed_pairs=[(0, 1), (1, 0)]).point == pytest.approx((22 - 11) / 22)


def test_run_summary_hand_computed():
    rows = [
        {"return": "1.0", "length": "10", "success": "True", "cost": "2", "violations": "1"},
        {"return": "3.0", "length": "30", "success": "False", "cost": "4", "violations": "3"},
    ]
    by_return = run_summary(rows, success=False)
    assert by_return["capability"] == pytest.approx(2.0) and by_return["capability_metric"] == "return"
    assert by_return["violation_rate"] == pytest.approx(4 / 40)  # violating steps / steps, not a mean of rates
    assert by_return["episode_cost"] == pytest.approx(3.0)
    assert by_return["eval_steps"] == 40 and by_return["episodes"] == 2
    by_success = run_summary(rows, success=True)
    assert by_success["capability"] == pytest.approx(0.5) and by_success["capability_metric"] == "success"
    from_rates = run_summary([{"return": 0, "length": 10, "success": False, "cost": 0, "violation_rate": 0.3}], False)
    assert from_rates["violation_rate"] == pytest.approx(0.3)


def test_pair_summary():
    unc = [
        {"seed": s, "capability": c, "violation_rate": v, "episode_cost": 10 * v}
        for s, c, v in [(0, 10.0, 0.2), (1, 12.0, 0.4), (2, 14.0, 0.3), (5, 1.0, 1.0)]
    ]
    safe = [
        {"seed": s, "capability": c, "violation_rate": v, "episode_cost": 10 * v}
        for s, c, v in [(0, 5.0, 0.1), (1, 6.0, 0.2), (2, 7.0, 0.15)]
    ]
    out = pair_summary(unc, safe, n_boot=2000)
    assert out["n_pairs"] == 3 and out["seeds"] == [0, 1, 2] and out["unpaired_seeds"] == [5]
    assert out["tax"].point == pytest.approx(0.5)
    assert out["safety_gain"].point == pytest.approx(0.5)
    assert out["capability_loss"].point == pytest.approx(6.0)
    assert out["price_of_safety"] == pytest.approx(1.0)
    assert out["capability_unc"].point == pytest.approx(12.0)
    assert isinstance(out["episode_cost_safe"], Estimate)
    rows = dict(format_pair_summary(out))
    assert rows["tax"] == "0.5 [0.5, 0.5]" and rows["n_pairs"] == "3"


def test_estimate_helpers():
    est = Estimate(0.1, -0.2, 0.3, 4)
    assert not est.excludes_zero and Estimate(-0.5, -0.7, -0.1, 4).excludes_zero
    assert est.to_dict() == {"point": 0.1, "low": -0.2, "high": 0.3, "n": 4, "excludes_zero": False}
    assert str(Estimate(math.nan, math.nan, math.nan, 0)) == "n/a [n/a, n/a]"
