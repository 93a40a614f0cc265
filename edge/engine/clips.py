"""A lane's clip stage: frames into the clip ring, ready clips to the shared scheduler, outcomes
back in clip order.

Each sampled frame is preprocessed once into the ring (BGR when the camera needs full
pictures, else the decoder's planes); the sampler says when a clip is ready; a clip whose
frames all move less than ``gating.min_motion`` is not inferred (outcome ``gated``);
every other clip is leased from the ring (a zero-copy view) and offered to the scheduler
as a ticket. Outcomes may arrive in any order: ``settle`` releases the lease at once and
hands the clips that are now complete, in clip order, to ``on_ready``.

With ``privacy.mask_inference`` the camera's masks are filled black in each sampled frame before
it enters the ring, so the model sees the masked picture (planes are copied first: the decoder
predicts later frames from them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.engine.scheduler import Outcome, Ticket
from edge.metrics import Metrics
from edge.postprocess import ClipOrder
from edge.preprocess import ClipRing
from edge.privacy import Masks
from edge.records import Frame
from edge.sampling import ClipSampler, PlannedClip

GATED = "gated"  # an outcome the clip stage makes itself: the clip was too still to infer


@dataclass
class PendingClip:
    """A clip between its offer and its outcome."""

    planned: PlannedClip
    lease: object | None
    preprocess_ms: float   # this clip's share of preprocessing (the frames pushed since the previous clip)
    ready_ns: int          # perf_counter_ns when its newest frame was handed over by the reader


class ClipStage:
    """Ring, sampler, still-scene gate and tickets of one lane (lane thread only).

    ``wait_for_outcome()`` is the lane's backpressure: it settles one outcome (the ring is
    full of leased clips) and keeps any other item for later. ``on_ready(clip, outcome)``
    gets every clip once, in clip order. ``masks`` (``privacy.mask_inference``): filled black in every
    frame the ring takes.
    """

    def __init__(self, lane: str, *, sampler: ClipSampler, ring: ClipRing, scheduler, metrics: Metrics,
                 min_motion: float, bgr_ring: bool, wait_for_outcome: Callable[[], None],
                 on_ready: Callable[[PendingClip, Outcome], None], masks: Masks | None = None) -> None:
        self.lane = lane
        self.sampler = sampler
        self.ring = ring
        self.scheduler = scheduler
        self.metrics = metrics
        self.min_motion = float(min_motion)
        self.bgr_ring = bgr_ring
        self._wait_for_outcome = wait_for_outcome
        self._on_ready = on_ready
        self.masks = masks if masks else None
        self._pending: dict[int, PendingClip] = {}
        self._order = ClipOrder()
        self._next_ticket = 0
        self._preprocess_since_clip_ms = 0.0

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def push(self, frame: Frame, ready_ns: int) -> None:
        """Preprocess a sampled frame into the ring; offer the clip it completes, if any."""
        if not self.sampler.wants(frame.index):
            return
        while not self.ring.can_push():
            self._wait_for_outcome()
        t0 = time.perf_counter_ns()
        # One path per camera, so every clip is made the same way: BGR when the camera writes video or
        # shows a window (the seed's exact arithmetic), else the decoder's planes when it has them.
        if frame.planes is not None and (frame.image is None or not self.bgr_ring):
            planes = frame.planes if self.masks is None else self.masks.apply_planes(*frame.planes)
            seq = self.ring.push_yuv(*planes)
        else:
            seq = self.ring.push(frame.image if self.masks is None else self.masks.apply(frame.image))
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        self.metrics.record("preprocess", elapsed)
        self._preprocess_since_clip_ms += elapsed
        planned = self.sampler.add(seq, frame.index, frame.time_s)
        if planned is not None:
            self._offer(planned, ready_ns)

    def finish(self) -> None:
        """The source ended: batch mode completes its last clip by looping its frames."""
        tail = self.sampler.finish()
        if tail is None:
            return
        for seq in tail.repeat_seqs:
            while not self.ring.can_push():
                self._wait_for_outcome()
            self.ring.repeat(seq)
        self._offer(tail.planned, time.perf_counter_ns())

    def _offer(self, planned: PlannedClip, ready_ns: int) -> None:
        number = self._next_ticket
        self._next_ticket += 1
        preprocess_ms, self._preprocess_since_clip_ms = self._preprocess_since_clip_ms, 0.0
        first_seq = planned.last_seq - self.sampler.clip_len + 1
        # The largest frame difference is left out: an H.264 keyframe re-encodes the sensor noise of a
        # still scene as one spike (benchmarks/bench_gate_noise.py), and one frame is not an action.
        if self.min_motion > 0 and self.ring.max_motion(first_seq, planned.last_seq,
                                                        ignore_largest=1) < self.min_motion:
            self._pending[number] = PendingClip(planned, None, preprocess_ms, ready_ns)
            self.settle(Outcome(Ticket(self.lane, number), GATED))
            return
        lease = self.ring.acquire(planned.last_seq)
        self._pending[number] = PendingClip(planned, lease, preprocess_ms, ready_ns)
        self.scheduler.offer(Ticket(self.lane, number, lease.view, ready_ns=ready_ns))

    def settle(self, outcome: Outcome) -> None:
        """Release the outcome's lease; hand the clips now complete to ``on_ready``, in clip order."""
        entry = self._pending.pop(outcome.ticket.number)
        if entry.lease is not None:
            self.ring.release(entry.lease)
        for ready_entry, ready_outcome in self._order.push(outcome.ticket.number, (entry, outcome)):
            self._on_ready(ready_entry, ready_outcome)

    def abandon(self, outcome: Outcome) -> None:
        """After a fault: give the lease back, report nothing."""
        entry = self._pending.pop(outcome.ticket.number, None)
        if entry is not None and entry.lease is not None:
            self.ring.release(entry.lease)


__all__ = ["GATED", "ClipStage", "PendingClip"]
