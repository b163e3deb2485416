/* bl_inspect_path on a model folder, adapters (consistent and not), a safetensors file and a
 * GGUF file: kinds, hyper-parameters, shapes, groups and parameter counts computed here. */
#include "harness.h"
#include "io/gguf.h"
#include "io/hf.h"
#include "io/inspect.h"
#include <math.h>
#include <string.h>

static double num(const cJSON *o, const char *k) { const cJSON *v = cJSON_GetObjectItem(o, k); return cJSON_IsNumber(v) ? v->valuedouble : -1; }

static const cJSON *group(const cJSON *o, const char *pattern) {
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetObjectItem(o, "groups"))
        if (!strcmp(cJSON_GetObjectItem(g, "pattern")->valuestring, pattern)) return g;
    return NULL;
}

static void check_model(const char *shared) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/golden/llama", shared);
    cJSON *o;
    CHECK_OK(bl_inspect_path(dir, &o));
    if (!o) return;
    CHECK(!strcmp(cJSON_GetObjectItem(o, "kind")->valuestring, "model"), "kind");
    const cJSON *cfg = cJSON_GetObjectItem(o, "config");
    CHECK(!strcmp(cJSON_GetObjectItem(cfg, "model_type")->valuestring, "llama"), "model_type");
    CHECK(num(cfg, "num_key_value_heads") == 2 && num(cfg, "hidden_size") == 64 && num(cfg, "rope_theta") == 10000, "hyper-parameters");
    bl_hf_folder h;
    CHECK_OK(bl_hf_open(&h, dir));
    double total = 0;
    for (int i = 0; i < h.files[0].n; i++) total += (double)h.files[0].tensors[i].numel;
    CHECK(num(o, "total_params") == total, "total %g vs %g", num(o, "total_params"), total);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(o, "tensors")) == h.files[0].n, "tensor list");
    bl_hf_close(&h);
    const cJSON *q = group(o, "model.layers.*.self_attn.q_proj.weight"), *k = group(o, "model.layers.*.self_attn.k_proj.weight");
    CHECK(q && num(q, "tensors") == 2 && num(q, "params") == 2 * 64 * 64, "q_proj group");
    CHECK(k && num(k, "params") == 2 * 32 * 64, "k_proj group");
    const cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "tensors"), 0);
    CHECK(!strcmp(cJSON_GetObjectItem(t0, "name")->valuestring, "lm_head.weight") &&
          !strcmp(cJSON_GetObjectItem(t0, "dtype")->valuestring, "BF16") &&
          cJSON_GetArrayItem(cJSON_GetObjectItem(t0, "shape"), 0)->valuedouble == 256, "first tensor");
    cJSON_Delete(o);
}

static void check_adapter(const char *shared) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/golden/gpt2_all/lora", shared);
    cJSON *o;
    CHECK_OK(bl_inspect_path(dir, &o));
    if (!o) return;
    const cJSON *cfg = cJSON_GetObjectItem(o, "config");
    CHECK(!strcmp(cJSON_GetObjectItem(o, "kind")->valuestring, "adapter"), "kind");
    CHECK(num(cfg, "r") == 4 && num(cfg, "lora_alpha") == 8 && cJSON_IsTrue(cJSON_GetObjectItem(cfg, "use_rslora")), "r, alpha, rslora");
    CHECK(fabs(num(cfg, "scaling") - 4.0) < 1e-12, "rsLoRA scaling 8/sqrt(4) = 4, got %g", num(cfg, "scaling"));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(o, "lora_modules")) == 8, "8 modules");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(o, "consistent")) && cJSON_IsNull(cJSON_GetObjectItem(o, "problem")), "consistent");
    /* 2 layers x (c_attn 4*64 + 192*4, attn.c_proj 4*64 + 64*4, c_fc 4*64 + 256*4, mlp.c_proj 4*256 + 64*4) */
    double want = 2 * ((256 + 768) + (256 + 256) + (256 + 1024) + (1024 + 256));
    CHECK(num(o, "trainable_params") == want, "trainable %g vs %g", num(o, "trainable_params"), want);
    const cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "lora_modules"), 0);
    CHECK(!strcmp(cJSON_GetObjectItem(m0, "module")->valuestring, "transformer.h.0.attn.c_attn") && num(m0, "in") == 64 &&
          num(m0, "out") == 192 && num(m0, "scale") == 4, "first module");
    cJSON_Delete(o);

    /* an adapter with a lone lora_A: inspect still describes it, flagged inconsistent */
    char bad[1024], p[1200];
    snprintf(bad, sizeof bad, "%s/half", t_tmpdir());
    CHECK_OK(bl_mkdir_p(bad));
    snprintf(p, sizeof p, "%s/adapter_config.json", bad);
    const char *cfgtxt = "{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":4,\"target_modules\":[\"q_proj\"]}";
    CHECK_OK(bl_file_write_atomic(p, cfgtxt, strlen(cfgtxt)));
    float a[2 * 8] = {0};
    bl_st_writer w;
    bl_st_writer_init(&w);
    CHECK_OK(bl_st_writer_add(&w, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", BL_DTYPE_F32, 2, (int64_t[]){2, 8}, a));
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", bad);
    CHECK_OK(bl_st_writer_save(&w, p));
    bl_st_writer_free(&w);
    CHECK_OK(bl_inspect_path(bad, &o));
    if (!o) return;
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(o, "consistent")), "inconsistent");
    const cJSON *pr = cJSON_GetObjectItem(o, "problem");
    CHECK(cJSON_IsString(pr) && strstr(pr->valuestring, "incomplete A/B pair"), "problem: %s", cJSON_IsString(pr) ? pr->valuestring : "-");
    cJSON_Delete(o);
}

static void check_files(const char *shared) {
    char p[1024], g[1024];
    snprintf(p, sizeof p, "%s/golden/stories260K/io.safetensors", shared);
    cJSON *o;
    CHECK_OK(bl_inspect_path(p, &o));
    if (o) {
        CHECK(!strcmp(cJSON_GetObjectItem(o, "kind")->valuestring, "safetensors"), "kind");
        CHECK(num(o, "total_params") == 41 + 48 + 2 * 24 * 512, "total %g", num(o, "total_params"));
        CHECK(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "model")), "metadata");
        cJSON_Delete(o);
    }
    snprintf(p, sizeof p, "%s/golden/llama/lora", shared);
    snprintf(g, sizeof g, "%s/l.gguf", t_tmpdir());
    bl_gguf_lora_options opt = {.arch = "llama", .n_head = 4, .n_head_kv = 2, .type = BL_GGML_F32};
    CHECK_OK(bl_gguf_export_lora(p, g, &opt, NULL));
    CHECK_OK(bl_inspect_path(g, &o));
    if (o) {
        CHECK(!strcmp(cJSON_GetObjectItem(o, "kind")->valuestring, "gguf") && num(o, "version") == 3, "gguf kind");
        const cJSON *kv = cJSON_GetObjectItem(o, "kv");
        CHECK(!strcmp(cJSON_GetObjectItem(kv, "general.type")->valuestring, "adapter"), "general.type");
        CHECK(num(kv, "adapter.lora.alpha") == 8, "alpha");
        CHECK(num(o, "total_params") == 2 * (4 * (4 * 64) + 2 * 64 * 4 + 2 * 32 * 4), "gguf params %g", num(o, "total_params"));
        const cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "tensors"), 1);
        CHECK(!strcmp(cJSON_GetObjectItem(t0, "name")->valuestring, "blk.0.attn_k.weight.lora_b") &&
              cJSON_GetArrayItem(cJSON_GetObjectItem(t0, "ne"), 0)->valuedouble == 4, "ne innermost first");
        cJSON_Delete(o);
    }
    CHECK_FAILS(bl_inspect_path("/nonexistent/thing", &o), BALORA_STATUS_IO, "no such file");
    CHECK_FAILS(bl_inspect_path(t_tmpdir(), &o), BALORA_STATUS_IO, "neither a model folder");
}

int main(void) {
    const char *shared = t_require_shared();
    check_model(shared);
    check_adapter(shared);
    check_files(shared);
    return t_finish();
}
