"""What a camera reports, as small frozen classes that become JSON once, at the sinks.

A lane makes a ``PredictionEvent`` per clip (a gated clip too: ``gated=True``,
``label`` and ``score`` None), a ``GapEvent`` per stream gap and a
``StatusEvent`` per state change; its ``CameraMonitor`` makes ``ActivityEvent``
and ``CheckEvent`` (``edge.activities``, ``edge.checks``) and a
``CurrentActivity`` whenever the camera's current activity changes (not a line
of events.jsonl: MQTT's retained ``{prefix}/{camera}/activity`` follows it).

Each event has ``kind`` (``"prediction"``, ``"gap"``, ``"status"``,
``"activity"``, ``"check"``, ``"clip"``, ``"current_activity"``), ``camera``, ``wall_time``
and ``run_id``. ``run_id`` is None where the event is made and is stamped once,
by whoever runs the cameras (``Service.emit``; ``replay`` for a recorded run),
with ``stamped(run_id)``. ``to_json_dict()`` is the one serialiser: the
events.jsonl object, keys in the documented order, made on first use and kept
(several sinks share it: do not change it). ``from_json_dict`` reads a line
back into its event.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from edge.records import StageLatency

LINE_KINDS = ("prediction", "gap", "activity", "check", "clip")   # the kinds that are lines of events.jsonl


def score_value(value) -> float:
    """A probability as written: 9 significant digits round-trip a float32 exactly and keep lines short."""
    return float(f"{float(value):.9g}")


def ms_value(value) -> float | None:
    """Milliseconds as written: 3 decimals; None for a missing or non-finite value."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 3)


def time_value(value) -> float:
    """Seconds as written (media times and durations): 6 decimals."""
    return round(float(value), 6)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Event:
    kind: ClassVar[str]
    camera: str | None
    wall_time: str | None
    run_id: str | None = None
    _json: dict | None = field(default=None, init=False, repr=False, compare=False)

    def to_json_dict(self) -> dict:
        """The events.jsonl object (made once, then shared: read it, do not change it)."""
        record = self._json
        if record is None:
            record = self._json_dict()
            object.__setattr__(self, "_json", record)
        return record

    def stamped(self, run_id: str | None):
        """This event with its run's id (the one place a run id is set)."""
        return self if run_id == self.run_id else dataclasses.replace(self, run_id=run_id)

    def _tail(self, record: dict) -> dict:
        if self.run_id is not None:
            record["run_id"] = self.run_id
        return record

    def _json_dict(self) -> dict:
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionEvent(_Event):
    """One clip's prediction line (DESIGN.md "Events"). A gated clip: ``gated=True``, ``label``/``score``
    None, ``top_k`` empty. ``top_k``: ((label, score), ...) best first; ``scores``: every label's
    probability when the camera includes them, else None. Numbers are held as written."""

    kind: ClassVar[str] = "prediction"
    source: str
    clip_index: int
    start_frame: int
    end_frame: int
    start_time_s: float
    end_time_s: float
    label: str | None
    score: float | None
    top_k: tuple[tuple[str, float], ...]
    latency_ms: StageLatency
    model: str
    untrained: bool
    scores: tuple[float, ...] | None = None
    gated: bool = False
    custom_top_k: tuple[tuple[str, float], ...] = ()  # a grafted head's classes (``edge-har learn``)
    custom_scores: tuple[float, ...] | None = None
    features: np.ndarray | None = field(default=None, repr=False, compare=False)  # never written: for learn

    @classmethod
    def of(cls, prediction, *, camera: str | None, source: str, model: str, untrained: bool,
           include_scores: bool = False) -> PredictionEvent:
        """The event of a ``records.Prediction`` (its ``wall_time``, or now)."""
        from edge.postprocess import now_iso

        clip, latency = prediction.clip, prediction.latency
        return cls(
            camera=camera, wall_time=prediction.wall_time or now_iso(), source=source,
            clip_index=clip.clip_index, start_frame=clip.start_frame, end_frame=clip.end_frame,
            start_time_s=time_value(clip.start_time_s), end_time_s=time_value(clip.end_time_s),
            label=prediction.label, score=score_value(prediction.score),
            top_k=tuple((label, score_value(score)) for label, score in prediction.top_k),
            latency_ms=_latency(latency), model=model, untrained=bool(untrained),
            scores=tuple(score_value(v) for v in np.asarray(prediction.probabilities).reshape(-1))
            if include_scores else None,
            custom_top_k=tuple((label, score_value(score)) for label, score in prediction.custom_top_k),
            custom_scores=tuple(score_value(v) for v in np.asarray(prediction.custom_probabilities).reshape(-1))
            if include_scores and prediction.custom_probabilities is not None else None,
            features=prediction.features)

    @classmethod
    def gated_clip(cls, clip, latency: StageLatency, *, camera: str | None, source: str, model: str,
                   untrained: bool, wall_time: str | None = None) -> PredictionEvent:
        """The event of a clip the still-scene gate did not infer (``latency``: preprocess and end to end)."""
        from edge.postprocess import now_iso

        return cls(
            camera=camera, wall_time=wall_time or now_iso(), source=source, clip_index=clip.clip_index,
            start_frame=clip.start_frame, end_frame=clip.end_frame, start_time_s=time_value(clip.start_time_s),
            end_time_s=time_value(clip.end_time_s), label=None, score=None, top_k=(),
            latency_ms=StageLatency(ms_value(latency.preprocess), None, None, ms_value(latency.end_to_end)),
            model=model, untrained=bool(untrained), gated=True)

    def _json_dict(self) -> dict:
        latency = self.latency_ms
        record = {
            "source": self.source,
            "clip_index": self.clip_index,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_time_s": self.start_time_s,
            "end_time_s": self.end_time_s,
            "wall_time": self.wall_time,
            "label": self.label,
            "score": self.score,
            "top_k": [{"label": label, "score": score} for label, score in self.top_k],
            "latency_ms": {"preprocess": latency.preprocess, "infer": latency.infer,
                           "postprocess": latency.postprocess, "end_to_end": latency.end_to_end},
            "model": self.model,
            "untrained": self.untrained,
        }
        if self.scores is not None:
            record["scores"] = list(self.scores)
        if self.custom_top_k:
            record["custom_top_k"] = [{"label": label, "score": score} for label, score in self.custom_top_k]
        if self.custom_scores is not None:
            record["custom_scores"] = list(self.custom_scores)
        if self.gated:
            record["gated"] = True
        if self.camera is not None:
            record["camera"] = self.camera
        return self._tail(record)


@dataclass(frozen=True, slots=True, kw_only=True)
class GapEvent(_Event):
    """A live stream that dropped: ``{"event": "gap", "source", "after_frame", "gap_s", "reason", ...}``."""

    kind: ClassVar[str] = "gap"
    source: str
    after_frame: int
    gap_s: float
    reason: str

    @classmethod
    def of(cls, gap, *, camera: str | None, source: str, wall_time: str | None = None) -> GapEvent:
        """The event of a ``sources.Gap``."""
        from edge.postprocess import now_iso

        return cls(camera=camera, wall_time=wall_time or now_iso(), source=source,
                   after_frame=int(gap.after_frame_index), gap_s=round(float(gap.seconds), 3), reason=str(gap.reason))

    def _json_dict(self) -> dict:
        record = {"event": "gap", "source": self.source, "after_frame": self.after_frame, "gap_s": self.gap_s,
                  "reason": self.reason, "wall_time": self.wall_time}
        if self.camera is not None:
            record["camera"] = self.camera
        return self._tail(record)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusEvent(_Event):
    """A camera's state changed (starting, online, reconnecting, offline, finished); not a line of events.jsonl."""

    kind: ClassVar[str] = "status"
    state: str
    reason: str | None = None

    def _json_dict(self) -> dict:
        return self._tail({"event": "status", "camera": self.camera, "state": self.state, "reason": self.reason,
                           "wall_time": self.wall_time})


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityEvent(_Event):
    """A segment of a site activity started, goes on (``update``) or ended (``edge.activities``).

    ``type``: ``"start"``, ``"update"`` or ``"end"``; ``end_time_s`` and ``reason`` (``"ended"``, ``"stream
    gap"``, ``"end of stream"``) are set only at the end.
    """

    kind: ClassVar[str] = "activity"
    type: str
    id: str
    activity: str
    start_time_s: float
    end_time_s: float | None
    duration_s: float
    peak_score: float
    time_base: str
    reason: str | None = None

    def _json_dict(self) -> dict:
        record = {"event": "activity", "type": self.type, "id": self.id, "camera": self.camera,
                  "activity": self.activity, "start_time_s": self.start_time_s, "end_time_s": self.end_time_s,
                  "duration_s": self.duration_s, "peak_score": self.peak_score, "time_base": self.time_base}
        if self.type == "end":
            record["reason"] = self.reason
        record["wall_time"] = self.wall_time
        return self._tail(record)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckEvent(_Event):
    """A rule's judgement (``edge.checks``): ``passed`` True, False (an alert) or None (undecided).

    ``rule_kind`` is the rule's kind (the line's ``"kind"`` key: ``kind`` is the event's kind here).
    """

    kind: ClassVar[str] = "check"
    rule: str
    rule_kind: str
    passed: bool | None
    reason: str
    time_s: float
    time_base: str
    activity_ids: tuple[str, ...]
    id: str | None = None   # unique within the run (``edge.checks``); the clip line names it
    clip: str | None = None
    clip_url: str | None = None
    snapshot: str | None = None
    snapshot_url: str | None = None

    def _json_dict(self) -> dict:
        return self._tail({"event": "check", "id": self.id, "rule": self.rule, "kind": self.rule_kind,
                           "camera": self.camera, "passed": self.passed, "reason": self.reason, "time_s": self.time_s,
                           "time_base": self.time_base, "activity_ids": list(self.activity_ids),
                           "clip": self.clip, "clip_url": self.clip_url, "snapshot": self.snapshot,
                           "snapshot_url": self.snapshot_url, "wall_time": self.wall_time})


@dataclass(frozen=True, slots=True, kw_only=True)
class ClipEvent(_Event):
    """The evidence of a check (``check_id``) or an activity segment (``activity_id``) is on disk
    (``edge.evidence``): the clip, its snapshot and its WebVTT labels (paths; None when not made),
    their URLs on the HTTP server, and the span of the clip in the camera's time base."""

    kind: ClassVar[str] = "clip"
    rule: str | None
    check_id: str | None
    activity_id: str | None
    clip: str
    clip_url: str | None
    snapshot: str | None
    snapshot_url: str | None
    vtt: str | None
    start_s: float
    end_s: float

    def _json_dict(self) -> dict:
        record = {"event": "clip", "camera": self.camera}
        if self.check_id is not None:
            record["check_id"] = self.check_id
        if self.activity_id is not None:
            record["activity_id"] = self.activity_id
        record.update({"rule": self.rule, "clip": self.clip, "clip_url": self.clip_url, "snapshot": self.snapshot,
                       "snapshot_url": self.snapshot_url, "vtt": self.vtt, "start_s": self.start_s,
                       "end_s": self.end_s, "wall_time": self.wall_time})
        return self._tail(record)


@dataclass(frozen=True, slots=True, kw_only=True)
class CurrentActivity(_Event):
    """The camera's current activity changed (``edge.activities.current_activity``): ``activity`` and the
    segment ``id``, or None for none. Not a line of events.jsonl; MQTT's retained activity follows it."""

    kind: ClassVar[str] = "current_activity"
    activity: str | None
    id: str | None = None

    def _json_dict(self) -> dict:
        return self._tail({"event": "current_activity", "camera": self.camera, "activity": self.activity,
                           "id": self.id, "wall_time": self.wall_time})


Event = PredictionEvent | GapEvent | StatusEvent | ActivityEvent | CheckEvent | ClipEvent | CurrentActivity


def _latency(latency) -> StageLatency:
    if latency is None:
        return StageLatency(None, None, None, None)
    return StageLatency(ms_value(latency.preprocess), ms_value(latency.infer), ms_value(latency.postprocess),
                        ms_value(latency.end_to_end))


def from_json_dict(record: Mapping) -> Event:
    """The event a recorded line (an events.jsonl object) holds; ``to_json_dict()`` gives that object back.

    Keys a line lacks read as None (replay accepts lines with only what it needs); ``KeyError``,
    ``TypeError`` or ``ValueError`` for a line whose values cannot be read (e.g. ``top_k`` not a
    list of ``{label, score}``).
    """
    get = record.get
    kind = get("event") or "prediction"
    common = {"camera": get("camera"), "wall_time": get("wall_time"), "run_id": get("run_id")}
    if kind == "prediction":
        latency = get("latency_ms") or {}
        top_k = get("top_k")
        scores = get("scores")
        custom_top_k, custom_scores = get("custom_top_k") or (), get("custom_scores")
        event = PredictionEvent(
            **common, source=get("source"), clip_index=get("clip_index"), start_frame=get("start_frame"),
            end_frame=get("end_frame"), start_time_s=get("start_time_s"), end_time_s=get("end_time_s"),
            label=get("label"), score=get("score"),
            top_k=None if top_k is None else tuple((str(item["label"]), item["score"]) for item in top_k),
            latency_ms=StageLatency(latency.get("preprocess"), latency.get("infer"), latency.get("postprocess"),
                                    latency.get("end_to_end")),
            model=get("model"), untrained=get("untrained"), scores=None if scores is None else tuple(scores),
            gated=bool(get("gated")),
            custom_top_k=tuple((str(item["label"]), item["score"]) for item in custom_top_k),
            custom_scores=None if custom_scores is None else tuple(custom_scores))
    elif kind == "gap":
        event = GapEvent(**common, source=get("source"), after_frame=get("after_frame"), gap_s=get("gap_s"),
                         reason=get("reason"))
    elif kind == "status":
        event = StatusEvent(**common, state=get("state"), reason=get("reason"))
    elif kind == "activity":
        event = ActivityEvent(**common, type=get("type"), id=get("id"), activity=get("activity"),
                              start_time_s=get("start_time_s"), end_time_s=get("end_time_s"),
                              duration_s=get("duration_s"), peak_score=get("peak_score"),
                              time_base=get("time_base"), reason=get("reason"))
    elif kind == "check":
        ids = get("activity_ids")
        event = CheckEvent(**common, rule=get("rule"), rule_kind=get("kind"), passed=get("passed"),
                           reason=get("reason"), time_s=get("time_s"), time_base=get("time_base"),
                           activity_ids=tuple(ids or ()), id=get("id"), clip=get("clip"), clip_url=get("clip_url"),
                           snapshot=get("snapshot"), snapshot_url=get("snapshot_url"))
    elif kind == "clip":
        event = ClipEvent(**common, rule=get("rule"), check_id=get("check_id"), activity_id=get("activity_id"),
                          clip=get("clip"), clip_url=get("clip_url"), snapshot=get("snapshot"),
                          snapshot_url=get("snapshot_url"), vtt=get("vtt"), start_s=get("start_s"),
                          end_s=get("end_s"))
    elif kind == "current_activity":
        event = CurrentActivity(**common, activity=get("activity"), id=get("id"))
    else:
        raise ValueError(f"unknown event {kind!r}")
    object.__setattr__(event, "_json", dict(record))   # the line is its own serialisation
    return event


__all__ = ["LINE_KINDS", "ActivityEvent", "CheckEvent", "ClipEvent", "CurrentActivity", "Event", "GapEvent", "PredictionEvent",
           "StatusEvent", "from_json_dict", "ms_value", "score_value", "time_value"]
