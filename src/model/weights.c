/* The one reader and the one writer of a model's named tensors (model.h, bl_modules_read /
 * bl_modules_save), shared by the decoders (model.c, save.c) and the encoders (encoders/encoder.c):
 * HF folder + shards, F32/F16/BF16 -> F32, GPT-2 Conv1D transposes, old LayerNorm names,
 * config.json + model.safetensors. */
#include "model/model.h"
#include "io/hf.h"
#include "io/safetensors.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* The checkpoint's name of p: its own, or the old LayerNorm.gamma / .beta; NULL when absent. */
static const char *find_name(const bl_hf_folder *h, const char *name, const char *prefix, char *alt, size_t cap) {
    const bl_st_file *f;
    if (bl_hf_find(h, name, prefix, &f)) return name;
    if (!strstr(name, "LayerNorm.")) return NULL;
    size_t n = strlen(name);
    if (ends_with(name, ".weight")) snprintf(alt, cap, "%.*s.gamma", (int)(n - 7), name);
    else if (ends_with(name, ".bias")) snprintf(alt, cap, "%.*s.beta", (int)(n - 5), name);
    else return NULL;
    return bl_hf_find(h, alt, prefix, &f) ? alt : NULL;
}

balora_status bl_modules_read(bl_module_set *s, const bl_hf_folder *h, const char *prefix, bool prefix_all,
                              bl_missing_fn missing, void *ctx, int *failed) {
    if (failed) *failed = -1;
    int64_t mx = 0;
    for (int i = 0; i < s->n_params; i++)
        if (s->params[i].transposed && s->params[i].numel > mx) mx = s->params[i].numel;
    float *tmp = mx ? bl_malloc((size_t)mx * sizeof(float)) : NULL; /* [in, out] of a Conv1D weight */
    if (mx && !tmp) return BALORA_STATUS_NOMEM;
    balora_status st = BALORA_STATUS_OK;
    size_t pl = prefix ? strlen(prefix) : 0;
    for (int i = 0; !st && i < s->n_params; i++) {
        bl_param *p = &s->params[i];
        /* names outside the base model ("lm_head.weight", "score.weight") carry no prefix */
        const char *pfx = prefix_all || (prefix && !strncmp(p->name, prefix, pl)) ? prefix : NULL;
        char alt[200];
        const char *name = find_name(h, p->name, pfx, alt, sizeof alt);
        if (!name && missing) {
            st = missing(ctx, i);
            if (failed && st) *failed = i;
            continue;
        }
        if (!name) name = p->name; /* bl_hf_read_f32 reports it missing */
        if (p->transposed) { /* Conv1D: checkpoint [in, out] */
            int64_t shp[2] = {p->shape[1], p->shape[0]};
            st = bl_hf_read_f32(h, name, pfx, 2, shp, tmp);
            if (!st)
                for (int64_t r = 0; r < shp[0]; r++)
                    for (int64_t c = 0; c < shp[1]; c++) p->data[c * shp[0] + r] = tmp[r * shp[1] + c];
        } else {
            int64_t shp[2] = {p->shape[0], p->shape[1]};
            st = bl_hf_read_f32(h, name, pfx, p->ndim, shp, p->data);
        }
        if (st && failed) *failed = i;
    }
    free(tmp);
    return st;
}

balora_status bl_modules_save(const bl_module_set *s, const char *dir, const cJSON *config, const char *side_from,
                              bool trained_heads) {
    BL_TRY(bl_mkdir_p(dir));
    char path[4200];
    balora_status st = BALORA_STATUS_OK;
    if (side_from) st = bl_hf_copy_side_files(side_from, dir, config == NULL, NULL);
    if (!st && config) {
        st = bl_path_join(path, sizeof path, dir, "config.json");
        if (!st) st = bl_json_save(config, path);
    }
    if (st) return st;
    /* Conv1D weights go back to [in, out]: one scratch buffer for all of them */
    int64_t tsize = 0;
    for (int i = 0; i < s->n_params; i++)
        if (s->params[i].transposed) tsize += s->params[i].numel;
    float *tbuf = tsize ? bl_malloc((size_t)tsize * sizeof(float)) : NULL;
    if (tsize && !tbuf) return BALORA_STATUS_NOMEM;
    bl_st_writer w;
    bl_st_writer_init(&w);
    st = bl_st_writer_meta(&w, "format", "pt");
    float *tp = tbuf;
    for (int i = 0; !st && i < s->n_params; i++) {
        const bl_param *p = &s->params[i];
        int64_t shape[2] = {p->shape[0], p->shape[1]};
        const float *data = trained_heads && p->train_data ? p->train_data : p->data;
        if (p->transposed) {
            int64_t out = p->shape[0], in = p->shape[1];
            for (int64_t r = 0; r < in; r++)
                for (int64_t c = 0; c < out; c++) tp[r * out + c] = data[c * in + r];
            shape[0] = in;
            shape[1] = out;
            data = tp;
            tp += p->numel;
        }
        st = bl_st_writer_add(&w, p->name, BL_DTYPE_F32, p->ndim, shape, data);
    }
    if (!st) st = bl_path_join(path, sizeof path, dir, "model.safetensors");
    if (!st) st = bl_st_writer_save(&w, path);
    bl_st_writer_free(&w);
    free(tbuf);
    return st;
}

int64_t bl_modules_n_params(const bl_module_set *s) {
    int64_t n = 0;
    for (int i = 0; i < s->n_params; i++) n += s->params[i].numel;
    return n;
}
