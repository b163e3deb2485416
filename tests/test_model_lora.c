/* PEFT adapters: initialisation (PEFT's distributions), target matching (names, all-linear,
 * regex), scaling (rsLoRA), save -> load round trip in PEFT's exact format (key names, sorted
 * keys, the same adapter_config.json keys PEFT writes), merge, teacher modes, and errors. */
#include "harness.h"
#include "adapters/lora.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *shared;

static double maxdiff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void forward(bl_model *m, bl_adapter_mode mode, float *out, int64_t *n) {
    static const int64_t ids[2 * 5] = {1, 5, 9, 200, 3, 7, 7, 1, 0, 0};
    static const int64_t mask[2 * 5] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    bl_run r;
    CHECK_OK(bl_run_init(&r, m, 2, 5));
    bl_batch b = {.B = 2, .T = 5, .input_ids = ids, .attention_mask = mask};
    CHECK_OK(bl_model_forward(&r, &b, mode));
    memcpy(out, r.logits, (size_t)r.n_logits * sizeof(float));
    *n = r.n_logits;
    bl_run_free(&r);
}

static void test_init(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/golden/llama", shared);
    bl_model m;
    CHECK_OK(bl_model_load(&m, dir));
    float *base = malloc(sizeof(float) * 2 * 5 * 256), *got = malloc(sizeof(float) * 2 * 5 * 256);
    int64_t n;
    forward(&m, BL_ADAPTER_ON, base, &n);

    bl_lora_config c;
    bl_lora_config_default(&c);
    c.r = 8; c.alpha = 16;
    CHECK_OK(bl_lora_config_set_targets(&c, "q_proj, v_proj"));
    bl_adapter a;
    CHECK_OK(bl_lora_init(&a, &m.mods, &c, 7));
    CHECK(a.n == 4, "q_proj,v_proj in 2 layers: %d modules", a.n);
    CHECK(!strcmp(m.mods.lin[a.lin_index[0]].name, "model.layers.0.self_attn.q_proj"), "sorted first module %s", m.mods.lin[a.lin_index[0]].name);
    CHECK(fabsf(a.mods[0].scale - 2.0f) < 1e-7f, "scale alpha/r = %g", a.mods[0].scale);
    /* A ~ U(-1/sqrt(in), 1/sqrt(in)): bounds and variance bound^2/3; B = 0 */
    double bound = 1.0 / sqrt(64.0), s1 = 0, s2 = 0, mx = 0;
    int64_t cnt = 0;
    for (int i = 0; i < a.n; i++)
        for (int64_t k = 0; k < a.mods[i].r * a.mods[i].in; k++) {
            double v = a.mods[i].A[k];
            s1 += v; s2 += v * v; mx = fmax(mx, fabs(v)); cnt++;
        }
    double var = s2 / cnt - (s1 / cnt) * (s1 / cnt);
    CHECK(mx <= bound && mx > 0.95 * bound, "A within U bound %g (max %g)", bound, mx);
    CHECK(fabs(var / (bound * bound / 3) - 1) < 0.1, "A variance %g vs %g", var, bound * bound / 3);
    double bsum = 0;
    for (int i = 0; i < a.n; i++) for (int64_t k = 0; k < a.mods[i].out * a.mods[i].r; k++) bsum += fabs(a.mods[i].B[k]);
    CHECK(bsum == 0, "B = 0");
    /* B = 0: the adapted model is the base model */
    forward(&m, BL_ADAPTER_ON, got, &n);
    CHECK(t_allclose("fresh adapter = base", got, base, n, 0, 0) == 0, "identity at init");
    /* same seed, same factors */
    bl_adapter a2;
    bl_lora_free(&a);
    CHECK_OK(bl_lora_init(&a, &m.mods, &c, 7));
    float *A0 = malloc(sizeof(float) * 8 * 64);
    memcpy(A0, a.mods[3].A, sizeof(float) * 8 * 64);
    bl_lora_free(&a);
    CHECK_OK(bl_lora_init(&a2, &m.mods, &c, 7));
    CHECK(memcmp(A0, a2.mods[3].A, sizeof(float) * 8 * 64) == 0, "deterministic init");
    bl_lora_free(&a2);
    free(A0);

    /* gaussian: A ~ N(0, std 1/r) as PEFT */
    c.init = BL_LORA_INIT_GAUSSIAN;
    CHECK_OK(bl_lora_init(&a, &m.mods, &c, 7));
    s1 = s2 = 0; cnt = 0;
    for (int i = 0; i < a.n; i++) for (int64_t k = 0; k < a.mods[i].r * a.mods[i].in; k++) { s1 += a.mods[i].A[k]; s2 += (double)a.mods[i].A[k] * a.mods[i].A[k]; cnt++; }
    CHECK(fabs(sqrt(s2 / cnt) / (1.0 / 8) - 1) < 0.05, "gaussian std %g vs 1/r", sqrt(s2 / cnt));
    bl_lora_free(&a);

    /* all-linear: 7 per LLaMA layer; rsLoRA scaling */
    c.init = BL_LORA_INIT_DEFAULT; c.rslora = true;
    CHECK_OK(bl_lora_config_set_targets(&c, "all-linear"));
    CHECK_OK(bl_lora_init(&a, &m.mods, &c, 1));
    CHECK(a.n == 14, "all-linear: %d modules", a.n);
    CHECK(fabsf(a.mods[0].scale - 16.0f / sqrtf(8.0f)) < 1e-6f, "rsLoRA scale %g", a.mods[0].scale);
    bl_lora_free(&a);
    /* regex (PEFT's string form: full match) */
    c.rslora = false;
    snprintf(c.target_regex, sizeof c.target_regex, "model\\.layers\\.1\\.(self_attn\\.(q|k)_proj|mlp\\.down_proj)");
    CHECK_OK(bl_lora_init(&a, &m.mods, &c, 1));
    CHECK(a.n == 3, "regex: %d modules", a.n);
    bl_lora_free(&a);
    snprintf(c.target_regex, sizeof c.target_regex, "q_proj"); /* full match: matches nothing */
    CHECK_FAILS(bl_lora_init(&a, &m.mods, &c, 1), BALORA_STATUS_INVALID, "match no module");
    c.target_regex[0] = 0;
    CHECK_OK(bl_lora_config_set_targets(&c, "c_attn"));
    CHECK_FAILS(bl_lora_init(&a, &m.mods, &c, 1), BALORA_STATUS_INVALID, "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj");
    CHECK_FAILS(bl_lora_config_set_targets(&c, " , "), BALORA_STATUS_INVALID, "empty");
    free(base); free(got);
    bl_model_free(&m);
}

/* save -> load round trip, PEFT format details, merge, teacher modes */
static void test_save_load(const char *arch) {
    char dir[1024], path[1400];
    snprintf(dir, sizeof dir, "%s/golden/%s", shared, arch);
    bl_model m;
    CHECK_OK(bl_model_load(&m, dir));
    bl_adapter a;
    snprintf(path, sizeof path, "%s/lora", dir);
    CHECK_OK(bl_lora_load(&a, &m.mods, path, true));
    int64_t n;
    float *lora = malloc(sizeof(float) * 2 * 5 * 256), *got = malloc(sizeof(float) * 2 * 5 * 256);
    float *base = malloc(sizeof(float) * 2 * 5 * 256);
    forward(&m, BL_ADAPTER_ON, lora, &n);
    forward(&m, BL_ADAPTER_OFF, base, &n);
    char out[1200];
    snprintf(out, sizeof out, "%s/%s_adapter", t_tmpdir(), arch);
    const char *mk[1] = {"balora_method"}, *mv[1] = {"lora"};
    CHECK_OK(bl_lora_save(&a, out, 1, mk, mv));

    /* adapter_config.json: exactly the keys PEFT wrote for the golden adapter, sorted, same values */
    cJSON *gj, *wj;
    snprintf(path, sizeof path, "%s/lora/adapter_config.json", dir);
    CHECK_OK(bl_json_load(path, &gj));
    snprintf(path, sizeof path, "%s/adapter_config.json", out);
    CHECK_OK(bl_json_load(path, &wj));
    const cJSON *it;
    int nk = 0;
    const char *prev = "";
    cJSON_ArrayForEach(it, wj) {
        CHECK(cJSON_GetObjectItemCaseSensitive(gj, it->string) != NULL, "%s: key '%s' is one PEFT writes", arch, it->string);
        CHECK(strcmp(prev, it->string) < 0, "keys sorted: '%s' after '%s'", it->string, prev);
        prev = it->string;
        nk++;
    }
    CHECK(nk == cJSON_GetArraySize(gj), "%s: %d keys vs PEFT's %d", arch, nk, cJSON_GetArraySize(gj));
    const char *same[] = {"r", "lora_alpha", "fan_in_fan_out", "use_rslora", "task_type", "peft_type", "bias", "init_lora_weights"};
    for (size_t k = 0; k < sizeof same / sizeof *same; k++) {
        char *x = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(gj, same[k]));
        char *y = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(wj, same[k]));
        CHECK(x && y && !strcmp(x, y), "%s: %s = %s (PEFT %s)", arch, same[k], y ? y : "?", x ? x : "?");
        free(x); free(y);
    }
    /* target_modules: same set */
    const cJSON *gt = cJSON_GetObjectItemCaseSensitive(gj, "target_modules"), *wt = cJSON_GetObjectItemCaseSensitive(wj, "target_modules");
    CHECK(cJSON_GetArraySize(gt) == cJSON_GetArraySize(wt), "target_modules count");
    cJSON_ArrayForEach(it, gt) {
        bool found = false;
        const cJSON *w2;
        cJSON_ArrayForEach(w2, wt) found |= !strcmp(w2->valuestring, it->valuestring);
        CHECK(found, "%s: target %s kept", arch, it->valuestring);
    }
    cJSON_Delete(gj); cJSON_Delete(wj);
    /* safetensors: the same keys and shapes as PEFT's file, our metadata, format pt */
    bl_st_file gf, wf;
    snprintf(path, sizeof path, "%s/lora/adapter_model.safetensors", dir);
    CHECK_OK(bl_st_open(&gf, path));
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", out);
    CHECK_OK(bl_st_open(&wf, path));
    CHECK(gf.n == wf.n, "%s: %d tensors vs %d", arch, wf.n, gf.n);
    for (int i = 0; i < gf.n && i < wf.n; i++) {
        CHECK(!strcmp(gf.tensors[i].name, wf.tensors[i].name), "key %s vs %s", wf.tensors[i].name, gf.tensors[i].name);
        CHECK(gf.tensors[i].ndim == wf.tensors[i].ndim && gf.tensors[i].shape[0] == wf.tensors[i].shape[0] &&
              gf.tensors[i].shape[1] == wf.tensors[i].shape[1], "shape of %s", gf.tensors[i].name);
        float *x = malloc(sizeof(float) * gf.tensors[i].numel), *y = malloc(sizeof(float) * gf.tensors[i].numel);
        CHECK_OK(bl_st_tensor_to_f32(&gf, &gf.tensors[i], x));
        CHECK_OK(bl_st_tensor_to_f32(&wf, &wf.tensors[i], y));
        CHECK(memcmp(x, y, sizeof(float) * gf.tensors[i].numel) == 0, "values of %s", gf.tensors[i].name);
        free(x); free(y);
    }
    CHECK(bl_st_meta(&wf, "format") && !strcmp(bl_st_meta(&wf, "format"), "pt"), "format pt");
    CHECK(bl_st_meta(&wf, "balora_method") && !strcmp(bl_st_meta(&wf, "balora_method"), "lora"), "own metadata");
    bl_st_close(&gf); bl_st_close(&wf);

    /* INITIAL mode uses the frozen copies: change A, B; INITIAL still gives the loaded adapter */
    for (int i = 0; i < a.n; i++) for (int64_t k = 0; k < a.mods[i].r * a.mods[i].in; k++) a.mods[i].A[k] *= -0.5f;
    forward(&m, BL_ADAPTER_INITIAL, got, &n);
    CHECK(t_allclose("INITIAL = loaded adapter", got, lora, n, 0, 0) == 0, "INITIAL");
    forward(&m, BL_ADAPTER_ON, got, &n);
    CHECK(maxdiff(got, lora, n) > 1e-3, "changed factors change the output");
    bl_lora_free(&a);

    /* reload what we saved: same outputs; then merge into the base: base forward = adapter forward */
    CHECK_OK(bl_lora_load(&a, &m.mods, out, false));
    forward(&m, BL_ADAPTER_ON, got, &n);
    CHECK(t_allclose("reloaded adapter", got, lora, n, 0, 0) == 0, "round trip exact");
    CHECK_OK(bl_lora_merge_into_base(&a));
    bl_lora_free(&a);
    forward(&m, BL_ADAPTER_ON, got, &n);
    CHECK(t_allclose("merged base = adapter", got, lora, n, 1e-5, 1e-5) == 0, "merge");
    CHECK(maxdiff(got, base, n) > 1e-3, "merge changed W");
    free(lora); free(got); free(base);
    bl_model_free(&m);
}

static void write_file(const char *path, const char *text) { CHECK_OK(bl_file_write_atomic(path, text, strlen(text))); }

static void test_load_errors(void) {
    char dir[1024], path[1400], bad[1200];
    snprintf(dir, sizeof dir, "%s/golden/llama", shared);
    bl_model m;
    CHECK_OK(bl_model_load(&m, dir));
    snprintf(bad, sizeof bad, "%s/bad_adapter", t_tmpdir());
    CHECK_OK(bl_mkdir_p(bad));
    char *cfg;
    size_t len;
    snprintf(path, sizeof path, "%s/lora/adapter_config.json", dir);
    CHECK_OK(bl_file_read(path, &cfg, &len));
    char *wbuf;
    size_t wlen;
    snprintf(path, sizeof path, "%s/lora/adapter_model.safetensors", dir);
    CHECK_OK(bl_file_read(path, &wbuf, &wlen));
    char wpath[1300], cpath[1300];
    snprintf(wpath, sizeof wpath, "%s/adapter_model.safetensors", bad);
    snprintf(cpath, sizeof cpath, "%s/adapter_config.json", bad);
    CHECK_OK(bl_file_write_atomic(wpath, wbuf, wlen));
    bl_adapter a;
    struct { const char *from, *to, *needle; balora_status st; } cases[] = {
        {"\"use_dora\": false", "\"use_dora\": true", "use_dora", BALORA_STATUS_UNSUPPORTED},
        {"\"rank_pattern\": {}", "\"rank_pattern\": {\"q_proj\": 2}", "q_proj' has rank 4 but", BALORA_STATUS_FORMAT},
        {"\"peft_type\": \"LORA\"", "\"peft_type\": \"IA3\"", "peft_type", BALORA_STATUS_UNSUPPORTED},
        {"\"bias\": \"none\"", "\"bias\": \"all\"", "bias", BALORA_STATUS_UNSUPPORTED},
        {"\"r\": 4", "\"r\": 5", "has rank 4 but", BALORA_STATUS_FORMAT},
        {"\"r\": 4", "\"r\": \"four\"", "'r'", BALORA_STATUS_FORMAT},
        {"\"o_proj\",", "", "does not select", BALORA_STATUS_FORMAT},
        {"\"lora_alpha\": 8", "\"lora_alpha\": -1", "lora_alpha", BALORA_STATUS_INVALID},
        {"\"megatron_core\"", "\"megatron_core\" \"x\"", "adapter_config.json", BALORA_STATUS_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *p = strstr(cfg, cases[i].from);
        CHECK(p != NULL, "case %zu: '%s' in the golden config", i, cases[i].from);
        if (!p) continue;
        char text[8192];
        snprintf(text, sizeof text, "%.*s%s%s", (int)(p - cfg), cfg, cases[i].to, p + strlen(cases[i].from));
        write_file(cpath, text);
        CHECK_FAILS(bl_lora_load(&a, &m.mods, bad, false), cases[i].st, cases[i].needle);
    }
    write_file(cpath, "[1, 2]");
    CHECK_FAILS(bl_lora_load(&a, &m.mods, bad, false), BALORA_STATUS_FORMAT, "not a JSON object");
    /* a missing factor; a truncated weights file */
    write_file(cpath, cfg);
    snprintf(path, sizeof path, "%s/golden/gpt2/lora/adapter_model.safetensors", shared);
    char *g2; size_t g2len;
    CHECK_OK(bl_file_read(path, &g2, &g2len));
    CHECK_OK(bl_file_write_atomic(wpath, g2, g2len));
    CHECK_FAILS(bl_lora_load(&a, &m.mods, bad, false), BALORA_STATUS_FORMAT, "does not have");
    CHECK_OK(bl_file_write_atomic(wpath, wbuf, wlen - 7));
    CHECK_FAILS(bl_lora_load(&a, &m.mods, bad, false), BALORA_STATUS_FORMAT, "adapter_model.safetensors");
    snprintf(path, sizeof path, "%s/none", bad);
    CHECK_FAILS(bl_lora_load(&a, &m.mods, path, false), BALORA_STATUS_IO, "adapter_config.json");
    /* the model is untouched by failed loads */
    for (int i = 0; i < m.mods.n_lin; i++) CHECK(m.mods.lin[i].lora == NULL, "no adapter left attached");
    free(cfg); free(wbuf); free(g2);
    bl_model_free(&m);
}

static void test_config_errors(void) {
    const char *cases[][2] = {
        {"{\"model_type\": \"llama\", \"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2}}", "rope_scaling"},
        {"{\"model_type\": \"llama\", \"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"hidden_act\": \"tanh\"}", "hidden_act"},
        {"{\"model_type\": \"llama\", \"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
         "\"num_key_value_heads\": 3, \"intermediate_size\": 8}", "num_key_value_heads"},
        {"{\"model_type\": \"gpt2\", \"vocab_size\": 10, \"n_embd\": 8, \"n_layer\": 1, \"n_head\": 2, \"n_positions\": 8, "
         "\"scale_attn_by_inverse_layer_idx\": true}", "scale_attn_by_inverse_layer_idx"},
        {"{\"model_type\": \"gpt2\", \"vocab_size\": 10, \"n_embd\": 8, \"n_layer\": 1, \"n_head\": 3, \"n_positions\": 8}", "not divisible"},
        {"{\"model_type\": \"t5\"}", "model_type"},
        {"{\"model_type\": \"gpt2\", \"architectures\": [\"GPT2DoubleHeadsModel\"]}", "architectures"},
        {"{\"model_type\": \"llama\", \"architectures\": [\"GPT2LMHeadModel\"], \"vocab_size\": 10, \"hidden_size\": 8, "
         "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 8}", "does not match"},
        {"{\"model_type\": \"gpt2\", \"vocab_size\": -3}", "vocab_size"},
        {"{\"model_type\": \"qwen2\", \"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
         "\"intermediate_size\": 8, \"use_sliding_window\": true}", "use_sliding_window"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *j;
        CHECK_OK(bl_json_parse("config.json", cases[i][0], strlen(cases[i][0]), &j));
        bl_config c;
        balora_status st = bl_config_parse(&c, j, "config.json");
        CHECK(st != BALORA_STATUS_OK && strstr(balora_last_error(), cases[i][1]) && strstr(balora_last_error(), "config.json"),
              "case %zu: want an error naming '%s', got %d: %s", i, cases[i][1], (int)st, balora_last_error());
        cJSON_Delete(j);
    }
}

int main(void) {
    test_config_errors(); /* self-contained: runs without ../shared */
    shared = t_require_shared();
    test_init();
    test_save_load("llama");
    test_save_load("gpt2_all");
    test_save_load("qwen2");
    test_load_errors();
    return t_finish();
}
