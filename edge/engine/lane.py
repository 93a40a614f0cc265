"""One camera's lane: input → clip stage → (shared scheduler) → reporter → frame output.

Two threads per camera. The **reader** (``LaneInput``) iterates the source and hands
frames, gaps and the end of the source to the lane's inbox. The **lane thread** runs the
short loop below over that inbox, which also receives the scheduler's outcomes addressed
to this lane, so every part runs on one thread and needs no lock:

- a frame goes to the ``ClipStage`` (ring, sampler, gate, tickets) and the ``FrameOutput``;
- an outcome is settled by the clip stage, which hands complete clips, in clip order, to
  the ``Reporter`` (postprocess → prediction line → activities → checks → ``emit``);
- a gap goes to the reporter; the end of the source ends the loop once no clip is in flight.

The camera's ``Health`` (state, reason, counters) is moved by the source on the reader
thread; the lane only listens, and moves it itself when the lane fails or ends. A lane never
reaches into another; what it reports goes through ``emit``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque

from edge.engine.clips import ClipStage
from edge.engine.input import LIVE_ITEMS, Arrival, LaneInput, SourceDone
from edge.engine.output import FrameOutput
from edge.engine.reporter import Reporter
from edge.engine.scheduler import Outcome
from edge.engine.summary import CameraSummary
from edge.health import CameraState, Health
from edge.metrics import Metrics
from edge.overlay import overlay_state
from edge.postprocess import now_iso
from edge.preprocess import IMPLEMENTATION
from edge.records import Frame
from edge.events import CheckEvent, StatusEvent

log = logging.getLogger(__name__)


class Lane:
    """One camera. ``start()`` its threads, ``request_stop()`` (signal-safe), ``join()``, ``summary()``.

    Built by ``edge.engine.build``: ``input`` is None (with ``health`` already ``offline``)
    when the camera's source could not be opened; the other cameras carry on.
    """

    def __init__(self, camera, *, health: Health, input: LaneInput | None, clips: ClipStage, reporter: Reporter,
                 output: FrameOutput, sinks=(), emit, metrics: Metrics, inbox: queue.Queue, run_id: str) -> None:
        self.camera = camera
        self.name = camera.name
        self.health = health
        self.input = input
        self.clips = clips
        self.reporter = reporter
        self.output = output
        self.sinks = list(sinks)
        self.metrics = metrics
        self.inbox = inbox
        self.run_id = run_id  # for the summary; events are stamped by the service's emit
        self.live = bool(camera.live)
        self.source_name = reporter.source_name
        self._emit = emit
        self._deferred: deque = deque()
        self._source_done = False
        self._final: tuple[CameraState, str | None] = (CameraState.FINISHED, None)
        self._last_gap = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._sinks_held = False

    # -- what others read ----------------------------------------------------------------------

    @property
    def source(self):
        return self.input.source if self.input is not None else None

    @property
    def state(self) -> CameraState:
        return self.health.state

    @property
    def done(self) -> bool:
        threads = [t for t in (self._thread, self.input.thread if self.input else None) if t is not None]
        return self._started and not any(thread.is_alive() for thread in threads)

    @property
    def warnings(self) -> list[str]:
        return self.reporter.warnings

    # -- threads -------------------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        self.health.listen(self._on_health)
        if self.input is None:
            self._close_sinks()
            return
        self._thread = threading.Thread(target=self._work, name=f"lane-{self.name}", daemon=True)
        self._thread.start()
        self.input.start(self.name)

    def request_stop(self) -> None:
        """Stop reading soon; in-flight clips are finished. Only sets flags: safe in a signal handler."""
        self._stopping.set()
        if self.input is not None:
            self.input.request_stop()

    def restart_source(self, reason: str) -> None:
        """The watchdog's call: the source reconnects (recorded as a gap)."""
        if self.input is not None:
            self.input.source.restart(reason)

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in (self._thread, self.input.thread if self.input else None):
            if thread is not None:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self.done

    def _on_health(self, state: CameraState, reason: str | None) -> None:
        self._emit(StatusEvent(camera=self.name, state=state.value, reason=reason, wall_time=now_iso()))

    # -- the loop ------------------------------------------------------------------------------

    def _work(self) -> None:
        try:
            while not (self._source_done and not self.clips.in_flight and not self._deferred):
                self._handle(self._next_item())
            self.output.flush(final=True)
            if self._last_gap is not None:  # after the clips that were in flight, as it happened last
                self.reporter.on_gap(self._last_gap)
            self.reporter.on_end()
            self.health.set(*self._final)
        except Exception as exc:  # a bug in one lane must not take the service down unseen
            log.exception("%s: lane stopped: %s", self.name, exc)
            self.reporter.warn(f"{self.name}: lane stopped: {type(exc).__name__}: {exc}")
            self.health.set(CameraState.OFFLINE, f"internal error: {exc}")
            self._stopping.set()
            self.input.abandon()
            self._drain_after_error()
        finally:
            self._close_sinks()

    def _next_item(self):
        """The next thing to handle. A live camera with a check deadline pending wakes for it."""
        if self._deferred:
            return self._deferred.popleft()
        while True:
            deadline = self.reporter.next_deadline()
            if deadline is None:
                return self.inbox.get()
            try:
                return self.inbox.get(timeout=max(0.0, deadline - time.time()) + 0.01)
            except queue.Empty:  # an absence: the deadline passed with no prediction to carry it
                self.reporter.on_clock()

    def _handle(self, item) -> None:
        if isinstance(item, Outcome):
            self.clips.settle(item)
        elif item is LIVE_ITEMS:
            self._deferred.extend(self.input.take_live())
        elif isinstance(item.item, Frame):
            try:
                self._on_frame(item)
            finally:
                self.input.frame_done()
        elif isinstance(item.item, SourceDone):
            self._on_source_done(item.item)
        else:
            self._on_gap(item.item)

    def _on_frame(self, arrival: Arrival) -> None:
        frame = arrival.item
        self.metrics.count_frame(frame.time_s)
        self.clips.push(frame, arrival.queued_ns)
        self.output.add(frame)

    def wait_for_outcome(self) -> None:
        """Backpressure (the clip stage's): settle one outcome; other items wait their turn."""
        while True:
            item = self.inbox.get()
            if isinstance(item, Outcome):
                self.clips.settle(item)
                return
            if item is LIVE_ITEMS:
                self._deferred.extend(self.input.take_live())
            else:
                self._deferred.append(item)

    def _on_source_done(self, done: SourceDone) -> None:
        source = self.input.source
        error = source.error or done.error
        if not self._stopping.is_set() and done.error is None:
            self.clips.finish()
        self._source_done = True
        for warning in source.warnings:
            self.reporter.warnings.append(warning)
        if error:
            self.reporter.warn(error)
        if error and self.health.state is not CameraState.OFFLINE:
            self._final = (CameraState.OFFLINE, error)
        elif error:  # the source already said why it is offline
            self._final = (CameraState.OFFLINE, self.health.reason)

    def _on_gap(self, gap) -> None:
        if gap.gave_up:  # the stream is gone: this gap is the lane's last line
            self._last_gap = gap
            return
        self.reporter.on_gap(gap)

    def _drain_after_error(self) -> None:
        """After a fault, give every lease back as its outcome arrives so the shared queue is not blocked."""
        self.clips.scheduler.unregister(self.name)
        while self.clips.in_flight:
            item = self._deferred.popleft() if self._deferred else self.inbox.get()
            if isinstance(item, Outcome):
                self.clips.abandon(item)

    def overlay_state(self):
        """What the overlay draws now (the frame output's callback)."""
        reporter = self.reporter
        stats = self.metrics.overlay_numbers() if self.camera.output.overlay_stats else None
        latest = None if reporter.latest_gated else reporter.latest
        warming = None
        if reporter.latest is None and not reporter.latest_gated:
            warming = self.clips.sampler.warming_up
        return overlay_state(latest, warming=warming, untrained=reporter.untrained, stats=stats,
                             threshold=self.camera.postprocess.threshold, still=reporter.latest_gated,
                             activity=reporter.current_activity(), alert=reporter.alert())

    # -- the end -------------------------------------------------------------------------------

    def hold_sinks(self) -> None:
        """The lane's own sinks stay open when it ends, until ``close_sinks()``: events made after the
        lane (the evidence's clip lines) still reach them."""
        self._sinks_held = True

    def close_sinks(self) -> None:
        """Finalise the lane's own sinks (events.jsonl, subtitles); problems become warnings."""
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as error:  # finalising one sink must not lose the others
                self.reporter.warn(f"{self.name}: closing {type(sink).__name__} failed: {error}")

    def _close_sinks(self) -> None:
        for problem in self.output.close():
            self.reporter.warn(f"{self.name}: {problem}")
        if not self._sinks_held:
            self.close_sinks()

    def status(self) -> dict:
        """This camera for /api/status and the terminal (cheap; any thread)."""
        health, metrics = self.health, self.metrics
        return {
            "state": health.state.value,
            "reason": health.reason,
            "source": self.source_name,
            "live": self.live,
            "pictures": bool(self.camera.keeps_pictures),
            "frames": metrics.frames,
            "fps": metrics.current_fps(),
            "clips": metrics.clips,
            "clips_per_s": metrics.current_clips_per_s(),
            "skipped_clips": metrics.skipped_clips,
            "gated_clips": self.reporter.gated_clips,
            "dropped_frames": health.dropped,
            "reconnects": health.reconnects,
            "prediction": None if self.reporter.latest_event is None else self.reporter.latest_event.to_json_dict(),
            "activity": self.reporter.activity_status(),
        }

    def summary(self, interrupted_by: str | None) -> CameraSummary:
        snapshot = self.metrics.snapshot()
        output = self.camera.output
        outputs = {"annotated video": output.video if self.output.frames_written() else None,
                   "events": output.events, "summary": output.summary}
        if output.subtitles:
            outputs["subtitles"] = output.subtitles
        sampler = self.clips.sampler
        source = self.source
        return CameraSummary(
            camera=self.name, run_id=self.run_id, source=self.source_name, state=self.health.state.value,
            state_reason=self.health.reason, mode=sampler.mode, clip_len=sampler.clip_len,
            frame_step=sampler.frame_step, stride=sampler.stride,
            preprocess_implementation=IMPLEMENTATION, frames=snapshot["frames"], clips=snapshot["clips"],
            skipped_clips=snapshot["skipped_clips"], gated_clips=self.reporter.gated_clips,
            dropped_frames=self.health.dropped, reconnects=self.health.reconnects,
            input_fps=source.fps if source is not None else None,
            processing_fps=snapshot["processing_fps"], clips_per_s=snapshot["clips_per_s"],
            elapsed_s=snapshot["elapsed_s"], latency_ms=snapshot["latency_ms"], outputs=outputs,
            warnings=tuple(self.warnings), interrupted_by=interrupted_by)

    @property
    def predictions(self):
        return self.reporter.predictions

    def note_check(self, event: CheckEvent) -> None:
        self.reporter.note_check(event)


def needs_pictures(camera) -> bool:
    """Full BGR pictures for video out or a window, and the ring fed from them (the seed's exact
    arithmetic); otherwise the decoder's planes go straight into the ring and the pictures the live
    page shows are made from them. Never for a camera whose ``privacy.pictures`` is false."""
    return bool(camera.keeps_pictures and (camera.output.video or camera.output.display))


__all__ = ["Lane", "needs_pictures"]
