/* Cost of BA-LoRA's NLG terms per step on [B, T, V] logits (value + gradient, float API):
 * L_CR, L_DR (full and top-K entropy), L_SVDR (sum and Frobenius norms, Gram route), and
 * the workspace size. Prints "term,B,T,V,seconds" lines.
 *   usage: svd_reg_bench [B=4] [T=128] [V=32000] [k=3] [threads=0 (all)]
 * Built and run by bench/svd_reg.sh against build/libbalora.a. */
#include "core/bl.h"
#include "method/reg.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    bl_blas_prepare_process(argc, argv);
    const int64_t B = argc > 1 ? atoll(argv[1]) : 4, T = argc > 2 ? atoll(argv[2]) : 128;
    const int64_t V = argc > 3 ? atoll(argv[3]) : 32000, k = argc > 4 ? atoll(argv[4]) : 3;
    balora_threads_set(argc > 5 ? atoi(argv[5]) : 0);
    if (B < 1 || T < 2 || V < 2 || k < 1) { fprintf(stderr, "usage: svd_reg_bench [B] [T] [V] [k] [threads]\n"); return 2; }
    fprintf(stderr, "# %s\n", balora_blas_info());
    const size_t n = (size_t)(B * T * V);
    float *z = malloc(n * sizeof(float)), *zp = malloc(n * sizeof(float)), *g = calloc(n, sizeof(float));
    int64_t *lab = malloc((size_t)(B * T) * sizeof(int64_t));
    if (!z || !zp || !g || !lab) { fprintf(stderr, "out of memory\n"); return 1; }
    bl_rng rng;
    bl_rng_seed(&rng, 1);
    for (size_t i = 0; i < n; i++) { z[i] = 2.0f * bl_rng_normal(&rng); zp[i] = z[i] + 0.1f * bl_rng_normal(&rng); }
    for (int64_t i = 0; i < B * T; i++) lab[i] = (int64_t)bl_rng_below(&rng, (uint64_t)V);
    bl_reg_ws ws;
    double t0 = bl_time_now();
    if (bl_reg_ws_init(&ws, BL_REG_TASK_NLG, B * T, V, 20) != BALORA_STATUS_OK) {
        fprintf(stderr, "%s\n", balora_last_error());
        return 1;
    }
    fprintf(stderr, "# workspace %.1f MiB (logits %.1f MiB), init %.3f s\n", (double)ws.arena.size / 1048576.0,
            (double)n * 4 / 1048576.0, bl_time_now() - t0);
    double v;
    struct { const char *name; int which; } terms[] = {{"cr_tau1", 0}, {"dr_full", 1}, {"dr_top20", 2},
                                                       {"svdr_sum", 3}, {"svdr_fro", 4}, {"task_ce", 5}};
    for (size_t i = 0; i < sizeof terms / sizeof terms[0]; i++) {
        balora_status st = BALORA_STATUS_OK;
        t0 = bl_time_now();
        switch (terms[i].which) {
        case 0: st = bl_reg_nlg_cr(&ws, B, T, V, z, zp, lab, 1.0, 1.0, g, &v); break;
        case 1: st = bl_reg_nlg_dr(&ws, B, T, V, z, lab, 0, 1.0, g, &v); break;
        case 2: st = bl_reg_nlg_dr(&ws, B, T, V, z, lab, 20, 1.0, g, &v); break;
        case 3: st = bl_reg_nlg_svdr(&ws, B, T, V, z, lab, k, BL_SVD_NORM_SUM, 1.0, g, &v); break;
        case 4: st = bl_reg_nlg_svdr(&ws, B, T, V, z, lab, k, BL_SVD_NORM_FRO, 1.0, g, &v); break;
        case 5: st = bl_reg_nlg_ce(&ws, B, T, V, z, lab, 1.0, g, &v); break;
        }
        double dt = bl_time_now() - t0;
        if (st != BALORA_STATUS_OK) { fprintf(stderr, "%s\n", balora_last_error()); return 1; }
        printf("%s,%lld,%lld,%lld,%.3f\n", terms[i].name, (long long)B, (long long)T, (long long)V, dt);
        fflush(stdout);
    }
    bl_reg_ws_free(&ws);
    free(z); free(zp); free(g); free(lab);
    return 0;
}
