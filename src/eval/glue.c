/* GLUE label and prediction files (see glue.h). */
#include "eval/glue.h"
#include "data_glue/tasks.h"
#include "eval/jsonl.h"
#include "io/json.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

balora_status bl_glue_label_value(bl_glue_task task, const char *text, double *out) {
    while (*text == ' ') text++;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end != text && !errno) {
        while (*end == ' ' || *end == '\r') end++;
        if (!*end && isfinite(v)) { *out = v; return BALORA_STATUS_OK; }
    }
    /* label words: the task's own label names (MNLI, QNLI, RTE), else entailment / not_entailment
     * (RTE's, accepted for every other task) */
    const bl_glue_task_info *ti = bl_glue_task_get(task);
    if (!ti || !ti->labels[0] || !strcmp(ti->labels[0], "0")) ti = bl_glue_task_get(BL_GLUE_TASK_RTE);
    size_t n = strcspn(text, " \r");
    char hint[128] = "";
    for (int i = 0; i < ti->n_labels && ti->labels[i]; i++) {
        if (strlen(ti->labels[i]) == n && !strncasecmp(text, ti->labels[i], n)) { *out = i; return BALORA_STATUS_OK; }
        size_t o = strlen(hint);
        snprintf(hint + o, sizeof hint - o, "%s%s", i ? "/" : " or ", ti->labels[i]);
    }
    return bl_fail(BALORA_STATUS_FORMAT, "'%.40s' is not a label of %s; hint: use class ids (0, 1, ...)%s", text, bl_glue_task_name(task),
                   hint);
}

/* Splits line in place at tabs into f[0..max); returns the count. */
static int split_tabs(char *line, char **f, int max) {
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++) if (*p == '\t') { *p = 0; f[n++] = p + 1; }
    return n;
}

static char *next_line(char **cur) {
    char *s = *cur;
    if (!*s) return NULL;
    char *e = strchr(s, '\n');
    if (e) { *e = 0; *cur = e + 1; } else *cur = s + strlen(s);
    size_t n = strlen(s);
    if (n && s[n - 1] == '\r') s[n - 1] = 0;
    return s;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

static balora_status json_label(bl_glue_task task, const cJSON *item, const char *key, const char *where, int64_t i, double *out) {
    const cJSON *v = cJSON_IsObject(item) ? cJSON_GetObjectItemCaseSensitive(item, key) : NULL;
    if (cJSON_IsNumber(v)) { *out = v->valuedouble; return BALORA_STATUS_OK; }
    if (cJSON_IsString(v)) return bl_glue_label_value(task, v->valuestring, out);
    return bl_fail(BALORA_STATUS_FORMAT, "%s: example %lld has no '%s' label (a number or label word)", where, (long long)i, key);
}

typedef struct jl_ctx { bl_glue_task task; const char *key; double *v; int64_t n, cap; } jl_ctx;

static balora_status jl_line(void *vctx, const char *path, int64_t line, const cJSON *o) {
    jl_ctx *c = vctx;
    if (c->n == c->cap) {
        int64_t nc = c->cap ? 2 * c->cap : 1024;
        double *nv = bl_realloc(c->v, (size_t)nc * sizeof *nv); /* [nc] labels so far */
        if (!nv) return BALORA_STATUS_NOMEM;
        c->v = nv; c->cap = nc;
    }
    char where[600];
    snprintf(where, sizeof where, "%s: line %lld", path, (long long)line);
    BL_TRY(json_label(c->task, o, c->key, where, c->n, &c->v[c->n]));
    c->n++;
    return BALORA_STATUS_OK;
}

/* Adversarial GLUE layout: {"TASK": [{..., "label": 1}, ...], ...}, the task name as key;
 * or a JSON array of objects; or JSON lines of objects. */
static balora_status read_json_labels(bl_glue_task task, const char *path, const char *column, double **labels, int64_t *n) {
    const char *key = column ? column : "label";
    balora_status st = BALORA_STATUS_OK;
    double *v = NULL;
    int64_t k = 0;
    if (ends_with(path, ".jsonl")) {
        jl_ctx c = {.task = task, .key = key};
        st = bl_jsonl_read(path, jl_line, &c);
        v = c.v; k = c.n;
    } else {
        cJSON *root;
        BL_TRY(bl_json_load(path, &root));
        const cJSON *arr = root;
        if (cJSON_IsObject(root)) {
            arr = cJSON_GetObjectItemCaseSensitive(root, bl_glue_task_name(task));
            if (!cJSON_IsArray(arr)) {
                char list[160];
                st = bl_fail(BALORA_STATUS_FORMAT, "%s: no list of examples under the key '%s'; hint: --glue-task names the key (%s)",
                             path, bl_glue_task_name(task), bl_glue_task_list(2, list, sizeof list));
            }
        } else if (!cJSON_IsArray(root)) st = bl_fail(BALORA_STATUS_FORMAT, "%s: expected an object of task lists or a list of examples", path);
        int64_t m = st ? 0 : cJSON_GetArraySize(arr);
        if (!st && !(v = bl_malloc((size_t)(m ? m : 1) * sizeof *v))) st = BALORA_STATUS_NOMEM; /* [m] */
        const cJSON *it;
        if (!st) cJSON_ArrayForEach(it, arr) {
            if ((st = json_label(task, it, key, path, k, &v[k]))) break;
            k++;
        }
        cJSON_Delete(root);
    }
    if (!st && k == 0) st = bl_fail(BALORA_STATUS_FORMAT, "%s: no labelled examples", path);
    if (st) { free(v); return st; }
    *labels = v; *n = k;
    return BALORA_STATUS_OK;
}

balora_status bl_glue_read_labels(bl_glue_task task, const char *path, const char *column, double **labels, int64_t *n) {
    *labels = NULL; *n = 0;
    if (ends_with(path, ".json") || ends_with(path, ".jsonl")) return read_json_labels(task, path, column, labels, n);
    if ((unsigned)task >= BL_GLUE_TASK_COUNT) return bl_fail(BALORA_STATUS_INVALID, "bad GLUE task");
    /* the task's label column: a headerless file's column number, else the header name (generic: "label") */
    const bl_glue_task_info *ti = bl_glue_task_get(task);
    char bare[16];
    if (ti && ti->bare_label >= 0) snprintf(bare, sizeof bare, "%d", ti->bare_label);
    const char *col = column ? column : !ti ? "label" : ti->bare_label >= 0 ? bare : ti->col_label;
    char *end;
    long colno = strtol(col, &end, 10);
    bool by_number = *col && !*end;
    if (by_number && (colno < 0 || colno >= 4096))
        return bl_fail(BALORA_STATUS_INVALID, "%s: label column %s must be a 0-based index below 4096 (as train's --label-col); "
                       "hint: the first column is 0", path, col);
    char *text; size_t len;
    BL_TRY(bl_file_read(path, &text, &len));
    int64_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    double *v = bl_malloc((size_t)lines * sizeof *v); /* [lines] upper bound */
    char **f = bl_malloc(4096 * sizeof *f);          /* [4096] fields of one line */
    if (!v || !f) { free(text); free(v); free(f); return BALORA_STATUS_NOMEM; }
    balora_status st = BALORA_STATUS_OK;
    char *cur = text, *line;
    int idx = by_number ? (int)colno : -1;
    int64_t lineno = 0, k = 0;
    while (!st && (line = next_line(&cur))) {
        lineno++;
        if (!*line) continue;
        int nf = split_tabs(line, f, 4096);
        if (idx < 0) { /* the header names the column */
            for (int i = 0; i < nf; i++) if (!strcmp(f[i], col)) idx = i;
            if (idx < 0) st = bl_fail(BALORA_STATUS_FORMAT, "%s: no column '%s' in the header line; hint: wrong --glue-task, or name it with --label-col", path, col);
            continue;
        }
        if (idx >= nf) { st = bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld has %d columns, the label is in column %d (0-based)", path, (long long)lineno, nf, idx); break; }
        st = bl_glue_label_value(task, f[idx], &v[k]);
        if (st) st = bl_fail_prefix(st, "%s: line %lld", path, (long long)lineno);
        k++;
    }
    free(text); free(f);
    if (!st && k == 0) st = bl_fail(BALORA_STATUS_FORMAT, "%s: no labelled examples", path);
    if (st) { free(v); return st; }
    *labels = v; *n = k;
    return BALORA_STATUS_OK;
}

balora_status bl_glue_read_predictions(bl_glue_task task, const char *path, double **preds, int64_t *n) {
    *preds = NULL; *n = 0;
    char *text; size_t len;
    BL_TRY(bl_file_read(path, &text, &len));
    int64_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    double *v = bl_malloc((size_t)lines * sizeof *v); /* [lines] upper bound */
    if (!v) { free(text); return BALORA_STATUS_NOMEM; }
    balora_status st = BALORA_STATUS_OK;
    char *cur = text, *line, *f[8];
    int64_t lineno = 0, k = 0;
    while (!st && (line = next_line(&cur))) {
        lineno++;
        if (!*line) continue;
        int nf = split_tabs(line, f, 8);
        if (lineno == 1 && nf == 2 && !strcasecmp(f[0], "index") && !strcasecmp(f[1], "prediction")) continue;
        st = bl_glue_label_value(task, f[nf - 1], &v[k]);
        if (st) st = bl_fail_prefix(st, "%s: line %lld", path, (long long)lineno);
        k++;
    }
    free(text);
    if (!st && k == 0) st = bl_fail(BALORA_STATUS_FORMAT, "%s: no predictions", path);
    if (st) { free(v); return st; }
    *preds = v; *n = k;
    return BALORA_STATUS_OK;
}
