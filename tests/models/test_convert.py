"""convert_model: ONNX and kenshohara .pth to IR, equal to ONNX Runtime at f32."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.models.convert import convert_model
from edge.models.demo import build_demo_model, demo_metadata, demo_weights, export_onnx
from edge.models.metadata import read_metadata
from edge.models.loading import ModelError, load_model
from edge.runtime import compile_model


@pytest.fixture(scope="session")
def weights():
    return demo_weights(0)


@pytest.fixture(scope="session")
def demo_onnx(tmp_path_factory, weights):
    path = tmp_path_factory.getbasetemp() / "demo-onnx" / "demo.onnx"
    return path if path.is_file() else export_onnx(weights, path, demo_metadata(0))


def small_onnx(path):
    """Conv3d + BN + ReLU + MaxPool + global average + Gemm over a 1×3×4×16×16 clip, 400 classes."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["clip", "w", "b"], ["c"], kernel_shape=[3, 3, 3], pads=[1] * 6, strides=[1, 2, 2]),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "m", "v"], ["n"], epsilon=1e-5),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2, 2], strides=[2, 2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1),
    ]
    arrays = {"w": rng.standard_normal((8, 3, 3, 3, 3)) * 0.1, "b": rng.standard_normal(8),
              "g": rng.uniform(0.5, 1.5, 8), "beta": rng.standard_normal(8) * 0.1, "m": rng.standard_normal(8),
              "v": rng.uniform(0.5, 2, 8), "fw": rng.standard_normal((400, 8)), "fb": rng.standard_normal(400)}
    inits = [numpy_helper.from_array(a.astype(np.float32), name) for name, a in arrays.items()]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("clip", TensorProto.FLOAT,
                                                                              [1, 3, 4, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 400])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def rel_err(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def run_ir(xml, clip):
    model, info = load_model(xml)
    return compile_model(model, info, precision="f32", input_layout="NCTHW").infer(clip)


def test_small_onnx_round_trip(tmp_path):
    src = small_onnx(tmp_path / "small.onnx")
    xml = convert_model(src, tmp_path / "ir")
    assert xml == tmp_path / "ir" / "small.xml" and xml.with_suffix(".bin").is_file()
    session = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    clip = np.random.default_rng(1).uniform(-100, 100, (1, 3, 4, 16, 16)).astype(np.float32)
    reference = session.run(None, {"clip": clip})[0][0]
    assert rel_err(run_ir(xml, clip), reference) <= 1e-4
    meta = read_metadata(load_model(xml)[0])
    assert meta.untrained is False and "small.onnx" in meta.source
    half = convert_model(src, tmp_path / "ir16", fp16=True)
    assert half.with_suffix(".bin").stat().st_size < 0.6 * xml.with_suffix(".bin").stat().st_size
    assert rel_err(run_ir(half, clip), reference) <= 1e-2
    assert sorted(p.name for p in (tmp_path / "ir").iterdir()) == ["small.bin", "small.xml"]  # no temp files


def test_demo_weights_exported_to_onnx_round_trip(demo_onnx, tmp_path):
    xml = convert_model(demo_onnx, tmp_path)
    meta = read_metadata(load_model(xml)[0])
    assert meta.untrained is True and len(meta.labels) == 400  # metadata_props survive conversion
    session = ort.InferenceSession(str(demo_onnx), providers=["CPUExecutionProvider"])
    clip = np.random.default_rng(2).uniform(-110, 140, (1, 3, 16, 112, 112)).astype(np.float32)
    assert rel_err(run_ir(xml, clip), session.run(None, {"clip": clip})[0][0]) <= 1e-4


def test_pth_checkpoint(weights, tmp_path):
    torch = pytest.importorskip("torch")
    state = {f"module.{name}": torch.from_numpy(array.copy()) for name, array in weights.items()}
    state.update({f"module.{name[:-len('running_var')]}num_batches_tracked": torch.tensor(1000)
                  for name in weights if name.endswith("running_var")})
    src = tmp_path / "resnet-34-kinetics.pth"
    torch.save({"epoch": 200, "arch": "resnet-34", "state_dict": state}, src)
    xml = convert_model(src, tmp_path / "ir")
    meta = read_metadata(load_model(xml)[0])
    assert meta.untrained is False and "resnet-34-kinetics.pth" in meta.source
    import openvino as ov

    clip = np.random.default_rng(4).uniform(-110, 140, (1, 3, 16, 112, 112)).astype(np.float32)
    reference = ov.Core().compile_model(build_demo_model(0), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(clip)[0][0]
    assert rel_err(run_ir(xml, clip), reference) <= 1e-5

    state["module.layer2.0.downsample.0.weight"] = torch.zeros(128, 64, 1, 1, 1)
    torch.save({"state_dict": state}, tmp_path / "b.pth")
    with pytest.raises(ModelError, match="shortcut B"):
        convert_model(tmp_path / "b.pth", tmp_path / "ir")
    del state["module.layer2.0.downsample.0.weight"], state["module.fc.bias"]
    torch.save(state, tmp_path / "c.pth")
    with pytest.raises(ModelError, match=r"missing \['fc.bias'\]"):
        convert_model(tmp_path / "c.pth", tmp_path / "ir")


def test_pth_without_torch(tmp_path, monkeypatch):
    (tmp_path / "m.pth").write_bytes(b"\0")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ModelError, match=r"reading .pth needs PyTorch: pip install 'edge-har\[torch\]'"):
        convert_model(tmp_path / "m.pth", tmp_path)


def test_bad_sources(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        convert_model(tmp_path / "none.onnx", tmp_path)
    (tmp_path / "m.tflite").write_bytes(b"x")
    with pytest.raises(ModelError, match="expected a .onnx or .pth"):
        convert_model(tmp_path / "m.tflite", tmp_path)
    (tmp_path / "bad.onnx").write_bytes(b"not protobuf at all")
    with pytest.raises(ModelError, match="cannot convert"):
        convert_model(tmp_path / "bad.onnx", tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
