"""Typing stub for the native hot-path kernels (ext/_hotpath.pyx + ext/hotpath_kernels.h).

edge.hotpath_numpy has the same API; the clip ring around either is edge.ring.ClipRing, bound
to a kernel module by edge.preprocess.
"""

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

KINETICS_MEAN: tuple[float, float, float]
SIMD: Literal["sse2", "scalar"]

def preprocess_frame(
    frame: npt.NDArray[np.uint8],
    out: npt.NDArray[np.float32],
    mean: Sequence[float] = ...,
    scale: float = ...,
    interpolation: Literal["linear", "area"] = ...,
    previous: npt.NDArray[np.float32] | None = ...,
) -> float: ...
def preprocess_yuv(
    y: npt.NDArray[np.uint8],
    u: npt.NDArray[np.uint8],
    v: npt.NDArray[np.uint8],
    out: npt.NDArray[np.float32],
    mean: Sequence[float] = ...,
    scale: float = ...,
    interpolation: Literal["linear", "area"] = ...,
    previous: npt.NDArray[np.float32] | None = ...,
) -> float: ...

class SlotWriter:
    size: int
    @property
    def mean(self) -> tuple[float, float, float]: ...
    @property
    def scale(self) -> float: ...
    @property
    def interpolation(self) -> str: ...
    def __init__(
        self,
        size: int = ...,
        mean: Sequence[float] = ...,
        scale: float = ...,
        interpolation: Literal["linear", "area"] = ...,
    ) -> None: ...
    def write(
        self,
        frame: npt.NDArray[np.uint8],
        out: npt.NDArray[np.float32],
        previous: npt.NDArray[np.float32] | None = ...,
    ) -> float: ...
    def write_yuv(
        self,
        y: npt.NDArray[np.uint8],
        u: npt.NDArray[np.uint8],
        v: npt.NDArray[np.uint8],
        out: npt.NDArray[np.float32],
        previous: npt.NDArray[np.float32] | None = ...,
    ) -> float: ...
