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
    /* any scale of the input: features of 1e-4 or 1e4 reach the same perplexity */
    for (int sc = 0; sc < 2; sc++) {
        static float xs[N * D];
        for (int i = 0; i < N * D; i++) xs[i] = X[i] * (sc ? 1e4f : 1e-4f);
        CHECK_OK(bl_tsne_conditional(xs, N, D, 20.0, cond, beta));
        worst = 0;
        for (int i = 0; i < N; i++) {
            double h = 0;
            for (int j = 0; j < N; j++)
                if (cond[i * N + j] > 0) h -= cond[i * N + j] * log(cond[i * N + j]);
            worst = fmax(worst, fabs(exp(h) - 20.0));
        }
        CHECK(worst < 1e-3, "scale %g: perplexity off by %g", sc ? 1e4 : 1e-4, worst);
    }
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

    /* golden: 30 steps from a given start against an independent numpy implementation of the
     * same scheme (perplexity search, floored symmetric P, exaggeration 4 for 10 steps, momentum
     * 0.5 -> 0.8 at 15, gains, learning rate 10) */
    {
        static const float gx[30] = {0.25099998712539673f, -0.2639999985694885f, 1.281000018119812f, 0.20999999344348907f,
            -1.0709999799728394f, 0.7229999899864197f, 2.6080000400543213f, 1.8940000534057617f, -1.406999945640564f,
            -2.5309998989105225f, -1.246999979019165f, 0.08299999684095383f, -4.650000095367432f, -0.43799999356269836f,
            -2.492000102996826f, -1.465000033378601f, -1.0889999866485596f, -0.6330000162124634f, 0.8230000138282776f,
            2.0850000381469727f, -0.25699999928474426f, 2.7330000400543213f, -1.3300000429153442f, 0.703000009059906f,
            1.8070000410079956f, 0.18799999356269836f, -1.4869999885559082f, -1.843000054359436f, -0.9150000214576721f,
            0.4399999976158142f};
        static const float gy0[20] = {-0.010099999606609344f, -0.002090000081807375f, -0.0015899999998509884f,
            0.005410000216215849f, 0.00215000007301569f, 0.0035500000230968f, -0.006539999973028898f, -0.0013000000035390258f,
            0.007840000092983246f, 0.014929999597370625f, -0.012590000405907631f, 0.01513999979943037f, 0.013460000045597553f,
            0.007809999864548445f, 0.0026400000788271427f, -0.0031399999279528856f, 0.014580000191926956f,
            0.019600000232458115f, 0.01802000030875206f, 0.013150000013411045f};
        static const float want_y[20] = {3.0844483225829964f, 2.8176397881942017f, 1.2097779232993586f, 1.466702195214672f,
            6.723210478666919f, -7.320727251287881f, -8.020471899720492f, 3.054195315218377f, -11.88760808496116f,
            0.7834978335044783f, -5.159734662473473f, 5.232159274855505f, 10.314366544901322f, -5.044028745410479f,
            4.469796409615069f, -0.6439230215576803f, 7.177516607797113f, -6.257328799311017f, -7.911301639707655f,
            5.911813410579822f};
        const float want_kl[3] = {0.9874680115951492f, 0.8530326950075331f, 0.22556251215069179f};
        bl_tsne_config g;
        bl_tsne_config_default(&g);
        g.perplexity = 3; g.n_iter = 30; g.learning_rate = 10; g.exaggeration = 4; g.exaggeration_iters = 10;
        g.momentum_switch_iter = 15; g.kl_every = 10; g.init = gy0;
        bl_tsne_result gr;
        CHECK_OK(bl_tsne_run(gx, 10, 3, &g, &gr));
        if (gr.y) {
            float kl3[3] = {(float)gr.kl[0], (float)gr.kl[1], (float)gr.kl_final};
            CHECK(t_allclose("t-SNE golden KL", kl3, want_kl, 3, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "KL trajectory");
            CHECK(t_allclose("t-SNE golden Y", gr.y, want_y, 20, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "embedding");
        }
        bl_tsne_result_free(&gr);
        float bad_init[20];
        memcpy(bad_init, gy0, sizeof bad_init);
        bad_init[5] = INFINITY;
        g.init = bad_init;
        CHECK_FAILS(bl_tsne_run(gx, 10, 3, &g, &gr), BALORA_STATUS_INVALID, "'init': point 2, coordinate 1");
    }

    /* blobs stay separated and the objective decreases */
    bl_tsne_config cfg;
    bl_tsne_config_default(&cfg);
    cfg.perplexity = 20;
    cfg.n_iter = 400;
    cfg.kl_every = 10;
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
        /* once exaggeration is off (after a transient of a few steps, while the expanded map
         * contracts), the (true) KL goes down at every record, and ends below its value when
         * exaggeration stopped */
        int ups = 0;
        const int64_t k_end = cfg.exaggeration_iters / cfg.kl_every;
        for (int64_t k = k_end + 2; k < a.n_kl; k++)
            if (a.kl[k] > a.kl[k - 1] + 1e-9) ups++;
        CHECK(a.kl_final < a.kl[k_end], "KL %g when exaggeration stopped, %g at the end", a.kl[k_end], a.kl_final);
        if (ups || getenv("TSNE_VERBOSE"))
            for (int64_t k = 0; k < a.n_kl; k++) fprintf(stderr, "KL[%d] = %.6f\n", a.kl_iter[k], a.kl[k]);
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

/* The golden numbers above come from this numpy script (python3 with numpy 1.24):
 * # Independent exact t-SNE in numpy following the reference scheme (tsne.py / bhtsne) with
 * # explicit init, to produce golden numbers for tests/test_tsne.c.
 * import numpy as np
 * np.set_printoptions(precision=17)
 * rng = np.random.default_rng(0)
 * N, D = 10, 3
 * X = np.round(rng.normal(size=(N, D)) * 2, 3).astype(np.float32).astype(np.float64)
 * Y0 = np.round(rng.normal(size=(N, 2)) * 0.01, 5).astype(np.float32).astype(np.float64)
 * perp, n_iter, eta, ex, ex_iters, mom_switch = 3.0, 30, 10.0, 4.0, 10, 15
 * D2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
 * P = np.zeros((N, N))
 * for i in range(N):
 *     d = np.delete(D2[i], i); d = d - d.min()
 *     beta, lo, hi = 1.0, None, None
 *     for _ in range(200):
 *         p = np.exp(-beta * d); s = p.sum(); H = np.log(s) + beta * (d * p).sum() / s
 *         diff = H - np.log(perp)
 *         if abs(diff) < 1e-5: break
 *         if diff > 0: lo = beta; beta = beta * 2 if hi is None else (beta + hi) / 2
 *         else: hi = beta; beta = beta / 2 if lo is None else (beta + lo) / 2
 *     p = np.exp(-beta * d); p /= p.sum()
 *     P[i] = np.insert(p, i, 0.0)
 * P = (P + P.T) / (2 * N)
 * P = np.maximum(P, 1e-12); np.fill_diagonal(P, 0)  # floor off the diagonal
 * np.fill_diagonal(P, 0); P /= P.sum()
 * def kl_grad(Y, Pe):
 *     d2 = ((Y[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
 *     num = 1 / (1 + d2); np.fill_diagonal(num, 0)
 *     Q = num / num.sum()
 *     mask = ~np.eye(N, dtype=bool)
 *     kl = (P[mask] * np.log(P[mask] / Q[mask])).sum()
 *     G = 4 * (((Pe - Q) * num)[:, :, None] * (Y[:, None, :] - Y[None, :, :])).sum(1)
 *     return kl, G
 * Y = Y0.copy(); U = np.zeros_like(Y); gains = np.ones_like(Y); kls = []
 * for it in range(n_iter):
 *     e = ex if it < ex_iters else 1.0
 *     m = 0.5 if it < mom_switch else 0.8
 *     kl, G = kl_grad(Y, e * P)
 *     kls.append(kl)
 *     gains = np.where((G > 0) != (U > 0), gains + 0.2, gains * 0.8)
 *     gains = np.maximum(gains, 0.01)
 *     U = m * U - eta * gains * G
 *     Y = Y + U
 *     Y = Y - Y.mean(0)
 * kl, _ = kl_grad(Y, P)
 * def carr(a): return ", ".join(repr(float(v)) for v in a.ravel())
 * print("X", carr(X)); print("Y0", carr(Y0)); print("KL0", repr(kls[0]), "KL10", repr(kls[10]), "final", repr(kl)); print("Y", carr(Y))
 */
