"""The label band drawn at the top left of each frame.

``overlay_state`` (pure) turns a prediction and some numbers into the text to
show; ``draw_overlay`` paints it in place: white text on a filled dark band
(readable on any background), then an optional red tag saying the model is
untrained. The overlay formats numbers it is given; it computes none.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.records import Prediction

UNTRAINED_TAG = "untrained demo model"
BAND_COLOUR = (32, 32, 32)        # BGR, near black
TEXT_COLOUR = (255, 255, 255)
TAG_COLOUR = (40, 40, 200)        # BGR, red
FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_FONT_SCALE = 0.3


@dataclass(frozen=True)
class OverlayState:
    """What to draw: ``lines`` in the dark band (label first, stats second), an optional ``tag``."""

    lines: tuple[str, ...]
    tag: str | None = None
    uncertain: bool = False
    warming: bool = False
    alert: str | None = None   # a failed check, drawn in red under the band


def _ascii(text: str) -> str:
    # Hershey fonts only have ASCII glyphs.
    return text.encode("ascii", "replace").decode("ascii")


def stats_line(stats: dict) -> str | None:
    """``"12.3 fps | infer 48 ms | e2e 95 ms"`` from keys ``fps``, ``infer_ms``, ``e2e_ms`` (any subset)."""
    parts = []
    if stats.get("fps") is not None:
        parts.append(f"{stats['fps']:.1f} fps")
    if stats.get("infer_ms") is not None:
        parts.append(f"infer {stats['infer_ms']:.0f} ms")
    if stats.get("e2e_ms") is not None:
        parts.append(f"e2e {stats['e2e_ms']:.0f} ms")
    return " | ".join(parts) or None


def overlay_state(prediction: Prediction | None, warming: tuple[int, int] | None = None,
                  untrained: bool = False, stats: dict | None = None,
                  threshold: float = 0.0, still: bool = False,
                  activity: tuple[str, float] | None = None, alert: str | None = None) -> OverlayState:
    """Build the overlay text.

    Line 1: ``"washing hands 0.87"``; ``"uncertain (best: X 0.31)"`` when the
    prediction is flagged uncertain or scores under ``threshold``; ``"still"``
    when the still-scene gate skipped the latest clip; ``"warming up k/n"`` when
    there is no prediction yet and ``warming=(k, n)``.
    Then the learned head's best class, ``"custom:gloves_on 0.91"``, when the model has one
    (``edge-har learn``); ``"handwash 12 s"`` while an activity segment is open (``activity`` =
    (name, running seconds)), and the stats line when ``stats`` is given (see
    ``stats_line``). ``alert``: a failed check, shown in red.
    """
    warming_up = False
    if still:
        uncertain = False
        first = "still"
    elif prediction is not None:
        uncertain = prediction.uncertain or prediction.score < threshold
        if uncertain:
            first = f"uncertain (best: {prediction.label} {prediction.score:.2f})"
        else:
            first = f"{prediction.label} {prediction.score:.2f}"
    else:
        uncertain = False
        if warming is not None:
            warming_up = True
            first = f"warming up {warming[0]}/{warming[1]}"
        else:
            first = "waiting for the first prediction"
    lines = [_ascii(first)]
    if prediction is not None and not still and prediction.custom_top_k:  # a learned head (edge-har learn)
        name, score = prediction.custom_top_k[0]
        lines.append(_ascii(f"custom:{name} {score:.2f}"))
    if activity is not None:
        lines.append(_ascii(f"{activity[0]} {activity[1]:.0f} s"))
    if stats:
        second = stats_line(stats)
        if second:
            lines.append(_ascii(second))
    return OverlayState(lines=tuple(lines), tag=UNTRAINED_TAG if untrained else None,
                        uncertain=uncertain, warming=warming_up,
                        alert=_ascii(alert) if alert else None)


def font_scale_for(width: int, height: int, texts) -> float:
    """A font scale proportional to the frame, shrunk so the longest text fits the width."""
    scale = max(MIN_FONT_SCALE, min(width, height) / 600.0)
    widest = max((cv2.getTextSize(t, FONT, 1.0, 1)[0][0] for t in texts), default=1)
    fit = (width * 0.96) / max(widest, 1)
    return max(MIN_FONT_SCALE, min(scale, fit))


def draw_overlay(image: np.ndarray, state: OverlayState) -> None:
    """Draw ``state`` at the top left of ``image`` (uint8 H×W×3 BGR, C-contiguous) in place.

    Raises ``ValueError`` for another dtype, shape or layout.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 \
            or not image.flags.c_contiguous:
        raise ValueError(f"overlay needs a C-contiguous uint8 H×W×3 image, got {image.dtype} "
                         f"{image.shape}")
    height, width = image.shape[:2]
    texts = list(state.lines) + [t for t in (state.tag, state.alert) if t]
    scale = font_scale_for(width, height, texts)
    thickness = max(1, round(scale * 1.6))
    pad = max(2, round(6 * scale))
    sizes = [cv2.getTextSize(t, FONT, scale, thickness) for t in state.lines]
    line_h = max((h + base for (_, h), base in sizes), default=0) + pad
    band_w = min(width, max((w for (w, _), _ in sizes), default=0) + 2 * pad)
    band_h = min(height, line_h * len(state.lines) + pad)
    if state.lines:
        cv2.rectangle(image, (0, 0), (band_w - 1, band_h - 1), BAND_COLOUR, -1)
        for number, ((_, text_h), baseline) in enumerate(sizes):
            y = pad + number * line_h + text_h
            cv2.putText(image, state.lines[number], (pad, y), FONT, scale, TEXT_COLOUR, thickness, cv2.LINE_AA)
    top = band_h if state.lines else 0
    for text in (state.tag, state.alert):
        if text:
            top = _red_line(image, text, top, scale, pad)


def _red_line(image: np.ndarray, text: str, top: int, scale: float, pad: int) -> int:
    """A line of white text on red at ``top``; returns the y below it."""
    height, width = image.shape[:2]
    tag_scale = max(MIN_FONT_SCALE, scale * 0.75)
    tag_thickness = max(1, round(tag_scale * 1.6))
    (tag_w, tag_h), baseline = cv2.getTextSize(text, FONT, tag_scale, tag_thickness)
    bottom = min(height, top + tag_h + baseline + 2 * pad)
    if top >= height:
        return top
    cv2.rectangle(image, (0, top), (min(width, tag_w + 2 * pad) - 1, bottom - 1), TAG_COLOUR, -1)
    cv2.putText(image, text, (pad, top + pad + tag_h), FONT, tag_scale, TEXT_COLOUR, tag_thickness, cv2.LINE_AA)
    return bottom
