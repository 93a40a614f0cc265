"""The shared scheduler: fairness, skipping and ordering, with a fake clock and fake infer requests.

The oracle is the policy stated in DESIGN.md ("round-robin across cameras; a live camera keeps only
its freshest clip when every request is busy; a file camera never loses a clip; results go back to
their own lane"), worked out by hand for each case.
"""

from __future__ import annotations

import threading
from collections import Counter, deque

import numpy as np
import pytest

from edge.engine.scheduler import DONE, SKIPPED, ClipQueue, Outcome, Scheduler, Ticket


# ---------------------------------------------------------------- the policy alone


def tickets(lane: str, count: int, start: int = 0) -> list[Ticket]:
    return [Ticket(lane, number) for number in range(start, start + count)]


def test_round_robin_takes_one_clip_per_lane_in_turn():
    policy = ClipQueue()
    for lane in ("a", "b", "c"):
        policy.add_lane(lane, live=False)
    for lane in ("a", "b", "c"):
        for ticket in tickets(lane, 3):
            policy.offer(ticket)
    taken = [(t.lane, t.number) for t in iter(policy.take, None)]
    assert taken == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2), ("c", 2)]


def test_a_busy_lane_cannot_starve_a_quiet_one():
    policy = ClipQueue()
    policy.add_lane("busy", live=False)
    policy.add_lane("quiet", live=False)
    for ticket in tickets("busy", 10):
        policy.offer(ticket)
    assert policy.take().lane == "busy"
    policy.offer(Ticket("quiet", 0))
    assert policy.take().lane == "quiet"  # its turn comes next, ahead of busy's 9 waiting clips
    assert policy.take().lane == "busy"


def test_live_lane_keeps_only_its_freshest_clip():
    policy = ClipQueue()
    policy.add_lane("cam", live=True)
    assert policy.offer(Ticket("cam", 0)) is None
    displaced = policy.offer(Ticket("cam", 1))
    assert displaced == Ticket("cam", 0)
    assert policy.offer(Ticket("cam", 2)) == Ticket("cam", 1)
    assert policy.take() == Ticket("cam", 2) and policy.take() is None


def test_file_lane_never_loses_a_clip_and_keeps_order():
    policy = ClipQueue()
    policy.add_lane("file", live=False)
    assert all(policy.offer(t) is None for t in tickets("file", 50))
    assert [t.number for t in iter(policy.take, None)] == list(range(50))


def test_removing_a_lane_returns_its_waiting_clips_and_keeps_the_turn_order():
    policy = ClipQueue()
    for lane in ("a", "b", "c"):
        policy.add_lane(lane, live=False)
        policy.offer(Ticket(lane, 0))
        policy.offer(Ticket(lane, 1))
    assert policy.take().lane == "a"  # next turn: b
    assert [t.number for t in policy.remove_lane("b")] == [0, 1]
    assert [t.lane for t in iter(policy.take, None)] == ["c", "a", "c"]


# ---------------------------------------------------------------- the threaded scheduler, fake requests


class FakeClassifier:
    def as_input(self, clip):
        return clip


class FakeRequest:
    def __init__(self, logits: np.ndarray, latency_ms: float):
        self._logits, self.latency = logits, latency_ms

    def get_output_tensor(self, _index):
        return type("Tensor", (), {"data": self._logits})()


class FakeRequests:
    """Stands in for ov.AsyncInferQueue: the test decides when each started request completes."""

    def __init__(self):
        self.started: deque = deque()
        self.cond = threading.Condition()
        self.callback = None

    def set_callback(self, callback):
        self.callback = callback

    def start_async(self, inputs, userdata, share_inputs=True):
        with self.cond:
            self.started.append(userdata)
            self.cond.notify_all()

    def wait_for_started(self, count: int, timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.started) >= count, timeout), \
                f"{len(self.started)} requests started, expected {count}"

    def complete_oldest(self, logits=None):
        with self.cond:
            userdata = self.started.popleft()
        (ticket, _), _, batch = userdata
        value = np.full(4, float(ticket.number), np.float32) if logits is None else logits
        self.callback(FakeRequest(value, latency_ms=5.0), userdata)
        return ticket

    def complete_newest(self):
        with self.cond:
            userdata = self.started.pop()
        (ticket, _), _, _ = userdata
        self.callback(FakeRequest(np.full(4, float(ticket.number), np.float32), 5.0), userdata)
        return ticket

    def wait_all(self):
        pass


class Inbox:
    def __init__(self):
        self.outcomes: list[Outcome] = []
        self.cond = threading.Condition()

    def __call__(self, outcome: Outcome):
        with self.cond:
            self.outcomes.append(outcome)
            self.cond.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> list[Outcome]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.outcomes) >= count, timeout), \
                f"{len(self.outcomes)} outcomes, expected {count}"
            return list(self.outcomes)


class FakeClock:
    def __init__(self):
        self.now = 0

    def __call__(self) -> int:
        return self.now


def make_scheduler(num_requests: int, clock=None):
    requests = FakeRequests()
    waits = []
    scheduler = Scheduler(FakeClassifier(), num_requests, requests=requests, clock_ns=clock or FakeClock(),
                          on_inferred=lambda lane, infer_s, wait_s: waits.append((lane, infer_s, wait_s)))
    return scheduler, requests, waits


def clip(value: float = 0.0) -> np.ndarray:
    return np.full((2, 3, 4, 4), value, np.float32)


def test_every_ticket_gets_exactly_one_outcome_and_live_skips_are_counted():
    scheduler, requests, _ = make_scheduler(num_requests=1)
    inbox = Inbox()
    scheduler.register("cam", live=True, deliver=inbox)
    try:
        scheduler.offer(Ticket("cam", 0, clip()))
        requests.wait_for_started(1)  # ticket 0 holds the only request
        for number in (1, 2, 3):
            scheduler.offer(Ticket("cam", number, clip()))  # 1 displaced by 2, 2 by 3
        assert requests.complete_oldest().number == 0
        requests.wait_for_started(1)
        assert requests.complete_oldest().number == 3  # the freshest clip went next
        outcomes = inbox.wait(4)
    finally:
        scheduler.close()
    by_number = {o.ticket.number: o.status for o in outcomes}
    assert by_number == {0: DONE, 1: SKIPPED, 2: SKIPPED, 3: DONE}
    assert len(outcomes) == 4


def test_results_go_back_to_their_own_lane_even_out_of_order():
    scheduler, requests, _ = make_scheduler(num_requests=4)
    inboxes = {name: Inbox() for name in ("a", "b")}
    for name, inbox in inboxes.items():
        scheduler.register(name, live=False, deliver=inbox)
    try:
        for number in range(2):
            for name, base in (("a", 100.0), ("b", 200.0)):
                scheduler.offer(Ticket(name, number, clip(base + number)))
        requests.wait_for_started(4)
        for _ in range(4):
            requests.complete_newest()  # completion order is the reverse of submission
        got = {name: inbox.wait(2) for name, inbox in inboxes.items()}
    finally:
        scheduler.close()
    for name, outcomes in got.items():
        assert {o.ticket.lane for o in outcomes} == {name}
        assert sorted(o.ticket.number for o in outcomes) == [0, 1]
        assert all(o.status == DONE for o in outcomes)
        # each lane's logits are the ones computed for its own clip (the fake encodes the ticket number)
        assert all(o.logits[0] == o.ticket.number for o in outcomes)


def test_fairness_under_overload_three_live_cameras():
    """Three live cameras always have a fresh clip ready; one request serves them in turn."""
    scheduler, requests, _ = make_scheduler(num_requests=1)
    inboxes = {name: Inbox() for name in ("a", "b", "c")}
    for name, inbox in inboxes.items():
        scheduler.register(name, live=True, deliver=inbox)
    served = Counter()
    numbers = Counter()
    try:
        for name in inboxes:
            scheduler.offer(Ticket(name, numbers[name], clip()))
            numbers[name] += 1
        for _round in range(60):
            requests.wait_for_started(1)
            for name in inboxes:  # every camera produced a newer clip while the request was busy
                scheduler.offer(Ticket(name, numbers[name], clip()))
                numbers[name] += 1
            served[requests.complete_oldest().lane] += 1
    finally:
        scheduler.close()
    assert sum(served.values()) == 60
    assert all(count == 20 for count in served.values()), served


def test_file_lanes_share_requests_and_lose_nothing():
    scheduler, requests, _ = make_scheduler(num_requests=2)
    inboxes = {name: Inbox() for name in ("x", "y")}
    for name, inbox in inboxes.items():
        scheduler.register(name, live=False, deliver=inbox)
    try:
        for number in range(10):
            for name in inboxes:
                scheduler.offer(Ticket(name, number, clip()))
        order = []
        for _ in range(20):
            requests.wait_for_started(1)
            order.append(requests.complete_oldest().lane)
        outcomes = {name: inbox.wait(10) for name, inbox in inboxes.items()}
    finally:
        scheduler.close()
    assert Counter(order) == {"x": 10, "y": 10}
    # interleaved: never more than one clip of a lane ahead of the other
    running = Counter()
    for lane in order:
        running[lane] += 1
        assert abs(running["x"] - running["y"]) <= 2
    for name, got in outcomes.items():
        assert [o.status for o in got] == [DONE] * 10
        assert sorted(o.ticket.number for o in got) == list(range(10))


def test_queue_wait_is_measured_on_the_scheduler_clock():
    clock = FakeClock()
    scheduler, requests, waits = make_scheduler(num_requests=1, clock=clock)
    inbox = Inbox()
    scheduler.register("cam", live=False, deliver=inbox)
    try:
        scheduler.offer(Ticket("cam", 0, clip()))
        requests.wait_for_started(1)
        clock.now = 1_000_000_000  # 1 s later, a second clip is offered while the request is busy
        scheduler.offer(Ticket("cam", 1, clip()))
        clock.now = 3_500_000_000  # it waits 2.5 s for the request
        requests.complete_oldest()
        requests.wait_for_started(1)
        requests.complete_oldest()
        outcomes = inbox.wait(2)
    finally:
        scheduler.close()
    waited = {o.ticket.number: o.queue_wait_ms for o in outcomes}
    assert waited == {0: 0.0, 1: pytest.approx(2500.0)}
    assert [w[2] for w in waits] == [0.0, pytest.approx(2.5)]


def test_unregister_returns_waiting_clips_as_skipped():
    scheduler, requests, _ = make_scheduler(num_requests=1)
    inbox = Inbox()
    scheduler.register("file", live=False, deliver=inbox)
    try:
        for number in range(3):
            scheduler.offer(Ticket("file", number, clip()))
        requests.wait_for_started(1)
        scheduler.unregister("file")  # 1 and 2 never started
        requests.complete_oldest()
        outcomes = inbox.wait(3)
    finally:
        scheduler.close()
    assert {o.ticket.number: o.status for o in outcomes} == {0: DONE, 1: SKIPPED, 2: SKIPPED}
