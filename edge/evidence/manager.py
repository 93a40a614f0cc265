"""``EvidenceSink``: decides what gets a clip, waits until the camera's packets cover it, and makes it.

It is a ``Sink`` the service subscribes, so it sees every event of every camera. Per camera it keeps
the activity segments by id and the recent predictions and activity events (for the WebVTT and the
snapshot). What gets a clip follows ``CameraConfig.clips``:

What gets a clip (``edge.config.schema.CLIP_MODES``):

- ``failed_checks``: every check that failed; ``checks``: every check (passed, failed, undecided);
- ``activities``: every activity segment, when it ends (checks then get none of their own);
- ``none``: nothing.

A check's clip spans the segments it judged on that camera (for a ``followed_by`` failure, the
``first`` segment up to the deadline, the check's ``time_s``), from ``pre_s`` before to ``post_s``
after; a rule that judged segments of two cameras gets a clip from each (ids then end in
``-{camera}``). A segment still open when its check comes (``forbidden``, ``sequence``) is waited for.

The clip is made on the sink's own thread (``handle`` only records and wakes it) once the camera's
packet source covers the clip's end and the camera's predictions have passed it (their labels are in
the WebVTT), or the camera has finished (a file: cut to its end). Then: cut (``cut.py``), WebVTT
(``vtt.py``), snapshot (``snapshot.py``, when ``evidence.snapshot``), the ``{id}.json`` sidecar
(``store.py``), and a ``ClipEvent`` through ``emit``. ``close()`` makes every clip still pending with
what the sources hold.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from edge.activities import observation_time
from edge.events import ClipEvent, Event, time_value
from edge.evidence.cut import CutError, cut_clip
from edge.evidence.snapshot import Shown, SnapshotError, write_snapshot
from edge.evidence.store import ClipStore
from edge.evidence.vtt import prediction_span, write_vtt
from edge.health import CameraState
from edge.records import CUSTOM_PREFIX

log = logging.getLogger(__name__)

RECENT_EVENTS = 20_000     # predictions and activity events kept per camera (hours at stride 8)
SEGMENTS_KEPT = 4096       # activity segments remembered per camera, by id
POLL_S = 0.5               # how often a pending live clip looks at its recorder again


@dataclass
class _Segment:
    id: str
    camera: str
    activity: str
    start: float
    end: float | None = None


@dataclass
class _Camera:
    """What the sink knows of one camera."""

    mode: str
    time_base: str
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    segments: OrderedDict = field(default_factory=OrderedDict)
    progress: float = -math.inf   # the newest prediction's time on the camera's time base
    ended: bool = False


@dataclass
class _Job:
    id: str
    camera: str
    segments: list[_Segment]
    snapshot_segment: _Segment
    wall_time: str | None
    rule: str | None = None
    check_id: str | None = None
    activity_id: str | None = None
    passed: bool | None = None
    reason: str | None = None
    until: float | None = None    # the span reaches at least here (a followed_by deadline)


class EvidenceSink:
    """Makes the clips of the cameras in ``cameras`` (name → ``CameraConfig``).

    ``sources``: camera → packet source (``FilePackets``, a ``Recorder``): ``packets(start_s, end_s)``
    and ``covered_until()``; a camera without one gets no clip (one log line). ``emit``: where the
    ``ClipEvent`` goes (the service's ``emit``). ``store``: the ``ClipStore`` (default: the cameras'
    ``evidence.dir``). ``masks``: camera → ``edge.privacy.Masks``, burnt into clips and
    snapshots. ``run_id``: prefixes ids when the events carry none.
    """

    def __init__(self, cameras: Mapping, sources: Mapping, *, emit: Callable[[Event], object],
                 store: ClipStore | None = None, masks: Mapping | None = None, run_id: str | None = None) -> None:
        from edge.evidence.paths import clips_dir

        self.cameras = dict(cameras)
        self.sources = dict(sources)
        self.emit = emit
        self.store = store or ClipStore({name: clips_dir(camera) for name, camera in self.cameras.items()})
        self.masks = {name: value for name, value in (masks or {}).items() if value}
        self.run_id = run_id
        self.clips_written = 0
        self.clips_failed = 0
        self._state = {name: _Camera(camera.clips, camera.time_base) for name, camera in self.cameras.items()}
        self._labels = {name: {activity: frozenset(spec.labels) for activity, spec in camera.activities.items()}
                        for name, camera in self.cameras.items()}
        self._jobs: list[_Job] = []
        self._told_no_source: set[str] = set()
        self._closing = False
        self._wake = threading.Condition()
        self._worker = threading.Thread(target=self._work, name="evidence", daemon=True)
        self._worker.start()

    # -- the Sink side: record and wake, never wait --------------------------------------------

    def handle(self, event: Event) -> None:
        kind = event.kind
        state = self._state.get(event.camera)
        if state is None or kind not in ("prediction", "activity", "check", "status"):
            return
        with self._wake:
            if kind == "prediction":
                state.recent.append(event)
                state.progress = max(state.progress, observation_time(event, state.time_base))
            elif kind == "activity":
                state.recent.append(event)
                self._on_activity(state, event)
            elif kind == "check":
                self._on_check(event)
            elif kind == "status" and event.state == CameraState.FINISHED.value:
                state.ended = True
            else:
                return
            self._wake.notify()

    def close(self) -> None:
        """Make every pending clip with what the sources hold now, then stop the worker. Idempotent."""
        with self._wake:
            self._closing = True
            for state in self._state.values():
                state.ended = True
            self._wake.notify()
        self._worker.join()

    # -- what gets a clip ------------------------------------------------------------------------

    def _on_activity(self, state: _Camera, event) -> None:
        segment = state.segments.get(event.id)
        if segment is None:
            segment = state.segments[event.id] = _Segment(event.id, event.camera, event.activity,
                                                          float(event.start_time_s))
            while len(state.segments) > SEGMENTS_KEPT:
                state.segments.popitem(last=False)
        if event.type == "end":
            segment.end = float(event.end_time_s if event.end_time_s is not None else state.progress)
            if state.mode == "activities":
                self._add(_Job(self._id(event.run_id, event.id), event.camera, [segment], segment,
                               event.wall_time, activity_id=event.id))

    def _on_check(self, event) -> None:
        judged: dict[str, list[_Segment]] = {}
        for activity_id in event.activity_ids:
            for state in self._state.values():
                segment = state.segments.get(activity_id)
                if segment is not None:
                    judged.setdefault(segment.camera, []).append(segment)
                    break
        if not judged:
            return
        # the activity the snapshot shows: followed_by's first, the step that started for a sequence
        shown_id = event.activity_ids[-1] if event.rule_kind == "sequence" else event.activity_ids[0]
        for camera, segments in judged.items():
            mode = self._state[camera].mode
            if not (mode == "checks" or (mode == "failed_checks" and event.passed is False)):
                continue
            shown = next((segment for segment in segments if segment.id == shown_id), segments[-1])
            until = (float(event.time_s) if event.rule_kind == "followed_by" and event.passed is False
                     and camera == event.camera else None)
            suffix = f"-{camera}" if len(judged) > 1 else ""
            self._add(_Job(self._id(event.run_id, event.id) + suffix, camera, segments, shown, event.wall_time,
                           rule=event.rule, check_id=event.id, passed=event.passed, reason=event.reason,
                           until=until))

    def _id(self, run_id: str | None, name: str) -> str:
        run_id = run_id or self.run_id
        return f"{run_id}-{name}" if run_id else str(name)

    def _add(self, job: _Job) -> None:
        if self.sources.get(job.camera) is None:
            if job.camera not in self._told_no_source:
                self._told_no_source.add(job.camera)
                log.warning("%s: no recording of this camera: its events get no clip", job.camera)
            return
        self._jobs.append(job)

    # -- the worker ------------------------------------------------------------------------------

    def _span(self, job: _Job) -> tuple[float, float] | None:
        """The judged span on the camera's time base, or None while a segment is still open."""
        state = self._state[job.camera]
        ends = [segment.end for segment in job.segments]
        if any(end is None for end in ends):
            if not state.ended:
                return None
            ends = [state.progress if end is None else end for end in ends]
        end = max(ends + ([job.until] if job.until is not None else []))
        return min(segment.start for segment in job.segments), end

    def _ready(self, job: _Job) -> tuple[float, float] | None:
        span = self._span(job)
        if span is None:
            return None
        state = self._state[job.camera]
        if state.ended:
            return span
        end = span[1] + self.cameras[job.camera].evidence.post_s
        if state.progress < end:
            return None
        try:
            covered = self.sources[job.camera].covered_until()
        except Exception:
            return None
        return span if covered is not None and covered >= end else None

    def _work(self) -> None:
        while True:
            with self._wake:
                while True:
                    ready = []
                    for job in list(self._jobs):
                        span = self._ready(job)
                        if span is not None:
                            self._jobs.remove(job)
                            ready.append((job, span, list(self._state[job.camera].recent)))
                    if ready or (self._closing and not self._jobs):
                        break
                    live = any(not math.isinf(self._covered(job.camera)) for job in self._jobs)
                    self._wake.wait(POLL_S if live else None)
            if not ready:
                return
            for job, span, events in ready:
                try:
                    self._make(job, span, events)
                except Exception as error:  # one clip that cannot be made must not stop the others
                    self.clips_failed += 1
                    log.warning("%s: no clip for %s: %s", job.camera, job.check_id or job.activity_id, error)

    def _covered(self, camera: str) -> float:
        try:
            covered = self.sources[camera].covered_until()
        except Exception:
            return 0.0
        return math.inf if covered is None else covered

    def _make(self, job: _Job, span: tuple[float, float], events: list) -> None:
        from edge.postprocess import now_iso

        camera = self.cameras[job.camera]
        evidence, time_base = camera.evidence, camera.time_base
        start = span[0] - evidence.pre_s
        if time_base == "media":
            start = max(0.0, start)
        end = span[1] + evidence.post_s
        folder = self.store.folder_for(job.camera, _day(job.wall_time))
        masks = self.masks.get(job.camera)
        source = self.sources[job.camera]
        try:
            cut = cut_clip(source.packets(start, end), start, end, folder / f"{job.id}.mp4", masks=masks)
        except CutError as error:
            raise CutError(f"cutting {start:.2f}-{end:.2f} s: {error}") from None
        vtt = write_vtt(folder / f"{job.id}.vtt", events, cut.start_s, cut.end_s, time_base=time_base)
        snapshot = None
        if evidence.snapshot:
            try:
                snapshot = self._snapshot(job, cut, events, folder / f"{job.id}.jpg", time_base, masks)
            except SnapshotError as error:
                log.warning("%s: no snapshot for %s: %s", job.camera, job.id, error)
        item = self.store.add(id=job.id, camera=job.camera, rule=job.rule, activity=job.snapshot_segment.activity,
                              passed=job.passed, start_s=cut.start_s, end_s=cut.end_s, wall_time=job.wall_time,
                              clip=cut.path, snapshot=snapshot, vtt=vtt, check_id=job.check_id,
                              activity_id=job.activity_id, reason=job.reason, time_base=time_base)
        self.clips_written += 1
        self.emit(ClipEvent(camera=job.camera, wall_time=now_iso(), rule=job.rule, check_id=job.check_id,
                            activity_id=job.activity_id, clip=str(cut.path), clip_url=item["clip_url"],
                            snapshot=None if snapshot is None else str(snapshot), snapshot_url=item["snapshot_url"],
                            vtt=str(vtt), start_s=time_value(cut.start_s), end_s=time_value(cut.end_s)))

    def _snapshot(self, job: _Job, cut, events: list, path, time_base: str, masks):
        """The frame where the shown segment's activity scored highest, its prediction's label drawn."""
        segment = job.snapshot_segment
        labels = self._labels[job.camera].get(segment.activity, frozenset())
        end = segment.end if segment.end is not None else math.inf
        best, best_score = None, -1.0
        for event in events:
            if event.kind != "prediction" or event.gated:
                continue
            observed = observation_time(event, time_base)
            if not segment.start - 1e-6 <= observed <= end + 1e-6:
                continue
            score = sum(value for label, value in event.top_k if label in labels) + \
                sum(value for label, value in event.custom_top_k if CUSTOM_PREFIX + label in labels)
            if score > best_score:
                best, best_score = event, score
        if best is not None:
            first, last = prediction_span(best, time_base)
            time_s = (first + last) / 2.0
            shown = Shown(best.label, float(best.score), custom_top_k=tuple(best.custom_top_k)) \
                if best.label is not None else None
            untrained = bool(best.untrained)
        else:
            time_s = (segment.start + min(end, cut.end_s)) / 2.0
            shown, untrained = None, False
        activity = (segment.activity, max(0.0, time_s - segment.start))
        alert = f"FAILED {job.rule}: {job.reason}" if job.passed is False else None
        return write_snapshot(path, cut.path, time_s - cut.start_s, shown=shown, activity=activity, alert=alert,
                              masks=masks, untrained=untrained)


def _day(wall_time: str | None) -> str:
    """The YYYY-MM-DD folder of an event (its local date; today without one)."""
    try:
        return datetime.fromisoformat(wall_time).astimezone().strftime("%Y-%m-%d")
    except (TypeError, ValueError):
        return datetime.now().strftime("%Y-%m-%d")


def check_evidence_dirs(config) -> None:
    """Fail before anything starts (``SinkError``, one line) if a camera that makes clips cannot write its
    ``evidence.dir``."""
    from edge.evidence.paths import clips_dir
    from edge.sinks import SinkError, check_writable

    for name, camera in config.cameras.items():
        if camera.clips == "none":
            continue
        folder = clips_dir(camera)
        try:
            check_writable(folder / "clip.mp4")
        except SinkError as error:
            raise SinkError(f"evidence.dir of camera {name}: {error}") from None


__all__ = ["EvidenceSink", "check_evidence_dirs"]
