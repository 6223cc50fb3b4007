"""Rollout videos, violation clips, contact sheets and the media index, on two tiny trained runs.

The runs are HalfCheetahSlowZone with a 0.05 m/s limit and 60-step episodes, so violations come and
go within an episode; frames are 96×96 to keep rendering fast.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from taxbench.experiments.media.clips import media_for_run, plan_clips
from taxbench.experiments.media.rollout import RunRenderer, load_run, make_rollout
from taxbench.experiments.media.video import border_redness, border_width, read_video

SIZE = 96
EPISODE_STEPS = 60


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """A ppo and a ppo-lag run trained for 256 steps, evaluated on 2 episodes (seeds 7, 8)."""
    from taxbench.experiments.runs.config import RunConfig
    from taxbench.experiments.runs.train import train_run

    root = tmp_path_factory.mktemp("rollout_runs")
    folders = {}
    for arm in ("ppo", "ppo-lag"):
        cfg = RunConfig(
            env_id="taxbench/HalfCheetahSlowZone-v0",
            arm=arm,
            intensity="off" if arm == "ppo" else "d5",
            cost_limit=5.0,
            seed=0,
            steps=256,
            n_envs=1,
            device="cpu",
            hyperparams={"n_steps": 128, "batch_size": 64, "n_epochs": 1},
            env_kwargs={"velocity_limit": 0.05, "max_episode_steps": EPISODE_STEPS},
            eval_episodes=2,
            eval_seed=7,
            checkpoint_every=10_000,
        )
        folders[arm] = root / arm
        train_run(cfg, folders[arm], progress=False)
    return folders


@pytest.fixture(scope="session")
def single(runs):
    """A 2-episode MP4 of the ppo run with clips and contact sheet."""
    result = make_rollout(runs["ppo"], episodes=2, width=SIZE, height=SIZE, progress=False)
    return result


@pytest.fixture(scope="session")
def recorded(runs):
    """The ppo run's two evaluation episodes, recorded (states + violations)."""
    renderer = RunRenderer(load_run(runs["ppo"]), SIZE, SIZE)
    episodes = [renderer.record(i, 7 + i) for i in range(2)]
    yield renderer, episodes
    renderer.close()


def _violating(episode) -> np.ndarray:
    """Per frame: whether it shows a violating step (frame k = after step k-1; frame 0 never)."""
    return np.array([bool(frame.violated) for frame in episode.frames])


def test_video_decodes_with_expected_frame_count_and_size_and_is_not_blank(single):
    video = read_video(single["video"])
    assert video.shape == (2 * (EPISODE_STEPS + 1), SIZE, SIZE, 3)
    assert [p.frames for p in single["parts"]] == [EPISODE_STEPS + 1] * 2
    assert [p.first_frame for p in single["parts"]] == [0, EPISODE_STEPS + 1]
    per_frame_std = video.reshape(len(video), -1).std(axis=1)
    assert per_frame_std.min() > 10, "a blank frame was written"
    # The cheetah moves: frames are not all the same picture.
    assert np.abs(video[0].astype(int) - video[-1].astype(int)).mean() > 1


def test_red_frame_marks_exactly_the_violating_steps(single, recorded):
    _, episodes = recorded
    flags = np.concatenate([_violating(ep) for ep in episodes])
    assert 0 < flags.sum() < len(flags), "the fixture should have both violating and safe steps"
    redness = np.array([border_redness(frame) for frame in read_video(single["video"])])
    assert np.array_equal(redness > 0.5, flags)
    assert redness[flags].min() > 0.9 and redness[~flags].max() < 0.1


def test_hud_region_differs_between_violating_and_safe_step(recorded):
    renderer, episodes = recorded
    episode = episodes[0]
    flags = _violating(episode)
    bad, good = int(np.argmax(flags)), int(np.argmax(~flags[1:])) + 1
    hud_bad, hud_good = renderer.hud(episode, bad), renderer.hud(episode, good)
    assert hud_bad.violations and hud_bad.violations[0].startswith("velocity ") and "m/s" in hud_bad.violations[0]
    assert not hud_good.violations
    # Same picture, two HUDs: only the HUD text and the border change.
    from taxbench.experiments.media.video import annotate

    raw = renderer.raw_frame(episode, bad)
    with_violation = annotate(raw, hud_bad).astype(int)
    without = annotate(raw, type(hud_bad)(**{**vars(hud_bad), "violations": ()})).astype(int)
    changed = np.abs(with_violation - without).sum(axis=2) > 0
    w = border_width(raw.shape)
    assert changed[:w].all() and changed[-w:].all() and changed[:, :w].all() and changed[:, -w:].all()
    assert changed[w : SIZE // 2, w:-w].any(), "the HUD's violation line should differ"
    assert not changed[SIZE // 2 : -w, w:-w].any(), "the scene below the HUD must not change"


def test_hud_shows_lambda_for_the_constrained_run(runs):
    run = load_run(runs["ppo-lag"])
    assert run.lagrange is not None and run.lagrange >= 0
    renderer = RunRenderer(run, SIZE, SIZE)
    try:
        episode = renderer.record(0, 7, max_steps=3)
        assert episode.steps == 3
        assert renderer.hud(episode, 1).lagrange == pytest.approx(run.lagrange)
    finally:
        renderer.close()
    assert load_run(runs["ppo"]).lagrange is None


def test_side_by_side_video_is_twice_as_wide_on_the_same_seeds(runs, tmp_path):
    out = tmp_path / "pair.mp4"
    result = make_rollout(
        runs["ppo"],
        compare=runs["ppo-lag"],
        episodes=1,
        width=SIZE,
        height=SIZE,
        out=out,
        clips=False,
        sheet=False,
        progress=False,
    )
    video = read_video(out)
    assert video.shape == (EPISODE_STEPS + 1, SIZE, 2 * SIZE, 3)
    assert result["parts"][0].seed == 7
    # Both halves show a scene (neither is blank) and carry their own HUD.
    for half in (video[:, :, :SIZE], video[:, :, SIZE:]):
        assert half.reshape(len(half), -1).std(axis=1).min() > 10
    index = json.loads((runs["ppo-lag"] / "media" / "media.json").read_text())
    assert any(v["path"] == str(out.resolve()) and v["width"] == 2 * SIZE for v in index["videos"])


def test_plan_clips_keeps_one_second_around_each_event_and_merges_neighbours():
    events = [{"episode": 0, "seed": 5, "step": s, "term": "velocity"} for s in (10, 12, 50)]
    events.append({"episode": 1, "seed": 6, "step": 0, "term": "velocity"})
    plans = plan_clips(events, fps=10.0)
    assert [(p.episode, p.start, p.end) for p in plans] == [(0, 1, 24), (0, 41, 62), (1, 0, 12)]
    assert [len(p.events) for p in plans] == [2, 1, 1]
    assert plans[0].file_name("mp4") == "ep000_step00010.mp4"
    # A long run of violations is split so no clip exceeds about 4 s.
    long = plan_clips([{"episode": 0, "seed": 0, "step": s} for s in range(100)], fps=10.0)
    assert max(p.end - p.start for p in long) <= 40 and len(long) > 1
    assert all(any(p.start <= e + 1 < p.end for p in long) for e in range(100))


def test_each_clip_is_cut_around_its_events(single, recorded, runs):
    _, episodes = recorded
    index = json.loads((runs["ppo"] / "media" / "media.json").read_text())
    events = [json.loads(line) for line in (runs["ppo"] / "events.jsonl").read_text().splitlines()]
    assert index["events"] == len(events) > 0
    assert index["events_clipped"] == len(events) and index["n_events_not_reproduced"] == 0
    for clip in index["clips"]:
        frames = read_video(clip["path"])
        assert len(frames) == clip["frames"]
        start = clip["start_frame"]
        flags = _violating(episodes[clip["episode"]])[start : start + len(frames)]
        redness = np.array([border_redness(f) for f in frames])
        assert np.array_equal(redness > 0.5, flags), "the clip shows another stretch of the episode"
        for event in clip["events"]:
            assert border_redness(frames[event["frame_in_clip"]]) > 0.9
            assert event["frame_in_clip"] == event["step"] + 1 - start
            # about ±1 s (20 frames at 20 fps) of context, unless the episode starts or ends first
            assert event["frame_in_clip"] >= min(20, event["step"] + 1)
            assert len(frames) - 1 - event["frame_in_clip"] >= min(20, EPISODE_STEPS - event["step"] - 1)
            assert event["video"]["frame"] == (EPISODE_STEPS + 1) * event["episode"] + event["step"] + 1


def test_contact_sheet_and_media_for_run(single, runs, tmp_path):
    media = media_for_run(runs["ppo"])
    assert media["video"] and all(p.exists() for p in media["video"])
    assert single["video"].resolve() in [p.resolve() for p in media["video"]]
    assert len(media["clips"]) == single["runs"]["ppo seed 0"]["clips"] > 0
    [sheet] = media["contact_sheet"]
    image = np.asarray(Image.open(sheet).convert("RGB"))
    assert image.shape[1] >= SIZE and image.shape[0] > SIZE
    assert image.std() > 10
    assert media_for_run(tmp_path) == {"video": [], "clips": [], "contact_sheet": []}


def test_cli_rollout_gif_and_bad_input(runs, tmp_path, capsys):
    from taxbench.experiments.cli import main

    out = tmp_path / "short.gif"
    code = main(
        [
            "rollout",
            str(runs["ppo-lag"]),
            "--episodes",
            "1",
            "--max-steps",
            "10",
            "--width",
            "64",
            "--height",
            "48",
            "--out",
            str(out),
            "--no-clips",
            "--no-sheet",
            "--no-progress",
        ]
    )
    assert code == 0
    video = read_video(out)
    assert video.shape[1:] == (48, 64, 3) and 1 <= len(video) <= 11
    assert str(out) in capsys.readouterr().out.replace("\n", "")
    with pytest.raises(SystemExit) as refused:  # a run folder that is not there: refused by the parser
        main(["rollout", str(tmp_path / "missing")])
    assert refused.value.code == 2
    assert main(["rollout", str(runs["ppo"]), "--out", str(tmp_path / "x.avi")]) == 2
    assert main(["rollout", str(runs["ppo"]), "--compare", str(runs["ppo"])]) == 2
    assert "does not exist" in capsys.readouterr().err


class _FakeViewer:
    """Stands in for MuJoCo's passive viewer handle."""

    def __init__(self):
        self.syncs, self.closed = 0, False

    def is_running(self):
        return not self.closed

    def sync(self):
        self.syncs += 1

    def close(self):
        self.closed = True


def test_view_steps_the_policy_in_the_viewer_and_prints_violations(runs):
    from taxbench.experiments.media.viewer import view_run

    handle, lines = _FakeViewer(), []
    steps = view_run(runs["ppo"], episodes=1, realtime=False, open_viewer=lambda sim: handle, log=lines.append)
    assert steps == EPISODE_STEPS
    assert handle.syncs == EPISODE_STEPS + 1 and handle.closed
    events = [json.loads(line) for line in (runs["ppo"] / "events.jsonl").read_text().splitlines()]
    expected = [f"ep 0 step {e['step']}: velocity violated" for e in events if e["episode"] == 0]
    assert [line.split(" (")[0] for line in lines] == expected


def test_view_says_plainly_when_there_is_no_display(runs, monkeypatch, capsys):
    from taxbench.experiments.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["view", str(runs["ppo"])]) == 1
    err = capsys.readouterr().err
    assert "no display" in err and "taxbench rollout" in err


def test_bench_render_reports_frames_per_second():
    from taxbench.experiments.bench.render import bench_render

    [row] = bench_render(["taxbench/HalfCheetahSlowZone-v0"], width=64, height=48, frames=3, repeats=2)
    assert row["backend"] == "mujoco" and row["size"] == "64x48" and row["repeats"] == 2
    assert row["render_fps"] > 0 and 0 < row["hud_fps"] <= row["render_fps"] and row["encode_fps"] > 0
    assert row["mean_pixel_std"] > 10


def test_bench_render_cli_writes_json(tmp_path):
    import json

    from taxbench.experiments.cli import main

    out = tmp_path / "render.json"
    assert (
        main(
            [
                "bench",
                "render",
                "--env",
                "taxbench/PandaReach-v0",
                "--width",
                "64",
                "--height",
                "48",
                "--frames",
                "2",
                "--repeats",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    rows = json.loads(out.read_text())["rows"]
    assert {r["backend"] for r in rows} == {"mujoco", "pybullet"}
    assert all(r["render_fps"] > 0 and r["mean_pixel_std"] > 0 for r in rows)
