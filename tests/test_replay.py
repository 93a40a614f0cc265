"""``replay``: recorded prediction lines in, activity and check records out.

Oracles: the live path (tracker + engine fed the float32 probabilities the
model gave, lines written by the real events.jsonl writer) for "replay equals
live", and segments/judgements worked out by hand for the top_k bound.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from edge.activities import ActivityTracker
from edge.checks import CheckEngine
from edge.engine.monitor import CameraMonitor
from edge.events import PredictionEvent, from_json_dict
from edge.models.registry import bundled_labels
from edge.records import Clip, Prediction
from edge.replay import ReplayError
from edge.replay import replay as replay_events

LABELS = bundled_labels()
WASH, PEEL, CUT, SMOKE = (LABELS.index(name) for name in
                          ("washing hands", "peeling potatoes", "cutting watermelon", "smoking"))


@dataclass(frozen=True)
class Activity:
    labels: tuple[str, ...]
    min_score: float = 0.5
    gap_s: float = 2.0
    update_s: float = 5.0


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


ACTIVITIES = {
    "handwash": Activity(("washing hands",)),
    "food_prep": Activity(("peeling potatoes", "cutting watermelon")),
    "smoking": Activity(("smoking",)),
}
RULES = [
    Rule("wash-3s", "min_duration", activity="handwash", seconds=3),
    Rule("wash-before-prep", "sequence", steps=("handwash", "food_prep"), within_s=600),
    Rule("no-smoking", "forbidden", activity="smoking"),
    Rule("wash-after-smoking", "followed_by", first="smoking", then="handwash", within_s=2),
]


def replay(lines, config, camera=None):
    """What replay prints: each event's events.jsonl object."""
    for event in replay_events(lines, config, camera):
        yield event.to_json_dict()


def lines_of(events, run_id="run-1"):
    """The activity and check lines the live run writes for the monitor's events."""
    return [event.stamped(run_id).to_json_dict() for event in events if event.kind in ("activity", "check")]


def make_config(cameras=("sink",), live=False, rules=RULES):
    return SimpleNamespace(
        cameras={name: SimpleNamespace(name=name, activities=ACTIVITIES, time_base="wall" if live else "media")
                 for name in cameras},
        rules=rules, model=SimpleNamespace(path=None, labels=None))


def distribution(**mass) -> np.ndarray:
    """Float32 probabilities: the named labels get their mass, the rest is spread evenly."""
    p = np.zeros(len(LABELS), dtype=np.float64)
    for index, value in mass.items():
        p[{"wash": WASH, "peel": PEEL, "cut": CUT, "smoke": SMOKE}[index]] = value
    rest = [i for i in range(len(LABELS)) if p[i] == 0]
    p[rest] = (1.0 - p.sum()) / len(rest)
    return p.astype(np.float32)


def prediction_line(clip_index, p, camera="sink", run_id="run-1", include_scores=True, top_k=5, clip_s=0.64,
                    gated=False):
    """A prediction line exactly as the live run writes it (the real events.jsonl record)."""
    order = np.argsort(-p, kind="stable")[:top_k]
    clip = Clip(clip_index, tuple(range(clip_index * 16, clip_index * 16 + 16)),
                clip_index * clip_s, clip_index * clip_s + clip_s - 0.04)
    prediction = Prediction(clip, LABELS[order[0]], float(p[order[0]]),
                            tuple((LABELS[i], float(p[i])) for i in order), p,
                            wall_time=f"2026-11-28T08:00:{clip_index:02d}.000+00:00")
    record = dict(PredictionEvent.of(prediction, camera=camera, source="x.mp4", model="m", untrained=False,
                                     include_scores=include_scores).stamped(run_id).to_json_dict())
    if gated:
        record.update(gated=True, label=None, score=None, top_k=[])
        record.pop("scores", None)
    return record


SCRIPT = ([distribution()] * 2 + [distribution(wash=0.93)] * 4 + [distribution()] * 5     # a short wash
          + [distribution(peel=0.3, cut=0.3)] * 3 + [distribution()] * 4                    # prep after it
          + [distribution(smoke=0.8)] * 2 + [distribution()] * 8                            # smoking, no wash
          + [distribution(wash=0.45, peel=0.05)] + [distribution(wash=0.97)] * 7)           # then a long wash


def live_run(probabilities, camera="sink", live=False, gaps=()):
    """What the lane does: the monitor fed the model's float32 probabilities; returns (lines, outputs)."""
    config = make_config((camera,), live)
    base = "wall" if live else "media"
    engine = CheckEngine(RULES, {camera: base})
    monitor = CameraMonitor(ActivityTracker(camera, ACTIVITIES, LABELS, base), engine)
    lines, outputs = [], []
    for number, p in enumerate(probabilities):
        record = prediction_line(number, p, camera)
        lines.append(json.dumps(record))
        outputs.extend(lines_of(monitor.on_prediction(from_json_dict(record), p)))
        if number in gaps:
            gap = {"event": "gap", "camera": camera, "run_id": "run-1", "source": "x", "after_frame": number * 16 + 15,
                   "gap_s": 3.0, "reason": "stream dropped", "wall_time": record["wall_time"]}
            lines.append(json.dumps(gap))
            outputs.extend(lines_of(monitor.on_gap(from_json_dict(gap))))
    outputs.extend(lines_of(monitor.on_end("end")))
    return config, lines, outputs


def without_wall_time(records):
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in records]


def test_replay_with_scores_equals_the_live_run():
    config, lines, live = live_run(SCRIPT)
    # the script, worked by hand (clip k ends at 0.64 k + 0.6)
    assert [(r.get("type") or r["rule"], r.get("passed")) for r in live] == [
        ("start", None),                                   # handwash at clip 2
        ("end", None), ("wash-3s", False),                 # clips 2–5: 3.2 − 1.88 = 1.92 s < 3 s
        ("start", None), ("wash-before-prep", True),       # food_prep at clip 11 (0.3 + 0.3)
        ("end", None),
        ("start", None), ("no-smoking", False),            # smoking at clip 18
        ("end", None), ("wash-after-smoking", False),      # deadline: 19's end 12.76 + 2 = 14.76
        ("start", None), ("end", None), ("wash-3s", True),  # wash from clip 29 to the end: 3.84 s
    ]
    assert live[2]["reason"] == "handwash lasted 1.9 s, needs 3 s"
    assert live[9]["time_s"] == pytest.approx(12.76 + 2)
    assert live[11]["reason"] == "end of stream"
    replayed = list(replay(lines, config))
    assert replayed == live or without_wall_time(replayed) == without_wall_time(live)


def test_replay_with_top_k_decides_by_the_bound():
    config, lines, live = live_run(SCRIPT)
    top_k_only = []
    for line in lines:
        record = json.loads(line)
        record.pop("scores")
        top_k_only.append(json.dumps(record))
    replayed = list(replay(top_k_only, config))
    # every activity here is decided by top-5: food_prep's two labels are both in it when it is active
    assert without_wall_time(replayed) == without_wall_time(live)


def test_top_k_bound_by_hand():
    config = make_config(rules=[])
    def line(number, top):
        return json.dumps({"camera": "sink", "run_id": "r", "end_time_s": float(number),
                           "wall_time": "2026-11-28T08:00:00+00:00",
                           "top_k": [{"label": label, "score": score} for label, score in top]})
    # handwash 0.9 present: active. food_prep: peeling 0.45 present, cutting missing, k-th 0.01:
    # 0.45 + 1 × 0.01 = 0.46 < 0.5 → none.
    lines = [line(1, [("washing hands", 0.9), ("peeling potatoes", 0.045), ("a", 0.02), ("b", 0.015), ("c", 0.01)]),
             line(2, [("peeling potatoes", 0.45), ("washing hands", 0.2), ("a", 0.1), ("b", 0.05), ("c", 0.01)]),
             # both food_prep labels present: 0.3 + 0.25 = 0.55 → active
             line(3, [("peeling potatoes", 0.3), ("cutting watermelon", 0.25), ("a", 0.1), ("b", 0.05), ("c", 0.04)])]
    out = list(replay(lines, config))
    # handwash is below at 2 (1 s < gap_s) and ended at 3 (2 s), when food_prep starts
    assert [(r["type"], r["activity"], r["start_time_s"], r["end_time_s"]) for r in out] == [
        ("start", "handwash", 1.0, None), ("end", "handwash", 1.0, 1.0),
        ("start", "food_prep", 3.0, None), ("end", "food_prep", 3.0, 3.0)]
    assert out[2]["peak_score"] == pytest.approx(0.55)


def test_undecidable_line_is_named_and_asks_for_scores():
    config = make_config(rules=[])
    ok = json.dumps({"camera": "sink", "end_time_s": 0.6, "wall_time": "2026-11-28T08:00:00+00:00",
                     "top_k": [{"label": "washing hands", "score": 0.9}, {"label": "x", "score": 0.01}]})
    # peeling 0.45 present, cutting missing, k-th score 0.06: 0.45 + 0.06 = 0.51 ≥ 0.5 > 0.45
    bad = json.dumps({"camera": "sink", "end_time_s": 1.2, "wall_time": "2026-11-28T08:00:01+00:00",
                      "top_k": [{"label": "peeling potatoes", "score": 0.45}, {"label": "x", "score": 0.3},
                                {"label": "y", "score": 0.06}]})
    out = []
    with pytest.raises(ReplayError) as caught:
        for record in replay([ok, "", bad], config):
            out.append(record)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("line 3: ") and "food_prep" in message and "output.include_scores: true" in message
    assert [r["type"] for r in out] == ["start"]  # what came before is kept


def test_a_line_that_is_not_json_is_an_error_naming_it():
    config = make_config()
    lines = [json.dumps(prediction_line(0, distribution())), json.dumps(prediction_line(1, distribution())),
             "frame=  120 fps= 25 q=28.0 size=    512kB"]
    with pytest.raises(ReplayError, match=r"^line 3: not JSON"):
        list(replay(lines, config))
    with pytest.raises(ReplayError, match=r"^line 1: expected a JSON object"):
        list(replay(["[1, 2]"], config))


def test_gap_lines_end_segments_and_gated_lines_score_none():
    script = [distribution(wash=0.9)] * 3 + [distribution(wash=0.9)] * 3
    config, lines, live = live_run(script, live=True, gaps=(2,))
    assert [(r["type"], r.get("reason")) for r in live if r["event"] == "activity"] == [
        ("start", None), ("end", "stream gap"), ("start", None), ("end", "end of stream")]
    assert live[0]["time_base"] == "wall"
    assert live[0]["start_time_s"] == pytest.approx(1795852800.0)  # 2026-11-28T08:00:00Z
    assert without_wall_time(replay(lines, config)) == without_wall_time(live)
    gated = [json.dumps(prediction_line(0, distribution(wash=0.9))),
             json.dumps(prediction_line(1, distribution(wash=0.9), gated=True)),
             json.dumps(prediction_line(5, distribution(wash=0.9), gated=True))]
    out = list(replay(gated, make_config(rules=[])))
    # clip 0 ends at 0.6; gated clips score none: ended at clip 5 (3.8 s ≥ 0.6 + 2)
    assert [(r["type"], r["end_time_s"], r.get("reason")) for r in out] == [("start", None, None),
                                                                            ("end", 0.6, "ended")]


def test_each_run_id_starts_afresh_and_camera_filter():
    config = make_config(("sink", "yard"), rules=[RULES[0]])
    wash = distribution(wash=0.9)
    lines = [json.dumps(prediction_line(0, wash, "sink", "run-1")),
             json.dumps(prediction_line(0, wash, "yard", "run-1")),
             json.dumps({"event": "check", "camera": "sink", "rule": "old"}),  # outputs in the file are ignored
             json.dumps(prediction_line(0, wash, "sink", "run-2"))]
    out = list(replay(lines, config))
    assert [(r["run_id"], r["activity_ids"][0] if r["event"] == "check" else r["id"], r.get("type"), r.get("rule"))
            for r in out] == [
        ("run-1", "sink-handwash-1", "start", None), ("run-1", "yard-handwash-1", "start", None),
        ("run-1", "sink-handwash-1", "end", None), ("run-1", "sink-handwash-1", None, "wash-3s"),
        ("run-1", "yard-handwash-1", "end", None), ("run-1", "yard-handwash-1", None, "wash-3s"),
        ("run-2", "sink-handwash-1", "start", None), ("run-2", "sink-handwash-1", "end", None),
        ("run-2", "sink-handwash-1", None, "wash-3s")]
    assert {r["camera"] for r in replay(lines, config, camera="yard")} == {"yard"}
    with pytest.raises(ReplayError, match="line 1: camera 'kitchen' is not in the config"):
        list(replay([json.dumps(prediction_line(0, wash, "kitchen"))], config))
    # a one-camera config takes the camera `run` named after the file
    assert {r["camera"] for r in replay([json.dumps(prediction_line(0, wash, "kitchen"))], make_config())} == {"kitchen"}


def test_replay_files_merges_cameras_for_a_rule_that_spans_them(tmp_path):
    from edge.replay import replay_files

    rule = Rule("wash-after-smoking", "followed_by", first="smoking@yard", then="handwash@sink", within_s=5)
    config = make_config(("yard", "sink"), rules=[rule])
    yard = [distribution()] * 2 + [distribution(smoke=0.9)] * 3 + [distribution()] * 15
    sink = [distribution()] * 8 + [distribution(wash=0.9)] * 3 + [distribution()] * 9
    for name, script in (("yard", yard), ("sink", sink)):
        (tmp_path / f"{name}.jsonl").write_text(
            "".join(json.dumps(prediction_line(k, p, name)) + "\n" for k, p in enumerate(script)), encoding="utf-8")
    out = [e.to_json_dict() for e in replay_files([tmp_path / "yard.jsonl", tmp_path / "sink.jsonl"], config)]
    [check] = [r for r in out if r["event"] == "check"]
    # smoking: clips 2–4, ends at 4 × 0.64 + 0.6 = 3.16; handwash starts at clip 8: 5.72 ≤ 3.16 + 5
    assert (check["passed"], check["camera"], check["time_s"]) == (True, "yard", pytest.approx(5.72))
    assert check["activity_ids"] == ["yard-smoking-1", "sink-handwash-1"]
    # one camera alone cannot tell: the sink's clock never moves, so the deadline stays undecided
    [alone] = [e.to_json_dict() for e in replay_files([tmp_path / "yard.jsonl"], config) if e.kind == "check"]
    assert alone["passed"] is None and alone["reason"] == (
        "smoking on yard ended at 3.2 s; camera sink saw nothing, so whether handwash followed is unknown")
    (tmp_path / "bad.jsonl").write_text('{"event": "status"}\n\n[\n', encoding="utf-8")
    with pytest.raises(ReplayError, match=r"bad\.jsonl: line 3: not JSON"):
        list(replay_files([tmp_path / "yard.jsonl", tmp_path / "bad.jsonl"], config))
