"""Clip planning: which source frames enter the clip ring, and when a clip is ready.

The sampler is pure bookkeeping over frame indices and ring sequence numbers;
it never touches pixels. The pipeline pushes a frame into the ``ClipRing`` only
when ``wants(index)`` says so (every ``frame_step``-th frame), tells the
sampler the sequence number the ring gave it, and gets back a ``PlannedClip``
when a clip is complete.

- ``batch``: consecutive, non-overlapping clips of ``clip_len`` sampled frames.
  ``finish()`` completes a partial tail by looping its frames (kenshohara's
  LoopPadding), so N sampled frames give ceil(N / clip_len) clips.
- ``rolling``: a sliding window of the last ``clip_len`` sampled frames; a clip
  every ``stride`` sampled frames once the window is full.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from edge.records import Clip

MODES = ("batch", "rolling")


@dataclass(frozen=True)
class PlannedClip:
    """A clip ready for inference: its record and the ring sequence number of its newest slot."""

    clip: Clip
    last_seq: int


@dataclass(frozen=True)
class TailPlan:
    """A loop-padded tail: ring slots to repeat (in order), then the clip they complete."""

    repeat_seqs: tuple[int, ...]
    planned: PlannedClip


@dataclass(frozen=True)
class _Sampled:
    seq: int
    index: int
    time_s: float


class ClipSampler:
    """Plans batch or rolling clips over a stream of source frames."""

    def __init__(self, mode: str = "batch", clip_len: int = 16, frame_step: int = 1, stride: int = 1):
        if mode not in MODES:
            raise ValueError(f"sampling mode must be one of {MODES}, got {mode!r}")
        for name, value in (("clip_len", clip_len), ("frame_step", frame_step), ("stride", stride)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.mode = mode
        self.clip_len = int(clip_len)
        self.frame_step = int(frame_step)
        self.stride = int(stride) if mode == "rolling" else int(clip_len)
        self._window: deque[_Sampled] = deque(maxlen=self.clip_len)
        self._since_last_clip = 0
        self._clips_planned = 0

    @property
    def clips_planned(self) -> int:
        return self._clips_planned

    @property
    def warming_up(self) -> tuple[int, int] | None:
        """``(frames gathered, clip_len)`` until the first clip is planned, else None."""
        if self._clips_planned:
            return None
        return (len(self._window), self.clip_len)

    def ring_capacity(self, max_in_flight: int) -> int:
        """Ring slots needed so that ``max_in_flight`` held clips never block the next push."""
        return self.clip_len + max(1, max_in_flight) * self.stride + 1

    def wants(self, frame_index: int) -> bool:
        """True when this source frame belongs in the ring (every ``frame_step``-th frame)."""
        return frame_index % self.frame_step == 0

    def add(self, seq: int, frame_index: int, time_s: float) -> PlannedClip | None:
        """Record that ``frame_index`` was pushed as ring slot ``seq``; return a clip if one is ready."""
        self._window.append(_Sampled(seq, frame_index, time_s))
        self._since_last_clip += 1
        if len(self._window) < self.clip_len:
            return None
        if self.mode == "batch":
            if self._since_last_clip < self.clip_len:
                return None
        elif self._clips_planned and self._since_last_clip < self.stride:
            return None
        return self._plan(list(self._window))

    def finish(self) -> TailPlan | None:
        """Batch mode: the loop-padded tail clip, if sampled frames are left over; rolling: None."""
        if self.mode != "batch":
            return None
        pending = min(self._since_last_clip, len(self._window))
        if pending == 0:
            return None
        tail = list(self._window)[-pending:]
        padded = [tail[i % len(tail)] for i in range(self.clip_len)]
        repeat = padded[len(tail):]
        next_seq = tail[-1].seq + 1
        repeat_seqs = tuple(item.seq for item in repeat)
        last_seq = next_seq + len(repeat) - 1 if repeat else tail[-1].seq
        planned = self._make(padded, last_seq)
        self._since_last_clip = 0
        return TailPlan(repeat_seqs, planned)

    def _plan(self, window: list[_Sampled]) -> PlannedClip:
        self._since_last_clip = 0
        return self._make(window, window[-1].seq)

    def _make(self, frames: list[_Sampled], last_seq: int) -> PlannedClip:
        clip = Clip(
            clip_index=self._clips_planned,
            frame_indices=tuple(item.index for item in frames),
            start_time_s=min(item.time_s for item in frames),
            end_time_s=max(item.time_s for item in frames),
        )
        self._clips_planned += 1
        return PlannedClip(clip, last_seq)
