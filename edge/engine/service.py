"""The service: every camera's lane, one compiled model behind one scheduler, and the side systems.

``Service(config, mode).run()`` does, in order: check every output can be
written → open every camera's source (a bad one fails `run` of a single camera
at once; otherwise that camera goes ``offline`` and the others carry on) →
load and compile the model once → build the lanes (``edge.engine.build`` turns
the config into objects) → start them → keep house on the calling thread
(watchdog, the terminal) until the files end (``run``) or a signal arrives
(``serve``) → stop the lanes, which finish their in-flight clips → close every
sink → write each camera's summary. In ``serve`` a live camera never gives up:
after its quick reconnection attempts it stays ``offline`` and keeps trying.

Events from every lane (``edge.events``) go through ``emit``, which stamps them
with the run's id (the one place it is set): to that camera's own sinks
(events.jsonl, subtitles), to the side systems subscribed with ``subscribe``
(MQTT, Prometheus, the web page), and into a short history for ``/api/events``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from edge.engine import build
from edge.engine.frames import FrameHub
from edge.engine.lane import Lane
from edge.engine.signals import StopFlag
from edge.engine.summary import ModelSummary
from edge.engine.terminal import Terminal
from edge.events import Event
from edge.health import CameraState
from edge.records import Prediction
from edge.sinks import EventWriter, Sink, SinkError, check_writable, write_summary
from edge.systemd import Watchdog, notify

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CAMERA_FAILED = 3  # a camera could not be opened or its stream was lost; what was produced is kept
UNTRAINED_WARNING = "untrained demo model: its labels are meaningless (fetch the real one: edge-har model fetch)"
RECENT_EVENTS = 500
HOUSEKEEPING_S = 0.5
SINK_ERROR_EVERY_S = 60.0  # a sink failing on every event (a full disk) is reported once a minute, with a count


@dataclass
class RunResult:
    """What a run returns: each camera's summary (as written to summary.json), the exit status and,
    when asked for, each camera's predictions."""

    summaries: dict[str, dict]
    exit_code: int = 0
    camera_predictions: dict[str, list[Prediction]] = field(default_factory=dict)

    @property
    def summary(self) -> dict:
        """The first camera's summary (a single-camera run has only that one)."""
        return next(iter(self.summaries.values()))

    @property
    def predictions(self) -> list[Prediction]:
        """The first camera's predictions (a single-camera run has only that one)."""
        return next(iter(self.camera_predictions.values()), [])


class Service:
    """Runs the cameras of ``config`` on one model. ``mode``: ``"run"`` ends when every source has
    ended; ``"serve"`` runs until ``stop`` is set (SIGINT/SIGTERM)."""

    def __init__(self, config, *, mode: str = "run", stop: StopFlag | None = None,
                 keep_predictions: bool = False, features: bool = False) -> None:
        if mode not in ("run", "serve"):
            raise ValueError(f"mode must be 'run' or 'serve', got {mode!r}")
        self.config = config
        self.mode = mode
        self.stop = stop or StopFlag()
        self.keep_predictions = keep_predictions
        self.features = features  # the model also gives the pooled feature (``edge-har learn``): on each event
        self.run_id = uuid.uuid4().hex[:12]
        self.lanes: dict[str, Lane] = {}
        self.hubs: dict[str, FrameHub] = {}
        self._sinks: list[Sink] = []
        self._camera_sinks: dict[str, list[Sink]] = {}
        self._recent: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self._lock = threading.Lock()
        self.model: build.Model | None = None
        self.ready = False
        self.registry = _new_registry()
        self._http = None
        self._prometheus = None
        self._evidence = None
        # Live cameras' packet sources for clips (camera -> ``edge.evidence.record.Recorder``): the
        # recording side fills it before the lanes start; a live camera without one gets no clip.
        self.recorders: dict[str, object] = {}
        self.storage = None  # edge.evidence.storage.StorageGuard, once the lanes are built
        self._failing_sinks: dict[tuple, tuple] = {}  # (camera, id(sink)) -> (last reported, failures since)

    # -- what the side systems read ----------------------------------------------------------

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """The side systems subscribed to every camera (MQTT, Prometheus, ...)."""
        with self._lock:
            return tuple(self._sinks)

    def subscribe(self, sink: Sink) -> None:
        """``sink`` gets every event of every camera from now on."""
        with self._lock:
            self._sinks.append(sink)

    def emit(self, event: Event) -> Event:
        """Route one lane's event, stamped with the run's id: that camera's sinks, the side systems, the
        recent history. Returns the stamped event."""
        event = event.stamped(self.run_id)
        if event.kind == "check":
            lane = self.lanes.get(event.camera)
            if lane is not None:
                lane.note_check(event)
        if event.kind in ("activity", "check", "clip", "gap"):
            with self._lock:
                self._recent.append(event)
        for sink in (*self._camera_sinks.get(event.camera, ()), *self._sinks):
            try:
                sink.handle(event)
            except Exception as error:  # one broken side system must not stop a camera
                self._sink_failed(sink, event, error)
        return event

    def _sink_failed(self, sink: Sink, event: Event, error: Exception) -> None:
        """At most one ERROR line a minute per camera and sink (a full disk fails every event), with the count."""
        key = (event.camera, id(sink))
        now = time.monotonic()
        last, count = self._failing_sinks.get(key, (None, 0))
        if last is not None and now - last < SINK_ERROR_EVERY_S:
            self._failing_sinks[key] = (last, count + 1)
            return
        self._failing_sinks[key] = (now, 0)
        more = f" ({count} more failures since the last report)" if count else ""
        log.error("%s: %s failed on a %s event: %s%s", event.camera, type(sink).__name__, event.kind, error, more)

    def status(self) -> dict:
        """The service for /api/status, the page and the metrics (any thread)."""
        cameras = {name: lane.status() for name, lane in self.lanes.items()}
        for name, recorder in self.recorders.items():
            if name in cameras:
                cameras[name]["recorder"] = recorder.status()
        model = {}
        if self.model is not None:
            classifier = self.model.classifier
            model = {"name": self.model_name, "untrained": classifier.info.untrained, "device": classifier.device,
                     "precision": classifier.precision, "num_requests": self.model.scheduler.num_requests}
        for name, camera in cameras.items():
            writer = self._events_writer(name)
            if writer is not None:
                camera["events"] = writer.status()
        ready = self.ready and any(camera["state"] == CameraState.ONLINE for camera in cameras.values())
        storage = self.storage.status() if self.storage is not None else {}
        storage["disk_full"] = any(camera.get("events", {}).get("disk_full") for camera in cameras.values())
        return {"run_id": self.run_id, "mode": self.mode, "ready": ready, "model": model, "cameras": cameras,
                "storage": storage}

    def _events_writer(self, camera: str) -> EventWriter | None:
        lane = self.lanes.get(camera)
        return next((sink for sink in lane.sinks if isinstance(sink, EventWriter)), None) if lane else None

    def recent_events(self, limit: int) -> list[dict]:
        """The latest activity, check and gap events (their events.jsonl objects), newest last."""
        with self._lock:
            recent = list(self._recent)[-max(0, int(limit)):] if limit > 0 else []
        return [event.to_json_dict() for event in recent]

    def frames(self, camera: str) -> FrameHub | None:
        return self.hubs.get(camera)

    @property
    def classifier(self):
        return self.model.classifier if self.model is not None else None

    @property
    def scheduler(self):
        return self.model.scheduler if self.model is not None else None

    @property
    def model_name(self) -> str:
        info = self.model.classifier.info
        return Path(info.path).stem if info.path else info.source

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> RunResult:
        self._check_outputs()
        sources, healths = build.open_sources(self.config, give_up=self.mode == "run",
                                              single_run=len(self.config.cameras) == 1 and self.mode == "run")
        try:
            from edge.evidence.record import build_recorders

            self.recorders = build_recorders(self.config, self.mode, sources)
            for recorder in self.recorders.values():
                recorder.start()
            self.model = build.compile_model(self.config, on_inferred=self._on_inferred, features=self.features)
            self._start_side_systems()
            for name, camera in self.config.cameras.items():
                self.lanes[name] = build.build_lane(
                    camera, source=sources.get(name), health=healths[name], model=self.model, emit=self.emit,
                    run_id=self.run_id, model_name=self.model_name, hub=self.hubs.get(name),
                    keep_predictions=self.keep_predictions, mode=self.mode)
                self._camera_sinks[name] = self.lanes[name].sinks
            self._start_evidence()
            self.storage = self._storage_guard()
            if self.model.classifier.info.untrained:
                log.warning(UNTRAINED_WARNING)
            for lane in self.lanes.values():
                self.stop.on_stop(lane.request_stop)
            if self._http is not None:
                self._http.start()  # a port in use is a one-line error before any camera starts
            self.ready = True
            for lane in self.lanes.values():
                lane.start()
            notify("READY=1")
            watchdog = Watchdog(self._progress).start()
            try:
                self._keep_house()
            finally:
                notify("STOPPING=1")
                watchdog.stop()
            for lane in self.lanes.values():
                lane.request_stop()
            for lane in self.lanes.values():
                lane.join()
        finally:
            self._shutdown(sources)
        return self._finish()

    def _check_outputs(self) -> None:
        """Fail before any work on an output that cannot be written or would overwrite an input."""
        for camera in self.config.cameras.values():
            output = camera.output
            for path in (output.video, output.events, output.summary, output.subtitles):
                if path:
                    check_writable(path, input_path=camera.source)
        if any(camera.clips != "none" for camera in self.config.cameras.values()):
            from edge.evidence.manager import check_evidence_dirs

            check_evidence_dirs(self.config)

    def _http_enabled(self) -> bool:
        enabled = self.config.http.enabled  # None: auto, on under serve
        return enabled if enabled is not None else self.mode == "serve"

    def _on_inferred(self, lane: str, infer_s: float, queue_wait_s: float) -> None:
        if self._prometheus is not None:
            self._prometheus.observe_queue_wait(lane, queue_wait_s)

    def _start_side_systems(self) -> None:
        """Prometheus metrics always (the registry is the service's own); MQTT and HTTP when configured."""
        try:
            from edge.sinks.prometheus import PrometheusSink
        except ImportError:
            PrometheusSink = None
        if PrometheusSink is not None:
            self._prometheus = PrometheusSink(self.registry, service=self)
            self.subscribe(self._prometheus)
        if self.config.mqtt.host:
            from edge.sinks.mqtt import MqttSink

            self.subscribe(MqttSink.from_config(self.config, model=self.model_name))
        if self._http_enabled():
            from edge.web.app import serve_http

            http = self.config.http
            for name in self.config.cameras:
                self.hubs[name] = FrameHub()
            self._http = serve_http(self, http.host, http.port, http.token)

    def _start_evidence(self) -> None:
        """Clips of checks and activities (``edge.evidence``) when a camera asks for them. A file camera's
        packets come from the file; a live camera's from ``self.recorders``. The lanes' own sinks
        (events.jsonl) then close after the evidence sink, so the last clip lines reach them."""
        if all(camera.clips == "none" for camera in self.config.cameras.values()):
            return
        from edge.config import sample_clip_path
        from edge.evidence.cut import FilePackets
        from edge.evidence.manager import EvidenceSink
        from edge.privacy import Masks

        sources = dict(self.recorders)
        for name, camera in self.config.cameras.items():
            if camera.kind == "file" and not camera.live:
                sources[name] = FilePackets(camera.source if camera.source is not None else sample_clip_path())
        masks = {name: Masks.of(camera) for name, camera in self.config.cameras.items()}
        self._evidence = EvidenceSink(self.config.cameras, sources, emit=self.emit, masks=masks, run_id=self.run_id)
        self.subscribe(self._evidence)
        for lane in self.lanes.values():
            lane.hold_sinks()

    def _keep_house(self) -> None:
        """Until the end: the watchdog, the terminal, systemd's status line, the storage guard (free space and
        retention of the evidence). Wakes on the stop flag or every 0.5 s."""
        terminal = Terminal(self, interactive=sys.stderr.isatty())
        watchdog_s = {name: float(lane.camera.reconnect.watchdog_s or 0) for name, lane in self.lanes.items()}
        told = None
        try:
            while not self.stop.event.is_set():
                if self.mode == "run" and all(lane.done for lane in self.lanes.values()):
                    break
                self._watch(watchdog_s)
                online = sum(lane.state is CameraState.ONLINE for lane in self.lanes.values())
                status = f"STATUS={online} of {len(self.lanes)} cameras online"
                if status != told:  # `systemctl status` shows it
                    notify(status)
                    told = status
                terminal.update()
                self._guard_storage()
                self.stop.event.wait(HOUSEKEEPING_S)
        finally:
            terminal.close()

    def _storage_guard(self):
        from edge.evidence.storage import StorageGuard

        events = [Path(camera.output.events).parent for camera in self.config.cameras.values() if camera.output.events]
        return StorageGuard.from_config(self.config, watch=events)

    def _guard_storage(self) -> None:
        """Free space and retention of the evidence (the guard paces itself: a look every few seconds)."""
        try:
            self.storage.maybe_run()
        except Exception as error:  # the guard must never stop the service
            log.error("storage guard failed: %s", error)

    def _progress(self) -> tuple[int, int, int]:
        """What the systemd watchdog checks moves: frames decoded, clips done, reconnection attempts
        (a box whose cameras are all down is still trying, not wedged)."""
        frames = clips = attempts = 0
        for lane in self.lanes.values():
            frames += lane.metrics.frames
            clips += lane.metrics.clips
            attempts += lane.health.reconnect_attempts
        return frames, clips, attempts

    def _watch(self, watchdog_s: dict[str, float]) -> None:
        """Restart a live reader that produced no frame for ``reconnect.watchdog_s``."""
        for name, lane in self.lanes.items():
            limit = watchdog_s.get(name, 0)
            age = lane.health.last_frame_age_s()
            if lane.live and limit > 0 and lane.state is CameraState.ONLINE and age is not None and age > limit:
                log.warning("%s: no frame for %.0f s; restarting the reader", name, age)
                lane.restart_source(f"watchdog: no frame for {age:.0f} s")

    def _shutdown(self, sources: dict) -> None:
        if self.model is not None:
            self.model.scheduler.close()
        for source in sources.values():
            try:
                source.close()
            except Exception as error:
                log.warning("closing %s failed: %s", source.name, error)
        if self._http is not None:
            self._http.stop()
        if self._evidence is not None:  # first: its last clip events go to the sinks below
            try:
                self._evidence.close()  # cuts what is pending from the recorders, so they close after it
            except Exception as error:
                log.warning("closing the evidence failed: %s", error)
        for recorder in self.recorders.values():
            recorder.close()
        for sink in self._sinks:
            if sink is self._evidence:
                continue
            try:
                sink.close()
            except Exception as error:
                log.warning("closing %s failed: %s", type(sink).__name__, error)
        if self._evidence is not None:
            for lane in self.lanes.values():
                lane.close_sinks()

    def _finish(self) -> RunResult:
        interrupted_by = self.stop.signal_name
        camera_summaries = {name: lane.summary(interrupted_by) for name, lane in self.lanes.items()}
        model = self._model_summary()
        summaries = {}
        for name, summary in camera_summaries.items():
            data = summary.to_dict(model)
            summaries[name] = data
            path = self.config.cameras[name].output.summary
            if path:
                try:
                    write_summary(path, data)
                except SinkError as error:  # e.g. a full disk: the run's other outputs and exit code stand
                    log.error("%s: %s", name, error)
                    if isinstance(data.get("outputs"), dict):
                        data["outputs"]["summary"] = None
        failed = any(summary.failed for summary in camera_summaries.values())
        if self.mode == "run" and self.stop.signum:
            exit_code = 128 + self.stop.signum
        else:  # a lost camera is a failure a supervisor (systemd Restart=on-failure) must see
            exit_code = EXIT_CAMERA_FAILED if failed else EXIT_OK
        Terminal.print_summaries(summaries, camera_summaries)
        predictions = {name: lane.predictions for name, lane in self.lanes.items() if lane.predictions is not None}
        return RunResult(summaries, exit_code, predictions)

    def _model_summary(self) -> ModelSummary:
        from edge.metrics import SampleRing

        inference, waits = SampleRing(), SampleRing()
        clips = 0
        for lane in self.lanes.values():
            clips += lane.metrics.clips - lane.reporter.gated_clips
            for value in lane.metrics.samples("inference"):
                inference.add(value)
            for value in lane.metrics.samples("inference", wait=True):
                waits.add(value)
        classifier = self.model.classifier
        info = classifier.info
        return ModelSummary(name=self.model_name, path=info.path, untrained=info.untrained,
                            device=classifier.device, precision=classifier.precision,
                            performance_hint=self.model.performance_hint,
                            num_requests=self.model.scheduler.num_requests,
                            cameras=tuple(self.lanes), clips_inferred=clips, inference_ms=inference.stats(),
                            queue_wait_ms=waits.stats())


def _new_registry():
    try:
        from prometheus_client import CollectorRegistry
    except ImportError:  # the metrics endpoint needs prometheus-client; everything else works without it
        return None
    return CollectorRegistry()


__all__ = ["EXIT_CAMERA_FAILED", "RunResult", "Service"]
