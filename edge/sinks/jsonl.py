"""``events.jsonl``: one JSON object per line, written whole with one ``write()`` and flushed.

After a crash (even ``kill -9``) every line parses. A prediction line has the
design's keys::

    source, clip_index, start_frame, end_frame, start_time_s, end_time_s,
    wall_time, label, score, top_k [{label, score}], latency_ms {preprocess,
    infer, postprocess, end_to_end}, model, untrained [, scores]

A live stream's gap is a line of its own, told apart by its ``"event": "gap"``
key. The file is appended to (a restart never truncates someone's records)
unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

import numpy as np

from edge.postprocess import now_iso
from edge.records import Prediction
from edge.sinks import SinkError


def _score(value) -> float:
    # 9 significant digits round-trip a float32 exactly and keep lines short.
    return float(f"{float(value):.9g}")


def _ms(value) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 3)


def _clip_fields(clip, source_name: str) -> dict:
    """The keys every prediction line starts with: which source, which clip, which frames and times."""
    return {
        "source": source_name,
        "clip_index": clip.clip_index,
        "start_frame": clip.start_frame,
        "end_frame": clip.end_frame,
        "start_time_s": round(float(clip.start_time_s), 6),
        "end_time_s": round(float(clip.end_time_s), 6),
    }


def event_record(prediction: Prediction, *, source_name: str, model_name: str, untrained: bool,
                 include_scores: bool = False) -> dict:
    """The events.jsonl object for one prediction, keys in DESIGN.md order."""
    latency = prediction.latency
    record = {
        **_clip_fields(prediction.clip, source_name),
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


def gated_record(clip, latency, *, source_name: str, model_name: str, untrained: bool) -> dict:
    """The line for a clip the still-scene gate did not infer: a prediction line with ``"gated": true``,
    ``label`` and ``score`` null and an empty ``top_k``."""
    return {
        **_clip_fields(clip, source_name),
        "wall_time": now_iso(),
        "label": None,
        "score": None,
        "top_k": [],
        "latency_ms": {
            "preprocess": _ms(latency.preprocess),
            "infer": None,
            "postprocess": None,
            "end_to_end": _ms(latency.end_to_end),
        },
        "model": model_name,
        "untrained": bool(untrained),
        "gated": True,
    }


def gap_record(gap, *, source_name: str, wall_time: str | None = None) -> dict:
    """The ``{"event": "gap", ...}`` line for a live stream that dropped (a ``sources.Gap`` or
    ``(after_frame, seconds, reason)``)."""
    after_frame, seconds, reason = (gap.after_frame_index, gap.seconds, gap.reason) if hasattr(gap, "reason") else gap
    return {
        "event": "gap",
        "source": source_name,
        "after_frame": int(after_frame),
        "gap_s": round(float(seconds), 3),
        "reason": str(reason),
        "wall_time": wall_time or now_iso(),
    }


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
        gap = after_frame if seconds is None and not isinstance(after_frame, int) else (after_frame, seconds, reason)
        record = gap_record(gap, source_name=self.source_name, wall_time=wall_time)
        self._write_record(record)
        return record

    def write_record(self, record: dict) -> None:
        """Write one JSON object as one line."""
        self._write_record(record)

    def handle(self, event) -> None:
        """The ``Sink`` side: every event but camera status is a line of events.jsonl."""
        if event.kind != "status":
            self._write_record(event.record)

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


