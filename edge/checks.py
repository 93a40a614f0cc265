"""Procedure checks: rules over activity segments, judged into ``check`` records (a failure is an alert).

Rule kinds (``rules:`` in the config; objects with ``name, kind, activity,
seconds, steps, first, then, within_s, cameras``):

- ``min_duration`` (``activity``, ``seconds``): judged when a segment of the
  activity ends. Shorter than ``seconds`` fails; a segment cut short by a
  stream gap or the end of the stream and still too short is undecided
  (``passed: null``) — nobody knows whether it went on.
- ``forbidden`` (``activity``): fails when a segment of the activity starts.
- ``sequence`` (``steps``, ``within_s``): judged whenever a step after the
  first starts, at time T: the earlier steps must each have a segment seen
  (open, or ended at or after ``T - within_s``) that started before the next
  step's, in step order. Steps must differ.
- ``followed_by`` (``first``, ``then``, ``within_s``): when a ``first``
  segment ends at E, it passes as soon as a ``then`` segment starts in
  ``[E, E + within_s]`` (also when that start was seen before the end of
  ``first`` was noticed) and fails at the deadline ``E + within_s`` otherwise
  — an absence, caught by ``advance``. At the end of a file ``finish`` judges
  the deadlines the file's end passed; one still pending is undecided.

A step is ``activity`` or ``activity@camera``. Without ``@`` a rule runs
separately on each camera it applies to (``cameras`` on the rule, default
all). With ``@`` somewhere in the rule, the rule is one, service-wide: a step
with ``@camera`` only matches that camera, a step without matches any camera
of the rule. Times of different cameras are compared, so those cameras must
share a time base (two files started together, or live cameras).

Time: each camera's ``time_base`` (``media`` seconds for files, ``wall`` Unix
seconds for live sources); ``advance(camera, t)`` says that every activity of
``camera`` up to time ``t`` has been reported. A ``followed_by`` deadline is
judged on the clock of the ``then`` step's camera (or of ``first``'s camera
when ``then`` is not tied to one): only that camera can tell that ``then``
did not happen, however far behind it runs.

Judgements are ``edge.events.CheckEvent`` (CONTRACTS.md: ``{"event": "check",
"rule", "kind", "camera", "passed": true|false|null, "reason", "time_s",
"time_base", "activity_ids", "wall_time"[, "run_id"]}``). ``camera`` is the camera of the segment judged
(``first``'s for ``followed_by``, the later step's for ``sequence``);
``time_s`` the moment the judgement is about (a segment's end for
``min_duration``, a start for ``forbidden`` and ``sequence``, the ``then``
start or the deadline for ``followed_by``, the end of the file for an
undecided one).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from edge.activities import TIME_BASES, setting
from edge.events import ActivityEvent, CheckEvent

_MEMORY = 256  # segments remembered per rule, scope and step (bounded: a service runs for months)


@dataclass(frozen=True)
class Step:
    """One step of a rule: an activity, tied to a camera or not (``None``)."""

    activity: str
    camera: str | None = None

    @classmethod
    def parse(cls, text: str) -> Step:
        activity, _, camera = str(text).partition("@")
        return cls(activity.strip(), camera.strip() or None)

    def __str__(self) -> str:
        return self.activity if self.camera is None else f"{self.activity}@{self.camera}"


@dataclass
class _Rule:
    name: str
    kind: str
    steps: tuple[Step, ...]
    cameras: tuple[str, ...]  # the cameras an untied step matches
    bound: bool
    seconds: float | None
    within_s: float | None

    def positions(self, activity: str, camera: str) -> list[int]:
        return [number for number, step in enumerate(self.steps)
                if step.activity == activity and (step.camera == camera if step.camera else camera in self.cameras)]

    def scope(self, camera: str) -> str:
        return "*" if self.bound else camera


@dataclass
class _Seen:
    id: str
    camera: str
    start: float
    end: float | None = None


@dataclass
class _Pending:
    rule: _Rule
    scope: str
    first: ActivityEvent
    end: float
    deadline: float
    judge_camera: str
    order: int = field(default=0)


def _build_rule(rule, cameras: Sequence[str]) -> _Rule:
    """A rule as the engine runs it. The config validated it (``edge.config.RuleConfig``: its kind,
    the keys the kind needs, distinct steps, known activities and cameras)."""
    kind = setting(rule, "kind")
    if kind == "sequence":
        raw = list(setting(rule, "steps", ()))
    elif kind == "followed_by":
        raw = [setting(rule, "first"), setting(rule, "then")]
    else:
        raw = [setting(rule, "activity")]
    steps = tuple(Step.parse(text) for text in raw)
    limited = setting(rule, "cameras")
    seconds, within_s = setting(rule, "seconds"), setting(rule, "within_s")
    return _Rule(str(setting(rule, "name", "")), kind, steps,
                 tuple(camera for camera in cameras if limited is None or camera in limited),
                 any(step.camera for step in steps),
                 None if seconds is None else float(seconds), None if within_s is None else float(within_s))


def time_bases(config) -> dict[str, str]:
    """Camera name -> time base of a ``ServiceConfig``: each camera's resolved ``time_base``
    (the one its activity tracker uses too)."""
    return {name: camera.time_base for name, camera in config.cameras.items()}


class CheckEngine:
    """Every rule of the service, judged from the activity records of all cameras. Thread-safe.

    ``rules``: the config's rule objects (or mappings), in config order, as
    the config validated them (a rule never ties cameras of different time bases).
    ``cameras``: camera name -> time base (``"media"`` or ``"wall"``), each
    camera's resolved ``CameraConfig.time_base`` (``time_bases(config)``).
    """

    def __init__(self, rules: Sequence[object], cameras: Mapping[str, str]) -> None:
        self.cameras = dict(cameras)
        for camera, base in self.cameras.items():
            if base not in TIME_BASES:
                raise ValueError(f"camera {camera!r}: time base must be 'media' or 'wall', got {base!r}")
        self.rules = [_build_rule(rule, list(self.cameras)) for rule in rules]
        self._lock = threading.Lock()
        self._clock: dict[str, float] = {}
        self._finished: dict[str, float] = {}
        self._seen: dict[tuple[int, str, int], deque[_Seen]] = {}
        self._then_starts: dict[tuple[int, str], deque[ActivityEvent]] = {}
        self._pending: list[_Pending] = []
        self._order = 0
        self._checks = 0   # check ids are f"{rule}-{n}", n counting every check of the run

    # -- public API -----------------------------------------------------------------------------

    def on_activity(self, record: ActivityEvent) -> list[CheckEvent]:
        """Judge what one activity event (start/update/end) decides; returns check events, rules in order."""
        with self._lock:
            checks: list[CheckEvent] = []
            camera, activity, kind = record.camera, record.activity, record.type
            for number, rule in enumerate(self.rules):
                for position in rule.positions(activity, camera):
                    checks.extend(self._on_step(number, rule, position, record, kind))
            return checks

    def advance(self, camera: str, time_s: float, wall_time: str) -> list[CheckEvent]:
        """Every activity of ``camera`` up to ``time_s`` is known: fail the ``followed_by`` deadlines passed.

        Call it after the activity records of each prediction (files: the
        prediction's time), and for live cameras also from a wall-clock timer
        with a time up to which the camera's clips are all observed.
        ``next_deadline`` says when that timer next needs to run.
        """
        with self._lock:
            return self._advance(camera, float(time_s), wall_time)

    def finish(self, camera: str, time_s: float | None, wall_time: str) -> list[CheckEvent]:
        """``camera`` ended at ``time_s`` (end of a file): deadlines up to ``time_s`` fail, later ones are undecided.

        ``time_s`` None: the camera never observed a clip (its deadlines are
        undecided). Feed the end records of the camera's last segments
        (``ActivityTracker.interrupt``) first.
        """
        with self._lock:
            if time_s is None:
                time_s = self._clock.get(camera)
            if time_s is None:
                self._finished[camera] = float("-inf")
                pending = [p for p in self._pending if p.judge_camera == camera]
                self._pending = [p for p in self._pending if p.judge_camera != camera]
                return [self._undecided(p, None, wall_time) for p in pending]
            time_s = max(float(time_s), self._clock.get(camera, float(time_s)))
            checks = self._advance(camera, time_s, wall_time)
            self._finished[camera] = time_s
            for pending in [p for p in self._pending if p.judge_camera == camera]:
                self._pending.remove(pending)
                checks.append(self._undecided(pending, time_s, wall_time))
            return checks

    def next_deadline(self, camera: str) -> float | None:
        """The earliest pending ``followed_by`` deadline judged on ``camera``'s clock, or None."""
        with self._lock:
            deadlines = [p.deadline for p in self._pending if p.judge_camera == camera]
            return min(deadlines) if deadlines else None

    # -- rules ----------------------------------------------------------------------------------

    def _on_step(self, number: int, rule: _Rule, position: int, record: ActivityEvent, kind: str
                 ) -> list[CheckEvent]:
        camera = record.camera
        if rule.kind == "min_duration":
            return [self._min_duration(rule, record)] if kind == "end" else []
        if rule.kind == "forbidden":
            if kind != "start":
                return []
            return [self._check(rule, camera, False, record.start_time_s, [record.id], record.wall_time,
                                f"{record.activity} started at {self._when(camera, record.start_time_s)} "
                                f"on camera {camera}, where it is forbidden")]
        if rule.kind == "sequence":
            return self._sequence(number, rule, position, record, kind)
        return self._followed_by(number, rule, position, record, kind)

    def _min_duration(self, rule: _Rule, record: ActivityEvent) -> CheckEvent:
        camera, activity, duration = record.camera, record.activity, float(record.duration_s)
        needs = _seconds(rule.seconds)
        if duration >= rule.seconds:
            passed, reason = True, f"{activity} lasted {_measured(duration)}, at least the {needs} needed"
        elif (record.reason or "ended") == "ended":
            passed, reason = False, f"{activity} lasted {_short_of(duration, rule.seconds)}, needs {needs}"
        else:
            cut = "a stream gap" if record.reason == "stream gap" else "the end of the stream"
            passed, reason = None, (f"{activity} lasted {_short_of(duration, rule.seconds)} before {cut} cut it short, needs "
                                    f"{needs}: cannot tell whether it went on")
        return self._check(rule, camera, passed, record.end_time_s, [record.id], record.wall_time, reason)

    def _sequence(self, number: int, rule: _Rule, position: int, record: ActivityEvent, kind: str
                  ) -> list[CheckEvent]:
        camera, scope = record.camera, rule.scope(record.camera)
        seen = self._seen.setdefault((number, scope, position), deque(maxlen=_MEMORY))
        if kind == "end":
            for item in seen:
                if item.id == record.id:
                    item.end = float(record.end_time_s)
            return []
        if kind != "start":
            return []
        start = float(record.start_time_s)
        seen.append(_Seen(record.id, camera, start))
        if position == 0:
            return []
        earliest = start - rule.within_s
        bound, chosen, missing = start, [], None
        for earlier in range(position - 1, -1, -1):
            candidates = [item for item in self._seen.get((number, scope, earlier), ())
                          if item.start < bound and (item.end is None or item.end >= earliest)]
            if not candidates:
                missing = earlier
                break
            best = max(candidates, key=lambda item: item.start)
            chosen.insert(0, best)
            bound = best.start
        trigger = rule.steps[position]
        ids = [item.id for item in chosen] + [record.id]
        when = self._when(camera, start)
        if missing is None:
            order = ", then ".join(f"{rule.steps[i].activity} at {self._when(item.camera, item.start)}"
                                   for i, item in zip(range(position), chosen))
            reason = f"{order}, then {trigger.activity} at {when}: all within {_seconds(rule.within_s)}"
            return [self._check(rule, camera, True, start, ids, record.wall_time, reason)]
        need = rule.steps[missing].activity
        after = f" before {rule.steps[missing + 1].activity}" if missing + 1 < position else ""
        reason = (f"{trigger.activity} started at {when} without {need}{after} "
                  f"in the {_seconds(rule.within_s)} before it")
        return [self._check(rule, camera, False, start, ids, record.wall_time, reason)]

    def _followed_by(self, number: int, rule: _Rule, position: int, record: ActivityEvent, kind: str
                     ) -> list[CheckEvent]:
        camera, scope = record.camera, rule.scope(record.camera)
        checks = []
        if position == 1 and kind == "start":
            start = float(record.start_time_s)
            starts = self._then_starts.setdefault((number, scope), deque(maxlen=_MEMORY))
            starts.append(record)
            for pending in [p for p in self._pending if p.rule is rule and p.scope == scope]:
                if pending.end <= start <= pending.deadline:
                    self._pending.remove(pending)
                    checks.append(self._followed(pending, record))
        if position == 0 and kind == "end":
            end = float(record.end_time_s)
            then_camera = rule.steps[1].camera or camera
            pending = _Pending(rule, scope, record, end, end + rule.within_s, then_camera, self._order)
            self._order += 1
            for then in self._then_starts.get((number, scope), ()):
                if end <= float(then.start_time_s) <= pending.deadline:
                    return [self._followed(pending, then)]
            if pending.judge_camera in self._finished:
                final = self._finished[pending.judge_camera]
                if final == float("-inf"):
                    return [self._undecided(pending, None, record.wall_time)]
                if pending.deadline <= final:
                    return [self._missed(pending, record.wall_time)]
                return [self._undecided(pending, final, record.wall_time)]
            if self._clock.get(pending.judge_camera, float("-inf")) >= pending.deadline:
                return [self._missed(pending, record.wall_time)]
            self._pending.append(pending)
        return checks

    # -- deadlines ------------------------------------------------------------------------------

    def _advance(self, camera: str, time_s: float, wall_time: str) -> list[CheckEvent]:
        self._clock[camera] = max(time_s, self._clock.get(camera, time_s))
        due = sorted((p for p in self._pending if p.judge_camera == camera and p.deadline <= self._clock[camera]),
                     key=lambda p: (p.deadline, p.order))
        for pending in due:
            self._pending.remove(pending)
        return [self._missed(pending, wall_time) for pending in due]

    def _followed(self, pending: _Pending, then: ActivityEvent) -> CheckEvent:
        first, rule = pending.first, pending.rule
        after = float(then.start_time_s) - pending.end
        reason = (f"{self._step_text(rule, 1, then.camera)} started {_measured(after)} after "
                  f"{self._step_text(rule, 0, first.camera)} ended (within {_seconds(rule.within_s)})")
        return self._check(rule, first.camera, True, then.start_time_s, [first.id, then.id],
                           then.wall_time, reason)

    def _missed(self, pending: _Pending, wall_time: str) -> CheckEvent:
        first, rule = pending.first, pending.rule
        reason = (f"{self._step_text(rule, 0, first.camera)} ended at {self._when(first.camera, pending.end)} "
                  f"and {self._step_text(rule, 1, first.camera)} did not start within "
                  f"{_seconds(rule.within_s)}")
        return self._check(rule, first.camera, False, pending.deadline, [first.id], wall_time, reason)

    def _undecided(self, pending: _Pending, time_s: float | None, wall_time: str) -> CheckEvent:
        first, rule = pending.first, pending.rule
        ended = f"{self._step_text(rule, 0, first.camera)} ended at {self._when(first.camera, pending.end)}; "
        if time_s is None or time_s == float("-inf"):
            reason = f"{ended}camera {pending.judge_camera} saw nothing, so whether {rule.steps[1].activity} followed is unknown"
            time_s = pending.end
        else:
            reason = (f"{ended}the stream ended at {self._when(pending.judge_camera, time_s)}, before the "
                      f"{_seconds(rule.within_s)} for {rule.steps[1].activity} ran out")
        return self._check(rule, first.camera, None, max(time_s, pending.end), [first.id], wall_time, reason)

    # -- records --------------------------------------------------------------------------------

    def _step_text(self, rule: _Rule, position: int, camera: str) -> str:
        step = rule.steps[position]
        return f"{step.activity} on {step.camera}" if rule.bound and step.camera else step.activity

    def _when(self, camera: str, time_s: float) -> str:
        if self.cameras.get(camera) == "wall":
            return datetime.fromtimestamp(float(time_s)).astimezone().strftime("%H:%M:%S")
        return _measured(time_s)

    def _check(self, rule: _Rule, camera: str, passed: bool | None, time_s: float, ids: list[str],
               wall_time: str, reason: str) -> CheckEvent:
        self._checks += 1
        return CheckEvent(camera=camera, wall_time=wall_time, id=f"{rule.name}-{self._checks}", rule=rule.name,
                          rule_kind=rule.kind, passed=passed,
                          reason=reason, time_s=round(float(time_s), 6),
                          time_base=self.cameras.get(camera, "media"), activity_ids=tuple(ids))


def _seconds(value: float) -> str:
    """A configured limit for a sentence: ``20 s``, ``600 s``, ``2.5 s``."""
    return f"{float(value):g} s"


def _measured(value: float) -> str:
    """A measured time or duration for a sentence: ``8.4 s``, ``20.0 s``."""
    return f"{float(value):.1f} s"


def _short_of(duration: float, needed: float) -> str:
    """A too-short duration that never reads as the needed one (19.96 s is not "20.0 s")."""
    text = _measured(duration)
    return text if float(text[:-2]) < needed else f"{math.floor(duration * 100) / 100:.2f} s"
