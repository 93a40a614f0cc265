"""End-to-end ``pipeline.run`` on generated videos, checked against independent oracles.

Two oracles: the clip plan (which source frames each prediction covers) is
recomputed here from DESIGN.md's rules, and the scores are recomputed from
scratch with ``cv2.VideoCapture`` + ``cv2.dnn.blobFromImages`` + the same IR
compiled by plain OpenVINO at f32 (no edge code, no PrePostProcessor).
"""

from __future__ import annotations

import importlib.resources
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest

import edge.preprocess
import edge.engine.build
import edge.engine.service
from edge import pipeline
from edge.config import config_from_mapping
from edge.synthetic import read_frame_marker

CLIP_LEN = 16
FPS = 25.0
KINETICS_MEAN = (114.7748, 107.7354, 99.4750)
KINETICS_LABELS = importlib.resources.files("edge.bundled") / "kinetics400_labels.txt"

EVENT_KEYS = [
    "source", "clip_index", "start_frame", "end_frame", "start_time_s", "end_time_s", "wall_time",
    "label", "score", "top_k", "latency_ms", "model", "untrained", "camera", "run_id",
]  # DESIGN.md's keys, then the release-2 keys every line gains
LATENCY_KEYS = {"preprocess", "infer", "postprocess", "end_to_end"}
SUMMARY_STAGES = ("decode", "preprocess", "inference", "postprocess", "overlay_write", "frame_to_label")


def expected_clips(num_frames: int, mode: str, frame_step: int = 1, stride: int = 1,
                   clip_len: int = CLIP_LEN) -> list[tuple[int, ...]]:
    """The source frame indices of every clip, oldest first, straight from DESIGN.md's rules."""
    sampled = list(range(0, num_frames, frame_step))
    if mode == "batch":  # non-overlapping; the partial tail is completed by looping it (LoopPadding)
        clips = []
        for start in range(0, len(sampled), clip_len):
            part = sampled[start:start + clip_len]
            clips.append(tuple(part[i % len(part)] for i in range(clip_len)))
        return clips
    # rolling: a window of the last clip_len sampled frames, every `stride` sampled frames once full
    return [tuple(sampled[end - clip_len + 1:end + 1]) for end in range(clip_len - 1, len(sampled), stride)]


def test_expected_clips_oracle_by_hand():
    # the oracle itself, on cases worked out by hand
    assert expected_clips(17, "batch") == [tuple(range(16)), (16,) * 16]
    assert expected_clips(20, "batch")[1] == (16, 17, 18, 19) * 4
    assert expected_clips(15, "batch") == [tuple(range(15)) + (0,)]
    assert expected_clips(19, "rolling", stride=1) == [tuple(range(s, s + 16)) for s in range(4)]
    assert expected_clips(40, "rolling", stride=16) == [tuple(range(16)), tuple(range(16, 32))]
    assert expected_clips(33, "rolling", frame_step=2, stride=4) == [tuple(range(0, 32, 2))]
    assert len(expected_clips(250, "batch")) == math.ceil(250 / 16)


# ---------------------------------------------------------------- running the pipeline

@dataclass(frozen=True)
class Case:
    frames: int
    width: int
    height: int
    mode: str = "batch"
    frame_step: int = 1
    stride: int = 1
    precision: str = "auto"
    include_scores: bool = False
    seed: int = 0
    hotpath: str = "default"  # "numpy": the pipeline's ClipRing is the NumPy twin's

    def sampling(self) -> dict:
        return {"mode": self.mode, "frame_step": self.frame_step, "stride": self.stride}


@dataclass
class Ran:
    case: Case
    source: Path
    result: pipeline.RunResult
    events: list[dict]
    video: Path
    summary_file: Path
    config: object = field(repr=False)


CASES = {
    # batch: ceil(N/16) clips, loop-padded tail; sizes: landscape, portrait, shorter side < 112 (upscaled)
    "batch-15": Case(15, 176, 144),
    "batch-16-portrait": Case(16, 128, 176),
    "batch-17-upscaled": Case(17, 200, 100),
    "batch-50": Case(50, 162, 122),
    "batch-250": Case(250, 160, 120),
    "rolling-stride1": Case(19, 176, 144, mode="rolling", stride=1),
    "rolling-stride4": Case(50, 162, 122, mode="rolling", stride=4),
    "rolling-stride16": Case(50, 162, 122, mode="rolling", stride=16),
    "batch-step2": Case(50, 162, 122, frame_step=2),
    "rolling-step2-stride4": Case(50, 162, 122, mode="rolling", frame_step=2, stride=4),
}


@pytest.fixture(scope="module")
def run_case(demo_xml, compiled_cache, moving_shapes_video, tmp_path_factory):
    """``run_case(case)`` runs the pipeline once per distinct case and module, with all outputs on."""
    done: dict[Case, Ran] = {}

    def run(case: Case) -> Ran:
        if case not in done:
            source = moving_shapes_video(case.frames, case.width, case.height, seed=case.seed)
            out = tmp_path_factory.mktemp("run")
            config = config_from_mapping({
                "source": str(source),
                "model": {"path": str(demo_xml)},
                "sampling": case.sampling(),
                "inference": {"precision": case.precision, "cache_dir": str(compiled_cache)},
                "output": {
                    "video": str(out / "annotated.mp4"),
                    "events": str(out / "events.jsonl"),
                    "summary": str(out / "summary.json"),
                    "include_scores": case.include_scores,
                    "progress": False,
                },
            })
            with pytest.MonkeyPatch.context() as patch:
                if case.hotpath != "default":
                    patch.setattr(edge.engine.build, "ClipRing", edge.preprocess.implementation(case.hotpath).ClipRing)
                result = pipeline.run(config, keep_predictions=True)
            lines = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()
            events = [json.loads(line) for line in lines]
            done[case] = Ran(case, source, result, events, out / "annotated.mp4", out / "summary.json", config)
        return done[case]

    return run


def read_video(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert capture.isOpened(), path
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.mark.parametrize("name", CASES)
def test_clips_cover_the_planned_frames(run_case, name):
    ran = run_case(CASES[name])
    case = ran.case
    expected = expected_clips(case.frames, case.mode, case.frame_step, case.stride)
    assert ran.result.exit_code == 0
    assert [p.clip.frame_indices for p in ran.result.predictions] == expected
    assert len(ran.events) == len(expected)  # one line per prediction
    for number, (event, frames) in enumerate(zip(ran.events, expected)):
        assert event["clip_index"] == number
        assert (event["start_frame"], event["end_frame"]) == (min(frames), max(frames))
        assert event["start_time_s"] == pytest.approx(min(frames) / FPS, abs=1e-3)
        assert event["end_time_s"] == pytest.approx(max(frames) / FPS, abs=1e-3)
    if case.mode == "batch":
        assert len(expected) == math.ceil(len(range(0, case.frames, case.frame_step)) / CLIP_LEN)


@pytest.mark.parametrize("name", ["batch-15", "batch-16-portrait", "batch-17-upscaled", "batch-50",
                                  "rolling-stride4", "batch-step2"])
def test_annotated_video_has_every_input_frame_in_order(run_case, name):
    ran = run_case(CASES[name])
    source, output = read_video(ran.source), read_video(ran.video)
    assert len(output) == len(source) == ran.case.frames
    assert output[0].shape == source[0].shape
    # the overlay is at the top; the index marker along the bottom edge survives it
    assert [read_frame_marker(frame) for frame in output] == list(range(ran.case.frames))
    capture = cv2.VideoCapture(str(ran.video), cv2.CAP_FFMPEG)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    capture.release()


@pytest.mark.parametrize("name", ["batch-17-upscaled", "rolling-stride4"])
def test_event_schema(run_case, name, demo_xml):
    ran = run_case(CASES[name])
    labels = set(KINETICS_LABELS.read_text(encoding="utf-8").splitlines())
    for event in ran.events:
        assert list(event) == EVENT_KEYS  # exactly the design's keys, no "scores" without include_scores
        assert event["source"] and isinstance(event["source"], str)
        assert event["model"] == Path(demo_xml).stem
        assert event["untrained"] is True
        datetime.fromisoformat(event["wall_time"])
        assert event["label"] in labels
        assert len(event["top_k"]) == 5
        assert all(set(item) == {"label", "score"} for item in event["top_k"])
        assert event["top_k"][0] == {"label": event["label"], "score": event["score"]}
        scores = [item["score"] for item in event["top_k"]]
        assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
        assert set(event["latency_ms"]) == LATENCY_KEYS
        assert all(isinstance(v, float) and v >= 0 for v in event["latency_ms"].values())


def test_event_lines_are_one_json_object_each(run_case):
    ran = run_case(CASES["rolling-stride4"])
    text = Path(ran.config.output.events).read_text(encoding="utf-8")
    assert text.endswith("\n") and text.count("\n") == len(ran.result.predictions)


@pytest.mark.parametrize("name", ["batch-17-upscaled", "rolling-step2-stride4"])
def test_summary_json(run_case, name, demo_xml):
    ran = run_case(CASES[name])
    case = ran.case
    summary = json.loads(ran.summary_file.read_text(encoding="utf-8"))
    clips = expected_clips(case.frames, case.mode, case.frame_step, case.stride)
    sampled = len(range(0, case.frames, case.frame_step))
    assert summary["frames"] == case.frames
    assert summary["clips"] == len(clips) and summary["skipped_clips"] == 0
    assert summary["untrained"] is True and summary["model"] == Path(demo_xml).stem
    assert summary["mode"] == case.mode and summary["frame_step"] == case.frame_step
    assert summary["input_fps"] == pytest.approx(FPS)
    latency = summary["latency_ms"]
    for stage in SUMMARY_STAGES:
        assert {"p50", "p90", "p99", "max"} <= set(latency[stage]), stage
        assert 0 <= latency[stage]["p50"] <= latency[stage]["p90"] <= latency[stage]["p99"] <= latency[stage]["max"]
    assert latency["decode"]["count"] == case.frames
    assert latency["preprocess"]["count"] == sampled  # each sampled frame preprocessed once, padding is a copy
    assert latency["inference"]["count"] == len(clips)
    assert latency["overlay_write"]["count"] == case.frames
    assert summary == ran.result.summary


# ---------------------------------------------------------------- against the reference
#
# Tolerance. The design lets edge's fused preprocessing differ from blobFromImages by rounding
# (≤ 1 grey level on the odd pixel). The demo model's random weights give near-uniform
# probabilities (max ~0.011 against 1/400 = 0.0025), so a tolerance on probabilities alone
# would be loose: two swapped neighbouring frames move them by only ~1e-4. So we compare the
# centred log-probabilities (= centred logits), relative to their own spread: ±1 grey level on
# *every* input value moves them by ~4e-3, on 1% of values by ~4e-4 (checked below), two
# swapped neighbouring frames by ~1e-2, a reversed clip by ~7e-2. REL_TOL = 1e-3 admits the
# rounding the design allows and is 5–70× below every reordering (also checked below).
# Measured here: ~1e-7 (the preprocessing is bit-exact but for float rounding).

REL_TOL = 1e-3
PROB_TOL = 1e-5

REFERENCE_CASES = {
    # 22 frames: batch gives a full clip and a 6-frame tail looped to 16 (6+6+4)
    "batch-22": Case(22, 176, 144, precision="f32", include_scores=True, seed=3),
    "rolling-stride3": Case(22, 176, 144, mode="rolling", stride=3, precision="f32", include_scores=True, seed=3),
    "batch-step2": Case(22, 176, 144, frame_step=2, precision="f32", include_scores=True, seed=3),
    "batch-22-numpy-twin": Case(22, 176, 144, precision="f32", include_scores=True, seed=3, hotpath="numpy"),
    # shorter side 100 < 112: the reference upscales; 18 frames: a 2-frame tail
    "batch-18-upscaled": Case(18, 200, 100, precision="f32", include_scores=True, seed=4),
}


def test_include_scores_adds_all_probabilities(run_case):
    ran = run_case(REFERENCE_CASES["batch-22"])
    for event in ran.events:
        assert list(event) == [*EVENT_KEYS[:-2], "scores", *EVENT_KEYS[-2:]]
        assert len(event["scores"]) == 400
        assert sum(event["scores"]) == pytest.approx(1.0, abs=1e-4)
        assert max(event["scores"]) == pytest.approx(event["score"], rel=1e-6)


def log_softmax(logits) -> np.ndarray:
    values = np.asarray(logits, dtype=np.float64)
    shifted = values - values.max()
    return shifted - np.log(np.exp(shifted).sum())


def centred_rel_err(log_probs, reference_log_probs) -> float:
    """‖(a − mean a) − (b − mean b)‖ / ‖b − mean b‖: a logit error relative to the logits' spread."""
    a = np.asarray(log_probs, np.float64) - np.mean(log_probs)
    b = np.asarray(reference_log_probs, np.float64) - np.mean(reference_log_probs)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


class Reference:
    """cv2.VideoCapture + cv2.dnn.blobFromImages + the IR in plain OpenVINO f32: no edge code."""

    def __init__(self, xml):
        self.compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        self._videos: dict[Path, list[np.ndarray]] = {}

    def frames(self, path) -> list[np.ndarray]:
        path = Path(path)
        if path not in self._videos:
            frames = read_video(path)
            # the reference really holds source frame i at position i
            assert [read_frame_marker(frame) for frame in frames] == list(range(len(frames)))
            self._videos[path] = frames
        return self._videos[path]

    def blob(self, path, frame_indices) -> np.ndarray:
        """float32 (T, 3, 112, 112), as blobFromImages makes it (one image per row)."""
        frames = self.frames(path)
        return cv2.dnn.blobFromImages([frames[i] for i in frame_indices], 1.0, (112, 112), KINETICS_MEAN,
                                      swapRB=True, crop=True)

    def logits(self, blob) -> np.ndarray:
        clip = np.ascontiguousarray(blob.transpose(1, 0, 2, 3)[None])  # T,C,H,W → 1×C×T×H×W (N,C,T,H,W)
        assert clip.shape == (1, 3, CLIP_LEN, 112, 112)
        return self.compiled(clip)[0].reshape(-1).copy()

    def log_probs(self, path, frame_indices) -> np.ndarray:
        return log_softmax(self.logits(self.blob(path, frame_indices)))


@pytest.fixture(scope="module")
def reference(demo_xml):
    return Reference(demo_xml)


@pytest.mark.parametrize("name", REFERENCE_CASES)
def test_scores_match_blobfromimages_and_plain_openvino(run_case, reference, name):
    ran = run_case(REFERENCE_CASES[name])
    case = ran.case
    expected = expected_clips(case.frames, case.mode, case.frame_step, case.stride)
    assert ran.result.summary["precision"] == "f32"
    assert len(ran.events) == len(expected)
    for event, frames in zip(ran.events, expected):
        # the reference loop-pads a batch tail itself: `frames` comes from the oracle, not from edge
        want = reference.log_probs(ran.source, frames)
        got = np.log(np.asarray(event["scores"], np.float64))
        assert np.abs(np.exp(got) - np.exp(want)).max() <= PROB_TOL, (name, event["clip_index"])
        assert centred_rel_err(got, want) <= REL_TOL, (name, event["clip_index"])
        top = int(np.argmax(want))
        assert np.exp(want[top]) == pytest.approx(event["score"], rel=1e-4)
        assert event["label"] == KINETICS_LABELS.read_text(encoding="utf-8").splitlines()[top]


def test_reference_comparison_would_catch_reordering_and_admits_rounding(reference, moving_shapes_video):
    case = REFERENCE_CASES["batch-22"]
    path = moving_shapes_video(case.frames, case.width, case.height, seed=case.seed)
    in_order = list(range(CLIP_LEN))
    want = reference.log_probs(path, in_order)

    swapped = in_order.copy()
    swapped[7], swapped[8] = swapped[8], swapped[7]
    reordered = {
        "two neighbours swapped": reference.log_probs(path, swapped),
        "reversed": reference.log_probs(path, in_order[::-1]),
    }
    for what, log_probs in reordered.items():
        assert centred_rel_err(log_probs, want) > 5 * REL_TOL, what
    assert centred_rel_err(reordered["reversed"], want) > 20 * REL_TOL
    assert np.abs(np.exp(reordered["two neighbours swapped"]) - np.exp(want)).max() > 5 * PROB_TOL

    # what the design allows: ±1 grey level from rounding ties, here on 1% of the input values
    blob = reference.blob(path, in_order)
    rng = np.random.default_rng(0)
    ties = rng.random(blob.shape) < 0.01
    nudged = blob + np.where(ties, rng.choice([-1.0, 1.0], size=blob.shape), 0.0).astype(np.float32)
    assert centred_rel_err(log_softmax(reference.logits(nudged)), want) <= REL_TOL
