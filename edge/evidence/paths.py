"""Where a camera's evidence lives: the one place ``{home}`` and the defaults are resolved."""

from __future__ import annotations

from pathlib import Path

from edge.models.paths import edge_home


def _expand(path: str, camera: str) -> Path:
    return Path(str(path).replace("{home}", str(edge_home())).replace("{camera}", camera)).expanduser()


def clips_dir(camera) -> Path:
    """``evidence.dir`` of ``camera`` (a ``CameraConfig``); default ``{home}/clips/{camera}``."""
    return _expand(camera.evidence.dir or "{home}/clips/{camera}", camera.name)


def recordings_dir(camera) -> Path:
    """``record.dir`` of ``camera``; default ``{home}/recordings/{camera}``."""
    return _expand(camera.record.dir or "{home}/recordings/{camera}", camera.name)


__all__ = ["clips_dir", "recordings_dir"]
