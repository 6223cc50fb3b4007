"""Shipped reference results: export and merge, read back, compare, render, and ``taxbench report --reference``.

Built on the committed report fixture (no training): Reach-v0 (ppo-lag mild and strict, 4 seeds) and
Velocity-v0 (ppo-lag strict, 2 seeds, infeasible under the deterministic protocol), every run trained
for 3000 steps. Provenance is added to the copies' config.json here; one Velocity run reports another
numpy, so that env's versions name both.
"""

import csv
import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest

from taxbench.experiments.analysis.reference import (
    REFERENCE_COLUMNS,
    compare_to_reference,
    export_reference,
    load_reference,
)
from taxbench.experiments.analysis.reference_text import reference_markdown
from taxbench.experiments.analysis.report import ReportOptions, build_report
from taxbench.experiments.analysis.report_html import fmt_ci
from taxbench.experiments.analysis.runtable import to_float
from taxbench.experiments.metrics.feasibility import NEVER_BOUND

FIXTURE = Path(__file__).parents[1] / "fixtures" / "report_runs"
OPTIONS = ReportOptions(n_boot=200)
PACKAGES = {"torch": "2.1.0+cpu", "stable_baselines3": "2.3.0", "gymnasium": "1.0.0", "mujoco": "3.1.6"} | {
    "numpy": "1.26.4"
}
VERSIONS = "torch 2.1.0+cpu; mujoco 3.1.6; stable_baselines3 2.3.0; gymnasium 1.0.0; numpy 1.26.4"


def _copy_runs(tmp_path: Path, name: str, keep: tuple[str, ...] = ("Reach-v0", "Velocity-v0")) -> Path:
    """A copy of the fixture experiment holding only the envs in ``keep``, with provenance in every config."""
    root = tmp_path / name / "fixture"
    shutil.copytree(FIXTURE / "fixture", root)
    for env in {"Reach-v0", "Velocity-v0"} - set(keep):
        shutil.rmtree(root / env)
    for path in root.rglob("config.json"):
        record = json.loads(path.read_text())
        other = "Velocity-v0/ppo-off/seed1" in path.as_posix()
        record["provenance"] = {"packages": {**PACKAGES, "numpy": "2.0.0" if other else PACKAGES["numpy"]}}
        path.write_text(json.dumps(record))
    return root


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _key(row) -> tuple[str, str, str, str]:
    return (row["env"], row["arm"], row["intensity"], row["protocol"])


def _manifest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def report(tmp_path):
    root = _copy_runs(tmp_path, "runs")
    data, _ = build_report(root, OPTIONS, figures=False)
    return root, data


def test_export_holds_the_reports_values_of_both_protocols(report, tmp_path):
    root, data = report
    done = export_reference(data, tmp_path / "ref")
    reference = {_key(r): r for r in load_reference(done.reference_csv)}
    report_rows = {_key(r): r for r in _rows(root / "tax_by_protocol.csv")}
    assert reference.keys() == report_rows.keys() and len(reference) == 6
    assert {k[3] for k in reference} == {"deterministic", "stochastic"}
    shared = [c for c in REFERENCE_COLUMNS if c in next(iter(report_rows.values()))]
    assert len(shared) >= 25
    for key, row in reference.items():
        assert {c: row[c] for c in shared} == {c: report_rows[key][c] for c in shared}, key
        assert row["steps"] == "3000"
    assert reference[("Reach-v0", "ppo-lag", "mild", "deterministic")]["cost_limit"] == "50.0"
    assert reference[("Reach-v0", "ppo-lag", "mild", "deterministic")]["versions"] == VERSIONS
    assert reference[("Velocity-v0", "ppo-lag", "strict", "stochastic")]["versions"] == (
        f"{VERSIONS} | {VERSIONS.replace('numpy 1.26.4', 'numpy 2.0.0')}"
    )
    runs = _rows(done.runs_csv)
    assert len(runs) == 17 and {r["env"] for r in runs} == {"Reach-v0", "Velocity-v0"}
    assert all(r["path"].startswith(f"{r['env']}/") and str(tmp_path) not in r["path"] for r in runs)
    assert [r["capability"] for r in runs] == [r["capability"] for r in sorted(_rows(root / "summary.csv"), key=_run)]
    export_reference(root, tmp_path / "from_folder")  # the report folder's CSV files give the same reference
    assert (tmp_path / "from_folder" / "reference.csv").read_text() == done.reference_csv.read_text()


def _run(row) -> tuple:
    from taxbench.experiments.runs.sweep import intensity_rank

    return (row["env"], row["arm"], intensity_rank(row["intensity"]), int(row["seed"]))


def test_an_export_replaces_its_envs_rows_and_keeps_the_others(tmp_path):
    reach, velocity = _copy_runs(tmp_path, "reach", ("Reach-v0",)), _copy_runs(tmp_path, "velocity", ("Velocity-v0",))
    out = tmp_path / "ref"
    first = export_reference(build_report(reach, OPTIONS, figures=False)[0], out)
    reach_rows = load_reference(out / "reference.csv")
    second = export_reference(build_report(velocity, OPTIONS, figures=False)[0], out)
    assert (first.cells, first.kept, second.cells, second.kept) == (4, 0, 2, 4)
    merged = load_reference(out / "reference.csv")
    assert [r for r in merged if r["env"] == "Reach-v0"] == reach_rows and len(merged) == 6
    assert len(_rows(out / "runs.csv")) == 17
    for path in reach.rglob("config.json"):  # Reach trained again for longer: its rows change
        path.write_text(path.read_text().replace('"steps": 3000', '"steps": 6000'))
    export_reference(build_report(reach, OPTIONS, figures=False)[0], out)
    again = load_reference(out / "reference.csv")
    assert len(again) == 6 and [_key(r) for r in again] == [_key(r) for r in merged]
    assert {r["steps"] for r in again if r["env"] == "Reach-v0"} == {"6000"}
    assert [r for r in again if r["env"] == "Velocity-v0"] == [r for r in merged if r["env"] == "Velocity-v0"]
    runs = _rows(out / "runs.csv")
    assert len(runs) == 17 and {r["steps"] for r in runs if r["env"] == "Reach-v0"} == {"6000"}


def test_compare_pairs_each_cell_with_its_reference_row_and_marks_missing_ones(report, tmp_path):
    _, data = report
    rows = load_reference(export_reference(data, tmp_path / "ref").reference_csv)
    reach_only = [dict(r) for r in rows if r["env"] == "Reach-v0"]
    mild = next(r for r in reach_only if _key(r) == ("Reach-v0", "ppo-lag", "mild", "deterministic"))
    mild["tax"], mild["steps"] = "0.5", "1000000"
    compared = {_key(r): r for r in compare_to_reference(data.cells_by_protocol, reach_only)}
    assert len(compared) == 6
    row = compared[("Reach-v0", "ppo-lag", "mild", "deterministic")]
    assert row["reference_found"] and row["reference_tax"] == 0.5 and row["user_tax"] == pytest.approx(1 / 7)
    assert (row["user_steps"], row["reference_steps"]) == ("3000", "1000000")
    strict = compared[("Reach-v0", "ppo-lag", "strict", "deterministic")]
    assert strict["reference_tax"] == strict["user_tax"] and strict["reference_feasible"] == "feasible"
    for protocol in ("deterministic", "stochastic"):
        missing = compared[("Velocity-v0", "ppo-lag", "strict", protocol)]
        assert missing["reference_found"] is False and math.isnan(missing["reference_tax"])
        assert missing["reference_feasible"] == missing["reference_steps"] == "" and missing["user_steps"] == "3000"
    assert compared[("Velocity-v0", "ppo-lag", "strict", "deterministic")]["user_feasible"] == "infeasible"


def test_markdown_shows_the_reference_numbers_and_labels_what_is_not_a_plain_tax(report, tmp_path):
    _, data = report
    rows = load_reference(export_reference(data, tmp_path / "ref").reference_csv)
    lines = reference_markdown(rows).splitlines()
    assert len(lines) == 2 + 3  # header, rule, one line per deterministic cell
    for row in (r for r in rows if r["protocol"] == "deterministic"):
        numbers = {k: to_float(v) for k, v in row.items() if k.startswith(("tax", "tau_", "safety_gain"))}
        [line] = [x for x in lines if f"| {row['env']} | {row['arm']} | {row['intensity']} (" in x]
        for key in ("tax", "tau_constraint", "tau_learner", "safety_gain"):
            assert fmt_ci(numbers, key) in line
        assert ("2–3 %" if row["intensity"] == "mild" else "10–20 %") in line
    [velocity] = [x for x in lines if "Velocity-v0" in x]
    assert "(tax against an infeasible arm)" in velocity and "INFEASIBLE (1/2 seeds feasible)" in velocity
    mild = next(r for r in rows if _key(r) == ("Reach-v0", "ppo-lag", "mild", "deterministic"))
    mild.update(tax_label=NEVER_BOUND, tau_constraint="", tau_learner="", c_feasible_source="")
    [line] = [x for x in reference_markdown(rows).splitlines() if "mild (d=50)" in x]
    cells = [c.strip() for c in line.split("|")]
    assert cells[4] == NEVER_BOUND and cells[5] == cells[6] == "no feasible policy"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"experiment,env,arm\nfixture,Reach-v0,ppo\n", "not a taxbench reference.csv: no column intensity"),
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary", "not a CSV text file"),
        (b"", "no column env"),
    ],
)
def test_bad_reference_files_are_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "reference.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        load_reference(path)
    assert "\n" not in str(info.value)


def test_a_reference_with_a_cell_twice_or_an_unknown_protocol_is_refused(report, tmp_path):
    _, data = report
    path = export_reference(data, tmp_path / "ref").reference_csv
    text = path.read_text().splitlines()
    (tmp_path / "twice.csv").write_text("\n".join([*text, text[1]]) + "\n")
    with pytest.raises(ValueError, match="line 8: Reach-v0 ppo-lag mild deterministic appears twice"):
        load_reference(tmp_path / "twice.csv")
    (tmp_path / "greedy.csv").write_text("\n".join([text[0], text[1].replace("deterministic", "greedy")]) + "\n")
    with pytest.raises(ValueError, match="unknown protocol 'greedy'"):
        load_reference(tmp_path / "greedy.csv")


@pytest.mark.parametrize("bad", ["missing.csv", "not_a_reference.csv", "a_folder", "afile/below", "broken_export"])
def test_report_with_a_bad_reference_exits_2_in_one_line_and_writes_nothing(tmp_path, capsys, bad):
    from taxbench.experiments.cli import main

    root = _copy_runs(tmp_path, "runs")
    (tmp_path / "not_a_reference.csv").write_text("a,b\n1,2\n")
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "afile").write_text("a file\n")
    (tmp_path / "broken_export").mkdir()
    (tmp_path / "broken_export" / "reference.csv").write_text("env\nReach-v0\n")
    argv = ["report", str(root), "--reference", str(tmp_path / bad)]
    if bad in ("afile/below", "broken_export"):  # export folders: below a file; holding a broken reference.csv
        argv = ["report", str(root), "--export-reference", str(tmp_path / bad)]
    before = _manifest(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert _manifest(tmp_path) == before


def test_report_against_a_reference_from_the_real_cli(report, tmp_path, capsys):
    from taxbench.experiments.cli import main

    root, data = report
    reference = export_reference(data, tmp_path / "ref").reference_csv
    out, exported = tmp_path / "out", tmp_path / "exported"
    argv = ["report", str(root), "--out", str(out), "--n-boot", "200", "--reference", str(reference)]
    assert main([*argv, "--export-reference", str(exported)]) == 0
    stdout = capsys.readouterr().out
    assert "Against the reference" in stdout and "3 of 3 found" in stdout.replace("\n", " ")
    compared = _rows(out / "reference_comparison.csv")
    assert len(compared) == 6 and {r["reference_found"] for r in compared} == {"True"}
    assert all(r["user_tax"] == r["reference_tax"] for r in compared)
    markdown = (out / "report.md").read_text()
    assert "The reference τ lies inside the CI of your τ in 3 of the 3 cells" in markdown
    assert "## Against the reference" in markdown and "0.333 [0.25, 0.4] (tax against an infeasible arm)" in markdown
    assert "<h2>Against the reference</h2>" in (out / "report.html").read_text()
    assert load_reference(exported / "reference.csv") == load_reference(reference)
