"""NNCF INT8 quantisation calibrated on clips made by the project's own clip ring."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from edge.models.describe import describe_model
from edge.models.paths import default_model_path
from edge.models.quantize import calibration_clips, quantize_model
from edge.models.loading import ModelError, load_model

pytest.importorskip("nncf")


@pytest.fixture(scope="session")
def demo_xml(tmp_path_factory):
    # default_model_path builds the demo IR once and caches it on disk for the whole session
    return default_model_path(cache_dir=tmp_path_factory.getbasetemp() / "edge-home")


def write_video(path, frames=40, size=(160, 120)):
    """Moving shapes: a red disc sliding right, a green square sliding down, over a grey field."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, size)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 60, np.uint8)
        cv2.circle(frame, (10 + 3 * i, 60), 15, (0, 0, 255), -1)
        cv2.rectangle(frame, (100, 5 + 2 * i), (130, 35 + 2 * i), (0, 255, 0), -1)
        writer.write(frame)
    writer.release()
    return path


def test_calibration_clips_are_batch_clips_with_loop_padding(tmp_path):
    video = write_video(tmp_path / "v.mp4", frames=40)
    clips = calibration_clips([video], 16, 112, (114.7748, 107.7354, 99.4750))
    assert len(clips) == 3  # ceil(40 / 16)
    assert all(c.shape == (16, 3, 112, 112) and c.dtype == np.float32 for c in clips)
    # the tail of 8 frames (32..39) is loop-padded: frame k of the last clip repeats frame k - 8
    np.testing.assert_array_equal(clips[2][8:], clips[2][:8])
    # preprocessing matches cv2.dnn.blobFromImages (RGB, mean, centre crop) within ~1 grey level
    capture = cv2.VideoCapture(str(video))
    frame = capture.read()[1]
    capture.release()
    blob = cv2.dnn.blobFromImages([frame], 1.0, (112, 112), (114.7748, 107.7354, 99.4750), swapRB=True, crop=True)
    assert np.abs(clips[0][0] - blob[0]).max() <= 1.5


def test_quantize_demo_model(demo_xml, tmp_path):
    video = write_video(tmp_path / "v.mp4", frames=40)
    report = quantize_model(demo_xml, [tmp_path], tmp_path / "int8")
    assert report.clips == 3 and report.path.is_file()
    model, info = load_model(report)  # a report stands in for its path
    assert info.untrained
    types = [op.get_type_name() for op in model.get_ordered_ops()]
    assert types.count("FakeQuantize") >= 33  # every convolution's input is quantised
    facts = describe_model(report.path)
    assert facts["quantized"] and facts["weight_precisions"].get("i8", 0) > 60e6
    assert report.f32_p50_ms > 0 and report.int8_p50_ms > 0
    # With random weights the class margins are small, so top-1 may flip on some clips where a
    # trained model's would not; the logits themselves must still track the f32 model closely.
    assert report.logits_correlation > 0.98
    assert report.top1_agreement >= 2 / 3
    assert str(video) in report.videos


def test_errors(demo_xml, tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="calibration video not found"):
        quantize_model(demo_xml, [tmp_path / "none.mp4"], tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no calibration videos"):
        quantize_model(demo_xml, tmp_path / "empty", tmp_path)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(ModelError, match="junk.mp4"):
        quantize_model(demo_xml, tmp_path / "junk.mp4", tmp_path)
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(ModelError, match=r"pip install 'edge-har\[quantize\]'"):
        quantize_model(demo_xml, tmp_path, tmp_path)
