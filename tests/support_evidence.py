"""Scripted H.264 videos with a known GOP, and the oracles the evidence tests read clips with."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
from support_activities import FPS, SIZE, script_frames, scripted_frame

GOP = 25


def write_h264(path, script, *, fps: float = FPS, size=SIZE, gop: int = GOP) -> Path:
    """The script ``[(colour, seconds), ...]`` as H.264 (libx264, keyframe every ``gop`` frames, B-frames on)."""
    path = Path(path)
    width, height = size
    command = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
               "-r", f"{fps:g}", "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-g", str(gop),
               "-keyint_min", str(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p", str(path)]
    frames = b"".join(scripted_frame(colour, index, size).tobytes()
                      for index, colour in enumerate(script_frames(script, fps)))
    subprocess.run(command, input=frames, check=True)
    return path


def media_packets(path) -> list[tuple[float | None, float | None, bool, bytes]]:
    """Every video packet of ``path`` in decode order: (pts_s, dts_s, key, bytes), times as the engine's
    sources compute them ((ticks - start_time) * time_base)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin, base = stream.start_time or 0, stream.time_base
        return [(None if p.pts is None else float((p.pts - origin) * base),
                 None if p.dts is None else float((p.dts - origin) * base), bool(p.is_keyframe), bytes(p))
                for p in container.demux(stream) if p.size]


def decoded_frames(path) -> list[tuple[float, np.ndarray]]:
    """(time_s, BGR image) of every frame, time from the clip's own start."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin, base = stream.start_time or 0, stream.time_base
        return [(float((frame.pts - origin) * base), frame.to_ndarray(format="bgr24"))
                for frame in container.decode(stream)]


def mean_colour(image: np.ndarray) -> np.ndarray:
    return image.reshape(-1, 3).mean(axis=0)
