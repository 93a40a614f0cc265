"""Frame preprocessing and the clip ring: the one module that picks the implementation.

The native kernels ``edge._hotpath`` are used when they import; otherwise (or with
``EDGE_PUREPYTHON=1``) the NumPy/OpenCV twin ``edge.hotpath_numpy`` with the same API.
``EDGE_REQUIRE_NATIVE=1`` makes a missing extension an ImportError. The ring around the
kernels (``edge.ring``) is the same Python code for both. No other module imports
``edge._hotpath``.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from edge import hotpath_numpy as _twin
from edge.ring import ClipLease, RingFullError, ring_class

NATIVE_IMPORT_ERROR: str | None = None
try:
    from edge import _hotpath as _native
except ImportError as error:  # not compiled, or built for another Python
    _native = None
    NATIVE_IMPORT_ERROR = f"{type(error).__name__}: {error}"

NATIVE_AVAILABLE: bool = _native is not None

if not NATIVE_AVAILABLE and os.environ.get("EDGE_REQUIRE_NATIVE") == "1":
    raise ImportError(
        "EDGE_REQUIRE_NATIVE=1 but the native extension edge._hotpath is unavailable "
        f"({NATIVE_IMPORT_ERROR}); build it with `python setup.py build_ext --inplace` "
        "or reinstall with a C compiler present"
    )


def _bind(name: str, kernels) -> SimpleNamespace:
    return SimpleNamespace(
        name=name,
        kernels=kernels,
        SIMD=getattr(kernels, "SIMD", "numpy"),
        KINETICS_MEAN=_twin.KINETICS_MEAN,
        preprocess_frame=kernels.preprocess_frame,
        preprocess_yuv=kernels.preprocess_yuv,
        SlotWriter=kernels.SlotWriter,
        ClipRing=ring_class(kernels),
        RingFullError=RingFullError,
        ClipLease=ClipLease,
    )


_IMPLEMENTATIONS = {"numpy": _bind("numpy", _twin)}
if _native is not None:
    _IMPLEMENTATIONS["native"] = _bind("native", _native)

_FORCE_TWIN = os.environ.get("EDGE_PUREPYTHON") == "1"
IMPLEMENTATION: str = "numpy" if _FORCE_TWIN or _native is None else "native"
_active = _IMPLEMENTATIONS[IMPLEMENTATION]

KINETICS_MEAN = _twin.KINETICS_MEAN
preprocess_frame = _active.preprocess_frame
preprocess_yuv = _active.preprocess_yuv
ClipRing = _active.ClipRing
SIMD: str = _active.SIMD  # "sse2" | "scalar" (native built with EDGE_SCALAR=1) | "numpy"


def implementation(name: str) -> SimpleNamespace:
    """The hot path of one implementation: ``"native"`` (edge._hotpath) or ``"numpy"`` (the twin).

    The namespace has ``name``, ``SIMD``, ``KINETICS_MEAN``, ``preprocess_frame``,
    ``preprocess_yuv``, ``SlotWriter``, ``ClipRing`` (``edge.ring.ClipRing`` on these kernels),
    ``RingFullError`` and ``ClipLease``. Raises ImportError for "native" when the extension is
    missing and ValueError for any other name.
    """
    if name == "native" and _native is None:
        raise ImportError(f"the native extension edge._hotpath is unavailable: {NATIVE_IMPORT_ERROR}")
    if name not in ("native", "numpy"):
        raise ValueError(f"implementation must be 'native' or 'numpy', got {name!r}")
    return _IMPLEMENTATIONS[name]


__all__ = [
    "IMPLEMENTATION", "KINETICS_MEAN", "NATIVE_AVAILABLE", "NATIVE_IMPORT_ERROR", "SIMD",
    "ClipLease", "ClipRing", "RingFullError", "implementation", "preprocess_frame", "preprocess_yuv",
]
