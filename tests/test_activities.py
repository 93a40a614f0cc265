"""ActivityTracker: segments driven by scripted probability sequences.

Oracle: the segments, updates and ends worked out by hand from the rules in
DESIGN.md (start at min_score, end after gap_s below it, end time = the last
clip at or above min_score), plus hypothesis properties of the segment machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.activities import ActivityTracker, OpenSegment, current_activity, observation_time, wall_seconds

LABELS = ("washing hands", "peeling potatoes", "cutting watermelon", "smoking", "other")


@dataclass(frozen=True)
class Activity:
    labels: tuple[str, ...]
    min_score: float = 0.5
    gap_s: float = 2.0
    update_s: float = 5.0


SPECS = {
    "handwash": Activity(("washing hands",)),
    "food_prep": Activity(("peeling potatoes", "cutting watermelon")),
}


def probs(wash=0.0, peel=0.0, cut=0.0, smoke=0.0) -> np.ndarray:
    rest = 1.0 - wash - peel - cut - smoke
    return np.array([wash, peel, cut, smoke, rest], dtype=np.float32)


def lines(events):
    """The events.jsonl objects of the tracker's events."""
    return [event.to_json_dict() for event in events]


def drive(tracker, script):
    """Feed ``[(time_s, probabilities|None), ...]``; returns (time_s, record) for every record."""
    out = []
    for time_s, p in script:
        out.extend((time_s, record) for record in lines(tracker.observe(time_s, p, f"w{time_s}")))
    return out


def short(records):
    return [(r["type"], r["id"], r["start_time_s"], r["end_time_s"], r["duration_s"], r.get("reason"))
            for _, r in records]


def test_one_segment_start_update_end():
    tracker = ActivityTracker("sink", SPECS, LABELS, "media")
    script = [(t, probs(wash=0.8 if 3 <= t <= 9 else 0.1)) for t in range(0, 21)]
    records = drive(tracker, script)
    # start at the first clip ≥ 0.5 (t=3); an update 5 s later (t=8, so far 3→8);
    # noticed ended at t=11 (2 s after the last active clip, t=9), ending at 9.
    assert short(records) == [
        ("start", "sink-handwash-1", 3.0, None, 0.0, None),
        ("update", "sink-handwash-1", 3.0, None, 5.0, None),
        ("end", "sink-handwash-1", 3.0, 9.0, 6.0, "ended"),
    ]
    assert [t for t, _ in records] == [3, 8, 11]
    start, _, end = (r for _, r in records)
    assert end["peak_score"] == pytest.approx(0.8)
    assert end["time_base"] == "media" and end["camera"] == "sink" and end["activity"] == "handwash"
    assert end["wall_time"] == "w11"
    assert list(start) == ["event", "type", "id", "camera", "activity", "start_time_s", "end_time_s",
                           "duration_s", "peak_score", "time_base", "wall_time"]
    assert list(end) == ["event", "type", "id", "camera", "activity", "start_time_s", "end_time_s",
                         "duration_s", "peak_score", "time_base", "reason", "wall_time"]


def test_score_is_the_sum_of_the_activity_labels():
    tracker = ActivityTracker("k", SPECS, LABELS, "media")
    # 0.3 + 0.3 = 0.6 ≥ 0.5 although no single label reaches it
    assert tracker.activity_scores(probs(peel=0.3, cut=0.3)) == {"handwash": 0.0,
                                                                  "food_prep": pytest.approx(0.6)}
    records = drive(tracker, [(0.0, probs(peel=0.3, cut=0.3))])
    assert short(records) == [("start", "k-food_prep-1", 0.0, None, 0.0, None)]
    assert records[0][1]["peak_score"] == pytest.approx(0.6)
    assert drive(tracker, [(1.0, probs(peel=0.3, cut=0.19))]) == []  # 0.49: below, but within gap_s


def test_flicker_shorter_than_gap_does_not_split():
    tracker = ActivityTracker("sink", SPECS, LABELS, "media")
    scores = {0: .9, 1: .9, 2: .9, 3: .2, 4: .9, 5: .6, 6: .1, 7: .1, 8: .1}  # below for 1 s at t=3
    records = drive(tracker, [(t, probs(wash=s)) for t, s in scores.items()])
    assert short(records) == [("start", "sink-handwash-1", 0.0, None, 0.0, None),
                              ("update", "sink-handwash-1", 0.0, None, 5.0, None),  # 5 s after the start
                              ("end", "sink-handwash-1", 0.0, 5.0, 5.0, "ended")]
    assert records[-1][0] == 7  # 7 - 5 = gap_s


def test_below_for_exactly_gap_splits():
    tracker = ActivityTracker("sink", SPECS, LABELS, "media")
    scores = [.9, .9, .1, .1, .9, .1, .1, .1]  # t=0..7
    records = drive(tracker, [(float(t), probs(wash=s)) for t, s in enumerate(scores)])
    assert short(records) == [("start", "sink-handwash-1", 0.0, None, 0.0, None),
                              ("end", "sink-handwash-1", 0.0, 1.0, 1.0, "ended"),
                              ("start", "sink-handwash-2", 4.0, None, 0.0, None),
                              ("end", "sink-handwash-2", 4.0, 4.0, 0.0, "ended")]


def test_min_score_is_reached_at_equality():
    tracker = ActivityTracker("c", {"a": Activity(("smoking",), min_score=0.25)}, LABELS, "media")
    assert short(drive(tracker, [(0.0, probs(smoke=0.25))])) == [("start", "c-a-1", 0.0, None, 0.0, None)]


def test_sparse_active_clips_continue_the_segment():
    # Active clips 3 s apart with nothing below in between: still one segment.
    tracker = ActivityTracker("c", SPECS, LABELS, "media")
    records = drive(tracker, [(0.0, probs(wash=.9)), (3.0, probs(wash=.9)), (6.0, probs(wash=.9)),
                              (9.0, probs())])
    assert short(records) == [("start", "c-handwash-1", 0.0, None, 0.0, None),
                              ("update", "c-handwash-1", 0.0, None, 6.0, None),
                              ("end", "c-handwash-1", 0.0, 6.0, 6.0, "ended")]


def test_gated_clip_scores_none():
    tracker = ActivityTracker("c", SPECS, LABELS, "media")
    records = drive(tracker, [(0.0, probs(wash=.9)), (1.0, None), (2.0, None), (3.0, probs(wash=.9))])
    assert short(records) == [("start", "c-handwash-1", 0.0, None, 0.0, None),
                              ("end", "c-handwash-1", 0.0, 0.0, 0.0, "ended"),
                              ("start", "c-handwash-2", 3.0, None, 0.0, None)]


def test_interrupt_ends_open_segments_honestly():
    tracker = ActivityTracker("cam", SPECS, LABELS, "wall")
    drive(tracker, [(100.0, probs(wash=.9, peel=.05)), (101.0, probs(wash=.45, peel=.5)),
                    (101.5, probs(peel=.9))])
    assert tracker.open_ids == ["cam-handwash-1", "cam-food_prep-1"]
    ends = [event.stamped("r1").to_json_dict() for event in tracker.interrupt(130.0, "stream gap", "later")]
    assert [(r["id"], r["end_time_s"], r["duration_s"], r["reason"], r["time_base"], r["run_id"]) for r in ends] == [
        ("cam-handwash-1", 100.0, 0.0, "stream gap", "wall", "r1"),
        ("cam-food_prep-1", 101.5, 0.5, "stream gap", "wall", "r1"),
    ]
    assert tracker.open_ids == [] and current_activity(tracker) is None
    assert tracker.interrupt(131.0, "end of stream", "x") == []
    # after the gap the numbering goes on: ids stay unique within the run
    assert drive(tracker, [(140.0, probs(wash=.9))])[0][1]["id"] == "cam-handwash-2"
    with pytest.raises(ValueError):
        tracker.interrupt(150.0, "bored", "x")


def test_current_is_the_open_segment_with_the_highest_latest_score():
    specs = {"a": Activity(("washing hands",), min_score=0.3), "b": Activity(("smoking",), min_score=0.3)}
    tracker = ActivityTracker("c", specs, LABELS, "media")
    assert current_activity(tracker) is None and current_activity(None) is None
    tracker.observe(0.0, probs(wash=.6, smoke=.35), "w")
    assert current_activity(tracker) == OpenSegment("a", "c-a-1", 0.0, pytest.approx(0.6))
    tracker.observe(1.0, probs(wash=.31, smoke=.65), "w")
    assert current_activity(tracker) == OpenSegment("b", "c-b-1", 0.0, pytest.approx(0.65))
    # a's peak (0.6) is below b's (0.65); now a scores higher than b: the latest score decides, not the peak
    tracker.observe(2.0, probs(wash=.5, smoke=.4), "w")
    assert current_activity(tracker).activity == "a"
    # a stopped (below min_score, still open for gap_s) while b goes on: b
    tracker.observe(3.0, probs(wash=.05, smoke=.45), "w")
    assert tracker.open_ids == ["c-a-1", "c-b-1"] and current_activity(tracker).activity == "b"


def test_time_going_back_is_clamped():
    tracker = ActivityTracker("c", SPECS, LABELS, "wall")
    records = drive(tracker, [(10.0, probs(wash=.9)), (9.0, probs(wash=.9)), (13.0, probs())])
    assert short(records) == [("start", "c-handwash-1", 10.0, None, 0.0, None),
                              ("end", "c-handwash-1", 10.0, 10.0, 0.0, "ended")]


def test_bad_configuration():
    with pytest.raises(ValueError, match="no label 'washing feet'"):
        ActivityTracker("c", {"x": Activity(("washing feet",))}, LABELS, "media")
    with pytest.raises(ValueError, match="time_base"):
        ActivityTracker("c", SPECS, LABELS, "utc")
    with pytest.raises(ValueError, match="probabilities"):
        ActivityTracker("c", SPECS, LABELS, "media").observe(0.0, np.zeros(3), "w")


def test_observation_time_of_a_prediction_record():
    record = {"end_time_s": 12.48, "start_time_s": 11.84, "wall_time": "2026-11-28T09:15:02.250+01:00"}
    assert observation_time(record, "media") == 12.48
    assert observation_time(record, "wall") == wall_seconds(record["wall_time"])
    # 09:15:02.25 at UTC+1 is 08:15:02.25 UTC on 2026-11-28
    assert wall_seconds(record["wall_time"]) == pytest.approx(1795853702.25)


# ---------------------------------------------------------------- properties of the segment machine

step_st = st.tuples(st.floats(0.01, 3.0),                     # time since the previous clip
                    st.one_of(st.none(), st.floats(0.0, 1.0)),  # handwash score (None: gated clip)
                    st.floats(0.0, 1.0))                        # food_prep share of the rest


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(step_st, min_size=1, max_size=60), gap_s=st.floats(0.0, 4.0),
       update_s=st.floats(0.5, 6.0), min_score=st.floats(0.05, 0.95), gap_at=st.integers(-1, 60))
def test_segment_machine_properties(steps, gap_s, update_s, min_score, gap_at):
    specs = {"handwash": Activity(("washing hands",), min_score, gap_s, update_s),
             "food_prep": Activity(("peeling potatoes", "cutting watermelon"), min_score, gap_s, update_s)}
    tracker = ActivityTracker("p", specs, LABELS, "media")
    records, times, active = [], [], {"handwash": [], "food_prep": []}
    time_s = 0.0
    for number, (dt, wash, prep_share) in enumerate(steps):
        time_s += dt
        times.append(time_s)
        if number == gap_at:
            records.extend(lines(tracker.interrupt(time_s, "stream gap", "g")))
        if wash is None:
            records.extend(lines(tracker.observe(time_s, None, "w")))
            continue
        p = probs(wash=wash * 0.999, peel=(1 - wash * 0.999) * prep_share / 2, cut=(1 - wash * 0.999) * prep_share / 2)
        scores = tracker.activity_scores(p)
        for name, score in scores.items():
            if score >= min_score:
                active[name].append(time_s)
        records.extend(lines(tracker.observe(time_s, p, "w")))
    records.extend(lines(tracker.interrupt(time_s, "end of stream", "e")))

    span = times[-1] - times[0]
    for name in specs:
        mine = [r for r in records if r["activity"] == name]
        starts = [r for r in mine if r["type"] == "start"]
        ends = [r for r in mine if r["type"] == "end"]
        # every start has exactly one end, after it in the stream; ids unique
        assert sorted(r["id"] for r in starts) == sorted(r["id"] for r in ends)
        assert len({r["id"] for r in starts}) == len(starts)
        for start in starts:
            assert mine.index(start) < next(i for i, r in enumerate(mine) if r["type"] == "end" and r["id"] == start["id"])
        # segments never overlap, and each is end − start over active clip times
        intervals = [(r["start_time_s"], r["end_time_s"]) for r in ends]
        for (s0, e0), (s1, _) in zip(intervals, intervals[1:]):
            assert s1 > e0
        for r in ends:
            assert r["duration_s"] == pytest.approx(r["end_time_s"] - r["start_time_s"], abs=1e-5)
            assert r["start_time_s"] == pytest.approx(
                min(t for t in active[name] if t >= r["start_time_s"] - 1e-6), abs=1e-6)  # times: 6 decimals
            assert any(abs(t - r["end_time_s"]) < 1e-5 for t in active[name])
        assert sum(r["duration_s"] for r in ends) <= span + 1e-5
        # every active clip lies inside a segment
        for t in active[name]:
            assert any(s - 1e-5 <= t <= e + 1e-5 for s, e in intervals)
        # updates belong to open segments and never report more than the segment's final duration
        for r in mine:
            if r["type"] == "update":
                end = next(e for e in ends if e["id"] == r["id"])
                assert r["duration_s"] <= end["duration_s"] + 1e-6
    assert tracker.open_ids == []
