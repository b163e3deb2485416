/* Helpers shared by the tokenizer tests: reading the reference files of tests/data/tok. */
#ifndef TEST_TOK_COMMON_H
#define TEST_TOK_COMMON_H
#include "harness.h"
#include "tok/tok.h"
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* Lines of a file (without '\n'); *n receives the count. The buffer and array are malloc'd. */
__attribute__((unused)) static char **tt_lines(const char *path, size_t *n, char **buf) {
    size_t len;
    if (bl_file_read(path, buf, &len) != BALORA_STATUS_OK) { fprintf(stderr, "cannot read %s: %s\n", path, balora_last_error()); exit(1); }
    size_t cap = 16, k = 0;
    char **v = malloc(cap * sizeof *v);
    char *p = *buf, *end = *buf + len;
    while (p < end) {
        char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        *e = 0;
        if (k == cap) { cap *= 2; v = realloc(v, cap * sizeof *v); }
        v[k++] = p;
        p = e + 1;
    }
    *n = k;
    return v;
}

__attribute__((unused)) static const char *tt_data(const char *name) {
    static char path[8][1024];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(path[slot], sizeof path[slot], "%s/tests/data/tok/%s", t_source_dir(), name);
    return path[slot];
}

/* ids as "1 2 3" */
static void tt_format(const int32_t *ids, size_t n, char *out, size_t cap) {
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && o + 16 < cap; i++) o += (size_t)snprintf(out + o, cap - o, i ? " %d" : "%d", ids[i]);
}

/* parses "1 2 3" into ids (cap entries); returns the count */
__attribute__((unused)) static size_t tt_parse(const char *s, int32_t *ids, size_t cap) {
    size_t n = 0;
    while (*s && n < cap) {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s) break;
        ids[n++] = (int32_t)v;
        s = e;
    }
    return n;
}

/* Encodes every JSON-string line of inputs with t and compares with the reference lines.
 * Returns the number of mismatching lines (each printed). */
__attribute__((unused)) static int tt_compare(bl_tok *t, const char *what, char **inputs, size_t n_in, char **refs, size_t n_ref, bool add_special) {
    if (n_in != n_ref) { fprintf(stderr, "%s: %zu inputs but %zu reference lines\n", what, n_in, n_ref); return 1; }
    bl_tok_enc e = {0};
    static char got[1 << 16];
    int bad = 0;
    for (size_t i = 0; i < n_in; i++) {
        cJSON *j = cJSON_Parse(inputs[i]);
        if (!cJSON_IsString(j)) { fprintf(stderr, "%s: input line %zu is not a JSON string\n", what, i + 1); cJSON_Delete(j); bad++; continue; }
        balora_status st = bl_tok_encode(t, j->valuestring, strlen(j->valuestring), add_special, &e);
        if (st) { fprintf(stderr, "%s line %zu: %s\n", what, i + 1, balora_last_error()); bad++; cJSON_Delete(j); continue; }
        tt_format(e.ids, e.n, got, sizeof got);
        if (strcmp(got, refs[i]) != 0) {
            if (bad < 5) fprintf(stderr, "%s line %zu %.60s\n  want %.300s\n  got  %.300s\n", what, i + 1, inputs[i], refs[i], got);
            bad++;
        }
        cJSON_Delete(j);
    }
    bl_tok_enc_free(&e);
    return bad;
}
#endif
