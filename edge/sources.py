"""Frame sources: video files, cameras and network streams.

Every source is an iterator of ``Frame`` (0-based consecutive indices, BGR
uint8 H×W×3 of any size — a resolution change mid-stream is passed through)
and a context manager. ``open_source`` picks the kind from the spec:

- a file path → ``FileSource``: decoded in the caller's thread, loses no
  frame; media time from the container, else index / fps. A decode failure
  before the reported end is logged ("stopped decoding at frame N of M") and
  ends the iteration without an exception.
- a camera index (``0``, ``"0"``), a device path (``/dev/video0``) or an
  ``rtsp://``/``http(s)://``/… URL → ``LiveSource``: a reader thread feeds a
  small bounded queue that keeps only the newest frames (older ones are
  dropped and counted). A dropped stream is reopened with exponential backoff
  (``ReconnectPolicy``); each gap is recorded in ``gaps`` and frame indices
  keep counting. After ``attempts`` failed reopenings the iteration ends and
  ``error`` says why. Media time of a live frame is seconds since the first
  frame was read (monotonic clock), so gaps show in the times too.

Opening problems raise ``SourceError`` with a one-line message. Credentials in
URLs never leave this module unmasked: ``name`` is ``mask_credentials(spec)``.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from edge.records import Frame
from edge.urls import URL_SCHEMES, is_url, mask_credentials  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

DEFAULT_FPS = 25.0
MAX_SANE_FPS = 1000.0
class SourceError(Exception):
    """A source cannot be opened; ``str(error)`` is one line for the user."""


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a live source reopens a dropped stream.

    ``attempts`` reopenings per drop, waiting ``delay_s``, then twice as long
    each time, capped at ``max_delay_s``. The count starts again after a
    successful reconnection.
    """

    attempts: int = 10
    delay_s: float = 1.0
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 0 or self.delay_s < 0 or self.max_delay_s < 0:
            raise ValueError(f"reconnect values must be >= 0: {self}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reopening attempt ``attempt`` (0-based)."""
        return min(self.delay_s * (2.0 ** attempt), self.max_delay_s)


@dataclass(frozen=True)
class Gap:
    """A stretch with no frames from a live source: after which frame, how long, why."""

    after_frame_index: int
    seconds: float
    reason: str

    def __iter__(self):  # unpacks as (after_frame_index, seconds, reason)
        return iter((self.after_frame_index, self.seconds, self.reason))


def sanitize_fps(reported) -> float | None:
    """The container's fps if it is believable (finite, 0 < fps ≤ 1000), else None."""
    try:
        fps = float(reported)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(fps) or fps <= 0.0 or fps > MAX_SANE_FPS:
        return None
    return fps


def _camera_index(spec) -> int | None:
    if isinstance(spec, bool):
        return None
    if isinstance(spec, int):
        return spec
    if isinstance(spec, str) and spec.strip().isdigit():
        return int(spec.strip())
    return None


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """Decoders occasionally hand back grey or BGRA frames; stages expect BGR uint8 H×W×3."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image)
    return np.ascontiguousarray(image)


class Source:
    """Common surface of all sources (iterator of ``Frame``, context manager)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._fps = DEFAULT_FPS
        self._size: tuple[int, int] = (0, 0)
        self.frames_read = 0
        self.frames_dropped = 0
        self.reconnects = 0
        self.gaps: list[Gap] = []
        self.error: str | None = None
        self.warnings: list[str] = []

    name = property(lambda self: self._name, doc="Display name, credentials masked.")
    fps = property(lambda self: self._fps, doc="Frames per second (25.0 when unknown).")
    is_live = property(lambda self: False)
    frame_count = property(lambda self: None, doc="Frames in a file, None when unknown or live.")
    size = property(lambda self: self._size, doc="(width, height) of the latest frame.")

    def _set_fps(self, reported) -> None:
        fps = sanitize_fps(reported)
        if fps is None:
            message = f"{self._name}: fps reported as {reported!r}; assuming {DEFAULT_FPS:g}"
            log.warning(message)
            self.warnings.append(message)
            fps = DEFAULT_FPS
        self._fps = fps

    def __iter__(self) -> Iterator[Frame]:
        return self

    def request_stop(self) -> None:
        """Ask the source to end iteration soon. Only sets flags: safe in a signal handler."""
        raise NotImplementedError

    def __next__(self) -> Frame:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r})"


class FileSource(Source):
    """Reads a video file (or a non-live URL) frame by frame; loses no frame."""

    def __init__(self, path, *, capture_factory: Callable | None = None) -> None:
        spec = str(path)
        super().__init__(mask_credentials(spec))
        self._path = spec
        if not is_url(spec):
            if not os.path.exists(spec):
                raise SourceError(f"video file not found: {spec}")
            if os.path.isdir(spec):
                raise SourceError(f"cannot open video: {spec} (it is a directory)")
            if not os.access(spec, os.R_OK):
                raise SourceError(f"cannot read video file: {spec} (permission denied)")
        factory = capture_factory or (lambda s: cv2.VideoCapture(s, cv2.CAP_FFMPEG))
        self._cap = factory(spec)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"cannot open video: {self.name} (not a video, or an unsupported codec)")
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self._frame_count = int(count) if math.isfinite(count) and count > 0 else None
        self._set_fps(self._cap.get(cv2.CAP_PROP_FPS))
        self._size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                      int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._last_time = -1.0
        self._done = False
        self._stop_requested = False
        # Read the first frame now so an empty video fails at open, not mid-run.
        self._pending = self._read()
        if self._pending is None:
            self.close()
            raise SourceError(f"video has no frames: {self.name}")

    frame_count = property(lambda self: self._frame_count)

    def _read(self) -> Frame | None:
        try:
            ok, image = self._cap.read()
        except cv2.error as error:  # a corrupt packet can raise instead of returning False
            log.debug("%s: decoder raised %s", self.name, error)
            ok, image = False, None
        if not ok or image is None or image.size == 0:
            return None
        index = self.frames_read
        position_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        time_s = position_ms / 1000.0 if math.isfinite(position_ms) else -1.0
        # Trust the container's clock only while it is sane and moves forward.
        if time_s < 0.0 or (index > 0 and time_s <= self._last_time):
            time_s = 0.0 if index == 0 else self._last_time + 1.0 / self._fps
        self._last_time = time_s
        self.frames_read += 1
        image = _as_bgr(image)
        self._size = (image.shape[1], image.shape[0])
        return Frame(index=index, time_s=time_s, image=image)

    def request_stop(self) -> None:
        self._stop_requested = True

    def __next__(self) -> Frame:
        if self._stop_requested:
            raise StopIteration
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if self._done:
            raise StopIteration
        frame = self._read()
        if frame is None:
            self._finish()
            raise StopIteration
        return frame

    def _finish(self) -> None:
        self._done = True
        if self._frame_count is not None and self.frames_read < self._frame_count:
            message = (f"{self.name}: stopped decoding at frame {self.frames_read} of "
                       f"{self._frame_count} (truncated or corrupt video)")
            log.warning(message)
            self.warnings.append(message)
        self._cap.release()

    def close(self) -> None:
        self._done = True
        self._pending = None
        self._cap.release()


_END = object()  # sentinel: the reader thread has stopped


def _open_live_capture(spec, open_timeout_s: float, read_timeout_s: float):
    """cv2.VideoCapture for a camera index, device path or URL, with bounded timeouts for URLs."""
    index = _camera_index(spec)
    if index is not None:
        return cv2.VideoCapture(index)
    text = str(spec)
    if is_url(text):
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout_s * 1000)]
        return cv2.VideoCapture(text, cv2.CAP_FFMPEG, params)
    return cv2.VideoCapture(text)


class LiveSource(Source):
    """A camera or network stream read by a background thread; keeps only the newest frames.

    ``capture_factory(spec)`` returns an object with ``isOpened/read/get/release``
    (default: cv2.VideoCapture with bounded timeouts); ``sleep(seconds)`` waits
    between reconnection attempts (default: an interruptible wait). Both are
    injectable so tests run fast and deterministically.
    """

    def __init__(self, spec, *, reconnect: ReconnectPolicy = ReconnectPolicy(), queue_size: int = 2,
                 open_timeout_s: float = 10.0, read_timeout_s: float = 10.0,
                 capture_factory: Callable | None = None, sleep: Callable[[float], object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        index = _camera_index(spec)
        display = f"camera {index}" if index is not None else mask_credentials(str(spec))
        super().__init__(display)
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        self._spec = index if index is not None else str(spec)
        self._policy = reconnect
        self._clock = clock
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._factory = capture_factory or (lambda s: _open_live_capture(s, open_timeout_s, read_timeout_s))
        self._queue_size = queue_size
        # One slot more than frames ever occupy, kept for the end sentinel.
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size + 1)
        self._thread: threading.Thread | None = None
        self._finished = False
        self._t0: float | None = None
        self._cap = self._open()
        if self._cap is None:
            if index is not None:
                raise SourceError(f"cannot open camera {index}")
            if is_url(self._spec):
                raise SourceError(f"cannot open stream {self.name}: connection refused or timed out")
            raise SourceError(f"cannot open camera {self.name}")
        self._set_fps(self._cap.get(cv2.CAP_PROP_FPS))
        self._size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
                      int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0))

    is_live = property(lambda self: True)

    def _open(self):
        try:
            cap = self._factory(self._spec)
        except (cv2.error, OSError) as error:
            log.debug("%s: open raised %s", self.name, error)
            return None
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            return None
        return cap

    def start(self) -> None:
        """Start the reader thread (done by the first ``next()`` if not called)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._reader, name=f"source-{self.name}", daemon=True)
            self._thread.start()

    def _offer(self, frame: Frame) -> None:
        """Queue a frame; when full, drop the oldest so the consumer always gets the freshest."""
        while self._queue.qsize() >= self._queue_size:
            try:
                self._queue.get_nowait()
                self.frames_dropped += 1
            except queue.Empty:
                break
        self._queue.put_nowait(frame)

    def _reader(self) -> None:
        cap = self._cap
        try:
            while not self._stop.is_set():
                try:
                    ok, image = cap.read()
                except cv2.error:
                    ok, image = False, None
                if self._stop.is_set():
                    break
                if ok and image is not None and image.size:
                    now = self._clock()
                    if self._t0 is None:
                        self._t0 = now
                    image = _as_bgr(image)
                    self._size = (image.shape[1], image.shape[0])
                    index = self.frames_read
                    self.frames_read += 1
                    self._offer(Frame(index=index, time_s=now - self._t0, image=image))
                    continue
                cap.release()
                cap = self._reconnect("stream ended or read failed")
                if cap is None:
                    break
        finally:
            if cap is not None:
                cap.release()
            self._cap = None
            self._queue.put_nowait(_END)

    def _reconnect(self, reason: str):
        """Reopen with backoff; record the gap. None when given up or stopped."""
        gap_start = self._clock()
        after = self.frames_read - 1
        for attempt in range(self._policy.attempts):
            delay = self._policy.delay(attempt)
            log.warning("%s: %s after frame %d; reconnecting in %.1f s (attempt %d/%d)",
                        self.name, reason, after, delay, attempt + 1, self._policy.attempts)
            self._sleep(delay)
            if self._stop.is_set():
                return None
            cap = self._open()
            if cap is not None:
                self.reconnects += 1
                gap = Gap(after, self._clock() - gap_start, reason)
                self.gaps.append(gap)
                log.warning("%s: reconnected after %.1f s", self.name, gap.seconds)
                return cap
        self.error = (f"{self.name}: {reason}; gave up after {self._policy.attempts} "
                      f"reconnection attempts")
        self.gaps.append(Gap(after, self._clock() - gap_start, f"{reason}; gave up"))
        log.error(self.error)
        return None

    def request_stop(self) -> None:
        # Only an Event.set (no queue locks): safe from a signal handler. The reader
        # thread ends after its current read and queues the end sentinel.
        self._stop.set()

    def __next__(self) -> Frame:
        if self._finished:
            raise StopIteration
        if self._stop.is_set() and self._thread is None:
            self._finished = True
            raise StopIteration
        self.start()
        item = self._queue.get()
        if item is _END:
            self._finished = True
            raise StopIteration
        return item

    def close(self, timeout_s: float = 15.0) -> None:
        """Stop the reader thread (it releases the capture) and end iteration."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("%s: reader thread still blocked in read() after %.0f s", self.name, timeout_s)
        elif self._cap is not None:
            self._cap.release()
            self._cap = None
        self._finished = True


def open_source(spec, *, live: bool | None = None, reconnect: ReconnectPolicy = ReconnectPolicy(),
                **options) -> Source:
    """Open ``spec`` (path, camera index, device path or URL) as a ``Source``.

    ``live=None`` decides by the spec: cameras, devices and URLs are live,
    paths are files. ``live=False`` reads a URL like a file (no drops);
    ``live=True`` reads a file like a stream. ``options`` go to the source
    class (e.g. ``queue_size``, ``open_timeout_s``, ``capture_factory``).
    Raises ``SourceError`` with a one-line message.
    """
    if isinstance(spec, Path):
        spec = str(spec)
    if _camera_index(spec) is None and not isinstance(spec, str):
        raise SourceError(f"bad source: {spec!r} (expected a path, a camera index or a URL)")
    if live is None:
        text = str(spec)
        live = _camera_index(spec) is not None or is_url(text) or text.startswith("/dev/video")
    if live:
        return LiveSource(spec, reconnect=reconnect, **options)
    return FileSource(spec, **options)
