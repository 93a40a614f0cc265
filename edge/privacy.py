"""Privacy masks: fixed regions of a camera's picture filled black in everything stored or served.

``Masks`` holds a camera's ``privacy.masks`` (polygons in 0-1 image coordinates) and fills them
black in a picture of any size: ``apply(bgr)`` for BGR images (the live view, the annotated video,
and — as the callable image → image that ``edge.evidence`` takes — clips and snapshots);
``apply_planes(y, u, v)`` for the decoder's yuv420p planes, which the clip ring reads when
``privacy.mask_inference`` is true (limited range: black is Y=16, U=V=128).

A camera without masks gets an empty ``Masks`` (falsy): callers keep it out of the hot path with
``if masks:``. The polygons scaled to a size are cached, so a picture costs one ``cv2.fillPoly``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

BLACK_BGR = (0, 0, 0)
BLACK_Y, BLACK_UV = 16, 128  # limited-range yuv420p black


class Masks:
    """Polygons (each ≥ 3 points ``(x, y)`` in 0-1 of the width and height) to fill black.

    ``apply`` and ``apply_planes`` may be called from any thread.
    """

    def __init__(self, polygons: Iterable[Sequence[Sequence[float]]] = ()) -> None:
        self.polygons: tuple[np.ndarray, ...] = tuple(np.asarray(polygon, np.float64).reshape(-1, 2)
                                                      for polygon in polygons)
        self._scaled: dict[tuple[int, int], list[np.ndarray]] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, camera) -> "Masks":
        """The masks of ``camera`` (a ``CameraConfig``): its ``privacy.masks``."""
        return cls(camera.privacy.masks)

    def __bool__(self) -> bool:
        return bool(self.polygons)

    def __len__(self) -> int:
        return len(self.polygons)

    def __repr__(self) -> str:
        return f"Masks({len(self.polygons)} polygons)"

    def points(self, width: int, height: int) -> list[np.ndarray]:
        """The polygons in pixels of a ``width``×``height`` picture (int32 N×2 each; cached per size).

        A point at 1.0 lands on the last pixel, so a polygon over the whole range covers every pixel.
        """
        key = (int(width), int(height))
        scaled = self._scaled.get(key)
        if scaled is None:
            scale = np.array([max(key[0] - 1, 0), max(key[1] - 1, 0)], np.float64)
            scaled = [np.ascontiguousarray(np.rint(polygon * scale).astype(np.int32)) for polygon in self.polygons]
            with self._lock:
                self._scaled[key] = scaled
        return scaled

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Fill the masks black in ``image`` (BGR ``uint8`` H×W×3, or H×W grey), in place; returns ``image``.

        Raises ``ValueError`` for an image that is not a writable uint8 2-D or 3-D array.
        """
        if not self.polygons:
            return image
        _check_image(image)
        height, width = image.shape[:2]
        colour = BLACK_BGR if image.ndim == 3 else 0
        cv2.fillPoly(image, self.points(width, height), colour)
        return image

    def apply_planes(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, *,
                     copy: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The yuv420p planes with the masks black (Y=16, U=V=128).

        ``copy`` (default): new C-contiguous planes, the given ones untouched — a decoder's planes
        are its reference pictures, which later frames are predicted from, so they are never written.
        ``copy=False`` fills the given (writable) planes in place. Raises ``ValueError`` for planes
        that are not uint8 2-D.
        """
        if copy:
            y, u, v = (np.array(plane, dtype=np.uint8, order="C", copy=True) for plane in (y, u, v))
        if not self.polygons:
            return y, u, v
        for plane in (y, u, v):
            _check_image(plane)
            if plane.ndim != 2:
                raise ValueError(f"a yuv420p plane is 2-D, got shape {plane.shape}")
        cv2.fillPoly(y, self.points(y.shape[1], y.shape[0]), BLACK_Y)
        for plane in (u, v):
            cv2.fillPoly(plane, self.points(plane.shape[1], plane.shape[0]), BLACK_UV)
        return y, u, v


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"masks apply to uint8 images, got {getattr(image, 'dtype', type(image))} "
                         f"with shape {getattr(image, 'shape', None)}")
    if not image.flags.writeable:
        raise ValueError("masks fill the image in place, but this one is read-only")


__all__ = ["BLACK_UV", "BLACK_Y", "Masks"]
