"""One camera's activities and checks, fed in the one order the live lane and ``replay`` share.

The lane's reporter and ``edge-har replay`` both drive a ``CameraMonitor``: the activity tracker
(``edge.activities``) observes each prediction, its activity events go to the check engine
(``edge.checks``), and the engine's clock advances to the clip's time.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge.activities import ActivityTracker, current_activity, observation_time
from edge.checks import CheckEngine
from edge.events import ActivityEvent, CheckEvent, CurrentActivity, GapEvent, PredictionEvent


class CameraMonitor:
    """One camera's activities and checks, fed in the one order the live lane and ``replay`` share.

    Per prediction: the tracker observes the clip, each activity event goes
    to the engine, then the engine's clock advances to the clip's time. The
    returned list is what to emit, in order: ``ActivityEvent`` and
    ``CheckEvent``, then a ``CurrentActivity`` when the camera's current
    activity (``edge.activities.current_activity``) changed.

    The lane calls ``on_prediction(event, prediction.probabilities)`` with the
    clip's ``PredictionEvent`` (``gated`` for a gated clip), ``on_gap(event)``
    for a stream gap, ``on_clock(time.time(), now)`` for a live camera while
    idle, and ``on_end(now)`` when the camera stops.
    """

    def __init__(self, tracker: ActivityTracker, engine: CheckEngine) -> None:
        self.tracker, self.engine = tracker, engine
        self.camera, self.time_base = tracker.camera, tracker.time_base
        self.last_time: float | None = None
        self._current_id: str | None = None

    def on_prediction(self, event: PredictionEvent, probabilities=None, *,
                      scores: Mapping[str, float] | None = None) -> list:
        """A clip's prediction with its probabilities (float (C,)), or activity ``scores``.

        A gated prediction scores none whatever is passed.
        """
        time_s = observation_time(event, self.time_base)
        self.last_time = time_s if self.last_time is None else max(self.last_time, time_s)
        wall_time = event.wall_time
        if event.gated:
            activities = self.tracker.observe_scores(time_s, None, wall_time)
        elif scores is not None:
            activities = self.tracker.observe_scores(time_s, scores, wall_time)
        else:
            activities = self.tracker.observe(time_s, probabilities, wall_time)
        out = self._judge(activities, wall_time)
        out.extend(self.engine.advance(self.camera, self.last_time, wall_time))
        return out

    def on_clock(self, time_s: float, wall_time: str) -> list[CheckEvent]:
        """A live camera's wall-clock tick (Unix seconds): fail the deadlines passed while no prediction came.

        Call it from the lane's own thread (serialised with ``on_prediction``),
        e.g. when its wait for the next clip times out at ``next_deadline()``.
        For files, never: their deadlines pass on media time, with the predictions.
        """
        return self.engine.advance(self.camera, time_s, wall_time)

    def next_deadline(self) -> float | None:
        """When ``on_clock`` next has something to judge for this camera (Unix seconds for live), or None."""
        return self.engine.next_deadline(self.camera)

    def on_gap(self, event: GapEvent) -> list:
        """A stream gap: open segments end with reason ``stream gap``."""
        return self._judge(self.tracker.interrupt(self._time(), "stream gap", event.wall_time), event.wall_time)

    def on_end(self, wall_time: str) -> list:
        """The stream ended (end of file, or the service stopping): segments end, pending deadlines are settled.

        The end time is the last observed clip's time, which a replay also knows.
        """
        out = self._judge(self.tracker.interrupt(self._time(), "end of stream", wall_time), wall_time)
        out.extend(self.engine.finish(self.camera, self.last_time, wall_time))
        return out

    def _time(self) -> float:
        return 0.0 if self.last_time is None else self.last_time

    def _judge(self, activities: list[ActivityEvent], wall_time: str) -> list:
        out: list = []
        for event in activities:
            out.append(event)
            out.extend(self.engine.on_activity(event))
        current = current_activity(self.tracker)
        if (current.id if current else None) != self._current_id:
            self._current_id = current.id if current else None
            out.append(CurrentActivity(camera=self.camera, wall_time=wall_time,
                                       activity=current.activity if current else None, id=self._current_id))
        return out


__all__ = ["CameraMonitor"]
