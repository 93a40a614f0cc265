# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Native hot path: fused frame preprocessing written straight into a zero-copy clip ring.

``preprocess_frame`` computes only the S×S cropped output pixels of
``cv2.dnn.blobFromImages(..., crop=True, swapRB=True)``: the source position of
each output pixel, its bilinear weights and the centre-crop offset are
precomputed per frame size, and the bilinear arithmetic is cv2.resize's
INTER_LINEAR fixed point (11-bit weights), so results match OpenCV to the
grey level. Import it through ``edge.preprocess`` only; ``edge.hotpath_numpy``
is the twin with the same API.
"""

from libc.math cimport ceil, floor, lrint, lrintf
from libc.stdint cimport int16_t, int32_t, uint8_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cimport numpy as cnp
import numpy as np

from edge.hotpath_numpy import (  # shared by both implementations
    INTERPOLATIONS,
    KINETICS_MEAN,
    ClipLease,
    RingFullError,
    check_params,
    check_ring_params,
    mirrored_storage_slots,
)

cnp.import_array()

cdef extern from *:
    """
    #include <string.h>
    #if defined(__GNUC__) || defined(__clang__)
    #define EDGE_PREFETCH(address) __builtin_prefetch((address), 0, 3)
    #else
    #define EDGE_PREFETCH(address) ((void)(address))
    #endif

    #if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
    #include <emmintrin.h>
    #define EDGE_HAVE_SSE2 1
    /* One output row of the fused linear kernel, SSE2 (x86-64 baseline), the same fixed point as
       cv2.resize: per output column, pixels x0 and x0+1 of both source rows are read as 8 bytes,
       paired with their 11-bit weights (pmaddwd), >>4, then the vertical step uses 16-bit
       multiply-high and (v + 2) >> 2 like cv2's VResizeLinearVec_32s8u. */
    /* One output pixel: B, G, R (and a zero lane) as floats, before mean and scale. */
    static inline __m128 edge_linear_pixel_sse2(const uint8_t* row_a, const uint8_t* row_b,
                                                Py_ssize_t row_bytes, Py_ssize_t offset,
                                                const int16_t* weight_pair, __m128i beta)
    {
        const __m128i zero = _mm_setzero_si128();
        const __m128i two = _mm_set1_epi16(2), top = _mm_set1_epi16(255);
        __m128i a, b, w, h;
        if (offset + 8 <= row_bytes) {
            a = _mm_loadl_epi64((const __m128i*)(row_a + offset));
            b = _mm_loadl_epi64((const __m128i*)(row_b + offset));
        } else {  /* the last columns: never read past the frame */
            uint8_t tail_a[8] = {0}, tail_b[8] = {0};
            memcpy(tail_a, row_a + offset, (size_t)(row_bytes - offset));
            memcpy(tail_b, row_b + offset, (size_t)(row_bytes - offset));
            a = _mm_loadl_epi64((const __m128i*)tail_a);
            b = _mm_loadl_epi64((const __m128i*)tail_b);
        }
        a = _mm_unpacklo_epi8(a, zero);                      /* p0 p1 p2 q0 q1 q2 . . */
        b = _mm_unpacklo_epi8(b, zero);
        a = _mm_unpacklo_epi16(a, _mm_srli_si128(a, 6));     /* p0 q0 p1 q1 p2 q2 . . */
        b = _mm_unpacklo_epi16(b, _mm_srli_si128(b, 6));
        w = _mm_loadu_si128((const __m128i*)weight_pair);
        h = _mm_packs_epi32(_mm_srai_epi32(_mm_madd_epi16(a, w), 4),
                            _mm_srai_epi32(_mm_madd_epi16(b, w), 4));
        h = _mm_mulhi_epi16(h, beta);
        h = _mm_add_epi16(h, _mm_srli_si128(h, 8));
        h = _mm_min_epi16(_mm_srai_epi16(_mm_add_epi16(h, two), 2), top);
        return _mm_cvtepi32_ps(_mm_unpacklo_epi16(h, zero));
    }

    /* One output row of the fused linear kernel, SSE2 (x86-64 baseline), the same fixed point as
       cv2.resize: per output column, pixels x0 and x0+1 of both source rows are read as 8 bytes,
       paired with their 11-bit weights (pmaddwd), >>4, then the vertical step uses 16-bit
       multiply-high and (v + 2) >> 2 like cv2's VResizeLinearVec_32s8u. Four pixels at a time
       are transposed from BGR-interleaved to planes, so each plane gets one vector store. */
    static void edge_linear_row_sse2(const uint8_t* row_a, const uint8_t* row_b, Py_ssize_t row_bytes,
                                     const int32_t* x0, const int16_t* weight_pairs, Py_ssize_t size,
                                     int beta0, int beta1, float* plane_r, float* plane_g,
                                     float* plane_b, const float* mean_rgb, float scale)
    {
        const __m128i beta = _mm_setr_epi16((short)beta0, (short)beta0, (short)beta0, 0,
                                            (short)beta1, (short)beta1, (short)beta1, 0);
        const __m128 mean_b = _mm_set1_ps(mean_rgb[2]), mean_g = _mm_set1_ps(mean_rgb[1]);
        const __m128 mean_r = _mm_set1_ps(mean_rgb[0]), factor = _mm_set1_ps(scale);
        float lanes[4];
        Py_ssize_t ox = 0;
        for (; ox + 4 <= size; ox += 4) {
            __m128 p0 = edge_linear_pixel_sse2(row_a, row_b, row_bytes, 3 * (Py_ssize_t)x0[ox],
                                               weight_pairs + 8 * ox, beta);
            __m128 p1 = edge_linear_pixel_sse2(row_a, row_b, row_bytes, 3 * (Py_ssize_t)x0[ox + 1],
                                               weight_pairs + 8 * (ox + 1), beta);
            __m128 p2 = edge_linear_pixel_sse2(row_a, row_b, row_bytes, 3 * (Py_ssize_t)x0[ox + 2],
                                               weight_pairs + 8 * (ox + 2), beta);
            __m128 p3 = edge_linear_pixel_sse2(row_a, row_b, row_bytes, 3 * (Py_ssize_t)x0[ox + 3],
                                               weight_pairs + 8 * (ox + 3), beta);
            _MM_TRANSPOSE4_PS(p0, p1, p2, p3);                  /* p0 = B×4, p1 = G×4, p2 = R×4 */
            _mm_storeu_ps(plane_b + ox, _mm_mul_ps(_mm_sub_ps(p0, mean_b), factor));
            _mm_storeu_ps(plane_g + ox, _mm_mul_ps(_mm_sub_ps(p1, mean_g), factor));
            _mm_storeu_ps(plane_r + ox, _mm_mul_ps(_mm_sub_ps(p2, mean_r), factor));
        }
        for (; ox < size; ox++) {
            __m128 f = edge_linear_pixel_sse2(row_a, row_b, row_bytes, 3 * (Py_ssize_t)x0[ox],
                                              weight_pairs + 8 * ox, beta);
            _mm_storeu_ps(lanes, f);
            plane_b[ox] = (lanes[0] - mean_rgb[2]) * scale;
            plane_g[ox] = (lanes[1] - mean_rgb[1]) * scale;
            plane_r[ox] = (lanes[2] - mean_rgb[0]) * scale;
        }
    }
    #else
    #define EDGE_HAVE_SSE2 0
    static void edge_linear_row_sse2(const uint8_t* row_a, const uint8_t* row_b, Py_ssize_t row_bytes,
                                     const int32_t* x0, const int16_t* weight_pairs, Py_ssize_t size,
                                     int beta0, int beta1, float* plane_r, float* plane_g,
                                     float* plane_b, const float* mean_rgb, float scale) {}
    #endif
    """
    void EDGE_PREFETCH(const void* address) noexcept nogil
    const bint EDGE_HAVE_SSE2
    void edge_linear_row_sse2(const uint8_t* row_a, const uint8_t* row_b, Py_ssize_t row_bytes,
                              const int32_t* x0, const int16_t* weight_pairs, Py_ssize_t size,
                              int beta0, int beta1, float* plane_r, float* plane_g,
                              float* plane_b, const float* mean_rgb, float scale) noexcept nogil

__all__ = ["KINETICS_MEAN", "ClipLease", "ClipRing", "RingFullError", "preprocess_frame"]

cdef int COEF_SCALE = 1 << 11  # cv2.resize INTER_LINEAR weights: INTER_RESIZE_COEF_BITS = 11

cdef enum Mode:
    MODE_LINEAR = 0
    MODE_AREA = 1


cdef struct Plan:
    # Where each output row/column samples the source, for one frame size.
    Py_ssize_t height, width, size
    int requested   # Mode asked for; the mode used is `mode` (area only when downscaling)
    int mode
    int taps_x, taps_y          # area: taps per output column / row (zero-weight padded)
    int32_t* x0                 # linear: source columns (x1 = x0 + 1, clamped) and weights
    int32_t* x1
    int32_t* ax0
    int32_t* ax1
    int32_t* y0
    int32_t* y1
    int32_t* by0
    int32_t* by1
    int32_t* xidx               # area: source index and weight of each tap
    float* xw
    int32_t* yidx
    float* yw
    float* acc                  # area: one output row, 3*S accumulators
    int16_t* rows               # linear: horizontal taps of a row pair, 2 x 3 planes x S
    int16_t* weight_pairs       # linear, SSE2: per column (a0, a1) x 3 then (0, 0)
    void* block                 # the single allocation all pointers above live in


cdef void _plan_free(Plan* plan) noexcept nogil:
    free(plan.block)
    plan.block = NULL
    plan.height = 0
    plan.width = 0


cdef void _linear_axis(Py_ssize_t src_len, double inv_factor, Py_ssize_t offset, Py_ssize_t size,
                       int32_t* idx0, int32_t* idx1, int32_t* w0, int32_t* w1) noexcept nogil:
    # cv2.resize INTER_LINEAR: src = (dst + 0.5) * scale - 0.5, clamped, weights rounded to 11 bits.
    cdef Py_ssize_t i
    cdef float frac
    cdef long pos
    for i in range(size):
        frac = <float>((i + offset + 0.5) * inv_factor - 0.5)
        pos = <long>floor(frac)
        frac = frac - pos
        if pos < 0:
            pos = 0
            frac = 0
        if pos >= src_len - 1:
            pos = src_len - 1
            frac = 0
        idx0[i] = <int32_t>pos
        idx1[i] = <int32_t>(pos + 1 if pos + 1 < src_len else pos)
        w0[i] = <int32_t>lrintf((1.0 - frac) * COEF_SCALE)
        w1[i] = <int32_t>lrintf(frac * COEF_SCALE)


cdef void _area_axis(Py_ssize_t src_len, double inv_factor, Py_ssize_t offset, Py_ssize_t size,
                     int taps, int32_t* idx, float* weight) noexcept nogil:
    # Box filter: output i averages source [d*scale, (d+1)*scale), partial pixels by overlap.
    cdef Py_ssize_t i, j, k
    cdef double lo, hi, overlap, total
    for i in range(size):
        lo = (i + offset) * inv_factor
        hi = lo + inv_factor
        if hi > src_len:
            hi = src_len
        if lo > hi - 1e-6:
            lo = hi - 1e-6
        total = hi - lo
        k = 0
        j = <Py_ssize_t>floor(lo)
        while j < hi and k < taps:
            overlap = (hi if hi < j + 1 else j + 1) - (lo if lo > j else j)
            if overlap > 1e-6:
                idx[i * taps + k] = <int32_t>j
                weight[i * taps + k] = <float>(overlap / total)
                k += 1
            j += 1
        while k < taps:
            idx[i * taps + k] = idx[i * taps + k - 1] if k > 0 else 0
            weight[i * taps + k] = 0
            k += 1


cdef int _plan_prepare(Plan* plan, Py_ssize_t height, Py_ssize_t width, Py_ssize_t size,
                       int requested) noexcept nogil:
    """Fill ``plan`` for a height×width frame; -1 if out of memory. Reuses a matching plan."""
    if plan.block != NULL and plan.height == height and plan.width == width \
            and plan.size == size and plan.requested == requested:
        return 0
    _plan_free(plan)
    # blobFromImages(crop=True): float32 factor, resized size rounded, crop corner truncated.
    cdef float factor = max(<float>size / <float>width, <float>size / <float>height)
    cdef double inv_factor = 1.0 / <double>factor
    cdef Py_ssize_t resized_w = lrint(width * <double>factor)
    cdef Py_ssize_t resized_h = lrint(height * <double>factor)
    cdef Py_ssize_t crop_x = <Py_ssize_t>(0.5 * (resized_w - size))
    cdef Py_ssize_t crop_y = <Py_ssize_t>(0.5 * (resized_h - size))
    cdef int mode = MODE_AREA if requested == MODE_AREA and factor < 1.0 else MODE_LINEAR
    cdef int taps = <int>ceil(inv_factor) + 2 if mode == MODE_AREA else 0
    cdef size_t words = 15 * size if mode == MODE_LINEAR else 4 * size * taps + 3 * size
    cdef char* block = <char*>malloc(words * 4)
    if block == NULL:
        return -1
    plan.block = block
    plan.height = height
    plan.width = width
    plan.size = size
    plan.requested = requested
    plan.mode = mode
    plan.taps_x = taps
    plan.taps_y = taps
    cdef int32_t* ints = <int32_t*>block
    cdef Py_ssize_t i
    cdef int c
    if mode == MODE_LINEAR:
        plan.x0, plan.x1, plan.ax0, plan.ax1 = ints, ints + size, ints + 2 * size, ints + 3 * size
        plan.y0, plan.y1, plan.by0, plan.by1 = ints + 4 * size, ints + 5 * size, ints + 6 * size, ints + 7 * size
        plan.rows = <int16_t*>(ints + 8 * size)
        plan.weight_pairs = <int16_t*>(ints + 11 * size)
        _linear_axis(width, inv_factor, crop_x, size, plan.x0, plan.x1, plan.ax0, plan.ax1)
        _linear_axis(height, inv_factor, crop_y, size, plan.y0, plan.y1, plan.by0, plan.by1)
        for i in range(size):
            for c in range(3):
                plan.weight_pairs[8 * i + 2 * c] = <int16_t>plan.ax0[i]
                plan.weight_pairs[8 * i + 2 * c + 1] = <int16_t>plan.ax1[i]
            plan.weight_pairs[8 * i + 6] = 0
            plan.weight_pairs[8 * i + 7] = 0
    else:
        plan.xidx = ints
        plan.xw = <float*>(ints + size * taps)
        plan.yidx = ints + 2 * size * taps
        plan.yw = <float*>(ints + 3 * size * taps)
        plan.acc = <float*>(ints + 4 * size * taps)
        _area_axis(width, inv_factor, crop_x, size, taps, plan.xidx, plan.xw)
        _area_axis(height, inv_factor, crop_y, size, taps, plan.yidx, plan.yw)
    return 0


cdef void _linear_kernel(const uint8_t[:, :, ::1] frame, float[:, :, ::1] out, const Plan* plan,
                         const float* mean_rgb, float scale) noexcept nogil:
    # Row pair: the horizontal taps of both source rows into planar int16 buffers (value*2048>>4,
    # as cv2 keeps them), then a vertical pass gcc vectorises (16-bit multiply-high, as cv2's SIMD).
    cdef Py_ssize_t size = plan.size, oy, ox
    cdef const uint8_t* row_a
    cdef const uint8_t* row_b
    cdef int16_t* top = plan.rows
    cdef int16_t* bottom = plan.rows + 3 * size
    cdef const int16_t* top_c
    cdef const int16_t* bottom_c
    cdef float* dst
    cdef Py_ssize_t xa, xb
    cdef int32_t a0, a1, b0, b1, value
    cdef float mean_c
    cdef int c
    # Columns the crop reads: prefetch them for the next row pair while this one is computed.
    cdef Py_ssize_t span_lo = 3 * plan.x0[0], span_hi = 3 * plan.x1[size - 1] + 3, byte
    for oy in range(size):
        row_a = &frame[plan.y0[oy], 0, 0]
        row_b = &frame[plan.y1[oy], 0, 0]
        if oy + 1 < size:
            for byte in range(span_lo, span_hi + 63, 64):
                EDGE_PREFETCH(&frame[plan.y0[oy + 1], 0, 0] + byte)
                EDGE_PREFETCH(&frame[plan.y1[oy + 1], 0, 0] + byte)
        if EDGE_HAVE_SSE2:
            edge_linear_row_sse2(row_a, row_b, 3 * frame.shape[1], plan.x0, plan.weight_pairs, size,
                                 plan.by0[oy], plan.by1[oy], &out[0, oy, 0], &out[1, oy, 0],
                                 &out[2, oy, 0], mean_rgb, scale)
            continue
        for ox in range(size):
            xa = 3 * plan.x0[ox]
            xb = 3 * plan.x1[ox]
            a0 = plan.ax0[ox]
            a1 = plan.ax1[ox]
            top[ox] = <int16_t>((row_a[xa] * a0 + row_a[xb] * a1) >> 4)
            top[size + ox] = <int16_t>((row_a[xa + 1] * a0 + row_a[xb + 1] * a1) >> 4)
            top[2 * size + ox] = <int16_t>((row_a[xa + 2] * a0 + row_a[xb + 2] * a1) >> 4)
            bottom[ox] = <int16_t>((row_b[xa] * a0 + row_b[xb] * a1) >> 4)
            bottom[size + ox] = <int16_t>((row_b[xa + 1] * a0 + row_b[xb + 1] * a1) >> 4)
            bottom[2 * size + ox] = <int16_t>((row_b[xa + 2] * a0 + row_b[xb + 2] * a1) >> 4)
        b0 = plan.by0[oy]
        b1 = plan.by1[oy]
        for c in range(3):
            # BGR source channel c lands in RGB plane 2 - c.
            dst = &out[2 - c, oy, 0]
            mean_c = mean_rgb[2 - c]
            top_c = top + c * size
            bottom_c = bottom + c * size
            for ox in range(size):
                value = ((((<int32_t>top_c[ox]) * b0) >> 16) + (((<int32_t>bottom_c[ox]) * b1) >> 16) + 2) >> 2
                if value > 255:
                    value = 255
                dst[ox] = (<float>value - mean_c) * scale


cdef void _area_kernel(const uint8_t[:, :, ::1] frame, float[:, :, ::1] out, const Plan* plan,
                       const float* mean_rgb, float scale) noexcept nogil:
    cdef Py_ssize_t size = plan.size, oy, ox, sy, sx, i
    cdef int taps_x = plan.taps_x, taps_y = plan.taps_y, ky, kx, c
    cdef float* acc = plan.acc
    cdef float wy, wx, s0, s1, s2
    for oy in range(size):
        for i in range(3 * size):
            acc[i] = 0
        for ky in range(taps_y):
            wy = plan.yw[oy * taps_y + ky]
            if wy == 0:
                continue
            sy = plan.yidx[oy * taps_y + ky]
            for ox in range(size):
                s0 = 0
                s1 = 0
                s2 = 0
                for kx in range(taps_x):
                    sx = plan.xidx[ox * taps_x + kx]
                    wx = plan.xw[ox * taps_x + kx]
                    s0 = s0 + frame[sy, sx, 0] * wx
                    s1 = s1 + frame[sy, sx, 1] * wx
                    s2 = s2 + frame[sy, sx, 2] * wx
                acc[3 * ox] += wy * s0
                acc[3 * ox + 1] += wy * s1
                acc[3 * ox + 2] += wy * s2
        for ox in range(size):
            for c in range(3):
                # Round to a grey level as cv2.resize(INTER_AREA) on uint8 does.
                out[2 - c, oy, ox] = (<float>floor(acc[3 * ox + c] + 0.5) - mean_rgb[2 - c]) * scale


cdef inline void _run_kernel(const uint8_t[:, :, ::1] frame, float[:, :, ::1] out, const Plan* plan,
                             const float* mean_rgb, float scale) noexcept nogil:
    if plan.mode == MODE_AREA:
        _area_kernel(frame, out, plan, mean_rgb, scale)
    else:
        _linear_kernel(frame, out, plan, mean_rgb, scale)


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


def preprocess_frame(frame, out, mean=KINETICS_MEAN, scale=1.0, interpolation="linear"):
    """Resize (shorter side to S), centre-crop, BGR→RGB, subtract mean, scale, into ``out``.

    frame: uint8 H×W×3 BGR, C-contiguous, any size >= 1×1.
    out: float32 3×S×S, C-contiguous; ``out[c] = (crop_rgb[c] - mean[c]) * scale``.
    ``interpolation`` "linear" matches blobFromImages(crop=True); "area" is a box filter
    for downscales. Raises ValueError for a bad dtype, shape, contiguity or size.
    Releases the GIL while it computes.
    """
    _check_frame(frame)
    cdef Py_ssize_t size = _check_out(out)
    mean_rgb, scale = check_params(mean, scale, interpolation)
    cdef float mean_f[3]
    mean_f[0], mean_f[1], mean_f[2] = mean_rgb
    cdef float scale_f = scale
    cdef int requested = MODE_AREA if interpolation == "area" else MODE_LINEAR
    cdef const uint8_t[:, :, ::1] frame_view = frame
    cdef float[:, :, ::1] out_view = out
    cdef Plan plan
    plan.block = NULL
    cdef int status
    with nogil:
        status = _plan_prepare(&plan, frame_view.shape[0], frame_view.shape[1], size, requested)
        if status == 0:
            _run_kernel(frame_view, out_view, &plan, mean_f, scale_f)
        _plan_free(&plan)
    if status != 0:
        raise MemoryError("preprocess_frame: could not allocate the sampling tables")


cdef class ClipRing:
    """A circular buffer of preprocessed slots handing out zero-copy clips.

    Storage is float32 (capacity + clip_len - 1, 3, S, S); slot ``seq`` is written at
    ``seq % capacity``, and the first clip_len - 1 physical slots are mirrored at
    ``+ capacity`` (no window reaches further), so the clip_len slots of any window
    are one contiguous block. A leased clip is never
    overwritten: ``push``/``repeat`` raise RingFullError instead. Not thread-safe:
    one thread pushes and acquires (push releases the GIL while it computes).
    """

    cdef readonly int clip_len, size, capacity
    cdef readonly tuple mean
    cdef readonly double scale
    cdef readonly str interpolation
    cdef Py_ssize_t _pushed
    cdef dict _leases
    cdef object _storage
    cdef float[:, :, :, ::1] _store
    cdef Plan _plan
    cdef float _mean_f[3]
    cdef float _scale_f
    cdef int _requested
    cdef bint _busy

    def __cinit__(self, *args, **kwargs):
        self._plan.block = NULL

    def __init__(self, clip_len=16, size=112, capacity=None, mean=KINETICS_MEAN, scale=1.0,
                 interpolation="linear"):
        clip_len, size, capacity = check_ring_params(clip_len, size, capacity)
        self.mean, self.scale = check_params(mean, scale, interpolation)
        self.interpolation = interpolation
        self.clip_len, self.size, self.capacity = clip_len, size, capacity
        self._mean_f[0], self._mean_f[1], self._mean_f[2] = self.mean
        self._scale_f = self.scale
        self._requested = MODE_AREA if interpolation == "area" else MODE_LINEAR
        self._storage = np.zeros((mirrored_storage_slots(clip_len, capacity), 3, size, size), dtype=np.float32)
        self._store = self._storage
        self._pushed = 0
        self._leases = {}
        self._busy = False

    def __dealloc__(self):
        _plan_free(&self._plan)

    @property
    def pushed(self):
        """Slots written so far (= the next sequence number)."""
        return self._pushed

    @property
    def held(self):
        """Unreleased leases."""
        return len(self._leases)

    cpdef bint can_push(self):
        """False when the next write would overwrite a slot inside a held lease."""
        cdef Py_ssize_t overwritten = self._pushed - self.capacity
        if overwritten < 0 or not self._leases:
            return True
        for first in self._leases.values():
            if first <= overwritten:
                return False
        return True

    cdef Py_ssize_t _next_slot(self) except -1:
        if self._busy:
            raise RuntimeError("ClipRing is not thread-safe: push/repeat called while another is running")
        if not self.can_push():
            raise RingFullError(
                f"slot {self._pushed - self.capacity} is inside a held clip: release a lease first "
                f"({len(self._leases)} held, capacity {self.capacity})"
            )
        return self._pushed % self.capacity

    cdef Py_ssize_t _physical(self, seq) except -1:
        cdef Py_ssize_t s = seq
        if s < 0 or s < self._pushed - self.capacity or s >= self._pushed:
            raise IndexError(f"slot {s} is not in the ring (slots {max(0, self._pushed - self.capacity)}"
                             f"..{self._pushed - 1} are)")
        return s % self.capacity

    def push(self, frame):
        """Preprocess ``frame`` (uint8 H×W×3 BGR) into the next slot; return its sequence number.

        Raises ValueError for a bad frame and RingFullError if a held clip would be overwritten.
        """
        _check_frame(frame)
        cdef Py_ssize_t index = self._next_slot()
        cdef const uint8_t[:, :, ::1] frame_view = frame
        cdef size_t slot_bytes = 3 * <size_t>self.size * self.size * sizeof(float)
        cdef int status
        self._busy = True
        with nogil:
            status = _plan_prepare(&self._plan, frame_view.shape[0], frame_view.shape[1],
                                   self.size, self._requested)
            if status == 0:
                _run_kernel(frame_view, self._store[index], &self._plan, self._mean_f, self._scale_f)
                if index < self.clip_len - 1:  # only these slots are read through their mirror
                    memcpy(&self._store[index + self.capacity, 0, 0, 0], &self._store[index, 0, 0, 0], slot_bytes)
        self._busy = False
        if status != 0:
            raise MemoryError("ClipRing.push: could not allocate the sampling tables")
        self._pushed += 1
        return self._pushed - 1

    def repeat(self, seq):
        """Copy slot ``seq`` into the next slot (loop padding); return the new sequence number."""
        cdef Py_ssize_t source = self._physical(seq)
        cdef Py_ssize_t index = self._next_slot()
        cdef size_t slot_bytes = 3 * <size_t>self.size * self.size * sizeof(float)
        if source != index:
            memcpy(&self._store[index, 0, 0, 0], &self._store[source, 0, 0, 0], slot_bytes)
            if index < self.clip_len - 1:
                memcpy(&self._store[index + self.capacity, 0, 0, 0], &self._store[source, 0, 0, 0], slot_bytes)
        self._pushed += 1
        return self._pushed - 1

    def slot(self, seq):
        """View (3, S, S) of slot ``seq``; IndexError if it is not in the ring."""
        return self._storage[self._physical(seq)]

    def acquire(self, last_seq=None):
        """Lease the clip_len slots ending at ``last_seq`` (default: the newest).

        ValueError if fewer than clip_len slots were pushed or the window left the ring.
        """
        cdef Py_ssize_t last = self._pushed - 1 if last_seq is None else int(last_seq)
        cdef Py_ssize_t first = last - self.clip_len + 1
        if self._pushed < self.clip_len:
            raise ValueError(f"only {self._pushed} slots pushed, a clip needs {self.clip_len}")
        if first < 0 or last >= self._pushed or first < self._pushed - self.capacity:
            raise ValueError(f"clip {first}..{last} is not in the ring (slots "
                             f"{max(0, self._pushed - self.capacity)}..{self._pushed - 1} are)")
        cdef Py_ssize_t start = first % self.capacity
        lease = ClipLease(first, last, self._storage[start:start + self.clip_len])
        self._leases[lease] = first
        return lease

    def release(self, lease):
        """Give a clip back; idempotent. ValueError for a lease from another ring."""
        if not isinstance(lease, ClipLease):
            raise TypeError(f"release() takes a ClipLease, got {type(lease).__name__}")
        if self._leases.pop(lease, None) is None and lease.view.base is not self._storage:
            raise ValueError("this lease was not handed out by this ring")
