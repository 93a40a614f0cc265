"""The main job: ``run(config)`` runs the configured cameras on one model and returns their summaries.

``mode="run"`` (``edge-har run``) ends when every source has ended (a live
camera runs until a signal); ``mode="serve"`` (``edge-har serve``) runs until
SIGINT/SIGTERM. Both are the same engine (``edge.engine.service.Service``):
each camera is a lane, one compiled model serves them all.
"""

from __future__ import annotations

from edge.config import sample_clip_path
from edge.engine.service import RunResult, Service
from edge.engine.signals import StopFlag


def run(config, *, mode: str = "run", keep_predictions: bool = False, stop: StopFlag | None = None) -> RunResult:
    """Run every camera of ``config`` (an ``edge.config.ServiceConfig``) until the end.

    Raises ``ConfigError``, ``ModelError``, ``SourceError`` or ``SinkError`` (one-line
    messages) for bad input found before any work; problems found later are logged
    and recorded in the summaries' ``warnings``, and what was produced is kept.
    ``stop``: a ``StopFlag`` to stop the run from another thread (default: one that
    SIGINT/SIGTERM set).
    """
    own = stop is None
    stop = stop or StopFlag()
    if own:
        stop.install()
    try:
        return Service(config, mode=mode, stop=stop, keep_predictions=keep_predictions).run()
    finally:
        if own:
            stop.restore()


__all__ = ["RunResult", "StopFlag", "run", "sample_clip_path"]
