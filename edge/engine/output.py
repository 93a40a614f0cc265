"""A lane's frame output: frames wait for their label, get the overlay, and go to the annotated
video, the window and the live page's hub.

A batch run with video out holds each frame until its own clip is labelled (so the label
on a frame is the one of the clip it belongs to); otherwise a frame shows the latest
label. The picture is made at the output size: from the decoder's yuv420p planes when the
frame has them and the output is smaller (resize the planes, convert at the output size),
else from the BGR image. The camera's privacy masks are filled black in it before the overlay
is drawn, so every picture that leaves the lane (video, window, live page) is masked. With
nobody watching and no video or window, a picture is drawn once a second for the page's snapshot.

A camera whose ``privacy.pictures`` is false gets no video, window or hub (``edge.engine.build``);
its frame output is then inactive and draws nothing.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from edge.metrics import Metrics
from edge.overlay import OverlayState, draw_overlay
from edge.privacy import Masks
from edge.records import Frame
from edge.sinks import SinkError
from edge.sinks.video import resize_for_video, video_image_from_planes

log = logging.getLogger(__name__)

SNAPSHOT_EVERY_S = 1.0  # with nobody watching, the live page's snapshot is refreshed this often


class FrameOutput:
    """Overlay and frame sinks of one lane (lane thread only).

    ``overlay_state()`` gives what to draw; ``labelled_up_to()`` the newest labelled frame index;
    ``on_quit()`` is called when the window is closed; ``masks`` are filled black in every picture.
    """

    def __init__(self, *, video=None, window=None, hub=None, hold_for_own_label: bool, metrics: Metrics,
                 overlay_state: Callable[[], OverlayState], labelled_up_to: Callable[[], int],
                 on_quit: Callable[[], None], masks: Masks | None = None) -> None:
        self.video, self.window, self.hub = video, window, hub
        self._masks = masks if masks else None
        self._hold = hold_for_own_label and video is not None
        self._metrics = metrics
        self._overlay_state = overlay_state
        self._labelled_up_to = labelled_up_to
        self._on_quit = on_quit
        self._waiting: deque[Frame] = deque()
        self._hub_refresh_at = 0.0
        self.video_failed = False

    @property
    def active(self) -> bool:
        return self.video is not None or self.window is not None or self.hub is not None

    def add(self, frame: Frame) -> None:
        """A frame read from the source: drawn now, or when its label is known."""
        if self._wanted():
            self._waiting.append(frame)
            self.flush(final=False)

    def flush(self, final: bool) -> None:
        """Draw and write the frames whose label is known (``final``: all of them)."""
        while self._waiting:
            frame = self._waiting[0]
            if self._hold and not final and frame.index > self._labelled_up_to():
                return
            self._waiting.popleft()
            t0 = time.perf_counter_ns()
            self._show(frame)
            self._metrics.record("overlay_write", (time.perf_counter_ns() - t0) / 1e6)

    def frames_written(self) -> int:
        return int(self.video.frames_written) if self.video is not None else 0

    def close(self) -> list[str]:
        """Finalise the video and close the window; the problems, one line each."""
        problems = []
        for sink in (self.video, self.window):
            if sink is None:
                continue
            try:
                sink.close()
            except Exception as error:  # finalising one sink must not lose the other
                problems.append(f"closing {type(sink).__name__} failed: {error}")
        return problems

    def _wanted(self) -> bool:
        """Pictures for the video, the window, live-page viewers, and once a second for snapshots."""
        if (self.video is not None and not self.video_failed) or self.window is not None:
            return True
        return self.hub is not None and (self.hub.viewers > 0 or time.monotonic() >= self._hub_refresh_at)

    def _show(self, frame: Frame) -> None:
        target = self.video.output_size if self.video is not None else None
        image = _picture(frame, tuple(target) if target else None)
        if image is None:
            return
        if self._masks is not None:
            self._masks.apply(image)  # before the overlay: the labels stay readable over a mask
        draw_overlay(image, self._overlay_state())
        if self.video is not None and not self.video_failed:
            try:
                self.video.write(image)
                self._metrics.count_output()
            except SinkError:  # e.g. a full disk: the sink logged it once; the camera's other outputs go on
                self.video_failed = True
        if self.window is not None:
            self.window.show(image)
            if self.window.should_quit:
                self._on_quit()
        if self.hub is not None:
            self.hub.publish(image)
            self._hub_refresh_at = time.monotonic() + SNAPSHOT_EVERY_S


def _picture(frame: Frame, size: tuple[int, int] | None) -> np.ndarray | None:
    """A BGR picture of ``frame`` at ``size`` (None: its own size) that the overlay may draw on."""
    if frame.planes is not None:
        y = frame.planes[0]
        own = (y.shape[1], y.shape[0])
        target = size or (own[0] & ~1, own[1] & ~1)  # yuv420p pictures have even sizes
        if frame.image is None or target != own:
            return video_image_from_planes(*frame.planes, target)
    if frame.image is None:
        return None
    return resize_for_video(frame.image, size) if size else frame.image


__all__ = ["FrameOutput", "SNAPSHOT_EVERY_S"]
