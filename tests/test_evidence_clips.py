"""Event clips end to end for file cameras (edge.evidence): cut, WebVTT, snapshot, sidecar, the clip line.

Oracles: the source file's own packets (read here with PyAV, bytes compared), the scripted colour of
each frame (``support_activities.script_frames``), the activity and check lines the run wrote (their
times are tested in test_checks_e2e.py). Test videos are H.264 from ffmpeg libx264 with a GOP of 25
frames (1 s) and B-frames.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from support_activities import (  # noqa: F401
    ACTIVITIES_YAML,
    COLOURS_BGR,
    FPS,
    colour_model_xml,
    script_frames,
)
from support_evidence import GOP, decoded_frames, mean_colour, media_packets, write_h264

ROOT = Path(__file__).resolve().parents[1]
GOP_S = GOP / FPS
FRAME_S = 1 / FPS
DAY = [("grey", 1.28), ("red", 8.32), ("grey", 2.56), ("green", 1.92), ("grey", 2.56), ("red", 21.76),
       ("grey", 3.84)]
RULES = [{"name": "wash-20s", "kind": "min_duration", "activity": "handwash", "seconds": 20},
         {"name": "no-smoking", "kind": "forbidden", "activity": "smoking"}]
PRE_S, POST_S = 2.0, 1.5


def close_to(colour: str, bgr, tolerance: float = 25.0) -> bool:
    return bool(np.abs(np.asarray(bgr, float) - np.asarray(COLOURS_BGR[colour], float)).max() <= tolerance)


@pytest.fixture(scope="module")
def day_video(tmp_path_factory):
    return write_h264(tmp_path_factory.mktemp("day") / "day.mp4", DAY)


# ---------------------------------------------------------------- cut.py on its own

def source_slice(source, start_s, end_s):
    """The oracle of a cut: the source's packets from its last keyframe at or before ``start_s`` to the last
    one with dts ≤ ``end_s``."""
    keys = [i for i, (pts, _, key, _) in enumerate(source) if key and pts <= start_s + 1e-6]
    first = keys[-1] if keys else 0
    last = max(i for i, (_, dts, _, _) in enumerate(source) if dts <= end_s + 1e-6)
    return first, source[first:last + 1]


@pytest.mark.parametrize("span", [(2.5, 5.3), (0.0, 1.0), (3.0, 3.0), (40.0, 60.0)])
def test_cut_copies_the_source_packets_bit_for_bit(day_video, tmp_path, span):
    from edge.evidence.cut import FilePackets, cut_clip

    start, end = span
    out = tmp_path / "clip.mp4"
    result = cut_clip(FilePackets(day_video).packets(start, end), start, end, out)
    source = media_packets(day_video)
    _, expected = source_slice(source, start, end)
    clip = media_packets(out)
    assert [data for *_, data in clip] == [data for *_, data in expected]
    assert clip[0][2] and start - GOP_S - 1e-6 <= expected[0][0] <= start + 1e-6  # a keyframe, at most a GOP before
    assert result.first_key_s == pytest.approx(expected[0][0])
    assert result.start_s == pytest.approx(min(p[0] for p in expected))
    assert result.frames == len(expected)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(stream))
    assert frames == len(expected)
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temporary left


def test_cut_with_polygon_masks_reencodes_with_the_region_black(day_video, tmp_path):
    from edge.evidence.cut import FilePackets, cut_clip
    from edge.privacy import Masks

    out = tmp_path / "masked.mp4"
    left_half = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
    result = cut_clip(FilePackets(day_video).packets(2.0, 4.0), 2.0, 4.0, out, masks=Masks([left_half]))
    assert result.reencoded
    frames = decoded_frames(out)
    _, expected = source_slice(media_packets(day_video), 2.0, 4.0)
    assert len(frames) == len(expected)
    colours = script_frames(DAY)
    for time_s, image in frames:
        assert image[:, :76].max() <= 16
        index = round((result.start_s + time_s) * FPS)
        assert close_to(colours[index], mean_colour(image[:40, 100:]))  # above the moving square's path


def test_a_missing_file_or_no_packets_is_an_error_and_leaves_no_file(day_video, tmp_path):
    from edge.evidence.cut import CutError, FilePackets, Packets, cut_clip

    with pytest.raises(CutError):
        FilePackets(tmp_path / "missing.mp4").packets(0.0, 1.0)
    with FilePackets(day_video).packets(0.0, 1.0) as packets, pytest.raises(CutError):
        cut_clip(Packets(packets.stream, iter(())), 0.0, 1.0, tmp_path / "x.mp4")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- store.py

def test_store_lists_newest_first_and_resolves_only_inside_a_camera_folder(tmp_path):
    from edge.evidence.store import ClipStore

    store = ClipStore({"sink": tmp_path / "sink", "door": tmp_path / "door"})
    for number, (camera, passed, wall) in enumerate([("sink", False, "2026-01-01T10:00:00+00:00"),
                                                     ("sink", True, "2026-01-01T12:00:00+00:00"),
                                                     ("door", False, "2026-01-01T11:00:00+00:00")]):
        folder = store.folder_for(camera, "2026-01-01")
        clip = folder / f"run-{number}.mp4"
        clip.write_bytes(b"mp4")
        item = store.add(id=f"run-{number}", camera=camera, rule="wash", activity="handwash", passed=passed,
                         start_s=1.0, end_s=2.0, wall_time=wall, clip=clip)
        assert item["clip_url"] == f"/clips/{camera}/2026-01-01/run-{number}.mp4"
        assert json.loads((folder / f"run-{number}.json").read_text())["clip"] == f"2026-01-01/run-{number}.mp4"
    assert [item["id"] for item in store.list()] == ["run-1", "run-2", "run-0"]
    assert [item["id"] for item in store.list(camera="sink", passed=False)] == ["run-0"]
    assert [item["id"] for item in store.list(since="2026-01-01T10:30:00+00:00", limit=1)] == ["run-1"]
    assert set(store.list()[0]) >= {"id", "camera", "rule", "activity", "passed", "start_s", "end_s", "wall_time",
                                    "clip_url", "snapshot_url", "vtt_url"}
    assert store.resolve("sink", "2026-01-01/run-0.mp4") == (tmp_path / "sink/2026-01-01/run-0.mp4").resolve()
    (tmp_path / "secret.txt").write_text("no")
    (tmp_path / "sink/2026-01-01/link.mp4").symlink_to(tmp_path / "secret.txt")
    for bad in ("../secret.txt", "2026-01-01/../../secret.txt", str(tmp_path / "secret.txt"), "/etc/passwd",
                "2026-01-01/link.mp4", "2026-01-01", "", "2026-01-01/run-2.mp4"):
        assert store.resolve("sink", bad) is None, bad
    assert store.resolve("nowhere", "2026-01-01/run-0.mp4") is None


# ---------------------------------------------------------------- the EvidenceSink with scripted events

class FakeRecorder:
    """A live camera's packet source: the file's packets, covered up to what the test says."""

    def __init__(self, path) -> None:
        from edge.evidence.cut import FilePackets

        self.file = FilePackets(path)
        self.covered = 0.0
        self.asked = threading.Event()

    def covered_until(self):
        self.asked.set()
        return self.covered

    def packets(self, start_s, end_s):
        return self.file.packets(start_s, end_s)


def sink_config(tmp_path, cameras):
    from edge.config import config_from_mapping

    return config_from_mapping({"cameras": cameras, "activities": ACTIVITIES_YAML,
                                "evidence": {"pre_s": 1.0, "post_s": 1.0, "dir": str(tmp_path / "{camera}")}})


def activity(camera, kind, number, start, end=None, name="handwash"):
    from edge.events import ActivityEvent

    return ActivityEvent(camera=camera, wall_time="2026-01-01T10:00:00+00:00", type=kind, id=f"{camera}-{name}-{number}",
                         activity=name, start_time_s=start, end_time_s=end, duration_s=0.0, peak_score=1.0,
                         time_base="media", run_id="run")


def prediction(camera, start, end, label="washing hands", score=0.99):
    from edge.events import PredictionEvent
    from edge.records import StageLatency

    return PredictionEvent(camera=camera, wall_time="2026-01-01T10:00:00+00:00", source="x", clip_index=0,
                           start_frame=round(start * FPS), end_frame=round(end * FPS), start_time_s=start,
                           end_time_s=end, label=label, score=score, top_k=((label, score),),
                           latency_ms=StageLatency(None, None, None, None), model="m", untrained=False, run_id="run")


def check(camera, ids, passed=False, time_s=5.0, kind="min_duration", number=1):
    from edge.events import CheckEvent

    return CheckEvent(camera=camera, wall_time="2026-01-01T10:00:00+00:00", rule="wash", rule_kind=kind,
                      passed=passed, reason="too short", time_s=time_s, time_base="media", activity_ids=tuple(ids),
                      id=f"wash-{number}", run_id="run")


def test_a_clip_waits_for_its_recorder_to_cover_the_end(day_video, tmp_path):
    from edge.evidence.manager import EvidenceSink

    config = sink_config(tmp_path, {"sink": {"source": str(day_video)}})
    recorder = FakeRecorder(day_video)
    emitted, done = [], threading.Event()
    sink = EvidenceSink(config.cameras, {"sink": recorder}, emit=lambda e: (emitted.append(e), done.set()))
    try:
        sink.handle(activity("sink", "start", 1, 2.0))
        sink.handle(prediction("sink", 2.0, 2.6))
        sink.handle(activity("sink", "end", 1, 2.0, 4.0))
        sink.handle(check("sink", ["sink-handwash-1"]))
        sink.handle(prediction("sink", 5.0, 6.0))   # the predictions pass the clip's end (4 + 1 s)...
        assert recorder.asked.wait(30)
        assert emitted == []                      # ...but the recording does not cover it yet
        recorder.covered = 5.5
        sink.handle(prediction("sink", 6.0, 6.6))
        assert done.wait(30)
    finally:
        sink.close()
    [clip] = emitted
    assert clip.kind == "clip" and clip.check_id == "wash-1" and clip.rule == "wash"
    assert Path(clip.clip).name == "run-wash-1.mp4" and Path(clip.clip).is_file()
    assert 1.0 - GOP_S - 1e-6 <= clip.start_s <= 1.0 and clip.end_s >= 5.0


def test_a_rule_over_two_cameras_gets_a_clip_from_each(day_video, tmp_path):
    from edge.evidence.cut import FilePackets
    from edge.evidence.manager import EvidenceSink

    config = sink_config(tmp_path, {"a": {"source": str(day_video)}, "b": {"source": str(day_video)}})
    emitted = []
    sink = EvidenceSink(config.cameras, {name: FilePackets(day_video) for name in "ab"}, emit=emitted.append)
    sink.handle(activity("a", "start", 1, 2.0))
    sink.handle(activity("a", "end", 1, 2.0, 3.0))
    sink.handle(activity("b", "start", 1, 12.2, name="smoking"))
    sink.handle(activity("b", "end", 1, 12.2, 14.0, name="smoking"))
    sink.handle(check("a", ["a-handwash-1", "b-smoking-1"], kind="sequence", time_s=12.2))
    sink.close()
    by_camera = {clip.camera: clip for clip in emitted}
    assert set(by_camera) == {"a", "b"}
    assert Path(by_camera["a"].clip).name == "run-wash-1-a.mp4" and Path(by_camera["b"].clip).name == "run-wash-1-b.mp4"
    assert by_camera["a"].start_s <= 1.0 and by_camera["a"].end_s < 6.0    # a's segment, not b's
    assert 11.2 - GOP_S - 1e-6 <= by_camera["b"].start_s <= 11.2 and by_camera["b"].end_s >= 15.0


def test_a_live_camera_without_a_recorder_gets_no_clip(tmp_path, caplog):
    from edge.evidence.manager import EvidenceSink

    import logging

    from edge.evidence import manager

    class Lines(logging.Handler):   # the module's own logger: another test's CLI may stop propagation
        def __init__(self):
            super().__init__(logging.DEBUG)
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    lines = Lines()
    manager.log.addHandler(lines)
    level = manager.log.level
    manager.log.setLevel(logging.WARNING)  # whatever level an earlier test left on a parent logger
    try:
        config = sink_config(tmp_path, {"door": {"source": "rtsp://127.0.0.1:1/x"}})
        emitted = []
        sink = EvidenceSink(config.cameras, {}, emit=emitted.append)
        for number in (1, 2):
            sink.handle(activity("door", "start", number, 2.0))
            sink.handle(activity("door", "end", number, 2.0, 3.0))
            sink.handle(check("door", [f"door-handwash-{number}"], number=number))
        sink.close()
    finally:
        manager.log.removeHandler(lines)
        manager.log.setLevel(level)
    assert emitted == []
    assert sum("no recording" in line for line in lines.lines) == 1


# ---------------------------------------------------------------- a scripted day, run as a file

def run_day(video, model_xml, cache, out: Path, clips: str, **evidence) -> subprocess.CompletedProcess:
    import yaml

    config = {
        "source": str(video),
        "model": {"path": str(model_xml)},
        "inference": {"cache_dir": str(cache)},
        "sampling": {"mode": "batch"},
        "output": {"events": str(out / "events.jsonl"), "progress": False},
        "evidence": {"clips": clips, "pre_s": PRE_S, "post_s": POST_S, "dir": str(out / "clips" / "{camera}"),
                     **evidence},
        "activities": ACTIVITIES_YAML,
        "rules": RULES,
    }
    (out / "cfg.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "edge", "run", "-c", str(out / "cfg.yaml")], cwd=out, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def day_run(day_video, colour_model_xml, compiled_cache, tmp_path_factory):
    """``day_run(clips)`` -> (events, out folder) of the scripted day with ``evidence.clips``."""
    done = {}

    def run(clips):
        if clips not in done:
            out = tmp_path_factory.mktemp(f"day-{clips}")
            result = run_day(day_video, colour_model_xml, compiled_cache, out, clips)
            assert result.returncode == 0, result.stderr
            lines = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()
            done[clips] = ([json.loads(line) for line in lines], out)
        return done[clips]

    return run


def lines_of(events, kind):
    return [e for e in events if e.get("event") == kind]


def test_every_failed_check_has_its_clip_snapshot_and_labels(day_run, day_video):
    events, out = day_run("failed_checks")
    checks = lines_of(events, "check")
    segments = {e["id"]: e for e in lines_of(events, "activity") if e["type"] == "end"}
    failed = [c for c in checks if c["passed"] is False]
    assert {c["rule"] for c in failed} == {"wash-20s", "no-smoking"} and len(failed) == 2
    assert any(c["passed"] is True for c in checks)            # the long wash: no clip
    clips = lines_of(events, "clip")
    assert sorted(c["check_id"] for c in clips) == sorted(c["id"] for c in failed)
    source = media_packets(day_video)
    colours = script_frames(DAY)
    for check in failed:
        [clip] = [c for c in clips if c["check_id"] == check["id"]]
        assert events.index(clip) > events.index(check)
        assert clip["rule"] == check["rule"] and clip["camera"] == check["camera"] == "day"
        run_id = check["run_id"]
        name = f"{run_id}-{check['id']}"
        path = Path(clip["clip"])
        assert path.name == f"{name}.mp4" and path.parent.parent == out / "clips" / "day"
        assert Path(clip["snapshot"]) == path.with_suffix(".jpg") and Path(clip["vtt"]) == path.with_suffix(".vtt")
        assert clip["clip_url"] == f"/clips/day/{path.parent.name}/{name}.mp4"
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert sidecar["id"] == name and sidecar["passed"] is False and sidecar["rule"] == check["rule"]
        assert sidecar["clip"] == f"{path.parent.name}/{name}.mp4" and sidecar["start_s"] == clip["start_s"]

        # the span: the judged segment, pre_s before and post_s after, cut at a keyframe
        [segment] = [segments[i] for i in check["activity_ids"]]
        want_start = max(0.0, segment["start_time_s"] - PRE_S)
        want_end = segment["end_time_s"] + POST_S
        assert want_start - GOP_S - 1e-6 <= clip["start_s"] <= want_start + 1e-6
        frames = decoded_frames(path)
        duration = frames[-1][0] + FRAME_S
        assert abs(duration - (want_end - want_start)) <= GOP_S + FRAME_S
        with av.open(str(path)) as container:
            assert container.streams.video[0].codec_context.name == "h264"

        # bit for bit the source's packets
        _, expected = source_slice(source, clip["start_s"], want_end)
        assert [data for *_, data in media_packets(path)] == [data for *_, data in expected]

        # the frames at the failure time show the scripted colour (red wash, green smoking)
        expected_colour = colours[round(check["time_s"] * FPS)]
        assert expected_colour == ("red" if check["rule"] == "wash-20s" else "green")
        relative = check["time_s"] - clip["start_s"]
        [(_, image)] = [(t, im) for t, im in frames if abs(t - relative) < FRAME_S / 2]
        assert close_to(expected_colour, mean_colour(image[:40, 100:]))
        snapshot = __import__("cv2").imread(str(path.with_suffix(".jpg")))
        assert snapshot.shape == (120, 160, 3)
        assert close_to(expected_colour, mean_colour(snapshot[80:, :]), tolerance=30)

        # the labels: WebVTT, timed from the clip's first frame
        vtt = path.with_suffix(".vtt").read_text()
        assert vtt.startswith("WEBVTT\n")
        label = "washing hands" if check["rule"] == "wash-20s" else "smoking"
        cue = vtt_cue_at(vtt, relative)
        assert cue is not None and label in cue


def vtt_cue_at(text: str, time_s: float) -> str | None:
    for block in text.split("\n\n")[1:]:
        lines = block.strip().splitlines()
        if len(lines) < 3:
            continue
        start, _, end = lines[1].partition(" --> ")
        end = end.split(" ")[0]
        seconds = [sum(float(p) * m for p, m in zip(value.split(":"), (3600, 60, 1))) for value in (start, end)]
        if seconds[0] <= time_s < seconds[1]:
            return "\n".join(lines[2:])
    return None


def test_clips_activities_makes_one_per_segment(day_run):
    events, out = day_run("activities")
    ends = [e for e in lines_of(events, "activity") if e["type"] == "end"]
    clips = lines_of(events, "clip")
    assert len(ends) == 3
    assert sorted(c["activity_id"] for c in clips) == sorted(e["id"] for e in ends)
    assert all("check_id" not in c for c in clips)
    assert len(list((out / "clips" / "day").glob("*/*.mp4"))) == 3
    for clip in clips:
        [end] = [e for e in ends if e["id"] == clip["activity_id"]]
        assert events.index(clip) > events.index(end)


def test_clips_none_writes_nothing(day_run):
    events, out = day_run("none")
    assert lines_of(events, "clip") == [] and lines_of(events, "check")
    assert not (out / "clips").exists()


def test_an_unwritable_evidence_dir_fails_before_anything_starts(day_video, colour_model_xml, compiled_cache,
                                                                 tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = run_day(day_video, colour_model_xml, compiled_cache, tmp_path, "failed_checks",
                     dir=str(tmp_path / "file" / "{camera}"))
    assert result.returncode != 0
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert "evidence.dir" in line and "Traceback" not in result.stderr
    assert not (tmp_path / "events.jsonl").exists()


def test_a_clip_past_the_end_of_the_file_is_cut_to_its_end_and_its_line_written(colour_model_xml, compiled_cache,
                                                                                   tmp_path):
    # smoking until the file ends: the check fails at its start, the segment ends with the stream, and
    # the clip (segment + post_s) reaches past the file: it is made when the camera finishes, and its
    # line still reaches events.jsonl (the lane's writer closes after the evidence)
    video = write_h264(tmp_path / "tail.mp4", [("grey", 1.28), ("green", 1.92)])
    result = run_day(video, colour_model_xml, compiled_cache, tmp_path, "failed_checks")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    [check] = lines_of(events, "check")
    [clip] = lines_of(events, "clip")
    assert check["rule"] == "no-smoking" and check["passed"] is False and clip["check_id"] == check["id"]
    source = media_packets(video)
    assert [data for *_, data in media_packets(clip["clip"])] == [data for *_, data in source]   # all of it
    assert clip["end_s"] == pytest.approx(max(pts for pts, *_ in source) + FRAME_S)
