"""Logits → ``Prediction``: softmax, temporal smoothing, top-k, threshold.

Smoothing is stateful and only means something in time order: the caller
must feed ``Postprocessor`` in ``clip_index`` order, even when asynchronous
inference completes out of order. ``ClipOrder`` is a small reorder buffer for
that; ``Postprocessor`` raises ``ValueError`` if, with smoothing on, a clip
arrives at or before one it has already seen.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np

from edge.records import CUSTOM_LOGITS, FEATURES, Clip, Prediction, StageLatency

SMOOTHING_KINDS = ("none", "mean", "ema")


def softmax(logits) -> np.ndarray:
    """Numerically stable softmax over the last axis; returns float32 of the same shape.

    Raises ``ValueError`` for an empty array.
    """
    values = np.asarray(logits, dtype=np.float32)
    if values.size == 0:
        raise ValueError("softmax of an empty array")
    shifted = values - values.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32, copy=False)


class Smoother:
    """Temporal smoothing of per-clip probabilities.

    ``none``: pass-through. ``mean``: the mean of the last ``window`` clips.
    ``ema``: ``s = alpha * p + (1 - alpha) * s_prev`` (the first clip starts it).
    Feed clips in time order.
    """

    def __init__(self, kind: str = "none", window: int = 1, alpha: float = 0.5) -> None:
        if kind not in SMOOTHING_KINDS:
            raise ValueError(f"unknown smoothing {kind!r}; expected none, mean:N or ema:A")
        if kind == "mean" and (not isinstance(window, int) or window < 1):
            raise ValueError(f"smoothing mean window must be an integer >= 1, got {window!r}")
        if kind == "ema" and not (0.0 < alpha <= 1.0):
            raise ValueError(f"smoothing ema alpha must be in (0, 1], got {alpha!r}")
        self.kind, self.window, self.alpha = kind, window, alpha
        self._history: deque[np.ndarray] = deque(maxlen=window if kind == "mean" else 1)
        self._state: np.ndarray | None = None

    @classmethod
    def parse(cls, spec: str) -> "Smoother":
        """``"none"``, ``"mean:N"`` (N ≥ 1 clips) or ``"ema:A"`` (0 < A ≤ 1); ValueError otherwise.

        The grammar is the config's (``edge.config.parse_smoothing``), so both accept the same specs.
        """
        from edge.config import ConfigError, parse_smoothing

        try:
            parsed = parse_smoothing(spec)
        except ConfigError as error:
            raise ValueError(f"bad smoothing {spec!r}: {error}") from None
        if parsed.kind == "mean":
            return cls("mean", window=parsed.window)
        if parsed.kind == "ema":
            return cls("ema", alpha=parsed.alpha)
        return cls("none")

    @property
    def spec(self) -> str:
        return {"none": "none", "mean": f"mean:{self.window}", "ema": f"ema:{self.alpha:g}"}[self.kind]

    def reset(self) -> None:
        self._history.clear()
        self._state = None

    def __call__(self, probabilities: np.ndarray) -> np.ndarray:
        """Smooth the next clip's probabilities (float32 (C,)); returns a new float32 array."""
        current = np.asarray(probabilities, dtype=np.float32)
        if self.kind == "none":
            return current.copy()
        if self.kind == "mean":
            self._history.append(current.copy())
            return np.mean(np.stack(self._history), axis=0, dtype=np.float64).astype(np.float32)
        if self._state is None:
            self._state = current.astype(np.float64)
        else:
            self._state = self.alpha * current + (1.0 - self.alpha) * self._state
        return self._state.astype(np.float32)

    def __repr__(self) -> str:
        return f"Smoother({self.spec!r})"


class ClipOrder:
    """Reorder buffer: releases results in consecutive ``clip_index`` order.

    ``push(clip_index, item)`` returns the items now ready, in order. Clip
    indices must be consecutive integers starting at ``first``; a skipped index
    must still be pushed (e.g. with ``None``) or later ones wait forever.
    """

    def __init__(self, first: int = 0) -> None:
        self.next_index = first
        self._waiting: dict[int, object] = {}

    def push(self, clip_index: int, item) -> list:
        if clip_index < self.next_index or clip_index in self._waiting:
            raise ValueError(f"clip {clip_index} pushed twice")
        self._waiting[clip_index] = item
        ready = []
        while self.next_index in self._waiting:
            ready.append(self._waiting.pop(self.next_index))
            self.next_index += 1
        return ready

    @property
    def pending(self) -> int:
        return len(self._waiting)


def now_iso() -> str:
    """Local wall-clock time, ISO 8601 with milliseconds and the UTC offset."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds")


class Postprocessor:
    """softmax → smoothing → top-k → threshold, for one source.

    ``labels``: class names (len = number of logits). ``smoothing``: a spec
    string (``"none"``, ``"mean:N"``, ``"ema:A"``) or a ``Smoother``.
    ``threshold``: a top score below it makes the prediction ``uncertain``.
    Call it in ``clip_index`` order (see the module docstring).
    """

    def __init__(self, labels: Sequence[str], top_k: int = 5, smoothing: str | Smoother = "none",
                 threshold: float = 0.0, clock: Callable[[], str] = now_iso, *,
                 custom_labels: Sequence[str] = (), outputs: Sequence[str] = ("logits",)) -> None:
        self.labels = tuple(labels)
        if not self.labels:
            raise ValueError("no labels")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if not (0.0 <= threshold <= 1.0):
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.top_k = min(int(top_k), len(self.labels))
        self.smoother = smoothing if isinstance(smoothing, Smoother) else Smoother.parse(smoothing)
        self.threshold = float(threshold)
        self._clock = clock
        self._last_clip_index: int | None = None
        # A grafted head's logits and the pooled feature come as the model's other outputs (by role).
        self.custom_labels = tuple(custom_labels)
        self._extra_roles = tuple(outputs)[1:]
        self._custom_smoother = Smoother.parse(self.smoother.spec) if self.custom_labels else None

    def _top(self, labels: tuple[str, ...], probabilities: np.ndarray) -> tuple[tuple[str, float], ...]:
        # Stable sort: equal scores keep label order, so results are reproducible.
        order = np.argsort(-probabilities, kind="stable")[: min(self.top_k, len(labels))]
        return tuple((labels[i], float(probabilities[i])) for i in order)

    def __call__(self, clip: Clip, logits, latency: StageLatency | None = None,
                 extra: Sequence[np.ndarray] = ()) -> Prediction:
        """Make the ``Prediction`` for ``clip`` from its logits (float (C,) or (1, C)) and the model's other
        outputs (``extra``, in ``outputs[1:]`` order).

        Raises ``ValueError`` when the logits do not match the labels, or when
        smoothing is on and ``clip`` does not come after the previous clip.
        """
        values = np.asarray(logits, dtype=np.float32).reshape(-1)
        if values.shape[0] != len(self.labels):
            raise ValueError(f"model gave {values.shape[0]} scores for {len(self.labels)} labels")
        if self.smoother.kind != "none" and self._last_clip_index is not None \
                and clip.clip_index <= self._last_clip_index:
            raise ValueError(f"clip {clip.clip_index} arrived after clip {self._last_clip_index}; "
                             "smoothing needs clips in clip_index order")
        self._last_clip_index = clip.clip_index
        probabilities = self.smoother(softmax(values))
        top_k = self._top(self.labels, probabilities)
        label, score = top_k[0]
        outputs = dict(zip(self._extra_roles, extra))
        custom_top_k, custom = (), None
        if self._custom_smoother is not None and CUSTOM_LOGITS in outputs:
            custom = self._custom_smoother(softmax(outputs[CUSTOM_LOGITS]))
            custom_top_k = self._top(self.custom_labels, custom)
        return Prediction(clip=clip, label=label, score=score, top_k=top_k,
                          probabilities=probabilities, uncertain=score < self.threshold,
                          latency=latency, wall_time=self._clock(), custom_top_k=custom_top_k,
                          custom_probabilities=custom, features=outputs.get(FEATURES))
