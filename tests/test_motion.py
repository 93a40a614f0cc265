"""The still-scene gate's motion measure: computed while a slot is written, native and twin.

Oracle: the mean absolute difference of two slots, computed here in float64 from the ring's own
slots (divided by |scale|, so it is in grey levels).
"""

from __future__ import annotations

import numpy as np
import pytest
from support_hotpath import (
    h264_planes,
    i420_planes,
    motion_oracle,
    moving_square,
    noisy,
    smooth_bgr,
    textured_square_frames,
)

MIN_MOTION = 0.3  # the gate threshold benchmarks/bench_gate_noise.py recommends (linear, H.264 cameras)


def push_all(ring, frames):
    return [ring.push(frame) for frame in frames]


@pytest.mark.parametrize("interpolation", ["linear", "area"])
@pytest.mark.parametrize("scale", [1.0, 0.5, -1 / 255])
@pytest.mark.parametrize("width,height", [(640, 360), (1920, 1080), (50, 40)])
def test_motion_matches_oracle_from_the_slots(hotpath, interpolation, scale, width, height):
    frames = moving_square(width, height, 3, step=5) + [smooth_bgr(width, height, 9)]
    ring = hotpath.ClipRing(clip_len=2, size=112, capacity=5, scale=scale, interpolation=interpolation)
    previous = None
    for frame in frames:
        seq = ring.push(frame)
        if previous is None:
            assert ring.motion(seq) == 255.0
        else:
            assert ring.motion(seq) == pytest.approx(motion_oracle(ring.slot(seq), previous, scale), rel=1e-5, abs=1e-5)
        previous = ring.slot(seq).copy()


@pytest.mark.parametrize("interpolation", ["linear", "area"])
def test_yuv_motion_matches_oracle(hotpath, interpolation):
    ring = hotpath.ClipRing(clip_len=2, size=64, capacity=3, interpolation=interpolation)
    previous = None
    for seed in range(5):
        seq = ring.push_yuv(*i420_planes(321, 241, seed=seed % 2))  # the same picture every other frame
        if previous is not None:
            expected = motion_oracle(ring.slot(seq), previous)
            assert ring.motion(seq) == pytest.approx(expected, rel=1e-5, abs=1e-5)
            assert expected > 5
        previous = ring.slot(seq).copy()


def test_mixed_push_and_push_yuv_measure_against_the_previous_slot(hotpath):
    planes = i420_planes(320, 240, seed=3)
    from support_hotpath import bt601_limited_to_bgr

    ring = hotpath.ClipRing(clip_len=2, size=32)
    ring.push_yuv(*planes)
    seq = ring.push(bt601_limited_to_bgr(*planes))
    assert ring.motion(seq) <= 0.01  # the same picture by the other door
    before = ring.slot(seq).copy()
    seq = ring.push_yuv(*i420_planes(320, 240, seed=4))
    assert ring.motion(seq) == pytest.approx(motion_oracle(ring.slot(seq), before), rel=1e-5)


@pytest.mark.parametrize("clip_len,capacity", [(1, 1), (2, 2), (4, 9)])
def test_previous_slot_is_the_one_overwritten(hotpath, clip_len, capacity):
    # capacity 1: the previous slot is the very slot being written; the kernel reads it first.
    frames = moving_square(160, 120, 2 * capacity + 3, step=4)
    ring = hotpath.ClipRing(clip_len=clip_len, size=16, capacity=capacity)
    previous = None
    for frame in frames:
        seq = ring.push(frame)
        if previous is not None:
            assert ring.motion(seq) == pytest.approx(motion_oracle(ring.slot(seq), previous), rel=1e-5, abs=1e-6)
        previous = ring.slot(seq).copy()


def test_preprocess_functions_return_motion(hotpath):
    first, second = moving_square(320, 240, 2, step=6)
    out = np.empty((3, 112, 112), np.float32)
    assert hotpath.preprocess_frame(first, out) == 255.0
    previous = out.copy()
    motion = hotpath.preprocess_frame(second, out, previous=previous)
    assert motion == pytest.approx(motion_oracle(out, previous), rel=1e-5)
    same = hotpath.preprocess_frame(second, out, previous=out)  # in place: against itself
    assert same == 0.0
    planes = i420_planes(320, 240)
    assert hotpath.preprocess_yuv(*planes, out) == 255.0
    assert hotpath.preprocess_yuv(*planes, out, previous=out) == 0.0
    with pytest.raises(ValueError, match="previous"):
        hotpath.preprocess_frame(first, out, previous=np.zeros((3, 64, 64), np.float32))
    with pytest.raises(ValueError, match="previous"):
        hotpath.preprocess_frame(first, out, previous=np.zeros((3, 112, 112), np.float64))


def test_motion_is_independent_of_mean(hotpath):
    frames = moving_square(320, 240, 4, step=3)
    values = []
    for mean in [(0, 0, 0), (114.7748, 107.7354, 99.4750), (255, -3, 7.5)]:
        ring = hotpath.ClipRing(clip_len=2, size=64, mean=mean)
        values.append([ring.motion(seq) for seq in push_all(ring, frames)])
    np.testing.assert_allclose(values[1], values[0], rtol=1e-5)
    np.testing.assert_allclose(values[2], values[0], rtol=1e-5)


def test_gate_decisions_on_synthetic_clips(hotpath):
    clip_len = 16
    still = [smooth_bgr(640, 360, 1)] * (clip_len + 1)
    moving = moving_square(640, 360, clip_len + 1, step=3)
    raw_noise = [noisy(still[0], 3.0, seed) for seed in range(clip_len + 1)]
    decisions = {}
    for name, frames in {"still": still, "moving square": moving, "raw noise": raw_noise}.items():
        ring = hotpath.ClipRing(clip_len=clip_len, size=112, capacity=2 * clip_len)
        push_all(ring, frames)
        first, last = 1, clip_len  # a clip whose first slot has a predecessor
        motion = ring.max_motion(first, last)
        assert motion == max(ring.motion(seq) for seq in range(first, last + 1))
        decisions[name] = motion
    assert decisions["still"] == 0.0
    assert decisions["moving square"] > 2 * MIN_MOTION
    # Uncompressed sensor noise (σ 3) stays above the threshold the compressed streams get: the
    # measure sees it (what benchmarks/bench_gate_noise.py reports for cameras without H.264).
    assert decisions["raw noise"] > MIN_MOTION


def _clip_through_h264(hotpath, frames, path, gop):
    ring = hotpath.ClipRing(clip_len=16, size=112, capacity=32)
    for planes in h264_planes(frames, path, gop=gop):
        ring.push_yuv(*planes)
    assert ring.pushed == 17
    return ring


def test_gate_decisions_on_h264_footage(hotpath, tmp_path):
    # Camera-like: sensor noise σ 3, then libx264 (crf 23) as a camera encodes it, then the decoder's planes.
    pytest.importorskip("av")
    still = _clip_through_h264(hotpath, textured_square_frames(320, 240, 17, step=0, sigma=3.0), tmp_path / "s.mp4", 250)
    assert 0.0 < still.max_motion(1, 16) < MIN_MOTION  # the encoder keeps the noise out of P-frames: gated
    slow = _clip_through_h264(hotpath, textured_square_frames(320, 240, 17, step=1, sigma=3.0), tmp_path / "m.mp4", 250)
    assert min(slow.motion(seq) for seq in range(1, 17)) > 2 * MIN_MOTION  # a person-sized object, 1 px/frame
    assert slow.max_motion(1, 16, ignore_largest=1) > 2 * MIN_MOTION
    # A keyframe every 8 frames re-encodes the noise: one pulse per GOP lifts max_motion above the
    # threshold; ignoring the largest two (two keyframes in this clip) gates the clip again.
    pulsed = _clip_through_h264(hotpath, textured_square_frames(320, 240, 17, step=0, sigma=3.0), tmp_path / "k.mp4", 8)
    assert pulsed.motion(8) > MIN_MOTION and pulsed.motion(16) > MIN_MOTION
    assert pulsed.max_motion(1, 16) > MIN_MOTION
    assert pulsed.max_motion(1, 16, ignore_largest=2) < MIN_MOTION


def test_max_motion_ignore_largest(hotpath):
    ring = hotpath.ClipRing(clip_len=4, size=16, capacity=5)
    frames = moving_square(160, 120, 8, step=5)
    for index, frame in enumerate(frames):
        ring.push(frame if index % 3 else frames[max(0, index - 1)])
    first, last = ring.pushed - 5, ring.pushed - 1
    ordered = sorted(ring.motion(seq) for seq in range(first, last + 1))
    for ignore in range(5):
        assert ring.max_motion(first, last, ignore_largest=ignore) == ordered[-1 - ignore]
    with pytest.raises(ValueError):
        ring.max_motion(first, last, ignore_largest=5)
    with pytest.raises(ValueError):
        ring.max_motion(first, last, ignore_largest=-1)


def test_first_slot_never_gates(hotpath):
    ring = hotpath.ClipRing(clip_len=3, size=16)
    push_all(ring, [smooth_bgr(64, 48)] * 3)
    assert [ring.motion(seq) for seq in range(3)] == [255.0, 0.0, 0.0]
    assert ring.max_motion(0, 2) == 255.0
    assert ring.max_motion(1, 2) == 0.0


def test_loop_padding_copies_motion(hotpath):
    frames = moving_square(160, 120, 3, step=7)
    ring = hotpath.ClipRing(clip_len=6, size=16, capacity=8)
    push_all(ring, frames)
    motions = [ring.motion(seq) for seq in range(3)]
    for source in (0, 1, 2):  # kenshohara's LoopPadding: 0 1 2 0 1 2
        seq = ring.repeat(source)
        assert ring.motion(seq) == motions[source]
        np.testing.assert_array_equal(ring.slot(seq), ring.slot(source))
    assert ring.max_motion(3, 5) == 255.0  # slot 0's value came along
    assert ring.max_motion(4, 5) == max(motions[1:])
    # The next push measures against the slot written last: the repeated copy of slot 2.
    seq = ring.push(frames[2])
    assert ring.motion(seq) == 0.0


def test_max_motion_wraps_around_the_ring(hotpath):
    frames = moving_square(160, 120, 23, step=2)
    ring = hotpath.ClipRing(clip_len=4, size=16, capacity=6)
    for index, frame in enumerate(frames):
        ring.push(frame if index % 5 else frames[max(0, index - 1)])  # some zero-motion slots
    motions = {seq: ring.motion(seq) for seq in range(ring.pushed - 6, ring.pushed)}
    for first in motions:
        for last in motions:
            if first <= last:
                assert ring.max_motion(first, last) == max(motions[s] for s in range(first, last + 1))


def test_motion_errors(hotpath):
    ring = hotpath.ClipRing(clip_len=2, size=8, capacity=3)
    with pytest.raises(IndexError):
        ring.motion(0)
    push_all(ring, [smooth_bgr(32, 24, seed) for seed in range(5)])
    with pytest.raises(IndexError):
        ring.motion(1)  # left the ring
    with pytest.raises(IndexError):
        ring.motion(5)  # not pushed yet
    with pytest.raises(IndexError):
        ring.max_motion(1, 4)
    with pytest.raises(ValueError):
        ring.max_motion(4, 3)
    assert ring.max_motion(2, 4) == max(ring.motion(seq) for seq in (2, 3, 4))


def test_failed_push_keeps_motion_state(hotpath):
    ring = hotpath.ClipRing(clip_len=2, size=16)
    frames = moving_square(160, 120, 2, step=9)
    ring.push(frames[0])
    with pytest.raises(ValueError):
        ring.push(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        ring.push_yuv(np.zeros((10, 10), np.uint8), np.zeros((4, 4), np.uint8), np.zeros((5, 5), np.uint8))
    previous = ring.slot(0).copy()
    seq = ring.push(frames[1])
    assert seq == 1
    assert ring.motion(seq) == pytest.approx(motion_oracle(ring.slot(seq), previous), rel=1e-5)


def test_native_and_twin_agree_on_motion(native_hotpath):
    import edge.preprocess

    twin = edge.preprocess.implementation("numpy")
    frames = moving_square(640, 360, 6, step=4)
    for interpolation in ("linear", "area"):
        rings = [impl.ClipRing(clip_len=2, size=112, capacity=8, interpolation=interpolation) for impl in (native_hotpath, twin)]
        values = [[ring.motion(seq) for seq in push_all(ring, frames)] for ring in rings]
        np.testing.assert_allclose(values[0], values[1], atol=0.01)
