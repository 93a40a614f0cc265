"""The snapshot of a clip: a JPEG of the frame where the judged activity scored highest, overlay drawn.

The frame is decoded from the cut clip itself (so it shows what the clip shows, masks included); masks
are applied again before the overlay (they are idempotent), then ``edge.overlay`` draws the prediction's
label, the activity's running time and, for a failed check, the alert line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from edge.overlay import draw_overlay, overlay_state

JPEG_QUALITY = 90


class SnapshotError(Exception):
    """No frame could be decoded from the clip, or the JPEG could not be written."""


@dataclass(frozen=True)
class Shown:
    """The label drawn on a snapshot (what ``overlay_state`` reads of a prediction)."""

    label: str
    score: float
    uncertain: bool = False
    custom_top_k: tuple[tuple[str, float], ...] = ()  # a learned head's classes (edge-har learn)


def frame_at(clip_path, time_s: float) -> np.ndarray:
    """The BGR uint8 frame of ``clip_path`` shown at ``time_s`` seconds after its first frame (the last
    frame at or before it; the first frame if ``time_s`` is before it). Raises ``SnapshotError``."""
    best = None
    try:
        with av.open(str(clip_path)) as container:
            stream = container.streams.video[0]
            origin, base = stream.start_time or 0, stream.time_base
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                if best is not None and float((frame.pts - origin) * base) > time_s + 1e-6:
                    break
                best = frame
            if best is None:
                raise SnapshotError(f"no frame in {clip_path}")
            return np.ascontiguousarray(best.to_ndarray(format="bgr24"))
    except (av.error.FFmpegError, OSError) as error:
        raise SnapshotError(f"cannot read {clip_path}: {error}") from None


def write_snapshot(path, clip_path, time_s: float, *, shown: Shown | None = None,
                   activity: tuple[str, float] | None = None, alert: str | None = None, masks=None,
                   untrained: bool = False) -> Path:
    """Write ``path`` (JPEG): the clip's frame at ``time_s`` (seconds after its first frame), ``masks`` (a
    ``edge.privacy.Masks``) applied, then the overlay: ``shown`` label, ``activity`` (name,
    seconds it had run), ``alert``. Raises ``SnapshotError``."""
    image = frame_at(clip_path, time_s)
    if masks:
        image = masks.apply(np.ascontiguousarray(image))
    draw_overlay(image, overlay_state(shown, untrained=untrained, activity=activity, alert=alert))
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise SnapshotError(f"cannot encode the snapshot {path}")
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.part{path.suffix}")
    try:
        temporary.write_bytes(data.tobytes())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise SnapshotError(f"cannot write {path}: {error.strerror or error}") from None
    return path


__all__ = ["Shown", "SnapshotError", "frame_at", "write_snapshot"]
