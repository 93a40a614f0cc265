"""A learned head's classes in the prediction line, and what replay makes of them (``custom:NAME``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edge.activities import ActivityTracker
from edge.events import PredictionEvent, from_json_dict
from edge.records import Clip, Prediction, StageLatency
from edge.replay import ReplayError, activity_scores

LABELS = ("washing hands", "smoking", "custom:gloves_on", "custom:sanitise", "custom:scan_badge")


def _prediction() -> Prediction:
    clip = Clip(clip_index=3, frame_indices=tuple(range(16)), start_time_s=0.0, end_time_s=0.6)
    return Prediction(clip=clip, label="smoking", score=0.7, top_k=(("smoking", 0.7), ("washing hands", 0.3)),
                      probabilities=np.array([0.3, 0.7], np.float32), latency=StageLatency(1.0, 2.0, 0.1, 3.5),
                      wall_time="2026-12-05T10:00:00.000+00:00",
                      custom_top_k=(("gloves_on", 0.6), ("sanitise", 0.3)),
                      custom_probabilities=np.array([0.6, 0.3, 0.1], np.float32))


def test_the_line_carries_custom_top_k_and_with_scores_custom_scores_and_reads_back():
    event = PredictionEvent.of(_prediction(), camera="sink", source="a.mp4", model="m", untrained=False,
                               include_scores=True)
    record = event.to_json_dict()
    assert record["custom_top_k"] == [{"label": "gloves_on", "score": 0.6}, {"label": "sanitise", "score": 0.3}]
    assert record["custom_scores"] == pytest.approx([0.6, 0.3, 0.1])
    back = from_json_dict(record)
    assert back.custom_top_k == event.custom_top_k and back.custom_scores == event.custom_scores
    plain = PredictionEvent.of(replace(_prediction(), custom_top_k=(), custom_probabilities=None), camera=None,
                               source="a.mp4", model="m", untrained=False).to_json_dict()
    assert "custom_top_k" not in plain and "custom_scores" not in plain
    assert _prediction().activity_probabilities.tolist() == pytest.approx([0.3, 0.7, 0.6, 0.3, 0.1])


def _tracker(min_score: float = 0.5) -> ActivityTracker:
    specs = {"gloving": {"labels": ["custom:gloves_on"], "min_score": min_score},
             "hygiene": {"labels": ["washing hands", "custom:sanitise"], "min_score": min_score}}
    return ActivityTracker("sink", specs, LABELS, "media")


def test_replay_scores_custom_classes_from_custom_scores():
    record = {"scores": [0.3, 0.7], "custom_scores": [0.6, 0.3, 0.1]}
    scores = activity_scores(record, _tracker(), "line 1")
    assert scores["gloving"] == pytest.approx(0.6) and scores["hygiene"] == pytest.approx(0.6)


def test_replay_bounds_a_missing_custom_class_by_its_own_heads_kth_score():
    record = {"top_k": [{"label": "smoking", "score": 0.7}, {"label": "washing hands", "score": 0.3}],
              "custom_top_k": [{"label": "gloves_on", "score": 0.8}]}
    # Kinetics' top_k is complete (2 labels); sanitise is outside custom_top_k: at most 0.8, so hygiene
    # (0.3 present) could reach 1.1 ≥ 0.5: undecided
    with pytest.raises(ReplayError, match="line 7: top_k cannot tell whether hygiene is active"):
        activity_scores(record, _tracker(), "line 7")
    record["custom_top_k"] += [{"label": "sanitise", "score": 0.15}, {"label": "scan_badge", "score": 0.05}]
    decided = activity_scores(record, _tracker(), "line 8")  # every class present: exact
    assert decided["gloving"] == pytest.approx(0.8) and decided["hygiene"] == pytest.approx(0.45)


def test_replay_needs_the_custom_head_when_the_model_has_one():
    with pytest.raises(ReplayError, match="needs 'custom_top_k' or 'custom_scores'"):
        activity_scores({"top_k": [{"label": "smoking", "score": 0.7}]}, _tracker(), "line 2")
