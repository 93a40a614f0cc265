import logging
import math
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from edge.sources import (DEFAULT_FPS, FileSource, LiveSource, ReconnectPolicy, SourceError,
                          mask_credentials, open_source, sanitize_fps)
from edge.synthetic import read_frame_marker, write_moving_shapes_video


# -- files -------------------------------------------------------------------------------

def test_file_frames_in_order_with_media_time(tmp_path):
    path = write_moving_shapes_video(tmp_path / "v.mp4", 37, 160, 120, fps=20.0)
    with open_source(path) as source:
        assert isinstance(source, FileSource) and not source.is_live
        assert source.fps == pytest.approx(20.0)
        assert source.frame_count == 37
        assert source.size == (160, 120)
        frames = list(source)
    assert [f.index for f in frames] == list(range(37))
    # The pixels carry the index the writer drew: decoded order is written order.
    assert [read_frame_marker(f.image) for f in frames] == list(range(37))
    assert np.allclose([f.time_s for f in frames], np.arange(37) / 20.0, atol=1e-3)
    assert all(f.image.dtype == np.uint8 and f.image.shape == (120, 160, 3) for f in frames)
    assert source.frames_read == 37 and source.warnings == []


@pytest.mark.parametrize("reported", [0, 0.0, float("nan"), float("inf"), -5, 90000, None, "x"])
def test_fps_sanitising_rejects_nonsense(reported):
    assert sanitize_fps(reported) is None


@pytest.mark.parametrize("reported", [25, 29.97, 1000])
def test_fps_sanitising_keeps_believable_values(reported):
    assert sanitize_fps(reported) == pytest.approx(reported)


class _ZeroFpsCapture:
    """Wraps a real capture but reports fps 0 and no position, like a broken container."""

    def __init__(self, path):
        self._cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)

    def get(self, prop):
        if prop in (cv2.CAP_PROP_FPS, cv2.CAP_PROP_POS_MSEC):
            return 0.0
        return self._cap.get(prop)

    def __getattr__(self, name):
        return getattr(self._cap, name)


def test_fps_fallback_warns_once_and_times_use_index(tmp_path, caplog):
    path = write_moving_shapes_video(tmp_path / "v.mp4", 10, 96, 64, fps=30.0)
    with caplog.at_level(logging.WARNING, logger="edge.sources"):
        with FileSource(path, capture_factory=_ZeroFpsCapture) as source:
            frames = list(source)
    assert source.fps == DEFAULT_FPS
    assert np.allclose([f.time_s for f in frames], np.arange(10) / DEFAULT_FPS)
    assert sum("fps reported as" in r.getMessage() for r in caplog.records) == 1


def test_missing_file(tmp_path):
    with pytest.raises(SourceError, match=r"^video file not found: .*nope\.mp4$"):
        open_source(tmp_path / "nope.mp4")


def test_not_a_video(tmp_path):
    path = tmp_path / "random.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(20000))
    with pytest.raises(SourceError, match=r"^cannot open video: .*random\.mp4 \(not a video"):
        open_source(path)


def test_zero_frame_video(tmp_path):
    path = write_moving_shapes_video(tmp_path / "empty.avi", 0, 160, 120, codec="MJPG")
    with pytest.raises(SourceError, match=r"^video has no frames: .*empty\.avi$"):
        open_source(path)


def test_truncated_video_gives_frames_up_to_the_cut_then_a_warning(tmp_path, caplog):
    path = write_moving_shapes_video(tmp_path / "full.avi", 60, 160, 120, codec="MJPG")
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="edge.sources"):
        with open_source(cut) as source:
            frames = list(source)
    assert 10 < len(frames) < 60
    assert [f.index for f in frames] == list(range(len(frames)))
    # The frame at the cut may be half decoded; every one before it is intact.
    assert [read_frame_marker(f.image) for f in frames[:-1]] == list(range(len(frames) - 1))
    message = f"stopped decoding at frame {len(frames)} of 60"
    assert any(message in r.getMessage() for r in caplog.records)
    assert any(message in w for w in source.warnings)


def test_directory_is_not_a_video(tmp_path):
    with pytest.raises(SourceError, match="cannot open video"):
        open_source(tmp_path)


# -- cameras and streams -------------------------------------------------------------------

def test_missing_camera():
    with pytest.raises(SourceError, match=r"^cannot open camera 99$"):
        open_source(99)
    with pytest.raises(SourceError, match=r"^cannot open camera 99$"):
        open_source("99")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_refusing_url_fails_quickly_with_masked_name():
    url = f"http://user:secret@127.0.0.1:{_closed_port()}/x.ts"
    start = time.monotonic()
    with pytest.raises(SourceError) as caught:
        open_source(url, open_timeout_s=3.0, read_timeout_s=3.0)
    assert time.monotonic() - start < 5.0
    message = str(caught.value)
    assert message.startswith("cannot open stream http://user:***@127.0.0.1:")
    assert "connection refused or timed out" in message
    assert "secret" not in message and "\n" not in message


@pytest.mark.parametrize("url, masked", [
    ("rtsp://user:pass@host/stream", "rtsp://user:***@host/stream"),
    ("rtsp://admin:p%40ss:w0rd@10.0.0.5:554/h264", "rtsp://admin:***@10.0.0.5:554/h264"),
    ("rtsp://tokenonly@host/s", "rtsp://***@host/s"),
    ("rtsp://host:554/stream", "rtsp://host:554/stream"),
    ("https://cam.example/live.m3u8?token=abc123&q=1", "https://cam.example/live.m3u8?token=***&q=1"),
    ("http://h/x?user=bob&password=hunter2", "http://h/x?user=bob&password=***"),
    ("/videos/file.mp4", "/videos/file.mp4"),
])
def test_mask_credentials(url, masked):
    assert mask_credentials(url) == masked


def test_secrets_never_in_masked_urls():
    for url in ["rtsp://u:hunter2@h/a?token=hunter2", "http://hunter2@h/", "rtsp://u:hunter2@h:1/x?PASSWORD=hunter2"]:
        assert "hunter2" not in mask_credentials(url)


# -- live source with a fake capture ---------------------------------------------------------

class FakeCapture:
    """Yields ``frames`` small images then fails reads; ``opened=False`` fails to open."""

    def __init__(self, frames: int, opened: bool = True, size=(32, 24)):
        self._left, self._opened, self._size = frames, opened, size
        self.released = False

    def isOpened(self):
        return self._opened

    def read(self):
        if self._left <= 0:
            return False, None
        self._left -= 1
        return True, np.zeros((self._size[1], self._size[0], 3), np.uint8)

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 0.0, cv2.CAP_PROP_FRAME_WIDTH: self._size[0],
                cv2.CAP_PROP_FRAME_HEIGHT: self._size[1]}.get(prop, 0.0)

    def release(self):
        self.released = True


def _factory(captures):
    remaining = list(captures)
    opened = []

    def make(spec):
        capture = remaining.pop(0) if remaining else FakeCapture(0, opened=False)
        opened.append(capture)
        return capture
    make.opened = opened
    return make


def test_live_source_reconnects_with_backoff_and_keeps_counting():
    # 5 frames, drop, two failed reopenings, 4 frames (other size), drop, then never back.
    factory = _factory([FakeCapture(5), FakeCapture(0, opened=False), FakeCapture(0, opened=False),
                        FakeCapture(4, size=(48, 36))])
    sleeps = []
    policy = ReconnectPolicy(attempts=3, delay_s=0.5, max_delay_s=1.5)
    with LiveSource("rtsp://u:pw@cam/s", reconnect=policy, queue_size=100, capture_factory=factory,
                    sleep=sleeps.append) as source:
        assert source.is_live and source.frame_count is None and source.fps == DEFAULT_FPS
        frames = list(source)
    assert [f.index for f in frames] == list(range(9))
    assert [f.image.shape for f in frames] == [(24, 32, 3)] * 5 + [(36, 48, 3)] * 4
    assert all(b.time_s >= a.time_s for a, b in zip(frames, frames[1:]))
    # First drop: 0.5 (fail), 1.0 (fail), 2.0→capped 1.5 (ok). Second drop: 0.5, 1.0, 1.5, give up.
    assert sleeps == [0.5, 1.0, 1.5, 0.5, 1.0, 1.5]
    assert source.reconnects == 1
    assert [(g.after_frame_index, g.reason.endswith("gave up")) for g in source.gaps] == [(4, False), (8, True)]
    after, seconds, reason = source.gaps[0]
    assert after == 4 and seconds >= 0 and reason
    assert "gave up after 3" in source.error and "pw" not in source.error
    assert source.frames_read == 9 and source.frames_dropped == 0
    assert all(c.released for c in factory.opened)


def test_live_source_keeps_only_the_newest_frames():
    gate = threading.Event()

    class SlowStart(FakeCapture):
        def read(self):
            gate.wait(5)
            return super().read()

    capture = SlowStart(50)
    source = LiveSource(0, reconnect=ReconnectPolicy(attempts=0), queue_size=2,
                        capture_factory=lambda spec: capture, sleep=lambda s: None)
    source.start()
    gate.set()
    source._thread.join(5)  # the reader has read everything and ended
    frames = list(source)
    source.close()
    assert source.name == "camera 0"
    # The two newest frames, then the end; the rest were dropped and counted.
    assert [f.index for f in frames] == [48, 49]
    assert source.frames_dropped == 48 and source.frames_read == 50


def test_live_source_close_stops_a_running_reader():
    class Endless(FakeCapture):
        def read(self):
            time.sleep(0.001)
            return True, np.zeros((8, 8, 3), np.uint8)

    source = LiveSource("/dev/video-fake", capture_factory=lambda spec: Endless(1), sleep=lambda s: None)
    first = next(source)
    assert first.index == 0
    source.close()
    assert not source._thread.is_alive()
    with pytest.raises(StopIteration):
        next(source)


def test_live_source_open_failure_messages():
    with pytest.raises(SourceError, match=r"^cannot open camera 7$"):
        LiveSource(7, capture_factory=lambda spec: FakeCapture(0, opened=False))
    with pytest.raises(SourceError, match=r"^cannot open stream rtsp://u:\*\*\*@h/x: connection refused"):
        LiveSource("rtsp://u:p@h/x", capture_factory=lambda spec: FakeCapture(0, opened=False))


def test_reconnect_policy_delays():
    policy = ReconnectPolicy(attempts=6, delay_s=1.0, max_delay_s=10.0)
    assert [policy.delay(i) for i in range(6)] == [1, 2, 4, 8, 10, 10]
    assert not math.isnan(policy.delay(100))


def test_request_stop_ends_a_file_source(tmp_path):
    path = write_moving_shapes_video(tmp_path / "v.mp4", 20, 64, 48)
    with open_source(path) as source:
        frames = [next(source), next(source)]
        source.request_stop()
        frames += list(source)
    assert [f.index for f in frames] == [0, 1]


def test_request_stop_ends_a_live_source():
    class Endless(FakeCapture):
        def read(self):
            time.sleep(0.001)
            return True, np.zeros((8, 8, 3), np.uint8)

    with LiveSource(0, capture_factory=lambda spec: Endless(1), queue_size=2) as source:
        seen = 0
        for frame in source:
            seen += 1
            if seen == 5:
                source.request_stop()
            assert seen < 1000, "iteration should end soon after request_stop"
    assert 5 <= seen <= 8  # at most the queued frames and the one in flight follow


def test_real_http_stream_drop_reconnects_and_keeps_counting(tmp_path, ffmpeg_stream):
    """ffmpeg serves MPEG-TS over HTTP; it is killed mid-read and restarted; the source carries on."""
    clip = write_moving_shapes_video(tmp_path / "clip.mp4", 50, 160, 120)
    server = ffmpeg_stream(clip)
    deadline = time.monotonic() + 10
    source = open_source(server.url(), reconnect=ReconnectPolicy(attempts=10, delay_s=0.2, max_delay_s=1.0),
                         open_timeout_s=5, read_timeout_s=5)
    indices = []
    with source:
        for frame in source:
            indices.append(frame.index)
            if len(indices) == 20:
                server.stop()
                server.start()
            if len(indices) >= 45 or time.monotonic() > deadline + 20:
                break
    assert len(indices) >= 45, f"only {len(indices)} frames; error: {source.error}"
    assert all(b > a for a, b in zip(indices, indices[1:]))
    assert source.reconnects >= 1 and source.gaps and source.error is None
    assert source.gaps[0].after_frame_index >= 19
