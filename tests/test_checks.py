"""CheckEngine: every rule kind judged from hand-written activity records.

Oracle: the judgements (passed, time_s, ids, the numbers in the reason)
worked out by hand from the rules in DESIGN.md / the issue.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.activities import ActivityTracker
from edge.checks import CheckEngine
from edge.engine.monitor import CameraMonitor
from edge.events import from_json_dict


def lines(events, run_id=None):
    """The activity and check lines (events.jsonl objects) of the events, with the run's id."""
    return [event.stamped(run_id).to_json_dict() for event in events if event.kind in ("activity", "check")]


class Engine:
    """A ``CheckEngine`` as these tests drive it: hand-written activity records in, check lines out."""

    def __init__(self, rules, cameras, *, run_id=None):
        self.engine, self.run_id = CheckEngine(rules, cameras), run_id

    def on_activity(self, record):
        return lines(self.engine.on_activity(from_json_dict(record)), self.run_id)

    def advance(self, camera, time_s, wall_time):
        return lines(self.engine.advance(camera, time_s, wall_time), self.run_id)

    def finish(self, camera, time_s, wall_time):
        return lines(self.engine.finish(camera, time_s, wall_time), self.run_id)

    def next_deadline(self, camera):
        return self.engine.next_deadline(camera)


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    activity: str | None = None
    seconds: float | None = None
    steps: tuple[str, ...] | None = None
    first: str | None = None
    then: str | None = None
    within_s: float | None = None
    cameras: tuple[str, ...] | None = None


def act(kind, camera, activity, number, start, end=None, reason=None, wall="w"):
    record = {"event": "activity", "type": kind, "id": f"{camera}-{activity}-{number}", "camera": camera,
              "activity": activity, "start_time_s": start, "end_time_s": end if kind == "end" else None,
              "duration_s": 0.0 if kind == "start" else round((end if end is not None else start) - start, 6),
              "peak_score": 0.9, "time_base": "media"}
    if kind == "end":
        record["reason"] = reason or "ended"
    record["wall_time"] = wall
    return record


def verdicts(checks):
    return [(c["rule"], c["camera"], c["passed"], c["time_s"], c["activity_ids"]) for c in checks]


WASH20 = Rule("wash-20s", "min_duration", activity="handwash", seconds=20)
SEQ = Rule("wash-before-prep", "sequence", steps=("handwash", "food_prep"), within_s=600)
NO_SMOKING = Rule("no-smoking", "forbidden", activity="smoking")
AFTER = Rule("wash-after-smoking", "followed_by", first="smoking", then="handwash", within_s=5)


# ---------------------------------------------------------------- min_duration

def test_min_duration_fails_with_the_measured_duration():
    engine = Engine([WASH20], {"sink": "media"}, run_id="r")
    assert engine.on_activity(act("start", "sink", "handwash", 1, 3.0)) == []
    [check] = engine.on_activity(act("end", "sink", "handwash", 1, 3.0, 11.4))
    assert check == {"event": "check", "id": "wash-20s-1", "rule": "wash-20s", "kind": "min_duration",
                     "camera": "sink", "passed": False, "reason": "handwash lasted 8.4 s, needs 20 s", "time_s": 11.4,
                     "time_base": "media", "activity_ids": ["sink-handwash-1"], "clip": None, "clip_url": None,
                     "snapshot": None, "snapshot_url": None, "wall_time": "w", "run_id": "r"}


def test_min_duration_passes_and_never_rounds_up_to_the_limit():
    engine = Engine([WASH20], {"sink": "media"})
    [ok] = engine.on_activity(act("end", "sink", "handwash", 1, 0.6, 24.92))
    assert (ok["passed"], ok["time_s"]) == (True, 24.92) and ok["reason"] == "handwash lasted 24.3 s, at least the 20 s needed"
    [short] = engine.on_activity(act("end", "sink", "handwash", 2, 0.0, 19.96))
    assert short["passed"] is False and "19.96 s" in short["reason"]  # not "20.0 s, needs 20 s"
    [exact] = engine.on_activity(act("end", "sink", "handwash", 3, 0.0, 20.0))
    assert exact["passed"] is True


def test_min_duration_cut_short_by_the_stream_is_undecided():
    engine = Engine([WASH20], {"sink": "media"})
    [gap] = engine.on_activity(act("end", "sink", "handwash", 1, 0.0, 5.0, reason="stream gap"))
    assert gap["passed"] is None and "5.0 s" in gap["reason"] and "stream gap" in gap["reason"]
    [eos] = engine.on_activity(act("end", "sink", "handwash", 2, 0.0, 5.5, reason="end of stream"))
    assert eos["passed"] is None and "end of the stream" in eos["reason"]
    [long] = engine.on_activity(act("end", "sink", "handwash", 3, 0.0, 30.0, reason="end of stream"))
    assert long["passed"] is True  # long enough whatever came after


def test_rule_cameras_limit_the_rule():
    rule = Rule("wash-20s", "min_duration", activity="handwash", seconds=20, cameras=("sink",))
    engine = Engine([rule], {"sink": "media", "kitchen": "media"})
    assert engine.on_activity(act("end", "kitchen", "handwash", 1, 0.0, 1.0)) == []
    assert verdicts(engine.on_activity(act("end", "sink", "handwash", 1, 0.0, 1.0))) == [
        ("wash-20s", "sink", False, 1.0, ["sink-handwash-1"])]


# ---------------------------------------------------------------- forbidden

def test_forbidden_fails_when_it_starts():
    engine = Engine([NO_SMOKING], {"yard": "media", "sink": "media"})
    [check] = engine.on_activity(act("start", "yard", "smoking", 1, 12.0))
    assert verdicts([check]) == [("no-smoking", "yard", False, 12.0, ["yard-smoking-1"])]
    assert "smoking" in check["reason"] and "12.0 s" in check["reason"] and "yard" in check["reason"]
    assert engine.on_activity(act("update", "yard", "smoking", 1, 12.0, 17.0)) == []
    assert engine.on_activity(act("end", "yard", "smoking", 1, 12.0, 20.0)) == []


# ---------------------------------------------------------------- sequence

def test_sequence_fails_without_the_earlier_step():
    engine = Engine([SEQ], {"k": "media"})
    [check] = engine.on_activity(act("start", "k", "food_prep", 1, 40.0))
    assert verdicts([check]) == [("wash-before-prep", "k", False, 40.0, ["k-food_prep-1"])]
    assert check["reason"] == "food_prep started at 40.0 s without handwash in the 600 s before it"


def test_sequence_passes_after_the_earlier_step():
    engine = Engine([SEQ], {"k": "media"})
    assert engine.on_activity(act("start", "k", "handwash", 1, 10.0)) == []
    engine.on_activity(act("end", "k", "handwash", 1, 10.0, 30.0))
    assert verdicts(engine.on_activity(act("start", "k", "food_prep", 1, 100.0))) == [
        ("wash-before-prep", "k", True, 100.0, ["k-handwash-1", "k-food_prep-1"])]
    # 630.0 - 600 = 30.0: the wash ended exactly within_s before → still counts
    assert engine.on_activity(act("start", "k", "food_prep", 2, 630.0))[0]["passed"] is True
    # 700 - 600 = 100 > 30: the wash is too long ago
    [late] = engine.on_activity(act("start", "k", "food_prep", 3, 700.0))
    assert late["passed"] is False


def test_sequence_open_earlier_step_counts_and_cameras_are_separate():
    engine = Engine([SEQ], {"k": "media", "sink": "media"})
    engine.on_activity(act("start", "sink", "handwash", 1, 1.0))  # another camera: does not count on k
    assert engine.on_activity(act("start", "k", "food_prep", 1, 2.0))[0]["passed"] is False
    engine.on_activity(act("start", "k", "handwash", 1, 0.0))  # still open (no end yet)
    assert engine.on_activity(act("start", "k", "food_prep", 2, 900.0))[0]["passed"] is True


def test_sequence_checks_the_order_of_every_earlier_step():
    rule = Rule("abc", "sequence", steps=("a", "b", "c"), within_s=100)
    engine = Engine([rule], {"k": "media"})
    assert verdicts(engine.on_activity(act("start", "k", "b", 1, 5.0))) == [("abc", "k", False, 5.0, ["k-b-1"])]
    assert engine.on_activity(act("start", "k", "a", 1, 10.0)) == []  # a came after b
    [check] = engine.on_activity(act("start", "k", "c", 1, 20.0))
    assert verdicts([check]) == [("abc", "k", False, 20.0, ["k-b-1", "k-c-1"])]
    assert "without a before b" in check["reason"]
    engine.on_activity(act("start", "k", "b", 2, 30.0))  # now a (10) → b (30)
    [check] = engine.on_activity(act("start", "k", "c", 2, 40.0))
    assert verdicts([check]) == [("abc", "k", True, 40.0, ["k-a-1", "k-b-2", "k-c-2"])]


# ---------------------------------------------------------------- followed_by (an absence: deadlines)

def test_followed_by_fails_at_the_deadline():
    engine = Engine([AFTER], {"yard": "media"})
    engine.on_activity(act("start", "yard", "smoking", 1, 3.0))
    assert engine.on_activity(act("end", "yard", "smoking", 1, 3.0, 10.0)) == []
    assert engine.next_deadline("yard") == 15.0
    assert engine.advance("yard", 14.9, "w") == []
    [check] = engine.advance("yard", 15.3, "late")
    assert verdicts([check]) == [("wash-after-smoking", "yard", False, 15.0, ["yard-smoking-1"])]
    assert check["reason"] == "smoking ended at 10.0 s and handwash did not start within 5 s"
    assert check["wall_time"] == "late"
    assert engine.next_deadline("yard") is None
    assert engine.on_activity(act("start", "yard", "handwash", 1, 16.0)) == []  # too late: nothing more


def test_followed_by_passes_when_then_starts_in_time():
    engine = Engine([AFTER], {"yard": "media"})
    engine.on_activity(act("end", "yard", "smoking", 1, 3.0, 10.0))
    engine.advance("yard", 12.0, "w")
    [check] = engine.on_activity(act("start", "yard", "handwash", 1, 15.0))  # deadline itself still counts
    assert verdicts([check]) == [("wash-after-smoking", "yard", True, 15.0, ["yard-smoking-1", "yard-handwash-1"])]
    assert check["reason"] == "handwash started 5.0 s after smoking ended (within 5 s)"
    assert engine.advance("yard", 99.0, "w") == []


def test_followed_by_then_seen_before_the_end_was_noticed():
    # The end of `first` is noticed gap_s after its last clip; `then` may start in between.
    engine = Engine([AFTER], {"yard": "media"})
    engine.on_activity(act("start", "yard", "handwash", 1, 10.64))
    [check] = engine.on_activity(act("end", "yard", "smoking", 1, 3.0, 10.0))
    assert verdicts([check]) == [("wash-after-smoking", "yard", True, 10.64, ["yard-smoking-1", "yard-handwash-1"])]


def test_followed_by_then_before_first_ended_does_not_count():
    engine = Engine([AFTER], {"yard": "media"})
    engine.on_activity(act("start", "yard", "handwash", 1, 2.0))
    assert engine.on_activity(act("end", "yard", "smoking", 1, 3.0, 10.0)) == []
    assert verdicts(engine.advance("yard", 20.0, "w")) == [("wash-after-smoking", "yard", False, 15.0,
                                                            ["yard-smoking-1"])]


def test_followed_by_at_the_end_of_a_file():
    engine = Engine([AFTER], {"a": "media", "b": "media"})
    engine.on_activity(act("end", "a", "smoking", 1, 0.0, 10.0))
    [undecided] = engine.finish("a", 13.0, "w")
    assert verdicts([undecided]) == [("wash-after-smoking", "a", None, 13.0, ["a-smoking-1"])]
    assert "13.0 s" in undecided["reason"]
    # a deadline the file's end passed is judged, even without a prediction after it
    engine.on_activity(act("end", "b", "smoking", 1, 0.0, 10.0))
    assert verdicts(engine.finish("b", 20.0, "w")) == [("wash-after-smoking", "b", False, 15.0, ["b-smoking-1"])]


def test_followed_by_across_cameras_waits_for_the_then_camera():
    rule = Rule("wash-after-smoking", "followed_by", first="smoking@yard", then="handwash@sink", within_s=5)
    engine = Engine([rule], {"yard": "media", "sink": "media"})
    assert engine.on_activity(act("end", "sink", "smoking", 1, 0.0, 1.0)) == []  # smoking at the sink: not this rule
    engine.on_activity(act("end", "yard", "smoking", 1, 3.0, 10.0))
    assert engine.advance("yard", 100.0, "w") == []  # the yard runs ahead: only the sink can tell
    assert engine.next_deadline("sink") == 15.0 and engine.next_deadline("yard") is None
    assert engine.on_activity(act("start", "yard", "handwash", 1, 12.0)) == []  # handwash at the yard: no
    [check] = engine.advance("sink", 15.0, "w")
    assert verdicts([check]) == [("wash-after-smoking", "yard", False, 15.0, ["yard-smoking-1"])]
    assert check["reason"] == "smoking on yard ended at 10.0 s and handwash on sink did not start within 5 s"
    engine.on_activity(act("end", "yard", "smoking", 2, 20.0, 30.0))
    [check] = engine.on_activity(act("start", "sink", "handwash", 1, 33.0))
    assert verdicts([check]) == [("wash-after-smoking", "yard", True, 33.0, ["yard-smoking-2", "sink-handwash-1"])]


def test_followed_by_first_ending_after_the_then_camera_moved_on():
    rule = Rule("r", "followed_by", first="smoking@yard", then="handwash@sink", within_s=5)
    engine = Engine([rule], {"yard": "media", "sink": "media"})
    engine.advance("sink", 50.0, "w")  # the sink is already at 50 s with no handwash
    assert verdicts(engine.on_activity(act("end", "yard", "smoking", 1, 3.0, 10.0))) == [
        ("r", "yard", False, 15.0, ["yard-smoking-1"])]
    engine.finish("sink", 60.0, "w")
    assert verdicts(engine.on_activity(act("end", "yard", "smoking", 2, 50.0, 58.0))) == [
        ("r", "yard", None, 60.0, ["yard-smoking-2"])]


def test_wall_time_reasons_read_as_clock_times():
    engine = Engine([AFTER], {"live": "wall"})
    engine.on_activity(act("end", "live", "smoking", 1, 1795853690.0, 1795853700.0))
    [check] = engine.advance("live", 1795853710.0, "w")
    assert (check["time_base"], check["time_s"]) == ("wall", 1795853705.0)
    assert re.fullmatch(r"smoking ended at \d\d:\d\d:\d\d and handwash did not start within 5 s", check["reason"])


def test_bad_rules_are_refused_by_the_config():
    # The engine takes rules as the config validated them; these mistakes never reach it.
    from edge.config import ConfigError, config_from_mapping

    cameras = {"a": {"source": "a.mp4"}, "b": {"source": "rtsp://cam/b"}, "yard": {"source": "y.mp4"}}
    activities = {name: {"labels": ["x"]} for name in ("smoking", "handwash", "x", "y")}
    for rule, match in [
        (dict(kind="forbidden", activity="smoking@roof"), "unknown camera 'roof'"),
        (dict(kind="followed_by", first="smoking@a", then="handwash@b", within_s=5), "media time and wall time"),
        (dict(kind="maximum", activity="x"), "must be one of 'min_duration'"),
        (dict(kind="sequence", steps=["x", "x"], within_s=5), "steps must differ"),
        (dict(kind="followed_by", first="x", then="y"), "needs first, then, within_s"),
    ]:
        with pytest.raises(ConfigError, match=match):
            config_from_mapping({"cameras": cameras, "activities": activities, "rules": [{"name": "r", **rule}]})


def test_thread_safe_under_concurrent_cameras():
    cameras = {f"c{n}": "media" for n in range(8)}
    engine = Engine([NO_SMOKING, AFTER], cameras)
    results: dict[str, list] = {}

    def lane(camera):
        out = []
        for number in range(1, 201):
            t = number * 20.0
            out += engine.on_activity(act("start", camera, "smoking", number, t))
            out += engine.on_activity(act("end", camera, "smoking", number, t, t + 1))
            out += engine.advance(camera, t + 10, "w")
        results[camera] = out

    threads = [threading.Thread(target=lane, args=(camera,)) for camera in cameras]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for camera, out in results.items():
        assert len(out) == 400  # a forbidden start and a missed deadline per smoking segment
        assert all(c["camera"] == camera for c in out)
        assert sorted(c["time_s"] for c in out if c["kind"] == "followed_by") == [n * 20.0 + 6 for n in range(1, 201)]


# ---------------------------------------------------------------- CameraMonitor: the lane's order

@dataclass(frozen=True)
class Activity:
    labels: tuple[str, ...]
    min_score: float = 0.5
    gap_s: float = 2.0
    update_s: float = 5.0


def test_camera_monitor_order_and_deadline_on_prediction_times():
    labels = ("smoking", "washing hands", "other")
    specs = {"smoking": Activity(("smoking",)), "handwash": Activity(("washing hands",))}
    engine = Engine([NO_SMOKING, AFTER], {"yard": "media"})
    monitor = CameraMonitor(ActivityTracker("yard", specs, labels, "media"), engine.engine)

    def prediction(t, p, gated=False):
        record = {"end_time_s": t, "wall_time": f"w{t}", "gated": gated}
        return lines(monitor.on_prediction(from_json_dict(record), None if gated else np.array(p, dtype=np.float32)))

    out = []
    for t in (1.0, 2.0, 3.0):
        out += prediction(t, [0.9, 0.0, 0.1])
    assert [(r["event"], r.get("type") or r["rule"]) for r in out] == [("activity", "start"), ("check", "no-smoking")]
    for t in (4.0, 5.0, 6.0, 7.0, 8.0):
        out += prediction(t, [0, 0, 1], gated=t > 6)
    # smoking's last clip at 3 → end noticed at 5; the deadline 3 + 5 = 8 fails at the clip of time 8
    assert [(r["event"], r.get("type") or r["rule"], r.get("time_s", r.get("end_time_s"))) for r in out[2:]] == [
        ("activity", "end", 3.0), ("check", "wash-after-smoking", 8.0)]
    assert out[-1]["wall_time"] == "w8.0"
    out = prediction(9.0, [0, 0.9, 0.1]) + lines(monitor.on_end("the end"))
    assert [(r.get("type"), r.get("reason")) for r in out] == [("start", None), ("end", "end of stream")]


def test_camera_monitor_clock_catches_a_deadline_while_no_clip_comes():
    labels = ("smoking", "washing hands", "other")
    specs = {"smoking": Activity(("smoking",)), "handwash": Activity(("washing hands",))}
    engine = Engine([AFTER], {"live": "wall"})
    monitor = CameraMonitor(ActivityTracker("live", specs, labels, "wall"), engine.engine)
    t0 = 1795852800.0  # 2026-11-28T08:00:00Z, as the wall_time of each prediction says
    for second, p in ((0, [0.9, 0, 0.1]), (1, [0.9, 0, 0.1]), (4, [0, 0, 1])):
        monitor.on_prediction(from_json_dict({"wall_time": f"2026-11-28T08:00:0{second}+00:00", "end_time_s": 99.0}),
                              np.array(p, dtype=np.float32))
    # smoking ended at t0 + 1 (noticed at t0 + 4): due at t0 + 6; the stream is silent after that
    assert monitor.next_deadline() == t0 + 6
    assert monitor.on_clock(t0 + 5.9, "w") == []
    [check] = lines(monitor.on_clock(t0 + 6.2, "w"))
    assert (check["passed"], check["time_s"], check["time_base"]) == (False, t0 + 6, "wall")
    assert monitor.next_deadline() is None


# ---------------------------------------------------------------- cross-camera judgements do not depend on thread timing

@settings(max_examples=150, deadline=None)
@given(smoke_ends=st.lists(st.floats(0, 100), max_size=6), wash_starts=st.lists(st.floats(0, 120), max_size=6),
       sink_end=st.floats(0, 130), within_s=st.floats(0.5, 20), order=st.lists(st.booleans(), min_size=30, max_size=30))
def test_followed_by_across_cameras_is_independent_of_interleaving(smoke_ends, wash_starts, sink_end, within_s, order):
    smoke_ends, wash_starts = sorted(smoke_ends), sorted(t for t in wash_starts if t <= sink_end)
    rule = Rule("r", "followed_by", first="smoking@yard", then="handwash@sink", within_s=within_s)
    engine = Engine([rule], {"yard": "media", "sink": "media"})
    yard = [("on", act("end", "yard", "smoking", n + 1, max(0.0, e - 1), e)) for n, e in enumerate(smoke_ends)]
    yard.append(("finish", "yard", 200.0))
    sink = []
    for n, s in enumerate(wash_starts):
        sink += [("on", act("start", "sink", "handwash", n + 1, s)), ("advance", "sink", s)]
    sink.append(("finish", "sink", sink_end))
    out, turn = [], 0
    while yard or sink:  # a random interleaving of the two lanes, each in its own order
        pick = yard if (order[turn % len(order)] and yard) or not sink else sink
        turn += 1
        step = pick.pop(0)
        if step[0] == "on":
            out += engine.on_activity(step[1])
        elif step[0] == "advance":
            out += engine.advance(step[1], step[2], "w")
        else:
            out += engine.finish(step[1], step[2], "w")
    # the oracle, by brute force over the timeline
    expected = []
    for n, end in enumerate(smoke_ends):
        first_id = f"yard-smoking-{n + 1}"
        in_time = [(s, m) for m, s in enumerate(wash_starts) if end <= s <= end + within_s]
        if in_time:
            s, m = in_time[0]
            expected.append((True, round(s, 6), [first_id, f"sink-handwash-{m + 1}"]))
        elif sink_end >= end + within_s:
            expected.append((False, round(end + within_s, 6), [first_id]))
        else:
            expected.append((None, round(max(sink_end, end), 6), [first_id]))
    got = sorted(((c["passed"], c["time_s"], c["activity_ids"]) for c in out), key=lambda v: v[2][0])
    assert got == sorted(expected, key=lambda v: v[2][0])


def test_a_then_camera_that_saw_nothing_leaves_the_deadline_undecided():
    rule = Rule("r", "followed_by", first="smoking@yard", then="handwash@sink", within_s=5)
    engine = Engine([rule], {"yard": "media", "sink": "media"})
    engine.on_activity(act("end", "yard", "smoking", 1, 3.0, 10.0))
    [check] = engine.finish("sink", None, "w")  # the sink never observed a clip
    assert verdicts([check]) == [("r", "yard", None, 10.0, ["yard-smoking-1"])]
    assert check["reason"] == "smoking on yard ended at 10.0 s; camera sink saw nothing, so whether handwash followed is unknown"
    [late] = engine.on_activity(act("end", "yard", "smoking", 2, 20.0, 30.0))
    assert late["passed"] is None
