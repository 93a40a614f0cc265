import tracemalloc

import numpy as np
import pytest

from edge.metrics import STAGES, Metrics, SampleRing


def test_percentiles_match_numpy():
    samples = np.random.default_rng(1).gamma(2.0, 10.0, 5000)
    metrics = Metrics()
    for value in samples:
        metrics.add("inference", value)
    stats = metrics.percentiles("inference")
    expected = np.percentile(samples, [50, 90, 99])
    assert [stats["p50"], stats["p90"], stats["p99"]] == pytest.approx(expected)
    assert stats["max"] == pytest.approx(samples.max()) and stats["mean"] == pytest.approx(samples.mean())
    assert stats["count"] == 5000


def test_ring_keeps_the_last_window_and_all_time_count():
    ring = SampleRing(capacity=100)
    for value in range(1000):
        ring.add(float(value))
    stats = ring.stats()
    assert stats["count"] == 1000 and stats["max_all"] == 999.0
    assert sorted(ring.window()) == list(range(900, 1000))
    assert stats["p50"] == pytest.approx(np.percentile(np.arange(900, 1000), 50))


def test_memory_is_bounded_after_100k_samples():
    metrics = Metrics(window=10_000)
    for value in range(20_000):  # fill every ring first
        for stage in STAGES:
            metrics.add(stage, value * 0.001)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for value in range(100_000):
        metrics.add("inference", value * 0.001)
        metrics.count_output()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 200_000  # bytes; an unbounded list would need ~3 MB here
    assert metrics.percentiles("inference")["count"] == 120_000
    assert metrics.frames_out == 100_000


def test_own_and_wait_time_are_kept_apart():
    metrics = Metrics()
    metrics.add("preprocess", 5.0)
    metrics.add_wait("inference", 20.0)  # a ready clip waited 20 ms for a free request
    assert metrics.percentiles("inference", wait=True)["p50"] == pytest.approx(20.0)
    assert metrics.percentiles("preprocess")["count"] == 1
    assert metrics.percentiles("inference")["count"] == 0
    assert metrics.percentiles("inference", wait=True)["count"] == 1
    assert list(metrics.samples("inference", wait=True)) == [20.0]


def test_throughput_counters_and_snapshot():
    now = [0]
    metrics = Metrics(clock_ns=lambda: now[0], rate_window_s=1.0, input_fps=25.0)
    for _ in range(50):
        now[0] += 40_000_000  # 25 frames per second
        metrics.count_frame()
        metrics.count_output()
    for _ in range(3):
        metrics.count_clip()
    metrics.count_skipped(2)
    metrics.add("frame_to_label", 90.0)
    assert metrics.current_fps() == pytest.approx(25.0)
    snapshot = metrics.snapshot()
    assert snapshot["frames"] == 50 and snapshot["clips"] == 3 and snapshot["skipped_clips"] == 2
    assert snapshot["processing_fps"] == pytest.approx(25.0) and snapshot["input_fps"] == 25.0
    assert set(STAGES) <= set(snapshot["latency_ms"])
    assert snapshot["latency_ms"]["frame_to_label"]["p50"] == 90.0


def test_empty_stage_stats():
    stats = Metrics().percentiles("decode")
    assert stats["count"] == 0 and stats["p50"] is None


def test_no_rate_before_a_second_of_frames():
    now = [0]
    metrics = Metrics(clock_ns=lambda: now[0])
    metrics.count_frame()
    now[0] += 1_000_000  # a second frame 1 ms later is not "1000 fps"
    metrics.count_frame()
    assert metrics.current_fps() is None


def test_pipeline_facing_names_and_overlay_numbers():
    now = [0]
    metrics = Metrics(clock_ns=lambda: now[0], rate_window_s=2.0)
    assert metrics.overlay_numbers() == {"fps": None, "infer_ms": None, "e2e_ms": None}
    for index in range(11):
        now[0] += 100_000_000  # 10 frames per second of wall time
        metrics.count_frame(index / 25.0)  # media time at 25 fps
        metrics.record("inference", 40.0)
        metrics.record("frame_to_label", 80.0)
    numbers = metrics.overlay_numbers()
    assert numbers["fps"] == pytest.approx(10.0)
    assert numbers["infer_ms"] == pytest.approx(40.0) and numbers["e2e_ms"] == pytest.approx(80.0)
    assert metrics.media_fps() == pytest.approx(25.0)
    assert metrics.snapshot()["media_fps"] == pytest.approx(25.0)
