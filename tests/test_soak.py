"""Long runs: no growth in memory, open file descriptors or threads.

The default suite runs a short soak (1,500 small frames, rolling stride 8, a tiny clip model so it
takes seconds) with tolerant bounds. The real one, ≥ 10,000 frames on the demo ResNet-34, is
marked slow::

    python -m pytest -m slow tests/test_soak.py -s     # -s prints the figures

Both run ``pipeline.run`` in this process and sample RSS, fds and threads from inside the source
at fixed frame numbers, after a warm-up (OpenVINO starts its threads, the video writer its buffers).
"""

from __future__ import annotations

import json

import numpy as np
import openvino as ov
import psutil
import pytest

import edge.sources
from edge import pipeline
from edge.config import load_config
from edge.sources import open_source
from edge.synthetic import write_moving_shapes_video


def _tiny_clip_model(path) -> str:
    """A 1×3×16×112×112 → 400 clip classifier (mean over T,H,W, then a matmul): the pipeline's shapes, no compute."""
    from openvino import opset13 as ops

    clip = ops.parameter([1, 3, 16, 112, 112], ov.Type.f32, name="clip")
    pooled = ops.reduce_mean(clip, ops.constant(np.array([2, 3, 4], np.int64)), keep_dims=False)
    weights = ops.constant(np.random.default_rng(0).normal(size=(3, 400)).astype(np.float32))
    logits = ops.matmul(pooled, weights, False, False)
    ov.save_model(ov.Model([logits], [clip], "tiny-clip"), str(path))
    return str(path)


class _Sampled:
    """Wraps a source; records (frame, rss MiB, open fds, threads) every ``every`` frames and at the end."""

    def __init__(self, source, every: int):
        self._source, self._every = source, every
        self._process = psutil.Process()
        self.samples: list[tuple[int, float, int, int]] = []

    def _sample(self, frame_number: int) -> None:
        self.samples.append((frame_number, self._process.memory_info().rss / 2**20, self._process.num_fds(),
                             self._process.num_threads()))

    def __iter__(self):
        return self

    def __next__(self):
        try:
            frame = next(self._source)
        except StopIteration:
            self._sample(self._source.frames_read)
            raise
        if frame.index % self._every == 0:
            self._sample(frame.index)
        return frame

    def __enter__(self):
        self._source.__enter__()
        return self

    def __exit__(self, *exc):
        return self._source.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._source, name)


def soak(tmp_path, monkeypatch, model, frames: int, overrides=(), warm_up: float = 0.2):
    video = write_moving_shapes_video(tmp_path / "long.mp4", frames, 96, 72)
    sampled: list[_Sampled] = []

    def open_sampled(spec, **options):
        sampled.append(_Sampled(open_source(spec, **options), every=max(1, frames // 40)))
        return sampled[-1]

    monkeypatch.setattr(edge.sources, "open_source", open_sampled)
    out = tmp_path / "out"
    config = load_config(None, [f"source={video}", f"model.path={model}", "sampling.mode=rolling",
                                "sampling.stride=8", f"output.events={out / 'events.jsonl'}",
                                f"output.video={out / 'annotated.mp4'}", f"output.summary={out / 'summary.json'}",
                                "output.progress=false", *overrides])
    result = pipeline.run(config)
    assert result.summary["frames"] == frames
    assert result.summary["clips"] == (frames - 16) // 8 + 1
    events = (out / "events.jsonl").read_text().splitlines()
    assert len(events) == result.summary["clips"] and all(json.loads(line) for line in events)
    samples = sampled[0].samples
    start = next(sample for sample in samples if sample[0] >= frames * warm_up)
    end = samples[-1]
    print(f"\nsoak {frames} frames: rss {start[1]:.1f} -> {end[1]:.1f} MiB (peak after warm-up "
          f"{max(s[1] for s in samples if s[0] >= start[0]):.1f}), fds {start[2]} -> {end[2]}, "
          f"threads {start[3]} -> {end[3]}")
    return start, end, samples


def test_short_soak_has_no_leaks(tmp_path, monkeypatch):
    model = _tiny_clip_model(tmp_path / "tiny.xml")
    start, end, samples = soak(tmp_path, monkeypatch, model, 1500)
    later = [s for s in samples if s[0] >= start[0]]
    assert end[2] <= start[2] + 2, f"open fds grew: {start[2]} -> {end[2]}"
    assert max(s[3] for s in later) <= start[3] + 2, f"threads grew: {[s[3] for s in later]}"
    assert end[1] - start[1] < 40, f"RSS grew {end[1] - start[1]:.1f} MiB"


@pytest.mark.slow
def test_ten_thousand_frame_soak_has_no_leaks(tmp_path, monkeypatch, demo_xml, compiled_cache):
    start, end, samples = soak(tmp_path, monkeypatch, demo_xml, 10_000, [f"inference.cache_dir={compiled_cache}"])
    later = [s for s in samples if s[0] >= start[0]]
    assert end[2] <= start[2], f"open fds grew: {start[2]} -> {end[2]}"
    assert max(s[3] for s in later) <= start[3], f"threads grew: {[s[3] for s in later]}"
    # Steady state: the second half of the run holds no more memory than the first (allocator noise aside).
    half = [s[1] for s in later if s[0] >= (start[0] + end[0]) / 2]
    first = [s[1] for s in later if s[0] < (start[0] + end[0]) / 2]
    assert max(half) - max(first) < 16, f"RSS crept up: {max(first):.1f} -> {max(half):.1f} MiB"
    assert end[1] - start[1] < 32, f"RSS grew {end[1] - start[1]:.1f} MiB"
