"""Post-training INT8 quantisation with NNCF, calibrated on the project's own clips.

Calibration clips come from ``edge.preprocess.ClipRing`` exactly as inference
makes them (consecutive non-overlapping clips of ``clip_len`` frames, a short
tail loop-padded). NNCF quantises the stored model, whose input is N×C×T×H×W;
``compile_model`` later attaches the clip ring's NTCHW layout to the quantised
model just as it does for the float one, so the calibration data is the ring's
view transposed to NCTHW — the same numbers in the stored model's layout.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.models.demo import save_model_atomic
from edge.models.errors import ModelError
from edge.models.loading import load_model
from edge.models.metadata import read_metadata, write_metadata
from edge.preprocess import ClipRing  # the same ring (native or twin) that inference uses
from edge.records import CUSTOM_LOGITS
from edge.runtime import compile_model
from edge.sampling import ClipSampler
from edge.sources import SourceError, open_source

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"}
NNCF_MISSING = "quantisation needs NNCF: pip install 'edge-har[quantize]'"


@dataclass(frozen=True)
class QuantizeReport:
    """The INT8 model and how it compares with the float model on the calibration clips.

    ``os.fspath(report)`` is the INT8 ``.xml`` path, so a report can stand in for a path.
    """

    path: Path
    clips: int
    f32_p50_ms: float
    int8_p50_ms: float
    top1_agreement: float           # fraction of clips where INT8 and f32 pick the same class
    logits_correlation: float       # mean Pearson correlation of INT8 vs f32 logits per clip
    videos: tuple[str, ...] = field(default=())
    custom_top1_agreement: float | None = None  # the same for a learned head (edge-har learn); None = none

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def speedup(self) -> float:
        return self.f32_p50_ms / self.int8_p50_ms if self.int8_p50_ms else float("nan")


def calibration_videos(calibration) -> list[Path]:
    """Video files named by ``calibration`` (files and/or directories, searched one level deep)."""
    if isinstance(calibration, (str, os.PathLike)):
        calibration = [calibration]
    videos = []
    for item in calibration:
        path = Path(item).expanduser()
        if path.is_dir():
            videos += sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
        elif path.is_file():
            videos.append(path)
        else:
            raise ModelError(f"calibration video not found: {path}")
    if not videos:
        raise ModelError(f"no calibration videos in {', '.join(str(c) for c in calibration)}")
    return videos


def calibration_clips(videos, clip_len: int, size: int, mean, limit: int | None = None) -> list[np.ndarray]:
    """Clips float32 (T,C,S,S) made from each video by the pipeline's own stages: ``FileSource``,
    the batch ``ClipSampler`` (consecutive, non-overlapping, the last partial clip loop-padded)
    and the ``ClipRing``. ``limit`` caps the total. ``ModelError`` for an unreadable video."""
    clips: list[np.ndarray] = []
    for video in videos:
        if limit is not None and len(clips) >= limit:
            break
        sampler = ClipSampler("batch", clip_len)
        ring = ClipRing(clip_len=clip_len, size=size, mean=tuple(mean))
        try:
            with open_source(video, live=False) as source:
                for frame in source:
                    planned = sampler.add(ring.push(frame.image), frame.index, frame.time_s)
                    if planned is not None:
                        clips.append(_take(ring, planned.last_seq))
                        if limit is not None and len(clips) >= limit:
                            break
                else:
                    tail = sampler.finish()
                    if tail is not None:
                        for seq in tail.repeat_seqs:
                            ring.repeat(seq)
                        clips.append(_take(ring, tail.planned.last_seq))
        except SourceError as error:
            raise ModelError(f"calibration video: {error}") from None
    if not clips:
        raise ModelError(f"no frames could be read from {', '.join(str(v) for v in videos)}")
    return clips


def _take(ring, last_seq) -> np.ndarray:
    lease = ring.acquire(last_seq)
    try:
        return np.array(lease.view)  # kept past the ring's lifetime, so copied
    finally:
        ring.release(lease)


def _p50_ms(classifier, clips) -> tuple[float, list[tuple[np.ndarray, ...]]]:
    classifier.infer(clips[0])  # warm-up outside the timed region
    times, outputs = [], []
    for clip in clips:
        start = time.perf_counter_ns()
        outputs.append(classifier.infer_outputs(clip))
        times.append((time.perf_counter_ns() - start) / 1e6)
    return float(np.median(times)), outputs


def _agreement(a: list[tuple[np.ndarray, ...]], b: list[tuple[np.ndarray, ...]], output: int) -> float:
    return float(np.mean([x[output].argmax() == y[output].argmax() for x, y in zip(a, b)]))


def quantize_model(model_path, calibration, output_dir, subset: int | None = None,
                   preset: str = "performance", device: str = "CPU") -> QuantizeReport:
    """Quantise ``model_path`` to INT8 with NNCF, calibrating on clips from ``calibration``.

    ``calibration``: a video, a directory of videos, or a list of either.
    ``subset``: at most this many calibration clips (default: all, up to 300).
    ``preset``: ``performance`` (symmetric) or ``mixed`` (asymmetric activations).
    Writes ``<output_dir>/<stem>-int8.xml`` and returns a ``QuantizeReport`` with
    f32 vs INT8 p50 latency and top-1 agreement on the calibration clips.
    Raises ``ModelError`` (NNCF missing, unreadable model or video, NNCF failure).
    """
    try:
        import nncf
    except ImportError:
        raise ModelError(NNCF_MISSING) from None

    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    if preset not in presets:
        raise ModelError(f"unknown preset {preset!r}; expected performance or mixed")
    model, info = load_model(model_path)
    videos = calibration_videos(calibration)
    clips = calibration_clips(videos, info.clip_len, info.size, info.mean, limit=subset or 300)

    def to_model_layout(clip):
        return np.ascontiguousarray(clip[None].transpose(0, 2, 1, 3, 4))  # T,C,H,W view -> 1,C,T,H,W

    try:
        quantized = nncf.quantize(model, nncf.Dataset(clips, to_model_layout), preset=presets[preset],
                                  subset_size=len(clips))
    except Exception as error:
        raise ModelError(f"NNCF quantisation of {info.path} failed: {str(error).splitlines()[0]}") from None
    meta = read_metadata(model)
    write_metadata(quantized, dataclasses.replace(meta, precision="int8", source=f"{info.source} (INT8, NNCF)"))
    stem = Path(info.path).stem
    out = save_model_atomic(quantized, Path(output_dir) / f"{stem}-int8.xml")
    f32 = compile_model(model, info, device=device, precision="f32")
    int8 = compile_model(*load_model(out), device=device)
    f32_ms, f32_outputs = _p50_ms(f32, clips)
    int8_ms, int8_outputs = _p50_ms(int8, clips)
    corr = np.mean([np.corrcoef(a[0], b[0])[0, 1] for a, b in zip(f32_outputs, int8_outputs)])
    custom = _agreement(f32_outputs, int8_outputs, info.outputs.index(CUSTOM_LOGITS)) \
        if CUSTOM_LOGITS in info.outputs else None
    return QuantizeReport(out, len(clips), f32_ms, int8_ms, _agreement(f32_outputs, int8_outputs, 0), float(corr),
                          tuple(str(v) for v in videos), custom)
