"""README's Python example, run as written: it trains a tiny pair and reads its runs back."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    match = re.search(r"<!-- api-example -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README lost its Python API example"
    return match.group(1)


def test_readme_python_example_runs_and_its_results_match_the_files(tmp_path):
    code = readme_example() + (
        "\nimport json\n"
        "saved = json.loads((result.folder / 'pair.json').read_text())\n"
        "assert result.tax.point == saved['tax']['point'] or saved['tax']['point'] != saved['tax']['point']\n"
        "assert len(runs) == 4 and sorted(set(runs.column('arm'))) == ['ppo', 'ppo-lag']\n"
        "assert all(p.is_dir() for p in result.run_dirs)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "runs" / "notebook" / "pair.json").is_file()


def test_a_bad_argument_raises_value_error_before_any_run(tmp_path):
    from taxbench.experiments import pair

    for bad in ({"steps": 0}, {"device": "tpu"}, {"env": "taxbench/HalfCheetahVelocty-v0"}, {"cost_limit": -1}):
        try:
            pair(out=tmp_path / "runs", progress=False, **bad)
        except ValueError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")
    assert not (tmp_path / "runs").exists()
