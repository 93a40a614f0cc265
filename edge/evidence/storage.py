"""The disk the evidence lives on: free space kept above ``storage.min_free_gb``, files kept by age.

``StorageGuard.from_config(config)`` watches every camera's recordings and clips folders
(``edge.evidence.paths``); the service calls ``maybe_run()`` from its housekeeping, and a pass
runs at most every ``check_s`` seconds (age retention at most every ``retain_s``):

- space: on a filesystem with less than ``min_free_gb`` free, the oldest recordings are deleted
  first, then the oldest clips, until it is above the limit again or nothing may go;
- age: recordings older than ``record.retain_days``, clips older than ``evidence.retain_days``,
  both capped by ``privacy.retain_pictures_h`` when that is set (``CameraConfig.*_max_age_s``).
  A recorder that is not ``continuous`` also trims its own segments to what clips need.

A clip is its group of files with the same name and any suffix (``{id}.mp4``, ``.jpg``, ``.vtt``,
``.json``) and goes as one; a clip younger than ``evidence.pre_s + post_s`` never goes (it may be
being written), nor a recording younger than that plus ``record.segment_s``.

Only regular files inside the dated folders of the contract (``{dir}/{YYYY-MM-DD}/``) are ever
deleted: never a symbolic link, never a file outside a watched folder, and a dated folder left
empty is removed. Each deletion is counted by kind (``recording``, ``clip``).
"""

from __future__ import annotations

import heapq
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from edge.evidence.paths import clips_dir, recordings_dir

log = logging.getLogger(__name__)

GB = 1_000_000_000
CHECK_S = 5.0      # how often free space is looked at (a statvfs per filesystem)
RETAIN_S = 300.0   # how often the folders are walked for age retention (26k segments of a camera: ~0.7 s)
BACKOFF_S = 60.0   # the next space pass when the last one found nothing it may delete
KINDS = ("recording", "clip")
DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CLIP_SUFFIXES = (".mp4", ".jpg", ".vtt", ".json")


@dataclass
class Folder:
    """One watched folder: ``kind`` (``recording`` or ``clip``), its ages in seconds (None: no limit)."""

    root: Path
    kind: str
    max_age_s: float | None
    young_s: float   # never delete what is younger than this


@dataclass(frozen=True)
class Item:
    """What goes as one: a recording segment, or a clip's group of files."""

    kind: str
    time: float            # the newest file's modification time
    files: tuple[Path, ...]
    size: int


@dataclass
class StorageGuard:
    """Keeps ``min_free_bytes`` free on the filesystems of ``folders``; deletes by age.

    ``clock``: Unix seconds now; ``disk_usage``: ``shutil.disk_usage`` (tests may inject either).
    ``watch``: other folders whose free space is reported (e.g. the events files'); nothing there
    is deleted.
    """

    folders: list[Folder]
    min_free_bytes: int
    watch: list[Path] = field(default_factory=list)
    clock: Callable[[], float] = time.time
    disk_usage: Callable = shutil.disk_usage
    check_s: float = CHECK_S
    retain_s: float = RETAIN_S
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    free_bytes: dict[str, int] = field(default_factory=dict)   # mount point -> bytes free at the last look
    low: set[str] = field(default_factory=set)                 # mount points below the limit now
    _next_check: float = float("-inf")
    _next_retain: float = float("-inf")

    @classmethod
    def from_config(cls, config, *, watch: Iterable = (), **kwargs) -> StorageGuard:
        """The folders of every camera of a ``ServiceConfig``; a folder shared by cameras keeps the longest ages."""
        folders: dict[tuple[str, str], Folder] = {}
        for camera in config.cameras.values():
            window = camera.evidence.pre_s + camera.evidence.post_s
            for kind, root, age, young in (
                    ("recording", recordings_dir(camera), camera.recordings_max_age_s,
                     window + camera.record.segment_s),
                    ("clip", clips_dir(camera), camera.clips_max_age_s, window)):
                key = (kind, os.path.abspath(root))
                folder = folders.get(key)
                if folder is None:
                    folders[key] = Folder(Path(os.path.abspath(root)), kind, age, young)
                else:
                    folder.max_age_s = max(folder.max_age_s, age)
                    folder.young_s = max(folder.young_s, young)
        min_free = int(config.storage.min_free_gb * GB)
        return cls(list(folders.values()), min_free, watch=[Path(p) for p in watch], **kwargs)

    # -- the passes ----------------------------------------------------------------------------

    def maybe_run(self) -> None:
        """Called often (housekeeping); does a space pass at most every ``check_s`` and an age pass at most
        every ``retain_s``."""
        now = self.clock()
        if now >= self._next_retain:
            self._next_retain = now + self.retain_s
            self.retain()
        if now >= self._next_check:
            self._next_check = now + self.check_s
            self.keep_free()

    def retain(self) -> int:
        """Delete what is older than its folder's age; returns how many items went."""
        now = self.clock()
        gone = 0
        before = dict(self.deleted)
        for folder in self.folders:
            if folder.max_age_s is None:
                continue
            age = max(folder.max_age_s, folder.young_s)
            # a day's folder is named after its local date; a day of margin covers time zones
            until = date.fromtimestamp(now - age) + timedelta(days=1)
            for item in _items(folder, until=until):
                if now - item.time > age:
                    gone += self._delete(item, folder, "older than its retention")
        if gone:
            log.info("storage: deleted %s older than their retention", self._tally(before))
        return gone

    def keep_free(self) -> int:
        """On each filesystem below ``min_free_bytes``: oldest recordings first, then oldest clips.
        Returns how many items went; updates ``free_bytes`` and ``low``."""
        gone = 0
        now = self.clock()
        by_mount: dict[str, list[Folder]] = {}
        for folder in self.folders:
            by_mount.setdefault(_mount_point(folder.root), []).append(folder)
        for path in self.watch:
            by_mount.setdefault(_mount_point(path), [])
        for mount, folders in by_mount.items():
            free = self._free(mount)
            if free is None:
                continue
            if free >= self.min_free_bytes or not folders:
                self.low.discard(mount)
                continue
            if mount not in self.low:
                log.warning("storage: %s has %.2f GB free, below storage.min_free_gb %.2f; deleting the oldest "
                            "recordings, then the oldest clips", mount, free / GB, self.min_free_bytes / GB)
            self.low.add(mount)
            before = dict(self.deleted)
            deleted = 0
            for item, folder in _oldest_first(folders):
                if now - item.time < folder.young_s:
                    continue
                deleted += self._delete(item, folder, "the disk is low on space")
                free = self._free(mount)
                if free is None or free >= self.min_free_bytes:
                    break
            gone += deleted
            if deleted:
                log.info("storage: deleted %s to free space on %s", self._tally(before), mount)
            if free is not None and free >= self.min_free_bytes:
                self.low.discard(mount)
                log.warning("storage: %s has %.2f GB free again", mount, free / GB)
            elif not deleted:  # nothing of ours may go yet: look again in a while, not every few seconds
                self._next_check = now + BACKOFF_S
        return gone

    def status(self) -> dict:
        """For /api/status and the metrics: ``free_bytes`` per mount point, ``low`` (mount points below
        the limit), ``min_free_bytes``, ``deleted`` per kind."""
        return {"free_bytes": dict(self.free_bytes), "low": sorted(self.low), "min_free_bytes": self.min_free_bytes,
                "deleted": dict(self.deleted)}

    # -- the parts -----------------------------------------------------------------------------

    def _tally(self, before: dict[str, int]) -> str:
        return ", ".join(f"{self.deleted[kind] - before.get(kind, 0)} {kind}s" for kind in KINDS)

    def _free(self, mount: str) -> int | None:
        try:
            free = int(self.disk_usage(mount).free)
        except OSError:
            return None
        self.free_bytes[mount] = free
        return free

    def _delete(self, item: Item, folder: Folder, why: str) -> int:
        """Unlink ``item``'s files (each checked to be a regular file inside ``folder.root``)."""
        root = os.path.realpath(folder.root)
        removed = False
        for path in item.files:
            real = os.path.realpath(path.parent)
            if os.path.dirname(real) != root or not DAY_FOLDER.match(os.path.basename(real)):
                log.error("storage: not deleting %s: outside %s", path, folder.root)
                continue
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                os.unlink(path)
                removed = True
            except FileNotFoundError:
                continue
            except OSError as error:
                log.warning("storage: cannot delete %s: %s", path, error.strerror or error)
        if not removed:
            return 0
        self.deleted[item.kind] = self.deleted.get(item.kind, 0) + 1
        log.debug("storage: deleted %s %s (%s)", item.kind, item.files[0].with_suffix(""), why)
        try:
            os.rmdir(item.files[0].parent)  # only when the day's folder is now empty
        except OSError:
            pass
        return 1


def _days(folder: Folder) -> list[tuple[date, str]]:
    """The dated folders ``{root}/{YYYY-MM-DD}`` (not links), oldest first."""
    days = []
    try:
        entries = list(os.scandir(folder.root))
    except OSError:
        return []
    for entry in entries:
        if DAY_FOLDER.match(entry.name) and entry.is_dir(follow_symlinks=False):
            try:
                days.append((date.fromisoformat(entry.name), entry.path))
            except ValueError:
                continue
    return sorted(days)


def _day_items(folder: Folder, day_path: str) -> list[Item]:
    """The recordings or clips of one dated folder (regular files only), oldest first."""
    groups: dict[str, list[tuple[Path, os.stat_result]]] = {}
    try:
        entries = list(os.scandir(day_path))
    except OSError:
        return []
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            name = _clip_stem(entry.name) if folder.kind == "clip" else entry.name
            groups.setdefault(name, []).append((Path(entry.path), info))
    items = [Item(folder.kind, max(info.st_mtime for _, info in files), tuple(path for path, _ in files),
                  sum(info.st_size for _, info in files)) for files in groups.values()]
    return sorted(items, key=lambda item: item.time)


def _items(folder: Folder, *, until: date | None = None) -> Iterator[Item]:
    """The items of ``folder``, a day at a time, oldest day first (only days up to ``until`` when given)."""
    for day, path in _days(folder):
        if until is not None and day > until:
            break
        yield from _day_items(folder, path)


def _oldest_first(folders: list[Folder]) -> Iterator[tuple[Item, Folder]]:
    """Every recording (oldest first, across folders), then every clip (oldest first); read lazily."""
    for kind in KINDS:
        streams = [_with_folder(folder) for folder in folders if folder.kind == kind]
        yield from heapq.merge(*streams, key=lambda entry: entry[0].time)


def _with_folder(folder: Folder) -> Iterator[tuple[Item, Folder]]:
    for item in _items(folder):
        yield item, folder


def _clip_stem(name: str) -> str:
    """``{id}.mp4`` / ``.jpg`` / ``.vtt`` / ``.json`` (and e.g. a writer's ``{id}.mp4.part``) → ``{id}``."""
    for suffix in CLIP_SUFFIXES:
        at = name.find(suffix)
        if at > 0:
            return name[:at]
    return name.rsplit(".", 1)[0] if "." in name[1:] else name


def _mount_point(path) -> str:
    """The mount point of ``path``'s filesystem (of its nearest existing parent when it does not exist)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


__all__ = ["Folder", "Item", "StorageGuard"]
