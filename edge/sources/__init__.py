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
- a camera index (``0``, ``"0"``) or device path (``/dev/video0``) → ``CaptureSource``
  (cv2.VideoCapture), reconnected the same way.

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

from edge.sources.base import (DEFAULT_FPS, HWACCELS, MAX_SANE_FPS, DecodeOptions, Gap,  # noqa: F401
                               ReconnectPolicy, Source, SourceError, sanitize_fps)
from edge.sources.camera import CaptureSource, camera_index
from edge.sources.pyav import PyAVSource
from edge.urls import URL_SCHEMES, is_url, mask_credentials  # noqa: F401  (re-exported)


class FileSource(PyAVSource):
    """A video file (or a URL read like one): every frame, in order, media time from pts."""

    def __init__(self, path, **options) -> None:
        super().__init__(path, live=False, **options)


class StreamSource(PyAVSource):
    """A live network stream (or a file read like one), reconnected with backoff."""

    def __init__(self, spec, **options) -> None:
        super().__init__(spec, live=True, **options)


def is_camera(spec) -> bool:
    """A camera index or a V4L2 device path."""
    return camera_index(spec) is not None or (isinstance(spec, str) and spec.startswith("/dev/video"))


def open_source(spec, *, live: bool | None = None, reconnect: ReconnectPolicy = ReconnectPolicy(),
                decode: DecodeOptions = DecodeOptions(), want_image: bool = True, **options) -> Source:
    """Open ``spec`` (path, camera index, device path or URL) as a ``Source``.

    ``live=None`` decides by the spec: cameras and URLs are live, paths are files.
    ``live=False`` reads a URL like a file (no reconnection); ``live=True`` reads a file
    like a stream. ``want_image=False`` asks PyAV sources for yuv420p ``planes`` only
    (cameras always deliver ``image``). ``options``: ``open_timeout_s``,
    ``read_timeout_s`` (URLs), ``capture_factory`` (cameras), ``sleep``, ``clock``.
    Raises ``SourceError`` with a one-line message.
    """
    if isinstance(spec, Path):
        spec = str(spec)
    if camera_index(spec) is None and not isinstance(spec, str):
        raise SourceError(f"bad source: {spec!r} (expected a path, a camera index or a URL)")
    if is_camera(spec):
        for key in ("open_timeout_s", "read_timeout_s"):
            options.pop(key, None)
        return CaptureSource(spec, reconnect=reconnect, **options)
    if live is None:
        live = is_url(spec)
    if live:
        return StreamSource(spec, reconnect=reconnect, decode=decode, want_image=want_image, **options)
    return FileSource(spec, reconnect=reconnect, decode=decode, want_image=want_image, **options)
