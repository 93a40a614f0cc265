"""A lane's reporter: each settled clip becomes a prediction line, activities and checks.

In clip order (the clip stage guarantees it): skipped clips are counted, failed ones
warned about, gated ones become a ``"gated": true`` line, inferred ones go through the
postprocessor (softmax, smoothing, top-k, threshold). Every line goes to ``emit``; the
camera's activity tracker and checks (one ``CameraMonitor``) then judge it, in the order
``replay`` uses. The reporter keeps what the overlay and /api/status show: the latest
prediction, the current activity and the last failed check.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from edge.activities import current_activity
from edge.engine.clips import GATED, PendingClip
from edge.engine.scheduler import FAILED, SKIPPED, Outcome
from edge.events import CheckEvent, Event, GapEvent, PredictionEvent
from edge.metrics import Metrics
from edge.postprocess import Postprocessor, now_iso
from edge.records import Prediction, StageLatency

log = logging.getLogger(__name__)

ALERT_SECONDS = 5.0  # how long the overlay shows a failed check


class Reporter:
    """Turns one lane's settled clips and gaps into events (lane thread only, except the read-only
    ``status_fields``/``alert``, which any thread may call)."""

    def __init__(self, camera: str, *, source_name: str, postprocessor: Postprocessor, metrics: Metrics,
                 monitor, emit, model_name: str, untrained: bool, include_scores: bool,
                 live: bool, keep_predictions: bool = False) -> None:
        self.camera = camera
        self.source_name = source_name
        self.postprocessor = postprocessor
        self.metrics = metrics
        self.monitor = monitor
        self._emit = emit  # the service's: routes the event and returns it stamped with the run's id
        self.model_name = model_name
        self.untrained = untrained
        self.include_scores = include_scores
        self.live = live
        self.latest: Prediction | None = None
        self.latest_event: PredictionEvent | None = None
        self.latest_gated = False
        self.gated_clips = 0
        self.predictions: list[Prediction] | None = [] if keep_predictions else None
        self.warnings: list[str] = []
        self._alert: tuple[str, float] | None = None

    # -- clips ---------------------------------------------------------------------------------

    def on_clip(self, entry: PendingClip, outcome: Outcome) -> None:
        clip = entry.planned.clip
        if outcome.status == SKIPPED:
            self.metrics.count_skipped()  # keep latency flat: a fresher clip went instead
            return
        if outcome.status == FAILED:
            self.warn(f"inference failed for clip {clip.clip_index}: {outcome.error}")
            return
        t0 = time.perf_counter_ns()
        if outcome.status == GATED:
            self.gated_clips += 1
            self.latest_gated = True
            probabilities = None
            done_ns = time.perf_counter_ns()
            latency = StageLatency(entry.preprocess_ms, None, None, (done_ns - entry.ready_ns) / 1e6)
            event = PredictionEvent.gated_clip(clip, latency, camera=self.camera, source=self.source_name,
                                               model=self.model_name, untrained=self.untrained)
        else:
            prediction = self.postprocessor(clip, outcome.logits, extra=outcome.extra)
            done_ns = time.perf_counter_ns()
            post_ms = (done_ns - t0) / 1e6
            latency = StageLatency(entry.preprocess_ms, outcome.infer_ms, post_ms, (done_ns - entry.ready_ns) / 1e6)
            prediction = replace(prediction, latency=latency)
            self.metrics.record("inference", outcome.infer_ms)
            self.metrics.add_wait("inference", outcome.queue_wait_ms)
            self.metrics.record("postprocess", post_ms)
            self.metrics.record("frame_to_label", latency.end_to_end)
            self.latest, self.latest_gated = prediction, False
            if self.predictions is not None:
                self.predictions.append(prediction)
            probabilities = prediction.activity_probabilities
            event = PredictionEvent.of(prediction, camera=self.camera, source=self.source_name,
                                       model=self.model_name, untrained=self.untrained,
                                       include_scores=self.include_scores)
        self.metrics.count_clip()
        self.latest_event = self._emit(event)
        if self.monitor is not None:  # activities, then the checks they settle, in the order replay uses
            self._report(self.monitor.on_prediction(event, probabilities))

    def labelled_up_to(self) -> int:
        """The newest source frame index that has a label (-1 before the first)."""
        event = self.latest_event
        return -1 if event is None else int(event.end_frame)

    # -- gaps, clock, end ----------------------------------------------------------------------

    def on_gap(self, gap) -> None:
        event = self._emit(GapEvent.of(gap, camera=self.camera, source=self.source_name))
        if self.monitor is not None:
            self._report(self.monitor.on_gap(event))

    def next_deadline(self) -> float | None:
        """When a live camera's pending check deadline falls due (Unix seconds), if any."""
        return self.monitor.next_deadline() if self.monitor is not None and self.live else None

    def on_clock(self) -> None:
        """A deadline passed with no prediction to carry it: an absence."""
        self._report(self.monitor.on_clock(time.time(), now_iso()))

    def on_end(self) -> None:
        """Every clip is in: segments end, pending deadlines are settled."""
        if self.monitor is not None:
            self._report(self.monitor.on_end(now_iso()))

    def note_check(self, event: CheckEvent) -> None:
        """The service routes this camera's checks here: a failure shows on the overlay for a while."""
        if event.passed is False:
            self._alert = (f"FAILED {event.rule}: {event.reason}", time.monotonic())

    # -- what the overlay and the status read ----------------------------------------------

    def alert(self) -> str | None:
        if self._alert is not None and time.monotonic() - self._alert[1] < ALERT_SECONDS:
            return self._alert[0]
        return None

    def current_activity(self) -> tuple[str, float] | None:
        """(activity, seconds it has run) of the camera's current activity, for the overlay."""
        current = current_activity(self.monitor.tracker if self.monitor is not None else None)
        if current is None or self.monitor.last_time is None:
            return None
        return current.activity, max(0.0, self.monitor.last_time - current.start_time_s)

    def activity_status(self) -> dict | None:
        """The camera's current activity for /api/status (the same one the overlay and MQTT show)."""
        current = current_activity(self.monitor.tracker if self.monitor is not None else None)
        if current is None:
            return None
        now = time.time() if self.live else (self.monitor.last_time or 0.0)
        return {"activity": current.activity, "id": current.id, "since_s": current.start_time_s,
                "time_base": self.monitor.time_base, "duration_s": max(0.0, now - current.start_time_s)}

    # -- out -----------------------------------------------------------------------------------

    def warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)

    def _report(self, events: list[Event]) -> None:
        """Activity and check events (and current-activity changes) from the monitor, in order."""
        for event in events:
            self._emit(event)


__all__ = ["ALERT_SECONDS", "Reporter"]
