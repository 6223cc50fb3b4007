"""Both protocols on the same seeded episodes, feasibility fields, budget copies and the honest pair output."""

import csv
import json
import math

import numpy as np
import pytest
import torch
from pendulum_cost_env import ENV_ID

from taxbench.experiments.runs.budgets import BUDGETS_FILE, budget_path, read_budgets
from taxbench.experiments.runs.evaluation import evaluate_policy
from taxbench.experiments.runs.jobs import Job, JobResult
from taxbench.experiments.runs.protocols import STOCHASTIC_EPISODES_FILE, evaluate_protocols, read_lambda


class NoisyPolicy:
    """Deterministic: full torque (the pendulum spins: high cost). Stochastic: small torch-sampled torques."""

    def predict(self, obs, deterministic=True):
        if deterministic:
            return np.array([2.0], dtype=np.float32), None
        return (0.1 * torch.randn(1)).numpy().astype(np.float32), None


def test_stochastic_episodes_are_seeded_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, _ = evaluate_policy(NoisyPolicy(), ENV_ID, None, episodes=2, seed=5, deterministic=False)
    assert torch.equal(torch.random.get_rng_state(), before)
    b, _ = evaluate_policy(NoisyPolicy(), ENV_ID, None, episodes=2, seed=5, deterministic=False)
    assert a == b  # same episodes, same action noise
    c, _ = evaluate_policy(NoisyPolicy(), ENV_ID, None, episodes=2, seed=5, deterministic=True)
    assert [r["seed"] for r in a] == [r["seed"] for r in c] and a[0]["return"] != c[0]["return"]


def test_both_protocols_are_written_and_judged_against_the_runs_own_limit(tmp_path, tiny_config):
    cfg = tiny_config(arm="ppo-lag", cost_limit=0.0, eval_episodes=3)
    summary, rows = evaluate_protocols(NoisyPolicy(), cfg, tmp_path)
    with open(tmp_path / "episodes.csv", newline="") as fh:
        det = list(csv.DictReader(fh))
    with open(tmp_path / STOCHASTIC_EPISODES_FILE, newline="") as fh:
        sto = list(csv.DictReader(fh))
    assert {r["protocol"] for r in det} == {"deterministic"} and {r["protocol"] for r in sto} == {"stochastic"}
    assert [r["seed"] for r in det] == [r["seed"] for r in sto] == ["100", "101", "102"]
    assert summary["episode_cost_deterministic"] == pytest.approx(np.mean([float(r["cost"]) for r in det]))
    assert summary["episode_cost_stochastic"] == pytest.approx(np.mean([float(r["cost"]) for r in sto]))
    assert summary["capability"] == summary["capability_deterministic"] and summary["protocol"] == "deterministic"
    # every spinning episode costs > 0 = d: infeasible, with a CI over episodes that excludes d
    assert summary["feasible_deterministic"] == "infeasible" == summary["feasible"]
    assert summary["episode_cost_deterministic_low"] > 0
    relaxed, _ = evaluate_protocols(NoisyPolicy(), tiny_config(arm="ppo-lag", cost_limit=1e6), None)
    assert relaxed["feasible_deterministic"] == relaxed["feasible_stochastic"] == "feasible"
    unconstrained, _ = evaluate_protocols(NoisyPolicy(), tiny_config(arm="ppo"), None)
    assert unconstrained["feasible_deterministic"] == "" and unconstrained["constrained"] is False


def test_lambda_that_never_left_zero_is_reported(tmp_path):
    (tmp_path / "progress.csv").write_text("steps,lambda\n128,0.0\n256,0.0\n")
    assert read_lambda(tmp_path) == (False, 0.0)
    (tmp_path / "progress.csv").write_text("steps,lambda\n128,0.0\n256,0.25\n")
    assert read_lambda(tmp_path) == (True, 0.25)
    (tmp_path / "progress.csv").write_text("steps,lambda\n128,\n")
    bound, lam = read_lambda(tmp_path)
    assert bound is None and math.isnan(lam)


def test_training_keeps_log_spaced_copies_and_evaluates_them(tmp_path, tiny_config):
    from taxbench.experiments.runs.train import train_run

    cfg = tiny_config(steps=512)  # rollouts of 2 envs × 64 steps: starts at 0, 128, 256, 384
    summary = train_run(cfg, tmp_path, progress=False)
    # budgets T/8 = 64 and T/4 = 128 are first passed at the same rollout start: one copy (128); then 256
    assert budget_path(tmp_path, 128).exists() and budget_path(tmp_path, 256).exists()
    assert not budget_path(tmp_path, 64).exists()
    assert json.loads(budget_path(tmp_path, 256).with_suffix(".json").read_text())["steps"] == 256
    det = read_budgets(tmp_path, "deterministic")
    assert sorted(det) == [128, 256, 512] and sorted(read_budgets(tmp_path, "stochastic")) == [128, 256, 512]
    assert float(det[512]["capability"]) == pytest.approx(summary["capability_deterministic"])
    assert int(det[512]["steps"]) == summary["train_steps"] and summary["budgets"] == 3
    assert summary["constraint_bound"] in (True, False) and summary["feasible_stochastic"] in (
        "feasible",
        "infeasible",
        "undetermined",
    )
    assert (tmp_path / BUDGETS_FILE).exists() and (tmp_path / STOCHASTIC_EPISODES_FILE).exists()


# ----------------------------------------------------------------------------- the pair's outputs


def _result(tmp_path, tiny_config, arm, seed, cap, cost, *, cost_sto, bound, budgets):
    intensity = "off" if arm == "ppo" else "d25"
    cfg = tiny_config(arm=arm, intensity=intensity, cost_limit=25.0, seed=seed)
    directory = tmp_path / f"{arm}-{intensity}" / f"seed{seed}"
    directory.mkdir(parents=True)
    summary = {"capability_metric": "return", "capability": cap, "violation_rate": cost / 1000, "episode_cost": cost}
    for p, c in (("deterministic", cost), ("stochastic", cost_sto)):
        summary.update({f"capability_{p}": cap, f"violation_rate_{p}": c / 1000, f"episode_cost_{p}": c})
        summary.update({f"episode_cost_{p}_low": c - 3, f"episode_cost_{p}_high": c + 3})
        summary[f"feasible_{p}"] = "" if arm == "ppo" else ("feasible" if c + 3 <= 25 else "infeasible")
    summary["constraint_bound"] = "" if arm == "ppo" else bound
    with open(directory / BUDGETS_FILE, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["budget", "steps", "protocol", "capability", "violation_rate"])
        writer.writeheader()
        for budget, fraction in budgets:
            for p in ("deterministic", "stochastic"):
                writer.writerow(
                    {
                        "budget": budget,
                        "steps": budget,
                        "protocol": p,
                        "capability": cap * fraction,
                        "violation_rate": 0.1,
                    }
                )
    return JobResult(Job(cfg, directory, f"{arm} seed {seed}"), summary=summary)


def test_pair_outputs_name_protocol_feasibility_split_and_convergence(tmp_path, tiny_config, capsys):
    from taxbench.experiments.cli.pair_table import print_pair_table
    from taxbench.experiments.runs.pair import summarize_pair, write_pair_outputs

    growing = [(100, 0.5), (200, 0.8)]  # capability still rising 37.5 % over the last doubling
    results = [
        _result(tmp_path, tiny_config, "ppo", s, 1000.0 + 10 * s, 100.0, cost_sto=12.0, bound=None, budgets=growing)
        for s in (0, 1)
    ] + [
        _result(
            tmp_path, tiny_config, "ppo-lag", s, 1000.0 + 10 * s, 100.0, cost_sto=12.0, bound=False, budgets=growing
        )
        for s in (0, 1)
    ]
    summary = summarize_pair(results, "deterministic", n_boot=200)
    write_pair_outputs(results, summary, tmp_path)
    pair = json.loads((tmp_path / "pair.json").read_text())
    assert pair["protocol"] == "deterministic" and pair["feasible"] == "infeasible"
    assert pair["protocols"]["stochastic"]["feasible"] == "feasible"
    assert pair["tax_label"] == "constraint never bound: this pair measures no tax" and pair["converged"] is False
    assert pair["tau_constraint"]["point"] is None  # deterministic: no feasible run, no split
    assert pair["protocols"]["stochastic"]["tau_constraint"]["point"] == 0.0
    assert [row["budget"] for row in pair["tax_over_training"]] == [100, 200]
    assert "protocols disagree" in pair["protocol_disagreement"]
    with open(tmp_path / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {"feasible_deterministic", "feasible_stochastic", "capability_stochastic", "constraint_bound"} <= set(
        rows[0]
    )

    print_pair_table(results[0].job.cfg, results, summary)
    out = capsys.readouterr().out
    assert "headline protocol: deterministic" in out and "stochastic" in out
    assert "INFEASIBLE" in out and "not a plain tax" in out and "tax τ =" not in out
    assert "not converged" in out and "never bound" in out and "no feasible policy" in out


def test_the_stochastic_headline_of_a_feasible_bound_arm_is_a_plain_tax(tmp_path, tiny_config, capsys):
    from taxbench.experiments.cli.pair_table import print_pair_table
    from taxbench.experiments.runs.pair import summarize_pair

    flat = [(100, 0.95), (200, 1.0)]
    results = [
        _result(tmp_path, tiny_config, "ppo", s, 1000.0 + 10 * s, 100.0, cost_sto=90.0, bound=None, budgets=flat)
        for s in (0, 1, 2)
    ] + [
        _result(tmp_path, tiny_config, "ppo-lag", s, c, 10.0, cost_sto=10.0, bound=True, budgets=flat)
        for s, c in zip((0, 1, 2), (600.0, 500.0, 700.0), strict=True)
    ]
    summary = summarize_pair(results, "stochastic", n_boot=200)
    assert summary["tax_label"] == "tax" and summary["converged"] is True
    assert summary["tau_constraint"].point + summary["tau_learner"].point == pytest.approx(summary["tax"].point)
    print_pair_table(results[0].job.cfg, results, summary)
    out = capsys.readouterr().out
    assert "tax τ = " in out and "headline protocol: stochastic" in out and "verdict: converged" in out
