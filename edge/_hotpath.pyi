"""Typing stub for the native hot path (ext/_hotpath.pyx); edge.hotpath_numpy has the same API."""

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge.hotpath_numpy import ClipLease as ClipLease
from edge.hotpath_numpy import RingFullError as RingFullError

KINETICS_MEAN: tuple[float, float, float]

def preprocess_frame(
    frame: npt.NDArray[np.uint8],
    out: npt.NDArray[np.float32],
    mean: Sequence[float] = ...,
    scale: float = ...,
    interpolation: Literal["linear", "area"] = ...,
) -> None: ...

class ClipRing:
    clip_len: int
    size: int
    capacity: int
    mean: tuple[float, float, float]
    scale: float
    interpolation: str
    def __init__(
        self,
        clip_len: int = ...,
        size: int = ...,
        capacity: int | None = ...,
        mean: Sequence[float] = ...,
        scale: float = ...,
        interpolation: Literal["linear", "area"] = ...,
    ) -> None: ...
    @property
    def pushed(self) -> int: ...
    @property
    def held(self) -> int: ...
    def can_push(self) -> bool: ...
    def push(self, frame: npt.NDArray[np.uint8]) -> int: ...
    def repeat(self, seq: int) -> int: ...
    def slot(self, seq: int) -> npt.NDArray[np.float32]: ...
    def acquire(self, last_seq: int | None = ...) -> ClipLease: ...
    def release(self, lease: ClipLease) -> None: ...
