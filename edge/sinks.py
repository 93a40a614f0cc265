"""Where results go: events.jsonl, the annotated video, a window, the summary.

``events.jsonl`` (DESIGN.md): one JSON object per line, written whole with a
single ``write()`` and flushed, so after a crash (even ``kill -9``) every line
parses. A prediction line has exactly the design's keys::

    source, clip_index, start_frame, end_frame, start_time_s, end_time_s,
    wall_time, label, score, top_k [{label, score}], latency_ms {preprocess,
    infer, postprocess, end_to_end}, model, untrained [, scores]

A live stream's gap (a drop and reconnection) is a line of its own that a
reader tells apart by its ``"event": "gap"`` key (prediction lines have no
``event`` key)::

    {"event": "gap", "source", "after_frame", "gap_s", "reason", "wall_time"}

The file is appended to (a restart never truncates someone's records) unless
``overwrite=True``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np

from edge.postprocess import now_iso
from edge.records import Prediction
from edge.sources import DEFAULT_FPS, sanitize_fps


class SinkError(Exception):
    """An output cannot be written; ``str(error)`` is one line for the user."""


def check_writable(path, *, input_path=None) -> Path:
    """Fail early, before any work, if ``path`` cannot be written.

    Creates a missing parent directory. Raises ``SinkError`` when the output
    is the input file, is a directory, its directory cannot be created, or a
    file cannot be created there. Returns the path as a ``Path``.
    """
    path = Path(path)
    if input_path is not None and not str(input_path).isdigit() and "://" not in str(input_path):
        same = os.path.abspath(path) == os.path.abspath(input_path)
        if not same and path.exists() and Path(input_path).exists():
            same = os.path.samefile(path, input_path)
        if same:
            raise SinkError(f"output {path} is the input video; choose another output path")
    if path.is_dir():
        raise SinkError(f"output {path} is a directory; give a file path")
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SinkError(f"cannot create output directory {parent}: {error.strerror or error}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise SinkError(f"cannot write {path}: permission denied")
    try:
        # Probe by creating a scratch file: os.access lies for root and read-only mounts.
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".edge-har-probe-"):
            pass
    except OSError as error:
        raise SinkError(f"cannot write to {parent}: {error.strerror or error}") from None
    return path


def _score(value) -> float:
    # 9 significant digits round-trip a float32 exactly and keep lines short.
    return float(f"{float(value):.9g}")


def _ms(value) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 3)


def event_record(prediction: Prediction, *, source_name: str, model_name: str, untrained: bool,
                 include_scores: bool = False) -> dict:
    """The events.jsonl object for one prediction, keys in DESIGN.md order."""
    clip = prediction.clip
    latency = prediction.latency
    record = {
        "source": source_name,
        "clip_index": clip.clip_index,
        "start_frame": clip.start_frame,
        "end_frame": clip.end_frame,
        "start_time_s": round(float(clip.start_time_s), 6),
        "end_time_s": round(float(clip.end_time_s), 6),
        "wall_time": prediction.wall_time or now_iso(),
        "label": prediction.label,
        "score": _score(prediction.score),
        "top_k": [{"label": label, "score": _score(score)} for label, score in prediction.top_k],
        "latency_ms": {
            "preprocess": _ms(latency.preprocess) if latency else None,
            "infer": _ms(latency.infer) if latency else None,
            "postprocess": _ms(latency.postprocess) if latency else None,
            "end_to_end": _ms(latency.end_to_end) if latency else None,
        },
        "model": model_name,
        "untrained": bool(untrained),
    }
    if include_scores:
        record["scores"] = [_score(v) for v in np.asarray(prediction.probabilities).reshape(-1)]
    return record


class EventWriter:
    """Appends one JSON line per prediction (and per stream gap) to ``path``.

    Each line is one ``write()`` on an unbuffered append-mode file, so it
    reaches the OS whole and at once; ``fsync=True`` also forces it to disk
    (survives power loss, costs a disk sync per line). Thread-safe.
    Raises ``SinkError`` if the file cannot be opened.
    """

    def __init__(self, path, *, source_name: str, model_name: str, untrained: bool,
                 include_scores: bool = False, overwrite: bool = False, fsync: bool = False) -> None:
        self.path = Path(path)
        self.source_name, self.model_name = source_name, model_name
        self.untrained, self.include_scores, self.fsync = untrained, include_scores, fsync
        self.lines_written = 0
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "wb" if overwrite else "ab", buffering=0)
        except OSError as error:
            raise SinkError(f"cannot write events to {self.path}: {error.strerror or error}") from None
        # A line cut by a crash of an older writer must not swallow our first line.
        if not overwrite and self._file.tell() > 0:
            with open(self.path, "rb") as existing:
                existing.seek(-1, os.SEEK_END)
                if existing.read(1) != b"\n":
                    self._write_bytes(b"\n")

    def _write_bytes(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._file.fileno())

    def _write_record(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        with self._lock:
            if self._file.closed:
                raise SinkError(f"event writer for {self.path} is closed")
            self._write_bytes(line)
            self.lines_written += 1

    def write(self, prediction: Prediction) -> dict:
        """Write the prediction's line; returns the record written."""
        record = event_record(prediction, source_name=self.source_name, model_name=self.model_name,
                              untrained=self.untrained, include_scores=self.include_scores)
        self._write_record(record)
        return record

    def write_gap(self, after_frame, seconds: float | None = None, reason: str | None = None,
                  wall_time: str | None = None) -> dict:
        """Write a ``{"event": "gap", ...}`` line for a live stream that dropped; returns it.

        Pass ``(after_frame, seconds, reason)`` or one ``sources.Gap`` (or such a tuple).
        """
        if seconds is None and not isinstance(after_frame, int):
            after_frame, seconds, reason = after_frame
        record = {
            "event": "gap",
            "source": self.source_name,
            "after_frame": int(after_frame),
            "gap_s": round(float(seconds), 3),
            "reason": str(reason),
            "wall_time": wall_time or now_iso(),
        }
        self._write_record(record)
        return record

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoSink:
    """Writes annotated frames to a video file (cv2.VideoWriter, mp4v by default).

    ``size`` is (width, height), or None / (0, 0) to take the first frame's;
    a frame of another size is resized to it so the file stays valid through
    a mid-stream resolution change. ``close()``
    finalises the container (call it on every exit path; it is idempotent).
    Raises ``SinkError`` when the writer cannot be opened.
    """

    def __init__(self, path, fps: float, size: tuple[int, int] | None, codec: str = "mp4v") -> None:
        self.path = Path(path)
        self.fps, self.codec = sanitize_fps(fps) or DEFAULT_FPS, codec
        self.frames_written = 0
        self.frames_resized = 0
        self.size: tuple[int, int] | None = None
        self._writer = None
        self._closed = False
        # A live source may not know its size before the first frame: then open on first write.
        if size is not None and int(size[0]) > 0 and int(size[1]) > 0:
            self._open((int(size[0]), int(size[1])))

    def _open(self, size: tuple[int, int]) -> None:
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.codec), self.fps, size)
        if not writer.isOpened():
            writer.release()
            raise SinkError(f"cannot write video {self.path} (codec {self.codec!r}, "
                            f"{size[0]}x{size[1]} @ {self.fps:g} fps)")
        self._writer, self.size = writer, size

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, image: np.ndarray) -> None:
        """Append one BGR uint8 frame (grey is converted, other sizes resized)."""
        if self._closed:
            raise SinkError(f"video {self.path} is already closed")
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if self._writer is None:
            self._open((image.shape[1], image.shape[0]))
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
            self.frames_resized += 1
        self._writer.write(image)
        self.frames_written += 1

    def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class WindowSink:
    """Shows frames in a window (cv2.imshow); any key press or closing the window sets ``should_quit``.

    Raises ``SinkError`` when OpenCV has no GUI (the headless wheel) or there
    is no display.
    """

    def __init__(self, title: str = "edge-har") -> None:
        self.title = title
        self.should_quit = False
        hint = "set output.display: false, or install opencv-python (not -headless) and run with a display"
        # Check the display before touching the GUI: some backends abort the process without one.
        if not _display_available():
            raise SinkError(f"cannot open a window: no display (DISPLAY is not set); {hint}")
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise SinkError(f"cannot open a window: this OpenCV has no GUI support "
                            f"(opencv-python-headless); {hint}") from None

    def show(self, image: np.ndarray) -> None:
        cv2.imshow(self.title, image)
        if cv2.waitKey(1) != -1:
            self.should_quit = True
        elif cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.should_quit = True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_summary(path, summary: dict) -> Path:
    """Write ``summary`` as pretty JSON atomically (temp file in the same directory, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(summary, stream, indent=2, ensure_ascii=False, default=str)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, 0o666 & ~_current_umask())  # mkstemp makes 0600; a summary is for everyone
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        raise
    return path


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_summary(summary: dict) -> str:
    """The short human summary printed at the end of a run.

    Reads (all optional): ``source``, ``model``, ``untrained``, ``device``,
    ``precision``, ``frames``, ``clips``, ``skipped_clips``, ``input_fps``,
    ``processing_fps``, ``elapsed_s``, ``reconnects``, ``error``, ``outputs``
    (dict name → path) and ``latency_ms`` (stage → {p50, p90, p99, max}), the
    shape ``Metrics.snapshot()`` produces.
    """
    lines = []
    head = f"{summary.get('frames', 0)} frames, {summary.get('clips', 0)} clips"
    if summary.get("skipped_clips"):
        head += f" ({summary['skipped_clips']} skipped)"
    if summary.get("source"):
        head += f" from {summary['source']}"
    if summary.get("elapsed_s") is not None:
        head += f" in {_fmt(summary['elapsed_s'])} s"
    lines.append(head)
    if summary.get("model"):
        model = str(summary["model"])
        if summary.get("untrained"):
            model += " (untrained demo model: labels are meaningless)"
        where = ", ".join(str(summary[k]) for k in ("device", "precision") if summary.get(k))
        lines.append(f"model: {model}" + (f" on {where}" if where else ""))
    lines.append(f"throughput: input {_fmt(summary.get('input_fps'))} fps, "
                 f"processing {_fmt(summary.get('processing_fps'))} fps, "
                 f"{_fmt(summary.get('clips_per_s'), 2)} clips/s")
    if summary.get("reconnects"):
        lines.append(f"stream: {summary['reconnects']} reconnections")
    latency = summary.get("latency_ms") or {}
    rows = [(stage, stats) for stage, stats in latency.items() if stats and stats.get("count")]
    if rows:
        width = max(len("latency (ms)"), *(len(stage) for stage, _ in rows))
        lines.append(f"{'latency (ms)':<{width}}  {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
        for stage, stats in rows:
            lines.append(f"{stage:<{width}}  " + " ".join(f"{_fmt(stats.get(k)):>8}"
                                                          for k in ("p50", "p90", "p99", "max")))
    for name, target in (summary.get("outputs") or {}).items():
        if target:
            lines.append(f"{name}: {target}")
    if summary.get("error"):
        lines.append(f"error: {summary['error']}")
    return "\n".join(lines)
