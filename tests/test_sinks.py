import json
import os

import cv2
import numpy as np
import pytest

from edge.events import GapEvent, PredictionEvent, StatusEvent
from edge.records import Clip, Prediction, StageLatency
from edge.sinks import (EventWriter, SinkError, VideoSink, WindowSink, check_writable, format_summary,
                        write_summary)
from edge.synthetic import moving_shapes_frame, read_frame_marker, write_moving_shapes_video

DESIGN_KEYS = ["source", "clip_index", "start_frame", "end_frame", "start_time_s", "end_time_s",
               "wall_time", "label", "score", "top_k", "latency_ms", "model", "untrained"]


def _prediction(clip_index=0, num_classes=400):
    probabilities = np.random.default_rng(clip_index).dirichlet(np.ones(num_classes)).astype(np.float32)
    order = np.argsort(-probabilities)[:5]
    top_k = tuple((f"label{i}", float(probabilities[i])) for i in order)
    clip = Clip(clip_index=clip_index, frame_indices=tuple(range(clip_index * 16, clip_index * 16 + 16)),
                start_time_s=clip_index * 0.64, end_time_s=clip_index * 0.64 + 0.6)
    return Prediction(clip=clip, label=top_k[0][0], score=top_k[0][1], top_k=top_k,
                      probabilities=probabilities, latency=StageLatency(1.5, 40.25, 0.125, 60.0),
                      wall_time="2024-05-01T12:00:00.000+02:00")


class _Writer(EventWriter):
    """An EventWriter fed with one camera's predictions and gaps, as its lane makes their events."""

    def __init__(self, path, *, source_name="cam", model_name="resnet34-kinetics", untrained=True,
                 include_scores=False, **options):
        super().__init__(path, **options)
        self.event_options = dict(camera=None, source=source_name, model=model_name, untrained=untrained,
                                  include_scores=include_scores)

    def write(self, prediction):
        super().write(PredictionEvent.of(prediction, **self.event_options))

    def write_gap(self, gap=None, *, after_frame=None, seconds=None, reason=None):
        if gap is None:
            from edge.sources import Gap
            gap = Gap(after_frame_index=after_frame, seconds=seconds, reason=reason)
        super().write(GapEvent.of(gap, camera=None, source=self.event_options["source"]))


def _writer(path, **kwargs):
    return _Writer(path, **kwargs)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_event_lines_have_exactly_the_design_keys_and_are_readable_while_open(tmp_path):
    path = tmp_path / "events.jsonl"
    with _writer(path) as writer:
        for index in range(3):
            writer.write(_prediction(index))
            # Another process reading now sees every line whole.
            assert len(_lines(path)) == index + 1
    events = _lines(path)
    assert [list(e) for e in events] == [DESIGN_KEYS] * 3
    first = events[0]
    assert first["source"] == "cam" and first["model"] == "resnet34-kinetics" and first["untrained"] is True
    assert (first["clip_index"], first["start_frame"], first["end_frame"]) == (0, 0, 15)
    assert events[2]["start_frame"] == 32 and events[2]["start_time_s"] == pytest.approx(1.28)
    assert list(first["latency_ms"]) == ["preprocess", "infer", "postprocess", "end_to_end"]
    assert first["latency_ms"]["infer"] == 40.25
    assert [list(item) for item in first["top_k"]] == [["label", "score"]] * 5
    assert first["label"] == first["top_k"][0]["label"]
    assert first["score"] == pytest.approx(float(_prediction(0).score), rel=1e-7)


def test_include_scores_writes_all_probabilities_exactly(tmp_path):
    path = tmp_path / "events.jsonl"
    with _writer(path, include_scores=True) as writer:
        writer.write(_prediction(7))
    event = _lines(path)[0]
    assert list(event) == DESIGN_KEYS + ["scores"]
    scores = np.array(event["scores"], dtype=np.float32)
    assert scores.shape == (400,)
    assert np.array_equal(scores, _prediction(7).probabilities)  # float32 round-trips exactly


def test_append_by_default_overwrite_on_request(tmp_path):
    path = tmp_path / "events.jsonl"
    with _writer(path) as writer:
        writer.write(_prediction(0))
    with _writer(path) as writer:
        writer.write(_prediction(1))
    assert [e["clip_index"] for e in _lines(path)] == [0, 1]
    with _writer(path, overwrite=True) as writer:
        writer.write(_prediction(2))
    assert [e["clip_index"] for e in _lines(path)] == [2]


def test_append_after_a_cut_line_starts_on_a_new_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"clip_index": 0}\n{"clip_ind')  # an older writer died mid-line
    with _writer(path, fsync=True) as writer:
        writer.write(_prediction(1))
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["clip_index"] == 1


def test_gap_line(tmp_path):
    path = tmp_path / "events.jsonl"
    with _writer(path) as writer:
        writer.write(_prediction(0))
        writer.write_gap(after_frame=15, seconds=3.25, reason="stream ended or read failed")
        writer.write(_prediction(1))
    events = _lines(path)
    gap = events[1]
    assert gap["event"] == "gap" and gap["after_frame"] == 15 and gap["gap_s"] == 3.25
    assert gap["source"] == "cam" and gap["reason"] and gap["wall_time"]
    assert "event" not in events[0] and "event" not in events[2]


def test_the_sink_writes_lines_and_not_status(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as writer:
        prediction = PredictionEvent.of(_prediction(0), camera="door", source="cam", model="m", untrained=False)
        writer.handle(prediction.stamped("run-1"))
        writer.handle(StatusEvent(camera="door", state="online", wall_time="t", run_id="run-1"))
    [line] = _lines(path)
    assert list(line) == DESIGN_KEYS + ["camera", "run_id"]
    assert (line["camera"], line["run_id"]) == ("door", "run-1")


def test_event_writer_refuses_an_unwritable_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="cannot write events"):
        _writer(blocker / "events.jsonl")


def _count_frames(path):
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert capture.isOpened()
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def test_video_sink_writes_a_playable_file_with_every_frame(tmp_path):
    # OpenCV's FFmpeg reads it back: the old pipeline's readers keep working (see test_video_sink.py).
    path = tmp_path / "annotated.mp4"
    sink = VideoSink(path, fps=25.0, size=(160, 120))
    for index in range(23):
        sink.write(moving_shapes_frame(index, 160, 120))
    sink.close()
    sink.close()  # idempotent
    frames = _count_frames(path)
    assert len(frames) == 23 and sink.frames_written == 23
    assert frames[0].shape == (120, 160, 3)
    assert [read_frame_marker(f) for f in frames] == list(range(23))
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
    capture.release()


def test_video_sink_resizes_frames_of_another_size(tmp_path):
    path = tmp_path / "annotated.mp4"
    with VideoSink(path, fps=10.0, size=(128, 96)) as sink:
        sink.write(moving_shapes_frame(0, 128, 96))
        sink.write(moving_shapes_frame(1, 320, 240))  # resolution change mid-stream
        sink.write(np.zeros((50, 60), np.uint8))      # grey
    frames = _count_frames(path)
    assert [f.shape for f in frames] == [(96, 128, 3)] * 3
    assert sink.frames_resized == 2
    with pytest.raises(SinkError):
        sink.write(moving_shapes_frame(2, 128, 96))


def test_video_sink_bad_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match="cannot create output directory"):
        VideoSink(blocker / "dir" / "x.mp4", fps=25.0, size=(64, 48))


def test_window_sink_on_headless_opencv_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError, match="output.display: false") as caught:
        WindowSink("edge-har")
    assert "\n" not in str(caught.value)
    monkeypatch.setenv("DISPLAY", ":99")
    if "GUI:                           NONE" in cv2.getBuildInformation():
        with pytest.raises(SinkError, match="opencv-python-headless"):
            WindowSink("edge-har")


def test_summary_write_then_read(tmp_path):
    summary = {"source": "sample.mp4", "model": "resnet34-kinetics", "untrained": True, "device": "CPU",
               "precision": "bf16", "frames": 175, "clips": 11, "skipped_clips": 0, "input_fps": 25.0,
               "processing_fps": 61.5, "elapsed_s": 2.85,
               "latency_ms": {"inference": {"p50": 40.0, "p90": 45.0, "p99": 50.0, "max": 52.0, "count": 11},
                              "decode": {"p50": None, "count": 0}}}
    path = write_summary(tmp_path / "out" / "summary.json", summary)
    assert json.loads(path.read_text()) == summary
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]  # no temp file left
    write_summary(path, {"frames": 1})
    assert json.loads(path.read_text()) == {"frames": 1}
    text = format_summary(summary)
    assert "175 frames, 11 clips from sample.mp4" in text
    assert "untrained demo model" in text and "CPU, bf16" in text
    assert "input 25.0 fps, processing 61.5 fps" in text
    assert "inference" in text and "decode" not in text  # empty stages are left out


def test_check_writable(tmp_path):
    video = write_moving_shapes_video(tmp_path / "in.mp4", 2, 32, 32)
    assert check_writable(tmp_path / "new" / "sub" / "out.mp4") == tmp_path / "new" / "sub" / "out.mp4"
    assert (tmp_path / "new" / "sub").is_dir()
    assert not (tmp_path / "new" / "sub" / "out.mp4").exists()  # probing leaves nothing behind
    assert os.listdir(tmp_path / "new" / "sub") == []
    with pytest.raises(SinkError, match="is the input video"):
        check_writable(tmp_path / "." / "in.mp4", input_path=video)
    os.symlink(video, tmp_path / "link.mp4")
    with pytest.raises(SinkError, match="is the input video"):
        check_writable(tmp_path / "link.mp4", input_path=video)
    with pytest.raises(SinkError, match="is a directory"):
        check_writable(tmp_path)
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match=r"^cannot create output directory"):
        check_writable(blocker / "out.mp4")
    check_writable(tmp_path / "out.mp4", input_path=0)  # a camera is never an output


def test_video_sink_takes_the_first_frame_size_when_unknown(tmp_path):
    path = tmp_path / "live.mp4"
    with VideoSink(path, fps=float("nan"), size=(0, 0)) as sink:
        assert sink.output_size is None
        sink.write(moving_shapes_frame(0, 96, 64))
        sink.write(moving_shapes_frame(1, 96, 64))
    assert sink.output_size == (96, 64) and sink.fps == 25.0
    assert [f.shape for f in _count_frames(path)] == [(64, 96, 3)] * 2


def test_gap_line_from_a_source_gap(tmp_path):
    from edge.sources import Gap
    path = tmp_path / "events.jsonl"
    with _writer(path) as writer:
        writer.write_gap(Gap(after_frame_index=41, seconds=2.0, reason="stream ended"))
    gap = _lines(path)[0]
    assert (gap["event"], gap["after_frame"], gap["gap_s"], gap["reason"]) == ("gap", 41, 2.0, "stream ended")
