"""Recording: a live camera's own packets remuxed into MP4 segments with PyAV, no decode, no encode.

Two ways packets arrive, one recorder thread that writes them::

    the inference source's demuxer ─► tap (connected / packet / disconnected: enqueue only) ─┐
    or record.source, demuxed on the recorder's own reader thread ──────────────────────────┴─► inbox
    inbox ─► recorder thread ─► segments {record.dir}/{YYYY-MM-DD}/{unix s, 3 decimals}.mp4
                                └► the newest GOPs in memory ─► packets(start_s, end_s) for clips

- A segment starts at a keyframe and ends at the first keyframe after ``record.segment_s``, or when
  the stream drops (a gap, not a corrupt file). It is fragmented MP4 (a killed process leaves a
  playable file) whose time 0 is the wall time in its name: that of its first packet's dts.
- Times are wall (Unix seconds): at a connection's first packet ``wall0 = time.time()``; a packet is at
  ``wall0 + (pts - pts0) * time_base``.
- A full inbox drops packets (counted) up to the next keyframe; the reader never waits.
- Not ``continuous``: the recorder thread deletes, once per segment, what event clips may no longer
  need (older than ``keep_s`` and not held by a pending clip). ``continuous``: it deletes nothing;
  retention by age (``record.retain_days``, ``privacy.retain_pictures_h``) is the storage guard's
  (``edge.evidence.storage``), as is free space.
"""

from __future__ import annotations

import bisect
import io
import itertools
import logging
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import av

from edge.evidence.cut import Packets, TimedPacket
from edge.health import CameraState, Health
from edge.sources.base import ReconnectPolicy
from edge.sources.pyav import RTSP_SCHEMES, describe, ffmpeg_errors
from edge.urls import is_url, mask_credentials

log = logging.getLogger(__name__)

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
INBOX_PACKETS = 1024            # packets waiting for the recorder thread (~40 s at 25 fps); more are dropped
IDLE_HOUSEKEEPING_S = 60.0      # retention also runs this often when no segment closes (a camera offline)
MIN_RULE_SPAN_S = 60.0
MEMORY_MARGIN_S = 5.0           # kept in memory beyond pre_s + post_s
SEGMENT_NAME = re.compile(r"^(\d+\.\d{3})\.mp4$")
DAY_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ANNEXB_CODECS = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}
TOLERANCE_S = 0.002             # segment names round to the millisecond
SETTLE_S = 1.0                  # a connection's clock is settled over its first second of arrivals
DRIFT_S = 1.0                   # a packet this far ahead of its arrival moves the clock back


# ------------------------------------------------------------------------------ stream parameters

class _Template:
    """A stream's codec parameters kept apart from its container (which closes with its connection)."""

    def __init__(self, stream) -> None:
        self._holder = av.open(io.BytesIO(), "w", format="mp4")  # never written: it only owns the stream
        self.stream = self._holder.add_stream_from_template(stream, opaque=True)  # no encoder needed
        self.time_base = stream.time_base
        context = stream.codec_context
        self.codec = context.name if context is not None else stream.codec.name
        extradata = bytes(context.extradata or b"") if context is not None else b""
        self.annexb = self.codec in ANNEXB_CODECS and extradata[:1] != b"\x01"
        self.identity = (self.codec, context.width if context else 0, context.height if context else 0, extradata)


def _wall_name(wall_s: float) -> str:
    return f"{wall_s:.3f}"


def _day(wall_s: float) -> str:
    return datetime.fromtimestamp(wall_s).strftime("%Y-%m-%d")


class _Segment:
    """One MP4 file being written; packets go in with timestamps from its own time 0."""

    def __init__(self, path: Path, template: _Template, start_ts: int, start_s: float) -> None:
        self.path, self.start_s, self.end_s = path, start_s, start_s
        self._start_ts = start_ts
        # flush_packets: each fragment reaches the file whole when its GOP ends (a kill loses at most one GOP)
        self._container = av.open(str(path), "w", format="mp4", options={"movflags": MOVFLAGS, "flush_packets": "1"})
        self._stream = self._container.add_stream_from_template(template.stream, opaque=True)
        self._time_base = template.time_base
        self.packets = 0

    def write(self, packet: av.Packet, pts: int, dts: int, end_s: float) -> None:
        copy = av.Packet(packet)  # zero copy: the data is shared, the times are this file's
        copy.pts, copy.dts = pts - self._start_ts, dts - self._start_ts
        if packet.duration:
            copy.duration = packet.duration
        copy.time_base = self._time_base
        copy.is_keyframe = packet.is_keyframe
        copy.stream = self._stream
        self._container.mux(copy)
        self.packets += 1
        self.end_s = max(self.end_s, end_s)

    def close(self) -> int:
        """Finish the file; its size in bytes."""
        self._container.close()
        return self.path.stat().st_size


# ------------------------------------------------------------------------------ the recorder

_STOP = object()
_CONNECTED, _PACKET, _DISCONNECTED, _RESYNC = range(4)


class Recorder:
    """One camera's recording: segments on disk, the newest GOPs in memory, ``packets()`` for clips.

    ``source``: None to be fed by a tap (``set_packet_tap(recorder)`` on the inference source), or the
    URL of ``record.source``, demuxed on the recorder's own reader thread with ``reconnect``.
    ``keep_s``: with ``continuous`` false, how far back segments are kept (what a clip may still need);
    ``memory_s``: how far back packets stay in memory (besides the open segment).
    Health (``state``, ``reason``): ``online`` while packets arrive, ``reconnecting`` in a gap,
    ``offline`` with the reason when ``record.source`` cannot be opened (the camera's inference carries on).
    """

    def __init__(self, camera: str, directory, *, segment_s: float = 10.0, continuous: bool = False,
                 keep_s: float = 120.0, memory_s: float = 15.0, source: str | None = None,
                 reconnect: ReconnectPolicy = ReconnectPolicy(give_up=False), open_timeout_s: float = 10.0,
                 read_timeout_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.camera = camera
        self.directory = Path(directory)
        self.segment_s, self.continuous = float(segment_s), bool(continuous)
        self.keep_s, self.memory_s = float(keep_s), float(memory_s)
        self._spec = source
        self.source_name = mask_credentials(source) if source else None
        self._policy = reconnect
        self._open_timeout_s, self._read_timeout_s = open_timeout_s, read_timeout_s
        self._clock = clock
        self.health = Health()
        self.segments_written = 0
        self.bytes_written = 0
        self.dropped_packets = 0
        self.errors = 0
        self.cpu_s = 0.0                     # the recorder thread's own CPU time (its cost, measured)
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._resync = False                 # the tap dropped a packet: skip to the next keyframe
        self._thread: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()        # guards what packets() reads: _gops, _segments, _holds
        self._gops: deque[tuple[_Template, list[TimedPacket]]] = deque()
        self._segments: list[tuple[float, Path]] = []   # closed segments on disk, by start time
        self._ends: dict[Path, float] = {}                # the newest packet of each segment written here
        self._holds: dict[int, tuple[float, float]] = {}
        self._hold_ids = itertools.count(1)
        self._newest_s: float | None = None
        self._down = True                    # between connections: covered_until is now
        # recorder-thread state
        self._template: _Template | None = None
        self._wall0: float | None = None
        self._ts0 = 0
        self._pending: list = []             # a new connection's packets until its clock is settled
        self._want_key = True
        self._segment: _Segment | None = None
        self._last_housekeeping = 0.0
        self._write_failed: str | None = None

    # -------------------------------------------------------------------------- status

    state = property(lambda self: self.health.state)
    reason = property(lambda self: self.health.reason)

    def status(self) -> dict:
        """For /api/status: state, reason, segments written, bytes, dropped packets."""
        return {"state": str(self.health.state), "reason": self.health.reason,
                "source": self.source_name or "camera", "segments": self.segments_written,
                "bytes": self.bytes_written, "dropped_packets": self.dropped_packets,
                "cpu_s": round(self.cpu_s, 3)}

    def fail(self, reason: str) -> None:
        """Evidence offline for good (e.g. the camera has no packets to tap): said once."""
        if self.health.set(CameraState.OFFLINE, reason):
            log.warning("%s: recording offline: %s", self.camera, reason)

    # -------------------------------------------------------------------------- life

    def start(self) -> Recorder:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name=f"record-{self.camera}", daemon=True)
        self._thread.start()
        if self._spec is not None and self.health.state is not CameraState.OFFLINE:
            self._reader = threading.Thread(target=self._read, name=f"record-read-{self.camera}", daemon=True)
            self._reader.start()
        return self

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop taking packets, close the open segment. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._inbox.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._reader is not None:
            self._reader.join(self._read_timeout_s + 1.0)
        if self.health.state is not CameraState.OFFLINE:
            self.health.set(CameraState.FINISHED, "stopped")

    # -------------------------------------------------------------------------- the tap (reader thread)

    def connected(self, stream) -> None:
        """A connection opened: its stream's parameters (copied here, while the stream is alive)."""
        if self._closed:
            return
        try:
            template = _Template(stream)
        except (ValueError, av.error.FFmpegError) as error:
            self._inbox.put((_DISCONNECTED, f"cannot record this stream in MP4: {error}"))
            return
        self._resync = False
        self._inbox.put((_CONNECTED, template))

    def packet(self, packet: av.Packet) -> None:
        """One demuxed packet: enqueued, never waited for; a full inbox drops up to the next keyframe."""
        if self._closed or not packet.size:
            return
        if self._inbox.qsize() >= INBOX_PACKETS:
            self.dropped_packets += 1
            self._resync = True
            return
        if self._resync:
            if not packet.is_keyframe:
                self.dropped_packets += 1
                return
            self._resync = False
            self._inbox.put((_RESYNC, None))
        self._inbox.put((_PACKET, packet, self._clock()))

    def disconnected(self, reason: str) -> None:
        if not self._closed:
            self._inbox.put((_DISCONNECTED, reason))

    # -------------------------------------------------------------------------- record.source (own reader)

    def _read(self) -> None:
        """Demux ``record.source`` (no decoder) with the camera's reconnection policy."""
        attempt, told = 0, None
        while not self._stop.is_set():
            try:
                container = self._open()
            except _OpenFailed as failure:
                reason = f"record.source {self.source_name}: {failure}"
                if reason != told:
                    log.warning("%s: recording offline: %s", self.camera, reason)
                    told = reason
                if attempt >= self._policy.attempts and self._policy.give_up:
                    self.health.set(CameraState.OFFLINE, f"{reason}; gave up")
                    return
                delay = self._policy.delay(attempt) if attempt < self._policy.attempts else self._policy.max_delay_s
                self.health.set(CameraState.OFFLINE, reason)
                attempt += 1
                if self._stop.wait(delay):
                    return
                continue
            if told is not None:
                log.info("%s: recording %s again", self.camera, self.source_name)
            told, attempt = None, 0
            reason = self._demux(container)
            if self._stop.is_set():
                return
            log.warning("%s: record.source %s: %s; reconnecting", self.camera, self.source_name, reason)
            if self._stop.wait(self._policy.delay(0)):
                return

    def _open(self):
        options = {}
        if self._spec.split("://", 1)[0].lower() in RTSP_SCHEMES:
            options["rtsp_transport"] = "tcp"
        options["analyzeduration"] = str(int(min(5.0, self._open_timeout_s / 2) * 1_000_000))
        ffmpeg_errors()
        try:
            container = av.open(self._spec, "r", options=options,
                                timeout=(self._open_timeout_s, self._read_timeout_s))
        except av.error.ExitError:
            raise _OpenFailed(f"no answer within {self._open_timeout_s:g} s") from None
        except (av.error.FFmpegError, OSError, RuntimeError) as error:
            raise _OpenFailed(describe(error, self._spec, self.source_name)) from None
        if not container.streams.video:
            container.close()
            raise _OpenFailed("no video stream")
        return container

    def _demux(self, container) -> str:
        """Feed one connection's packets to the inbox; why it ended."""
        stream = container.streams.video[0]
        reason = "stream ended"
        self.connected(stream)
        try:
            for packet in container.demux(stream):
                if self._stop.is_set():
                    break
                self.packet(packet)
        except av.error.ExitError:
            reason = f"no data for {self._read_timeout_s:g} s"
        except (av.error.FFmpegError, OSError) as error:
            reason = f"read failed: {describe(error, self._spec, self.source_name)}"
        finally:
            self.disconnected(reason)
            container.close()
        return reason

    # -------------------------------------------------------------------------- the recorder thread

    def _run(self) -> None:
        self._scan()
        self._housekeeping()
        try:
            while True:
                try:
                    item = self._inbox.get(timeout=1.0)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    break
                if item is not None:
                    try:
                        self._handle(item)
                    except Exception as error:  # a recorder must not die on one bad packet or a full disk
                        self._failed_write(error)
                if self._clock() - self._last_housekeeping >= IDLE_HOUSEKEEPING_S:
                    self._housekeeping()
                self.cpu_s = time.thread_time()
        finally:
            try:
                if self._pending:
                    self._settle()
            finally:
                self._close_segment()
                self.cpu_s = time.thread_time()

    def _handle(self, item) -> None:
        kind = item[0]
        if kind == _PACKET:
            self._on_packet(item[1], item[2])
            return
        if self._pending:
            self._settle()  # what a short connection gave
        if kind == _CONNECTED:
            self._close_segment()
            self._template, self._wall0, self._want_key = item[1], None, True
            with self._lock:
                self._down = False  # packets are on their way: a clip waits for them
        elif kind == _RESYNC:
            self._close_segment()
            self._want_key = True
        elif kind == _DISCONNECTED:
            self._close_segment()
            self._template, self._wall0, self._want_key = None, None, True
            with self._lock:
                self._down = True
            if item[1].startswith("cannot record"):
                self.fail(item[1])
            elif self.health.state is not CameraState.OFFLINE:
                self.health.set(CameraState.RECONNECTING, item[1])

    def _on_packet(self, packet: av.Packet, arrived_s: float) -> None:
        template = self._template
        if template is None:
            return
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None:
            return  # no time: cannot be placed
        dts = packet.dts if packet.dts is not None else pts
        if self._wall0 is None:
            # A connection's first packets come in a burst (read while the stream was probed): their arrival
            # is late. The clock is settled over SETTLE_S of arrivals: no packet was sent after it arrived.
            self._pending.append((packet, pts, dts, arrived_s))
            if arrived_s - self._pending[0][3] < SETTLE_S:
                return
            self._settle()
            return
        self._place(template, packet, pts, dts, arrived_s)

    def _settle(self) -> None:
        pending, self._pending = self._pending, []
        if not pending or self._template is None:
            return
        tb = self._template.time_base
        self._ts0 = pending[0][1]
        self._wall0 = min(arrived - float((dts - self._ts0) * tb) for _, _, dts, arrived in pending)
        for packet, pts, dts, arrived in pending:
            self._place(self._template, packet, pts, dts, arrived)

    def _place(self, template: _Template, packet: av.Packet, pts: int, dts: int, arrived_s: float) -> None:
        tb = template.time_base
        dts_s = self._wall0 + float((dts - self._ts0) * tb)
        if dts_s > arrived_s + DRIFT_S:  # the camera's clock runs fast: never a packet from the future
            self._wall0 -= dts_s - arrived_s
            dts_s = arrived_s
        pts_s = self._wall0 + float((pts - self._ts0) * tb)
        key = bool(packet.is_keyframe)
        if self._want_key:
            if not key:
                return  # before the connection's first keyframe: nothing can decode it
            self._want_key = False
        timed = TimedPacket(packet, pts_s, dts_s, key)
        with self._lock:
            if key or not self._gops:
                self._gops.append((template, [timed]))
                self._trim_memory(pts_s)
            else:
                self._gops[-1][1].append(timed)
            self._newest_s = pts_s if self._newest_s is None else max(self._newest_s, pts_s)
            self._down = False
        if self.health.state is not CameraState.ONLINE:
            self.health.set(CameraState.ONLINE)
        if key and (self._segment is None or pts_s - self._segment.start_s >= self.segment_s):
            self._close_segment()
            self._open_segment(template, dts, dts_s)
        if self._segment is not None:
            self._segment.write(packet, pts, dts, pts_s)

    def _trim_memory(self, newest_s: float) -> None:
        """Drop whole GOPs older than ``memory_s`` that the open segment does not hold (lock held)."""
        open_start = self._segment.start_s if self._segment is not None else newest_s
        while len(self._gops) > 1:
            following = self._gops[1][1][0]
            if following.dts_s > newest_s - self.memory_s or following.dts_s > open_start + TOLERANCE_S:
                return
            self._gops.popleft()

    def _open_segment(self, template: _Template, dts: int, dts_s: float) -> None:
        if self._write_failed is not None and self._clock() - self._write_failed_at < 10.0:
            return  # a full or unwritable disk: try again now and then, not per keyframe
        path = self.directory / _day(dts_s) / f"{_wall_name(dts_s)}.mp4"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._segment = _Segment(path, template, dts, round(dts_s, 3))
        except (OSError, av.error.FFmpegError, ValueError) as error:
            self._failed_write(error)
            return
        if self._write_failed is not None:
            log.info("%s: recording to %s again", self.camera, self.directory)
            self._write_failed = None

    def _close_segment(self) -> None:
        segment, self._segment = self._segment, None
        if segment is None:
            return
        try:
            size = segment.close()
        except (OSError, av.error.FFmpegError) as error:
            self._failed_write(error)
            size = segment.path.stat().st_size if segment.path.exists() else 0
        if segment.packets == 0:
            segment.path.unlink(missing_ok=True)
            return
        self.segments_written += 1
        self.bytes_written += size
        with self._lock:
            bisect.insort(self._segments, (segment.start_s, segment.path))
            self._ends[segment.path] = segment.end_s
        self._housekeeping()

    def _failed_write(self, error: BaseException) -> None:
        self.errors += 1
        said = " ".join(str(error).split())
        if self._write_failed is None:
            log.error("%s: cannot write recordings in %s: %s", self.camera, self.directory, said)
        self._write_failed, self._write_failed_at = said, self._clock()
        segment, self._segment = self._segment, None
        if segment is not None:
            try:
                segment.close()
            except Exception:
                pass

    _write_failed_at = 0.0

    # -------------------------------------------------------------------------- retention

    def _scan(self) -> None:
        """The segments already on disk (an earlier run's too)."""
        found = []
        if self.directory.is_dir():
            for day in self.directory.iterdir():
                if day.is_dir() and DAY_NAME.match(day.name):
                    for path in day.iterdir():
                        match = SEGMENT_NAME.match(path.name)
                        if match:
                            found.append((float(match.group(1)), path))
        with self._lock:
            self._segments = sorted(set(found) | set(self._segments))

    def hold(self, start_s: float, end_s: float) -> int:
        """Keep the segments covering ``[start_s, end_s]`` until ``release(token)``; returns the token."""
        with self._lock:
            token = next(self._hold_ids)
            self._holds[token] = (float(start_s), float(end_s))
        return token

    def release(self, token: int) -> None:
        with self._lock:
            self._holds.pop(token, None)

    def _housekeeping(self) -> None:
        """Delete the segments no event clip may still need (recorder thread); continuous: none (the
        storage guard deletes by age)."""
        now = self._clock()
        self._last_housekeeping = now
        if self.continuous:
            return
        cutoff = now - self.keep_s
        with self._lock:
            segments, holds, ends = list(self._segments), list(self._holds.values()), dict(self._ends)
        doomed = []
        for index, (start_s, path) in enumerate(segments):
            end_s = ends.get(path)
            if end_s is None:  # an earlier run's: until the next one, or about two segments
                following = segments[index + 1][0] if index + 1 < len(segments) else float("inf")
                end_s = min(following, start_s + 2 * self.segment_s)
            if end_s >= cutoff:
                continue
            if any(start_s <= hold_end and end_s >= hold_start for hold_start, hold_end in holds):
                continue
            doomed.append((start_s, path))
        if not doomed:
            return
        for _, path in doomed:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                log.warning("%s: cannot delete %s: %s", self.camera, path, error)
                continue
            try:
                path.parent.rmdir()  # the day's folder, once empty
            except OSError:
                pass
        with self._lock:
            gone = set(doomed)
            self._segments = [segment for segment in self._segments if segment not in gone]
            for _, path in doomed:
                self._ends.pop(path, None)

    # -------------------------------------------------------------------------- the packet source

    def covered_until(self) -> float | None:
        """The newest wall time whose packets this recorder can give; while the stream is down, now
        (nothing more will come for the gap). None before any packet."""
        with self._lock:
            newest, down = self._newest_s, self._down
        if newest is None:
            return None
        return max(newest, self._clock()) if down else newest

    def segments(self) -> list[tuple[float, Path]]:
        """The closed segments on disk: (start wall time, path), oldest first."""
        with self._lock:
            return list(self._segments)

    def packets(self, start_s: float, end_s: float) -> Packets:
        """The packets from the last keyframe at or before ``start_s`` (or the first there is) to the first
        packet after ``end_s``, in decode order: closed segments on disk, then memory. Packets from
        disk are made Annex B again when memory's are (one clip, one form). Memory's are handed out as
        copies sharing the data: a clip may change their times. Close the result (``with``) when done:
        until then retention keeps the segments of the span."""
        with self._lock:
            gops = [(template, list(packets)) for template, packets in self._gops]
            segments = list(self._segments)
        memory_from = None
        if gops:
            memory_from = gops[0][1][0].pts_s
            first = 0
            for index, (_, packets) in enumerate(gops):
                if packets[0].pts_s <= start_s + TOLERANCE_S:
                    first = index
            gops = gops[first:]
        if gops and memory_from <= start_s + TOLERANCE_S:
            disk = []
        else:
            starts = [start for start, _ in segments]
            index = max(0, bisect.bisect_right(starts, start_s + TOLERANCE_S) - 1)
            until = memory_from if memory_from is not None else float("inf")
            disk = [path for start, path in segments[index:] if start < until - TOLERANCE_S and start <= end_s
                    and path.exists()]  # the storage guard may have deleted some (edge.evidence.storage)
        token = self.hold(start_s, end_s)  # retention leaves these segments alone until close()
        release = lambda: self.release(token)  # noqa: E731
        if gops:
            template = gops[0][0]
            return Packets(template.stream, self._chain(disk, gops, template, start_s, end_s, memory_from), release)
        if not disk:
            self.release(token)
            return Packets(None, iter(()))
        holder = _disk_template(disk[0])
        return Packets(holder.stream, self._chain(disk, [], holder, start_s, end_s, None, keep=holder), release)

    def _chain(self, disk: list[Path], gops, template: _Template, start_s: float, end_s: float,
               memory_from: float | None, keep=None) -> Iterator[TimedPacket]:
        started = False
        for path in disk:
            for timed in _read_segment(path, annexb=template.annexb and bool(gops)):
                if memory_from is not None and timed.key and timed.pts_s >= memory_from - TOLERANCE_S:
                    break
                if not started:
                    if not timed.key:
                        continue
                    started = True
                yield timed
                if timed.dts_s > end_s:
                    return
        for gop_template, packets in gops:
            if gop_template.identity != template.identity:
                return  # the stream changed: one clip, one set of parameters
            for timed in packets:
                yield TimedPacket(_copy(timed.packet), timed.pts_s, timed.dts_s, timed.key)
                if timed.dts_s > end_s:
                    return


class _OpenFailed(Exception):
    pass


def _copy(packet: av.Packet) -> av.Packet:
    """The same data (not copied), its own times and flags: a clip may change them freely."""
    copy = av.Packet(packet)
    copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
    copy.is_keyframe = packet.is_keyframe
    if packet.duration:
        copy.duration = packet.duration
    return copy


def _segment_start(path: Path) -> float:
    return float(SEGMENT_NAME.match(path.name).group(1))


def _disk_template(path: Path) -> _Template:
    with av.open(str(path)) as container:
        return _Template(container.streams.video[0])


def _read_segment(path: Path, *, annexb: bool) -> Iterator[TimedPacket]:
    """A segment's packets with wall times (its time 0 is its name); Annex B when asked (H.264/HEVC)."""
    origin = _segment_start(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        log.warning("cannot read the recording %s: %s", path, error)
        return
    try:
        stream = container.streams.video[0]
        tb = stream.time_base
        bsf = None
        name = stream.codec_context.name if stream.codec_context is not None else ""
        if annexb and name in ANNEXB_CODECS and bytes(stream.codec_context.extradata or b"")[:1] == b"\x01":
            bsf = av.bitstream.BitStreamFilterContext(ANNEXB_CODECS[name], stream)
        for packet in container.demux(stream):
            if not packet.size or packet.pts is None:
                continue
            key = bool(packet.is_keyframe)
            pts_s = origin + float(packet.pts * tb)
            dts_s = origin + float((packet.dts if packet.dts is not None else packet.pts) * tb)
            for out in (bsf.filter(packet) if bsf is not None else (packet,)):
                yield TimedPacket(out, pts_s, dts_s, key)
    except (av.error.FFmpegError, OSError) as error:
        log.warning("cannot read the recording %s: %s", path, error)
    finally:
        container.close()


# ------------------------------------------------------------------------------ from the config

def rule_span_s(config) -> float:
    """The longest time a rule looks back (``within_s``/``seconds``), 60 s at least."""
    spans = [value for rule in config.rules for value in (rule.within_s, rule.seconds) if value]
    return max([MIN_RULE_SPAN_S, *spans])


def wants_recorder(camera) -> bool:
    """A live camera that may keep pictures and records continuously or cuts clips."""
    return camera.live and camera.keeps_pictures and (camera.record.continuous or camera.clips != "none")


def build_recorders(config, mode: str, sources: dict | None = None) -> dict[str, Recorder]:
    """A ``Recorder`` per live camera that needs one (not started). With ``record.source`` null, it is
    attached as the packet tap of that camera's source (``sources``, as ``open_sources`` returned them);
    a camera whose source has no packets to tap gets a recorder that is ``offline`` with the reason."""
    from edge.evidence.paths import recordings_dir

    recorders = {}
    span = rule_span_s(config)
    for name, camera in config.cameras.items():
        if not wants_recorder(camera):
            continue
        record, evidence, reconnect = camera.record, camera.evidence, camera.reconnect
        spec = str(record.source) if record.source is not None else None
        recorder = Recorder(
            name, recordings_dir(camera), segment_s=record.segment_s, continuous=record.continuous,
            keep_s=evidence.pre_s + evidence.post_s + span + 2 * record.segment_s,
            memory_s=max(evidence.pre_s + evidence.post_s + MEMORY_MARGIN_S, record.segment_s), source=spec,
            reconnect=ReconnectPolicy(reconnect.attempts, reconnect.delay_s, reconnect.max_delay_s,
                                      give_up=mode == "run"),
            open_timeout_s=reconnect.open_timeout_s, read_timeout_s=reconnect.read_timeout_s)
        recorders[name] = recorder
        if spec is not None:
            if not is_url(spec):
                recorder.fail(f"record.source must be a stream URL, got {recorder.source_name}")
            continue
        source = (sources or {}).get(name)
        if source is None:
            recorder.fail("the camera could not be opened")
        elif not hasattr(source, "set_packet_tap"):
            recorder.fail("this camera gives decoded pictures, not packets: set record.source to its stream URL")
        else:
            source.set_packet_tap(recorder)
    return recorders


__all__ = ["Recorder", "build_recorders", "rule_span_s", "wants_recorder"]
