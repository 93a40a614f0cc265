# Cython declarations of the C kernels in hotpath_kernels.h (see that file for what each does).
from libc.stdint cimport uint8_t

cdef extern from "hotpath_kernels.h" nogil:
    const char* EDGE_SIMD                 # "sse2" or "scalar" (EDGE_FORCE_SCALAR)
    int EDGE_MODE_LINEAR
    int EDGE_MODE_AREA

    ctypedef struct EdgePlan:
        Py_ssize_t height, width, size
        int mode
        void* block

    ctypedef struct EdgeYuvPlanes:
        const uint8_t* y
        const uint8_t* u
        const uint8_t* v
        Py_ssize_t y_row, y_col, u_row, u_col, v_row, v_col

    void edge_plan_init(EdgePlan* plan)
    void edge_plan_free(EdgePlan* plan)
    int edge_plan_prepare(EdgePlan* plan, Py_ssize_t height, Py_ssize_t width, Py_ssize_t size, int requested)
    double edge_bgr_kernel(EdgePlan* plan, const uint8_t* frame, Py_ssize_t row_stride, float* out,
                           const float* previous, const float* mean_rgb, float scale)
    double edge_yuv_kernel(EdgePlan* plan, const EdgeYuvPlanes* planes, float* out, const float* previous,
                           const float* mean_rgb, float scale)
