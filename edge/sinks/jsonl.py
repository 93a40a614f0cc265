"""``events.jsonl``: one JSON object per line, each line written whole or not at all.

After a crash (even ``kill -9``) or on a full disk, every line parses. A prediction line has the
design's keys::

    source, clip_index, start_frame, end_frame, start_time_s, end_time_s,
    wall_time, label, score, top_k [{label, score}], latency_ms {preprocess,
    infer, postprocess, end_to_end}, model, untrained [, scores] [, gated], camera, run_id

A live stream's gap, an activity, a check and a clip (``edge.evidence``: the
evidence of a check or an activity is on disk) are lines of their own, told
apart by their ``"event"`` key. Each line is its event's ``to_json_dict()``
(``edge.events``). The file is appended to (a restart never truncates
someone's records) unless ``overwrite=True``.

Rotation (``output.rotate: daily``): ``events.jsonl`` is written as ``events-YYYY-MM-DD.jsonl``, the local
date of each event's ``wall_time`` (never going back a day), and rotated files older than
``output.retain_days`` are deleted when a day's file is opened.

A full disk is a state, not an error: a line that cannot be written is truncated away and counted
(``lines_not_written``), ``disk_full`` is set, one WARNING is logged per episode (and one INFO line when
it ends), and the next line tries again, so writing resumes by itself when space returns.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from edge.eventfiles import DATED
from edge.events import LINE_KINDS, Event
from edge.sinks import SinkError

log = logging.getLogger(__name__)

ROTATIONS = ("daily", "none")
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def rotation(rotate: str, mode: str) -> str:
    """``output.rotate`` as it applies: ``auto`` is ``daily`` under ``serve`` and ``none`` under ``run``."""
    if rotate == "auto":
        return "daily" if mode == "serve" else "none"
    if rotate not in ROTATIONS:
        raise ValueError(f"rotate must be auto, daily or none, got {rotate!r}")
    return rotate


def dated_path(path, day: date) -> Path:
    """``/x/events.jsonl`` on ``day``: ``/x/events-YYYY-MM-DD.jsonl``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-{day.isoformat()}{path.suffix}")


def rotated_day(path, base) -> date | None:
    """The day of ``path`` when it is one of ``base``'s rotated files (``dated_path(base, day)``), else None."""
    path, base = Path(path), Path(base)
    if path.suffix != base.suffix:
        return None
    match = DATED.match(path.name[:len(path.name) - len(path.suffix)] if path.suffix else path.name)
    if not match or match["base"] != base.stem:
        return None
    try:
        return date.fromisoformat(match["day"])
    except ValueError:
        return None


def _event_day(wall_time) -> date | None:
    if not isinstance(wall_time, str):
        return None
    try:
        return datetime.fromisoformat(wall_time).astimezone().date()
    except (ValueError, OverflowError, OSError):
        return None


class EventWriter:
    """Appends one JSON line per prediction, stream gap, activity, check and clip.

    Each line is one ``os.write`` of the whole encoded line on an append-mode descriptor; if it
    fails or is short (a full disk), the file is truncated back to where the line began, so the
    file only ever holds whole lines. ``fsync=True`` also forces each line to disk (survives power
    loss, costs a disk sync per line).

    ``rotate``: ``"none"`` (write ``path``) or ``"daily"`` (``dated_path(path, day)``; rotated
    files older than ``retain_days`` are deleted). ``clock``: Unix seconds now (tests inject it);
    it dates events without a ``wall_time`` and decides what retention deletes.

    Thread-safe. Raises ``SinkError`` if the (first) file cannot be opened; never raises on a
    full disk: see ``disk_full`` and ``lines_not_written``.
    """

    def __init__(self, path, *, overwrite: bool = False, fsync: bool = False, rotate: str = "none",
                 retain_days: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        if rotate not in ROTATIONS:
            raise ValueError(f"rotate must be daily or none, got {rotate!r}")
        self.path = Path(path)
        self.fsync = fsync
        self.rotate = rotate
        self.retain_days = float(retain_days)
        self.clock = clock
        self.lines_written = 0
        self.lines_not_written = 0
        self.files_deleted = 0
        self.disk_full = False
        self._failing: str | None = None   # the error of the current episode (full disk or another)
        self._episode_lost = 0
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._closed = False
        self._day: date | None = None
        self._needs_newline = False
        self.current_path: Path = self.path
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open(self._today() if rotate == "daily" else None, overwrite=overwrite)
        except OSError as error:
            raise SinkError(f"cannot write events to {self.current_path}: {error.strerror or error}") from None

    # -- files ---------------------------------------------------------------------------------

    def _today(self) -> date:
        return datetime.fromtimestamp(self.clock()).date()

    def _open(self, day: date | None, *, overwrite: bool = False) -> None:
        """Open the file of ``day`` (None: ``path``); on a new day, delete what is past retention."""
        target = self.path if day is None else dated_path(self.path, day)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(target, flags | (os.O_TRUNC if overwrite else 0), 0o666)
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._day, self.current_path = fd, day, target
        if day is not None:
            self._delete_expired()
        # A line cut by a crash of an older writer must not swallow our first line.
        self._needs_newline = False
        if os.lseek(fd, 0, os.SEEK_END) > 0:
            with open(target, "rb") as existing:
                existing.seek(-1, os.SEEK_END)
                self._needs_newline = existing.read(1) != b"\n"

    def _delete_expired(self) -> None:
        """Rotated files whose whole day lies more than ``retain_days`` back."""
        horizon = self.clock() - self.retain_days * 86400.0
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return
        for name in names:
            day = rotated_day(name, self.path)
            if day is None or day == self._day:
                continue
            day_end = datetime.combine(day + timedelta(days=1), datetime.min.time()).timestamp()
            if day_end <= horizon:
                try:
                    os.unlink(self.path.parent / name)
                    self.files_deleted += 1
                    log.info("deleted %s (older than output.retain_days %g)", self.path.parent / name,
                             self.retain_days)
                except OSError as error:
                    log.warning("cannot delete %s: %s", self.path.parent / name, error.strerror or error)

    # -- lines ---------------------------------------------------------------------------------

    def _append(self, data: bytes) -> None:
        """``data`` at the end of the file whole, or not at all (``OSError``, the file as it was)."""
        fd = self._fd
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")
            if self.fsync:
                os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, start)
            except OSError as error:  # the torn line stays; the next good line starts on its own line
                log.debug("cannot truncate %s back to %d: %s", self.current_path, start, error)
            raise

    def _write_record(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        with self._lock:
            if self._closed:
                raise SinkError(f"event writer for {self.path} is closed")
            try:
                if self.rotate == "daily":
                    day = _event_day(record.get("wall_time")) or self._today()
                    if self._fd is None or self._day is None or day > self._day:
                        self._open(day)
                elif self._fd is None:
                    self._open(None)
                self._append(b"\n" + line if self._needs_newline else line)
                self._needs_newline = False
            except OSError as error:
                self._lost(error)
                return
            self.lines_written += 1
            if self._failing is not None:
                self._recovered()

    def _lost(self, error: OSError) -> None:
        self.lines_not_written += 1
        self._episode_lost += 1
        self.disk_full = error.errno in DISK_FULL_ERRNOS
        if self._failing is None:  # the state first, then the line that tells it
            self._failing = error.strerror or str(error)
            what = "the disk is full" if self.disk_full else self._failing
            log.warning("events: %s: cannot write %s; counting the lines not written and trying again with "
                        "each new line", what, self.current_path)

    def _recovered(self) -> None:
        lost, self._failing, self.disk_full, self._episode_lost = self._episode_lost, None, False, 0
        log.info("events: writing %s again; %d lines were not written", self.current_path, lost)

    def write(self, event: Event) -> None:
        """Write the event's line (its ``to_json_dict()``)."""
        self._write_record(event.to_json_dict())

    def handle(self, event: Event) -> None:
        """The ``Sink`` side: predictions, gaps, activities, checks and clips are lines; other kinds are not."""
        if event.kind in LINE_KINDS:
            self._write_record(event.to_json_dict())

    def status(self) -> dict:
        """For /api/status and the metrics: ``disk_full``, ``lines_written``, ``lines_not_written``, ``file``."""
        return {"disk_full": self.disk_full, "lines_written": self.lines_written,
                "lines_not_written": self.lines_not_written, "file": str(self.current_path)}

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)
            if self.lines_not_written:
                log.warning("events: %d of %d lines could not be written to %s", self.lines_not_written,
                            self.lines_not_written + self.lines_written, self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
