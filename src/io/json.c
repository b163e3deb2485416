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
