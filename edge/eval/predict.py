"""Predictions for eval: the same engine as ``edge-har run`` over the videos, or recorded events files.

Either way the result is, per video, its events.jsonl lines (prediction and gap
objects, with ``scores``) as ``(where, record)`` pairs, ``where`` naming the
line (``FILE: line N``, or ``VIDEO: clip N`` for a fresh run). The rest of eval
reads only those, so ``--events`` on a recorded run gives the numbers running
the model gives.

Running: each video is a file camera of one ``edge.engine.service.Service``
(throughput mode; several cameras at once, so one camera's decoding overlaps
another's inference), ``LANES_PER_RUN`` videos per service run; the cameras
are the config's first camera with every output off and ``include_scores`` on.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from edge.eval.truth import EvalError

LANES_PER_RUN = 8
QUIET_LOGGERS = ("edge.service", "edge.sources")
Records = list[tuple[str, dict]]


# ---------------------------------------------------------------- the config eval runs

def camera_names(videos: Sequence[Path]) -> dict[str, Path]:
    """A camera name (``v0001`` ...) for each video, in order."""
    return {f"v{number:04d}": Path(video) for number, video in enumerate(videos, 1)}


def eval_config(config, videos: dict[str, Path], *, batch: bool = False):
    """``config`` with one file camera per video (camera name -> path), shaped from its first camera.

    Every output is off (no video, events file, summary, clips, MQTT, HTTP), ``include_scores`` on;
    ``batch`` forces ``sampling.mode: batch``. Rules run on each video alone: their ``cameras`` and
    ``@camera`` are dropped.
    """
    template = next(iter(config.cameras.values()))
    output = template.output.model_copy(update={"video": None, "events": None, "subtitles": None, "summary": None,
                                                "include_scores": True, "progress": False, "display": False})
    update = {"output": output, "evidence": template.evidence.model_copy(update={"clips": "none"}),
              "record": template.record.model_copy(update={"continuous": False}),
              "reconnect": template.reconnect.model_copy(update={"live": False})}
    if batch:
        update["sampling"] = template.sampling.model_copy(update={"mode": "batch"})
    cameras = {name: template.model_copy(update={**update, "name": name, "source": str(path)})
               for name, path in videos.items()}
    rules = tuple(rule.model_copy(update={"cameras": None, **{key: _local(value) for key, value in (
        ("activity", rule.activity), ("first", rule.first), ("then", rule.then)) if value},
        **({"steps": tuple(_local(step) for step in rule.steps)} if rule.steps else {})}) for rule in config.rules)
    inference = config.inference
    if inference.performance_hint == "auto":
        inference = inference.model_copy(update={"performance_hint": "throughput"})
    return config.model_copy(update={
        "cameras": cameras, "single_camera": False, "rules": rules, "inference": inference,
        "mqtt": config.mqtt.model_copy(update={"host": None}),
        "http": config.http.model_copy(update={"enabled": False})})


def _local(reference: str) -> str:
    return str(reference).partition("@")[0].strip()


# ---------------------------------------------------------------- running the model

class _Collector:
    """A side system of the service: keeps each camera's prediction and gap lines."""

    def __init__(self, on_prediction: Callable[[str, int], None] | None) -> None:
        self.records: dict[str, Records] = {}
        self._on_prediction = on_prediction

    def handle(self, event) -> None:
        if event.kind not in ("prediction", "gap"):
            return
        record = event.to_json_dict()
        if getattr(event, "features", None) is not None:
            record["features"] = event.features  # not JSON: learn's, from a model loaded with features
        lines = self.records.setdefault(event.camera, [])
        lines.append((f"{event.camera}: clip {record.get('clip_index', '-')}", record))
        if event.kind == "prediction" and self._on_prediction is not None:
            self._on_prediction(event.camera, int(record["end_frame"]))

    def close(self) -> None:
        pass


class _SaidOnce(logging.Filter):
    """Lets each distinct WARNING-or-above message through once."""

    def __init__(self) -> None:
        super().__init__()
        self.said: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if message in self.said:
            return False
        self.said.add(message)
        return True


def run_model(config, videos: Sequence[Path], *, batch: bool = False, progress: Progress | None = None,
              lanes_per_run: int = LANES_PER_RUN, features: bool = False,
              on_unreadable: Callable[[Path, str], None] | None = None) -> dict[Path, Records]:
    """Each video's prediction and gap lines from the engine (see the module docstring). ``features``:
    each prediction record also holds ``"features"``, the clip's pooled feature (float32 (512,); learn's).

    Raises ``EvalError`` naming a video that cannot be opened, unless ``on_unreadable(video, reason)`` is
    given (the video is then left out); ``ConfigError``/``ModelError`` as ``run``.
    """
    from edge.engine.service import Service
    from edge.engine.signals import StopFlag

    names = camera_names(videos)
    out: dict[Path, Records] = {}
    stop = StopFlag()
    stop.install()
    # Not one summary and one decoder note per video on the terminal (unless -v asked for debug).
    quiet = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        if not logger.isEnabledFor(logging.DEBUG):
            logger.setLevel(logging.WARNING)
    once = _SaidOnce()  # the untrained-model warning once, not once per service run
    service_log = logging.getLogger("edge.engine.service")
    service_log.addFilter(once)
    try:
        items = list(names.items())
        for first in range(0, len(items), lanes_per_run):
            group = dict(items[first:first + lanes_per_run])
            collector = _Collector(progress.on_prediction if progress else None)
            service = Service(eval_config(config, group, batch=batch), mode="run", stop=stop, features=features)
            service.subscribe(collector)
            result = service.run()
            if stop.signum:
                raise KeyboardInterrupt
            for name, path in group.items():
                summary = result.summaries.get(name, {})
                if summary.get("state") == "offline":
                    reason = summary.get("state_reason") or "offline"
                    if on_unreadable is None:
                        raise EvalError(f"{path}: cannot be read: {reason}")
                    on_unreadable(path, reason)
                    continue
                out[path] = collector.records.get(name, [])
                if progress:
                    progress.video_done(name)
    finally:
        service_log.removeFilter(once)
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
        stop.restore()
        if progress:
            progress.close()
    return out


# ---------------------------------------------------------------- recorded events

def events_files(specs: Sequence[str]) -> list[Path]:
    """Events files named by ``specs`` (files, folders, globs: ``edge.eventfiles``); ``EvalError`` when one
    names none."""
    from edge.eventfiles import EventFilesError, expand_events

    try:
        return expand_events(specs)
    except EventFilesError as error:
        raise EvalError(str(error)) from None


def _video_index(videos: Sequence[Path]) -> dict[tuple[str, ...], Path | None]:
    """The last 1, 2 and 3 path parts of each video -> the video (None when two videos share them)."""
    index: dict[tuple[str, ...], Path | None] = {}
    for video in videos:
        parts = Path(video).resolve().parts
        for k in (1, 2, 3):
            key = parts[-k:]
            index[key] = None if key in index and index[key] != video else video
    return index


def _which_video(source, index, resolved: dict[Path, Path]) -> Path | None:
    if not isinstance(source, str) or not source:
        return None
    path = Path(source)
    try:
        exact = resolved.get(path.resolve())
    except OSError:
        exact = None
    if exact is not None:
        return exact
    for k in (3, 2, 1):
        if len(path.parts) >= k and index.get(path.parts[-k:]) is not None:
            return index[path.parts[-k:]]
    return None


def read_events(specs: Sequence[str], videos: Sequence[Path], *, need_scores: bool) -> dict[Path, Records]:
    """Each video's prediction and gap lines from recorded events files, matched by the lines' ``source``.

    A line belongs to a video when its ``source`` is that file, or ends with the same last 3, 2 or 1
    path parts (unambiguously). Only a video's last run (``run_id``) counts. ``need_scores``: every
    inferred prediction line must carry ``scores``. Raises ``EvalError`` (one line naming the file and
    line) for a line that is not JSON, a missing ``scores``, or a video no line is about.
    """
    collecting = gc.isenabled()
    gc.disable()  # millions of small objects kept alive: the cyclic collector would walk them again and again
    try:
        return _read_events(specs, videos, need_scores)
    finally:
        if collecting:
            gc.enable()


def _read_events(specs: Sequence[str], videos: Sequence[Path], need_scores: bool) -> dict[Path, Records]:
    from edge.replay import ReplayError, input_lines

    index = _video_index(videos)
    resolved = {Path(v).resolve(): Path(v) for v in videos}
    out: dict[Path, Records] = {Path(v): [] for v in videos}
    last_run: dict[Path, object] = {}
    which: dict[object, Path | None] = {}
    for path in events_files(specs):
        try:
            for number, record in input_lines(path):
                source = record.get("source")
                if source not in which:  # one path resolution per source, not per line
                    which[source] = _which_video(source, index, resolved) if isinstance(source, str) else None
                video = which[source]
                if video is None:
                    continue
                where = f"{path}: line {number}"
                if (need_scores and record.get("event", "prediction") == "prediction" and not record.get("gated")
                        and not isinstance(record.get("scores"), list)):
                    raise EvalError(f"{where}: a prediction line without 'scores': record the events with "
                                    "output.include_scores: true")
                run_id = record.get("run_id")
                if video in last_run and last_run[video] != run_id:
                    out[video] = []  # a later run of the same video replaces the earlier one
                last_run[video] = run_id
                out[video].append((where, record))
        except ReplayError as error:
            raise EvalError(str(error)) from None
        except OSError as error:
            raise EvalError(f"{path}: cannot read: {error.strerror or error}") from None
    for video, records in out.items():
        if not records:
            raise EvalError(f"{video}: no prediction line in the events files is about this video "
                            f"(their 'source' must name it)")
    return out


# ---------------------------------------------------------------- progress

def frame_count(path: Path) -> int:
    """The container's frame count (an estimate; 0 when unknown)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            if stream.duration and stream.time_base and stream.average_rate:
                return int(float(stream.duration * stream.time_base) * float(stream.average_rate))
    except Exception:
        return 0
    return 0


class Progress:
    """A progress bar with an ETA on stderr, redrawn in place: frames labelled over all videos' frames."""

    def __init__(self, videos: Sequence[Path], stream=None, redraw_s: float = 0.25) -> None:
        names = camera_names(videos)
        self._total = {name: max(1, frame_count(path)) for name, path in names.items()}
        self._done = {name: 0 for name in names}
        self._all = sum(self._total.values())
        self._stream = stream or sys.stderr
        self._redraw_s = redraw_s
        self._started = time.monotonic()
        self._next = 0.0
        self._drawn = False

    def on_prediction(self, camera: str, end_frame: int) -> None:
        if camera in self._done:
            self._done[camera] = min(self._total[camera], max(self._done[camera], end_frame + 1))
            self._draw()

    def video_done(self, camera: str) -> None:
        if camera in self._done:
            self._done[camera] = self._total[camera]
            self._draw(force=True)

    def line(self) -> str:
        done = sum(self._done.values())
        share = done / self._all if self._all else 1.0
        width = 30
        filled = int(width * share)
        elapsed = time.monotonic() - self._started
        eta = f"{elapsed * (1 - share) / share:.0f} s left" if share > 0 else "-"
        videos = sum(self._done[name] >= self._total[name] for name in self._done)
        return (f"[{'#' * filled}{'.' * (width - filled)}] {share:4.0%} | {videos}/{len(self._done)} videos | "
                f"{done / elapsed if elapsed > 0 else 0:.0f} frames/s | {eta}")

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self._redraw_s
        self._stream.write(f"\r{self.line()}\x1b[K")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False
