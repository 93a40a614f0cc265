"""``events.jsonl``: one JSON object per line, written whole with one ``write()`` and flushed.

After a crash (even ``kill -9``) every line parses. A prediction line has the
design's keys::

    source, clip_index, start_frame, end_frame, start_time_s, end_time_s,
    wall_time, label, score, top_k [{label, score}], latency_ms {preprocess,
    infer, postprocess, end_to_end}, model, untrained [, scores] [, gated], camera, run_id

A live stream's gap, an activity, a check and a clip (``edge.evidence``: the
evidence of a check or an activity is on disk) are lines of their own, told
apart by their ``"event"`` key. Each line is its event's ``to_json_dict()``
(``edge.events``). The file is appended to (a restart never truncates
someone's records) unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from edge.events import LINE_KINDS, Event
from edge.sinks import SinkError


class EventWriter:
    """Appends one JSON line per prediction, stream gap, activity and check to ``path``.

    Each line is one ``write()`` on an unbuffered append-mode file, so it
    reaches the OS whole and at once; ``fsync=True`` also forces it to disk
    (survives power loss, costs a disk sync per line). Thread-safe.
    Raises ``SinkError`` if the file cannot be opened.
    """

    def __init__(self, path, *, overwrite: bool = False, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
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

    def write(self, event: Event) -> None:
        """Write the event's line (its ``to_json_dict()``)."""
        self._write_record(event.to_json_dict())

    def handle(self, event: Event) -> None:
        """The ``Sink`` side: predictions, gaps, activities, checks and clips are lines; other kinds are not."""
        if event.kind in LINE_KINDS:
            self._write_record(event.to_json_dict())

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


