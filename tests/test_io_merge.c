/* balora merge at the library level: W_merged - W == s B A on the golden adapters (checked
 * with an independent double-precision reference written here), Conv1D orientation,
 * rsLoRA, modules_to_save, rank_pattern / alpha_pattern, dtype handling, sharded input,
 * and every strict error (wrong base, shape mismatch, DoRA, incomplete pair). */
#include "harness.h"
#include "io/hf.h"
#include "io/merge.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *g_shared;

/* Reference: base tensor in float32 (exact up-cast), plus the adapter's delta in double. */
typedef struct ref_adapter {
    bl_st_file f;
    cJSON *cfg;
    double alpha;
    int64_t r;
    bool rslora, fifo;
} ref_adapter;

static void ref_open(ref_adapter *ra, const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    CHECK_OK(bl_st_open(&ra->f, p));
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    CHECK_OK(bl_json_load(p, &ra->cfg));
    ra->alpha = cJSON_GetObjectItem(ra->cfg, "lora_alpha")->valuedouble;
    ra->r = (int64_t)cJSON_GetObjectItem(ra->cfg, "r")->valuedouble;
    ra->rslora = cJSON_IsTrue(cJSON_GetObjectItem(ra->cfg, "use_rslora"));
    ra->fifo = cJSON_IsTrue(cJSON_GetObjectItem(ra->cfg, "fan_in_fan_out"));
}

static void ref_close(ref_adapter *ra) { bl_st_close(&ra->f); cJSON_Delete(ra->cfg); }

static float *to_f32(const bl_st_file *f, const bl_st_tensor *t) {
    float *v = malloc((size_t)t->numel * sizeof *v + 4);
    CHECK_OK(bl_st_tensor_to_f32(f, t, v));
    return v;
}

/* want[] = base + s * B A (transposed when fan_in_fan_out), in double, for base tensor `name`;
 * returns 1 if the adapter has a pair for it, 2 if it replaces it, 0 otherwise. */
static int ref_expected(const ref_adapter *ra, const char *name, const float *base, int64_t rows, int64_t cols,
                        double scale_override, float *want, double *max_delta) {
    char ka[600], kb[600], kf[600];
    size_t n = strlen(name);
    snprintf(kf, sizeof kf, "base_model.model.%s", name);
    const bl_st_tensor *full = bl_st_find(&ra->f, kf);
    if (full) {
        float *v = to_f32(&ra->f, full);
        memcpy(want, v, (size_t)full->numel * sizeof *want);
        free(v);
        return 2;
    }
    if (n < 7 || strcmp(name + n - 7, ".weight")) return 0;
    snprintf(ka, sizeof ka, "base_model.model.%.*s.lora_A.weight", (int)(n - 7), name);
    snprintf(kb, sizeof kb, "base_model.model.%.*s.lora_B.weight", (int)(n - 7), name);
    const bl_st_tensor *ta = bl_st_find(&ra->f, ka), *tb = bl_st_find(&ra->f, kb);
    if (!ta || !tb) return 0;
    float *A = to_f32(&ra->f, ta), *B = to_f32(&ra->f, tb);
    int64_t r = ta->shape[0], in = ta->shape[1], out = tb->shape[0];
    double s = scale_override > 0 ? scale_override : ra->rslora ? ra->alpha / sqrt((double)r) : ra->alpha / (double)r;
    CHECK(rows * cols == in * out, "%s: %lld x %lld vs %lld x %lld", name, (long long)rows, (long long)cols, (long long)out, (long long)in);
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++) {
            double d = 0;
            for (int64_t k = 0; k < r; k++) d += (double)B[o * r + k] * A[k * in + i];
            d *= s;
            int64_t idx = ra->fifo ? i * out + o : o * in + i; /* Conv1D weight is [in, out] */
            want[idx] = (float)((double)base[idx] + d);
            if (fabs(d) > *max_delta) *max_delta = fabs(d);
        }
    free(A); free(B);
    return 1;
}

/* Merge golden/<name> with its lora/ adapter and check every tensor of the result. */
static void check_golden_merge(const char *name, int dtype, double atol, double rtol) {
    char model[1024], adapter[1024], out[1024];
    snprintf(model, sizeof model, "%s/golden/%s", g_shared, name);
    snprintf(adapter, sizeof adapter, "%s/golden/%s/lora", g_shared, name);
    snprintf(out, sizeof out, "%s/%s_merged_%d", t_tmpdir(), name, dtype);
    bl_merge_options opt = {.out_dtype = dtype};
    bl_merge_report rep;
    CHECK_OK(bl_merge_adapter(model, adapter, out, &opt, &rep));
    bl_hf_folder base, merged;
    CHECK_OK(bl_hf_open(&base, model));
    CHECK_OK(bl_hf_open(&merged, out)); /* round trip: a valid model folder */
    ref_adapter ra;
    ref_open(&ra, adapter);
    int n_pairs = 0, n_full = 0;
    double max_delta = 0;
    CHECK(merged.n_files == 1 && merged.files[0].n == base.files[0].n, "%s: tensor count", name);
    for (int i = 0; i < base.files[0].n; i++) {
        const bl_st_tensor *bt = &base.files[0].tensors[i];
        const bl_st_tensor *mt = bl_st_find(&merged.files[0], bt->name);
        CHECK(mt != NULL, "%s: %s missing from merged", name, bt->name);
        if (!mt) continue;
        CHECK(mt->dtype == (dtype >= 0 ? (bl_dtype)dtype : bt->dtype), "%s: %s dtype %s", name, bt->name, bl_dtype_name(mt->dtype));
        float *w = to_f32(&base.files[0], bt), *got = to_f32(&merged.files[0], mt);
        float *want = malloc((size_t)bt->numel * sizeof *want + 4);
        memcpy(want, w, (size_t)bt->numel * sizeof *want);
        int64_t rows = bt->ndim == 2 ? bt->shape[0] : 1, cols = bt->ndim == 2 ? bt->shape[1] : bt->numel;
        int kind = ref_expected(&ra, bt->name, w, rows, cols, 0, want, &max_delta);
        n_pairs += kind == 1;
        n_full += kind == 2;
        char what[600];
        snprintf(what, sizeof what, "%s merged %s", name, bt->name);
        t_allclose(what, got, want, (long)bt->numel, atol, rtol);
        free(w); free(got); free(want);
    }
    CHECK(n_pairs == rep.n_merged && n_pairs > 0, "%s: %d pairs checked, %d merged", name, n_pairs, rep.n_merged);
    CHECK(n_full == rep.n_replaced, "%s: %d replaced checked, %d reported", name, n_full, rep.n_replaced);
    CHECK(max_delta > 1e-4, "%s: the adapter's update is too small to test (%g)", name, max_delta);
    const cJSON *td = cJSON_GetObjectItem(merged.config, "torch_dtype");
    if (dtype == BL_DTYPE_F32) CHECK(cJSON_IsString(td) && !strcmp(td->valuestring, "float32"), "%s: torch_dtype", name);
    ref_close(&ra);
    bl_hf_close(&base);
    bl_hf_close(&merged);
}

/* A synthetic adapter on the golden llama base. */
static void write_adapter(const char *dir, const char *config, int n, const char **names, const int64_t (*shapes)[2],
                          float **data) {
    CHECK_OK(bl_mkdir_p(dir));
    char p[1024];
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    CHECK_OK(bl_file_write_atomic(p, config, strlen(config)));
    bl_st_writer w;
    bl_st_writer_init(&w);
    for (int i = 0; i < n; i++) CHECK_OK(bl_st_writer_add(&w, names[i], BL_DTYPE_F32, 2, shapes[i], data[i]));
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    CHECK_OK(bl_st_writer_save(&w, p));
    bl_st_writer_free(&w);
}

static void fill(float *v, int64_t n, float k) { for (int64_t i = 0; i < n; i++) v[i] = k * (float)sin(0.37 * (double)i + k); }

static const char *CFG_FMT = "{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,\"use_rslora\":false,\"use_dora\":%s,"
                             "\"fan_in_fan_out\":false,\"target_modules\":[\"q_proj\"],\"rank_pattern\":%s,\"alpha_pattern\":%s}";

static void check_patterns_and_errors(void) {
    char llama[1024], dir[1024], out[1024], cfg[1024];
    snprintf(llama, sizeof llama, "%s/golden/llama", g_shared);
    float a2[2 * 64], b2[64 * 2], a4[4 * 64], b4[64 * 4], bad_b[48 * 4];
    fill(a2, 2 * 64, 0.5f); fill(b2, 64 * 2, 0.3f); fill(a4, 4 * 64, 0.2f); fill(b4, 64 * 4, 0.7f); fill(bad_b, 48 * 4, 0.1f);
    const char *names[] = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                           "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                           "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight",
                           "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"};
    /* PEFT 0.11: rank_pattern's keys, then alpha_pattern's, first match is the module's key for both.
     * Layer 1 matches "layers.1.self_attn.q_proj" first: r 2, alpha 32; layer 0 matches "q_proj":
     * r 2, alpha 8 (alpha_pattern has no "q_proj") */
    const int64_t shp[4][2] = {{2, 64}, {64, 2}, {2, 64}, {64, 2}};
    float *dat[4] = {a2, b2, a2, b2};
    snprintf(dir, sizeof dir, "%s/pat", t_tmpdir());
    snprintf(cfg, sizeof cfg, CFG_FMT, "false", "{\"layers.1.self_attn.q_proj\": 2, \"q_proj\": 2}", "{\"layers.1.self_attn.q_proj\": 32}");
    write_adapter(dir, cfg, 4, names, shp, dat);
    snprintf(out, sizeof out, "%s/pat_out", t_tmpdir());
    bl_merge_options f32 = {.out_dtype = BL_DTYPE_F32};
    CHECK_OK(bl_merge_adapter(llama, dir, out, &f32, NULL));
    bl_hf_folder base, merged;
    CHECK_OK(bl_hf_open(&base, llama));
    CHECK_OK(bl_hf_open(&merged, out));
    ref_adapter ra;
    ref_open(&ra, dir);
    for (int layer = 0; layer < 2; layer++) {
        char nm[128];
        snprintf(nm, sizeof nm, "model.layers.%d.self_attn.q_proj.weight", layer);
        float w[64 * 64], got[64 * 64], want[64 * 64];
        double md = 0;
        CHECK_OK(bl_hf_read_f32(&base, nm, NULL, 2, (int64_t[]){64, 64}, w));
        CHECK_OK(bl_hf_read_f32(&merged, nm, NULL, 2, (int64_t[]){64, 64}, got));
        ref_expected(&ra, nm, w, 64, 64, layer == 0 ? 8.0 / 2 : 32.0 / 2, want, &md);
        t_allclose(nm, got, want, 64 * 64, 1e-6, 1e-6);
    }
    ref_close(&ra);
    bl_hf_close(&base);
    bl_hf_close(&merged);

    /* rank that disagrees with the config (no rank_pattern) */
    snprintf(cfg, sizeof cfg, CFG_FMT, "false", "{}", "{}");
    snprintf(dir, sizeof dir, "%s/rank", t_tmpdir());
    write_adapter(dir, cfg, 2, names, shp, dat);
    CHECK_FAILS(bl_merge_adapter(llama, dir, out, NULL, NULL), BALORA_STATUS_FORMAT, "has rank 2 but");
    /* shape mismatch: B has 48 rows for a 64-row q_proj */
    const int64_t shb[2][2] = {{4, 64}, {48, 4}};
    float *datb[2] = {a4, bad_b};
    snprintf(dir, sizeof dir, "%s/shape", t_tmpdir());
    write_adapter(dir, cfg, 2, names, shb, datb);
    CHECK_FAILS(bl_merge_adapter(llama, dir, out, NULL, NULL), BALORA_STATUS_FORMAT, "maybe wrong base model?");
    CHECK(strstr(balora_last_error(), "q_proj") != NULL, "error names the module: %s", balora_last_error());
    /* incomplete pair */
    const int64_t sh4[2][2] = {{4, 64}, {64, 4}};
    float *dat4[2] = {a4, b4};
    snprintf(dir, sizeof dir, "%s/half", t_tmpdir());
    write_adapter(dir, cfg, 1, names, sh4, dat4);
    CHECK_FAILS(bl_merge_adapter(llama, dir, out, NULL, NULL), BALORA_STATUS_FORMAT, "incomplete A/B pair");
    /* DoRA */
    snprintf(cfg, sizeof cfg, CFG_FMT, "true", "{}", "{}");
    snprintf(dir, sizeof dir, "%s/dora", t_tmpdir());
    write_adapter(dir, cfg, 2, names, sh4, dat4);
    CHECK_FAILS(bl_merge_adapter(llama, dir, out, NULL, NULL), BALORA_STATUS_UNSUPPORTED, "DoRA");
    /* an adapter key that matches no base tensor */
    const char *stray[] = {"base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight",
                           "base_model.model.model.layers.7.self_attn.q_proj.lora_B.weight"};
    snprintf(cfg, sizeof cfg, CFG_FMT, "false", "{}", "{}");
    snprintf(dir, sizeof dir, "%s/stray", t_tmpdir());
    write_adapter(dir, cfg, 2, stray, sh4, dat4);
    CHECK_FAILS(bl_merge_adapter(llama, dir, out, NULL, NULL), BALORA_STATUS_FORMAT, "matches no tensor of the base model");
    /* wrong base model entirely */
    char gpt2[1024], llama_lora[1024];
    snprintf(gpt2, sizeof gpt2, "%s/golden/gpt2", g_shared);
    snprintf(llama_lora, sizeof llama_lora, "%s/golden/llama/lora", g_shared);
    CHECK_FAILS(bl_merge_adapter(gpt2, llama_lora, out, NULL, NULL), BALORA_STATUS_FORMAT, "maybe wrong base model?");
    /* output folder == model folder */
    CHECK_FAILS(bl_merge_adapter(llama, llama_lora, llama, NULL, NULL), BALORA_STATUS_INVALID, "base model folder");
}

/* Split golden llama into two shards; the merge must equal the unsharded one byte for byte. */
static void check_sharded(void) {
    char llama[1024], sh[1024], p[2600];
    snprintf(llama, sizeof llama, "%s/golden/llama", g_shared);
    snprintf(sh, sizeof sh, "%s/sharded", t_tmpdir());
    CHECK_OK(bl_mkdir_p(sh));
    bl_hf_folder base;
    CHECK_OK(bl_hf_open(&base, llama));
    const bl_st_file *f = &base.files[0];
    bl_st_writer w[2];
    cJSON *idx = cJSON_CreateObject(), *wm = cJSON_AddObjectToObject(idx, "weight_map");
    for (int k = 0; k < 2; k++) bl_st_writer_init(&w[k]);
    for (int i = 0; i < f->n; i++) {
        int k = i < f->n / 2 ? 0 : 1;
        CHECK_OK(bl_st_writer_add(&w[k], f->tensors[i].name, f->tensors[i].dtype, f->tensors[i].ndim, f->tensors[i].shape, f->tensors[i].data));
        cJSON_AddStringToObject(wm, f->tensors[i].name, k ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors");
    }
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/model-0000%d-of-00002.safetensors", sh, k + 1);
        CHECK_OK(bl_st_writer_save(&w[k], p));
        bl_st_writer_free(&w[k]);
    }
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", sh);
    CHECK_OK(bl_json_save(idx, p));
    snprintf(p, sizeof p, "%s/config.json", sh);
    CHECK_OK(bl_json_save(base.config, p));
    cJSON_Delete(idx);
    bl_hf_close(&base);
    char out1[1200], out2[1200], lora[1024];
    snprintf(lora, sizeof lora, "%s/golden/llama/lora", g_shared);
    snprintf(out1, sizeof out1, "%s/sharded_out", t_tmpdir());
    snprintf(out2, sizeof out2, "%s/llama_merged_-1", t_tmpdir());
    CHECK_OK(bl_merge_adapter(sh, lora, out1, NULL, NULL));
    char *d1, *d2;
    size_t n1, n2;
    snprintf(p, sizeof p, "%s/model.safetensors", out1);
    CHECK_OK(bl_file_read(p, &d1, &n1));
    snprintf(p, sizeof p, "%s/model.safetensors", out2);
    CHECK_OK(bl_file_read(p, &d2, &n2));
    CHECK(n1 == n2 && d1 && d2 && memcmp(d1, d2, n1) == 0, "sharded merge differs from the unsharded one (%zu vs %zu bytes)", n1, n2);
    free(d1); free(d2);
}

/* An embedding LoRA (lora_embedding_A [r, vocab], lora_embedding_B [dim, r]): E += s (B A)^T. */
static void check_embedding(void) {
    char llama[1024], dir[1024], out[1024], p[1200];
    snprintf(llama, sizeof llama, "%s/golden/llama", g_shared);
    snprintf(dir, sizeof dir, "%s/emb", t_tmpdir());
    snprintf(out, sizeof out, "%s/emb_out", t_tmpdir());
    CHECK_OK(bl_mkdir_p(dir));
    const char *cfg = "{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":6,\"target_modules\":[\"embed_tokens\"]}";
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    CHECK_OK(bl_file_write_atomic(p, cfg, strlen(cfg)));
    static float A[2 * 256], B[64 * 2];
    fill(A, 2 * 256, 0.4f);
    fill(B, 64 * 2, 0.6f);
    bl_st_writer w;
    bl_st_writer_init(&w);
    CHECK_OK(bl_st_writer_add(&w, "base_model.model.model.embed_tokens.lora_embedding_A", BL_DTYPE_F32, 2, (int64_t[]){2, 256}, A));
    CHECK_OK(bl_st_writer_add(&w, "base_model.model.model.embed_tokens.lora_embedding_B", BL_DTYPE_F32, 2, (int64_t[]){64, 2}, B));
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    CHECK_OK(bl_st_writer_save(&w, p));
    bl_st_writer_free(&w);
    bl_merge_options f32 = {.out_dtype = BL_DTYPE_F32};
    CHECK_OK(bl_merge_adapter(llama, dir, out, &f32, NULL));
    bl_hf_folder base, merged;
    CHECK_OK(bl_hf_open(&base, llama));
    CHECK_OK(bl_hf_open(&merged, out));
    static float E[256 * 64], M[256 * 64], want[256 * 64];
    CHECK_OK(bl_hf_read_f32(&base, "model.embed_tokens.weight", NULL, 2, (int64_t[]){256, 64}, E));
    CHECK_OK(bl_hf_read_f32(&merged, "model.embed_tokens.weight", NULL, 2, (int64_t[]){256, 64}, M));
    for (int v = 0; v < 256; v++)
        for (int d = 0; d < 64; d++)
            want[v * 64 + d] = (float)(E[v * 64 + d] + 3.0 * ((double)B[d * 2] * A[v] + (double)B[d * 2 + 1] * A[256 + v]));
    t_allclose("embedding merged", M, want, 256 * 64, 1e-6, 1e-6);
    bl_hf_close(&base);
    bl_hf_close(&merged);
}

int main(void) {
    g_shared = t_require_shared();
    /* float32 output: exact up to float32 rounding of W + s B A */
    const char *cases[] = {"gpt2", "gpt2_all", "gpt2_cls", "llama", "mistral", "qwen2", "bert", "roberta"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_golden_merge(cases[i], BL_DTYPE_F32, 1e-6, 1e-6);
    /* dtypes kept (BF16 here): within one bf16 rounding */
    check_golden_merge("llama", -1, 0, 1.0 / 256);
    check_golden_merge("gpt2_all", BL_DTYPE_F16, 1e-6, 1.0 / 1024);
    check_sharded();
    check_patterns_and_errors();
    check_embedding();
    return t_finish();
}
