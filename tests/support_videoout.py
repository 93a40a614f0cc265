"""Test helpers of the video-out stream: ffprobe, MP4 boxes, decoding back with PyAV."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import av
import numpy as np


def ffprobe_stream(path) -> dict:
    """The first video stream as ffprobe reports it, frames counted by decoding (``nb_read_frames``)."""
    done = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                           "-show_streams", "-of", "json", str(path)],
                          capture_output=True, text=True, check=True, timeout=120)
    streams = json.loads(done.stdout)["streams"]
    assert len(streams) == 1, done.stdout
    return streams[0]


def top_level_boxes(path) -> list[str]:
    """The types of an ISO-BMFF file's top-level boxes, in file order (ISO/IEC 14496-12 §4.2)."""
    data = Path(path).read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:  # a 64-bit "largesize" follows the type
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - offset
        assert size >= 8, f"bad box size {size} at {offset}"
        boxes.append(kind.decode("latin-1"))
        offset += size
    assert offset == len(data), "boxes do not tile the file"
    return boxes


def decode_bgr(path) -> list[np.ndarray]:
    """Every frame of ``path`` as uint8 H×W×3 BGR, decoded by PyAV (FFmpeg's own converter)."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def smooth_frame(width: int, height: int) -> np.ndarray:
    """A smooth colour frame (two gradients and a soft disc): what H.264 at crf 23 keeps well."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, 3), np.float32)
    image[..., 0] = 40 + 160 * xs / width                     # blue rises to the right
    image[..., 1] = 200 - 150 * ys / height                   # green falls downwards
    disc = np.exp(-(((xs - width / 2) ** 2 + (ys - height / 2) ** 2) / (2 * (min(width, height) / 5) ** 2)))
    image[..., 2] = 30 + 190 * disc                           # red disc in the middle
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


PLAYER_PAGE = """<!doctype html><html><body>
<video id="v" src="{video}" muted preload="auto"><track id="t" kind="subtitles" src="{track}" default></video>
<pre id="out">pending</pre>
<script>
const video = document.getElementById("v"), track = document.getElementById("t"), out = document.getElementById("out");
const state = {{canPlay: video.canPlayType('video/mp4; codecs="avc1.640028"')}};
const report = () => {{ out.textContent = JSON.stringify(state); }};
video.addEventListener("loadeddata", () => {{
  Object.assign(state, {{width: video.videoWidth, height: video.videoHeight, duration: video.duration}}); report(); }});
video.addEventListener("error", () => {{ state.error = video.error && video.error.code; report(); }});
track.addEventListener("load", () => {{
  state.cues = Array.from(track.track.cues).map(c => [c.startTime, c.endTime, c.text, c.line, c.position, c.align]);
  report(); }});
track.addEventListener("error", () => {{ state.trackError = true; report(); }});
report();
</script></body></html>
"""


def chromium_player_state(directory, video: str, track: str) -> dict:
    """Load ``video`` with ``track`` in a ``<video>`` element in headless Chromium, served over
    HTTP from ``directory`` on 127.0.0.1; return what the page saw (size, duration, cues, errors)."""
    import functools
    import http.server
    import re
    import shutil
    import threading

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        import pytest
        pytest.skip("no chromium")
    Path(directory, "player.html").write_text(PLAYER_PAGE.format(video=video, track=track), encoding="utf-8")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/player.html"
        done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                               "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.shutdown()
        server.server_close()
    found = re.search(r'<pre id="out">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium printed no page (exit {done.returncode}): {done.stderr[-500:]}"
    return json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
