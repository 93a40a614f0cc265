"""Shared fixtures: the hot-path implementations and synthetic frames."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time

import cv2
import numpy as np
import psutil
import pytest

import edge.preprocess


def _load_hotpath(name: str):
    if name == "native" and not edge.preprocess.NATIVE_AVAILABLE:
        if os.environ.get("EDGE_PUREPYTHON") == "1":
            pytest.skip(f"EDGE_PUREPYTHON=1 and the native extension is unavailable "
                        f"({edge.preprocess.NATIVE_IMPORT_ERROR})")
        pytest.fail(f"the native extension edge._hotpath is unavailable "
                    f"({edge.preprocess.NATIVE_IMPORT_ERROR}); build it with "
                    f"`python setup.py build_ext --inplace` or set EDGE_PUREPYTHON=1")
    return edge.preprocess.implementation(name)


@pytest.fixture(params=["native", "numpy"])
def hotpath(request):
    """Each hot-path test runs against the native extension and the NumPy twin.

    A missing native extension fails the native tests, unless EDGE_PUREPYTHON=1 asks for
    the twin only, in which case they are skipped.
    """
    return _load_hotpath(request.param)


@pytest.fixture
def native_hotpath():
    """The native extension alone (same skip/fail policy as ``hotpath``)."""
    return _load_hotpath("native")


def make_frames(width: int, height: int, n: int = 1, seed: int = 0) -> list[np.ndarray]:
    """``n`` random-but-smooth BGR uint8 frames (blurred noise plus gradients), height×width×3."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    coarse = (max(2, width // 24), max(2, height // 24))
    frames = []
    for _ in range(n):
        # Noise on a coarse grid, upsampled with a cubic: smooth but varied detail, fast at 1080p.
        noise = rng.uniform(0, 255, (coarse[1], coarse[0], 3)).astype(np.float32)
        smooth = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
        phase = rng.uniform(0, 2 * np.pi, 3)
        for channel in range(3):
            gradient = 60 * np.sin(xs / width * 3 + ys / height * 2 + phase[channel])
            smooth[:, :, channel] = 0.7 * smooth[:, :, channel] + gradient + 40
        frames.append(np.clip(smooth, 0, 255).astype(np.uint8))
    return frames


@pytest.fixture
def frames_factory():
    """``frames_factory(w, h, n, seed)`` -> list of smooth random BGR uint8 frames."""
    return make_frames


# ---------------------------------------------------------------- demo model and videos for end-to-end tests

DEMO_HOME = "edge-home"  # under the session's base temp dir; tests/models and tests/test_runtime use the same one


@pytest.fixture(autouse=True)
def fresh_log_levels():
    """Each test starts with the levels of a fresh process: root at WARNING, edge's loggers unset (edge
    never sets one for good). A CLI run or a library in an earlier test may have raised one, and a test
    that reads a WARNING line through its logger would see nothing."""
    logging.getLogger().setLevel(logging.WARNING)
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if (name == "edge" or name.startswith("edge.")) and isinstance(logger, logging.Logger):
            logger.setLevel(logging.NOTSET)
            logger.disabled = False
    yield


@pytest.fixture(scope="session", autouse=True)
def _edge_home_of_the_session(tmp_path_factory):
    """Every test (and its subprocesses) keeps its models, clips and recordings under the session's base
    temp dir, never in the user's ``~/.cache/edge-har``; a test that needs its own sets its own."""
    previous = os.environ.get("EDGE_HAR_HOME")
    os.environ["EDGE_HAR_HOME"] = str(tmp_path_factory.getbasetemp() / DEMO_HOME)
    yield
    if previous is None:
        os.environ.pop("EDGE_HAR_HOME", None)
    else:
        os.environ["EDGE_HAR_HOME"] = previous


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory):
    """An ``$EDGE_HAR_HOME`` whose model cache already holds the demo IR (built once per session)."""
    from edge.models.paths import default_model_path

    home = tmp_path_factory.getbasetemp() / DEMO_HOME
    default_model_path(cache_dir=home)
    return home


@pytest.fixture(scope="session")
def demo_xml(demo_home):
    """The untrained demo model (seed 0) as OpenVINO IR, from the session's model cache."""
    from edge.models.paths import default_model_path

    return default_model_path(cache_dir=demo_home)


@pytest.fixture(scope="session")
def compiled_cache(tmp_path_factory):
    """A shared OpenVINO compiled-model cache (``inference.cache_dir``): later runs skip compilation."""
    return tmp_path_factory.mktemp("ov-compiled")


@pytest.fixture(scope="session")
def moving_shapes_video(tmp_path_factory):
    """``moving_shapes_video(num_frames, width, height, seed=0)`` -> path of a cached mp4v file.

    Frames carry their index (``edge.synthetic.read_frame_marker``); 25 fps.
    """
    from edge.synthetic import write_moving_shapes_video

    folder = tmp_path_factory.mktemp("videos")

    def make(num_frames: int, width: int, height: int, seed: int = 0):
        path = folder / f"shapes-{num_frames}f-{width}x{height}-s{seed}.mp4"
        if not path.is_file():
            write_moving_shapes_video(path, num_frames, width, height, fps=25.0, seed=seed)
        return path

    return make


# ---------------------------------------------------------------- a real network stream (Debian ffmpeg)

FFMPEG = shutil.which("ffmpeg")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (a closed port until someone binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FfmpegHttpStream:
    """``ffmpeg -listen 1`` serving ``clip`` (looped, real-time) as MPEG-TS over HTTP on 127.0.0.1.

    One client per server process (ffmpeg exits when it leaves); ``start()`` again to serve the
    next. ``stop()`` kills the server (the stream drops). Every wait is bounded.
    """

    def __init__(self, clip, port: int | None = None, path: str = "live.ts"):
        self.clip, self.port, self.path = str(clip), port or free_port(), path
        self.processes: list[subprocess.Popen] = []

    def url(self, userinfo: str | None = None) -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}/{self.path}"

    @property
    def process(self) -> subprocess.Popen | None:
        return self.processes[-1] if self.processes else None

    def start(self, timeout_s: float = 10.0) -> FfmpegHttpStream:
        """Start a server and wait until it listens (checked without connecting: a probe would be its one client)."""
        command = [FFMPEG, "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", self.clip,
                   "-c:v", "mpeg2video", "-g", "10", "-f", "mpegts", "-listen", "1", self.url()]
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

    def listening(self) -> bool:
        try:
            process = psutil.Process(self.process.pid)
            # net_connections() since psutil 6; connections() before.
            connections = getattr(process, "net_connections", getattr(process, "connections", None))(kind="tcp")
        except psutil.Error:
            return False
        # A waiting client may connect between two looks: its connection counts as listening too.
        return any(c.laddr and c.laddr.port == self.port and c.status in (psutil.CONN_LISTEN, psutil.CONN_ESTABLISHED)
                   for c in connections)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


@pytest.fixture
def ffmpeg_stream():
    """``ffmpeg_stream(clip)`` -> a started ``FfmpegHttpStream``; every server is killed afterwards.

    Skips when the ffmpeg command is missing (.ci/run installs Debian's).
    """
    if FFMPEG is None:
        pytest.skip("needs the ffmpeg command (Debian package ffmpeg)")
    streams: list[FfmpegHttpStream] = []

    def make(clip, port: int | None = None) -> FfmpegHttpStream:
        stream = FfmpegHttpStream(clip, port)
        streams.append(stream)
        return stream.start()

    yield make
    for stream in streams:
        stream.stop()
