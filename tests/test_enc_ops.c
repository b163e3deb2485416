/* Encoder ops: DeBERTa's bucketed relative positions (values from torch running transformers'
 * make_log_bucket_position), the disentangled attention bias and its backward (finite
 * differences), tanh and MSE gradients. */
#include "harness.h"
#include "encoders/enc_ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void fill(float *x, int64_t n, bl_rng *r, float s) { for (int64_t i = 0; i < n; i++) x[i] = s * bl_rng_normal(r); }

static double dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

int main(void) {
    balora_threads_set(1); /* tiny matrices: threads cost more than they give on a shared machine */
    /* buckets: torch 1.13, make_log_bucket_position(arange(-20, 21), 8, 64) */
    static const int64_t want8[41] = {-6, -6, -6, -6, -6, -6, -6, -6, -6, -6, -5, -5, -5, -5, -5, -5, -4, -3, -2, -1, 0,
                                      1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6};
    int bad = 0;
    for (int i = 0; i < 41; i++) bad += bl_deberta_bucket(i - 20, 8, 64) != want8[i];
    CHECK(bad == 0, "%d bucket(…, 8, 64) values differ from torch", bad);
    /* DeBERTa-v3-base: position_buckets 256, max_relative_positions 512 */
    static const int64_t rel256[20] = {-600, -511, -300, -129, -128, -127, -100, 0, 127, 128, 129, 130, 200, 255, 256, 300, 400, 511, 512, 1000};
    static const int64_t want256[20] = {-270, -255, -207, -129, -128, -127, -100, 0, 127, 128, 129, 130, 169, 192, 192, 207, 233, 255, 256, 317};
    bad = 0;
    for (int i = 0; i < 20; i++) {
        int64_t g = bl_deberta_bucket(rel256[i], 256, 512);
        if (g != want256[i]) { bad++; fprintf(stderr, "bucket(%lld, 256, 512) = %lld, torch %lld\n", (long long)rel256[i], (long long)g, (long long)want256[i]); }
    }
    CHECK(bad == 0, "%d bucket(…, 256, 512) values differ from torch", bad);
    CHECK(bl_deberta_bucket(-37, 0, 64) == -37 && bl_deberta_bucket(37, 8, -1) == 37, "no bucketing");

    /* index tables: T = 12, span 4 (clamping), bucket 8 */
    enum { T = 12, H = 2, D = 3, B = 2, S = 4, S2 = 8 };
    int32_t ic[T * T], ip[T * T];
    bl_deberta_rel_index(ic, ip, T, 8, 64, S);
    CHECK(ic[0] == S && ip[0] == S, "diagonal index = span");
    CHECK(ic[5 * T + 0] == S2 - 1 && ic[0 * T + 5] == 0, "c2p clamps: %d %d", ic[5 * T + 0], ic[0 * T + 5]);
    CHECK(ic[2 * T + 1] == S + 1 && ip[2 * T + 1] == S + 1, "i - j = 1: %d %d", ic[2 * T + 1], ip[2 * T + 1]);

    /* relbias forward against a direct evaluation, backward against finite differences */
    bl_rng r;
    bl_rng_seed(&r, 5);
    int64_t C = H * D;
    float *q = malloc(sizeof(float) * B * T * C), *k = malloc(sizeof(float) * B * T * C);
    float *PK = malloc(sizeof(float) * S2 * C), *PQ = malloc(sizeof(float) * S2 * C);
    float *bias = malloc(sizeof(float) * B * H * T * T), *w = malloc(sizeof(float) * B * H * T * T);
    float *scr = malloc(sizeof(float) * T * S2);
    float *dq = calloc((size_t)(B * T * C), sizeof(float)), *dk = calloc((size_t)(B * T * C), sizeof(float));
    float *dPK = calloc((size_t)(S2 * C), sizeof(float)), *dPQ = calloc((size_t)(S2 * C), sizeof(float));
    fill(q, B * T * C, &r, 1); fill(k, B * T * C, &r, 1); fill(PK, S2 * C, &r, 1); fill(PQ, S2 * C, &r, 1);
    fill(w, B * H * T * T, &r, 1);
    bl_relbias_desc d = {B, T, H, D, S2, C, C, C, 0.37f, true, true, ic, ip};
    bl_relbias_fwd(&d, bias, q, k, PK, PQ, scr);
    double maxerr = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    double want = 0;
                    for (int e = 0; e < D; e++)
                        want += (double)q[(b * T + i) * C + h * D + e] * PK[ic[i * T + j] * C + h * D + e] +
                                (double)k[(b * T + j) * C + h * D + e] * PQ[ip[i * T + j] * C + h * D + e];
                    want *= 0.37;
                    double got = bias[((b * H + h) * T + i) * T + j];
                    if (fabs(got - want) > maxerr) maxerr = fabs(got - want);
                }
    CHECK(maxerr < 1e-5, "relbias forward max error %g", maxerr);
    bl_relbias_bwd(&d, dq, dk, dPK, dPQ, w, q, k, PK, PQ, scr);
    struct { const char *name; float *x, *g; int64_t n; } in[4] = {
        {"q", q, dq, B * T * C}, {"k", k, dk, B * T * C}, {"PK", PK, dPK, S2 * C}, {"PQ", PQ, dPQ, S2 * C}};
    for (int t = 0; t < 4; t++) {
        double worst = 0;
        for (int64_t e = 0; e < in[t].n; e += 3) {
            float keep = in[t].x[e], h = 0.5f; /* the bias is linear in each input: any step is exact up to rounding */
            in[t].x[e] = keep + h;
            bl_relbias_fwd(&d, bias, q, k, PK, PQ, scr);
            double lp = dot(bias, w, B * H * T * T);
            in[t].x[e] = keep - h;
            bl_relbias_fwd(&d, bias, q, k, PK, PQ, scr);
            double lm = dot(bias, w, B * H * T * T);
            in[t].x[e] = keep;
            double fd = (lp - lm) / (2.0 * h);
            double err = fabs(fd - in[t].g[e]) / (1e-3 + fabs(fd));
            if (err > worst) worst = err;
        }
        CHECK(worst < 2e-3, "relbias d%s: worst relative error %g", in[t].name, worst);
    }
    /* only c2p: dk and dPQ untouched */
    memset(dk, 0, sizeof(float) * B * T * C);
    memset(dPQ, 0, sizeof(float) * S2 * C);
    d.p2c = false;
    bl_relbias_bwd(&d, dq, dk, dPK, dPQ, w, q, k, PK, PQ, scr);
    double s = 0;
    for (int64_t e = 0; e < B * T * C; e++) s += fabs(dk[e]);
    for (int64_t e = 0; e < S2 * C; e++) s += fabs(dPQ[e]);
    CHECK(s == 0, "c2p only: no p2c gradient");

    /* tanh */
    float x[5] = {-2, -0.5f, 0, 0.3f, 1.7f}, y[5], dx[5] = {0}, dy[5] = {1, -2, 0.5f, 3, -1};
    bl_tanh_fwd(y, x, 5);
    bl_tanh_bwd(dx, dy, y, 5);
    double worst = 0;
    for (int i = 0; i < 5; i++) {
        double fd = (tanh(x[i] + 1e-4) - tanh(x[i] - 1e-4)) / 2e-4 * dy[i];
        if (fabs(fd - dx[i]) > worst) worst = fabs(fd - dx[i]);
    }
    CHECK(worst < 1e-4 && fabsf(y[4] - tanhf(1.7f)) == 0, "tanh grad error %g", worst);
    /* mse */
    float pred[3] = {1, 2.5f, -1}, tgt[3] = {0.5f, 2.5f, 1}, dp[3];
    double loss;
    CHECK_OK(bl_mse(pred, tgt, 3, dp, 1.0f, &loss));
    CHECK(fabs(loss - (0.25 + 0 + 4) / 3) < 1e-9, "mse %g", loss);
    CHECK(fabsf(dp[0] - 2 * 0.5f / 3) < 1e-7f && dp[1] == 0 && fabsf(dp[2] + 4.0f / 3) < 1e-6f, "mse grad");
    tgt[1] = NAN;
    CHECK_FAILS(bl_mse(pred, tgt, 3, dp, 1.0f, &loss), BALORA_STATUS_INVALID, "target 1 is not a finite number");
    free(q); free(k); free(PK); free(PQ); free(bias); free(w); free(scr); free(dq); free(dk); free(dPK); free(dPQ);
    return t_finish();
}
