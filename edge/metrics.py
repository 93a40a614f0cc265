"""Stage timings and throughput, with bounded memory. Metrics never draw.

Each stage keeps two series of milliseconds: ``own`` (the work itself) and
``wait`` (time spent blocked on something else, e.g. waiting for a free
inference request), so a slow stage is not blamed for another's queue. Each
series keeps the last ``window`` samples in a fixed ring (percentiles are
over that window) plus all-time count, sum and max — memory stays constant
however long the box runs.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Callable

import numpy as np

# frame_to_label: from the newest frame of a clip being decoded to its prediction (the events' end_to_end).
STAGES = ("decode", "preprocess", "inference", "postprocess", "overlay_write", "frame_to_label")
DEFAULT_WINDOW = 10_000


class SampleRing:
    """The last ``capacity`` samples (float64, fixed array) plus all-time count, total and max."""

    def __init__(self, capacity: int = DEFAULT_WINDOW) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._values = np.zeros(capacity, dtype=np.float64)
        self._next = 0
        self.count = 0
        self.total = 0.0
        self.max_all = -math.inf
        self.recent: float | None = None  # EMA of recent samples: cheap enough to read every frame

    def add(self, value: float) -> None:
        self.recent = value if self.recent is None else 0.9 * self.recent + 0.1 * value
        self._values[self._next] = value
        self._next = (self._next + 1) % self._values.shape[0]
        self.count += 1
        self.total += value
        if value > self.max_all:
            self.max_all = value

    def window(self) -> np.ndarray:
        """The samples currently held (a copy, order not meaningful)."""
        return self._values[: min(self.count, self._values.shape[0])].copy()

    def stats(self) -> dict:
        """{p50, p90, p99, max, mean, count, max_all}; percentiles/mean/max over the window,
        ``count`` and ``max_all`` over all time. Values are None when empty."""
        held = self.window()
        if held.size == 0:
            return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None, "count": 0,
                    "max_all": None}
        p50, p90, p99 = np.percentile(held, [50, 90, 99])
        return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(held.max()),
                "mean": float(held.mean()), "count": self.count, "max_all": float(self.max_all)}


class RateMeter:
    """Events per second over a sliding time window (bounded deque of timestamps).

    No rate until the events seen span ``min_span_s``: two frames decoded back to
    back at start-up are not "730 fps".
    """

    def __init__(self, window_s: float = 5.0, max_events: int = 4096, min_span_s: float = 1.0) -> None:
        self.window_ns = int(window_s * 1e9)
        self.min_span_ns = int(min_span_s * 1e9)
        self._times: deque[int] = deque(maxlen=max_events)

    def tick(self, now_ns: int) -> None:
        self._times.append(now_ns)
        while self._times and now_ns - self._times[0] > self.window_ns:
            self._times.popleft()

    def rate(self, now_ns: int) -> float | None:
        while self._times and now_ns - self._times[0] > self.window_ns:
            self._times.popleft()
        if len(self._times) < 2:
            return None
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) * 1e9 / span if span > 0 and span >= self.min_span_ns else None


class Metrics:
    """Per-stage latency samples and throughput counters for one run. Thread-safe.

    ``input_fps``: the source's nominal fps (set by the pipeline). Frames are
    counted when read (``count_frame``) and, optionally, when written
    (``count_output``); processing fps counts written frames when any are
    counted, else read frames, overall and over a sliding window.
    """

    def __init__(self, window: int = DEFAULT_WINDOW, rate_window_s: float = 5.0,
                 clock_ns: Callable[[], int] = time.perf_counter_ns, input_fps: float | None = None) -> None:
        self.clock_ns = clock_ns
        self.input_fps = input_fps
        self._window = window
        self._own: dict[str, SampleRing] = {stage: SampleRing(window) for stage in STAGES}
        self._wait: dict[str, SampleRing] = {}
        self._lock = threading.Lock()
        self._started_ns = clock_ns()
        self._frame_rate = RateMeter(rate_window_s)
        self._output_rate = RateMeter(rate_window_s)
        self._clip_rate = RateMeter(rate_window_s)
        self._first_media_s: float | None = None
        self._last_media_s: float | None = None
        self.frames = 0
        self.frames_out = 0
        self.clips = 0
        self.skipped_clips = 0

    # -- stage samples -------------------------------------------------------------
    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            ring = self._own.get(stage)
            if ring is None:
                ring = self._own[stage] = SampleRing(self._window)
            ring.add(float(ms))

    record = add  # the name the lanes use

    def add_wait(self, stage: str, ms: float) -> None:
        with self._lock:
            ring = self._wait.get(stage)
            if ring is None:
                ring = self._wait[stage] = SampleRing(self._window)
            ring.add(float(ms))

    def samples(self, stage: str, wait: bool = False) -> "np.ndarray":
        """The samples a stage holds now (own time unless ``wait``), e.g. to pool several cameras."""
        with self._lock:
            ring = (self._wait if wait else self._own).get(stage)
            return ring.window() if ring is not None else np.empty(0)

    def percentiles(self, stage: str, wait: bool = False) -> dict:
        """{p50, p90, p99, max, mean, count, max_all} in ms for a stage (own time unless ``wait``)."""
        with self._lock:
            ring = (self._wait if wait else self._own).get(stage)
            return ring.stats() if ring is not None else SampleRing(1).stats()

    # -- throughput ------------------------------------------------------------------
    def count_frame(self, time_s: float | None = None) -> None:
        """One frame read from the source; ``time_s`` (its media time) lets ``media_fps`` measure the input rate."""
        now = self.clock_ns()
        with self._lock:
            self.frames += 1
            self._frame_rate.tick(now)
            if time_s is not None and math.isfinite(time_s):
                if self._first_media_s is None:
                    self._first_media_s = time_s
                self._last_media_s = time_s

    def media_fps(self) -> float | None:
        """Frames per second of media time seen so far (the input's real rate)."""
        with self._lock:
            if self._first_media_s is None or self.frames < 2:
                return None
            span = self._last_media_s - self._first_media_s
            return (self.frames - 1) / span if span > 0 else None

    def count_output(self, n: int = 1) -> None:
        now = self.clock_ns()
        with self._lock:
            self.frames_out += n
            for _ in range(n):
                self._output_rate.tick(now)

    def count_clip(self) -> None:
        now = self.clock_ns()
        with self._lock:
            self.clips += 1
            self._clip_rate.tick(now)

    def count_skipped(self, n: int = 1) -> None:
        with self._lock:
            self.skipped_clips += n

    def elapsed_s(self) -> float:
        return (self.clock_ns() - self._started_ns) / 1e9

    def processing_fps(self) -> float | None:
        """Frames per second since the start: written frames if any are counted, else read frames."""
        elapsed = self.elapsed_s()
        done = self.frames_out or self.frames
        return done / elapsed if elapsed > 0 and done else None

    def current_fps(self) -> float | None:
        """Frames per second over the sliding window (written frames if counted, else read frames)."""
        with self._lock:
            meter = self._output_rate if self.frames_out else self._frame_rate
            return meter.rate(self.clock_ns())

    def overlay_numbers(self) -> dict:
        """{fps, infer_ms, e2e_ms} for ``overlay.overlay_state(stats=...)``; O(1), fine every frame."""
        fps = self.current_fps()
        with self._lock:
            infer = self._own["inference"].recent
            e2e = self._own["frame_to_label"].recent
        return {"fps": fps, "infer_ms": infer, "e2e_ms": e2e}

    def current_clips_per_s(self) -> float | None:
        with self._lock:
            return self._clip_rate.rate(self.clock_ns())

    # -- reports -------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """Plain dict for summary.json (see ``sinks.format_summary``)."""
        elapsed = self.elapsed_s()
        with self._lock:
            own = {stage: ring.stats() for stage, ring in self._own.items()}
            waits = {stage: ring.stats() for stage, ring in self._wait.items()}
            frames, frames_out, clips, skipped = self.frames, self.frames_out, self.clips, self.skipped_clips
        return {
            "frames": frames,
            "frames_written": frames_out,
            "clips": clips,
            "skipped_clips": skipped,
            "elapsed_s": round(elapsed, 3),
            "input_fps": self.input_fps,
            "media_fps": self.media_fps(),
            "processing_fps": (frames_out or frames) / elapsed if elapsed > 0 and (frames_out or frames) else None,
            "clips_per_s": clips / elapsed if elapsed > 0 and clips else None,
            "latency_ms": own,
            "wait_ms": waits,
        }
