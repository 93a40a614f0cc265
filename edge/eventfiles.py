"""What ``replay``, ``report`` and ``eval`` read: events files named one by one, as a folder, or as a glob.

``expand_events(["logs/"])`` → every ``*.jsonl`` in ``logs/``; ``expand_events(["logs/sink-*.jsonl"])`` →
the files the glob matches; a plain path is itself (a missing one is left for the reader to report). The
result is in time order: by the ``wall_time`` of each file's first line (else the date in a rotated
file's name, ``events-YYYY-MM-DD.jsonl``, else the file's modification time), each file once.

``series(paths)`` groups the files of one writer (``events.jsonl`` and its rotated
``events-YYYY-MM-DD.jsonl`` in one folder) so a reader can read them as one stream, as if concatenated.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

DATED = re.compile(r"^(?P<base>.+)-(?P<day>\d{4}-\d{2}-\d{2})$")  # a rotated file's name without its suffix
GLOB_CHARS = frozenset("*?[")
FIRST_LINES = 10  # a file's time is the first wall_time among its first lines


class EventFilesError(ValueError):
    """An argument names no events file; ``str(error)`` is one line for the user."""


def expand_events(arguments: Iterable) -> list[Path]:
    """Files, folders (their ``*.jsonl``) and globs → the events files, in time order, each once.

    Raises ``EventFilesError`` for a folder without ``.jsonl`` files or a glob that matches none.
    """
    found: dict[str, Path] = {}
    for argument in arguments:
        text = os.fspath(argument)
        path = Path(text)
        if path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.suffix == ".jsonl" and p.is_file())
            if not matches:
                raise EventFilesError(f"{text}: a folder with no events files (*.jsonl)")
        elif not path.exists() and GLOB_CHARS & set(text):
            matches = sorted(Path(p) for p in glob.glob(text) if os.path.isfile(p))
            if not matches:
                raise EventFilesError(f"{text}: no events file matches")
        else:
            matches = [path]
        for match in matches:
            found.setdefault(os.path.abspath(match), match)
    return sorted(found.values(), key=lambda p: (_file_time(p), _series_key(p), p.name))


def series(paths: Iterable) -> list[list[Path]]:
    """``paths`` grouped by writer (folder + name without the rotation date), each group in the given
    order, groups in the order of their first file."""
    groups: dict[tuple[str, str], list[Path]] = {}
    for path in paths:
        groups.setdefault(_series_key(Path(path)), []).append(Path(path))
    return list(groups.values())


def _series_key(path: Path) -> tuple[str, str]:
    stem = path.name[:len(path.name) - len(path.suffix)] if path.suffix else path.name
    match = DATED.match(stem)
    return os.path.abspath(path.parent), (match["base"] if match else stem) + path.suffix


def _file_time(path: Path) -> float:
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for _, line in zip(range(FIRST_LINES), lines):
                try:
                    record = json.loads(line)
                    return datetime.fromisoformat(record["wall_time"]).timestamp()
                except (ValueError, TypeError, KeyError, AttributeError):
                    continue
    except OSError:
        return float("inf")  # missing: its reader names it
    stem = path.name[:len(path.name) - len(path.suffix)] if path.suffix else path.name
    match = DATED.match(stem)
    if match:
        try:
            return datetime.fromisoformat(match["day"]).timestamp()
        except ValueError:
            pass
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")


__all__ = ["EventFilesError", "expand_events", "series"]
