"""The pure NumPy/OpenCV twin of the native hot path (``edge._hotpath``).

Same names, signatures and semantics as the Cython extension's kernels
(``preprocess_frame``, ``preprocess_yuv``, ``SlotWriter``); it is the fallback when the
extension is missing and the oracle the tests compare the extension against. The
parameter checks here are shared by both implementations; the ring around either set of
kernels is ``edge.ring``. Do not import this module directly outside tests and
benchmarks: use ``edge.preprocess``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

KINETICS_MEAN = (114.7748, 107.7354, 99.4750)  # RGB order
INTERPOLATIONS = ("linear", "area")


def resize_plan(height: int, width: int, size: int) -> tuple[float, int, int, int, int]:
    """How blobFromImages(crop=True) maps a ``height``×``width`` frame to ``size``×``size``.

    Returns ``(factor, resized_h, resized_w, crop_y, crop_x)``: the float32 resize
    factor (shorter side becomes ``size``), the resized shape cv2.resize computes
    from it (rounded), and the top-left corner of the centre crop (truncated).
    """
    factor = float(max(np.float32(size) / np.float32(width), np.float32(size) / np.float32(height)))
    resized_w = int(np.rint(width * factor))
    resized_h = int(np.rint(height * factor))
    return factor, resized_h, resized_w, int(0.5 * (resized_h - size)), int(0.5 * (resized_w - size))


def check_frame(frame) -> None:
    """Raise ValueError unless ``frame`` is a non-empty C-contiguous uint8 H×W×3 array."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame must be a numpy.ndarray, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8, got dtype {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be H×W×3 (BGR), got shape {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame must not be empty, got shape {frame.shape}")
    if not frame.flags.c_contiguous:
        raise ValueError("frame must be C-contiguous (use np.ascontiguousarray)")


def check_out(out) -> int:
    """Raise ValueError unless ``out`` is a writeable C-contiguous float32 3×S×S array; return S."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != np.float32:
        raise ValueError(f"out must be float32, got dtype {out.dtype}")
    if out.ndim != 3 or out.shape[0] != 3 or out.shape[1] != out.shape[2] or out.shape[1] == 0:
        raise ValueError(f"out must be 3×S×S with S >= 1, got shape {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    return out.shape[1]


def check_params(mean, scale, interpolation) -> tuple[tuple[float, float, float], float]:
    """Validate mean (3 numbers, RGB), scale (finite number) and interpolation name."""
    try:
        mean_rgb = tuple(float(m) for m in mean)
    except TypeError as error:
        raise ValueError(f"mean must be 3 numbers (RGB), got {mean!r}") from error
    if len(mean_rgb) != 3:
        raise ValueError(f"mean must be 3 numbers (RGB), got {len(mean_rgb)}")
    scale = float(scale)
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    return mean_rgb, scale


def _resample_crop(frame: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    height, width = frame.shape[:2]
    factor, _, _, crop_y, crop_x = resize_plan(height, width, size)
    if (height, width) == (size, size):
        return frame
    # "area" is a box filter for downscales; cv2 (and the native kernel) use bilinear to upscale.
    flag = cv2.INTER_AREA if interpolation == "area" and factor < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, None, fx=factor, fy=factor, interpolation=flag)
    return resized[crop_y : crop_y + size, crop_x : crop_x + size]


def _write_slot(crop: np.ndarray, out: np.ndarray, mean_rgb, scale: float) -> None:
    for channel in range(3):
        np.subtract(crop[:, :, 2 - channel], np.float32(mean_rgb[channel]), out=out[channel], dtype=np.float32)
    if scale != 1.0:
        np.multiply(out, np.float32(scale), out=out)


def check_planes(y, u, v) -> None:
    """Raise ValueError unless y, u, v are yuv420p planes: uint8 2-D, Y H×W, U and V ⌈H/2⌉×⌈W/2⌉."""
    for name, plane in (("y", y), ("u", u), ("v", v)):
        if not isinstance(plane, np.ndarray):
            raise TypeError(f"{name} plane must be a numpy.ndarray, got {type(plane).__name__}")
        if plane.dtype != np.uint8:
            raise ValueError(f"{name} plane must be uint8, got dtype {plane.dtype}")
        if plane.ndim != 2:
            raise ValueError(f"{name} plane must be 2-D, got shape {plane.shape}")
        if plane.shape[0] == 0 or plane.shape[1] == 0:
            raise ValueError(f"{name} plane must not be empty, got shape {plane.shape}")
    chroma = ((y.shape[0] + 1) // 2, (y.shape[1] + 1) // 2)
    if u.shape != chroma or v.shape != chroma:
        raise ValueError(f"yuv420p planes: u and v must be {chroma[0]}×{chroma[1]} (⌈H/2⌉×⌈W/2⌉) for a "
                         f"{y.shape[0]}×{y.shape[1]} y plane, got u {u.shape} and v {v.shape}")


def check_previous(previous, size: int) -> None:
    """Raise unless ``previous`` is None or a C-contiguous float32 3×S×S slot."""
    if previous is None:
        return
    if not isinstance(previous, np.ndarray):
        raise TypeError(f"previous must be a numpy.ndarray or None, got {type(previous).__name__}")
    if previous.dtype != np.float32 or previous.shape != (3, size, size) or not previous.flags.c_contiguous:
        raise ValueError(f"previous must be a C-contiguous float32 3×{size}×{size} slot like out, "
                         f"got {previous.dtype} {previous.shape}")


# cv2.cvtColor(COLOR_YUV2BGR_I420)'s BT.601 limited-range constants (OpenCV ITUR_BT_601_*, 20-bit).
_CY, _CUB, _CUG, _CVG, _CVR = 1220542, 2116026, -409993, -852492, 1673527


def yuv420p_to_bgr(y, u, v) -> np.ndarray:
    """yuv420p planes -> uint8 H×W×3 BGR, bit-exact with cv2.cvtColor(COLOR_YUV2BGR_I420) (which
    needs even sizes; here any size: pixel (x, y) takes chroma (x // 2, y // 2)).

    Y' = max(Y - 16, 0)·1.164, U' = U - 128, V' = V - 128; R = Y' + 1.596 V',
    G = Y' - 0.813 V' - 0.391 U', B = Y' + 2.018 U', in 20-bit fixed point, rounded, saturated.
    """
    height, width = y.shape
    luma = np.maximum(y.astype(np.int64) - 16, 0) * _CY + (1 << 19)
    cu = np.repeat(np.repeat(u.astype(np.int64) - 128, 2, axis=0), 2, axis=1)[:height, :width]
    cv = np.repeat(np.repeat(v.astype(np.int64) - 128, 2, axis=0), 2, axis=1)[:height, :width]
    bgr = np.stack([luma + _CUB * cu, luma + _CVG * cv + _CUG * cu, luma + _CVR * cv], axis=-1) >> 20
    return np.clip(bgr, 0, 255).astype(np.uint8)


def _motion(new: np.ndarray, previous: np.ndarray | None, scale: float) -> float:
    if previous is None:
        return 255.0
    if scale == 0.0:
        return 0.0
    return float(np.abs(new - previous).mean(dtype=np.float64)) / abs(scale)


def _write(bgr: np.ndarray, out: np.ndarray, previous, mean_rgb, scale: float, interpolation: str) -> float:
    size = out.shape[1]
    if previous is not None and np.shares_memory(previous, out):
        previous = previous.copy()  # the ring's capacity-1 case: the previous slot is this one
    _write_slot(_resample_crop(bgr, size, interpolation), out, mean_rgb, scale)
    return _motion(out, previous, scale)


def preprocess_frame(frame, out, mean=KINETICS_MEAN, scale=1.0, interpolation="linear", previous=None) -> float:
    """Resize (shorter side to S), centre-crop, BGR→RGB, subtract mean, scale, into ``out``.

    frame: uint8 H×W×3 BGR, C-contiguous, any size >= 1×1.
    out: float32 3×S×S, C-contiguous; ``out[c] = (crop_rgb[c] - mean[c]) * scale``.
    previous: None or the previous slot (float32 3×S×S, C-contiguous; may be ``out`` itself).
    ``interpolation`` "linear" matches blobFromImages(crop=True); "area" is a box filter
    for downscales. Returns the motion: mean |out - previous| / |scale| over the slot, in grey
    levels (255.0 without ``previous``). Raises ValueError for a bad dtype, shape, contiguity
    or size.
    """
    check_frame(frame)
    size = check_out(out)
    check_previous(previous, size)
    mean_rgb, scale = check_params(mean, scale, interpolation)
    return _write(frame, out, previous, mean_rgb, scale, interpolation)


def preprocess_yuv(y, u, v, out, mean=KINETICS_MEAN, scale=1.0, interpolation="linear", previous=None) -> float:
    """``preprocess_frame`` of the BGR frame cv2.cvtColor(I420→BGR) would make of yuv420p planes.

    y: uint8 H×W; u, v: uint8 ⌈H/2⌉×⌈W/2⌉; any strides. Colour: ``yuv420p_to_bgr``. Returns
    the motion as ``preprocess_frame`` does. Raises ValueError for bad shapes or dtypes.
    """
    check_planes(y, u, v)
    size = check_out(out)
    check_previous(previous, size)
    mean_rgb, scale = check_params(mean, scale, interpolation)
    return _write(yuv420p_to_bgr(y, u, v), out, previous, mean_rgb, scale, interpolation)


class SlotWriter:
    """The kernels of one ring: ``preprocess_frame``/``preprocess_yuv`` with fixed S, mean, scale
    and interpolation (the native one keeps its sampling tables between frames)."""

    def __init__(self, size=112, mean=KINETICS_MEAN, scale=1.0, interpolation="linear"):
        size = int(size)
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.mean, self.scale = check_params(mean, scale, interpolation)
        self.interpolation = interpolation

    def _check_out(self, out) -> None:
        if check_out(out) != self.size:
            raise ValueError(f"out must be 3×{self.size}×{self.size}, got shape {out.shape}")

    def write(self, frame, out, previous=None) -> float:
        """``preprocess_frame(frame, out, ..., previous=previous)``; returns the motion."""
        self._check_out(out)
        return preprocess_frame(frame, out, self.mean, self.scale, self.interpolation, previous)

    def write_yuv(self, y, u, v, out, previous=None) -> float:
        """``preprocess_yuv(y, u, v, out, ..., previous=previous)``; returns the motion."""
        self._check_out(out)
        return preprocess_yuv(y, u, v, out, self.mean, self.scale, self.interpolation, previous)
