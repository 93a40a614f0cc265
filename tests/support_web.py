"""Helpers for the web stream's tests, reusable by the service's end-to-end tests.

- ``FrameHubDouble`` / ``ServiceDouble``: a test double of the Service protocol
  the web side reads (``status()``, ``recent_events()``, ``frames()``,
  ``registry``, ``subscribe()``), with real frames published by the test.
- ``MjpegReader``: reads a multipart/x-mixed-replace stream part by part.
- ``chromium_dom(url)`` / ``chromium_screenshot(url, path)``: headless Debian Chromium.
- ``start_prometheus(targets)``: a real Prometheus server scraping 127.0.0.1 targets.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from prometheus_client import CollectorRegistry

from edge.events import from_json_dict

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
PROMETHEUS = shutil.which("prometheus")
BASH = shutil.which("bash") or "/bin/bash"  # dash cannot redirect fds above 9


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (until someone binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the Service protocol, as a double ----------------------------------------------------

class FrameHubDouble:
    """The latest annotated frame of one camera. ``publish`` never blocks on readers.

    Like the service's FrameHub, viewers ``attach``/``detach`` (a lane draws frames only while
    ``viewers`` > 0); ``on_attach`` (optional) stands in for the lane drawing a frame for a new viewer.
    """

    def __init__(self, on_attach=None) -> None:
        self._condition = threading.Condition()
        self._seq = 0
        self._image: np.ndarray | None = None
        self.published = 0
        self.viewers = 0
        self.attaches = 0
        self.on_attach = on_attach

    def attach(self) -> None:
        with self._condition:
            self.viewers += 1
            self.attaches += 1
        if self.on_attach is not None:
            self.on_attach(self)

    def detach(self) -> None:
        with self._condition:
            self.viewers = max(0, self.viewers - 1)
            self._condition.notify_all()

    def wait_viewers(self, count: int, timeout: float = 10.0) -> bool:
        """Waits until exactly ``count`` viewers are attached; False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: self.viewers == count, timeout)

    def publish(self, image: np.ndarray) -> int:
        with self._condition:
            self._seq += 1
            self._image = image
            self.published += 1
            self._condition.notify_all()
            return self._seq

    def latest(self) -> tuple[int, np.ndarray] | None:
        with self._condition:
            return None if self._image is None else (self._seq, self._image)

    def wait_newer(self, seq: int, timeout: float) -> tuple[int, np.ndarray] | None:
        with self._condition:
            if not self._condition.wait_for(lambda: self._image is not None and self._seq > seq, timeout):
                return None
            return self._seq, self._image


def camera_status(state: str = "online", **overrides) -> dict:
    """One camera's entry of ``status()["cameras"]`` with the contract's keys."""
    entry = {"state": state, "reason": None, "source": "rtsp://127.0.0.1/cam", "fps": 25.0, "clips_per_s": 1.5,
             "clips": 0, "skipped_clips": 0, "gated_clips": 0, "reconnects": 0, "prediction": None, "activity": None}
    entry.update(overrides)
    return entry


def prediction_record(camera: str, label: str | None, score: float | None, *, clip_index: int = 0,
                      infer_ms: float | None = 40.0, gated: bool = False, untrained: bool = True,
                      run_id: str = "run-test") -> dict:
    """A prediction line of events.jsonl as the contract describes it."""
    record = {"source": f"{camera}.mp4", "clip_index": clip_index, "start_frame": clip_index * 8,
              "end_frame": clip_index * 8 + 15, "start_time_s": clip_index * 0.32, "end_time_s": clip_index * 0.32 + 0.6,
              "wall_time": f"2026-11-28T08:00:{clip_index % 60:02d}.000Z", "label": None if gated else label,
              "score": None if gated else score, "top_k": [] if gated else [{"label": label, "score": score}],
              "latency_ms": {"preprocess": 1.0, "infer": None if gated else infer_ms, "postprocess": 0.1,
                             "end_to_end": 60.0},
              "model": "demo", "untrained": untrained, "camera": camera, "run_id": run_id}
    if gated:
        record["gated"] = True
    return record


def check_record(camera: str, rule: str, passed: bool | None, *, reason: str = "", time_s: float = 10.0,
                 wall_time: str = "2026-11-28T08:00:00.000Z", run_id: str = "run-test") -> dict:
    return {"event": "check", "rule": rule, "kind": "min_duration", "camera": camera, "passed": passed,
            "reason": reason, "time_s": time_s, "time_base": "media", "activity_ids": [], "wall_time": wall_time,
            "run_id": run_id}


def gap_record(camera: str, *, run_id: str = "run-test") -> dict:
    return {"event": "gap", "camera": camera, "run_id": run_id, "source": "rtsp://127.0.0.1/cam",
            "after_frame": 10, "gap_s": 1.5, "reason": "stream lost", "wall_time": "2026-11-28T08:00:00.000Z"}


class ServiceDouble:
    """What the web side needs of the Service, with the state set by the test.

    ``emit(kind, camera, record)`` delivers the record's event to every subscribed sink and
    keeps it (status events excepted) for ``recent_events``; ``cameras`` is the
    mutable per-camera status; ``hubs`` the FrameHubs.
    """

    def __init__(self, cameras=("sink", "kitchen"), *, ready: bool = True, untrained: bool = True,
                 max_events: int = 1000) -> None:
        self.run_id = "run-test"
        self.registry = CollectorRegistry()
        self.ready = ready
        self.model = {"name": "demo-r3d", "device": "CPU", "precision": "f32", "untrained": untrained}
        self.cameras = {name: camera_status() for name in cameras}
        self.hubs = {name: FrameHubDouble() for name in cameras}
        self.sinks: list = []
        self._events: list[dict] = []
        self._max_events = max_events
        self._lock = threading.Lock()

    def subscribe(self, sink) -> None:
        self.sinks.append(sink)

    def emit(self, kind: str, camera: str, record: dict) -> None:
        event = from_json_dict(record)
        assert (event.kind, event.camera) == (kind, camera)
        if kind != "status":
            with self._lock:
                self._events.append(record)
                del self._events[:-self._max_events]
        if kind == "prediction":
            self.cameras[camera]["prediction"] = record
        for sink in self.sinks:
            sink.handle(event)

    def status(self) -> dict:
        with self._lock:
            return {"run_id": self.run_id, "ready": self.ready, "model": dict(self.model),
                    "cameras": {name: dict(entry) for name, entry in self.cameras.items()}}

    def recent_events(self, limit: int) -> list[dict]:
        with self._lock:
            return list(self._events[-limit:])

    def frames(self, camera: str):
        return self.hubs.get(camera)


def service_with_metrics(cameras=("sink", "kitchen"), **options):
    """A ``ServiceDouble`` with a ``PrometheusSink`` on its registry, subscribed; returns (service, sink)."""
    from edge.sinks.prometheus import PrometheusSink

    service = ServiceDouble(cameras, **options)
    sink = PrometheusSink(service.registry, status=service.status, cameras=cameras)
    service.subscribe(sink)
    return service, sink


# -- frames ------------------------------------------------------------------------------------

def scene(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A smooth synthetic BGR frame (gradient, a moving box, its number) that JPEG keeps well."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = (x * 0.6 + y * 0.2).astype(np.uint8)
    image[..., 1] = (y * 0.7 + 30).astype(np.uint8)
    image[..., 2] = ((255 - x) * 0.5 + 40).astype(np.uint8)
    left = 10 + (index * 23) % (width - 80)
    cv2.rectangle(image, (left, 60), (left + 60, 140), (30, 200, 240), -1)
    cv2.putText(image, str(index), (20, height - 20), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
    return image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images of the same shape."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def decode_jpeg(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise AssertionError(f"not a JPEG ({len(data)} bytes, starts {data[:4]!r})")
    return image


# -- MJPEG ----------------------------------------------------------------------------------------

class MjpegReader:
    """Parts of a multipart/x-mixed-replace body from an ``httpx`` streaming response.

    ``next_part()`` returns ``(headers: dict[str, str], body: bytes)``, each header name lower-case.
    """

    def __init__(self, response) -> None:
        content_type = response.headers["content-type"]
        if not content_type.startswith("multipart/x-mixed-replace"):
            raise AssertionError(f"not a multipart stream: {content_type}")
        boundary = content_type.split("boundary=", 1)[1].strip().strip('"')
        self._delimiter = b"--" + boundary.encode()
        self._chunks = response.iter_raw()
        self._buffer = b""

    def _fill(self) -> None:
        chunk = next(self._chunks)
        self._buffer += chunk

    def next_part(self) -> tuple[dict[str, str], bytes]:
        while True:
            start = self._buffer.find(self._delimiter)
            head_end = self._buffer.find(b"\r\n\r\n", start) if start >= 0 else -1
            if start >= 0 and head_end >= 0:
                break
            self._fill()
        head = self._buffer[start + len(self._delimiter):head_end].decode("latin-1").strip()
        headers = {}
        for line in head.split("\r\n"):
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        body_start = head_end + 4
        while len(self._buffer) < body_start + length:
            self._fill()
        body = self._buffer[body_start:body_start + length]
        self._buffer = self._buffer[body_start + length:]
        return headers, body


# -- headless Chromium ----------------------------------------------------------------------------

class HeadlessChromium:
    """Debian's Chromium, headless, driven over the DevTools protocol on a pipe (no extra dependency).

    ``--dump-dom`` with a virtual time budget never returns on a page that holds
    a live MJPEG stream open (virtual time waits for pending fetches), so the
    page is driven in real time instead: ``open(url)``, ``wait_for(js)`` until a
    condition holds (bounded), then ``dom()`` and ``screenshot(path)``.
    """

    def __init__(self, size=(1280, 900), timeout_s: float = 30.0) -> None:
        if CHROMIUM is None:
            raise RuntimeError("chromium is not installed")
        self.size, self.timeout_s = size, timeout_s
        self._profile = tempfile.TemporaryDirectory(prefix="edge-har-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe",
                f"--user-data-dir={self._profile.name}", f"--window-size={size[0]},{size[1]}", "about:blank"]
        # The DevTools pipe is fds 3 (commands in) and 4 (replies out) of the browser; bash puts them there.
        self._process = subprocess.Popen(
            [BASH, "-c", f'exec "$@" 3<&{to_browser_read} 4>&{from_browser_write}', "bash", *args],
            pass_fds=(to_browser_read, from_browser_write), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None

    # The protocol: JSON messages, each terminated by a NUL byte.
    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            end = self._buffer.find(b"\0")
            if end >= 0:
                reply, self._buffer = json.loads(self._buffer[:end]), self._buffer[end + 1:]
                if reply.get("id") == self._next_id:
                    if "error" in reply:
                        raise RuntimeError(f"chromium {method}: {reply['error']}")
                    return reply.get("result", {})
                continue  # an event, or a reply nobody waits for
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from_browser], [], [], remaining)[0]:
                raise TimeoutError(f"chromium did not answer {method} within {self.timeout_s} s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium exited: {self._stderr_tail()}")
            self._buffer += chunk

    def _stderr_tail(self) -> str:
        try:
            self._process.wait(5)
            return self._process.stderr.read().decode(errors="replace")[-2000:]
        except subprocess.TimeoutExpired:
            return "(still running)"

    def command(self, method: str, **params) -> dict:
        """One DevTools command on the open page's session."""
        return self._send(method, params, self._session)

    def open(self, url: str) -> "HeadlessChromium":
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.command("Page.enable")
        self.command("Emulation.setDeviceMetricsOverride", width=self.size[0], height=self.size[1],
                     deviceScaleFactor=1, mobile=False)
        self.command("Page.navigate", url=url)
        return self

    def evaluate(self, expression: str):
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0):
        """Evaluates ``expression`` in the page until it is truthy; its value. Raises ``TimeoutError``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError:
                value = None  # the page is still navigating
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied {expression!r} within {timeout_s} s")
            time.sleep(0.1)  # polling the browser's state, bounded by the deadline

    def dom(self) -> str:
        """The page's current DOM as HTML."""
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path) -> Path:
        """A PNG of the viewport."""
        path = Path(path)
        data = self.command("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if self._process.poll() is None:
                self._send("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(5)
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._process.stderr.close()
        self._profile.cleanup()

    def __enter__(self) -> "HeadlessChromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def chromium_dom(url: str, *, wait_for: str = "document.readyState !== 'loading'", timeout_s: float = 30.0) -> str:
    """The page's DOM once the JavaScript condition ``wait_for`` holds (headless Chromium)."""
    with HeadlessChromium(timeout_s=timeout_s) as browser:
        browser.open(url).wait_for(wait_for, timeout_s)
        return browser.dom()


def chromium_screenshot(url: str, path, *, wait_for: str = "document.readyState !== 'loading'",
                        size=(1280, 900), timeout_s: float = 30.0) -> Path:
    """A PNG screenshot of ``url`` once the JavaScript condition ``wait_for`` holds."""
    with HeadlessChromium(size=size, timeout_s=timeout_s) as browser:
        browser.open(url).wait_for(wait_for, timeout_s)
        return browser.screenshot(path)


# -- a real Prometheus server -----------------------------------------------------------------------

class PrometheusServer:
    """Debian's prometheus on a free 127.0.0.1 port, scraping ``targets`` every second."""

    def __init__(self, targets, *, token: str | None = None, metrics_path: str = "/metrics") -> None:
        self.targets = list(targets)
        self.token = token
        self.metrics_path = metrics_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="edge-har-prometheus-")
        self._process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> "PrometheusServer":
        if PROMETHEUS is None:
            raise RuntimeError("prometheus is not installed")
        root = Path(self._dir.name)
        job = {"job_name": "edge-har", "scrape_interval": "1s", "scrape_timeout": "1s",
               "metrics_path": self.metrics_path, "static_configs": [{"targets": self.targets}]}
        if self.token:
            job["authorization"] = {"type": "Bearer", "credentials": self.token}
        # JSON is YAML: no YAML writer needed.
        (root / "prometheus.yml").write_text(json.dumps({"global": {"scrape_interval": "1s"},
                                                         "scrape_configs": [job]}))
        self._log = open(root / "prometheus.log", "wb")
        self._process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited {self._process.returncode}: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready after {timeout_s} s: {self.log()[-2000:]}")
            time.sleep(0.2)  # polling an external server's readiness, bounded by the deadline

    def log(self) -> str:
        return (Path(self._dir.name) / "prometheus.log").read_text(errors="replace")

    def api(self, path: str, **params) -> dict:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=5) as response:
            return json.load(response)

    def query(self, expression: str) -> list[dict]:
        """The instant-query result vector of ``expression``."""
        answer = self.api("query", query=expression)
        if answer.get("status") != "success":
            raise RuntimeError(f"prometheus query {expression!r} failed: {answer}")
        return answer["data"]["result"]

    def wait_for(self, expression: str, predicate, timeout_s: float = 60.0) -> list[dict]:
        """Polls ``query(expression)`` until ``predicate(result)`` holds; raises after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        result: list[dict] = []
        while time.monotonic() < deadline:
            result = self.query(expression)
            if predicate(result):
                return result
            time.sleep(0.5)  # Prometheus scrapes on its own 1 s clock; bounded by the deadline
        raise AssertionError(f"prometheus: {expression!r} never satisfied within {timeout_s} s; last {result}; "
                             f"targets {self.api('targets')}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        if getattr(self, "_log", None):
            self._log.close()
        self._dir.cleanup()


@contextmanager
def start_prometheus(targets, **options):
    """``with start_prometheus(["127.0.0.1:PORT"]) as prometheus:`` → a started ``PrometheusServer``."""
    server = PrometheusServer(targets, **options)
    try:
        yield server.start()
    finally:
        server.stop()


@contextmanager
def serving(service, *, token: str | None = None, host: str = "127.0.0.1"):
    """``edge.web.app.serve_http`` on a free 127.0.0.1 port, stopped afterwards; yields the started server."""
    from edge.web.app import serve_http

    server = serve_http(service, host, 0, token)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def raw_get(url_base: str, raw_path: str) -> tuple[int, bytes]:
    """An HTTP/1.1 GET with the path bytes exactly as given (no client-side normalisation)."""
    host, port = url_base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {raw_path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data
