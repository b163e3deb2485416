/* GLUE / Adversarial GLUE / generic CSV, TSV, JSONL loaders and the data knobs (data.h). */
#include "data_glue/data.h"
#include "io/json.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- storage */

/* Row-level label as read, resolved into ids / scores once every row is known. */
typedef struct raw_labels {
    const char **str; /* [cap] label text, or NULL */
    double *num;      /* [cap] numeric label (JSON numbers) */
    uint8_t *kind;    /* [cap] 0 missing, 1 string, 2 number */
} raw_labels;

static balora_status dataset_alloc(bl_glue_set *d, int64_t cap, bool pair, raw_labels *rl, void **rl_block) {
    if (cap < 1) cap = 1;
    bl_arena a = {0};
    for (int pass = 0; pass < 2; pass++) {
        d->text_a = bl_arena_take(&a, (size_t)cap * sizeof(char *));
        d->text_b = pair ? bl_arena_take(&a, (size_t)cap * sizeof(char *)) : NULL;
        d->label = bl_arena_take(&a, (size_t)cap * sizeof(int32_t));
        d->label_clean = bl_arena_take(&a, (size_t)cap * sizeof(int32_t));
        d->score = bl_arena_take(&a, (size_t)cap * sizeof(float));
        d->row = bl_arena_take(&a, (size_t)cap * sizeof(int64_t));
        if (pass == 0) BL_TRY(bl_arena_alloc(&a));
    }
    d->block = a.base;
    /* temporary label scratch, freed at the end of the load */
    size_t nb = (size_t)cap * (sizeof(char *) + sizeof(double) + 1);
    char *b = bl_malloc(nb);
    if (!b) return BALORA_STATUS_NOMEM;
    rl->str = (const char **)b;
    rl->num = (double *)(b + (size_t)cap * sizeof(char *));
    rl->kind = (uint8_t *)(b + (size_t)cap * (sizeof(char *) + sizeof(double)));
    *rl_block = b;
    return BALORA_STATUS_OK;
}

void bl_glue_set_free(bl_glue_set *d) {
    if (!d) return;
    free(d->block);
    free(d->text);
    memset(d, 0, sizeof *d);
}

static void meta_init(bl_glue_set *d, const char *path, const char *format, const char *task) {
    snprintf(d->meta.source, sizeof d->meta.source, "%s", path);
    snprintf(d->meta.format, sizeof d->meta.format, "%s", format);
    snprintf(d->meta.task, sizeof d->meta.task, "%s", task);
}

/* Reads the file, checks it is text (UTF-8, no NUL), skips a UTF-8 BOM. */
static balora_status read_text(const char *path, char **buf, size_t *len, char **start) {
    BL_TRY(bl_file_read(path, buf, len));
    const char *nul = memchr(*buf, 0, *len);
    if (nul) {
        size_t off = (size_t)(nul - *buf);
        free(*buf); *buf = NULL;
        return bl_fail(BALORA_STATUS_FORMAT, "%s: NUL byte at offset %zu; hint: this is not a text file", path, off);
    }
    size_t bad;
    if (!bl_utf8_valid(*buf, *len, &bad)) {
        int64_t line = 1;
        for (size_t i = 0; i < bad; i++) if ((*buf)[i] == '\n') line++;
        free(*buf); *buf = NULL;
        return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: invalid UTF-8 at byte offset %zu; hint: convert the file to UTF-8",
                       path, (long long)line, bad);
    }
    *start = *buf;
    if (*len >= 3 && (unsigned char)(*buf)[0] == 0xEF && (unsigned char)(*buf)[1] == 0xBB && (unsigned char)(*buf)[2] == 0xBF)
        *start += 3;
    return BALORA_STATUS_OK;
}

static int64_t count_lines(const char *s, const char *end) {
    int64_t n = 1;
    for (; s < end; s++) if (*s == '\n') n++;
    return n;
}

/* ---------------------------------------------------------------- delimited records */

#define MAX_FIELDS 64

/* One record from *pos: fields split on sep, unescaped in place ("" inside "..." when quotes).
 * Sets *nf to the number of fields (fields beyond MAX_FIELDS are counted, not stored) and
 * *blank when the record is an empty line. *line counts newlines consumed. */
static balora_status next_record(char **pos, char *end, char sep, bool quotes, char **fields, int *nf,
                                 bool *blank, int64_t *line, const char *path) {
    char *p = *pos;
    int n = 0;
    *blank = (p < end && (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n'))) || p == end;
    for (;;) {
        char *w = p, *start = p;
        if (n < MAX_FIELDS) fields[n] = w;
        if (quotes && p < end && *p == '"') {
            int64_t qline = *line;
            p++;
            for (;;) {
                if (p >= end)
                    return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: a quoted field is never closed; hint: double "
                                   "any '\"' inside a quoted field", path, (long long)qline);
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') { *w++ = '"'; p += 2; continue; }
                    p++;
                    break;
                }
                if (*p == '\n') (*line)++;
                *w++ = *p++;
            }
            if (p < end && *p == '\r' && p + 1 < end && p[1] == '\n') p++;
            if (p < end && *p != sep && *p != '\n')
                return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: unexpected character '%c' after a closing quote; "
                               "hint: a quoted field must end at a separator or the end of the line", path,
                               (long long)*line, *p);
        } else {
            while (p < end && *p != sep && *p != '\n') p++;
            w = p;
            if (w > start && w[-1] == '\r' && (p == end || *p == '\n')) w--;
        }
        bool more = p < end && *p == sep;
        if (p < end) { if (*p == '\n') (*line)++; p++; }
        *w = '\0';
        n++;
        if (!more) break;
    }
    *pos = p;
    *nf = n;
    return BALORA_STATUS_OK;
}

/* ---------------------------------------------------------------- label resolution */

static bool parse_int(const char *s, long long *out) {
    if (!s || !*s) return false;
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (errno || *e) return false;
    *out = v;
    return true;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static balora_status set_label_names_csv(bl_glue_set *d, const char *csv, const char *path) {
    d->n_labels = 0;
    const char *p = csv;
    for (;;) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == 0) return bl_fail(BALORA_STATUS_INVALID, "%s: label map '%s' has an empty name", path, csv);
        if (len >= BL_DATA_LABEL_NAME)
            return bl_fail(BALORA_STATUS_INVALID, "%s: label name '%.*s' is longer than %d bytes", path, (int)len, p, BL_DATA_LABEL_NAME - 1);
        if (d->n_labels >= BL_DATA_MAX_LABELS)
            return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: more than %d labels in the label map", path, BL_DATA_MAX_LABELS);
        memcpy(d->label_names[d->n_labels], p, len);
        d->label_names[d->n_labels][len] = 0;
        for (int j = 0; j < d->n_labels; j++)
            if (!strcmp(d->label_names[j], d->label_names[d->n_labels]))
                return bl_fail(BALORA_STATUS_INVALID, "%s: label '%s' appears twice in the label map", path, d->label_names[j]);
        d->n_labels++;
        if (!q) break;
        p = q + 1;
    }
    return BALORA_STATUS_OK;
}

/* Fills d->label / d->score / has_labels from the raw labels. names_known: d->label_names and
 * d->n_labels are set already (GLUE or spec->labels). */
static balora_status resolve_labels(bl_glue_set *d, const raw_labels *rl, bool names_known, const char *path) {
    int64_t n = d->n, n_have = 0;
    for (int64_t i = 0; i < n; i++) if (rl->kind[i]) n_have++;
    for (int64_t i = 0; i < n; i++) { d->label[i] = -1; d->score[i] = NAN; }
    if (n_have == 0) { d->has_labels = false; goto counts; }
    if (n_have != n) {
        for (int64_t i = 0; i < n; i++)
            if (!rl->kind[i])
                return bl_fail(BALORA_STATUS_FORMAT, "%s: row %lld has no label while others do; hint: every row of a "
                               "labelled file needs a label", path, (long long)d->row[i]);
    }
    d->has_labels = true;
    if (d->regression) {
        for (int64_t i = 0; i < n; i++) {
            double v = rl->num[i];
            if (rl->kind[i] == 1) {
                char *e;
                errno = 0;
                v = strtod(rl->str[i], &e);
                if (errno || e == rl->str[i] || *e)
                    return bl_fail(BALORA_STATUS_FORMAT, "%s: row %lld: score '%s' is not a number", path,
                                   (long long)d->row[i], rl->str[i]);
            }
            if (!isfinite(v))
                return bl_fail(BALORA_STATUS_FORMAT, "%s: row %lld: score is not finite", path, (long long)d->row[i]);
            d->score[i] = (float)v;
        }
        goto counts;
    }
    if (!names_known) {
        /* integer labels -> 0..max; otherwise sorted distinct names */
        bool all_int = true;
        long long maxv = -1;
        for (int64_t i = 0; i < n && all_int; i++) {
            long long v;
            if (rl->kind[i] == 2) {
                if (rl->num[i] != floor(rl->num[i]) || rl->num[i] < 0 || rl->num[i] > 1e9) all_int = false; else v = (long long)rl->num[i];
            } else if (!parse_int(rl->str[i], &v) || v < 0) all_int = false;
            if (all_int && v > maxv) maxv = v;
        }
        if (all_int) {
            if (maxv + 1 > BL_DATA_MAX_LABELS)
                return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: integer labels go up to %lld; balora handles at most %d classes",
                               path, maxv, BL_DATA_MAX_LABELS);
            d->n_labels = (int)(maxv + 1);
            for (int c = 0; c < d->n_labels; c++) snprintf(d->label_names[c], BL_DATA_LABEL_NAME, "%d", c);
        } else {
            const char **tmp = bl_malloc((size_t)n * sizeof *tmp);
            if (!tmp) return BALORA_STATUS_NOMEM;
            for (int64_t i = 0; i < n; i++) {
                if (rl->kind[i] == 2) {
                    free(tmp);
                    return bl_fail(BALORA_STATUS_FORMAT, "%s: row %lld: a numeric label among text labels; hint: give "
                                   "the label map explicitly (--labels a,b,c)", path, (long long)d->row[i]);
                }
                tmp[i] = rl->str[i];
            }
            qsort(tmp, (size_t)n, sizeof *tmp, cmp_str);
            d->n_labels = 0;
            for (int64_t i = 0; i < n; i++) {
                if (i > 0 && !strcmp(tmp[i], tmp[i - 1])) continue;
                if (d->n_labels >= BL_DATA_MAX_LABELS || strlen(tmp[i]) >= BL_DATA_LABEL_NAME) {
                    free(tmp);
                    return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: more than %d distinct labels, or a label name over %d "
                                   "bytes; hint: is the label column right?", path, BL_DATA_MAX_LABELS, BL_DATA_LABEL_NAME - 1);
                }
                snprintf(d->label_names[d->n_labels++], BL_DATA_LABEL_NAME, "%s", tmp[i]);
            }
            free(tmp);
        }
    }
    for (int64_t i = 0; i < n; i++) {
        int id = -1;
        if (rl->kind[i] == 1) {
            for (int c = 0; c < d->n_labels; c++) if (!strcmp(rl->str[i], d->label_names[c])) { id = c; break; }
            long long v;
            if (id < 0 && parse_int(rl->str[i], &v) && v >= 0 && v < d->n_labels) id = (int)v;
        } else if (rl->num[i] == floor(rl->num[i]) && rl->num[i] >= 0 && rl->num[i] < d->n_labels) {
            id = (int)rl->num[i];
        }
        if (id < 0) {
            char names[512] = "";
            size_t o = 0;
            for (int c = 0; c < d->n_labels && o < sizeof names - 80; c++)
                o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", c ? ", " : "", d->label_names[c]);
            char shown[80];
            if (rl->kind[i] == 1) snprintf(shown, sizeof shown, "'%.60s'", rl->str[i]);
            else snprintf(shown, sizeof shown, "%g", rl->num[i]);
            return bl_fail(BALORA_STATUS_FORMAT, "%s: row %lld: label %s is not one of the %d labels (%s) nor an id "
                           "below %d; hint: check the task or the label map", path, (long long)d->row[i], shown,
                           d->n_labels, names, d->n_labels);
        }
        d->label[i] = id;
    }
counts:
    memcpy(d->label_clean, d->label, (size_t)n * sizeof *d->label);
    memset(d->meta.count_file, 0, sizeof d->meta.count_file);
    if (!d->regression)
        for (int64_t i = 0; i < n; i++) if (d->label[i] >= 0) d->meta.count_file[d->label[i]]++;
    memcpy(d->meta.count, d->meta.count_file, sizeof d->meta.count);
    d->meta.n_file = n;
    if (n == 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: no examples in the file", path);
    return BALORA_STATUS_OK;
}

/* ---------------------------------------------------------------- GLUE TSV */

static int find_col(char **fields, int nf, const char *name) {
    for (int i = 0; i < nf && i < MAX_FIELDS; i++) if (!strcmp(fields[i], name)) return i;
    return -1;
}

/* Delimited-file core shared by the GLUE and generic loaders. Columns: ia, ib (-1 none), il (-1 none).
 * header: the first record is a header (skipped). */
typedef struct delim_job {
    const char *path;
    char sep;
    bool quotes;
    bool skip_bad;
} delim_job;

static balora_status delim_rows(bl_glue_set *d, raw_labels *rl, const delim_job *j, char *p, char *end,
                                int64_t line, int ia, int ib, int il) {
    char *fields[MAX_FIELDS];
    int need = ia;
    if (ib > need) need = ib;
    if (il > need) need = il;
    int64_t n = 0;
    while (p < end) {
        int nf;
        bool blank;
        int64_t row_line = line;
        BL_TRY(next_record(&p, end, j->sep, j->quotes, fields, &nf, &blank, &line, j->path));
        if (blank && nf == 1) continue;
        if (nf <= need) {
            if (j->skip_bad) { d->meta.n_skipped++; continue; }
            return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: %d field%s, expected at least %d; hint: the file's "
                           "layout does not match the task (or pass skip_bad_rows to skip such rows)", j->path,
                           (long long)row_line, nf, nf == 1 ? "" : "s", need + 1);
        }
        d->text_a[n] = fields[ia];
        if (ib >= 0) d->text_b[n] = fields[ib];
        rl->kind[n] = 0;
        if (il >= 0 && fields[il][0]) { rl->str[n] = fields[il]; rl->kind[n] = 1; } /* empty = no label */
        d->row[n] = row_line;
        n++;
    }
    d->n = n;
    return BALORA_STATUS_OK;
}

balora_status bl_glue_load(bl_glue_set *d, bl_glue_task task, const char *path, const bl_glue_opts *opts) {
    memset(d, 0, sizeof *d);
    const bl_glue_task_info *ti = bl_glue_task_get(task);
    if (!ti) return bl_fail(BALORA_STATUS_INVALID, "%s: bl_glue_load needs a GLUE task", path);
    char *buf, *start;
    size_t len;
    BL_TRY(read_text(path, &buf, &len, &start));
    d->text = buf;
    d->task = task;
    d->regression = ti->regression;
    meta_init(d, path, "glue-tsv", ti->name);
    char *end = buf + len;
    raw_labels rl;
    void *rlb = NULL;
    balora_status st = dataset_alloc(d, count_lines(start, end), ti->pair, &rl, &rlb);
    if (st) goto fail;
    delim_job j = {path, '\t', false, opts && opts->skip_bad_rows};
    char *p = start;
    int64_t line = 1;
    int ia, ib = -1, il;
    bool has_header = !strncmp(start, "index", 5) && (start[5] == '\t' || start[5] == '\n' || start[5] == '\r');
    if (ti->bare_a >= 0 && !has_header) {
        /* a headerless file (CoLA's train/dev: source, label, original judgement, sentence; its test
         * file has a header that starts with "index") */
        ia = ti->bare_a; il = ti->bare_label;
    } else {
        char *hf[MAX_FIELDS];
        int nf;
        bool blank;
        if ((st = next_record(&p, end, '\t', false, hf, &nf, &blank, &line, path))) goto fail;
        if (blank) { st = bl_fail(BALORA_STATUS_FORMAT, "%s: empty first line; hint: GLUE TSVs start with a header", path); goto fail; }
        ia = find_col(hf, nf, ti->col_a);
        if (ti->pair) ib = find_col(hf, nf, ti->col_b);
        il = find_col(hf, nf, ti->col_label);
        if (ia < 0 || (ti->pair && ib < 0)) {
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: the header has no column '%s' (the GLUE %s layout); hint: is the task right?",
                         path, ia < 0 ? ti->col_a : ti->col_b, ti->name);
            goto fail;
        }
    }
    if ((st = delim_rows(d, &rl, &j, p, end, line, ia, ib, il))) goto fail;
    for (int c = 0; c < ti->n_labels && !ti->regression; c++) snprintf(d->label_names[c], BL_DATA_LABEL_NAME, "%s", ti->labels[c]);
    d->n_labels = ti->n_labels;
    if ((st = resolve_labels(d, &rl, true, path))) goto fail;
    free(rlb);
    return BALORA_STATUS_OK;
fail:
    free(rlb);
    bl_glue_set_free(d);
    return st;
}

/* ---------------------------------------------------------------- Adversarial GLUE */

balora_status bl_advglue_load(bl_glue_set *d, bl_glue_task task, const char *path) {
    memset(d, 0, sizeof *d);
    const bl_glue_task_info *ti = bl_glue_task_get(task);
    if (!ti || !ti->adv_a) {
        char list[160];
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: Adversarial GLUE has no task '%s'; hint: one of %s", path,
                       ti ? ti->name : "generic", bl_glue_task_list(2, list, sizeof list));
    }
    cJSON *root;
    BL_TRY(bl_json_load(path, &root));
    balora_status st = BALORA_STATUS_OK;
    raw_labels rl;
    void *rlb = NULL;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, ti->name);
    if (!cJSON_IsArray(arr)) {
        st = bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s' is missing or not a list", path, ti->name);
        goto done;
    }
    int64_t n = cJSON_GetArraySize(arr);
    size_t pool = 1;
    const cJSON *it;
    int64_t k = 0;
    cJSON_ArrayForEach(it, arr) {
        const char *a = NULL, *b = NULL;
        char what[1200];
        snprintf(what, sizeof what, "%s: %s[%lld]", path, ti->name, (long long)k);
        if ((st = bl_json_str(it, what, ti->adv_a, true, &a))) goto done;
        if (ti->adv_b && (st = bl_json_str(it, what, ti->adv_b, true, &b))) goto done;
        pool += strlen(a) + 1 + (b ? strlen(b) + 1 : 0);
        k++;
    }
    d->task = task;
    d->regression = false;
    meta_init(d, path, "advglue", ti->name);
    d->text = bl_malloc(pool);
    if (!d->text) { st = BALORA_STATUS_NOMEM; goto done; }
    if ((st = dataset_alloc(d, n, ti->pair, &rl, &rlb))) goto done;
    char *w = d->text;
    k = 0;
    cJSON_ArrayForEach(it, arr) {
        const char *a = NULL, *b = NULL;
        int64_t idx = k, lab = 0;
        char what[1200];
        snprintf(what, sizeof what, "%s: %s[%lld]", path, ti->name, (long long)k);
        bl_json_str(it, what, ti->adv_a, true, &a);
        if (ti->adv_b) bl_json_str(it, what, ti->adv_b, true, &b);
        if ((st = bl_json_int(it, what, "idx", false, &idx))) goto done;
        if ((st = bl_json_int(it, what, "label", true, &lab))) goto done;
        size_t la = strlen(a) + 1;
        memcpy(w, a, la); d->text_a[k] = w; w += la;
        if (b) { size_t lb = strlen(b) + 1; memcpy(w, b, lb); d->text_b[k] = w; w += lb; }
        rl.kind[k] = 2; rl.num[k] = (double)lab;
        d->row[k] = idx;
        k++;
    }
    d->n = n;
    for (int c = 0; c < ti->n_labels; c++) snprintf(d->label_names[c], BL_DATA_LABEL_NAME, "%s", ti->labels[c]);
    d->n_labels = ti->n_labels;
    st = resolve_labels(d, &rl, true, path);
done:
    free(rlb);
    cJSON_Delete(root);
    if (st) bl_glue_set_free(d);
    return st;
}

/* ---------------------------------------------------------------- generic CSV / TSV / JSONL */

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

static balora_status col_index(char **hf, int nf, bool header, const char *name, const char *what, const char *path, int *out) {
    if (header) {
        *out = find_col(hf, nf, name);
        if (*out < 0) {
            char cols[512] = "";
            size_t o = 0;
            for (int i = 0; i < nf && i < MAX_FIELDS && o < sizeof cols - 70; i++)
                o += (size_t)snprintf(cols + o, sizeof cols - o, "%s'%.60s'", i ? ", " : "", hf[i]);
            return bl_fail(BALORA_STATUS_FORMAT, "%s: the header has no %s column '%s' (columns: %s); hint: name the "
                           "column with --text-col / --text-pair-col / --label-col", path, what, name, cols);
        }
        return BALORA_STATUS_OK;
    }
    long long v;
    if (!parse_int(name, &v) || v < 0 || v >= MAX_FIELDS)
        return bl_fail(BALORA_STATUS_INVALID, "%s: %s column '%s' must be a 0-based index below %d when the file has "
                       "no header", path, what, name, MAX_FIELDS);
    *out = (int)v;
    return BALORA_STATUS_OK;
}

static balora_status load_jsonl(bl_glue_set *d, raw_labels *rl, const bl_data_spec *s, char *p, char *end, const char *path) {
    int64_t line = 0, n = 0;
    while (p < end) {
        line++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        size_t ll = (size_t)(le - p);
        char *q = p;
        while (q < le && isspace((unsigned char)*q)) q++;
        if (q == le) { p = nl ? nl + 1 : end; continue; }
        char what[1100];
        snprintf(what, sizeof what, "%s: line %lld", path, (long long)line);
        cJSON *o = NULL;
        balora_status st = bl_json_parse(what, p, ll, &o);
        if (st == BALORA_STATUS_OK && !cJSON_IsObject(o)) {
            cJSON_Delete(o); o = NULL;
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: a JSONL line must be a JSON object", what);
        }
        const char *a = NULL, *b = NULL, *ls = NULL;
        double ln = 0;
        int kind = 0;
        if (st == BALORA_STATUS_OK) st = bl_json_str(o, what, s->text_col, true, &a);
        if (st == BALORA_STATUS_OK && s->text_pair_col) st = bl_json_str(o, what, s->text_pair_col, true, &b);
        if (st == BALORA_STATUS_OK && !s->no_labels) {
            const cJSON *lv = cJSON_GetObjectItemCaseSensitive(o, s->label_col);
            if (cJSON_IsString(lv)) { ls = lv->valuestring; kind = 1; }
            else if (cJSON_IsNumber(lv)) { ln = lv->valuedouble; kind = 2; }
            else if (cJSON_IsBool(lv)) { ln = cJSON_IsTrue(lv) ? 1 : 0; kind = 2; }
            else if (lv && !cJSON_IsNull(lv))
                st = bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s' must be a string or a number", what, s->label_col);
        }
        if (st) {
            cJSON_Delete(o);
            if (s->skip_bad_rows) { bl_clear_error(); d->meta.n_skipped++; p = nl ? nl + 1 : end; continue; }
            return st;
        }
        /* copy the decoded strings over the raw line: they are never longer than their escaped form */
        size_t need = strlen(a) + 1 + (b ? strlen(b) + 1 : 0) + (ls ? strlen(ls) + 1 : 0);
        if (need > ll) {
            cJSON_Delete(o);
            return bl_fail(BALORA_STATUS_INVALID, "%s: the text, pair and label columns must be different fields", what);
        }
        char *w = p;
        size_t la = strlen(a) + 1;
        memmove(w, a, la); d->text_a[n] = w; w += la;
        if (b) { size_t lb = strlen(b) + 1; memmove(w, b, lb); d->text_b[n] = w; w += lb; }
        rl->kind[n] = (uint8_t)kind;
        if (kind == 1) { size_t lc = strlen(ls) + 1; memmove(w, ls, lc); rl->str[n] = w; w += lc; }
        rl->num[n] = ln;
        d->row[n] = line;
        n++;
        cJSON_Delete(o);
        p = nl ? nl + 1 : end;
    }
    d->n = n;
    return BALORA_STATUS_OK;
}

balora_status bl_data_load(bl_glue_set *d, const bl_data_spec *spec, const char *path) {
    memset(d, 0, sizeof *d);
    bl_data_spec s = spec ? *spec : BL_DATA_SPEC_DEFAULT;
    if (!s.text_col || !*s.text_col) s.text_col = "text";
    if (!s.no_labels && (!s.label_col || !*s.label_col)) s.label_col = "label";
    if (s.text_pair_col && !*s.text_pair_col) s.text_pair_col = NULL;
    if ((s.text_pair_col && !strcmp(s.text_pair_col, s.text_col)) ||
        (!s.no_labels && (!strcmp(s.label_col, s.text_col) || (s.text_pair_col && !strcmp(s.label_col, s.text_pair_col)))))
        return bl_fail(BALORA_STATUS_INVALID, "%s: the text, text pair and label columns must differ", path);
    const char *fmt = s.format;
    if (!fmt) {
        if (ends_with(path, ".csv")) fmt = "csv";
        else if (ends_with(path, ".tsv")) fmt = "tsv";
        else if (ends_with(path, ".jsonl") || ends_with(path, ".json")) fmt = "jsonl";
        else return bl_fail(BALORA_STATUS_INVALID, "%s: cannot tell the format from the file name; hint: give the format "
                            "(csv, tsv or jsonl)", path);
    }
    bool csv = !strcmp(fmt, "csv"), tsv = !strcmp(fmt, "tsv"), jsonl = !strcmp(fmt, "jsonl");
    if (!csv && !tsv && !jsonl)
        return bl_fail(BALORA_STATUS_INVALID, "%s: format '%s' is unknown; hint: csv, tsv or jsonl", path, fmt);
    char *buf, *start;
    size_t len;
    BL_TRY(read_text(path, &buf, &len, &start));
    if (jsonl) { /* a JSON array of records reads as JSONL: record N = line N */
        char *lines = NULL;
        size_t nl = 0;
        balora_status ast = bl_json_array_as_lines(path, start, len - (size_t)(start - buf), &lines, &nl);
        if (ast) { free(buf); return ast; }
        if (lines) { free(buf); buf = start = lines; len = nl; }
    }
    d->text = buf;
    d->task = BL_GLUE_TASK_GENERIC;
    d->regression = s.regression;
    meta_init(d, path, fmt, "generic");
    char *end = buf + len;
    raw_labels rl;
    void *rlb = NULL;
    balora_status st = dataset_alloc(d, count_lines(start, end), s.text_pair_col != NULL, &rl, &rlb);
    if (st) goto fail;
    if (jsonl) {
        if ((st = load_jsonl(d, &rl, &s, start, end, path))) goto fail;
    } else {
        delim_job j = {path, csv ? ',' : '\t', csv, s.skip_bad_rows};
        char *p = start, *hf[MAX_FIELDS];
        int64_t line = 1;
        int nf = 0;
        bool blank;
        if (s.header) {
            if ((st = next_record(&p, end, j.sep, j.quotes, hf, &nf, &blank, &line, path))) goto fail;
        }
        int ia, ib = -1, il = -1;
        if ((st = col_index(hf, nf, s.header, s.text_col, "text", path, &ia))) goto fail;
        if (s.text_pair_col && (st = col_index(hf, nf, s.header, s.text_pair_col, "text pair", path, &ib))) goto fail;
        if (!s.no_labels && (st = col_index(hf, nf, s.header, s.label_col, "label", path, &il))) goto fail;
        if ((st = delim_rows(d, &rl, &j, p, end, line, ia, ib, il))) goto fail;
    }
    bool known = false;
    if (s.labels && *s.labels && !s.regression) {
        if ((st = set_label_names_csv(d, s.labels, path))) goto fail;
        known = true;
    }
    if (s.regression) d->n_labels = 1;
    if ((st = resolve_labels(d, &rl, known, path))) goto fail;
    free(rlb);
    return BALORA_STATUS_OK;
fail:
    free(rlb);
    bl_glue_set_free(d);
    return st;
}

balora_status bl_glue_set_label_map(const bl_glue_set *d, char *out, size_t cap) {
    size_t o = 0;
    if (cap) out[0] = 0;
    for (int c = 0; c < d->n_labels; c++) {
        int w = snprintf(out + o, cap > o ? cap - o : 0, "%s%s", c ? "," : "", d->label_names[c]);
        if (w < 0 || o + (size_t)w >= cap) return bl_fail(BALORA_STATUS_INVALID, "label map: buffer of %zu bytes too small", cap);
        o += (size_t)w;
    }
    return BALORA_STATUS_OK;
}

/* ---------------------------------------------------------------- knobs */

static void keep_rows(bl_glue_set *d, const uint8_t *keep) {
    int64_t w = 0;
    for (int64_t i = 0; i < d->n; i++) {
        if (!keep[i]) continue;
        d->text_a[w] = d->text_a[i];
        if (d->text_b) d->text_b[w] = d->text_b[i];
        d->label[w] = d->label[i];
        d->label_clean[w] = d->label_clean[i];
        d->score[w] = d->score[i];
        d->row[w] = d->row[i];
        w++;
    }
    d->n = w;
}

balora_status bl_data_apply_knobs(bl_glue_set *d, const bl_data_knobs *k) {
    const char *src = d->meta.source;
    if (d->meta.knobs_applied) return bl_fail(BALORA_STATUS_INVALID, "%s: data knobs were applied already", src);
    bool cls_knobs = k->label_noise != 0 || k->imbalance != 0;
    if (!(k->label_noise >= 0 && k->label_noise < 1))
        return bl_fail(BALORA_STATUS_INVALID, "label noise %g must be in [0, 1)", k->label_noise);
    if (!(k->imbalance == 0 || k->imbalance >= 1))
        return bl_fail(BALORA_STATUS_INVALID, "imbalance ratio %g must be 0 (off) or at least 1 (majority:minority)", k->imbalance);
    if (k->max_train < 0) return bl_fail(BALORA_STATUS_INVALID, "max_train %lld must be >= 0", (long long)k->max_train);
    if (cls_knobs && (!d->has_labels || d->regression))
        return bl_fail(BALORA_STATUS_INVALID, "%s: label noise and imbalance need class labels (%s)", src,
                       d->regression ? "this is a regression task" : "the file has no labels");
    if (cls_knobs && d->n_labels < 2)
        return bl_fail(BALORA_STATUS_INVALID, "%s: label noise and imbalance need at least 2 classes", src);
    if (k->imbalance != 0 && (k->imbalance_major < 0 || k->imbalance_major >= d->n_labels))
        return bl_fail(BALORA_STATUS_INVALID, "%s: imbalance majority class %d is not a class id below %d", src,
                       k->imbalance_major, d->n_labels);
    bl_data_meta *m = &d->meta;
    m->label_noise = k->label_noise;
    m->imbalance = k->imbalance;
    m->imbalance_major = k->imbalance_major;
    m->max_train = k->max_train;
    m->seed = k->seed;
    int64_t n0 = d->n;
    uint8_t *keep = bl_malloc((size_t)(n0 > 0 ? n0 : 1));                   /* [n0] */
    int64_t *perm = bl_malloc((size_t)(n0 > 0 ? n0 : 1) * sizeof(int64_t)); /* [n0] */
    if (!keep || !perm) { free(keep); free(perm); return BALORA_STATUS_NOMEM; }
    bl_rng r;
    balora_status st = BALORA_STATUS_OK;
    /* 1. imbalance */
    if (k->imbalance != 0) {
        int64_t cap = (int64_t)floor((double)m->count_file[k->imbalance_major] / k->imbalance);
        bl_rng_seed(&r, k->seed ^ 0x1b873593a5a5a5a5ULL);
        memset(keep, 1, (size_t)n0);
        for (int c = 0; c < d->n_labels; c++) {
            if (c == k->imbalance_major) continue;
            int64_t nc = 0;
            for (int64_t i = 0; i < d->n; i++) if (d->label[i] == c) perm[nc++] = i;
            if (nc > 0 && cap == 0) {
                st = bl_fail(BALORA_STATUS_INVALID, "%s: imbalance %g leaves class '%s' empty (majority '%s' has %lld "
                             "examples); hint: use a smaller ratio", src, k->imbalance, d->label_names[c],
                             d->label_names[k->imbalance_major], (long long)m->count_file[k->imbalance_major]);
                goto out;
            }
            if (nc <= cap) continue;
            /* partial Fisher-Yates: the first cap entries are a uniform sample */
            for (int64_t t = 0; t < cap; t++) {
                int64_t u = t + (int64_t)bl_rng_below(&r, (uint64_t)(nc - t));
                int64_t tmp = perm[t]; perm[t] = perm[u]; perm[u] = tmp;
            }
            for (int64_t t = cap; t < nc; t++) keep[perm[t]] = 0;
        }
        int64_t before = d->n;
        keep_rows(d, keep);
        m->n_imbalance_removed = before - d->n;
    }
    /* 2. max_train */
    if (k->max_train > 0 && d->n > k->max_train) {
        m->n_max_train_removed = d->n - k->max_train;
        d->n = k->max_train;
    }
    /* 3. label noise */
    if (k->label_noise != 0) {
        int64_t nn = llround(k->label_noise * (double)d->n);
        bl_rng_seed(&r, k->seed ^ 0x5bd1e9955bd1e995ULL);
        for (int64_t i = 0; i < d->n; i++) perm[i] = i;
        for (int64_t t = 0; t < nn; t++) {
            int64_t u = t + (int64_t)bl_rng_below(&r, (uint64_t)(d->n - t));
            int64_t tmp = perm[t]; perm[t] = perm[u]; perm[u] = tmp;
            int64_t i = perm[t];
            int old = d->label[i];
            int nw = (int)bl_rng_below(&r, (uint64_t)(d->n_labels - 1));
            if (nw >= old) nw++;
            d->label[i] = nw;
        }
        m->n_noisy = nn;
    }
    memset(m->count, 0, sizeof m->count);
    if (!d->regression)
        for (int64_t i = 0; i < d->n; i++) if (d->label[i] >= 0) m->count[d->label[i]]++;
    m->knobs_applied = true;
out:
    free(perm);
    free(keep);
    return st;
}

balora_status bl_data_meta_json(const bl_glue_set *d, cJSON **out) {
    const bl_data_meta *m = &d->meta;
    cJSON *o = cJSON_CreateObject();
    if (!o) return bl_fail(BALORA_STATUS_NOMEM, "data metadata: out of memory");
    cJSON_AddStringToObject(o, "source", m->source);
    cJSON_AddStringToObject(o, "format", m->format);
    cJSON_AddStringToObject(o, "task", m->task);
    cJSON_AddNumberToObject(o, "n", (double)d->n);
    cJSON_AddNumberToObject(o, "n_file", (double)m->n_file);
    cJSON_AddNumberToObject(o, "n_skipped", (double)m->n_skipped);
    cJSON_AddBoolToObject(o, "regression", d->regression);
    cJSON_AddBoolToObject(o, "has_labels", d->has_labels);
    if (!d->regression) {
        cJSON *names = cJSON_AddArrayToObject(o, "label_names");
        cJSON *cf = cJSON_AddArrayToObject(o, "class_counts_file");
        cJSON *cn = cJSON_AddArrayToObject(o, "class_counts");
        for (int c = 0; c < d->n_labels; c++) {
            cJSON_AddItemToArray(names, cJSON_CreateString(d->label_names[c]));
            cJSON_AddItemToArray(cf, cJSON_CreateNumber((double)m->count_file[c]));
            cJSON_AddItemToArray(cn, cJSON_CreateNumber((double)m->count[c]));
        }
    }
    cJSON_AddNumberToObject(o, "label_noise", m->label_noise);
    cJSON_AddNumberToObject(o, "n_noisy", (double)m->n_noisy);
    cJSON_AddNumberToObject(o, "imbalance", m->imbalance);
    cJSON_AddNumberToObject(o, "imbalance_major", m->imbalance_major);
    cJSON_AddNumberToObject(o, "n_imbalance_removed", (double)m->n_imbalance_removed);
    cJSON_AddNumberToObject(o, "max_train", (double)m->max_train);
    cJSON_AddNumberToObject(o, "n_max_train_removed", (double)m->n_max_train_removed);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)m->seed);
    cJSON_AddStringToObject(o, "seed", seed);
    *out = o;
    return BALORA_STATUS_OK;
}
