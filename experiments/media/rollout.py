"""Write a run's rollout video (or a side-by-side pair) from its recorded episodes.

``make_rollout`` is what ``taxbench rollout`` runs: it records episodes with a
:class:`~taxbench.experiments.media.renderer.RunRenderer`, renders them with the safety HUD, and
then (see :mod:`taxbench.experiments.media.clips`) cuts the violation clips and the contact sheet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taxbench.experiments.media.renderer import MEDIA_DIR, Episode, LoadedRun, RunRenderer, load_run, slug
from taxbench.experiments.media.video import (
    ProgressBar,
    VideoWriter,
    side_by_side,
    video_format,
)


# ----------------------------------------------------------------------------- videos
@dataclass(frozen=True)
class VideoPart:
    """Where one episode sits in a video: frames ``first_frame`` .. ``first_frame + frames - 1``."""

    episode: int
    seed: int
    steps: int
    first_frame: int
    frames: int


def video_parts(episodes: Sequence[Sequence[Episode]], stride: int = 1) -> list[VideoPart]:
    """Where each episode position sits in the video of these runs' episodes (every ``stride``-th frame)."""
    parts, first = [], 0
    for position, group in enumerate(zip(*episodes, strict=True)):
        n = -(-max(len(ep.frames) for ep in group) // stride)
        parts.append(VideoPart(episodes[0][position].episode, group[0].seed, max(ep.steps for ep in group), first, n))
        first += n
    return parts


def video_frames(
    renderers: Sequence[RunRenderer],
    episodes: Sequence[Sequence[Episode]],
    stride: int = 1,
    on_frame: Callable[[int, Episode, int, np.ndarray], None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(episode position, frame)``: every ``stride``-th frame, runs side by side when several.

    ``on_frame(run, episode, index, image)`` sees each run's HUD frame of a live (not yet ended) episode
    frame before it is composed, so clips and sheets can reuse it instead of rendering it again.
    """
    for position, group in enumerate(zip(*episodes, strict=True)):
        length = max(len(ep.frames) for ep in group)
        for index in range(0, length, stride):
            images = []
            for run, (renderer, ep) in enumerate(zip(renderers, group, strict=True)):
                images.append(renderer.frame(ep, index))
                if on_frame is not None and index < len(ep.frames):
                    on_frame(run, ep, index, images[-1])
            image = images[0]
            for other in images[1:]:
                image = side_by_side(image, other)
            yield position, image


def write_video(
    path: Path,
    renderers: Sequence[RunRenderer],
    episodes: Sequence[Sequence[Episode]],
    *,
    fmt: str | None = None,
    stride: int = 1,
    fps: float | None = None,
    progress: Any = None,
    on_frame: Callable[[int, Episode, int, np.ndarray], None] | None = None,
) -> tuple[Path, list[VideoPart]]:
    """Write the episodes of one or more runs (side by side, same seeds) into one video file.

    Args:
        path: Output file.
        renderers: One renderer per run.
        episodes: Per run, its recorded episodes (the same seeds in the same order for every run).
        fmt: ``mp4`` or ``gif`` (default: from the suffix).
        stride: Keep every ``stride``-th frame.
        fps: Frames per second; default real time, ``1 / (dt × stride)``.
        progress: Optional callable advanced by one per frame written.
        on_frame: Optional ``(run, episode, index, frame)`` hook, see :func:`video_frames`.

    Returns:
        The path and where each episode starts in the video.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    fps = fps or renderers[0].fps / stride
    with VideoWriter(path, fps, fmt) as writer:
        for _, image in video_frames(renderers, episodes, stride, on_frame):
            writer.append(image)
            if progress is not None:
                progress()
    return path, video_parts(episodes, stride)


def default_video_path(run: LoadedRun, fmt: str, other: LoadedRun | None = None) -> Path:
    """``<run>/media/rollout.<fmt>``, or ``<run>/media/compare-<other label>.<fmt>``."""
    name = "rollout" if other is None else f"compare-{slug(other.label)}"
    return run.run_dir / MEDIA_DIR / f"{name}.{fmt}"


def make_rollout(
    run_dir: str | Path,
    *,
    episodes: int = 3,
    seed: int | None = None,
    compare: str | Path | None = None,
    fmt: str | None = None,
    out: str | Path | None = None,
    width: int = 320,
    height: int = 240,
    max_steps: int | None = None,
    stride: int = 1,
    fps: float | None = None,
    camera: str | None = None,
    clips: bool = True,
    max_clips: int = 20,
    sheet: bool = True,
    progress: bool = True,
    trust_pickle: bool = False,
) -> dict[str, Any]:
    """Record and render a run (or two side by side); write its video, violation clips and contact sheet.

    Args:
        run_dir: The run folder.
        episodes: Episodes in the video; episode ``i`` is reset with ``seed + i``.
        seed: Reset seed of the first episode (default: the run's ``eval_seed``, so the video shows
            the evaluated episodes whose violations ``events.jsonl`` lists).
        compare: A second run folder (same env) rendered on the right, on the same seeds.
        fmt: ``mp4`` or ``gif`` (default: from ``out``'s suffix, else mp4).
        out: Video path (default ``<run>/media/rollout.<fmt>`` or ``compare-<label>.<fmt>``).
        width: Width of each run's frame, pixels (a comparison is twice as wide).
        height: Frame height, pixels.
        max_steps: Stop each video episode after this many steps (clips always use whole episodes).
        stride: Keep every ``stride``-th frame of the video (smaller GIFs).
        fps: Video frames per second (default: real time).
        camera: Named camera of the env (default: the env's tracking camera).
        clips: Cut a clip around each violation of ``events.jsonl`` (per run).
        max_clips: Most clips per run; the worst are kept.
        sheet: Write a contact sheet of the worst moments (per run).
        progress: Show a progress bar.
        trust_pickle: Load the models with SB3's unpickler (runs code the files carry); default: tensors only.

    Returns:
        ``{"video": path, "parts": [...], "runs": {label: media summary}}``.
    """
    from taxbench.experiments.media.clips import RunMedia

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if out is not None:
        suffix = Path(out).suffix.lstrip(".").lower()
        if suffix not in ("mp4", "gif") or (fmt is not None and fmt != suffix):
            raise ValueError(f"--out must end in .mp4 or .gif matching --format, got {str(out)!r}")
    fmt = video_format(out, fmt) if out is not None else video_format("x.mp4", fmt)
    runs = [load_run(run_dir, trust_pickle=trust_pickle)]
    if compare is not None:
        runs.append(load_run(compare, trust_pickle=trust_pickle))
        if runs[1].cfg.env_id != runs[0].cfg.env_id:
            raise ValueError(f"--compare needs runs of the same env: {runs[0].cfg.env_id} vs {runs[1].cfg.env_id}")
        if Path(compare).resolve() == Path(run_dir).resolve():
            raise ValueError("--compare must name a different run folder")
    first_seed = runs[0].cfg.eval_seed if seed is None else seed
    renderers = [RunRenderer(run, width, height, camera) for run in runs]
    try:
        recorded = [[r.record(i, first_seed + i, max_steps) for i in range(episodes)] for r in renderers]
        path = Path(out) if out is not None else default_video_path(runs[0], fmt, runs[1] if compare else None)
        parts = video_parts(recorded, stride)
        video = {
            "path": str(path.resolve()),
            "format": fmt,
            "fps": fps or renderers[0].fps / stride,
            "stride": stride,
            "width": width * len(runs),
            "height": height,
            "runs": [str(r.run_dir.resolve()) for r in runs],
            "parts": [vars(p) for p in parts],
            "first_seed": first_seed,
        }
        # Plan every run's clips and sheet first, so the video pass can hand them the frames it renders.
        media = [
            RunMedia(
                renderer,
                video=video,
                recorded={} if max_steps is not None else {ep.seed: ep for ep in episodes_run},
                fmt=fmt,
                clips=clips,
                max_clips=max_clips,
                sheet=sheet,
                progress=progress,
            )
            for renderer, episodes_run in zip(renderers, recorded, strict=True)
        ]

        def share(run: int, episode: Episode, index: int, image: np.ndarray) -> None:
            if max_steps is None and stride == 1:  # only whole episodes frame by frame match the clips'
                media[run].feed(episode.seed, index, image)

        total = sum(p.frames for p in parts)
        with ProgressBar(progress, f"rendering {path.name}", total) as advance:
            path, parts = write_video(
                path, renderers, recorded, fmt=fmt, stride=stride, fps=fps, progress=advance, on_frame=share
            )
        summaries = {renderer.run.label: m.finish() for renderer, m in zip(renderers, media, strict=True)}
    finally:
        for renderer in renderers:
            renderer.close()
    return {"video": path, "parts": parts, "runs": summaries}
