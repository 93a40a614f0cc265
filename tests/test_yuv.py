"""yuv420p planes straight into a slot (preprocess_yuv, ClipRing.push_yuv), native and twin.

Oracles: the BT.601 limited-range arithmetic written out in the test (support_hotpath), and the
path it replaces, cv2.cvtColor(I420→BGR) then cv2.dnn.blobFromImages.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from support_hotpath import MEAN, blob_oracle, bt601_limited_to_bgr, cv2_i420_to_bgr, i420_planes, smooth_bgr

SIZES = [(1920, 1080), (1280, 720), (640, 480), (641, 359), (50, 40), (1080, 1920), (33, 17), (1, 1), (3, 2)]


def run_yuv(hotpath, planes, size=112, **kwargs):
    out = np.full((3, size, size), np.nan, np.float32)
    hotpath.preprocess_yuv(*planes, out, **kwargs)
    return out


def test_written_out_arithmetic_is_cv2s():
    # The test's own oracle must itself be cv2's conversion, bit for bit (even and odd sizes).
    for width, height in [(64, 48), (63, 47)]:
        rng = np.random.default_rng(width)
        y = rng.integers(0, 256, (height, width), dtype=np.uint8)
        u = rng.integers(0, 256, ((height + 1) // 2, (width + 1) // 2), dtype=np.uint8)
        v = rng.integers(0, 256, u.shape, dtype=np.uint8)
        np.testing.assert_array_equal(bt601_limited_to_bgr(y, u, v), cv2_i420_to_bgr(y, u, v))


@pytest.mark.parametrize("width,height", SIZES)
def test_matches_oracle_arithmetic(hotpath, width, height):
    planes = i420_planes(width, height, seed=width + height)
    expected = blob_oracle([bt601_limited_to_bgr(*planes)])[0]
    diff = np.abs(run_yuv(hotpath, planes) - expected)
    assert diff.max() <= 1.0
    assert diff.mean() <= 0.1  # 0.07 at 3×2: cv2's rounding in extreme upscales, as for BGR frames


@pytest.mark.parametrize("width,height", [(1920, 1080), (1280, 720), (640, 480), (641, 359), (50, 40)])
def test_matches_cvtcolor_then_blob_from_images(hotpath, width, height):
    planes = i420_planes(width, height, seed=7)
    expected = blob_oracle([cv2_i420_to_bgr(*planes)])[0]
    diff = np.abs(run_yuv(hotpath, planes) - expected)
    assert diff.mean() <= 0.5
    assert diff.max() <= 2.0


@pytest.mark.parametrize("width,height", [(1920, 1080), (641, 359), (50, 40), (7, 5)])
@pytest.mark.parametrize("interpolation", ["linear", "area"])
def test_bit_exact_with_the_frame_path_on_the_written_out_conversion(hotpath, width, height, interpolation):
    # Converting only the taps must change nothing: the slot equals preprocess_frame of the whole
    # frame converted by the test's own arithmetic, bit for bit (random planes hit every clamp).
    rng = np.random.default_rng(width)
    y = rng.integers(0, 256, (height, width), dtype=np.uint8)
    u = rng.integers(0, 256, ((height + 1) // 2, (width + 1) // 2), dtype=np.uint8)
    v = rng.integers(0, 256, u.shape, dtype=np.uint8)
    expected = np.empty((3, 112, 112), np.float32)
    hotpath.preprocess_frame(bt601_limited_to_bgr(y, u, v), expected, interpolation=interpolation)
    np.testing.assert_array_equal(run_yuv(hotpath, (y, u, v), interpolation=interpolation), expected)


def test_random_planes_saturating_colours(hotpath):
    # Uniform noise reaches every clamp of the conversion (R, G, B below 0 and above 255).
    rng = np.random.default_rng(3)
    y = rng.integers(0, 256, (240, 320), dtype=np.uint8)
    u = rng.integers(0, 256, (120, 160), dtype=np.uint8)
    v = rng.integers(0, 256, (120, 160), dtype=np.uint8)
    expected = blob_oracle([cv2_i420_to_bgr(y, u, v)])[0]
    diff = np.abs(run_yuv(hotpath, (y, u, v)) - expected)
    assert diff.max() <= 1.0 and diff.mean() <= 0.05


@pytest.mark.parametrize("width,height", [(1920, 1080), (640, 480), (641, 359)])
def test_area_matches_cvtcolor_then_inter_area(hotpath, width, height):
    planes = i420_planes(width, height, seed=11)
    bgr = cv2_i420_to_bgr(*planes)
    expected = np.empty((3, 112, 112), np.float32)
    edge_twin = __import__("edge.preprocess", fromlist=["implementation"]).implementation("numpy")
    edge_twin.preprocess_frame(bgr, expected, interpolation="area")  # the twin is cv2.resize(INTER_AREA)
    diff = np.abs(run_yuv(hotpath, planes, interpolation="area") - expected)
    assert diff.max() <= 1.0 and diff.mean() <= 0.05


def test_same_as_push_of_the_converted_frame(hotpath):
    planes = i420_planes(640, 360, seed=2)
    bgr = bt601_limited_to_bgr(*planes)
    ring = hotpath.ClipRing(clip_len=2, size=112, scale=0.5, mean=(1.0, 2.0, 3.0))
    from_planes = ring.slot(ring.push_yuv(*planes)).copy()
    from_bgr = ring.slot(ring.push(bgr)).copy()
    assert np.abs(from_planes - from_bgr).max() <= 0.5  # one grey level at scale 0.5
    assert ring.motion(1) <= 0.02  # the same picture twice


def padded(plane: np.ndarray, pad: int) -> np.ndarray:
    """``plane`` as a decoder hands it over: rows ``pad`` bytes longer than the picture."""
    storage = np.full((plane.shape[0], plane.shape[1] + pad), 77, np.uint8)
    storage[:, : plane.shape[1]] = plane
    return storage[:, : plane.shape[1]]


@pytest.mark.parametrize("width,height", [(640, 360), (641, 359), (50, 40)])
@pytest.mark.parametrize("interpolation", ["linear", "area"])
def test_strided_planes(hotpath, width, height, interpolation):
    planes = i420_planes(width, height, seed=5)
    expected = run_yuv(hotpath, planes, interpolation=interpolation)
    padded_planes = tuple(padded(plane, 32 + 3 * index) for index, plane in enumerate(planes))
    assert not any(plane.flags.c_contiguous for plane in padded_planes)
    np.testing.assert_array_equal(run_yuv(hotpath, padded_planes, interpolation=interpolation), expected)
    # Every other column of a wider plane, and planes stored upside down (negative row stride).
    wide = tuple(np.repeat(plane, 2, axis=1)[:, ::2] for plane in planes)
    np.testing.assert_array_equal(run_yuv(hotpath, wide, interpolation=interpolation), expected)
    flipped = tuple(np.ascontiguousarray(plane[::-1])[::-1] for plane in planes)
    np.testing.assert_array_equal(run_yuv(hotpath, flipped, interpolation=interpolation), expected)
    read_only = tuple(plane.copy() for plane in planes)
    for plane in read_only:
        plane.flags.writeable = False
    np.testing.assert_array_equal(run_yuv(hotpath, read_only, interpolation=interpolation), expected)


def test_pyav_decoder_planes(hotpath, tmp_path):
    # Real decoder planes (PyAV, padded rows) against FFmpeg's own conversion to BGR (swscale).
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 318, 238, "yuv420p"
        for index in range(3):
            picture = av.VideoFrame.from_ndarray(np.roll(smooth_bgr(318, 238, 1), 5 * index, axis=1), format="bgr24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 3
    for frame in frames:
        planes = tuple(np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
                       for plane in frame.planes)
        assert planes[0].shape == (238, 318) and planes[1].shape == (119, 159)
        got = run_yuv(hotpath, planes)
        exact = blob_oracle([bt601_limited_to_bgr(*planes)])[0]
        assert np.abs(got - exact).max() <= 1.0
        # swscale's own tables round about one grey level darker than cv2's BT.601 arithmetic.
        swscale = blob_oracle([frame.to_ndarray(format="bgr24")])[0]
        diff = np.abs(got - swscale)
        assert diff.mean() <= 1.5 and diff.max() <= 4.0


def test_ring_push_yuv_sequence_and_motion(hotpath):
    ring = hotpath.ClipRing(clip_len=3, size=32, capacity=4)
    pictures = [i420_planes(96, 64, seed=seed) for seed in range(6)]
    out = np.empty((3, 32, 32), np.float32)
    for index, planes in enumerate(pictures):
        seq = ring.push_yuv(*planes)
        assert seq == index
        hotpath.preprocess_yuv(*planes, out)
        np.testing.assert_array_equal(ring.slot(seq), out)
    lease = ring.acquire()
    np.testing.assert_array_equal(lease.view[-1], out)
    assert np.shares_memory(lease.view[0], ring.slot(3))


def _bad_planes():
    y, u, v = i420_planes(64, 48)
    return {
        "u too small": (y, u[:-1], v, "u and v must be 24×32"),
        "v too wide": (y, u, np.zeros((24, 33), np.uint8), "u and v must be 24×32"),
        "odd size wants ceil": (y[:47, :63], u[:23], v[:23], "u and v must be 24×32"),
        "float y": (y.astype(np.float32), u, v, "y plane must be uint8"),
        "int16 u": (y, u.astype(np.int16), v, "u plane must be uint8"),
        "3-D y": (np.dstack([y, y, y]), u, v, "y plane must be 2-D"),
        "1-D v": (y, u, v.reshape(-1), "v plane must be 2-D"),
        "empty y": (y[:0], u[:0], v[:0], "y plane must not be empty"),
        "packed i420 buffer": (np.zeros((72, 64), np.uint8), u, v, "u and v must be 36×32"),
    }


@pytest.mark.parametrize("case", list(_bad_planes()))
def test_bad_planes_raise_value_error(hotpath, case):
    y, u, v, message = _bad_planes()[case]
    out = np.zeros((3, 16, 16), np.float32)
    with pytest.raises(ValueError, match=message):
        hotpath.preprocess_yuv(y, u, v, out)
    ring = hotpath.ClipRing(clip_len=2, size=16)
    with pytest.raises(ValueError, match=message):
        ring.push_yuv(y, u, v)
    assert ring.pushed == 0
    assert (out == 0).all()


def test_bad_out_and_type_errors(hotpath):
    planes = i420_planes(64, 48)
    with pytest.raises(ValueError, match="out"):
        hotpath.preprocess_yuv(*planes, np.zeros((3, 16, 16), np.float64))
    with pytest.raises(ValueError, match="out"):
        hotpath.preprocess_yuv(*planes, np.zeros((3, 16, 8), np.float32))
    with pytest.raises(TypeError):
        hotpath.preprocess_yuv(planes[0].tolist(), *planes[1:], np.zeros((3, 16, 16), np.float32))
    with pytest.raises(ValueError, match="interpolation"):
        hotpath.preprocess_yuv(*planes, np.zeros((3, 16, 16), np.float32), interpolation="cubic")


def test_native_push_yuv_allocates_nothing_per_frame(native_hotpath):
    import tracemalloc

    pictures = [i420_planes(640, 360, seed=seed) for seed in range(4)]
    ring = native_hotpath.ClipRing(clip_len=16)
    for planes in pictures * 4:
        ring.push_yuv(*planes)
    tracemalloc.start()
    try:
        for planes in pictures * 5:
            ring.push_yuv(*planes)
        before, _ = tracemalloc.get_traced_memory()
        for planes in pictures * 100:
            ring.push_yuv(*planes)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 1024, f"{after - before} bytes grew over 400 pushes"


def test_constant_colour_is_exact(hotpath):
    # Mid grey (Y 126, U = V = 128) is (128, 128, 128) in cv2's conversion: every output pixel.
    y = np.full((90, 160), 126, np.uint8)
    u = np.full((45, 80), 128, np.uint8)
    out = run_yuv(hotpath, (y, u, u), mean=(0, 0, 0))
    assert cv2_i420_to_bgr(y, u, u)[0, 0].tolist() == [128, 128, 128]
    assert (out == 128.0).all()


def test_mean_and_scale_follow_push(hotpath):
    planes = i420_planes(320, 240, seed=9)
    plain = run_yuv(hotpath, planes, mean=(0, 0, 0))
    scaled = run_yuv(hotpath, planes, mean=MEAN, scale=1 / 255)
    np.testing.assert_allclose(scaled, (plain - np.float32(MEAN)[:, None, None]) / 255, atol=1e-5)


def test_cv2_reference_is_what_we_think(hotpath):
    # Sanity of the reference itself: cvtColor I420 of cv2's own BGR→I420 stays near the picture.
    bgr = smooth_bgr(64, 48, 4)
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    back = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    assert np.abs(back.astype(int) - bgr).mean() < 6
