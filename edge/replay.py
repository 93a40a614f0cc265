"""``edge-har replay``: re-run activities and checks on recorded prediction lines, without video.

Thresholds and rules are tuned offline: change ``activities:`` / ``rules:`` in
the config and replay yesterday's ``events.jsonl``. The output is what the
live run would have written (the same ``ActivityEvent`` and ``CheckEvent``,
same ids, same order per camera) apart from ``wall_time`` — because both feed
``edge.engine.monitor.CameraMonitor`` the same prediction events in the same order. Only prediction and gap lines are
read; recorded activity, check and status lines are ignored.

What a prediction line gives:

- ``scores`` (``output.include_scores: true``): every label's probability, so
  each activity's score is exact (recorded to 9 digits, which restores the
  float32 the live run summed).
- otherwise ``top_k``: a label missing from top_k scores at most the k-th
  score, so an activity is decided whenever ``present >= min_score`` (active)
  or ``present + missing × kth < min_score`` (none), where ``present`` sums its
  labels found in top_k and ``missing`` counts the others. Its score is then
  taken as ``present`` (exact when all its labels are in top_k, a lower bound
  otherwise, so ``peak_score`` may read lower than live). Where the bound
  cannot decide, replay stops with a ``ReplayError`` naming the line.
- ``"gated": true``: a still scene, scores none.

Time: a camera's time base is its config's resolved ``CameraConfig.time_base``
(``wall`` when live, else ``media``; see ``edge.activities``), as in the live run. A file may hold several runs (the events
file is appended to): each new ``run_id`` ends the previous run (its open
segments end with reason ``end of stream``, pending deadlines are settled) and
starts afresh. For a live camera the live run's wall-clock timer may fail a
deadline after the last prediction; replay only knows the recorded lines, so
such a deadline reads undecided.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from edge.activities import ActivityTracker, setting, wall_seconds
from edge.checks import CheckEngine
from edge.engine.monitor import CameraMonitor
from edge.events import ActivityEvent, CheckEvent, from_json_dict
from edge.records import CUSTOM_PREFIX


class ReplayError(Exception):
    """Replay cannot go on; ``str(error)`` is one line naming the line number."""


def config_cameras(config) -> dict[str, object]:
    """Camera name -> camera config of a ``ServiceConfig`` (or a release-1 single-source config)."""
    cameras = getattr(config, "cameras", None)
    if cameras:
        return dict(cameras)
    return {"main": config}


def model_labels(config) -> tuple[str, ...]:
    """What activities may name, in output order: ``model.labels`` file, else the model's labels (and
    ``custom:NAME`` for a grafted head's classes), else Kinetics-400.

    A configured model that is not on this machine falls back to the bundled
    Kinetics-400 list (thresholds are often tuned on another box).
    """
    from pathlib import Path

    from edge.models.loading import ModelError, load_model
    from edge.models.registry import bundled_labels, read_labels

    model = getattr(config, "model", None)
    labels_path, model_path = setting(model, "labels") if model else None, setting(model, "path") if model else None
    try:
        if model_path and Path(model_path).exists():
            return load_model(model_path, labels_path=labels_path)[1].activity_labels
        if labels_path:
            return read_labels(labels_path)
    except (OSError, ModelError) as error:
        raise ReplayError(f"cannot read the model's labels: {error}") from None
    return bundled_labels()


class _Run:
    """The trackers and check engine of one recorded run (one ``run_id``)."""

    def __init__(self, run_id, config, labels: tuple[str, ...], cameras: dict[str, object]) -> None:
        self.run_id, self.config, self.labels, self.cameras = run_id, config, labels, cameras
        bases = {name: camera.time_base for name, camera in cameras.items()}  # as the live run's
        try:
            self.engine = CheckEngine(list(getattr(config, "rules", None) or ()), bases)
        except ValueError as error:
            raise ReplayError(f"config: {error}") from None
        self.monitors: dict[str, CameraMonitor] = {}
        self.last_wall: dict[str, str] = {}

    def monitor(self, camera: str, where: str) -> CameraMonitor:
        if camera not in self.monitors:
            if camera not in self.cameras:
                raise ReplayError(f"{where}: camera {camera!r} is not in the config "
                                  f"(cameras: {', '.join(self.cameras)})")
            specs = setting(self.cameras[camera], "activities", {}) or {}
            try:
                tracker = ActivityTracker(camera, specs, self.labels, self.engine.cameras[camera])
            except ValueError as error:
                raise ReplayError(f"config: cameras.{camera}: {error}") from None
            self.monitors[camera] = CameraMonitor(tracker, self.engine)
        return self.monitors[camera]

    def end(self) -> list:
        out = []
        for camera, monitor in self.monitors.items():
            out.extend(monitor.on_end(self.last_wall.get(camera, "")))
        last = list(self.last_wall.values())[-1:] or [""]
        for camera in self.engine.cameras:  # cameras without lines here: their deadlines are undecided
            if camera not in self.monitors:
                out.extend(self.engine.finish(camera, None, last[0]))
        return out


def _f32(value) -> float:
    # The line holds a float32 printed to 9 digits: restore that float32, as the live run summed it.
    return float(np.float32(value))


def _custom_count(labels: Sequence[str]) -> int:
    return sum(1 for label in labels if label.startswith(CUSTOM_PREFIX))


def activity_scores(record: Mapping, tracker: ActivityTracker, where: str) -> dict[str, float]:
    """Each activity's score for a prediction line, from ``scores`` or bounded by ``top_k``.

    A model with a grafted head: ``custom_scores`` / ``custom_top_k`` give the ``custom:NAME`` labels the same way.
    Raises ``ReplayError`` (starting with ``where``, e.g. ``"line 12"``) when top_k cannot decide an activity.
    """
    custom = _custom_count(tracker.labels)
    heads = (("scores", "top_k", "", len(tracker.labels) - custom),
             ("custom_scores", "custom_top_k", CUSTOM_PREFIX, custom))
    if all(record.get(key) is not None for key, _, _, size in heads if size):
        values = []
        for key, _, _, size in heads:
            part = record.get(key) or [] if size else []
            if not isinstance(part, list) or len(part) != size:
                count = len(part) if isinstance(part, list) else "no list of"
                raise ReplayError(f"{where}: '{key}' has {count} values but the model has {size} "
                                  f"{'custom classes' if key == 'custom_scores' else 'labels'}")
            values.extend(_f32(v) for v in part)
        return tracker.activity_scores(np.array(values, dtype=np.float32))
    found: dict[str, float] = {}
    bound: dict[str, float] = {}  # a label outside its head's top_k scores at most that head's k-th score
    for _, key, prefix, size in heads:
        if not size:
            continue
        top_k = record.get(key)
        if not isinstance(top_k, list):
            raise ReplayError(f"{where}: a prediction line needs '{key}' or '{heads[0 if not prefix else 1][0]}'")
        try:
            head = {prefix + str(item["label"]): _f32(item["score"]) for item in top_k}
        except (TypeError, KeyError, ValueError):
            raise ReplayError(f"{where}: '{key}' must be a list of {{label, score}}") from None
        found.update(head)
        bound[prefix] = 0.0 if len(head) >= size else (min(head.values()) if head else 1.0)
    scores = {}
    for name, spec in tracker.specs.items():
        present = sum(found[label] for label in spec.labels if label in found)
        upper = present + sum(bound[CUSTOM_PREFIX if label.startswith(CUSTOM_PREFIX) else ""]
                              for label in spec.labels if label not in found)
        if present < spec.min_score <= upper:
            raise ReplayError(
                f"{where}: top_k cannot tell whether {name} is active (its labels outside the top "
                f"{len(found)} could bring it to {upper:.3f}, min_score {spec.min_score:g}); record the events "
                "with output.include_scores: true")
        scores[name] = present
    return scores


def parse_line(line: str, number: int) -> dict | None:
    """One events.jsonl line as a dict (None for a blank line); ``ReplayError`` naming the line otherwise."""
    text = line.strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReplayError(f"line {number}: not JSON ({error.msg} at column {error.colno}); "
                          "expected an events.jsonl file, one JSON object per line") from None
    if not isinstance(record, dict):
        raise ReplayError(f"line {number}: expected a JSON object, got {type(record).__name__}")
    return record


def input_lines(path) -> Iterator[tuple[int, dict]]:
    """The lines of one events file that replay reads (predictions and gaps): ``(line number, record)``.
    ``ReplayError`` starting ``"FILE: line N:"`` for a line that is not a JSON object; ``OSError`` when the
    file cannot be read."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = parse_line(line, number)
            except ReplayError as error:
                raise ReplayError(f"{path}: {error}") from None
            if record is not None and record.get("event", "prediction") in ("prediction", "gap"):
                yield number, record


def replay(lines: Iterable[str], config, camera: str | None = None) -> Iterator[ActivityEvent | CheckEvent]:
    """Yield the activity and check events that ``config`` gives for the recorded ``lines``.

    ``lines``: events.jsonl lines (str, with or without the newline).
    ``config``: a ``ServiceConfig`` (its ``cameras`` with their ``activities``
    and ``time_base``, ``rules``, ``model``). ``camera``: only that camera's lines.
    A config with one camera also takes lines of a differently named camera
    (``run`` names its camera after the file). Raises ``ReplayError`` (one
    line, starting ``line N:``) for a line that is not JSON, a camera not in
    the config, or an activity that top_k cannot decide. Each event carries the recorded
    line's ``run_id`` (``to_json_dict()`` is the line the live run wrote, apart from ``wall_time``).
    """
    def numbered():
        for number, line in enumerate(lines, 1):
            record = parse_line(line, number)
            if record is not None:
                yield f"line {number}", record

    return _replay(numbered(), config, camera)


def replay_files(paths: Sequence, config, camera: str | None = None) -> Iterator[ActivityEvent | CheckEvent]:
    """``replay`` of one or more events files (e.g. one per camera), merged in ``wall_time`` order.

    The rotated files of one writer (``events-YYYY-MM-DD.jsonl``, see ``edge.eventfiles.series``)
    are read one after the other as one stream, exactly as their concatenation; different writers
    are merged. ``paths`` may come from ``edge.eventfiles.expand_events`` (folders and globs).
    A cross-camera rule needs every camera it names. Errors start with
    ``"FILE: line N:"``; ``OSError`` when a file cannot be read. The judgements
    do not depend on how the cameras' lines interleave (only the order of the
    output may differ from the live run's between cameras).
    """
    from edge.eventfiles import series

    def lines_of(group):
        key = float("-inf")
        for path in group:
            for number, record in input_lines(path):
                try:
                    key = max(key, wall_seconds(record["wall_time"]))
                except (KeyError, TypeError, ValueError):
                    pass  # keeps its place after the line before; _replay reports it
                yield key, f"{path}: line {number}", record

    merged = heapq.merge(*(lines_of(group) for group in series(paths)), key=lambda item: item[0])
    return _replay(((where, record) for _, where, record in merged), config, camera)


def replay_records(records: Iterable[tuple[str, Mapping]], config, camera: str | None = None
                   ) -> Iterator[ActivityEvent | CheckEvent]:
    """``replay`` of already-parsed lines: ``(where, record)`` pairs, ``where`` starting every error (e.g.
    ``"events.jsonl: line 12"``). What ``edge-har eval`` feeds with a fresh run's lines or recorded ones."""
    return _replay(((where, record) for where, record in records), config, camera)


def _replay(records: Iterable[tuple[str, dict]], config, camera: str | None) -> Iterator[ActivityEvent | CheckEvent]:
    for event in _monitored(records, config, camera):
        if isinstance(event, (ActivityEvent, CheckEvent)):  # the camera's current activity is not a line
            yield event


def _monitored(records: Iterable[tuple[str, dict]], config, camera: str | None) -> Iterator:
    cameras = config_cameras(config)
    labels: tuple[str, ...] | None = None
    run: _Run | None = None
    for where, record in records:
        kind = record.get("event", "prediction")
        if kind not in ("prediction", "gap"):
            continue
        name = record.get("camera") or camera
        if name is None:
            if len(cameras) != 1:
                raise ReplayError(f"{where}: the line names no camera; pass --camera")
            name = next(iter(cameras))
        if camera is not None and name != camera:
            continue
        run_id = record.get("run_id")
        if run is None or run_id != run.run_id:
            if run is not None:
                yield from _stamped(run.end(), run.run_id)
            if labels is None:
                labels = model_labels(config)
            known = cameras
            if name not in cameras and len(cameras) == 1:
                known = {name: next(iter(cameras.values()))}
            run = _Run(run_id, config, labels, known)
        monitor = run.monitor(name, where)
        wall_time = record.get("wall_time")
        if not isinstance(wall_time, str):
            raise ReplayError(f"{where}: no 'wall_time'")
        run.last_wall[name] = wall_time
        try:
            if kind == "gap":
                out = monitor.on_gap(from_json_dict(record))
            elif record.get("gated"):
                out = monitor.on_prediction(from_json_dict(record), scores=None)
            else:
                scores = activity_scores(record, monitor.tracker, where)
                out = monitor.on_prediction(from_json_dict(record), scores=scores)
        except (KeyError, TypeError, ValueError) as error:
            raise ReplayError(f"{where}: not a prediction line edge-har wrote ({error!r})") from None
        yield from _stamped(out, run_id)
    if run is not None:
        yield from _stamped(run.end(), run.run_id)


def _stamped(events, run_id):
    """The recorded run's id on what replay makes of it (replay's one place for it)."""
    return (event.stamped(run_id) for event in events)
