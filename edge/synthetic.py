"""Deterministic synthetic videos: coloured shapes moving over a gradient.

Used by the tests, the benchmarks and to make the bundled sample clip
(``edge/data/sample.mp4``). Every frame carries its own index twice: as small
digits in the bottom-right corner and as a 16-bit marker strip along the bottom
edge (white = 1, black = 0, most significant bit first), which
``read_frame_marker`` decodes so a test can tell frames apart even after lossy
compression.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

MARKER_BITS = 16

SAMPLE_SIZE = (320, 240)
SAMPLE_FPS = 25.0
SAMPLE_FRAMES = 175  # 7 s


def _gradient(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth two-colour diagonal gradient, uint8 H×W×3 BGR."""
    top_left = rng.integers(30, 120, size=3).astype(np.float32)
    bottom_right = rng.integers(120, 230, size=3).astype(np.float32)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    weight = (0.6 * xs + 0.4 * ys)[..., None]
    image = top_left * (1.0 - weight) + bottom_right * weight
    return np.ascontiguousarray(image.astype(np.uint8))


def _marker_geometry(width: int, height: int) -> tuple[int, int]:
    """(cell width, strip height) of the index marker for a frame size."""
    return max(1, width // MARKER_BITS), max(2, height // 20)


def _draw_marker(image: np.ndarray, index: int) -> None:
    height, width = image.shape[:2]
    cell_w, strip_h = _marker_geometry(width, height)
    for bit in range(MARKER_BITS):
        on = (index >> (MARKER_BITS - 1 - bit)) & 1
        x0 = bit * cell_w
        image[height - strip_h:, x0:x0 + cell_w] = 255 if on else 0


def read_frame_marker(image: np.ndarray) -> int:
    """Decode the frame index written by ``write_moving_shapes_video``.

    ``image``: uint8 H×W×3 BGR, the size the video was written at. Reliable
    from about 128×96 up (each marker cell must survive the codec's blocks).
    """
    height, width = image.shape[:2]
    cell_w, strip_h = _marker_geometry(width, height)
    gray = image.mean(axis=2) if image.ndim == 3 else image
    # Sample the centre of each cell, away from edges the codec blurs.
    y0, y1 = height - strip_h + strip_h // 4, height - strip_h // 4
    value = 0
    for bit in range(MARKER_BITS):
        x0, x1 = bit * cell_w + cell_w // 4, bit * cell_w + max(cell_w // 4 + 1, 3 * cell_w // 4)
        on = float(gray[y0:max(y1, y0 + 1), x0:x1].mean()) > 127.0
        value = (value << 1) | int(on)
    return value


def moving_shapes_frame(index: int, width: int, height: int, seed: int = 0,
                        background: np.ndarray | None = None) -> np.ndarray:
    """Frame ``index`` of the moving-shapes video: uint8 H×W×3 BGR, C-contiguous.

    A pure function of (index, width, height, seed); ``background`` may pass a
    cached gradient from ``_gradient`` to save time.
    """
    rng = np.random.default_rng(seed)
    base = _gradient(width, height, rng) if background is None else background
    image = base.copy()
    shapes = np.random.default_rng(seed + 1).random((4, 6))
    scale = min(width, height)
    for number, (fx, fy, vx, vy, fsize, fcolour) in enumerate(shapes):
        # Triangle-wave motion: bounces between the edges, never leaves the frame.
        px = abs(((fx + index * (0.004 + 0.012 * vx)) % 2.0) - 1.0)
        py = abs(((fy + index * (0.003 + 0.010 * vy)) % 2.0) - 1.0)
        x, y = int(px * (width - 1)), int(py * (height - 1))
        size = max(2, int(scale * (0.06 + 0.10 * fsize)))
        hue = int(fcolour * 179)
        colour = cv2.cvtColor(np.uint8([[[hue, 220, 240]]]), cv2.COLOR_HSV2BGR)[0, 0]
        colour = tuple(int(c) for c in colour)
        if number % 2 == 0:
            cv2.rectangle(image, (x - size, y - size), (x + size, y + size), colour, -1)
        else:
            cv2.circle(image, (x, y), size, colour, -1, cv2.LINE_AA)
    _draw_marker(image, index)
    if height >= 48:
        font_scale = max(0.3, min(width, height) / 600.0)
        text = str(index)
        (text_w, text_h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        _, strip_h = _marker_geometry(width, height)
        origin = (max(0, width - text_w - 3), height - strip_h - 3)
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (235, 235, 235), 1,
                    cv2.LINE_AA)
    return image


def write_moving_shapes_video(path, num_frames: int, width: int, height: int, fps: float = 25.0,
                              seed: int = 0, codec: str = "mp4v") -> Path:
    """Write ``num_frames`` frames of moving shapes to ``path`` with cv2.VideoWriter.

    The container follows the file suffix (``.mp4``, ``.avi``, ``.mkv``);
    ``codec`` is a FourCC such as ``"mp4v"`` or ``"MJPG"``. ``num_frames`` may be
    0 (an empty container). Deterministic for a given seed. Returns the path.
    Raises ``ValueError`` for a bad size or count and ``OSError`` when the
    writer cannot be opened.
    """
    if width < 2 or height < 2 or num_frames < 0:
        raise ValueError(f"bad video geometry: {num_frames} frames of {width}x{height}")
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), float(fps), (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot write video {path} with codec {codec!r}")
    try:
        background = _gradient(width, height, np.random.default_rng(seed))
        for index in range(num_frames):
            writer.write(moving_shapes_frame(index, width, height, seed, background))
    finally:
        writer.release()
    return path


def make_sample_clip(path) -> Path:
    """Make the bundled sample clip: 320×240, 25 fps, 7 s (175 frames), mp4v, seed 0.

    This is how ``edge/data/sample.mp4`` was produced:
    ``python -c "from edge.synthetic import make_sample_clip; make_sample_clip('edge/data/sample.mp4')"``.
    """
    width, height = SAMPLE_SIZE
    return write_moving_shapes_video(path, SAMPLE_FRAMES, width, height, fps=SAMPLE_FPS, seed=0,
                                     codec="mp4v")
