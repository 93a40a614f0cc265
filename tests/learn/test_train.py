"""The logistic-regression head: fits, the optimum against an independent gradient, folding, group folds, errors.

Oracles: the objective's gradient (mean cross-entropy + l2/2 ||W||^2, bias unpenalised) written out
again here in plain numpy; standardise-then-weight in float64 for ``folded``; fold membership checked
group by group. All data come from seeded generators.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.learn.train import L2_GRID, Head, fit_at, fit_head, group_folds


def blobs(seed: int, n: int, d: int, k: int, separation: float, offset: float = 0.0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    centres = rng.normal(0.0, separation, (k, d))
    features = (centres[labels] + rng.normal(size=(n, d))) * scale + offset
    return features.astype(np.float32), labels


def objective_gradient(z, labels, k, l2, weight, bias):
    """The gradient of mean cross-entropy + l2/2 ||weight||^2, written independently of the module."""
    n = len(z)
    logits = z @ weight.T + bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.eye(k)[labels]
    return (p - onehot).T @ z / n + l2 * weight, (p - onehot).mean(axis=0)


def objective(z, labels, l2, weight, bias):
    logits = z @ weight.T + bias
    top = logits.max(axis=1)
    lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
    return np.mean(lse - logits[np.arange(len(z)), labels]) + 0.5 * l2 * np.sum(weight * weight)


def test_separable_blobs_fit_and_probabilities():
    x, y = blobs(0, 300, 16, 4, separation=4.0, offset=3.0, scale=2.0)
    head = fit_head(x, y, 4)
    assert isinstance(head, Head)
    assert head.weight.shape == (4, 16) and head.bias.shape == (4,)
    assert head.mean.shape == head.std.shape == (16,)
    for array in (head.weight, head.bias, head.mean, head.std):
        assert array.dtype == np.float32
    assert head.l2 in L2_GRID
    assert head.cv_accuracy >= 0.97
    assert np.mean(head.logits(x).argmax(axis=1) == y) >= 0.99
    p = head.probabilities(x)
    assert p.shape == (300, 4) and p.dtype == np.float32
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_ties_choose_the_largest_l2():
    # Far-apart blobs: every l2 of the grid classifies every validation sample correctly.
    x, y = blobs(1, 120, 4, 3, separation=30.0)
    head = fit_head(x, y, 3)
    assert head.cv_accuracy == 1.0
    assert head.l2 == max(L2_GRID)


@pytest.mark.parametrize("l2", [1e-3, 0.05, 1.0])
def test_optimum_has_zero_gradient(l2):
    x, y = blobs(2, 400, 8, 3, separation=0.7)  # overlapping classes: a finite optimum at any l2
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    weight, bias = fit_at(z, y, 3, l2)
    assert weight.shape == (3, 8) and bias.shape == (3,)
    grad_weight, grad_bias = objective_gradient(z.astype(np.float64), y, 3, l2, weight, bias)
    assert np.abs(grad_weight).max() < 1e-5
    assert np.abs(grad_bias).max() < 1e-5
    # and no nearby point is lower (the objective is convex; this is the minimum, not a saddle)
    best = objective(z, y, l2, weight, bias)
    rng = np.random.default_rng(3)
    for _ in range(20):
        dw, db = rng.normal(0, 1e-2, weight.shape), rng.normal(0, 1e-2, bias.shape)
        assert objective(z, y, l2, weight + dw, bias + db) >= best - 1e-12


def test_warm_start_reaches_the_same_optimum():
    x, y = blobs(4, 300, 10, 4, separation=0.8)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    cold = fit_at(z, y, 4, 0.01)
    warm = fit_at(z, y, 4, 0.01, init=fit_at(z, y, 4, 1.0))
    np.testing.assert_allclose(warm[0], cold[0], atol=1e-4)
    np.testing.assert_allclose(warm[1], cold[1], atol=1e-4)


def test_folded_matches_standardise_then_weight():
    x, y = blobs(5, 200, 12, 3, separation=1.0, offset=5.0, scale=3.0)
    x[:, 3] = 7.0  # a constant feature: its std becomes 1
    head = fit_head(x, y, 3)
    assert head.std[3] == 1.0
    weight, bias = head.folded()
    assert weight.dtype == bias.dtype == np.float32
    assert weight.shape == (3, 12) and bias.shape == (3,)
    raw = x.astype(np.float64) @ weight.T.astype(np.float64) + bias.astype(np.float64)
    z = (x.astype(np.float64) - head.mean.astype(np.float64)) / head.std.astype(np.float64)
    standardised = z @ head.weight.T.astype(np.float64) + head.bias.astype(np.float64)
    np.testing.assert_allclose(raw, standardised, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(head.logits(x), standardised, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("folds", [2, 3, 5])
def test_group_folds_never_split_a_group(seed, folds):
    rng = np.random.default_rng(seed)
    groups = np.repeat(rng.permutation(12), rng.integers(1, 9, 12))  # 12 groups of 1 to 8 samples
    labels = rng.integers(0, 3, len(groups))
    for fold_of in (group_folds(groups, folds, seed), group_folds(groups, folds, seed, labels=labels)):
        assert fold_of.shape == groups.shape
        assert set(fold_of.tolist()) == set(range(folds))  # every fold non-empty, none outside the range
        for group in np.unique(groups):
            assert len(np.unique(fold_of[groups == group])) == 1
    np.testing.assert_array_equal(group_folds(groups, folds, seed), group_folds(groups, folds, seed))


def test_group_folds_rejects_more_folds_than_groups():
    with pytest.raises(ValueError, match="folds"):
        group_folds(["a", "a", "b"], 3, 0)


def test_groups_prevent_leakage_between_near_duplicates():
    # 40 "videos", 5 near-identical clips each, labels random per video: nothing generalises across videos,
    # but a clip is trivially recognised from its siblings if they sit in the training folds.
    rng = np.random.default_rng(6)
    video = np.repeat(np.arange(40), 5)
    labels = np.repeat(rng.integers(0, 2, 40), 5)
    x = rng.normal(size=(40, 64))[video] + rng.normal(0, 0.01, (200, 64))
    leaky = fit_head(x, labels, 2)
    grouped = fit_head(x, labels, 2, groups=video)
    assert leaky.cv_accuracy > 0.95
    assert grouped.cv_accuracy < 0.75


def test_progress_and_fewer_groups_than_folds():
    x, y = blobs(7, 60, 5, 2, separation=2.0)
    steps = []
    head = fit_head(x, y, 2, groups=np.arange(60) % 3, folds=5, on_step=lambda done, total: steps.append((done, total)))
    total = 3 * len(L2_GRID) + 1  # 3 groups: 3 folds, then the refit
    assert steps == [(i, total) for i in range(1, total + 1)]
    assert not math.isnan(head.cv_accuracy)


def test_single_group_skips_cross_validation():
    x, y = blobs(8, 30, 5, 2, separation=2.0)
    steps = []
    head = fit_head(x, y, 2, groups=np.zeros(30, dtype=int), on_step=lambda done, total: steps.append((done, total)))
    assert math.isnan(head.cv_accuracy)
    assert head.l2 == sorted(L2_GRID)[len(L2_GRID) // 2]
    assert steps == [(1, 1)]


def test_a_class_without_samples_is_never_predicted():
    x, y = blobs(9, 150, 6, 3, separation=1.5)
    head = fit_head(x, y, 5)
    p = head.probabilities(x)
    assert p.shape == (150, 5)
    assert p[:, 3:].max() < 1e-6
    assert set(head.logits(x).argmax(axis=1).tolist()) <= {0, 1, 2}


def test_deterministic():
    x, y = blobs(10, 200, 20, 3, separation=0.8)
    a, b = fit_head(x, y, 3, seed=1), fit_head(x, y, 3, seed=1)
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.bias, b.bias)
    assert (a.l2, a.cv_accuracy) == (b.l2, b.cv_accuracy)


@pytest.mark.parametrize(("features", "labels", "message"), [
    (np.zeros((0, 4)), np.zeros(0, dtype=int), "empty"),
    (np.zeros((5, 4)), np.array([0, 1, 0, 1]), "differ in length"),
    (np.zeros((4, 4)), np.array([0, 1, 3, 1]), "outside"),
    (np.zeros((4, 4)), np.array([0, 1, -1, 1]), "outside"),
    (np.zeros((4, 4)), np.array([1, 1, 1, 1]), "at least 2 classes"),
])
def test_invalid_input(features, labels, message):
    with pytest.raises(ValueError, match=message):
        fit_head(features, labels, 3)
