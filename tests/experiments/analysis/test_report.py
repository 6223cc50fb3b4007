"""The report from committed fixture runs (no training), checked against values computed by hand.

The fixture (fixtures/make_report_runs.py) has two envs:

* Reach (success rate, 4 seeds): ppo-off C = [1, .75, 1, .5], K = [20, 30, 10, 40] violations per
  100-step episode; ppo-lag-mild C = [.75, .75, 1, .5], K = [10, 10, 5, 15]; ppo-lag-strict
  C = [.5, .25, .5, .25], K = [0, 5, 0, 5].
* Velocity (return, 2 seeds): ppo-off C = [1000, 800], K = [100, 60] per 1000 steps;
  ppo-lag-strict C = [600, 600], K = [10, 0]; a third strict seed failed.

With 4 seeds the interquartile mean is the mean of the middle two values; with 2 it is the mean.
"""

import csv
import itertools
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from taxbench.experiments import metrics
from taxbench.experiments.analysis.report import ReportOptions, analyse, build_report
from taxbench.experiments.metrics.sweep import (
    break_even_price,
    iqm_estimate,
    pareto_front,
    relative_drop,
    stratified_estimate,
    task_mean_tax,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "report_runs"
REACH = {
    "off": ([1, 0.75, 1, 0.5], [20, 30, 10, 40]),
    "mild": ([0.75, 0.75, 1, 0.5], [10, 10, 5, 15]),
    "strict": ([0.5, 0.25, 0.5, 0.25], [0, 5, 0, 5]),
}
VELOCITY = {"off": ([1000, 800], [100, 60]), "strict": ([600, 600], [10, 0])}


@pytest.fixture
def runs_dir(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "runs")
    return tmp_path / "runs" / "fixture"


def hand_iqm(values):
    v = sorted(values)
    return (v[1] + v[2]) / 2 if len(v) == 4 else sum(v) / len(v)


def exact_bootstrap(columns, statistic):
    """Every equally likely resample of the seeds (n^n of them), the statistic of each, sorted."""
    n = len(columns[0])
    out = []
    for idx in itertools.product(range(n), repeat=n):
        out.append(statistic(*[[col[i] for i in idx] for col in columns]))
    return np.sort(np.array(out, dtype=float))


def quantile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(p * len(sorted_values)) - 1))]


def assert_ci_matches(low, high, exact):
    """The Monte Carlo 95% CI lies where the exact bootstrap distribution puts its 2.5% and 97.5% points."""
    assert quantile(exact, 0.02) - 1e-12 <= low <= quantile(exact, 0.03) + 1e-12
    assert quantile(exact, 0.97) - 1e-12 <= high <= quantile(exact, 0.98) + 1e-12


def tax_of(unc, safe):
    return (hand_iqm(unc) - hand_iqm(safe)) / abs(hand_iqm(unc))


def cell(data, env, intensity):
    [found] = [c for c in data.cells if c["env"] == env and c["intensity"] == intensity]
    return found


def test_tax_gain_and_cis_match_hand_computed_values(runs_dir):
    data = analyse(runs_dir, ReportOptions(value_per_success=100, price_per_violation=1))
    assert [(c["env"], c["intensity"], c["n_pairs"]) for c in data.cells] == [
        ("Reach-v0", "mild", 4),
        ("Reach-v0", "strict", 4),
        ("Velocity-v0", "strict", 2),
    ]

    mild, strict = cell(data, "Reach-v0", "mild"), cell(data, "Reach-v0", "strict")
    assert mild["capability_unc"] == pytest.approx(0.875) and mild["capability_safe"] == pytest.approx(0.75)
    assert mild["tax"] == pytest.approx((0.875 - 0.75) / 0.875)
    assert strict["tax"] == pytest.approx((0.875 - 0.375) / 0.875)
    assert mild["safety_gain"] == pytest.approx((0.25 - 0.1) / 0.25)
    assert strict["safety_gain"] == pytest.approx((0.25 - 0.025) / 0.25)
    assert strict["capability_loss"] == pytest.approx(0.5)
    assert strict["price_of_safety"] == pytest.approx(strict["tax"] / strict["safety_gain"])
    for level, row in (("mild", mild), ("strict", strict)):
        (c_unc, k_unc), (c_safe, k_safe) = REACH["off"], REACH[level]
        exact = exact_bootstrap([c_unc, c_safe], tax_of)
        assert_ci_matches(row["tax_low"], row["tax_high"], exact)
        gain = exact_bootstrap([[k / 100 for k in k_unc], [k / 100 for k in k_safe]], tax_of)
        assert_ci_matches(row["safety_gain_low"], row["safety_gain_high"], gain)

    # 2 seeds: resamples are {0,0}, {1,1} (1/4 each) and mixed (1/2): the CI is exactly [min, max] of single seeds
    vel = cell(data, "Velocity-v0", "strict")
    assert vel["tax"] == pytest.approx(300 / 900)
    assert (vel["tax_low"], vel["tax_high"]) == pytest.approx((200 / 800, 400 / 1000))
    assert vel["safety_gain"] == pytest.approx((0.08 - 0.005) / 0.08)
    assert (vel["safety_gain_low"], vel["safety_gain_high"]) == pytest.approx((0.9, 1.0))
    assert vel["capability_unc_low"] == pytest.approx(800) and vel["capability_unc_high"] == pytest.approx(1000)


def test_break_even_price_and_net_value_by_hand(runs_dir):
    data = analyse(runs_dir, ReportOptions(value_per_success=100, price_per_violation=1))
    mild, strict = cell(data, "Reach-v0", "mild"), cell(data, "Reach-v0", "strict")
    # Y* = X·(C_unc − C_safe)/(K_unc − K_safe), IQMs: C 0.875 / 0.75 / 0.375, K 25 / 10 / 2.5
    assert mild["break_even_price"] == pytest.approx(100 * 0.125 / 15)
    assert strict["break_even_price"] == pytest.approx(100 * 0.5 / 22.5)
    # net value per episode X·C − Y·K at Y = 1: 62.5 (ppo), 65 (mild: pays), 35 (strict: does not)
    assert (mild["net_value_unc"], mild["net_value_safe"], mild["pays_at_price"]) == pytest.approx((62.5, 65, True))
    assert (strict["net_value_safe"], strict["pays_at_price"]) == pytest.approx((35, False))
    vel = cell(data, "Velocity-v0", "strict")
    assert vel["break_even_price"] == pytest.approx(100 * 300 / 75)
    low_high = (vel["break_even_price_low"], vel["break_even_price_high"])
    assert low_high == pytest.approx((100 * 200 / 60, 100 * 400 / 90))


def test_break_even_price_cases():
    assert break_even_price(0.9, 0.7, 30, 5) == pytest.approx(0.2 / 25)
    assert break_even_price(0.9, 0.7, 30, 5, value_per_success=50) == pytest.approx(50 * 0.2 / 25)
    assert break_even_price(0.9, 0.95, 30, 5) == 0.0  # safer and more capable: pays at any price
    assert break_even_price(0.7, 0.9, 5, 5) == 0.0  # as safe, more capable
    assert break_even_price(0.9, 0.7, 5, 5) == math.inf  # as safe, less capable: never
    assert break_even_price(0.9, 0.95, 5, 8) == math.inf  # violates more: loses at high prices
    assert math.isnan(break_even_price(math.nan, 0.5, 3, 1))
    with pytest.raises(ValueError):
        break_even_price(1, 0, 1, 0, value_per_success=-1)


def test_headline_is_the_stratified_mean_over_envs(runs_dir):
    data = analyse(runs_dir)
    [strict] = [h for h in data.headline if h["intensity"] == "strict"]
    reach_tax, vel_tax = (0.875 - 0.375) / 0.875, 300 / 900
    assert strict["tax"] == pytest.approx((reach_tax + vel_tax) / 2) and strict["n_envs"] == 2
    # exact stratified distribution: seeds resampled within each env independently, then the mean over envs
    reach = exact_bootstrap([REACH["off"][0], REACH["strict"][0]], tax_of)
    vel = exact_bootstrap([VELOCITY["off"][0], VELOCITY["strict"][0]], tax_of)
    assert_ci_matches(strict["tax_low"], strict["tax_high"], np.sort((reach[:, None] + vel[None, :]).ravel() / 2))


def test_breakdown_by_task_and_constraint_type(runs_dir):
    data = analyse(runs_dir)
    rows = {(r["by"], r["group"], r["intensity"]): r for r in data.breakdown}
    assert set(rows) == {
        ("task", "reach", "mild"),
        ("task", "reach", "strict"),
        ("task", "velocity", "strict"),
        ("constraint", "force", "mild"),
        ("constraint", "force", "strict"),
        ("constraint", "separation", "mild"),
        ("constraint", "separation", "strict"),
        ("constraint", "velocity", "strict"),
    }
    assert rows[("task", "reach", "strict")]["tax"] == pytest.approx(0.5 / 0.875)
    assert rows[("constraint", "force", "strict")]["tax"] == pytest.approx(0.5 / 0.875)
    assert rows[("constraint", "velocity", "strict")]["tax"] == pytest.approx(1 / 3)
    assert rows[("task", "velocity", "strict")]["safety_gain"] == pytest.approx(0.9375)


def test_pareto_front_membership(runs_dir):
    data = analyse(runs_dir)
    on = {
        (r["env"], r["arm"], r["intensity"], r["seed"]): (r["pareto_arm"], r["pareto_env"])
        for r in data.runs
        if r["state"] == "done"
    }
    arm_front = {k for k, v in on.items() if v[0]}
    env_front = {k for k, v in on.items() if v[1]}
    assert arm_front == {
        ("Reach-v0", "ppo", "off", 2),
        ("Reach-v0", "ppo-lag", "mild", 2),
        ("Reach-v0", "ppo-lag", "strict", 0),
        ("Reach-v0", "ppo-lag", "strict", 2),
        ("Velocity-v0", "ppo", "off", 0),
        ("Velocity-v0", "ppo", "off", 1),
        ("Velocity-v0", "ppo-lag", "strict", 1),
    }
    # over all runs of Reach, the ppo run at (1.0, 0.1) is beaten by mild seed 2 at (1.0, 0.05)
    assert env_front == arm_front - {("Reach-v0", "ppo", "off", 2)}


def test_pareto_front_edge_cases():
    assert pareto_front([1, 1, 0.5], [0.2, 0.2, 0.1]).tolist() == [True, True, True]  # ties do not dominate
    assert pareto_front([1, 0.5, math.nan], [0.1, 0.2, 0.0]).tolist() == [True, False, False]
    with pytest.raises(ValueError):
        pareto_front([1, 2], [1])


def test_plain_words_note_wherever_a_ci_includes_zero(runs_dir):
    data, paths = build_report(runs_dir, ReportOptions())
    mild, strict = cell(data, "Reach-v0", "mild"), cell(data, "Reach-v0", "strict")
    assert mild["tax_low"] <= 0 <= mild["tax_high"]
    assert "CI of τ includes 0" in mild["note"] and "4 paired seeds" in mild["note"]
    assert strict["note"] == ""
    text = paths["report.md"].read_text()
    assert "cannot be told apart from seed-to-seed noise" in text
    html = paths["report.html"].read_text()
    assert html.count("includes 0") >= 2  # the cell and the headline row of ppo-lag mild


def test_report_files_from_the_real_cli(runs_dir, capsys):
    from taxbench.experiments.cli import main

    assert (
        main(["report", str(runs_dir), "--value-per-success", "100", "--price-per-violation", "1", "--n-boot", "2000"])
        == 0
    )
    stdout = capsys.readouterr().out.replace("\n", " ")
    assert "left out of the statistics" in stdout and "seed2 (failed)" in stdout
    for name in ("summary.csv", "tax.csv", "headline.csv", "breakdown.csv", "report.md", "report.html"):
        assert (runs_dir / name).stat().st_size > 0
    for name in ("dose_response", "pareto", "tax_by_task", "tax_by_constraint", "learning_curves", "break_even"):
        assert (runs_dir / "figures" / f"{name}.png").stat().st_size > 5000
    with open(runs_dir / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 17 and sum(r["state"] == "done" for r in rows) == 16
    [failed] = [r for r in rows if r["state"] == "failed"]
    assert failed["error"] == "RuntimeError: simulated crash" and failed["capability"] == ""
    reach_off = [r for r in rows if r["env"] == "Reach-v0" and r["arm"] == "ppo"]
    assert [float(r["violations_per_episode"]) for r in reach_off] == [20, 30, 10, 40]
    assert [float(r["cost_contact_force"]) for r in reach_off] == [10, 15, 5, 20]
    assert {r["task_kind"] for r in reach_off} == {"reach"} and reach_off[0]["constraint_kinds"] == "force separation"
    with open(runs_dir / "tax.csv", newline="") as fh:
        tax = {(r["env"], r["intensity"]): r for r in csv.DictReader(fh)}
    assert float(tax[("Velocity-v0", "strict")]["tax_low"]) == pytest.approx(0.25)
    assert tax[("Reach-v0", "mild")]["pays_at_price"] == "True"


def test_report_bad_input_is_one_line_exit_2(tmp_path):
    from taxbench.experiments.cli import main

    def exit_code(argv):
        try:
            return main(argv)
        except SystemExit as exc:  # refused by the parser, before the command runs
            return exc.code

    assert exit_code(["report", str(tmp_path)]) == 2  # no runs in it
    assert exit_code(["report", str(tmp_path / "missing")]) == 2
    assert exit_code(["report", str(tmp_path), "--price-per-violation", "-1"]) == 2


def test_video_links_when_the_rollout_module_provides_media(runs_dir, monkeypatch):
    from taxbench.experiments.media import rollout

    clip = runs_dir / "Reach-v0" / "ppo-off" / "seed0" / "media" / "rollout.mp4"
    clip.parent.mkdir()
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42")

    def media_for_run(run_dir):  # the shape of experiments/clips.py's: lists by kind, only existing files
        media = Path(run_dir) / "media"
        return {"contact_sheet": [], "video": sorted(media.glob("*.mp4")) if media.is_dir() else []}

    monkeypatch.setattr(rollout, "media_for_run", media_for_run, raising=False)
    data, paths = build_report(runs_dir, ReportOptions(n_boot=500))
    assert data.media == {"Reach-v0/ppo-off/seed0": ["Reach-v0/ppo-off/seed0/media/rollout.mp4"]}
    assert '<a href="Reach-v0/ppo-off/seed0/media/rollout.mp4">rollout.mp4</a>' in paths["report.html"].read_text()


def test_stratified_bootstrap_reduces_to_the_paired_tax_for_one_task():
    unc, safe = [1.0, 0.8, 0.9, 0.7, 1.0], [0.6, 0.7, 0.9, 0.5, 0.8]
    for aggregate in ("mean", "iqm"):
        ours = task_mean_tax([np.column_stack([unc, safe])], aggregate=aggregate, n_boot=3000)
        theirs = metrics.alignment_tax(unc, safe, aggregate=aggregate, n_boot=3000)
        assert (ours.point, ours.low, ours.high, ours.n) == pytest.approx((theirs.point, theirs.low, theirs.high, 5))
    assert math.isnan(stratified_estimate([[[0.0, 1.0]]], relative_drop).point)  # τ undefined at C_unc = 0


def test_iqm_ci_agrees_with_rliable():
    try:
        import rliable.library as rliable
    except Exception as exc:  # absent, or present but broken (rliable 1.2 + arch vs a newer pandas)
        pytest.skip(f"rliable is not importable: {type(exc).__name__}")
    scores = np.array([[0.2], [0.5], [0.55], [0.6], [0.9], [0.95], [0.3], [0.4]])
    ours = iqm_estimate(scores[:, 0], n_boot=20_000)
    assert ours == iqm_estimate(scores[:, 0], n_boot=20_000)  # seeded: a report rebuilds to the same digits
    point, cis = rliable.get_interval_estimates({"arm": scores}, lambda x: np.array([metrics.iqm(x)]), reps=20_000)
    assert ours.point == pytest.approx(point["arm"][0])
    # IQM of 8 seeds has a discrete bootstrap distribution: rliable's own bounds move by one step (0.025 here)
    # from call to call, so agreement is within two steps
    assert ours.low == pytest.approx(cis["arm"][0, 0], abs=0.05) and ours.high == pytest.approx(
        cis["arm"][1, 0], abs=0.05
    )


def test_a_sweep_that_measured_nothing_gets_sentences_not_empty_axes(tmp_path):
    """Every run at capability 0 and no violation (a budget too small): τ, g, τ(t) and break-even are undefined.
    The report still builds, and each figure says what is missing instead of drawing empty or fake axes."""
    import json

    from matplotlib.figure import Figure

    root = tmp_path / "runs"
    shutil.copytree(FIXTURE, root)
    for status in root.rglob("status.json"):
        record = json.loads(status.read_text())
        if "summary" not in record:  # a failed run of the fixture
            continue
        record["summary"].update(
            capability=0.0, mean_return=0.0, success_rate=0.0, violation_rate=0.0, episode_cost=0.0
        )
        status.write_text(json.dumps(record))
    texts: list[str] = []
    real_savefig = Figure.savefig

    def savefig(fig, *args, **kwargs):
        texts.extend(t.get_text() for ax in fig.axes for t in ax.texts)
        return real_savefig(fig, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", savefig)
        data, paths = build_report(root / "fixture", ReportOptions(n_boot=200))
    assert paths["report.html"].is_file()
    assert any("alignment tax τ undefined at every intensity" in t for t in texts), texts
    assert any("safety gain g undefined at every intensity" in t for t in texts), texts


def test_report_names_its_protocols_and_flags_a_gap_between_curves_and_tables(tmp_path):
    """Curves are training episodes (stochastic policy), tables the deterministic policy: a big gap is said."""
    import csv
    import json

    root = tmp_path / "runs"
    shutil.copytree(FIXTURE, root)

    def set_training_return(run, value):
        progress = run / "progress.csv"
        rows = list(csv.DictReader(progress.open()))
        for row in rows:
            row["ep_return"] = str(value)
        with progress.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    for status in (root / "fixture").rglob("status.json"):  # training episodes earn what the evaluation measured
        summary = json.loads(status.read_text()).get("summary")
        if summary and (status.parent / "progress.csv").exists():
            set_training_return(status.parent, summary["mean_return"])
    quiet = build_report(root / "fixture", ReportOptions(n_boot=200))[1]["report.md"].read_text()
    assert "the learning curves show the training episodes, played by the stochastic policy" in quiet
    assert "Protocol gap" not in quiet
    for run in (root / "fixture" / "Velocity-v0" / "ppo-off").glob("seed*"):
        set_training_return(run, -5000)  # training episodes far below what the deterministic policy earns
    text = build_report(root / "fixture", ReportOptions(n_boot=200))[1]["report.md"].read_text()
    assert "Protocol gap: Velocity-v0 ppo-off" in text
