"""The clips on disk, as ``/api/clips`` lists them: one ``{id}.json`` sidecar beside each clip's files.

Layout (``edge.evidence``): ``{evidence.dir}/{YYYY-MM-DD}/{id}.mp4``, ``{id}.jpg``, ``{id}.vtt`` and
``{id}.json``; the sidecar is the listed item with the files as names relative to ``evidence.dir``
(``clip``, ``snapshot``, ``vtt``). URLs are ``/clips/{camera}/{relative path}``; ``resolve`` maps one
back to a file and never leaves the camera's folder. The sidecar is written last and atomically: a
listed clip is a whole one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from edge.activities import wall_seconds

log = logging.getLogger(__name__)

ITEM_KEYS = ("id", "camera", "rule", "activity", "passed", "start_s", "end_s", "wall_time", "clip_url",
             "snapshot_url", "vtt_url")
URL_PREFIX = "/clips"


def clip_url(camera: str, relative: str | None) -> str | None:
    """``/clips/{camera}/{relative}`` (quoted), or None."""
    if relative is None:
        return None
    return f"{URL_PREFIX}/{quote(camera, safe='')}/{quote(str(relative), safe='/')}"


def unix_seconds(value) -> float:
    """Unix seconds of ``since`` or a ``wall_time``: a number, or an ISO 8601 time (without a zone: UTC;
    ``edge.activities.wall_seconds``). Raises ``ValueError``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            if not re.search(r"(Z|[+-]\d\d:?\d\d)$", text):
                text += "+00:00"
            return wall_seconds(text.replace("Z", "+00:00"))
    if not math.isfinite(number):
        raise ValueError(f"not a time: {value!r}")
    return number


def _seconds_or_none(value) -> float | None:
    try:
        return None if value is None else unix_seconds(value)
    except ValueError:
        return None


class ClipStore:
    """The evidence folders of the cameras that keep pictures: ``folders`` camera → ``evidence.dir``."""

    def __init__(self, folders: Mapping[str, Path]) -> None:
        self.folders = {camera: Path(folder) for camera, folder in folders.items()}

    @classmethod
    def from_config(cls, config) -> ClipStore:
        """Every camera of a ``ServiceConfig`` that may keep pictures, at its ``evidence.dir``."""
        from edge.evidence.paths import clips_dir

        return cls({name: clips_dir(camera) for name, camera in config.cameras.items() if camera.keeps_pictures})

    def folder_for(self, camera: str, day: str) -> Path:
        """``{evidence.dir}/{day}`` of ``camera`` (``day`` YYYY-MM-DD), created."""
        folder = self.folders[camera] / day
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def add(self, *, id: str, camera: str, rule: str | None, activity: str | None, passed: bool | None,
            start_s: float, end_s: float, wall_time: str, clip: Path, snapshot: Path | None = None,
            vtt: Path | None = None, **extra) -> dict:
        """Write ``{id}.json`` beside ``clip`` (atomically) and return the listed item (with URLs)."""
        root = self.folders[camera]
        record = {"id": id, "camera": camera, "rule": rule, "activity": activity, "passed": passed,
                  "start_s": round(float(start_s), 6), "end_s": round(float(end_s), 6), "wall_time": wall_time,
                  "clip": self._relative(root, clip), "snapshot": self._relative(root, snapshot),
                  "vtt": self._relative(root, vtt), **extra}
        path = Path(clip).with_name(f"{id}.json")
        temporary = path.with_name(f".{id}.{os.getpid()}.part.json")
        try:
            temporary.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return self._item(record)

    def list(self, camera: str | None = None, rule: str | None = None, passed: bool | None = None,
             since=None, limit: int = 100) -> list[dict]:
        """The clips, newest first (by ``wall_time``): ``camera``, ``rule``, ``passed`` filter when given;
        ``since`` (``unix_seconds``: Unix seconds or ISO 8601) keeps those at or after it; at most ``limit``.
        Raises ``ValueError`` for a ``since`` that is not a time."""
        since_s = None if since is None else unix_seconds(since)
        items = []
        for name, root in self.folders.items():
            if camera is not None and name != camera:
                continue
            for path in root.glob("*/*.json"):
                if path.name.startswith("."):
                    continue
                try:
                    record = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue  # deleted meanwhile, or not ours
                if not isinstance(record, dict) or record.get("camera") != name:
                    continue
                if rule is not None and record.get("rule") != rule:
                    continue
                if passed is not None and record.get("passed") is not passed:
                    continue
                wall_s = _seconds_or_none(record.get("wall_time"))
                if since_s is not None and (wall_s is None or wall_s < since_s):
                    continue
                items.append((wall_s or 0.0, record))
        items.sort(key=lambda pair: pair[0], reverse=True)
        return [self._item(record) for _, record in items[:max(0, int(limit))]]

    def resolve(self, camera: str, relative: str) -> Path | None:
        """The file ``relative`` (a URL's path after ``/clips/{camera}/``) of ``camera``, if it is a file
        inside that camera's folder; None otherwise (unknown camera, ``..``, absolute, missing)."""
        root = self.folders.get(camera)
        if root is None or not relative:
            return None
        parts = PurePosixPath(str(relative).replace("\\", "/")).parts
        if not parts or parts[0] == "/" or any(part in ("..", "") for part in parts):
            return None
        try:
            base = root.resolve()
            path = (base / Path(*parts)).resolve()
        except (OSError, RuntimeError, ValueError):
            return None
        if not path.is_relative_to(base) or not path.is_file():
            return None
        return path

    @staticmethod
    def _relative(root: Path, path: Path | None) -> str | None:
        if path is None:
            return None
        return PurePosixPath(Path(path).resolve().relative_to(root.resolve())).as_posix()

    @staticmethod
    def _item(record: dict) -> dict:
        camera = record.get("camera")
        item = dict(record)
        item["clip_url"] = clip_url(camera, record.get("clip"))
        item["snapshot_url"] = clip_url(camera, record.get("snapshot"))
        item["vtt_url"] = clip_url(camera, record.get("vtt"))
        return item


__all__ = ["ITEM_KEYS", "ClipStore", "clip_url", "unix_seconds"]
