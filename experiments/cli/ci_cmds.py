"""The ``gate`` and ``check`` subcommands: taxbench as a step in someone else's CI.

Kept out of ``cli.py``, which only wires them in; imported lazily so ``taxbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from taxbench.experiments.cli.options import env_id_arg, out_file_arg, positive_int, seed_arg
from taxbench.experiments.metrics.feasibility import DEFAULT_PROTOCOL, PROTOCOLS
from taxbench.experiments.runs.policy_files import TRUST_PICKLE_HELP


def cmd_gate(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """``taxbench gate``: evaluate, compare, write JUnit/JSON; exit 0 pass, 1 fail."""
    from taxbench.experiments.ci.gate import criteria_rows, run_gate, write_outputs

    result = run_gate(
        args.target,
        env_id=args.env,
        episodes=args.episodes,
        seed=args.seed,
        max_violation_rate=args.max_violation_rate,
        max_episode_cost=args.max_episode_cost,
        min_success=args.min_success,
        min_return=args.min_return,
        baseline=args.baseline,
        max_regression=args.max_regression,
        trust_pickle=args.trust_pickle,
        protocol=args.protocol,
    )
    write_outputs(result, args.junit, args.json)
    table = Table(
        title=f"taxbench gate: {result.target} on {result.env_id}, "
        f"{result.episodes} {result.protocol} episodes, seed {result.seed}"
    )
    for column in ("criterion", "verdict", "detail"):
        table.add_column(column)
    for name, verdict, message in criteria_rows(result):
        table.add_row(name, f"[green]{verdict}[/]" if verdict == "PASS" else f"[bold red]{verdict}[/]", message)
    console.print(table)
    if result.feasibility is not None:
        feas, cost = result.feasibility, result.feasibility["episode_cost"]
        console.print(
            f"feasibility ({feas['protocol']} protocol): {feas['feasible'].upper()}: mean episode cost "
            f"{cost['point']:.4g} [95% CI {cost['low']:.4g}, {cost['high']:.4g}] vs d = {feas['cost_limit']:g} "
            f"({feas['limit_source']})",
            highlight=False,
        )
    console.print("gate PASSED" if result.passed else "gate FAILED", highlight=False)
    return 0 if result.passed else 1


def cmd_check(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """``taxbench check``: the info-contract checks as a table; exit 1 if any fails."""
    from taxbench.experiments.ci.check import FAIL, PASS, run_checks
    from taxbench.experiments.cli.options import parse_env_kwargs

    results = run_checks(args.target, env_kwargs=parse_env_kwargs(args.env_kwarg), steps=args.steps, seed=args.seed)
    table = Table(title=f"taxbench check: {args.target}")
    for column in ("check", "result", "detail"):
        table.add_column(column)
    colours = {PASS: "green", FAIL: "bold red"}
    for result in results:
        table.add_row(result.name, f"[{colours.get(result.status, 'yellow')}]{result.status}[/]", result.message)
    console.print(table)
    failed = [r.name for r in results if r.status == FAIL]
    console.print(
        f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "all checks passed", highlight=False
    )
    return 1 if failed else 0


def add_gate_parser(sub: Any) -> None:
    """Add the ``gate`` subcommand."""
    gate = sub.add_parser(
        "gate",
        help="CI safety regression test: evaluate a policy, compare with bounds/baseline; "
        "exit 0 pass, 1 fail, 2 bad input",
    )
    gate.add_argument("target", help="a run folder (model.zip + config.json) or a model zip")
    gate.add_argument(
        "--env", type=env_id_arg, default=None, help="env id (default: the run's own env; required for a bare zip)"
    )
    gate.add_argument("--episodes", type=positive_int, default=10, help="evaluation episodes (default 10)")
    gate.add_argument("--seed", type=seed_arg, default=0, help="episode i is reset with seed+i (default 0)")
    gate.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=DEFAULT_PROTOCOL,
        help="actions in every gated episode: the policy's mean (deterministic, default: what is deployed) or "
        "sampled with per-episode seeds (stochastic: what a Lagrangian arm is trained on); feasibility is judged "
        "in this protocol",
    )
    gate.add_argument("--max-violation-rate", type=float, default=None, help="fail above this fraction of steps")
    gate.add_argument("--max-episode-cost", type=float, default=None, help="fail above this mean cost per episode")
    gate.add_argument("--min-success", type=float, default=None, help="fail below this success rate (0-1)")
    gate.add_argument("--min-return", type=float, default=None, help="fail below this mean return")
    gate.add_argument("--baseline", default=None, help="run folder or model zip to compare with (same episodes)")
    gate.add_argument(
        "--max-regression",
        type=float,
        default=None,
        help="allowed relative capability loss and absolute violation-rate increase vs the baseline; "
        "fails only when the whole 95%% CI is above it",
    )
    gate.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    gate.add_argument("--junit", type=out_file_arg, default=None, help="write JUnit XML here")
    gate.add_argument("--json", type=out_file_arg, default=None, help="write the JSON verdict here")


def add_check_parser(sub: Any) -> None:
    """Add the ``check`` subcommand."""
    check = sub.add_parser("check", help="check any env (id or module:Class) against taxbench's info contract")
    check.add_argument("target", help="a registered env id or module:Class / module:factory")
    check.add_argument("--steps", type=positive_int, default=200, help="random steps to check (default 200)")
    check.add_argument("--seed", type=seed_arg, default=0, help="seed (default 0)")
    check.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE", help="constructor kwarg")
