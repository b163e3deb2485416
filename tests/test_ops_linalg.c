/* The dense linear algebra of src/ops (ops.h "dense linear algebra") and the seam itself.
 *
 * Products (bl_gemm, bl_gemm_d, bl_gemm_cm, bl_syrk_d) against a naive double triple loop, every
 * transpose combination, with row strides wider than the rows (padding must stay untouched).
 * Factorisations by their defining properties: the SVD reconstructs A and has orthonormal
 * factors and descending non-negative singular values; the eigen-decomposition reconstructs A
 * from the upper triangle alone (garbage below), with orthonormal eigenvectors and ascending
 * eigenvalues; the QR basis is orthonormal and spans the input column by column (Q^T X upper
 * triangular, Q Q^T X = X). Error paths: bad shapes, missing buffers, short workspace, NaN.
 *
 * Tolerances: double results 1e-10 (the O(1) entries here carry ~1e-14 rounding), float
 * results 2e-4 (float32 LAPACK on <= 40-dimensional O(1) matrices: ~1e-6 typical; a wrong
 * index, transpose or sign gives O(1) errors).
 *
 * The seam: no file under src/ outside src/ops/ may call cblas_*, LAPACKE_*, openblas_* or
 * include cblas.h / lapacke.h (docs/DEVELOPING.md, ops.h "THE DISPATCH SEAM"). The scan reads
 * the source tree (BALORA_SOURCE_DIR) and proves it works by finding the calls in src/ops. */
#include "harness.h"
#include "ops/ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bl_rng g_rng;
static double urand(void) { return bl_rng_uniform(&g_rng) * 2.0 - 1.0; }

/* C[i, j] = alpha sum_k op(A)[i, k] op(B)[k, j] + beta C0[i, j]; row-major unless cm (then
 * element (i, j) of X is X[j * ld + i]). */
static double at(const double *X, int64_t ld, bool cm, int64_t i, int64_t j) { return cm ? X[j * ld + i] : X[i * ld + j]; }
static double ref_elem(bool cm, bool ta, bool tb, int64_t i, int64_t j, int64_t K, double alpha, const double *A,
                       int64_t lda, const double *B, int64_t ldb) {
    double s = 0;
    for (int64_t k = 0; k < K; k++) {
        double a = ta ? at(A, lda, cm, k, i) : at(A, lda, cm, i, k);
        double b = tb ? at(B, ldb, cm, j, k) : at(B, ldb, cm, k, j);
        s += a * b;
    }
    return alpha * s;
}

static void test_products(void) {
    const int64_t M = 7, N = 5, K = 9, pad = 3;
    for (int cm = 0; cm < 3; cm++) /* 0: bl_gemm_d, 1: bl_gemm_cm, 2: bl_gemm (float, row-major) */
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                /* stored shapes: A is op(A) [M, K] or its transpose; strides = stored width + pad */
                const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
                const int64_t lda = (cm == 1 ? ar : ac) + pad, ldb = (cm == 1 ? br : bc) + pad,
                              ldc = (cm == 1 ? M : N) + pad;
                const int64_t na = lda * (cm == 1 ? ac : ar), nb = ldb * (cm == 1 ? bc : br),
                              nc = ldc * (cm == 1 ? N : M);
                double *A = malloc(na * sizeof(double)), *B = malloc(nb * sizeof(double)),
                       *C = malloc(nc * sizeof(double)), *C0 = malloc(nc * sizeof(double));
                float *Af = malloc(na * sizeof(float)), *Bf = malloc(nb * sizeof(float)), *Cf = malloc(nc * sizeof(float));
                for (int64_t i = 0; i < na; i++) { Af[i] = (float)urand(); A[i] = Af[i]; }
                for (int64_t i = 0; i < nb; i++) { Bf[i] = (float)urand(); B[i] = Bf[i]; }
                for (int64_t i = 0; i < nc; i++) { Cf[i] = (float)urand(); C0[i] = C[i] = Cf[i]; }
                const double alpha = -0.75, beta = 0.5;
                if (cm == 0) bl_gemm_d(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
                else if (cm == 1) bl_gemm_cm(ta, tb, M, N, K, (float)alpha, Af, lda, Bf, ldb, (float)beta, Cf, ldc);
                else bl_gemm(ta, tb, M, N, K, (float)alpha, Af, lda, Bf, ldb, (float)beta, Cf, ldc);
                double worst = 0, pad_moved = 0;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double want = ref_elem(cm == 1, ta, tb, i, j, K, alpha, A, lda, B, ldb) +
                                      beta * at(C0, ldc, cm == 1, i, j);
                        double got = cm == 0 ? at(C, ldc, false, i, j) : (double)Cf[cm == 1 ? j * ldc + i : i * ldc + j];
                        worst = fmax(worst, fabs(got - want));
                    }
                /* the padding between rows (columns for cm) is not written */
                const int64_t outer = cm == 1 ? N : M, inner = cm == 1 ? M : N;
                for (int64_t o = 0; o < outer; o++)
                    for (int64_t p = inner; p < ldc; p++)
                        pad_moved = fmax(pad_moved, fabs((cm == 0 ? C[o * ldc + p] : Cf[o * ldc + p]) - C0[o * ldc + p]));
                CHECK(worst <= (cm == 0 ? 1e-12 : 2e-5), "%s trans %d%d: worst |C - ref| = %g",
                      cm == 0 ? "bl_gemm_d" : cm == 1 ? "bl_gemm_cm" : "bl_gemm", ta, tb, worst);
                CHECK(pad_moved == 0, "gemm variant %d trans %d%d wrote into the stride padding (%g)", cm, ta, tb, pad_moved);
                free(A); free(B); free(C); free(C0); free(Af); free(Bf); free(Cf);
            }

    /* syrk: upper triangle = alpha A A^T + beta C, strict lower triangle untouched */
    const int64_t n = 6, k = 11, lda = k + 2, ldc = n + 1;
    double *A = malloc(n * lda * sizeof(double)), *C = malloc(n * ldc * sizeof(double)), *C0 = malloc(n * ldc * sizeof(double));
    for (int64_t i = 0; i < n * lda; i++) A[i] = urand();
    for (int64_t i = 0; i < n * ldc; i++) C0[i] = C[i] = urand();
    bl_syrk_d(n, k, 2.0, A, lda, -1.0, C, ldc);
    double worst = 0, lower_moved = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < ldc; j++) {
            if (j >= i && j < n) {
                double s = 0;
                for (int64_t t = 0; t < k; t++) s += A[i * lda + t] * A[j * lda + t];
                worst = fmax(worst, fabs(C[i * ldc + j] - (2.0 * s - C0[i * ldc + j])));
            } else {
                lower_moved = fmax(lower_moved, fabs(C[i * ldc + j] - C0[i * ldc + j]));
            }
        }
    CHECK(worst <= 1e-12, "bl_syrk_d: worst upper-triangle error %g", worst);
    CHECK(lower_moved == 0, "bl_syrk_d touched the lower triangle or padding (%g)", lower_moved);
    free(A); free(C); free(C0);
}

/* max |X^T X - I| for the k rows (rows = true) or k columns of a row-major [r, c] matrix */
static double orth_err(const double *X, int64_t r, int64_t c, bool rows, int64_t k) {
    double worst = 0;
    for (int64_t a = 0; a < k; a++)
        for (int64_t b = 0; b < k; b++) {
            double s = 0;
            if (rows) for (int64_t t = 0; t < c; t++) s += X[a * c + t] * X[b * c + t];
            else for (int64_t t = 0; t < r; t++) s += X[t * c + a] * X[t * c + b];
            worst = fmax(worst, fabs(s - (a == b)));
        }
    return worst;
}

static void test_svd(void) {
    const int64_t shapes[3][2] = {{12, 30}, {30, 12}, {17, 17}};
    for (int si = 0; si < 3; si++)
        for (int dbl = 0; dbl < 2; dbl++) {
            const int64_t m = shapes[si][0], n = shapes[si][1], k = m < n ? m : n;
            int64_t lw = 0, liw = 0;
            CHECK_OK(dbl ? bl_svd_work_d(m, n, &lw, &liw) : bl_svd_work_f(m, n, &lw, &liw));
            CHECK(lw >= 1 && liw == 8 * k, "svd work sizes %lld / %lld", (long long)lw, (long long)liw);
            double *A0 = malloc(m * n * sizeof(double)), *U = malloc(m * k * sizeof(double)),
                   *Vt = malloc(k * n * sizeof(double)), *S = malloc(k * sizeof(double));
            for (int64_t i = 0; i < m * n; i++) A0[i] = (float)urand();
            int *iwork = malloc(liw * sizeof(int));
            balora_status st;
            if (dbl) {
                double *A = malloc(m * n * sizeof(double)), *work = malloc(lw * sizeof(double));
                memcpy(A, A0, m * n * sizeof(double));
                st = bl_svd_d(m, n, A, S, U, Vt, work, lw, iwork, liw);
                free(A); free(work);
            } else {
                float *A = malloc(m * n * sizeof(float)), *Uf = malloc(m * k * sizeof(float)),
                      *Vf = malloc(k * n * sizeof(float)), *Sf = malloc(k * sizeof(float)), *work = malloc(lw * sizeof(float));
                for (int64_t i = 0; i < m * n; i++) A[i] = (float)A0[i];
                st = bl_svd_f(m, n, A, Sf, Uf, Vf, work, lw, iwork, liw);
                for (int64_t i = 0; i < m * k; i++) U[i] = Uf[i];
                for (int64_t i = 0; i < k * n; i++) Vt[i] = Vf[i];
                for (int64_t i = 0; i < k; i++) S[i] = Sf[i];
                free(A); free(Uf); free(Vf); free(Sf); free(work);
            }
            CHECK(st == BALORA_STATUS_OK, "svd %lld x %lld (%s): %s", (long long)m, (long long)n, dbl ? "d" : "f",
                  balora_last_error());
            const double tol = dbl ? 1e-10 : 2e-4;
            double rec = 0;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    double s = 0;
                    for (int64_t t = 0; t < k; t++) s += U[i * k + t] * S[t] * Vt[t * n + j];
                    rec = fmax(rec, fabs(s - A0[i * n + j]));
                }
            bool sorted = true;
            for (int64_t t = 0; t < k; t++) sorted = sorted && S[t] >= 0 && (t == 0 || S[t] <= S[t - 1]);
            CHECK(rec <= tol, "svd %lld x %lld (%s): |U S Vt - A| = %g", (long long)m, (long long)n, dbl ? "d" : "f", rec);
            CHECK(orth_err(U, m, k, false, k) <= tol, "svd: U columns not orthonormal (%g)", orth_err(U, m, k, false, k));
            CHECK(orth_err(Vt, k, n, true, k) <= tol, "svd: Vt rows not orthonormal (%g)", orth_err(Vt, k, n, true, k));
            CHECK(sorted, "svd %lld x %lld: singular values not descending and >= 0", (long long)m, (long long)n);
            free(A0); free(U); free(Vt); free(S); free(iwork);
        }
}

static void test_eigh(void) {
    const int64_t n = 9, lda = n + 2;
    double *A0 = malloc(n * n * sizeof(double)), *A = malloc(n * lda * sizeof(double)), *w = malloc(n * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++) A0[i * n + j] = A0[j * n + i] = urand();
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < lda; j++) A[i * lda + j] = j >= i && j < n ? A0[i * n + j] : 1e30; /* lower: garbage */
    int64_t lw, liw;
    bl_eigh_work_d(n, &lw, &liw);
    CHECK(lw == 1 + 6 * n + 2 * n * n && liw == 3 + 5 * n, "eigh work sizes %lld / %lld", (long long)lw, (long long)liw);
    double *work = malloc(lw * sizeof(double));
    int *iwork = malloc(liw * sizeof(int));
    CHECK_OK(bl_eigh_d(n, A, lda, w, work, lw, iwork, liw));
    double *E = malloc(n * n * sizeof(double)); /* packed eigenvectors, row i */
    for (int64_t i = 0; i < n; i++) memcpy(E + i * n, A + i * lda, n * sizeof(double));
    double rec = 0;
    for (int64_t a = 0; a < n; a++)
        for (int64_t b = 0; b < n; b++) {
            double s = 0;
            for (int64_t i = 0; i < n; i++) s += w[i] * E[i * n + a] * E[i * n + b];
            rec = fmax(rec, fabs(s - A0[a * n + b]));
        }
    bool asc = true;
    for (int64_t i = 1; i < n; i++) asc = asc && w[i] >= w[i - 1];
    CHECK(rec <= 1e-10, "eigh: |E^T diag(w) E - A| = %g", rec);
    CHECK(orth_err(E, n, n, true, n) <= 1e-10, "eigh: eigenvectors not orthonormal (%g)", orth_err(E, n, n, true, n));
    CHECK(asc, "eigh: eigenvalues not ascending");
    /* errors: short workspace, NaN in the upper triangle, bad stride */
    for (int64_t i = 0; i < n; i++) memcpy(A + i * lda, A0 + i * n, n * sizeof(double));
    CHECK_FAILS(bl_eigh_d(n, A, lda, w, work, lw - 1, iwork, liw), BALORA_STATUS_INVALID, "workspace");
    CHECK_FAILS(bl_eigh_d(n, A, lda, w, work, lw, iwork, liw - 1), BALORA_STATUS_INVALID, "workspace");
    CHECK_FAILS(bl_eigh_d(n, A, n - 1, w, work, lw, iwork, liw), BALORA_STATUS_INVALID, "row stride");
    A[2 * lda + 5] = NAN;
    CHECK_FAILS(bl_eigh_d(n, A, lda, w, work, lw, iwork, liw), BALORA_STATUS_INVALID, "element (2, 5)");
    free(A0); free(A); free(w); free(work); free(iwork); free(E);
}

static void test_orth(void) {
    const int64_t n = 20, q = 6;
    float *X = malloc(n * q * sizeof(float)), *tau = malloc(q * sizeof(float));
    double *X0 = malloc(n * q * sizeof(double));
    for (int64_t i = 0; i < n * q; i++) X0[i] = X[i] = (float)urand();
    int64_t lw = 0;
    CHECK_OK(bl_orth_work_f(n, q, &lw));
    CHECK(lw >= q, "orth work %lld < %lld", (long long)lw, (long long)q);
    float *work = malloc(lw * sizeof(float));
    CHECK_OK(bl_orth_f(n, q, X, tau, work, lw));
    /* column-major: column j of Q at X + j n */
    double ortho = 0, below = 0, span = 0;
    for (int64_t a = 0; a < q; a++)
        for (int64_t b = 0; b < q; b++) {
            double qq = 0, r = 0;
            for (int64_t t = 0; t < n; t++) { qq += (double)X[a * n + t] * X[b * n + t]; r += (double)X[a * n + t] * X0[b * n + t]; }
            ortho = fmax(ortho, fabs(qq - (a == b)));
            if (a > b) below = fmax(below, fabs(r)); /* R = Q^T X0 upper triangular */
        }
    for (int64_t b = 0; b < q; b++) /* Q Q^T x_b = x_b */
        for (int64_t t = 0; t < n; t++) {
            double s = 0;
            for (int64_t a = 0; a < q; a++) {
                double r = 0;
                for (int64_t u = 0; u < n; u++) r += (double)X[a * n + u] * X0[b * n + u];
                s += X[a * n + t] * r;
            }
            span = fmax(span, fabs(s - X0[b * n + t]));
        }
    CHECK(ortho <= 2e-5, "orth: |Q^T Q - I| = %g", ortho);
    CHECK(below <= 2e-5, "orth: Q^T X not upper triangular (%g): columns do not span in order", below);
    CHECK(span <= 2e-4, "orth: Q Q^T X != X (%g)", span);
    CHECK_FAILS(bl_orth_f(q, n, X, tau, work, lw), BALORA_STATUS_INVALID, "more columns than rows");
    CHECK_FAILS(bl_orth_work_f(q, n, &lw), BALORA_STATUS_INVALID, "more columns than rows");
    CHECK_FAILS(bl_orth_f(n, q, X, tau, work, q - 1), BALORA_STATUS_INVALID, "workspace");
    X[7] = INFINITY;
    CHECK_FAILS(bl_orth_f(n, q, X, tau, work, lw), BALORA_STATUS_INVALID, "element 7");
    free(X); free(tau); free(X0); free(work);
}

static void test_svd_errors(void) {
    int64_t lw, liw;
    CHECK_FAILS(bl_svd_work_f(0, 5, &lw, &liw), BALORA_STATUS_INVALID, "shape 0 x 5");
    CHECK_FAILS(bl_svd_work_d(4, (int64_t)1 << 32, &lw, &liw), BALORA_STATUS_INVALID, "2^31");
    CHECK_OK(bl_svd_work_d(4, 3, &lw, &liw));
    double A[12], S[3], U[12], Vt[9], *work = malloc(lw * sizeof(double));
    int iwork[24];
    for (int i = 0; i < 12; i++) A[i] = i + 1;
    CHECK_FAILS(bl_svd_d(4, 3, A, S, NULL, Vt, work, lw, iwork, liw), BALORA_STATUS_INVALID, "missing");
    CHECK_FAILS(bl_svd_d(4, 3, A, S, U, Vt, work, lw, iwork, liw - 1), BALORA_STATUS_INVALID, "workspace");
    CHECK_FAILS(bl_svd_d(4, 3, A, S, U, Vt, NULL, lw, iwork, liw), BALORA_STATUS_INVALID, "workspace");
    A[5] = NAN;
    CHECK_FAILS(bl_svd_d(4, 3, A, S, U, Vt, work, lw, iwork, liw), BALORA_STATUS_INVALID, "element 5");
    float Af[12], Sf[3], Uf[12], Vf[9], wf[512];
    int64_t lwf, liwf;
    CHECK_OK(bl_svd_work_f(4, 3, &lwf, &liwf));
    CHECK(lwf <= 512, "sgesdd work for 4 x 3: %lld", (long long)lwf);
    for (int i = 0; i < 12; i++) Af[i] = (float)i;
    Af[11] = -INFINITY;
    CHECK_FAILS(bl_svd_f(4, 3, Af, Sf, Uf, Vf, wf, lwf, iwork, liwf), BALORA_STATUS_INVALID, "element 11");
    free(work);
}

/* ------------------------------------------------------------------ the seam */


static const char *const g_forbidden[] = {"cblas_", "LAPACKE_", "openblas_", "cblas.h", "lapacke.h"};

static int g_scanned, g_ops_hits;

static void scan_file(const char *path, const char *rel) {
    size_t len = 0;
    char *text = NULL;
    if (bl_file_read(path, &text, &len) != BALORA_STATUS_OK) {
        CHECK(false, "seam: cannot read %s: %s", path, balora_last_error());
        return;
    }
    g_scanned++;
    const bool in_ops = !strncmp(rel, "src/ops/", 8);
    for (size_t f = 0; f < sizeof g_forbidden / sizeof *g_forbidden; f++) {
        const char *hit = strstr(text, g_forbidden[f]);
        if (in_ops) { g_ops_hits += hit != NULL; continue; }
        int line = 1;
        for (const char *p = text; hit && p < hit; p++) line += *p == '\n';
        CHECK(!hit, "seam broken: %s:%d contains '%s'; hint: add the operation to src/ops/ops.h and call that",
              rel, line, g_forbidden[f]);
    }
    free(text);
}

static void test_seam(void) {
    t_scan_sources("src", true, scan_file);
    CHECK(g_scanned >= 50, "seam: scanned only %d source files under %s/src; hint: set BALORA_SOURCE_DIR", g_scanned,
          t_source_dir());
    CHECK(g_ops_hits >= 2, "seam: the scan found no BLAS/LAPACK use in src/ops (%d hits): the scanner is broken",
          g_ops_hits);
}

int main(void) {
    bl_rng_seed(&g_rng, 4242);
    test_products();
    test_svd();
    test_eigh();
    test_orth();
    test_svd_errors();
    test_seam();
    return t_finish();
}
