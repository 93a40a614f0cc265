"""Oracles and inputs for the hot-path tests (motion, yuv420p): written here, not in the code under test."""

from __future__ import annotations

import cv2
import numpy as np

MEAN = (114.7748, 107.7354, 99.4750)


def blob_oracle(frames, size=112, mean=MEAN):
    """The reference: blobFromImages(crop=True, swapRB=True), N×3×S×S float32."""
    return cv2.dnn.blobFromImages(list(frames), 1.0, (size, size), mean, swapRB=True, crop=True)


def smooth_bgr(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth but detailed BGR uint8 frame (coarse noise, cubic upsampled, plus gradients)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (max(2, height // 16), max(2, width // 16), 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth += 40 * np.sin(xs / max(width, 1) * 5 + ys / max(height, 1) * 3)[:, :, None]
    return np.clip(smooth, 0, 255).astype(np.uint8)


def i420_planes(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """yuv420p planes of a smooth picture at any size: Y height×width, U and V ⌈h/2⌉×⌈w/2⌉.

    Made by cv2 (BGR→I420) at the even size that holds the picture, Y then cropped, as a
    decoder's planes of an odd-sized video are.
    """
    even_w, even_h = width + width % 2, height + height % 2
    i420 = cv2.cvtColor(smooth_bgr(even_w, even_h, seed), cv2.COLOR_BGR2YUV_I420).reshape(-1)
    y = i420[: even_w * even_h].reshape(even_h, even_w)[:height, :width]
    chroma = (even_h // 2) * (even_w // 2)
    u = i420[even_w * even_h : even_w * even_h + chroma].reshape(even_h // 2, even_w // 2)
    v = i420[even_w * even_h + chroma :].reshape(even_h // 2, even_w // 2)
    return np.ascontiguousarray(y), u.copy(), v.copy()


def cv2_i420_to_bgr(y, u, v) -> np.ndarray:
    """cv2.cvtColor(COLOR_YUV2BGR_I420) of the planes; odd sizes are padded to even, then cropped."""
    height, width = y.shape
    even = np.pad(y, ((0, height % 2), (0, width % 2)), mode="edge")
    buffer = np.concatenate([even.reshape(-1), np.ascontiguousarray(u).reshape(-1), np.ascontiguousarray(v).reshape(-1)])
    bgr = cv2.cvtColor(buffer.reshape(even.shape[0] * 3 // 2, even.shape[1]), cv2.COLOR_YUV2BGR_I420)
    return np.ascontiguousarray(bgr[:height, :width])


def bt601_limited_to_bgr(y, u, v) -> np.ndarray:
    """The documented arithmetic, written out for the test: BT.601 limited range in 20-bit fixed point,
    nearest chroma per 2×2 block, rounded (+2^19) and saturated."""
    height, width = y.shape
    rows, cols = np.arange(height)[:, None] // 2, np.arange(width)[None, :] // 2
    luma = (np.maximum(y.astype(np.int64) - 16, 0) * round(1.164 * 2**20)) + 2**19
    cu = u.astype(np.int64)[rows, cols] - 128
    cv = v.astype(np.int64)[rows, cols] - 128
    b = (luma + round(2.018 * 2**20) * cu) >> 20
    g = (luma - round(0.813 * 2**20) * cv - round(0.391 * 2**20) * cu) >> 20
    r = (luma + round(1.596 * 2**20) * cv) >> 20
    return np.clip(np.stack([b, g, r], axis=-1), 0, 255).astype(np.uint8)


def motion_oracle(slot: np.ndarray, previous: np.ndarray, scale: float = 1.0) -> float:
    """Mean |slot - previous| over the 3×S×S slot, in grey levels (float64)."""
    return float(np.abs(slot.astype(np.float64) - previous.astype(np.float64)).mean()) / abs(scale)


def moving_square(width: int, height: int, count: int, step: int = 3, side_fraction: float = 0.15,
                  seed: int = 0) -> list[np.ndarray]:
    """``count`` BGR frames: a still smooth background and a square (side_fraction of the frame's
    area) moving ``step`` pixels per frame, diagonally."""
    background = smooth_bgr(width, height, seed)
    side = int(round((side_fraction * width * height) ** 0.5))
    frames = []
    for index in range(count):
        frame = background.copy()
        x, y = width // 4 + step * index, height // 4 + step * index // 2
        frame[y : y + side, x : x + side] = (40, 200, 230)
        frame[y + side // 3 : y + 2 * side // 3, x + side // 3 : x + 2 * side // 3] = (200, 30, 60)
        frames.append(frame)
    return frames


def noisy(frame: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """``frame`` plus Gaussian sensor noise of ``sigma`` grey levels per pixel and channel."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, frame.shape)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def textured_square_frames(width: int, height: int, count: int, step: int, sigma: float = 0.0,
                           seed: int = 0) -> list[np.ndarray]:
    """A still background with a textured square (15 % of the area, person-sized) moving ``step``
    px per frame to the right (``step`` 0: a still scene), plus fresh Gaussian noise of ``sigma``."""
    background = smooth_bgr(width, height, seed).astype(np.float32)
    side = int(round((0.15 * width * height) ** 0.5))
    patch = smooth_bgr(side, side, seed + 1).astype(np.float32)
    rng = np.random.default_rng(seed + 2)
    frames = []
    for index in range(count):
        picture = background.copy()
        if step:
            x = width // 4 + step * index
            picture[(height - side) // 2 : (height + side) // 2, x : x + side] = patch[: side, : min(side, width - x)]
        if sigma:
            picture += rng.normal(0.0, sigma, picture.shape).astype(np.float32)
        frames.append(np.clip(picture, 0, 255).astype(np.uint8))
    return frames


def h264_planes(frames: list[np.ndarray], path, crf: int = 23, gop: int = 250) -> list[tuple]:
    """``frames`` through libx264 (PyAV, yuv420p) and back: the decoder's planes (padded rows) per frame."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        stream.codec_context.gop_size = gop
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    planes = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            planes.append(tuple(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].copy()
                                for p in frame.planes))
    return planes
