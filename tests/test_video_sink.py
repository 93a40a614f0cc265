"""The annotated video: H.264 MP4 a browser plays, written on an encoder thread."""

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from support_videoout import chromium_player_state, decode_bgr, ffprobe_stream, psnr, smooth_frame, top_level_boxes

from edge.sinks import SinkError
from edge.sinks import video as video_module
from edge.sinks.video import (QUEUE_FRAMES, VideoSink, hardware_encoder, output_size_for, probe_encoder,
                              video_image_from_planes)
from edge.synthetic import moving_shapes_frame, read_frame_marker


def _write(path, frames, **kwargs):
    sink = VideoSink(path, kwargs.pop("fps", 25.0), kwargs.pop("size", None), **kwargs)
    for frame in frames:
        sink.write(frame)
    sink.close()
    return sink


def test_file_is_browser_h264_with_every_frame_in_order(tmp_path):
    path = tmp_path / "annotated.mp4"
    sink = _write(path, [moving_shapes_frame(i, 320, 240) for i in range(37)], size=(320, 240))
    stream = ffprobe_stream(path)
    assert (stream["codec_name"], stream["codec_tag_string"], stream["pix_fmt"]) == ("h264", "avc1", "yuv420p")
    assert int(stream["nb_read_frames"]) == sink.frames_written == 37
    assert (stream["width"], stream["height"]) == (320, 240)
    assert stream["r_frame_rate"] == stream["avg_frame_rate"] == "25/1"  # constant frame rate
    assert stream["has_b_frames"] == 0  # no reordering: cheaper to encode, frames come out as they go in
    assert [read_frame_marker(f) for f in decode_bgr(path)] == list(range(37))


def test_index_precedes_media_data(tmp_path):
    path = tmp_path / "annotated.mp4"
    _write(path, [moving_shapes_frame(i, 160, 120) for i in range(10)])
    boxes = top_level_boxes(path)
    assert "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart


@pytest.mark.parametrize("source, max_width, expected", [
    ((1920, 1080), 1280, (1280, 720)),
    ((1280, 720), 1280, (1280, 720)),
    ((1001, 563), 640, (640, 360)),     # 563 * 640 / 1001 = 359.96
    ((333, 199), 0, (332, 198)),        # no limit: only made even
    ((641, 480), 320, (320, 240)),      # 480 * 320 / 641 = 239.6
])
def test_output_size_is_capped_even_and_keeps_aspect(source, max_width, expected):
    assert output_size_for(source, max_width) == expected


def test_downscaled_file_has_the_output_size(tmp_path):
    path = tmp_path / "annotated.mp4"
    sink = _write(path, [moving_shapes_frame(i, 646, 362) for i in range(4)], size=(646, 362), max_width=320)
    assert sink.output_size == (320, 178)  # 362 * 320 / 646 = 179.3 → 179 → even
    stream = ffprobe_stream(path)
    assert (stream["width"], stream["height"]) == (320, 178)
    assert sink.frames_resized == 4


def test_size_comes_from_the_first_frame_when_unknown(tmp_path):
    path = tmp_path / "live.mp4"
    sink = VideoSink(path, fps=float("nan"), size=(0, 0), max_width=200)
    assert sink.output_size is None
    sink.write(moving_shapes_frame(0, 400, 300))
    assert sink.output_size == (200, 150)
    sink.write(moving_shapes_frame(1, 400, 300))
    sink.close()
    stream = ffprobe_stream(path)
    assert (stream["width"], stream["height"], stream["r_frame_rate"]) == (200, 150, "25/1")
    assert int(stream["nb_read_frames"]) == 2


def test_mid_stream_resolution_change_is_resized_and_counted(tmp_path):
    path = tmp_path / "annotated.mp4"
    frames = [moving_shapes_frame(0, 256, 192), moving_shapes_frame(1, 512, 384),
              moving_shapes_frame(2, 128, 96), moving_shapes_frame(3, 256, 192)]
    sink = _write(path, frames, size=(256, 192))
    assert sink.frames_resized == 2
    decoded = decode_bgr(path)
    assert [f.shape for f in decoded] == [(192, 256, 3)] * 4
    assert [read_frame_marker(f) for f in decoded] == [0, 1, 2, 3]


def test_grey_frames_are_accepted(tmp_path):
    path = tmp_path / "grey.mp4"
    grey = np.full((96, 128), 128, np.uint8)
    _write(path, [grey, grey], size=(128, 96))
    decoded = decode_bgr(path)
    assert len(decoded) == 2
    assert np.abs(decoded[1].astype(int) - 128).max() <= 3


def test_frames_decode_back_close_to_what_was_written(tmp_path):
    path = tmp_path / "smooth.mp4"
    image = smooth_frame(320, 240)
    _write(path, [image.copy() for _ in range(5)], size=(320, 240))
    decoded = decode_bgr(path)
    assert len(decoded) == 5
    for frame in decoded:
        assert psnr(frame, image) > 30.0
    # The colour matrix matches FFmpeg's: channels are not swapped and levels are not shifted.
    patch = (slice(100, 140), slice(140, 180))
    assert np.abs(decoded[-1][patch].mean(axis=(0, 1)) - image[patch].mean(axis=(0, 1))).max() < 3.0


def test_close_after_an_exception_leaves_a_playable_file(tmp_path):
    path = tmp_path / "annotated.mp4"
    with pytest.raises(RuntimeError, match="lane failed"):
        with VideoSink(path, 25.0, (160, 120)) as sink:
            for index in range(6):
                sink.write(moving_shapes_frame(index, 160, 120))
            raise RuntimeError("lane failed")
    assert int(ffprobe_stream(path)["nb_read_frames"]) == 6
    assert [read_frame_marker(f) for f in decode_bgr(path)] == list(range(6))
    sink.close()  # idempotent
    with pytest.raises(SinkError, match="already closed"):
        sink.write(moving_shapes_frame(7, 160, 120))


def test_unwritable_path_fails_in_the_constructor(tmp_path):
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    threads = threading.active_count()
    with pytest.raises(SinkError, match="cannot create output directory") as caught:
        VideoSink(blocker / "out.mp4", 25.0, (64, 48))
    assert "\n" not in str(caught.value)
    assert threading.active_count() == threads  # no encoder thread was started
    with pytest.raises(SinkError, match="is a directory"):
        VideoSink(tmp_path, 25.0, (64, 48))


def test_no_frames_no_file(tmp_path):
    path = tmp_path / "annotated.mp4"
    VideoSink(path, 25.0, (64, 48)).close()
    assert not path.exists()


def test_auto_without_a_gpu_uses_libx264_and_says_so_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(video_module, "DRI_PATH", str(tmp_path / "no-dri"))
    with caplog.at_level(logging.INFO, logger="edge.sinks.video"):
        sink = _write(tmp_path / "a.mp4", [moving_shapes_frame(0, 64, 48)], hwaccel="auto")
    assert sink.encoder.codec == "libx264"
    lines = [r for r in caplog.records if r.name == "edge.sinks.video"]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert "libx264" in lines[0].getMessage() and "no-dri" in lines[0].getMessage()
    assert ffprobe_stream(tmp_path / "a.mp4")["codec_name"] == "h264"


def test_auto_with_dri_but_no_usable_encoder_falls_back(tmp_path, monkeypatch, caplog):
    if any(probe_encoder(hardware_encoder(kind)) is None for kind in ("qsv", "vaapi")):
        pytest.skip("this machine has a working hardware H.264 encoder")
    monkeypatch.setattr(video_module, "DRI_PATH", str(tmp_path))  # a /dev/dri that exists
    with caplog.at_level(logging.INFO, logger="edge.sinks.video"):
        sink = _write(tmp_path / "a.mp4", [moving_shapes_frame(0, 64, 48)], hwaccel="auto")
    assert sink.encoder.codec == "libx264"
    lines = [r.getMessage() for r in caplog.records if r.name == "edge.sinks.video"]
    assert len(lines) == 1 and "h264_qsv" in lines[0] and "h264_vaapi" in lines[0]


@pytest.mark.parametrize("hwaccel", ["vaapi", "qsv"])
def test_explicit_hardware_that_cannot_open_is_a_one_line_error(tmp_path, hwaccel):
    if probe_encoder(hardware_encoder(hwaccel)) is None:
        pytest.skip(f"this machine can encode with {hwaccel}")
    with pytest.raises(SinkError, match=f"hwaccel {hwaccel}") as caught:
        VideoSink(tmp_path / "a.mp4", 25.0, (64, 48), hwaccel=hwaccel)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "a.mp4").exists()


def test_unknown_hwaccel_bad_crf_and_preset(tmp_path):
    with pytest.raises(SinkError, match="cuda"):
        VideoSink(tmp_path / "a.mp4", 25.0, (64, 48), hwaccel="cuda")
    with pytest.raises(SinkError, match="crf"):
        VideoSink(tmp_path / "a.mp4", 25.0, (64, 48), crf=60)
    with pytest.raises(SinkError, match="preset 'quick'"):
        VideoSink(tmp_path / "a.mp4", 25.0, (64, 48), preset="quick")


class StalledSink(VideoSink):
    """A sink whose encoder thread stops inside its first frame until the test lets it go."""

    def __init__(self, *args, **kwargs):
        self.entered, self.release = threading.Event(), threading.Event()
        super().__init__(*args, **kwargs)

    def _encode(self, image):
        self.entered.set()
        self.release.wait()
        super()._encode(image)


def test_live_sink_drops_the_newest_frames_when_the_encoder_is_behind(tmp_path):
    path = tmp_path / "live.mp4"
    sink = StalledSink(path, 25.0, (160, 120), live=True)
    sink.write(moving_shapes_frame(0, 160, 120))
    assert sink.entered.wait(30)          # frame 0 is in the encoder, the queue is empty
    for index in range(1, QUEUE_FRAMES + 4):
        sink.write(moving_shapes_frame(index, 160, 120))  # never blocks
    assert sink.frames_dropped == 3
    assert sink.frames_written == QUEUE_FRAMES + 1
    sink.release.set()
    sink.close()
    assert int(ffprobe_stream(path)["nb_read_frames"]) == QUEUE_FRAMES + 1
    assert [read_frame_marker(f) for f in decode_bgr(path)] == list(range(QUEUE_FRAMES + 1))


def test_file_sink_waits_for_the_encoder_and_loses_nothing(tmp_path):
    path = tmp_path / "file.mp4"
    sink = StalledSink(path, 25.0, (160, 120))
    total = QUEUE_FRAMES + 5
    writer = threading.Thread(target=lambda: [sink.write(moving_shapes_frame(i, 160, 120)) for i in range(total)])
    writer.start()
    assert sink.entered.wait(30)
    writer.join(0.5)
    assert writer.is_alive()              # blocked on the full queue, not dropping
    assert sink.frames_dropped == 0 and sink.frames_written == QUEUE_FRAMES + 1
    sink.release.set()
    writer.join(60)
    sink.close()
    assert sink.frames_written == total and sink.frames_dropped == 0
    assert [read_frame_marker(f) for f in decode_bgr(path)] == list(range(total))


class FailingSink(VideoSink):
    """An encoder that fails on its fourth frame."""

    def __init__(self, *args, **kwargs):
        self.failed = threading.Event()
        super().__init__(*args, **kwargs)

    def _encode(self, image):
        if self.frames_encoded == 3:
            raise OSError(28, "No space left on device")
        super()._encode(image)

    def _fail(self, error):
        super()._fail(error)
        self.failed.set()


def test_an_encoder_failure_is_raised_by_the_next_write_once(tmp_path):
    path = tmp_path / "annotated.mp4"
    sink = FailingSink(path, 25.0, (160, 120))
    for index in range(4):
        sink.write(moving_shapes_frame(index, 160, 120))
    assert sink.failed.wait(30)
    with pytest.raises(SinkError, match="No space left on device") as caught:
        sink.write(moving_shapes_frame(4, 160, 120))
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    sink.close()  # already reported: finalises quietly
    assert [read_frame_marker(f) for f in decode_bgr(path)] == [0, 1, 2]  # what was encoded stays playable


def test_an_encoder_failure_is_raised_by_close(tmp_path):
    sink = FailingSink(tmp_path / "annotated.mp4", 25.0, (160, 120))
    for index in range(4):  # the fourth fails only after its write returned
        sink.write(moving_shapes_frame(index, 160, 120))
    with pytest.raises(SinkError, match="encoding failed"):
        sink.close()
    sink.close()


def test_ntsc_rate_is_exact(tmp_path):
    path = tmp_path / "ntsc.mp4"
    _write(path, [moving_shapes_frame(i, 64, 48) for i in range(3)], fps=30000 / 1001)
    assert ffprobe_stream(path)["r_frame_rate"] == "30000/1001"


def test_a_process_that_exits_without_close_still_leaves_a_playable_file(tmp_path):
    path = tmp_path / "annotated.mp4"
    script = ("import sys\n"
              "from edge.sinks.video import VideoSink\n"
              "from edge.synthetic import moving_shapes_frame\n"
              f"sink = VideoSink({str(path)!r}, 25.0, (160, 120))\n"
              "for index in range(9):\n"
              "    sink.write(moving_shapes_frame(index, 160, 120))\n"
              "sys.exit(3)  # no close(): the interpreter's exit hooks finalise the file\n")
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.returncode == 3, done.stderr
    assert int(ffprobe_stream(path)["nb_read_frames"]) == 9
    assert top_level_boxes(path).index("moov") < top_level_boxes(path).index("mdat")


def test_a_browser_plays_the_file_with_the_subtitles(tmp_path):
    from edge.events import from_json_dict
    from edge.sinks.subtitles import SubtitleSink

    _write(tmp_path / "annotated.mp4", [moving_shapes_frame(i, 640, 360) for i in range(50)], size=(640, 360))
    with SubtitleSink(tmp_path / "annotated.vtt") as track:
        for clip in range(3):
            track.handle(from_json_dict({
                "clip_index": clip, "start_frame": 16 * clip, "end_frame": 16 * clip + 15,
                "start_time_s": 0.64 * clip, "end_time_s": 0.64 * clip + 0.6, "label": "washing hands",
                "score": 0.87, "untrained": clip == 2}))
    state = chromium_player_state(tmp_path, "annotated.mp4", "annotated.vtt")
    assert "error" not in state and "trackError" not in state, state
    assert state["canPlay"] == "probably"
    assert (state["width"], state["height"]) == (640, 360)
    assert state["duration"] == pytest.approx(2.0)
    assert [c[:2] for c in state["cues"]] == [[0, 0.64], [0.64, 1.28], [1.28, 1.92]]
    assert state["cues"][2][2] == "washing hands 0.87\n(untrained demo model)"
    assert all(c[3:] == [0, 0, "start"] for c in state["cues"])  # line 0, position 0 %, align start


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_the_encoder_yields_the_cpu_to_inference(tmp_path):
    for live in (True, False):
        sink = StalledSink(tmp_path / f"{live}.mp4", 25.0, (64, 48), live=live)
        sink.write(moving_shapes_frame(0, 64, 48))
        assert sink.entered.wait(30)  # the encoder thread is running its loop
        niceness = os.getpriority(os.PRIO_PROCESS, sink._thread.native_id) - os.getpriority(os.PRIO_PROCESS, 0)
        sink.release.set()
        sink.close()
        assert niceness == video_module.ENCODER_NICENESS


@pytest.mark.parametrize("source, size", [((1920, 1080), (1280, 720)), ((640, 360), (640, 360)),
                                          ((1280, 720), (320, 178))])
def test_video_image_from_planes_matches_ffmpeg(source, size):
    width, height = source
    image = smooth_frame(width, height)
    frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
    # Planes with padded rows, as a decoder hands them over.
    y, u, v = (np.pad(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, :p.width], ((0, 0), (0, 32)))
               [:, :p.width] for p in frame.planes)
    assert not y.flags.c_contiguous
    result = video_image_from_planes(y, u, v, size)
    assert result.shape == (size[1], size[0], 3) and result.dtype == np.uint8
    # Oracle: FFmpeg's own scaler converting and resizing in one step.
    expected = frame.reformat(width=size[0], height=size[1], format="bgr24", interpolation="BILINEAR").to_ndarray()
    assert psnr(result, expected) > 35.0
    assert np.abs(result.astype(int).mean(axis=(0, 1)) - expected.astype(int).mean(axis=(0, 1))).max() < 2.0
