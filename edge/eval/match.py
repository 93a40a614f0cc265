"""Matching predictions to the truth: activity segments by temporal IoU, checks by time.

Segments (the ActivityNet convention): per video and activity, every pair's
temporal IoU is computed; pairs at or above the threshold are taken greedily,
highest IoU first, each true and each predicted segment at most once. Ties
keep the earlier true, then the earlier predicted segment.

Checks: per video and rule, a predicted failure (an alert) matches an expected
failure within ``tolerance_s``, nearest first, one to one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TIOU_THRESHOLDS = (0.1, 0.25, 0.5)


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """|a ∩ b| / |a ∪ b| of two intervals (start, end); 0 when the union is empty."""
    inter = min(a[1], b[1]) - max(a[0], b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    if inter <= 0 or union <= 0:
        return 0.0
    return inter / union


def iou_matrix(truth: Sequence[tuple[float, float]], predicted: Sequence[tuple[float, float]]) -> np.ndarray:
    """float64 (len(truth), len(predicted)) of temporal IoUs."""
    if not len(truth) or not len(predicted):
        return np.zeros((len(truth), len(predicted)))
    t = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    p = np.asarray(predicted, dtype=np.float64).reshape(-1, 2)
    inter = np.minimum(t[:, None, 1], p[None, :, 1]) - np.maximum(t[:, None, 0], p[None, :, 0])
    union = np.maximum(t[:, None, 1], p[None, :, 1]) - np.minimum(t[:, None, 0], p[None, :, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where((inter > 0) & (union > 0), inter / np.where(union > 0, union, 1.0), 0.0)
    return iou


def match_segments(truth: Sequence[tuple[float, float]], predicted: Sequence[tuple[float, float]],
                   threshold: float) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching at ``IoU >= threshold``, highest IoU first: [(truth index, predicted index, iou)]."""
    iou = iou_matrix(truth, predicted)
    rows, cols = np.nonzero(iou >= threshold)
    if rows.size == 0:
        return []
    values = iou[rows, cols]
    order = np.lexsort((cols, rows, -values))  # highest IoU first; ties: earlier truth, then earlier prediction
    used_truth, used_predicted, pairs = set(), set(), []
    for k in order:
        i, j = int(rows[k]), int(cols[k])
        if i in used_truth or j in used_predicted:
            continue
        used_truth.add(i)
        used_predicted.add(j)
        pairs.append((i, j, float(values[k])))
    return pairs


def match_times(expected: Sequence[float], predicted: Sequence[float], tolerance_s: float
                ) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of times within ``tolerance_s``, nearest first: [(expected, predicted index)]."""
    pairs = sorted((abs(p - e), i, j) for i, e in enumerate(expected) for j, p in enumerate(predicted)
                   if abs(p - e) <= tolerance_s)
    used_expected, used_predicted, out = set(), set(), []
    for _, i, j in pairs:
        if i in used_expected or j in used_predicted:
            continue
        used_expected.add(i)
        used_predicted.add(j)
        out.append((i, j))
    return out
