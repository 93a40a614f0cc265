"""A clip cut at keyframes from a camera's own packets: copied bit for bit into an H.264 MP4, no decode, no encode.

A packet source (``FilePackets`` here, the live ``Recorder`` in ``record.py``) gives ``packets(start_s,
end_s)``: the stream to copy parameters from and the ``TimedPacket`` s, in decode order, from the last
keyframe at or before ``start_s`` to the last packet whose dts is at or before ``end_s``. ``cut_clip``
writes them with timestamps rebased from the packets' own times (seconds on the camera's time base), so
packets of different connections line up; the first packet's dts is 0. With ``masks`` the clip is the
one thing re-encoded: decode → black regions → libx264.

The file is written under a temporary name in the same folder and renamed: a clip is whole or absent.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

MASK_CRF = 20
MASK_PRESET = "veryfast"


class CutError(Exception):
    """A clip could not be cut (no packets in the span, an unreadable source, a write error)."""


@dataclass(frozen=True, slots=True)
class TimedPacket:
    """One demuxed packet with its times on the camera's time base (seconds); ``key``: a keyframe."""

    packet: av.Packet
    pts_s: float | None
    dts_s: float | None
    key: bool


@dataclass
class Packets:
    """What a packet source gives for a span: ``stream``, the ``av`` video stream to copy parameters from,
    and ``packets``, an iterator of ``TimedPacket`` in decode order. ``close()`` releases the source's
    hold (its open file); use it as a context manager."""

    stream: object
    packets: Iterator[TimedPacket]
    on_close: Callable[[], None] | None = field(default=None, repr=False)

    def __iter__(self) -> Iterator[TimedPacket]:
        return self.packets

    def close(self) -> None:
        closing, self.on_close = self.on_close, None
        if closing is not None:
            closing()

    def __enter__(self) -> Packets:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class CutResult:
    """A written clip: its ``path``; ``start_s``/``end_s`` the span its frames cover (the first frame's
    time, the last frame's end) on the camera's time base; ``first_key_s`` the first keyframe's time;
    ``frames`` the number of video packets (frames) in it; ``reencoded`` when masks were burnt in."""

    path: Path
    start_s: float
    end_s: float
    first_key_s: float
    frames: int
    reencoded: bool = False


class FilePackets:
    """A file camera's own packets, read from the file itself (a file has nothing to record).

    Times are media seconds as the engine's sources compute them: ``(pts - stream.start_time) *
    time_base`` (``edge.sources.pyav``), so they match the predictions' ``start_time_s``/``end_time_s``.
    """

    def __init__(self, path) -> None:
        self.path = Path(path)

    def covered_until(self) -> float:
        """A file holds all of its packets already."""
        return math.inf

    def packets(self, start_s: float, end_s: float) -> Packets:
        """The packets from the last keyframe at or before ``start_s`` to the last one with dts ≤ ``end_s``.
        Raises ``CutError`` if the file cannot be opened or has no video stream."""
        try:
            container = av.open(str(self.path), "r")
        except (av.error.FFmpegError, OSError) as error:
            raise CutError(f"cannot open {self.path}: {error}") from None
        if not container.streams.video:
            container.close()
            raise CutError(f"{self.path} has no video stream")
        stream = container.streams.video[0]
        return Packets(stream, self._read(container, stream, float(start_s), float(end_s)), container.close)

    def _read(self, container, stream, start_s: float, end_s: float) -> Iterator[TimedPacket]:
        time_base = stream.time_base
        origin = stream.start_time or 0
        back_s = 0.0
        while True:  # a seek may land after the wanted keyframe (an index that is off): seek earlier
            target = max(0.0, start_s - back_s)
            container.seek(origin + math.floor(target / time_base), stream=stream, backward=True)
            demuxed = (packet for packet in container.demux(stream) if packet.size)
            first = next(demuxed, None)
            if first is None:
                return
            first_s = _seconds(first.pts, origin, time_base)
            if first.is_keyframe and first_s is not None and (first_s <= start_s + 1e-6 or target <= 0.0):
                break
            if target <= 0.0:  # the file starts with no keyframe: take what is there
                break
            back_s = max(1.0, back_s * 2)
        for packet in _chain(first, demuxed):
            dts_s = _seconds(packet.dts, origin, time_base)
            pts_s = _seconds(packet.pts, origin, time_base)
            if (dts_s if dts_s is not None else pts_s or 0.0) > end_s:
                return
            yield TimedPacket(packet, pts_s, dts_s, bool(packet.is_keyframe))


def _chain(first, rest):
    yield first
    yield from rest


def _seconds(ticks, origin, time_base) -> float | None:
    return None if ticks is None else float((ticks - origin) * time_base)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{os.getpid()}.part{path.suffix}")


def cut_clip(packets: Packets, start_s: float, end_s: float, out_path, masks=None) -> CutResult:
    """Write ``packets`` (from a source's ``packets(start_s, end_s)``) to ``out_path`` as an H.264 MP4
    (faststart). Without ``masks`` the packets are copied bit for bit; with ``masks`` (an
    ``edge.privacy.Masks``) each frame is decoded, masked and encoded with libx264.

    ``start_s``/``end_s`` are the span asked for (the packets already start at its keyframe). Raises
    ``CutError`` when there is no packet or the file cannot be written; no file is left under
    ``out_path`` then.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(out_path)
    try:
        with packets:
            if not masks:
                result = _copy(packets, temporary)
            else:
                result = _reencode(packets, temporary, _masked_frame(masks))
        os.replace(temporary, out_path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, (av.error.FFmpegError, OSError, ValueError)):
            raise CutError(f"cannot write clip {out_path}: {error}") from None
        raise
    return CutResult(out_path, result[0], result[1], result[2], result[3], bool(masks))


def _copy(packets: Packets, path: Path) -> tuple[float, float, float, int]:
    template = packets.stream
    time_base = template.time_base or Fraction(1, 90000)
    span = _Span()
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as output:
        stream = output.add_stream_from_template(template)
        stream.time_base = time_base
        origin = None
        for timed in packets:
            if timed.dts_s is None and timed.pts_s is None:
                continue
            if origin is None:
                if not timed.key:
                    continue  # a clip starts at a keyframe
                origin = timed.dts_s if timed.dts_s is not None else timed.pts_s
            packet = timed.packet
            duration_s = float(packet.duration * packet.time_base) if packet.duration and packet.time_base else None
            span.add(timed, duration_s)
            pts = _ticks(timed.pts_s, origin, time_base)
            dts = _ticks(timed.dts_s, origin, time_base)
            packet.stream = stream
            packet.time_base = time_base
            packet.pts = pts if pts is not None else dts
            packet.dts = dts
            output.mux(packet)
        if origin is None:
            raise CutError("no keyframe in the span")
    return span.result()


def _ticks(seconds: float | None, origin: float, time_base: Fraction) -> int | None:
    return None if seconds is None else round((seconds - origin) / time_base)


class _Span:
    """The frames' span while they are written: first and last presentation, first keyframe, count."""

    def __init__(self) -> None:
        self.first = math.inf
        self.last_end = -math.inf
        self.first_key: float | None = None
        self.frames = 0
        self.step: float | None = None
        self._times: list[float] = []

    def add(self, timed: TimedPacket, duration_s: float | None) -> None:
        time_s = timed.pts_s if timed.pts_s is not None else timed.dts_s
        self.frames += 1
        if self.first_key is None and timed.key:
            self.first_key = time_s
        self.first = min(self.first, time_s)
        if duration_s:
            self.step = duration_s
        self._times.append(time_s)
        self.last_end = max(self.last_end, time_s + (duration_s or 0.0))

    def result(self) -> tuple[float, float, float, int]:
        if self.frames == 0:
            raise CutError("no packets in the span")
        if self.step is None and len(self._times) > 1:  # no durations: the median frame step
            times = sorted(self._times)
            self.step = float(np.median(np.diff(times)))
            self.last_end = times[-1] + self.step
        return self.first, self.last_end, self.first_key, self.frames


def _masked_frame(masks):
    """``masks`` (an ``edge.privacy.Masks``) as a function decoded frame → masked frame to encode. The
    polygons are burnt into the yuv420p picture directly (no BGR round trip: the costly part of a masked
    clip at 1080p), into a copy the decoder does not hold (its pictures are its reference frames)."""

    def masked(frame: av.VideoFrame) -> av.VideoFrame:
        width, height = frame.width, frame.height
        if width % 4 or height % 4:
            return _via_bgr(frame, masks.apply)
        planes = frame.to_ndarray(format="yuv420p")   # a new array: ours to write
        quarter = height // 4
        masks.apply_planes(planes[:height], planes[height:height + quarter].reshape(height // 2, width // 2),
                           planes[height + quarter:].reshape(height // 2, width // 2), copy=False)
        return av.VideoFrame.from_ndarray(planes, format="yuv420p")

    return masked


def _via_bgr(frame: av.VideoFrame, mask: Callable[[np.ndarray], np.ndarray]) -> av.VideoFrame:
    image = np.ascontiguousarray(frame.to_ndarray(format="bgr24"))
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(mask(image)), format="bgr24")


def _reencode(packets: Packets, path: Path, mask: Callable[[av.VideoFrame], av.VideoFrame]):
    """Decode from the first keyframe, mask each frame, encode with libx264 (the only re-encode)."""
    template = packets.stream
    decoder = av.CodecContext.create(template.codec_context.name, "r")
    decoder.extradata = template.codec_context.extradata
    time_base = Fraction(1, 90000)
    span = _Span()
    times: dict[int, float] = {}   # a decoded frame's pts (ticks of its packet) → its time on the time base
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as output:
        stream = None
        origin = None
        for timed in list(packets) + [None]:
            if timed is not None:
                if origin is None:
                    if not timed.key or (timed.dts_s is None and timed.pts_s is None):
                        continue
                    origin = timed.dts_s if timed.dts_s is not None else timed.pts_s
                packet = timed.packet
                if packet.pts is not None and timed.pts_s is not None:
                    times[packet.pts] = timed.pts_s
                duration_s = (float(packet.duration * packet.time_base)
                              if packet.duration and packet.time_base else None)
                span.add(timed, duration_s)
                frames = decoder.decode(packet)
            else:
                frames = decoder.decode(None)
            for frame in frames:
                time_s = times.pop(frame.pts, None) if frame.pts is not None else None
                if time_s is None:
                    continue
                if stream is None:
                    stream = output.add_stream("libx264", rate=template.average_rate or 25,
                                               options={"crf": str(MASK_CRF), "preset": MASK_PRESET})
                    stream.width, stream.height = frame.width, frame.height
                    stream.pix_fmt = "yuv420p"
                    stream.time_base = time_base
                    stream.codec_context.time_base = time_base
                out = mask(frame)
                out.pts = _ticks(time_s, origin, time_base)
                out.time_base = time_base
                for encoded in stream.encode(out):
                    output.mux(encoded)
        if stream is None:
            raise CutError("no frame decoded in the span")
        for encoded in stream.encode(None):
            output.mux(encoded)
    return span.result()


__all__ = ["CutError", "CutResult", "FilePackets", "Packets", "TimedPacket", "cut_clip"]
