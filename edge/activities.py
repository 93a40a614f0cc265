"""Activity segments: site activities made of model labels, tracked per camera over time.

An *activity* (``activities:`` in the config) names some model labels and a
``min_score``; its score for a clip is the sum of those labels' probabilities.
Everything else is ``none``. A *segment* of an activity starts when its score
reaches ``min_score`` and ends when the score has stayed below it for
``gap_s`` seconds, so a flicker shorter than ``gap_s`` does not split it.

Time rules (the same in the live run and in ``edge-har replay``):

- An observation's time is the clip's **newest** frame: ``end_time_s`` of the
  prediction for files (``time_base`` ``"media"``), and for live sources
  (``"wall"``) the prediction's ``wall_time`` as Unix seconds
  (``wall_seconds``), which is recorded in every prediction line, so a replay
  sees exactly the times the live run saw. ``observation_time`` does this.
- A segment's ``start_time_s`` is the time of its first clip at or above
  ``min_score``; ``end_time_s`` the time of its last such clip (not the time
  the end was noticed); ``duration_s = end_time_s - start_time_s``.
- The end is noticed at the first observation at least ``gap_s`` after the
  last active clip whose score is below ``min_score``; an active clip after a
  long silence (sparse predictions) continues the segment.
- A gated clip (still scene, ``probabilities=None``) scores 0 for every activity.
- Times that go backwards (a wall clock stepped back) are clamped to the newest
  time seen, so segments never run backwards.

The tracker returns ``edge.events.ActivityEvent`` (the ``events.jsonl``
objects of CONTRACTS.md: ``{"event": "activity", "type":
"start"|"update"|"end", "id", "camera", "activity", "start_time_s",
"end_time_s" (null until end), "duration_s", "peak_score", "time_base",
"reason" (end only), "wall_time"[, "run_id"]}``; the run id is stamped by
whoever runs the cameras). Ids are ``f"{camera}-{activity}-{n}"`` with ``n``
counting from 1 per camera and activity, so a replay of the same predictions
gives the same ids.

A camera's *current activity* (``current_activity``) is its open segment with
the highest latest score: MQTT's retained activity, ``/api/status`` and the
overlay all read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from edge.events import ActivityEvent

TIME_BASES = ("media", "wall")
END_REASONS = ("ended", "stream gap", "end of stream")
DEFAULT_MIN_SCORE = 0.5
DEFAULT_GAP_S = 2.0
DEFAULT_UPDATE_S = 5.0


def setting(obj, name: str, default=None):
    """``obj.name`` for config objects, ``obj[name]`` for plain mappings; ``default`` when absent or None."""
    value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return default if value is None else value


def wall_seconds(iso_time: str) -> float:
    """An ISO 8601 ``wall_time`` (with its UTC offset) as Unix seconds. ``ValueError`` if unparsable."""
    return datetime.fromisoformat(iso_time).timestamp()


def observation_time(prediction, time_base: str) -> float:
    """The time of a prediction (a ``PredictionEvent``, or an events.jsonl prediction object) on ``time_base``.

    ``"media"``: its ``end_time_s`` (the newest frame); ``"wall"``: its ``wall_time`` in Unix seconds.
    """
    if isinstance(prediction, Mapping):
        end_time_s, wall_time = prediction["end_time_s"], prediction["wall_time"]
    else:
        end_time_s, wall_time = prediction.end_time_s, prediction.wall_time
    if time_base == "media":
        return float(end_time_s)
    return wall_seconds(wall_time)


def _round(value: float) -> float:
    return round(float(value), 6)


@dataclass(frozen=True)
class ActivitySpec:
    """One activity as the tracker uses it: label indices into the model's labels, thresholds."""

    name: str
    labels: tuple[str, ...]
    indices: tuple[int, ...]
    min_score: float
    gap_s: float
    update_s: float


@dataclass(frozen=True)
class OpenSegment:
    """An open segment as ``current_activity`` reports it: its activity, id, start and latest clip score."""

    activity: str
    id: str
    start_time_s: float
    score: float


def current_activity(tracker: ActivityTracker | None) -> OpenSegment | None:
    """A camera's current activity: its open segment with the highest *latest* score, or None.

    Latest, not peak: a segment stays open for ``gap_s`` after its activity stopped, so its peak would
    keep naming the activity that just ended while the one going on now scores higher.
    """
    if tracker is None:
        return None
    best = None
    for name in tracker.specs:  # activity order breaks ties
        segment = tracker._open.get(name)
        if segment is not None and (best is None or segment.last_score > best[1].last_score):
            best = (name, segment)
    if best is None:
        return None
    name, segment = best
    return OpenSegment(name, segment.id, _round(segment.start), _round(segment.last_score))


@dataclass
class _Segment:
    id: str
    start: float
    last_active: float
    last_emitted: float
    peak: float
    last_score: float


class ActivityTracker:
    """Segments of every configured activity on one camera (not thread-safe: one lane calls it).

    ``specs``: activity name -> config object (or mapping) with ``labels``,
    ``min_score``, ``gap_s`` (default 2 s), ``update_s`` (default 5 s).
    ``labels``: the model's class names in output order. ``time_base``:
    ``"media"`` or ``"wall"`` (see the module docstring). Raises ``ValueError``
    for an unknown time base, a label the model does not have, or a
    non-positive ``gap_s``/``update_s``.
    """

    def __init__(self, camera: str, specs: Mapping[str, object], labels: Sequence[str], time_base: str) -> None:
        if time_base not in TIME_BASES:
            raise ValueError(f"time_base must be 'media' or 'wall', got {time_base!r}")
        self.camera, self.time_base = camera, time_base
        self.labels = tuple(labels)
        index = {label: number for number, label in enumerate(self.labels)}
        self.specs: dict[str, ActivitySpec] = {}
        for name, spec in specs.items():
            names = tuple(setting(spec, "labels", ()))
            unknown = [label for label in names if label not in index]
            if unknown:
                raise ValueError(f"activity {name!r}: the model has no label {unknown[0]!r}")
            gap_s = float(setting(spec, "gap_s", DEFAULT_GAP_S))
            update_s = float(setting(spec, "update_s", DEFAULT_UPDATE_S))
            if gap_s < 0 or update_s <= 0:
                raise ValueError(f"activity {name!r}: gap_s must be >= 0 and update_s > 0")
            self.specs[name] = ActivitySpec(name, names, tuple(index[label] for label in names),
                                            float(setting(spec, "min_score", DEFAULT_MIN_SCORE)), gap_s, update_s)
        self._open: dict[str, _Segment] = {}
        self._count: dict[str, int] = {name: 0 for name in self.specs}
        self._time: float | None = None

    # -- scores ---------------------------------------------------------------------------------

    def activity_scores(self, probabilities) -> dict[str, float]:
        """Each activity's score for one clip: the sum of its labels' probabilities (float (C,)); None → all 0."""
        if probabilities is None:
            return {name: 0.0 for name in self.specs}
        values = np.asarray(probabilities).reshape(-1)
        if values.shape[0] != len(self.labels):
            raise ValueError(f"got {values.shape[0]} probabilities for {len(self.labels)} labels")
        # Summed in float64 in label order, so a replay from the recorded scores gives the same bits.
        return {name: sum(float(values[i]) for i in spec.indices) for name, spec in self.specs.items()}

    # -- observations ---------------------------------------------------------------------------

    def observe(self, time_s: float, probabilities, wall_time: str) -> list[ActivityEvent]:
        """Feed one clip: its time (see the module docstring), probabilities float (C,) or None (gated).

        Returns the activity events this clip caused, in activity order (an
        end, a start or an update per activity at most).
        """
        return self.observe_scores(time_s, None if probabilities is None else self.activity_scores(probabilities),
                                   wall_time)

    def observe_scores(self, time_s: float, scores: Mapping[str, float] | None, wall_time: str
                       ) -> list[ActivityEvent]:
        """``observe`` with the activity scores already computed (activity -> score; missing or None = 0)."""
        time_s = self._clock(time_s)
        records = []
        for name, spec in self.specs.items():
            score = float((scores or {}).get(name) or 0.0)
            segment = self._open.get(name)
            if score >= spec.min_score:
                if segment is None:
                    self._count[name] += 1
                    segment = _Segment(f"{self.camera}-{name}-{self._count[name]}", time_s, time_s, time_s,
                                       score, score)
                    self._open[name] = segment
                    records.append(self._record("start", name, segment, wall_time))
                    continue
                segment.last_active = time_s
                segment.peak = max(segment.peak, score)
            elif segment is not None and time_s - segment.last_active >= spec.gap_s:
                segment.last_score = score
                records.append(self._close(name, "ended", wall_time))
                continue
            if segment is not None:
                segment.last_score = score
                if time_s - segment.last_emitted >= spec.update_s:
                    segment.last_emitted = time_s
                    records.append(self._record("update", name, segment, wall_time))
        return records

    def interrupt(self, time_s: float, reason: str, wall_time: str) -> list[ActivityEvent]:
        """End every open segment now: ``reason`` is ``"stream gap"`` or ``"end of stream"``.

        Each segment ends at its last active clip (``time_s`` only advances the
        clock). Returns the end events in activity order.
        """
        if reason not in END_REASONS:
            raise ValueError(f"end reason must be one of {END_REASONS}, got {reason!r}")
        self._clock(time_s)
        return [self._close(name, reason, wall_time) for name in self.specs if name in self._open]

    @property
    def open_ids(self) -> list[str]:
        """Ids of the open segments, in activity order."""
        return [self._open[name].id for name in self.specs if name in self._open]

    # -- internals ------------------------------------------------------------------------------

    def _clock(self, time_s: float) -> float:
        time_s = float(time_s)
        if self._time is not None and time_s < self._time:
            time_s = self._time
        self._time = time_s
        return time_s

    def _close(self, name: str, reason: str, wall_time: str) -> ActivityEvent:
        segment = self._open.pop(name)
        return self._record("end", name, segment, wall_time, reason=reason)

    def _record(self, kind: str, name: str, segment: _Segment, wall_time: str,
                reason: str | None = None) -> ActivityEvent:
        start, last = _round(segment.start), _round(segment.last_active)
        return ActivityEvent(camera=self.camera, wall_time=wall_time, type=kind, id=segment.id, activity=name,
                             start_time_s=start, end_time_s=last if kind == "end" else None,
                             duration_s=0.0 if kind == "start" else _round(last - start),
                             peak_score=_round(segment.peak), time_base=self.time_base,
                             reason=reason if kind == "end" else None)
