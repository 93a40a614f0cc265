"""The matcher's properties on random intervals (a seeded numpy generator), and its worked cases.

Oracles: the definition of temporal IoU computed pair by pair in plain Python, and the greedy rule
checked directly (greedy highest-IoU-first is not always the largest matching): each chosen pair is the
best among the pairs still free, and no free pair is left at or above the threshold.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.eval.match import iou_matrix, match_segments, match_times, temporal_iou
from edge.eval.metrics import PredictedCheck, check_metrics
from edge.eval.truth import TrueCheck


def random_intervals(rng, n, span=60.0):
    starts = rng.uniform(0, span, n)
    return [(float(s), float(s + d)) for s, d in zip(starts, rng.uniform(0.2, 12.0, n))]


def plain_iou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


@pytest.mark.parametrize("seed", range(40))
def test_properties_on_random_intervals(seed):
    rng = np.random.default_rng(seed)
    truth = random_intervals(rng, int(rng.integers(0, 9)))
    predicted = random_intervals(rng, int(rng.integers(0, 9)))
    threshold = float(rng.choice([0.1, 0.25, 0.5]))
    matrix = iou_matrix(truth, predicted)
    for i, t in enumerate(truth):
        for j, p in enumerate(predicted):
            assert matrix[i, j] == pytest.approx(plain_iou(t, p), abs=1e-12)
            assert temporal_iou(t, p) == pytest.approx(temporal_iou(p, t), abs=1e-15)  # symmetric
    pairs = match_segments(truth, predicted, threshold)
    # one-to-one
    assert len({i for i, _, _ in pairs}) == len(pairs) == len({j for _, j, _ in pairs})
    # no match below the threshold, and the IoU reported is the pair's
    for i, j, iou in pairs:
        assert iou >= threshold and iou == pytest.approx(plain_iou(truth[i], predicted[j]), abs=1e-12)
    # greedy: nothing at or above the threshold is left between two unmatched segments
    free_t = set(range(len(truth))) - {i for i, _, _ in pairs}
    free_p = set(range(len(predicted))) - {j for _, j, _ in pairs}
    assert all(plain_iou(truth[i], predicted[j]) < threshold for i in free_t for j in free_p)
    # highest first: each chosen pair is the best among the pairs still free when it was chosen
    taken_t, taken_p = set(), set()
    for i, j, iou in sorted(pairs, key=lambda pair: -pair[2]):
        best = max(plain_iou(truth[a], predicted[b]) for a in range(len(truth)) for b in range(len(predicted))
                   if a not in taken_t and b not in taken_p)
        assert iou == pytest.approx(best, abs=1e-12)
        taken_t.add(i)
        taken_p.add(j)
    # symmetric: swapping the sides gives the same pairs
    swapped = match_segments(predicted, truth, threshold)
    assert sorted((i, j) for i, j, _ in pairs) == sorted((i, j) for j, i, _ in swapped)


def test_worked_cases():
    assert temporal_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert temporal_iou((0, 1), (1, 2)) == 0.0
    # one prediction covering two truths matches the better one only
    assert match_segments([(0, 10), (12, 14)], [(0, 11)], 0.1) == [(0, 0, pytest.approx(10 / 11))]
    # 0.32 counts at 0.1 and 0.25, not 0.5
    assert len(match_segments([(8, 12)], [(9.56, 10.84)], 0.25)) == 1
    assert match_segments([(8, 12)], [(9.56, 10.84)], 0.5) == []


@pytest.mark.parametrize("seed", range(20))
def test_times_match_one_to_one_within_the_tolerance(seed):
    rng = np.random.default_rng(100 + seed)
    expected = list(rng.uniform(0, 100, int(rng.integers(0, 8))))
    predicted = list(rng.uniform(0, 100, int(rng.integers(0, 8))))
    pairs = match_times(expected, predicted, 5.0)
    assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs})
    assert all(abs(predicted[j] - expected[i]) <= 5.0 for i, j in pairs)
    free_e = set(range(len(expected))) - {i for i, _ in pairs}
    free_p = set(range(len(predicted))) - {j for _, j in pairs}
    assert all(abs(predicted[j] - expected[i]) > 5.0 for i in free_e for j in free_p)


def test_check_counts_worked_by_hand():
    truth = [TrueCheck("v", "r", 10.0, False), TrueCheck("v", "r", 30.0, False), TrueCheck("v", "r", 50.0, True),
             TrueCheck("v", "r", 70.0, True)]
    predicted = [PredictedCheck("v", "r", 12.0, False),   # TP, delay 2
                 PredictedCheck("v", "r", 31.0, True),    # an expected failure judged passed: FN
                 PredictedCheck("v", "r", 51.0, False),   # alert on an expected pass: FP, not TN
                 PredictedCheck("v", "r", 90.0, False),   # alert nobody expected: FP
                 PredictedCheck("v", "r", 70.0, None)]    # undecided: no alert; 70 stays TN
    assert check_metrics(truth, predicted, ["r"], 5.0) == {"r": {
        "tp": 1, "fp": 2, "fn": 1, "tn": 1, "sensitivity": 0.5, "specificity": pytest.approx(1 / 3, abs=1e-6),
        "mean_delay_s": 2.0}}
