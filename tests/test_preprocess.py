"""Fused frame preprocessing (edge.preprocess) against cv2.dnn.blobFromImages, native and twin."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import edge.preprocess
from edge.hotpath_numpy import resize_plan

MEAN = (114.7748, 107.7354, 99.4750)
SIZES = [(176, 144), (640, 272), (1280, 720), (1920, 1080), (1080, 1920), (50, 40)]


def blob_oracle(frames, size=112):
    """The reference: blobFromImages(crop=True, swapRB=True) transposed N,C,H,W -> C,T,H,W."""
    blob = cv2.dnn.blobFromImages(frames, 1.0, (size, size), MEAN, swapRB=True, crop=True)
    return blob.transpose(1, 0, 2, 3)


def run(hotpath, frames, size=112, **kwargs):
    out = np.empty((len(frames), 3, size, size), np.float32)
    for frame, slot in zip(frames, out):
        hotpath.preprocess_frame(frame, slot, **kwargs)
    return out.transpose(1, 0, 2, 3)


def area_reference(frame, size=112):
    """cv2.resize INTER_AREA to the blobFromImages crop geometry, then crop, RGB, minus mean."""
    factor, _, _, crop_y, crop_x = resize_plan(*frame.shape[:2], size)
    resized = cv2.resize(frame, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    crop = resized[crop_y : crop_y + size, crop_x : crop_x + size, ::-1].astype(np.float32)
    return (crop - np.float32(MEAN)).transpose(2, 0, 1)


@pytest.mark.parametrize("width,height", SIZES)
def test_matches_blob_from_images(hotpath, frames_factory, width, height):
    frames = frames_factory(width, height, 3, seed=width)
    diff = np.abs(run(hotpath, frames) - blob_oracle(frames))
    assert diff.max() <= 1.0
    assert diff.mean() <= 0.05


@pytest.mark.parametrize("width,height", [(640, 480), (1920, 1080), (33, 500), (1, 1), (112, 112)])
def test_matches_blob_on_noise_and_odd_sizes(hotpath, width, height):
    frame = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    diff = np.abs(run(hotpath, [frame]) - blob_oracle([frame]))
    assert diff.max() <= 1.0 and diff.mean() <= 0.05


@pytest.mark.parametrize("width,height", [(640, 272), (1920, 1080), (50, 40)])
@pytest.mark.parametrize("interpolation", ["linear", "area"])
def test_native_and_twin_agree(native_hotpath, frames_factory, width, height, interpolation):
    native = native_hotpath
    twin = edge.preprocess.implementation("numpy")
    frames = frames_factory(width, height, 2, seed=3)
    kwargs = dict(mean=(1.0, 2.0, 3.0), scale=0.5, interpolation=interpolation)
    diff = np.abs(run(native, frames, **kwargs) - run(twin, frames, **kwargs))
    assert diff.max() <= 0.5 + 1e-6  # one grey level at scale 0.5
    assert diff.mean() <= 0.01


def test_other_output_size(hotpath, frames_factory):
    frames = frames_factory(320, 240, 1, seed=4)
    diff = np.abs(run(hotpath, frames, size=64) - blob_oracle(frames, size=64))
    assert diff.max() <= 1.0 and diff.mean() <= 0.05


def test_mean_and_scale(hotpath, frames_factory):
    frame = frames_factory(320, 240, 1, seed=5)[0]
    plain = run(hotpath, [frame], mean=(0, 0, 0))
    scaled = run(hotpath, [frame], mean=(10.0, 20.0, 30.0), scale=1 / 255)
    expected = (plain - np.array([10.0, 20.0, 30.0], np.float32)[:, None, None, None]) / 255
    np.testing.assert_allclose(scaled, expected, atol=1e-5)
    assert 0 <= plain.min() and plain.max() <= 255


def test_rgb_order(hotpath):
    frame = np.zeros((90, 160, 3), np.uint8)
    frame[:] = (10, 20, 30)  # B, G, R
    out = run(hotpath, [frame], mean=(0, 0, 0))
    assert [float(out[c].mean()) for c in range(3)] == [30.0, 20.0, 10.0]


@pytest.mark.parametrize("width,height", [(1920, 1080), (1080, 1920), (640, 480), (224, 224)])
def test_area_matches_inter_area(hotpath, frames_factory, width, height):
    frames = frames_factory(width, height, 2, seed=6)
    got = run(hotpath, frames, interpolation="area").transpose(1, 0, 2, 3)
    for frame, slot in zip(frames, got):
        diff = np.abs(slot - area_reference(frame))
        assert diff.max() <= 1.0 and diff.mean() <= 0.05


def test_area_antialiases_fine_stripes(hotpath):
    # One-pixel stripes alias under bilinear sampling; a box filter averages them to grey.
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[:, ::2] = 255
    area = run(hotpath, [frame], mean=(0, 0, 0), interpolation="area")
    assert np.abs(area - 127.5).max() <= 15


def test_area_upscale_is_linear(hotpath, frames_factory):
    frames = frames_factory(50, 40, 1, seed=7)
    np.testing.assert_array_equal(run(hotpath, frames, interpolation="area"), run(hotpath, frames))


def _bad_frames():
    good = np.zeros((48, 64, 3), np.uint8)
    return {
        "float dtype": good.astype(np.float32),
        "int8 dtype": good.astype(np.int8),
        "4 channels": np.zeros((48, 64, 4), np.uint8),
        "1 channel": np.zeros((48, 64, 1), np.uint8),
        "2-D": np.zeros((48, 64), np.uint8),
        "4-D": np.zeros((1, 48, 64, 3), np.uint8),
        "non-contiguous": np.zeros((48, 128, 3), np.uint8)[:, ::2],
        "zero rows": np.zeros((0, 64, 3), np.uint8),
        "zero columns": np.zeros((48, 0, 3), np.uint8),
    }


@pytest.mark.parametrize("case", list(_bad_frames()))
def test_bad_frame_raises_value_error(hotpath, case):
    out = np.empty((3, 112, 112), np.float32)
    with pytest.raises(ValueError, match="frame"):
        hotpath.preprocess_frame(_bad_frames()[case], out)


@pytest.mark.parametrize("out", [
    np.empty((3, 112, 112), np.float64),
    np.empty((3, 112, 100), np.float32),
    np.empty((4, 112, 112), np.float32),
    np.empty((112, 112, 3), np.float32),
    np.empty((3, 0, 0), np.float32),
    np.empty((3, 112, 224), np.float32)[:, :, ::2],
], ids=["float64", "not square", "4 planes", "HWC", "empty", "non-contiguous"])
def test_bad_out_raises_value_error(hotpath, out):
    with pytest.raises(ValueError, match="out"):
        hotpath.preprocess_frame(np.zeros((48, 64, 3), np.uint8), out)


def test_read_only_out_and_bad_options(hotpath):
    frame = np.zeros((48, 64, 3), np.uint8)
    out = np.empty((3, 16, 16), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        hotpath.preprocess_frame(frame, out)
    out = np.empty((3, 16, 16), np.float32)
    with pytest.raises(ValueError, match="interpolation"):
        hotpath.preprocess_frame(frame, out, interpolation="cubic")
    with pytest.raises(ValueError, match="mean"):
        hotpath.preprocess_frame(frame, out, mean=(1.0, 2.0))
    with pytest.raises(TypeError):
        hotpath.preprocess_frame([[[0, 0, 0]]], out)


def test_read_only_frame_is_accepted(hotpath, frames_factory):
    frame = frames_factory(64, 48, 1)[0]
    frame.flags.writeable = False
    out = np.empty((3, 32, 32), np.float32)
    hotpath.preprocess_frame(frame, out)
    assert np.isfinite(out).all()


_DTYPES = st.sampled_from([np.uint8, np.int8, np.uint16, np.float32, np.float64, np.bool_])


@st.composite
def arbitrary_arrays(draw):
    dtype = draw(_DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=9))
    array = draw(hnp.arrays(dtype, shape, elements=None, fill=st.just(0) if dtype != np.bool_ else None))
    if array.ndim and draw(st.booleans()):  # strided or reversed views
        step = draw(st.sampled_from([-1, 2, -2]))
        axis = draw(st.integers(0, array.ndim - 1))
        index = [slice(None)] * array.ndim
        index[axis] = slice(None, None, step)
        array = array[tuple(index)]
    if array.ndim >= 2 and draw(st.booleans()):
        array = array.swapaxes(0, 1)
    return array


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(array=arbitrary_arrays(), size=st.integers(1, 9), area=st.booleans())
def test_arbitrary_arrays_work_or_raise_value_error(hotpath, array, size, area):
    out = np.empty((3, size, size), np.float32)
    interpolation = "area" if area else "linear"
    ring = hotpath.ClipRing(clip_len=2, size=size, interpolation=interpolation)
    for call in (lambda: hotpath.preprocess_frame(array, out, interpolation=interpolation),
                 lambda: ring.push(array)):
        try:
            call()
        except ValueError:
            continue
        assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
        assert np.isfinite(out).all()


@pytest.mark.parametrize("interpolation", ["linear", "area"])
def test_slot_writer_matches_preprocess_frame(hotpath, frames_factory, interpolation):
    # The writer keeps its sampling tables between frames; a size change must rebuild them.
    writer = hotpath.SlotWriter(48, mean=(1.0, 2.0, 3.0), scale=0.5, interpolation=interpolation)
    got, expected = np.empty((3, 48, 48), np.float32), np.empty((3, 48, 48), np.float32)
    for width, height in [(640, 360), (640, 360), (320, 480), (33, 21), (640, 360)]:
        frame = frames_factory(width, height, 1, seed=width)[0]
        assert writer.write(frame, got) == 255.0
        hotpath.preprocess_frame(frame, expected, mean=(1.0, 2.0, 3.0), scale=0.5, interpolation=interpolation)
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="out must be 3×48×48"):
        writer.write(frame, np.empty((3, 32, 32), np.float32))
    with pytest.raises(ValueError):
        hotpath.SlotWriter(0)
    with pytest.raises(ValueError, match="interpolation"):
        hotpath.SlotWriter(8, interpolation="cubic")
