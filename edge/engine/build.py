"""From the validated config to the running objects: sources, the compiled model and its
scheduler, the checks, and each camera's lane with its parts.

Nothing here runs anything; ``edge.engine.service`` starts what is built here and keeps
house until the end.
"""

from __future__ import annotations

import logging
import math
import queue
from dataclasses import dataclass

from edge.config import ConfigError, check_activity_labels
from edge.engine.clips import ClipStage
from edge.engine.input import LIVE_BUFFER_FRAMES, LaneInput
from edge.engine.lane import Lane, needs_pictures
from edge.engine.output import FrameOutput
from edge.engine.reporter import Reporter
from edge.engine.scheduler import Scheduler
from edge.health import CameraState, Health
from edge.metrics import Metrics
from edge.postprocess import Postprocessor
from edge.preprocess import ClipRing
from edge.privacy import Masks
from edge.sampling import ClipSampler
from edge.sinks import EventWriter, SubtitleSink, VideoSink, WindowSink
from edge.sinks.jsonl import rotation
from edge.sources import DEFAULT_FPS, SourceError, open_camera

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Model:
    """The compiled model and what serves it."""

    classifier: object
    scheduler: Scheduler
    performance_hint: str
    checks: object | None  # edge.checks.CheckEngine, when the config has activities or rules


def open_sources(config, *, give_up: bool, single_run: bool) -> tuple[dict, dict[str, Health]]:
    """Every camera's source (opened before the slow compile, so a mistyped one is reported first)
    and its ``Health``. A camera that cannot be opened is ``offline`` with the reason; with one camera
    in ``run``, the ``SourceError`` is raised instead."""
    sources, healths = {}, {}
    for name, camera in config.cameras.items():
        health = healths[name] = Health()
        try:
            sources[name] = open_camera(camera, want_image=needs_pictures(camera), give_up=give_up, health=health)
        except SourceError as error:
            if single_run:
                raise
            health.set(CameraState.OFFLINE, str(error))
            log.error("%s: %s", name, error)
    return sources, healths


def performance_hint(config) -> str:
    """``auto``: the lowest latency for one live camera; the most clips per second for files (nothing
    waits on them) and for several cameras."""
    hint = config.inference.performance_hint
    if hint != "auto":
        return hint
    cameras = list(config.cameras.values())
    return "latency" if len(cameras) == 1 and cameras[0].live else "throughput"


def compile_model(config, on_inferred=None, features: bool = False) -> Model:
    """Load and compile the model once for all cameras; its scheduler; the check engine. ``features``: the
    model also outputs its pooled feature (``edge.models.head``), which each prediction event carries."""
    from edge.models import default_model_path, load_model
    from edge.runtime import compile_model as compile_loaded

    model, info = load_model(config.model.path or default_model_path(), labels_path=config.model.labels,
                             features=features)
    for camera in config.cameras.values():
        check_model_matches(camera, info)
    check_activity_labels(config, info.activity_labels)
    inference = config.inference
    hint = performance_hint(config)
    classifier = compile_loaded(model, info, device=inference.device, precision=inference.precision,
                                performance_hint=hint, num_requests=inference.num_requests,
                                cache_dir=inference.cache_dir)
    requests = inference.num_requests or classifier.optimal_num_requests
    scheduler = Scheduler(classifier, max(1, requests), on_inferred=on_inferred,
                          max_wait_ms=inference.max_wait_ms)
    checks = None
    if config.rules or any(camera.activities for camera in config.cameras.values()):
        from edge.checks import CheckEngine, time_bases

        checks = CheckEngine(config.rules, time_bases(config))
    return Model(classifier, scheduler, hint, checks)


def build_lane(camera, *, source, health: Health, model: Model, emit, run_id: str, model_name: str,
               hub=None, keep_predictions: bool = False, mode: str = "run") -> Lane:
    """One camera's lane and its parts; ``source`` None when it could not be opened. ``mode`` (``run`` or
    ``serve``) resolves ``output.rotate: auto``.

    A camera whose ``privacy.pictures`` is false gets no annotated video, window or live-page hub
    (the config already refuses the first two when set on purpose): no picture of it leaves the lane.
    """
    info = model.classifier.info
    output = camera.output
    pictures = camera.keeps_pictures
    hub = hub if pictures else None
    masks = Masks.of(camera)
    metrics = Metrics()
    inbox: queue.Queue = queue.Queue()
    sinks, video, window = [], None, None
    source_name = source.name if source is not None else str(camera.source)
    if source is not None:
        if output.events:
            sinks.append(EventWriter(output.events, overwrite=output.overwrite, rotate=rotation(output.rotate, mode),
                                     retain_days=output.retain_days))
        if output.subtitles:
            sinks.append(SubtitleSink(output.subtitles, camera=camera.name))
        if output.video and pictures:
            video = VideoSink(output.video, source.fps, source.size, max_width=output.video_max_width,
                              hwaccel=camera.decode.hwaccel, live=camera.live)
        if output.display and pictures:
            window = WindowSink(f"edge-har: {camera.name}")
    sampling = camera.sampling
    sampler = ClipSampler(sampling.mode, sampling.clip_len, sampling.frame_step, sampling.stride)
    mean = camera.preprocess.mean if camera.preprocess.mean is not None else info.mean
    fps = source.fps if source is not None else None
    in_flight = model.scheduler.num_requests + 1 + _waiting_clips(camera, model.scheduler, fps)
    ring = ClipRing(clip_len=sampling.clip_len, size=camera.preprocess.size,
                    capacity=sampler.ring_capacity(in_flight), mean=tuple(mean),
                    interpolation=camera.preprocess.interpolation)
    post = camera.postprocess
    reporter = Reporter(camera.name, source_name=source_name,
                        postprocessor=Postprocessor(list(info.labels), top_k=post.top_k,
                                                    smoothing=str(post.smoothing), threshold=post.threshold,
                                                    custom_labels=info.custom_labels, outputs=info.outputs),
                        metrics=metrics, monitor=_monitor(camera, info.activity_labels, model.checks), emit=emit,
                        model_name=model_name, untrained=info.untrained,
                        include_scores=output.include_scores, live=camera.live,
                        keep_predictions=keep_predictions)
    lane_input = LaneInput(source, health, metrics, inbox.put, live=camera.live) if source is not None else None
    lane = None

    def backpressure() -> None:
        lane.wait_for_outcome()

    clips = ClipStage(camera.name, sampler=sampler, ring=ring, scheduler=model.scheduler, metrics=metrics,
                      min_motion=camera.gating.min_motion, bgr_ring=needs_pictures(camera),
                      wait_for_outcome=backpressure, on_ready=reporter.on_clip,
                      masks=masks if camera.privacy.mask_inference else None)
    frames = FrameOutput(video=video, window=window, hub=hub, hold_for_own_label=sampling.mode == "batch",
                         metrics=metrics, overlay_state=lambda: lane.overlay_state(),
                         labelled_up_to=reporter.labelled_up_to, on_quit=lambda: lane.request_stop(),
                         masks=masks)
    lane = Lane(camera, health=health, input=lane_input, clips=clips, reporter=reporter, output=frames,
                sinks=sinks, emit=emit, metrics=metrics, inbox=inbox, run_id=run_id)
    model.scheduler.register(camera.name, lane.live, inbox.put)
    return lane


def _waiting_clips(camera, scheduler: Scheduler, fps: float | None) -> int:
    """Clips of a live camera that may wait within the latency budget beside those in flight: every
    clip made within the budget, plus a burst of the live buffer's frames, so the ring is never what
    holds a live camera back (a full ring would block the lane and drop frames)."""
    if not camera.live or not scheduler.max_wait_ms:
        return 0
    sampling = camera.sampling
    frames = scheduler.max_wait_ms / 1000.0 * (fps or DEFAULT_FPS) / sampling.frame_step + LIVE_BUFFER_FRAMES
    return math.ceil(frames / sampling.stride)


def _monitor(camera, labels, checks):
    """The camera's activities and checks (one ``CameraMonitor``), or None when it has no activities."""
    if not camera.activities:
        return None
    from edge.activities import ActivityTracker
    from edge.engine.monitor import CameraMonitor

    return CameraMonitor(ActivityTracker(camera.name, camera.activities, labels, camera.time_base), checks)


def check_model_matches(camera, info) -> None:
    if camera.sampling.clip_len != info.clip_len:
        raise ConfigError(f"cameras.{camera.name}.sampling.clip_len is {camera.sampling.clip_len} but the model "
                          f"takes {info.clip_len}-frame clips")
    if camera.preprocess.size != info.size:
        raise ConfigError(f"cameras.{camera.name}.preprocess.size is {camera.preprocess.size} but the model takes "
                          f"{info.size}×{info.size} frames")


__all__ = ["Model", "build_lane", "compile_model", "open_sources", "performance_hint"]
