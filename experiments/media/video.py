"""Frames for rollout videos: side by side, video files, contact sheets (the HUD is in :mod:`.hud`).

Videos are MP4 (H.264 through imageio-ffmpeg) or GIF (Pillow).

Nothing here knows about envs or learners: it turns RGB arrays and a :class:`HudState` into
annotated RGB arrays and files, so it is testable on synthetic frames.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from taxbench.experiments.media.hud import (  # noqa: F401  (re-exported: the HUD used to live here)
    _TEXT_RGB,
    MIN_FONT_PX,
    NEAR_FRACTION,
    NEAR_RGB,
    OVER_RGB,
    SAFE_RGB,
    VIOLATION_RGB,
    HudLayout,
    HudState,
    Reading,
    _font,
    annotate,
    border_redness,
    border_width,
    draw_border,
    font_size,
    hud_boxes,
    hud_inset,
    hud_layout,
    hud_lines,
    reading_lines,
)

#: Video formats ``taxbench rollout`` writes.
FORMATS = ("mp4", "gif")


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 0) -> np.ndarray:
    """Put two frames next to each other (the shorter one padded black at the bottom)."""
    height = max(left.shape[0], right.shape[0])

    def pad(frame: np.ndarray) -> np.ndarray:
        return np.pad(frame, ((0, height - frame.shape[0]), (0, 0), (0, 0)))

    parts = [pad(left)] + ([np.zeros((height, gap, 3), np.uint8)] if gap else []) + [pad(right)]
    return np.concatenate(parts, axis=1)


def video_format(path: str | os.PathLike[str], requested: str | None = None) -> str:
    """The format of a video path: ``requested`` when given, else its suffix (mp4 or gif)."""
    fmt = requested or Path(path).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"video format must be one of {FORMATS}, got {fmt!r} (from {str(path)!r})")
    return fmt


class VideoWriter:
    """Append RGB frames to an MP4 (H.264, yuv420p) or GIF file, atomically.

    Frames are written to a temporary file renamed into place on :meth:`close`, so a killed
    rollout never leaves a half-written video under the final name. MP4 needs even sizes: odd
    frames get one black row/column. Every frame must have the first frame's shape.

    Args:
        path: Output file; its folder is created.
        fps: Frames per second of the video.
        fmt: ``mp4`` or ``gif``; None takes it from the suffix.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, fmt: str | None = None) -> None:
        import imageio.v2 as iio

        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.path = Path(path)
        self.fmt = video_format(self.path, fmt)
        self.fps = float(fps)
        self.frames = 0
        self._shape: tuple[int, ...] | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp.{self.fmt}")
        if self.fmt == "mp4":
            self._writer = iio.get_writer(
                self._tmp,
                format="FFMPEG",
                fps=self.fps,
                codec="libx264",
                quality=7,
                macro_block_size=1,
                pixelformat="yuv420p",
                ffmpeg_log_level="error",
                output_params=["-preset", "veryfast"],  # 1.5x the default's speed at the same size (crf 15)
            )
        else:
            self._writer = iio.get_writer(self._tmp, format="GIF", mode="I", duration=1000.0 / self.fps, loop=0)

    def append(self, frame: np.ndarray) -> None:
        """Add one (H, W, 3) uint8 frame."""
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise ValueError(f"all frames of a video must have one shape: {self._shape}, then {frame.shape}")
        if self.fmt == "mp4" and (frame.shape[0] % 2 or frame.shape[1] % 2):
            frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)))
        self._writer.append_data(frame)
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and move it to ``path``; an empty video is an error."""
        self._writer.close()
        if self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            raise ValueError(f"no frames were written for {self.path}")
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        try:
            self._writer.close()
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_video(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a video file into an array of frames, shape (n, H, W, 3) uint8."""
    import imageio.v3 as iio3

    frames = iio3.imread(Path(path))
    if frames.ndim == 3:  # a one-frame GIF
        frames = frames[None]
    return frames[..., :3]


def contact_sheet(
    tiles: Sequence[tuple[np.ndarray, str]], path: str | os.PathLike[str], columns: int = 4, title: str = ""
) -> Path:
    """Save a grid of captioned frames as a PNG.

    Args:
        tiles: ``(frame, caption)`` pairs; frames may differ in size (each cell takes the largest).
        path: Output PNG.
        columns: Cells per row.
        title: Line printed above the grid.

    Returns:
        The PNG path.
    """
    if not tiles:
        raise ValueError("a contact sheet needs at least one frame")
    cell_h = max(frame.shape[0] for frame, _ in tiles)
    cell_w = max(frame.shape[1] for frame, _ in tiles)
    size = max(9, min(16, cell_w // 16))
    font = _font(size)
    columns = max(1, min(columns, len(tiles)))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    captions = [_wrap(caption, cell_w - 6, font, measure) for _, caption in tiles]
    titles = _wrap(title, columns * cell_w - 8, font, measure) if title else []
    line_h = size + 3
    caption_h = max(len(lines) for lines in captions) * line_h + 4
    title_h = len(titles) * line_h + (4 if titles else 0)
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * cell_w, title_h + rows * (cell_h + caption_h)), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    for j, line in enumerate(titles):
        draw.text((4, 2 + j * line_h), line, fill=_TEXT_RGB, font=font)
    for i, (frame, _) in enumerate(tiles):
        x, y = (i % columns) * cell_w, title_h + (i // columns) * (cell_h + caption_h)
        sheet.paste(Image.fromarray(frame), (x, y))
        for j, line in enumerate(captions[i]):
            draw.text((x + 3, y + cell_h + 2 + j * line_h), line, fill=_TEXT_RGB, font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    sheet.save(tmp)
    os.replace(tmp, path)
    return path


def _wrap(text: str, width: float, font: Any, measure: Any) -> list[str]:
    """Split ``text`` at spaces into lines at most ``width`` pixels wide (a long word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and measure(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


class ProgressBar:
    """A rich progress bar on stderr (or nothing): ``with ProgressBar(on, "rendering", n) as advance: advance()``."""

    def __init__(self, enabled: bool, description: str, total: int) -> None:
        self.enabled, self.description, self.total = enabled, description, total
        self._progress: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=True)
        self._progress.start()
        task = self._progress.add_task(self.description, total=self.total)
        return lambda: self._progress.advance(task)

    def __exit__(self, *_: object) -> None:
        if self._progress is not None:
            self._progress.stop()
