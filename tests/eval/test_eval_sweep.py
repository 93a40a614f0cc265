"""``--sweep``: its segments equal ``replay``'s, and it finds the thresholds a synthetic day was built to need.

The day (one video, an observation every 0.32 s, as stride 8 at 25 fps): handwash scores 0.42 in two
true segments, [5, 15] (with a 1.5 s dip to 0 at [9, 10.5]) and [18, 28] (3 s apart), and 0.38 in a
distractor at [40, 45]. So min_score must be in (0.38, 0.42] — the grid's 0.40 — and gap_s in
(1.5, 3] — the grid's 2.0: a smaller gap splits the first segment at the dip, a larger one merges the two.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from support_eval import edge_har, read_json

from edge.config import config_from_mapping
from edge.eval.match import match_segments
from edge.eval.sweep import segments_at, tracks
from edge.events import ActivityEvent
from edge.models.registry import bundled_labels
from edge.replay import replay_records

LABELS = bundled_labels()
WASH = LABELS.index("washing hands")
PEEL = LABELS.index("peeling potatoes")
STEP_S = 0.32


def prediction(source: str, time_s: float, scores: dict[int, float] | None, run_id="r1", top_k=False) -> dict:
    record = {"source": source, "clip_index": 0, "start_frame": 0, "end_frame": 0, "start_time_s": time_s - 0.6,
              "end_time_s": round(time_s, 6), "wall_time": "2026-01-01T00:00:00+00:00", "run_id": run_id,
              "camera": "cam", "latency_ms": {}, "model": "m", "untrained": False}
    if scores is None:
        return {**record, "label": None, "score": None, "top_k": [], "gated": True}
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    record.update(label=LABELS[ranked[0][0]], score=ranked[0][1],
                  top_k=[{"label": LABELS[i], "score": v} for i, v in ranked[:5]])
    if not top_k:
        values = [0.0] * len(LABELS)
        for i, v in scores.items():
            values[i] = v
        record["scores"] = values
    return record


def replay_segments(lines, activities) -> dict[str, list[tuple[float, float]]]:
    config = config_from_mapping({"source": "x.mp4", "activities": activities})
    out: dict[str, list] = {name: [] for name in activities}
    for event in replay_records([(f"line {n}", r) for n, r in enumerate(lines, 1)], config):
        if isinstance(event, ActivityEvent) and event.type == "end":
            out[event.activity].append((event.start_time_s, event.end_time_s))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_sweep_segments_equal_replay_on_random_lines(seed):
    rng = np.random.default_rng(seed)
    lines, time_s, run = [], 0.0, 1
    for _ in range(int(rng.integers(20, 120))):
        roll = rng.random()
        if roll < 0.04:
            lines.append({"event": "gap", "source": "x.mp4", "after_frame": 0, "gap_s": 3.0, "reason": "r",
                          "wall_time": "2026-01-01T00:00:00+00:00", "camera": "cam", "run_id": f"r{run}"})
            continue
        if roll < 0.06:
            run += 1  # a new run of the same camera
            time_s = float(rng.uniform(0, 5))
        time_s += float(rng.choice([0.32, 0.32, 0.64, 2.5, -0.3]))  # sometimes back in time: clamped
        gated = rng.random() < 0.1
        scores = None if gated else {WASH: float(np.float32(rng.uniform(0, 1))),
                                     PEEL: float(np.float32(rng.uniform(0, 0.5)))}
        lines.append(prediction("x.mp4", time_s, scores, run_id=f"r{run}", top_k=bool(seed % 3 == 2)))
    for min_score in (0.2, 0.45, 0.7):
        for gap_s in (0.5, 2.0):
            activities = {"handwash": {"labels": ["washing hands"], "min_score": min_score, "gap_s": gap_s},
                          "food_prep": {"labels": ["peeling potatoes"], "min_score": min_score / 2, "gap_s": gap_s}}
            want = replay_segments(lines, activities)
            got = tracks({"x.mp4": [(f"line {n}", r) for n, r in enumerate(lines, 1)]}, activities, LABELS, "media")
            assert segments_at(got["handwash"]["x.mp4"], min_score, gap_s) == want["handwash"]
            assert segments_at(got["food_prep"]["x.mp4"], min_score / 2, gap_s) == want["food_prep"]


def wash_score(t: float) -> float:
    if 5 <= t <= 15 and not 9 <= t <= 10.5 or 18 <= t <= 28:
        return 0.42
    if 40 <= t <= 45:
        return 0.38
    return 0.0


@pytest.fixture(scope="module")
def synthetic_day(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    data = folder / "data"
    data.mkdir()
    (data / "day.mp4").write_bytes(b"")  # only its name is read: the events stand for the run
    (data / "annotations.csv").write_text("video,start_s,end_s,activity\nday.mp4,5,15,handwash\n"
                                          "day.mp4,18,28,handwash\n", encoding="utf-8")
    times = np.arange(1, int(60 / STEP_S)) * STEP_S
    lines = [prediction(str(data / "day.mp4"), float(t), {WASH: float(np.float32(wash_score(t)))}) for t in times]
    events = folder / "events.jsonl"
    events.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    config = folder / "cfg.yaml"
    config.write_text("activities:\n  handwash: {labels: [washing hands], min_score: 0.2, gap_s: 8}\n",
                      encoding="utf-8")
    return folder, data, events, config


def test_sweep_finds_the_thresholds_the_data_needs_and_agrees_with_replay(synthetic_day):
    folder, data, events, config = synthetic_day
    result = edge_har("eval", data, "-c", config, "--events", events, "--sweep", "--json", folder / "eval.json",
                      cwd=folder)
    assert result.returncode == 0, result.stderr
    sweep = read_json(folder / "eval.json")["sweep"]["handwash"]
    assert len(sweep["grid"]) == 100
    assert sweep["best"] == {"min_score": 0.4, "gap_s": 2.0, "f1": 1.0, "precision": 1.0, "recall": 1.0}
    grid = {(point["min_score"], point["gap_s"]): point for point in sweep["grid"]}
    assert grid[(0.35, 2.0)]["fp"] == 1                       # the distractor
    assert grid[(0.4, 1.0)]["tp"] == 1                        # the dip splits the first segment
    assert grid[(0.4, 4.0)]["tp"] == 0                        # the two merge
    assert grid[(0.45, 2.0)]["tp"] == 0 and grid[(0.45, 2.0)]["f1"] is None  # nothing predicted
    assert "min_score 0.4  gap_s 2" in result.stdout
    # replay at the best point, matched to the truth at tIoU 0.5, gives the grid's counts
    tuned = folder / "tuned.yaml"
    tuned.write_text("source: day.mp4\nactivities:\n  handwash: {labels: [washing hands], min_score: 0.4, "
                     "gap_s: 2.0}\n", encoding="utf-8")
    replayed = edge_har("replay", events, "-c", tuned, cwd=folder)
    assert replayed.returncode == 0, replayed.stderr
    segments = [(e["start_time_s"], e["end_time_s"]) for e in map(json.loads, replayed.stdout.splitlines())
                if e["event"] == "activity" and e["type"] == "end"]
    truth = [(5.0, 15.0), (18.0, 28.0)]
    matched = len(match_segments(truth, segments, 0.5))
    point = grid[(0.4, 2.0)]
    assert (point["tp"], point["fp"], point["fn"]) == (matched, len(segments) - matched, len(truth) - matched)
    assert len(segments) == 2 and segments[0][0] == pytest.approx(5.12) and segments[1][1] == pytest.approx(27.84)
