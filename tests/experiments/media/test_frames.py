"""Rendered frames: the HUD sits inside the violation frame, shows every term against its limit, and the cameras
keep the robot, its goal, the person and the hazards in view; the extended floor leaves the physics untouched.

Everything here looks at real frames rendered by MuJoCo (headless), not at the code that draws them.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from taxbench.experiments.media.video import (
    NEAR_RGB,
    OVER_RGB,
    SAFE_RGB,
    VIOLATION_RGB,
    HudState,
    Reading,
    annotate,
    border_width,
    hud_boxes,
    hud_inset,
)

READINGS = (
    Reading("tcp_speed", 0.1, 0.25, "m/s"),  # 40 %: green
    Reading("separation", 0.3, 0.0, "m", upper=False, scale=0.25),  # well clear: green
    Reading("force_hand", 120.0, 140.0, "N"),  # 86 %: amber
    Reading("velocity", 3.4, 1.0, "m/s"),  # past the limit: red
)
SIZES = [(96, 96), (160, 120), (320, 240), (640, 480), (1280, 720)]


def _hud(violating: bool = True, readings: tuple[Reading, ...] = READINGS) -> HudState:
    return HudState(
        "ppo-lag d=25 seed 0", 0, 7, 41, 2.05, 0.12, 3.4, 1.0, 3.0, 0.31,
        ("velocity 3.4>1 m/s",) if violating else (), readings=readings,
    )  # fmt: skip


def _near(image: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> np.ndarray:
    return (np.abs(image.astype(int) - rgb) <= tol).all(axis=-1)


@pytest.fixture(scope="module")
def panda_frames():
    """A PandaReach frame rendered at each size."""
    frames = {}
    for width, height in SIZES:
        env = gym.make("taxbench/PandaReach-v0", render_mode="rgb_array", width=width, height=height)
        env.reset(seed=3)
        frames[(width, height)] = env.render()
        env.close()
    return frames


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_hud_text_is_inside_the_red_frame_and_never_covered(panda_frames, size):
    raw = panda_frames[size]
    bad, good = annotate(raw, _hud(True)), annotate(raw, _hud(False))
    w, inset = border_width(raw.shape), hud_inset(raw.shape)
    ring = np.ones(raw.shape[:2], bool)
    ring[w:-w, w:-w] = False
    assert (bad[ring] == VIOLATION_RGB).all(), "the red frame is drawn whole"
    # Without the frame, every pixel the HUD changed lies inside the inset: the border band holds no HUD pixel.
    hud_pixels = (good != raw).any(axis=-1)
    band = np.ones(raw.shape[:2], bool)
    band[inset:-inset, inset:-inset] = False
    assert hud_pixels.any() and not hud_pixels[band].any()
    # Inside the band the violating frame's HUD is the safe frame's except for its status line: nothing red over it.
    boxes = hud_boxes(_hud(True), raw.shape)
    assert len(boxes) == 2
    for x0, y0, x1, y1 in boxes:
        assert inset <= x0 < x1 <= raw.shape[1] - inset and inset <= y0 < y1 <= raw.shape[0] - inset
        assert not (bad[y0:y1, x0:x1] == VIOLATION_RGB).all(axis=-1).any(), "the HUD box is not red-tinted"
    # HUD text present in both boxes: bright text on the darkened panel.
    top, bottom = boxes
    assert _near(bad[top[1] : top[3], top[0] : top[2]], (245, 245, 245)).sum() >= 10
    assert _near(bad[bottom[1] : bottom[3], bottom[0] : bottom[2]], OVER_RGB).sum() >= 3


def test_readings_are_coloured_by_how_close_they_are_to_the_limit(panda_frames):
    raw = panda_frames[(320, 240)]
    x0, y0, x1, y1 = hud_boxes(_hud(False), raw.shape)[1]
    panel = annotate(raw, _hud(False))[y0:y1, x0:x1]
    rows = [_near(panel, rgb).any(axis=1) for rgb in (SAFE_RGB, NEAR_RGB, OVER_RGB)]
    green, amber, red = (np.flatnonzero(r) for r in rows)
    # One line per reading, top to bottom: green, green, amber, red.
    assert green.size and amber.size and red.size
    assert green.max() < amber.min() and amber.max() < red.min()
    assert Reading("tcp_speed", 0.21, 0.25, "m/s").text() == "tcp_speed 0.21 / 0.25 m/s"
    assert Reading("separation", 0.01, 0.0, "m", upper=False, scale=0.25).rgb() == NEAR_RGB
    assert Reading("hazard", 0.02, 0.0, "m", scale=0.25).rgb() == OVER_RGB


def _inside(pixels: np.ndarray, shape: tuple[int, ...], margin: int) -> bool:
    col, row, depth = pixels.T
    return bool(
        (depth > 0).all() and (col >= margin).all() and (col < shape[1] - margin).all() and (row >= margin).all()
        and (row < shape[0] - margin).all()
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env_id", "robot", "others"),
    [
        ("taxbench/PandaReach-v0", "panda_hand", ("target", "person_hand", "person_torso")),
        ("taxbench/AntHazard-v0", "torso", ("goal", "hazard0", "hazard1", "hazard2")),
        ("taxbench/HalfCheetahSlowZone-v0", "torso", ()),
    ],
)
def test_camera_keeps_robot_and_goal_in_frame_and_clear_of_the_hud(env_id, robot, others):
    width, height = 320, 240
    env = gym.make(env_id, render_mode="rgb_array", width=width, height=height)
    env.reset(seed=1)
    env.action_space.seed(1)  # the same 30 random steps every run: an unseeded walk sometimes hid a hazard
    sim, camera = env.unwrapped.sim, env.unwrapped.camera
    for _ in range(30):
        env.step(env.action_space.sample())
    shape = (height, width, 3)
    names = (robot, *others)
    pixels = sim.project(np.array([sim.body_position(n) for n in names]), width, height, camera)
    assert _inside(pixels, shape, hud_inset(shape)), dict(zip(names, pixels.round(1).tolist(), strict=True))
    seen = sim.segment(width, height, camera)
    for name, (col, row, _) in zip(names, pixels, strict=True):
        index = sim.body_index(name)
        assert (seen == index).any(), f"{name} is hidden"
        near = seen[max(0, int(row) - 3) : int(row) + 4, max(0, int(col) - 3) : int(col) + 4]
        assert (near == index).any() or name.startswith("person") or name == robot, f"{name} is not where projected"
    # The robot is not under the HUD: at most a fifth of its pixels lie in the HUD's boxes.
    readings = tuple(Reading(t.name, 0.0, t.threshold, t.unit, t.upper) for t in env.unwrapped.safety)
    robot_mask = np.isin(seen, [i for i in range(sim.model.nbody) if _is_robot(sim, i, robot)])
    covered = np.zeros_like(robot_mask)
    for x0, y0, x1, y1 in hud_boxes(_hud(True, readings), shape):
        covered[y0:y1, x0:x1] = True
    assert robot_mask.sum() > 50
    assert (robot_mask & covered).sum() <= 0.2 * robot_mask.sum()
    env.close()


def _is_robot(sim, body: int, root: str) -> bool:
    """Whether ``body`` hangs below the robot's root (the Panda's links, the Ant's legs)."""
    model, root_index = sim.model, sim.body_index(root)
    base = root_index if root != "panda_hand" else 1
    while body > 0:
        if body in (root_index, base):
            return True
        body = model.body_parentid[body]
    return False


@pytest.mark.parametrize("size", [(16, 16), (32, 24), (64, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_hud_on_tiny_frames_keeps_out_of_the_red_frame(panda_frames, size):
    from PIL import Image

    raw = np.asarray(Image.fromarray(panda_frames[(320, 240)]).resize(size))
    good = annotate(raw, _hud(False))
    inset = hud_inset(raw.shape)
    band = np.ones(raw.shape[:2], bool)
    band[inset:-inset, inset:-inset] = False
    assert not (good != raw).any(axis=-1)[band].any()
    for x0, y0, x1, y1 in hud_boxes(_hud(True), raw.shape):
        assert inset <= x0 < x1 <= size[0] - inset and inset <= y0 < y1 <= size[1] - inset
