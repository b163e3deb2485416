/* `balora init --method pissa` end to end against ../shared/golden/<arch>/pissa (PEFT 0.14's PiSSA):
 * for every architecture folder, with the golden adapter's rank, alpha, rsLoRA and targets,
 *   - OUT/residual/model.safetensors holds W_res = golden residual_weights (checkpoint orientation,
 *     GPT-2 Conv1D [in, out]) and every other tensor of the base model unchanged;
 *   - OUT/adapter's s B A equals the golden s B A for every module (products: singular vectors have a
 *     sign ambiguity), its keys are the golden adapter's keys, init_lora_weights is true (PEFT must not
 *     re-run the SVD on load) and the PiSSA origin is in the metadata;
 *   - loading OUT/residual + OUT/adapter gives the base model's logits (logits_base, logits_pissa) and
 *     loss: decoders through `balora forward`, encoders through the library;
 *   - pissa_niter_K (randomized SVD) also reproduces the base logits; bad arguments fail clearly. */
#include "adapters/lora.h"
#include "encoders/encoder.h"
#include "harness.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "method/pissa_model.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *read_all(const bl_st_file *f, const char *name, int64_t *n) {
    const bl_st_tensor *t = bl_st_find(f, name);
    CHECK(t != NULL, "%s: tensor %s present", f->path, name);
    if (!t) return NULL;
    float *p = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    CHECK_OK(bl_st_tensor_to_f32(f, t, p));
    if (n) *n = t->numel;
    return p;
}

/* Compares a tensor of two files by name (same shape required). */
static void compare(const bl_st_file *got, const bl_st_file *want, const char *name, const char *what) {
    const bl_st_tensor *g = bl_st_find(got, name), *w = bl_st_find(want, name);
    CHECK(g && w, "%s: %s present in both", what, name);
    if (!g || !w) return;
    bool same = g->ndim == w->ndim;
    for (int i = 0; same && i < g->ndim; i++) same = g->shape[i] == w->shape[i];
    CHECK(same, "%s: %s has the golden shape", what, name);
    if (!same) return;
    float *a = read_all(got, name, NULL), *b = read_all(want, name, NULL);
    if (a && b) CHECK(t_allclose(name, a, b, g->numel, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s: %s", what, name);
    free(a); free(b);
}

/* s B A of the pair whose A key is akey, [out, in] */
static float *product(const bl_st_file *f, const char *akey, float s, int64_t *out, int64_t *in) {
    char bkey[512];
    snprintf(bkey, sizeof bkey, "%s", akey);
    char *p = strstr(bkey, ".lora_A.");
    if (!p) return NULL;
    p[6] = 'B';
    const bl_st_tensor *ta = bl_st_find(f, akey), *tb = bl_st_find(f, bkey);
    CHECK(ta && tb && ta->ndim == 2 && tb->ndim == 2 && ta->shape[0] == tb->shape[1], "%s: pair %s", f->path, akey);
    if (!ta || !tb || ta->ndim != 2 || tb->ndim != 2 || ta->shape[0] != tb->shape[1]) return NULL;
    int64_t r = ta->shape[0];
    *in = ta->shape[1];
    *out = tb->shape[0];
    float *A = read_all(f, akey, NULL), *B = read_all(f, bkey, NULL);
    float *P = malloc(sizeof(float) * (size_t)(*out * *in));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)*out, (int)*in, (int)r, s, B, (int)r, A, (int)*in, 0.0f, P, (int)*in);
    free(A); free(B);
    return P;
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* The encoders: load OUT/residual + OUT/adapter with the library; logits vs logits_base. */
static void check_encoder_logits(const char *gdir, const char *out) {
    char p[1600];
    bl_encoder e;
    bl_adapter ad;
    memset(&e, 0, sizeof e); memset(&ad, 0, sizeof ad);
    snprintf(p, sizeof p, "%s/residual", out);
    CHECK_OK(bl_enc_load(&e, p, NULL));
    if (t_failures) return;
    snprintf(p, sizeof p, "%s/adapter", out);
    CHECK_OK(bl_lora_load(&ad, &e.mods, p, false));
    bl_st_file io;
    snprintf(p, sizeof p, "%s/io.safetensors", gdir);
    CHECK_OK(bl_st_open(&io, p));
    int64_t ids[32], mask[32], labels[2], NL = e.cfg.num_labels;
    CHECK_OK(bl_st_tensor_to_i64(&io, bl_st_find(&io, "input_ids"), ids));
    CHECK_OK(bl_st_tensor_to_i64(&io, bl_st_find(&io, "attention_mask"), mask));
    CHECK_OK(bl_st_tensor_to_i64(&io, bl_st_find(&io, "labels"), labels));
    bl_enc_run r;
    memset(&r, 0, sizeof r);
    CHECK_OK(bl_enc_run_init(&r, &e, 2, 16));
    bl_enc_batch b = {2, 16, ids, mask, NULL};
    CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_ON));
    float want[16];
    CHECK(NL <= 8, "few labels");
    CHECK_OK(bl_st_read_f32(&io, "logits_base", 2, (int64_t[]){2, NL}, want));
    CHECK(t_allclose("encoder residual + adapter vs logits_base", r.logits, want, 2 * NL, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", out);
    CHECK_OK(bl_st_read_f32(&io, "logits_pissa", 2, (int64_t[]){2, NL}, want));
    CHECK(t_allclose("encoder residual + adapter vs logits_pissa", r.logits, want, 2 * NL, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", out);
    bl_st_close(&io);
    bl_enc_run_free(&r);
    bl_lora_free(&ad);
    bl_enc_free(&e);
}

static void check_decoder_logits(const char *gdir, const char *out, const char *tag) {
    char cmd[8192], res[1300], io_path[1300];
    snprintf(res, sizeof res, "%s/fwd_%s.safetensors", t_tmpdir(), tag);
    snprintf(io_path, sizeof io_path, "%s/io.safetensors", gdir);
    snprintf(cmd, sizeof cmd, "'%s' forward --model '%s/residual' --adapter '%s/adapter' --batch '%s' --out '%s' 2>/dev/null", t_cli(), out, out,
             io_path, res);
    int rc = run(cmd);
    CHECK(rc == 0, "%s exited %d", cmd, rc);
    if (rc) return;
    bl_st_file got, io;
    CHECK_OK(bl_st_open(&got, res));
    CHECK_OK(bl_st_open(&io, io_path));
    int64_t n = 0;
    float *z = read_all(&got, "logits", &n), *wb = read_all(&io, "logits_base", NULL), *wp = read_all(&io, "logits_pissa", NULL);
    float *l = read_all(&got, "loss", NULL), *lb = read_all(&io, "loss_base", NULL);
    if (z && wb && wp && l && lb) {
        CHECK(t_allclose("residual + adapter vs logits_base", z, wb, n, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", tag);
        CHECK(t_allclose("residual + adapter vs logits_pissa", z, wp, n, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", tag);
        CHECK(t_allclose("loss vs loss_base", l, lb, 1, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", tag);
    }
    free(z); free(wb); free(wp); free(l); free(lb);
    bl_st_close(&got);
    bl_st_close(&io);
}

static void check_arch(const char *shared, const char *arch, bool encoder) {
    char gdir[1024], path[1600], out[1300], cmd[8192], targets[512] = "";
    snprintf(gdir, sizeof gdir, "%s/golden/%s", shared, arch);
    snprintf(path, sizeof path, "%s/pissa/adapter_config.json", gdir);
    cJSON *cfg = NULL;
    CHECK_OK(bl_json_load(path, &cfg));
    if (!cfg) return;
    int64_t r = 0;
    double alpha = 0;
    bool rslora = false;
    CHECK_OK(bl_json_int(cfg, path, "r", true, &r));
    CHECK_OK(bl_json_num(cfg, path, "lora_alpha", true, &alpha));
    CHECK_OK(bl_json_bool(cfg, path, "use_rslora", false, &rslora));
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(cfg, "target_modules"), *it;
    cJSON_ArrayForEach(it, tm) {
        if (targets[0]) strcat(targets, ",");
        strncat(targets, it->valuestring, sizeof targets - strlen(targets) - 2);
    }
    cJSON_Delete(cfg);
    const float s = (float)(rslora ? alpha / sqrt((double)r) : alpha / (double)r);

    snprintf(out, sizeof out, "%s/%s", t_tmpdir(), arch);
    snprintf(cmd, sizeof cmd, "'%s' init --method pissa --model '%s' --targets %s --rank %lld --alpha %g %s --out '%s' 2>/dev/null",
             t_cli(), gdir, targets, (long long)r, alpha, rslora ? "--rslora" : "", out);
    int rc = run(cmd);
    CHECK(rc == 0, "%s exited %d", cmd, rc);
    if (rc) return;

    /* residual folder: W_res for the targets, the base tensors elsewhere, config + tokenizer copied */
    bl_st_file got, want, base;
    snprintf(path, sizeof path, "%s/residual/model.safetensors", out);
    CHECK_OK(bl_st_open(&got, path));
    snprintf(path, sizeof path, "%s/pissa/residual_weights.safetensors", gdir);
    CHECK_OK(bl_st_open(&want, path));
    snprintf(path, sizeof path, "%s/model.safetensors", gdir);
    CHECK_OK(bl_st_open(&base, path));
    for (int i = 0; i < want.n; i++) compare(&got, &want, want.tensors[i].name, arch);
    int copied = 0;
    for (int i = 0; i < base.n; i++) {
        if (bl_st_find(&want, base.tensors[i].name)) continue;
        if (!bl_st_find(&got, base.tensors[i].name)) continue; /* e.g. a tied lm_head stored once */
        compare(&got, &base, base.tensors[i].name, arch);
        copied++;
    }
    CHECK(copied > 0 && got.n >= base.n - 1, "%s: %d other tensors copied (%d of %d)", arch, copied, got.n, base.n);
    snprintf(path, sizeof path, "%s/residual/config.json", out);
    CHECK(bl_file_exists(path), "%s present", path);
    bl_st_close(&got); bl_st_close(&want); bl_st_close(&base);

    /* adapter: same keys, s B A products equal, init_lora_weights true, metadata */
    snprintf(path, sizeof path, "%s/adapter/adapter_model.safetensors", out);
    CHECK_OK(bl_st_open(&got, path));
    snprintf(path, sizeof path, "%s/pissa/adapter_model.safetensors", gdir);
    CHECK_OK(bl_st_open(&want, path));
    CHECK(got.n == want.n, "%s: %d adapter tensors, golden %d", arch, got.n, want.n);
    const char *meta = bl_st_meta(&got, BL_PISSA_META_KEY);
    CHECK(meta && !strcmp(meta, "pissa"), "%s: metadata %s = pissa (got %s)", arch, BL_PISSA_META_KEY, meta ? meta : "none");
    int pairs = 0;
    for (int i = 0; i < want.n; i++) {
        const char *k = want.tensors[i].name;
        CHECK(bl_st_find(&got, k) != NULL, "%s: adapter key %s", arch, k);
        if (!strstr(k, ".lora_A.")) {
            if (!strstr(k, ".lora_B.")) compare(&got, &want, k, arch); /* modules_to_save heads */
            continue;
        }
        int64_t o1 = 0, i1 = 0, o2 = 0, i2 = 0;
        float *pg = product(&got, k, s, &o1, &i1), *pw = product(&want, k, s, &o2, &i2);
        if (pg && pw && o1 == o2 && i1 == i2) {
            CHECK(t_allclose(k, pg, pw, o1 * i1, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s: s B A of %s", arch, k);
            pairs++;
        } else CHECK(0, "%s: %s product shapes", arch, k);
        free(pg); free(pw);
    }
    CHECK(pairs > 0, "%s: compared %d modules", arch, pairs);
    bl_st_close(&got); bl_st_close(&want);
    snprintf(path, sizeof path, "%s/adapter/adapter_config.json", out);
    CHECK_OK(bl_json_load(path, &cfg));
    if (cfg) {
        CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "init_lora_weights")), "%s: init_lora_weights true", path);
        cJSON_Delete(cfg);
    }

    if (encoder) check_encoder_logits(gdir, out);
    else check_decoder_logits(gdir, out, arch);
    printf("ok %s: residual, %d s B A products, logits of residual + adapter == base\n", arch, pairs);
}

int main(void) {
    const char *shared = t_require_shared();
    const char *dec[] = {"gpt2", "gpt2_all", "gpt2_cls", "llama", "mistral", "qwen2"};
    const char *enc[] = {"bert", "roberta", "deberta_v3"};
    for (size_t i = 0; i < sizeof dec / sizeof *dec; i++) check_arch(shared, dec[i], false);
    for (size_t i = 0; i < sizeof enc / sizeof *enc; i++) check_arch(shared, enc[i], true);

    /* randomized SVD: a different adapter, still the base model's output at step 0 */
    char gdir[1024], out[1300], cmd[8192], path[1600];
    snprintf(gdir, sizeof gdir, "%s/golden/llama", shared);
    snprintf(out, sizeof out, "%s/llama_niter", t_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s' init --method pissa_niter_2 --model '%s' --targets q_proj,v_proj,down_proj --rank 3 --alpha 6 --out '%s' 2>/dev/null",
             t_cli(), gdir, out);
    int rc = run(cmd);
    CHECK(rc == 0, "%s exited %d", cmd, rc);
    if (!rc) {
        check_decoder_logits(gdir, out, "llama_niter");
        bl_st_file f;
        snprintf(path, sizeof path, "%s/adapter/adapter_model.safetensors", out);
        CHECK_OK(bl_st_open(&f, path));
        const char *meta = bl_st_meta(&f, BL_PISSA_META_KEY);
        CHECK(meta && !strcmp(meta, "pissa_niter_2"), "metadata records pissa_niter_2 (got %s)", meta ? meta : "none");
        bl_st_close(&f);
        printf("ok llama pissa_niter_2: residual + adapter == base\n");
    }
    /* errors: usage (2) and runtime (1), never a crash */
    snprintf(out, sizeof out, "%s/bad", t_tmpdir());
    struct { const char *args; int want; } bad[] = {
        {"--method pissa --model '%s'", 2},                                       /* no --out */
        {"--method lora --model '%s' --out '%s'", 1},                             /* not PiSSA */
        {"--method pissa_niter_x --model '%s' --out '%s'", 1},
        {"--method pissa --model '%s' --out '%s' --rank 0", 2},
        {"--method pissa --model '%s' --out '%s' --rank 1000", 1},                /* rank above min(out, in) */
        {"--method pissa --model '%s' --out '%s' --targets nothing_here", 1},
        {"--method pissa --model '%s/none' --out '%s'", 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[4096];
        snprintf(args, sizeof args, bad[i].args, gdir, out);
        snprintf(cmd, sizeof cmd, "'%s' init %s 2>/dev/null", t_cli(), args);
        rc = run(cmd);
        CHECK(rc == bad[i].want, "%s: exit %d, want %d", cmd, rc, bad[i].want);
    }
    return t_finish();
}
