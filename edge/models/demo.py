"""The 3D ResNet-34 (Hara et al., CVPR 2018; shortcut A) built with OpenVINO's graph API.

``build_graph(weights)`` is the one builder: the demo model feeds it seeded
random weights (``demo_weights``), ``convert.py`` feeds it the weights of a
kenshohara ``.pth`` checkpoint. Weight names are those of that checkpoint's
``state_dict`` without the ``module.`` prefix (``conv1.weight``,
``layer2.0.bn1.running_var``, ``fc.bias``…).

``export_onnx(weights, path)`` writes the same network as an ONNX file through
the ``onnx`` helper API (an independent second construction, used as the test
oracle with ONNX Runtime and by the benchmark for cv2.dnn / ONNX Runtime).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from edge.hotpath_numpy import KINETICS_MEAN
from edge.models.metadata import ModelMetadata, metadata_strings, write_metadata
from edge.models.registry import bundled_labels

CLIP_LEN = 16
SIZE = 112
NUM_CLASSES = 400
LAYERS = (3, 4, 6, 3)
PLANES = (64, 128, 256, 512)
BN_EPS = 1e-5
# RMS of a mean-subtracted 0–255 frame, used to give conv1's BN a realistic variance.
_INPUT_RMS = 60.0


def block_names() -> list[tuple[str, int, int, int]]:
    """Every BasicBlock as ``(prefix, in_planes, planes, stride)``, in forward order."""
    blocks, in_planes = [], 64
    for index, (count, planes) in enumerate(zip(LAYERS, PLANES)):
        for block in range(count):
            stride = 2 if index > 0 and block == 0 else 1
            blocks.append((f"layer{index + 1}.{block}", in_planes, planes, stride))
            in_planes = planes
    return blocks


def weight_shapes(num_classes: int = NUM_CLASSES) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor the builder needs (shortcut A: no downsample weights)."""
    shapes = {"conv1.weight": (64, 3, 7, 7, 7)}

    def bn(name, channels):
        for suffix in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{suffix}"] = (channels,)

    bn("bn1", 64)
    for prefix, in_planes, planes, _ in block_names():
        shapes[f"{prefix}.conv1.weight"] = (planes, in_planes, 3, 3, 3)
        bn(f"{prefix}.bn1", planes)
        shapes[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3, 3)
        bn(f"{prefix}.bn2", planes)
    shapes["fc.weight"] = (num_classes, 512)
    shapes["fc.bias"] = (num_classes,)
    return shapes


def demo_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded float32 weights for the whole network.

    Convolutions are He-normal; each BN's running variance is the variance its
    convolution's output is expected to have (tracked through the residual
    stream), so activations stay O(1) through all 16 blocks and the logits differ.
    """
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}

    def conv(name, cout, cin, k):
        scale = np.float32(np.sqrt(2.0 / (cin * k**3)))
        weights[name] = rng.standard_normal((cout, cin, k, k, k), dtype=np.float32) * scale

    def bn(name, channels, expected_var):
        weights[f"{name}.weight"] = rng.uniform(0.8, 1.2, channels).astype(np.float32)
        weights[f"{name}.bias"] = rng.normal(0.0, 0.1, channels).astype(np.float32)
        weights[f"{name}.running_mean"] = rng.normal(0.0, 0.1 * np.sqrt(expected_var), channels).astype(np.float32)
        weights[f"{name}.running_var"] = (expected_var * rng.uniform(0.7, 1.3, channels)).astype(np.float32)

    conv("conv1.weight", 64, 3, 7)
    bn("bn1", 64, 2.0 * _INPUT_RMS**2)
    stream = 4.0  # mean square of the residual stream after ReLU + max-pool
    for prefix, in_planes, planes, _ in block_names():
        conv(f"{prefix}.conv1.weight", planes, in_planes, 3)
        bn(f"{prefix}.bn1", planes, 2.0 * stream)
        conv(f"{prefix}.conv2.weight", planes, planes, 3)
        bn(f"{prefix}.bn2", planes, 1.0)
        kept = in_planes / planes  # shortcut A zero-pads the new channels
        stream = kept * (stream + 0.75) + (1 - kept) * 0.5
    weights["fc.weight"] = (rng.standard_normal((NUM_CLASSES, 512), dtype=np.float32) / np.float32(np.sqrt(512)))
    weights["fc.bias"] = rng.normal(0.0, 0.01, NUM_CLASSES).astype(np.float32)
    return weights


def check_weights(weights: Mapping[str, np.ndarray]) -> int:
    """Validate names and shapes; returns the number of classes. ``ValueError`` names what is wrong."""
    if "fc.weight" not in weights:
        raise ValueError("weights have no 'fc.weight'")
    num_classes = int(weights["fc.weight"].shape[0])
    expected = weight_shapes(num_classes)
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"weights do not match the 3D ResNet-34 with shortcut A: missing {missing[:5]}"
            f"{'…' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}"
        )
    for name, shape in expected.items():
        if tuple(weights[name].shape) != shape:
            raise ValueError(f"weight {name!r} has shape {tuple(weights[name].shape)}, expected {shape}")
    return num_classes


def _const(array) -> ov.Node:
    return ops.constant(np.ascontiguousarray(array, dtype=np.float32))


def _ints(values) -> ov.Node:
    return ops.constant(np.asarray(values, dtype=np.int64))


def _conv(x, weight, stride, pad):
    return ops.convolution(x, _const(weight), [stride] * 3 if isinstance(stride, int) else stride,
                           [pad] * 3, [pad] * 3, [1, 1, 1])


def _bn(x, weights, name):
    return ops.batch_norm_inference(
        x, _const(weights[f"{name}.weight"]), _const(weights[f"{name}.bias"]),
        _const(weights[f"{name}.running_mean"]), _const(weights[f"{name}.running_var"]), BN_EPS)


def _shortcut_a(x, in_planes, planes, stride):
    """avg_pool3d(kernel 1, stride) == taking every stride-th element; then zero-pad the channels."""
    if stride != 1:
        big = np.iinfo(np.int64).max
        x = ops.slice(x, _ints([0, 0, 0]), _ints([big] * 3), _ints([stride] * 3), _ints([2, 3, 4]))
    if planes != in_planes:
        x = ops.pad(x, _ints([0] * 5), _ints([0, planes - in_planes, 0, 0, 0]), "constant",
                    ops.constant(np.float32(0.0)))
    return x


def build_graph(weights: Mapping[str, np.ndarray], metadata: ModelMetadata | None = None,
                clip_len: int = CLIP_LEN, size: int = SIZE) -> ov.Model:
    """The network as an ``ov.Model``: input ``clip`` f32 1×3×T×S×S (N,C,T,H,W), output ``logits`` 1×classes.

    ``ValueError`` if the weights are not those of this architecture.
    """
    check_weights(weights)
    clip = ops.parameter([1, 3, clip_len, size, size], ov.Type.f32, name="clip")
    x = ops.relu(_bn(_conv(clip, weights["conv1.weight"], [1, 2, 2], 3), weights, "bn1"))
    x = ops.max_pool(x, [2, 2, 2], [1, 1, 1], [1, 1, 1], [1, 1, 1], [3, 3, 3]).output(0)
    for prefix, in_planes, planes, stride in block_names():
        out = ops.relu(_bn(_conv(x, weights[f"{prefix}.conv1.weight"], stride, 1), weights, f"{prefix}.bn1"))
        out = _bn(_conv(out, weights[f"{prefix}.conv2.weight"], 1, 1), weights, f"{prefix}.bn2")
        x = ops.relu(ops.add(out, _shortcut_a(x, in_planes, planes, stride)))
    last_t, last_s = -(-clip_len // 16), -(-size // 32)
    x = ops.avg_pool(x, [1, 1, 1], [0, 0, 0], [0, 0, 0], [last_t, last_s, last_s], exclude_pad=True)
    x = ops.reshape(x, _ints([1, -1]), special_zero=False)
    logits = ops.add(ops.matmul(x, _const(weights["fc.weight"]), False, True), _const(weights["fc.bias"]))
    logits.output(0).get_tensor().set_names({"logits"})
    clip.output(0).get_tensor().set_names({"clip"})
    model = ov.Model([ops.result(logits)], [clip], "resnet34_kinetics")
    if metadata is not None:
        write_metadata(model, metadata)
    return model


def demo_metadata(seed: int = 0) -> ModelMetadata:
    """Metadata of the demo model: Kinetics labels and mean, untrained."""
    return ModelMetadata(labels=bundled_labels(), mean=KINETICS_MEAN, clip_len=CLIP_LEN, size=SIZE,
                         untrained=True, source=f"edge-har demo model (seed {seed}, untrained)")


def build_demo_model(seed: int = 0) -> ov.Model:
    """The exact architecture with seeded random weights and rt_info metadata (``untrained: true``)."""
    return build_graph(demo_weights(seed), demo_metadata(seed))


def save_model_atomic(model: ov.Model, xml_path, compress_to_fp16: bool = False) -> Path:
    """``ov.save_model`` into a temporary name, then rename .bin and .xml into place."""
    xml_path = Path(xml_path)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = xml_path.with_name(f".{xml_path.stem}.tmp-{np.random.default_rng().integers(1 << 30)}.xml")
    try:
        ov.save_model(model, tmp, compress_to_fp16=compress_to_fp16)
        tmp.with_suffix(".bin").replace(xml_path.with_suffix(".bin"))
        tmp.replace(xml_path)
    finally:
        for leftover in (tmp, tmp.with_suffix(".bin")):
            leftover.unlink(missing_ok=True)
    return xml_path


def save_demo_model(output_dir, seed: int = 0) -> Path:
    """Build the demo model and save it as ``<output_dir>/resnet34-kinetics-demo.xml`` (+ .bin, f32)."""
    return save_model_atomic(build_demo_model(seed), Path(output_dir) / "resnet34-kinetics-demo.xml")


def export_onnx(weights: Mapping[str, np.ndarray], path, metadata: ModelMetadata | None = None,
                clip_len: int = CLIP_LEN, size: int = SIZE) -> Path:
    """Write the network with these weights as ONNX (opset 17) built with ``onnx.helper``; needs ``onnx``.

    Input ``clip`` 1×3×T×S×S, output ``logits`` 1×classes. ``metadata`` goes into
    ``metadata_props`` as ``edge_har.<key>``.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    num_classes = check_weights(weights)
    nodes, inits = [], []

    def init(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def conv_bn(x, prefix_conv, prefix_bn, stride, pad, out):
        k = weights[f"{prefix_conv}.weight"].shape[2]
        nodes.append(helper.make_node("Conv", [x, init(f"{prefix_conv}.weight", weights[f"{prefix_conv}.weight"])],
                                      [f"{out}_conv"], kernel_shape=[k] * 3, strides=stride, pads=[pad] * 6))
        names = [init(f"{prefix_bn}.{s}", weights[f"{prefix_bn}.{s}"])
                 for s in ("weight", "bias", "running_mean", "running_var")]
        nodes.append(helper.make_node("BatchNormalization", [f"{out}_conv", *names], [out], epsilon=BN_EPS))
        return out

    def relu(x, out):
        nodes.append(helper.make_node("Relu", [x], [out]))
        return out

    t, s = clip_len, size
    x = relu(conv_bn("clip", "conv1", "bn1", [1, 2, 2], 3, "stem_bn"), "stem_relu")
    s = (s + 6 - 7) // 2 + 1  # conv1: spatial stride 2, temporal stride 1
    nodes.append(helper.make_node("MaxPool", [x], ["stem_pool"], kernel_shape=[3, 3, 3], strides=[2, 2, 2],
                                  pads=[1] * 6))
    x, t, s = "stem_pool", (t + 2 - 3) // 2 + 1, (s + 2 - 3) // 2 + 1
    for prefix, in_planes, planes, stride in block_names():
        tag = prefix.replace(".", "_")
        out = relu(conv_bn(x, f"{prefix}.conv1", f"{prefix}.bn1", [stride] * 3, 1, f"{tag}_a"), f"{tag}_a_relu")
        out = conv_bn(out, f"{prefix}.conv2", f"{prefix}.bn2", [1, 1, 1], 1, f"{tag}_b")
        shortcut = x
        if stride != 1:
            nodes.append(helper.make_node("AveragePool", [x], [f"{tag}_sub"], kernel_shape=[1, 1, 1],
                                          strides=[stride] * 3))
            shortcut, t, s = f"{tag}_sub", (t - 1) // stride + 1, (s - 1) // stride + 1
        if planes != in_planes:
            zeros = init(f"{tag}_zeros", np.zeros((1, planes - in_planes, t, s, s), np.float32))
            nodes.append(helper.make_node("Concat", [shortcut, zeros], [f"{tag}_short"], axis=1))
            shortcut = f"{tag}_short"
        nodes.append(helper.make_node("Add", [out, shortcut], [f"{tag}_sum"]))
        x = relu(f"{tag}_sum", f"{tag}_out")
    last_t, last_s = -(-clip_len // 16), -(-size // 32)
    nodes.append(helper.make_node("AveragePool", [x], ["gap"], kernel_shape=[last_t, last_s, last_s],
                                  strides=[1, 1, 1]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["features"], axis=1))
    nodes.append(helper.make_node("Gemm", ["features", init("fc.weight", weights["fc.weight"]),
                                           init("fc.bias", weights["fc.bias"])], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes, "resnet34_kinetics",
        [helper.make_tensor_value_info("clip", TensorProto.FLOAT, [1, 3, clip_len, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, num_classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edge-har")
    model.ir_version = 8
    if metadata is not None:
        helper.set_model_props(model, {f"edge_har.{k}": v for k, v in metadata_strings(metadata).items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path
