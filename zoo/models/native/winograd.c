/* Winograd tile transforms for ganzoo's eager CPU convolutions (zoo/models/ops.py): F(m x m, 3x3) for the
 * stride-1 3x3 convolutions, and a nested F(2, 2) for the stride-2 3x3 transposed convolutions; and the 4-tap
 * FIR that follows an upsampling layer's transposed convolution. Each writes its result with the layer's epilogue
 * (bias, noise, leaky ReLU, clamp), so the activations are not passed over again for those.
 *
 * Compiled on first use for the machine it runs on (zoo/models/native/__init__.py) and called through ctypes.
 * The GEMMs between the two transforms stay in oneDNN; these loops only replace the transforms, which as
 * batched matmuls cost more than the GEMMs they feed. The matrices are those of ops._WINO_MATS (B^T and A^T
 * of Lavin & Gray 2015, interpolation points 0, +-1 for m = 2, 0, +-1, +-2 for m = 4 and 0, +-1, +-2, +-1/2 for
 * m = 6), written out as sums.
 *
 * F(6x6) is built only with -DGANZOO_F6 (zoo/models/native/__init__.py asks for it when that tile is chosen): its
 * unrolled transforms take about two thirds of the compile time. ganzoo_tiles() says which tiles a build has.
 *
 * Layouts: x and out are NHWC (channels-last), the channel count a multiple of 16. Transformed tiles and point
 * products are addressed by a pointer per transform point plus a tile stride, so the caller picks the layout
 * its GEMM wants ([T][P][C] rows or [P][T][C] planes). Tiles are numbered (n, tile row, tile column).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

typedef float vf __attribute__((vector_size(64)));
#define VL 16

static inline vf vload(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }

/* Streaming stores for the transformed tiles: they are 2.25x the input and are read once, by the GEMM. */
static inline void vstream(float *p, vf v)
{
#if defined(__AVX512F__)
    if (((uintptr_t)p & 63) == 0) {
        _mm512_stream_ps(p, (__m512)v);
        return;
    }
#endif
    vstore(p, v);
}

#define INLINE static inline __attribute__((always_inline))

typedef int32_t vi __attribute__((vector_size(64)));

static inline vf vselect(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

/* What a modulated layer does after its convolution, in the order of the reference (bias_act with the positive
 * gain folded into the scale, the bias and the noise by the caller): add the noise plane's pixel (noise: [H][W]
 * per sample, nbs elements between samples, 0 for one plane shared by all), leaky ReLU with negative slope `slope`
 * (1: none), clamp to +-clampv (negative: none). */
typedef struct {
    const float *noise;
    int64_t nbs;
    float slope, clampv;
} epilogue;

INLINE vf finish(const epilogue *e, vf y, int64_t b, int64_t pix)
{
    if (e->noise)
        y += e->noise[b * e->nbs + pix];
    if (e->slope != 1.0f)
        y = vselect(y > (vf){0}, y, y * e->slope);
    if (e->clampv >= 0.0f) {
        y = vselect(y > e->clampv, (vf){0} + e->clampv, y);
        y = vselect(y < -e->clampv, (vf){0} - e->clampv, y);
    }
    return y;
}

INLINE void bt4(const vf *d, vf *r)
{
    const vf s1 = d[3] + d[4], t1 = d[1] + d[2], s2 = d[4] - d[3], t2 = d[1] - d[2];
    const vf s3 = d[4] - d[2], t3 = d[3] - d[1];
    r[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    r[1] = s1 - 4.0f * t1;
    r[2] = s2 + 4.0f * t2;
    r[3] = s3 + 2.0f * t3;
    r[4] = s3 - 2.0f * t3;
    r[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

INLINE void at4(const vf *m, vf *o)
{
    const vf a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
    o[0] = m[0] + a + c;
    o[1] = b + 2.0f * d;
    o[2] = a + 4.0f * c;
    o[3] = b + 8.0f * d + m[5];
}

/* F(6x6, 3x3): rows 1-6 of B^T pair up as e + o and e - o. */
INLINE void bt6(const vf *d, vf *r)
{
    r[0] = d[0] - d[6] + 5.25f * (d[4] - d[2]);
    r[7] = d[7] - d[1] + 5.25f * (d[3] - d[5]);
    vf e = d[2] + d[6] - 4.25f * d[4], o = d[1] + d[5] - 4.25f * d[3];
    r[1] = e + o;
    r[2] = e - o;
    e = 0.25f * d[2] - 1.25f * d[4] + d[6];
    o = 0.5f * d[1] - 2.5f * d[3] + 2.0f * d[5];
    r[3] = e + o;
    r[4] = e - o;
    e = 4.0f * d[2] - 5.0f * d[4] + d[6];
    o = 2.0f * d[1] - 2.5f * d[3] + 0.5f * d[5];
    r[5] = e + o;
    r[6] = e - o;
}

INLINE void at6(const vf *m, vf *o)
{
    const vf a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4], e = m[5] + m[6], f = m[5] - m[6];
    o[0] = m[0] + a + c + e;
    o[1] = b + 2.0f * d + 0.5f * f;
    o[2] = a + 4.0f * c + 0.25f * e;
    o[3] = b + 8.0f * d + 0.125f * f;
    o[4] = a + 16.0f * c + 0.0625f * e;
    o[5] = b + 32.0f * d + 0.03125f * f + m[7];
}

INLINE void bt2(const vf *d, vf *r)
{
    r[0] = d[0] - d[2];
    r[1] = d[1] + d[2];
    r[2] = d[2] - d[1];
    r[3] = d[1] - d[3];
}

INLINE void at2(const vf *m, vf *o)
{
    o[0] = m[0] + m[1] + m[2];
    o[1] = m[1] - m[2] - m[3];
}

/* One row of tiles: B^T d B of each (A x A window at stride M, one-pixel zero border), times s[b][c]. */
INLINE void input_row(const int A, const int M, const float *x, const float *s, float *const *v, int64_t st,
                      int64_t row, int64_t h, int64_t w, int64_t c)
{
    const int64_t th = (h + M - 1) / M, tw = (w + M - 1) / M;
    const int64_t b = row / th, ty = row % th;
    for (int64_t tx = 0; tx < tw; tx++) {
        const int64_t t = row * tw + tx;
        for (int64_t c0 = 0; c0 < c; c0 += VL) {
            vf tmp[8][8]; /* [transformed row][column] */
            _Pragma("GCC unroll 8") for (int j = 0; j < A; j++) {
                const int64_t xx = tx * M + j - 1;
                vf d[8], r[8];
                _Pragma("GCC unroll 8") for (int i = 0; i < A; i++) {
                    const int64_t yy = ty * M + i - 1;
                    d[i] = (xx < 0 || xx >= w || yy < 0 || yy >= h)
                               ? (vf){0}
                               : vload(x + ((b * h + yy) * w + xx) * c + c0);
                }
                if (A == 8)
                    bt6(d, r);
                else if (A == 6)
                    bt4(d, r);
                else
                    bt2(d, r);
                _Pragma("GCC unroll 8") for (int i2 = 0; i2 < A; i2++) tmp[i2][j] = r[i2];
            }
            const vf sc = s ? vload(s + b * c + c0) : (vf){0} + 1.0f;
            _Pragma("GCC unroll 8") for (int i2 = 0; i2 < A; i2++) {
                vf r[8];
                if (A == 8)
                    bt6(tmp[i2], r);
                else if (A == 6)
                    bt4(tmp[i2], r);
                else
                    bt2(tmp[i2], r);
                _Pragma("GCC unroll 8") for (int j2 = 0; j2 < A; j2++)
                    vstream(v[i2 * A + j2] + t * st + c0, r[j2] * sc);
            }
        }
    }
}

/* One row of tiles: A^T m A of each tile's point products, times scale[b][o], plus bias[o], then the epilogue,
 * into out. */
INLINE void output_row(const int A, const int M, const float *const *prod, int64_t st, const float *scale,
                       const float *bias, const epilogue *e, float *out, int64_t row, int64_t h, int64_t w,
                       int64_t o)
{
    const int64_t th = (h + M - 1) / M, tw = (w + M - 1) / M;
    const int64_t b = row / th, ty = row % th;
    for (int64_t tx = 0; tx < tw; tx++) {
        const int64_t t = row * tw + tx;
        for (int64_t o0 = 0; o0 < o; o0 += VL) {
            vf tmp[6][8];
            _Pragma("GCC unroll 8") for (int j = 0; j < A; j++) {
                vf d[8], r[6];
                _Pragma("GCC unroll 8") for (int i = 0; i < A; i++) d[i] = vload(prod[i * A + j] + t * st + o0);
                if (A == 8)
                    at6(d, r);
                else if (A == 6)
                    at4(d, r);
                else
                    at2(d, r);
                _Pragma("GCC unroll 8") for (int i2 = 0; i2 < M; i2++) tmp[i2][j] = r[i2];
            }
            const vf sc = scale ? vload(scale + b * o + o0) : (vf){0} + 1.0f;
            const vf bi = bias ? vload(bias + o0) : (vf){0};
            _Pragma("GCC unroll 8") for (int i2 = 0; i2 < M; i2++) {
                const int64_t yy = ty * M + i2;
                if (yy >= h)
                    break;
                vf r[6];
                if (A == 8)
                    at6(tmp[i2], r);
                else if (A == 6)
                    at4(tmp[i2], r);
                else
                    at2(tmp[i2], r);
                _Pragma("GCC unroll 8") for (int j2 = 0; j2 < M; j2++) {
                    const int64_t xx = tx * M + j2;
                    if (xx >= w)
                        break;
                    vstore(out + ((b * h + yy) * w + xx) * o + o0, finish(e, r[j2] * sc + bi, b, yy * w + xx));
                }
            }
        }
    }
}

/* The Winograd tiles m this build transforms, as a bit mask (1 << m). */
int ganzoo_tiles(void)
{
#ifdef GANZOO_F6
    return (1 << 2) | (1 << 4) | (1 << 6);
#else
    return (1 << 2) | (1 << 4);
#endif
}

static int tile_built(int m) { return m > 0 && m < 31 && (ganzoo_tiles() >> m & 1); }

/* Returns 0, or -1 for arguments it does not handle (the caller then uses its own form). */
int ganzoo_wino_input(const float *x, const float *s, float *const *v, int64_t st, int64_t n, int64_t h,
                      int64_t w, int64_t c, int m, int nthreads)
{
    if (c % VL || !tile_built(m) || n < 1 || h < 1 || w < 1)
        return -1;
    const int64_t rows = n * ((h + m - 1) / m);
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
#ifdef GANZOO_F6
        if (m == 6)
            input_row(8, 6, x, s, v, st, row, h, w, c);
        else
#endif
        if (m == 4)
            input_row(6, 4, x, s, v, st, row, h, w, c);
        else
            input_row(4, 2, x, s, v, st, row, h, w, c);
    }
#if defined(__AVX512F__)
    _mm_sfence();
#endif
    return 0;
}

int ganzoo_wino_output(const float *const *prod, int64_t st, const float *scale, const float *bias,
                       const float *noise, int64_t nbs, float slope, float clampv, float *out, int64_t n, int64_t h,
                       int64_t w, int64_t o, int m, int nthreads)
{
    if (o % VL || !tile_built(m) || n < 1 || h < 1 || w < 1)
        return -1;
    const epilogue e = {noise, nbs, slope, clampv};
    const int64_t rows = n * ((h + m - 1) / m);
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
#ifdef GANZOO_F6
        if (m == 6)
            output_row(8, 6, prod, st, scale, bias, &e, out, row, h, w, o);
        else
#endif
        if (m == 4)
            output_row(6, 4, prod, st, scale, bias, &e, out, row, h, w, o);
        else
            output_row(4, 2, prod, st, scale, bias, &e, out, row, h, w, o);
    }
    return 0;
}

/* Stride-2 3x3 transposed convolution, per dimension: output 2j (j = 0..H) is the 2-tap correlation of
 * (x[j-1], x[j]) with kernel taps (k0, k2), output 2j+1 is k1 x[j] (k: the kernel as a correlation, as
 * ops.phase_kernels). A tile covers j0 = 2t, 2t+1: from (x[j0-1], x[j0], x[j0+1]) it makes 5 points, the three
 * of F(2, 2) for the even outputs (d0 - d1, d1, d2 - d1) and the two odd-output inputs (d1, d2); its four outputs
 * 2j0 .. 2j0+3 come back as (m0 + m1, m3, m1 + m2, m4). Nested over both dimensions: 25 points per tile, against
 * 36 products per 4 input pixels of the direct form. ops.upconv_winograd_weight makes the matching weights. */
INLINE void bu(const vf *d, vf *r)
{
    r[0] = d[0] - d[1];
    r[1] = d[1];
    r[2] = d[2] - d[1];
    r[3] = d[1];
    r[4] = d[2];
}

INLINE void au(const vf *m, vf *o)
{
    o[0] = m[0] + m[1];
    o[1] = m[3];
    o[2] = m[1] + m[2];
    o[3] = m[4];
}

int ganzoo_upwino_input(const float *x, const float *s, float *const *v, int64_t st, int64_t n, int64_t h,
                        int64_t w, int64_t c, int nthreads)
{
    if (c % VL || n < 1 || h < 1 || w < 1)
        return -1;
    const int64_t th = (h + 2) / 2, tw = (w + 2) / 2; /* ceil((h + 1) / 2): the even outputs 0..H */
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t row = 0; row < n * th; row++) {
        const int64_t b = row / th, ty = row % th;
        for (int64_t tx = 0; tx < tw; tx++) {
            const int64_t t = row * tw + tx;
            for (int64_t c0 = 0; c0 < c; c0 += VL) {
                vf tmp[5][3];
                _Pragma("GCC unroll 4") for (int j = 0; j < 3; j++) {
                    const int64_t xx = tx * 2 + j - 1;
                    vf d[3], r[5];
                    _Pragma("GCC unroll 4") for (int i = 0; i < 3; i++) {
                        const int64_t yy = ty * 2 + i - 1;
                        d[i] = (xx < 0 || xx >= w || yy < 0 || yy >= h)
                                   ? (vf){0}
                                   : vload(x + ((b * h + yy) * w + xx) * c + c0);
                    }
                    bu(d, r);
                    _Pragma("GCC unroll 6") for (int a = 0; a < 5; a++) tmp[a][j] = r[a];
                }
                const vf sc = s ? vload(s + b * c + c0) : (vf){0} + 1.0f;
                _Pragma("GCC unroll 6") for (int a = 0; a < 5; a++) {
                    vf r[5];
                    bu(tmp[a], r);
                    _Pragma("GCC unroll 6") for (int q = 0; q < 5; q++)
                        vstream(v[a * 5 + q] + t * st + c0, r[q] * sc);
                }
            }
        }
    }
#if defined(__AVX512F__)
    _mm_sfence();
#endif
    return 0;
}

/* out: NHWC [n][2h+1][2w+1][o], the transposed convolution times scale[b][o] (no bias: the FIR comes next). */
int ganzoo_upwino_output(const float *const *prod, int64_t st, const float *scale, float *out, int64_t n,
                         int64_t h, int64_t w, int64_t o, int nthreads)
{
    if (o % VL || n < 1 || h < 1 || w < 1)
        return -1;
    const int64_t th = (h + 2) / 2, tw = (w + 2) / 2, ho = 2 * h + 1, wo = 2 * w + 1;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t row = 0; row < n * th; row++) {
        const int64_t b = row / th, ty = row % th;
        for (int64_t tx = 0; tx < tw; tx++) {
            const int64_t t = row * tw + tx;
            for (int64_t o0 = 0; o0 < o; o0 += VL) {
                vf tmp[4][5];
                _Pragma("GCC unroll 6") for (int q = 0; q < 5; q++) {
                    vf d[5], r[4];
                    _Pragma("GCC unroll 6") for (int a = 0; a < 5; a++) d[a] = vload(prod[a * 5 + q] + t * st + o0);
                    au(d, r);
                    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) tmp[i][q] = r[i];
                }
                const vf sc = scale ? vload(scale + b * o + o0) : (vf){0} + 1.0f;
                _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
                    const int64_t yy = ty * 4 + i;
                    if (yy >= ho)
                        break;
                    vf r[4];
                    au(tmp[i], r);
                    _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
                        const int64_t xx = tx * 4 + j;
                        if (xx >= wo)
                            break;
                        vstore(out + ((b * ho + yy) * wo + xx) * o + o0, r[j] * sc);
                    }
                }
            }
        }
    }
    return 0;
}

/* The FIR after an upsampling layer's transposed convolution: a separable 4-tap filter (taps t, as a correlation,
 * the gain folded in) over an NHWC [n][hi][wi][c] image with `pad` zero pixels on each side, written as NHWC
 * [n][ho][wo][c] times scale[b][c], plus bias[c], then the epilogue:
 * out[y][x] = sum_a,b t[a] t[b] in[y + a - pad][x + b - pad].
 * Per output row the 4 input rows are summed down the columns into a row buffer, then along it; 8 products per
 * output against the 16 of the 2-D filter, and one pass over the activations for the filter, bias, noise and
 * activation. */
/* Returns 0, -1 for arguments it does not handle, -2 when a row buffer could not be allocated. */
int ganzoo_fir4(const float *x, int64_t n, int64_t hi, int64_t wi, int64_t c, const float *t, int64_t pad,
                int64_t ho, int64_t wo, const float *scale, const float *bias, const float *noise, int64_t nbs, float slope,
                float clampv, float *out, int nthreads)
{
    if (c % VL || n < 1 || hi < 1 || wi < 1 || ho < 1 || wo < 1 || pad < 0)
        return -1;
    const epilogue e = {noise, nbs, slope, clampv};
    const int64_t cols = wo + 3; /* input columns -pad .. wo + 2 - pad */
    int failed = 0;
#pragma omp parallel num_threads(nthreads)
    {
        float *buf = (float *)malloc((size_t)(cols * c) * sizeof(float));
        if (!buf) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t row = 0; row < n * ho; row++) {
            if (!buf)
                continue;
            const int64_t b = row / ho, y = row % ho;
            for (int64_t j = 0; j < cols; j++) {
                const int64_t xx = j - pad;
                for (int64_t c0 = 0; c0 < c; c0 += VL) {
                    vf acc = {0};
                    if (xx >= 0 && xx < wi) {
                        _Pragma("GCC unroll 4") for (int a = 0; a < 4; a++) {
                            const int64_t yy = y + a - pad;
                            if (yy >= 0 && yy < hi)
                                acc += t[a] * vload(x + ((b * hi + yy) * wi + xx) * c + c0);
                        }
                    }
                    vstore(buf + j * c + c0, acc);
                }
            }
            for (int64_t xo = 0; xo < wo; xo++) {
                for (int64_t c0 = 0; c0 < c; c0 += VL) {
                    const float *p = buf + xo * c + c0;
                    vf acc = t[0] * vload(p) + t[1] * vload(p + c) + t[2] * vload(p + 2 * c) + t[3] * vload(p + 3 * c);
                    if (scale)
                        acc *= vload(scale + b * c + c0);
                    if (bias)
                        acc += vload(bias + c0);
                    vstore(out + ((b * ho + y) * wo + xo) * c + c0, finish(&e, acc, b, y * wo + xo));
                }
            }
        }
        free(buf);
    }
    return failed ? -2 : 0;
}
