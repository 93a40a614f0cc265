"""The numbers of ``edge-har eval``: clips (top-1/top-5, per class, confusion), segments, checks.

A ratio whose denominator is 0 is ``None`` (JSON null): no data, not a score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from edge.eval.match import TIOU_THRESHOLDS, match_segments, match_times
from edge.eval.truth import TrueCheck, TrueSegment


def ratio(numerator: float, denominator: float) -> float | None:
    return None if not denominator else round(numerator / denominator, 6)


def f1_score(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 0.0 if precision + recall == 0 else round(2 * precision * recall / (precision + recall), 6)


# ---------------------------------------------------------------- clips

@dataclass(frozen=True)
class ClipExample:
    """One labelled file: its true class and the classes ranked by score, best first."""

    video: str
    truth: str
    ranking: tuple[str, ...]
    score: float

    @property
    def predicted(self) -> str:
        return self.ranking[0]


def clip_metrics(examples: Sequence[ClipExample], classes: Iterable[str]) -> dict:
    """``{"n", "top1", "top5", "per_class": {class: {"n", "precision", "recall"}}, "confusion"}``.

    ``classes``: the true classes (folders); ``confusion[true][predicted]`` counts files, non-zero cells only.
    """
    n = len(examples)
    confusion: dict[str, dict[str, int]] = {name: {} for name in classes}
    for example in examples:
        row = confusion.setdefault(example.truth, {})
        row[example.predicted] = row.get(example.predicted, 0) + 1
    per_class = {}
    for name, row in confusion.items():
        count = sum(row.values())
        correct = row.get(name, 0)
        predicted = sum(other.get(name, 0) for other in confusion.values())
        per_class[name] = {"n": count, "precision": ratio(correct, predicted), "recall": ratio(correct, count)}
    return {"n": n,
            "top1": ratio(sum(e.predicted == e.truth for e in examples), n),
            "top5": ratio(sum(e.truth in e.ranking[:5] for e in examples), n),
            "per_class": per_class,
            "confusion": confusion}


# ---------------------------------------------------------------- segments

def counts(tp: int, fp: int, fn: int) -> dict:
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1_score(precision, recall)}


def segment_counts(truth: Mapping[str, Sequence[tuple[float, float]]],
                   predicted: Mapping[str, Sequence[tuple[float, float]]], threshold: float) -> tuple[int, int, int]:
    """(tp, fp, fn) of one activity over the videos: video -> segments (start, end) on both sides."""
    tp = fp = fn = 0
    for video in set(truth) | set(predicted):
        t, p = truth.get(video, ()), predicted.get(video, ())
        matched = len(match_segments(t, p, threshold))
        tp += matched
        fp += len(p) - matched
        fn += len(t) - matched
    return tp, fp, fn


def segment_metrics(truth: Sequence[TrueSegment], predicted: Mapping[tuple[str, str], Sequence[tuple[float, float]]],
                    activities: Iterable[str], thresholds: Sequence[float] = TIOU_THRESHOLDS) -> dict:
    """``{"0.1": {activity: {"tp", "fp", "fn", "precision", "recall", "f1"}}, ...}``.

    ``predicted``: (video, activity) -> predicted segments (start, end) in seconds.
    """
    true_by = truth_by_activity(truth)
    out = {}
    for threshold in thresholds:
        section = {}
        for activity in activities:
            mine = {video: segments for (video, name), segments in predicted.items() if name == activity}
            section[activity] = counts(*segment_counts(true_by.get(activity, {}), mine, threshold))
        out[f"{threshold:g}"] = section
    return out


def truth_by_activity(truth: Sequence[TrueSegment]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """activity -> video (str) -> true segments (start, end)."""
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for segment in truth:
        out[segment.activity][str(segment.video)].append((segment.start_s, segment.end_s))
    return {activity: dict(videos) for activity, videos in out.items()}


# ---------------------------------------------------------------- checks

@dataclass(frozen=True)
class PredictedCheck:
    """A check edge-har judged: ``passed`` False is an alert; None undecided."""

    video: str
    rule: str
    time_s: float
    passed: bool | None


def check_metrics(truth: Sequence[TrueCheck], predicted: Sequence[PredictedCheck], rules: Iterable[str],
                  tolerance_s: float) -> dict:
    """``{rule: {"tp", "fp", "fn", "tn", "sensitivity", "specificity", "mean_delay_s"}}``; a failed check is positive.

    Per video and rule: expected failures are matched to predicted failures within ``tolerance_s``
    (nearest first, one to one): matched ones are true positives (delay = predicted - expected
    time), the rest false negatives. The predicted failures left over are false positives; an
    expected pass that none of them is within ``tolerance_s`` of is a true negative.
    """
    out = {}
    for rule in rules:
        tp = fp = fn = tn = 0
        delays = []
        videos = {str(c.video) for c in truth if c.rule == rule} | {c.video for c in predicted if c.rule == rule}
        for video in sorted(videos):
            expected_fail = [c.time_s for c in truth if c.rule == rule and str(c.video) == video and not c.passed]
            expected_pass = [c.time_s for c in truth if c.rule == rule and str(c.video) == video and c.passed]
            alerts = [c.time_s for c in predicted if c.rule == rule and c.video == video and c.passed is False]
            pairs = match_times(expected_fail, alerts, tolerance_s)
            tp += len(pairs)
            fn += len(expected_fail) - len(pairs)
            delays += [alerts[j] - expected_fail[i] for i, j in pairs]
            left = [alerts[j] for j in range(len(alerts)) if j not in {j for _, j in pairs}]
            fp += len(left)
            wrongly_alerted = {i for i, _ in match_times(expected_pass, left, tolerance_s)}
            tn += len(expected_pass) - len(wrongly_alerted)
        out[rule] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "sensitivity": ratio(tp, tp + fn),
                     "specificity": ratio(tn, tn + fp),
                     "mean_delay_s": round(sum(delays) / len(delays), 6) if delays else None}
    return out
