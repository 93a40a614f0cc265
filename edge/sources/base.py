"""What every source shares: the items it yields, reconnection with backoff, health state.

A ``Source`` is a blocking iterator run in its caller's thread (a lane's reader thread).
It owns no thread. Each open of the underlying input is a *connection* (PyAV container
or cv2 capture) that yields ``Picture`` items; the source numbers them into ``Frame``
records, and for live inputs replaces a connection that ended or was restarted, yielding
a ``Gap`` when it is back.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple, Protocol

import numpy as np

from edge.health import CameraState, Health
from edge.records import Frame

log = logging.getLogger("edge.sources")

DEFAULT_FPS = 25.0
MAX_SANE_FPS = 1000.0
# request_stop() may run in a signal handler, so it only sets a flag: waits look at it this often.
STOP_POLL_S = 0.2


class SourceError(Exception):
    """A source cannot be opened; ``str(error)`` is one line for the user."""


class OpenFailed(Exception):
    """A (re)opening attempt failed; ``str(error)`` is the one-line reason (credentials masked)."""


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a live source reopens a dropped stream.

    ``attempts`` reopenings, waiting ``delay_s``, then twice as long each time, capped at
    ``max_delay_s``. The count starts again once a frame has arrived, so a stream that opens
    but never gives a picture still runs out of attempts. Out of attempts, the source gives up
    (``give_up``, a run) or goes ``offline`` and keeps trying every ``max_delay_s`` (a service:
    a camera that reboots comes back by itself).
    """

    attempts: int = 10
    delay_s: float = 1.0
    max_delay_s: float = 30.0
    give_up: bool = True

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reopening attempt ``attempt`` (0-based)."""
        return min(self.delay_s * (2.0 ** min(attempt, 64)), self.max_delay_s)


@dataclass(frozen=True)
class DecodeOptions:
    """How PyAV decodes: ``hwaccel`` auto|none|qsv|vaapi; ``threads``, the decoder's slice
    threads (None = FFmpeg's choice, one per core). Values as the config validated them."""

    hwaccel: str = "auto"
    threads: int | None = None


@dataclass(frozen=True)
class Gap:
    """No frames from a live source for a while: after which frame, how long, why.

    ``gave_up`` marks the last item of a source that ran out of reconnection attempts.
    """

    after_frame_index: int
    seconds: float
    reason: str
    gave_up: bool = False


def sanitize_fps(reported) -> float | None:
    """The container's fps if it is believable (finite, 0 < fps ≤ 1000), else None."""
    try:
        fps = float(reported)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(fps) or fps <= 0.0 or fps > MAX_SANE_FPS:
        return None
    return fps


class Picture(NamedTuple):
    """One decoded picture from a connection, before the source numbers it."""

    image: np.ndarray | None                                        # BGR uint8 H×W×3 C-contiguous
    planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None        # yuv420p Y, U, V
    media_s: float | None                                           # the stream's clock, None if it has none
    decode_ms: float | None = None  # the decoder's own time for this picture (None: not separable from reading)


class Connection(Protocol):
    """One open of a source's input."""

    reported_fps: object           # what the container says (sanitised by the source)
    size: tuple[int, int]
    frame_count: int | None
    corrupt_packets: int
    end_reason: str | None         # why pictures() ended early (None: a clean end of stream)

    def pictures(self, interrupted: Callable[[], bool]) -> Iterator[Picture]: ...
    def close(self) -> None: ...


class Source:
    """Iterator of ``Frame`` and ``Gap`` items, and a context manager.

    Subclasses provide ``_connect() -> Connection`` (raising ``OpenFailed``) and
    ``_first_open_error(reason) -> SourceError``.

    Health (``health``, an ``edge.health.Health`` that the source moves from the reading
    thread; readable from any thread, and shown as ``state``, ``state_reason``,
    ``frames_read``, ``reconnects``, ``last_frame_monotonic``), and ``corrupt_packets``,
    ``gaps``, ``error`` (one line once given up), ``warnings``.
    """

    want_image = True  # BGR images wanted; PyAV sources deliver only yuv420p planes when False

    def __init__(self, name: str, *, live: bool, reconnect: ReconnectPolicy = ReconnectPolicy(),
                 sleep: Callable[[float], object] | None = None,
                 clock: Callable[[], float] = time.monotonic, health: Health | None = None) -> None:
        self._name = name
        self._live = live
        self._policy = reconnect
        self._clock = clock
        self._sleep = sleep
        self._fps = DEFAULT_FPS
        self._fps_known = False
        self._size: tuple[int, int] = (0, 0)
        self._frame_count: int | None = None
        self._owns_health = health is None
        self.health = health if health is not None else Health(clock=clock)
        self.ended: str | None = None     # why iteration ended ("end of file", "stopped"), None while it runs
        self.gaps = 0
        self.error: str | None = None
        self.warnings: list[str] = []
        self._corrupt_before = 0          # corrupt packets of connections already closed
        self._connection: Connection | None = None
        self._pictures: Iterator[Picture] | None = None
        self._stop_requested = False
        self._restart_lock = threading.Lock()
        self._restart_reason: str | None = None
        self._next_lock = threading.Lock()
        self._items: Iterator | None = None
        self._pending: Frame | None = None
        self._attempt = 0                 # reopening attempts since the last frame
        self._t0: float | None = None
        self._last_media_s = -1.0

    name = property(lambda self: self._name, doc="Display name, credentials masked.")
    fps = property(lambda self: self._fps, doc="Frames per second (25.0 when unknown).")
    is_live = property(lambda self: self._live)
    frame_count = property(lambda self: self._frame_count, doc="Frames in a file, None when unknown or live.")
    size = property(lambda self: self._size, doc="(width, height) of the latest frame.")
    state = property(lambda self: self.health.state)
    state_reason = property(lambda self: self.health.reason)
    frames_read = property(lambda self: self.health.frames)
    reconnects = property(lambda self: self.health.reconnects)
    last_frame_monotonic = property(lambda self: self.health.last_frame_monotonic)

    @property
    def corrupt_packets(self) -> int:
        """Packets the demuxer flagged or the decoder rejected (skipped, not fatal)."""
        connection = self._connection
        return self._corrupt_before + (connection.corrupt_packets if connection is not None else 0)

    # -------------------------------------------------------------------------- opening

    def _connect(self) -> Connection:
        raise NotImplementedError

    def _first_open_error(self, reason: str) -> SourceError:
        raise NotImplementedError

    def _open_first(self) -> None:
        """Open the input at construction; a failure is a one-line ``SourceError``."""
        try:
            connection = self._connect()
        except OpenFailed as failure:
            self.health.set(CameraState.OFFLINE, str(failure))
            raise self._first_open_error(str(failure)) from None
        self._adopt(connection, first=True)

    def _adopt(self, connection: Connection, first: bool = False) -> None:
        self._connection = connection
        self._pictures = connection.pictures(self._interrupted)
        with self._restart_lock:
            self._restart_reason = None  # a restart asked for the previous connection
        if first or not self._fps_known:
            self._set_fps(connection.reported_fps, warn=first)
        if connection.size[0] > 0:
            self._size = connection.size
        if not self._live:
            self._frame_count = connection.frame_count

    def _set_fps(self, reported, warn: bool) -> None:
        fps = sanitize_fps(reported)
        if fps is None:
            if warn and not self._live:
                self._warn(f"{self._name}: fps reported as {reported!r}; assuming {DEFAULT_FPS:g}")
            fps = DEFAULT_FPS
        else:
            self._fps_known = True
        self._fps = fps

    def _end(self, reason: str) -> None:
        """Iteration is over (``ended`` says why). A source that made its own ``Health`` is then
        ``finished``; one handed a camera's ``Health`` leaves that to the camera's owner, who
        finishes the camera once its last clip is out."""
        self.ended = reason
        if self._owns_health:
            self.health.set(CameraState.FINISHED, reason)

    def _warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)

    # -------------------------------------------------------------------------- control

    def restart(self, reason: str) -> None:
        """Drop the current connection and reconnect (live sources; ignored for files).

        Thread-safe. The reader notices between packets, or when a blocked read times out,
        and records a ``Gap`` with ``reason``.
        """
        if not self._live:
            log.debug("%s: restart(%r) ignored: not a live source", self._name, reason)
            return
        with self._restart_lock:
            self._restart_reason = reason

    def request_stop(self) -> None:
        """Ask the iteration to end soon. Only sets a flag: safe in a signal handler."""
        self._stop_requested = True

    def _interrupted(self) -> bool:
        return self._stop_requested or self._restart_reason is not None

    def _wait(self, seconds: float) -> bool:
        """Wait ``seconds`` unless a stop is requested; False when stopped."""
        if self._sleep is not None:
            self._sleep(seconds)
            return not self._stop_requested
        deadline = self._clock() + seconds
        pause = threading.Event()
        while not self._stop_requested:
            left = deadline - self._clock()
            if left <= 0:
                return True
            pause.wait(min(left, STOP_POLL_S))
        return False

    # -------------------------------------------------------------------------- iteration

    def __iter__(self) -> Iterator[Frame | Gap]:
        return self

    def __next__(self) -> Frame | Gap:
        with self._next_lock:
            if self._items is None:
                self._items = self._run()
            if self._stop_requested:
                self._end_iteration()
                raise StopIteration
            return next(self._items)

    def _end_iteration(self) -> None:
        items, self._items = self._items, iter(())
        if hasattr(items, "close"):
            items.close()  # runs _run's finally: the connection is closed
        self._close_connection()
        if self.ended is None and self.health.state is not CameraState.OFFLINE:
            self._end("stopped")

    def _run(self) -> Iterator[Frame | Gap]:
        try:
            if self._pending is not None:
                frame, self._pending = self._pending, None
                yield frame
            while True:
                connection = self._connection
                if connection is None:
                    return
                yield from self._frames()
                reason = self._end_reason(connection)
                self._close_connection()
                if self._stop_requested:
                    self._end("stopped")
                    return
                if not self._live:
                    self._finish(connection)
                    return
                gap = yield from self._reconnect(reason)
                if gap is None:
                    return
        finally:
            self._close_connection()

    def _frames(self) -> Iterator[Frame]:
        for picture in self._pictures:
            yield self._number(picture)

    def _prefetch(self) -> bool:
        """Decode the first frame now (a file with none fails at open, not mid-run)."""
        picture = next(self._pictures, None)
        if picture is None:
            return False
        self._pending = self._number(picture)
        return True

    def _number(self, picture: Picture) -> Frame:
        now = self._clock()
        index = self.health.frames
        if self._live:
            if self._t0 is None:
                self._t0 = now
            time_s = now - self._t0
        else:
            time_s = picture.media_s
            # Trust the container's clock only while it is sane and moves forward.
            sane = time_s is not None and math.isfinite(time_s) and time_s >= 0.0
            if not sane or (index > 0 and time_s <= self._last_media_s):
                time_s = 0.0 if index == 0 else self._last_media_s + 1.0 / self._fps
            self._last_media_s = time_s
        self._attempt = 0
        if picture.image is not None:
            self._size = (picture.image.shape[1], picture.image.shape[0])
        elif picture.planes is not None:
            self._size = (picture.planes[0].shape[1], picture.planes[0].shape[0])
        if self.health.state in (CameraState.RECONNECTING, CameraState.OFFLINE):
            log.info("%s: online again at frame %d", self._name, index)
        self.health.frame()
        return Frame(index=index, time_s=time_s, image=picture.image, wall_s=time.time(), planes=picture.planes,
                     decode_ms=picture.decode_ms)

    def _end_reason(self, connection: Connection) -> str:
        with self._restart_lock:
            restart, self._restart_reason = self._restart_reason, None
        if restart:
            return restart
        return connection.end_reason or "stream ended"

    def _reconnect(self, reason: str):
        """Reopen with backoff (a generator: yields the ``Gap``). Returns the gap, or None when it ended.

        Out of quick attempts, a policy that gives up ends with a ``Gap(gave_up=True)``; otherwise
        the camera is ``offline`` (with its reason) and a reopening is tried every ``max_delay_s``.
        """
        gap_start = self._clock()
        after = self.health.frames - 1
        attempts = self._policy.attempts
        self.health.set(CameraState.RECONNECTING, reason)
        last_failure = None
        while True:
            if self._attempt >= attempts:
                if self._policy.give_up:
                    break
                because = f" (last attempt: {last_failure})" if last_failure else ""
                delay = self._policy.max_delay_s
                self.health.set(CameraState.OFFLINE, f"{reason}; retrying every {delay:g} s{because}")
            else:
                delay = self._policy.delay(self._attempt)
                self._attempt += 1
                log.warning("%s: %s after frame %d; reconnecting in %.1f s (attempt %d/%d)",
                            self._name, reason, after, delay, self._attempt, attempts)
            self.health.reconnect_attempts += 1
            if not self._wait(delay):
                self._end("stopped")
                return None
            try:
                connection = self._connect()
            except OpenFailed as failure:
                if last_failure != str(failure):
                    log.warning("%s: reconnection failed: %s", self._name, failure)
                last_failure = str(failure)
                continue
            self._adopt(connection)
            self.health.reconnects += 1
            self.gaps += 1
            gap = Gap(after, self._clock() - gap_start, reason)
            log.warning("%s: reconnected after %.1f s", self._name, gap.seconds)
            yield gap
            return gap
        because = f"; last attempt: {last_failure}" if last_failure else ""
        reason_given_up = f"{reason}; gave up after {attempts} reconnection attempts{because}"
        self.error = f"{self._name}: {reason_given_up}"
        self.health.set(CameraState.OFFLINE, reason_given_up)
        log.error(self.error)
        self.gaps += 1
        gap = Gap(after, self._clock() - gap_start, f"{reason}; gave up", gave_up=True)
        yield gap
        return None

    def _finish(self, connection: Connection) -> None:
        """A file ended: say so if it ended early or skipped corrupt packets."""
        frames = self.health.frames
        if self._frame_count is not None and frames < self._frame_count:
            self._warn(f"{self._name}: stopped decoding at frame {frames} of "
                       f"{self._frame_count} (truncated or corrupt video)")
        elif connection.end_reason:
            self._warn(f"{self._name}: stopped decoding at frame {frames} ({connection.end_reason})")
        if self.corrupt_packets:
            first = getattr(connection, "first_decoder_error", None)
            self._warn(f"{self._name}: decoded past {self.corrupt_packets} corrupt packet(s)"
                       + (f" (decoder: {first})" if first else ""))
        self._end("end of file")

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        pictures, self._pictures = self._pictures, None
        if hasattr(pictures, "close"):
            pictures.close()
        if connection is not None:
            self._corrupt_before += connection.corrupt_packets
            connection.close()

    def close(self) -> None:
        """End iteration and release the input. Idempotent."""
        self._stop_requested = True
        # A reader in another thread may be inside next(): it ends itself at its next check.
        if self._next_lock.acquire(timeout=STOP_POLL_S):
            try:
                self._end_iteration()
            finally:
                self._next_lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r})"
