"""What ``edge-har learn`` learns from: the layouts ``eval`` reads, as labelled examples of clips.

- Labelled clips (``DATA/<class>/*.mp4``): every clip of a file is an example of
  its folder's class; the file is one *example* (its clips are near-duplicates,
  so they are held out and cross-validated together).
- Annotated videos (``DATA/annotations.csv``): every clip lying wholly inside a
  segment is an example of the segment's activity; the segment is one example.
  With ``--background CLASS``, the clips that touch no segment are examples of
  ``CLASS``, one example per run of consecutive such clips.

Clips are those of ``edge-har run`` in batch mode (``edge.learn.features``),
so the hold-out numbers are eval's on the same files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.eval.truth import Annotations, EvalError, LabelledClips, read_truth

MIN_EXAMPLES = 5


class LearnError(Exception):
    """Learn cannot go on; ``str(error)`` is one line."""


@dataclass(frozen=True)
class Example:
    """A labelled file or segment: its class and the rows of its clips in the feature matrix."""

    key: str  # the file, or ``FILE@START-END`` for a segment
    label: str
    rows: np.ndarray  # int indices into the stacked clip features


def read_data(data, background: str | None = None) -> LabelledClips | Annotations:
    """The truth under ``data`` (any class names). ``LearnError`` for a bad layout, or a ``--background``
    folder that is not there."""
    try:
        truth = read_truth(data, labels=None, activities=None, rules=None)
    except EvalError as error:
        raise LearnError(str(error)) from None
    if background and isinstance(truth, LabelledClips) and background not in truth.classes:
        raise LearnError(f"{data}: no folder {background!r} of background clips (classes: "
                         f"{', '.join(truth.classes)})")
    return truth


def classes_of(truth: LabelledClips | Annotations, background: str | None) -> list[str]:
    """The head's classes, in name order (the background class among them)."""
    if isinstance(truth, LabelledClips):
        names = set(truth.classes)
    else:
        names = {segment.activity for segment in truth.segments} | ({background} if background else set())
    return sorted(names)


def check_counts(labels: Iterable[str], classes: list[str], where: str) -> None:
    """At least two classes (one may be the background) and ``MIN_EXAMPLES`` examples of each (``labels``:
    each example's class)."""
    if len(classes) < 2:
        raise LearnError(f"{where}: only one class ({classes[0] if classes else 'none'}): a head needs two; add "
                         "clips of another activity, or background clips with --background CLASS")
    counts = Counter(labels)
    few = [f"{name} ({counts[name]})" for name in classes if counts[name] < MIN_EXAMPLES]
    if few:
        raise LearnError(f"{where}: fewer than {MIN_EXAMPLES} examples of {', '.join(few)}; each class needs "
                         f"{MIN_EXAMPLES} or more (clips in its folder, or annotated segments)")


def examples_of(truth: LabelledClips | Annotations, clips: Mapping[Path, dict], background: str | None
                ) -> tuple[list[Example], int]:
    """The examples, given each readable video's clips (``edge.learn.features.Extraction.clips``: ``start_s``,
    ``end_s`` arrays), rows numbered in the order of ``clips`` (the stacked features' order); returns
    (examples, the number of rows)."""
    offsets, row = {}, 0
    for video, got in clips.items():
        offsets[video] = row
        row += len(got["start_s"])
    examples: list[Example] = []
    if isinstance(truth, LabelledClips):
        for name, videos in truth.classes.items():
            for video in videos:
                if video in clips and len(clips[video]["start_s"]):
                    count = len(clips[video]["start_s"])
                    examples.append(Example(str(video), name, np.arange(offsets[video], offsets[video] + count)))
        return examples, row
    by_video: dict[Path, list] = {}
    for segment in truth.segments:
        by_video.setdefault(segment.video, []).append(segment)
    for video, got in clips.items():
        start, end = np.asarray(got["start_s"]), np.asarray(got["end_s"])
        touched = np.zeros(len(start), dtype=bool)
        for segment in by_video.get(video, ()):
            touched |= (end >= segment.start_s) & (start <= segment.end_s)
            inside = np.flatnonzero((start >= segment.start_s) & (end <= segment.end_s))
            if inside.size:
                examples.append(Example(f"{video}@{segment.start_s:g}-{segment.end_s:g}", segment.activity,
                                        inside + offsets[video]))
        if background:
            free = np.flatnonzero(~touched)
            for run in np.split(free, np.flatnonzero(np.diff(free) != 1) + 1) if free.size else ():
                examples.append(Example(f"{video}@{start[run[0]]:g}-{end[run[-1]]:g}", background,
                                        run + offsets[video]))
    return examples, row


def split_holdout(examples: list[Example], share: float, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """(train, holdout): ``share`` of each class's examples held out (at least one when ``share`` > 0 and the
    class has two or more), chosen at random with ``seed``."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    by_class: dict[str, list[Example]] = {}
    for example in examples:
        by_class.setdefault(example.label, []).append(example)
    for name in sorted(by_class):
        group = by_class[name]
        count = round(share * len(group))
        if share > 0 and len(group) >= 2:
            count = min(max(count, 1), len(group) - 1)
        chosen = set(rng.permutation(len(group))[:count].tolist()) if count else set()
        for index, example in enumerate(group):
            (held if index in chosen else train).append(example)
    return train, held
