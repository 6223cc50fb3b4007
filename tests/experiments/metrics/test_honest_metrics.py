"""Feasibility verdicts, the τ = τ_constraint + τ_learner split, τ(t) with its convergence rule, CI-width warnings."""

import math

import numpy as np
import pytest

from taxbench.experiments.metrics.budget import budget_steps, convergence, relative_change, tax_over_training
from taxbench.experiments.metrics.decompose import NO_FEASIBLE, best_feasible, decompose_tax
from taxbench.experiments.metrics.estimates import Estimate
from taxbench.experiments.metrics.feasibility import (
    FEASIBLE,
    INFEASIBLE,
    NEVER_BOUND,
    UNDETERMINED,
    arm_verdict,
    constraint_bound,
    disagreement,
    feasibility,
    tax_label,
    verdict,
)
from taxbench.experiments.metrics.honest import honest_pair_summary
from taxbench.experiments.metrics.reliability import probability_of_improvement, width_warning

# ----------------------------------------------------------------------------- feasibility


def test_feasibility_is_judged_on_the_ci_of_the_mean_episode_cost():
    assert feasibility([10, 12, 11, 9], 25)["feasible"] == FEASIBLE
    assert feasibility([89, 114, 100, 95], 25)["feasible"] == INFEASIBLE  # the deterministic cheetah of issue 16
    straddle = feasibility([0, 50, 0, 50, 0, 50], 25)
    assert straddle["feasible"] == UNDETERMINED
    assert straddle["episode_cost"].low < 25 < straddle["episode_cost"].high
    assert feasibility([25, 25, 25], 25)["feasible"] == FEASIBLE  # cost ≤ d, equality included
    assert feasibility([3.0], 25)["feasible"] == UNDETERMINED  # one episode: no CI
    assert feasibility([], 25)["feasible"] == UNDETERMINED
    assert feasibility([10, 12], 25)["margin"] == pytest.approx(14.0)


def test_verdict_from_a_stored_interval():
    assert verdict(Estimate(5, 4, 6, 3), 6) == FEASIBLE
    assert verdict(Estimate(8, 7, 9, 3), 6) == INFEASIBLE
    assert verdict(Estimate(6, 5, 7, 3), 6) == UNDETERMINED
    assert verdict(Estimate(5, math.nan, math.nan, 1), 6) == UNDETERMINED


def test_an_arm_is_feasible_only_when_every_seed_is():
    assert arm_verdict([FEASIBLE, FEASIBLE]) == FEASIBLE
    assert arm_verdict([FEASIBLE, INFEASIBLE]) == INFEASIBLE
    assert arm_verdict([FEASIBLE, UNDETERMINED]) == UNDETERMINED
    assert arm_verdict([]) == UNDETERMINED


def test_constraint_bound_reads_the_lambda_column():
    assert constraint_bound(["0", "0.0", 0.0]) is False
    assert constraint_bound(["0", "0.3", "0"]) is True
    assert constraint_bound(["", "nan", None]) is None  # an unconstrained learner has no λ
    assert tax_label(FEASIBLE, False) == NEVER_BOUND  # even a feasible arm measured no tax
    assert tax_label(INFEASIBLE, True) == "tax against an infeasible arm"
    assert tax_label(FEASIBLE, True) == tax_label(FEASIBLE, None) == "tax"
    assert disagreement({"deterministic": FEASIBLE, "stochastic": FEASIBLE}) == ""
    assert "infeasible under deterministic" in disagreement({"deterministic": INFEASIBLE, "stochastic": FEASIBLE})


# ----------------------------------------------------------------------------- decomposition


def test_decomposition_hand_computed_and_sums_to_tau():
    # C_unc = 1000, C_safe = 500, best feasible 800: τ = 0.5, τ_constraint = 0.2, τ_learner = 0.3
    parts = decompose_tax({0: 1000.0, 1: 1000.0}, {0: 400.0, 1: 600.0}, {0: 800.0, 1: 700.0}, n_boot=500)
    assert parts["tax"].point == pytest.approx(0.5)
    assert parts["tau_constraint"].point == pytest.approx(0.2)
    assert parts["tau_learner"].point == pytest.approx(0.3)
    assert parts["c_feasible"] == 800.0 and parts["note"] == ""
    # resamples of the seeds: {0, 0} → (τ_c, τ_l) = (0.2, 0.4); {0, 1} → (0.2, 0.3); {1, 1} → (0.3, 0.1),
    # the candidates drawn with their seed; each extreme has probability 1/4, so the 95 % CI spans them
    assert (parts["tau_constraint"].low, parts["tau_constraint"].high) == pytest.approx((0.2, 0.3))
    assert (parts["tau_learner"].low, parts["tau_learner"].high) == pytest.approx((0.1, 0.4))


def test_decomposition_without_a_feasible_policy_says_so():
    parts = decompose_tax({0: 10.0, 1: 12.0}, {0: 5.0, 1: 6.0}, {}, n_boot=200)
    assert math.isnan(parts["tau_constraint"].point) and math.isnan(parts["tau_learner"].point)
    assert parts["note"] == NO_FEASIBLE and parts["tax"].point == pytest.approx(0.5)


def test_tau_constraint_is_zero_when_a_feasible_policy_beats_the_unconstrained_mean():
    parts = decompose_tax({0: 100.0, 1: 100.0}, {0: 50.0, 1: 50.0}, {0: 120.0}, n_boot=200)
    assert parts["tau_constraint"].point == 0.0 and parts["tau_learner"].point == pytest.approx(0.5)
    # a fixed reference (e.g. a measured-feasible shield) counts too
    ref = decompose_tax({0: 100.0, 1: 100.0}, {0: 50.0, 1: 50.0}, {}, references=[90.0], n_boot=200)
    assert ref["tau_constraint"].point == pytest.approx(0.1)


def test_best_feasible_keeps_the_most_capable_feasible_run_per_seed():
    best = best_feasible(
        [
            {"seed": 0, "capability": 900, "feasible": INFEASIBLE, "source": "ppo-off seed 0"},
            {"seed": 0, "capability": 500, "feasible": FEASIBLE, "source": "ppo-lag seed 0"},
            {"seed": 1, "capability": 450, "feasible": UNDETERMINED, "source": "ppo-lag seed 1"},
        ]
    )
    assert best == {0: (500.0, "ppo-lag seed 0")}


# ----------------------------------------------------------------------------- budgets


def test_budget_steps_are_log_spaced():
    assert budget_steps(200_000) == [25_000, 50_000, 100_000, 200_000]
    assert budget_steps(512, minimum=128) == [128, 256, 512]


def test_convergence_rule_at_ten_percent_of_the_last_doubling():
    assert relative_change(100, 109) == pytest.approx(9 / 109)
    assert convergence({"a": {1: 100, 2: 109}, "b": {1: 50, 2: 50}})["converged"] is True
    assert convergence({"a": {1: 100, 2: 112}, "b": {1: 50, 2: 50}})["converged"] is False
    assert convergence({"a": {2: 100}})["converged"] is None  # no T/2 point: unknown


def test_tax_over_training_hand_computed():
    unc = {0: {1: {"capability": 100, "violation_rate": 0.5}, 2: {"capability": 200, "violation_rate": 0.4}}}
    unc[1] = unc[0]
    safe = {
        s: {1: {"capability": 50, "violation_rate": 0.1}, 2: {"capability": 150, "violation_rate": 0.0}} for s in (0, 1)
    }
    rows = tax_over_training(unc, safe, n_boot=100)
    assert [r["budget"] for r in rows] == [1, 2]
    assert rows[0]["tax"].point == pytest.approx(0.5) and rows[1]["tax"].point == pytest.approx(0.25)
    assert rows[0]["safety_gain"].point == pytest.approx(0.8) and rows[1]["safety_gain"].point == pytest.approx(1.0)
    # early on the unconstrained capability can sit near 0: τ(t) there is undefined, not a huge number
    early = {s: {1: {"capability": 0.01, "violation_rate": 0.5}, 2: unc[0][2]} for s in (0, 1)}
    rows = tax_over_training(early, safe, n_boot=100)
    assert math.isnan(rows[0]["tax"].point) and rows[1]["tax"].point == pytest.approx(0.25)


# ----------------------------------------------------------------------------- statistics


def test_probability_of_improvement_is_rliable_mann_whitney():
    est = probability_of_improvement([3.0, 4.0], [1.0, 2.0], n_boot=50)
    assert est.point == pytest.approx(1.0) and est.high == pytest.approx(1.0)
    assert probability_of_improvement([1.0, 2.0], [1.0, 2.0], n_boot=0).point == pytest.approx(0.5)


def test_width_warning_when_the_tax_ci_is_wider_than_point_three():
    assert "too wide" in width_warning("τ", Estimate(0.7, 0.2, 0.97, 3))
    assert width_warning("τ", Estimate(0.7, 0.6, 0.8, 3)) == ""
    assert "no confidence interval" in width_warning("τ", Estimate(0.7, math.nan, math.nan, 1))


# ----------------------------------------------------------------------------- the pair summary


def _run(seed, cap_det, cost_det, cap_sto, cost_sto, arm="ppo-lag", bound=False):
    def ci(c):
        return {"low": c - 2.0, "high": c + 2.0}

    row = {"seed": seed, "arm": arm, "intensity": "d25" if arm != "ppo" else "off", "cost_limit": 25.0}
    for p, cap, cost in (("deterministic", cap_det, cost_det), ("stochastic", cap_sto, cost_sto)):
        row.update({f"capability_{p}": cap, f"violation_rate_{p}": cost / 1000, f"episode_cost_{p}": cost})
        row.update({f"episode_cost_{p}_{k}": v for k, v in ci(cost).items()})
    row["constraint_bound"] = "" if arm == "ppo" else bound
    return row


def test_the_issue_16_cheetah_case_is_never_a_plain_zero_tax():
    """λ never left 0, so both arms are the same policy; deterministic cost ~100 > d = 25, stochastic ~10."""
    unc = [_run(s, 1500.0 + s, 100.0 + s, 1200.0, 10.0, arm="ppo") for s in (0, 1)]
    safe = [_run(s, 1500.0 + s, 100.0 + s, 1200.0, 10.0) for s in (0, 1)]
    out = honest_pair_summary(unc, safe, "deterministic", n_boot=200)
    assert out["tax"].point == 0.0 and out["tax_label"] == NEVER_BOUND
    assert out["feasible"] == INFEASIBLE and out["protocols"]["stochastic"]["feasible"] == FEASIBLE
    text = " ".join(out["warnings"])
    assert "never bound" in text and "INFEASIBLE under deterministic" in text and "protocols disagree" in text
    # stochastic: the (identical) runs are feasible, so C*_feasible = C_unc and nothing is the constraint's
    sto = out["protocols"]["stochastic"]
    assert sto["tau_constraint"].point == 0.0 and sto["c_feasible_source"].startswith(
        ("ppo-off seed", "ppo-lag-d25 seed")
    )
    # deterministic: no run meets d, so the split is refused
    assert math.isnan(out["tau_constraint"].point) and "no feasible policy" in out["decomposition_note"]


def test_a_bound_feasible_arm_gets_a_plain_tax_split_in_two():
    unc = [_run(s, 1000.0, 100.0, 900.0, 90.0, arm="ppo") for s in (0, 1, 2)]
    safe = [_run(s, c, 10.0, c, 10.0, bound=True) for s, c in zip((0, 1, 2), (500.0, 700.0, 600.0), strict=True)]
    out = honest_pair_summary(unc, safe, "stochastic", n_boot=300)
    assert out["protocol"] == "stochastic" and out["feasible"] == FEASIBLE and out["tax_label"] == "tax"
    assert out["c_feasible"] == 700.0  # the best feasible run across arms and seeds
    assert out["tau_constraint"].point + out["tau_learner"].point == pytest.approx(out["tax"].point)
    assert out["tau_constraint"].point == pytest.approx(1 - 700 / 900)
    assert isinstance(out["prob_improvement"], Estimate) and out["prob_improvement"].point == 1.0
    assert np.isfinite(out["tax_ci_width"])


def test_a_budget_that_measured_nothing_says_so_and_what_to_change():
    """Both arms at capability 0 and no violation (PandaReach at 8k steps): one line says no tax was measured."""
    unc = [_run(s, 0.0, 0.0, 0.0, 0.0, arm="ppo") for s in (0, 1)]
    safe = [_run(s, 0.0, 0.0, 0.0, 0.0) for s in (0, 1)]
    text = " ".join(honest_pair_summary(unc, safe, "deterministic", n_boot=200)["warnings"])
    assert "this budget measured no tax" in text and "--steps" in text
    assert "lower the limit" in text  # λ never left 0 either: what would make the constraint bind
    busy = [_run(s, 900.0, 50.0, 700.0, 40.0, arm="ppo") for s in (0, 1)]
    working = [_run(s, 600.0, 10.0, 500.0, 12.0, bound=True) for s in (0, 1)]
    assert "measured no tax" not in " ".join(
        honest_pair_summary(busy, working, "deterministic", n_boot=200)["warnings"]
    )


def test_nothing_learned_is_not_convergence():
    from taxbench.experiments.metrics.budget import convergence

    assert convergence({"ppo": {1: 0.0, 2: 0.0}, "ppo-lag": {1: 0.0, 2: 0.0}})["converged"] is None
    assert convergence({"ppo": {1: 0.9, 2: 0.92}, "ppo-lag": {1: 0.5, 2: 0.52}})["converged"] is True
    assert convergence({"ppo": {1: 0.0, 2: 0.5}, "ppo-lag": {1: 0.0, 2: 0.0}})["converged"] is False
