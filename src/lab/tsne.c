/* Exact t-SNE: perplexity calibration, symmetric P, gradient descent with momentum and gains
 * (see tsne.h). Rows are processed in parallel; every reduction over rows is serial. */
#include "lab/tsne.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TSNE_MAX_N 16384
#define TSNE_TOL 1e-5
#define TSNE_SEARCH_STEPS 200
#define TSNE_P_FLOOR 1e-12
#define TSNE_MIN_GAIN 0.01

void bl_tsne_config_default(bl_tsne_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->dims = 2;
    cfg->perplexity = 30;
    cfg->n_iter = 1000;
    cfg->learning_rate = 0;
    cfg->exaggeration = 12;
    cfg->exaggeration_iters = 250;
    cfg->momentum_switch_iter = 250;
    cfg->kl_every = 50;
    cfg->seed = 1;
}

static balora_status check_input(const float *x, int64_t n, int64_t d, double perplexity) {
    if (!x) return bl_fail(BALORA_STATUS_INVALID, "t-SNE: input points are NULL");
    if (n < 3 || n > TSNE_MAX_N)
        return bl_fail(BALORA_STATUS_INVALID, "t-SNE: %lld points; hint: exact t-SNE needs 3..%d points", (long long)n, TSNE_MAX_N);
    if (d < 1) return bl_fail(BALORA_STATUS_INVALID, "t-SNE: point dimension is %lld; hint: must be >= 1", (long long)d);
    if (!(perplexity > 0) || !(perplexity < (double)(n - 1)))
        return bl_fail(BALORA_STATUS_INVALID, "t-SNE: field 'perplexity' is %g with %lld points; hint: it must be > 0 and "
                       "< N - 1 = %lld (typical 5..50, at most (N - 1) / 3)", perplexity, (long long)n, (long long)(n - 1));
    for (int64_t i = 0; i < n * d; i++)
        if (!isfinite(x[i]))
            return bl_fail(BALORA_STATUS_INVALID, "t-SNE: point %lld, coordinate %lld is %g; hint: every value must be finite",
                           (long long)(i / d), (long long)(i % d), (double)x[i]);
    return BALORA_STATUS_OK;
}

/* Row i of cond holds squared distances on entry and p(j|i) on exit. */
static double calibrate_row(double *row, int64_t n, int64_t i, double log_perp) {
    double dmin = DBL_MAX;
    for (int64_t j = 0; j < n; j++)
        if (j != i && row[j] < dmin) dmin = row[j];
    double beta = 1.0, lo = -DBL_MAX, hi = DBL_MAX;
    for (int step = 0; step < TSNE_SEARCH_STEPS; step++) {
        double sum = 0, sum_dp = 0;
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            double dd = row[j] - dmin, p = exp(-beta * dd);
            sum += p;
            sum_dp += dd * p;
        }
        double h = log(sum) + beta * sum_dp / sum; /* sum >= 1: the nearest point has p = 1 */
        double diff = h - log_perp;
        if (fabs(diff) < TSNE_TOL) break;
        if (diff > 0) { lo = beta; beta = hi == DBL_MAX ? beta * 2 : (beta + hi) / 2; }
        else { hi = beta; beta = lo == -DBL_MAX ? beta / 2 : (beta + lo) / 2; }
    }
    double sum = 0;
    for (int64_t j = 0; j < n; j++) {
        row[j] = j == i ? 0 : exp(-beta * (row[j] - dmin));
        sum += row[j];
    }
    for (int64_t j = 0; j < n; j++) row[j] /= sum;
    return beta;
}

balora_status bl_tsne_conditional(const float *x, int64_t n, int64_t d, double perplexity, double *cond, double *beta) {
    BL_TRY(check_input(x, n, d, perplexity));
    const double log_perp = log(perplexity);
#pragma omp parallel for schedule(dynamic, 16) if (n * n * d >= 65536)
    for (int64_t i = 0; i < n; i++) {
        double *row = cond + i * n; /* [n] */
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t k = 0; k < d; k++) {
                double t = (double)x[i * d + k] - (double)x[j * d + k];
                s += t * t;
            }
            row[j] = s;
        }
        double b = calibrate_row(row, n, i, log_perp);
        if (beta) beta[i] = b;
    }
    return BALORA_STATUS_OK;
}

/* Scratch of the objective: everything O(n), no [n, n] buffer besides P. */
typedef struct kl_scratch {
    double *yt;    /* [3, n] coordinates, transposed (rows beyond dims unused) */
    double *rowz;  /* [n] sum_j kernel_ij */
    double *rowkl; /* [n] sum_j p_ij log(p_ij / kernel_ij) */
    double *rowp;  /* [n] sum_j p_ij */
    double *acc;   /* [n, 6] sum_j p_ij k_ij (y_i - y_j) and sum_j k_ij^2 (y_i - y_j) */
} kl_scratch;

static void carve_scratch(bl_arena *a, kl_scratch *s, int64_t n) {
    s->yt = bl_arena_take(a, sizeof(double) * (size_t)(3 * n));
    s->rowz = bl_arena_take(a, sizeof(double) * (size_t)n);
    s->rowkl = bl_arena_take(a, sizeof(double) * (size_t)n);
    s->rowp = bl_arena_take(a, sizeof(double) * (size_t)n);
    s->acc = bl_arena_take(a, sizeof(double) * (size_t)(6 * n));
}

/* Row i of the pass below: kernel sum, attraction and repulsion sums, and the KL terms. */
static inline __attribute__((always_inline)) void row_pass(const double *pi, const double *yt, int64_t n, int64_t i,
                                                           const int dims, bool want_kl, const kl_scratch *s) {
    const double *y0 = yt, *y1 = yt + n, *y2 = yt + 2 * n;
    const double yi0 = y0[i], yi1 = dims > 1 ? y1[i] : 0, yi2 = dims > 2 ? y2[i] : 0;
    double z = 0, a0 = 0, a1 = 0, a2 = 0, b0 = 0, b1 = 0, b2 = 0;
#pragma omp simd reduction(+ : z, a0, a1, a2, b0, b1, b2)
    for (int64_t j = 0; j < n; j++) {
        double d0 = yi0 - y0[j], d1 = dims > 1 ? yi1 - y1[j] : 0, d2 = dims > 2 ? yi2 - y2[j] : 0;
        double k = 1.0 / (1.0 + d0 * d0 + d1 * d1 + d2 * d2), pk = pi[j] * k, kk = k * k;
        z += k;
        a0 += pk * d0; a1 += pk * d1; a2 += pk * d2;
        b0 += kk * d0; b1 += kk * d1; b2 += kk * d2;
    }
    s->rowz[i] = z - 1.0; /* the j = i term: kernel 1, zero offset, p_ii = 0 */
    double *acc = s->acc + 6 * i;
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = b0; acc[4] = b1; acc[5] = b2;
    if (want_kl) {
        double kl = 0, ps = 0;
        for (int64_t j = 0; j < n; j++) {
            if (j == i || !(pi[j] > 0)) continue;
            double d0 = yi0 - y0[j], d1 = dims > 1 ? yi1 - y1[j] : 0, d2 = dims > 2 ? yi2 - y2[j] : 0;
            kl += pi[j] * (log(pi[j]) + log1p(d0 * d0 + d1 * d1 + d2 * d2));
            ps += pi[j];
        }
        s->rowkl[i] = kl;
        s->rowp[i] = ps;
    }
}

/* KL(P || Q) and/or the gradient of the objective with P x ex, in one pass over the pairs:
 * with k_ij = (1 + |y_i - y_j|^2)^-1, Z = sum k and q = k / Z,
 *   dC/dy_i = 4 sum_j (ex p_ij - q_ij) k_ij (y_i - y_j)
 *           = 4 (ex sum_j p_ij k_ij (y_i - y_j) - sum_j k_ij^2 (y_i - y_j) / Z),
 * so Z is not needed until the per-row sums are done. The inner loop is an OpenMP simd
 * reduction: its summation order is fixed at compile time (deterministic). Inlined per dims so
 * that the compiler specialises it. Returns the KL with P (not exaggerated) when want_kl, else 0. */
static inline __attribute__((always_inline)) double kl_grad_impl(const double *p, double ex, const double *y, int64_t n,
                                                                 const int64_t dims, double *grad, bool want_kl,
                                                                 const kl_scratch *s) {
    for (int64_t k = 0; k < dims; k++)
        for (int64_t i = 0; i < n; i++) s->yt[k * n + i] = y[i * dims + k];
#pragma omp parallel for schedule(static) if (n * n >= 65536)
    for (int64_t i = 0; i < n; i++) {
        /* dims as a literal in each call so that the inlined inner loop is specialised and vectorised
         * (a value captured by the OpenMP region would not be a constant) */
        if (dims == 2) row_pass(p + i * n, s->yt, n, i, 2, want_kl, s);
        else if (dims == 1) row_pass(p + i * n, s->yt, n, i, 1, want_kl, s);
        else row_pass(p + i * n, s->yt, n, i, 3, want_kl, s);
    }
    double z = 0;
    for (int64_t i = 0; i < n; i++) z += s->rowz[i];
    if (grad)
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < dims; k++) grad[i * dims + k] = 4.0 * (ex * s->acc[6 * i + k] - s->acc[6 * i + 3 + k] / z);
    if (!want_kl) return 0;
    double kl = 0, ps = 0;
    for (int64_t i = 0; i < n; i++) { kl += s->rowkl[i]; ps += s->rowp[i]; }
    return kl + ps * log(z); /* sum p log(p / (k / Z)) */
}

static double kl_grad(const double *p, double ex, const double *y, int64_t n, int64_t dims, double *grad, bool want_kl,
                      const kl_scratch *s) {
    if (dims == 2) return kl_grad_impl(p, ex, y, n, 2, grad, want_kl, s);
    if (dims == 1) return kl_grad_impl(p, ex, y, n, 1, grad, want_kl, s);
    return kl_grad_impl(p, ex, y, n, 3, grad, want_kl, s);
}

double bl_tsne_kl(const double *p, const double *y, int64_t n, int64_t dims, double *grad) {
    if (!p || !y || n < 2 || dims < 1 || dims > 3) return NAN;
    bl_arena a = {0};
    kl_scratch s;
    carve_scratch(&a, &s, n);
    if (bl_arena_alloc(&a) != BALORA_STATUS_OK) return NAN;
    carve_scratch(&a, &s, n);
    double kl = kl_grad(p, 1.0, y, n, dims, grad, true, &s);
    bl_arena_free(&a);
    return kl;
}

void bl_tsne_result_free(bl_tsne_result *r) {
    if (!r) return;
    bl_arena_free(&r->arena);
    memset(r, 0, sizeof *r);
}

typedef struct work {
    double *p;      /* [n, n] joint affinities (true P, floored, sums to 1) */
    double *y;      /* [n, dims] */
    double *upd;    /* [n, dims] momentum update */
    double *gains;  /* [n, dims] */
    double *grad;   /* [n, dims] */
    kl_scratch ks;
} work;

static void carve_work(bl_arena *a, work *w, int64_t n, int64_t dims) {
    w->p = bl_arena_take(a, sizeof(double) * (size_t)(n * n));
    w->y = bl_arena_take(a, sizeof(double) * (size_t)(n * dims));
    w->upd = bl_arena_take(a, sizeof(double) * (size_t)(n * dims));
    w->gains = bl_arena_take(a, sizeof(double) * (size_t)(n * dims));
    w->grad = bl_arena_take(a, sizeof(double) * (size_t)(n * dims));
    carve_scratch(a, &w->ks, n);
}

balora_status bl_tsne_run(const float *x, int64_t n, int64_t d, const bl_tsne_config *cfg, bl_tsne_result *out) {
    memset(out, 0, sizeof *out);
    if (!cfg) return bl_fail(BALORA_STATUS_INVALID, "t-SNE: config is NULL");
    if (cfg->dims < 1 || cfg->dims > 3)
        return bl_fail(BALORA_STATUS_INVALID, "t-SNE: field 'dims' is %d; hint: use 1, 2 or 3", cfg->dims);
    if (cfg->n_iter < 1 || cfg->n_iter > 100000)
        return bl_fail(BALORA_STATUS_INVALID, "t-SNE: field 'n_iter' is %d; hint: use 1..100000 (typical 1000)", cfg->n_iter);
    if (!(cfg->learning_rate >= 0) || !isfinite(cfg->learning_rate))
        return bl_fail(BALORA_STATUS_INVALID, "t-SNE: field 'learning_rate' is %g; hint: > 0, or 0 for automatic", cfg->learning_rate);
    if (!(cfg->exaggeration >= 1) || !isfinite(cfg->exaggeration))
        return bl_fail(BALORA_STATUS_INVALID, "t-SNE: field 'exaggeration' is %g; hint: >= 1 (typical 12)", cfg->exaggeration);
    if (cfg->exaggeration_iters < 0 || cfg->momentum_switch_iter < 0)
        return bl_fail(BALORA_STATUS_INVALID, "t-SNE: fields 'exaggeration_iters' / 'momentum_switch_iter' are %d / %d; hint: >= 0",
                       cfg->exaggeration_iters, cfg->momentum_switch_iter);
    if (cfg->kl_every < 1)
        return bl_fail(BALORA_STATUS_INVALID, "t-SNE: field 'kl_every' is %d; hint: >= 1", cfg->kl_every);
    BL_TRY(check_input(x, n, d, cfg->perplexity));
    if (cfg->init)
        for (int64_t i = 0; i < n * cfg->dims; i++)
            if (!isfinite(cfg->init[i]))
                return bl_fail(BALORA_STATUS_INVALID, "t-SNE: field 'init': point %lld, coordinate %lld is %g; hint: every value must be finite",
                               (long long)(i / cfg->dims), (long long)(i % cfg->dims), (double)cfg->init[i]);
    const double t0 = bl_time_now();
    const int64_t dims = cfg->dims;

    bl_arena wa = {0};
    work w;
    carve_work(&wa, &w, n, dims);
    BL_TRY(bl_arena_alloc(&wa));
    carve_work(&wa, &w, n, dims);

    /* 1. joint affinities */
    balora_status st = bl_tsne_conditional(x, n, d, cfg->perplexity, w.p, NULL);
    if (st != BALORA_STATUS_OK) { bl_arena_free(&wa); return st; }
    double total = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) {
            double v = (w.p[i * n + j] + w.p[j * n + i]) / (2.0 * n);
            if (v < TSNE_P_FLOOR) v = TSNE_P_FLOOR;
            w.p[i * n + j] = w.p[j * n + i] = v;
            total += 2 * v;
        }
    for (int64_t i = 0; i < n * n; i++) w.p[i] /= total;
    for (int64_t i = 0; i < n; i++) w.p[i * n + i] = 0;

    /* 2. output buffers */
    const int64_t n_kl = (cfg->n_iter + cfg->kl_every - 1) / cfg->kl_every + 1;
    bl_arena ra = {0};
    for (int pass = 0; pass < 2; pass++) {
        out->y = bl_arena_take(&ra, sizeof(float) * (size_t)(n * dims));
        out->kl = bl_arena_take(&ra, sizeof(double) * (size_t)n_kl);
        out->kl_iter = bl_arena_take(&ra, sizeof(int32_t) * (size_t)n_kl);
        if (pass == 0 && (st = bl_arena_alloc(&ra)) != BALORA_STATUS_OK) {
            bl_arena_free(&wa);
            memset(out, 0, sizeof *out);
            return st;
        }
    }
    out->arena = ra;
    out->n = n;
    out->dims = dims;
    out->n_kl = n_kl;

    /* 3. gradient descent */
    bl_rng rng;
    bl_rng_seed(&rng, cfg->seed);
    for (int64_t i = 0; i < n * dims; i++) {
        w.y[i] = cfg->init ? (double)cfg->init[i] : 1e-4 * bl_rng_normal(&rng);
        w.gains[i] = 1.0;
    }
    const double eta = cfg->learning_rate > 0 ? cfg->learning_rate : fmax((double)n / cfg->exaggeration / 4.0, 50.0);
    int64_t k = 0;
    for (int32_t it = 0; it < cfg->n_iter; it++) {
        const double ex = it < cfg->exaggeration_iters ? cfg->exaggeration : 1.0;
        const double mom = it < cfg->momentum_switch_iter ? 0.5 : 0.8;
        const bool want_kl = it % cfg->kl_every == 0;
        double kl = kl_grad(w.p, ex, w.y, n, dims, w.grad, want_kl, &w.ks);
        if (want_kl) { out->kl[k] = kl; out->kl_iter[k] = it; k++; }
        for (int64_t i = 0; i < n * dims; i++) {
            bool same = (w.grad[i] > 0) == (w.upd[i] > 0);
            w.gains[i] = same ? w.gains[i] * 0.8 : w.gains[i] + 0.2;
            if (w.gains[i] < TSNE_MIN_GAIN) w.gains[i] = TSNE_MIN_GAIN;
            w.upd[i] = mom * w.upd[i] - eta * w.gains[i] * w.grad[i];
            w.y[i] += w.upd[i];
        }
        for (int64_t c = 0; c < dims; c++) {
            double mean = 0;
            for (int64_t i = 0; i < n; i++) mean += w.y[i * dims + c];
            mean /= (double)n;
            for (int64_t i = 0; i < n; i++) w.y[i * dims + c] -= mean;
        }
    }
    out->kl[k] = kl_grad(w.p, 1.0, w.y, n, dims, NULL, true, &w.ks);
    out->kl_iter[k] = cfg->n_iter;
    out->kl_final = out->kl[k];
    for (int64_t i = 0; i < n * dims; i++) out->y[i] = (float)w.y[i];
    bl_arena_free(&wa);
    if (!isfinite(out->kl_final)) {
        double bad = out->kl_final;
        bl_tsne_result_free(out);
        return bl_fail(BALORA_STATUS_INTERNAL, "t-SNE: the objective diverged (KL %g); hint: lower learning_rate", bad);
    }
    out->seconds = bl_time_now() - t0;
    return BALORA_STATUS_OK;
}
