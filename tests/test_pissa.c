/* PiSSA against ../shared/golden/<arch>/pissa/ (PEFT's PiSSA initialisation) for every
 * architecture folder: s B A products and residual weights (not raw factors: singular
 * vectors have a sign ambiguity); W_res + s B A == W; the randomized SVD approaches the
 * exact top-r subspace; the conversion to a plain LoRA gives s (B A - B0 A0). */
#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "method/pissa.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* P = s * B A, B [out, r], A [r, in] -> P [out, in] */
static void product(float *P, const float *B, const float *A, int64_t out, int64_t in, int64_t r, float s) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)out, (int)in, (int)r, s, B, (int)r, A, (int)in, 0.0f, P,
                (int)in);
}

static double rel_err(const float *got, const float *want, int64_t n) {
    double d = 0, w = 0;
    for (int64_t i = 0; i < n; i++) { d += ((double)got[i] - want[i]) * ((double)got[i] - want[i]); w += (double)want[i] * want[i]; }
    return sqrt(d / (w > 0 ? w : 1));
}

/* Every targeted module of one architecture folder. Returns the number of modules checked. */
static int check_arch(const char *shared, const char *arch) {
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/golden/%s", shared, arch);
    snprintf(path, sizeof path, "%s/pissa/adapter_config.json", dir);
    if (!bl_file_exists(path)) return 0;
    cJSON *cfg = NULL;
    CHECK_OK(bl_json_load(path, &cfg));
    if (!cfg) return 0;
    int64_t r = 0;
    double alpha = 0;
    bool rslora = false, fifo = false;
    CHECK_OK(bl_json_int(cfg, path, "r", true, &r));
    CHECK_OK(bl_json_num(cfg, path, "lora_alpha", true, &alpha));
    CHECK_OK(bl_json_bool(cfg, path, "use_rslora", false, &rslora));
    CHECK_OK(bl_json_bool(cfg, path, "fan_in_fan_out", false, &fifo));
    cJSON_Delete(cfg);
    const float s = (float)(rslora ? alpha / sqrt((double)r) : alpha / (double)r);

    bl_st_file model, res, ad;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(bl_st_open(&model, path));
    snprintf(path, sizeof path, "%s/pissa/residual_weights.safetensors", dir);
    CHECK_OK(bl_st_open(&res, path));
    snprintf(path, sizeof path, "%s/pissa/adapter_model.safetensors", dir);
    CHECK_OK(bl_st_open(&ad, path));
    int checked = 0;
    for (int ti = 0; ti < res.n; ti++) {
        const bl_st_tensor *rt = &res.tensors[ti];
        const size_t nl = strlen(rt->name);
        if (nl < 8 || strcmp(rt->name + nl - 7, ".weight") || rt->ndim != 2) continue;
        const bl_st_tensor *wt = bl_st_find(&model, rt->name);
        CHECK(wt && wt->ndim == 2 && wt->shape[0] == rt->shape[0] && wt->shape[1] == rt->shape[1],
              "%s: base weight %s missing or of another shape", arch, rt->name);
        if (!wt) continue;
        const int64_t d0 = rt->shape[0], d1 = rt->shape[1], out = fifo ? d1 : d0, in = fifo ? d0 : d1, n = d0 * d1;
        char ka[600], kb[600];
        snprintf(ka, sizeof ka, "base_model.model.%.*s.lora_A.weight", (int)(nl - 7), rt->name);
        snprintf(kb, sizeof kb, "base_model.model.%.*s.lora_B.weight", (int)(nl - 7), rt->name);
        float *W = malloc((size_t)n * sizeof(float)), *Wres_g = malloc((size_t)n * sizeof(float));
        float *Wm = malloc((size_t)n * sizeof(float)), *Pg = malloc((size_t)n * sizeof(float));
        float *Pm = malloc((size_t)n * sizeof(float)), *chk = malloc((size_t)n * sizeof(float));
        float *Ag = malloc((size_t)(r * in) * sizeof(float)), *Bg = malloc((size_t)(out * r) * sizeof(float));
        float *Am = malloc((size_t)(r * in) * sizeof(float)), *Bm = malloc((size_t)(out * r) * sizeof(float));
        const int64_t sa[2] = {r, in}, sb[2] = {out, r};
        CHECK_OK(bl_st_tensor_to_f32(&model, wt, W));
        CHECK_OK(bl_st_tensor_to_f32(&res, rt, Wres_g));
        CHECK_OK(bl_st_read_f32(&ad, ka, 2, sa, Ag));
        CHECK_OK(bl_st_read_f32(&ad, kb, 2, sb, Bg));

        memcpy(Wm, W, (size_t)n * sizeof(float));
        CHECK_OK(bl_pissa_init(Wm, out, in, fifo, r, s, -1, 0, NULL, Am, Bm));
        char what[700];
        product(Pg, Bg, Ag, out, in, r, s);
        product(Pm, Bm, Am, out, in, r, s);
        snprintf(what, sizeof what, "%s %s: s B A", arch, rt->name);
        t_allclose(what, Pm, Pg, (long)n, T_GOLDEN_ATOL, T_GOLDEN_RTOL);
        snprintf(what, sizeof what, "%s %s: residual", arch, rt->name);
        t_allclose(what, Wm, Wres_g, (long)n, T_GOLDEN_ATOL, T_GOLDEN_RTOL);
        /* W_res + s B A == W, in the model's own orientation */
        for (int64_t i = 0; i < d0; i++)
            for (int64_t j = 0; j < d1; j++) chk[i * d1 + j] = Wm[i * d1 + j] + (fifo ? Pm[j * in + i] : Pm[i * d1 + j]);
        snprintf(what, sizeof what, "%s %s: W_res + s B A == W", arch, rt->name);
        t_allclose(what, chk, W, (long)n, 1e-6, 1e-5);
        /* the factors themselves have PiSSA's shape: A A^T = diag(S / s) (rows orthogonal) */
        double off = 0;
        for (int64_t a = 0; a < r; a++)
            for (int64_t b = 0; b < a; b++) {
                double d = 0;
                for (int64_t i = 0; i < in; i++) d += (double)Am[a * in + i] * Am[b * in + i];
                off = fmax(off, fabs(d));
            }
        CHECK(off < 1e-4, "%s %s: rows of A not orthogonal (%g)", arch, rt->name, off);
        checked++;
        free(W); free(Wres_g); free(Wm); free(Pg); free(Pm); free(chk); free(Ag); free(Bg); free(Am); free(Bm);
    }
    CHECK(checked == res.n, "%s: %d of %d residual tensors checked", arch, checked, res.n);
    bl_st_close(&model);
    bl_st_close(&res);
    bl_st_close(&ad);
    return checked;
}

static void test_golden(const char *shared) {
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/manifest.json", shared);
    cJSON *man = NULL;
    CHECK_OK(bl_json_load(path, &man));
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(man, "archs");
    CHECK(cJSON_IsObject(archs), "manifest: archs");
    int n_arch = 0, n_mod = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, archs) {
        int k = check_arch(shared, a->string);
        if (k > 0) n_arch++;
        n_mod += k;
    }
    printf("PiSSA golden: %d architectures, %d modules\n", n_arch, n_mod);
    CHECK(n_arch >= 9, "expected every architecture folder with pissa/ (got %d)", n_arch);
    cJSON_Delete(man);
}

/* A [m, n] matrix with singular values 10, 9, ..., (a clear gap after r), then a small tail. */
static void make_spectrum(bl_rng *rng, float *W, int64_t m, int64_t n, int64_t r) {
    memset(W, 0, (size_t)(m * n) * sizeof(float));
    const int64_t mn = m < n ? m : n;
    float *x = malloc((size_t)m * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < mn; i++) {
        double sig = i < r ? 10.0 - (double)i * 6.0 / (double)r : 0.5 * pow(0.95, (double)(i - r));
        double nx = 0, ny = 0;
        for (int64_t j = 0; j < m; j++) { x[j] = bl_rng_normal(rng); nx += x[j] * x[j]; }
        for (int64_t j = 0; j < n; j++) { y[j] = bl_rng_normal(rng); ny += y[j] * y[j]; }
        float c = (float)(sig / sqrt(nx * ny));
        for (int64_t a = 0; a < m; a++)
            for (int64_t b = 0; b < n; b++) W[a * n + b] += c * x[a] * y[b];
    }
    free(x);
    free(y);
}

static void test_randomized(void) {
    const int64_t m = 96, n = 72, r = 8;
    const float s = 2.0f;
    bl_rng rng;
    bl_rng_seed(&rng, 7);
    float *W = malloc((size_t)(m * n) * sizeof(float)), *Wt = malloc((size_t)(m * n) * sizeof(float));
    float *Wx = malloc((size_t)(m * n) * sizeof(float)), *Pex = malloc((size_t)(m * n) * sizeof(float));
    float *P = malloc((size_t)(m * n) * sizeof(float)), *A = malloc((size_t)(r * n) * sizeof(float));
    float *B = malloc((size_t)(m * r) * sizeof(float)), *A2 = malloc((size_t)(r * n) * sizeof(float));
    float *B2 = malloc((size_t)(m * r) * sizeof(float));
    make_spectrum(&rng, W, m, n, r);
    /* exact reference */
    memcpy(Wx, W, (size_t)(m * n) * sizeof(float));
    CHECK_OK(bl_pissa_init(Wx, m, n, false, r, s, -1, 0, NULL, A, B));
    product(Pex, B, A, m, n, r, s);
    double err_prev = 1e30, err0 = 0, err_last = 0;
    const int iters[] = {0, 1, 2, 4, 8};
    for (int k = 0; k < 5; k++) {
        memcpy(Wx, W, (size_t)(m * n) * sizeof(float));
        bl_rng_seed(&rng, 11);
        CHECK_OK(bl_pissa_init(Wx, m, n, false, r, s, iters[k], 0, &rng, A, B));
        product(P, B, A, m, n, r, s);
        double e = rel_err(P, Pex, m * n);
        printf("randomized PiSSA, niter %d: relative error of s B A vs exact %.3g\n", iters[k], e);
        CHECK(e <= err_prev * 1.01 + 1e-6, "niter %d: error %g grew from %g", iters[k], e, err_prev);
        if (k == 0) err0 = e;
        err_prev = e;
        err_last = e;
        /* W_res + s B A == W for the randomized factors too */
        for (int64_t i = 0; i < m * n; i++) Wx[i] += P[i];
        t_allclose("randomized: W_res + s B A == W", Wx, W, (long)(m * n), 1e-5, 1e-5);
    }
    CHECK(err_last < 1e-4, "niter 8 must reach the exact top-r subspace (error %g)", err_last);
    CHECK(err0 > 10 * err_last, "power iterations must help (niter 0: %g, niter 8: %g)", err0, err_last);
    /* oversampling helps at a fixed niter */
    memcpy(Wx, W, (size_t)(m * n) * sizeof(float));
    bl_rng_seed(&rng, 11);
    CHECK_OK(bl_pissa_init(Wx, m, n, false, r, s, 1, 8, &rng, A, B));
    product(P, B, A, m, n, r, s);
    double e_os = rel_err(P, Pex, m * n);
    memcpy(Wx, W, (size_t)(m * n) * sizeof(float));
    bl_rng_seed(&rng, 11);
    CHECK_OK(bl_pissa_init(Wx, m, n, false, r, s, 1, 0, &rng, A, B));
    product(P, B, A, m, n, r, s);
    CHECK(e_os < rel_err(P, Pex, m * n), "oversampling 8 (%g) must beat none", e_os);
    /* same seed, same factors */
    memcpy(Wx, W, (size_t)(m * n) * sizeof(float));
    bl_rng_seed(&rng, 11);
    CHECK_OK(bl_pissa_init(Wx, m, n, false, r, s, 2, 0, &rng, A2, B2));
    memcpy(Wx, W, (size_t)(m * n) * sizeof(float));
    bl_rng_seed(&rng, 11);
    CHECK_OK(bl_pissa_init(Wx, m, n, false, r, s, 2, 0, &rng, A, B));
    CHECK(!memcmp(A, A2, (size_t)(r * n) * sizeof(float)) && !memcmp(B, B2, (size_t)(m * r) * sizeof(float)),
          "randomized PiSSA must be deterministic for a seed");
    /* the [in, out] layout (Conv1D) gives the same factors and the transposed residual */
    for (int mode = 0; mode < 2; mode++) {
        int niter = mode == 0 ? -1 : 3;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) Wt[j * m + i] = W[i * n + j];
        memcpy(Wx, W, (size_t)(m * n) * sizeof(float));
        bl_rng_seed(&rng, 5);
        CHECK_OK(bl_pissa_init(Wx, m, n, false, r, s, niter, 0, &rng, A, B));
        bl_rng_seed(&rng, 5);
        CHECK_OK(bl_pissa_init(Wt, m, n, true, r, s, niter, 0, &rng, A2, B2));
        product(P, B, A, m, n, r, s);
        product(Pex, B2, A2, m, n, r, s);
        t_allclose("[in, out] layout: same s B A", Pex, P, (long)(m * n), 1e-5, 1e-4);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) P[i * n + j] = Wt[j * m + i];
        t_allclose("[in, out] layout: transposed residual", P, Wx, (long)(m * n), 1e-5, 1e-4);
    }
    free(W); free(Wt); free(Wx); free(Pex); free(P); free(A); free(B); free(A2); free(B2);
}

static void test_conversion(void) {
    enum { OUT = 7, IN = 5, R = 3 };
    bl_rng rng;
    bl_rng_seed(&rng, 3);
    float A[R * IN], B[OUT * R], A0[R * IN], B0[OUT * R], A2[2 * R * IN], B2[OUT * 2 * R];
    for (int i = 0; i < R * IN; i++) { A[i] = bl_rng_normal(&rng); A0[i] = bl_rng_normal(&rng); }
    for (int i = 0; i < OUT * R; i++) { B[i] = bl_rng_normal(&rng); B0[i] = bl_rng_normal(&rng); }
    CHECK_OK(bl_pissa_to_lora(OUT, IN, R, A, B, A0, B0, A2, B2));
    for (int rs = 0; rs < 2; rs++) {
        const double alpha = 6.0, alpha2 = bl_pissa_lora_alpha(alpha, rs);
        const float s = (float)(rs ? alpha / sqrt(R) : alpha / R), s2 = (float)(rs ? alpha2 / sqrt(2.0 * R) : alpha2 / (2.0 * R));
        CHECK(fabsf(s - s2) < 1e-6f, "converted scaling %g != %g", s2, s);
        float want[OUT * IN], t[OUT * IN], got[OUT * IN];
        product(want, B, A, OUT, IN, R, s);
        product(t, B0, A0, OUT, IN, R, s);
        for (int i = 0; i < OUT * IN; i++) want[i] -= t[i];
        product(got, B2, A2, OUT, IN, 2 * R, s2);
        t_allclose(rs ? "conversion (rsLoRA): s' B' A' == s (B A - B0 A0)" : "conversion: s' B' A' == s (B A - B0 A0)", got,
                   want, OUT * IN, 1e-5, 1e-5);
    }
    CHECK_FAILS(bl_pissa_to_lora(OUT, IN, R, A, B, NULL, B0, A2, B2), BALORA_STATUS_INVALID, "A0, B0");
}

static void test_errors(void) {
    int k = 0;
    CHECK_OK(bl_pissa_parse_init("pissa", &k)); CHECK(k == -1, "pissa -> exact");
    CHECK_OK(bl_pissa_parse_init("pissa_niter_16", &k)); CHECK(k == 16, "pissa_niter_16");
    CHECK_OK(bl_pissa_parse_init("pissa_niter_0", &k)); CHECK(k == 0, "pissa_niter_0");
    CHECK_FAILS(bl_pissa_parse_init("pissa_niter_", &k), BALORA_STATUS_INVALID, "power iterations");
    CHECK_FAILS(bl_pissa_parse_init("pissa_niter_-2", &k), BALORA_STATUS_INVALID, "power iterations");
    CHECK_FAILS(bl_pissa_parse_init("pissa_niter_4x", &k), BALORA_STATUS_INVALID, "power iterations");
    CHECK_FAILS(bl_pissa_parse_init("olora", &k), BALORA_STATUS_INVALID, "not a PiSSA");
    float W[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, A[12], B[12];
    CHECK_FAILS(bl_pissa_init(W, 3, 4, false, 4, 1.0f, -1, 0, NULL, A, B), BALORA_STATUS_INVALID, "1 <= r <= 3");
    CHECK_FAILS(bl_pissa_init(W, 3, 4, false, 2, 0.0f, -1, 0, NULL, A, B), BALORA_STATUS_INVALID, "scaling");
    CHECK_FAILS(bl_pissa_init(W, 3, 4, false, 2, 1.0f, 2, 0, NULL, A, B), BALORA_STATUS_INVALID, "seeded RNG");
    W[5] = NAN;
    CHECK_FAILS(bl_pissa_init(W, 3, 4, false, 2, 1.0f, -1, 0, NULL, A, B), BALORA_STATUS_INVALID, "element 5");
    CHECK(isnan(W[5]) && W[4] == 5, "a failed init leaves W untouched");
}

int main(void) {
    const char *shared = t_shared_dir();
    if (shared) test_golden(shared);
    else printf("note: ../shared not found: golden PiSSA comparisons skipped\n");
    test_randomized();
    test_conversion();
    test_errors();
    return t_finish();
}
