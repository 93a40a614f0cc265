"""A multinomial logistic-regression head on standardised features, its L2 strength chosen by cross-validation.

Model: ``softmax(z @ weight.T + bias)`` where ``z = (x - mean) / std`` (the training data's feature mean
and population std, a zero std replaced by 1). ``Head.folded`` folds the standardisation into the
weights, so a deployed head is one affine map of the raw features.

Objective, at one L2 strength ``l2``: the mean cross-entropy over the samples plus
``l2 / 2 * ||weight||^2`` (the bias is not penalised). It is smooth and strictly convex in the weights,
and solved in float64 by L-BFGS (two-loop recursion, 10 pairs, Armijo backtracking with a safeguarded
quadratic step; deterministic) until the largest absolute gradient entry is below ``TOL``. A class with
no training sample gets weight 0 and bias ``ABSENT_BIAS`` (its unpenalised bias would run to -inf), so it
is never predicted.

Choosing ``l2``: ``folds``-fold cross-validation over ``L2_GRID``. Folds are built from groups (e.g. the
video each clip was cut from; clips of one video are near-duplicates, so one video is never split
between training and validation), stratified by each group's majority label and balanced by size
(``group_folds``). Each fold standardises on its training part and walks the grid from the largest
``l2`` to the smallest, warm-starting each fit from the previous one. The ``l2`` with the best mean
validation accuracy wins (ties: the larger ``l2``); the head is then refitted on all the data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: L2 strengths tried by cross-validation, for the mean (not summed) cross-entropy on standardised
#: features: 1e-4 barely regularises (near the max-margin solution when the data separate), 1.0
#: shrinks the weights hard. scikit-learn's ``C`` is ``1 / (n_samples * l2)``.
L2_GRID: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: Convergence: the largest absolute entry of the objective's gradient.
TOL = 1e-7
MAX_ITER = 2000
#: The bias of a class absent from the training data (weight 0): its logit is never the largest.
ABSENT_BIAS = -1e4


@dataclass(frozen=True, eq=False)
class Head:
    """A fitted head; ``weight`` and ``bias`` act on standardised features, ``folded()`` on raw ones."""

    weight: np.ndarray  # float32 (K, D), acting on standardised features
    bias: np.ndarray  # float32 (K,)
    mean: np.ndarray  # float32 (D,) feature mean of the training data
    std: np.ndarray  # float32 (D,) feature std of the training data, zeros replaced by 1
    l2: float  # the chosen L2 strength
    cv_accuracy: float  # mean cross-validated accuracy at that l2 (NaN: no cross-validation)

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """(W', b') float32 acting on RAW features: W' = weight / std, b' = bias - W' @ mean; logits = x @ W'.T + b'."""
        weight = self.weight.astype(np.float64) / self.std.astype(np.float64)
        bias = self.bias.astype(np.float64) - weight @ self.mean.astype(np.float64)
        return weight.astype(np.float32), bias.astype(np.float32)

    def logits(self, features) -> np.ndarray:
        """(n, K) float32 logits of raw features (n, D)."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float64))
        z = (x - self.mean.astype(np.float64)) / self.std.astype(np.float64)
        return (z @ self.weight.T.astype(np.float64) + self.bias.astype(np.float64)).astype(np.float32)

    def probabilities(self, features) -> np.ndarray:
        """(n, K) float32 class probabilities (softmax of the logits) of raw features (n, D)."""
        logits = self.logits(features).astype(np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float64 of (n, D) features; a (numerically) zero std is replaced by 1."""
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    constant = std <= 1e-12 * np.maximum(np.abs(mean), 1.0)
    return mean, np.where(constant, 1.0, std)


def group_folds(groups, folds: int, seed: int = 0, labels=None) -> np.ndarray:
    """Fold index (int64, in [0, folds)) of each sample; all samples of a group share a fold.

    Groups are dealt in a seeded random order, grouped by majority label when ``labels`` are given
    (stratification) and largest first, each to the fold with the fewest samples of its label, then the
    fewest samples overall, then the lowest index. While a fold is empty it is always chosen first, so
    with ``2 <= folds <= number of groups`` every fold is non-empty.
    """
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.size == 0:
        raise ValueError("groups must be a non-empty 1-D array")
    unique, inverse = np.unique(groups, return_inverse=True)
    inverse = inverse.reshape(-1)
    n_groups = len(unique)
    if not 2 <= folds <= n_groups:
        raise ValueError(f"folds must be between 2 and the number of groups ({n_groups}), got {folds}")
    sizes = np.bincount(inverse, minlength=n_groups)
    if labels is None:
        strata = np.zeros(n_groups, dtype=np.int64)
    else:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != len(groups):
            raise ValueError(f"labels ({len(labels)}) and groups ({len(groups)}) differ in length")
        counts = np.zeros((n_groups, int(labels.max()) + 1), dtype=np.int64)
        np.add.at(counts, (inverse, labels), 1)
        strata = counts.argmax(axis=1)
    order = np.random.default_rng(seed).permutation(n_groups)
    order = order[np.lexsort((-sizes[order], strata[order]))]  # stable: ties keep the random order
    total = np.zeros(folds, dtype=np.int64)
    per_stratum = np.zeros((int(strata.max()) + 1, folds), dtype=np.int64)
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    for group in order:
        stratum = strata[group]
        fold = int(np.lexsort((np.arange(folds), total, per_stratum[stratum]))[0])
        fold_of_group[group] = fold
        total[fold] += sizes[group]
        per_stratum[stratum, fold] += sizes[group]
    return fold_of_group[inverse]


def _lbfgs(objective: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray, tol: float,
           max_iter: int, memory: int = 10) -> np.ndarray:
    """Minimise a smooth function from ``x``: L-BFGS with Armijo backtracking; stops at max|gradient| <= tol."""
    value, grad = objective(x)
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []  # (s, y, 1 / s.y), oldest first
    for _ in range(max_iter):
        if np.abs(grad).max() <= tol:
            break
        direction = -grad
        if pairs:
            alphas = []
            for s, y, rho in reversed(pairs):
                alpha = rho * (s @ direction)
                alphas.append(alpha)
                direction = direction - alpha * y
            s, y, _ = pairs[-1]
            direction = direction * ((s @ y) / (y @ y))
            for (s, y, rho), alpha in zip(pairs, reversed(alphas)):
                direction = direction + (alpha - rho * (y @ direction)) * s
        slope = grad @ direction
        if slope >= 0:  # not a descent direction (rounding): restart from steepest descent
            pairs.clear()
            direction, slope = -grad, -(grad @ grad)
        step = 1.0 if pairs else min(1.0, 1.0 / np.linalg.norm(grad))
        while True:
            new_x = x + step * direction
            new_value, new_grad = objective(new_x)
            if new_value <= value + 1e-4 * step * slope:
                break
            curvature = new_value - value - step * slope
            quadratic = -slope * step * step / (2.0 * curvature) if curvature > 0 else 0.5 * step
            step = min(0.5 * step, max(0.1 * step, quadratic))
            if step < 1e-16:
                return x  # no decrease within rounding: as converged as float64 allows
        s, y = new_x - x, new_grad - grad
        sy = s @ y
        if sy > 1e-12 * (y @ y):  # keep the pair only if the curvature is positive
            pairs.append((s, y, 1.0 / sy))
            if len(pairs) > memory:
                pairs.pop(0)
        x, value, grad = new_x, new_value, new_grad
    return x


def fit_at(features, labels, n_classes: int, l2: float, *, init: tuple[np.ndarray, np.ndarray] | None = None,
           tol: float = TOL, max_iter: int = MAX_ITER) -> tuple[np.ndarray, np.ndarray]:
    """(weight (K, D), bias (K,)) float64 minimising mean cross-entropy + l2/2 ||weight||^2 on these features.

    The features are used as given (standardise them first). ``init``: a (weight, bias) warm start.
    Classes without a sample get weight 0 and bias ``ABSENT_BIAS``.
    """
    x = np.ascontiguousarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    n, d = x.shape
    present = np.flatnonzero(np.bincount(y, minlength=n_classes))
    k = len(present)
    target = np.searchsorted(present, y)  # labels renumbered over the present classes
    rows = np.arange(n)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weight, bias = theta[:k * d].reshape(k, d), theta[k * d:]
        logits = x @ weight.T + bias
        top = logits.max(axis=1, keepdims=True)
        exp = np.exp(logits - top)
        total = exp.sum(axis=1, keepdims=True)
        loss = np.mean(top[:, 0] + np.log(total[:, 0]) - logits[rows, target])
        residual = exp / total
        residual[rows, target] -= 1.0
        residual /= n
        grad_weight = residual.T @ x + l2 * weight
        value = loss + 0.5 * l2 * (theta[:k * d] @ theta[:k * d])
        return float(value), np.concatenate([grad_weight.ravel(), residual.sum(axis=0)])

    theta = np.zeros(k * d + k)
    if init is not None:
        theta[:k * d] = np.asarray(init[0], dtype=np.float64)[present].ravel()
        theta[k * d:] = np.asarray(init[1], dtype=np.float64)[present]
    theta = _lbfgs(objective, theta, tol, max_iter)
    weight = np.zeros((n_classes, d))
    bias = np.full(n_classes, ABSENT_BIAS)
    weight[present] = theta[:k * d].reshape(k, d)
    bias[present] = theta[k * d:]
    return weight, bias


def _check(features, labels, n_classes: int, groups, l2_grid: Sequence[float], folds: int):
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if x.size == 0 or y.size == 0:
        raise ValueError("empty input: no features or no labels")
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array (n, D), got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"features ({len(x)} rows) and labels (shape {y.shape}) differ in length")
    if not np.all(np.isfinite(x)):
        raise ValueError("features contain NaN or infinity")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"label {int(y.min() if y.min() < 0 else y.max())} is outside [0, {n_classes})")
    if len(np.unique(y)) < 2:
        raise ValueError(f"need at least 2 classes present in the labels, got {len(np.unique(y))}")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (len(x),):
            raise ValueError(f"groups (shape {groups.shape}) must have one id per sample ({len(x)})")
    if len(l2_grid) == 0 or not all(np.isfinite(v) and v > 0 for v in l2_grid):
        raise ValueError(f"l2_grid must be non-empty, positive and finite, got {tuple(l2_grid)}")
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    return x, y.astype(np.int64), groups


def fit_head(features, labels, n_classes: int, *, groups=None, l2_grid: Sequence[float] = L2_GRID,
             folds: int = 5, seed: int = 0, on_step: Callable[[int, int], None] | None = None) -> Head:
    """features float (n, D); labels int (n,) in [0, n_classes); groups: optional (n,) ids (e.g. the video
    each clip came from): a group is never split between training and validation folds (clips of one video
    are near-duplicates). Standardise on the data, choose l2 by `folds`-fold CV accuracy (ties: the larger
    l2), refit on all data. on_step(done, total) is called after each fit (for a progress bar).

    With fewer groups (or samples, without groups) than ``folds``, as many folds as there are groups; with
    fewer than 2, no cross-validation: the middle of the sorted grid, ``cv_accuracy`` NaN.
    """
    x, y, groups = _check(features, labels, n_classes, groups, l2_grid, folds)
    grid = sorted((float(v) for v in l2_grid), reverse=True)  # large to small: warm starts
    if groups is None:
        groups = np.arange(len(x))
    folds = min(folds, len(np.unique(groups)))
    total = (folds * len(grid) if folds >= 2 else 0) + 1
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if on_step is not None:
            on_step(done, total)

    if folds >= 2:
        fold_of = group_folds(groups, folds, seed, labels=y)
        accuracy = np.zeros((folds, len(grid)))
        for fold in range(folds):
            train, valid = fold_of != fold, fold_of == fold
            mean, std = standardisation(x[train])
            z_train, z_valid = (x[train] - mean) / std, (x[valid] - mean) / std
            init = None
            for j, l2 in enumerate(grid):
                init = fit_at(z_train, y[train], n_classes, l2, init=init)
                predicted = np.argmax(z_valid @ init[0].T + init[1], axis=1)
                accuracy[fold, j] = np.mean(predicted == y[valid])
                step()
        scores = accuracy.mean(axis=0)
        best = int(np.flatnonzero(scores >= scores.max() - 1e-12)[0])  # the first (largest l2) of the ties
        l2, cv_accuracy = grid[best], float(scores[best])
    else:
        l2, cv_accuracy = sorted(grid)[len(grid) // 2], float("nan")
    mean, std = standardisation(x)
    weight, bias = fit_at((x - mean) / std, y, n_classes, l2)
    step()
    return Head(weight=weight.astype(np.float32), bias=bias.astype(np.float32), mean=mean.astype(np.float32),
                std=std.astype(np.float32), l2=l2, cv_accuracy=cv_accuracy)
