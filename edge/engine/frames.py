"""The latest annotated frame of a camera, for viewers (snapshot, MJPEG) that must never slow it down."""

from __future__ import annotations

import threading

import numpy as np


class FrameHub:
    """Holds one camera's newest annotated frame. ``publish`` never blocks on a viewer.

    A viewer that is slower than the camera simply skips frames: it asks for the
    newest frame after the sequence number it last saw. ``viewers`` counts the
    viewers currently attached, so the lane draws frames only while someone watches.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0
        self._image: np.ndarray | None = None
        self._viewers = 0

    @property
    def viewers(self) -> int:
        return self._viewers

    def attach(self) -> None:
        with self._cond:
            self._viewers += 1

    def detach(self) -> None:
        with self._cond:
            self._viewers = max(0, self._viewers - 1)

    def publish(self, image: np.ndarray) -> int:
        """Make ``image`` (BGR uint8, not modified afterwards) the newest frame; returns its sequence number."""
        with self._cond:
            self._seq += 1
            self._image = image
            self._cond.notify_all()
            return self._seq

    def latest(self) -> tuple[int, np.ndarray] | None:
        with self._cond:
            return None if self._image is None else (self._seq, self._image)

    def wait_newer(self, seq: int, timeout: float | None = None) -> tuple[int, np.ndarray] | None:
        """The newest frame with a sequence number above ``seq``, waiting up to ``timeout`` s; None on timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > seq and self._image is not None, timeout):
                return None
            return self._seq, self._image
