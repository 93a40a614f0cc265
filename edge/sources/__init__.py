"""Frame sources: video files, network streams (PyAV) and cameras (OpenCV).

A source is a blocking iterator, run in its caller's thread, of ``Frame`` and ``Gap``
items in order, and a context manager. ``open_source`` picks the kind from the spec:

- a file path → ``FileSource`` (PyAV): loses no frame; media time from the container's
  pts, else index / fps. A decode failure before the reported end is a warning
  ("stopped decoding at frame N of M") that ends the iteration without an exception.
- an ``rtsp://``/``http(s)://``/… URL → ``StreamSource`` (PyAV): RTSP over TCP, open and
  read timeouts; a dropped, stalled or restarted stream is reopened with exponential
  backoff (``ReconnectPolicy``) and a ``Gap`` is yielded once it is back; frame indices
  keep counting. Out of attempts, a last ``Gap(gave_up=True)`` ends the iteration and
  ``error`` says why.
- a camera index (``0``, ``"0"``) or device path (``/dev/video0``, ``/dev/v4l/...``) →
  ``CaptureSource`` (cv2.VideoCapture), reconnected the same way.

Which of the three a spec is follows one rule, ``edge.urls.source_kind`` (the config's
``CameraConfig.kind`` is the same rule).

Frames carry BGR ``image`` (``want_image=True``) or only yuv420p ``planes``
(``want_image=False``, PyAV sources: no colour conversion). Damaged packets are counted in
``corrupt_packets``, never fatal; a stream that gives packets but no picture for the read
timeout is dropped with the decoder's own words ("no picture decoded from 117 packets in
10 s: Picture size 0x0 is invalid") in ``state_reason`` and the log.

Health for a watchdog: ``state``, ``state_reason``, ``last_frame_monotonic``;
``restart(reason)`` (thread-safe) reconnects, ``request_stop()`` (signal-safe) ends.
Opening problems raise ``SourceError`` with a one-line message. Credentials in URLs
never leave this package unmasked: ``name`` is ``mask_credentials(spec)``.
"""

from __future__ import annotations

from pathlib import Path

from edge.sources.base import (DEFAULT_FPS, MAX_SANE_FPS, DecodeOptions, Gap,  # noqa: F401
                               ReconnectPolicy, Source, SourceError, sanitize_fps)
from edge.sources.camera import CaptureSource, camera_index
from edge.sources.pyav import PyAVSource
from edge.urls import URL_SCHEMES, is_url, mask_credentials, source_kind  # noqa: F401  (re-exported)


class FileSource(PyAVSource):
    """A video file (or a URL read like one): every frame, in order, media time from pts."""

    def __init__(self, path, **options) -> None:
        super().__init__(path, live=False, **options)


class StreamSource(PyAVSource):
    """A live network stream (or a file read like one), reconnected with backoff."""

    def __init__(self, spec, **options) -> None:
        super().__init__(spec, live=True, **options)


def open_source(spec, *, live: bool | None = None, reconnect: ReconnectPolicy = ReconnectPolicy(),
                decode: DecodeOptions = DecodeOptions(), want_image: bool = True, **options) -> Source:
    """Open ``spec`` (path, camera index, device path or URL) as a ``Source``.

    ``live=None`` decides by the spec's kind (``source_kind``): devices and streams are
    live, files are not. ``live=False`` reads a URL or a device like a file (no
    reconnection, media time from frame numbers); ``live=True`` reads a file like a
    stream. ``want_image=False`` asks PyAV sources for yuv420p ``planes`` only (cameras
    always deliver ``image``). ``options``: ``open_timeout_s``, ``read_timeout_s``
    (URLs), ``capture_factory`` (cameras), ``sleep``, ``clock``. Raises ``SourceError``
    with a one-line message.
    """
    if isinstance(spec, Path):
        spec = str(spec)
    if camera_index(spec) is None and not isinstance(spec, str):
        raise SourceError(f"bad source: {spec!r} (expected a path, a camera index or a URL)")
    kind = source_kind(spec)
    return _open(spec, kind, kind != "file" if live is None else live, reconnect=reconnect, decode=decode,
                 want_image=want_image, **options)


def open_camera(camera, *, want_image: bool = True, give_up: bool = True, **options) -> Source:
    """Open a configured camera (``edge.config.CameraConfig``) as the config resolved it: its
    ``kind`` and ``live``, its reconnection, timeouts and decoder options; a null source is the
    bundled sample clip. ``give_up``: out of reconnection attempts, end (``run``) or keep trying
    (``serve``). ``options`` as for ``open_source`` (``capture_factory``, ``health``, ``sleep``, ...)."""
    from edge.config import sample_clip_path

    reconnect = camera.reconnect
    options.setdefault("open_timeout_s", reconnect.open_timeout_s)
    options.setdefault("read_timeout_s", reconnect.read_timeout_s)
    # open_source resolves the kind by the same rule as the config (source_kind): one rule, asked twice
    return open_source(camera.source if camera.source is not None else str(sample_clip_path()), live=camera.live,
                       reconnect=ReconnectPolicy(reconnect.attempts, reconnect.delay_s, reconnect.max_delay_s, give_up),
                       decode=DecodeOptions(camera.decode.hwaccel, camera.decode.threads), want_image=want_image,
                       **options)


def _open(spec, kind: str, live: bool, *, reconnect: ReconnectPolicy, decode: DecodeOptions, want_image: bool,
          **options) -> Source:
    if kind == "device":
        for key in ("open_timeout_s", "read_timeout_s"):
            options.pop(key, None)
        return CaptureSource(spec, live=live, reconnect=reconnect, **options)
    if live:
        return StreamSource(spec, reconnect=reconnect, decode=decode, want_image=want_image, **options)
    return FileSource(spec, reconnect=reconnect, decode=decode, want_image=want_image, **options)
