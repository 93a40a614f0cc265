"""A deterministic test model and scripted videos, so tests can drive activities and rules.

The demo model is untrained: its labels cannot drive a rule. The test model
here is a tiny OpenVINO graph with the real interface (input ``clip``
1×3×16×112×112, N,C,T,H,W, mean-subtracted RGB; output ``logits`` 1×400, the
bundled Kinetics labels in its rt_info) whose logits depend only on the clip's
mean colour:

- red   → "washing hands"     (site activity handwash)
- blue  → "peeling potatoes"  (food_prep)
- green → "smoking"           (smoking)
- grey  → nothing: all 400 logits 0, a flat distribution (every label 1/400)

How: add the Kinetics mean back to the per-channel mean, measure how much
each of R, G, B stands out over the other two (``dominance = C − (others)/2``),
then ``logit = clamp((dominance − 60) / 4, 0, 20)`` on that colour's label.
A saturated colour gives logit 20 (probability ≈ 1); a clip at least about
half coloured is still active; grey and a clip only a quarter coloured give 0.

Videos are written from a script of ``(colour, seconds)`` segments: a solid
background with a small dark square moving across it (so the still-scene gate
sees motion), 160×120, 25 fps, mp4v.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import cv2
import numpy as np
import pytest

FPS = 25.0
SIZE = (160, 120)
CLIP_LEN = 16
KINETICS_MEAN = (114.7748, 107.7354, 99.4750)
LABELS = tuple(line.strip() for line in
               (importlib.resources.files("edge.bundled") / "kinetics400_labels.txt").read_text("utf-8").splitlines()
               if line.strip())

COLOURS_BGR = {  # saturated, away from the codec's clipping
    "red": (40, 40, 220),
    "green": (40, 200, 40),
    "blue": (220, 60, 40),
    "grey": (128, 128, 128),
}
COLOUR_LABEL = {"red": "washing hands", "blue": "peeling potatoes", "green": "smoking", "grey": None}

ACTIVITIES_YAML = {
    "handwash": {"labels": ["washing hands"], "min_score": 0.5},
    "food_prep": {"labels": ["peeling potatoes", "cutting watermelon"], "min_score": 0.5},
    "smoking": {"labels": ["smoking"], "min_score": 0.5},
}

TEST_MODEL_SOURCE = ("edge-har test model: a clip's mean colour picks the label (red: washing hands, "
                     "blue: peeling potatoes, green: smoking, grey: none); for tests, not a classifier")


def build_test_model():
    """The colour → label graph as an ``ov.Model`` with edge-har metadata (``untrained`` false)."""
    import openvino as ov
    import openvino.opset13 as ops

    from edge.models.metadata import ModelMetadata, write_metadata

    clip = ops.parameter([1, 3, CLIP_LEN, 112, 112], ov.Type.f32, name="clip")
    channel_mean = ops.reduce_mean(clip, ops.constant(np.array([2, 3, 4], np.int64)), keep_dims=False)  # 1×3 RGB
    rgb = ops.add(channel_mean, ops.constant(np.array([KINETICS_MEAN], np.float32)))
    dominance = np.array([[1.0, -0.5, -0.5], [-0.5, 1.0, -0.5], [-0.5, -0.5, 1.0]], np.float32)  # rows R,G,B in
    stand_out = ops.matmul(rgb, ops.constant(dominance), False, False)  # 1×3: red, green, blue dominance
    strength = ops.clamp(ops.multiply(ops.subtract(stand_out, ops.constant(np.float32(60.0))),
                                      ops.constant(np.float32(0.25))), 0.0, 20.0)
    scatter = np.zeros((3, len(LABELS)), np.float32)
    for row, colour in enumerate(("red", "green", "blue")):
        scatter[row, LABELS.index(COLOUR_LABEL[colour])] = 1.0
    logits = ops.matmul(strength, ops.constant(scatter), False, False)
    logits.output(0).get_tensor().set_names({"logits"})
    clip.output(0).get_tensor().set_names({"clip"})
    model = ov.Model([ops.result(logits)], [clip], "colour_test_model")
    write_metadata(model, ModelMetadata(labels=LABELS, mean=KINETICS_MEAN, clip_len=CLIP_LEN, size=112,
                                        untrained=False, source=TEST_MODEL_SOURCE))
    return model


def save_test_model(folder) -> Path:
    """Save the test model as IR ``<folder>/colour-test-model.xml`` (+ .bin); returns the .xml path."""
    from edge.models.demo import save_model_atomic

    return save_model_atomic(build_test_model(), Path(folder) / "colour-test-model.xml")


@pytest.fixture(scope="session")
def colour_model_xml(tmp_path_factory):
    """The colour test model as OpenVINO IR, built once per session."""
    return save_test_model(tmp_path_factory.mktemp("colour-model"))


# ---------------------------------------------------------------- scripted videos

def script_frames(script, fps: float = FPS) -> list[str]:
    """The colour of every frame of a script ``[(colour, seconds), ...]`` (round(seconds × fps) frames each)."""
    colours = []
    for colour, seconds in script:
        if colour not in COLOURS_BGR:
            raise ValueError(f"unknown colour {colour!r}")
        colours += [colour] * int(round(seconds * fps))
    return colours


def scripted_frame(colour: str, index: int, size=SIZE) -> np.ndarray:
    """Frame ``index``: a solid colour with a 12×12 dark square moving 3 px per frame (BGR uint8)."""
    width, height = size
    image = np.empty((height, width, 3), np.uint8)
    image[:] = COLOURS_BGR[colour]
    x = (index * 3) % (width - 12)
    y = height // 2 - 6 + int(10 * np.sin(index / 5.0))
    image[y:y + 12, x:x + 12] = (70, 70, 70)
    return image


def write_script_video(path, script, fps: float = FPS, size=SIZE) -> Path:
    """Write the script as an mp4v video at ``path``; returns the path."""
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise OSError(f"cannot write {path}")
    try:
        for index, colour in enumerate(script_frames(script, fps)):
            writer.write(scripted_frame(colour, index, size))
    finally:
        writer.release()
    return path


@pytest.fixture(scope="session")
def script_video(tmp_path_factory):
    """``script_video(script)`` -> path of a cached video of ``[(colour, seconds), ...]``."""
    folder = tmp_path_factory.mktemp("scripted")

    def make(script) -> Path:
        name = "_".join(f"{colour}{seconds:g}" for colour, seconds in script) + ".mp4"
        path = folder / name
        if not path.is_file():
            write_script_video(path, script)
        return path

    return make


def read_frames(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def oracle_probabilities(xml_path, frames: list[np.ndarray]) -> np.ndarray:
    """Softmax of the model on one clip, with plain OpenVINO and ``cv2.dnn.blobFromImages`` (no edge code)."""
    import openvino as ov

    blob = cv2.dnn.blobFromImages(frames, 1.0, (112, 112), KINETICS_MEAN, swapRB=True, crop=True)
    clip = np.ascontiguousarray(blob.transpose(1, 0, 2, 3)[np.newaxis])  # T,C,H,W → 1,C,T,H,W
    compiled = ov.Core().compile_model(str(xml_path), "CPU")
    logits = compiled(clip)[0].reshape(-1).astype(np.float64)
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()
