"""A lane's input: the reader thread that iterates the source and hands items to the lane.

A file's reader waits for a free frame slot, so no frame is lost; a live camera's reader
keeps the newest ``LIVE_BUFFER_FRAMES`` and drops the oldest when the lane is behind
(counted in the camera's ``Health``). Gaps and the end of the source are never dropped.
The decoder's own time is recorded as ``decode``; the rest of the time spent in the
source (a live camera waiting for its next frame) is ``decode``'s wait, so a camera at
25 fps does not look like a decoder that takes 40 ms.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from edge.health import Health
from edge.metrics import Metrics
from edge.records import Frame

log = logging.getLogger(__name__)

LIVE_BUFFER_FRAMES = 8  # ~0.3 s at 25 fps
FILE_FRAME_SLOTS = 4    # a file's frames between the reader and the lane


@dataclass(frozen=True)
class SourceDone:
    """The source ended (``error``: why, when it failed)."""

    error: str | None = None


@dataclass(frozen=True)
class Arrival:
    """An item from the source and when it was handed over (``perf_counter_ns``)."""

    item: object  # Frame | Gap | SourceDone
    queued_ns: int


LIVE_ITEMS = object()  # inbox token: the live buffer holds items for the lane to take


class _LiveBuffer:
    """The newest ``capacity`` frames, oldest dropped first; one wake-up token when it stops being empty."""

    def __init__(self, capacity: int, wake: Callable[[object], None], health: Health) -> None:
        self._items: deque[Arrival] = deque()
        self._frames = 0
        self._capacity = capacity
        self._wake = wake
        self._health = health
        self._lock = threading.Lock()

    def put(self, arrival: Arrival) -> None:
        with self._lock:
            if isinstance(arrival.item, Frame) and self._frames >= self._capacity:
                for index, held in enumerate(self._items):
                    if isinstance(held.item, Frame):
                        del self._items[index]
                        self._frames -= 1
                        self._health.dropped += 1  # the lane is behind: keep the freshest frames
                        break
            self._items.append(arrival)
            self._frames += isinstance(arrival.item, Frame)
            wake = len(self._items) == 1
        if wake:
            self._wake(LIVE_ITEMS)

    def take(self) -> list[Arrival]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._frames = 0
            return items


class LaneInput:
    """Runs ``source`` on a reader thread and puts ``Arrival`` items on ``inbox_put``.

    ``take_live()`` (lane thread) returns what a live buffer holds after a ``LIVE_ITEMS``
    token; ``frame_done()`` (lane thread) frees a file's frame slot once a frame is handled.
    """

    def __init__(self, source, health: Health, metrics: Metrics, inbox_put: Callable[[object], None], *,
                 live: bool) -> None:
        self.source = source
        self.health = health
        self.live = bool(live)
        self._metrics = metrics
        self._inbox_put = inbox_put
        self._live_buffer = _LiveBuffer(LIVE_BUFFER_FRAMES, inbox_put, health) if self.live else None
        self._slots = threading.Semaphore(FILE_FRAME_SLOTS)
        self._abandoned = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, name: str) -> None:
        self.thread = threading.Thread(target=self._read, name=f"reader-{name}", daemon=True)
        self.thread.start()

    def take_live(self) -> list[Arrival]:
        return self._live_buffer.take()

    def frame_done(self) -> None:
        if self._live_buffer is None:
            self._slots.release()

    def request_stop(self) -> None:
        """Stop reading soon (signal-safe: only sets flags)."""
        self.source.request_stop()

    def abandon(self) -> None:
        """The lane failed: stop reading and never wait for a slot again."""
        self._abandoned.set()
        self.source.request_stop()
        self._slots.release(FILE_FRAME_SLOTS + 1)

    def _read(self) -> None:
        error = None
        deliver = self._live_buffer.put if self._live_buffer is not None else self._inbox_put
        frames = iter(self.source)
        try:
            while True:
                t0 = time.perf_counter_ns()
                item = next(frames, None)
                if item is None:
                    break
                if isinstance(item, Frame):
                    self._time_read(item, (time.perf_counter_ns() - t0) / 1e6)
                    if self._live_buffer is None:
                        self._slots.acquire()  # a file waits: no frame is lost
                if self._abandoned.is_set():
                    break
                deliver(Arrival(item, time.perf_counter_ns()))
        except Exception as exc:  # a decoder fault must end this camera cleanly, not silently
            error = f"{self.source.name}: reading failed: {type(exc).__name__}: {exc}"
            log.error(error)
        finally:
            deliver(Arrival(SourceDone(error), time.perf_counter_ns()))

    def _time_read(self, frame: Frame, read_ms: float) -> None:
        decode_ms = read_ms if frame.decode_ms is None else min(frame.decode_ms, read_ms)
        self._metrics.record("decode", decode_ms)
        if frame.decode_ms is not None:
            self._metrics.add_wait("decode", read_ms - decode_ms)


__all__ = ["Arrival", "LIVE_BUFFER_FRAMES", "LIVE_ITEMS", "LaneInput", "SourceDone"]
