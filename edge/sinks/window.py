"""A local window showing the annotated frames."""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

from edge.sinks import SinkError


def _display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class WindowSink:
    """Shows frames in a window (cv2.imshow); any key press or closing the window sets ``should_quit``.

    Raises ``SinkError`` when OpenCV has no GUI (the headless wheel) or there
    is no display.
    """

    def __init__(self, title: str = "edge-har") -> None:
        self.title = title
        self.should_quit = False
        hint = "set output.display: false, or install opencv-python (not -headless) and run with a display"
        # Check the display before touching the GUI: some backends abort the process without one.
        if not _display_available():
            raise SinkError(f"cannot open a window: no display (DISPLAY is not set); {hint}")
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise SinkError(f"cannot open a window: this OpenCV has no GUI support "
                            f"(opencv-python-headless); {hint}") from None

    def show(self, image: np.ndarray) -> None:
        cv2.imshow(self.title, image)
        if cv2.waitKey(1) != -1:
            self.should_quit = True
        elif cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.should_quit = True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


