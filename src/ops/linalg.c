/* CPU implementation of ops.h's dense linear algebra: OpenBLAS for the products, LAPACKE's
 * _work entry points (no allocation inside LAPACKE) for the factorisations. Each function is
 * one call of the library with the caller's arguments, after checks that keep LAPACK from ever
 * seeing an illegal argument (its error handler would print). Never called inside an OpenMP
 * region (OpenBLAS threads itself). */
#include "ops/ops.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>

_Static_assert(sizeof(lapack_int) == sizeof(int), "balora passes int workspaces to an LP64 LAPACK");

static bool fits(int64_t x) { return x >= 0 && x <= INT32_MAX; }

/* ------------------------------------------------------------------ products */

void bl_gemm_d(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
               const double *A, int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* C = beta C */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0 ? 0.0 : beta * C[i * ldc + j];
        return;
    }
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M,
                (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void bl_gemm_cm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* C = beta C, column-major */
        for (int64_t j = 0; j < N; j++)
            for (int64_t i = 0; i < M; i++) C[j * ldc + i] = beta == 0.0f ? 0.0f : beta * C[j * ldc + i];
        return;
    }
    cblas_sgemm(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M,
                (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void bl_syrk_d(int64_t N, int64_t K, double alpha, const double *A, int64_t lda, double beta, double *C, int64_t ldc) {
    if (N <= 0) return;
    if (K <= 0) { /* C = beta C on the upper triangle */
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = i; j < N; j++) C[i * ldc + j] = beta == 0.0 ? 0.0 : beta * C[i * ldc + j];
        return;
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)N, (int)K, alpha, A, (int)lda, beta, C, (int)ldc);
}

/* ------------------------------------------------------------------ factorisations */

static balora_status lapack_info(const char *routine, int64_t m, int64_t n, lapack_int info) {
    if (info == 0) return BALORA_STATUS_OK;
    if (info < 0)
        return bl_fail(BALORA_STATUS_INTERNAL, "%s on a %lld x %lld matrix: argument %d rejected; hint: the workspace "
                       "was not sized by the matching *_work helper", routine, (long long)m, (long long)n, (int)-info);
    return bl_fail(BALORA_STATUS_INTERNAL, "%s on a %lld x %lld matrix did not converge (info %d)", routine,
                   (long long)m, (long long)n, (int)info);
}

static balora_status check_dims(const char *routine, int64_t m, int64_t n) {
    if (m < 1 || n < 1 || !fits(m) || !fits(n))
        return bl_fail(BALORA_STATUS_INVALID, "%s: shape %lld x %lld: need 1 <= rows, columns < 2^31 (LP64 LAPACK)",
                       routine, (long long)m, (long long)n);
    return BALORA_STATUS_OK;
}

static balora_status check_work(const char *routine, int64_t m, int64_t n, const void *work, int64_t lwork,
                                int64_t need_lwork, const void *iwork, int64_t liwork, int64_t need_liwork) {
    if (!work || lwork < need_lwork || !fits(lwork) || (need_liwork > 0 && (!iwork || liwork < need_liwork)))
        return bl_fail(BALORA_STATUS_INVALID, "%s on a %lld x %lld matrix: workspace of %lld (needs >= %lld) and "
                       "%lld ints (needs >= %lld); hint: size it with the matching *_work helper", routine,
                       (long long)m, (long long)n, (long long)lwork, (long long)need_lwork, (long long)liwork,
                       (long long)need_liwork);
    return BALORA_STATUS_OK;
}

/* Row-major A [m, n] is column-major A^T [n, m]: gesdd of A^T = U' S VT' gives U' = V (column-major [n, k]
 * = row-major [k, n] = Vt) and VT' = U^T (column-major [k, m] = row-major [m, k] = U). */
balora_status bl_svd_work_f(int64_t m, int64_t n, int64_t *lwork, int64_t *liwork) {
    BL_TRY(check_dims("sgesdd", m, n));
    float q = 0, d = 0;
    lapack_int iq = 0, k = (lapack_int)(m < n ? m : n);
    lapack_int info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)m, &d, (lapack_int)n, &d,
                                          &d, (lapack_int)n, &d, k, &q, -1, &iq);
    if (info != 0) return bl_fail_prefix(lapack_info("sgesdd", m, n, info), "workspace query");
    *lwork = (int64_t)q + 1;
    *liwork = 8 * (int64_t)k;
    return BALORA_STATUS_OK;
}

balora_status bl_svd_work_d(int64_t m, int64_t n, int64_t *lwork, int64_t *liwork) {
    BL_TRY(check_dims("dgesdd", m, n));
    double q = 0, d = 0;
    lapack_int iq = 0, k = (lapack_int)(m < n ? m : n);
    lapack_int info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)m, &d, (lapack_int)n, &d,
                                          &d, (lapack_int)n, &d, k, &q, -1, &iq);
    if (info != 0) return bl_fail_prefix(lapack_info("dgesdd", m, n, info), "workspace query");
    *lwork = (int64_t)q + 1;
    *liwork = 8 * (int64_t)k;
    return BALORA_STATUS_OK;
}

balora_status bl_svd_f(int64_t m, int64_t n, float *A, float *S, float *U, float *Vt, float *work, int64_t lwork,
                       int *iwork, int64_t liwork) {
    BL_TRY(check_dims("sgesdd", m, n));
    const int64_t k = m < n ? m : n;
    if (!A || !S || !U || !Vt) return bl_fail(BALORA_STATUS_INVALID, "sgesdd: a matrix or output buffer is missing");
    BL_TRY(check_work("sgesdd", m, n, work, lwork, 1, iwork, liwork, 8 * k));
    for (int64_t i = 0; i < m * n; i++)
        if (!isfinite(A[i]))
            return bl_fail(BALORA_STATUS_INVALID, "sgesdd on a %lld x %lld matrix: element %lld is %g", (long long)m,
                           (long long)n, (long long)i, (double)A[i]);
    lapack_int info = LAPACKE_sgesdd_work(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)m, A, (lapack_int)n, S, Vt,
                                          (lapack_int)n, U, (lapack_int)k, work, (lapack_int)lwork, iwork);
    return lapack_info("sgesdd", m, n, info);
}

balora_status bl_svd_d(int64_t m, int64_t n, double *A, double *S, double *U, double *Vt, double *work, int64_t lwork,
                       int *iwork, int64_t liwork) {
    BL_TRY(check_dims("dgesdd", m, n));
    const int64_t k = m < n ? m : n;
    if (!A || !S || !U || !Vt) return bl_fail(BALORA_STATUS_INVALID, "dgesdd: a matrix or output buffer is missing");
    BL_TRY(check_work("dgesdd", m, n, work, lwork, 1, iwork, liwork, 8 * k));
    for (int64_t i = 0; i < m * n; i++)
        if (!isfinite(A[i]))
            return bl_fail(BALORA_STATUS_INVALID, "dgesdd on a %lld x %lld matrix: element %lld is %g", (long long)m,
                           (long long)n, (long long)i, A[i]);
    lapack_int info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)m, A, (lapack_int)n, S, Vt,
                                          (lapack_int)n, U, (lapack_int)k, work, (lapack_int)lwork, iwork);
    return lapack_info("dgesdd", m, n, info);
}

void bl_eigh_work_d(int64_t n, int64_t *lwork, int64_t *liwork) {
    *lwork = 1 + 6 * n + 2 * n * n;
    *liwork = 3 + 5 * n;
}

/* Row-major upper triangle = column-major lower triangle; column-major eigenvector column i = row-major row i. */
balora_status bl_eigh_d(int64_t n, double *A, int64_t lda, double *w, double *work, int64_t lwork, int *iwork,
                        int64_t liwork) {
    BL_TRY(check_dims("dsyevd", n, n));
    if (!A || !w || lda < n || !fits(lda))
        return bl_fail(BALORA_STATUS_INVALID, "dsyevd on a %lld x %lld matrix: matrix or eigenvalue buffer missing, or "
                       "row stride %lld < %lld", (long long)n, (long long)n, (long long)lda, (long long)n);
    int64_t need, need_i;
    bl_eigh_work_d(n, &need, &need_i);
    BL_TRY(check_work("dsyevd", n, n, work, lwork, need, iwork, liwork, need_i));
    if (!fits(liwork)) liwork = INT32_MAX;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++)
            if (!isfinite(A[i * lda + j]))
                return bl_fail(BALORA_STATUS_INVALID, "dsyevd on a %lld x %lld matrix: element (%lld, %lld) is %g",
                               (long long)n, (long long)n, (long long)i, (long long)j, A[i * lda + j]);
    lapack_int info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', (lapack_int)n, A, (lapack_int)lda, w, work,
                                          (lapack_int)lwork, iwork, (lapack_int)liwork);
    return lapack_info("dsyevd", n, n, info);
}

balora_status bl_orth_work_f(int64_t n, int64_t q, int64_t *lwork) {
    if (q > n) return bl_fail(BALORA_STATUS_INVALID, "QR of a %lld x %lld matrix: more columns than rows", (long long)n,
                              (long long)q);
    BL_TRY(check_dims("sgeqrf", n, q));
    float a = 0, b = 0, d = 0;
    lapack_int info = LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, (lapack_int)n, (lapack_int)q, &d, (lapack_int)n, &d, &a, -1);
    if (info != 0) return bl_fail_prefix(lapack_info("sgeqrf", n, q, info), "workspace query");
    info = LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, (lapack_int)n, (lapack_int)q, (lapack_int)q, &d, (lapack_int)n, &d, &b,
                               -1);
    if (info != 0) return bl_fail_prefix(lapack_info("sorgqr", n, q, info), "workspace query");
    *lwork = (int64_t)fmaxf(a, b) + 1;
    return BALORA_STATUS_OK;
}

balora_status bl_orth_f(int64_t n, int64_t q, float *X, float *tau, float *work, int64_t lwork) {
    if (q > n) return bl_fail(BALORA_STATUS_INVALID, "QR of a %lld x %lld matrix: more columns than rows", (long long)n,
                              (long long)q);
    BL_TRY(check_dims("sgeqrf", n, q));
    if (!X || !tau) return bl_fail(BALORA_STATUS_INVALID, "sgeqrf: matrix or tau buffer missing");
    BL_TRY(check_work("sgeqrf", n, q, work, lwork, q, NULL, 0, 0));
    for (int64_t i = 0; i < n * q; i++)
        if (!isfinite(X[i]))
            return bl_fail(BALORA_STATUS_INVALID, "sgeqrf on a %lld x %lld matrix: element %lld is %g", (long long)n,
                           (long long)q, (long long)i, (double)X[i]);
    lapack_int info = LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, (lapack_int)n, (lapack_int)q, X, (lapack_int)n, tau, work,
                                          (lapack_int)lwork);
    if (info != 0) return lapack_info("sgeqrf", n, q, info);
    info = LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, (lapack_int)n, (lapack_int)q, (lapack_int)q, X, (lapack_int)n, tau, work,
                               (lapack_int)lwork);
    return lapack_info("sorgqr", n, q, info);
}
