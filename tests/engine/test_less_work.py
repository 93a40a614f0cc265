"""Doing less work, end to end on real H.264 files (ffmpeg, libx264): the YUV path, the BGR path and
the still-scene gate.

Oracles: the seed's arithmetic (cv2.VideoCapture + cv2.dnn.blobFromImages + the IR in plain
OpenVINO at f32, ``test_pipeline.Reference``) for the two decode paths, and the same run with the
gate off for the gate.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from test_pipeline import Reference, centred_rel_err, expected_clips

import edge.engine.build
from edge import pipeline
from edge.config import config_from_mapping
from edge.synthetic import moving_shapes_frame

FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="needs the ffmpeg command (Debian package ffmpeg)")
WIDTH, HEIGHT = 320, 240
YUV_REL_TOL = 0.01  # the contract for the YUV path: centred-logit relative error below 1%
BGR_REL_TOL = 1e-3  # the BGR path is the seed's arithmetic (as in test_pipeline)


def encode_h264(frames, path) -> None:
    process = subprocess.Popen([FFMPEG, "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
                                "-s", f"{WIDTH}x{HEIGHT}", "-r", "25", "-i", "-", "-c:v", "libx264", "-preset",
                                "veryfast", "-crf", "20", "-g", "25", "-pix_fmt", "yuv420p", str(path)],
                               stdin=subprocess.PIPE)
    for frame in frames:
        process.stdin.write(np.ascontiguousarray(frame).tobytes())
    process.stdin.close()
    assert process.wait(60) == 0


@pytest.fixture(scope="module")
def h264_moving(tmp_path_factory):
    path = tmp_path_factory.mktemp("h264") / "moving.mp4"
    encode_h264((moving_shapes_frame(i, WIDTH, HEIGHT, seed=7) for i in range(40)), path)
    return path


@pytest.fixture(scope="module")
def h264_still_then_moving(tmp_path_factory):
    """48 frames of one still scene with sensor noise (σ 3), then 32 frames of a large moving block."""
    rng = np.random.default_rng(0)
    still = moving_shapes_frame(0, WIDTH, HEIGHT, seed=9).astype(np.float64)
    frames = [np.clip(still + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8) for _ in range(48)]
    for step in range(32):
        frame = still.astype(np.uint8).copy()
        x = 20 + 6 * step
        frame[60:180, x:x + 80] = (40, 200, 240)
        frames.append(frame)
    path = tmp_path_factory.mktemp("h264") / "still-then-moving.mp4"
    encode_h264(frames, path)
    return path


def run_events(tmp_path, name, source, demo_xml, compiled_cache, **output):
    out = tmp_path / name
    config = {"source": str(source), "model": {"path": str(demo_xml)},
              "inference": {"precision": "f32", "cache_dir": str(compiled_cache)},
              "gating": {"min_motion": output.pop("min_motion", 0.0)},
              "output": {"events": str(out / "events.jsonl"), "include_scores": True, "progress": False,
                         **{key: str(out / value) if value else value for key, value in output.items()}}}
    result = pipeline.run(config_from_mapping(config))
    assert result.exit_code == 0
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()], result


class PathSpy:
    """Counts which ring entry the lane used: BGR frames (push) or decoder planes (push_yuv)."""

    def __init__(self, monkeypatch):
        self.calls = {"push": 0, "push_yuv": 0}
        ring = edge.engine.build.ClipRing
        for name in self.calls:
            original = getattr(ring, name)

            def spy(ring_self, *args, _original=original, _name=name):
                self.calls[_name] += 1
                return _original(ring_self, *args)

            monkeypatch.setattr(ring, name, spy)


@pytest.mark.parametrize("path, video", [("yuv", None), ("bgr", "annotated.mp4")])
def test_both_decode_paths_match_the_seed_pipeline(path, video, tmp_path, demo_xml, compiled_cache, h264_moving,
                                                     monkeypatch):
    """No video out: the decoder's planes go straight into the ring; with video out: BGR frames. Both agree
    with cv2 decode + blobFromImages + OpenVINO f32 (the seed's pipeline) on a real H.264 file."""
    spy = PathSpy(monkeypatch)
    events, _ = run_events(tmp_path, path, h264_moving, demo_xml, compiled_cache, video=video)
    if path == "yuv":
        assert spy.calls == {"push": 0, "push_yuv": 40}
    else:
        assert spy.calls == {"push": 40, "push_yuv": 0}
    reference = Reference(demo_xml)
    clips = expected_clips(40, "batch")
    assert len(events) == len(clips)
    tolerance = YUV_REL_TOL if path == "yuv" else BGR_REL_TOL
    errors = []
    for event, frames in zip(events, clips):
        want = reference.log_probs(h264_moving, frames)
        errors.append(centred_rel_err(np.log(np.asarray(event["scores"], np.float64)), want))
    assert max(errors) < tolerance, errors


def test_still_clips_are_gated_and_the_rest_equal_the_ungated_run(tmp_path, demo_xml, compiled_cache,
                                                                   h264_still_then_moving):
    gated, gated_result = run_events(tmp_path, "gated", h264_still_then_moving, demo_xml, compiled_cache,
                                     min_motion=0.3)
    plain, _ = run_events(tmp_path, "plain", h264_still_then_moving, demo_xml, compiled_cache)
    assert [e["clip_index"] for e in gated] == [e["clip_index"] for e in plain] == list(range(5))
    # frames 0-47 are still (batch clips 0, 1, 2); frames 48-79 move (clips 3, 4)
    assert [bool(e.get("gated")) for e in gated] == [True, True, True, False, False]
    for event in gated[:3]:
        assert event["label"] is None and event["score"] is None and event["top_k"] == []
        assert event["latency_ms"]["infer"] is None
    for got, want in zip(gated[3:], plain[3:]):
        assert got["label"] == want["label"]
        np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-6, rtol=0)
    assert not any(e.get("gated") for e in plain)
    assert gated_result.summary["gated_clips"] == 3 and gated_result.summary["clips"] == 5
