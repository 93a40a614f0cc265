"""The WebVTT of a clip: the predictions (and open activities) inside its span, timed from its first frame.

The cues are formatted by the one cue writer, ``edge.sinks.subtitles.SubtitleSink``: the events are
fed to it with their times moved onto the clip's clock (seconds after the clip's first frame), so a
clip's track reads exactly like the camera's own subtitles. Written under a temporary name and renamed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path

from edge.activities import observation_time
from edge.events import ActivityEvent, Event, PredictionEvent
from edge.sinks.subtitles import SubtitleSink


def prediction_span(event: PredictionEvent, time_base: str) -> tuple[float, float]:
    """(first frame, newest frame) of a prediction's clip on ``time_base`` (``media`` or ``wall`` seconds)."""
    end = observation_time(event, time_base)
    return end - (float(event.end_time_s) - float(event.start_time_s)), end


def write_vtt(path, events: Iterable[Event], start_s: float, end_s: float, *, time_base: str = "media") -> Path:
    """Write ``path``: cues of the ``PredictionEvent`` s whose clip overlaps [``start_s``, ``end_s``] (the
    clip's span on ``time_base``), at times relative to ``start_s``. ``ActivityEvent`` s among ``events``
    (in the order they happened) add the open activities to the cues. Returns the path."""
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.part{path.suffix}")
    sink = SubtitleSink(temporary)
    try:
        for event in events:
            if event.kind == "prediction":
                first, last = prediction_span(event, time_base)
                if last < start_s or first > end_s:
                    continue
                sink.handle(dataclasses.replace(event, start_time_s=first - start_s, end_time_s=last - start_s))
            elif event.kind == "activity" and isinstance(event, ActivityEvent):
                moved = event
                if (event.time_base or "media") == time_base == "media":
                    moved = dataclasses.replace(
                        event, start_time_s=float(event.start_time_s) - start_s,
                        end_time_s=None if event.end_time_s is None else float(event.end_time_s) - start_s)
                sink.handle(moved)
        sink.close()
        os.replace(temporary, path)
    except BaseException:
        sink.close()
        temporary.unlink(missing_ok=True)
        raise
    return path


__all__ = ["prediction_span", "write_vtt"]
