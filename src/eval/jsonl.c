/* JSON lines, plain or gzip-compressed (see jsonl.h). */
#include "eval/jsonl.h"
#include "io/json.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* A file that is one JSON array of records: element N is given to fn as line N. */
static balora_status read_array(gzFile f, const char *path, bl_jsonl_fn fn, void *ctx) {
    size_t cap = 1 << 16, len = 0;
    char *buf = bl_malloc(cap);
    if (!buf) return BALORA_STATUS_NOMEM;
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = bl_realloc(buf, cap * 2);
            if (!nb) { free(buf); return BALORA_STATUS_NOMEM; }
            buf = nb; cap *= 2;
        }
        int got = gzread(f, buf + len, (unsigned)(cap - 1 - len > (1u << 30) ? (1u << 30) : cap - 1 - len));
        if (got < 0) { int err; const char *m = gzerror(f, &err); free(buf); return bl_fail(BALORA_STATUS_FORMAT, "%s: cannot decompress: %s", path, m); }
        if (got == 0) break;
        len += (size_t)got;
    }
    cJSON *arr;
    balora_status st = bl_json_parse(path, buf, len, &arr);
    free(buf);
    if (st) return st;
    int64_t rec = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        rec++;
        if (!cJSON_IsObject(it)) { st = bl_fail(BALORA_STATUS_FORMAT, "%s: record %lld of the JSON array is not an object", path, (long long)rec); break; }
        if ((st = fn(ctx, path, rec, it))) break;
    }
    cJSON_Delete(arr);
    return st;
}

balora_status bl_jsonl_read(const char *path, bl_jsonl_fn fn, void *ctx) {
    gzFile f = gzopen(path, "rb");
    if (!f) return bl_fail(BALORA_STATUS_IO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
    int c0 = gzgetc(f); /* a JSON array of records instead of JSON lines? (after a BOM and whitespace) */
    if (c0 == 0xEF && gzgetc(f) == 0xBB && gzgetc(f) == 0xBF) c0 = gzgetc(f);
    while (c0 == ' ' || c0 == '\t' || c0 == '\r' || c0 == '\n') c0 = gzgetc(f);
    if (c0 == '[') {
        gzungetc(c0, f);
        balora_status ast = read_array(f, path, fn, ctx);
        gzclose(f);
        return ast;
    }
    gzrewind(f);
    size_t cap = 1 << 16, len = 0;
    char *buf = bl_malloc(cap); /* one line, grown as needed */
    if (!buf) { gzclose(f); return BALORA_STATUS_NOMEM; }
    balora_status st = BALORA_STATUS_OK;
    int64_t lineno = 0;
    for (;;) {
        len = 0;
        bool got = false;
        for (;;) {
            if (!gzgets(f, buf + len, (int)(cap - len))) break;
            got = true;
            len += strlen(buf + len);
            if (len && buf[len - 1] == '\n') break;
            if (len < cap - 1) continue; /* a short read: end of file without a newline; next gzgets returns NULL */
            char *nb = bl_realloc(buf, cap * 2);
            if (!nb) { st = BALORA_STATUS_NOMEM; break; }
            buf = nb; cap *= 2;
        }
        if (st || !got) break;
        lineno++;
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) buf[--len] = 0;
        if (len == 0) continue;
        char what[600];
        snprintf(what, sizeof what, "%s: line %lld", path, (long long)lineno);
        cJSON *obj;
        if ((st = bl_json_parse(what, buf, len, &obj))) break;
        if (!cJSON_IsObject(obj)) st = bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld is not a JSON object", path, (long long)lineno);
        else st = fn(ctx, path, lineno, obj);
        cJSON_Delete(obj);
        if (st) break;
    }
    int err;
    const char *zmsg = gzerror(f, &err);
    if (!st && err != Z_OK && err != Z_STREAM_END) st = bl_fail(BALORA_STATUS_FORMAT, "%s: cannot decompress: %s", path, zmsg);
    gzclose(f);
    free(buf);
    return st;
}
