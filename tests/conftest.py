"""Shared fixtures: the hot-path implementations and synthetic frames."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

import edge.preprocess


def _load_hotpath(name: str):
    if name == "native" and not edge.preprocess.NATIVE_AVAILABLE:
        if os.environ.get("EDGE_PUREPYTHON") == "1":
            pytest.skip(f"EDGE_PUREPYTHON=1 and the native extension is unavailable "
                        f"({edge.preprocess.NATIVE_IMPORT_ERROR})")
        pytest.fail(f"the native extension edge._hotpath is unavailable "
                    f"({edge.preprocess.NATIVE_IMPORT_ERROR}); build it with "
                    f"`python setup.py build_ext --inplace` or set EDGE_PUREPYTHON=1")
    return edge.preprocess.implementation(name)


@pytest.fixture(params=["native", "numpy"])
def hotpath(request):
    """Each hot-path test runs against the native extension and the NumPy twin.

    A missing native extension fails the native tests, unless EDGE_PUREPYTHON=1 asks for
    the twin only, in which case they are skipped.
    """
    return _load_hotpath(request.param)


@pytest.fixture
def native_hotpath():
    """The native extension alone (same skip/fail policy as ``hotpath``)."""
    return _load_hotpath("native")


def make_frames(width: int, height: int, n: int = 1, seed: int = 0) -> list[np.ndarray]:
    """``n`` random-but-smooth BGR uint8 frames (blurred noise plus gradients), height×width×3."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    coarse = (max(2, width // 24), max(2, height // 24))
    frames = []
    for _ in range(n):
        # Noise on a coarse grid, upsampled with a cubic: smooth but varied detail, fast at 1080p.
        noise = rng.uniform(0, 255, (coarse[1], coarse[0], 3)).astype(np.float32)
        smooth = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
        phase = rng.uniform(0, 2 * np.pi, 3)
        for channel in range(3):
            gradient = 60 * np.sin(xs / width * 3 + ys / height * 2 + phase[channel])
            smooth[:, :, channel] = 0.7 * smooth[:, :, channel] + gradient + 40
        frames.append(np.clip(smooth, 0, 255).astype(np.uint8))
    return frames


@pytest.fixture
def frames_factory():
    """``frames_factory(w, h, n, seed)`` -> list of smooth random BGR uint8 frames."""
    return make_frames
