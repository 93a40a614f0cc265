"""The head grafted onto the network (``edge.models.head``), and loading a model with two heads.

Oracles: NumPy on the IR's own pooled feature (the head's arithmetic), and the original model's
outputs (the Kinetics head must not change).
"""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
from support_activities import build_test_model

from edge.models.demo import save_model_atomic
from edge.models.head import (
    graft_head,
    pooled_feature,
    with_features,
)
from edge.models.loading import CUSTOM_LABELS_FILE, ModelError, core, load_model
from edge.models.metadata import read_metadata, write_metadata
from edge.postprocess import softmax
from edge.records import CUSTOM_LOGITS, FEATURES

CLASSES = ("gloves_on", "sanitise", "scan_badge")


def _head(seed: int = 3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((len(CLASSES), 512)).astype(np.float32) * 0.05,
            rng.standard_normal(len(CLASSES)).astype(np.float32))


def _clips(count: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-110, 140, (1, 3, 16, 112, 112)).astype(np.float32) for _ in range(count)]


def _outputs(model: ov.Model, clip: np.ndarray) -> dict[str, np.ndarray]:
    compiled = core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": ov.Type.f32})
    result = compiled.infer_new_request({0: clip})
    return {output.get_any_name(): np.array(result[output]).reshape(-1) for output in compiled.outputs}


@pytest.fixture(scope="module")
def grafted_dir(demo_xml, tmp_path_factory):
    model, _info = load_model(demo_xml)
    weight, bias = _head()
    grafted = graft_head(model, weight, bias)
    write_metadata(grafted, read_metadata(model).__class__(**{**read_metadata(model).__dict__,
                                                               "custom_labels": CLASSES}))
    folder = tmp_path_factory.mktemp("grafted")
    save_model_atomic(grafted, folder / "model.xml")
    return folder


def test_the_custom_output_is_the_head_on_the_pooled_feature_and_kinetics_is_unchanged(demo_xml, grafted_dir):
    original, _ = load_model(demo_xml)
    grafted, info = load_model(grafted_dir, features=True)  # + the pooled feature as a third output
    assert info.outputs == ("logits", CUSTOM_LOGITS, FEATURES) and info.custom_labels == CLASSES
    weight, bias = _head()
    for clip in _clips():
        got = _outputs(grafted, clip)
        oracle = got[FEATURES].astype(np.float64) @ weight.T.astype(np.float64) + bias
        np.testing.assert_allclose(softmax(got[CUSTOM_LOGITS]), softmax(oracle), atol=1e-5)
        np.testing.assert_allclose(got[CUSTOM_LOGITS], oracle, rtol=1e-4, atol=1e-4)
        before = _outputs(original, clip)["logits"]
        np.testing.assert_allclose(softmax(got["logits"]), softmax(before), atol=1e-6)
        assert np.abs(got["logits"]).max() > 0.1  # the clips do reach the head: not an all-zero oracle


def test_the_feature_is_the_input_of_the_fc_layer(demo_xml):
    # fc(features) with the checkpoint's own fc weights gives the Kinetics logits
    from edge.models.demo import demo_weights

    model, _ = load_model(demo_xml, features=True)
    weights = demo_weights(0)
    got = _outputs(model, _clips(1)[0])
    fc = got[FEATURES] @ weights["fc.weight"].T + weights["fc.bias"]
    np.testing.assert_allclose(fc, got["logits"], rtol=1e-4, atol=1e-4)
    assert got[FEATURES].shape == (512,) and (got[FEATURES] >= 0).all()  # after ReLU and average pooling


def test_the_engine_gives_both_heads_in_one_inference(grafted_dir):
    from edge.postprocess import Postprocessor
    from edge.records import Clip
    from edge.runtime import compile_model

    model, info = load_model(grafted_dir)
    classifier = compile_model(model, info, precision="f32", input_layout="NCTHW")
    clip = _clips(1)[0]
    outputs = classifier.infer_outputs(clip)
    post = Postprocessor(info.labels, top_k=2, custom_labels=info.custom_labels, outputs=info.outputs)
    prediction = post(Clip(0, tuple(range(16)), 0.0, 0.6), outputs[0], extra=outputs[1:])
    assert [name for name, _ in prediction.custom_top_k] == \
        [CLASSES[k] for k in np.argsort(-softmax(outputs[1]), kind="stable")[:2]]
    assert prediction.activity_probabilities.shape == (400 + len(CLASSES),)
    assert info.activity_labels[-len(CLASSES):] == tuple(f"custom:{name}" for name in CLASSES)


def test_custom_class_names_come_from_labels_custom_txt_when_the_metadata_has_none(demo_xml, tmp_path):
    model, _ = load_model(demo_xml)
    save_model_atomic(graft_head(model, *_head()), tmp_path / "model.xml")
    with pytest.raises(ModelError, match="custom_logits output but no custom class names"):
        load_model(tmp_path)
    (tmp_path / CUSTOM_LABELS_FILE).write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ModelError, match="custom head has 3 classes but its names list 2"):
        load_model(tmp_path)
    (tmp_path / CUSTOM_LABELS_FILE).write_text("a\nb\nc\n", encoding="utf-8")
    assert load_model(tmp_path)[1].custom_labels == ("a", "b", "c")


def test_a_model_without_a_pooled_feature_is_refused_naming_the_node_looked_for(tmp_path):
    model = build_test_model()  # mean colour -> logits: no 512-d feature
    with pytest.raises(ModelError, match=r"no pooled 512-d feature: looked for the fc layer's input: a MatMul"):
        pooled_feature(model, "colour model")
    with pytest.raises(ModelError, match="colour model has no pooled 512-d feature"):
        with_features(model, "colour model")


def test_an_output_of_no_known_role_is_refused(demo_xml, tmp_path):
    import openvino.opset13 as ops

    model, _ = load_model(demo_xml)
    extra = ops.relu(model.output(0).get_node().input_value(0))
    extra.output(0).get_tensor().set_names({"something_else"})
    odd = ov.Model([model.output(0).get_node(), ops.result(extra)], model.get_parameters(), "odd")
    save_model_atomic(odd, tmp_path / "odd.xml")
    with pytest.raises(ModelError, match="expected one class-score output"):
        load_model(tmp_path / "odd.xml")
