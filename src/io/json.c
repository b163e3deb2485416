/* cJSON helpers with errors that name the file and the field. */
#include "io/json.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

balora_status bl_json_parse(const char *what, const char *text, size_t len, cJSON **out) {
    const char *end = NULL;
    size_t bad = 0;
    *out = NULL;
    if (!bl_utf8_valid(text, len, &bad))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: not valid UTF-8 at byte %zu (JSON text must be UTF-8)", what, bad);
    *out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!*out) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        size_t line = 1;
        for (size_t i = 0; i < off && i < len; i++) if (text[i] == '\n') line++;
        return bl_fail(BALORA_STATUS_FORMAT, "%s: invalid JSON near byte %zu (line %zu)", what, off, line);
    }
    return BALORA_STATUS_OK;
}

balora_status bl_json_array_as_lines(const char *path, const char *text, size_t len, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    size_t i = len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')) i++;
    if (i >= len || text[i] != '[') return BALORA_STATUS_OK;
    cJSON *arr;
    BL_TRY(bl_json_parse(path, text + i, len - i, &arr));
    balora_status st = BALORA_STATUS_OK;
    size_t cap = len - i + 16, n = 0; /* unformatted output is never much longer than the input */
    char *buf = bl_malloc(cap);
    if (!buf) st = BALORA_STATUS_NOMEM;
    int64_t rec = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (st) break;
        rec++;
        if (!cJSON_IsObject(it)) {
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: record %lld of the JSON array is not an object; hint: a list of {field: value} records",
                         path, (long long)rec);
            break;
        }
        char *line = cJSON_PrintUnformatted(it);
        if (!line) { st = bl_fail(BALORA_STATUS_NOMEM, "%s: record %lld: out of memory", path, (long long)rec); break; }
        size_t l = strlen(line);
        if (n + l + 2 > cap) {
            size_t nc = (n + l + 2) * 2;
            char *nb = bl_realloc(buf, nc);
            if (!nb) { free(line); st = BALORA_STATUS_NOMEM; break; }
            buf = nb; cap = nc;
        }
        memcpy(buf + n, line, l);
        n += l;
        buf[n++] = '\n';
        free(line);
    }
    cJSON_Delete(arr);
    if (st) { free(buf); return st; }
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return BALORA_STATUS_OK;
}

balora_status bl_json_load(const char *path, cJSON **out) {
    char *text; size_t len;
    *out = NULL;
    BL_TRY(bl_file_read(path, &text, &len));
    balora_status st = bl_json_parse(path, text, len, out);
    free(text);
    return st;
}

static const cJSON *field(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

balora_status bl_json_int(const cJSON *obj, const char *file, const char *key, bool required, int64_t *out) {
    const cJSON *v = field(obj, key);
    if (!v) return required ? bl_fail(BALORA_STATUS_FORMAT, "%s: missing required field '%s'", file, key) : BALORA_STATUS_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 9.0e15)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s' must be an integer", file, key);
    *out = (int64_t)v->valuedouble;
    return BALORA_STATUS_OK;
}

balora_status bl_json_num(const cJSON *obj, const char *file, const char *key, bool required, double *out) {
    const cJSON *v = field(obj, key);
    if (!v) return required ? bl_fail(BALORA_STATUS_FORMAT, "%s: missing required field '%s'", file, key) : BALORA_STATUS_OK;
    if (!cJSON_IsNumber(v)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s' must be a number", file, key);
    *out = v->valuedouble;
    return BALORA_STATUS_OK;
}

balora_status bl_json_bool(const cJSON *obj, const char *file, const char *key, bool required, bool *out) {
    const cJSON *v = field(obj, key);
    if (!v) return required ? bl_fail(BALORA_STATUS_FORMAT, "%s: missing required field '%s'", file, key) : BALORA_STATUS_OK;
    if (!cJSON_IsBool(v)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s' must be true or false", file, key);
    *out = cJSON_IsTrue(v);
    return BALORA_STATUS_OK;
}

balora_status bl_json_str(const cJSON *obj, const char *file, const char *key, bool required, const char **out) {
    const cJSON *v = field(obj, key);
    if (!v) {
        if (required) return bl_fail(BALORA_STATUS_FORMAT, "%s: missing required field '%s'", file, key);
        return BALORA_STATUS_OK;
    }
    if (!cJSON_IsString(v)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s' must be a string", file, key);
    *out = v->valuestring;
    return BALORA_STATUS_OK;
}

balora_status bl_json_save(const cJSON *obj, const char *path) {
    char *s = cJSON_Print(obj);
    if (!s) return bl_fail(BALORA_STATUS_NOMEM, "%s: cannot serialise JSON", path);
    size_t n = strlen(s);
    char *t = bl_realloc(s, n + 2);
    if (!t) { free(s); return BALORA_STATUS_NOMEM; }
    t[n] = '\n'; t[n + 1] = 0;
    balora_status st = bl_file_write_atomic(path, t, n + 1);
    free(t);
    return st;
}
