# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Native hot path: the fused kernels that write one clip-ring slot, and nothing else.

``preprocess_frame`` (BGR) and ``preprocess_yuv`` (decoder yuv420p planes) compute only the S×S
cropped output pixels of ``cv2.dnn.blobFromImages(..., crop=True, swapRB=True)`` with cv2.resize's
INTER_LINEAR fixed point, and measure the motion from the previous slot in the same stores.
``SlotWriter`` is the same pair of kernels keeping its sampling tables between frames (one per
ring). The C kernels live in ``ext/hotpath_kernels.h``; the ring bookkeeping is Python
(``edge.ring``). Import this module through ``edge.preprocess`` only; ``edge.hotpath_numpy`` is
the twin with the same API.
"""

from libc.stdint cimport uint8_t

cimport numpy as cnp
import numpy as np

from hotpath_kernels cimport (
    EDGE_MODE_AREA,
    EDGE_MODE_LINEAR,
    EDGE_SIMD,
    EdgePlan,
    EdgeYuvPlanes,
    edge_bgr_kernel,
    edge_plan_free,
    edge_plan_init,
    edge_plan_prepare,
    edge_yuv_kernel,
)

from edge.hotpath_numpy import KINETICS_MEAN, check_params

cnp.import_array()

__all__ = ["KINETICS_MEAN", "SIMD", "SlotWriter", "preprocess_frame", "preprocess_yuv"]

SIMD = EDGE_SIMD.decode("ascii")  # "sse2", or "scalar" when built with EDGE_SCALAR=1


cdef int _check_frame(object frame) except -1:
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame must be a numpy.ndarray, got {type(frame).__name__}")
    cdef cnp.ndarray array = <cnp.ndarray>frame
    if cnp.PyArray_TYPE(array) != cnp.NPY_UINT8:
        raise ValueError(f"frame must be uint8, got dtype {frame.dtype}")
    if cnp.PyArray_NDIM(array) != 3 or cnp.PyArray_DIM(array, 2) != 3:
        raise ValueError(f"frame must be H×W×3 (BGR), got shape {frame.shape}")
    if cnp.PyArray_DIM(array, 0) == 0 or cnp.PyArray_DIM(array, 1) == 0:
        raise ValueError(f"frame must not be empty, got shape {frame.shape}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(array):
        raise ValueError("frame must be C-contiguous (use np.ascontiguousarray)")
    return 0


cdef int _check_plane(object plane, str name) except -1:
    if not isinstance(plane, np.ndarray):
        raise TypeError(f"{name} plane must be a numpy.ndarray, got {type(plane).__name__}")
    cdef cnp.ndarray array = <cnp.ndarray>plane
    if cnp.PyArray_TYPE(array) != cnp.NPY_UINT8:
        raise ValueError(f"{name} plane must be uint8, got dtype {plane.dtype}")
    if cnp.PyArray_NDIM(array) != 2:
        raise ValueError(f"{name} plane must be 2-D, got shape {plane.shape}")
    if cnp.PyArray_DIM(array, 0) == 0 or cnp.PyArray_DIM(array, 1) == 0:
        raise ValueError(f"{name} plane must not be empty, got shape {plane.shape}")
    return 0


cdef int _check_planes(object y, object u, object v) except -1:
    """yuv420p: Y H×W, U and V ⌈H/2⌉×⌈W/2⌉, uint8, any strides."""
    _check_plane(y, "y")
    _check_plane(u, "u")
    _check_plane(v, "v")
    chroma = ((y.shape[0] + 1) // 2, (y.shape[1] + 1) // 2)
    if u.shape != chroma or v.shape != chroma:
        raise ValueError(f"yuv420p planes: u and v must be {chroma[0]}×{chroma[1]} (⌈H/2⌉×⌈W/2⌉) for a "
                         f"{y.shape[0]}×{y.shape[1]} y plane, got u {u.shape} and v {v.shape}")
    return 0


cdef Py_ssize_t _check_out(object out) except -1:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    cdef cnp.ndarray array = <cnp.ndarray>out
    if cnp.PyArray_TYPE(array) != cnp.NPY_FLOAT32:
        raise ValueError(f"out must be float32, got dtype {out.dtype}")
    if (cnp.PyArray_NDIM(array) != 3 or cnp.PyArray_DIM(array, 0) != 3
            or cnp.PyArray_DIM(array, 1) != cnp.PyArray_DIM(array, 2) or cnp.PyArray_DIM(array, 1) == 0):
        raise ValueError(f"out must be 3×S×S with S >= 1, got shape {out.shape}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(array):
        raise ValueError("out must be C-contiguous")
    if not cnp.PyArray_ISWRITEABLE(array):
        raise ValueError("out must be writeable")
    return cnp.PyArray_DIM(array, 1)


cdef const float* _previous_data(object previous, Py_ssize_t size) except? NULL:
    """The previous slot's floats (NULL for None); it must have ``out``'s shape and layout."""
    if previous is None:
        return NULL
    if not isinstance(previous, np.ndarray):
        raise TypeError(f"previous must be a numpy.ndarray or None, got {type(previous).__name__}")
    cdef cnp.ndarray array = <cnp.ndarray>previous
    if (cnp.PyArray_TYPE(array) != cnp.NPY_FLOAT32 or cnp.PyArray_NDIM(array) != 3
            or cnp.PyArray_DIM(array, 0) != 3 or cnp.PyArray_DIM(array, 1) != size
            or cnp.PyArray_DIM(array, 2) != size or not cnp.PyArray_IS_C_CONTIGUOUS(array)):
        raise ValueError(f"previous must be a C-contiguous float32 3×{size}×{size} slot like out, "
                         f"got {previous.dtype} {previous.shape}")
    return <const float*>cnp.PyArray_DATA(array)


cdef double _write_bgr(EdgePlan* plan, object frame, object out, object previous, const float* mean_rgb,
                       float scale, int requested) except -1:
    _check_frame(frame)
    cdef Py_ssize_t size = _check_out(out)
    cdef const float* prev = _previous_data(previous, size)
    cdef cnp.ndarray source = <cnp.ndarray>frame
    cdef const uint8_t* data = <const uint8_t*>cnp.PyArray_DATA(source)
    cdef Py_ssize_t height = cnp.PyArray_DIM(source, 0), width = cnp.PyArray_DIM(source, 1)
    cdef Py_ssize_t row_stride = cnp.PyArray_STRIDE(source, 0)
    cdef float* dst = <float*>cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef double motion = 0.0
    cdef int status
    with nogil:
        status = edge_plan_prepare(plan, height, width, size, requested)
        if status == 0:
            motion = edge_bgr_kernel(plan, data, row_stride, dst, prev, mean_rgb, scale)
    if status != 0:
        raise MemoryError("could not allocate the sampling tables")
    return motion


cdef double _write_yuv(EdgePlan* plan, object y, object u, object v, object out, object previous,
                       const float* mean_rgb, float scale, int requested) except -1:
    _check_planes(y, u, v)
    cdef Py_ssize_t size = _check_out(out)
    cdef const float* prev = _previous_data(previous, size)
    cdef EdgeYuvPlanes planes
    cdef cnp.ndarray y_array = <cnp.ndarray>y, u_array = <cnp.ndarray>u, v_array = <cnp.ndarray>v
    planes.y = <const uint8_t*>cnp.PyArray_DATA(y_array)
    planes.u = <const uint8_t*>cnp.PyArray_DATA(u_array)
    planes.v = <const uint8_t*>cnp.PyArray_DATA(v_array)
    planes.y_row, planes.y_col = cnp.PyArray_STRIDE(y_array, 0), cnp.PyArray_STRIDE(y_array, 1)
    planes.u_row, planes.u_col = cnp.PyArray_STRIDE(u_array, 0), cnp.PyArray_STRIDE(u_array, 1)
    planes.v_row, planes.v_col = cnp.PyArray_STRIDE(v_array, 0), cnp.PyArray_STRIDE(v_array, 1)
    cdef Py_ssize_t height = cnp.PyArray_DIM(y_array, 0), width = cnp.PyArray_DIM(y_array, 1)
    cdef float* dst = <float*>cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef double motion = 0.0
    cdef int status
    with nogil:
        status = edge_plan_prepare(plan, height, width, size, requested)
        if status == 0:
            motion = edge_yuv_kernel(plan, &planes, dst, prev, mean_rgb, scale)
    if status != 0:
        raise MemoryError("could not allocate the sampling tables")
    return motion


cdef class _Options:
    """mean, scale and interpolation, validated once, as the kernels take them."""
    cdef float mean_f[3]
    cdef float scale_f
    cdef int requested
    cdef readonly tuple mean
    cdef readonly double scale
    cdef readonly str interpolation

    def __init__(self, mean, scale, interpolation):
        self.mean, self.scale = check_params(mean, scale, interpolation)
        self.interpolation = interpolation
        self.mean_f[0], self.mean_f[1], self.mean_f[2] = self.mean
        self.scale_f = self.scale
        self.requested = EDGE_MODE_AREA if interpolation == "area" else EDGE_MODE_LINEAR


def preprocess_frame(frame, out, mean=KINETICS_MEAN, scale=1.0, interpolation="linear", previous=None):
    """Resize (shorter side to S), centre-crop, BGR→RGB, subtract mean, scale, into ``out``.

    frame: uint8 H×W×3 BGR, C-contiguous, any size >= 1×1.
    out: float32 3×S×S, C-contiguous; ``out[c] = (crop_rgb[c] - mean[c]) * scale``.
    previous: None or the previous slot (float32 3×S×S, C-contiguous; may be ``out`` itself).
    ``interpolation`` "linear" matches blobFromImages(crop=True); "area" is a box filter
    for downscales. Returns the motion: mean |out - previous| / |scale| over the slot, in grey
    levels (255.0 without ``previous``). Raises ValueError for a bad dtype, shape, contiguity
    or size. Releases the GIL while it computes.
    """
    cdef _Options options = _Options(mean, scale, interpolation)
    cdef EdgePlan plan
    edge_plan_init(&plan)
    try:
        return _write_bgr(&plan, frame, out, previous, options.mean_f, options.scale_f, options.requested)
    finally:
        edge_plan_free(&plan)


def preprocess_yuv(y, u, v, out, mean=KINETICS_MEAN, scale=1.0, interpolation="linear", previous=None):
    """``preprocess_frame`` of the BGR frame cv2.cvtColor(I420→BGR) would make of yuv420p planes.

    y: uint8 H×W; u, v: uint8 ⌈H/2⌉×⌈W/2⌉; any strides (decoder planes with padded rows are fine).
    Colour: BT.601 limited range exactly as cv2 (and FFmpeg's swscale default) converts; chroma
    is nearest per 2×2 block. Only the source pixels the resize reads are converted. Returns the
    motion as ``preprocess_frame`` does. Raises ValueError for bad shapes or dtypes.
    """
    cdef _Options options = _Options(mean, scale, interpolation)
    cdef EdgePlan plan
    edge_plan_init(&plan)
    try:
        return _write_yuv(&plan, y, u, v, out, previous, options.mean_f, options.scale_f, options.requested)
    finally:
        edge_plan_free(&plan)


cdef class SlotWriter:
    """The kernels of one ring: ``preprocess_frame``/``preprocess_yuv`` with fixed S, mean, scale and
    interpolation, keeping the sampling tables of the last frame size (no per-frame allocation).

    Not thread-safe: a second call while one runs (the GIL is released) raises RuntimeError.
    """

    cdef EdgePlan _plan
    cdef _Options _options
    cdef readonly Py_ssize_t size
    cdef bint _busy

    def __cinit__(self, *args, **kwargs):
        edge_plan_init(&self._plan)

    def __init__(self, size=112, mean=KINETICS_MEAN, scale=1.0, interpolation="linear"):
        size = int(size)
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self._options = _Options(mean, scale, interpolation)
        self.size = size
        self._busy = False

    def __dealloc__(self):
        edge_plan_free(&self._plan)

    @property
    def mean(self):
        return self._options.mean

    @property
    def scale(self):
        return self._options.scale

    @property
    def interpolation(self):
        return self._options.interpolation

    cdef int _enter(self, object out) except -1:
        if self._busy:
            raise RuntimeError("SlotWriter is not thread-safe: called while another call is running")
        if _check_out(out) != self.size:
            raise ValueError(f"out must be 3×{self.size}×{self.size}, got shape {out.shape}")
        self._busy = True
        return 0

    def write(self, frame, out, previous=None):
        """``preprocess_frame(frame, out, ..., previous=previous)``; returns the motion."""
        self._enter(out)
        try:
            return _write_bgr(&self._plan, frame, out, previous, self._options.mean_f, self._options.scale_f,
                              self._options.requested)
        finally:
            self._busy = False

    def write_yuv(self, y, u, v, out, previous=None):
        """``preprocess_yuv(y, u, v, out, ..., previous=previous)``; returns the motion."""
        self._enter(out)
        try:
            return _write_yuv(&self._plan, y, u, v, out, previous, self._options.mean_f,
                              self._options.scale_f, self._options.requested)
        finally:
            self._busy = False
