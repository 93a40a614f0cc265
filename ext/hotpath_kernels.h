/* The fused hot-path kernels (C99), declared for Cython in ext/hotpath_kernels.pxd.
 *
 * One call writes one ring slot: resize (shorter side to S) + centre crop with the geometry of
 * cv2.dnn.blobFromImages(crop=True), BGR->RGB (or yuv420p->RGB for decoder planes), minus mean,
 * times scale, into a float32 3xSxS plane layout, and, fused into the same stores, the mean
 * absolute difference from the previous slot (the still-scene gate's motion measure).
 *
 * Bilinear arithmetic is cv2.resize's INTER_LINEAR fixed point (11-bit weights, >>4 after the
 * horizontal pass, 16-bit multiply-high and (v + 2) >> 2 vertically), so a slot matches OpenCV
 * to the grey level. yuv420p pixels are converted exactly as cv2.cvtColor(COLOR_YUV2BGR_I420)
 * does (BT.601 limited range, 20-bit fixed point, nearest chroma per 2x2 block), and only the
 * source pixels the taps touch are converted.
 *
 * Build switches: EDGE_FORCE_SCALAR compiles the portable scalar kernel even where SSE2 exists
 * (the code ARM boxes run); EDGE_DEBUG_BOUNDS checks every table index against the frame.
 */
#ifndef EDGE_HOTPATH_KERNELS_H
#define EDGE_HOTPATH_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define EDGE_PREFETCH(address) __builtin_prefetch((address), 0, 3)
#else
#define EDGE_PREFETCH(address) ((void)(address))
#endif

#if !defined(EDGE_FORCE_SCALAR) && \
    (defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2))
#include <emmintrin.h>
#define EDGE_HAVE_SSE2 1
#define EDGE_SIMD "sse2"
#else
#define EDGE_HAVE_SSE2 0
#define EDGE_SIMD "scalar"
#endif

#ifdef EDGE_DEBUG_BOUNDS
#define EDGE_CHECK(condition)                                                                   \
    do {                                                                                        \
        if (!(condition)) {                                                                     \
            fprintf(stderr, "edge hot path: %s:%d: index check failed: %s\n", __FILE__, __LINE__, \
                    #condition);                                                                \
            abort();                                                                            \
        }                                                                                       \
    } while (0)
#else
#define EDGE_CHECK(condition) ((void)0)
#endif

#define EDGE_COEF_SCALE (1 << 11) /* cv2.resize INTER_LINEAR: INTER_RESIZE_COEF_BITS = 11 */
enum { EDGE_MODE_LINEAR = 0, EDGE_MODE_AREA = 1 };

/* Where each output row/column samples the source, for one frame size; scratch rows too. */
typedef struct {
    ptrdiff_t height, width, size;
    int requested;             /* mode asked for; `mode` is the one used (area only when downscaling) */
    int mode;
    int taps;                  /* area: taps per output column / row (zero-weight padded) */
    int32_t *x0, *x1, *ax0, *ax1, *y0, *y1, *by0, *by1; /* linear: source indices and 11-bit weights */
    int16_t *weight_pairs;     /* linear, SSE2: per column (a0, a1) x 3 then (0, 0) */
    int16_t *rows;             /* linear, scalar: horizontal taps of a row pair, 2 x 3 planes x S */
    int32_t *tap_x;            /* linear, yuv: x0, x1 of each output column (2S) */
    int32_t *pair_x0, *pair_x1; /* linear, yuv: where column ox's pixel pair sits in a tap row:
                                   SSE2 pairs of BGR0 pixels (ox), scalar BGR pixels (2ox, 2ox + 1) */
    int32_t *xidx, *yidx;      /* area: source index and weight of each tap */
    float *xw, *yw;
    float *acc;                /* area: one output row, 3S accumulators */
    ptrdiff_t span_lo, span_hi; /* area: the source columns the crop reads */
    int32_t *lut;              /* yuv: 5 x 256 products (Y', U'->B, U'->G, V'->G, V'->R), then 1024 clamps */
    uint8_t *converted[2];     /* yuv: converted source rows: linear, the taps (BGR0 pairs with SSE2,
                                  BGR otherwise); area, the crop's span (BGR) */
    ptrdiff_t converted_row[2]; /* the source row each holds, -1 for none */
    ptrdiff_t converted_bytes; /* bytes of one converted row a kernel may read (slack included) */
    void *block;               /* the single allocation every pointer above lives in */
} EdgePlan;

/* yuv420p planes: Y is height x width, U and V ceil(height/2) x ceil(width/2); any strides. */
typedef struct {
    const uint8_t *y, *u, *v;
    ptrdiff_t y_row, y_col, u_row, u_col, v_row, v_col; /* strides in bytes */
} EdgeYuvPlanes;

static void edge_yuv_tables(int32_t *lut);

static void edge_plan_init(EdgePlan *plan) { memset(plan, 0, sizeof(*plan)); }

static void edge_plan_free(EdgePlan *plan)
{
    free(plan->block);
    edge_plan_init(plan);
}

static void edge_linear_axis(ptrdiff_t src_len, double inv_factor, ptrdiff_t offset, ptrdiff_t size,
                             int32_t *idx0, int32_t *idx1, int32_t *w0, int32_t *w1)
{
    /* cv2.resize INTER_LINEAR: src = (dst + 0.5) * scale - 0.5, clamped, weights rounded to 11 bits. */
    for (ptrdiff_t i = 0; i < size; i++) {
        float frac = (float)((i + offset + 0.5) * inv_factor - 0.5);
        long pos = (long)floor(frac);
        frac = frac - (float)pos;
        if (pos < 0) {
            pos = 0;
            frac = 0;
        }
        if (pos >= src_len - 1) {
            pos = (long)src_len - 1;
            frac = 0;
        }
        idx0[i] = (int32_t)pos;
        idx1[i] = (int32_t)(pos + 1 < src_len ? pos + 1 : pos);
        w0[i] = (int32_t)lrintf((1.0f - frac) * EDGE_COEF_SCALE);
        w1[i] = (int32_t)lrintf(frac * EDGE_COEF_SCALE);
    }
}

static void edge_area_axis(ptrdiff_t src_len, double inv_factor, ptrdiff_t offset, ptrdiff_t size,
                           int taps, int32_t *idx, float *weight)
{
    /* Box filter: output i averages source [d*scale, (d+1)*scale), partial pixels by overlap. */
    for (ptrdiff_t i = 0; i < size; i++) {
        double lo = (i + offset) * inv_factor, hi = lo + inv_factor;
        if (hi > src_len) hi = (double)src_len;
        if (lo > hi - 1e-6) lo = hi - 1e-6;
        double total = hi - lo;
        int k = 0;
        for (ptrdiff_t j = (ptrdiff_t)floor(lo); j < hi && k < taps; j++) {
            double overlap = (hi < j + 1 ? hi : j + 1) - (lo > j ? lo : j);
            if (overlap > 1e-6) {
                idx[i * taps + k] = (int32_t)j;
                weight[i * taps + k] = (float)(overlap / total);
                k++;
            }
        }
        for (; k < taps; k++) {
            idx[i * taps + k] = k > 0 ? idx[i * taps + k - 1] : 0;
            weight[i * taps + k] = 0;
        }
    }
}

/* Lays the plan's arrays out in `base` (or only measures them when base is NULL); returns bytes. */
static size_t edge_plan_layout(EdgePlan *p, char *base)
{
    size_t at = 0, size = (size_t)p->size, taps = (size_t)p->taps;
#define EDGE_TAKE(field, type, count)                                   \
    do {                                                                \
        if (base) p->field = (type *)(base + at);                       \
        at += ((size_t)(count) * sizeof(type) + 15) & ~(size_t)15;      \
    } while (0)
    if (p->mode == EDGE_MODE_LINEAR) {
        EDGE_TAKE(x0, int32_t, size);
        EDGE_TAKE(x1, int32_t, size);
        EDGE_TAKE(ax0, int32_t, size);
        EDGE_TAKE(ax1, int32_t, size);
        EDGE_TAKE(y0, int32_t, size);
        EDGE_TAKE(y1, int32_t, size);
        EDGE_TAKE(by0, int32_t, size);
        EDGE_TAKE(by1, int32_t, size);
        EDGE_TAKE(weight_pairs, int16_t, 8 * size);
        EDGE_TAKE(rows, int16_t, 6 * size);
        EDGE_TAKE(tap_x, int32_t, 2 * size);
        EDGE_TAKE(pair_x0, int32_t, size);
        EDGE_TAKE(pair_x1, int32_t, size);
        EDGE_TAKE(converted[0], uint8_t, 8 * size + 16);
        EDGE_TAKE(converted[1], uint8_t, 8 * size + 16);
        EDGE_TAKE(lut, int32_t, 5 * 256 + 1024 / 4);
    } else {
        EDGE_TAKE(xidx, int32_t, size * taps);
        EDGE_TAKE(xw, float, size * taps);
        EDGE_TAKE(yidx, int32_t, size * taps);
        EDGE_TAKE(yw, float, size * taps);
        EDGE_TAKE(acc, float, 3 * size);
        EDGE_TAKE(converted[0], uint8_t, 3 * (size_t)p->width + 16);
        EDGE_TAKE(lut, int32_t, 5 * 256 + 1024 / 4);
    }
#undef EDGE_TAKE
    return at;
}

/* Fill `plan` for a height x width frame; -1 if out of memory. Reuses a matching plan. */
static int edge_plan_prepare(EdgePlan *plan, ptrdiff_t height, ptrdiff_t width, ptrdiff_t size,
                             int requested)
{
    if (plan->block != NULL && plan->height == height && plan->width == width && plan->size == size &&
        plan->requested == requested)
        return 0;
    edge_plan_free(plan);
    /* blobFromImages(crop=True): float32 factor, resized size rounded, crop corner truncated. */
    float factor_w = (float)size / (float)width, factor_h = (float)size / (float)height;
    float factor = factor_w > factor_h ? factor_w : factor_h;
    double inv_factor = 1.0 / (double)factor;
    ptrdiff_t resized_w = (ptrdiff_t)lrint((double)width * (double)factor);
    ptrdiff_t resized_h = (ptrdiff_t)lrint((double)height * (double)factor);
    ptrdiff_t crop_x = (ptrdiff_t)(0.5 * (double)(resized_w - size));
    ptrdiff_t crop_y = (ptrdiff_t)(0.5 * (double)(resized_h - size));
    plan->height = height;
    plan->width = width;
    plan->size = size;
    plan->requested = requested;
    plan->mode = requested == EDGE_MODE_AREA && factor < 1.0f ? EDGE_MODE_AREA : EDGE_MODE_LINEAR;
    plan->taps = plan->mode == EDGE_MODE_AREA ? (int)ceil(inv_factor) + 2 : 0;
    size_t bytes = edge_plan_layout(plan, NULL);
    char *block = (char *)calloc(bytes + 16, 1);
    if (block == NULL) {
        edge_plan_init(plan);
        return -1;
    }
    plan->block = block;
    edge_plan_layout(plan, (char *)(((uintptr_t)block + 15) & ~(uintptr_t)15));
    plan->converted_row[0] = plan->converted_row[1] = -1;
    edge_yuv_tables(plan->lut);
    if (plan->mode == EDGE_MODE_LINEAR) {
        edge_linear_axis(width, inv_factor, crop_x, size, plan->x0, plan->x1, plan->ax0, plan->ax1);
        edge_linear_axis(height, inv_factor, crop_y, size, plan->y0, plan->y1, plan->by0, plan->by1);
        for (ptrdiff_t i = 0; i < size; i++) {
            for (int c = 0; c < 3; c++) {
                plan->weight_pairs[8 * i + 2 * c] = (int16_t)plan->ax0[i];
                plan->weight_pairs[8 * i + 2 * c + 1] = (int16_t)plan->ax1[i];
            }
            plan->weight_pairs[8 * i + 6] = 0;
            plan->weight_pairs[8 * i + 7] = 0;
            plan->tap_x[2 * i] = plan->x0[i];
            plan->tap_x[2 * i + 1] = plan->x1[i];
            plan->pair_x0[i] = (int32_t)(EDGE_HAVE_SSE2 ? i : 2 * i);
            plan->pair_x1[i] = (int32_t)(EDGE_HAVE_SSE2 ? i : 2 * i + 1);
            EDGE_CHECK(plan->x0[i] >= 0 && plan->x1[i] < width && plan->y0[i] >= 0 && plan->y1[i] < height);
        }
        plan->span_lo = plan->x0[0];
        plan->span_hi = plan->x1[size - 1] + 1;
        plan->converted_bytes = EDGE_HAVE_SSE2 ? 8 * size : 6 * size;
    } else {
        edge_area_axis(width, inv_factor, crop_x, size, plan->taps, plan->xidx, plan->xw);
        edge_area_axis(height, inv_factor, crop_y, size, plan->taps, plan->yidx, plan->yw);
        ptrdiff_t lo = width, hi = 0;
        for (ptrdiff_t i = 0; i < size * plan->taps; i++) {
            EDGE_CHECK(plan->xidx[i] >= 0 && plan->xidx[i] < width);
            EDGE_CHECK(plan->yidx[i] >= 0 && plan->yidx[i] < height);
            if (plan->xidx[i] < lo) lo = plan->xidx[i];
            if (plan->xidx[i] + 1 > hi) hi = plan->xidx[i] + 1;
        }
        plan->span_lo = lo;
        plan->span_hi = hi;
        plan->converted_bytes = 3 * (hi - lo);
    }
    return 0;
}

/* ------------------------------------------------------------------ yuv420p -> BGR, per pixel */

/* cv2.cvtColor(COLOR_YUV2BGR_I420), bit-exact (OpenCV's ITUR_BT_601_* constants, 20-bit fixed point):
 *   Y' = max(Y - 16, 0) * 1.164, U' = U - 128, V' = V - 128
 *   R = Y' + 1.596 V',  G = Y' - 0.813 V' - 0.391 U',  B = Y' + 2.018 U'
 * each as (Y'*2^20 + 2^19 + coef*2^20 ...) >> 20, saturated to 0..255. The products come from
 * tables (exactly the same integers) and the saturation from a clamp table: no branches. */
#define EDGE_CLAMP_OFFSET 320 /* (sum >> 20) lies in [-258, 534] */

static void edge_yuv_tables(int32_t *lut)
{
    uint8_t *clamp = (uint8_t *)(lut + 5 * 256);
    for (int i = 0; i < 256; i++) {
        lut[i] = (i > 16 ? i - 16 : 0) * 1220542 + (1 << 19);
        lut[256 + i] = 2116026 * (i - 128);                /* U -> B */
        lut[512 + i] = -409993 * (i - 128);                /* U -> G */
        lut[768 + i] = -852492 * (i - 128);                /* V -> G */
        lut[1024 + i] = 1673527 * (i - 128);               /* V -> R */
    }
    for (int i = 0; i < 1024; i++) {
        const int value = i - EDGE_CLAMP_OFFSET;
        clamp[i] = (uint8_t)(value < 0 ? 0 : value > 255 ? 255 : value);
    }
}

static inline void edge_yuv_to_bgr(const int32_t *lut, int y, int u, int v, uint8_t *bgr)
{
    const uint8_t *clamp = (const uint8_t *)(lut + 5 * 256) + EDGE_CLAMP_OFFSET;
    const int32_t luma = lut[y];
    bgr[0] = clamp[(luma + lut[256 + u]) >> 20];
    bgr[1] = clamp[(luma + lut[512 + u] + lut[768 + v]) >> 20];
    bgr[2] = clamp[(luma + lut[1024 + v]) >> 20];
}

/* The source pixels (row, columns[0..count)) as BGR bytes into `out` (3 x count). */
static inline void edge_convert_columns(const int32_t *lut, const EdgeYuvPlanes *planes, ptrdiff_t row,
                                 const int32_t *columns, ptrdiff_t count, uint8_t *out)
{
    const uint8_t *y = planes->y + row * planes->y_row;
    const uint8_t *u = planes->u + (row >> 1) * planes->u_row;
    const uint8_t *v = planes->v + (row >> 1) * planes->v_row;
    if (planes->y_col == 1 && planes->u_col == 1 && planes->v_col == 1) {
        for (ptrdiff_t k = 0; k < count; k++) {
            const ptrdiff_t x = columns[k];
            edge_yuv_to_bgr(lut, y[x], u[x >> 1], v[x >> 1], out + 3 * k);
        }
        return;
    }
    for (ptrdiff_t k = 0; k < count; k++) {
        const ptrdiff_t x = columns[k];
        edge_yuv_to_bgr(lut, y[x * planes->y_col], u[(x >> 1) * planes->u_col], v[(x >> 1) * planes->v_col],
                        out + 3 * k);
    }
}

/* Source row `row`, columns lo..hi-1, as BGR bytes into `out`. */
static void edge_convert_span(const int32_t *lut, const EdgeYuvPlanes *planes, ptrdiff_t row, ptrdiff_t lo,
                              ptrdiff_t hi, uint8_t *out)
{
    const uint8_t *y = planes->y + row * planes->y_row;
    const uint8_t *u = planes->u + (row >> 1) * planes->u_row;
    const uint8_t *v = planes->v + (row >> 1) * planes->v_row;
    if (planes->y_col == 1 && planes->u_col == 1 && planes->v_col == 1) {
        for (ptrdiff_t x = lo; x < hi; x++)
            edge_yuv_to_bgr(lut, y[x], u[x >> 1], v[x >> 1], out + 3 * (x - lo));
        return;
    }
    for (ptrdiff_t x = lo; x < hi; x++)
        edge_yuv_to_bgr(lut, y[x * planes->y_col], u[(x >> 1) * planes->u_col], v[(x >> 1) * planes->v_col],
                        out + 3 * (x - lo));
}

/* ------------------------------------------------------------------ linear: one output row */

#if EDGE_HAVE_SSE2
/* One output pixel: B, G, R (and a zero lane) as floats, before mean and scale. Pixels x0 and
   x0+1 of both source rows are read as 8 bytes, paired with their 11-bit weights (pmaddwd), >>4,
   then the vertical step uses 16-bit multiply-high and (v + 2) >> 2 like cv2's
   VResizeLinearVec_32s8u. */
static inline __m128 edge_linear_pixel_sse2(const uint8_t *row_a, const uint8_t *row_b,
                                            ptrdiff_t row_bytes, ptrdiff_t offset,
                                            const int16_t *weight_pair, __m128i beta, const int quad)
{
    const __m128i zero = _mm_setzero_si128();
    const __m128i two = _mm_set1_epi16(2), top = _mm_set1_epi16(255);
    __m128i a, b, w, h;
    if (offset + 8 <= row_bytes) {
        a = _mm_loadl_epi64((const __m128i *)(row_a + offset));
        b = _mm_loadl_epi64((const __m128i *)(row_b + offset));
    } else { /* the last columns: never read past the frame */
        uint8_t tail_a[8] = {0}, tail_b[8] = {0};
        memcpy(tail_a, row_a + offset, (size_t)(row_bytes - offset));
        memcpy(tail_b, row_b + offset, (size_t)(row_bytes - offset));
        a = _mm_loadl_epi64((const __m128i *)tail_a);
        b = _mm_loadl_epi64((const __m128i *)tail_b);
    }
    a = _mm_unpacklo_epi8(a, zero); /* p0 p1 p2 q0 q1 q2 . . */
    b = _mm_unpacklo_epi8(b, zero);
    if (quad) { /* BGR0 pixels (converted yuv taps): q starts at byte 4 */
        a = _mm_unpacklo_epi16(a, _mm_srli_si128(a, 8));
        b = _mm_unpacklo_epi16(b, _mm_srli_si128(b, 8));
    } else {
        a = _mm_unpacklo_epi16(a, _mm_srli_si128(a, 6)); /* p0 q0 p1 q1 p2 q2 . . */
        b = _mm_unpacklo_epi16(b, _mm_srli_si128(b, 6));
    }
    w = _mm_loadu_si128((const __m128i *)weight_pair);
    h = _mm_packs_epi32(_mm_srai_epi32(_mm_madd_epi16(a, w), 4), _mm_srai_epi32(_mm_madd_epi16(b, w), 4));
    h = _mm_mulhi_epi16(h, beta);
    h = _mm_add_epi16(h, _mm_srli_si128(h, 8));
    h = _mm_min_epi16(_mm_srai_epi16(_mm_add_epi16(h, two), 2), top);
    return _mm_cvtepi32_ps(_mm_unpacklo_epi16(h, zero));
}
#endif

/* Output row `oy` from source rows a (weight by0) and b (weight by1): `x0`/`x1` index pixels of
   3 bytes in the rows (SSE2 with `quad`: x0 indexes 8-byte pairs of BGR0 pixels). Writes the
   three planes and returns sum |new - previous| (slot units). */
static inline double edge_linear_row(const EdgePlan *plan, ptrdiff_t oy, const uint8_t *row_a,
                                     const uint8_t *row_b, ptrdiff_t row_bytes, const int32_t *x0,
                                     const int32_t *x1, float *out, const float *previous,
                                     const float *mean_rgb, float scale, const int quad)
{
    const ptrdiff_t size = plan->size, plane = size * size;
    double moved = 0.0;
    ptrdiff_t ox = 0;
#if EDGE_HAVE_SSE2
    (void)x1;
    const ptrdiff_t stride = quad ? 8 : 3;
    float *plane_r = out + oy * size, *plane_g = plane_r + plane, *plane_b = plane_g + plane;
    const float *prev_r = previous ? previous + oy * size : NULL;
    const float *prev_g = previous ? prev_r + plane : NULL, *prev_b = previous ? prev_g + plane : NULL;
    const int beta0 = plan->by0[oy], beta1 = plan->by1[oy];
    const __m128i beta = _mm_setr_epi16((short)beta0, (short)beta0, (short)beta0, 0, (short)beta1,
                                        (short)beta1, (short)beta1, 0);
    const __m128 mean_b = _mm_set1_ps(mean_rgb[2]), mean_g = _mm_set1_ps(mean_rgb[1]);
    const __m128 mean_r = _mm_set1_ps(mean_rgb[0]), factor = _mm_set1_ps(scale);
    const __m128 sign = _mm_set1_ps(-0.0f);
    const int16_t *pairs = plan->weight_pairs;
    __m128 motion = _mm_setzero_ps();
    float lanes[4];
    for (; ox + 4 <= size; ox += 4) {
        __m128 p0 = edge_linear_pixel_sse2(row_a, row_b, row_bytes, stride * x0[ox], pairs + 8 * ox, beta, quad);
        __m128 p1 = edge_linear_pixel_sse2(row_a, row_b, row_bytes, stride * x0[ox + 1], pairs + 8 * (ox + 1),
                                           beta, quad);
        __m128 p2 = edge_linear_pixel_sse2(row_a, row_b, row_bytes, stride * x0[ox + 2], pairs + 8 * (ox + 2),
                                           beta, quad);
        __m128 p3 = edge_linear_pixel_sse2(row_a, row_b, row_bytes, stride * x0[ox + 3], pairs + 8 * (ox + 3),
                                           beta, quad);
        _MM_TRANSPOSE4_PS(p0, p1, p2, p3); /* p0 = B x4, p1 = G x4, p2 = R x4 */
        const __m128 vb = _mm_mul_ps(_mm_sub_ps(p0, mean_b), factor);
        const __m128 vg = _mm_mul_ps(_mm_sub_ps(p1, mean_g), factor);
        const __m128 vr = _mm_mul_ps(_mm_sub_ps(p2, mean_r), factor);
        if (previous) { /* read before the store: `previous` may be this very slot (capacity 1) */
            motion = _mm_add_ps(motion, _mm_andnot_ps(sign, _mm_sub_ps(vb, _mm_loadu_ps(prev_b + ox))));
            motion = _mm_add_ps(motion, _mm_andnot_ps(sign, _mm_sub_ps(vg, _mm_loadu_ps(prev_g + ox))));
            motion = _mm_add_ps(motion, _mm_andnot_ps(sign, _mm_sub_ps(vr, _mm_loadu_ps(prev_r + ox))));
        }
        _mm_storeu_ps(plane_b + ox, vb);
        _mm_storeu_ps(plane_g + ox, vg);
        _mm_storeu_ps(plane_r + ox, vr);
    }
    _mm_storeu_ps(lanes, motion);
    moved = (double)lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; ox < size; ox++) {
        __m128 f = edge_linear_pixel_sse2(row_a, row_b, row_bytes, stride * x0[ox], pairs + 8 * ox, beta, quad);
        _mm_storeu_ps(lanes, f);
        const float vb = (lanes[0] - mean_rgb[2]) * scale, vg = (lanes[1] - mean_rgb[1]) * scale;
        const float vr = (lanes[2] - mean_rgb[0]) * scale;
        if (previous)
            moved += fabsf(vb - prev_b[ox]) + fabsf(vg - prev_g[ox]) + fabsf(vr - prev_r[ox]);
        plane_b[ox] = vb;
        plane_g[ox] = vg;
        plane_r[ox] = vr;
    }
#else
    /* Horizontal taps of both rows into planar int16 buffers (value*2048>>4, as cv2 keeps them),
       then the vertical pass (16-bit multiply-high, as cv2's SIMD). */
    (void)row_bytes;
    (void)quad;
    int16_t *top = plan->rows, *bottom = plan->rows + 3 * size;
    for (; ox < size; ox++) {
        const ptrdiff_t xa = 3 * (ptrdiff_t)x0[ox], xb = 3 * (ptrdiff_t)x1[ox];
        const int32_t a0 = plan->ax0[ox], a1 = plan->ax1[ox];
        for (int c = 0; c < 3; c++) {
            top[c * size + ox] = (int16_t)((row_a[xa + c] * a0 + row_a[xb + c] * a1) >> 4);
            bottom[c * size + ox] = (int16_t)((row_b[xa + c] * a0 + row_b[xb + c] * a1) >> 4);
        }
    }
    const int32_t b0 = plan->by0[oy], b1 = plan->by1[oy];
    for (int c = 0; c < 3; c++) {
        /* BGR source channel c lands in RGB plane 2 - c. */
        float *dst = out + (2 - c) * plane + oy * size;
        const float *prev = previous ? previous + (2 - c) * plane + oy * size : NULL;
        const float mean_c = mean_rgb[2 - c];
        const int16_t *top_c = top + c * size, *bottom_c = bottom + c * size;
        float moved_c = 0.0f;
        for (ox = 0; ox < size; ox++) {
            int32_t value = ((((int32_t)top_c[ox] * b0) >> 16) + (((int32_t)bottom_c[ox] * b1) >> 16) + 2) >> 2;
            if (value > 255) value = 255;
            const float v = ((float)value - mean_c) * scale;
            if (prev) moved_c += fabsf(v - prev[ox]);
            dst[ox] = v;
        }
        moved += moved_c;
    }
#endif
    return moved;
}

/* ------------------------------------------------------------------ area: one output row */

/* Output row `oy` as the box filter of source rows fetched by `row_at` (BGR bytes, column
   `column0` first). Returns sum |new - previous| (slot units). */
typedef const uint8_t *(*EdgeRowSource)(EdgePlan *plan, const void *source, ptrdiff_t row);

static double edge_area_row(EdgePlan *plan, ptrdiff_t oy, EdgeRowSource row_at, const void *source,
                            ptrdiff_t column0, float *out, const float *previous, const float *mean_rgb,
                            float scale)
{
    const ptrdiff_t size = plan->size, plane = size * size;
    const int taps = plan->taps;
    float *acc = plan->acc;
    double moved = 0.0;
    for (ptrdiff_t i = 0; i < 3 * size; i++) acc[i] = 0;
    for (int ky = 0; ky < taps; ky++) {
        const float wy = plan->yw[oy * taps + ky];
        if (wy == 0) continue;
        const uint8_t *row = row_at(plan, source, plan->yidx[oy * taps + ky]);
        for (ptrdiff_t ox = 0; ox < size; ox++) {
            float s0 = 0, s1 = 0, s2 = 0;
            for (int kx = 0; kx < taps; kx++) {
                const uint8_t *pixel = row + 3 * (plan->xidx[ox * taps + kx] - column0);
                const float wx = plan->xw[ox * taps + kx];
                s0 += pixel[0] * wx;
                s1 += pixel[1] * wx;
                s2 += pixel[2] * wx;
            }
            acc[3 * ox] += wy * s0;
            acc[3 * ox + 1] += wy * s1;
            acc[3 * ox + 2] += wy * s2;
        }
    }
    for (int c = 0; c < 3; c++) {
        float *dst = out + (2 - c) * plane + oy * size;
        const float *prev = previous ? previous + (2 - c) * plane + oy * size : NULL;
        const float mean_c = mean_rgb[2 - c];
        for (ptrdiff_t ox = 0; ox < size; ox++) {
            /* Round to a grey level as cv2.resize(INTER_AREA) on uint8 does. */
            const float v = ((float)floor((double)acc[3 * ox + c] + 0.5) - mean_c) * scale;
            if (prev) moved += fabsf(v - prev[ox]);
            dst[ox] = v;
        }
    }
    return moved;
}

typedef struct {
    const uint8_t *frame;
    ptrdiff_t row_stride;
} EdgeBgrFrame;

static const uint8_t *edge_bgr_row(EdgePlan *plan, const void *source, ptrdiff_t row)
{
    (void)plan;
    const EdgeBgrFrame *bgr = (const EdgeBgrFrame *)source;
    return bgr->frame + row * bgr->row_stride;
}

static const uint8_t *edge_yuv_span_row(EdgePlan *plan, const void *source, ptrdiff_t row)
{
    if (plan->converted_row[0] != row) {
        edge_convert_span(plan->lut, (const EdgeYuvPlanes *)source, row, plan->span_lo, plan->span_hi, plan->converted[0]);
        plan->converted_row[0] = row;
    }
    return plan->converted[0];
}

/* ------------------------------------------------------------------ whole slots */

/* sum |new - previous| in slot units -> mean grey levels (255 without a previous slot). */
static double edge_motion(const EdgePlan *plan, double moved, const float *previous, float scale)
{
    if (previous == NULL) return 255.0;
    if (scale == 0.0f) return 0.0;
    return moved / (3.0 * (double)plan->size * (double)plan->size) / fabs((double)scale);
}

/* A BGR frame (rows `row_stride` bytes apart, pixels packed) into `out` (3 x S x S floats);
   `previous` (the previous slot, may be `out` itself, or NULL) for the motion measure. Returns the
   motion in grey levels. The plan must be prepared for the frame's size. */
static double edge_bgr_kernel(EdgePlan *plan, const uint8_t *frame, ptrdiff_t row_stride, float *out,
                              const float *previous, const float *mean_rgb, float scale)
{
    const ptrdiff_t size = plan->size;
    double moved = 0.0;
    if (plan->mode == EDGE_MODE_AREA) {
        EdgeBgrFrame source = {frame, row_stride};
        for (ptrdiff_t oy = 0; oy < size; oy++)
            moved += edge_area_row(plan, oy, edge_bgr_row, &source, 0, out, previous, mean_rgb, scale);
        return edge_motion(plan, moved, previous, scale);
    }
    const ptrdiff_t row_bytes = 3 * plan->width;
    /* Columns the crop reads: prefetched for the next row pair while this one is computed. */
    const ptrdiff_t span_lo = 3 * plan->span_lo, span_hi = 3 * plan->span_hi;
    for (ptrdiff_t oy = 0; oy < size; oy++) {
        const uint8_t *row_a = frame + plan->y0[oy] * row_stride, *row_b = frame + plan->y1[oy] * row_stride;
        if (oy + 1 < size) {
            const uint8_t *next_a = frame + plan->y0[oy + 1] * row_stride;
            const uint8_t *next_b = frame + plan->y1[oy + 1] * row_stride;
            for (ptrdiff_t byte = span_lo; byte < span_hi + 63; byte += 64) {
                EDGE_PREFETCH(next_a + byte);
                EDGE_PREFETCH(next_b + byte);
            }
        }
        moved += edge_linear_row(plan, oy, row_a, row_b, row_bytes, plan->x0, plan->x1, out, previous,
                                 mean_rgb, scale, 0);
    }
    return edge_motion(plan, moved, previous, scale);
}

#if EDGE_HAVE_SSE2
/* edge_yuv_to_bgr's conversion, 8 pixels at a time, written as BGR0 (4 bytes per pixel). Each product
   c*x of the 20-bit constants is split as (c_hi*x << 15) + c_lo*x with 16-bit halves, so
   pmaddwd computes it exactly; packs/packus saturate like the clamp. Bit-exact with the tables. */
static inline __m128i edge_mul_add(__m128i pairs, short hi0, short hi1, short lo0, short lo1)
{
    const __m128i hi = _mm_madd_epi16(pairs, _mm_setr_epi16(hi0, hi1, hi0, hi1, hi0, hi1, hi0, hi1));
    const __m128i lo = _mm_madd_epi16(pairs, _mm_setr_epi16(lo0, lo1, lo0, lo1, lo0, lo1, lo0, lo1));
    return _mm_add_epi32(_mm_slli_epi32(hi, 15), lo);
}

static inline __m128i edge_channel(__m128i sum_lo, __m128i sum_hi)
{
    const __m128i half = _mm_set1_epi32(1 << 19);
    sum_lo = _mm_srai_epi32(_mm_add_epi32(sum_lo, half), 20);
    sum_hi = _mm_srai_epi32(_mm_add_epi32(sum_hi, half), 20);
    const __m128i words = _mm_packs_epi32(sum_lo, sum_hi);
    return _mm_packus_epi16(words, words); /* 8 bytes, saturated to 0..255 */
}

static void edge_convert_taps(const int32_t *lut, const EdgeYuvPlanes *planes, ptrdiff_t row,
                              const int32_t *columns, ptrdiff_t count, uint8_t *out)
{
    const uint8_t *y = planes->y + row * planes->y_row;
    const uint8_t *u = planes->u + (row >> 1) * planes->u_row;
    const uint8_t *v = planes->v + (row >> 1) * planes->v_row;
    const ptrdiff_t yc = planes->y_col, uc = planes->u_col, vc = planes->v_col;
    const __m128i zero = _mm_setzero_si128(), sixteen = _mm_set1_epi16(16), offset = _mm_set1_epi16(128);
    ptrdiff_t k = 0;
    for (; k + 8 <= count; k += 8) {
        const int32_t *x = columns + k;
/* pinsrw chains: a gather through the stack would stall on store forwarding. */
#define EDGE_GATHER(plane, step, shift)                                                               \
    _mm_insert_epi16(_mm_insert_epi16(_mm_insert_epi16(_mm_insert_epi16(                              \
    _mm_insert_epi16(_mm_insert_epi16(_mm_insert_epi16(                                               \
        _mm_cvtsi32_si128(plane[(x[0] >> shift) * step]),                                             \
        plane[(x[1] >> shift) * step], 1), plane[(x[2] >> shift) * step], 2),                         \
        plane[(x[3] >> shift) * step], 3), plane[(x[4] >> shift) * step], 4),                         \
        plane[(x[5] >> shift) * step], 5), plane[(x[6] >> shift) * step], 6),                         \
        plane[(x[7] >> shift) * step], 7)
        const __m128i luma = _mm_max_epi16(_mm_sub_epi16(EDGE_GATHER(y, yc, 0), sixteen), zero);
        const __m128i cu = _mm_sub_epi16(EDGE_GATHER(u, uc, 1), offset);
        const __m128i cv = _mm_sub_epi16(EDGE_GATHER(v, vc, 1), offset);
#undef EDGE_GATHER
        const __m128i yu_lo = _mm_unpacklo_epi16(luma, cu), yu_hi = _mm_unpackhi_epi16(luma, cu);
        const __m128i yv_lo = _mm_unpacklo_epi16(luma, cv), yv_hi = _mm_unpackhi_epi16(luma, cv);
        const __m128i v0_lo = _mm_unpacklo_epi16(cv, zero), v0_hi = _mm_unpackhi_epi16(cv, zero);
        /* 1220542 = 37<<15 + 8126, 2116026 = 64<<15 + 18874, -409993 = -13<<15 + 15991,
           -852492 = -26<<15 - 524, 1673527 = 51<<15 + 2359 */
        const __m128i b = edge_channel(edge_mul_add(yu_lo, 37, 64, 8126, 18874),
                                       edge_mul_add(yu_hi, 37, 64, 8126, 18874));
        const __m128i g = edge_channel(
            _mm_add_epi32(edge_mul_add(yu_lo, 37, -13, 8126, 15991), edge_mul_add(v0_lo, -26, 0, -524, 0)),
            _mm_add_epi32(edge_mul_add(yu_hi, 37, -13, 8126, 15991), edge_mul_add(v0_hi, -26, 0, -524, 0)));
        const __m128i r = edge_channel(edge_mul_add(yv_lo, 37, 51, 8126, 2359),
                                       edge_mul_add(yv_hi, 37, 51, 8126, 2359));
        const __m128i bg = _mm_unpacklo_epi8(b, g), r0 = _mm_unpacklo_epi8(r, zero);
        _mm_storeu_si128((__m128i *)(out + 4 * k), _mm_unpacklo_epi16(bg, r0));
        _mm_storeu_si128((__m128i *)(out + 4 * k + 16), _mm_unpackhi_epi16(bg, r0));
    }
    for (; k < count; k++) {
        const ptrdiff_t x = columns[k];
        edge_yuv_to_bgr(lut, y[x * yc], u[(x >> 1) * uc], v[(x >> 1) * vc], out + 4 * k);
        out[4 * k + 3] = 0;
    }
}
#else
/* Scalar builds keep tap rows as BGR pixels (3 bytes). */
static void edge_convert_taps(const int32_t *lut, const EdgeYuvPlanes *planes, ptrdiff_t row,
                              const int32_t *columns, ptrdiff_t count, uint8_t *out)
{
    edge_convert_columns(lut, planes, row, columns, count, out);
}
#endif

/* The converted tap row (x0, x1 of every output column) of source row `row`, cached: upscales
   reuse a source row for several output rows. */
static const uint8_t *edge_tap_row(EdgePlan *plan, const EdgeYuvPlanes *planes, ptrdiff_t row, int avoid)
{
    for (int i = 0; i < 2; i++)
        if (plan->converted_row[i] == row) return plan->converted[i];
    const int slot = avoid == 0 ? 1 : 0;
    edge_convert_taps(plan->lut, planes, row, plan->tap_x, 2 * plan->size, plan->converted[slot]);
    plan->converted_row[slot] = row;
    return plan->converted[slot];
}

/* yuv420p planes into `out`, as edge_bgr_kernel does for the BGR frame cv2.cvtColor(I420->BGR)
   would give. Only the pixels the taps read are converted. Returns the motion in grey levels. */
static double edge_yuv_kernel(EdgePlan *plan, const EdgeYuvPlanes *planes, float *out, const float *previous,
                              const float *mean_rgb, float scale)
{
    const ptrdiff_t size = plan->size;
    double moved = 0.0;
    plan->converted_row[0] = plan->converted_row[1] = -1; /* new planes: nothing cached */
    if (plan->mode == EDGE_MODE_AREA) {
        for (ptrdiff_t oy = 0; oy < size; oy++)
            moved += edge_area_row(plan, oy, edge_yuv_span_row, planes, plan->span_lo, out, previous,
                                   mean_rgb, scale);
        return edge_motion(plan, moved, previous, scale);
    }
    for (ptrdiff_t oy = 0; oy < size; oy++) {
        const ptrdiff_t ya = plan->y0[oy], yb = plan->y1[oy];
        /* Keep the row the other tap needs; upscales reuse rows from one output row to the next. */
        int keep = plan->converted_row[0] == yb ? 0 : plan->converted_row[1] == yb ? 1 : -1;
        const uint8_t *row_a = edge_tap_row(plan, planes, ya, keep);
        keep = plan->converted_row[0] == ya ? 0 : 1;
        const uint8_t *row_b = edge_tap_row(plan, planes, yb, keep);
        moved += edge_linear_row(plan, oy, row_a, row_b, plan->converted_bytes, plan->pair_x0, plan->pair_x1,
                                 out, previous, mean_rgb, scale, EDGE_HAVE_SSE2);
    }
    return edge_motion(plan, moved, previous, scale);
}

#endif /* EDGE_HOTPATH_KERNELS_H */
