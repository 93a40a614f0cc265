"""The small typed records that stages pass to each other.

A ``Clip`` carries the source frame indices it covers, so an asynchronous
result never depends on the order in which requests complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# A grafted head's class NAME is ``custom:NAME`` where activities name labels (``ModelInfo.activity_labels``).
CUSTOM_PREFIX = "custom:"
# The names of a clip model's outputs besides its class scores (``edge.models.head`` makes them,
# ``edge.models.loading`` gives each output its role by them, ``Postprocessor`` reads them).
CUSTOM_LOGITS = "custom_logits"
FEATURES = "features"


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its 0-based source index, media time and pixels.

    ``index`` keeps counting across reconnections; ``time_s`` is media time (files: the
    container's pts; live: seconds since the first frame). ``image`` is BGR ``uint8``
    H×W×3 C-contiguous, or None when the source delivered ``planes`` only; ``planes``
    are yuv420p Y, U, V (``uint8`` 2-D, possibly strided views). A frame always has
    ``image`` or ``planes`` (or both). ``wall_s`` is ``time.time()`` at decode. ``decode_ms``
    is the decoder's own time for it (None when reading and decoding are one call, as in cv2).
    """

    index: int
    time_s: float
    image: np.ndarray | None = field(repr=False, compare=False)
    wall_s: float = 0.0
    planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    decode_ms: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Clip:
    """A clip handed to the model: which source frames, in time order (oldest first).

    ``frame_indices`` may repeat indices when a short tail was loop-padded.
    """

    clip_index: int
    frame_indices: tuple[int, ...]
    start_time_s: float
    end_time_s: float

    @property
    def start_frame(self) -> int:
        return min(self.frame_indices)

    @property
    def end_frame(self) -> int:
        return max(self.frame_indices)


@dataclass(frozen=True)
class StageLatency:
    """Milliseconds spent per stage for one clip (own time, not waiting time)."""

    preprocess: float
    infer: float
    postprocess: float
    end_to_end: float


@dataclass(frozen=True)
class Prediction:
    """What the model said about one clip, after softmax, smoothing and threshold.

    ``probabilities`` is float32 (num_classes,), already smoothed; ``top_k`` is
    ``((label, score), ...)`` best first; ``uncertain`` means the top score is
    under the configured threshold.

    A model with a grafted head (``edge-har learn``) also gives ``custom_top_k``
    and ``custom_probabilities`` (its own classes, softmax and smoothing apart
    from Kinetics'); a model loaded for ``learn`` gives the pooled ``features``.
    """

    clip: Clip
    label: str
    score: float
    top_k: tuple[tuple[str, float], ...]
    probabilities: np.ndarray = field(repr=False, compare=False)
    uncertain: bool = False
    latency: StageLatency | None = None
    wall_time: str = ""
    custom_top_k: tuple[tuple[str, float], ...] = ()
    custom_probabilities: np.ndarray | None = field(default=None, repr=False, compare=False)
    features: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def activity_probabilities(self) -> np.ndarray:
        """What activities score: the probabilities, then the custom ones (``ModelInfo.activity_labels``' order)."""
        if self.custom_probabilities is None:
            return self.probabilities
        return np.concatenate([self.probabilities, self.custom_probabilities])
