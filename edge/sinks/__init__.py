"""Where results go. Every side system is a sink of the same event stream.

A lane reports each prediction, stream gap, state change, activity and check as
a typed event (``edge.events``); the JSONL writer, the subtitles, MQTT, the HTTP
page and the Prometheus metrics all ``handle`` the same events, and those that
need JSON take the event's one ``to_json_dict()``. A sink never stalls a lane: what must arrive is
spooled, what may be dropped (viewers) is dropped and counted.

Modules: ``jsonl`` (events.jsonl), ``video`` (the annotated H.264 video),
``subtitles`` (WebVTT), ``window`` (a local window), ``summary`` (summary.json
and the human summary), ``mqtt`` + ``spool`` (MQTT, nothing lost while the
broker is away), ``prometheus`` (metrics).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from edge.events import Event

EVENT_KINDS = ("prediction", "gap", "activity", "check", "clip", "status")


@runtime_checkable
class Sink(Protocol):
    """Receives every event (``edge.events``) of the cameras it is subscribed to; ``handle`` must return
    quickly and ignore kinds it does not know."""

    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


class SinkError(Exception):
    """An output cannot be written; ``str(error)`` is one line for the user."""


def check_writable(path, *, input_path=None) -> Path:
    """Fail early, before any work, if ``path`` cannot be written.

    Creates a missing parent directory. Raises ``SinkError`` when the output
    is the input file, is a directory, its directory cannot be created, or a
    file cannot be created there. Returns the path as a ``Path``.
    """
    path = Path(path)
    if input_path is not None and not str(input_path).isdigit() and "://" not in str(input_path):
        same = os.path.abspath(path) == os.path.abspath(input_path)
        if not same and path.exists() and Path(input_path).exists():
            same = os.path.samefile(path, input_path)
        if same:
            raise SinkError(f"output {path} is the input video; choose another output path")
    if path.is_dir():
        raise SinkError(f"output {path} is a directory; give a file path")
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SinkError(f"cannot create output directory {parent}: {error.strerror or error}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise SinkError(f"cannot write {path}: permission denied")
    try:
        # Probe by creating a scratch file: os.access lies for root and read-only mounts.
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".edge-har-probe-"):
            pass
    except OSError as error:
        raise SinkError(f"cannot write to {parent}: {error.strerror or error}") from None
    return path




from edge.sinks.jsonl import EventWriter  # noqa: E402  (re-exported)
from edge.sinks.subtitles import SubtitleSink  # noqa: E402
from edge.sinks.summary import format_summary, write_summary  # noqa: E402
from edge.sinks.video import VideoSink  # noqa: E402
from edge.sinks.window import WindowSink  # noqa: E402

__all__ = ["EVENT_KINDS", "Event", "EventWriter", "Sink", "SinkError", "SubtitleSink", "VideoSink", "WindowSink",
           "check_writable", "format_summary", "write_summary"]
