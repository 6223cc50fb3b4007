"""Violation clips, the contact sheet of the worst moments, and the media index of a run.

Every violation the report counts is one click away: each event of ``events.jsonl`` (episode
``i`` was reset with seed ``eval_seed + i``) is re-simulated, and a short clip (±1 s) is cut
around it; events close together share one clip. ``<run>/media/media.json`` maps every event to
its clip (and to its time in the rollout video when the video shows that episode), and
:func:`media_for_run` lists a run's video(s), clips and contact sheet for the HTML report.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxbench.experiments.media.video import FORMATS, ProgressBar, VideoWriter, contact_sheet
from taxbench.experiments.runs.runfolder import atomic_write_json, read_json

if TYPE_CHECKING:
    from taxbench.experiments.media.renderer import Episode, RunRenderer

MEDIA_FILE = "media.json"
CLIP_DIR = "clips"
SHEET_FILE = "contact_sheet.png"
#: Context before and after an event in its clip, s.
CLIP_HALF_WINDOW_S = 1.0
#: A clip grows to cover following events up to this length, s; then a new clip starts.
CLIP_MAX_S = 4.0
#: Frames on a contact sheet.
SHEET_TILES = 8


@dataclass
class ClipPlan:
    """Frames ``start`` .. ``end - 1`` of one episode (frame k = state after step k - 1) and their events."""

    episode: int
    seed: int
    start: int
    end: int
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first_step(self) -> int:
        """Step of the clip's first event."""
        return int(self.events[0]["step"])

    def file_name(self, fmt: str) -> str:
        """``ep003_step00142.mp4``."""
        return f"ep{self.episode:03d}_step{self.first_step:05d}.{fmt}"


def plan_clips(
    events: Sequence[Mapping[str, Any]],
    fps: float,
    half_window_s: float = CLIP_HALF_WINDOW_S,
    max_clip_s: float = CLIP_MAX_S,
) -> list[ClipPlan]:
    """Group events into clips with ``half_window_s`` of context on both sides of every event.

    An event joins the open clip of its episode while the clip, grown to show ``half_window_s``
    after it, stays within ``max_clip_s``; otherwise it opens a new clip. Events need
    ``episode``, ``seed`` and ``step`` (0-based index of the ``step()`` call).

    Returns:
        Clips in (episode, step) order; ``end`` is not clamped to the episode's length.
    """
    half = max(1, round(half_window_s * fps))
    longest = max(2 * half + 1, round(max_clip_s * fps))
    plans: list[ClipPlan] = []
    for event in sorted(events, key=lambda e: (int(e["episode"]), int(e["step"]))):
        frame = int(event["step"]) + 1
        current = plans[-1] if plans else None
        if (
            current is not None
            and current.episode == int(event["episode"])
            and frame < current.end + half
            and frame + half + 1 - current.start <= longest
        ):
            current.end = max(current.end, frame + half + 1)
        else:
            current = ClipPlan(int(event["episode"]), int(event["seed"]), max(0, frame - half), frame + half + 1)
            plans.append(current)
        current.events.append(dict(event))
    return plans


def _severity(renderer: RunRenderer, event: Mapping[str, Any]) -> float:
    term = renderer.terms.get(str(event.get("term")))
    measure = event.get("measure")
    measure = float(measure) if isinstance(measure, int | float) else None
    return term.severity(measure) if term is not None else float(event.get("cost") or 0.0)


def _events(renderer: RunRenderer, recorded_video: Mapping[int, Episode]) -> tuple[list[dict[str, Any]], str]:
    """Events of ``events.jsonl`` with their reset seed, or the video's own violations when it is missing."""
    from taxbench.experiments.runs.evaluation import read_events

    run_dir = renderer.run.run_dir
    if (run_dir / "events.jsonl").exists():
        base = int(renderer.run.cfg.eval_seed)
        return [{**e, "seed": base + int(e["episode"])} for e in read_events(run_dir)], "events.jsonl"
    events = [
        {
            "episode": ep.episode,
            "seed": ep.seed,
            "step": f.step,
            "term": term,
            "measure": f.measures.get(term),
            "cost": f.cost,
        }
        for ep in recorded_video.values()
        for f in ep.frames[1:]
        for term in f.violated
    ]
    return events, "rollout"


def _clear_old_clips(media: Path, old: Mapping[str, Any]) -> None:
    for clip in old.get("clips", []):
        path = Path(clip.get("path", ""))
        if path.parent == media / CLIP_DIR and path.suffix.lstrip(".") in FORMATS:
            path.unlink(missing_ok=True)


class RunMedia:
    """One run's violation clips and contact sheet: planned first, then fed the frames a video pass renders.

    Each needed frame is rendered once: while the rollout video is written, :meth:`feed` takes the run's
    HUD frames of the episodes it shows and streams them into the clips (and keeps the few sheet tiles)
    they belong to; :meth:`finish` renders only what the video did not show, then writes the sheet and
    ``media/media.json``. Frames are never all held in memory.

    Args:
        renderer: The run's renderer.
        video: The rollout video's entry for the index (``path``, ``parts``, ...), if one is written.
        recorded: Episodes already recorded in full, by reset seed (reused instead of re-simulated).
        fmt: Clip format, ``mp4`` or ``gif``.
        clips: Whether to cut clips.
        max_clips: Most clips kept (those holding the most severe events).
        sheet: Whether to write the contact sheet.
        progress: Show a progress bar while rendering the clip frames the video did not cover.
    """

    def __init__(
        self,
        renderer: RunRenderer,
        *,
        video: Mapping[str, Any] | None = None,
        recorded: Mapping[int, Episode] | None = None,
        fmt: str = "mp4",
        clips: bool = True,
        max_clips: int = 20,
        sheet: bool = True,
        progress: bool = False,
    ) -> None:
        from taxbench.experiments.media.renderer import MEDIA_DIR

        self.renderer, self.video, self.fmt, self.clips, self.sheet, self.progress = (
            renderer,
            video,
            fmt,
            clips,
            sheet,
            progress,
        )
        self.media = renderer.run.run_dir / MEDIA_DIR
        self.media.mkdir(parents=True, exist_ok=True)
        self.index_path = self.media / MEDIA_FILE
        self.old_index: dict[str, Any] = read_json(self.index_path) if self.index_path.exists() else {}
        self.cache: dict[int, Episode] = dict(recorded or {})
        self.events, self.source = _events(renderer, self.cache)
        self.not_reproduced = [
            e for e in self.events if e["term"] not in self.episode(e["seed"], e["episode"]).violated_at(int(e["step"]))
        ]
        for event in self.events:
            event["video"] = _video_link(video, event)
        plans = plan_clips(self.events, renderer.fps) if clips else []
        plans.sort(key=lambda p: (-max(_severity(renderer, e) for e in p.events), -len(p.events)))
        self.kept = sorted(plans[: max(0, max_clips)], key=lambda p: (p.episode, p.start))
        for plan in self.kept:
            plan.end = min(plan.end, len(self.episode(plan.seed, plan.episode).frames))
        self.chosen = _sheet_events(renderer, self.events) if sheet else []
        self._tile_keys = {(int(e["seed"]), _sheet_frame(e)) for e in self.chosen}
        self.tiles: dict[tuple[int, int], Any] = {}
        if clips:
            _clear_old_clips(self.media, self.old_index)
        self._writers: dict[int, VideoWriter] = {}
        self._done: set[int] = set()

    def episode(self, seed: int, number: int) -> Episode:
        """The recorded episode reset with ``seed`` (recorded now if it was not)."""
        if seed not in self.cache:
            self.cache[seed] = self.renderer.record(number, seed)
        return self.cache[seed]

    def _path(self, plan: ClipPlan) -> Path:
        return self.media / CLIP_DIR / plan.file_name(self.fmt)

    def feed(self, seed: int, index: int, frame: Any) -> None:
        """Frame ``index`` (with HUD) of the episode reset with ``seed``, fed in order by a video pass."""
        for i, plan in enumerate(self.kept):
            if plan.seed != seed or i in self._done or not plan.start <= index < plan.end:
                continue
            if index == plan.start and i not in self._writers:
                self._writers[i] = VideoWriter(self._path(plan), self.renderer.fps, self.fmt)
            writer = self._writers.get(i)
            if writer is None or writer.frames != index - plan.start:
                continue  # the pass did not start at this clip's first frame: it is rendered in finish()
            writer.append(frame)
            if index == plan.end - 1:
                writer.close()
                del self._writers[i]
                self._done.add(i)
        if (seed, index) in self._tile_keys:
            self.tiles[(seed, index)] = frame

    def finish(self) -> dict[str, Any]:
        """Render what the video pass did not, write the contact sheet and ``media.json``; return the summary."""
        renderer, media = self.renderer, self.media
        for writer in self._writers.values():
            writer.abort()
        self._writers.clear()
        todo = [(i, plan) for i, plan in enumerate(self.kept) if i not in self._done]
        with ProgressBar(
            self.progress and bool(todo), f"clips of {renderer.run.label}", sum(p.end - p.start for _, p in todo)
        ) as advance:
            for _, plan in todo:
                ep = self.episode(plan.seed, plan.episode)
                with VideoWriter(self._path(plan), renderer.fps, self.fmt) as writer:
                    for index_in_episode in range(plan.start, plan.end):
                        writer.append(renderer.frame(ep, index_in_episode))
                        advance()
        clip_entries = [_clip_entry(renderer, plan, self._path(plan)) for plan in self.kept]
        if not self.clips:  # kept as they are
            clip_entries = [c for c in self.old_index.get("clips", []) if Path(c["path"]).exists()]
        if self.sheet:
            sheet_path = self._write_sheet() if self.chosen else None
            if sheet_path is None:
                (media / SHEET_FILE).unlink(missing_ok=True)  # no violation left: an old sheet would mislead
        else:
            old = self.old_index.get("contact_sheet")
            sheet_path = Path(old) if old and Path(old).exists() else None
        videos = [
            v for v in self.old_index.get("videos", []) if self.video is None or v.get("path") != self.video.get("path")
        ]
        videos += [dict(self.video)] if self.video is not None else []
        index = {
            "run": str(renderer.run.run_dir.resolve()),
            "label": renderer.run.label,
            "source": self.source,
            "videos": [v for v in videos if Path(v["path"]).exists()],
            "clips": clip_entries,
            "contact_sheet": None if sheet_path is None else str(sheet_path.resolve()),
            "events": len(self.events),
            "events_clipped": sum(len(c["events"]) for c in clip_entries),
            "events_not_reproduced": self.not_reproduced[:50],
            "n_events_not_reproduced": len(self.not_reproduced),
        }
        atomic_write_json(self.index_path, index)
        return {
            "events": len(self.events),
            "clips": len(clip_entries),
            "events_clipped": index["events_clipped"],
            "events_not_reproduced": len(self.not_reproduced),
            "contact_sheet": sheet_path,
            "media": self.index_path,
        }

    def _write_sheet(self) -> Path:
        """The chosen events' frames, in (episode, step) order, reused from the video pass where it showed them."""
        renderer, tiles = self.renderer, []
        for event in sorted(self.chosen, key=lambda e: (int(e["episode"]), int(e["step"]))):
            ep = self.episode(event["seed"], event["episode"])
            frame_index = min(_sheet_frame(event), len(ep.frames) - 1)
            frame = self.tiles.get((int(event["seed"]), frame_index))
            if frame is None:
                frame = renderer.frame(ep, frame_index)
            term = renderer.terms.get(str(event["term"]))
            measure = event.get("measure")
            what = (
                term.describe(float(measure) if isinstance(measure, int | float) else None) if term else event["term"]
            )
            tiles.append((frame, f"ep {event['episode']} step {event['step']}: {what}"))
        env_id, label = renderer.run.cfg.env_id, renderer.run.label
        title = f"{label}: worst {len(tiles)} of {len(self.events)} violation events ({env_id})"
        return contact_sheet(tiles, self.media / SHEET_FILE, columns=4, title=title)


def _clip_entry(renderer: RunRenderer, plan: ClipPlan, path: Path) -> dict[str, Any]:
    """The ``media.json`` entry of a written clip."""
    return {
        "path": str(path.resolve()),
        "episode": plan.episode,
        "seed": plan.seed,
        "start_frame": plan.start,
        "frames": plan.end - plan.start,
        "fps": renderer.fps,
        "events": [
            {
                **e,
                "frame_in_clip": int(e["step"]) + 1 - plan.start,
                "time_s": (int(e["step"]) + 1 - plan.start) / renderer.fps,
            }
            for e in plan.events
        ],
    }


def write_run_media(renderer: RunRenderer, **kwargs: Any) -> dict[str, Any]:
    """Cut one run's violation clips and contact sheet and update its ``media/media.json`` (see :class:`RunMedia`).

    Returns:
        Counts and paths: ``events``, ``clips``, ``events_clipped``, ``events_not_reproduced``,
        ``contact_sheet``, ``media``.
    """
    return RunMedia(renderer, **kwargs).finish()


def _video_link(video: Mapping[str, Any] | None, event: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where the rollout video shows an event: ``{"path", "frame", "time_s"}`` or None."""
    if video is None:
        return None
    for part in video.get("parts", []):
        if part["seed"] == event["seed"] and int(event["step"]) < part["steps"]:
            frame = part["first_frame"] + (int(event["step"]) + 1) // int(video.get("stride", 1))
            return {"path": video["path"], "frame": frame, "time_s": frame / float(video["fps"])}
    return None


def _sheet_frame(event: Mapping[str, Any]) -> int:
    """The episode frame that shows an event (frame k = state after step k - 1)."""
    return int(event["step"]) + 1


def _sheet_events(renderer: RunRenderer, events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The :data:`SHEET_TILES` most severe events, at least 1 s apart within an episode."""
    ranked = sorted(events, key=lambda e: -_severity(renderer, e))
    apart = max(1, round(renderer.fps * CLIP_HALF_WINDOW_S))
    chosen: list[Mapping[str, Any]] = []
    for event in ranked:
        if all(e["seed"] != event["seed"] or abs(int(e["step"]) - int(event["step"])) >= apart for e in chosen):
            chosen.append(event)
        if len(chosen) == SHEET_TILES:
            break
    return chosen


def media_for_run(run_dir: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """A run's rollout media for reports: ``{"video": [...], "clips": [...], "contact_sheet": [...]}``.

    Reads ``<run>/media/media.json`` written by ``taxbench rollout`` (videos may live outside the
    run folder when ``--out`` was given); without it, lists the files found under ``media/``. Only
    files that exist are returned; lists are empty when the run has no media.
    """
    from taxbench.experiments.media.renderer import MEDIA_DIR

    media = Path(run_dir) / MEDIA_DIR
    found: dict[str, list[Path]] = {"video": [], "clips": [], "contact_sheet": []}
    index_path = media / MEDIA_FILE
    index: dict[str, Any] = {}
    if index_path.exists():
        try:
            index = read_json(index_path)
        except (OSError, ValueError):
            index = {}
    if index:
        found["video"] = [Path(v["path"]) for v in index.get("videos", [])]
        found["clips"] = [Path(c["path"]) for c in index.get("clips", [])]
        found["contact_sheet"] = [Path(index["contact_sheet"])] if index.get("contact_sheet") else []
    else:
        found["video"] = sorted(p for fmt in FORMATS for p in media.glob(f"*.{fmt}"))
        found["clips"] = sorted(p for fmt in FORMATS for p in (media / CLIP_DIR).glob(f"ep*_step*.{fmt}"))
        found["contact_sheet"] = [media / SHEET_FILE] if (media / SHEET_FILE).exists() else []
    return {key: [p for p in paths if p.exists()] for key, paths in found.items()}


def event_links(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every clipped event of a run with its clip path and time in the clip (s), from ``media.json``."""
    index_path = Path(run_dir) / "media" / MEDIA_FILE
    if not index_path.exists():
        return []
    index = read_json(index_path)
    return [
        {**event, "clip": clip["path"]}
        for clip in index.get("clips", [])
        for event in clip["events"]
        if not math.isnan(float(event.get("time_s", 0.0)))
    ]
