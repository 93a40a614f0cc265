"""The ground truth ``edge-har eval`` compares with: labelled clips, or annotated videos.

Two layouts of ``DATA``:

1. Labelled clips (the Kinetics/UCF101 layout): ``DATA/<class>/*.mp4``, one
   sub-folder per class. A class is a model label or an activity of the config.
2. Annotated videos: ``DATA/annotations.csv`` with the header
   ``video,start_s,end_s,activity`` (one row per true activity segment, video
   paths relative to the CSV) and optionally ``DATA/checks.csv`` with
   ``video,rule,time_s,passed`` (what a human auditor would say).

Every mistake is an ``EvalError`` whose text is one line naming the file (and
the line for a CSV row).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"})
ANNOTATIONS = "annotations.csv"
CHECKS = "checks.csv"
ANNOTATION_COLUMNS = ("video", "start_s", "end_s", "activity")
CHECK_COLUMNS = ("video", "rule", "time_s", "passed")
PASSED_WORDS = {"true": True, "1": True, "yes": True, "pass": True, "passed": True,
                "false": False, "0": False, "no": False, "fail": False, "failed": False}


class EvalError(Exception):
    """Eval cannot go on; ``str(error)`` is one line naming the file (and the line)."""


@dataclass(frozen=True)
class LabelledClips:
    """Layout 1: class -> its video files (sorted), classes in name order."""

    root: Path
    classes: dict[str, tuple[Path, ...]]

    @property
    def videos(self) -> list[Path]:
        return [video for videos in self.classes.values() for video in videos]


@dataclass(frozen=True)
class TrueSegment:
    """One annotated activity segment, seconds of media time; ``where`` is ``FILE: line N``."""

    video: Path
    activity: str
    start_s: float
    end_s: float
    where: str = ""


@dataclass(frozen=True)
class TrueCheck:
    """One auditor verdict: ``passed`` False is a failed check (the positive, an alert)."""

    video: Path
    rule: str
    time_s: float
    passed: bool
    where: str = ""


@dataclass(frozen=True)
class Annotations:
    """Layout 2: the videos (in first-mention order), their segments, and the checks when ``checks.csv`` exists."""

    root: Path
    videos: tuple[Path, ...]
    segments: tuple[TrueSegment, ...]
    checks: tuple[TrueCheck, ...] | None


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def read_truth(data, *, labels: Collection[str], activities: Collection[str], rules: Collection[str]
               ) -> LabelledClips | Annotations:
    """The truth under ``data`` (a folder): ``Annotations`` when it holds ``annotations.csv``, else ``LabelledClips``.

    ``labels``: the model's labels; ``activities``/``rules``: the names the config defines. Raises
    ``EvalError`` for a missing or empty folder, a class that is neither a label nor an activity, or a
    bad CSV row (``end_s`` ≤ ``start_s``, an unknown activity or rule, a missing video, a bad number).
    """
    root = Path(data)
    if not root.is_dir():
        raise EvalError(f"{root}: not a folder (expected DATA/<class>/*.mp4 or DATA/{ANNOTATIONS})")
    if (root / ANNOTATIONS).is_file():
        return read_annotations(root / ANNOTATIONS, activities=activities, rules=rules)
    if (root / CHECKS).is_file():
        raise EvalError(f"{root / CHECKS}: needs {ANNOTATIONS} beside it (its header: {','.join(ANNOTATION_COLUMNS)})")
    return read_labelled_clips(root, labels=labels, activities=activities)


def read_labelled_clips(root: Path, *, labels: Collection[str] | None, activities: Collection[str]) -> LabelledClips:
    """Layout 1. ``labels`` None: any folder name is a class (``edge-har learn``'s new classes)."""
    known = None if labels is None else set(labels) | set(activities)
    classes = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        videos = tuple(sorted(p for p in folder.iterdir() if is_video(p)))
        if not videos:
            continue
        if known is not None and folder.name not in known:
            raise EvalError(f"{folder}: class {folder.name!r} is neither a model label nor an activity of the "
                            f"config (activities: {', '.join(sorted(activities)) or 'none'})")
        classes[folder.name] = videos
    if not classes:
        raise EvalError(f"{root}: empty: no class folder holds a video, and there is no {ANNOTATIONS} "
                        f"(expected DATA/<class>/*.mp4 or DATA/{ANNOTATIONS})")
    return LabelledClips(root, classes)


def _rows(path: Path, columns: tuple[str, ...]):
    """(``FILE: line N``, row dict) for each non-blank row; the header must hold ``columns``."""
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # a spreadsheet's "CSV UTF-8" starts with a BOM
    except OSError as error:
        raise EvalError(f"{path}: cannot read: {error.strerror or error}") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        names = [name.strip().lower() for name in header or ()]
        missing = [column for column in columns if column not in names]
        if missing:
            raise EvalError(f"{path}: line 1: the header must be {','.join(columns)} "
                            f"(missing {', '.join(missing)})")
        position = {column: names.index(column) for column in columns}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}: line {reader.line_num}"
            if len(row) < len(names):
                raise EvalError(f"{where}: expected {len(names)} columns, got {len(row)}")
            yield where, {column: row[index].strip() for column, index in position.items()}


def _seconds(value: str, column: str, where: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not math.isfinite(seconds) or seconds < 0:
        raise EvalError(f"{where}: {column} must be a number of seconds ≥ 0, got {value!r}")
    return seconds


def _video(base: Path, value: str, where: str, seen: dict[Path, None]) -> Path:
    if not value:
        raise EvalError(f"{where}: no video")
    video = (base / value).resolve()
    if not video.is_file():
        raise EvalError(f"{where}: video {value} not found (looked for {video})")
    seen.setdefault(video, None)
    return video


def read_annotations(path: Path, *, activities: Collection[str] | None, rules: Collection[str] | None
                     ) -> Annotations:
    """``annotations.csv`` and, when beside it, ``checks.csv`` (see the module docstring). ``activities``
    None: any activity name (``edge-har learn``'s new classes)."""
    base = path.parent
    videos: dict[Path, None] = {}
    segments = []
    for where, row in _rows(path, ANNOTATION_COLUMNS):
        video = _video(base, row["video"], where, videos)
        start, end = _seconds(row["start_s"], "start_s", where), _seconds(row["end_s"], "end_s", where)
        if end <= start:
            raise EvalError(f"{where}: end_s ({row['end_s']}) must be after start_s ({row['start_s']})")
        if activities is not None and row["activity"] not in activities:
            raise EvalError(f"{where}: unknown activity {row['activity']!r} (the config's activities: "
                            f"{', '.join(sorted(activities)) or 'none'})")
        segments.append(TrueSegment(video, row["activity"], start, end, where))
    checks = None
    if (base / CHECKS).is_file():
        checks = []
        for where, row in _rows(base / CHECKS, CHECK_COLUMNS):
            video = _video(base, row["video"], where, videos)
            if rules is not None and row["rule"] not in rules:
                raise EvalError(f"{where}: unknown rule {row['rule']!r} (the config's rules: "
                                f"{', '.join(sorted(rules)) or 'none'})")
            passed = PASSED_WORDS.get(row["passed"].lower())
            if passed is None:
                raise EvalError(f"{where}: passed must be true or false, got {row['passed']!r}")
            checks.append(TrueCheck(video, row["rule"], _seconds(row["time_s"], "time_s", where), passed, where))
        checks = tuple(checks)
    if not videos:
        raise EvalError(f"{path}: empty: no rows under the header {','.join(ANNOTATION_COLUMNS)}")
    return Annotations(base, tuple(videos), tuple(segments), checks)
