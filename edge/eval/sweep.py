"""``--sweep``: the activities re-run over a grid of ``min_score`` × ``gap_s``, best F1 per activity at tIoU 0.5.

No inference: the recorded prediction lines are read once into a ``Track``
per video and activity (observation times and activity scores, exactly as
``edge.replay`` computes them: ``replay.activity_scores`` on ``scores``, or its
top_k bound), then each grid point's segments come from a few array
operations that follow ``edge.activities.ActivityTracker``'s rules:

- a clip is active when its score ≥ ``min_score``; a segment runs from its
  first active clip to its last (times of the clips' newest frames);
- between two active clips ``a`` < ``b`` the segment splits when a stream gap
  or a new run lies between them, or when an inactive clip lies between them
  at least ``gap_s`` after ``a`` — times only grow, so that is clip ``b − 1``:
  ``t[b−1] − t[a] ≥ gap_s`` with ``b − 1 > a``.

``tests/eval/test_sweep.py`` holds these segments equal to ``replay``'s on random lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edge.eval.match import match_segments
from edge.eval.metrics import counts
from edge.eval.truth import EvalError

MIN_SCORES = tuple(round(0.05 * k, 2) for k in range(1, 21))  # 0.05 … 1.0
GAP_VALUES = (0.5, 1.0, 2.0, 4.0, 8.0)
SWEEP_TIOU = 0.5


@dataclass(frozen=True)
class Track:
    """One video's observations of one activity, in order.

    ``times`` float64 (N,) on the camera's time base, clamped never to go back; ``scores`` float64 (N,)
    (a gated clip 0; from top_k the bound ``present``); ``upper`` float64 (N,) the top_k upper bound,
    or None when every line had ``scores``; ``breaks`` int64 (N,) the number of stream gaps and new
    runs up to each observation (a segment cannot span two values); ``wheres`` the lines.
    """

    times: np.ndarray
    scores: np.ndarray
    upper: np.ndarray | None
    breaks: np.ndarray
    wheres: tuple[str, ...]


def tracks(records: Mapping[str, Sequence[tuple[str, dict]]], specs: Mapping[str, object], labels: Sequence[str],
           time_base: str) -> dict[str, dict[str, Track]]:
    """activity -> video -> ``Track`` from each video's ``(where, record)`` prediction and gap lines.

    ``specs``: the camera's activities (name -> config with labels, min_score, gap_s).
    """
    from edge.activities import ActivityTracker, observation_time

    tracker = ActivityTracker("eval", specs, labels, time_base)
    names = list(tracker.specs)
    index = {label: number for number, label in enumerate(tracker.labels)}
    out: dict[str, dict[str, Track]] = {name: {} for name in names}
    for video, lines in records.items():
        times, wheres, breaks = [], [], []
        present: dict[str, list[float]] = {name: [] for name in names}
        upper: dict[str, list[float]] = {name: [] for name in names}
        bounded = False
        broken, run_id, clock = 0, object(), -np.inf
        for where, record in lines:
            if record.get("run_id") != run_id:
                if times:
                    broken += 1
                run_id, clock = record.get("run_id"), -np.inf
            if record.get("event", "prediction") == "gap":
                broken += 1
                continue
            try:
                clock = max(clock, observation_time(record, time_base))
            except (KeyError, TypeError, ValueError):
                raise EvalError(f"{where}: not a prediction line edge-har wrote") from None
            times.append(clock)
            wheres.append(where)
            breaks.append(broken)
            scores = record.get("scores")
            if record.get("gated"):
                for name in names:
                    present[name].append(0.0)
                    upper[name].append(0.0)
            elif isinstance(scores, list):
                if len(scores) != len(labels):
                    raise EvalError(f"{where}: 'scores' has {len(scores)} values but the model has "
                                    f"{len(labels)} labels")
                for name in names:  # float32 values summed in float64 in label order, as the tracker does
                    value = sum(float(np.float32(scores[i])) for i in tracker.specs[name].indices)
                    present[name].append(value)
                    upper[name].append(value)
            else:
                bounded = True
                try:
                    found = {str(item["label"]): float(np.float32(item["score"])) for item in record["top_k"]}
                except (KeyError, TypeError, ValueError):
                    raise EvalError(f"{where}: a prediction line needs 'scores' or 'top_k'") from None
                kth = min(found.values()) if found else 1.0
                complete = len(found) >= len(index)
                for name in names:
                    spec = tracker.specs[name]
                    value = sum(found[label] for label in spec.labels if label in found)
                    missing = 0 if complete else sum(1 for label in spec.labels if label not in found)
                    present[name].append(value)
                    upper[name].append(value + missing * kth)
        for name in names:
            out[name][video] = Track(np.asarray(times, np.float64), np.asarray(present[name], np.float64),
                                     np.asarray(upper[name], np.float64) if bounded else None,
                                     np.asarray(breaks, np.int64), tuple(wheres))
    return out


def active_clips(track: Track, min_score: float, activity: str = "") -> np.ndarray:
    """Indices of the active clips at ``min_score``; ``EvalError`` naming the line where top_k cannot tell."""
    if track.upper is not None:
        unsure = np.flatnonzero((track.scores < min_score) & (track.upper >= min_score))
        if unsure.size:
            raise EvalError(f"{track.wheres[unsure[0]]}: top_k cannot tell whether {activity} is active at "
                            f"min_score {min_score:g}; record the events with output.include_scores: true")
    return np.flatnonzero(track.scores >= min_score)


def segments_at(track: Track, min_score: float, gap_s: float, activity: str = "",
                active: np.ndarray | None = None) -> list[tuple[float, float]]:
    """The segments (start, end) the tracker makes of ``track`` at ``min_score`` and ``gap_s`` (rounded as events)."""
    idx = active_clips(track, min_score, activity) if active is None else active
    if idx.size == 0:
        return []
    a, b = idx[:-1], idx[1:]
    t = track.times
    split = (track.breaks[b] != track.breaks[a]) | ((b - 1 > a) & (t[b - 1] - t[a] >= gap_s))
    starts = np.concatenate(([idx[0]], b[split]))
    ends = np.concatenate((a[split], [idx[-1]]))
    return [(round(float(t[s]), 6), round(float(t[e]), 6)) for s, e in zip(starts, ends)]


def sweep(activity_tracks: Mapping[str, Mapping[str, Track]], truth: Mapping[str, Mapping[str, Sequence]],
          min_scores: Sequence[float] = MIN_SCORES, gap_values: Sequence[float] = GAP_VALUES,
          threshold: float = SWEEP_TIOU) -> dict:
    """``{activity: {"best": {"min_score", "gap_s", "f1", ...}, "grid": [{"min_score", "gap_s", "tp", "fp", "fn",
    "precision", "recall", "f1"}, ...]}}`` at tIoU ``threshold``.

    ``truth``: activity -> video -> true segments (start, end). Best: the highest F1; among ties the
    smallest ``gap_s``, then the middle ``min_score`` of the tied ones (the middle of the plateau). A
    ``min_score`` that top_k lines cannot decide (no ``scores`` recorded) has points with null counts and
    ``"undecidable"``: the line that cannot tell.
    """
    out = {}
    for activity, videos in activity_tracks.items():
        true = truth.get(activity, {})
        grid = []
        for min_score in min_scores:
            try:
                active = {video: active_clips(track, min_score, activity) for video, track in videos.items()}
            except EvalError as error:  # top_k lines cannot decide this min_score: no point, not no sweep
                grid += [{"min_score": min_score, "gap_s": gap_s, "tp": None, "fp": None, "fn": None,
                          "precision": None, "recall": None, "f1": None, "undecidable": str(error)}
                         for gap_s in gap_values]
                continue
            for gap_s in gap_values:
                tp = fp = fn = 0
                for video in set(videos) | set(true):
                    predicted = (segments_at(videos[video], min_score, gap_s, activity, active[video])
                                 if video in videos else [])
                    t = true.get(video, ())
                    matched = len(match_segments(t, predicted, threshold))
                    tp, fp, fn = tp + matched, fp + len(predicted) - matched, fn + len(t) - matched
                grid.append({"min_score": min_score, "gap_s": gap_s, **counts(tp, fp, fn)})
        out[activity] = {"best": best_point(grid), "grid": grid}
    return out


def best_point(grid: Sequence[dict]) -> dict | None:
    scored = [point for point in grid if point["f1"] is not None]
    if not scored:
        return None
    top = max(point["f1"] for point in scored)
    tied = [point for point in scored if point["f1"] == top]
    gap = min(point["gap_s"] for point in tied)
    tied = sorted((point for point in tied if point["gap_s"] == gap), key=lambda point: point["min_score"])
    point = tied[(len(tied) - 1) // 2]
    return {"min_score": point["min_score"], "gap_s": point["gap_s"], "f1": point["f1"],
            "precision": point["precision"], "recall": point["recall"]}
