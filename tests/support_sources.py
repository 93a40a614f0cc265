"""Helpers for the source tests: H.264 files made by the ffmpeg command, ffprobe as the
timestamp oracle, a GStreamer RTSP server and an ffmpeg HTTP server with chosen codec args.

Import explicitly: ``from support_sources import h264_video, rtsp_server, ...``.
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import FfmpegHttpStream, free_port

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")


def needs_ffmpeg() -> None:
    if FFMPEG is None or FFPROBE is None:
        pytest.skip("needs the ffmpeg and ffprobe commands (Debian package ffmpeg)")


def encode_h264(source, target, *, gop: int = 25, bframes: int = 2, fps: float = 25.0) -> Path:
    """Re-encode ``source`` to H.264 (libx264, yuv420p) in ``target`` (.mp4 or .ts, by suffix)."""
    needs_ffmpeg()
    target = Path(target)
    command = [FFMPEG, "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-an", "-c:v", "libx264",
               "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-g", str(gop), "-bf", str(bframes),
               "-r", f"{fps:g}"]
    if target.suffix == ".mp4":
        command += ["-movflags", "+faststart"]
    subprocess.run([*command, str(target)], check=True, timeout=120)
    return target


@pytest.fixture(scope="session")
def h264_video(tmp_path_factory):
    """``h264_video(num_frames, width, height, suffix=".mp4", fps=25.0)`` -> path of a cached H.264 file.

    Made from ``edge.synthetic``'s moving shapes (each frame carries its index) by the ffmpeg command.
    """
    from edge.synthetic import write_moving_shapes_video

    folder = tmp_path_factory.mktemp("h264")

    def make(num_frames: int, width: int, height: int, suffix: str = ".mp4", fps: float = 25.0) -> Path:
        target = folder / f"shapes-{num_frames}f-{width}x{height}-{fps:g}{suffix}"
        if not target.is_file():
            raw = write_moving_shapes_video(folder / f"raw-{num_frames}-{width}x{height}-{fps:g}.avi", num_frames,
                                            width, height, fps=fps, codec="MJPG")
            encode_h264(raw, target, fps=fps)
        return target

    return make


def ffprobe_frames(path) -> tuple[float, list[float]]:
    """(stream start_time, every decoded frame's pts_time in order) of the first video stream."""
    needs_ffmpeg()
    result = subprocess.run([FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries",
                             "stream=start_time:frame=pts_time", "-of", "json", str(path)],
                            check=True, capture_output=True, text=True, timeout=60)
    data = json.loads(result.stdout)
    start = float(data["streams"][0].get("start_time", 0.0))
    return start, [float(frame["pts_time"]) for frame in data["frames"]]


def cv2_frames(path) -> list:
    """Every frame of ``path`` as OpenCV's FFmpeg backend decodes it (BGR): the pixel oracle."""
    import cv2

    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return frames
            frames.append(image)
    finally:
        capture.release()


def _wait_for_line(process: subprocess.Popen, expected: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = process.stdout.readline()
        if not line:
            return False
        if line.strip() == expected:
            return True
    return False


class RtspServer:
    """GStreamer's RTSP server (tests/rtsp_server.py) serving ``clip`` at rtsp://127.0.0.1:PORT/test.

    ``stop()`` kills it (clients see the connection drop); ``start()`` serves again on the same port.
    The server also ends by itself when its stdin closes, so a crashed test leaves nothing behind.
    """

    def __init__(self, clip, port: int | None = None, path: str = "/test"):
        self.clip, self.port, self.path = str(clip), port or free_port(), path
        self.process: subprocess.Popen | None = None

    def url(self, userinfo: str | None = None) -> str:
        return f"rtsp://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}{self.path}"

    def start(self, timeout_s: float = 15.0) -> RtspServer:
        deadline = time.monotonic() + timeout_s
        while True:  # a port just freed by stop() can take a moment to bind again
            self.process = subprocess.Popen(
                [SYSTEM_PYTHON, str(RTSP_SERVER), "--port", str(self.port), "--file", self.clip, "--path", self.path],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if _wait_for_line(self.process, "ready", max(0.5, deadline - time.monotonic())):
                return self
            self.process.kill()
            _, stderr = self.process.communicate(timeout=10)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the RTSP server did not start on port {self.port}: {stderr.strip()}")
            time.sleep(0.2)  # a pause between bind retries, not a synchronisation

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.wait(10)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def rtsp_server():
    """``rtsp_server(clip)`` -> a started ``RtspServer``; all are stopped afterwards."""
    needs_ffmpeg()
    if not Path(SYSTEM_PYTHON).is_file():
        pytest.skip("needs Debian's python3 with python3-gi and gir1.2-gst-rtsp-server-1.0")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                            "from gi.repository import GstRtspServer"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("needs python3-gi and gir1.2-gst-rtsp-server-1.0 for the system python3")
    servers: list[RtspServer] = []

    def make(clip, port: int | None = None) -> RtspServer:
        server = RtspServer(clip, port)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


class HttpStream(FfmpegHttpStream):
    """``FfmpegHttpStream`` with the codec arguments chosen by the test (e.g. ``-c copy``)."""

    def __init__(self, clip, codec_args: list[str], port: int | None = None, path: str = "x.ts"):
        super().__init__(clip, port, path)
        self.codec_args = codec_args

    def start(self, timeout_s: float = 10.0) -> HttpStream:
        command = [FFMPEG, "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", self.clip,
                   *self.codec_args, "-f", "mpegts", "-listen", "1", self.url()]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.processes.append(process)
        deadline = time.monotonic() + timeout_s
        while not self.listening():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, stderr = process.communicate(timeout=10)
                raise RuntimeError(f"ffmpeg did not start listening on port {self.port}: "
                                   f"{stderr.decode(errors='replace').strip()}")
            time.sleep(0.05)
        return self


@pytest.fixture
def http_stream():
    """``http_stream(clip, codec_args)`` -> a started ``HttpStream``; every server is killed afterwards."""
    needs_ffmpeg()
    streams: list[HttpStream] = []

    def make(clip, codec_args: list[str]) -> HttpStream:
        stream = HttpStream(clip, codec_args)
        streams.append(stream)
        return stream.start()

    yield make
    for stream in streams:
        stream.stop()


class StallingHttpServer:
    """Answers every HTTP request on 127.0.0.1 with ``payload`` and then sends nothing more,
    holding the connection open: a stream that stalls. ``close()`` ends it (the fixture does)."""

    def __init__(self, payload: bytes, content_type: str = "video/mp2t"):
        import socket
        import threading

        self.payload, self.content_type = payload, content_type
        self.connections = 0
        self._closed = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stall.ts"

    def _accept(self) -> None:
        import threading

        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection) -> None:
        with connection:
            connection.settimeout(10)
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    chunk = connection.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: {self.content_type}\r\n\r\n".encode()
                                   + self.payload)
            except OSError:
                return
            self._closed.wait(60)  # stall: the connection stays open, silent

    def close(self) -> None:
        import socket

        self._closed.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close() alone does not)
        except OSError:
            pass
        self._listener.close()
        for thread in self._threads:
            thread.join(10)


@pytest.fixture
def stalling_server():
    """``stalling_server(payload)`` -> a ``StallingHttpServer``; closed afterwards."""
    servers: list[StallingHttpServer] = []

    def make(payload: bytes) -> StallingHttpServer:
        server = StallingHttpServer(payload)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


class CopyStream(HttpStream):
    """``ffmpeg -re -c:v copy`` of an H.264 file, looped, over HTTP: the camera sends the file's packets."""

    def __init__(self, clip, port: int | None = None) -> None:
        super().__init__(clip, ["-c:v", "copy"], port)


@pytest.fixture
def copy_stream():
    needs_ffmpeg()
    streams: list[CopyStream] = []

    def start(clip, port: int | None = None) -> CopyStream:
        streams.append(CopyStream(clip, port=port).start())
        return streams[-1]

    yield start
    for stream in streams:
        stream.stop()
