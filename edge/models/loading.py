"""Reading a clip model from disk and describing it: the one place models are loaded.

``load_model`` reads an ``.onnx`` (converted to IR once and cached by content
hash), an ``.xml`` or a directory holding one model, checks that it is a 5-D
clip classifier, and returns it with a ``ModelInfo``. ``edge.runtime`` only
compiles and infers what this module loaded.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import openvino as ov

from edge.hotpath_numpy import KINETICS_MEAN
from edge.models.convert import convert_model
from edge.models.errors import ModelError, openvino_reason
from edge.models.head import with_features
from edge.models.metadata import read_metadata
from edge.models.paths import converted_dir, file_sha1, named_model_path
from edge.models.registry import bundled_labels, read_labels
from edge.records import CUSTOM_LOGITS, CUSTOM_PREFIX, FEATURES

__all__ = ["ModelError", "ModelInfo", "core", "load_model", "openvino_reason", "resolve_model_path"]

CLASS_SCORES = "logits"
CUSTOM_LABELS_FILE = "labels_custom.txt"
# Output 0 is the class scores whatever its name; any other output is known by its tensor name.
OUTPUT_ROLES = (CUSTOM_LOGITS, FEATURES)

@dataclass(frozen=True)
class ModelInfo:
    """What the pipeline needs to know about a loaded model (input is N,C,T,H,W)."""

    path: str
    source: str
    clip_len: int
    size: int
    mean: tuple[float, float, float]
    labels: tuple[str, ...]
    num_classes: int
    untrained: bool
    input_name: str
    custom_labels: tuple[str, ...] = ()  # a grafted head's classes (``edge-har learn``); () = none
    outputs: tuple[str, ...] = (CLASS_SCORES,)  # each output's role, in output order (``OUTPUT_ROLES``)

    @property
    def activity_labels(self) -> tuple[str, ...]:
        """What an activity may name: the labels, then ``custom:NAME`` for each custom class (the order of
        ``edge.postprocess.activity_probabilities``)."""
        return self.labels + tuple(CUSTOM_PREFIX + name for name in self.custom_labels)


_core_lock = threading.Lock()
_core: ov.Core | None = None


def core() -> ov.Core:
    """The process-wide ``ov.Core`` (one per process is what OpenVINO recommends)."""
    global _core
    with _core_lock:
        if _core is None:
            _core = ov.Core()
        return _core


def resolve_model_path(path) -> Path:
    """The model file behind ``path``: an ``.onnx``/``.xml`` file, the one model in a directory, or a
    name from ``edge-har model list`` (the fetched or built model of that name).

    In a directory an ``.xml`` wins over an ``.onnx`` of the same model (``fetch`` leaves both).
    """
    path = Path(path).expanduser()
    if not path.exists():
        named = named_model_path(str(path)) if path.parent == Path(".") else None
        if named is None:
            raise ModelError(f"model not found: {path}")
        path = named
    if path.is_dir():
        for pattern in ("*.xml", "*.onnx"):
            found = sorted(p for p in path.glob(pattern) if not p.name.startswith("."))
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise ModelError(f"{path} holds {len(found)} models ({', '.join(p.name for p in found)}); name one")
        raise ModelError(f"no model (.xml or .onnx) in directory {path}")
    if path.suffix.lower() not in (".onnx", ".xml"):
        raise ModelError(f"unsupported model file {path}: expected .onnx, .xml or a directory")
    return path


def _converted_ir(onnx_path: Path, cache_dir) -> Path:
    """The IR of ``onnx_path``, converted once and cached under ``converted/<sha1>/``."""
    target = converted_dir(cache_dir) / file_sha1(onnx_path)[:20]
    xml = target / f"{onnx_path.stem}.xml"
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return xml
    try:
        return convert_model(onnx_path, target)
    except ModelError:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _read(path: Path) -> ov.Model:
    if path.suffix.lower() == ".xml" and not path.with_suffix(".bin").is_file():
        raise ModelError(f"cannot read model {path}: its weights file {path.with_suffix('.bin').name} is missing")
    try:
        return core().read_model(path)
    except Exception as error:  # OpenVINO raises RuntimeError with a multi-line message
        raise ModelError(f"cannot read model {path} (corrupt or not an OpenVINO/ONNX model): "
                         f"{openvino_reason(error)}") from None


def _shape_text(partial_shape) -> str:
    return "×".join(str(d) for d in partial_shape) if partial_shape.rank.is_static else str(partial_shape)


def _roles(model: ov.Model, where) -> tuple[str, ...]:
    roles = [CLASS_SCORES]
    for output in model.outputs[1:]:
        role = next((name for name in OUTPUT_ROLES if name in output.get_names()), None)
        if role is None or role in roles:
            raise ModelError(f"{where}: expected one class-score output (and optionally {' and '.join(OUTPUT_ROLES)}), "
                             f"got {len(model.outputs)} outputs")
        roles.append(role)
    return tuple(roles)


def load_model(path, labels_path=None, cache_dir=None, features: bool = False) -> tuple[ov.Model, ModelInfo]:
    """Read a clip classifier and describe it.

    ``path``: ``.onnx`` (converted once, cached by content hash under
    ``<cache_dir or edge_home()>/converted``), ``.xml`` or a directory holding
    one model. The returned model's input is N×C×T×H×W as stored; ``compile_model``
    attaches the clip ring's layout. Labels: ``labels_path`` if given, else the
    model's metadata, else the bundled Kinetics-400 list.

    Outputs: output 0 is the class scores; a model from ``edge-har learn`` also has
    ``custom_logits`` (its classes from the metadata, else ``labels_custom.txt`` beside
    it). ``features``: add the pooled feature as an output ``features`` (``edge.models.head``).

    Raises ``ModelError``: missing/corrupt file, input not a 5-D clip, more than one
    input, an output of no known role, labels count different from the number of classes.
    """
    source_path = resolve_model_path(path)
    model_file = _converted_ir(source_path, cache_dir) if source_path.suffix.lower() == ".onnx" else source_path
    model = _read(model_file)
    if len(model.inputs) != 1:
        raise ModelError(f"{source_path}: expected one input, got {len(model.inputs)}")
    if features:
        model = with_features(model, str(source_path))
    roles = _roles(model, source_path)
    in_shape = model.input(0).get_partial_shape()
    if in_shape.rank.is_dynamic or in_shape.rank.get_length() != 5 or in_shape[1].is_dynamic \
            or in_shape[1].get_length() != 3:
        raise ModelError(f"{source_path}: expected a 5-D clip input N×C×T×H×W (C=3), got {_shape_text(in_shape)}")
    if in_shape.is_dynamic:
        model.reshape([1, 3, *[d.get_length() if d.is_static else -1 for d in list(in_shape)[2:]]])
        in_shape = model.input(0).get_partial_shape()
        if in_shape.is_dynamic:
            raise ModelError(f"{source_path}: clip input has dynamic dimensions {_shape_text(in_shape)}")
    out_shape = model.output(0).get_partial_shape()
    if out_shape.is_dynamic or out_shape.rank.get_length() == 0:
        raise ModelError(f"{source_path}: expected a static class-score output, got {_shape_text(out_shape)}")
    num_classes = int(out_shape[out_shape.rank.get_length() - 1].get_length())

    meta = read_metadata(model)
    try:
        if labels_path is not None:
            labels = read_labels(labels_path)
        elif meta.labels is not None:
            labels = meta.labels
        else:
            labels = bundled_labels()
    except OSError as error:
        raise ModelError(f"cannot read labels file {labels_path}: {error.strerror}") from None
    if len(labels) != num_classes:
        where = labels_path or ("the model metadata" if meta.labels is not None else "the bundled Kinetics-400 list")
        raise ModelError(f"{source_path}: the model has {num_classes} classes but {where} has {len(labels)} labels")

    custom = ()
    if CUSTOM_LOGITS in roles:
        custom = _custom_labels(meta, source_path, model.output(roles.index(CUSTOM_LOGITS)))

    dims = [d.get_length() for d in in_shape]
    info = ModelInfo(
        path=str(source_path),
        source=meta.source or str(source_path),
        clip_len=dims[2],
        size=dims[3],
        mean=tuple(meta.mean) if meta.mean is not None else KINETICS_MEAN,
        labels=tuple(labels),
        num_classes=num_classes,
        untrained=bool(meta.untrained),
        input_name=model.input(0).get_any_name() if model.input(0).get_names() else "input",
        custom_labels=custom,
        outputs=roles,
    )
    if dims[3] != dims[4]:
        raise ModelError(f"{source_path}: expected a square clip (H = W), got {_shape_text(in_shape)}")
    return model, info


def _custom_labels(meta, source_path: Path, output) -> tuple[str, ...]:
    """A grafted head's classes: the metadata's, else ``labels_custom.txt`` beside the model."""
    beside = source_path.parent / CUSTOM_LABELS_FILE
    if meta.custom_labels is not None:
        labels = tuple(meta.custom_labels)
    elif beside.is_file():
        labels = tuple(read_labels(beside))
    else:
        raise ModelError(f"{source_path}: has a custom_logits output but no custom class names "
                         f"(metadata custom_labels or {CUSTOM_LABELS_FILE} beside it)")
    count = int(output.get_partial_shape()[-1].get_length())
    if len(labels) != count:
        raise ModelError(f"{source_path}: the custom head has {count} classes but its names list {len(labels)}")
    return labels
