"""Scripted motion classes the untrained demo model's features tell apart, and the folders learn reads.

Every video is 160×120 at 25 fps, 1.28 s (two clips of 16 frames in batch mode), on a random dark
background (seeded): ``sweep`` a bright bar moving right, ``rise`` a bar moving up, ``blink`` a square
blinking every 4 frames, ``pulse`` the whole picture breathing, ``still`` a fixed random texture.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FPS = 25.0
SIZE = (160, 120)
FRAMES = 32
KINDS = ("sweep", "rise", "blink", "pulse", "still")


def class_frames(kind: str, seed: int, frames: int = FRAMES) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    width, height = SIZE
    base = rng.integers(20, 90, 3).astype(np.uint8)
    texture = rng.integers(0, 40, (height, width, 3)).astype(np.uint8)
    speed = int(rng.integers(3, 7))
    offset = int(rng.integers(0, 40))
    out = []
    for index in range(frames):
        image = np.empty((height, width, 3), np.uint8)
        image[:] = base
        if kind == "sweep":
            x = (offset + index * speed) % (width - 16)
            image[:, x:x + 16] = (230, 230, 230)
        elif kind == "rise":
            y = height - 16 - (offset + index * speed) % (height - 16)
            image[y:y + 16, :] = (230, 230, 230)
        elif kind == "blink":
            if (index // 4) % 2 == 0:
                image[40:80, 60 + offset // 4:100 + offset // 4] = (240, 240, 240)
        elif kind == "pulse":
            level = 0.5 + 0.5 * np.sin(index / 2.0 + offset)
            image[:] = (base.astype(np.float32) + level * 150).clip(0, 255).astype(np.uint8)
        elif kind == "still":
            image = cv2.add(image, texture * 3)
        else:
            raise ValueError(f"unknown kind {kind!r}")
        out.append(image)
    return out


def write_class_video(path, kind: str, seed: int, frames: int = FRAMES) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    if not writer.isOpened():
        raise OSError(f"cannot write {path}")
    try:
        for image in class_frames(kind, seed, frames):
            writer.write(image)
    finally:
        writer.release()
    return path


def make_clips(root, per_class: dict[str, int], first_seed: int = 0) -> Path:
    """``root/<kind>/<n>.mp4``, ``per_class[kind]`` videos each, seeds counting up from ``first_seed``."""
    root = Path(root)
    seed = first_seed
    for kind, count in per_class.items():
        for number in range(count):
            write_class_video(root / kind / f"{number:02d}.mp4", kind, seed)
            seed += 1
    return root
