/* Measured fp32 peak of this CPU: independent fused multiply-add chains, one per register, on every thread.
 *
 * Built and run by bench_generate.py (gcc -O2 -fopenmp); prints GFLOP/s for the given thread count.
 * Twelve accumulators per thread cover the FMA latency x pipe count of current x86 cores (4 cycles x 2
 * pipes = 8 chains needed), so the loop is throughput-bound: 2 FLOP per lane per FMA.
 *
 *     fma_peak THREADS ITERATIONS [avx512|avx2]
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAINS 12

__attribute__((target("avx512f"))) static float run_avx512(long n) {
    __m512 acc[CHAINS];
    const __m512 mul = _mm512_set1_ps(0.999999f), add = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < n; i++) {
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_fmadd_ps(acc[k], mul, add);
    }
    for (int k = 1; k < CHAINS; k++) acc[0] = _mm512_add_ps(acc[0], acc[k]);
    return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) static float run_avx2(long n) {
    __m256 acc[CHAINS];
    const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < n; i++) {
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm256_fmadd_ps(acc[k], mul, add);
    }
    for (int k = 1; k < CHAINS; k++) acc[0] = _mm256_add_ps(acc[0], acc[k]);
    float out[8];
    _mm256_storeu_ps(out, acc[0]);
    return out[0];
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: fma_peak THREADS ITERATIONS [avx512|avx2]\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    long n = atol(argv[2]);
    int wide = argc < 4 || strcmp(argv[3], "avx2") != 0;
    int lanes = wide ? 16 : 8;
    double best = 0;
    volatile float sink = 0;
    for (int round = 0; round < 5; round++) {
        double t = omp_get_wtime();
        float part = 0;
#pragma omp parallel num_threads(threads) reduction(+ : part)
        part += wide ? run_avx512(n) : run_avx2(n);
        t = omp_get_wtime() - t;
        sink += part;
        double gflops = (double)CHAINS * lanes * 2.0 * (double)n * threads / t / 1e9;
        if (gflops > best) best = gflops;
    }
    printf("%.1f\n", best);
    return 0;
}
