"""The annotated video: browser-playable H.264 in MP4, encoded on its own thread.

``VideoSink`` hands frames to an encoder thread through a bounded queue, so the
lane that decodes never waits for the encoder unless the queue is full: a file
source then waits (no frame is lost), a live source drops the newest frame and
counts it. The encoder thread resizes (when a frame is not ``output_size``),
converts BGR to yuv420p (OpenCV's BT.601 limited-range I420, the same matrix as
FFmpeg's default) and encodes with PyAV: Intel QSV or VAAPI when asked for or
when ``/dev/dri`` exists and the encoder opens, else libx264.

The file is MP4 with the ``avc1`` tag, ``yuv420p`` and ``+faststart`` (the
index precedes the media data, so a browser starts playing before the whole
file has arrived), at a constant frame rate: frame n has pts n at ``1/fps``.
``close()`` must run on every exit path: only it writes the index.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import weakref
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from edge.config.schema import HWACCELS
from edge.sinks import SinkError, check_writable
from edge.sources import DEFAULT_FPS, sanitize_fps

log = logging.getLogger(__name__)

DRI_PATH = "/dev/dri"                  # GPU render nodes live here (a module constant: tests move it)
VAAPI_DEVICE = "/dev/dri/renderD128"
QUEUE_FRAMES = 8                       # ~0.3 s at 25 fps: absorbs encoder hiccups, bounds memory
# libx264 per 1280x720 frame on 2 EPYC cores (benchmarks/bench_encode.py, camera-like noise):
# ultrafast 4.2 ms CPU, 7.0 Mbit/s; superfast 7.8 ms (6.2 without B-frames), 3.9; veryfast 10.9, 1.7.
# A 1080p batch run spends ~11 ms of CPU per frame without video, so on 2 cores only ultrafast keeps
# the run with video at >= 0.6x the clips/s without it (superfast: ~0.55x). Files are larger; pass
# preset="superfast" (or a higher crf) where disk matters more than CPU.
DEFAULT_PRESET = "ultrafast"
DEFAULT_CRF = 23
X264_PARAMS = "bframes=0"  # B-frames cost ~20 % more CPU at superfast for ~5 % fewer bits
# One x264 thread: on 2 cores shared with inference, more threads raise CPU per frame
# (frame threading) for no throughput the lane can use.
ENCODER_THREADS = 1
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
# The encoder thread yields the CPU to inference (added to that one thread's niceness, Linux): OpenVINO's
# threads work in lockstep, so an encoder preempting one of them stalls the whole inference. Rolling
# stride 1 at 1080p on 2 cores kept 0.88x its clips/s without video at nice 0, 0.92-0.99x at +5. A live
# camera's encoder that falls behind drops frames (counted) rather than making the lane skip clips.
ENCODER_NICENESS = 5
QSV_PRESETS = ("veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
PROBE_SIZE = (256, 144)
_STOP = object()
_open_sinks: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_open_sinks() -> None:
    # A path that skipped close() (an uncaught error, sys.exit) still gets a playable file:
    # without close() the MP4 has no index. Failures were logged by the encoder thread.
    for sink in list(_open_sinks):
        try:
            sink.close()
        except Exception:
            pass


def output_size_for(size: tuple[int, int], max_width: int = 1280) -> tuple[int, int]:
    """The encoded size for a source of ``size`` (width, height).

    Downscaled so the width is at most ``max_width`` (0 = no limit), aspect kept,
    both dimensions even (yuv420p halves the chroma planes) and at least 2.
    """
    width, height = int(size[0]), int(size[1])
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    if max_width and width > max_width:
        height = round(height * max_width / width)
        width = max_width
    return max(2, width - width % 2), max(2, height - height % 2)


def resize_for_video(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (uint8 H×W×3 BGR) resized to ``size`` (width, height); the image itself if it fits.

    Shrinking by less than 2x uses bilinear interpolation, which costs ~2 ms for
    1080p→720p where INTER_AREA costs ~10 ms of CPU (a 1.5x area filter has no
    fast path in OpenCV); larger reductions use INTER_AREA against aliasing.
    """
    height, width = image.shape[:2]
    if (width, height) == tuple(size):
        return image
    shrink = max(width / size[0], height / size[1])
    interpolation = cv2.INTER_AREA if shrink >= 2.0 else cv2.INTER_LINEAR
    return cv2.resize(image, tuple(size), interpolation=interpolation)


def video_image_from_planes(y: np.ndarray, u: np.ndarray, v: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A BGR uint8 (height, width, 3) image at ``size`` (width, height) from yuv420p planes.

    ``y`` is H×W, ``u`` and ``v`` are (H/2)×(W/2), uint8, rows may be strided (a decoder's
    planes); BT.601 limited range, as FFmpeg's default conversion. The planes are resized
    first and converted at the output size: ~1.6 ms of CPU for 1080p→720p, where converting
    at 1080p and resizing the BGR image costs ~2.6 ms. For a lane whose source delivers planes.
    """
    width, height = int(size[0]), int(size[1])
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs an even size, got {width}x{height}")
    shrink = max(y.shape[1] / width, y.shape[0] / height)
    interpolation = cv2.INTER_AREA if shrink >= 2.0 else cv2.INTER_LINEAR
    area = width * height
    i420 = np.empty(area * 3 // 2, np.uint8)  # OpenCV's I420: Y, then U, then V, each plane contiguous
    for plane, start, (plane_w, plane_h) in ((y, 0, (width, height)), (u, area, (width // 2, height // 2)),
                                             (v, area * 5 // 4, (width // 2, height // 2))):
        target = i420[start:start + plane_w * plane_h].reshape(plane_h, plane_w)
        if plane.shape == target.shape:
            target[...] = plane
        else:
            cv2.resize(plane, (plane_w, plane_h), dst=target, interpolation=interpolation)
    return cv2.cvtColor(i420.reshape(height * 3 // 2, width), cv2.COLOR_YUV2BGR_I420)


# ------------------------------------------------------------------------------------- encoder choice

@dataclass(frozen=True)
class EncoderChoice:
    """Which H.264 encoder writes the file, with its options and why it was chosen."""

    codec: str                    # "libx264" | "h264_qsv" | "h264_vaapi"
    pix_fmt: str                  # the encoder's input format (PyAV converts yuv420p to it)
    options: dict = field(default_factory=dict)
    hwaccel: str | None = None    # "vaapi" when frames are uploaded to a VAAPI device
    reason: str = ""

    def describe(self) -> str:
        settings = ", ".join(f"{k} {v}" for k, v in self.options.items())
        return f"{self.codec} ({settings})" if settings else self.codec


def _software(crf, preset, reason: str) -> EncoderChoice:
    options = {"preset": preset or DEFAULT_PRESET, "crf": str(DEFAULT_CRF if crf is None else crf),
               "threads": str(ENCODER_THREADS), "x264-params": X264_PARAMS}
    return EncoderChoice("libx264", "yuv420p", options, None, reason)


def hardware_encoder(kind: str, crf: int | None = None, preset: str | None = None) -> EncoderChoice:
    """The QSV (``kind="qsv"``) or VAAPI encoder with its options, not yet probed."""
    quality = str(DEFAULT_CRF if crf is None else crf)
    if kind == "qsv":
        # h264_qsv takes system-memory nv12 frames and opens its own session on the GPU.
        return EncoderChoice("h264_qsv", "nv12",
                             {"preset": preset if preset in QSV_PRESETS else "veryfast",
                              "global_quality": quality}, None)
    return EncoderChoice("h264_vaapi", "nv12", {"rc_mode": "CQP", "qp": quality}, "vaapi")


def _hwaccel_kwargs(choice: EncoderChoice) -> dict:
    """``hwaccel=`` for PyAV when frames go to a VAAPI device (PyAV >= 18); nothing otherwise, so
    software encoding works with older PyAV too."""
    if choice.hwaccel != "vaapi":
        return {}
    from av.codec.hwaccel import HWAccel
    return {"hwaccel": HWAccel("vaapi", device=VAAPI_DEVICE)}


def _one_line(error: BaseException) -> str:
    if isinstance(error, av.FFmpegError) and error.strerror:
        return error.strerror  # without PyAV's repeat of the call and its options
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def probe_encoder(choice: EncoderChoice) -> str | None:
    """Open ``choice`` at a small size and close it again: None if it opens, else why not (one line)."""
    if choice.codec not in av.codecs_available:
        return f"{choice.codec} is not in this PyAV build's FFmpeg"
    try:
        context = av.CodecContext.create(choice.codec, "w", **_hwaccel_kwargs(choice))
        context.width, context.height = PROBE_SIZE
        context.pix_fmt = choice.pix_fmt
        context.time_base = Fraction(1, 25)
        context.options = dict(choice.options)
        context.open()
    except Exception as error:  # FFmpeg reports a missing GPU or driver as assorted errors
        return f"{choice.codec} did not open ({_one_line(error)}: no usable GPU or driver?)"
    return None


def choose_encoder(hwaccel: str = "auto", *, crf: int | None = None, preset: str | None = None) -> EncoderChoice:
    """Pick the H.264 encoder for ``hwaccel`` (``auto``, ``none``, ``qsv`` or ``vaapi``).

    ``auto`` tries QSV, then VAAPI, when ``/dev/dri`` exists, and falls back to
    libx264; the returned choice says why in ``reason``. An explicit ``qsv`` or
    ``vaapi`` that cannot open raises ``SinkError`` (one line); so does an
    unknown ``hwaccel``.
    """
    name = "none" if hwaccel in (None, False) else str(hwaccel).lower()
    if name not in HWACCELS:
        raise SinkError(f"video hwaccel {hwaccel!r} is not one of {', '.join(HWACCELS)}")
    if name == "none":
        return _software(crf, preset, "hwaccel none")
    if name in ("qsv", "vaapi"):
        choice = hardware_encoder(name, crf, preset)
        failure = probe_encoder(choice)
        if failure:
            raise SinkError(f"cannot encode video with hwaccel {name}: {failure}")
        return EncoderChoice(choice.codec, choice.pix_fmt, choice.options, choice.hwaccel, f"hwaccel {name}")
    if not os.path.exists(DRI_PATH):
        return _software(crf, preset, f"hwaccel auto: no {DRI_PATH} (no GPU)")
    failures = []
    for kind in ("qsv", "vaapi"):
        choice = hardware_encoder(kind, crf, preset)
        failure = probe_encoder(choice)
        if failure is None:
            return EncoderChoice(choice.codec, choice.pix_fmt, choice.options, choice.hwaccel,
                                 f"hwaccel auto: {DRI_PATH} present and {choice.codec} opens")
        failures.append(failure)
    return _software(crf, preset, "hwaccel auto: " + "; ".join(failures))


# ------------------------------------------------------------------------------------- the sink

class VideoSink:
    """Writes annotated BGR frames to an H.264 MP4 file on an encoder thread.

    ``path``: the output file (checked writable here: ``SinkError`` before any
    work). ``fps``: the source's rate (an unbelievable value means 25).
    ``size``: the source's (width, height), or None / (0, 0) to take the
    first frame's. ``max_width``: the widest output (0 = the source's width).
    ``hwaccel``: ``auto`` | ``none`` | ``qsv`` | ``vaapi`` (see
    ``choose_encoder``). ``live``: drop the newest frame when the encoder is
    behind instead of waiting. ``crf`` / ``preset``: libx264 quality and speed
    (default 23, ``ultrafast``; the quality also sets the hardware encoders').

    ``output_size`` is the encoded (width, height), None until known; a lane
    resizes to it (``resize_for_video``) before drawing the overlay so text stays
    crisp. ``frames_written`` counts frames accepted (the file will hold exactly
    these), ``frames_dropped`` live frames dropped, ``frames_resized`` frames the
    sink had to resize itself. An encoder failure is re-raised as ``SinkError``
    from the next ``write`` or ``close``.
    """

    def __init__(self, path, fps: float, size: tuple[int, int] | None, *, max_width: int = 1280,
                 hwaccel: str = "auto", live: bool = False, crf: int | None = None,
                 preset: str | None = None) -> None:
        if crf is not None and not 0 <= int(crf) <= 51:
            raise SinkError(f"video crf {crf} is outside 0..51")
        if preset is not None and preset not in X264_PRESETS:
            raise SinkError(f"video preset {preset!r} is not one of {', '.join(X264_PRESETS)}")
        self.path = check_writable(path)
        self.fps = sanitize_fps(fps) or DEFAULT_FPS
        self.rate = Fraction(self.fps).limit_denominator(1001)  # 29.97 → 30000/1001
        self.max_width = int(max_width or 0)
        self.live = bool(live)
        self.encoder = choose_encoder(hwaccel, crf=crf, preset=preset)
        self._auto, self._crf = str(hwaccel).lower() == "auto", crf
        log.info("video %s: H.264 by %s, %s", self.path, self.encoder.describe(), self.encoder.reason)
        self.frames_written = 0
        self.frames_dropped = 0
        self.frames_resized = 0
        self.frames_encoded = 0
        self._output_size: tuple[int, int] | None = None
        if size is not None and int(size[0]) > 0 and int(size[1]) > 0:
            self._output_size = output_size_for(size, self.max_width)
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._error: str | None = None
        self._error_raised = False
        self._mux_failed = False  # the muxer could not write (a full disk): no flush at the end
        self._closed = False
        self._stop_sent = False
        self._container = None
        self._stream = None
        self._thread = threading.Thread(target=self._run, name=f"video-encoder:{self.path.name}", daemon=True)
        self._thread.start()
        _open_sinks.add(self)

    @property
    def output_size(self) -> tuple[int, int] | None:
        """The encoded (width, height): from ``size``, else from the first frame written; None before."""
        return self._output_size

    size = output_size  # the release-1 name

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, image: np.ndarray) -> None:
        """Queue one uint8 BGR (H×W×3) or grey (H×W) frame for encoding.

        The sink takes ownership of ``image``: it is not copied, so the caller
        must not change it afterwards. A frame of another size than
        ``output_size`` is resized by the encoder thread. A file sink blocks
        while the queue is full; a live sink drops the frame and counts it.
        Raises ``SinkError`` once closed or when the encoder has failed,
        ``ValueError`` for a frame that is not uint8 H×W×3 or H×W.
        """
        self._raise_if_failed()
        if self._closed:
            raise SinkError(f"video {self.path} is already closed")
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise ValueError(f"video frames are uint8 H×W×3 BGR or H×W grey, got {image.dtype} {image.shape}")
        if self._output_size is None:
            self._output_size = output_size_for((image.shape[1], image.shape[0]), self.max_width)
        if self.live:
            try:
                self._queue.put_nowait(image)
            except queue.Full:
                self.frames_dropped += 1
                return
        else:
            self._queue.put(image)
        self.frames_written += 1

    def close(self) -> None:
        """Encode what is queued, flush the encoder and write the MP4 index. Idempotent.

        Safe to call again after an interrupt (KeyboardInterrupt) cut a first call short: it
        finishes the job. Raises ``SinkError`` (once) if the encoder failed and that was not
        yet reported.
        """
        self._closed = True
        if not self._stop_sent:
            self._queue.put(_STOP)   # the encoder thread always drains, so this never waits for long
            self._stop_sent = True
        self._thread.join()
        _open_sinks.discard(self)
        self._raise_if_failed()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _raise_if_failed(self) -> None:
        if self._error is not None and not self._error_raised:
            self._error_raised = True
            raise SinkError(f"video {self.path}: {self._error}")

    # ----------------------------------------------------------------------- encoder thread

    def _run(self) -> None:
        try:
            thread_id = threading.get_native_id()
            niceness = min(19, os.getpriority(os.PRIO_PROCESS, thread_id) + ENCODER_NICENESS)
            os.setpriority(os.PRIO_PROCESS, thread_id, niceness)
        except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
            pass
        while True:
            image = self._queue.get()
            if image is _STOP:
                break
            if self._error is None:  # after a failure keep draining so no writer ever blocks
                try:
                    self._encode(image)
                except Exception as error:
                    self._fail(error)
        try:
            self._finish()
        except Exception as error:
            self._fail(error)

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = f"encoding failed: {_one_line(error)}"
            log.error("video %s: %s", self.path, self._error)

    def _encode(self, image: np.ndarray) -> None:
        """Encode one frame (runs on the encoder thread; tests override it to stall the encoder)."""
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        width, height = self._output_size
        if (image.shape[1], image.shape[0]) != (width, height):
            image = resize_for_video(image, (width, height))
            self.frames_resized += 1
        if self._stream is None:
            self._open()
        # OpenCV's I420 is BT.601 limited range, as FFmpeg's swscale default, at ~1/5 of its cost.
        planes = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2YUV_I420)
        frame = av.VideoFrame.from_numpy_buffer(planes, format="yuv420p")
        frame.pts = self.frames_encoded
        frame.time_base = self._stream.codec_context.time_base
        packets = self._stream.encode(frame)
        try:
            self._container.mux(packets)
        except Exception:
            self._mux_failed = True
            raise
        self.frames_encoded += 1

    def _open(self) -> None:
        try:
            self._open_with(self.encoder)
        except Exception as error:
            if not self._auto or self.encoder.codec == "libx264":
                raise
            # The probe opened the hardware encoder at a small size; this size did not.
            reason = f"{self.encoder.codec} did not open at {self._output_size[0]}x{self._output_size[1]}: " \
                     f"{_one_line(error)}"
            self.encoder = _software(self._crf, None, reason)
            log.info("video %s: H.264 by %s, %s", self.path, self.encoder.describe(), reason)
            self._open_with(self.encoder)

    def _open_with(self, choice: EncoderChoice) -> None:
        container = av.open(str(self.path), "w", format=_container_format(self.path),
                            options={"movflags": "+faststart"})
        try:
            stream = container.add_stream(choice.codec, rate=self.rate, options=dict(choice.options),
                                          **_hwaccel_kwargs(choice))
            stream.width, stream.height = self._output_size
            stream.pix_fmt = choice.pix_fmt
            stream.time_base = 1 / self.rate
            stream.codec_tag = "avc1"
            context = stream.codec_context
            context.time_base = 1 / self.rate
            # Say which matrix the pixels use (OpenCV's I420 is BT.601, limited range).
            context.colorspace = context.color_primaries = context.color_trc = 6  # SMPTE 170M
            context.color_range = 1                                               # MPEG (limited)
            context.open()
        except Exception:
            container.close()
            raise
        self._container, self._stream = container, stream

    def _finish(self) -> None:
        if self._container is None:
            return
        try:
            # After the muxer failed to write (a full disk), FFmpeg's flush crashes the process: only close.
            if not self._mux_failed and self._stream is not None and self._stream.codec_context.is_open:
                self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()
            self._container = None


def _container_format(path: Path) -> str:
    """MP4 unless the name says another ISO-BMFF flavour (``.mov``, ``.m4v``)."""
    suffix = path.suffix.lower()
    return {".mov": "mov", ".m4v": "mp4"}.get(suffix, "mp4")
