"""The labels as a WebVTT subtitle track: what a player shows over the original video at no encoding cost.

One cue per prediction, top left (``line:0 position:0% align:start``)::

    washing hands 0.87          ← label and score; "still" for a gated clip
    custom:gloves_on 0.91       ← a learned head's best class (edge-har learn), when the model has one
    handwash 12 s               ← the open activities, once activity events have been seen
    (untrained demo model)      ← when the model is the untrained demo

Cue times are media time, taken from the prediction events. A clip's label
shows from its first frame (``start_time_s``) until the next clip's first
frame, or until one frame after its own last frame (``end_time_s``) if the
next clip starts later (a gap, or the end). So cues tile the timeline and never
overlap: in batch mode each cue is its clip's span; in rolling mode, where
clips overlap, each cue covers the ``stride`` frames its clip starts with.

A cue is written once the next prediction (or a gap, or ``close``) fixes its
end, with one ``write`` and a flush: a killed process leaves a valid file up to
the last cue written.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from edge.events import ActivityEvent, Event, PredictionEvent
from edge.overlay import UNTRAINED_TAG
from edge.sinks import SinkError, check_writable

CUE_SETTINGS = "line:0 position:0% align:start"
STILL = "still"
NO_ACTIVITY = "no activity"
DEFAULT_FRAME_S = 0.04  # one frame at 25 fps, when a record cannot tell its own


def format_timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm`` (hours grow past two digits when needed), rounded to the millisecond."""
    total_ms = max(0, round(seconds * 1000.0))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _escape(text: str) -> str:
    # Cue text is HTML-like: & and < start markup; escaping > also rules out a stray "-->".
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _frame_s(event: PredictionEvent) -> float:
    """One source frame's duration, from the clip's own frame and time span."""
    frames = event.end_frame - event.start_frame
    span = event.end_time_s - event.start_time_s
    return span / frames if frames > 0 and span > 0 else DEFAULT_FRAME_S


@dataclass
class _Cue:
    clip_index: int
    start_s: float
    last_frame_end_s: float    # end_time_s + one frame: where the cue ends if nothing follows
    end_time_s: float          # the clip's last frame (activity durations are measured to here)
    label_line: str
    untrained: bool
    activities: dict = field(default_factory=dict)   # id → ActivityEvent, open while this clip was judged


class SubtitleSink:
    """Writes the prediction events of one camera to a WebVTT file (``Sink`` protocol).

    ``camera``: handle only this camera's events (None: every event; one
    camera per file keeps cue times increasing). Handles ``prediction``,
    ``activity`` and ``gap`` events; ignores the rest. The file is created
    (truncated) here: ``SinkError`` if it cannot be written.
    """

    def __init__(self, path, *, camera: str | None = None) -> None:
        self.path = check_writable(path)
        self.camera = camera
        self.cues_written = 0
        self._lock = threading.Lock()
        self._pending: _Cue | None = None
        self._open_activities: dict = {}   # id → latest start/update ActivityEvent
        self._seen_activity = False
        self._last_end_s = 0.0
        try:
            self._file = open(self.path, "w", encoding="utf-8", newline="\n")
            self._file.write("WEBVTT\n\n")
            self._file.flush()
        except OSError as error:
            raise SinkError(f"cannot write subtitles {self.path}: {error.strerror or error}") from None

    def handle(self, event: Event) -> None:
        if self.camera is not None and event.camera != self.camera:
            return
        with self._lock:
            if self._file is None:
                return
            if event.kind == "prediction":
                self._on_prediction(event)
            elif event.kind == "activity":
                self._on_activity(event)
            elif event.kind == "gap":
                self._flush(None)

    def close(self) -> None:
        """Write the last cue and close the file. Idempotent."""
        with self._lock:
            if self._file is None:
                return
            try:
                self._flush(None)
            finally:
                self._file.close()
                self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------------- internals

    def _on_prediction(self, event: PredictionEvent) -> None:
        start = float(event.start_time_s)
        self._flush(start)
        if event.gated or event.label is None:
            label_line = STILL
        else:
            label_line = f"{event.label} {float(event.score):.2f}"
            if event.custom_top_k:  # a learned head's best class, as the overlay draws it
                name, score = event.custom_top_k[0]
                label_line += f"\ncustom:{name} {float(score):.2f}"
        end = float(event.end_time_s)
        self._pending = _Cue(clip_index=int(event.clip_index), start_s=max(start, self._last_end_s),
                             last_frame_end_s=end + _frame_s(event), end_time_s=end, label_line=label_line,
                             untrained=bool(event.untrained), activities=dict(self._open_activities))

    def _on_activity(self, record: ActivityEvent) -> None:
        self._seen_activity = True
        key = record.id
        if record.type == "end":
            self._open_activities.pop(key, None)
            # The clip being judged when the segment ended still showed it: keep it on the pending cue,
            # with its final numbers.
            if self._pending is not None and key in self._pending.activities:
                self._pending.activities[key] = record
            return
        self._open_activities[key] = record
        if self._pending is not None:
            self._pending.activities[key] = record

    def _activity_text(self, cue: _Cue) -> str | None:
        if not self._seen_activity:
            return None
        parts = []
        for record in cue.activities.values():
            if (record.time_base or "media") == "media" and record.start_time_s is not None:
                duration = max(0.0, cue.end_time_s - float(record.start_time_s))
                if record.end_time_s is not None:
                    duration = min(duration, float(record.end_time_s) - float(record.start_time_s))
            else:  # wall-clock segments: the tracker's own latest figure
                duration = float(record.duration_s or 0.0)
            parts.append(f"{record.activity} {duration:.0f} s")
        return ", ".join(parts) if parts else NO_ACTIVITY

    def _flush(self, next_start_s: float | None) -> None:
        """Write the pending cue, ending at ``next_start_s`` if the next clip starts before its last frame ends."""
        cue, self._pending = self._pending, None
        if cue is None:
            return
        end = cue.last_frame_end_s if next_start_s is None else min(cue.last_frame_end_s, next_start_s)
        if round(end * 1000.0) <= round(cue.start_s * 1000.0):  # nothing left at millisecond resolution
            return
        start_text, end_text = format_timestamp(cue.start_s), format_timestamp(end)
        lines = [cue.label_line]
        activity = self._activity_text(cue)
        if activity:
            lines.append(activity)
        if cue.untrained:
            lines.append(f"({UNTRAINED_TAG})")
        text = "\n".join(_escape(line) for line in lines)
        self._file.write(f"{cue.clip_index}\n{start_text} --> {end_text} {CUE_SETTINGS}\n{text}\n\n")
        self._file.flush()
        self._last_end_s = end
        self.cues_written += 1
