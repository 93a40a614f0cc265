"""The demo model: exact architecture, seeded weights, and a forward pass equal to an independent ONNX graph."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from edge.models.demo import build_demo_model, demo_metadata, demo_weights, export_onnx
from edge.models.describe import describe_model
from edge.models.metadata import read_metadata
from edge.models.paths import default_model_path
from edge.models.loading import load_model
from edge.runtime import compile_model


@pytest.fixture(scope="session")
def demo_xml(tmp_path_factory):
    # default_model_path builds the demo IR once and caches it on disk for the whole session
    return default_model_path(cache_dir=tmp_path_factory.getbasetemp() / "edge-home")


@pytest.fixture(scope="session")
def demo_onnx(tmp_path_factory):
    # the same weights written through onnx.helper: the independent reference graph
    path = tmp_path_factory.getbasetemp() / "demo-onnx" / "demo.onnx"
    return path if path.is_file() else export_onnx(demo_weights(0), path, demo_metadata(0))


def test_architecture(demo_xml):
    facts = describe_model(demo_xml)
    assert facts["inputs"][0]["shape"] == [1, 3, 16, 112, 112]
    assert facts["outputs"][0]["shape"] == [1, 400]
    assert 63.4e6 < facts["parameters"] < 63.7e6  # ~63.5 M (+ BN running statistics)
    model = load_model(demo_xml)[0]
    ops = model.get_ordered_ops()
    convolutions = [op for op in ops if op.get_type_name() == "Convolution"]
    assert len(convolutions) == 1 + 2 * (3 + 4 + 6 + 3)  # conv1 + two per BasicBlock, no downsample convs
    assert tuple(convolutions[0].get_output_shape(0)) == (1, 64, 16, 56, 56)
    avg = [op for op in ops if op.get_type_name() == "AvgPool"]
    assert len(avg) == 1 and tuple(avg[0].input(0).get_shape()) == (1, 512, 1, 4, 4)  # after layer4
    assert sum(op.get_type_name() == "Pad" for op in ops) == 3  # shortcut A into layers 2–4


def test_seeded_weights():
    first, again, other = demo_weights(0), demo_weights(0), demo_weights(1)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["conv1.weight"], other["conv1.weight"])
    assert all(v.dtype == np.float32 for v in first.values())


def test_forward_matches_onnxruntime_at_f32(demo_xml, demo_onnx):
    model, info = load_model(demo_xml)
    classifier = compile_model(model, info, precision="f32", input_layout="NCTHW")
    session = ort.InferenceSession(str(demo_onnx), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    for _ in range(2):
        clip = rng.uniform(-110, 140, (1, 3, 16, 112, 112)).astype(np.float32)
        reference = session.run(None, {"clip": clip})[0][0]
        logits = classifier.infer(clip)
        assert np.linalg.norm(logits - reference) / np.linalg.norm(reference) <= 1e-4
        assert np.isfinite(logits).all() and 0.3 < logits.std() < 30  # activations neither die nor blow up
    # a smooth moving gradient, far from the noise above
    ramp = np.linspace(-100, 100, 112, dtype=np.float32)
    clip = np.broadcast_to(ramp[None, None, None, :] + np.arange(16, dtype=np.float32)[None, None, :, None, None],
                           (1, 3, 16, 112, 112)).astype(np.float32)
    reference = session.run(None, {"clip": clip})[0][0]
    assert np.linalg.norm(classifier.infer(clip) - reference) / np.linalg.norm(reference) <= 1e-4


def test_metadata_says_untrained(demo_xml):
    meta = read_metadata(load_model(demo_xml)[0])
    assert meta.untrained is True and len(meta.labels) == 400 and meta.clip_len == 16 and meta.size == 112
    assert "untrained" in meta.source


def test_build_in_memory_equals_saved(demo_xml):
    built = build_demo_model(0)
    saved = load_model(demo_xml)[0]
    clip = np.random.default_rng(3).uniform(-50, 50, (1, 3, 16, 112, 112)).astype(np.float32)
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    a = core.compile_model(built, "CPU", config)(clip)[0]
    b = core.compile_model(saved, "CPU", config)(clip)[0]
    np.testing.assert_array_equal(a, b)
