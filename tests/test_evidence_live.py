"""Event clips of a live camera end to end: `edge-har serve` of a scripted day streamed by ffmpeg over HTTP
(the camera's own H.264 packets, ``-c:v copy``), recorded by the tap on the inference source, cut into clips.

Oracles: the scripted colour of every frame (``support_activities``), the activity and check lines the
service wrote, the HTTP stream's source file (its GOP), PyAV decoding each clip. A live camera's times are
wall (Unix) seconds: the recorder places each packet at its arrival, the activity tracker each prediction
at its own wall time, which follows its newest frame by the decode and inference latency.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from support_activities import ACTIVITIES_YAML, COLOURS_BGR, FPS, colour_model_xml  # noqa: F401
from support_evidence import GOP, Serving, decoded_frames, mean_colour, write_h264
from support_sources import copy_stream  # noqa: F401  (fixture)
from support_web import free_port

GOP_S = GOP / FPS
FRAME_S = 1 / FPS
# a short wash (fails wash-20s), then smoking (fails no-smoking), then a long quiet tail: the stream is
# never looped while the test looks (the clips are done about 20 s in)
DAY = [("grey", 4.0), ("red", 6.0), ("grey", 3.0), ("green", 2.0), ("grey", 60.0)]
RULES = [{"name": "wash-20s", "kind": "min_duration", "activity": "handwash", "seconds": 20},
         {"name": "no-smoking", "kind": "forbidden", "activity": "smoking"}]
PRE_S, POST_S = 2.0, 1.5
LATENCY_S = 1.0   # how far a prediction's wall time may follow its frames' arrival (decode, queue, inference)
CLIP_S = 16 / FPS  # an activity starts once a clip's mean colour turns: up to a clip's frames after the colour


def close_to(colour: str, bgr, tolerance: float = 30.0) -> bool:
    return bool(np.abs(np.asarray(bgr, float) - np.asarray(COLOURS_BGR[colour], float)).max() <= tolerance)


@pytest.fixture(scope="module")
def day_ts(tmp_path_factory):
    return write_h264(tmp_path_factory.mktemp("live-day") / "day.mp4", DAY)


@pytest.fixture(scope="module")
def served(day_ts, colour_model_xml, compiled_cache, tmp_path_factory):  # noqa: F811
    """Serve the streamed day until both failed checks have their clip; (events, /api/clips items, folder)."""
    from support_sources import CopyStream, needs_ffmpeg

    needs_ffmpeg()
    stream = CopyStream(day_ts).start()
    folder = tmp_path_factory.mktemp("live-evidence")
    config = {
        "model": {"path": str(colour_model_xml)}, "inference": {"cache_dir": str(compiled_cache)},
        "http": {"enabled": True, "port": free_port()},
        "sampling": {"mode": "rolling", "stride": 4},
        "output": {"events": str(folder / "events.jsonl"), "rotate": "none", "progress": False},
        "record": {"dir": str(folder / "recordings" / "{camera}"), "segment_s": 2.0},
        "evidence": {"pre_s": PRE_S, "post_s": POST_S, "dir": str(folder / "clips" / "{camera}")},
        "activities": ACTIVITIES_YAML,
        "rules": RULES,
        "cameras": {"sink": {"source": stream.url()}},
    }
    server = Serving(config, folder, folder / "home")
    try:
        def two_listed():
            listed = server.get("/api/clips").json()
            return listed if len(listed) >= 2 else None

        items = server.wait_for(two_listed, "two clips listed", timeout_s=180)
        clip_bytes = {item["id"]: server.get(item["clip_url"]) for item in items}
        assert server.stop() == 0, server.log()[-3000:]
    finally:
        server.kill()
        stream.stop()
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines() if line.strip()]
    return events, items, clip_bytes, folder


def lines_of(events, kind):
    return [e for e in events if e.get("event") == kind]


def test_every_failed_check_of_a_live_camera_has_its_clip_snapshot_and_labels(served, day_ts):
    events, _, _, folder = served
    failed = [c for c in lines_of(events, "check") if c["passed"] is False]
    assert sorted(c["rule"] for c in failed) == ["no-smoking", "wash-20s"]
    assert all(c["time_base"] == "wall" for c in failed)
    segments = {e["id"]: e for e in lines_of(events, "activity") if e["type"] == "end"}
    clips = lines_of(events, "clip")
    assert sorted(c["check_id"] for c in clips) == sorted(c["id"] for c in failed)
    with av.open(str(day_ts)) as source:
        assert source.streams.video[0].codec_context.name == "h264"
    for check in failed:
        [clip] = [c for c in clips if c["check_id"] == check["id"]]
        assert events.index(clip) > events.index(check)
        path = Path(clip["clip"])
        assert path.is_file() and path.parent.parent == folder / "clips" / "sink"
        with av.open(str(path)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
        # the span: the judged segment from pre_s before to post_s after, cut at a keyframe of the stream
        [segment] = [segments[i] for i in check["activity_ids"]]
        want_start, want_end = segment["start_time_s"] - PRE_S, segment["end_time_s"] + POST_S
        assert want_start - GOP_S - FRAME_S <= clip["start_s"] <= want_start + FRAME_S
        frames = decoded_frames(path)
        duration = frames[-1][0] + FRAME_S
        assert abs(duration - (want_end - clip["start_s"])) <= GOP_S + FRAME_S
        # the recording is aligned with the predictions: the scripted colour starts within a clip and the
        # latency before the activity's start, and the frames up to the failure time show it
        colour = "red" if check["rule"] == "wash-20s" else "green"
        first = next(t for t, image in frames if close_to(colour, mean_colour(image[40:, :])))
        assert 0.0 <= segment["start_time_s"] - (clip["start_s"] + first) <= CLIP_S + LATENCY_S
        relative = check["time_s"] - clip["start_s"]
        near = [image for t, image in frames if relative - LATENCY_S <= t <= relative]
        assert any(close_to(colour, mean_colour(image[40:, :])) for image in near)
        # the snapshot: the best-scoring frame of the judged activity, overlay at the top
        snapshot = cv2.imread(str(path.with_suffix(".jpg")))
        assert snapshot is not None and snapshot.shape == (120, 160, 3)
        assert close_to(colour, mean_colour(snapshot[80:, :]))
        vtt = path.with_suffix(".vtt").read_text()
        assert vtt.startswith("WEBVTT\n") and ("washing hands" if colour == "red" else "smoking") in vtt


def test_the_clips_are_listed_and_served(served):
    events, items, clip_bytes, _ = served
    clips = {c["check_id"]: c for c in lines_of(events, "clip")}
    assert {item["rule"] for item in items} == {"wash-20s", "no-smoking"}
    for item in items:
        assert item["camera"] == "sink" and item["passed"] is False
        response = clip_bytes[item["id"]]
        assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
        [clip] = [c for c in clips.values() if c["clip_url"] == item["clip_url"]]
        assert response.content == Path(clip["clip"]).read_bytes()


def test_the_recordings_are_the_streams_segments(served):
    """Not continuous: only the segments clips may still need stay, each a whole, decodable MP4."""
    _, _, _, folder = served
    segments = sorted((folder / "recordings" / "sink").rglob("*.mp4"))
    assert segments
    for path in segments:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert sum(1 for _ in container.decode(stream)) > 0
