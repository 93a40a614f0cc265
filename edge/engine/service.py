"""The service: every camera's lane, one compiled model behind one scheduler, and the side systems.

``Service(config, mode).run()`` does, in order: check every output can be
written → open every camera's source (a bad one fails `run` of a single camera
at once; otherwise that camera goes ``offline`` and the others carry on) →
load and compile the model once → start the lanes → keep house on the calling
thread (watchdog, deadlines of live checks, the terminal) until the files end
(``run``) or a signal arrives (``serve``) → stop the lanes, which finish their
in-flight clips → close every sink → write each camera's summary.

Events from every lane (``edge.events``) go through ``emit``, which stamps them
with the run's id (the one place it is set): to that camera's own sinks
(events.jsonl, subtitles), to the side systems subscribed with ``subscribe``
(MQTT, Prometheus, the web page), and into a short history for ``/api/events``.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from edge.config import sample_clip_path
from edge.engine.frames import FrameHub
from edge.engine.lane import ONLINE, Lane, needs_pictures
from edge.engine.scheduler import Scheduler
from edge.engine.signals import StopFlag
from edge.engine.summary import ModelSummary
from edge.engine.terminal import Terminal
from edge.records import Prediction
from edge.events import Event
from edge.sinks import EventWriter, Sink, SubtitleSink, VideoSink, WindowSink, check_writable, write_summary
from edge.sources import DecodeOptions, ReconnectPolicy, SourceError, open_source
from edge.systemd import Watchdog, notify

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CAMERA_FAILED = 3  # a camera could not be opened or its stream was lost; what was produced is kept
UNTRAINED_WARNING = "untrained demo model: its labels are meaningless (fetch the real one: edge-har model fetch)"
RECENT_EVENTS = 500
HOUSEKEEPING_S = 0.5


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
                 keep_predictions: bool = False) -> None:
        if mode not in ("run", "serve"):
            raise ValueError(f"mode must be 'run' or 'serve', got {mode!r}")
        self.config = config
        self.mode = mode
        self.stop = stop or StopFlag()
        self.keep_predictions = keep_predictions
        self.run_id = uuid.uuid4().hex[:12]
        self.lanes: dict[str, Lane] = {}
        self.hubs: dict[str, FrameHub] = {}
        self._sinks: list[Sink] = []
        self._camera_sinks: dict[str, list[Sink]] = {}
        self._recent: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self._lock = threading.Lock()
        self.classifier = None
        self.scheduler: Scheduler | None = None
        self.checks = None
        self.ready = False
        self.registry = _new_registry()
        self._http = None
        self._prometheus = None

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
        if event.kind in ("activity", "check", "gap"):
            with self._lock:
                self._recent.append(event)
        for sink in (*self._camera_sinks.get(event.camera, ()), *self._sinks):
            try:
                sink.handle(event)
            except Exception as error:  # one broken side system must not stop a camera
                log.error("%s: %s failed on a %s event: %s", event.camera, type(sink).__name__, event.kind, error)
        return event

    def status(self) -> dict:
        """The service for /api/status, the page and the metrics (any thread)."""
        cameras = {name: lane.status() for name, lane in self.lanes.items()}
        model = {}
        if self.classifier is not None:
            info = self.classifier.info
            model = {"name": self.model_name, "untrained": info.untrained, "device": self.classifier.device,
                     "precision": self.classifier.precision,
                     "num_requests": self.scheduler.num_requests if self.scheduler else None}
        ready = self.ready and any(camera["state"] == ONLINE for camera in cameras.values())
        return {"run_id": self.run_id, "mode": self.mode, "ready": ready, "model": model, "cameras": cameras}

    def recent_events(self, limit: int) -> list[dict]:
        """The latest activity, check and gap events (their events.jsonl objects), newest last."""
        with self._lock:
            recent = list(self._recent)[-max(0, int(limit)):] if limit > 0 else []
        return [event.to_json_dict() for event in recent]

    def frames(self, camera: str) -> FrameHub | None:
        return self.hubs.get(camera)

    @property
    def model_name(self) -> str:
        info = self.classifier.info
        return Path(info.path).stem if info.path else info.source

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> RunResult:
        cameras = self.config.cameras
        self._check_outputs()
        sources, failures = self._open_sources()
        try:
            self._prepare_model(len(cameras))
            self._start_side_systems()
            self._build_lanes(sources, failures)
            if self.classifier.info.untrained:
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
            for path in (output.video, output.events, output.summary, getattr(output, "subtitles", None)):
                if path:
                    check_writable(path, input_path=camera.source)

    def _open_sources(self):
        """Open every camera's source first: a mistyped one is reported before the slow compile."""
        sources, failures = {}, {}
        single = len(self.config.cameras) == 1 and self.mode == "run"
        for name, camera in self.config.cameras.items():
            try:
                sources[name] = _open_camera(camera, want_image=needs_pictures(camera))
            except SourceError as error:
                if single:
                    raise
                failures[name] = str(error)
                log.error("%s: %s", name, error)
        return sources, failures

    def _http_enabled(self) -> bool:
        http = getattr(self.config, "http", None)
        if http is None:
            return False
        enabled = str(http.enabled).lower()
        return enabled == "true" or (enabled == "auto" and self.mode == "serve")

    def _prepare_model(self, camera_count: int) -> None:
        from edge.config import check_activity_labels
        from edge.models import default_model_path, load_model
        from edge.runtime import compile_model

        config = self.config
        model, info = load_model(config.model.path or default_model_path(), labels_path=config.model.labels)
        for camera in config.cameras.values():
            _check_model_matches(camera, info)
        check_activity_labels(config, info.labels)
        inference = config.inference
        hint = inference.performance_hint
        if hint == "auto":  # one camera: the lowest latency; several: the most clips per second
            hint = "latency" if camera_count == 1 else "throughput"
        self.performance_hint = hint
        self.classifier = compile_model(model, info, device=inference.device, precision=inference.precision,
                                        performance_hint=hint, num_requests=inference.num_requests,
                                        cache_dir=inference.cache_dir)
        requests = inference.num_requests or self.classifier.optimal_num_requests
        self.scheduler = Scheduler(self.classifier, max(1, requests), on_inferred=self._on_inferred)
        if config.rules or any(camera.activities for camera in config.cameras.values()):
            from edge.checks import CheckEngine
            from edge.config import ConfigError

            time_bases = {name: ("wall" if camera.live else "media") for name, camera in config.cameras.items()}
            try:
                self.checks = CheckEngine(config.rules, time_bases)
            except ValueError as error:
                raise ConfigError(f"rules: {error}") from None

    def _on_inferred(self, lane: str, infer_s: float, queue_wait_s: float) -> None:
        observe = getattr(self._prometheus, "observe_queue_wait", None)
        if observe is not None:
            observe(lane, queue_wait_s)

    def _start_side_systems(self) -> None:
        """Prometheus metrics always (the registry is the service's own); MQTT and HTTP when configured."""
        try:
            from edge.sinks.prometheus import PrometheusSink
        except ImportError:
            PrometheusSink = None
        if PrometheusSink is not None:
            self._prometheus = PrometheusSink(self.registry, service=self)
            self.subscribe(self._prometheus)
        mqtt = getattr(self.config, "mqtt", None)
        if mqtt is not None and mqtt.host:
            from edge.sinks.mqtt import MqttSink

            self.subscribe(MqttSink.from_config(self.config, model=self.model_name))
        if self._http_enabled():
            from edge.web.app import serve_http

            http = self.config.http
            for name in self.config.cameras:
                self.hubs[name] = FrameHub()
            self._http = serve_http(self, http.host, http.port, http.token)

    def _build_lanes(self, sources: dict, failures: dict) -> None:
        max_in_flight = self.scheduler.num_requests + 1  # every request, plus the clip waiting for one
        for name, camera in self.config.cameras.items():
            source = sources.get(name)
            own_sinks = self._camera_sinks.setdefault(name, [])
            video = window = None
            if source is not None:
                output = camera.output
                if output.events:
                    own_sinks.append(EventWriter(output.events, overwrite=output.overwrite))
                subtitles = getattr(output, "subtitles", None)
                if subtitles:
                    own_sinks.append(SubtitleSink(subtitles, camera=name))
                if output.video:
                    video = _open_video(camera, source)
                if output.display:
                    window = WindowSink(f"edge-har: {name}")
            self.lanes[name] = Lane(
                camera, source=source, info=self.classifier.info, scheduler=self.scheduler,
                max_in_flight=max_in_flight, emit=self.emit, run_id=self.run_id, model_name=self.model_name,
                sinks=own_sinks, video=video, window=window, hub=self.hubs.get(name), checks=self.checks,
                source_error=failures.get(name), keep_predictions=self.keep_predictions)

    def _keep_house(self) -> None:
        """Until the end: the watchdog, live deadlines, the terminal. Wakes on the stop flag or every 0.5 s."""
        terminal = Terminal(self, interactive=sys.stderr.isatty())
        watchdog_s = {name: float(getattr(lane.camera.reconnect, "watchdog_s", 0) or 0)
                      for name, lane in self.lanes.items()}
        told = None
        try:
            while not self.stop.event.is_set():
                if self.mode == "run" and all(lane.done for lane in self.lanes.values()):
                    break
                self._watch(watchdog_s)
                for lane in self.lanes.values():
                    lane.publish_state()  # a source reconnecting shows between two frames
                online = sum(lane.state == ONLINE for lane in self.lanes.values())
                status = f"STATUS={online} of {len(self.lanes)} cameras online"
                if status != told:  # `systemctl status` shows it
                    notify(status)
                    told = status
                terminal.update()
                self.stop.event.wait(HOUSEKEEPING_S)
        finally:
            terminal.close()

    def _progress(self) -> tuple[int, int, int]:
        """What the systemd watchdog checks moves: frames decoded, clips done, reconnection attempts
        (a box whose cameras are all down is still trying, not wedged)."""
        frames = clips = attempts = 0
        for lane in self.lanes.values():
            frames += lane.metrics.frames
            clips += lane.metrics.clips
            attempts += int(getattr(lane.source, "reconnect_attempts", 0) or 0)
        return frames, clips, attempts

    def _watch(self, watchdog_s: dict[str, float]) -> None:
        """Restart a live reader that produced no frame for ``reconnect.watchdog_s``."""
        for name, lane in self.lanes.items():
            limit = watchdog_s.get(name, 0)
            age = lane.last_frame_age_s()
            if lane.live and limit > 0 and lane.state == ONLINE and age is not None and age > limit:
                log.warning("%s: no frame for %.0f s; restarting the reader", name, age)
                lane.restart_source(f"watchdog: no frame for {age:.0f} s")

    def _shutdown(self, sources: dict) -> None:
        if self.scheduler is not None:
            self.scheduler.close()
        for source in sources.values():
            try:
                source.close()
            except Exception as error:
                log.warning("closing %s failed: %s", source.name, error)
        if self._http is not None:
            self._http.stop()
        for sink in self._sinks:
            try:
                sink.close()
            except Exception as error:
                log.warning("closing %s failed: %s", type(sink).__name__, error)

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
                write_summary(path, data)
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
            clips += lane.metrics.clips - lane.gated_clips
            for value in lane.metrics.samples("inference"):
                inference.add(value)
            for value in lane.metrics.samples("inference", wait=True):
                waits.add(value)
        info = self.classifier.info
        return ModelSummary(name=self.model_name, path=info.path, untrained=info.untrained,
                            device=self.classifier.device, precision=self.classifier.precision,
                            performance_hint=self.performance_hint, num_requests=self.scheduler.num_requests,
                            cameras=tuple(self.lanes), clips_inferred=clips, inference_ms=inference.stats(),
                            queue_wait_ms=waits.stats())


def _new_registry():
    try:
        from prometheus_client import CollectorRegistry
    except ImportError:  # the metrics endpoint needs prometheus-client; everything else works without it
        return None
    return CollectorRegistry()


def _open_camera(camera, want_image: bool):
    """The camera's source with its reconnection, timeouts and decoder options."""
    reconnect = camera.reconnect
    policy = ReconnectPolicy(reconnect.attempts, reconnect.delay_s, reconnect.max_delay_s)
    spec = camera.source if camera.source not in (None, "") else str(sample_clip_path())
    return open_source(spec, live=camera.live, reconnect=policy,
                       decode=DecodeOptions(hwaccel=camera.decode.hwaccel, threads=camera.decode.threads),
                       want_image=want_image, open_timeout_s=reconnect.open_timeout_s,
                       read_timeout_s=reconnect.read_timeout_s)


def _open_video(camera, source):
    """The annotated video sink: H.264, at most ``output.video_max_width`` wide, encoded off the lane."""
    return VideoSink(camera.output.video, source.fps, source.size, max_width=camera.output.video_max_width,
                     hwaccel=camera.decode.hwaccel, live=source.is_live)


def _check_model_matches(camera, info) -> None:
    from edge.config import ConfigError

    if camera.sampling.clip_len != info.clip_len:
        raise ConfigError(f"cameras.{camera.name}.sampling.clip_len is {camera.sampling.clip_len} but the model "
                          f"takes {info.clip_len}-frame clips")
    if camera.preprocess.size != info.size:
        raise ConfigError(f"cameras.{camera.name}.preprocess.size is {camera.preprocess.size} but the model takes "
                          f"{info.size}×{info.size} frames")


__all__ = ["EXIT_CAMERA_FAILED", "RunResult", "Service"]
