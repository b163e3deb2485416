/* PiSSA SVD benchmark: exact (sgesdd) and randomized (niter K) initialisation of one
 * out x in layer at ranks r, the whole bl_pissa_init (SVD + factors + residual update).
 * Prints machine-readable lines "impl,method,r,seconds,rel_err" where rel_err is the
 * relative error of the top-r singular values against the exact ones ("ref" for exact).
 *   usage: svd_bench [N=4096] [niter=4] [ranks=16,128] [threads=0 (all)]
 * Built by bench/svd.sh against build/libbalora.a. */
#include "core/bl.h"
#include "method/pissa.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double topr_err(const float *S, const float *Sx, int64_t r) {
    double d = 0, w = 0;
    for (int64_t i = 0; i < r; i++) { d += ((double)S[i] - Sx[i]) * ((double)S[i] - Sx[i]); w += (double)Sx[i] * Sx[i]; }
    return sqrt(d / w);
}

int main(int argc, char **argv) {
    bl_blas_prepare_process(argc, argv);
    const int64_t N = argc > 1 ? atoll(argv[1]) : 4096;
    const int niter = argc > 2 ? atoi(argv[2]) : 4;
    char ranks[256] = "16,128";
    if (argc > 3) snprintf(ranks, sizeof ranks, "%s", argv[3]);
    balora_threads_set(argc > 4 ? atoi(argv[4]) : 0);
    if (N < 2 || niter < 0) { fprintf(stderr, "usage: svd_bench [N] [niter] [ranks] [threads]\n"); return 2; }
    fprintf(stderr, "# %s\n", balora_blas_info());

    const size_t n2 = (size_t)N * (size_t)N;
    float *W0 = malloc(n2 * sizeof(float)), *W = malloc(n2 * sizeof(float));
    float *S = malloc((size_t)N * sizeof(float)), *Sx = malloc((size_t)N * sizeof(float));
    if (!W0 || !W || !S || !Sx) { fprintf(stderr, "out of memory\n"); return 1; }
    bl_rng rng;
    /* warm-up (thread pools, page faults) on a small matrix */
    {
        float Aw[8 * 256], Bw[256 * 8];
        bl_rng_seed(&rng, 3);
        for (size_t i = 0; i < 256 * 256; i++) W[i] = bl_rng_normal(&rng);
        if (bl_pissa_init(W, 256, 256, false, 8, 1.0f, niter, 0, &rng, Aw, Bw) != BALORA_STATUS_OK) return 1;
    }
    bl_rng_seed(&rng, 1);
    const float std = 1.0f / sqrtf((float)N);
    for (size_t i = 0; i < n2; i++) W0[i] = std * bl_rng_normal(&rng);

    char *p = ranks;
    while (*p) {
        const int64_t r = strtoll(p, &p, 10);
        if (r < 1 || r > N) { fprintf(stderr, "bad rank %lld\n", (long long)r); return 2; }
        float *A = malloc((size_t)r * N * sizeof(float)), *B = malloc((size_t)N * r * sizeof(float));
        for (int variant = 0; variant < 2; variant++) {
            const int it = variant == 0 ? -1 : niter;
            memcpy(W, W0, n2 * sizeof(float));
            bl_rng_seed(&rng, 42);
            double t0 = bl_time_now();
            balora_status st = bl_pissa_init(W, N, N, false, r, 1.0f, it, 0, &rng, A, B);
            double dt = bl_time_now() - t0;
            if (st != BALORA_STATUS_OK) { fprintf(stderr, "%s\n", balora_last_error()); return 1; }
            /* singular values from the factors: ||row j of A||^2 = S_j / s (s = 1) */
            for (int64_t j = 0; j < r; j++) {
                double q = 0;
                for (int64_t i = 0; i < N; i++) q += (double)A[j * N + i] * A[j * N + i];
                S[j] = (float)q;
            }
            if (it < 0) {
                memcpy(Sx, S, (size_t)r * sizeof(float));
                printf("balora,exact,%lld,%.3f,ref\n", (long long)r, dt);
            } else {
                printf("balora,niter_%d,%lld,%.3f,%.2e\n", it, (long long)r, dt, topr_err(S, Sx, r));
            }
            fflush(stdout);
        }
        free(A);
        free(B);
        if (*p == ',') p++;
        else break;
    }
    free(W0); free(W); free(S); free(Sx);
    return 0;
}
