"""The pure NumPy/OpenCV twin of the native hot path (``edge._hotpath``).

Same names, signatures and semantics as the Cython extension; it is the
fallback when the extension is missing and the oracle the tests compare the
extension against. ``RingFullError`` and ``ClipLease`` defined here are shared
by both implementations. Do not import this module directly outside tests and
benchmarks: use ``edge.preprocess``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

KINETICS_MEAN = (114.7748, 107.7354, 99.4750)  # RGB order
INTERPOLATIONS = ("linear", "area")


class RingFullError(RuntimeError):
    """The next write would overwrite a slot inside a clip that is still leased."""


@dataclass(frozen=True, eq=False)
class ClipLease:
    """A clip handed out by ``ClipRing.acquire``: slots ``first_seq..last_seq`` (inclusive).

    ``view`` is float32 (clip_len, 3, S, S), C-contiguous, oldest frame first, and
    shares memory with the ring; it stays unchanged until the lease is released.
    Leases compare and hash by identity.
    """

    first_seq: int
    last_seq: int
    view: np.ndarray


def resize_plan(height: int, width: int, size: int) -> tuple[float, int, int, int, int]:
    """How blobFromImages(crop=True) maps a ``height``×``width`` frame to ``size``×``size``.

    Returns ``(factor, resized_h, resized_w, crop_y, crop_x)``: the float32 resize
    factor (shorter side becomes ``size``), the resized shape cv2.resize computes
    from it (rounded), and the top-left corner of the centre crop (truncated).
    """
    factor = float(max(np.float32(size) / np.float32(width), np.float32(size) / np.float32(height)))
    resized_w = int(np.rint(width * factor))
    resized_h = int(np.rint(height * factor))
    return factor, resized_h, resized_w, int(0.5 * (resized_h - size)), int(0.5 * (resized_w - size))


def check_frame(frame) -> None:
    """Raise ValueError unless ``frame`` is a non-empty C-contiguous uint8 H×W×3 array."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame must be a numpy.ndarray, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8, got dtype {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be H×W×3 (BGR), got shape {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame must not be empty, got shape {frame.shape}")
    if not frame.flags.c_contiguous:
        raise ValueError("frame must be C-contiguous (use np.ascontiguousarray)")


def check_out(out) -> int:
    """Raise ValueError unless ``out`` is a writeable C-contiguous float32 3×S×S array; return S."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != np.float32:
        raise ValueError(f"out must be float32, got dtype {out.dtype}")
    if out.ndim != 3 or out.shape[0] != 3 or out.shape[1] != out.shape[2] or out.shape[1] == 0:
        raise ValueError(f"out must be 3×S×S with S >= 1, got shape {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    return out.shape[1]


def check_params(mean, scale, interpolation) -> tuple[tuple[float, float, float], float]:
    """Validate mean (3 numbers, RGB), scale (finite number) and interpolation name."""
    try:
        mean_rgb = tuple(float(m) for m in mean)
    except TypeError as error:
        raise ValueError(f"mean must be 3 numbers (RGB), got {mean!r}") from error
    if len(mean_rgb) != 3:
        raise ValueError(f"mean must be 3 numbers (RGB), got {len(mean_rgb)}")
    scale = float(scale)
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    return mean_rgb, scale


def mirrored_storage_slots(clip_len: int, capacity: int) -> int:
    """Rows of a ring's storage: a window starts at a physical slot < capacity and spans clip_len
    slots, so it ends before capacity + clip_len - 1; only the first clip_len - 1 slots need a mirror."""
    return capacity + clip_len - 1


def check_ring_params(clip_len, size, capacity) -> tuple[int, int, int]:
    """Validated ``(clip_len, size, capacity)``; capacity defaults to 2 × clip_len. ValueError otherwise."""
    clip_len, size = int(clip_len), int(size)
    capacity = 2 * clip_len if capacity is None else int(capacity)
    if clip_len < 1 or size < 1:
        raise ValueError(f"clip_len and size must be >= 1, got {clip_len} and {size}")
    if capacity < clip_len:
        raise ValueError(f"capacity ({capacity}) must be >= clip_len ({clip_len})")
    return clip_len, size, capacity


def _resample_crop(frame: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    height, width = frame.shape[:2]
    factor, _, _, crop_y, crop_x = resize_plan(height, width, size)
    if (height, width) == (size, size):
        return frame
    # "area" is a box filter for downscales; cv2 (and the native kernel) use bilinear to upscale.
    flag = cv2.INTER_AREA if interpolation == "area" and factor < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, None, fx=factor, fy=factor, interpolation=flag)
    return resized[crop_y : crop_y + size, crop_x : crop_x + size]


def _write_slot(crop: np.ndarray, out: np.ndarray, mean_rgb, scale: float) -> None:
    for channel in range(3):
        np.subtract(crop[:, :, 2 - channel], np.float32(mean_rgb[channel]), out=out[channel], dtype=np.float32)
    if scale != 1.0:
        np.multiply(out, np.float32(scale), out=out)


def preprocess_frame(frame, out, mean=KINETICS_MEAN, scale=1.0, interpolation="linear") -> None:
    """Resize (shorter side to S), centre-crop, BGR→RGB, subtract mean, scale, into ``out``.

    frame: uint8 H×W×3 BGR, C-contiguous, any size >= 1×1.
    out: float32 3×S×S, C-contiguous; ``out[c] = (crop_rgb[c] - mean[c]) * scale``.
    ``interpolation`` "linear" matches blobFromImages(crop=True); "area" is a box filter
    for downscales. Raises ValueError for a bad dtype, shape, contiguity or size.
    """
    check_frame(frame)
    size = check_out(out)
    mean_rgb, scale = check_params(mean, scale, interpolation)
    _write_slot(_resample_crop(frame, size, interpolation), out, mean_rgb, scale)


class ClipRing:
    """A circular buffer of preprocessed slots handing out zero-copy clips.

    Storage is float32 (capacity + clip_len - 1, 3, S, S); slot ``seq`` is written at
    ``seq % capacity``, and the first clip_len - 1 physical slots are mirrored at
    ``+ capacity`` (no window reaches further), so the clip_len slots of any window
    are one contiguous block. A leased clip is never
    overwritten: ``push``/``repeat`` raise RingFullError instead. Not thread-safe:
    one thread pushes and acquires.
    """

    def __init__(self, clip_len=16, size=112, capacity=None, mean=KINETICS_MEAN, scale=1.0,
                 interpolation="linear"):
        clip_len, size, capacity = check_ring_params(clip_len, size, capacity)
        self._mean, self._scale = check_params(mean, scale, interpolation)
        self._interpolation = interpolation
        self._clip_len, self._size, self._capacity = clip_len, size, capacity
        self._storage = np.zeros((mirrored_storage_slots(clip_len, capacity), 3, size, size), dtype=np.float32)
        self._pushed = 0
        self._leases: dict[ClipLease, int] = {}

    clip_len = property(lambda self: self._clip_len)
    size = property(lambda self: self._size)
    capacity = property(lambda self: self._capacity)
    mean = property(lambda self: self._mean)
    scale = property(lambda self: self._scale)
    interpolation = property(lambda self: self._interpolation)
    pushed = property(lambda self: self._pushed, doc="Slots written so far (= next sequence number).")
    held = property(lambda self: len(self._leases), doc="Unreleased leases.")

    def can_push(self) -> bool:
        """False when the next write would overwrite a slot inside a held lease."""
        overwritten = self._pushed - self._capacity
        return overwritten < 0 or all(first > overwritten for first in self._leases.values())

    def _next_slot(self) -> int:
        if not self.can_push():
            raise RingFullError(
                f"slot {self._pushed - self._capacity} is inside a held clip: release a lease first "
                f"({len(self._leases)} held, capacity {self._capacity})"
            )
        return self._pushed % self._capacity

    def _commit(self, index: int) -> int:
        if index < self._clip_len - 1:  # only these slots are read through their mirror
            self._storage[index + self._capacity] = self._storage[index]
        seq = self._pushed
        self._pushed += 1
        return seq

    def push(self, frame) -> int:
        """Preprocess ``frame`` (uint8 H×W×3 BGR) into the next slot; return its sequence number.

        Raises ValueError for a bad frame and RingFullError if a held clip would be overwritten.
        """
        check_frame(frame)
        index = self._next_slot()
        crop = _resample_crop(frame, self._size, self._interpolation)
        _write_slot(crop, self._storage[index], self._mean, self._scale)
        return self._commit(index)

    def repeat(self, seq) -> int:
        """Copy slot ``seq`` into the next slot (loop padding); return the new sequence number."""
        source = self._storage[self._physical(seq)].copy()
        index = self._next_slot()
        self._storage[index] = source
        return self._commit(index)

    def _physical(self, seq) -> int:
        seq = int(seq)
        if not self._pushed - self._capacity <= seq < self._pushed or seq < 0:
            raise IndexError(f"slot {seq} is not in the ring (slots {max(0, self._pushed - self._capacity)}"
                             f"..{self._pushed - 1} are)")
        return seq % self._capacity

    def slot(self, seq) -> np.ndarray:
        """View (3, S, S) of slot ``seq``; IndexError if it is not in the ring."""
        return self._storage[self._physical(seq)]

    def acquire(self, last_seq=None) -> ClipLease:
        """Lease the clip_len slots ending at ``last_seq`` (default: the newest).

        ValueError if fewer than clip_len slots were pushed or the window left the ring.
        """
        last = self._pushed - 1 if last_seq is None else int(last_seq)
        first = last - self._clip_len + 1
        if self._pushed < self._clip_len:
            raise ValueError(f"only {self._pushed} slots pushed, a clip needs {self._clip_len}")
        if first < 0 or last >= self._pushed or first < self._pushed - self._capacity:
            raise ValueError(f"clip {first}..{last} is not in the ring (slots "
                             f"{max(0, self._pushed - self._capacity)}..{self._pushed - 1} are)")
        start = first % self._capacity
        lease = ClipLease(first, last, self._storage[start : start + self._clip_len])
        self._leases[lease] = first
        return lease

    def release(self, lease) -> None:
        """Give a clip back; idempotent. ValueError for a lease from another ring."""
        if not isinstance(lease, ClipLease):
            raise TypeError(f"release() takes a ClipLease, got {type(lease).__name__}")
        if self._leases.pop(lease, None) is None and lease.view.base is not self._storage:
            raise ValueError("this lease was not handed out by this ring")
