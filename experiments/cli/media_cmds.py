"""The ``rollout`` and ``view`` subcommands of ``taxbench`` (parsers and handlers).

Kept out of ``cli.py`` so that file only wires them in; imported lazily, so ``taxbench --help``
does not load imageio or the renderers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from taxbench.experiments.cli.options import out_file_arg, positive_int, run_dir_arg, seed_arg
from taxbench.experiments.runs.policy_files import TRUST_PICKLE_HELP


def add_rollout_parser(sub: Any) -> None:
    """Add the ``rollout`` subcommand."""
    rollout = sub.add_parser(
        "rollout",
        help="render a run headless: video with a safety HUD, violation clips, contact sheet",
        description="Replay a trained run deterministically and render it with a HUD (step, reward, cumulative cost, "
        "λ, terms violated now), a red frame on violating steps, hazard/keep-out volumes and contact-force "
        "arrows. Writes <run>/media/: the video, one clip per group of events.jsonl violations (±1 s), "
        "contact_sheet.png and media.json (each event → its clip and time).",
    )
    rollout.add_argument("run_dir", type=run_dir_arg, help="a run folder holding config.json and model.zip")
    rollout.add_argument("--episodes", type=positive_int, default=3, help="episodes in the video (default 3)")
    rollout.add_argument(
        "--seed",
        type=seed_arg,
        default=None,
        help="reset seed of episode 0, episode i uses seed+i (default: the run's eval_seed, i.e. the "
        "evaluated episodes whose violations events.jsonl lists)",
    )
    rollout.add_argument(
        "--compare",
        type=run_dir_arg,
        default=None,
        metavar="OTHER_RUN_DIR",
        help="a second run of the same env, shown on the right on the same seeds",
    )
    rollout.add_argument(
        "--format",
        dest="fmt",
        choices=("mp4", "gif"),
        default=None,
        help="video format (default: from --out, else mp4)",
    )
    rollout.add_argument(
        "--out",
        type=out_file_arg,
        default=None,
        help="video file (default <run>/media/rollout.<fmt> or compare-<other run>.<fmt>)",
    )
    rollout.add_argument("--width", type=positive_int, default=320, help="frame width per run, pixels (default 320)")
    rollout.add_argument("--height", type=positive_int, default=240, help="frame height, pixels (default 240)")
    rollout.add_argument(
        "--max-steps",
        type=positive_int,
        default=None,
        help="cut each video episode after this many control steps (clips use whole episodes)",
    )
    rollout.add_argument(
        "--stride",
        type=positive_int,
        default=1,
        help="keep every n-th frame of the video, for smaller GIFs (default 1)",
    )
    rollout.add_argument("--fps", type=float, default=None, help="video frames/s (default: real time)")
    rollout.add_argument("--camera", default=None, help="named camera of the env (default: the env's own view)")
    rollout.add_argument(
        "--max-clips",
        type=int,
        default=20,
        help="most violation clips per run, the most severe kept (default 20; 0 = none)",
    )
    rollout.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    rollout.add_argument("--no-clips", action="store_true", help="skip the violation clips")
    rollout.add_argument("--no-sheet", action="store_true", help="skip the contact sheet")
    rollout.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def add_view_parser(sub: Any) -> None:
    """Add the ``view`` subcommand."""
    view = sub.add_parser("view", help="watch a run's policy live in the physics engine's viewer (needs a display)")
    view.add_argument("run_dir", type=run_dir_arg, help="a run folder holding config.json and model.zip")
    view.add_argument("--episodes", type=positive_int, default=None, help="episodes (default: until closed)")
    view.add_argument(
        "--seed", type=seed_arg, default=None, help="reset seed of episode 0 (default: the run's eval_seed)"
    )
    view.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    view.add_argument("--fast", action="store_true", help="run as fast as possible instead of in real time")


def cmd_rollout(args: argparse.Namespace, console: Any, err_console: Any) -> int:
    """Run ``taxbench rollout``; prints where every file went."""
    from rich.table import Table

    from taxbench.experiments.media.rollout import make_rollout

    if args.max_clips < 0:
        raise ValueError(f"--max-clips must be >= 0, got {args.max_clips}")
    if args.fps is not None and not args.fps > 0:
        raise ValueError(f"--fps must be > 0, got {args.fps}")
    result = make_rollout(
        args.run_dir,
        episodes=args.episodes,
        seed=args.seed,
        compare=args.compare,
        fmt=args.fmt,
        out=args.out,
        width=args.width,
        height=args.height,
        max_steps=args.max_steps,
        stride=args.stride,
        fps=args.fps,
        camera=args.camera,
        clips=not args.no_clips,
        max_clips=args.max_clips,
        trust_pickle=args.trust_pickle,
        sheet=not args.no_sheet,
        progress=not args.no_progress,
    )
    frames = sum(part.frames for part in result["parts"])
    console.print(f"video: {result['video']} ({frames} frames, {len(result['parts'])} episode(s))", highlight=False)
    table = Table(title="violation media per run")
    for column in ("run", "events", "clips", "events in clips", "not reproduced", "contact sheet", "index"):
        table.add_column(column)
    for label, media in result["runs"].items():
        table.add_row(
            label,
            str(media["events"]),
            str(media["clips"]),
            str(media["events_clipped"]),
            str(media["events_not_reproduced"]),
            str(media["contact_sheet"] or "-"),
            str(media["media"]),
        )
    console.print(table)
    for line in measured_nothing([args.run_dir, *([args.compare] if args.compare else [])]):
        err_console.print(f"note: {line}", highlight=False, soft_wrap=True)
    for label, media in result["runs"].items():
        if media["events_not_reproduced"]:
            err_console.print(
                f"warning: {media['events_not_reproduced']} event(s) of {label}'s events.jsonl did not "
                "recur on replay (model or env changed since evaluation? rerun taxbench eval)",
                highlight=False,
            )
    return 0


def cmd_view(args: argparse.Namespace, console: Any, err_console: Any) -> int:
    """Run ``taxbench view``; exit 1 with a plain message when there is no display."""
    from taxbench.experiments.media.viewer import NoDisplayError, view_run

    try:
        steps = view_run(
            args.run_dir,
            episodes=args.episodes,
            seed=args.seed,
            realtime=not args.fast,
            trust_pickle=args.trust_pickle,
            log=lambda line: console.print(line, highlight=False),
        )
    except NoDisplayError as exc:
        err_console.print(f"taxbench view: {exc}", highlight=False, soft_wrap=True)
        return 1
    console.print(f"viewer closed after {steps} steps", highlight=False)
    return 0


def measured_nothing(run_dirs: list[Any]) -> list[str]:
    """Why these videos may show no safety story: runs that score 0 and never violate, or a constraint that never bound.

    Read from each run's status.json summary and progress.csv ``lambda`` column.
    """
    from taxbench.experiments.metrics.feasibility import constraint_bound
    from taxbench.experiments.runs.runfolder import PROGRESS_FILE, read_csv_rows, read_status

    lines: list[str] = []
    summaries = [(read_status(d) or {}).get("summary", {}) for d in run_dirs]
    if summaries and all(s.get("capability") == 0 and s.get("violation_rate") == 0 for s in summaries):
        lines.append(
            "this budget measured nothing: every run shown scores 0 and never violates (train longer, --steps)"
        )
    for run_dir in run_dirs:
        progress = Path(run_dir) / PROGRESS_FILE
        if progress.is_file() and constraint_bound(row.get("lambda") for row in read_csv_rows(progress)) is False:
            lines.append(
                f"{Path(run_dir).parent.name}: λ never left 0, so it is its unconstrained learner and the panels "
                "show the same policy; this budget measured no tax (more --steps or a lower --cost-limit)"
            )
    return lines
