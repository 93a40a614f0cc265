"""The annotated video file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.sinks import SinkError
from edge.sources import DEFAULT_FPS, sanitize_fps


class VideoSink:
    """Writes annotated frames to a video file (cv2.VideoWriter, mp4v by default).

    ``size`` is (width, height), or None / (0, 0) to take the first frame's;
    a frame of another size is resized to it so the file stays valid through
    a mid-stream resolution change. ``close()``
    finalises the container (call it on every exit path; it is idempotent).
    Raises ``SinkError`` when the writer cannot be opened.
    """

    def __init__(self, path, fps: float, size: tuple[int, int] | None, codec: str = "mp4v") -> None:
        self.path = Path(path)
        self.fps, self.codec = sanitize_fps(fps) or DEFAULT_FPS, codec
        self.frames_written = 0
        self.frames_resized = 0
        self.size: tuple[int, int] | None = None
        self._writer = None
        self._closed = False
        # A live source may not know its size before the first frame: then open on first write.
        if size is not None and int(size[0]) > 0 and int(size[1]) > 0:
            self._open((int(size[0]), int(size[1])))

    def _open(self, size: tuple[int, int]) -> None:
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.codec), self.fps, size)
        if not writer.isOpened():
            writer.release()
            raise SinkError(f"cannot write video {self.path} (codec {self.codec!r}, "
                            f"{size[0]}x{size[1]} @ {self.fps:g} fps)")
        self._writer, self.size = writer, size

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, image: np.ndarray) -> None:
        """Append one BGR uint8 frame (grey is converted, other sizes resized)."""
        if self._closed:
            raise SinkError(f"video {self.path} is already closed")
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if self._writer is None:
            self._open((image.shape[1], image.shape[0]))
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
            self.frames_resized += 1
        self._writer.write(image)
        self.frames_written += 1

    def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


