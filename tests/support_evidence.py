"""Scripted H.264 videos with a known GOP, and the oracles the evidence tests read clips with."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import httpx
import numpy as np
import yaml
from support_activities import FPS, SIZE, script_frames, scripted_frame

GOP = 25
ROOT = Path(__file__).resolve().parents[1]


def write_h264(path, script, *, fps: float = FPS, size=SIZE, gop: int = GOP) -> Path:
    """The script ``[(colour, seconds), ...]`` as H.264 (libx264, keyframe every ``gop`` frames, B-frames on)."""
    path = Path(path)
    width, height = size
    command = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
               "-r", f"{fps:g}", "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-g", str(gop),
               "-keyint_min", str(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p", str(path)]
    frames = b"".join(scripted_frame(colour, index, size).tobytes()
                      for index, colour in enumerate(script_frames(script, fps)))
    subprocess.run(command, input=frames, check=True)
    return path


def media_packets(path) -> list[tuple[float | None, float | None, bool, bytes]]:
    """Every video packet of ``path`` in decode order: (pts_s, dts_s, key, bytes), times as the engine's
    sources compute them ((ticks - start_time) * time_base)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin, base = stream.start_time or 0, stream.time_base
        return [(None if p.pts is None else float((p.pts - origin) * base),
                 None if p.dts is None else float((p.dts - origin) * base), bool(p.is_keyframe), bytes(p))
                for p in container.demux(stream) if p.size]


def decoded_frames(path) -> list[tuple[float, np.ndarray]]:
    """(time_s, BGR image) of every frame, time from the clip's own start."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin, base = stream.start_time or 0, stream.time_base
        return [(float((frame.pts - origin) * base), frame.to_ndarray(format="bgr24"))
                for frame in container.decode(stream)]


def mean_colour(image: np.ndarray) -> np.ndarray:
    return image.reshape(-1, 3).mean(axis=0)


# ---------------------------------------------------------------- edge-har serve in a subprocess

def environment(home: Path, tmp: Path | None = None) -> dict:
    """The subprocess's environment: this tree, ``EDGE_HAR_HOME=home``, and ``TMPDIR=tmp`` when given (so a
    temporary file it writes is found by the walk)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["EDGE_HAR_HOME"] = str(home)
    if tmp is not None:
        tmp.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(tmp)
    return env


class Serving:
    """``edge-har serve -c config`` in a subprocess; ``stop()`` sends SIGTERM and returns the result."""

    def __init__(self, config: dict, folder: Path, home: Path, tmp: Path | None = None) -> None:
        self.port = config["http"]["port"]
        self.url = f"http://127.0.0.1:{self.port}"
        path = folder / "cfg.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.stderr = open(folder / "stderr.txt", "w+")
        self.process = subprocess.Popen([sys.executable, "-m", "edge", "serve", "-c", str(path)], cwd=folder,
                                        env=environment(home, tmp), stdout=subprocess.DEVNULL, stderr=self.stderr)

    def wait_for(self, condition, what: str, timeout_s: float = 90.0):
        """Polls ``condition()`` (HTTP errors count as not yet) until truthy; bounded."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"edge-har serve exited {self.process.returncode}: {self.log()[-3000:]}")
            try:
                value = condition()
            except (httpx.HTTPError, KeyError, ValueError):
                value = None
            if value:
                return value
            time.sleep(0.2)  # polling a subprocess over HTTP, bounded by the deadline
        raise AssertionError(f"never {what} within {timeout_s} s: {self.log()[-3000:]}")

    def get(self, path: str, **options) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **options)

    def status(self) -> dict:
        return self.get("/api/status").json()

    def log(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(60)
        finally:
            self.stderr.close()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
