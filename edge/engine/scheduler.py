"""The shared model's queue: every lane offers ready clips, one set of infer requests serves them all.

``ClipQueue`` is the policy and nothing else (no threads, no clock of its own:
the time comes in as ``now_ns`` arguments):

- round-robin across lanes: after a lane's clip is taken, the next lane in
  registration order that has a clip goes first, so a busy camera cannot starve
  a quiet one;
- a **live** lane's clips wait in order, oldest first, within a latency budget
  (``max_wait_ns``, from the moment the clip was ready: ``Ticket.ready_ns``). A
  waiting clip older than the budget is *skipped* (its lane counts it) when the
  lane offers its next clip or a request is taken, but the lane's newest waiting
  clip never is: it is the freshest there is. So a burst of clips costs none,
  and an overloaded camera still gets its freshest clip inferred;
- a budget of 0 keeps only a live lane's freshest clip: offering a new one skips
  the older (release 2's policy);
- a **file** lane's clips wait in order and are never dropped (the lane's clip
  ring bounds how many can wait).

``Scheduler`` runs the policy on one thread in front of an
``ov.AsyncInferQueue``: it waits until a request is idle, takes the next clip
by the policy, and starts it with the clip view shared, not copied. Every
offered ticket produces exactly one ``Outcome`` (done, failed or skipped),
delivered to the lane that offered it through the ``deliver`` callable the
lane registered — results are addressed, never shared between lanes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

DONE, FAILED, SKIPPED = "done", "failed", "skipped"


@dataclass(frozen=True)
class Ticket:
    """A clip waiting for inference: which lane, the lane's own ticket number, the shared clip view."""

    lane: str
    number: int
    clip: np.ndarray | None = None  # float32 (T,C,H,W) view into the lane's ring, leased until the outcome
    offered_ns: int = 0             # stamped by the scheduler when offered
    ready_ns: int | None = None     # when the clip was ready (its newest frame queued), on the scheduler's
                                    # clock; its age for the budget counts from here. None: when offered

    @property
    def ready_at_ns(self) -> int:
        return self.offered_ns if self.ready_ns is None else self.ready_ns


@dataclass(frozen=True)
class Outcome:
    """What became of a ticket. ``logits`` (and ``extra``, the model's other outputs) are private copies
    (``done`` only)."""

    ticket: Ticket
    status: str
    logits: np.ndarray | None = None
    infer_ms: float = 0.0
    queue_wait_ms: float = 0.0
    error: str | None = None
    extra: tuple[np.ndarray, ...] = ()


class ClipQueue:
    """Round-robin over lanes; a live lane's clips wait within the budget, a file lane keeps all."""

    def __init__(self, max_wait_ns: int = 0) -> None:
        self.max_wait_ns = int(max_wait_ns)
        self._waiting: dict[str, deque[Ticket]] = {}
        self._live: dict[str, bool] = {}
        self._order: list[str] = []
        self._cursor = 0

    def add_lane(self, lane: str, live: bool) -> None:
        if lane in self._waiting:
            raise ValueError(f"lane {lane!r} is already registered")
        self._waiting[lane] = deque()
        self._live[lane] = bool(live)
        self._order.append(lane)

    def offer(self, ticket: Ticket, now_ns: int = 0) -> list[Ticket]:
        """Queue ``ticket``; return the clips of its lane skipped now (live lanes only), oldest first."""
        self._waiting[ticket.lane].append(ticket)
        return self._expire(ticket.lane, now_ns)

    def expire(self, now_ns: int) -> list[Ticket]:
        """Skip every live lane's waiting clips that are older than the budget, except each lane's newest."""
        skipped: list[Ticket] = []
        for lane in self._order:
            skipped.extend(self._expire(lane, now_ns))
        return skipped

    def _expire(self, lane: str, now_ns: int) -> list[Ticket]:
        waiting = self._waiting[lane]
        if not self._live[lane] or len(waiting) < 2:
            return []
        newest = waiting.pop()  # never skipped: the freshest clip there is
        kept, skipped = [], []
        for ticket in waiting:
            expired = self.max_wait_ns <= 0 or now_ns - ticket.ready_at_ns > self.max_wait_ns
            (skipped if expired else kept).append(ticket)
        waiting.clear()
        waiting.extend(kept)
        waiting.append(newest)
        return skipped

    def take(self) -> Ticket | None:
        """The next ticket by round-robin (a lane's oldest), or None when nothing waits.

        Call ``expire(now_ns)`` first, so that no clip older than the budget is taken."""
        count = len(self._order)
        for step in range(count):
            index = (self._cursor + step) % count
            waiting = self._waiting[self._order[index]]
            if waiting:
                self._cursor = (index + 1) % count
                return waiting.popleft()
        return None

    def remove_lane(self, lane: str) -> list[Ticket]:
        """Unregister ``lane``; return the tickets it still had waiting (oldest first)."""
        waiting = list(self._waiting.pop(lane, ()))
        self._live.pop(lane, None)
        if lane in self._order:
            index = self._order.index(lane)
            self._order.remove(lane)
            if index < self._cursor:
                self._cursor -= 1
            self._cursor = self._cursor % len(self._order) if self._order else 0
        return waiting


class _Router:
    """Lane name → deliver callable. Kept apart from the Scheduler so the OpenVINO callback
    holds no reference back to the AsyncInferQueue (a C++ cycle the garbage collector cannot see)."""

    def __init__(self) -> None:
        self.lanes: dict[str, Callable[[Outcome], None]] = {}
        self.idle = threading.Semaphore(0)
        self.on_inferred: Callable[[str, float, float], None] | None = None


def _make_callback(router: _Router):
    from edge.runtime import InferResult, copying_callback

    def deliver(result: InferResult) -> None:
        ticket, submitted_ns = result.tag
        wait_ms = (submitted_ns - ticket.offered_ns) / 1e6
        if result.error:
            outcome = Outcome(ticket, FAILED, None, result.infer_ms, wait_ms, result.error)
        else:
            outcome = Outcome(ticket, DONE, result.logits, result.infer_ms, wait_ms, extra=result.extra)
        try:
            if router.on_inferred is not None:
                router.on_inferred(ticket.lane, result.infer_ms / 1e3, wait_ms / 1e3)
            router.lanes[ticket.lane](outcome)
        finally:
            router.idle.release()

    return copying_callback(deliver)


class Scheduler:
    """One compiled model's infer requests, shared by every lane, fed by ``ClipQueue``.

    ``register(lane, live, deliver)`` before the lane offers; ``offer(ticket)``
    from the lane's thread; ``close()`` after every lane has received all its
    outcomes. ``max_wait_ms`` is a live clip's latency budget (0: a live lane
    keeps only its freshest clip). ``clock_ns`` is the clock of the tickets'
    ``ready_ns`` (``time.perf_counter_ns``). ``on_inferred(lane, infer_s,
    queue_wait_s)`` (optional) is called for each finished request, e.g. by the
    Prometheus histograms.
    """

    def __init__(self, classifier, num_requests: int, *, max_wait_ms: float = 400,
                 on_inferred: Callable[[str, float, float], None] | None = None,
                 clock_ns: Callable[[], int] = time.perf_counter_ns, requests=None) -> None:
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.classifier = classifier
        self._clock_ns = clock_ns
        self.num_requests = int(num_requests)
        self.max_wait_ms = max_wait_ms
        self._policy = ClipQueue(round(max_wait_ms * 1_000_000))
        self._cond = threading.Condition()
        self._closing = False
        self._router = _Router()
        self._router.on_inferred = on_inferred
        for _ in range(self.num_requests):
            self._router.idle.release()
        if requests is None:  # tests pass a fake with start_async / set_callback / wait_all
            import openvino as ov

            requests = ov.AsyncInferQueue(classifier.compiled, self.num_requests)
        self._requests = requests
        self._requests.set_callback(_make_callback(self._router))
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def register(self, lane: str, live: bool, deliver: Callable[[Outcome], None]) -> None:
        with self._cond:
            self._policy.add_lane(lane, live)
            self._router.lanes[lane] = deliver

    def unregister(self, lane: str) -> None:
        """The lane stops offering; clips it still had waiting come back as skipped."""
        with self._cond:
            left = self._policy.remove_lane(lane)
            deliver = self._router.lanes.get(lane)
        for ticket in left:
            if deliver is not None:
                deliver(Outcome(ticket, SKIPPED))

    def offer(self, ticket: Ticket) -> None:
        """Queue a lane's clip; its older clips out of the budget come back to it as skipped."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the scheduler is closed")
            now = self._clock_ns()
            ticket = replace(ticket, offered_ns=now, ready_ns=now if ticket.ready_ns is None else ticket.ready_ns)
            skipped = self._policy.offer(ticket, now)
            self._cond.notify()
            deliver = self._router.lanes[ticket.lane]
        for old in skipped:
            deliver(Outcome(old, SKIPPED))

    def _loop(self) -> None:
        while True:
            self._router.idle.acquire()  # a request is free: only now choose, so ages are judged at the start
            skipped: list[Ticket] = []
            ticket = None
            with self._cond:
                while not self._closing:
                    skipped.extend(self._policy.expire(self._clock_ns()))
                    ticket = self._policy.take()
                    if ticket is not None:
                        break
                    self._cond.wait()
            for old in skipped:  # before the start: their ring slots come back to the lane now
                self._router.lanes[old.lane](Outcome(old, SKIPPED))
            if ticket is None:
                self._router.idle.release()
                return
            self._start(ticket)

    def _start(self, ticket: Ticket) -> None:
        try:
            batch = self.classifier.as_input(ticket.clip)
            now = self._clock_ns()
            self._requests.start_async({0: batch}, ((ticket, now), now, batch), share_inputs=True)
        except Exception as error:  # a bad clip must not kill the shared queue
            log.error("inference could not start for %s clip %d: %s", ticket.lane, ticket.number, error)
            self._router.idle.release()
            self._router.lanes[ticket.lane](Outcome(ticket, FAILED, error=f"{type(error).__name__}: {error}"))

    def close(self) -> None:
        """Stop: clips still waiting come back as skipped; wait for the started requests to finish.

        The service closes the scheduler after every lane has received all its outcomes, so
        normally nothing is waiting."""
        with self._cond:
            self._closing = True
            left = [(lane, self._policy.remove_lane(lane)) for lane in list(self._router.lanes)]
            self._cond.notify_all()
        self._router.idle.release()  # wake the loop if every request is busy
        self._thread.join()
        for lane, tickets in left:
            for ticket in tickets:
                self._router.lanes[lane](Outcome(ticket, SKIPPED))
        self._requests.wait_all()
        # The OpenVINO callback holds the router: what the router holds (the lanes, the service's
        # on_inferred) would otherwise stay alive with the compiled model, a cycle through C++ that the
        # garbage collector cannot see (eval and learn run one service after another: ~850 MB each).
        self._router.lanes.clear()
        self._router.on_inferred = None
