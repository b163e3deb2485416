/* PiSSA: SVD initialisation, residual, conversion to plain LoRA. See pissa.h. */
#include "method/pissa.h"
#include "ops/ops.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

balora_status bl_pissa_parse_init(const char *name, int *niter) {
    static const char prefix[] = "pissa_niter_";
    if (name && !strcmp(name, "pissa")) { *niter = -1; return BALORA_STATUS_OK; }
    if (name && !strncmp(name, prefix, sizeof prefix - 1)) {
        const char *p = name + sizeof prefix - 1;
        char *end = NULL;
        errno = 0;
        long k = (*p >= '0' && *p <= '9') ? strtol(p, &end, 10) : -1;
        if (k >= 0 && end && !*end && errno == 0 && k <= 1000) { *niter = (int)k; return BALORA_STATUS_OK; }
        return bl_fail(BALORA_STATUS_INVALID, "init '%s': the number of power iterations must be a decimal in [0, 1000]; "
                       "hint: e.g. pissa_niter_4", name);
    }
    return bl_fail(BALORA_STATUS_INVALID, "init '%s': not a PiSSA initialisation; hint: use pissa (exact SVD) or "
                   "pissa_niter_K (randomized SVD with K power iterations)", name ? name : "(null)");
}

double bl_pissa_lora_alpha(double alpha, bool use_rslora) { return use_rslora ? sqrt(2.0) * alpha : 2.0 * alpha; }

static balora_status check_args(const char *what, const float *W, int64_t m, int64_t n, int64_t r, int niter,
                                int64_t oversample, const bl_rng *rng) {
    if (!W) return bl_fail(BALORA_STATUS_INVALID, "%s: no weight given", what);
    if (m < 1 || n < 1 || m > INT32_MAX || n > INT32_MAX || m * n > ((int64_t)1 << 40))
        return bl_fail(BALORA_STATUS_INVALID, "%s: weight shape [%lld, %lld] is empty or too large", what, (long long)m,
                       (long long)n);
    const int64_t mn = m < n ? m : n;
    if (r < 1 || r > mn)
        return bl_fail(BALORA_STATUS_INVALID, "%s: rank %lld for a [%lld, %lld] weight: need 1 <= r <= %lld; hint: lower "
                       "--rank for this module", what, (long long)r, (long long)m, (long long)n, (long long)mn);
    if (niter >= 0 && !rng)
        return bl_fail(BALORA_STATUS_INVALID, "%s: randomized SVD needs a seeded RNG", what);
    if (oversample < 0) return bl_fail(BALORA_STATUS_INVALID, "%s: oversample %lld < 0", what, (long long)oversample);
    for (int64_t i = 0; i < m * n; i++)
        if (!isfinite(W[i]))
            return bl_fail(BALORA_STATUS_INVALID, "%s: weight element %lld is %g; hint: the checkpoint is corrupt", what,
                           (long long)i, (double)W[i]);
    return BALORA_STATUS_OK;
}

/* Orthonormal basis of the columns of X (col-major [rows, q]) in place. */
static balora_status orth(const char *what, float *X, int64_t rows, int64_t q, float *tau, float *work, int64_t lwork) {
    balora_status st = bl_orth_f(rows, q, X, tau, work, lwork);
    return st == BALORA_STATUS_OK ? st : bl_fail_prefix(st, "%s: QR of the sketch", what);
}

balora_status bl_pissa_svd(const float *W, int64_t out, int64_t in, bool w_in_out, int64_t r, int niter,
                           int64_t oversample, bl_rng *rng, float *U, float *S, float *Vt) {
    const char *what = niter < 0 ? "PiSSA (exact SVD)" : "PiSSA (randomized SVD)";
    const int64_t m = out, n = in, mn = m < n ? m : n;
    BL_TRY(check_args(what, W, m, n, r, niter, oversample, rng));
    if (!U || !S || !Vt) return bl_fail(BALORA_STATUS_INVALID, "%s: output buffers missing", what);
    const int64_t q = r + oversample < mn ? r + oversample : mn;

    /* Plan: Wc = W as row-major [out, in] (a copy: gesdd destroys it / the transpose of Conv1D). */
    const bool copy = niter < 0 || w_in_out;
    int64_t lwork, liwork;
    balora_status st = BALORA_STATUS_OK;
    if (niter < 0) {
        st = bl_svd_work_f(m, n, &lwork, &liwork);
    } else {
        int64_t a = 0, b = 0, c = 0;
        if (st == BALORA_STATUS_OK) st = bl_orth_work_f(m, q, &a);
        if (st == BALORA_STATUS_OK) st = bl_orth_work_f(n, q, &b);
        if (st == BALORA_STATUS_OK) st = bl_svd_work_f(q, n, &c, &liwork);
        lwork = a > b ? a : b;
        if (c > lwork) lwork = c;
    }
    if (st != BALORA_STATUS_OK) return bl_fail_prefix(st, "%s", what);
    bl_arena ar = {0};
    float *Wc = NULL, *u = NULL, *vt = NULL, *s = NULL, *work = NULL, *omega = NULL, *Y = NULL, *Z = NULL, *tau = NULL,
          *u2 = NULL, *vt2 = NULL;
    int *iwork = NULL;
    for (int pass = 0; pass < 2; pass++) {
        if (copy) Wc = bl_arena_take(&ar, (size_t)(m * n) * sizeof(float));                /* [out, in] */
        work = bl_arena_take(&ar, (size_t)lwork * sizeof(float));
        iwork = bl_arena_take(&ar, (size_t)liwork * sizeof(int));
        if (niter < 0) {
            u = bl_arena_take(&ar, (size_t)(m * mn) * sizeof(float));   /* row-major [out, mn] = U */
            vt = bl_arena_take(&ar, (size_t)(mn * n) * sizeof(float));  /* row-major [mn, in] = V^T */
            s = bl_arena_take(&ar, (size_t)mn * sizeof(float));
        } else {
            omega = bl_arena_take(&ar, (size_t)(n * q) * sizeof(float)); /* col-major [in, q] */
            Y = bl_arena_take(&ar, (size_t)(m * q) * sizeof(float));     /* col-major [out, q] */
            Z = bl_arena_take(&ar, (size_t)(n * q) * sizeof(float));     /* col-major [in, q] */
            tau = bl_arena_take(&ar, (size_t)q * sizeof(float));
            s = bl_arena_take(&ar, (size_t)q * sizeof(float));
            u2 = bl_arena_take(&ar, (size_t)(n * q) * sizeof(float));    /* row-major [q, in] = V^T of Q^T W */
            vt2 = bl_arena_take(&ar, (size_t)(q * q) * sizeof(float));   /* row-major [q, q] = U of Q^T W */
        }
        if (pass == 0) {
            balora_status st = bl_arena_alloc(&ar);
            if (st != BALORA_STATUS_OK)
                return bl_fail_prefix(st, "%s of a [%lld, %lld] weight: ", what, (long long)m, (long long)n);
        }
    }
    const float *Wr = W; /* row-major [out, in] */
    if (copy) {
        if (w_in_out) {
            for (int64_t i = 0; i < n; i++)
                for (int64_t o = 0; o < m; o++) Wc[o * n + i] = W[i * m + o];
        } else {
            memcpy(Wc, W, (size_t)(m * n) * sizeof(float));
        }
        Wr = Wc;
    }
    if (niter < 0) {
        /* Wc row-major [m, n] = U [m, mn] diag(s) V^T [mn, n] */
        if ((st = bl_svd_f(m, n, Wc, s, u, vt, work, lwork, iwork, liwork)) != BALORA_STATUS_OK) {
            st = bl_fail_prefix(st, "%s of a [%lld, %lld] weight", what, (long long)m, (long long)n);
            goto done;
        }
        for (int64_t o = 0; o < m; o++) memcpy(U + o * r, u + o * mn, (size_t)r * sizeof(float));
        memcpy(S, s, (size_t)r * sizeof(float));
        memcpy(Vt, vt, (size_t)(r * n) * sizeof(float));
    } else {
        /* In col-major terms Wr is [in, out] = W^T with leading dimension n. */
        for (int64_t i = 0; i < n * q; i++) omega[i] = bl_rng_normal(rng);
        bl_gemm_cm(true, false, m, q, n, 1.0f, Wr, n, omega, n, 0.0f, Y, m); /* Y = W Omega */
        if ((st = orth(what, Y, m, q, tau, work, lwork)) != BALORA_STATUS_OK) goto done;
        for (int it = 0; it < niter; it++) {
            bl_gemm_cm(false, false, n, q, m, 1.0f, Wr, n, Y, m, 0.0f, Z, n); /* Z = W^T Q */
            if ((st = orth(what, Z, n, q, tau, work, lwork)) != BALORA_STATUS_OK) goto done;
            bl_gemm_cm(true, false, m, q, n, 1.0f, Wr, n, Z, n, 0.0f, Y, m); /* Y = W Z */
            if ((st = orth(what, Y, m, q, tau, work, lwork)) != BALORA_STATUS_OK) goto done;
        }
        /* Q^T W = U_b S V^T: Z = W^T Q is col-major [n, q] = row-major [q, n] = Q^T W, whose row-major SVD
         * gives U_b (row-major [q, q], in vt2) and V^T (row-major [q, n], in u2). */
        bl_gemm_cm(false, false, n, q, m, 1.0f, Wr, n, Y, m, 0.0f, Z, n);
        if ((st = bl_svd_f(q, n, Z, s, vt2, u2, work, lwork, iwork, liwork)) != BALORA_STATUS_OK) {
            st = bl_fail_prefix(st, "%s of the %lld x %lld projection", what, (long long)q, (long long)n);
            goto done;
        }
        /* U_r = Q U_b[:, :r]; as col-major [r, m] (= row-major [m, r]) that is U_b[:, :r]^T Q^T, where the row-major
         * U_b read col-major is U_b^T, whose first r rows are U_b[:, :r]^T (leading dimension q). */
        bl_gemm_cm(false, true, r, m, q, 1.0f, vt2, q, Y, m, 0.0f, U, r);
        memcpy(S, s, (size_t)r * sizeof(float));
        memcpy(Vt, u2, (size_t)(r * n) * sizeof(float));
    }
done:
    bl_arena_free(&ar);
    return st;
}

balora_status bl_pissa_init(float *W, int64_t out, int64_t in, bool w_in_out, int64_t r, float scale, int niter,
                            int64_t oversample, bl_rng *rng, float *A, float *B) {
    if (!(scale > 0) || !isfinite(scale))
        return bl_fail(BALORA_STATUS_INVALID, "PiSSA: LoRA scaling %g: must be a finite number > 0; hint: check "
                       "lora_alpha and r", (double)scale);
    if (!A || !B) return bl_fail(BALORA_STATUS_INVALID, "PiSSA: output buffers for A and B missing");
    const char *what = niter < 0 ? "PiSSA (exact SVD)" : "PiSSA (randomized SVD)";
    BL_TRY(check_args(what, W, out, in, r, niter, oversample, rng));
    /* U lands in B ([out, r]) and Vt in A ([r, in]); then both are scaled by sqrt(S / s). */
    float *S = bl_malloc((size_t)r * sizeof(float));
    if (!S) return BALORA_STATUS_NOMEM;
    balora_status st = bl_pissa_svd(W, out, in, w_in_out, r, niter, oversample, rng, B, S, A);
    if (st == BALORA_STATUS_OK) {
        for (int64_t j = 0; j < r; j++) S[j] = sqrtf(S[j] / scale);
        for (int64_t j = 0; j < r; j++)
            for (int64_t i = 0; i < in; i++) A[j * in + i] *= S[j];
        for (int64_t o = 0; o < out; o++)
            for (int64_t j = 0; j < r; j++) B[o * r + j] *= S[j];
        if (w_in_out) /* W [in, out] -= s A^T B^T */
            bl_gemm(true, true, in, out, r, -scale, A, in, B, r, 1.0f, W, out);
        else /* W [out, in] -= s B A */
            bl_gemm(false, false, out, in, r, -scale, B, r, A, in, 1.0f, W, in);
    }
    free(S);
    return st;
}

balora_status bl_pissa_to_lora(int64_t out, int64_t in, int64_t r, const float *A, const float *B, const float *A0,
                               const float *B0, float *A2, float *B2) {
    if (out < 1 || in < 1 || r < 1)
        return bl_fail(BALORA_STATUS_INVALID, "PiSSA to LoRA: shape out %lld, in %lld, r %lld: all must be >= 1",
                       (long long)out, (long long)in, (long long)r);
    if (!A || !B || !A0 || !B0 || !A2 || !B2)
        return bl_fail(BALORA_STATUS_INVALID, "PiSSA to LoRA: a factor is missing; hint: the initial factors A0, B0 are "
                       "saved with the PiSSA adapter");
    memcpy(A2, A, (size_t)(r * in) * sizeof(float));
    memcpy(A2 + r * in, A0, (size_t)(r * in) * sizeof(float));
    for (int64_t o = 0; o < out; o++)
        for (int64_t j = 0; j < r; j++) {
            B2[o * 2 * r + j] = B[o * r + j];
            B2[o * 2 * r + r + j] = -B0[o * r + j];
        }
    return BALORA_STATUS_OK;
}
