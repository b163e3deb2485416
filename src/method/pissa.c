/* PiSSA: SVD initialisation, residual, conversion to plain LoRA. See pissa.h. */
#include "method/pissa.h"
#include <cblas.h>
#include <errno.h>
#include <lapacke.h>
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

/* Workspace query helpers (lwork = -1). */
static int64_t q_gesdd(int64_t m, int64_t n) {
    float q = 0, d = 0;
    lapack_int iq = 0, mn = (lapack_int)(m < n ? m : n);
    if (LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', (lapack_int)m, (lapack_int)n, &d, (lapack_int)m, &d, &d, (lapack_int)m,
                            &d, mn, &q, -1, &iq) != 0) return -1;
    return (int64_t)q + 1;
}
static int64_t q_qr(int64_t m, int64_t q) {
    float a = 0, b = 0, d = 0;
    if (LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, (lapack_int)m, (lapack_int)q, &d, (lapack_int)m, &d, &a, -1) != 0) return -1;
    if (LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, (lapack_int)m, (lapack_int)q, (lapack_int)q, &d, (lapack_int)m, &d, &b, -1) != 0)
        return -1;
    return (int64_t)fmaxf(a, b) + 1;
}

/* Orthonormal basis of the columns of X (col-major [rows, q]) in place. */
static balora_status orth(float *X, int64_t rows, int64_t q, float *tau, float *work, int64_t lwork) {
    lapack_int info = LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, (lapack_int)rows, (lapack_int)q, X, (lapack_int)rows, tau, work,
                                          (lapack_int)lwork);
    if (info == 0)
        info = LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, (lapack_int)rows, (lapack_int)q, (lapack_int)q, X, (lapack_int)rows,
                                   tau, work, (lapack_int)lwork);
    if (info != 0) return bl_fail(BALORA_STATUS_INTERNAL, "PiSSA: QR of a %lld x %lld sketch failed (info %d)",
                                  (long long)rows, (long long)q, (int)info);
    return BALORA_STATUS_OK;
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
    if (niter < 0) {
        lwork = q_gesdd(n, m);
        liwork = 8 * mn;
    } else {
        int64_t a = q_qr(m, q), b = q_qr(n, q), c = q_gesdd(n, q);
        lwork = a > b ? a : b;
        if (c > lwork) lwork = c;
        if (a < 0 || b < 0 || c < 0) lwork = -1;
        liwork = 8 * q;
    }
    if (lwork < 0) return bl_fail(BALORA_STATUS_INTERNAL, "%s: LAPACK workspace query failed", what);
    bl_arena ar = {0};
    float *Wc = NULL, *u = NULL, *vt = NULL, *s = NULL, *work = NULL, *omega = NULL, *Y = NULL, *Z = NULL, *tau = NULL,
          *u2 = NULL, *vt2 = NULL;
    lapack_int *iwork = NULL;
    for (int pass = 0; pass < 2; pass++) {
        if (copy) Wc = bl_arena_take(&ar, (size_t)(m * n) * sizeof(float));                /* [out, in] */
        work = bl_arena_take(&ar, (size_t)lwork * sizeof(float));
        iwork = bl_arena_take(&ar, (size_t)liwork * sizeof(lapack_int));
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
    balora_status st = BALORA_STATUS_OK;
    lapack_int info;
    if (niter < 0) {
        /* row-major [m, n] = col-major [n, m] = W^T; its SVD W^T = U' S VT' gives U' = V (row-major [mn, n] = V^T)
         * and VT' = U^T (row-major [m, mn] = U). */
        info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)m, Wc, (lapack_int)n, s, vt,
                                   (lapack_int)n, u, (lapack_int)mn, work, (lapack_int)lwork, iwork);
        if (info != 0) {
            st = bl_fail(BALORA_STATUS_INTERNAL, "%s: sgesdd failed (info %d) on a [%lld, %lld] weight", what, (int)info,
                         (long long)m, (long long)n);
            goto done;
        }
        for (int64_t o = 0; o < m; o++) memcpy(U + o * r, u + o * mn, (size_t)r * sizeof(float));
        memcpy(S, s, (size_t)r * sizeof(float));
        memcpy(Vt, vt, (size_t)(r * n) * sizeof(float));
    } else {
        /* In col-major terms Wr is [in, out] = W^T with leading dimension n. */
        for (int64_t i = 0; i < n * q; i++) omega[i] = bl_rng_normal(rng);
        cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)m, (int)q, (int)n, 1.0f, Wr, (int)n, omega, (int)n, 0.0f,
                    Y, (int)m); /* Y = W Omega */
        if ((st = orth(Y, m, q, tau, work, lwork)) != BALORA_STATUS_OK) goto done;
        for (int it = 0; it < niter; it++) {
            cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)q, (int)m, 1.0f, Wr, (int)n, Y, (int)m,
                        0.0f, Z, (int)n); /* Z = W^T Q */
            if ((st = orth(Z, n, q, tau, work, lwork)) != BALORA_STATUS_OK) goto done;
            cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)m, (int)q, (int)n, 1.0f, Wr, (int)n, Z, (int)n, 0.0f,
                        Y, (int)m); /* Y = W Z */
            if ((st = orth(Y, m, q, tau, work, lwork)) != BALORA_STATUS_OK) goto done;
        }
        /* (Q^T W)^T = W^T Q, col-major [n, q]; its SVD U2 S VT2 gives Q^T W = VT2^T S U2^T:
         * U2 col-major [n, q] = row-major [q, n] = V^T; VT2 col-major [q, q] = row-major U_b. */
        cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)q, (int)m, 1.0f, Wr, (int)n, Y, (int)m, 0.0f, Z,
                    (int)n);
        info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)q, Z, (lapack_int)n, s, u2,
                                   (lapack_int)n, vt2, (lapack_int)q, work, (lapack_int)lwork, iwork);
        if (info != 0) {
            st = bl_fail(BALORA_STATUS_INTERNAL, "%s: sgesdd failed (info %d) on the %lld x %lld projection", what,
                         (int)info, (long long)q, (long long)n);
            goto done;
        }
        /* U_r = Q U_b[:, :r]; as col-major [r, m] (= row-major [m, r]) that is U_b[:, :r]^T Q^T, where the row-major
         * U_b read col-major is U_b^T, whose first r rows are U_b[:, :r]^T (leading dimension q). */
        cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)r, (int)m, (int)q, 1.0f, vt2, (int)q, Y, (int)m, 0.0f, U,
                    (int)r);
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
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, (int)in, (int)out, (int)r, -scale, A, (int)in, B, (int)r,
                        1.0f, W, (int)out);
        else /* W [out, in] -= s B A */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)out, (int)in, (int)r, -scale, B, (int)r, A,
                        (int)in, 1.0f, W, (int)in);
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
