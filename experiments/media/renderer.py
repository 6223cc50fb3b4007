"""Record a trained run's episodes and render any recorded frame with the safety HUD.

A :class:`RunRenderer` owns one env (``render_mode="rgb_array"``) per run. It first *records*
episodes (the physics state, reward, costs and violated terms of every step, plus contact-force
arrows where a force term fires) and then *renders* any recorded frame by restoring its state,
so a video, a side-by-side comparison, violation clips and a contact sheet can all be cut from
one cheap recording. Frame ``0`` of an episode is the state after ``reset``; frame ``k`` the
state after step ``k - 1`` (the ``step`` field of ``events.jsonl``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from taxbench.experiments.media.video import HudState, Reading, annotate


@dataclass(frozen=True)
class TermSpec:
    """The threshold of one cost term, for HUD text and event severity.

    Attributes:
        name: Term name (``cost_<name>`` in info).
        threshold: Largest safe value (smallest for lower bounds), in ``unit``.
        unit: SI unit of the measure.
        upper: True if the term is violated above the threshold.
        kind: Constraint type (``force``, ``speed``, ``zone``, ...).
    """

    name: str
    threshold: float
    unit: str = ""
    upper: bool = True
    kind: str = ""

    def reading(self, measure: float | None) -> Reading:
        """The HUD's ``name value / limit unit`` line for a measure (NaN when unknown)."""
        value = float("nan") if measure is None else float(measure)
        return Reading(self.name, value, self.threshold, self.unit, self.upper, ZERO_LIMIT_SCALE.get(self.unit, 1.0))

    def describe(self, measure: float | None) -> str:
        """``velocity 3.41>1 m/s`` (or just the name when the measure is unknown)."""
        if measure is None or not math.isfinite(measure):
            return self.name
        return f"{self.name} {measure:.3g}{'>' if self.upper else '<'}{self.threshold:g} {self.unit}".rstrip()

    def severity(self, measure: float | None) -> float:
        """How far past the threshold a measure is, relative to the threshold (0 when unknown)."""
        if measure is None or not math.isfinite(measure):
            return 0.0
        excess = measure - self.threshold if self.upper else self.threshold - measure
        return excess / max(abs(self.threshold), 1e-6)


#: For terms whose limit is 0 (signed distances, joint-limit margins): the distance from the limit, in the
#: term's unit, over which the HUD reading goes from green to amber (see :class:`~.video.Reading`).
ZERO_LIMIT_SCALE = {"m": 0.25, "rad": 0.25, "N": 10.0, "m/s": 0.25}

#: Body-region labels drawn on the person, ``(label, body)``; bodies missing from a scene are skipped.
BODY_LABELS = (
    ("hand", "person_hand"),
    ("forearm", "person_forearm"),
    ("upper arm", "person_upper_arm"),
    ("chest", "person_torso"),
    ("goal", "goal"),
    ("target", "target"),
)

#: Anti-aliasing samples of rollout frames: 0 (off) renders 3x as fast as MuJoCo's default 4 on a software GL,
#: which is what keeps ``rollout --compare`` of a 1,000-step Ant with its clips under a minute on 2 cores.
RENDER_SAMPLES = 0

#: Folder of a run that holds its videos, clips, contact sheet and ``media.json``.
MEDIA_DIR = "media"


#: Most contact-force arrows drawn on one frame.
MAX_ARROWS = 4


#: Arrow length for a force at the term's threshold, m.
ARROW_LENGTH_AT_LIMIT_M = 0.15


_ARROW_RGBA = (1.0, 0.1, 0.1, 1.0)


@dataclass
class Frame:
    """One recorded frame: the state after a step and what the HUD shows for it."""

    step: int
    state: np.ndarray
    time_s: float
    reward: float = 0.0
    episode_return: float = 0.0
    cost: float = 0.0
    episode_cost: float = 0.0
    violated: tuple[str, ...] = ()
    measures: dict[str, float] = field(default_factory=dict)
    arrows: tuple[tuple[np.ndarray, np.ndarray, tuple[float, ...]], ...] = ()


@dataclass
class Episode:
    """A recorded episode: ``frames[0]`` after reset, ``frames[k]`` after step ``k - 1``."""

    episode: int
    seed: int
    frames: list[Frame]
    terminated: bool = False
    truncated: bool = False

    @property
    def steps(self) -> int:
        """Number of ``step()`` calls recorded."""
        return len(self.frames) - 1

    def violated_at(self, step: int) -> tuple[str, ...]:
        """Terms violated by step ``step`` (empty past the recording)."""
        return self.frames[step + 1].violated if 0 <= step < self.steps else ()


@dataclass
class LoadedRun:
    """A run folder's config, learner and label."""

    run_dir: Path
    cfg: Any
    model: Any
    label: str
    lagrange: float | None


def run_label(cfg: Any) -> str:
    """Short name of a run for HUDs and file names: ``ppo-lag d=25 seed 0``."""
    limit = "" if cfg.arm == "ppo" or not cfg.arm.endswith("lag") else f" d={cfg.cost_limit:g}"
    return f"{cfg.arm}{limit} seed {cfg.seed}"


def slug(text: str) -> str:
    """File-name-safe form of a label."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "run"


def load_run(run_dir: str | Path, device: str = "cpu", trust_pickle: bool = False) -> LoadedRun:
    """Load ``config.json`` and ``model.zip`` of a run folder (tensors only unless ``trust_pickle``).

    Raises:
        FileNotFoundError: if the folder, its config or its model is missing.
        ValueError: if either cannot be read.
    """
    from taxbench.experiments.runs.config import load_run_config
    from taxbench.experiments.runs.policy_files import load_run_policy

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {str(run_dir)!r} does not exist")
    cfg = load_run_config(run_dir)
    model_path = run_dir / "model.zip"
    if not model_path.exists():
        raise FileNotFoundError(f"{model_path} not found: the run has not finished training")
    model = load_run_policy(run_dir, cfg, device=device, trust_pickle=trust_pickle)
    value = getattr(getattr(model, "lagrange", None), "value", None)
    lagrange = None if value is None else float(value)
    return LoadedRun(run_dir, cfg, model, run_label(cfg), lagrange)


class RunRenderer:
    """Record episodes of one run and render any recorded frame with the HUD.

    Args:
        run: The loaded run.
        width: Frame width, pixels.
        height: Frame height, pixels.
        camera: Named camera of the env; None uses the env's default (following the robot).
    """

    def __init__(self, run: LoadedRun, width: int = 320, height: int = 240, camera: str | None = None) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"frames must be at least 16×16 pixels, got {width}×{height}")
        self.run = run
        kwargs = {**run.cfg.env_kwargs, "render_mode": "rgb_array", "width": width, "height": height}
        if camera is not None:
            kwargs["camera"] = camera
        self.env = gymnasium.make(run.cfg.env_id, **kwargs)
        self.unwrapped = self.env.unwrapped
        self.sim = getattr(self.unwrapped, "sim", None)
        if self.sim is None or not hasattr(self.sim, "restore_state"):
            raise ValueError(f"{run.cfg.env_id} has no taxbench sim: rollout videos need a SafeRobotEnv")
        if hasattr(self.sim, "set_render_samples"):
            self.sim.set_render_samples(RENDER_SAMPLES)
        self.dt = float(self.sim.dt)
        self.terms = {
            t.name: TermSpec(
                t.name,
                float(t.threshold),
                getattr(t, "unit", ""),
                bool(getattr(t, "upper", True)),
                getattr(t, "kind", ""),
            )
            for t in getattr(self.unwrapped, "safety", ())
        }
        self.width, self.height = width, height
        self.camera = getattr(self.unwrapped, "camera", camera)
        has_body = getattr(self.sim, "has_body", lambda _: False)
        self.labelled = tuple((text, body) for text, body in BODY_LABELS if has_body(body))

    @property
    def fps(self) -> float:
        """Real-time frame rate, frames per second (one frame per control step)."""
        return 1.0 / self.dt

    # ----------------------------------------------------------------- recording
    def record(self, episode: int, seed: int, max_steps: int | None = None) -> Episode:
        """Play one deterministic episode reset with ``seed`` and record every frame."""
        obs, _ = self.env.reset(seed=seed)
        frames = [Frame(-1, self.sim.get_state(), 0.0)]
        ret = cum_cost = 0.0
        terminated = truncated = False
        while not (terminated or truncated) and (max_steps is None or len(frames) <= max_steps):
            action, _ = self.run.model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, info = self.env.step(action)
            cost = float(info.get("cost", 0.0))
            ret, cum_cost = ret + float(reward), cum_cost + cost
            fired = tuple(
                k[5:]
                for k, v in info.items()
                if k.startswith("cost_") and isinstance(v, int | float | np.number) and v > 0
            )
            if bool(info.get("violation", cost > 0)) and not fired:
                fired = ("cost",)
            measures = {t: float(info[f"measure_{t}"]) for t in {*self.terms, *fired} if f"measure_{t}" in info}
            frames.append(
                Frame(
                    len(frames) - 1,
                    self.sim.get_state(),
                    len(frames) * self.dt,
                    float(reward),
                    ret,
                    cost,
                    cum_cost,
                    fired,
                    measures,
                    self._force_arrows(fired),
                )
            )
        return Episode(episode, seed, frames, bool(terminated), bool(truncated))

    def _force_arrows(self, fired: Sequence[str]) -> tuple:
        """Arrows for the largest contact forces, when a force term fires and the sim can give and draw them."""
        force_terms = [
            self.terms[t]
            for t in fired
            if t in self.terms and (self.terms[t].kind == "force" or self.terms[t].unit == "N")
        ]
        if not force_terms or not hasattr(self.sim, "contact_force_vectors") or not hasattr(self.sim, "draw_arrows"):
            return ()
        limit = max(term.threshold for term in force_terms)
        watched = set()
        for name in fired:
            term = next((t for t in getattr(self.unwrapped, "safety", ()) if t.name == name), None)
            for attr in ("bodies", "body", "body_names"):
                value = getattr(term, attr, None)
                watched.update([value] if isinstance(value, str) else (value or ()))
        contacts = [
            (a, b, p, f)
            for a, b, p, f in self.sim.contact_force_vectors()
            if not watched or a in watched or b in watched
        ]
        contacts.sort(key=lambda c: -float(np.linalg.norm(c[3])))
        arrows = []
        for _, _, point, force in contacts[:MAX_ARROWS]:
            magnitude = float(np.linalg.norm(force))
            if magnitude > 0:
                scale = ARROW_LENGTH_AT_LIMIT_M * float(np.clip(magnitude / max(limit, 1e-6), 0.3, 3.0))
                arrows.append((np.asarray(point, float), force / magnitude * scale, _ARROW_RGBA))
        return tuple(arrows)

    # ----------------------------------------------------------------- rendering
    def hud(self, episode: Episode, index: int, ended: bool = False) -> HudState:
        """The HUD of frame ``index`` of a recorded episode."""
        frame = episode.frames[index]
        texts = tuple(self.terms[t].describe(frame.measures.get(t)) if t in self.terms else t for t in frame.violated)
        return HudState(
            self.run.label,
            episode.episode,
            episode.seed,
            frame.step,
            frame.time_s,
            frame.reward,
            frame.episode_return,
            frame.cost,
            frame.episode_cost,
            self.run.lagrange,
            texts,
            ended,
            tuple(term.reading(frame.measures.get(name)) for name, term in self.terms.items()),
            self._labels(),
        )

    def _labels(self) -> tuple[tuple[str, float, float], ...]:
        """Body labels at their projected centres for the state last restored (those in front of the camera)."""
        if not self.labelled or not hasattr(self.sim, "project"):
            return ()
        points = np.array([self.sim.body_position(body) for _, body in self.labelled])
        pixels = self.sim.project(points, self.width, self.height, self.camera)
        return tuple(
            (text, float(col), float(row))
            for (text, _), (col, row, depth) in zip(self.labelled, pixels, strict=True)
            if depth > 0 and 0 <= col < self.width and 0 <= row < self.height
        )

    def raw_frame(self, episode: Episode, index: int) -> np.ndarray:
        """Render frame ``index`` from its recorded state (no HUD)."""
        frame = episode.frames[index]
        self.sim.restore_state(frame.state)
        if hasattr(self.sim, "draw_arrows"):
            self.sim.draw_arrows(frame.arrows)
        image = self.unwrapped.render()
        if image is None:
            raise RuntimeError(f"{self.run.cfg.env_id} returned no image from render()")
        return np.asarray(image, dtype=np.uint8)

    def frame(self, episode: Episode, index: int) -> np.ndarray:
        """Frame ``index`` with the HUD; past the episode's end, its last frame dimmed."""
        last = len(episode.frames) - 1
        ended = index > last
        index = min(index, last)
        raw = self.raw_frame(episode, index)  # restores the state the labels are projected from
        return annotate(raw, self.hud(episode, index, ended))

    def close(self) -> None:
        """Release the env and its renderers."""
        if hasattr(self.sim, "draw_arrows"):
            self.sim.draw_arrows(())
        self.env.close()
