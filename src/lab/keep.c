/* Finished lab runs kept on disk: hex records and the job's fingerprint (keep.h). */
#include "lab/keep.h"
#include "io/json.h"
#include <stdlib.h>
#include <string.h>

static void hex_put(char *out, const void *p, size_t bytes) {
    const unsigned char *b = p;
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < bytes; i++) { out[2 * i] = d[b[i] >> 4]; out[2 * i + 1] = d[b[i] & 15]; }
    out[2 * bytes] = 0;
}
static bool hex_get(const char *in, void *p, size_t bytes) {
    unsigned char *b = p;
    if (!in || strlen(in) != 2 * bytes) return false;
    for (size_t i = 0; i < 2 * bytes; i++) {
        char ch = in[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0) return false;
        if (i % 2 == 0) b[i / 2] = (unsigned char)(v << 4); else b[i / 2] |= (unsigned char)v;
    }
    return true;
}

balora_status bl_lab_keep_put(cJSON *o, const char *key, const void *p, size_t bytes) {
    char *h = bl_malloc(2 * bytes + 1);
    if (!h) return BALORA_STATUS_NOMEM;
    hex_put(h, p, bytes);
    cJSON_AddStringToObject(o, key, h);
    free(h);
    return BALORA_STATUS_OK;
}

balora_status bl_lab_keep_get(const cJSON *o, const char *path, const char *key, void *p, size_t bytes) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v) || !hex_get(v->valuestring, p, bytes))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s' must be %zu hex digits (the values' bits); hint: remove the file to redo "
                       "the run", path, key, 2 * bytes);
    return BALORA_STATUS_OK;
}

balora_status bl_lab_keep_write(cJSON *o, const char *path) {
    char *txt = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!txt) return bl_fail(BALORA_STATUS_NOMEM, "%s: out of memory", path);
    balora_status st = bl_file_write_atomic(path, txt, strlen(txt));
    free(txt);
    return st;
}

balora_status bl_lab_keep_fingerprint(cJSON *f, const char *runs_dir, const char *file) {
    if (!f) return BALORA_STATUS_NOMEM;
    char path[4200];
    balora_status st = bl_path_join(path, sizeof path, runs_dir, file);
    if (!st && bl_file_exists(path)) {
        cJSON *old = NULL;
        st = bl_json_load(path, &old);
        const cJSON *x;
        const cJSON *mine = st ? NULL : f;
        cJSON_ArrayForEach(x, mine) {
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(old, x->string);
            char *a = cJSON_PrintUnformatted(x), *b = y ? cJSON_PrintUnformatted(y) : NULL;
            bool diff = !a || !b || strcmp(a, b) != 0;
            if (diff)
                st = bl_fail(BALORA_STATUS_INVALID, "%s: field '%s' is %s there but %s in this run: the folder holds the runs of another "
                             "lab job, which are never mixed in; hint: use another --out, or remove %s to start over", path, x->string,
                             b ? b : "(absent)", a ? a : "?", runs_dir);
            free(a); free(b);
            if (diff) break;
        }
        cJSON_Delete(old);
        cJSON_Delete(f);
        return st;
    }
    if (!st) st = bl_mkdir_p(runs_dir);
    if (!st) return bl_lab_keep_write(f, path);
    cJSON_Delete(f);
    return st;
}
