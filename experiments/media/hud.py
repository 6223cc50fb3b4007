"""The safety HUD drawn on rollout frames: run state, each cost term against its limit, the red violation frame.

The HUD never touches the violation frame: both of its boxes are inset by :func:`hud_inset` from the edge,
and its font shrinks (down to :data:`MIN_FONT_PX`) until it fits the frame. Nothing here knows about envs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Colour of the frame drawn around violating steps and of the violation line of the HUD (RGB).
VIOLATION_RGB = (230, 25, 25)

_TEXT_RGB = (245, 245, 245)
_DIM_RGB = (170, 170, 170)
_PANEL_SHADE = 0.35  # the box behind HUD text keeps this fraction of the scene's brightness
#: Reading colours by how close a measure is to its limit (fraction of the limit, see :meth:`Reading.closeness`).
SAFE_RGB, NEAR_RGB, OVER_RGB = (90, 225, 90), (255, 190, 40), (255, 80, 80)
#: A reading is amber from this fraction of its limit, red from 1.
NEAR_FRACTION = 0.8
#: Smallest HUD font, pixels; frames too small for it show the lines that fit.
MIN_FONT_PX = 6


@dataclass(frozen=True)
class Reading:
    """One cost term's measure on this frame, against its limit.

    Attributes:
        name: Term name, e.g. ``tcp_speed``.
        value: Measured value, in ``unit`` (NaN when unknown).
        limit: The term's threshold, in ``unit``.
        unit: SI unit, e.g. ``m/s``.
        upper: True if the limit is an upper bound.
        scale: Distance from a zero limit, in ``unit``, at which the reading turns from green to amber
            over ``1 - NEAR_FRACTION`` (zero limits have no relative scale: signed distances, margins).
    """

    name: str
    value: float
    limit: float
    unit: str = ""
    upper: bool = True
    scale: float = 1.0

    def closeness(self) -> float:
        """How close the measure is to its limit: 1 at the limit, < 1 on the safe side (NaN when unknown)."""
        if not np.isfinite(self.value):
            return float("nan")
        if abs(self.limit) > 1e-9:
            if self.upper:
                return self.value / self.limit
            return self.limit / self.value if self.value > 0 else float("inf")
        margin = (self.value - self.limit) if self.upper else (self.limit - self.value)
        return 1.0 + (1.0 - NEAR_FRACTION) * margin / max(self.scale, 1e-9)

    def rgb(self) -> tuple[int, int, int]:
        """Green below ``NEAR_FRACTION`` of the limit, amber below it, red at or past it."""
        c = self.closeness()
        if not np.isfinite(c):
            return OVER_RGB if c == float("inf") else _DIM_RGB
        return SAFE_RGB if c < NEAR_FRACTION else NEAR_RGB if c < 1.0 else OVER_RGB

    def text(self, unicode: bool = True) -> str:
        """``tcp_speed 0.21 / 0.25 m/s`` (``≥`` marks a lower bound)."""
        digits = 2 if abs(self.limit) < 1e-9 else int(np.clip(1 - np.floor(np.log10(abs(self.limit))), 0, 4))
        value = "?" if not np.isfinite(self.value) else f"{self.value:.{digits}f}"
        bound = "" if self.upper else ("≥" if unicode else ">=")
        return f"{self.name} {value} / {bound}{self.limit:.3g} {self.unit}".rstrip()


@dataclass(frozen=True)
class HudState:
    """What the HUD shows on one frame.

    Attributes:
        title: Run label, e.g. ``ppo-lag d=25 seed 0``.
        episode: Episode index within the rollout.
        seed: Reset seed of the episode.
        step: Index of the ``step()`` call that led to this frame; -1 for the frame after ``reset``.
        time_s: Simulated time since reset, s.
        reward: Reward of this step.
        episode_return: Sum of rewards so far.
        cost: ``info["cost"]`` of this step.
        episode_cost: Sum of costs so far.
        lagrange: The learner's Lagrange multiplier λ, or None for unconstrained learners.
        violations: One short text per cost term violated on this step (e.g. ``velocity 3.4>1 m/s``).
        ended: True on frames held after the episode ended (side-by-side with a longer episode).
        readings: Every active cost term's measure against its limit (bottom-left of the frame).
        labels: ``(text, column px, row px)`` names drawn at points of the image (e.g. body regions).
    """

    title: str
    episode: int
    seed: int
    step: int
    time_s: float
    reward: float = 0.0
    episode_return: float = 0.0
    cost: float = 0.0
    episode_cost: float = 0.0
    lagrange: float | None = None
    violations: tuple[str, ...] = field(default_factory=tuple)
    ended: bool = False
    readings: tuple[Reading, ...] = field(default_factory=tuple)
    labels: tuple[tuple[str, float, float], ...] = field(default_factory=tuple)

    @property
    def violating(self) -> bool:
        """Whether this frame shows a violating step."""
        return bool(self.violations) and not self.ended


def font_size(height: int) -> int:
    """Largest HUD font size in pixels for a frame ``height`` pixels tall (smaller when the text does not fit)."""
    return int(np.clip(round(height / 24), MIN_FONT_PX, 20))


def border_width(frame_shape: Sequence[int]) -> int:
    """Thickness in pixels of the red violation frame on a frame of this shape."""
    return max(2, round(min(frame_shape[0], frame_shape[1]) / 40))


def hud_inset(frame_shape: Sequence[int]) -> int:
    """Distance in pixels from the frame's edge to any HUD pixel: the violation frame plus a 1-pixel gap."""
    return border_width(frame_shape) + 1


_FONTS: dict[int, Any] = {}
_UNICODE_FONT: list[bool] = []  # [True] once a font with Greek letters (λ) was found


def _font_files() -> list[str]:
    """DejaVu Sans (has λ): by name (Pillow searches the system font folders), then matplotlib's copy."""
    files = ["DejaVuSans.ttf"]
    try:
        import matplotlib

        files.append(str(Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"))
    except ImportError:
        pass
    return files


def _font(size: int) -> Any:
    if size not in _FONTS:
        for file in _font_files():
            try:
                _FONTS[size] = ImageFont.truetype(file, size)
                _UNICODE_FONT[:] = [True]
                break
            except OSError:
                continue
        else:
            try:
                _FONTS[size] = ImageFont.load_default(size=size)
            except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
                _FONTS[size] = ImageFont.load_default()
    return _FONTS[size]


@lru_cache(maxsize=16384)
def _width(text: str, size: int) -> float:
    """Advance width of ``text`` in the HUD font of ``size`` pixels (cached: most HUD lines repeat)."""
    return float(_font(size).getlength(text))


@lru_cache(maxsize=4096)
def _mask(text: str, size: int) -> Image.Image:
    """``text`` drawn white on black in the HUD font (an ``L`` image whose origin is the text origin)."""
    font = _font(size)
    _, _, right, bottom = font.getbbox(text)
    mask = Image.new("L", (max(1, int(right) + 1), max(1, int(bottom) + 1)))
    ImageDraw.Draw(mask).text((0, 0), text, fill=255, font=font)
    return mask


def _draw_text(image: Image.Image, xy: tuple[int, int], text: str, rgb: tuple[int, int, int], size: int) -> None:
    """Draw ``text`` at ``xy`` in ``rgb`` from the cached mask (clipped at the image's edge)."""
    mask = _mask(text, size)
    image.paste(rgb, (xy[0], xy[1], xy[0] + mask.width, xy[1] + mask.height), mask)


def _lambda_symbol(size: int) -> str:
    _font(size)
    return "λ" if _UNICODE_FONT else "lambda"


def hud_lines(hud: HudState, size: int = 12) -> list[tuple[str, tuple[int, int, int]]]:
    """The top-left HUD text, one ``(line, rgb)`` per line, top to bottom, for a font of ``size`` pixels."""
    lam = "" if hud.lagrange is None else f"  {_lambda_symbol(size)} {hud.lagrange:.3g}"
    lines = [
        (hud.title, _TEXT_RGB),
        (f"ep {hud.episode} (seed {hud.seed})  step {max(hud.step, 0)}  t {hud.time_s:.2f} s", _TEXT_RGB),
        (f"reward {hud.reward:+.2f}  return {hud.episode_return:.1f}", _TEXT_RGB),
        (f"cost {hud.cost:g}  cum. cost {hud.episode_cost:g}{lam}", _TEXT_RGB),
    ]
    if hud.ended:
        lines.append(("episode over", _DIM_RGB))
    elif hud.violations:
        lines.extend((f"VIOLATION {text}", OVER_RGB) for text in hud.violations)
    else:
        lines.append(("no violation", _DIM_RGB))
    return lines


def reading_lines(hud: HudState, size: int = 12) -> list[tuple[str, tuple[int, int, int]]]:
    """The bottom-left HUD text: one coloured ``name value / limit unit`` line per cost term."""
    _font(size)
    return [(r.text(bool(_UNICODE_FONT)), r.rgb()) for r in hud.readings]


@dataclass(frozen=True)
class HudLayout:
    """Where the HUD goes on a frame: font size, line height and the two text blocks, pixels."""

    size: int
    line_h: int
    pad: int
    top: list[tuple[str, tuple[int, int, int]]]
    bottom: list[tuple[str, tuple[int, int, int]]]


def _fit(text: str, width: float, size: int) -> str:
    """``text`` cut with an ellipsis to at most ``width`` pixels."""
    if _width(text, size) <= width:
        return text
    while text and _width(text + "…", size) > width:
        text = text[:-1]
    return text + "…" if text else ""


def hud_layout(hud: HudState, shape: Sequence[int]) -> HudLayout:
    """The largest font (from :func:`font_size` down to :data:`MIN_FONT_PX`) at which the HUD fits inside the border.

    At the smallest font, lines that are still too wide are cut with an ellipsis, and when the two blocks
    are still too tall the least urgent lines go: the top block keeps its title and violation lines, the
    bottom block the readings closest to their limits.
    """
    height, width = int(shape[0]), int(shape[1])
    room_w, room_h = width - 2 * hud_inset(shape), height - 2 * hud_inset(shape)
    for size in range(font_size(height), MIN_FONT_PX - 1, -1):
        pad, line_h = max(1, size // 4), size + max(1, size // 5)
        top, bottom = hud_lines(hud, size), reading_lines(hud, size)
        widest = max(_width(text, size) for text, _ in top + bottom)
        blocks_h = (len(top) * line_h + 2 * pad) + ((len(bottom) * line_h + 2 * pad) if bottom else 0)
        if widest + 2 * pad <= room_w and blocks_h + line_h // 2 <= room_h:
            return HudLayout(size, line_h, pad, top, bottom)
    fits = max(0, (room_h - 4 * pad) // line_h)
    urgent = sorted(range(len(hud.readings)), key=lambda i: -np.nan_to_num(hud.readings[i].closeness(), nan=-1.0))
    keep_top = [top[0], *top[4:], *top[1:4]][: max(1, fits - min(len(bottom), fits // 2))] if fits else []
    keep_bottom = [bottom[i] for i in sorted(urgent[: max(0, fits - len(keep_top))])]
    cut = (
        [(_fit(t, room_w - 2 * pad, size), c) for t, c in keep_top],
        [(_fit(t, room_w - 2 * pad, size), c) for t, c in keep_bottom],
    )
    return HudLayout(size, line_h, pad, *cut)


def _boxes(layout: HudLayout, shape: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """``(x0, y0, x1, y1)`` pixels of the top and bottom HUD boxes (those with text), exclusive ends."""
    inset, height, width = hud_inset(shape), int(shape[0]), int(shape[1])
    boxes = []
    for lines, top in ((layout.top, True), (layout.bottom, False)):
        if not lines:
            continue
        box_w = min(width - 2 * inset, int(max(_width(t, layout.size) for t, _ in lines)) + 2 * layout.pad + 1)
        box_h = len(lines) * layout.line_h + 2 * layout.pad
        y0 = inset if top else height - inset - box_h
        boxes.append((inset, y0, inset + box_w, y0 + box_h))
    return boxes


def hud_boxes(hud: HudState, shape: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """Where :func:`annotate` draws the HUD on a frame of ``shape``: ``(x0, y0, x1, y1)`` per box, pixels."""
    return _boxes(hud_layout(hud, shape), shape)


def annotate(frame: np.ndarray, hud: HudState) -> np.ndarray:
    """Draw the HUD and, on violating steps, a red frame that never covers it.

    The run's state goes top-left, each cost term's reading bottom-left, both on shaded boxes inset by
    :func:`hud_inset` from the edge; ``hud.labels`` are drawn where they point.

    Args:
        frame: RGB image, uint8, shape (H, W, 3).
        hud: What to show.

    Returns:
        A new uint8 array of the same shape.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be an (H, W, 3) uint8 array, got {frame.shape} {frame.dtype}")
    out = frame.copy() if not hud.ended else (frame.astype(np.uint16) * 2 // 5).astype(np.uint8)
    layout = hud_layout(hud, frame.shape)
    pad, line_h, inset = layout.pad, layout.line_h, hud_inset(frame.shape)
    height, width = frame.shape[:2]
    blocks = list(zip(_boxes(layout, frame.shape), [b for b in (layout.top, layout.bottom) if b], strict=True))
    for (x0, y0, x1, y1), _ in blocks:
        out[y0:y1, x0:x1] = (out[y0:y1, x0:x1].astype(np.uint16) * round(256 * _PANEL_SHADE) >> 8).astype(np.uint8)
    image = Image.fromarray(out)
    draw = ImageDraw.Draw(image)
    for (x0, y0, _, _), lines in blocks:
        for i, (text, rgb) in enumerate(lines):
            _draw_text(image, (x0 + pad, y0 + pad + i * line_h), text, rgb, layout.size)
    label_font = _font(max(MIN_FONT_PX, layout.size - 1))
    for text, col, row in hud.labels:
        w = label_font.getlength(text)
        x = int(np.clip(col - w / 2, inset, width - inset - w))
        y = int(np.clip(row - layout.size / 2, inset, height - inset - layout.size))
        draw.text((x, y), text, fill=_TEXT_RGB, font=label_font, stroke_width=1, stroke_fill=(0, 0, 0))
    out = np.asarray(image).copy()
    if hud.violating:
        draw_border(out, VIOLATION_RGB)
    return out


def draw_border(frame: np.ndarray, rgb: Sequence[int], width: int | None = None) -> np.ndarray:
    """Paint a frame of ``width`` pixels (default :func:`border_width`) around ``frame`` in place."""
    w = border_width(frame.shape) if width is None else width
    frame[:w], frame[-w:], frame[:, :w], frame[:, -w:] = rgb, rgb, rgb, rgb
    return frame


def border_redness(frame: np.ndarray, width: int | None = None) -> float:
    """Fraction of the border pixels that are violation-red (≈1 on violating frames, ≈0 otherwise)."""
    w = border_width(frame.shape) if width is None else width
    ring = np.concatenate(
        [frame[:w].reshape(-1, 3), frame[-w:].reshape(-1, 3), frame[:, :w].reshape(-1, 3), frame[:, -w:].reshape(-1, 3)]
    ).astype(int)
    red = (ring[:, 0] > 160) & (ring[:, 1] < 90) & (ring[:, 2] < 90)
    return float(red.mean())
