"""One camera's lane: reader → sampler → clip ring → (shared scheduler) → postprocess → activities → sinks.

Two threads per camera. The **reader** iterates the source (decoding happens
there) and puts frames and gaps on the lane's inbox: a file waits for a free
frame slot (nothing is lost), a live camera drops the frame and counts it when
the lane is behind (it keeps the freshest). The **lane thread** takes the inbox
in order — frames, gaps, the end of the source, and the inference outcomes the
scheduler addresses to this lane — so every stage runs on one thread and needs
no lock: preprocess into the ring, plan clips, offer them to the shared
scheduler, put outcomes back in clip order, postprocess, track activities,
write events, draw and write frames.

A lane never reaches into another lane; what it reports goes through ``emit``
(the service routes events to this camera's sinks and to the side systems).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, replace


from edge.activities import current_activity
from edge.engine.scheduler import FAILED, SKIPPED, Outcome, Ticket
from edge.engine.summary import CameraSummary
from edge.events import CheckEvent, GapEvent, PredictionEvent, StatusEvent
from edge.metrics import Metrics
from edge.overlay import draw_overlay, overlay_state
from edge.postprocess import ClipOrder, Postprocessor, now_iso
from edge.preprocess import IMPLEMENTATION, ClipRing
from edge.records import Frame, Prediction, StageLatency
from edge.sampling import ClipSampler, PlannedClip
from edge.sinks.video import resize_for_video

log = logging.getLogger(__name__)

GATED = "gated"  # an outcome the lane makes itself: the clip was too still to infer
STARTING, ONLINE, RECONNECTING, OFFLINE, FINISHED = "starting", "online", "reconnecting", "offline", "finished"
ALERT_SECONDS = 5.0  # how long the overlay shows a failed check
SNAPSHOT_EVERY_S = 1.0  # with nobody watching, the live page's snapshot is refreshed this often


@dataclass(frozen=True)
class _SourceDone:
    error: str | None = None


class _LiveBuffer:
    """Between a live camera's reader and its lane: the newest ``capacity`` frames, oldest dropped first.

    Gaps and the end of the source are kept in order with the frames and never dropped. The
    reader puts one wake-up token on the lane's inbox when the buffer goes from empty to not
    empty; the lane then takes everything buffered.
    """

    def __init__(self, capacity: int, wake) -> None:
        self._items: deque = deque()
        self._frames = 0
        self._capacity = capacity
        self._wake = wake
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, item) -> None:
        with self._lock:
            if isinstance(item[0], Frame) and self._frames >= self._capacity:
                for index, (payload, _) in enumerate(self._items):
                    if isinstance(payload, Frame):
                        del self._items[index]
                        self._frames -= 1
                        self.dropped += 1  # the lane is behind: keep the freshest frames
                        break
            self._items.append(item)
            self._frames += isinstance(item[0], Frame)
            wake = len(self._items) == 1
        if wake:
            self._wake(_LIVE_FRAMES)

    def take(self) -> list:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._frames = 0
            return items


_LIVE_FRAMES = object()  # inbox token: the live buffer has items
LIVE_BUFFER_FRAMES = 8   # ~0.3 s at 25 fps


@dataclass
class _Pending:
    planned: PlannedClip
    lease: object | None
    preprocess_ms: float
    newest_frame_ns: int


class Lane:
    """One camera. ``start()`` its threads, ``request_stop()`` (signal-safe), ``join()``, ``summary()``.

    ``source`` is an opened source, or None with ``source_error`` (the camera is
    then ``offline`` from the start and the other cameras carry on).
    """

    def __init__(self, camera, *, source, info, scheduler, max_in_flight: int, emit, run_id: str,
                 model_name: str, sinks=(), video=None, window=None, hub=None, checks=None,
                 source_error: str | None = None, keep_predictions: bool = False) -> None:
        self.camera = camera
        self.name = camera.name
        self.source = source
        self.info = info
        self.scheduler = scheduler
        self.emit = emit
        self.run_id = run_id
        self.model_name = model_name
        self.sinks = list(sinks)
        self.video, self.window, self.hub = video, window, hub
        self._bgr_ring = needs_pictures(camera)
        self._hub_refresh_at = 0.0
        self.live = bool(source.is_live) if source is not None else bool(camera.live)
        self.source_name = source.name if source is not None else str(camera.source)
        self.metrics = Metrics()
        self.warnings: list[str] = []
        self.predictions: list[Prediction] = [] if keep_predictions else None
        self._state = STARTING if source is not None else OFFLINE
        self._state_reason = source_error
        self._state_lock = threading.Lock()
        self._published_state: tuple | None = None
        sampling = camera.sampling
        self.sampler = ClipSampler(sampling.mode, sampling.clip_len, sampling.frame_step, sampling.stride)
        mean = camera.preprocess.mean if camera.preprocess.mean is not None else info.mean
        self.ring = ClipRing(clip_len=sampling.clip_len, size=camera.preprocess.size,
                             capacity=self.sampler.ring_capacity(max_in_flight),
                             mean=tuple(mean), interpolation=camera.preprocess.interpolation)
        post = camera.postprocess
        self.postprocessor = Postprocessor(list(info.labels), top_k=post.top_k, smoothing=str(post.smoothing),
                                           threshold=post.threshold)
        self.min_motion = float(camera.gating.min_motion)
        self.monitor = _make_monitor(camera, info.labels, "wall" if self.live else "media", checks)
        self.inbox: queue.Queue = queue.Queue()
        self._deferred: deque = deque()
        self._frame_slots = threading.Semaphore(4)  # a file's frames between the reader and the lane
        self._live_buffer = _LiveBuffer(LIVE_BUFFER_FRAMES, self.inbox.put) if self.live else None
        self._pending: dict[int, _Pending] = {}
        self._order = ClipOrder()
        self._next_ticket = 0
        self._preprocess_since_clip_ms = 0.0
        self._source_done = False
        self._lane_failed = False
        self._last_gap = None
        self._final_state = (FINISHED, None)
        self._stopping = threading.Event()
        self._waiting_frames: deque[Frame] = deque()
        self.latest: Prediction | None = None
        self.latest_event: PredictionEvent | None = None
        self._latest_gated = False
        self._alert: tuple[str, float] | None = None
        self.gated_clips = 0
        self.reconnects = 0
        self._threads: list[threading.Thread] = []
        self._started = False
        scheduler.register(self.name, self.live, self.inbox.put)

    # -- state ---------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The camera's state: the lane's own, or the source's while it reconnects."""
        own = self._state
        if own in (STARTING, ONLINE) and getattr(self.source, "state", None) == RECONNECTING:
            return RECONNECTING
        return own

    @property
    def state_reason(self) -> str | None:
        if self.state == RECONNECTING and self._state != RECONNECTING:
            return getattr(self.source, "state_reason", None)
        return self._state_reason

    def _set_state(self, state: str, reason: str | None = None) -> None:
        self._state, self._state_reason = state, reason
        self.publish_state()

    def publish_state(self) -> None:
        """Emit a status event if the camera's state changed since the last one (any thread)."""
        with self._state_lock:
            current = (self.state, self.state_reason)
            if current == self._published_state:
                return
            self._published_state = current
        self.emit(StatusEvent(camera=self.name, state=current[0], reason=current[1], wall_time=now_iso()))

    @property
    def done(self) -> bool:
        return self._started and not any(thread.is_alive() for thread in self._threads)

    def last_frame_age_s(self) -> float | None:
        """Seconds since the reader last produced a frame (None before the first)."""
        last = getattr(self.source, "last_frame_monotonic", None) if self.source is not None else None
        return None if not last else time.monotonic() - last

    # -- threads -------------------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        self.publish_state()
        if self.source is None:
            self._close_sinks()
            return
        for target, role in ((self._read, "reader"), (self._work, "lane")):
            thread = threading.Thread(target=target, name=f"{role}-{self.name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def request_stop(self) -> None:
        """Stop reading soon; in-flight clips are finished. Only sets flags: safe in a signal handler."""
        self._stopping.set()
        if self.source is not None:
            self.source.request_stop()

    def restart_source(self, reason: str) -> None:
        """The watchdog's call: the source reconnects (recorded as a gap)."""
        restart = getattr(self.source, "restart", None)
        if restart is not None:
            restart(reason)

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _read(self) -> None:
        error = None
        frames = iter(self.source)
        deliver = self._live_buffer.put if self._live_buffer is not None else self.inbox.put
        try:
            while True:
                t0 = time.perf_counter_ns()
                item = next(frames, None)
                if item is None:
                    break
                if isinstance(item, Frame):
                    self.metrics.record("decode", (time.perf_counter_ns() - t0) / 1e6)
                    if self._live_buffer is None:
                        self._frame_slots.acquire()  # a file waits: no frame is lost
                if self._stopping.is_set() and self._lane_failed:
                    break
                deliver((item, time.perf_counter_ns()))
        except Exception as exc:  # a decoder fault must end this camera cleanly, not silently
            error = f"{self.source_name}: reading failed: {type(exc).__name__}: {exc}"
            log.error(error)
        finally:
            deliver((_SourceDone(error), time.perf_counter_ns()))

    def _next_item(self):
        """The next thing to handle. A live camera with a check deadline pending wakes for it."""
        if self._deferred:
            return self._deferred.popleft()
        while True:
            deadline = self.monitor.next_deadline() if self.monitor is not None and self.live else None
            if deadline is None:
                return self.inbox.get()
            try:
                return self.inbox.get(timeout=max(0.0, deadline - time.time()) + 0.01)
            except queue.Empty:  # an absence: the deadline passed with no prediction to carry it
                self._report(self.monitor.on_clock(time.time(), now_iso()))

    def _work(self) -> None:
        try:
            while not (self._source_done and not self._pending and not self._deferred):
                item = self._next_item()
                if isinstance(item, Outcome):
                    self._on_outcome(item)
                elif item is _LIVE_FRAMES:
                    self._deferred.extend(self._live_buffer.take())
                else:
                    self._on_source_item(*item)
            self._emit_frames(final=True)
            if self._last_gap is not None:  # after the clips that were in flight, as it happened last
                self._report_gap(self._last_gap)
            if self.monitor is not None:  # every clip is in: segments end, pending deadlines are settled
                self._report(self.monitor.on_end(now_iso()))
            self._set_state(*self._final_state)
        except Exception as exc:  # a bug in one lane must not take the service down unseen
            log.exception("%s: lane stopped: %s", self.name, exc)
            self._warn(f"{self.name}: lane stopped: {type(exc).__name__}: {exc}")
            self._lane_failed = True
            self._set_state(OFFLINE, f"internal error: {exc}")
            self.request_stop()
            self._frame_slots.release(64)  # a file reader waiting for a slot must see the stop
            self._drain_after_error()
        finally:
            self._close_sinks()

    def _on_source_item(self, payload, queued_ns: int) -> None:
        if isinstance(payload, Frame):
            try:
                self._on_frame(payload, queued_ns)
            finally:
                if self._live_buffer is None:
                    self._frame_slots.release()
        elif isinstance(payload, _SourceDone):
            self._on_source_done(payload)
        else:
            self._on_gap(payload)

    def _drain_after_error(self) -> None:
        """After a fault, give every lease back as its outcome arrives so the shared queue is not blocked."""
        self.scheduler.unregister(self.name)
        while self._pending:
            item = self._next_item()
            if isinstance(item, Outcome):
                entry = self._pending.pop(item.ticket.number, None)
                if entry is not None and entry.lease is not None:
                    self.ring.release(entry.lease)
            elif isinstance(item, tuple) and isinstance(item[0], Frame) and self._live_buffer is None:
                self._frame_slots.release()

    # -- frames --------------------------------------------------------------------------------

    def _on_frame(self, frame: Frame, queued_ns: int) -> None:
        if self._state == STARTING:
            self._set_state(ONLINE)
        elif self._published_state is not None and self._published_state[0] != ONLINE:
            self.publish_state()  # frames again after a reconnection: online now, not at the next tick
        self.metrics.count_frame(frame.time_s)
        self.source.want_image = self._wants_frames()  # full pictures only while something shows them
        if self.sampler.wants(frame.index):
            self._push(frame, queued_ns)
        if self._wants_frames():
            self._waiting_frames.append(frame)
            self._emit_frames(final=False)

    def _wait_for_outcome(self) -> None:
        """Backpressure: a held clip occupies the slot we need; other items wait their turn."""
        while True:
            item = self.inbox.get()
            if isinstance(item, Outcome):
                self._on_outcome(item)
                return
            if item is _LIVE_FRAMES:
                self._deferred.extend(self._live_buffer.take())
            else:
                self._deferred.append(item)

    def _push(self, frame: Frame, queued_ns: int) -> None:
        while not self.ring.can_push():
            self._wait_for_outcome()
        t0 = time.perf_counter_ns()
        # One path per camera, so every clip is made the same way: BGR when the camera writes video or
        # shows a window (the seed's exact arithmetic), else the decoder's planes when it has them.
        if frame.planes is not None and (frame.image is None or not self._bgr_ring):
            seq = self.ring.push_yuv(*frame.planes)
        else:
            seq = self.ring.push(frame.image)
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        self.metrics.record("preprocess", elapsed)
        self._preprocess_since_clip_ms += elapsed
        planned = self.sampler.add(seq, frame.index, frame.time_s)
        if planned is not None:
            self._offer(planned, queued_ns)

    def _offer(self, planned: PlannedClip, newest_frame_ns: int) -> None:
        number = self._next_ticket
        self._next_ticket += 1
        preprocess_ms, self._preprocess_since_clip_ms = self._preprocess_since_clip_ms, 0.0
        first_seq = planned.last_seq - self.sampler.clip_len + 1
        # The largest frame difference is left out: an H.264 keyframe re-encodes the sensor noise of a
        # still scene as one spike (benchmarks/bench_gate_noise.py), and one frame is not an action.
        if self.min_motion > 0 and self.ring.max_motion(first_seq, planned.last_seq,
                                                        ignore_largest=1) < self.min_motion:
            self._pending[number] = _Pending(planned, None, preprocess_ms, newest_frame_ns)
            self._on_outcome(Outcome(Ticket(self.name, number), GATED))
            return
        lease = self.ring.acquire(planned.last_seq)
        self._pending[number] = _Pending(planned, lease, preprocess_ms, newest_frame_ns)
        self.scheduler.offer(Ticket(self.name, number, lease.view))

    def _on_source_done(self, done: _SourceDone) -> None:
        source_error = getattr(self.source, "error", None) or done.error
        if not self._stopping.is_set() and done.error is None:
            tail = self.sampler.finish()
            if tail is not None:  # batch: complete the last clip by looping its frames
                for seq in tail.repeat_seqs:
                    while not self.ring.can_push():
                        self._wait_for_outcome()
                    self.ring.repeat(seq)
                self._offer(tail.planned, time.perf_counter_ns())
        self._source_done = True
        self.warnings.extend(getattr(self.source, "warnings", ()))
        if source_error:
            self._warn(source_error)
        self._final_state = (OFFLINE if source_error else FINISHED, source_error)

    def _on_gap(self, gap) -> None:
        if getattr(gap, "gave_up", False):  # the stream is gone: this gap is the lane's last line
            self._last_gap = gap
            return
        self.reconnects += 1
        self._report_gap(gap)
        self.publish_state()  # the source is online again: say so now, not at the next housekeeping tick

    def _report_gap(self, gap) -> None:
        event = self.emit(GapEvent.of(gap, camera=self.name, source=self.source_name))
        if self.monitor is not None:
            self._report(self.monitor.on_gap(event))

    # -- outcomes ------------------------------------------------------------------------------

    def _on_outcome(self, outcome: Outcome) -> None:
        entry = self._pending.pop(outcome.ticket.number)
        if entry.lease is not None:
            self.ring.release(entry.lease)
        for ready_entry, ready_outcome in self._order.push(outcome.ticket.number, (entry, outcome)):
            self._post(ready_entry, ready_outcome)

    def _post(self, entry: _Pending, outcome: Outcome) -> None:
        clip = entry.planned.clip
        if outcome.status == SKIPPED:
            self.metrics.count_skipped()  # keep latency flat: a fresher clip went instead
            return
        if outcome.status == FAILED:
            self._warn(f"inference failed for clip {clip.clip_index}: {outcome.error}")
            return
        t0 = time.perf_counter_ns()
        if outcome.status == GATED:
            self.gated_clips += 1
            self._latest_gated = True
            probabilities = None
            done_ns = time.perf_counter_ns()
            latency = StageLatency(entry.preprocess_ms, None, None, (done_ns - entry.newest_frame_ns) / 1e6)
            event = PredictionEvent.gated_clip(clip, latency, camera=self.name, source=self.source_name,
                                               model=self.model_name, untrained=self.info.untrained)
        else:
            prediction = self.postprocessor(clip, outcome.logits)
            done_ns = time.perf_counter_ns()
            post_ms = (done_ns - t0) / 1e6
            latency = StageLatency(entry.preprocess_ms, outcome.infer_ms, post_ms,
                                   (done_ns - entry.newest_frame_ns) / 1e6)
            prediction = replace(prediction, latency=latency)
            self.metrics.record("inference", outcome.infer_ms)
            self.metrics.add_wait("inference", outcome.queue_wait_ms)
            self.metrics.record("postprocess", post_ms)
            self.metrics.record("frame_to_label", latency.end_to_end)
            self.latest, self._latest_gated = prediction, False
            if self.predictions is not None:
                self.predictions.append(prediction)
            probabilities = prediction.probabilities
            event = PredictionEvent.of(prediction, camera=self.name, source=self.source_name,
                                       model=self.model_name, untrained=self.info.untrained,
                                       include_scores=self.camera.output.include_scores)
        self.metrics.count_clip()
        self.latest_event = self.emit(event)
        if self.monitor is not None:  # activities, then the checks they settle, in the order replay uses
            self._report(self.monitor.on_prediction(event, probabilities))

    def _report(self, events) -> None:
        """Activity and check events (and current-activity changes) from the monitor, in order."""
        for event in events:
            self.emit(event)

    def note_check(self, event: CheckEvent) -> None:
        """The service routes this camera's checks here: a failure shows on the overlay for a while."""
        if event.passed is False:
            self._alert = (f"FAILED {event.rule}: {event.reason}", time.monotonic())

    # -- frames out ----------------------------------------------------------------------------

    def _wants_frames(self) -> bool:
        """Pictures are drawn for video out, a window, live-page viewers, and once a second for snapshots."""
        if self._bgr_ring:
            return True
        return self.hub is not None and (self.hub.viewers > 0 or time.monotonic() >= self._hub_refresh_at)

    def _emit_frames(self, final: bool) -> None:
        """Draw and write frames whose label is known (batch video: their own clip's; otherwise the latest)."""
        wait_for_own_clip = self.sampler.mode == "batch" and self.video is not None
        while self._waiting_frames:
            frame = self._waiting_frames[0]
            if wait_for_own_clip and not final and frame.index > self._labelled_up_to():
                return
            self._waiting_frames.popleft()
            if frame.image is None:
                continue
            t0 = time.perf_counter_ns()
            image = frame.image
            target = self.video.output_size if self.video is not None else None
            if target and (image.shape[1], image.shape[0]) != tuple(target):
                image = resize_for_video(image, tuple(target))  # the overlay is drawn at the output size
            draw_overlay(image, self._overlay_state())
            if self.video is not None:
                self.video.write(image)
                self.metrics.count_output()
            if self.window is not None:
                self.window.show(image)
                if self.window.should_quit:
                    log.info("window closed: stopping %s", self.name)
                    self.request_stop()
            if self.hub is not None:
                self.hub.publish(image)
                self._hub_refresh_at = time.monotonic() + SNAPSHOT_EVERY_S
            self.metrics.record("overlay_write", (time.perf_counter_ns() - t0) / 1e6)

    def _labelled_up_to(self) -> int:
        event = self.latest_event
        return -1 if event is None else int(event.end_frame)

    def _overlay_state(self):
        stats = self.metrics.overlay_numbers() if self.camera.output.overlay_stats else None
        activity = None
        current = current_activity(self.monitor.tracker if self.monitor is not None else None)
        if current is not None and self.monitor.last_time is not None:
            activity = (current.activity, max(0.0, self.monitor.last_time - current.start_time_s))
        alert = None
        if self._alert is not None and time.monotonic() - self._alert[1] < ALERT_SECONDS:
            alert = self._alert[0]
        return overlay_state(
            None if self._latest_gated else self.latest,
            warming=self.sampler.warming_up if self.latest is None and not self._latest_gated else None,
            untrained=self.info.untrained, stats=stats, threshold=self.camera.postprocess.threshold,
            still=self._latest_gated, activity=activity, alert=alert)

    # -- the end -------------------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)

    def _close_sinks(self) -> None:
        for sink in (self.video, self.window, *self.sinks):
            if sink is None:
                continue
            try:
                sink.close()
            except Exception as error:  # finalising one sink must not lose the others
                self._warn(f"{self.name}: closing {type(sink).__name__} failed: {error}")

    def status(self) -> dict:
        """This camera for /api/status and the terminal (cheap; any thread)."""
        current = current_activity(self.monitor.tracker if self.monitor is not None else None)
        return {
            "state": self.state,
            "reason": self.state_reason,
            "source": self.source_name,
            "live": self.live,
            "frames": self.metrics.frames,
            "fps": self.metrics.current_fps(),
            "clips": self.metrics.clips,
            "clips_per_s": self.metrics.current_clips_per_s(),
            "skipped_clips": self.metrics.skipped_clips,
            "gated_clips": self.gated_clips,
            "dropped_frames": self._dropped(),
            "reconnects": self._reconnect_count(),
            "prediction": None if self.latest_event is None else self.latest_event.to_json_dict(),
            "activity": None if current is None else {
                "activity": current.activity, "id": current.id, "since_s": current.start_time_s,
                "time_base": self.monitor.time_base,
                "duration_s": max(0.0, (time.time() if self.live else (self.monitor.last_time or 0.0))
                                  - current.start_time_s)},
        }

    def _dropped(self) -> int:
        """Frames a live camera dropped because the lane was behind (here or in the source)."""
        own = self._live_buffer.dropped if self._live_buffer is not None else 0
        return own + int(getattr(self.source, "frames_dropped", 0) or 0)

    def _reconnect_count(self) -> int:
        return max(self.reconnects, int(getattr(self.source, "reconnects", 0) or 0))

    def summary(self, interrupted_by: str | None) -> CameraSummary:
        snapshot = self.metrics.snapshot()
        output = self.camera.output
        outputs = {"annotated video": output.video if self.video is not None and self.frames_written() else None,
                   "events": output.events, "summary": output.summary}
        subtitles = getattr(output, "subtitles", None)
        if subtitles:
            outputs["subtitles"] = subtitles
        return CameraSummary(
            camera=self.name, run_id=self.run_id, source=self.source_name, state=self._state,
            state_reason=self._state_reason, mode=self.sampler.mode, clip_len=self.sampler.clip_len,
            frame_step=self.sampler.frame_step, stride=self.sampler.stride,
            preprocess_implementation=IMPLEMENTATION, frames=snapshot["frames"], clips=snapshot["clips"],
            skipped_clips=snapshot["skipped_clips"], gated_clips=self.gated_clips,
            dropped_frames=self._dropped(),
            reconnects=self._reconnect_count(),
            input_fps=self.source.fps if self.source is not None else None,
            processing_fps=snapshot["processing_fps"], clips_per_s=snapshot["clips_per_s"],
            elapsed_s=snapshot["elapsed_s"], latency_ms=snapshot["latency_ms"], outputs=outputs,
            warnings=tuple(self.warnings), interrupted_by=interrupted_by)

    def frames_written(self) -> int:
        return int(getattr(self.video, "frames_written", 0) or 0) if self.video is not None else 0


def needs_pictures(camera) -> bool:
    """Full BGR pictures for video out or a window, and the ring fed from them (the seed's exact
    arithmetic); otherwise the decoder's planes go straight into the ring (a live-page viewer asks
    for pictures only while it watches)."""
    return bool(camera.output.video or camera.output.display)


def _make_monitor(camera, labels, time_base: str, checks):
    """The camera's activities and checks (one ``CameraMonitor``), or None when it has no activities."""
    activities = getattr(camera, "activities", None)
    if not activities:
        return None
    from edge.activities import ActivityTracker
    from edge.checks import CameraMonitor

    return CameraMonitor(ActivityTracker(camera.name, activities, labels, time_base), checks)
