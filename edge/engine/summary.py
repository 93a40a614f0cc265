"""The typed run summary: one ``CameraSummary`` per lane and one ``ModelSummary`` for the shared model.

``summary.json`` (one per camera, ``output.summary``) is ``CameraSummary.to_dict(model)``: the
release-1 keys (``source``, ``frames``, ``clips``, ``latency_ms``, ``warnings``, …) so existing
readers keep working, plus ``camera``, ``run_id``, ``state``, ``gated_clips`` and the
``shared_model`` block.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class ModelSummary:
    """The one compiled model every camera shares."""

    name: str
    path: str
    untrained: bool
    device: str
    precision: str
    performance_hint: str
    num_requests: int
    cameras: tuple[str, ...]
    clips_inferred: int
    inference_ms: dict = field(default_factory=dict)   # percentiles over every camera's clips
    queue_wait_ms: dict = field(default_factory=dict)  # time a ready clip waited for a free request

    def to_dict(self) -> dict:
        data = asdict(self)
        data["cameras"] = list(self.cameras)
        return data


@dataclass(frozen=True)
class CameraSummary:
    """What one camera's lane did over the run."""

    camera: str
    run_id: str
    source: str
    state: str
    state_reason: str | None
    mode: str
    clip_len: int
    frame_step: int
    stride: int
    preprocess_implementation: str
    frames: int
    clips: int
    skipped_clips: int
    gated_clips: int
    dropped_frames: int
    reconnects: int
    input_fps: float | None
    processing_fps: float | None
    clips_per_s: float | None
    elapsed_s: float
    latency_ms: dict
    outputs: dict
    warnings: tuple[str, ...] = ()
    interrupted_by: str | None = None

    @property
    def failed(self) -> bool:
        """The camera could not be opened, or a live stream was given up on."""
        return self.state == "offline"

    def to_dict(self, model: ModelSummary) -> dict:
        return {
            "camera": self.camera,
            "run_id": self.run_id,
            "source": self.source,
            "state": self.state,
            "state_reason": self.state_reason,
            "model": model.name,
            "model_path": model.path,
            "untrained": model.untrained,
            "device": model.device,
            "precision": model.precision,
            "num_requests": model.num_requests,
            "preprocess_implementation": self.preprocess_implementation,
            "mode": self.mode,
            "clip_len": self.clip_len,
            "frame_step": self.frame_step,
            "stride": self.stride,
            "frames": self.frames,
            "clips": self.clips,
            "skipped_clips": self.skipped_clips,
            "gated_clips": self.gated_clips,
            "dropped_frames": self.dropped_frames,
            "reconnects": self.reconnects,
            "input_fps": self.input_fps,
            "processing_fps": self.processing_fps,
            "clips_per_s": self.clips_per_s,
            "elapsed_s": self.elapsed_s,
            "outputs": dict(self.outputs),
            "latency_ms": self.latency_ms,
            "interrupted_by": self.interrupted_by,
            "warnings": list(self.warnings),
            "shared_model": model.to_dict(),
        }
