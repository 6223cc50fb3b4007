"""The ``shield`` subcommand: deploy a runtime shield on trained ppo runs (see ``runs.shield_deploy``)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from taxbench.experiments.cli.options import out_dir_arg, run_dir_arg
from taxbench.experiments.runs.policy_files import TRUST_PICKLE_HELP
from taxbench.experiments.runs.runfolder import read_status
from taxbench.experiments.runs.shield_deploy import deploy_shield


def add_shield_parser(sub: Any) -> None:
    """Add the ``shield`` subcommand."""
    shield = sub.add_parser("shield", help="price of safety without retraining: evaluate ppo runs behind the shield")
    shield.add_argument(
        "runs", nargs="+", type=run_dir_arg, help="finished unconstrained run folders (…/ppo-off/seed0)"
    )
    shield.add_argument("--intensity", nargs="+", default=["moderate"], help="named shield doses (default moderate)")
    shield.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    shield.add_argument("--out", type=out_dir_arg, default=None, help="output root (default: the runs' own)")


def cmd_shield(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """Deploy the shield on each run at each intensity and print what it cost and bought."""
    from rich.table import Table

    table = Table(title="shield deployed without retraining (evaluation episodes of each run)")
    for column in ("run", "intensity", "capability", "violation rate", "written to"):
        table.add_column(column)
    for source in args.runs:
        before = (read_status(source) or {}).get("summary", {})
        for level in args.intensity:
            target, summary = deploy_shield(source, level, args.out, trust_pickle=args.trust_pickle)
            capability = f"{before.get('capability', float('nan')):.4g} → {summary['capability']:.4g}"
            violations = f"{before.get('violation_rate', float('nan')):.3g} → {summary['violation_rate']:.3g}"
            table.add_row(str(source), level, capability, violations, str(target))
    console.print(table)
    console.print("run `taxbench report` on the experiment folder for τ and g with CIs", highlight=False)
    return 0
