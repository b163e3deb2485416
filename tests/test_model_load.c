/* Model folders in every layout balora must read: one file or shards with
 * model.safetensors.index.json, F32 / F16 / BF16 weights, names with or without the
 * "transformer." / "model." prefix, GPT-2 Conv1D orientation. Each variant is written from a
 * loaded golden model and must give the same logits as that model with its weights rounded the
 * same way. Broken folders fail with a message naming the file and the tensor. */
#include "harness.h"
#include "io/safetensors.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void logits_of(bl_model *m, float *out, int64_t *n) {
    static const int64_t ids[2 * 6] = {1, 5, 9, 200, 3, 7, 7, 1, 2, 4, 0, 0};
    static const int64_t mask[2 * 6] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    bl_run r;
    CHECK_OK(bl_run_init(&r, m, 2, 6));
    bl_batch b = {.B = 2, .T = 6, .input_ids = ids, .attention_mask = mask};
    CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_ON));
    memcpy(out, r.logits, (size_t)r.n_logits * sizeof(float));
    *n = r.n_logits;
    bl_run_free(&r);
}

/* writes m's tensors (checkpoint orientation) to dir in n_shards files of dtype dt */
static void write_folder(const bl_model *m, const char *src_dir, const char *dir, int n_shards, bl_dtype dt, bool strip_prefix) {
    CHECK_OK(bl_mkdir_p(dir));
    char path[2600], *cfg;
    size_t len;
    snprintf(path, sizeof path, "%s/config.json", src_dir);
    CHECK_OK(bl_file_read(path, &cfg, &len));
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK_OK(bl_file_write_atomic(path, cfg, len));
    free(cfg);
    int np = m->mods.n_params;
    void **bufs = calloc((size_t)np, sizeof(void *));
    cJSON *idx = cJSON_CreateObject(), *wm = cJSON_AddObjectToObject(idx, "weight_map");
    for (int s = 0; s < n_shards; s++) {
        bl_st_writer w;
        bl_st_writer_init(&w);
        char shard[256];
        if (n_shards == 1) snprintf(shard, sizeof shard, "model.safetensors");
        else snprintf(shard, sizeof shard, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        for (int i = s; i < np; i += n_shards) {
            const bl_param *p = &m->mods.params[i];
            int64_t shape[2] = {p->shape[0], p->shape[1]};
            size_t es = bl_dtype_size(dt);
            char *b = malloc((size_t)p->numel * es);
            bufs[i] = b;
            for (int64_t k = 0; k < p->numel; k++) {
                int64_t src = k;
                if (p->transposed) { /* element k of the [in, out] checkpoint tensor */
                    int64_t in = p->shape[1], out = p->shape[0], r = k / out, c = k % out;
                    src = c * in + r;
                    (void)in;
                }
                float v = p->data[src];
                if (dt == BL_DTYPE_F32) memcpy(b + k * 4, &v, 4);
                else { uint16_t h = dt == BL_DTYPE_F16 ? bl_f32_to_f16(v) : bl_f32_to_bf16(v); memcpy(b + k * 2, &h, 2); }
            }
            if (p->transposed) { shape[0] = p->shape[1]; shape[1] = p->shape[0]; }
            const char *name = p->name;
            if (strip_prefix && !strncmp(name, "transformer.", 12)) name += 12;
            if (strip_prefix && !strncmp(name, "model.", 6)) name += 6;
            CHECK_OK(bl_st_writer_add(&w, name, dt, p->ndim, shape, b));
            cJSON_AddStringToObject(wm, name, shard);
        }
        snprintf(path, sizeof path, "%s/%s", dir, shard);
        CHECK_OK(bl_st_writer_save(&w, path));
        bl_st_writer_free(&w);
    }
    if (n_shards > 1) {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        CHECK_OK(bl_json_save(idx, path));
    }
    cJSON_Delete(idx);
    for (int i = 0; i < np; i++) free(bufs[i]);
    free(bufs);
}

static void round_model(bl_model *m, bl_dtype dt) {
    for (int i = 0; i < m->mods.n_params; i++)
        for (int64_t k = 0; k < m->mods.params[i].numel; k++) {
            float *v = &m->mods.params[i].data[k];
            *v = dt == BL_DTYPE_F16 ? bl_f16_to_f32(bl_f32_to_f16(*v)) : bl_bf16_to_f32(bl_f32_to_bf16(*v));
        }
}

static void run(const char *shared, const char *arch) {
    char src[1024], dir[2048];
    snprintf(src, sizeof src, "%s/golden/%s", shared, arch);
    bl_model m;
    CHECK_OK(bl_model_load(&m, src));
    float *want = malloc(sizeof(float) * 12 * 256), *got = malloc(sizeof(float) * 12 * 256);
    int64_t n, n2;
    logits_of(&m, want, &n);
    struct { int shards; bl_dtype dt; bool strip; const char *what; } v[] = {
        {1, BL_DTYPE_F32, false, "f32"}, {3, BL_DTYPE_F32, false, "f32 3 shards"}, {2, BL_DTYPE_BF16, true, "bf16 2 shards no prefix"},
        {2, BL_DTYPE_F16, false, "f16 2 shards"},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        snprintf(dir, sizeof dir, "%s/%s_%zu", t_tmpdir(), arch, i);
        write_folder(&m, src, dir, v[i].shards, v[i].dt, v[i].strip);
        bl_model m2;
        CHECK_OK(bl_model_load(&m2, dir));
        if (t_failures) break;
        logits_of(&m2, got, &n2);
        /* the reference: the same model with its weights rounded like the file */
        bl_model m3;
        CHECK_OK(bl_model_load(&m3, src));
        if (v[i].dt != BL_DTYPE_F32) round_model(&m3, v[i].dt);
        logits_of(&m3, want, &n);
        char what[256];
        snprintf(what, sizeof what, "%s %s", arch, v[i].what);
        CHECK(n == n2 && t_allclose(what, got, want, n, 0, 0) == 0, "%s: identical logits", what);
        printf("ok %s\n", what);
        bl_model_free(&m2);
        bl_model_free(&m3);
    }
    /* broken folders */
    snprintf(dir, sizeof dir, "%s/%s_1", t_tmpdir(), arch);
    char p[2300];
    snprintf(p, sizeof p, "%s/model-00002-of-00003.safetensors", dir);
    remove(p);
    bl_model bad;
    CHECK_FAILS(bl_model_load(&bad, dir), BALORA_STATUS_IO, "model-00002-of-00003.safetensors");
    snprintf(dir, sizeof dir, "%s/%s_0", t_tmpdir(), arch);
    snprintf(p, sizeof p, "%s/config.json", dir);
    char *cfg;
    size_t len;
    CHECK_OK(bl_file_read(p, &cfg, &len));
    char *hit = strstr(cfg, "\"vocab_size\": 256");
    CHECK(hit != NULL, "vocab_size in config");
    if (hit) {
        memcpy(hit, "\"vocab_size\": 255", 17);
        CHECK_OK(bl_file_write_atomic(p, cfg, len));
        CHECK_FAILS(bl_model_load(&bad, dir), BALORA_STATUS_FORMAT, "shape");
    }
    free(cfg);
    free(want); free(got);
    bl_model_free(&m);
}

/* bl_model_save: a loaded folder and a llama2.c model written as HF folders reload identically */
static void test_save(const char *shared) {
    char src[1024], dir[2048];
    float *a = malloc(sizeof(float) * 12 * 512), *b = malloc(sizeof(float) * 12 * 512);
    int64_t n1, n2;
    for (int k = 0; k < 3; k++) {
        bl_model m, m2;
        if (k < 2) {
            snprintf(src, sizeof src, "%s/golden/%s", shared, k ? "gpt2_cls" : "gpt2");
            CHECK_OK(bl_model_load(&m, src));
        } else {
            snprintf(src, sizeof src, "%s/models/stories260K/stories260K.bin", shared);
            CHECK_OK(bl_model_load_llama2c(&m, src));
        }
        snprintf(dir, sizeof dir, "%s/saved_%d", t_tmpdir(), k);
        CHECK_OK(bl_model_save(&m, dir));
        CHECK_OK(bl_model_load(&m2, dir));
        if (t_failures) return;
        CHECK(!strcmp(m2.cfg.architecture, m.cfg.architecture), "architecture %s", m2.cfg.architecture);
        logits_of(&m, a, &n1);
        logits_of(&m2, b, &n2);
        CHECK(n1 == n2 && t_allclose("saved model reloads", b, a, n1, 0, 0) == 0, "save %d", k);
        printf("ok save/reload %s\n", src);
        bl_model_free(&m);
        bl_model_free(&m2);
    }
    free(a); free(b);
}

int main(void) {
    const char *shared = t_require_shared();
    test_save(shared);
    run(shared, "gpt2");
    run(shared, "llama");
    run(shared, "qwen2");
    return t_finish();
}
