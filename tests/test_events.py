"""Typed events: each kind's one serialiser gives the documented events.jsonl object, keys in order.

Oracles: the key lists of DESIGN.md / CONTRACTS.md (and tests/data/golden_events.jsonl, whose lines
``from_json_dict`` must read and give back unchanged); a prediction's numbers against the float32
values they were made from.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from edge.events import (ActivityEvent, CheckEvent, ClipEvent, CurrentActivity, GapEvent, PredictionEvent, StatusEvent,
                         from_json_dict)
from edge.records import Clip, Prediction, StageLatency
from edge.sources.base import Gap
from support_golden import GOLDEN

PREDICTION_KEYS = ["source", "clip_index", "start_frame", "end_frame", "start_time_s", "end_time_s", "wall_time",
                   "label", "score", "top_k", "latency_ms", "model", "untrained"]


def prediction(include_scores=False):
    p = np.random.default_rng(3).dirichlet(np.ones(400)).astype(np.float32)
    order = np.argsort(-p)[:3]
    clip = Clip(2, tuple(range(32, 48)), 1.2800000001, 1.88)
    made = Prediction(clip, f"l{order[0]}", float(p[order[0]]), tuple((f"l{i}", float(p[i])) for i in order), p,
                      latency=StageLatency(1.23456, 40.0, float("nan"), 61.0), wall_time="2026-01-01T00:00:00+00:00")
    return made, PredictionEvent.of(made, camera="door", source="a.mp4", model="m", untrained=False,
                                    include_scores=include_scores)


def test_prediction_line():
    made, event = prediction(include_scores=True)
    line = event.stamped("run-1").to_json_dict()
    assert list(line) == PREDICTION_KEYS + ["scores", "camera", "run_id"]
    assert (line["start_time_s"], line["start_frame"], line["end_frame"]) == (1.28, 32, 47)
    assert line["latency_ms"] == {"preprocess": 1.235, "infer": 40.0, "postprocess": None, "end_to_end": 61.0}
    assert np.array_equal(np.array(line["scores"], np.float32), made.probabilities)  # 9 digits: exact float32
    assert [item["label"] for item in line["top_k"]] == [label for label, _ in made.top_k]
    assert "run_id" not in event.to_json_dict() and event.run_id is None  # stamped once, on a copy


def test_gated_line():
    clip = Clip(0, tuple(range(16)), 0.0, 0.6)
    event = PredictionEvent.gated_clip(clip, StageLatency(1.0, None, None, 5.5), camera="door", source="a.mp4",
                                       model="m", untrained=True, wall_time="t")
    line = event.to_json_dict()
    assert list(line) == PREDICTION_KEYS + ["gated", "camera"]
    assert (line["label"], line["score"], line["top_k"], line["gated"]) == (None, None, [], True)
    assert line["latency_ms"] == {"preprocess": 1.0, "infer": None, "postprocess": None, "end_to_end": 5.5}


def test_the_other_kinds_in_order():
    gap = GapEvent.of(Gap(41, 2.00049, "stream ended"), camera="door", source="rtsp://x", wall_time="t")
    assert gap.stamped("r").to_json_dict() == {"event": "gap", "source": "rtsp://x", "after_frame": 41,
                                               "gap_s": 2.0, "reason": "stream ended", "wall_time": "t",
                                               "camera": "door", "run_id": "r"}
    assert list(StatusEvent(camera="door", state="online", wall_time="t", run_id="r").to_json_dict()) == [
        "event", "camera", "state", "reason", "wall_time", "run_id"]
    start = ActivityEvent(camera="door", wall_time="t", type="start", id="door-a-1", activity="a", start_time_s=1.0,
                          end_time_s=None, duration_s=0.0, peak_score=0.9, time_base="media")
    assert list(start.to_json_dict()) == ["event", "type", "id", "camera", "activity", "start_time_s", "end_time_s",
                                          "duration_s", "peak_score", "time_base", "wall_time"]
    end = ActivityEvent(camera="door", wall_time="t", type="end", id="door-a-1", activity="a", start_time_s=1.0,
                        end_time_s=2.0, duration_s=1.0, peak_score=0.9, time_base="media", reason="ended")
    assert list(end.to_json_dict())[-3:] == ["time_base", "reason", "wall_time"]
    check = CheckEvent(camera="door", wall_time="t", rule="r", rule_kind="forbidden", passed=False, reason="x",
                       time_s=1.0, time_base="media", activity_ids=("door-a-1",), run_id="run")
    assert check.to_json_dict() == {"event": "check", "id": None, "rule": "r", "kind": "forbidden", "camera": "door",
                                    "passed": False, "reason": "x", "time_s": 1.0, "time_base": "media",
                                    "activity_ids": ["door-a-1"], "clip": None, "clip_url": None, "snapshot": None,
                                    "snapshot_url": None, "wall_time": "t", "run_id": "run"}
    assert list(check.to_json_dict())[:2] == ["event", "id"]
    clip = ClipEvent(camera="door", wall_time="t", rule="r", check_id="r-1", activity_id=None, clip="/c/x.mp4",
                     clip_url="/clips/door/x.mp4", snapshot=None, snapshot_url=None, vtt="/c/x.vtt", start_s=1.0,
                     end_s=9.0, run_id="run")
    assert clip.to_json_dict() == {"event": "clip", "camera": "door", "check_id": "r-1", "rule": "r",
                                   "clip": "/c/x.mp4", "clip_url": "/clips/door/x.mp4", "snapshot": None,
                                   "snapshot_url": None, "vtt": "/c/x.vtt", "start_s": 1.0, "end_s": 9.0,
                                   "wall_time": "t", "run_id": "run"}
    assert from_json_dict(clip.to_json_dict()) == clip
    assert check.kind == "check" and check.rule_kind == "forbidden"
    assert CurrentActivity(camera="door", wall_time="t", activity=None).kind == "current_activity"


def test_serialised_once_and_frozen():
    _, event = prediction()
    assert event.to_json_dict() is event.to_json_dict()
    with pytest.raises(AttributeError):
        event.label = "x"
    assert event == prediction()[1] and hash(event) == hash(prediction()[1])


def test_the_golden_lines_read_back_unchanged():
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        event = from_json_dict(record)
        assert event.kind == record.get("event", "prediction") and event.run_id == record["run_id"]
        assert json.dumps(event.to_json_dict()) == line
        # and the typed fields make the same object again
        rebuilt = type(event)(**{field.name: getattr(event, field.name) for field in dataclasses.fields(event)
                                 if field.init})
        again = rebuilt.to_json_dict()
        if event.kind == "check":   # a release-2 line rebuilt gains release 3's keys, null, and nothing else
            from support_golden import RELEASE_3_CHECK_KEYS

            assert all(again[key] is None for key in RELEASE_3_CHECK_KEYS)
            again = {key: value for key, value in again.items() if key not in RELEASE_3_CHECK_KEYS}
        assert json.dumps(again) == line
