"""The shared scheduler: fairness, skipping and ordering, with a fake clock and fake infer requests.

The oracle is the policy stated in DESIGN.md ("round-robin across cameras; a file camera never loses a
clip; results go back to their own lane"; release 3: "a live clip may wait within
`inference.max_wait_ms` before it is skipped for a fresher one", and with a budget of 0 a live camera
keeps only its freshest clip, as in release 2), worked out by hand for each case.
"""

from __future__ import annotations

import threading
from collections import Counter, deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_without_a_budget_a_live_lane_keeps_only_its_freshest_clip():
    policy = ClipQueue(max_wait_ns=0)
    policy.add_lane("cam", live=True)
    assert policy.offer(Ticket("cam", 0)) == []
    displaced = policy.offer(Ticket("cam", 1))
    assert displaced == [Ticket("cam", 0)]
    assert policy.offer(Ticket("cam", 2)) == [Ticket("cam", 1)]
    assert policy.take() == Ticket("cam", 2) and policy.take() is None


def test_file_lane_never_loses_a_clip_and_keeps_order():
    policy = ClipQueue()
    policy.add_lane("file", live=False)
    assert all(policy.offer(t) == [] for t in tickets("file", 50))
    assert [t.number for t in iter(policy.take, None)] == list(range(50))


MS = 1_000_000  # ns


def test_a_burst_within_the_budget_waits_in_order():
    policy = ClipQueue(max_wait_ns=400 * MS)
    policy.add_lane("cam", live=True)
    for number in range(5):
        assert policy.offer(Ticket("cam", number, ready_ns=number * MS), now_ns=number * MS) == []
    assert policy.expire(now_ns=400 * MS) == []  # the oldest is exactly 400 ms old: within the budget
    assert [t.number for t in iter(policy.take, None)] == [0, 1, 2, 3, 4]


def test_a_live_clip_older_than_the_budget_is_skipped_but_never_the_newest():
    policy = ClipQueue(max_wait_ns=400 * MS)
    policy.add_lane("cam", live=True)
    policy.add_lane("file", live=False)
    policy.offer(Ticket("file", 0, ready_ns=0), now_ns=0)
    policy.offer(Ticket("cam", 0, ready_ns=0), now_ns=0)
    assert policy.expire(now_ns=10_000 * MS) == []  # alone, the newest: never skipped for age
    assert policy.offer(Ticket("cam", 1, ready_ns=9_800 * MS), now_ns=10_000 * MS) == [Ticket("cam", 0, ready_ns=0)]
    assert policy.offer(Ticket("cam", 2, ready_ns=9_900 * MS), now_ns=10_000 * MS) == []  # 1 is 200 ms old
    assert policy.expire(now_ns=10_200 * MS) == []  # 1 is 400 ms old: still within the budget
    assert [t.number for t in policy.expire(now_ns=10_201 * MS)] == [1]
    assert [(t.lane, t.number) for t in iter(policy.take, None)] == [("cam", 2), ("file", 0)]  # lanes in turn


def test_the_ready_time_not_the_offer_time_is_the_clips_age():
    policy = ClipQueue(max_wait_ns=400 * MS)
    policy.add_lane("cam", live=True)
    policy.offer(Ticket("cam", 0, offered_ns=1_000 * MS, ready_ns=500 * MS), now_ns=1_000 * MS)
    skipped = policy.offer(Ticket("cam", 1, offered_ns=1_000 * MS, ready_ns=990 * MS), now_ns=1_000 * MS)
    assert [t.number for t in skipped] == [0]  # offered just now, but ready 500 ms ago
    assert policy.offer(Ticket("cam", 2, offered_ns=1_000 * MS), now_ns=1_000 * MS) == []  # no ready_ns: offered


def test_budget_round_robin_across_two_live_lanes():
    policy = ClipQueue(max_wait_ns=400 * MS)
    for lane in ("a", "b"):
        policy.add_lane(lane, live=True)
        for number in range(3):
            policy.offer(Ticket(lane, number, ready_ns=0), now_ns=0)
    assert [(t.lane, t.number) for t in iter(policy.take, None)] == \
        [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]


@st.composite
def policy_runs(draw):
    lanes = draw(st.lists(st.booleans(), min_size=1, max_size=4))  # live or not, per lane
    ops = draw(st.lists(st.one_of(
        st.tuples(st.just("offer"), st.integers(0, len(lanes) - 1), st.integers(0, 600)),  # ready this long ago
        st.tuples(st.just("advance"), st.integers(0, 500)),
        st.tuples(st.just("take")),
        st.tuples(st.just("expire")),
    ), max_size=60))
    return lanes, draw(st.sampled_from([0, 1, 100, 400])), ops


@settings(max_examples=300, deadline=None)
@given(policy_runs())
def test_policy_every_clip_is_taken_skipped_or_left_exactly_once(run):
    lanes, budget_ms, ops = run
    names = [f"lane{index}" for index in range(len(lanes))]
    policy = ClipQueue(max_wait_ns=budget_ms * MS)
    for name, live in zip(names, lanes):
        policy.add_lane(name, live)
    now, numbers, fates = 0, Counter(), Counter()
    newest: dict[str, int] = {}
    taken: dict[str, list[int]] = {name: [] for name in names}

    def skipped(tickets_skipped):
        for ticket in tickets_skipped:
            fates[(ticket.lane, ticket.number)] += 1
            assert lanes[names.index(ticket.lane)], "a file lane's clip was skipped"
            assert ticket.number != newest[ticket.lane], "a lane's newest clip was skipped"
            if budget_ms:
                assert now - ticket.ready_ns > budget_ms * MS, "a clip within the budget was skipped"

    for op in ops:
        if op[0] == "offer":
            name = names[op[1]]
            ticket = Ticket(name, numbers[name], ready_ns=max(0, now - op[2] * MS))
            numbers[name] += 1
            newest[name] = ticket.number
            skipped(policy.offer(ticket, now_ns=now))
        elif op[0] == "advance":
            now += op[1] * MS
        elif op[0] == "expire":
            skipped(policy.expire(now))
        else:
            skipped(policy.expire(now))
            ticket = policy.take()
            if ticket is not None:
                fates[(ticket.lane, ticket.number)] += 1
                taken[ticket.lane].append(ticket.number)
                if budget_ms and lanes[names.index(ticket.lane)] and ticket.number != newest[ticket.lane]:
                    assert now - ticket.ready_ns <= budget_ms * MS, "an expired clip was taken"
    for name in names:
        for ticket in policy.remove_lane(name):
            fates[(ticket.lane, ticket.number)] += 1
    assert fates == Counter({(name, number): 1 for name in names for number in range(numbers[name])})
    assert all(numbers_taken == sorted(numbers_taken) for numbers_taken in taken.values())  # oldest first


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
        self.model_outputs = ("logits",)  # one output, as ov.InferRequest.model_outputs lists them

    def get_output_tensor(self, _index):
        return type("Tensor", (), {"data": self._logits})()


class FakeRequests:
    """Stands in for ov.AsyncInferQueue: the test decides when each started request completes."""

    def __init__(self):
        self.started: deque = deque()
        self.history: list[Ticket] = []  # every ticket started, in start order
        self.cond = threading.Condition()
        self.callback = None

    def set_callback(self, callback):
        self.callback = callback

    def start_async(self, inputs, userdata, share_inputs=True):
        with self.cond:
            self.started.append(userdata)
            self.history.append(userdata[0][0])
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


def make_scheduler(num_requests: int, clock=None, max_wait_ms: float = 400):
    requests = FakeRequests()
    waits = []
    scheduler = Scheduler(FakeClassifier(), num_requests, requests=requests, clock_ns=clock or FakeClock(),
                          max_wait_ms=max_wait_ms,
                          on_inferred=lambda lane, infer_s, wait_s: waits.append((lane, infer_s, wait_s)))
    return scheduler, requests, waits


def clip(value: float = 0.0) -> np.ndarray:
    return np.full((2, 3, 4, 4), value, np.float32)


def test_without_a_budget_every_ticket_gets_exactly_one_outcome_and_live_skips_are_counted():
    scheduler, requests, _ = make_scheduler(num_requests=1, max_wait_ms=0)
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
    scheduler, requests, _ = make_scheduler(num_requests=1, max_wait_ms=0)
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


# ---------------------------------------------------------------- the latency budget, threaded


def occupy_the_request(scheduler, requests, inbox):
    """A file clip holds the only request, so the test's clips wait and the order is the test's."""
    scheduler.register("blocker", live=False, deliver=inbox)
    scheduler.offer(Ticket("blocker", 0, clip()))
    requests.wait_for_started(1)


def test_a_burst_within_the_budget_loses_no_clip_and_keeps_order():
    clock = FakeClock()
    scheduler, requests, _ = make_scheduler(num_requests=1, clock=clock, max_wait_ms=400)
    inbox, blocked = Inbox(), Inbox()
    scheduler.register("cam", live=True, deliver=inbox)
    try:
        occupy_the_request(scheduler, requests, blocked)
        for number in range(6):  # MPEG-TS delivered the frames of six clips at once
            scheduler.offer(Ticket("cam", number, clip(), ready_ns=clock.now))
        served = []
        for _ in range(7):
            requests.wait_for_started(1)
            clock.now += 50 * MS  # each inference takes 50 ms: the last clip starts 300 ms after it was ready
            ticket = requests.complete_oldest()
            served.append((ticket.lane, ticket.number))
        outcomes = inbox.wait(6)
    finally:
        scheduler.close()
    assert served == [("blocker", 0)] + [("cam", number) for number in range(6)]
    assert [(o.ticket.number, o.status) for o in outcomes] == [(number, DONE) for number in range(6)]


def test_a_clip_older_than_the_budget_is_skipped_when_a_fresher_one_waits():
    clock = FakeClock()
    scheduler, requests, _ = make_scheduler(num_requests=1, clock=clock, max_wait_ms=400)
    inbox, blocked = Inbox(), Inbox()
    scheduler.register("cam", live=True, deliver=inbox)
    try:
        occupy_the_request(scheduler, requests, blocked)
        scheduler.offer(Ticket("cam", 0, clip(), ready_ns=0))
        clock.now = 100 * MS
        scheduler.offer(Ticket("cam", 1, clip(), ready_ns=100 * MS))
        clock.now = 450 * MS
        scheduler.offer(Ticket("cam", 2, clip(), ready_ns=450 * MS))
        # the offer skips 0 at once (450 ms old, and a fresher clip waits), on the lane's own thread
        assert [(o.ticket.number, o.status) for o in inbox.outcomes] == [(0, SKIPPED)]
        clock.now = 520 * MS  # 1 is now 420 ms old: skipped when the request is taken, 2 goes
        requests.complete_oldest()
        requests.wait_for_started(1)
        assert requests.complete_oldest().number == 2
        outcomes = inbox.wait(3)
    finally:
        scheduler.close()
    assert [(o.ticket.number, o.status) for o in outcomes] == [(0, SKIPPED), (1, SKIPPED), (2, DONE)]
    assert [(t.lane, t.number) for t in requests.history] == [("blocker", 0), ("cam", 2)]


def test_the_newest_clip_is_never_skipped_for_age():
    clock = FakeClock()
    scheduler, requests, _ = make_scheduler(num_requests=1, clock=clock, max_wait_ms=400)
    inbox, blocked = Inbox(), Inbox()
    scheduler.register("cam", live=True, deliver=inbox)
    try:
        occupy_the_request(scheduler, requests, blocked)
        scheduler.offer(Ticket("cam", 0, clip(), ready_ns=0))
        clock.now = 10_000 * MS  # the box was overloaded for 10 s
        scheduler.offer(Ticket("cam", 1, clip(), ready_ns=9_000 * MS))  # 0 skipped; 1 is 1 s old, but the newest
        clock.now = 20_000 * MS
        requests.complete_oldest()
        requests.wait_for_started(1)
        assert requests.complete_oldest().number == 1
        outcomes = inbox.wait(2)
    finally:
        scheduler.close()
    assert [(o.ticket.number, o.status) for o in outcomes] == [(0, SKIPPED), (1, DONE)]


def test_a_budget_of_zero_keeps_only_the_freshest_clip():
    clock = FakeClock()
    scheduler, requests, _ = make_scheduler(num_requests=1, clock=clock, max_wait_ms=0)
    inbox, blocked = Inbox(), Inbox()
    scheduler.register("cam", live=True, deliver=inbox)
    try:
        occupy_the_request(scheduler, requests, blocked)
        for number in range(4):  # the same burst as above, all of it ready together and just now
            scheduler.offer(Ticket("cam", number, clip(), ready_ns=clock.now))
        requests.complete_oldest()
        requests.wait_for_started(1)
        assert requests.complete_oldest().number == 3
        outcomes = inbox.wait(4)
    finally:
        scheduler.close()
    assert [(o.ticket.number, o.status) for o in outcomes] == [(0, SKIPPED), (1, SKIPPED), (2, SKIPPED), (3, DONE)]


def test_round_robin_across_two_live_lanes_with_bursts_and_the_budget():
    """Both cameras deliver four clips at t=0; one request, 150 ms per inference, a 400 ms budget.

    t=150 a0 starts, t=300 b0; at t=450 clips 1 and 2 of both are 450 ms old and a fresher clip
    waits behind them: skipped; a3 starts, then b3 (the newest of each, whatever their age)."""
    clock = FakeClock()
    scheduler, requests, _ = make_scheduler(num_requests=1, clock=clock, max_wait_ms=400)
    inboxes = {name: Inbox() for name in ("a", "b")}
    for name, inbox in inboxes.items():
        scheduler.register(name, live=True, deliver=inbox)
    try:
        occupy_the_request(scheduler, requests, Inbox())  # registered third: after it, "a" has the turn
        for name in inboxes:
            for number in range(4):
                scheduler.offer(Ticket(name, number, clip(), ready_ns=0))
        served = []
        for _ in range(5):
            requests.wait_for_started(1)
            clock.now += 150 * MS  # then the request completes, and the next clip is chosen at this time
            ticket = requests.complete_oldest()
            served.append((ticket.lane, ticket.number))
        got = {name: inbox.wait(4) for name, inbox in inboxes.items()}
    finally:
        scheduler.close()
    assert served == [("blocker", 0), ("a", 0), ("b", 0), ("a", 3), ("b", 3)]
    for outcomes in got.values():
        assert sorted((o.ticket.number, o.status) for o in outcomes) == \
            [(0, DONE), (1, SKIPPED), (2, SKIPPED), (3, DONE)]


def test_round_robin_across_two_live_lanes_with_bursts_within_the_budget():
    scheduler, requests, _ = make_scheduler(num_requests=1, max_wait_ms=400)  # the clock stands still
    inboxes = {name: Inbox() for name in ("a", "b")}
    for name, inbox in inboxes.items():
        scheduler.register(name, live=True, deliver=inbox)
    try:
        occupy_the_request(scheduler, requests, Inbox())
        for name in inboxes:
            for number in range(3):
                scheduler.offer(Ticket(name, number, clip()))
        served = []
        for _ in range(7):
            requests.wait_for_started(1)
            ticket = requests.complete_oldest()
            served.append((ticket.lane, ticket.number))
        got = {name: inbox.wait(3) for name, inbox in inboxes.items()}
    finally:
        scheduler.close()
    assert served == [("blocker", 0), ("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert all([o.status for o in outcomes] == [DONE] * 3 for outcomes in got.values())


@st.composite
def scheduler_runs(draw):
    lanes = draw(st.lists(st.booleans(), min_size=1, max_size=3))  # live or not, per lane
    ops = draw(st.lists(st.one_of(
        st.tuples(st.just("offer"), st.integers(0, len(lanes) - 1), st.integers(0, 600)),  # ready this long ago
        st.tuples(st.just("advance"), st.integers(0, 500)),
        st.tuples(st.just("complete"), st.booleans()),  # oldest or newest started request, if any
    ), max_size=40))
    return lanes, draw(st.integers(1, 3)), draw(st.sampled_from([0, 400])), ops


@settings(max_examples=60, deadline=None)
@given(scheduler_runs())
def test_every_ticket_gets_exactly_one_outcome_under_any_interleaving(run):
    """Whatever the order of offers, clock steps and completions (and however the scheduler's thread
    interleaves with them), each ticket comes back exactly once; a file lane loses nothing before
    the close; a live lane's skipped clip was never its newest, and was older than the budget."""
    lanes, num_requests, budget_ms, ops = run
    clock = FakeClock()
    scheduler, requests, _ = make_scheduler(num_requests=num_requests, clock=clock, max_wait_ms=budget_ms)
    names = [f"lane{index}" for index in range(len(lanes))]
    seen: list[tuple[Outcome, int, int, bool]] = []  # outcome, clock and lane's newest at delivery, closing
    lock = threading.Lock()
    closing = False
    newest: dict[str, int] = {}

    def deliver(outcome):
        with lock:
            seen.append((outcome, clock.now, newest[outcome.ticket.lane], closing))

    for name, live in zip(names, lanes):
        scheduler.register(name, live, deliver)
    numbers = Counter()
    try:
        for op in ops:
            if op[0] == "offer":
                name = names[op[1]]
                with lock:
                    newest[name] = numbers[name]
                scheduler.offer(Ticket(name, numbers[name], clip(numbers[name]),
                                       ready_ns=max(0, clock.now - op[2] * MS)))
                numbers[name] += 1
            elif op[0] == "advance":
                clock.now += op[1] * MS
            elif requests.started:
                requests.complete_oldest() if op[1] else requests.complete_newest()
    finally:
        with lock:
            closing = True
        scheduler.close()  # what still waits comes back skipped; nothing starts after this
        while requests.started:
            requests.complete_oldest()
    fates = Counter((o.ticket.lane, o.ticket.number) for o, _, _, _ in seen)
    assert fates == Counter({(name, number): 1 for name in names for number in range(numbers[name])})
    for outcome, delivered_at, lanes_newest, at_close in seen:
        live = lanes[names.index(outcome.ticket.lane)]
        if outcome.status == DONE:
            assert outcome.logits[0] == outcome.ticket.number
        elif not at_close:
            assert outcome.status == SKIPPED and live, "a file lane's clip was skipped"
            assert outcome.ticket.number < lanes_newest, "a lane's newest clip was skipped"
            if budget_ms:
                assert delivered_at - outcome.ticket.ready_ns > budget_ms * MS, "a clip within the budget skipped"
    for name in names:  # every lane's clips start in the order they were offered
        started = [t.number for t in requests.history if t.lane == name]
        assert started == sorted(started)
