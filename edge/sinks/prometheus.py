"""Prometheus metrics for the service, on a registry the service owns.

Two halves, one registry:

- ``PrometheusSink`` is a sink of the event stream: each prediction counts a
  clip (and a gated clip when the still-scene gate skipped inference) and
  observes its inference time; each check counts a judgement; each stream gap
  counts a reconnect. The scheduler reports queue waits with
  ``observe_queue_wait``.
- A collector reads ``status()`` at scrape time for what is a state, not an
  event: whether each camera is up, its fps, the clips it skipped, the
  build information, and the disk (``status()["storage"]`` from
  ``edge.evidence.storage``, each camera's ``events`` writer).

Names follow the Prometheus naming guide (base units, ``_total`` counters)::

    edgehar_camera_up{camera}                 1 while the camera is online
    edgehar_camera_fps{camera}                frames per second read now
    edgehar_clips_total{camera}               clips judged (inferred or gated)
    edgehar_gated_clips_total{camera}         clips the still-scene gate did not infer
    edgehar_skipped_clips_total{camera}       clips dropped because every request was busy
    edgehar_reconnects_total{camera}          stream gaps (each one a reconnect)
    edgehar_inference_seconds{camera}         histogram of inference time per clip
    edgehar_queue_wait_seconds{camera}        histogram of a clip's wait for a free request
    edgehar_checks_total{camera,rule,passed}  rule judgements, passed = true|false|null
    edgehar_build_info{version,model,device,precision}   always 1
    edgehar_events_not_written_total{camera}  events lines lost to a full (or failing) disk
    edgehar_disk_full{camera}                 1 while the camera's events file cannot be written
    edgehar_disk_free_bytes{mount}            free bytes on each filesystem of the evidence and events
    edgehar_evidence_deleted_total{kind}      recordings and clips deleted (age or space), kind = recording|clip

Label values are bounded: cameras and rules come from the config, and a
label set outside what was declared (or beyond ``MAX_LABEL_VALUES`` when
nothing was declared) is counted under ``other``.
"""

from __future__ import annotations

import math
import threading
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

import edge
from edge.events import Event

PREFIX = "edgehar"
MAX_LABEL_VALUES = 64
OTHER = "other"
# Seconds. Inference of a 16-frame clip on a CPU is tens to hundreds of ms; a GPU/NPU is faster.
INFERENCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
QUEUE_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PASSED_VALUES = {True: "true", False: "false", None: "null"}


class _BoundedLabel:
    """Keeps a label's values to a declared set, or to the first ``limit`` seen; the rest become ``other``."""

    def __init__(self, declared: Iterable[str] = (), limit: int = MAX_LABEL_VALUES) -> None:
        self._declared = frozenset(str(value) for value in declared)
        self._seen: set[str] = set()
        self._limit = limit
        self._lock = threading.Lock()

    def __call__(self, value) -> str:
        value = str(value)
        if self._declared:
            return value if value in self._declared else OTHER
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return OTHER


class PrometheusSink:
    """Turns events into counters and histograms on ``registry`` (never the global registry).

    ``service``: the Service; its ``status`` is read at scrape time and its
    ``config`` (when it has one) names the cameras and rules. Or give them
    apart: ``status``, the service's ``status()``, read at scrape time for
    ``edgehar_camera_up``, ``edgehar_camera_fps``, ``edgehar_skipped_clips_total``
    and ``edgehar_build_info``; ``cameras`` / ``rules``, the configured names
    (every camera's counters start at 0, so a scrape lists each camera before
    its first clip; other names are counted as ``other``). Raises ``ValueError``
    (from prometheus_client) if the registry already holds these metrics.
    """

    def __init__(self, registry: CollectorRegistry, *, service=None, status: Callable[[], dict] | None = None,
                 cameras: Iterable[str] = (), rules: Iterable[str] = ()) -> None:
        if service is not None:
            status = status or service.status
            config = getattr(service, "config", None)
            cameras = cameras or list(getattr(config, "cameras", None) or ())
            rules = rules or [rule.name for rule in (getattr(config, "rules", None) or ())]
        cameras = [str(name) for name in cameras]
        self.registry = registry
        self._camera = _BoundedLabel(cameras)
        self._rule = _BoundedLabel(rules)
        self.clips = Counter(f"{PREFIX}_clips", "Clips judged (inferred or gated), per camera.",
                             ["camera"], registry=registry)
        self.gated_clips = Counter(f"{PREFIX}_gated_clips", "Clips the still-scene gate did not infer.",
                                   ["camera"], registry=registry)
        self.reconnects = Counter(f"{PREFIX}_reconnects", "Stream gaps; each one is a reconnect.",
                                  ["camera"], registry=registry)
        self.checks = Counter(f"{PREFIX}_checks", "Rule judgements; passed is true, false or null "
                              "(a deadline still pending when a file ended).",
                              ["camera", "rule", "passed"], registry=registry)
        self.inference_seconds = Histogram(f"{PREFIX}_inference_seconds", "Inference time of one clip.",
                                           ["camera"], buckets=INFERENCE_BUCKETS, registry=registry)
        self.queue_wait_seconds = Histogram(f"{PREFIX}_queue_wait_seconds",
                                            "Time a ready clip waited for a free inference request.",
                                            ["camera"], buckets=QUEUE_WAIT_BUCKETS, registry=registry)
        for camera in cameras:
            for metric in (self.clips, self.gated_clips, self.reconnects, self.inference_seconds,
                           self.queue_wait_seconds):
                metric.labels(camera=camera)
        self.collector = None
        if status is not None:
            self.collector = StatusCollector(status, camera_label=self._camera)
            registry.register(self.collector)

    def handle(self, event: Event) -> None:
        """Count one event; O(1), never blocks beyond prometheus_client's own lock."""
        camera = self._camera(event.camera)
        if event.kind == "prediction":
            self.clips.labels(camera=camera).inc()
            if event.gated:
                self.gated_clips.labels(camera=camera).inc()
                return
            infer_ms = event.latency_ms.infer
            if isinstance(infer_ms, (int, float)) and math.isfinite(infer_ms) and infer_ms >= 0:
                self.inference_seconds.labels(camera=camera).observe(infer_ms / 1000.0)
        elif event.kind == "check":
            passed = PASSED_VALUES.get(event.passed, "null")
            self.checks.labels(camera=camera, rule=self._rule(event.rule), passed=passed).inc()
        elif event.kind == "gap":
            self.reconnects.labels(camera=camera).inc()

    def observe_queue_wait(self, camera: str, seconds: float) -> None:
        """The scheduler's measure of how long ``camera``'s clip waited for a free inference request."""
        if math.isfinite(seconds) and seconds >= 0:
            self.queue_wait_seconds.labels(camera=self._camera(camera)).observe(seconds)

    def close(self) -> None:
        """Nothing to flush: the registry lives as long as the service."""


def _number(value, default: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return float(value)


class StatusCollector:
    """Reads the service's ``status()`` at scrape time: camera up/fps, skipped clips, build info."""

    def __init__(self, status: Callable[[], dict], *, camera_label: Callable[[str], str] = str) -> None:
        self._status = status
        self._camera = camera_label

    def _families(self):
        return (
            GaugeMetricFamily(f"{PREFIX}_camera_up", "1 while the camera is online, else 0.", labels=["camera"]),
            GaugeMetricFamily(f"{PREFIX}_camera_fps", "Frames per second the camera delivers now.",
                              labels=["camera"]),
            CounterMetricFamily(f"{PREFIX}_skipped_clips", "Clips a live camera dropped because every "
                                "inference request was busy.", labels=["camera"]),
            GaugeMetricFamily(f"{PREFIX}_build_info", "edge-har version and the compiled model; always 1.",
                              labels=["version", "model", "device", "precision"]),
            CounterMetricFamily(f"{PREFIX}_events_not_written", "Events lines that could not be written "
                                "(a full or failing disk).", labels=["camera"]),
            GaugeMetricFamily(f"{PREFIX}_disk_full", "1 while the camera's events file cannot be written "
                              "because the disk is full.", labels=["camera"]),
            GaugeMetricFamily(f"{PREFIX}_disk_free_bytes", "Free bytes on the filesystem of the evidence and "
                              "events folders.", labels=["mount"]),
            CounterMetricFamily(f"{PREFIX}_evidence_deleted", "Recordings and clips deleted for their age or "
                                "for space.", labels=["kind"]),
        )

    def describe(self):
        return list(self._families())

    def collect(self):
        up, fps, skipped, build, not_written, disk_full, free, deleted = families = self._families()
        status = self._status() or {}
        cameras = status.get("cameras") or {}
        for name, camera in cameras.items():
            label = [self._camera(name)]
            up.add_metric(label, 1.0 if camera.get("state") == "online" else 0.0)
            fps.add_metric(label, _number(camera.get("fps")))
            skipped.add_metric(label, _number(camera.get("skipped_clips")))
            events = camera.get("events")
            if isinstance(events, dict):
                not_written.add_metric(label, _number(events.get("lines_not_written")))
                disk_full.add_metric(label, 1.0 if events.get("disk_full") else 0.0)
        model = status.get("model") or {}
        build.add_metric([edge.__version__, str(model.get("name") or ""), str(model.get("device") or ""),
                          str(model.get("precision") or "")], 1.0)
        storage = status.get("storage") or {}
        for mount, value in (storage.get("free_bytes") or {}).items():
            free.add_metric([str(mount)], _number(value))
        for kind, value in (storage.get("deleted") or {}).items():
            deleted.add_metric([str(kind)], _number(value))
        return list(families)
