"""An on-disk queue for what must arrive: append-only segment files and an ack offset.

Layout of ``spool_dir``::

    000000000001.jsonl   a segment, named by the first sequence number in it
    000000000412.jsonl   one JSON line per record: {"seq": N, "topic": "...", "payload": {...}}
    acked                the highest sequence number below which everything was acknowledged
    lock                 flock'ed while a Spool has the directory open

``append`` writes one line with one ``write()``: from then on the record
survives the process dying (``kill -9``, a crash). It survives power loss once
``fsync``'d: with ``sync="append"`` (the default) ``append`` does that before
it returns; with ``sync="deferred"`` another thread calls ``sync()`` (group
commit: one ``fsync`` for every record written since, and the appending thread
never waits for the disk). ``ack`` advances the ``acked`` offset (written with a
rename, not fsynced: a lost ack only means the record is sent again) and
deletes segments whose records are all acknowledged. Delivery is therefore
at least once; a consumer that must not see a record twice deduplicates by
the record's content (an activity event's ``id`` + ``type`` + ``wall_time``,
a check's ``rule`` + ``camera`` + ``time_s`` + ``wall_time``).

The spool is bounded by ``max_bytes`` of segment files: when an append would
exceed it, the oldest segment is deleted and its unacknowledged records are
counted in ``dropped``. Segments are ``max_bytes / 8`` (at most 4 MiB), so a
drop loses at most an eighth of the spool, oldest first.

After a crash, the last line of a segment may be torn; opening the spool
truncates it. A line that does not parse elsewhere is skipped with a warning.
"""

from __future__ import annotations

import collections
import fcntl
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from edge.sinks import SinkError

log = logging.getLogger(__name__)

_SUFFIX = ".jsonl"
_MAX_SEGMENT_BYTES = 4 * 1024 * 1024
_MIN_SEGMENT_BYTES = 512


@dataclass(frozen=True)
class SpooledRecord:
    """One spooled record: its sequence number, the topic it goes to, and the JSON object."""

    seq: int
    topic: str
    payload: dict


@dataclass
class _Segment:
    first_seq: int
    path: Path
    size: int
    last_seq: int   # first_seq - 1 while empty


class Spool:
    """Append-only, fsync'd, bounded on-disk FIFO of ``(topic, JSON object)`` records. Thread-safe.

    ``directory`` is created if missing. Raises ``SinkError`` (one line) when
    it cannot be created or written, or another process has it open.
    ``sync``: ``"append"`` fsyncs in ``append``; ``"deferred"`` leaves it to
    ``sync()``; ``"never"`` (tests, benchmarks) skips disk syncs.
    """

    def __init__(self, directory, max_bytes: int, *, segment_bytes: int | None = None, sync: str = "append"):
        if sync not in ("append", "deferred", "never"):
            raise ValueError(f"sync must be append, deferred or never, got {sync!r}")
        if max_bytes <= 0:
            raise ValueError("max_bytes must be > 0")
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.segment_bytes = int(segment_bytes or min(_MAX_SEGMENT_BYTES, max(_MIN_SEGMENT_BYTES, self.max_bytes // 8)))
        self._sync = sync
        self._unsynced_fds: list[int] = []   # dup'd fds of segments written since the last sync()
        self._writer_unsynced = False
        self._directory_unsynced = False
        self._lock = threading.Lock()
        self.appended = 0        # records appended by this Spool
        self.dropped = 0         # unacknowledged records deleted to stay under max_bytes
        self.recovered = 0       # unacknowledged records found on disk when opened
        self._segments: list[_Segment] = []
        self._writer_fd: int | None = None   # open on self._segments[-1] while it takes appends
        self._index: collections.deque[int] = collections.deque()   # seqs on disk not yet acked, in order
        self._acked_out_of_order: set[int] = set()
        self._acked_upto = 0
        self._read_cursor: tuple[int, int, int] | None = None   # (segment first_seq, byte offset, last seq read)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise SinkError(f"cannot use spool directory {self.directory}: {error.strerror or error}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise SinkError(f"spool directory {self.directory} is in use by another edge-har process") from None
        self._open_existing()

    # -- opening -------------------------------------------------------------------------------

    def _open_existing(self) -> None:
        try:
            self._acked_upto = int((self.directory / "acked").read_text().strip() or 0)
        except FileNotFoundError:
            self._acked_upto = 0
        except (OSError, ValueError) as error:
            log.warning("spool %s: unreadable ack offset (%s); resending everything spooled", self.directory, error)
            self._acked_upto = 0
        last_seq = self._acked_upto
        for path in sorted(self.directory.glob("*" + _SUFFIX)):
            try:
                first_seq = int(path.stem)
            except ValueError:
                continue
            segment = _Segment(first_seq, path, 0, first_seq - 1)
            for seq in self._scan(segment):
                last_seq = max(last_seq, seq)
                if seq > self._acked_upto:
                    self._index.append(seq)
            if segment.last_seq <= self._acked_upto or segment.size == 0:
                path.unlink(missing_ok=True)
            else:
                self._segments.append(segment)
        self._next_seq = last_seq + 1
        self.recovered = len(self._index)
        if self.recovered:
            log.info("spool %s: %d unsent record(s) from an earlier run will be sent first",
                     self.directory, self.recovered)

    def _scan(self, segment: _Segment):
        """Yield the seqs in a segment; truncate a torn last line, skip lines that do not parse."""
        good_end = 0
        with open(segment.path, "rb") as file:
            data = file.read()
        position = 0
        while position < len(data):
            newline = data.find(b"\n", position)
            if newline < 0:
                break   # torn tail: written without its newline when the process died
            line = data[position:newline]
            position = newline + 1
            try:
                seq = int(json.loads(line)["seq"])
            except (ValueError, KeyError, TypeError):
                log.warning("spool %s: skipping a line that does not parse", segment.path.name)
                good_end = position
                continue
            good_end = position
            segment.last_seq = max(segment.last_seq, seq)
            yield seq
        if good_end < len(data):
            log.warning("spool %s: dropping a torn last line (%d bytes)", segment.path.name, len(data) - good_end)
            os.truncate(segment.path, good_end)
        segment.size = good_end

    # -- writing -------------------------------------------------------------------------------

    def append(self, topic: str, payload: dict) -> int | None:
        """Write one record durably; returns its sequence number (None if it is larger than the spool)."""
        with self._lock:
            seq = self._next_seq
            line = (json.dumps({"seq": seq, "topic": topic, "payload": payload},
                               ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
            if len(line) > self.max_bytes:
                self.dropped += 1
                log.warning("spool: a %d-byte record is larger than the whole spool (%d bytes); dropped",
                            len(line), self.max_bytes)
                return None
            while self._segments and self._bytes() + len(line) > self.max_bytes:
                self._drop_oldest()
            if self._writer_fd is None or self._segments[-1].size >= self.segment_bytes:
                self._start_segment(seq)
            segment = self._segments[-1]
            try:
                os.write(self._writer_fd, line)
                if self._sync == "append":
                    os.fsync(self._writer_fd)
                else:
                    self._writer_unsynced = True
            except OSError as error:
                raise SinkError(f"cannot write spool {segment.path}: {error.strerror or error}") from None
            segment.size += len(line)
            segment.last_seq = seq
            self._index.append(seq)
            self._next_seq = seq + 1
            self.appended += 1
            return seq

    def _start_segment(self, first_seq: int) -> None:
        self._close_writer()
        path = self.directory / f"{first_seq:012d}{_SUFFIX}"
        try:
            self._writer_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._directory_unsynced = self._sync == "deferred"
            if self._sync == "append":
                directory_fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(directory_fd)   # the new file's name is durable too
                finally:
                    os.close(directory_fd)
        except OSError as error:
            raise SinkError(f"cannot create spool segment {path}: {error.strerror or error}") from None
        self._segments.append(_Segment(first_seq, path, 0, first_seq - 1))

    def _close_writer(self) -> None:
        if self._writer_fd is not None:
            if self._writer_unsynced and self._sync == "deferred":
                self._unsynced_fds.append(os.dup(self._writer_fd))
            self._writer_unsynced = False
            os.close(self._writer_fd)
            self._writer_fd = None

    def sync(self) -> None:
        """Force every record appended so far to disk (with ``sync="deferred"``). Holds no lock while syncing."""
        with self._lock:
            descriptors, self._unsynced_fds = self._unsynced_fds, []
            if self._writer_unsynced and self._writer_fd is not None:
                descriptors.append(os.dup(self._writer_fd))
            self._writer_unsynced = False
            directory, self._directory_unsynced = self._directory_unsynced, False
        if directory:
            descriptors.append(os.open(self.directory, os.O_RDONLY))   # new segments' names are durable too
        for descriptor in descriptors:
            try:
                os.fsync(descriptor)
            except OSError as error:
                log.warning("spool %s: fsync failed: %s", self.directory, error.strerror or error)
            finally:
                os.close(descriptor)

    def _drop_oldest(self) -> None:
        segment = self._segments.pop(0)
        if not self._segments:
            self._close_writer()   # it was the segment taking appends
        lost = 0
        while self._index and self._index[0] <= segment.last_seq:
            seq = self._index.popleft()
            if seq in self._acked_out_of_order:
                self._acked_out_of_order.discard(seq)
            else:
                lost += 1
        self.dropped += lost
        if lost:
            log.warning("spool %s full (%d bytes): dropped the %d oldest unsent record(s)",
                        self.directory, self.max_bytes, lost)
        self._set_acked(max(self._acked_upto, segment.last_seq))
        segment.path.unlink(missing_ok=True)

    # -- reading and acknowledging -------------------------------------------------------------

    def read_after(self, seq: int, limit: int) -> list[SpooledRecord]:
        """Up to ``limit`` unacknowledged-or-later records with a sequence number above ``seq``, oldest first."""
        out: list[SpooledRecord] = []
        with self._lock:
            seq = max(seq, self._acked_upto)
            cursor = self._read_cursor
            start_index = None
            offset = 0
            if cursor is not None and cursor[2] == seq:
                start_index = next((i for i, s in enumerate(self._segments) if s.first_seq == cursor[0]), None)
                offset = cursor[1]
            if start_index is None:
                start_index = next((i for i, s in enumerate(self._segments) if s.last_seq > seq), None)
                offset = 0
                if start_index is None:
                    return out
            for segment in self._segments[start_index:]:
                if len(out) >= limit:
                    break
                if offset >= segment.size:
                    offset = 0
                    continue
                with open(segment.path, "rb") as file:
                    file.seek(offset)
                    while len(out) < limit and offset < segment.size:
                        line = file.readline()
                        if not line.endswith(b"\n"):
                            break
                        offset += len(line)
                        try:
                            entry = json.loads(line)
                            record = SpooledRecord(int(entry["seq"]), str(entry["topic"]), entry["payload"])
                        except (ValueError, KeyError, TypeError):
                            continue
                        if record.seq > seq:
                            out.append(record)
                            seq = record.seq
                            self._read_cursor = (segment.first_seq, offset, seq)
                if len(out) < limit:
                    offset = 0
        return out

    def ack(self, seq: int) -> None:
        """The broker has the record ``seq``: forget it (its segment goes when all of it is acknowledged)."""
        with self._lock:
            if seq <= self._acked_upto:
                return
            self._acked_out_of_order.add(seq)
            upto = self._acked_upto
            while self._index and self._index[0] in self._acked_out_of_order:
                upto = self._index.popleft()
                self._acked_out_of_order.discard(upto)
            if upto == self._acked_upto:
                return
            self._set_acked(upto)
            while len(self._segments) > 1 and self._segments[0].last_seq <= upto:
                self._segments.pop(0).path.unlink(missing_ok=True)
            if self._segments and self._segments[-1].last_seq <= upto and not self._index:
                # Everything is acknowledged: start the next append in a fresh segment.
                self._close_writer()
                self._segments.pop().path.unlink(missing_ok=True)

    def _set_acked(self, upto: int) -> None:
        self._acked_upto = upto
        temporary = self.directory / "acked.tmp"
        try:
            temporary.write_text(f"{upto}\n")
            os.replace(temporary, self.directory / "acked")
        except OSError as error:
            log.warning("spool %s: cannot write the ack offset (%s); records may be sent twice",
                        self.directory, error.strerror or error)

    # -- figures -------------------------------------------------------------------------------

    @property
    def bytes(self) -> int:
        """Bytes of segment files on disk (acknowledged records in a live segment included)."""
        with self._lock:
            return self._bytes()

    def _bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def pending(self) -> int:
        """Records on disk not yet acknowledged."""
        with self._lock:
            return len(self._index) - len(self._acked_out_of_order)

    @property
    def acked_upto(self) -> int:
        return self._acked_upto

    def close(self) -> None:
        """Sync, close files and release the directory lock; idempotent."""
        if self._sync == "deferred":
            self.sync()
        with self._lock:
            self._close_writer()
            for descriptor in self._unsynced_fds:
                os.close(descriptor)
            self._unsynced_fds = []
            if self._lock_fd is not None:
                os.close(self._lock_fd)   # releases the flock
                self._lock_fd = None
