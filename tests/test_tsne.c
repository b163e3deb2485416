/* Exact t-SNE: perplexity calibration, gradient vs finite differences, separated blobs stay
 * separated, the KL objective decreases, determinism (seed, thread count), bad arguments. */
#include "harness.h"
#include "lab/tsne.h"
#include <math.h>
#include <stdlib.h>
#include <omp.h>
#include <string.h>

#define NB 4    /* blobs */
#define PER 30  /* points per blob */
#define N (NB * PER)
#define D 10

static float X[N * D];
static int LAB[N];

static void make_blobs(uint64_t seed) {
    bl_rng r;
    bl_rng_seed(&r, seed);
    float centre[NB][D];
    for (int b = 0; b < NB; b++)
        for (int k = 0; k < D; k++) centre[b][k] = 8.0f * bl_rng_normal(&r);
    for (int i = 0; i < N; i++) {
        LAB[i] = i % NB;
        for (int k = 0; k < D; k++) X[i * D + k] = centre[LAB[i]][k] + bl_rng_normal(&r);
    }
}

static double dist(const float *y, int dims, int i, int j) {
    double s = 0;
    for (int k = 0; k < dims; k++) { double t = y[i * dims + k] - y[j * dims + k]; s += t * t; }
    return sqrt(s);
}

/* 1-NN label agreement, and mean between-centroid distance over mean distance to own centroid. */
static void separation(const float *y, int dims, double *nn_agree, double *ratio) {
    int agree = 0;
    for (int i = 0; i < N; i++) {
        int best = -1;
        double bd = INFINITY;
        for (int j = 0; j < N; j++)
            if (j != i && dist(y, dims, i, j) < bd) { bd = dist(y, dims, i, j); best = j; }
        agree += LAB[best] == LAB[i];
    }
    *nn_agree = (double)agree / N;
    float cen[NB * 3] = {0};
    for (int i = 0; i < N; i++)
        for (int k = 0; k < dims; k++) cen[LAB[i] * dims + k] += y[i * dims + k] / PER;
    double within = 0, between = 0;
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int k = 0; k < dims; k++) { double t = y[i * dims + k] - cen[LAB[i] * dims + k]; s += t * t; }
        within += sqrt(s) / N;
    }
    int pairs = 0;
    for (int a = 0; a < NB; a++)
        for (int b = a + 1; b < NB; b++) { between += dist(cen, dims, a, b); pairs++; }
    *ratio = between / pairs / within;
}

int main(void) {
    make_blobs(7);

    /* perplexity calibration: every row reaches the target entropy */
    double *cond = malloc(sizeof(double) * N * N), beta[N];
    CHECK_OK(bl_tsne_conditional(X, N, D, 20.0, cond, beta));
    double worst = 0, worst_sum = 0;
    for (int i = 0; i < N; i++) {
        double h = 0, s = 0;
        for (int j = 0; j < N; j++) {
            double p = cond[i * N + j];
            s += p;
            if (p > 0) h -= p * log(p);
        }
        worst = fmax(worst, fabs(exp(h) - 20.0));
        worst_sum = fmax(worst_sum, fabs(s - 1));
        CHECK(cond[i * N + i] == 0 && beta[i] > 0, "row %d: self affinity %g, beta %g", i, cond[i * N + i], beta[i]);
    }
    CHECK(worst < 1e-3 && worst_sum < 1e-12, "perplexity off by %g, row sums off by %g", worst, worst_sum);
    free(cond);

    /* the gradient is the gradient of the KL (central differences) */
    {
        enum { n = 7, dims = 2 };
        double p[n * n], y[n * dims], g[n * dims], tot = 0;
        bl_rng r;
        bl_rng_seed(&r, 3);
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) {
                double v = i == j ? 0 : bl_rng_uniform(&r) + 0.05;
                p[i * n + j] = p[j * n + i] = v;
                tot += i == j ? 0 : 2 * v;
            }
        for (int i = 0; i < n * n; i++) p[i] /= tot;
        for (int i = 0; i < n * dims; i++) y[i] = bl_rng_normal(&r);
        double kl = bl_tsne_kl(p, y, n, dims, g), maxerr = 0;
        CHECK(kl > 0 && isfinite(kl), "KL %g", kl);
        for (int i = 0; i < n * dims; i++) {
            double h = 1e-5, keep = y[i];
            y[i] = keep + h; double kp = bl_tsne_kl(p, y, n, dims, NULL);
            y[i] = keep - h; double km = bl_tsne_kl(p, y, n, dims, NULL);
            y[i] = keep;
            double fd = (kp - km) / (2 * h);
            maxerr = fmax(maxerr, fabs(fd - g[i]) / (fabs(fd) + 1e-6));
        }
        CHECK(maxerr < 1e-5, "gradient vs finite differences: worst relative error %g", maxerr);
    }

    /* blobs stay separated and the objective decreases */
    bl_tsne_config cfg;
    bl_tsne_config_default(&cfg);
    cfg.perplexity = 20;
    cfg.n_iter = 400;
    cfg.seed = 11;
    bl_tsne_result a, b;
    CHECK_OK(bl_tsne_run(X, N, D, &cfg, &a));
    if (a.y) {
        double agree, ratio;
        separation(a.y, 2, &agree, &ratio);
        printf("blobs: 1-NN agreement %.3f, between/within %.2f, KL %.4f -> %.4f (after exaggeration: %.4f), %.2f s\n",
               agree, ratio, a.kl[0], a.kl_final, a.kl[cfg.exaggeration_iters / cfg.kl_every], a.seconds);
        CHECK(agree > 0.95, "1-NN label agreement %g", agree);
        CHECK(ratio > 5, "between/within distance ratio %g", ratio);
        CHECK(a.n_kl == cfg.n_iter / cfg.kl_every + 1 && a.kl_iter[a.n_kl - 1] == cfg.n_iter && a.kl_iter[1] == cfg.kl_every,
              "KL trajectory layout: %lld entries", (long long)a.n_kl);
        CHECK(a.kl_final < 0.5 * a.kl[0], "KL %g -> %g", a.kl[0], a.kl_final);
        /* after exaggeration the (true) KL goes down: each 50-iteration window ends lower */
        int ups = 0;
        for (int64_t k = (cfg.exaggeration_iters + 50) / cfg.kl_every; k < a.n_kl; k += 5)
            if (a.kl[k] > a.kl[k - 5] + 1e-9) ups++;
        CHECK(ups == 0, "KL rose in %d windows after exaggeration", ups);
        for (int64_t k = 0; k < a.n_kl; k++) CHECK(isfinite(a.kl[k]) && a.kl[k] >= 0, "KL[%lld] = %g", (long long)k, a.kl[k]);
    }
    bl_tsne_result_free(&a);
    /* determinism: same seed, also with another thread count (a shorter run) */
    /* (300 points: large enough for the kernels to go parallel) */
    enum { N2 = 300 };
    static float x2[N2 * D];
    bl_rng r2;
    bl_rng_seed(&r2, 8);
    for (int i = 0; i < N2 * D; i++) x2[i] = bl_rng_normal(&r2) + 5.0f * (float)((i / D) % 3);
    cfg.n_iter = 20;
    omp_set_num_threads(2);
    CHECK_OK(bl_tsne_run(x2, N2, D, &cfg, &a));
    omp_set_num_threads(1);
    CHECK_OK(bl_tsne_run(x2, N2, D, &cfg, &b));
    omp_set_num_threads(2);
    CHECK(a.y && b.y && !memcmp(a.y, b.y, sizeof(float) * N2 * 2) && a.kl_final == b.kl_final,
          "same seed, 1 vs 2 threads: embeddings differ");
    bl_tsne_result_free(&b);
    cfg.seed = 12;
    CHECK_OK(bl_tsne_run(x2, N2, D, &cfg, &b));
    CHECK(a.y && b.y && memcmp(a.y, b.y, sizeof(float) * N2 * 2) != 0, "another seed gave the same embedding");
    bl_tsne_result_free(&b);
    bl_tsne_result_free(&a);

    /* 3-D output, a short run, duplicates */
    cfg.dims = 3; cfg.n_iter = 250; cfg.perplexity = 10; cfg.kl_every = 50;
    CHECK_OK(bl_tsne_run(X, N, D, &cfg, &a));
    if (a.y) {
        double agree, ratio;
        separation(a.y, 3, &agree, &ratio);
        CHECK(agree > 0.95, "3-D 1-NN agreement %g", agree);
    }
    bl_tsne_result_free(&a);
    float dup[5 * 2] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    bl_tsne_config_default(&cfg);
    cfg.perplexity = 2; cfg.n_iter = 50;
    CHECK_OK(bl_tsne_run(dup, 5, 2, &cfg, &a));
    CHECK(isfinite(a.kl_final), "identical points: KL %g", a.kl_final);
    bl_tsne_result_free(&a);

    /* bad arguments */
    bl_tsne_config_default(&cfg);
    cfg.perplexity = N - 1;
    CHECK_FAILS(bl_tsne_run(X, N, D, &cfg, &a), BALORA_STATUS_INVALID, "'perplexity'");
    cfg.perplexity = 1e9;
    CHECK_FAILS(bl_tsne_run(X, 20, D, &cfg, &a), BALORA_STATUS_INVALID, "< N - 1 = 19");
    cfg.perplexity = 0;
    CHECK_FAILS(bl_tsne_run(X, N, D, &cfg, &a), BALORA_STATUS_INVALID, "'perplexity'");
    cfg.perplexity = NAN;
    CHECK_FAILS(bl_tsne_run(X, N, D, &cfg, &a), BALORA_STATUS_INVALID, "'perplexity'");
    bl_tsne_config_default(&cfg);
    CHECK_FAILS(bl_tsne_run(X, 2, D, &cfg, &a), BALORA_STATUS_INVALID, "3..");
    CHECK_FAILS(bl_tsne_run(NULL, N, D, &cfg, &a), BALORA_STATUS_INVALID, "NULL");
    cfg.dims = 4;
    CHECK_FAILS(bl_tsne_run(X, N, D, &cfg, &a), BALORA_STATUS_INVALID, "'dims'");
    bl_tsne_config_default(&cfg);
    cfg.n_iter = 0;
    CHECK_FAILS(bl_tsne_run(X, N, D, &cfg, &a), BALORA_STATUS_INVALID, "'n_iter'");
    bl_tsne_config_default(&cfg);
    cfg.learning_rate = -1;
    CHECK_FAILS(bl_tsne_run(X, N, D, &cfg, &a), BALORA_STATUS_INVALID, "'learning_rate'");
    bl_tsne_config_default(&cfg);
    cfg.kl_every = 0;
    CHECK_FAILS(bl_tsne_run(X, N, D, &cfg, &a), BALORA_STATUS_INVALID, "'kl_every'");
    bl_tsne_config_default(&cfg);
    X[17] = NAN;
    CHECK_FAILS(bl_tsne_run(X, N, D, &cfg, &a), BALORA_STATUS_INVALID, "point 1, coordinate 7");
    CHECK(a.y == NULL, "failed run left a result");
    return t_finish();
}
