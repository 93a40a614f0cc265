"""The pooled feature of a clip classifier, and a site's own head grafted onto it.

The 3D ResNet ends ``global average pool → flatten → fc``. The fc layer is a
``MatMul`` (plus an ``Add`` for its bias) whose data input is the pooled
feature, ``1×512``. ``pooled_feature`` finds it by walking back from the class
output: through an optional ``Softmax``, the bias ``Add`` (and ``Convert``
nodes an f16-compressed IR puts on weights), to the ``MatMul``.

- ``with_features``: the same network with the feature as an extra output named
  ``features`` (``edge-har learn`` extracts with it: one inference per clip,
  never a second model).
- ``graft_head``: the same network with ``custom_logits = features @ W.T + b``
  as a second output (the head's weights act on raw features: the feature
  normalisation is folded into them). One inference gives both heads.

The output names are the contract with ``edge.models.loading``, which gives
each output of a model its role by name (``OUTPUT_ROLES``).
"""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from edge.models.errors import ModelError
from edge.models.metadata import read_metadata, write_metadata
from edge.records import CUSTOM_LOGITS, FEATURES

FEATURE_DIM = 512
LOOKED_FOR = (f"the fc layer's input: a MatMul with a 1×{FEATURE_DIM} data input (the global average pool) "
              "feeding the class output")
_PASS_THROUGH = {"Softmax", "Add", "Convert", "Reshape", "Squeeze"}


def _is_constant(output: ov.Output) -> bool:
    node = output.get_node()
    while node.get_type_name() in ("Convert", "FakeQuantize", "Multiply", "Subtract") and node.get_input_size():
        node = node.input_value(0).get_node()
    return node.get_type_name() == "Constant"


def pooled_feature(model: ov.Model, where: str = "the model") -> ov.Output:
    """The ``1×512`` pooled feature feeding the class output (output 0). ``ModelError`` names what it looked for."""
    node = model.output(0).get_node().input_value(0).get_node()
    for _ in range(8):
        kind = node.get_type_name()
        if kind == "MatMul":
            data = [node.input_value(i) for i in range(2) if not _is_constant(node.input_value(i))]
            if len(data) == 1:
                shape = data[0].get_partial_shape()
                if shape.is_static and [int(d) for d in shape.to_shape()][-1] == FEATURE_DIM \
                        and int(np.prod(list(shape.to_shape()))) == FEATURE_DIM:
                    return data[0]
            break
        if kind not in _PASS_THROUGH:
            break
        inputs = [node.input_value(i) for i in range(node.get_input_size()) if not _is_constant(node.input_value(i))]
        if len(inputs) != 1:
            break
        node = inputs[0].get_node()
    raise ModelError(f"{where} has no pooled {FEATURE_DIM}-d feature: looked for {LOOKED_FOR}")


def _results(model: ov.Model) -> list:
    return [output.get_node() for output in model.outputs]


def with_features(model: ov.Model, where: str = "the model") -> ov.Model:
    """``model`` with the pooled feature as an extra output ``features`` (a new model; weights shared)."""
    if any(FEATURES in output.get_names() for output in model.outputs):
        return model
    feature = pooled_feature(model, where)
    flat = ops.reshape(feature, ops.constant(np.array([1, FEATURE_DIM], np.int64)), special_zero=False)
    flat.output(0).get_tensor().set_names({FEATURES})
    out = ov.Model([*_results(model), ops.result(flat)], model.get_parameters(), model.get_friendly_name())
    _copy_rt_info(model, out)
    return out


def graft_head(model: ov.Model, weight, bias, where: str = "the model") -> ov.Model:
    """``model`` (its class output only) with ``custom_logits = features @ weight.T + bias`` as output 1.

    ``weight`` float (K, 512) and ``bias`` (K,) act on raw pooled features.
    """
    weight = np.ascontiguousarray(weight, dtype=np.float32)
    bias = np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
    if weight.ndim != 2 or weight.shape[1] != FEATURE_DIM or bias.shape[0] != weight.shape[0]:
        raise ValueError(f"head weight must be (K, {FEATURE_DIM}) and bias (K,), got {weight.shape} and {bias.shape}")
    feature = pooled_feature(model, where)
    flat = ops.reshape(feature, ops.constant(np.array([1, FEATURE_DIM], np.int64)), special_zero=False)
    logits = ops.add(ops.matmul(flat, ops.constant(weight), False, True), ops.constant(bias))
    logits.output(0).get_tensor().set_names({CUSTOM_LOGITS})
    out = ov.Model([_results(model)[0], ops.result(logits)], model.get_parameters(), model.get_friendly_name())
    _copy_rt_info(model, out)
    return out


def _copy_rt_info(source: ov.Model, target: ov.Model) -> None:
    write_metadata(target, read_metadata(source))
