"""Bad input and faults, through the real ``edge-har`` command where the user sees the behaviour.

Bad input: one line ``edge-har: error: ...`` naming the file, key or frame, exit status 2, no
traceback. Faults (a dropped stream, SIGINT/SIGTERM, ``kill -9``): what was produced is kept.
The README's "Failure behaviour" table maps each case to its test here.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import free_port
import edge.sources
import edge.sources.pyav
from edge import pipeline
from edge.config import load_config
from edge.sources import DEFAULT_FPS, Source
from edge.synthetic import moving_shapes_frame, write_moving_shapes_video

EDGE_HAR = [sys.executable, "-m", "edge"]
QUICK_S = 60  # bound on any one command that should end by itself


# ---------------------------------------------------------------- helpers

@pytest.fixture
def cli(demo_xml, demo_home, compiled_cache, tmp_path):
    """``cli(*args)`` runs ``edge-har run`` on the demo model with outputs in ``tmp_path/out``."""

    def run(*args, outputs=True, model=True, timeout=QUICK_S, command="run"):
        argv = [*EDGE_HAR, command, *args]
        if model:
            argv += ["--model", str(demo_xml), "--set", f"inference.cache_dir={compiled_cache}"]
        if outputs:
            argv += out_args(tmp_path / "out")
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=cli_env(demo_home),
                              cwd=tmp_path)

    return run


def cli_env(demo_home) -> dict:
    return {**os.environ, "EDGE_HAR_HOME": str(demo_home)}


def out_args(out: Path) -> list[str]:
    return ["--events", str(out / "events.jsonl"), "--summary", str(out / "summary.json"),
            "--output-video", str(out / "annotated.mp4"), "--set", "output.progress=false"]


def assert_user_error(result, *names: str) -> str:
    """Non-zero exit, no traceback, exactly one ``edge-har: error:`` line (the last), naming ``names``."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("edge-har: error:")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip("\n").splitlines()[-1] == errors[0], result.stderr
    for name in names:
        assert name in errors[0], (name, errors[0])
    return errors[0]


def read_events(path: Path) -> list[dict]:
    """Every line of events.jsonl as JSON (a line that does not parse fails the test)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def predictions(events: list[dict]) -> list[dict]:
    return [event for event in events if "event" not in event]


def count_video_frames(path: Path) -> int:
    """Reopen a video and decode it to the end: the container is finalised and playable."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert capture.isOpened(), f"{path} does not open"
    frames = 0
    while frames < 100_000:
        ok, _ = capture.read()
        if not ok:
            break
        frames += 1
    capture.release()
    return frames


def wait_for(predicate, timeout_s: float, what: str, step_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(step_s)


def line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_exit(process: subprocess.Popen, timeout_s: float) -> int:
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        raise AssertionError(f"edge-har did not exit within {timeout_s} s")


def start_cli(demo_xml, demo_home, compiled_cache, cwd: Path, *args) -> tuple[subprocess.Popen, Path]:
    """``edge-har run`` in the background; stderr goes to a file the test can read while it runs."""
    stderr_path = cwd / "stderr.txt"
    argv = [*EDGE_HAR, "run", "--model", str(demo_xml), "--set", f"inference.cache_dir={compiled_cache}",
            *out_args(cwd / "out"), *args]
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr, cwd=cwd,
                                   env=cli_env(demo_home))
    return process, stderr_path


# ---------------------------------------------------------------- bad sources

def test_missing_file(cli, tmp_path):
    assert_user_error(cli("--source", "nope.mp4"), "video file not found", "nope.mp4")


def test_not_a_video(cli, tmp_path):
    (tmp_path / "notes.mp4").write_bytes(np.random.default_rng(0).bytes(20_000))
    result = cli("--source", "notes.mp4")
    assert_user_error(result, "cannot open video", "notes.mp4")
    assert "moov atom" not in result.stderr  # FFmpeg's own chatter stays out of the way (shown with -v)


def test_zero_frame_video(cli, tmp_path):
    write_moving_shapes_video(tmp_path / "empty.avi", 0, 160, 120, codec="MJPG")
    assert_user_error(cli("--source", "empty.avi"), "video has no frames", "empty.avi")


def test_truncated_video_keeps_what_decodes(cli, tmp_path):
    full = write_moving_shapes_video(tmp_path / "full.avi", 60, 160, 120, codec="MJPG")
    data = full.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    result = cli("--source", "cut.avi")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    decoded = summary["frames"]
    assert 10 < decoded < 60
    warning = f"cut.avi: stopped decoding at frame {decoded} of 60 (truncated or corrupt video)"
    assert warning in result.stderr and warning in summary["warnings"]
    events = read_events(tmp_path / "out/events.jsonl")
    assert len(events) == math.ceil(decoded / 16)
    assert events[-1]["end_frame"] == decoded - 1
    assert count_video_frames(tmp_path / "out/annotated.mp4") == decoded


def test_shorter_than_one_clip_gives_one_loop_padded_prediction(cli, tmp_path, moving_shapes_video):
    result = cli("--source", str(moving_shapes_video(5, 160, 120)))
    assert result.returncode == 0, result.stderr
    (event,) = read_events(tmp_path / "out/events.jsonl")
    assert (event["start_frame"], event["end_frame"]) == (0, 4)
    assert count_video_frames(tmp_path / "out/annotated.mp4") == 5


def test_frames_smaller_than_the_model_input(cli, tmp_path, moving_shapes_video):
    result = cli("--source", str(moving_shapes_video(40, 64, 48)))
    assert result.returncode == 0, result.stderr
    assert len(read_events(tmp_path / "out/events.jsonl")) == 3  # ceil(40 / 16)
    capture = cv2.VideoCapture(str(tmp_path / "out/annotated.mp4"))
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (64, 48)
    capture.release()
    assert count_video_frames(tmp_path / "out/annotated.mp4") == 40


@pytest.mark.skipif(not __import__("shutil").which("ffmpeg"), reason="needs the ffmpeg command")
def test_resolution_change_in_a_real_stream_file(cli, tmp_path, moving_shapes_video):
    """Two MPEG-TS files of different sizes, concatenated byte for byte (as a recorder that restarts does)."""
    parts = []
    for frames, (width, height) in ((20, (160, 120)), (30, (64, 48))):
        part = tmp_path / f"{width}.ts"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i",
                        str(moving_shapes_video(frames, width, height)), "-c:v", "mpeg2video", "-f", "mpegts",
                        str(part)], check=True, timeout=QUICK_S)
        parts.append(part.read_bytes())
    (tmp_path / "both.ts").write_bytes(b"".join(parts))
    result = cli("--source", "both.ts")
    assert result.returncode == 0, result.stderr
    frames = json.loads((tmp_path / "out/summary.json").read_text())["frames"]
    assert frames >= 45
    assert len(read_events(tmp_path / "out/events.jsonl")) == math.ceil(frames / 16)
    assert count_video_frames(tmp_path / "out/annotated.mp4") == frames


class SizeChangingSource(Source):
    """A source whose frames change size twice mid-stream (a decoder would rescale a file itself).
    Not live (the config says so: the camera's resolved ``live`` is what every part reads), so the lane
    keeps every frame and the clip plan is exact."""

    SIZES = [(160, 120)] * 20 + [(64, 48)] * 20 + [(320, 240)] * 10

    def __init__(self):
        super().__init__("size-changing", live=False)
        self._size = self.SIZES[0]
        self._next = 0

    def __next__(self):
        if self._next >= len(self.SIZES):
            raise StopIteration
        index, (width, height) = self._next, self.SIZES[self._next]
        self._next += 1
        self._size = (width, height)
        from edge.records import Frame

        return Frame(index=index, time_s=index / DEFAULT_FPS, image=moving_shapes_frame(index, width, height))

    def request_stop(self):
        self._next = len(self.SIZES)

    def close(self):
        pass


def _config(tmp_path, demo_xml, compiled_cache, *overrides):
    out = tmp_path / "out"
    return load_config(None, [f"model.path={demo_xml}", f"inference.cache_dir={compiled_cache}",
                              f"output.events={out / 'events.jsonl'}", f"output.video={out / 'annotated.mp4'}",
                              f"output.summary={out / 'summary.json'}", "output.progress=false", *overrides])


def test_resolution_change_mid_stream(tmp_path, demo_xml, compiled_cache, monkeypatch):
    monkeypatch.setattr(edge.sources, "open_source", lambda spec, **options: SizeChangingSource())
    result = pipeline.run(_config(tmp_path, demo_xml, compiled_cache, "source=rtsp://127.0.0.1/fake",
                                         "reconnect.live=false"), keep_predictions=True)
    assert result.exit_code == 0
    assert [(p.clip.start_frame, p.clip.end_frame) for p in result.predictions] == [(0, 15), (16, 31), (32, 47),
                                                                                    (48, 49)]
    assert len(read_events(tmp_path / "out/events.jsonl")) == 4
    capture = cv2.VideoCapture(str(tmp_path / "out/annotated.mp4"))
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (160, 120)
    capture.release()
    assert count_video_frames(tmp_path / "out/annotated.mp4") == 50


class _NanFpsConnection(edge.sources.pyav.PyAVConnection):
    """A real decoder connection whose container reports fps NaN and no timestamps, like a broken one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reported_fps = float("nan")
        self._time_base = None  # no pts to trust: media time falls back to index / fps


def test_fps_nan_falls_back_and_the_summary_says_so(tmp_path, demo_xml, compiled_cache, moving_shapes_video,
                                                    monkeypatch):
    video = moving_shapes_video(20, 96, 64)
    monkeypatch.setattr(edge.sources.pyav, "PyAVConnection", _NanFpsConnection)
    result = pipeline.run(_config(tmp_path, demo_xml, compiled_cache, f"source={video}"), keep_predictions=True)
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    assert summary["input_fps"] == DEFAULT_FPS
    assert any("fps reported as nan" in warning for warning in summary["warnings"])
    # Media times come from the fallback: frame 19 is at 19 / 25 s.
    assert result.predictions[-1].clip.end_time_s == pytest.approx(19 / DEFAULT_FPS)
    capture = cv2.VideoCapture(str(tmp_path / "out/annotated.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(DEFAULT_FPS)
    capture.release()


def test_camera_that_does_not_exist(cli):
    assert_user_error(cli("--source", "63"), "cannot open camera 63")


def test_url_that_refuses(cli):
    url = f"http://127.0.0.1:{free_port()}/x.ts"
    started = time.monotonic()
    result = cli("--source", url)
    assert_user_error(result, "cannot open stream", url, "connection refused")
    assert time.monotonic() - started < 30


# ---------------------------------------------------------------- bad config

@pytest.mark.parametrize("body, fragments", [
    ("sampling:\n  mode: batch\n   clip_len: 16\n", ["config.yaml:3:", "YAML syntax error"]),
    ("sampling:\n  clip_lenn: 8\n", ["config.yaml: sampling.clip_lenn: unknown key", "did you mean 'clip_len'?"]),
    ("sampling:\n  clip_len: eight\n", ["config.yaml: sampling.clip_len: expected an integer", "'eight'"]),
    ("postprocess:\n  threshold: 1.5\n", ["config.yaml: postprocess.threshold: must be a number from 0.0 to 1.0"]),
])
def test_config_mistakes(cli, tmp_path, body, fragments):
    (tmp_path / "config.yaml").write_text(body)
    assert_user_error(cli("-c", "config.yaml", outputs=False, model=False), *fragments)


def test_set_mistake_names_the_key(cli):
    assert_user_error(cli("--set", "reconnect.attempts=-1", outputs=False, model=False),
                      "--set reconnect.attempts", "≥ 0")


# ---------------------------------------------------------------- bad models

def test_missing_model(cli):
    assert_user_error(cli("--model", "nope.xml", model=False), "model not found: nope.xml")


def _image_classifier_onnx(path: Path) -> Path:
    """A 2-D image classifier (1×3×224×224 → 10 classes) built with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 224, 224])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])
    weights = numpy_helper.from_array(np.zeros((10, 3), np.float32), "weights")
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("Gemm", ["flat", "weights"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "image-classifier", [image], [logits], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_image_classifier_is_not_a_clip_model(cli, tmp_path):
    _image_classifier_onnx(tmp_path / "resnet50.onnx")
    assert_user_error(cli("--model", "resnet50.onnx", model=False), "resnet50.onnx",
                      "expected a 5-D clip input", "1×3×224×224")


def test_labels_of_the_wrong_length(cli, tmp_path):
    (tmp_path / "labels.txt").write_text("".join(f"action {i}\n" for i in range(7)))
    assert_user_error(cli("--set", "model.labels=labels.txt"), "400 classes", "labels.txt has 7 labels")


def test_corrupt_weights_file(cli, tmp_path, demo_xml):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.xml").write_bytes(Path(demo_xml).read_bytes())
    (broken / "model.bin").write_bytes(Path(demo_xml).with_suffix(".bin").read_bytes()[:100_000])
    assert_user_error(cli("--model", "broken/model.xml", model=False), "broken/model.xml", "corrupt",
                      "Incorrect weights in bin file")


# ---------------------------------------------------------------- bad outputs

def test_unwritable_output_fails_before_any_work(cli, tmp_path, moving_shapes_video):
    (tmp_path / "taken").write_text("a file where a directory should be\n")
    started = time.monotonic()
    result = cli("--source", str(moving_shapes_video(40, 64, 48)), "--events", "taken/events.jsonl",
                 "--output-video", "taken/annotated.mp4", outputs=False)
    elapsed = time.monotonic() - started
    assert_user_error(result, "taken")
    assert "untrained demo model" not in result.stderr  # no run started
    assert elapsed < 15
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.parametrize("flag", ["--output-video", "--events", "--summary"])
def test_output_equal_to_input_is_refused(cli, tmp_path, moving_shapes_video, flag):
    video = tmp_path / "kitchen.mp4"
    video.write_bytes(moving_shapes_video(20, 64, 48).read_bytes())
    before = video.read_bytes()
    assert_user_error(cli("--source", "kitchen.mp4", flag, "./kitchen.mp4", outputs=False), "kitchen.mp4",
                      "is the input video")
    assert video.read_bytes() == before


# ---------------------------------------------------------------- faults: a stream that drops

def test_stream_drop_reconnects_marks_the_gap_and_carries_on(tmp_path, ffmpeg_stream, demo_xml, demo_home,
                                                             compiled_cache, moving_shapes_video):
    server = ffmpeg_stream(moving_shapes_video(50, 160, 120))
    events_path = tmp_path / "out/events.jsonl"
    process, stderr_path = start_cli(
        demo_xml, demo_home, compiled_cache, tmp_path, "--source", server.url(),
        "--set", "reconnect.delay_s=0.2", "--set", "reconnect.max_delay_s=0.4", "--set", "reconnect.attempts=4")
    try:
        wait_for(lambda: line_count(events_path) >= 2 or process.poll() is not None, 60, "two predictions")
        server.stop()  # the stream drops mid-run
        time.sleep(0.5)
        server.start()  # and comes back
        wait_for(lambda: '"event": "gap"' in events_path.read_text() or process.poll() is not None, 30,
                 "the gap event")
        gap_line = line_count(events_path)
        wait_for(lambda: line_count(events_path) >= gap_line + 2 or process.poll() is not None, 60,
                 "predictions after the gap")
        server.stop()  # gone for good: 4 attempts, then the run ends by itself
        status = wait_exit(process, 60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    stderr = stderr_path.read_text()
    assert status == 3, stderr  # EXIT_SOURCE_LOST: the stream was given up on, for a supervisor to restart
    assert "Traceback" not in stderr
    assert "reconnecting in 0.2 s (attempt 1/4)" in stderr and "reconnected after" in stderr
    assert "gave up after 4 reconnection attempts" in stderr
    events = read_events(events_path)
    gaps = [index for index, event in enumerate(events) if event.get("event") == "gap"]
    assert len(gaps) == 2, events  # the drop we healed, then the one we gave up on
    first_gap, last_gap = events[gaps[0]], events[gaps[1]]
    assert first_gap["source"] == server.url() and first_gap["gap_s"] > 0
    assert "gave up" in last_gap["reason"] and gaps[1] == len(events) - 1
    before, after = predictions(events[:gaps[0]]), predictions(events[gaps[0]:])
    assert len(before) >= 2 and len(after) >= 2
    assert after[0]["start_frame"] > before[-1]["end_frame"] >= first_gap["after_frame"] - 16
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    assert summary["reconnects"] >= 1 and summary["clips"] == len(predictions(events))
    assert any("gave up after 4" in warning for warning in summary["warnings"])


# ---------------------------------------------------------------- faults: signals

@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_finishes_cleanly(tmp_path, demo_xml, demo_home, compiled_cache, moving_shapes_video, signum, status):
    events_path = tmp_path / "out/events.jsonl"
    process, stderr_path = start_cli(demo_xml, demo_home, compiled_cache, tmp_path,
                                     "--source", str(moving_shapes_video(1500, 160, 120)))
    try:
        wait_for(lambda: line_count(events_path) >= 2 or process.poll() is not None, 60, "two predictions")
        assert process.poll() is None, stderr_path.read_text()
        process.send_signal(signum)
        assert wait_exit(process, 30) == status, stderr_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    stderr = stderr_path.read_text()
    assert "Traceback" not in stderr and f"{signal.Signals(signum).name}: finishing in-flight clips" in stderr
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    assert summary["interrupted_by"] == signal.Signals(signum).name
    assert 0 < summary["frames"] < 1500
    events = read_events(events_path)
    assert len(events) == summary["clips"] >= 2
    assert count_video_frames(tmp_path / "out/annotated.mp4") == summary["frames"]


def test_second_signal_exits_at_once(tmp_path, ffmpeg_stream, demo_xml, demo_home, compiled_cache,
                                     moving_shapes_video):
    """A stalled stream keeps the first SIGTERM waiting on a blocked read; the second one ends it now."""
    server = ffmpeg_stream(moving_shapes_video(50, 160, 120))
    events_path = tmp_path / "out/events.jsonl"
    process, stderr_path = start_cli(demo_xml, demo_home, compiled_cache, tmp_path, "--source", server.url())
    try:
        wait_for(lambda: line_count(events_path) >= 1 or process.poll() is not None, 60, "a prediction")
        server.process.send_signal(signal.SIGSTOP)  # the connection stays open, no more bytes come
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: "SIGTERM: finishing" in stderr_path.read_text(), 10, "the first signal's message")
        time.sleep(1.0)
        assert process.poll() is None, "the stalled read should still hold the first SIGTERM"
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert wait_exit(process, 10) == 143
        assert time.monotonic() - started < 3
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        server.process.send_signal(signal.SIGCONT)
    assert "Traceback" not in stderr_path.read_text()
    assert len(read_events(events_path)) >= 1


# ---------------------------------------------------------------- faults: kill -9 and restarts

def test_events_survive_kill_9_and_a_restart_appends(tmp_path, demo_xml, demo_home, compiled_cache,
                                                     moving_shapes_video, cli):
    events_path = tmp_path / "out/events.jsonl"
    process, _ = start_cli(demo_xml, demo_home, compiled_cache, tmp_path,
                           "--source", str(moving_shapes_video(1500, 160, 120)))
    try:
        wait_for(lambda: line_count(events_path) >= 3 or process.poll() is not None, 60, "three predictions")
        process.kill()  # SIGKILL: no handler, no flush, no finalisation
        assert process.wait(10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    crashed = events_path.read_bytes()
    assert crashed.endswith(b"\n")
    first_run = read_events(events_path)  # every line parses
    assert len(first_run) >= 3

    short = str(moving_shapes_video(20, 64, 48))
    assert cli("--source", short).returncode == 0  # same events path: appended
    after_restart = events_path.read_bytes()
    assert after_restart.startswith(crashed)
    assert len(read_events(events_path)) == len(first_run) + 2  # ceil(20 / 16)

    assert cli("--source", short, "--set", "output.overwrite=true").returncode == 0
    assert len(read_events(events_path)) == 2
