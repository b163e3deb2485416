/* Inspect model folders, adapters, safetensors and GGUF files (see inspect.h). */
#include "io/inspect.h"
#include "io/gguf.h"
#include "io/hf.h"
#include "io/llama2c.h"
#include "io/peft_files.h"
#include "model/arch.h"
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "model.layers.12.mlp.up_proj.weight" -> "model.layers.*.mlp.up_proj.weight" */
static void group_pattern(const char *name, char *out, size_t cap) {
    size_t o = 0;
    const char *p = name;
    while (*p && o + 2 < cap) {
        const char *e = strchr(p, '.');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        bool digits = n > 0;
        for (size_t i = 0; i < n; i++) digits = digits && isdigit((unsigned char)p[i]);
        if (digits) out[o++] = '*';
        else for (size_t i = 0; i < n && o + 2 < cap; i++) out[o++] = p[i];
        if (!e) break;
        out[o++] = '.';
        p = e + 1;
    }
    out[o] = 0;
}

/* Adds a tensor's parameters to its group (groups: array of {pattern, tensors, params}). */
static void add_to_groups(cJSON *groups, const char *name, double params) {
    char pat[1024];
    group_pattern(name, pat, sizeof pat);
    cJSON *g;
    cJSON_ArrayForEach(g, groups) {
        if (strcmp(cJSON_GetObjectItem(g, "pattern")->valuestring, pat) == 0) {
            cJSON *t = cJSON_GetObjectItem(g, "tensors"), *p = cJSON_GetObjectItem(g, "params");
            cJSON_SetNumberValue(t, t->valuedouble + 1);
            cJSON_SetNumberValue(p, p->valuedouble + params);
            return;
        }
    }
    g = cJSON_CreateObject();
    cJSON_AddStringToObject(g, "pattern", pat);
    cJSON_AddNumberToObject(g, "tensors", 1);
    cJSON_AddNumberToObject(g, "params", params);
    cJSON_AddItemToArray(groups, g);
}

static void add_st_tensors(cJSON *out, const bl_st_file *const *files, int n_files) {
    cJSON *ts = cJSON_GetObjectItem(out, "tensors"), *groups = cJSON_GetObjectItem(out, "groups");
    cJSON *total = cJSON_GetObjectItem(out, "total_params");
    for (int f = 0; f < n_files; f++)
        for (int i = 0; i < files[f]->n; i++) {
            const bl_st_tensor *t = &files[f]->tensors[i];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", t->name);
            cJSON_AddStringToObject(e, "dtype", bl_dtype_name(t->dtype));
            cJSON *sh = cJSON_AddArrayToObject(e, "shape");
            for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
            cJSON_AddNumberToObject(e, "params", (double)t->numel);
            if (n_files > 1) cJSON_AddStringToObject(e, "file", strrchr(files[f]->path, '/') ? strrchr(files[f]->path, '/') + 1 : files[f]->path);
            cJSON_AddItemToArray(ts, e);
            add_to_groups(groups, t->name, (double)t->numel);
            cJSON_SetNumberValue(total, total->valuedouble + (double)t->numel);
        }
}

static cJSON *new_description(const char *kind, const char *path) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "path", path);
    return o;
}

static void add_tensor_sections(cJSON *o) {
    cJSON_AddArrayToObject(o, "tensors");
    cJSON_AddArrayToObject(o, "groups");
    cJSON_AddNumberToObject(o, "total_params", 0);
}

static balora_status inspect_safetensors(const char *path, cJSON **out) {
    bl_st_file f;
    BL_TRY(bl_st_open(&f, path));
    cJSON *o = new_description("safetensors", path);
    cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
    for (int i = 0; i < f.n_meta; i++) cJSON_AddStringToObject(meta, f.meta_keys[i], f.meta_vals[i]);
    add_tensor_sections(o);
    const bl_st_file *files[1] = {&f};
    add_st_tensors(o, files, 1);
    bl_st_close(&f);
    *out = o;
    return BALORA_STATUS_OK;
}

/* What balora makes of a model_type: its row of the architecture table (model/arch.h). */
static void add_arch(cJSON *o, const bl_arch *A, const bl_arch_type *ty) {
    cJSON *a = cJSON_AddObjectToObject(o, "architecture");
    cJSON_AddBoolToObject(a, "supported", A != NULL);
    if (!A) return;
    cJSON_AddStringToObject(a, "family", A->name);
    cJSON_AddBoolToObject(a, "encoder", A->family == BL_FAMILY_ENCODER);
    cJSON_AddStringToObject(a, "default_targets", A->targets_train);
    if (A->family != BL_FAMILY_ENCODER) cJSON_AddStringToObject(a, "default_targets_init", A->targets_init);
    cJSON_AddItemToObject(a, "gguf_arch", ty->gguf_arch ? cJSON_CreateString(ty->gguf_arch) : cJSON_CreateNull());
}

static balora_status inspect_model(const char *dir, cJSON **out) {
    bl_hf_folder h;
    BL_TRY(bl_hf_open(&h, dir));
    cJSON *o = new_description("model", dir);
    cJSON *cfg = cJSON_AddObjectToObject(o, "config");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(h.config, "model_type");
    const bl_arch_type *ty = NULL;
    const bl_arch *A = bl_arch_find(cJSON_IsString(mt) ? mt->valuestring : NULL, &ty);
    /* the row's fields; an unknown model_type gets the first row's list (one schema for all) */
    const char *const *fields = A ? A->inspect_fields : bl_arch_rows(NULL)->inspect_fields;
    for (size_t i = 0; fields[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(h.config, fields[i]);
        if (v && !cJSON_IsNull(v)) cJSON_AddItemToObject(cfg, fields[i], cJSON_Duplicate(v, 1));
    }
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(h.config, "id2label");
    if (cJSON_IsObject(labels)) cJSON_AddNumberToObject(cfg, "num_labels", cJSON_GetArraySize(labels));
    add_arch(o, A, ty);
    cJSON *files = cJSON_AddArrayToObject(o, "files");
    const bl_st_file **fl = bl_calloc((size_t)h.n_files + 1, sizeof *fl);
    if (!fl) { cJSON_Delete(o); bl_hf_close(&h); return BALORA_STATUS_NOMEM; }
    for (int i = 0; i < h.n_files; i++) {
        fl[i] = &h.files[i];
        const char *slash = strrchr(h.files[i].path, '/');
        cJSON_AddItemToArray(files, cJSON_CreateString(slash ? slash + 1 : h.files[i].path));
    }
    add_tensor_sections(o);
    add_st_tensors(o, fl, h.n_files);
    free(fl);
    bl_hf_close(&h);
    *out = o;
    return BALORA_STATUS_OK;
}

static void add_adapter_config(cJSON *o, const bl_peft_config *c) {
    cJSON *cfg = cJSON_AddObjectToObject(o, "config");
    cJSON_AddStringToObject(cfg, "peft_type", c->peft_type);
    if (c->task_type) cJSON_AddStringToObject(cfg, "task_type", c->task_type);
    cJSON_AddNumberToObject(cfg, "r", (double)c->r);
    cJSON_AddNumberToObject(cfg, "lora_alpha", c->lora_alpha);
    cJSON_AddNumberToObject(cfg, "scaling", bl_peft_scale(c, c->r, c->lora_alpha));
    cJSON_AddBoolToObject(cfg, "use_rslora", c->use_rslora);
    cJSON_AddBoolToObject(cfg, "use_dora", c->use_dora);
    cJSON_AddBoolToObject(cfg, "fan_in_fan_out", c->fan_in_fan_out);
    const struct { const char *k; const cJSON *v; } opt[] = {
        {"init_lora_weights", c->init_lora_weights}, {"target_modules", c->target_modules},
        {"modules_to_save", c->modules_to_save}, {"rank_pattern", c->rank_pattern}, {"alpha_pattern", c->alpha_pattern},
    };
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++)
        cJSON_AddItemToObject(cfg, opt[i].k, opt[i].v ? cJSON_Duplicate(opt[i].v, 1) : cJSON_CreateNull());
}

static void add_lora_modules(cJSON *o, const bl_peft_adapter *a) {
    cJSON *mods = cJSON_AddArrayToObject(o, "lora_modules");
    for (int i = 0; i < a->n_pairs; i++) {
        const bl_peft_pair *p = &a->pairs[i];
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "module", p->module);
        cJSON_AddNumberToObject(m, "r", (double)p->r);
        cJSON_AddNumberToObject(m, "alpha", p->alpha);
        cJSON_AddNumberToObject(m, "scale", p->scale);
        if (p->a && p->a->ndim == 2) cJSON_AddNumberToObject(m, "in", (double)p->a->shape[1]);
        if (p->b && p->b->ndim == 2) cJSON_AddNumberToObject(m, "out", (double)p->b->shape[0]);
        if (p->embedding) cJSON_AddBoolToObject(m, "embedding", true);
        cJSON_AddItemToArray(mods, m);
    }
    cJSON *full = cJSON_AddArrayToObject(o, "full_tensors");
    for (int i = 0; i < a->n_full; i++) cJSON_AddItemToArray(full, cJSON_CreateString(a->full[i].base_name));
}

static balora_status inspect_adapter(const char *dir, cJSON **out) {
    bl_peft_adapter a;
    BL_TRY(bl_peft_open(&a, dir));
    cJSON *o = new_description("adapter", dir);
    add_adapter_config(o, &a.cfg);
    add_lora_modules(o, &a);
    cJSON_AddNumberToObject(o, "trainable_params", (double)a.trainable_params);
    balora_status v = bl_peft_validate(&a);
    cJSON_AddBoolToObject(o, "consistent", v == BALORA_STATUS_OK);
    cJSON_AddItemToObject(o, "problem", v ? cJSON_CreateString(balora_last_error()) : cJSON_CreateNull());
    bl_clear_error();
    add_tensor_sections(o);
    const bl_st_file *files[1] = {&a.file};
    add_st_tensors(o, files, 1);
    bl_peft_close(&a);
    *out = o;
    return BALORA_STATUS_OK;
}

static cJSON *gguf_array_summary(const bl_gguf_kv *kv) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", "array");
    cJSON_AddStringToObject(e, "element_type", bl_gguf_vtype_name(kv->arr_type));
    cJSON_AddNumberToObject(e, "n", (double)kv->arr_n);
    return e;
}

static cJSON *gguf_value(const bl_gguf_kv *kv) {
    switch (kv->type) {
    case BL_GGUF_STRING: return cJSON_CreateString(kv->str);
    case BL_GGUF_ARRAY: return gguf_array_summary(kv);
    case BL_GGUF_BOOL: return cJSON_CreateBool(kv->v.b);
    case BL_GGUF_F32: case BL_GGUF_F64: return cJSON_CreateNumber(kv->v.f);
    case BL_GGUF_I8: case BL_GGUF_I16: case BL_GGUF_I32: case BL_GGUF_I64: return cJSON_CreateNumber((double)kv->v.i);
    default: return cJSON_CreateNumber((double)kv->v.u);
    }
}

static balora_status inspect_gguf(const char *path, cJSON **out) {
    bl_gguf_file g;
    BL_TRY(bl_gguf_open(&g, path));
    cJSON *o = new_description("gguf", path);
    cJSON_AddNumberToObject(o, "version", g.version);
    cJSON_AddNumberToObject(o, "alignment", g.alignment);
    cJSON *kvs = cJSON_AddObjectToObject(o, "kv");
    for (uint64_t i = 0; i < g.n_kv; i++) cJSON_AddItemToObject(kvs, g.kvs[i].key, gguf_value(&g.kvs[i]));
    add_tensor_sections(o);
    cJSON *ts = cJSON_GetObjectItem(o, "tensors"), *groups = cJSON_GetObjectItem(o, "groups");
    double total = 0;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const bl_gguf_tensor *t = &g.tensors[i];
        double n = 1;
        cJSON *e = cJSON_CreateObject(), *ne;
        cJSON_AddStringToObject(e, "name", t->name);
        cJSON_AddStringToObject(e, "type", bl_ggml_type_name(t->type));
        ne = cJSON_AddArrayToObject(e, "ne");
        for (uint32_t d = 0; d < t->n_dims; d++) { cJSON_AddItemToArray(ne, cJSON_CreateNumber((double)t->ne[d])); n *= (double)t->ne[d]; }
        cJSON_AddNumberToObject(e, "offset", (double)t->offset);
        cJSON_AddNumberToObject(e, "params", n);
        cJSON_AddItemToArray(ts, e);
        add_to_groups(groups, t->name, n);
        total += n;
    }
    cJSON_SetNumberValue(cJSON_GetObjectItem(o, "total_params"), total);
    bl_gguf_close(&g);
    *out = o;
    return BALORA_STATUS_OK;
}

/* A llama2.c checkpoint: its header as a config and its arrays as tensors (HF names after
 * `balora convert --from llama2c`). */
static void add_plain_tensor(cJSON *o, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    cJSON *ts = cJSON_GetObjectItem(o, "tensors"), *e = cJSON_CreateObject(), *sh;
    int64_t dims[3] = {d0, d1, d2}, n = 1;
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddStringToObject(e, "dtype", "F32");
    sh = cJSON_AddArrayToObject(e, "shape");
    for (int i = 0; i < ndim; i++) { cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)dims[i])); n *= dims[i]; }
    cJSON_AddNumberToObject(e, "params", (double)n);
    cJSON_AddItemToArray(ts, e);
    add_to_groups(cJSON_GetObjectItem(o, "groups"), name, (double)n);
    cJSON *total = cJSON_GetObjectItem(o, "total_params");
    cJSON_SetNumberValue(total, total->valuedouble + (double)n);
}

static balora_status inspect_llama2c(const char *path, cJSON **out) {
    bl_llama2c m;
    BL_TRY(bl_llama2c_open(&m, path));
    const bl_llama2c_config *c = &m.cfg;
    int64_t L = c->n_layers, d = c->dim, kv = d / c->n_heads * c->n_kv_heads, h = c->hidden_dim;
    cJSON *o = new_description("llama2c", path), *cfg = cJSON_AddObjectToObject(o, "config");
    const struct { const char *k; int64_t v; } f[] = {{"dim", d}, {"hidden_dim", h}, {"n_layers", L}, {"n_heads", c->n_heads},
        {"n_kv_heads", c->n_kv_heads}, {"vocab_size", c->vocab_size}, {"seq_len", c->seq_len}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) cJSON_AddNumberToObject(cfg, f[i].k, (double)f[i].v);
    cJSON_AddBoolToObject(cfg, "shared_classifier", c->shared_classifier);
    add_tensor_sections(o);
    add_plain_tensor(o, "token_embedding", 2, c->vocab_size, d, 0);
    const struct { const char *name; int64_t a, b; } per_layer[] = {{"rms_att", d, 0}, {"wq", d, d}, {"wk", kv, d}, {"wv", kv, d},
        {"wo", d, d}, {"rms_ffn", d, 0}, {"w1", h, d}, {"w2", d, h}, {"w3", h, d}};
    for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++)
        add_plain_tensor(o, per_layer[i].name, per_layer[i].b ? 3 : 2, L, per_layer[i].a, per_layer[i].b);
    add_plain_tensor(o, "rms_final", 1, d, 0, 0);
    if (!c->shared_classifier) add_plain_tensor(o, "wcls", 2, c->vocab_size, d, 0);
    bl_llama2c_close(&m);
    *out = o;
    return BALORA_STATUS_OK;
}

static bool has_gguf_magic(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char m[4] = {0};
    bool yes = fread(m, 1, 4, f) == 4 && memcmp(m, "GGUF", 4) == 0;
    fclose(f);
    return yes;
}

balora_status bl_inspect_path(const char *path, cJSON **out) {
    *out = NULL;
    char p[4200];
    if (bl_dir_exists(path)) {
        BL_TRY(bl_path_join(p, sizeof p, path, "adapter_config.json"));
        if (bl_file_exists(p)) return inspect_adapter(path, out);
        BL_TRY(bl_path_join(p, sizeof p, path, "config.json"));
        if (bl_file_exists(p)) return inspect_model(path, out);
        return bl_fail(BALORA_STATUS_IO, "%s: neither a model folder (config.json) nor a PEFT adapter folder (adapter_config.json)", path);
    }
    if (!bl_file_exists(path)) return bl_fail(BALORA_STATUS_IO, "%s: no such file or directory", path);
    size_t n = strlen(path);
    if ((n > 5 && strcmp(path + n - 5, ".gguf") == 0) || has_gguf_magic(path)) return inspect_gguf(path, out);
    if (n > 4 && strcmp(path + n - 4, ".bin") == 0) return inspect_llama2c(path, out);
    return inspect_safetensors(path, out);
}
