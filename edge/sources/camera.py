"""Cameras (``/dev/video*``, integer indices) through OpenCV's ``cv2.VideoCapture``.

The capture is injectable (``capture_factory(spec)`` returning an object with
``isOpened/read/get/release``), so the reconnection logic is tested without a camera.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

import cv2
import numpy as np

from edge.sources.base import OpenFailed, Picture, ReconnectPolicy, Source, SourceError, log
from edge.health import Health
from edge.urls import mask_credentials


def camera_index(spec) -> int | None:
    """``0`` or ``"0"`` → 0; anything else → None."""
    if isinstance(spec, bool):
        return None
    if isinstance(spec, int):
        return spec
    if isinstance(spec, str) and spec.strip().isdigit():
        return int(spec.strip())
    return None


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Captures occasionally hand back grey or BGRA frames; stages expect BGR uint8 H×W×3."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image)
    return np.ascontiguousarray(image)


class CaptureConnection:
    """One opened ``cv2.VideoCapture`` (or look-alike)."""

    frame_count = None

    def __init__(self, capture) -> None:
        self._capture = capture
        self.corrupt_packets = 0
        self.end_reason: str | None = None
        self.reported_fps = capture.get(cv2.CAP_PROP_FPS)
        self.size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0))

    def pictures(self, interrupted: Callable[[], bool]) -> Iterator[Picture]:
        while not interrupted():
            try:
                ok, image = self._capture.read()
            except cv2.error as error:
                log.debug("capture read raised %s", error)
                ok, image = False, None
            if not ok or image is None or image.size == 0:
                self.end_reason = "camera read failed"
                return
            yield Picture(as_bgr(image), None, None)

    def close(self) -> None:
        self._capture.release()


class CaptureSource(Source):
    """A source over a cv2 capture: cameras, live by default (reconnected with backoff).

    Always delivers BGR ``image`` (no planes). Live: media time is seconds since the first
    frame; ``live=False`` (``reconnect.live: false``): read like a file, no reconnection.
    """

    def __init__(self, spec, *, live: bool = True, reconnect: ReconnectPolicy = ReconnectPolicy(),
                 capture_factory: Callable | None = None, sleep: Callable[[float], object] | None = None,
                 clock: Callable[[], float] = time.monotonic, health: Health | None = None) -> None:
        index = camera_index(spec)
        name = f"camera {index}" if index is not None else mask_credentials(str(spec))
        super().__init__(name, live=live, reconnect=reconnect, sleep=sleep, clock=clock, health=health)
        self._spec = index if index is not None else str(spec)
        self._factory = capture_factory or cv2.VideoCapture
        self._open_first()

    def _connect(self) -> CaptureConnection:
        try:
            capture = self._factory(self._spec)
        except (cv2.error, OSError) as error:
            raise OpenFailed(f"open raised {type(error).__name__}") from None
        if capture is None or not capture.isOpened():
            if capture is not None:
                capture.release()
            raise OpenFailed("cannot open the device")
        return CaptureConnection(capture)

    def _first_open_error(self, reason: str) -> SourceError:
        return SourceError(f"cannot open camera {self.name.removeprefix('camera ')}")
