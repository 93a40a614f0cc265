import datetime

import numpy as np
import pytest

from edge.postprocess import ClipOrder, Postprocessor, Smoother, softmax
from edge.records import Clip, StageLatency

LABELS = ("a", "b", "c", "d")


def _clip(index):
    return Clip(clip_index=index, frame_indices=tuple(range(index * 4, index * 4 + 4)),
                start_time_s=index * 0.16, end_time_s=index * 0.16 + 0.12)


def _reference_softmax(logits):
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max())
    return e / e.sum()


@pytest.mark.parametrize("logits", [
    [1.0, 2.0, 3.0, 4.0],
    [1000.0, 1001.0, 999.0, -1000.0],    # would overflow a naive exp
    [-1e4, -1e4 + 1, -1e4 + 2, -1e4 + 3],
    np.random.default_rng(0).normal(0, 5, 400),
])
def test_softmax_matches_float64_reference(logits):
    result = softmax(logits)
    assert result.dtype == np.float32
    assert np.all(np.isfinite(result))
    assert np.allclose(result, _reference_softmax(logits), rtol=1e-5, atol=1e-7)
    assert result.sum() == pytest.approx(1.0, abs=1e-5)


def test_softmax_rejects_empty():
    with pytest.raises(ValueError):
        softmax([])


def test_top_k_is_best_first_and_threshold_flags_uncertain():
    post = Postprocessor(LABELS, top_k=3, threshold=0.5)
    logits = np.log(np.array([0.1, 0.4, 0.2, 0.3]))
    prediction = post(_clip(0), logits)
    assert [label for label, _ in prediction.top_k] == ["b", "d", "c"]
    assert [score for _, score in prediction.top_k] == pytest.approx([0.4, 0.3, 0.2], abs=1e-6)
    assert prediction.label == "b" and prediction.score == pytest.approx(0.4, abs=1e-6)
    assert prediction.uncertain  # 0.4 < 0.5
    confident = Postprocessor(LABELS, top_k=10, threshold=0.35)(_clip(0), logits)
    assert not confident.uncertain and len(confident.top_k) == 4


def test_prediction_carries_clip_latency_and_zoned_wall_time():
    latency = StageLatency(preprocess=1.0, infer=2.0, postprocess=0.1, end_to_end=5.0)
    prediction = Postprocessor(LABELS)(_clip(3), [0, 0, 0, 1], latency)
    assert prediction.clip == _clip(3) and prediction.latency == latency
    stamp = datetime.datetime.fromisoformat(prediction.wall_time)
    assert stamp.tzinfo is not None
    assert prediction.probabilities.dtype == np.float32 and prediction.probabilities.shape == (4,)


def test_logit_count_must_match_labels():
    with pytest.raises(ValueError, match="5 scores for 4 labels"):
        Postprocessor(LABELS)(_clip(0), np.zeros(5))


def test_mean_smoothing_against_hand_computed_values():
    p1 = np.array([0.7, 0.1, 0.1, 0.1])
    p2 = np.array([0.1, 0.7, 0.1, 0.1])
    p3 = np.array([0.1, 0.1, 0.7, 0.1])
    smoother = Smoother.parse("mean:2")
    assert np.allclose(smoother(p1), p1)
    assert np.allclose(smoother(p2), [0.4, 0.4, 0.1, 0.1])
    assert np.allclose(smoother(p3), [0.1, 0.4, 0.4, 0.1])  # p1 has left the window


def test_ema_smoothing_against_hand_computed_values():
    smoother = Smoother.parse("ema:0.25")
    assert np.allclose(smoother(np.array([1.0, 0.0])), [1.0, 0.0])
    assert np.allclose(smoother(np.array([0.0, 1.0])), [0.75, 0.25])
    assert np.allclose(smoother(np.array([0.0, 1.0])), [0.5625, 0.4375])


def test_postprocessor_smooths_probabilities_in_clip_order():
    post = Postprocessor(("x", "y"), smoothing="mean:2")
    first = post(_clip(0), np.log([0.9, 0.1]))
    second = post(_clip(1), np.log([0.1, 0.9]))
    assert first.label == "x"
    assert second.probabilities == pytest.approx([0.5, 0.5], abs=1e-6)
    with pytest.raises(ValueError, match="clip_index order"):
        post(_clip(1), np.log([0.1, 0.9]))


@pytest.mark.parametrize("spec", ["mean", "mean:0", "mean:x", "ema:0", "ema:1.5", "ema:nan", "median:3", "none:2"])
def test_bad_smoothing_specs(spec):
    with pytest.raises(ValueError, match="smoothing"):
        Smoother.parse(spec)


def test_smoother_spec_round_trip():
    assert Smoother("mean", window=5).spec == "mean:5"
    assert Smoother.parse("EMA:0.3").spec == "ema:0.3"
    assert Smoother.parse("none").spec == "none"


def test_clip_order_releases_consecutive_results():
    order = ClipOrder()
    assert order.push(1, "one") == []
    assert order.push(2, "two") == []
    assert order.push(0, "zero") == ["zero", "one", "two"]
    assert order.pending == 0
    with pytest.raises(ValueError):
        order.push(1, "again")
