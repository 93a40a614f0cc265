"""Load a clip model, compile it with OpenVINO, run it synchronously or through an async queue.

The clip ring hands out float32 T×C×H×W views; ``view[None]`` (1×T×C×H×W) is
fed as is. ``compile_model`` tells OpenVINO (PrePostProcessor) that the tensor
layout is NTCHW and the model layout NCTHW, so the transpose happens inside
the compiled graph and no copy is made in Python.
"""

from __future__ import annotations

import queue
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openvino as ov
from openvino.preprocess import PrePostProcessor


class ModelError(Exception):
    """A one-line, user-facing model problem (missing file, not a clip model, label mismatch…)."""


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


@dataclass(frozen=True)
class InferResult:
    """One finished async request: the submitter's tag, a private copy of the logits (num_classes,)."""

    tag: object
    logits: np.ndarray
    infer_ms: float
    error: str | None = None


_PRECISIONS = {"f32": ov.Type.f32, "bf16": ov.Type.bf16, "f16": ov.Type.f16}
_HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT", "cumulative_throughput": "CUMULATIVE_THROUGHPUT"}
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
    """The model file behind ``path``: an ``.onnx``/``.xml`` file, or the one model in a directory.

    In a directory an ``.xml`` wins over an ``.onnx`` of the same model (``fetch`` leaves both).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelError(f"model not found: {path}")
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
    from edge.models.convert import convert_model
    from edge.models.paths import converted_dir, file_sha1

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
                         f"{_openvino_reason(error)}") from None


def _openvino_reason(error: BaseException) -> str:
    """The line of an OpenVINO exception that says what is wrong, not where in OpenVINO it was raised."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # "Exception from src/...cpp:84:" and "Check '...' failed at src/...cpp:900:" only locate the problem.
    told = [line for line in lines if not re.match(r"(Exception from |Check '.*' failed at )\S+:\d+:?$", line)]
    return (told or lines or [type(error).__name__])[-1 if told else 0]


def _shape_text(partial_shape) -> str:
    return "×".join(str(d) for d in partial_shape) if partial_shape.rank.is_static else str(partial_shape)


def load_model(path, labels_path=None, cache_dir=None) -> tuple[ov.Model, ModelInfo]:
    """Read a clip classifier and describe it.

    ``path``: ``.onnx`` (converted once, cached by content hash under
    ``<cache_dir or edge_home()>/converted``), ``.xml`` or a directory holding
    one model. The returned model's input is N×C×T×H×W as stored; ``compile_model``
    attaches the clip ring's layout. Labels: ``labels_path`` if given, else the
    model's metadata, else the bundled Kinetics-400 list.

    Raises ``ModelError``: missing/corrupt file, input not a 5-D clip, more than one
    input or output, labels count different from the number of classes.
    """
    from edge.models.metadata import read_metadata
    from edge.models.registry import bundled_labels, read_labels

    source_path = resolve_model_path(path)
    model_file = _converted_ir(source_path, cache_dir) if source_path.suffix.lower() == ".onnx" else source_path
    model = _read(model_file)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{source_path}: expected one input and one output, got {len(model.inputs)} "
                         f"and {len(model.outputs)}")
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

    from edge.preprocess import KINETICS_MEAN

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
    )
    if dims[3] != dims[4]:
        raise ModelError(f"{source_path}: expected a square clip (H = W), got {_shape_text(in_shape)}")
    return model, info


def prepare_model(model: ov.Model, input_layout: str = "NTCHW") -> ov.Model:
    """Attach the clip tensor layout with PrePostProcessor (``NTCHW`` → model ``NCTHW``), f32 input."""
    layout = input_layout.upper()
    if sorted(layout) != sorted("NCTHW"):
        raise ValueError(f"input_layout must be a permutation of NCTHW, got {input_layout!r}")
    if layout == "NCTHW":
        return model
    n, c, t, h, w = (d.get_length() for d in model.input(0).get_partial_shape())
    sizes = dict(N=n, C=c, T=t, H=h, W=w)
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.f32).set_layout(ov.Layout(layout)).set_shape(
        [sizes[axis] for axis in layout])
    ppp.input().model().set_layout(ov.Layout("NCTHW"))
    return ppp.build()


def compile_model(model: ov.Model, info: ModelInfo, device: str = "CPU", precision: str = "auto",
                  performance_hint: str = "latency", num_requests: int | None = None, cache_dir=None,
                  input_layout: str = "NTCHW") -> Classifier:
    """Compile ``model`` (from ``load_model``) for ``device``.

    ``precision``: ``auto`` (the device's default — bf16 on CPUs that have it) or
    ``f32``/``bf16``/``f16`` set through ``INFERENCE_PRECISION_HINT``.
    ``performance_hint``: ``latency`` or ``throughput``; ``num_requests`` caps the
    requests the hint plans for; ``cache_dir`` enables OpenVINO's compiled-model cache.
    ``input_layout``: the layout of the tensors passed to ``infer``/``submit``
    (``NTCHW`` = the clip ring's ``view[None]``). Raises ``ModelError`` on a bad option
    or a failed compile.
    """
    if precision not in ("auto", *_PRECISIONS):
        raise ModelError(f"unknown precision {precision!r}; expected auto, f32, bf16 or f16")
    if performance_hint.lower() not in _HINTS:
        raise ModelError(f"unknown performance_hint {performance_hint!r}; expected latency or throughput")
    config: dict = {"PERFORMANCE_HINT": _HINTS[performance_hint.lower()]}
    if precision != "auto":
        config["INFERENCE_PRECISION_HINT"] = _PRECISIONS[precision]
    if num_requests:
        config["PERFORMANCE_HINT_NUM_REQUESTS"] = int(num_requests)
    if cache_dir:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        config["CACHE_DIR"] = str(cache_dir)
    try:
        prepared = prepare_model(model.clone(), input_layout)
    except ValueError as error:
        raise ModelError(str(error)) from None
    try:
        compiled = core().compile_model(prepared, device, config)
    except Exception as error:
        raise ModelError(f"cannot compile {info.path} for device {device!r}: {_openvino_reason(error)}") from None
    return Classifier(info, compiled, device, precision)


class Classifier:
    """A compiled clip classifier. ``precision`` is what the compiled model actually uses."""

    def __init__(self, info: ModelInfo, compiled: ov.CompiledModel, device: str, requested_precision: str):
        self.info = info
        self.compiled = compiled
        self.device = device
        try:
            hint = compiled.get_property("INFERENCE_PRECISION_HINT")
            self.precision = hint.get_type_name() if isinstance(hint, ov.Type) else str(hint).lower()
        except Exception:  # devices without the property (e.g. some NPU plugins)
            self.precision = requested_precision
        try:
            self.optimal_num_requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        except Exception:
            self.optimal_num_requests = 1
        self.input_shape = tuple(compiled.input(0).get_shape())
        self._request: ov.InferRequest | None = None  # made by the first infer(): the pipeline uses async_queue only
        self._lock = threading.Lock()

    def as_input(self, clip: np.ndarray) -> np.ndarray:
        """``clip`` as the compiled input: a (T,C,H,W) view gets ``[None]``; no copy. ``ValueError`` if wrong."""
        if not isinstance(clip, np.ndarray) or clip.dtype != np.float32:
            raise ValueError(f"clip must be a float32 numpy array, got {getattr(clip, 'dtype', type(clip))}")
        batch = clip[None] if clip.ndim == len(self.input_shape) - 1 else clip
        if batch.shape != self.input_shape:
            raise ValueError(f"clip shape {clip.shape} does not match the model input {self.input_shape}")
        return batch

    def infer(self, clip: np.ndarray) -> np.ndarray:
        """Logits float32 (num_classes,) for one clip (T,C,H,W) or (1,T,C,H,W) (layout as compiled); a copy."""
        batch = self.as_input(clip)
        with self._lock:
            if self._request is None:
                self._request = self.compiled.create_infer_request()
            self._request.infer({0: batch}, share_inputs=True)
            return self._request.get_output_tensor(0).data.reshape(-1).copy()

    def async_queue(self, num_requests: int | None = None) -> AsyncClassifier:
        """An ``AsyncClassifier`` with ``num_requests`` requests (default: the device's optimal number)."""
        return AsyncClassifier(self, num_requests or self.optimal_num_requests)


def _copying_callback(results: queue.Queue):
    """An AsyncInferQueue callback that copies the logits into an ``InferResult`` on ``results``."""

    def on_done(request: ov.InferRequest, userdata) -> None:
        tag, started_ns, _clip = userdata  # _clip: keeps the shared input alive until here
        try:
            logits = request.get_output_tensor(0).data.reshape(-1).copy()  # requests are reused: copy
            result = InferResult(tag, logits, float(request.latency))  # the request's own time, no queueing
        except Exception as error:  # never let an exception escape into OpenVINO's thread
            result = InferResult(tag, np.empty(0, np.float32), (time.perf_counter_ns() - started_ns) / 1e6,
                                 error=f"{type(error).__name__}: {error}")
        results.put(result)

    return on_done


class AsyncClassifier:
    """``ov.AsyncInferQueue`` whose callback copies each request's logits into an ``InferResult`` on a queue."""

    def __init__(self, classifier: Classifier, num_requests: int):
        self.classifier = classifier
        self.num_requests = int(num_requests)
        self._queue = ov.AsyncInferQueue(classifier.compiled, self.num_requests)
        self._results: queue.Queue[InferResult] = queue.Queue()
        self._pending = 0
        self._count_lock = threading.Lock()
        # A closure over the results queue only: a bound method would make a reference cycle through
        # the C++ AsyncInferQueue that the garbage collector cannot see, leaking the compiled model.
        self._queue.set_callback(_copying_callback(self._results))

    def submit(self, clip_view: np.ndarray, tag) -> None:
        """Start inference on ``clip_view`` (T,C,H,W or batched), shared not copied: keep it unchanged until
        its result arrives. Blocks only while every request is busy."""
        batch = self.classifier.as_input(clip_view)
        with self._count_lock:
            self._pending += 1
        try:
            self._queue.start_async({0: batch}, (tag, time.perf_counter_ns(), batch), share_inputs=True)
        except Exception:
            with self._count_lock:
                self._pending -= 1
            raise

    def has_idle(self) -> bool:
        """True if a request is free, so ``submit`` would not block."""
        return self._queue.is_ready()

    def get(self, timeout: float | None = None) -> InferResult:
        """The next completed result (completion order); ``queue.Empty`` after ``timeout`` seconds."""
        result = self._results.get(timeout=timeout)
        with self._count_lock:
            self._pending -= 1
        return result

    def pending(self) -> int:
        """Submitted and not yet fetched with ``get``."""
        with self._count_lock:
            return self._pending

    def wait_all(self) -> None:
        """Block until every submitted request has finished (results stay on the queue)."""
        self._queue.wait_all()
