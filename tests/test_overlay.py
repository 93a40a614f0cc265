import numpy as np
import pytest

from edge.overlay import UNTRAINED_TAG, OverlayState, draw_overlay, overlay_state
from edge.records import Clip, Prediction


def _prediction(label="washing hands", score=0.87, uncertain=False):
    clip = Clip(clip_index=0, frame_indices=tuple(range(16)), start_time_s=0.0, end_time_s=0.6)
    return Prediction(clip=clip, label=label, score=score, top_k=((label, score),),
                      probabilities=np.zeros(400, np.float32), uncertain=uncertain)


def test_label_line():
    state = overlay_state(_prediction())
    assert state.lines == ("washing hands 0.87",)
    assert state.tag is None and not state.uncertain and not state.warming


def test_a_learned_head_adds_its_best_class_under_the_label():
    from dataclasses import replace

    prediction = replace(_prediction(), custom_top_k=(("gloves_on", 0.912), ("sanitise", 0.05)))
    assert overlay_state(prediction, activity=("gloving", 3.0)).lines == \
        ("washing hands 0.87", "custom:gloves_on 0.91", "gloving 3 s")
    assert overlay_state(prediction, still=True).lines == ("still",)


def test_uncertain_line_from_flag_or_threshold():
    assert overlay_state(_prediction(score=0.31, uncertain=True)).lines[0] == "uncertain (best: washing hands 0.31)"
    state = overlay_state(_prediction(score=0.31), threshold=0.5)
    assert state.lines[0] == "uncertain (best: washing hands 0.31)" and state.uncertain


def test_warming_untrained_and_stats_lines():
    state = overlay_state(None, warming=(5, 16), untrained=True,
                          stats={"fps": 12.34, "infer_ms": 48.4, "e2e_ms": 95.2})
    assert state.lines == ("warming up 5/16", "12.3 fps | infer 48 ms | e2e 95 ms")
    assert state.tag == UNTRAINED_TAG and state.warming
    assert overlay_state(None, stats={"fps": 30.0}).lines[1] == "30.0 fps"


@pytest.mark.parametrize("width, height", [(176, 144), (640, 480), (1920, 1080)])
@pytest.mark.parametrize("background", [0, 255])
def test_band_is_dark_with_bright_text_on_any_background(width, height, background):
    image = np.full((height, width, 3), background, np.uint8)
    state = overlay_state(_prediction(), stats={"fps": 25.0, "infer_ms": 40.0, "e2e_ms": 80.0})
    draw_overlay(image, state)
    band = image[: height // 10, : width // 5].astype(int).sum(axis=2) / 3
    dark = np.mean(band < 60)
    bright = np.mean(band > 200)
    assert dark > 0.4, "the band should be mostly dark"
    assert 0.01 < bright < 0.6, "white text should be in the band"
    # The band stays at the top left: the bottom right corner is untouched.
    assert np.all(image[-height // 4:, -width // 4:] == background)


def test_untrained_tag_is_red_and_below_the_band():
    image = np.full((480, 640, 3), 128, np.uint8)
    draw_overlay(image, overlay_state(_prediction(), untrained=True))
    reddish = (image[..., 2].astype(int) - image[..., 0] > 100) & (image[..., 2] > 150)
    rows = np.nonzero(reddish.any(axis=1))[0]
    assert rows.size and rows.min() > 10  # under the first line's band
    assert np.nonzero(reddish.any(axis=0))[0].min() == 0  # starts at the left edge


def test_long_text_fits_a_small_frame():
    image = np.full((144, 176, 3), 255, np.uint8)
    draw_overlay(image, overlay_state(_prediction(label="passing American football (not in game)", score=0.2),
                                      threshold=0.5))
    assert np.any(image[:20, 150:] < 60)  # the band reaches across, clipped to the frame


def test_rejects_bad_images():
    with pytest.raises(ValueError):
        draw_overlay(np.zeros((10, 10), np.uint8), OverlayState(lines=("x",)))
    with pytest.raises(ValueError):
        draw_overlay(np.zeros((10, 10, 3), np.float32), OverlayState(lines=("x",)))
