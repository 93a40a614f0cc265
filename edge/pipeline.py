"""Wires the stages: source → sampler → ClipRing → OpenVINO (async) → postprocess → overlay → sinks.

``run(config)`` is the whole main job. Decoding and preprocessing happen on
this thread while OpenVINO infers earlier clips on its own threads; results
come back through the async queue, are put back in submission order, turned
into predictions and written. A file loses no clip (the ring applies
backpressure); a live source keeps only the freshest clip when every infer
request is busy, and counts the clips it skipped.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from edge.config import Config
from edge.metrics import Metrics
from edge.overlay import draw_overlay, overlay_state
from edge.postprocess import ClipOrder, Postprocessor
from edge.preprocess import IMPLEMENTATION, ClipRing
from edge.records import Frame, Prediction, StageLatency
from edge.sampling import ClipSampler, PlannedClip
from edge.sinks import EventWriter, VideoSink, WindowSink, check_writable, format_summary, write_summary
from edge.sources import ReconnectPolicy, SourceError, open_source

log = logging.getLogger("edge.pipeline")

EXIT_SOURCE_LOST = 3  # the stream dropped and every reconnection attempt failed; what was produced is kept
UNTRAINED_WARNING = "untrained demo model: its labels are meaningless (fetch the real one: edge-har model fetch)"


def sample_clip_path() -> Path:
    """The short clip that ships with the package, used when no source is configured."""
    return Path(str(resources.files("edge") / "data" / "sample.mp4"))


@dataclass
class RunResult:
    """What ``run`` returns: the summary (as written to summary.json) and the process exit code."""

    summary: dict
    exit_code: int = 0
    predictions: list[Prediction] = field(default_factory=list)


@dataclass
class _InFlight:
    planned: PlannedClip
    lease: object
    submit_no: int
    preprocess_ms: float
    newest_frame_ns: int


class _StopFlag:
    """Set by SIGINT/SIGTERM: the first signal stops reading, a second one exits at once."""

    def __init__(self):
        self.event = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        self._on_stop = []

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def on_stop(self, callback) -> None:
        self._on_stop.append(callback)

    def _handle(self, signum, _frame) -> None:
        if self.event.is_set():
            os._exit(128 + signum)
        self.signum = signum
        self.event.set()
        sys.stderr.write(f"\nedge-har: {signal.Signals(signum).name}: finishing in-flight clips (again to quit now)\n")
        for callback in self._on_stop:
            callback()


def _resolve_source(config: Config):
    if config.source is None or config.source == "":
        return str(sample_clip_path())
    return config.source


def _check_outputs(config: Config, source_spec) -> None:
    """Fail before any work on an output that cannot be written or that would overwrite the input."""
    for path in (config.output.video, config.output.events, config.output.summary):
        if path:
            check_writable(path, input_path=source_spec)  # cameras and URLs are never an output


class _Run:
    def __init__(self, config: Config, stop: _StopFlag):
        self.config = config
        self.stop = stop
        self.source_spec = _resolve_source(config)
        _check_outputs(config, self.source_spec)
        sampling = config.sampling
        self.sampler = ClipSampler(sampling.mode, sampling.clip_len, sampling.frame_step, sampling.stride)
        self.predictions: list[Prediction] = []
        self.keep_predictions = False
        self.latest: Prediction | None = None
        self.waiting_frames: deque[Frame] = deque()
        self.in_flight: dict[int, _InFlight] = {}
        self.order = ClipOrder()  # results back in submission order, so smoothing sees clips in order
        self.next_submit = 0
        self.preprocess_since_clip_ms = 0.0
        self.warnings: list[str] = []
        self.events = self.video = self.window = None
        self.source = None
        self._gaps_written = 0

    def _prepare_model(self) -> None:
        """Load and compile the model, then size the clip ring for the requests it will keep in flight."""
        from edge.models import default_model_path
        from edge.runtime import compile_model, load_model

        config = self.config
        model_path = config.model.path or default_model_path()
        model, self.info = load_model(model_path, labels_path=config.model.labels)
        self._check_model_matches(config)
        self.classifier = compile_model(
            model,
            self.info,
            device=config.inference.device,
            precision=config.inference.precision,
            performance_hint=config.inference.performance_hint,
            num_requests=config.inference.num_requests,
            cache_dir=config.inference.cache_dir,
        )
        self.requests = self.classifier.async_queue(config.inference.num_requests)
        self.ring = ClipRing(
            clip_len=config.sampling.clip_len,
            size=config.preprocess.size,
            capacity=self.sampler.ring_capacity(self.requests.num_requests),
            mean=tuple(config.preprocess.mean),
            interpolation=config.preprocess.interpolation,
        )
        self.postprocessor = Postprocessor(
            list(self.info.labels),
            top_k=config.postprocess.top_k,
            smoothing=config.postprocess.smoothing,
            threshold=config.postprocess.threshold,
        )

    def _check_model_matches(self, config: Config) -> None:
        from edge.config import ConfigError

        if config.sampling.clip_len != self.info.clip_len:
            raise ConfigError(
                f"sampling.clip_len is {config.sampling.clip_len} but the model takes {self.info.clip_len}-frame clips"
            )
        if config.preprocess.size != self.info.size:
            raise ConfigError(f"preprocess.size is {config.preprocess.size} but the model takes {self.info.size}×{self.info.size} frames")

    # -- sinks ---------------------------------------------------------------------------------

    def _open_sinks(self) -> None:
        output = self.config.output
        if output.events:
            self.events = EventWriter(
                output.events,
                source_name=self.source.name,
                model_name=self.model_name,
                untrained=self.info.untrained,
                include_scores=output.include_scores,
                overwrite=output.overwrite,
            )
        if output.video:
            self.video = VideoSink(output.video, self.source.fps, self.source.size)
        if output.display:
            self.window = WindowSink("edge-har")

    @property
    def model_name(self) -> str:
        return Path(self.info.path).stem if self.info.path else self.info.source

    @property
    def wants_frames(self) -> bool:
        return self.video is not None or self.window is not None

    def _close_sinks(self) -> None:
        for sink in (self.video, self.window, self.events):
            if sink is not None:
                try:
                    sink.close()
                except Exception as error:  # finalising one sink must not lose the others
                    self._warn(f"closing {type(sink).__name__} failed: {error}")

    def _warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)

    # -- the loop ------------------------------------------------------------------------------

    def execute(self) -> RunResult:
        config = self.config
        live = None if config.reconnect.live == "auto" else config.live  # auto: open_source decides by the spec
        policy = ReconnectPolicy(config.reconnect.attempts, config.reconnect.delay_s, config.reconnect.max_delay_s)
        with open_source(self.source_spec, live=live, reconnect=policy) as source:
            self.source = source  # opened first: a mistyped source is reported before a slow compile
            self._prepare_model()
            self.metrics = Metrics()  # rates and elapsed time from here: model compilation excluded
            if self.info.untrained:  # once the source opened: a bad source is then the only line on stderr
                log.warning(UNTRAINED_WARNING)
            self.stop.on_stop(source.request_stop)
            self._open_sinks()
            try:
                self._loop(source)
                self._finish()
                self._write_new_gaps(source)  # a stream given up on ends with its last gap, after any frame
            finally:
                self._close_sinks()
            # The source logged these already (truncated file, fps fallback): keep them in the summary too.
            self.warnings.extend(source.warnings)
            if source.error:
                self._warn(source.error)
        summary = self._summary()
        if config.output.summary:
            write_summary(config.output.summary, summary)
        print(format_summary(summary), file=sys.stderr)
        if self.stop.signum:
            exit_code = 128 + self.stop.signum
        else:  # a live source given up on is a failure a supervisor (systemd Restart=on-failure) must see
            exit_code = EXIT_SOURCE_LOST if self.source.error else 0
        return RunResult(summary, exit_code, self.predictions)

    def _loop(self, source) -> None:
        progress = _Progress(source.frame_count, enabled=self._progress_enabled(source))
        next_status = time.monotonic() + self.config.output.log_every_s
        frames = iter(source)
        while not self.stop.event.is_set():
            t0 = time.perf_counter_ns()
            frame = next(frames, None)
            decoded_ns = time.perf_counter_ns()
            if frame is None:
                break
            self.metrics.record("decode", (decoded_ns - t0) / 1e6)
            self.metrics.count_frame(frame.time_s)
            self._write_new_gaps(source)
            if self.sampler.wants(frame.index):
                self._push(frame, decoded_ns, live=source.is_live)
            self._collect(block=False)
            if self.wants_frames:
                self.waiting_frames.append(frame)
                self._emit_frames(final=False)
            if self.window is not None and self.window.should_quit:
                log.info("window closed: stopping")
                break
            progress.update(frame.index + 1, self.metrics)
            if source.is_live and time.monotonic() >= next_status:
                log.info(self.metrics.status_line())
                next_status = time.monotonic() + self.config.output.log_every_s
        progress.close()

    def _progress_enabled(self, source) -> bool:
        setting = str(self.config.output.progress).lower()
        if setting == "auto":
            return not source.is_live and source.frame_count is not None and sys.stderr.isatty()
        return setting == "true"

    def _push(self, frame: Frame, decoded_ns: int, live: bool) -> None:
        while not self.ring.can_push():
            self._collect(block=True)  # backpressure: a held clip occupies the slot we need
        t0 = time.perf_counter_ns()
        seq = self.ring.push(frame.image)
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        self.metrics.record("preprocess", elapsed)
        self.preprocess_since_clip_ms += elapsed
        planned = self.sampler.add(seq, frame.index, frame.time_s)
        if planned is not None:
            self._submit(planned, decoded_ns, live)

    def _submit(self, planned: PlannedClip, newest_frame_ns: int, live: bool) -> None:
        if live and not self.requests.has_idle():
            self.metrics.count_skipped()  # keep latency flat: the next clip will be fresher
            self.preprocess_since_clip_ms = 0.0
            return
        lease = self.ring.acquire(planned.last_seq)
        flight = _InFlight(planned, lease, self.next_submit, self.preprocess_since_clip_ms, newest_frame_ns)
        self.preprocess_since_clip_ms = 0.0
        self.in_flight[flight.submit_no] = flight
        self.next_submit += 1
        self.requests.submit(lease.view, flight.submit_no)

    def _collect(self, block: bool) -> None:
        """Take finished requests (waiting for one if ``block``) and post them in submission order."""
        while self.requests.pending():
            try:
                result = self.requests.get(timeout=None if block else 0)
            except queue.Empty:
                return
            block = False
            flight = self.in_flight.pop(result.tag)
            self.ring.release(flight.lease)
            for ready_flight, ready_result in self.order.push(flight.submit_no, (flight, result)):
                self._post(ready_flight, ready_result)

    def _post(self, flight: _InFlight, result) -> None:
        if result.error:
            self._warn(f"inference failed for clip {flight.planned.clip.clip_index}: {result.error}")
            return
        t0 = time.perf_counter_ns()
        prediction = self.postprocessor(flight.planned.clip, result.logits)
        done_ns = time.perf_counter_ns()
        post_ms = (done_ns - t0) / 1e6
        end_to_end = (done_ns - flight.newest_frame_ns) / 1e6
        latency = StageLatency(flight.preprocess_ms, result.infer_ms, post_ms, end_to_end)
        prediction = replace(prediction, latency=latency)
        self.metrics.record("inference", result.infer_ms)
        self.metrics.record("postprocess", post_ms)
        self.metrics.record("frame_to_label", end_to_end)
        self.metrics.count_clip()
        if self.events is not None:
            self.events.write(prediction)
        self.latest = prediction
        if self.keep_predictions:
            self.predictions.append(prediction)

    def _emit_frames(self, final: bool) -> None:
        """Draw and write frames whose label is known (batch: their own clip's; rolling: the latest)."""
        rolling = self.sampler.mode == "rolling"
        while self.waiting_frames:
            frame = self.waiting_frames[0]
            if not (rolling or final) and (self.latest is None or frame.index > self.latest.clip.end_frame):
                return
            self.waiting_frames.popleft()
            t0 = time.perf_counter_ns()
            draw_overlay(frame.image, self._overlay_state())
            if self.video is not None:
                self.video.write(frame.image)
                self.metrics.count_output()
            if self.window is not None:
                self.window.show(frame.image)
            self.metrics.record("overlay_write", (time.perf_counter_ns() - t0) / 1e6)

    def _overlay_state(self):
        stats = None
        if self.config.output.overlay_stats:
            stats = self.metrics.overlay_numbers()
        return overlay_state(
            self.latest,
            warming=self.sampler.warming_up if self.latest is None else None,
            untrained=self.info.untrained,
            stats=stats,
            threshold=self.config.postprocess.threshold,
        )

    def _finish(self) -> None:
        tail = None if self.stop.event.is_set() else self.sampler.finish()
        if tail is not None:
            for seq in tail.repeat_seqs:
                while not self.ring.can_push():
                    self._collect(block=True)
                self.ring.repeat(seq)
            self._submit(tail.planned, time.perf_counter_ns(), live=False)
        while self.requests.pending():
            self._collect(block=True)
        if self.wants_frames:
            self._emit_frames(final=True)

    def _write_new_gaps(self, source) -> None:
        while self._gaps_written < len(source.gaps):
            gap = source.gaps[self._gaps_written]
            self._gaps_written += 1
            if self.events is not None:
                self.events.write_gap(gap)

    def _summary(self) -> dict:
        source = self.source
        snapshot = self.metrics.snapshot()
        return {
            "source": source.name,
            "model": self.model_name,
            "model_path": self.info.path,
            "untrained": self.info.untrained,
            "device": self.classifier.device,
            "precision": self.classifier.precision,
            "num_requests": self.requests.num_requests,
            "preprocess_implementation": IMPLEMENTATION,
            "mode": self.config.sampling.mode,
            "clip_len": self.config.sampling.clip_len,
            "frame_step": self.config.sampling.frame_step,
            "stride": self.sampler.stride,
            "frames": snapshot["frames"],
            "clips": snapshot["clips"],
            "skipped_clips": snapshot["skipped_clips"],
            "dropped_frames": source.frames_dropped,
            "reconnects": source.reconnects,
            "input_fps": source.fps,
            "processing_fps": snapshot["processing_fps"],
            "clips_per_s": snapshot["clips_per_s"],
            "elapsed_s": snapshot["elapsed_s"],
            "outputs": {
                "annotated video": self.config.output.video,
                "events": self.config.output.events,
                "summary": self.config.output.summary,
            },
            "latency_ms": snapshot["latency_ms"],
            "interrupted_by": signal.Signals(self.stop.signum).name if self.stop.signum else None,
            "warnings": self.warnings,
        }


class _Progress:
    """A one-line progress bar on stderr for files on a terminal."""

    def __init__(self, total: int | None, enabled: bool):
        self.total = total
        self.enabled = enabled and bool(total)
        self._next = 0.0

    def update(self, done: int, metrics: Metrics) -> None:
        if not self.enabled or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + 0.25
        width = 30
        filled = int(width * min(done, self.total) / self.total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} frames  {metrics.status_line()}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def run(config: Config, *, keep_predictions: bool = False) -> RunResult:
    """Run the main job described by ``config`` until the source ends or a signal stops it.

    Raises ``ConfigError``, ``ModelError``, ``SourceError`` or ``SinkError`` (one-line
    messages) for bad input found before any work; problems found later are logged
    and recorded in the summary's ``warnings``, and what was produced is kept.
    """
    stop = _StopFlag()
    stop.install()
    try:
        runner = _Run(config, stop)
        runner.keep_predictions = keep_predictions
        return runner.execute()
    finally:
        stop.restore()


__all__ = ["RunResult", "run", "sample_clip_path", "SourceError"]
