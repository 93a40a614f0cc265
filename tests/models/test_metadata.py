"""rt_info metadata survives save/load, and ONNX metadata_props reach it through conversion."""

from __future__ import annotations

import onnx
import openvino as ov
import openvino.opset13 as ops
from onnx import TensorProto, helper

from edge.models.metadata import ModelMetadata, read_metadata, write_metadata


def _tiny_model():
    clip = ops.parameter([1, 3, 2, 4, 4], ov.Type.f32, name="clip")
    return ov.Model([ops.relu(clip)], [clip], "tiny")


def test_round_trip_through_ir(tmp_path):
    meta = ModelMetadata(labels=("washing hands", 'say "hi", then, [go]'), mean=(114.7748, 107.7354, 99.475),
                         clip_len=16, size=112, untrained=True, source="unit test")
    ov.save_model(write_metadata(_tiny_model(), meta), tmp_path / "m.xml")
    assert read_metadata(ov.Core().read_model(tmp_path / "m.xml")) == meta
    trained = ModelMetadata(untrained=False)
    ov.save_model(write_metadata(_tiny_model(), trained), tmp_path / "t.xml")
    assert read_metadata(ov.Core().read_model(tmp_path / "t.xml")).untrained is False


def test_absent_fields_are_none(tmp_path):
    assert read_metadata(_tiny_model()) == ModelMetadata()


def test_onnx_metadata_props_are_read(tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 2, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"edge_har.untrained": "true", "edge_har.labels": '["a", "b"]'})
    onnx.save(model, tmp_path / "m.onnx")
    meta = read_metadata(ov.convert_model(str(tmp_path / "m.onnx")))
    assert meta.untrained is True and meta.labels == ("a", "b") and meta.mean is None
