"""Files and network streams decoded by PyAV (FFmpeg): real timestamps, decoder threads,
RTSP over TCP, open/read timeouts, Intel hardware decoding when asked or available.

FFmpeg's own error lines (e.g. ``Picture size 0x0 is invalid``) are what tells a user why
a stream gives no picture, so PyAV's logging is switched on at ERROR level and those lines
are kept here (the latest few) and logged at DEBUG under ``edge.sources.ffmpeg``.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import threading
import time
from typing import Callable, Iterator

import av
import av.codec.hwaccel
import numpy as np
from av.video.reformatter import VideoReformatter

from edge.sources.base import (DecodeOptions, OpenFailed, Picture, ReconnectPolicy, Source,
                               SourceError, log)
from edge.health import Health
from edge.urls import is_url, mask_credentials

RTSP_SCHEMES = ("rtsp", "rtsps")
HW_DEVICE_DIR = "/dev/dri"
INTEL_HWACCELS = ("vaapi", "qsv")   # what decode.hwaccel auto tries, in this order
COLOR_RANGE_JPEG = 2                # AVCOL_RANGE_JPEG: full range


# ------------------------------------------------------------------------------ FFmpeg's error lines

class _FFmpegErrors(logging.Handler):
    """The latest FFmpeg error lines, numbered, so a decoder failure can be explained."""

    def __init__(self, keep: int = 64) -> None:
        super().__init__(logging.ERROR)
        self._lines: collections.deque[tuple[int, int, str]] = collections.deque(maxlen=keep)
        self._count = 0
        self._debug = logging.getLogger("edge.sources.ffmpeg")

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        message = _mask_urls(" ".join(record.getMessage().split()))  # FFmpeg may quote a URL
        self._count += 1
        self._lines.append((self._count, threading.get_ident(), message))
        self._debug.debug("[%s] %s", record.name.removeprefix("libav."), message)

    def mark(self) -> int:
        return self._count

    def first_since(self, mark: int, thread: int | None = None) -> str | None:
        """The first error line logged after ``mark`` (the cause; the lines after it are its echoes),
        by ``thread`` only when given (a decoder logs in the thread that feeds it, bar slice workers)."""
        for number, ident, message in list(self._lines):
            if number > mark and (thread is None or ident == thread):
                return message
        return None


_errors: _FFmpegErrors | None = None
_errors_lock = threading.Lock()


def ffmpeg_errors() -> _FFmpegErrors:
    """Route FFmpeg's ERROR lines to the keeper (once per process)."""
    global _errors
    with _errors_lock:
        if _errors is None:
            _errors = _FFmpegErrors()
            libav = logging.getLogger("libav")
            libav.addHandler(_errors)
            libav.propagate = False  # not on the terminal: a bad stream logs them per packet
            av.logging.set_level(av.logging.ERROR)
        return _errors


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _mask_urls(text: str) -> str:
    """Every URL in ``text`` with its credentials masked."""
    return _URL.sub(lambda match: mask_credentials(match.group(0)), text) if "://" in text else text


def describe(error: BaseException, spec: str, name: str) -> str:
    """One line for an FFmpeg/OS error, lower-case first word, credentials masked."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    text = _mask_urls(" ".join(str(text).split()).replace(spec, name))
    return text[:1].lower() + text[1:] if text[1:2].islower() or len(text) == 1 else text


# ------------------------------------------------------------------------------ hardware decoding

def _hw_problems(kind: str) -> list[str]:
    problems = []
    if not os.path.exists(HW_DEVICE_DIR):
        problems.append(f"no GPU device: {HW_DEVICE_DIR} is missing")
    available = av.codec.hwaccel.hwdevices_available()
    if kind not in available:
        problems.append(f"this FFmpeg build (PyAV {av.__version__}) has no {kind} support "
                        f"(it has: {', '.join(available) or 'none'})")
    return problems


class _HwChoice:
    """Resolves ``decode.hwaccel`` once per source; ``auto`` settles on software after one INFO line."""

    def __init__(self, choice: str, name: str) -> None:
        self.choice, self._name = choice, name
        self.kind: str | None = None
        if choice == "none":
            return
        if choice == "auto":
            for kind in INTEL_HWACCELS:
                if not _hw_problems(kind):
                    self.kind = kind
                    return
            self.software(_hw_problems(INTEL_HWACCELS[0])[0])
            return
        problems = _hw_problems(choice)
        if problems:
            raise SourceError(f"decode.hwaccel {choice}: {' and '.join(problems)}")
        self.kind = choice

    @property
    def explicit(self) -> bool:
        return self.choice not in ("auto", "none")

    def accel(self):
        if self.kind is None:
            return None
        return av.codec.hwaccel.HWAccel(device_type=self.kind, allow_software_fallback=True)

    def software(self, why: str) -> None:
        """``auto`` gives up on the device: one INFO line, software from now on (reconnections too)."""
        self.kind = None
        log.info("%s: hardware decoding unavailable (%s); decoding in software", self._name, why)


# ------------------------------------------------------------------------------ one open of the input

def _full_range(frame: av.VideoFrame) -> bool:
    return frame.format.name.startswith("yuvj") or frame.color_range == COLOR_RANGE_JPEG


def _is_plain_yuv420p(frame: av.VideoFrame) -> bool:
    """Limited-range yuv420p: its planes are what the hot path wants, as they are."""
    return frame.format.name == "yuv420p" and not _full_range(frame)


def _planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """yuv420p (limited range) Y, U, V as uint8 2-D views of the frame's buffers (strided when
    lines are padded)."""
    if not _is_plain_yuv420p(frame):
        full_range = _full_range(frame)
        # e.g. yuvj420p (MJPEG cameras), nv12, yuv422p; swscale converts the range only when told.
        frame = frame.reformat(format="yuv420p", src_color_range="JPEG" if full_range else "MPEG",
                               dst_color_range="MPEG")
    planes = []
    for plane in frame.planes:
        rows = np.frombuffer(plane, np.uint8, count=plane.line_size * plane.height)
        planes.append(rows.reshape(plane.height, plane.line_size)[:, :plane.width])
    return tuple(planes)


class PyAVConnection:
    """One ``av.open`` of a file or URL: demuxes the first video stream, decodes packet by packet.

    A packet the demuxer flags corrupt or the decoder rejects is counted in
    ``corrupt_packets`` and skipped. ``no_picture_s`` (live only): a connection that gives
    packets but no picture for that long ends, saying why (the decoder's own words).

    ``packet_tap`` (read when ``pictures()`` starts): an object told ``connected(stream)``, then
    ``packet(packet)`` for every demuxed packet before it is decoded, then ``disconnected(reason)``,
    all on the reading thread (the recorder, ``edge.evidence.record``). It must only enqueue:
    never block, never change the packet.
    """

    packet_tap = None

    def __init__(self, spec: str, name: str, *, hw: _HwChoice, threads: int | None, want_image: Callable[[], bool],
                 open_timeout_s: float | None, read_timeout_s: float | None, no_picture_s: float | None) -> None:
        self._spec, self._name = spec, name
        self._want_image = want_image  # asked per picture: a viewer may come and go
        self._read_timeout_s = read_timeout_s
        self._no_picture_s = no_picture_s
        self._errors = ffmpeg_errors()
        self.corrupt_packets = 0
        self.end_reason: str | None = None
        self.decoder_error: str | None = None         # the latest thing the decoder said was wrong
        self.first_decoder_error: str | None = None
        self._to_bgr = VideoReformatter()  # keeps its swscale context from frame to frame
        options = {}
        if spec.split("://", 1)[0].lower() in RTSP_SCHEMES:
            options["rtsp_transport"] = "tcp"
        if open_timeout_s is not None:
            # Probing a stream whose codec parameters never show up reads for analyzeduration
            # (5 s by default); keep it inside the open timeout, or the open is interrupted.
            options["analyzeduration"] = str(int(min(5.0, open_timeout_s / 2) * 1_000_000))
        timeout = (open_timeout_s, read_timeout_s) if open_timeout_s is not None else None
        self._container = self._open(options, timeout, hw)
        try:
            self._stream = self._prepare(hw, threads)
        except BaseException:
            self._container.close()
            raise
        stream = self._stream
        self.reported_fps = stream.average_rate or stream.guessed_rate
        self.frame_count = stream.frames or None
        self.size = (stream.codec_context.width, stream.codec_context.height)
        self._time_base = stream.time_base
        self._start_pts = stream.start_time or 0

    def _open(self, options, timeout, hw: _HwChoice):
        accel = hw.accel()
        try:
            return av.open(self._spec, "r", options=options, timeout=timeout, hwaccel=accel)
        except av.error.ExitError:
            raise OpenFailed(f"no answer within {timeout[0]:g} s" if timeout else "interrupted") from None
        except (av.error.FFmpegError, OSError, RuntimeError) as error:
            if accel is None:
                raise OpenFailed(describe(error, self._spec, self._name)) from None
            failure = f"cannot create the {hw.kind} device: {describe(error, self._spec, self._name)}"
        if hw.explicit:
            raise OpenFailed(f"decode.hwaccel {hw.choice}: {failure}")
        hw.software(failure)
        return self._open(options, timeout, hw)

    def _prepare(self, hw: _HwChoice, threads: int | None):
        if not self._container.streams.video:
            raise OpenFailed("no video stream")
        stream = self._container.streams.video[0]
        context = stream.codec_context
        if context is None:
            raise OpenFailed(f"no decoder for its {stream.codec_tag or 'video'} codec")
        if hw.kind is not None and not context.is_hwaccel:
            failure = f"the {context.name} decoder of this FFmpeg build cannot use {hw.kind}"
            if hw.explicit:
                raise OpenFailed(f"decode.hwaccel {hw.choice}: {failure}")
            hw.software(failure)
        # Slice threads only: frame threads decode after decode() returns, and one that logs an error
        # while the container closes (holding the GIL) deadlocks on PyAV's log callback.
        stream.thread_type = "SLICE"
        context.thread_count = threads or 0  # 0: FFmpeg picks (one per core)
        mark = self._errors.mark()
        try:
            context.open(strict=False)  # a decoder that cannot start fails at open, with FFmpeg's reason
        except (av.error.FFmpegError, ValueError) as error:
            said = self._errors.first_since(mark) or describe(error, self._spec, self._name)
            raise OpenFailed(f"the {context.name} decoder failed to open: {said}") from None
        return stream

    def _picture(self, frame: av.VideoFrame, decode_ns: int) -> Picture:
        media_s = None
        if frame.pts is not None and self._time_base:  # unset: None, or a falsy AVRational from PyAV 19
            media_s = float((frame.pts - self._start_pts) * self._time_base)
        want_image = self._want_image()
        planes = _planes(frame) if not want_image or _is_plain_yuv420p(frame) else None
        image = None
        if want_image:
            image = np.ascontiguousarray(self._to_bgr.reformat(frame, format="bgr24").to_ndarray())
        return Picture(image, planes, media_s, (decode_ns + time.perf_counter_ns()) / 1e6)

    def pictures(self, interrupted: Callable[[], bool]) -> Iterator[Picture]:
        """Decoded pictures until the input ends, fails, or ``interrupted()`` (checked per packet)."""
        tap = self.packet_tap
        if tap is None:
            yield from self._decoded(interrupted, None)
            return
        tap.connected(self._stream)
        try:
            yield from self._decoded(interrupted, tap.packet)
        finally:
            tap.disconnected(self.end_reason or "stream ended")

    def _decoded(self, interrupted: Callable[[], bool], tap: Callable | None) -> Iterator[Picture]:
        context = self._stream.codec_context
        packets = self._container.demux(self._stream)
        opened = time.monotonic()
        pictures = packets_seen = decode_ns = 0
        while not interrupted():
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.ExitError:
                self.end_reason = f"no data for {self._read_timeout_s:g} s"
                return
            except (av.error.FFmpegError, OSError) as error:
                self.end_reason = f"read failed: {describe(error, self._spec, self._name)}"
                return
            if tap is not None:
                tap(packet)
            mark = self._errors.mark()
            raised = None
            decode_ns -= time.perf_counter_ns()  # the decoder's own time, apart from waiting for packets
            try:
                frames = context.decode(packet)
            except av.error.EOFError:
                return
            except (av.error.FFmpegError, ValueError) as error:
                raised, frames = error, ()
            packets_seen += packet.size > 0
            # The decoder may also conceal damage and only say so in its log: still a corrupt packet.
            said = self._errors.first_since(mark, threading.get_ident())
            if raised is not None and said is None:
                said = self._errors.first_since(mark) or describe(raised, self._spec, self._name)
            if said is not None or packet.is_corrupt:
                self.corrupt_packets += 1
                if said is not None:
                    self.first_decoder_error = self.first_decoder_error or said
                    self.decoder_error = said
                    log.debug("%s: corrupt packet: %s", self._name, said)
            decode_ns += time.perf_counter_ns()
            for frame in frames:
                pictures += 1
                picture = self._picture(frame, decode_ns - time.perf_counter_ns())
                decode_ns = 0
                yield picture
            if (pictures == 0 and packet.size and self._no_picture_s is not None
                    and time.monotonic() - opened >= self._no_picture_s):
                said = f": {self.decoder_error}" if self.decoder_error else ""
                self.end_reason = f"no picture decoded from {packets_seen} packets in {self._no_picture_s:g} s{said}"
                return

    def no_picture_reason(self) -> str | None:
        """For a file that ended with no picture: what the decoder said, if anything."""
        if self.decoder_error:
            return f"no picture decoded: {self.decoder_error}"
        return None

    def close(self) -> None:
        self._container.close()


# ------------------------------------------------------------------------------ the sources

class PyAVSource(Source):
    """A video file or network stream decoded by PyAV.

    ``live=False`` (files, and URLs read like files): frames in order, none lost, media time
    from the container's pts (else index / fps); a decode failure before the reported end
    is a warning ("stopped decoding at frame N of M") that ends the iteration.
    ``live=True``: a dropped, stalled or restarted stream is reopened with backoff
    (``ReconnectPolicy``), a ``Gap`` marks each reconnection, media time is seconds since
    the first frame. URLs get open/read timeouts; ``rtsp://`` goes over TCP.

    ``want_image=False`` delivers yuv420p ``planes`` only (no colour conversion);
    otherwise BGR ``image`` (and the planes too when the stream is yuv420p: free views).
    ``want_image`` may be a function, asked per picture from the reading thread (a live-page
    viewer comes and goes); its owner decides, the source only asks.
    ``packet_tap``: see ``PyAVConnection``; ``set_packet_tap`` attaches one after opening.
    """

    def __init__(self, spec, *, live: bool, reconnect: ReconnectPolicy = ReconnectPolicy(),
                 decode: DecodeOptions = DecodeOptions(), want_image: bool | Callable[[], bool] = True,
                 open_timeout_s: float = 10.0, read_timeout_s: float = 10.0,
                 sleep: Callable[[float], object] | None = None, clock: Callable[[], float] = time.monotonic,
                 health: Health | None = None, packet_tap=None) -> None:
        spec = str(spec)
        self._packet_tap = packet_tap
        super().__init__(mask_credentials(spec), live=live, reconnect=reconnect, sleep=sleep, clock=clock,
                         health=health)
        self._spec = spec
        self._url = is_url(spec)
        self._want_image = want_image if callable(want_image) else (lambda wanted=bool(want_image): wanted)
        self._threads = decode.threads
        self._open_timeout_s = open_timeout_s if self._url else None
        self._read_timeout_s = read_timeout_s if self._url else None
        if not self._url:
            if not os.path.exists(spec):
                raise SourceError(f"video file not found: {spec}")
            if os.path.isdir(spec):
                raise SourceError(f"cannot open video: {spec} (it is a directory)")
            if not os.access(spec, os.R_OK):
                raise SourceError(f"cannot read video file: {spec} (permission denied)")
        self._hw = _HwChoice(decode.hwaccel, self.name)
        self._open_first()
        if not live and not self._prefetch():
            why = self._connection.no_picture_reason() if self._connection is not None else None
            self.close()
            raise SourceError(f"video has no frames: {self.name}" + (f" ({why})" if why else ""))

    def _connect(self) -> PyAVConnection:
        no_picture_s = None
        if self._live:
            no_picture_s = self._read_timeout_s if self._read_timeout_s is not None else 10.0
        connection = PyAVConnection(self._spec, self.name, hw=self._hw, threads=self._threads,
                                    want_image=self._want_image, open_timeout_s=self._open_timeout_s,
                                    read_timeout_s=self._read_timeout_s, no_picture_s=no_picture_s)
        connection.packet_tap = self._packet_tap
        return connection

    def set_packet_tap(self, tap) -> None:
        """Tap every connection from now on: the open one too, if it has not started reading."""
        self._packet_tap = tap
        connection = self._connection
        if connection is not None:
            connection.packet_tap = tap

    def _first_open_error(self, reason: str) -> SourceError:
        if reason.startswith("decode.hwaccel "):
            return SourceError(reason)
        if self._url:
            return SourceError(f"cannot open stream {self.name}: {reason}")
        if reason.startswith("invalid data found"):
            reason = "not a video, or an unsupported codec"
        return SourceError(f"cannot open video: {self.name} ({reason})")
