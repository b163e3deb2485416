/* Hugging Face model folders: config.json and (sharded) safetensors weights. */
#include "io/hf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bl_hf_close(bl_hf_folder *h) {
    if (!h) return;
    for (int i = 0; i < h->n_files; i++) bl_st_close(&h->files[i]);
    free(h->files);
    cJSON_Delete(h->config);
    memset(h, 0, sizeof *h);
}

balora_status bl_hf_open(bl_hf_folder *h, const char *dir) {
    memset(h, 0, sizeof *h);
    balora_status st;
    if (!bl_dir_exists(dir))
        return bl_fail(BALORA_STATUS_IO, "%s: not a directory (expected a Hugging Face model folder with config.json and model.safetensors)", dir);
    snprintf(h->dir, sizeof h->dir, "%s", dir);
    snprintf(h->config_path, sizeof h->config_path, "%s/config.json", dir);
    if ((st = bl_json_load(h->config_path, &h->config))) goto fail;
    if (!cJSON_IsObject(h->config)) { st = bl_fail(BALORA_STATUS_FORMAT, "%s: not a JSON object", h->config_path); goto fail; }
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (bl_file_exists(path)) {
        h->files = bl_calloc(1, sizeof *h->files);
        if (!h->files) { st = BALORA_STATUS_NOMEM; goto fail; }
        if ((st = bl_st_open(&h->files[0], path))) goto fail;
        h->n_files = 1;
        return BALORA_STATUS_OK;
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (!bl_file_exists(path)) {
        st = bl_fail(BALORA_STATUS_IO, "%s: neither model.safetensors nor model.safetensors.index.json found "
                     "(hint: convert .bin/.pt checkpoints to safetensors first)", dir);
        goto fail;
    }
    cJSON *idx;
    if ((st = bl_json_load(path, &idx))) goto fail;
    /* every error below is formed while idx (which the names point into) is alive, then both are freed */
    const char **names = NULL;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
    if (!cJSON_IsObject(wm)) { st = bl_fail(BALORA_STATUS_FORMAT, "%s: missing object 'weight_map'", path); goto fail_idx; }
    /* distinct shard names, in order of first appearance */
    int cap = cJSON_GetArraySize(wm) + 1;
    names = bl_calloc((size_t)cap, sizeof *names);
    if (!names) { st = BALORA_STATUS_NOMEM; goto fail_idx; }
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, wm) {
        if (!cJSON_IsString(it)) { st = bl_fail(BALORA_STATUS_FORMAT, "%s: weight_map['%s'] is not a file name", path, it->string); goto fail_idx; }
        if (strchr(it->valuestring, '/')) { st = bl_fail(BALORA_STATUS_FORMAT, "%s: weight_map['%s'] = '%s' is not a plain file name", path, it->string, it->valuestring); goto fail_idx; }
        int k = 0;
        while (k < n && strcmp(names[k], it->valuestring)) k++;
        if (k == n) names[n++] = it->valuestring;
    }
    h->files = bl_calloc((size_t)n + 1, sizeof *h->files);
    if (!h->files) { st = BALORA_STATUS_NOMEM; goto fail_idx; }
    for (int k = 0; k < n; k++) {
        char sp[4400];
        snprintf(sp, sizeof sp, "%s/%s", dir, names[k]);
        if ((st = bl_st_open(&h->files[k], sp))) goto fail_idx;
        h->n_files++;
    }
    /* every mapped tensor must be in its shard */
    cJSON_ArrayForEach(it, wm) {
        int k = 0;
        while (strcmp(names[k], it->valuestring)) k++;
        if (!bl_st_find(&h->files[k], it->string)) {
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' is mapped to %s but that shard does not hold it", path, it->string, names[k]);
            goto fail_idx;
        }
    }
    free(names);
    cJSON_Delete(idx);
    return BALORA_STATUS_OK;
fail_idx:
    free(names);
    cJSON_Delete(idx);
fail:
    bl_hf_close(h);
    return st;
}

static const bl_st_tensor *find_any(const bl_hf_folder *h, const char *name, const bl_st_file **file) {
    for (int i = 0; i < h->n_files; i++) {
        const bl_st_tensor *t = bl_st_find(&h->files[i], name);
        if (t) { if (file) *file = &h->files[i]; return t; }
    }
    return NULL;
}

const bl_st_tensor *bl_hf_find(const bl_hf_folder *h, const char *name, const char *prefix, const bl_st_file **file) {
    const bl_st_tensor *t = find_any(h, name, file);
    if (t || !prefix || !*prefix) return t;
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) == 0) return find_any(h, name + pl, file);
    char buf[1024];
    if ((size_t)snprintf(buf, sizeof buf, "%s%s", prefix, name) >= sizeof buf) return NULL;
    return find_any(h, buf, file);
}

balora_status bl_hf_read_f32(const bl_hf_folder *h, const char *name, const char *prefix, int ndim, const int64_t *shape, float *out) {
    const bl_st_file *f = NULL;
    const bl_st_tensor *t = bl_hf_find(h, name, prefix, &f);
    if (!t) return bl_fail(BALORA_STATUS_FORMAT, "%s: missing tensor '%s' (hint: does config.json match these weights?)", h->dir, name);
    return bl_st_read_f32(f, t->name, ndim, shape, out);
}

balora_status bl_hf_copy_side_files(const char *from_dir, const char *to_dir, bool with_config, int *n_copied) {
    static const char *const names[] = {"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model", "spm.model",
                                        "added_tokens.json", "generation_config.json"};
    BL_TRY(bl_mkdir_p(to_dir));
    for (size_t i = with_config ? 0 : 1; i < sizeof names / sizeof names[0]; i++) {
        char src[4200], dst[4200];
        BL_TRY(bl_path_join(src, sizeof src, from_dir, names[i]));
        if (!bl_file_exists(src)) {
            if (i == 0) return bl_fail(BALORA_STATUS_IO, "%s: missing; hint: the model must be a Hugging Face folder", src);
            continue;
        }
        BL_TRY(bl_path_join(dst, sizeof dst, to_dir, names[i]));
        BL_TRY(bl_file_copy(src, dst));
        if (n_copied) (*n_copied)++;
    }
    return BALORA_STATUS_OK;
}
