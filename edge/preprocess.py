"""Frame preprocessing and the clip ring: the one module that picks the implementation.

The native extension ``edge._hotpath`` is used when it imports; otherwise (or with
``EDGE_PUREPYTHON=1``) the NumPy/OpenCV twin ``edge.hotpath_numpy`` with the same API.
``EDGE_REQUIRE_NATIVE=1`` makes a missing extension an ImportError. No other module
imports ``edge._hotpath``.
"""

from __future__ import annotations

import os
from types import ModuleType

from edge import hotpath_numpy as _twin

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

_FORCE_TWIN = os.environ.get("EDGE_PUREPYTHON") == "1"
_active: ModuleType = _twin if _FORCE_TWIN or _native is None else _native

IMPLEMENTATION: str = "native" if _active is _native else "numpy"
KINETICS_MEAN = _twin.KINETICS_MEAN
RingFullError = _twin.RingFullError
ClipLease = _twin.ClipLease
preprocess_frame = _active.preprocess_frame
ClipRing = _active.ClipRing


def implementation(name: str) -> ModuleType:
    """The module implementing the hot path: ``"native"`` (edge._hotpath) or ``"numpy"``.

    Both expose ``KINETICS_MEAN``, ``preprocess_frame``, ``ClipRing``, ``RingFullError``
    and ``ClipLease``. Raises ImportError for "native" when the extension is missing and
    ValueError for any other name.
    """
    if name == "numpy":
        return _twin
    if name == "native":
        if _native is None:
            raise ImportError(f"the native extension edge._hotpath is unavailable: {NATIVE_IMPORT_ERROR}")
        return _native
    raise ValueError(f"implementation must be 'native' or 'numpy', got {name!r}")


__all__ = [
    "IMPLEMENTATION", "KINETICS_MEAN", "NATIVE_AVAILABLE", "NATIVE_IMPORT_ERROR",
    "ClipLease", "ClipRing", "RingFullError", "implementation", "preprocess_frame",
]
