"""Compile a loaded clip model with OpenVINO and run it, synchronously or through an async queue.

The clip ring hands out float32 T×C×H×W views; ``view[None]`` (1×T×C×H×W) is
fed as is. ``compile_model`` tells OpenVINO (PrePostProcessor) that the tensor
layout is NTCHW and the model layout NCTHW, so the transpose happens inside
the compiled graph and no copy is made in Python. Loading lives in
``edge.models.loading``.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import openvino as ov
from openvino.preprocess import PrePostProcessor

from edge.models.errors import ModelError, openvino_reason
from edge.models.loading import ModelInfo, core


@dataclass(frozen=True)
class InferResult:
    """One finished async request: the submitter's tag, a private copy of the logits (num_classes,), and of
    the model's other outputs (``ModelInfo.outputs[1:]``: a grafted head, the pooled feature)."""

    tag: object
    logits: np.ndarray
    infer_ms: float
    error: str | None = None
    extra: tuple[np.ndarray, ...] = ()


_PRECISIONS = {"f32": ov.Type.f32, "bf16": ov.Type.bf16, "f16": ov.Type.f16}
_HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT", "cumulative_throughput": "CUMULATIVE_THROUGHPUT"}


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
        raise ModelError(f"cannot compile {info.path} for device {device!r}: {openvino_reason(error)}") from None
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
        return self.infer_outputs(clip)[0]

    def infer_outputs(self, clip: np.ndarray) -> tuple[np.ndarray, ...]:
        """Every output (flat float32 copies) for one clip, in ``info.outputs`` order."""
        batch = self.as_input(clip)
        with self._lock:
            if self._request is None:
                self._request = self.compiled.create_infer_request()
            self._request.infer({0: batch}, share_inputs=True)
            return output_copies(self._request)

    def async_queue(self, num_requests: int | None = None) -> AsyncClassifier:
        """An ``AsyncClassifier`` with ``num_requests`` requests (default: the device's optimal number)."""
        return AsyncClassifier(self, num_requests or self.optimal_num_requests)


def output_copies(request: ov.InferRequest) -> tuple[np.ndarray, ...]:
    """Flat float32 copies of every output of a finished request (requests are reused: copy)."""
    count = len(request.model_outputs)
    return tuple(np.array(request.get_output_tensor(i).data, dtype=np.float32).reshape(-1) for i in range(count))


def copying_callback(deliver: Callable[[InferResult], None]):
    """An AsyncInferQueue callback that copies the logits into an ``InferResult`` and hands it to ``deliver``.

    The userdata of each ``start_async`` must be ``(tag, started_ns, batch)``; ``batch`` keeps the shared
    input alive until here. ``deliver`` runs on OpenVINO's thread: it must be quick and must not hold a
    reference back to the AsyncInferQueue (a cycle through C++ that the garbage collector cannot see).
    """

    def on_done(request: ov.InferRequest, userdata) -> None:
        tag, started_ns, _clip = userdata
        try:
            outputs = output_copies(request)
            result = InferResult(tag, outputs[0], float(request.latency), extra=outputs[1:])  # the request's own time
        except Exception as error:  # never let an exception escape into OpenVINO's thread
            result = InferResult(tag, np.empty(0, np.float32), (time.perf_counter_ns() - started_ns) / 1e6,
                                 error=f"{type(error).__name__}: {error}")
        deliver(result)

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
        self._queue.set_callback(copying_callback(self._results.put))

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
