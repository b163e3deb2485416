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
    cfg->kl_every = 10;
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

/* KL(P || Q) and/or the gradient of the objective with P x ex.
 * rowz, rowkl: [n] scratch. Returns the KL with P (not exaggerated) when want_kl, else 0. */
static double kl_grad(const double *p, double ex, const double *y, int64_t n, int64_t dims, double *grad, bool want_kl,
                      double *rowz, double *rowkl) {
#pragma omp parallel for schedule(static) if (n * n >= 65536)
    for (int64_t i = 0; i < n; i++) {
        double z = 0;
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            double d2 = 0;
            for (int64_t k = 0; k < dims; k++) { double t = y[i * dims + k] - y[j * dims + k]; d2 += t * t; }
            z += 1.0 / (1.0 + d2);
        }
        rowz[i] = z;
    }
    double z = 0;
    for (int64_t i = 0; i < n; i++) z += rowz[i];
    const double inv_z = 1.0 / z, log_z = log(z);
#pragma omp parallel for schedule(static) if (n * n >= 65536)
    for (int64_t i = 0; i < n; i++) {
        double g[3] = {0, 0, 0}, kl = 0;
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            double diff[3] = {0, 0, 0}, d2 = 0;
            for (int64_t k = 0; k < dims; k++) { diff[k] = y[i * dims + k] - y[j * dims + k]; d2 += diff[k] * diff[k]; }
            double num = 1.0 / (1.0 + d2), pij = p[i * n + j];
            if (grad) {
                double m = (ex * pij - num * inv_z) * num;
                for (int64_t k = 0; k < dims; k++) g[k] += m * diff[k];
            }
            if (want_kl && pij > 0) kl += pij * (log(pij) - log(num) + log_z);
        }
        if (grad)
            for (int64_t k = 0; k < dims; k++) grad[i * dims + k] = 4.0 * g[k];
        rowkl[i] = kl;
    }
    double kl = 0;
    if (want_kl)
        for (int64_t i = 0; i < n; i++) kl += rowkl[i];
    return kl;
}

double bl_tsne_kl(const double *p, const double *y, int64_t n, int64_t dims, double *grad) {
    if (!p || !y || n < 2 || dims < 1 || dims > 3) return NAN;
    double *buf = bl_malloc(sizeof(double) * 2 * (size_t)n); /* rowz [n], rowkl [n] */
    if (!buf) return NAN;
    double kl = kl_grad(p, 1.0, y, n, dims, grad, true, buf, buf + n);
    free(buf);
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
    double *rowz;   /* [n] */
    double *rowkl;  /* [n] */
} work;

static void carve_work(bl_arena *a, work *w, int64_t n, int64_t dims) {
    w->p = bl_arena_take(a, sizeof(double) * (size_t)(n * n));
    w->y = bl_arena_take(a, sizeof(double) * (size_t)(n * dims));
    w->upd = bl_arena_take(a, sizeof(double) * (size_t)(n * dims));
    w->gains = bl_arena_take(a, sizeof(double) * (size_t)(n * dims));
    w->grad = bl_arena_take(a, sizeof(double) * (size_t)(n * dims));
    w->rowz = bl_arena_take(a, sizeof(double) * (size_t)n);
    w->rowkl = bl_arena_take(a, sizeof(double) * (size_t)n);
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
    for (int64_t i = 0; i < n * dims; i++) { w.y[i] = 1e-4 * bl_rng_normal(&rng); w.gains[i] = 1.0; }
    const double eta = cfg->learning_rate > 0 ? cfg->learning_rate : fmax((double)n / cfg->exaggeration / 4.0, 50.0);
    int64_t k = 0;
    for (int32_t it = 0; it < cfg->n_iter; it++) {
        const double ex = it < cfg->exaggeration_iters ? cfg->exaggeration : 1.0;
        const double mom = it < cfg->momentum_switch_iter ? 0.5 : 0.8;
        const bool want_kl = it % cfg->kl_every == 0;
        double kl = kl_grad(w.p, ex, w.y, n, dims, w.grad, want_kl, w.rowz, w.rowkl);
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
    out->kl[k] = kl_grad(w.p, 1.0, w.y, n, dims, NULL, true, w.rowz, w.rowkl);
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
