"""The clips on disk as /api/clips lists them: the ``{id}.json`` sidecars under each camera's evidence.dir.

A sidecar (``{evidence.dir}/{YYYY-MM-DD}/{id}.json``, see ``edge.evidence``) holds ``id``, ``camera``,
``rule``, ``activity``, ``passed``, ``start_s``, ``end_s``, ``wall_time`` and ``clip``, ``snapshot``,
``vtt`` as paths relative to evidence.dir; an item of ``list`` has those fields with the three paths
turned into URLs (``/clips/{camera}/{relative}``, or None). ``resolve`` maps such a URL's path back to
the file, never to anything outside the camera's folder.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote

log = logging.getLogger(__name__)

ITEM_KEYS = ("id", "camera", "rule", "activity", "passed", "start_s", "end_s", "wall_time")
FILES = {"clip": "clip_url", "snapshot": "snapshot_url", "vtt": "vtt_url"}
SERVED_SUFFIXES = {".mp4", ".jpg", ".vtt"}


class ClipStore:
    """The clips of the cameras in ``dirs`` (camera name → its evidence.dir). Reads the disk on each call,
    so clips written (or deleted by retention) meanwhile are seen; any thread."""

    def __init__(self, dirs: dict[str, Path]) -> None:
        self.dirs = {name: Path(folder) for name, folder in dirs.items()}

    def list(self, camera: str | None = None, rule: str | None = None, passed: bool | None = None,
             since: float | None = None, limit: int = 100) -> list[dict]:
        """The newest ``limit`` items (newest first) matching every filter given: ``camera``, ``rule``,
        ``passed`` and ``since`` (Unix seconds: clips whose ``wall_time`` is at or after it)."""
        items = []
        for name, folder in self.dirs.items():
            if camera is not None and name != camera:
                continue
            for sidecar in folder.glob("*/*.json"):
                item = _item(sidecar, name)
                if item is None or (rule is not None and item["rule"] != rule):
                    continue
                if passed is not None and item["passed"] is not passed:
                    continue
                if since is not None and not (_unix(item["wall_time"]) >= since):
                    continue
                items.append(item)
        items.sort(key=lambda item: (_unix(item["wall_time"]), str(item["id"])), reverse=True)
        return items[:max(0, int(limit))]

    def resolve(self, camera: str, relative: str) -> Path | None:
        """The file of ``/clips/{camera}/{relative}``: an existing .mp4, .jpg or .vtt inside the camera's
        folder, else None (an unknown camera, ``..``, an absolute path, a symlink out, another kind of file)."""
        folder = self.dirs.get(camera)
        if folder is None or not relative or "\\" in relative or "\x00" in relative:
            return None
        parts = PurePosixPath(relative).parts
        if PurePosixPath(relative).is_absolute() or any(part in ("..", ".") for part in parts):
            return None
        if PurePosixPath(relative).suffix.lower() not in SERVED_SUFFIXES:
            return None
        try:
            root = folder.resolve()
            path = (root / Path(*parts)).resolve()
        except (OSError, RuntimeError):
            return None
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path


def _item(sidecar: Path, camera: str) -> dict | None:
    """The /api/clips item of one sidecar; None when it cannot be read (e.g. half written, or deleted)."""
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.debug("%s: skipped: %s", sidecar, error)
        return None
    if not isinstance(record, dict):
        return None
    item = {key: record.get(key) for key in ITEM_KEYS}
    item["camera"] = camera  # the folder says whose clip it is
    for key, url_key in FILES.items():
        relative = record.get(key)
        item[url_key] = clip_url(camera, relative) if isinstance(relative, str) and relative else None
    return item


def clip_url(camera: str, relative: str) -> str:
    """``/clips/{camera}/{relative}``, each part URL-quoted."""
    return f"/clips/{quote(camera, safe='')}/" + "/".join(quote(part, safe="") for part in PurePosixPath(relative).parts)


def _unix(wall_time) -> float:
    """A sidecar's ``wall_time`` (ISO 8601, e.g. ``2026-11-28T08:00:01.000Z``, or Unix seconds) in Unix
    seconds; -inf when missing or unreadable, so such items sort last and fail ``since``."""
    if isinstance(wall_time, (int, float)) and not isinstance(wall_time, bool):
        return float(wall_time) if math.isfinite(wall_time) else -math.inf
    if isinstance(wall_time, str):
        try:
            return datetime.fromisoformat(wall_time.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return -math.inf
    return -math.inf


__all__ = ["ClipStore", "clip_url"]
