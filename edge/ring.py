"""The clip ring: preprocessed slots in one buffer, handed to inference as zero-copy clips.

The bookkeeping (slots, mirrored storage, sequence numbers, leases, motion values) is
written once, here; the pixels are written by a kernel module, native (``edge._hotpath``)
or the NumPy twin (``edge.hotpath_numpy``). ``edge.preprocess`` binds the two:
``ring_class(kernels)`` is a ``ClipRing`` whose slots that module writes. This module
never imports the extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from edge.hotpath_numpy import KINETICS_MEAN


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


class ClipRing:
    """A circular buffer of preprocessed slots handing out zero-copy clips.

    Storage is float32 (capacity + clip_len - 1, 3, S, S); slot ``seq`` is written at
    ``seq % capacity``, and the first clip_len - 1 physical slots are mirrored at
    ``+ capacity`` (no window reaches further), so the clip_len slots of any window
    are one contiguous block. A leased clip is never overwritten: ``push``/``repeat``
    raise RingFullError instead. Beside each slot the ring keeps its motion (mean
    absolute difference from the previous slot, grey levels), measured by the kernel
    while it writes the slot. Not thread-safe: one thread pushes and acquires (the
    native kernels release the GIL while they compute).

    Use ``edge.preprocess.ClipRing`` (or ``implementation(name).ClipRing``): this base
    class has no kernels.
    """

    kernels: ModuleType | None = None  # the module whose SlotWriter writes the slots

    def __init__(self, clip_len=16, size=112, capacity=None, mean=KINETICS_MEAN, scale=1.0,
                 interpolation="linear"):
        if self.kernels is None:
            raise TypeError("ClipRing has no kernels: use edge.preprocess.ClipRing")
        clip_len, size, capacity = check_ring_params(clip_len, size, capacity)
        self._writer = self.kernels.SlotWriter(size, mean, scale, interpolation)
        self._clip_len, self._size, self._capacity = clip_len, size, capacity
        self._storage = np.zeros((mirrored_storage_slots(clip_len, capacity), 3, size, size), dtype=np.float32)
        self._slots = tuple(self._storage)  # one view per physical slot, made once: push allocates nothing
        self._motion = np.zeros(capacity, dtype=np.float64)  # by physical slot
        self._pushed = 0
        self._leases: dict[ClipLease, int] = {}

    clip_len = property(lambda self: self._clip_len)
    size = property(lambda self: self._size)
    capacity = property(lambda self: self._capacity)
    mean = property(lambda self: self._writer.mean)
    scale = property(lambda self: self._writer.scale)
    interpolation = property(lambda self: self._writer.interpolation)
    pushed = property(lambda self: self._pushed, doc="Slots written so far (= next sequence number).")
    held = property(lambda self: len(self._leases), doc="Unreleased leases.")

    def can_push(self) -> bool:
        """False when the next write would overwrite a slot inside a held lease."""
        overwritten = self._pushed - self._capacity
        if overwritten < 0 or not self._leases:
            return True
        return all(first > overwritten for first in self._leases.values())

    def _next_slot(self) -> int:
        if not self.can_push():
            raise RingFullError(
                f"slot {self._pushed - self._capacity} is inside a held clip: release a lease first "
                f"({len(self._leases)} held, capacity {self._capacity})"
            )
        return self._pushed % self._capacity

    def _previous(self):
        """The slot written last (the motion reference), None before the first push."""
        return self._slots[(self._pushed - 1) % self._capacity] if self._pushed else None

    def _commit(self, index: int, motion: float) -> int:
        if index < self._clip_len - 1:  # only these slots are read through their mirror
            np.copyto(self._slots[index + self._capacity], self._slots[index])
        self._motion[index] = motion
        seq = self._pushed
        self._pushed += 1
        return seq

    def push(self, frame) -> int:
        """Preprocess ``frame`` (uint8 H×W×3 BGR) into the next slot; return its sequence number.

        Raises ValueError for a bad frame and RingFullError if a held clip would be overwritten.
        """
        index = self._next_slot()
        return self._commit(index, self._writer.write(frame, self._slots[index], self._previous()))

    def push_yuv(self, y, u, v) -> int:
        """Preprocess yuv420p planes (Y H×W, U and V ⌈H/2⌉×⌈W/2⌉, uint8, any strides; BT.601
        limited range as FFmpeg/cv2 convert to BGR) into the next slot; return its sequence number.

        Same crop, resize and mean as ``push``. Raises ValueError for bad planes and
        RingFullError if a held clip would be overwritten.
        """
        index = self._next_slot()
        return self._commit(index, self._writer.write_yuv(y, u, v, self._slots[index], self._previous()))

    def repeat(self, seq) -> int:
        """Copy slot ``seq`` and its motion into the next slot (loop padding); return the new
        sequence number."""
        source = self._physical(seq)
        index = self._next_slot()
        if source != index:
            np.copyto(self._slots[index], self._slots[source])
        return self._commit(index, float(self._motion[source]))

    def _physical(self, seq) -> int:
        seq = int(seq)
        if not self._pushed - self._capacity <= seq < self._pushed or seq < 0:
            raise IndexError(f"slot {seq} is not in the ring (slots {max(0, self._pushed - self._capacity)}"
                             f"..{self._pushed - 1} are)")
        return seq % self._capacity

    def slot(self, seq) -> np.ndarray:
        """View (3, S, S) of slot ``seq``; IndexError if it is not in the ring."""
        return self._slots[self._physical(seq)]

    def motion(self, seq) -> float:
        """Mean |slot(seq) - slot(seq - 1)| in grey levels (0–255; 255.0 for the first slot ever
        pushed; a repeated slot keeps its source's value). IndexError if ``seq`` left the ring."""
        return float(self._motion[self._physical(seq)])

    def max_motion(self, first_seq, last_seq, ignore_largest: int = 0) -> float:
        """The largest ``motion`` of slots ``first_seq..last_seq`` (inclusive): a clip is still
        when this is below the gate's threshold.

        ``ignore_largest`` n > 0 returns the (n+1)-th largest instead: an H.264 keyframe re-encodes
        a still scene's noise and lifts one frame per GOP to 1–2.5 grey levels
        (benchmarks/bench_gate_noise.py), which n = 1 leaves out when the GOP is at least a clip
        long. IndexError if a slot is not in the ring, ValueError if ``first_seq > last_seq`` or
        n is negative or leaves no slot.
        """
        first, last, ignore = int(first_seq), int(last_seq), int(ignore_largest)
        if first > last:
            raise ValueError(f"first_seq ({first}) must be <= last_seq ({last})")
        if not 0 <= ignore <= last - first:
            raise ValueError(f"ignore_largest must be 0..{last - first} for slots {first}..{last}, got {ignore}")
        self._physical(first)
        self._physical(last)
        start, stop = first % self._capacity, last % self._capacity
        if ignore:
            values = sorted(self._motion[seq % self._capacity] for seq in range(first, last + 1))
            return float(values[-1 - ignore])
        if start <= stop:
            return float(self._motion[start : stop + 1].max())
        return float(max(self._motion[start:].max(), self._motion[: stop + 1].max()))

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


def ring_class(kernels: ModuleType, name: str = "ClipRing") -> type[ClipRing]:
    """A ``ClipRing`` whose slots ``kernels.SlotWriter`` writes (``edge._hotpath`` or the twin)."""
    return type(name, (ClipRing,), {"kernels": kernels, "__module__": __name__,
                                    "__doc__": ClipRing.__doc__.split("\n\n    Use")[0]})
