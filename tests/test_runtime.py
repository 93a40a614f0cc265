"""edge.runtime: loading, the NTCHW input layout, compile options, sync and async inference."""

from __future__ import annotations

import queue

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.models.demo import demo_metadata, demo_weights, export_onnx
from edge.models.paths import default_model_path
from edge.models.loading import ModelError, load_model
from edge.runtime import AsyncClassifier, InferResult, compile_model

T, S, CLASSES = 4, 8, 400


def tiny_clip_onnx(path, classes=CLASSES, shape=(1, 3, T, S, S), seed=0):
    """Conv3d(3→6, k3, stride (1,2,2)) + ReLU + global average + Gemm: a small N×C×T×H×W classifier."""
    rng = np.random.default_rng(seed)
    rank = len(shape)
    kernel = [3] * (rank - 2)
    nodes = [
        helper.make_node("Conv", ["clip", "w"], ["c"], kernel_shape=kernel, pads=[1] * 2 * (rank - 2),
                         strides=[1] * (rank - 4) + [2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1),
    ]
    features = 6 * int(np.prod([d if i < rank - 4 + 2 else (d + 1) // 2 for i, d in enumerate(shape[2:], 2)]))
    inits = [numpy_helper.from_array(rng.standard_normal((6, shape[1], *kernel)).astype(np.float32), "w"),
             numpy_helper.from_array((rng.standard_normal((classes, features)) * 0.05).astype(np.float32), "fw"),
             numpy_helper.from_array(rng.standard_normal(classes).astype(np.float32), "fb")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("clip", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def demo_xml(tmp_path_factory):
    # default_model_path builds the demo IR once and caches it on disk for the whole session
    return default_model_path(cache_dir=tmp_path_factory.getbasetemp() / "edge-home")


@pytest.fixture
def tiny(tmp_path):
    return tiny_clip_onnx(tmp_path / "tiny.onnx")


def rel_err(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_ntchw_input_equals_ncthw_transposed_without_ppp(tiny, tmp_path):
    model, info = load_model(tiny, cache_dir=tmp_path)
    ntchw = compile_model(model, info, precision="f32")                       # PPP: NTCHW tensor
    ncthw = compile_model(model, info, precision="f32", input_layout="NCTHW")  # no PPP step
    assert ntchw.input_shape == (1, T, 3, S, S) and ncthw.input_shape == (1, 3, T, S, S)
    clip = np.random.default_rng(1).uniform(-100, 100, (T, 3, S, S)).astype(np.float32)
    moved = np.ascontiguousarray(clip[None].transpose(0, 2, 1, 3, 4))
    reference = ort.InferenceSession(str(tiny), providers=["CPUExecutionProvider"]).run(None, {"clip": moved})[0][0]
    np.testing.assert_allclose(ntchw.infer(clip), ncthw.infer(moved), rtol=1e-5, atol=1e-5)
    assert rel_err(ntchw.infer(clip), reference) < 1e-5
    # a time-reversed clip must give other logits: the layout really reaches the convolution
    assert rel_err(ntchw.infer(np.ascontiguousarray(clip[::-1])), reference) > 1e-3


@pytest.fixture(scope="session")
def demo_onnx(tmp_path_factory):
    # the same weights written through onnx.helper: the independent reference graph (shared path)
    path = tmp_path_factory.getbasetemp() / "demo-onnx" / "demo.onnx"
    return path if path.is_file() else export_onnx(demo_weights(0), path, demo_metadata(0))


def test_demo_model_ntchw_matches_onnxruntime_ncthw(demo_xml, demo_onnx):
    model, info = load_model(demo_xml)
    classifier = compile_model(model, info, precision="f32")
    session = ort.InferenceSession(str(demo_onnx), providers=["CPUExecutionProvider"])
    clip = np.random.default_rng(2).uniform(-110, 140, (16, 3, 112, 112)).astype(np.float32)
    reference = session.run(None, {"clip": np.ascontiguousarray(clip[None].transpose(0, 2, 1, 3, 4))})[0][0]
    assert rel_err(classifier.infer(clip), reference) <= 1e-4
    assert classifier.precision == "f32"


def test_input_is_not_copied(tiny, tmp_path):
    model, info = load_model(tiny, cache_dir=tmp_path)
    classifier = compile_model(model, info)
    ring = np.zeros((2 * T, 3, S, S), np.float32)  # stands in for the clip ring's storage
    view = ring[2:2 + T]
    assert np.shares_memory(classifier.as_input(view), ring)
    with pytest.raises(ValueError, match="float32"):
        classifier.infer(view.astype(np.float64))
    with pytest.raises(ValueError, match="does not match"):
        classifier.infer(np.zeros((T + 1, 3, S, S), np.float32))


def test_precision_is_read_back(tiny, tmp_path):
    model, info = load_model(tiny, cache_dir=tmp_path)
    assert compile_model(model, info, precision="f32").precision == "f32"
    assert compile_model(model, info).precision in ("f32", "bf16", "f16")
    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" in capabilities:
        assert compile_model(model, info, precision="bf16").precision == "bf16"
    with pytest.raises(ModelError, match="precision"):
        compile_model(model, info, precision="int4")
    with pytest.raises(ModelError, match="performance_hint"):
        compile_model(model, info, performance_hint="fastest")


def test_throughput_hint_and_compiled_cache(tiny, tmp_path):
    model, info = load_model(tiny, cache_dir=tmp_path)
    cache = tmp_path / "compiled"
    classifier = compile_model(model, info, performance_hint="throughput", num_requests=2, cache_dir=cache)
    assert 1 <= classifier.optimal_num_requests <= 2
    assert any(cache.iterdir())


def test_async_results_carry_tags_and_private_logits(tiny, tmp_path):
    model, info = load_model(tiny, cache_dir=tmp_path)
    classifier = compile_model(model, info, precision="f32", performance_hint="throughput")
    rng = np.random.default_rng(3)
    clips = [rng.uniform(-100, 100, (T, 3, S, S)).astype(np.float32) for _ in range(7)]
    expected = [classifier.infer(clip) for clip in clips]
    runner = classifier.async_queue(num_requests=2)
    assert isinstance(runner, AsyncClassifier) and runner.num_requests == 2
    for index, clip in enumerate(clips):
        runner.submit(clip, tag=("cam0", index))
    runner.wait_all()
    assert runner.pending() == len(clips)
    results = [runner.get(timeout=10) for _ in clips]
    assert runner.pending() == 0
    assert all(isinstance(r, InferResult) and r.error is None and r.infer_ms > 0 for r in results)
    by_tag = {r.tag: r.logits for r in results}
    assert sorted(by_tag) == [("cam0", i) for i in range(len(clips))]
    for index, logits in enumerate(expected):
        np.testing.assert_allclose(by_tag[("cam0", index)], logits, rtol=1e-5, atol=1e-5)
    assert not any(np.shares_memory(results[0].logits, r.logits) for r in results[1:])
    assert runner.has_idle()
    with pytest.raises(queue.Empty):
        runner.get(timeout=0.01)


def test_load_paths_and_onnx_conversion_cache(tiny, tmp_path):
    cache = tmp_path / "home"
    _, first = load_model(tiny, cache_dir=cache)
    converted = list((cache / "converted").iterdir())
    assert len(converted) == 1
    stamp = next(converted[0].glob("*.bin")).stat().st_mtime_ns
    _, again = load_model(tiny, cache_dir=cache)
    assert next(converted[0].glob("*.bin")).stat().st_mtime_ns == stamp  # converted once
    assert first == again and first.clip_len == T and first.size == S and first.num_classes == CLASSES
    assert first.labels[0] == "abseiling" and not first.untrained  # bundled Kinetics-400 labels
    # a directory holding one model
    _, info = load_model(tiny.parent, cache_dir=cache)
    assert info.path == str(tiny)


def test_bad_models_get_one_line_errors(tiny, tmp_path, demo_xml):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.xml")
    for sub in ("image", "few"):
        (tmp_path / sub).mkdir()
    image = tiny_clip_onnx(tmp_path / "image" / "classifier.onnx", shape=(1, 3, 32, 32))
    with pytest.raises(ModelError, match=r"expected a 5-D clip input N×C×T×H×W.*got 1×3×32×32"):
        load_model(image, cache_dir=tmp_path)
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n")
    with pytest.raises(ModelError, match="400 classes but .* has 3 labels"):
        load_model(tiny, labels_path=labels, cache_dir=tmp_path)
    few = tiny_clip_onnx(tmp_path / "few" / "few.onnx", classes=5)
    five = tmp_path / "five.txt"
    five.write_text("a\nb\nc\nd\ne\n")
    _, info = load_model(few, labels_path=five, cache_dir=tmp_path)
    assert info.labels == ("a", "b", "c", "d", "e")
    with pytest.raises(ModelError, match="5 classes but the bundled Kinetics-400 list has 400"):
        load_model(few, cache_dir=tmp_path)  # bundled 400 labels vs 5 outputs

    broken = tmp_path / "broken"
    broken.mkdir()
    xml = broken / "model.xml"
    xml.write_text(demo_xml.read_text())
    with pytest.raises(ModelError, match="weights file model.bin is missing"):
        load_model(xml)
    (broken / "model.bin").write_bytes(demo_xml.with_suffix(".bin").read_bytes()[:1000])
    with pytest.raises(ModelError, match="corrupt") as error:
        load_model(xml)
    assert "\n" not in str(error.value)
    xml.write_text("<net><layers>garbage")
    with pytest.raises(ModelError, match="corrupt"):
        load_model(xml)
    (broken / "other.xml").write_text("x")
    with pytest.raises(ModelError, match="holds 2 models"):
        load_model(broken)
    with pytest.raises(ModelError, match="unsupported model file"):
        load_model(labels)


def test_demo_model_info(demo_xml):
    _, info = load_model(demo_xml)
    assert info.untrained and info.num_classes == 400 and len(info.labels) == 400
    assert (info.clip_len, info.size) == (16, 112) and info.input_name == "clip"
    assert info.mean == pytest.approx((114.7748, 107.7354, 99.4750))


def test_dropping_an_async_queue_frees_the_compiled_model(demo_xml):
    # A bound-method callback made a cycle through the C++ AsyncInferQueue that gc cannot
    # see: every run leaked the whole compiled model (~770 MB for the demo at f32).
    import gc
    import weakref

    model, info = load_model(demo_xml)
    classifier = compile_model(model, info, precision="f32")
    requests = classifier.async_queue(1)
    requests.submit(np.zeros((16, 3, 112, 112), np.float32), "clip")
    assert requests.get(timeout=60).error is None
    alive = [weakref.ref(requests), weakref.ref(classifier)]
    del model, classifier, requests
    gc.collect()
    assert [ref() for ref in alive] == [None, None]
