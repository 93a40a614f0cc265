"""``edge-har model info``: what a model file holds."""

from __future__ import annotations

from collections import Counter

import numpy as np
import openvino as ov

from edge.models.loading import load_model
from edge.models.metadata import read_metadata
from edge.records import CUSTOM_LOGITS

# Constant element types that are indices or shapes, not weights.
_INDEX_TYPES = {ov.Type.i32, ov.Type.i64, ov.Type.boolean}


def describe_model(path) -> dict:
    """Inputs, outputs, parameter count, weight precisions, untrained, labels count and source.

    ``path``: .onnx, .xml or a directory (as ``load_model``). Weight precisions map the
    element type of weight constants (``f32``, ``f16``, ``i8``, ``u8``…) to their element
    count. Raises ``ModelError`` like ``load_model``.
    """
    model, info = load_model(path)
    precisions: Counter[str] = Counter()
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Constant":
            continue
        element_type = op.get_output_element_type(0)
        size = int(np.prod(list(op.get_output_shape(0)))) if op.get_output_partial_shape(0).is_static else 0
        if element_type in _INDEX_TYPES or size <= 1:
            continue
        precisions[element_type.get_type_name()] += size
    meta = read_metadata(model)

    def port(p):
        return {"name": p.get_any_name() if p.get_names() else "", "shape": [int(d) for d in p.get_shape()],
                "type": p.get_element_type().get_type_name()}

    return {
        "path": info.path,
        "inputs": [port(p) for p in model.inputs],
        "outputs": [port(p) for p in model.outputs],
        "parameters": int(sum(precisions.values())),
        "weight_precisions": dict(precisions),
        "quantized": any(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops())
        or any(t in precisions for t in ("i8", "u8", "i4", "u4")),
        "untrained": info.untrained,
        "labels": len(info.labels),
        "num_classes": info.num_classes,
        "clip_len": info.clip_len,
        "size": info.size,
        "mean": list(info.mean),
        "source": info.source,
        "precision": meta.precision,
        "heads": _heads(info),
    }


def _heads(info) -> list[dict]:
    """Each classifier head: the model's own (output 0) and a learned one (``custom_logits``, edge-har learn)."""
    heads = [{"name": "kinetics" if len(info.labels) == 400 else "model", "output": 0,
              "classes": info.num_classes, "labels": list(info.labels[:5])}]
    if info.custom_labels:
        heads.append({"name": "custom", "output": info.outputs.index(CUSTOM_LOGITS),
                      "classes": len(info.custom_labels), "labels": list(info.custom_labels)})
    return heads
