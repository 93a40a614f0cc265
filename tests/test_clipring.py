"""ClipRing: zero-copy clip views in time order, overwrite protection, no per-frame allocation."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import edge.preprocess

SIZE = 8


def index_frame(index: int) -> np.ndarray:
    """A constant frame whose grey level encodes its index (mod 256), so order is exact."""
    return np.full((24, 32, 3), index % 256, np.uint8)


def assert_clip_order(view: np.ndarray, first_value: int) -> None:
    expected = (np.arange(first_value, first_value + len(view)) % 256).astype(np.float32)
    np.testing.assert_array_equal(view[:, :, 0, 0], np.repeat(expected[:, None], 3, axis=1))
    assert (view == view[:, :, :1, :1]).all()  # each slot constant


def make_ring(hotpath, clip_len=4, capacity=None, **kwargs):
    return hotpath.ClipRing(clip_len=clip_len, size=SIZE, capacity=capacity, mean=(0, 0, 0), **kwargs)


@pytest.mark.parametrize("clip_len,capacity,stride", [
    (1, 1, 1), (4, 4, 1), (4, 8, 1), (4, None, 3), (16, 32, 1), (16, 17, 1), (5, 13, 4), (8, 9, 8),
])
def test_views_are_contiguous_shared_and_in_time_order(hotpath, clip_len, capacity, stride):
    ring = make_ring(hotpath, clip_len, capacity)
    assert ring.capacity == (capacity or 2 * clip_len)
    checked = 0
    for index in range(5 * ring.capacity + 7):
        assert ring.push(index_frame(index)) == index
        if index + 1 >= clip_len and (index + 1 - clip_len) % stride == 0:
            lease = ring.acquire()
            assert (lease.first_seq, lease.last_seq) == (index - clip_len + 1, index)
            assert lease.view.shape == (clip_len, 3, SIZE, SIZE) and lease.view.dtype == np.float32
            assert lease.view.flags.c_contiguous
            # view[0] is slot first_seq itself; later frames may sit in the mirrored half.
            assert np.shares_memory(lease.view[0], ring.slot(lease.first_seq))
            assert lease.view.base is ring.slot(index).base  # one window of the ring's storage
            assert_clip_order(lease.view, lease.first_seq)
            ring.release(lease)
            checked += 1
    assert checked > 3 and ring.held == 0 and ring.pushed == 5 * ring.capacity + 7


@pytest.mark.parametrize("frame_step", [1, 2, 3])
def test_frame_step_sampled_clips_keep_order(hotpath, frame_step):
    ring = make_ring(hotpath, clip_len=4, capacity=6)
    for index in range(0, 60, frame_step):
        ring.push(index_frame(index))
    lease = ring.acquire()
    expected = np.arange(60 - 4 * frame_step, 60, frame_step, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(lease.view[:, :, 0, 0], np.repeat(expected, 3, axis=1))


def test_acquire_older_window(hotpath):
    ring = make_ring(hotpath, clip_len=3, capacity=5)
    for index in range(12):
        ring.push(index_frame(index))
    lease = ring.acquire(last_seq=9)
    assert (lease.first_seq, lease.last_seq) == (7, 9)
    assert_clip_order(lease.view, 7)
    with pytest.raises(ValueError):
        ring.acquire(last_seq=8)  # slot 6 has left the ring
    with pytest.raises(ValueError):
        ring.acquire(last_seq=12)  # not pushed yet


def test_held_clip_never_changes_and_ring_reports_full(hotpath):
    ring = make_ring(hotpath, clip_len=4, capacity=6)
    for index in range(4):
        ring.push(index_frame(index))
    lease = ring.acquire()
    before = lease.view.copy()
    pushes = 0
    while ring.can_push():
        ring.push(index_frame(100 + pushes))
        pushes += 1
    assert pushes == 2  # capacity 6 minus the 4 held slots
    with pytest.raises(edge.preprocess.RingFullError):
        ring.push(index_frame(200))
    with pytest.raises(edge.preprocess.RingFullError):
        ring.repeat(ring.pushed - 1)
    np.testing.assert_array_equal(lease.view, before)
    assert ring.pushed == 6 and ring.held == 1
    ring.release(lease)
    ring.release(lease)  # idempotent
    assert ring.held == 0 and ring.can_push()
    ring.push(index_frame(6))
    np.testing.assert_array_equal(ring.acquire().view[:, 0, 0, 0], [3, 100, 101, 6])


def test_two_overlapping_leases(hotpath):
    ring = make_ring(hotpath, clip_len=2, capacity=4)
    for index in range(3):
        ring.push(index_frame(index))
    older = ring.acquire(last_seq=1)
    newer = ring.acquire(last_seq=2)
    ring.push(index_frame(3))
    assert not ring.can_push()  # slot 0 belongs to `older`
    ring.release(older)
    assert ring.can_push()
    ring.push(index_frame(4))
    assert not ring.can_push()  # slot 1 belongs to `newer`
    assert_clip_order(newer.view, 1)


def test_repeat_copies_a_slot(hotpath):
    ring = make_ring(hotpath, clip_len=4, capacity=5)
    for index in range(3):
        ring.push(index_frame(index))
    assert ring.repeat(2) == 3
    assert ring.repeat(0) == 4
    view = ring.acquire().view[:, 0, 0, 0]
    np.testing.assert_array_equal(view, [1, 2, 2, 0])
    assert not np.shares_memory(ring.slot(3), ring.slot(2))
    with pytest.raises(IndexError):
        ring.repeat(99)


def test_repeat_of_the_slot_being_overwritten(hotpath):
    ring = make_ring(hotpath, clip_len=2, capacity=3)
    for index in range(3):
        ring.push(index_frame(index))
    assert ring.repeat(0) == 3  # slot 0 is the one being replaced by its own copy
    np.testing.assert_array_equal(ring.acquire().view[:, 0, 0, 0], [2, 0])


def test_slot_and_acquire_errors(hotpath):
    ring = make_ring(hotpath, clip_len=3, capacity=3)
    with pytest.raises(ValueError):
        ring.acquire()
    ring.push(index_frame(0))
    with pytest.raises(IndexError):
        ring.slot(1)
    with pytest.raises(IndexError):
        ring.slot(-1)
    for index in range(1, 5):
        ring.push(index_frame(index))
    with pytest.raises(IndexError):
        ring.slot(1)
    assert ring.slot(4)[0, 0, 0] == 4
    other = make_ring(hotpath, clip_len=3, capacity=3)
    for index in range(3):
        other.push(index_frame(index))
    with pytest.raises(ValueError):
        ring.release(other.acquire())


@pytest.mark.parametrize("kwargs", [
    dict(clip_len=0), dict(clip_len=4, capacity=3), dict(size=0), dict(interpolation="nearest"),
    dict(mean=(1, 2)),
])
def test_bad_constructor_arguments(hotpath, kwargs):
    with pytest.raises(ValueError):
        hotpath.ClipRing(**kwargs)


@pytest.mark.parametrize("frame", [
    np.zeros((24, 32, 3), np.float32), np.zeros((24, 32, 4), np.uint8), np.zeros((24, 32), np.uint8),
    np.zeros((24, 64, 3), np.uint8)[:, ::2], np.zeros((0, 32, 3), np.uint8),
], ids=["float32", "4 channels", "2-D", "non-contiguous", "zero-size"])
def test_push_bad_frame(hotpath, frame):
    ring = make_ring(hotpath)
    with pytest.raises(ValueError, match="frame"):
        ring.push(frame)
    assert ring.pushed == 0


def test_push_matches_preprocess_frame(hotpath, frames_factory):
    frames = frames_factory(640, 360, 3, seed=9)
    ring = hotpath.ClipRing(clip_len=3, size=112, scale=0.5)
    out = np.empty((3, 112, 112), np.float32)
    for frame in frames:
        seq = ring.push(frame)
        hotpath.preprocess_frame(frame, out, scale=0.5)
        np.testing.assert_array_equal(ring.slot(seq), out)


def test_frame_size_may_change(hotpath, frames_factory):
    ring = hotpath.ClipRing(clip_len=2, size=32)
    out = np.empty((3, 32, 32), np.float32)
    for width, height in [(64, 48), (48, 64), (64, 48), (5, 5)]:
        frame = frames_factory(width, height, 1)[0]
        seq = ring.push(frame)
        hotpath.preprocess_frame(frame, out)
        np.testing.assert_array_equal(ring.slot(seq), out)


def test_native_push_allocates_nothing_per_frame(native_hotpath, frames_factory):
    native = native_hotpath
    frames = frames_factory(640, 360, 4, seed=10)
    ring = native.ClipRing(clip_len=16)
    for frame in frames * 4:  # warm up: tables, caches
        ring.push(frame)
    tracemalloc.start()
    try:
        for frame in frames * 5:
            ring.push(frame)
        before, _ = tracemalloc.get_traced_memory()
        for frame in frames * 100:
            ring.push(frame)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 1024, f"{after - before} bytes grew over 400 pushes"


def test_one_ring_for_both_implementations(hotpath):
    import edge.ring

    # The bookkeeping is written once (edge.ring); only the kernels differ.
    assert issubclass(hotpath.ClipRing, edge.ring.ClipRing)
    assert hotpath.ClipRing.kernels.SlotWriter is hotpath.SlotWriter
    assert hotpath.RingFullError is edge.ring.RingFullError and hotpath.ClipLease is edge.ring.ClipLease
    with pytest.raises(TypeError, match="kernels"):
        edge.ring.ClipRing(clip_len=2, size=SIZE)


def test_ring_exposes_its_options(hotpath):
    ring = hotpath.ClipRing(clip_len=3, size=SIZE, capacity=5, mean=(1, 2, 3), scale=0.5, interpolation="area")
    assert (ring.clip_len, ring.size, ring.capacity) == (3, SIZE, 5)
    assert (ring.mean, ring.scale, ring.interpolation) == ((1.0, 2.0, 3.0), 0.5, "area")


def test_preprocess_module_picks_one_implementation():
    assert edge.preprocess.IMPLEMENTATION in ("native", "numpy")
    active = edge.preprocess.implementation(edge.preprocess.IMPLEMENTATION)
    assert edge.preprocess.ClipRing is active.ClipRing
    assert edge.preprocess.preprocess_yuv is active.preprocess_yuv
    assert edge.preprocess.SIMD in ("sse2", "scalar", "numpy")
    with pytest.raises(ValueError):
        edge.preprocess.implementation("cuda")
