/* The journal of a long evaluation (see journal.h). */
#include "eval/journal.h"
#include "io/json.h"
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HINT "hint: use another --out, or remove %s to start this evaluation over"

/* The first field where a and b differ ("" when equal), written to what. */
static bool fp_differs(const cJSON *mine, const cJSON *theirs, char *what, size_t n, char *mv, char *tv, size_t vn) {
    const cJSON *x;
    cJSON_ArrayForEach(x, mine) {
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(theirs, x->string);
        char *a = cJSON_PrintUnformatted(x), *b = y ? cJSON_PrintUnformatted(y) : NULL;
        bool diff = !y || !a || !b || strcmp(a, b) != 0;
        if (diff) {
            snprintf(what, n, "%s", x->string);
            snprintf(mv, vn, "%.200s", a ? a : "?");
            snprintf(tv, vn, "%.200s", y ? (b ? b : "?") : "(absent)");
        }
        free(a); free(b);
        if (diff) return true;
    }
    cJSON_ArrayForEach(x, theirs) {
        if (!cJSON_GetObjectItemCaseSensitive(mine, x->string)) {
            char *b = cJSON_PrintUnformatted(x);
            snprintf(what, n, "%s", x->string);
            snprintf(mv, vn, "(absent)");
            snprintf(tv, vn, "%.200s", b ? b : "?");
            free(b);
            return true;
        }
    }
    return false;
}

static balora_status write_line(bl_eval_journal *j, const cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    if (!s) return bl_fail(BALORA_STATUS_NOMEM, "%s: out of memory", j->path);
    bool ok = fputs(s, j->f) >= 0 && fputc('\n', j->f) != EOF && fflush(j->f) == 0;
    free(s);
    if (!ok) return bl_fail(BALORA_STATUS_IO, "%s: write failed (%s); hint: is the disk full?", j->path, strerror(errno));
    return BALORA_STATUS_OK;
}

static balora_status read_existing(bl_eval_journal *j, const cJSON *fingerprint, const char *const *ids, long *good_end) {
    FILE *f = fopen(j->path, "rb");
    if (!f) return bl_fail(BALORA_STATUS_IO, "%s: cannot open (%s)", j->path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t lineno = 0;
    long end = 0;
    balora_status st = BALORA_STATUS_OK;
    *good_end = 0;
    while (!st && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[len - 1] != '\n') break; /* torn last line: the process died while writing it */
        end += (long)len;
        cJSON *o = cJSON_ParseWithLength(line, (size_t)len);
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld is not a JSON object; hint: not a balora eval progress file? remove "
                         "it to start over", j->path, (long long)lineno);
            break;
        }
        if (lineno == 1) {
            const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "balora_eval_progress");
            const cJSON *fp = cJSON_GetObjectItemCaseSensitive(o, "fingerprint");
            char what[128], mv[256], tv[256];
            if (!cJSON_IsNumber(ver) || ver->valuedouble != 1 || !cJSON_IsObject(fp))
                st = bl_fail(BALORA_STATUS_FORMAT, "%s: line 1: field 'balora_eval_progress' (1) and object 'fingerprint' expected; " HINT,
                             j->path, j->path);
            else if (fp_differs(fingerprint, fp, what, sizeof what, mv, tv, sizeof mv))
                st = bl_fail(BALORA_STATUS_INVALID, "%s: field 'fingerprint.%s' is %s there but %s in this run: the file holds the "
                             "results of another evaluation, which are never mixed in; " HINT, j->path, what, tv, mv, j->path);
            cJSON_Delete(o);
            continue;
        }
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(o, "index");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        cJSON *gen = cJSON_GetObjectItemCaseSensitive(o, "completions");
        cJSON *out = cJSON_GetObjectItemCaseSensitive(o, "outcome");
        if (!cJSON_IsNumber(idx) || idx->valuedouble < 0 || idx->valuedouble >= (double)j->n || !cJSON_IsString(id) ||
            (!cJSON_IsArray(gen) && !cJSON_IsObject(out))) {
            cJSON_Delete(o);
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: needs 'index' (0..%lld), 'id' and 'completions' or 'outcome'; " HINT,
                         j->path, (long long)lineno, (long long)j->n - 1, j->path);
            break;
        }
        int64_t i = (int64_t)idx->valuedouble;
        if (strcmp(id->valuestring, ids[i]) != 0) {
            st = bl_fail(BALORA_STATUS_INVALID, "%s: line %lld: problem %lld is '%s' there but '%s' in --data: another data file; " HINT,
                         j->path, (long long)lineno, (long long)i, id->valuestring, ids[i], j->path);
            cJSON_Delete(o);
            break;
        }
        cJSON_AddItemToArray(j->lines, o);
        if (cJSON_IsArray(gen)) { if (!j->gen[i]) j->n_gen++; j->gen[i] = gen; }
        else { if (!j->score[i]) j->n_score++; j->score[i] = out; }
        *good_end = end;
    }
    if (!st && lineno == 0) st = bl_fail(BALORA_STATUS_FORMAT, "%s: empty; " HINT, j->path, j->path);
    if (!st && *good_end == 0) *good_end = end; /* only the header */
    free(line);
    fclose(f);
    return st;
}

balora_status bl_eval_journal_open(bl_eval_journal *j, const char *path, const cJSON *fingerprint, int64_t n,
                                   const char *const *ids) {
    memset(j, 0, sizeof *j);
    j->n = n;
    j->path = bl_strdup(path);
    j->gen = bl_calloc((size_t)(n > 0 ? n : 1), sizeof *j->gen);
    j->score = bl_calloc((size_t)(n > 0 ? n : 1), sizeof *j->score);
    j->lines = cJSON_CreateArray();
    if (!j->path || !j->gen || !j->score || !j->lines) { bl_eval_journal_close(j, false); return BALORA_STATUS_NOMEM; }
    balora_status st = BALORA_STATUS_OK;
    if (bl_file_exists(path)) {
        long end = 0;
        st = read_existing(j, fingerprint, ids, &end);
        /* drop a torn last line before appending */
        if (!st && truncate(path, end) != 0) st = bl_fail(BALORA_STATUS_IO, "%s: cannot truncate (%s)", path, strerror(errno));
        if (!st && !(j->f = fopen(path, "ab"))) st = bl_fail(BALORA_STATUS_IO, "%s: cannot append (%s)", path, strerror(errno));
    } else {
        cJSON *h = cJSON_CreateObject();
        if (!h) st = BALORA_STATUS_NOMEM;
        if (!st) {
            cJSON_AddNumberToObject(h, "balora_eval_progress", 1);
            cJSON_AddItemToObject(h, "fingerprint", cJSON_Duplicate(fingerprint, true));
        }
        if (!st && !(j->f = fopen(path, "wb")))
            st = bl_fail(BALORA_STATUS_IO, "%s: cannot create (%s); hint: does the folder of --out exist?", path, strerror(errno));
        if (!st) st = write_line(j, h);
        cJSON_Delete(h);
    }
    if (st) bl_eval_journal_close(j, false);
    return st;
}

balora_status bl_eval_journal_add(bl_eval_journal *j, int64_t index, const char *id, const char *key, cJSON *item) {
    if (index < 0 || index >= j->n || !item) { cJSON_Delete(item); return bl_fail(BALORA_STATUS_INTERNAL, "journal: bad record"); }
    cJSON *o = cJSON_CreateObject();
    if (!o) { cJSON_Delete(item); return BALORA_STATUS_NOMEM; }
    cJSON_AddNumberToObject(o, "index", (double)index);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddItemToObject(o, key, item);
    balora_status st = write_line(j, o);
    if (st) { cJSON_Delete(o); return st; }
    cJSON_AddItemToArray(j->lines, o);
    if (!strcmp(key, "completions")) { if (!j->gen[index]) j->n_gen++; j->gen[index] = item; }
    else { if (!j->score[index]) j->n_score++; j->score[index] = item; }
    return BALORA_STATUS_OK;
}

balora_status bl_eval_journal_close(bl_eval_journal *j, bool remove) {
    balora_status st = BALORA_STATUS_OK;
    if (j->f && fclose(j->f) != 0) st = bl_fail(BALORA_STATUS_IO, "%s: write failed (%s)", j->path, strerror(errno));
    if (!st && remove && j->path && unlink(j->path) != 0 && errno != ENOENT)
        st = bl_fail(BALORA_STATUS_IO, "%s: cannot remove (%s)", j->path, strerror(errno));
    free(j->path);
    free(j->gen);
    free(j->score);
    cJSON_Delete(j->lines);
    memset(j, 0, sizeof *j);
    return st;
}

/* ---- fingerprints ---- */
typedef struct fnv { uint64_t h; } fnv;
static void fnv_add(fnv *f, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) { f->h ^= b[i]; f->h *= 1099511628211ull; }
}

static balora_status hash_file(fnv *f, const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return bl_fail(BALORA_STATUS_IO, "%s: cannot stat (%s)", path, strerror(errno));
    if (sb.st_size > ((off_t)64 << 20)) {
        int64_t v[2] = {(int64_t)sb.st_size, (int64_t)sb.st_mtime};
        fnv_add(f, v, sizeof v);
        return BALORA_STATUS_OK;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) return bl_fail(BALORA_STATUS_IO, "%s: cannot open (%s)", path, strerror(errno));
    unsigned char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, fp)) > 0) fnv_add(f, buf, k);
    bool err = ferror(fp);
    fclose(fp);
    if (err) return bl_fail(BALORA_STATUS_IO, "%s: read failed", path);
    return BALORA_STATUS_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

balora_status bl_eval_fingerprint_path(cJSON *fp, const char *key, const char *path) {
    fnv f = {1469598103934665603ull};
    balora_status st = BALORA_STATUS_OK;
    if (bl_dir_exists(path)) {
        DIR *d = opendir(path);
        if (!d) return bl_fail(BALORA_STATUS_IO, "%s: cannot list (%s)", path, strerror(errno));
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while (!st && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char full[4096];
            struct stat sb;
            if (snprintf(full, sizeof full, "%s/%s", path, e->d_name) >= (int)sizeof full || stat(full, &sb) != 0 || !S_ISREG(sb.st_mode))
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 32;
                char **nn = bl_realloc(names, cap * sizeof *nn);
                if (!nn) { st = BALORA_STATUS_NOMEM; break; }
                names = nn;
            }
            if (!(names[n] = bl_strdup(e->d_name))) st = BALORA_STATUS_NOMEM;
            else n++;
        }
        closedir(d);
        if (n) qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n && !st; i++) {
            char full[4096];
            snprintf(full, sizeof full, "%s/%s", path, names[i]);
            fnv_add(&f, names[i], strlen(names[i]) + 1);
            st = hash_file(&f, full);
        }
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
    } else st = hash_file(&f, path);
    if (st) return st;
    char v[48];
    snprintf(v, sizeof v, "fnv1a64:%016" PRIx64, f.h);
    cJSON_AddStringToObject(fp, key, v);
    return BALORA_STATUS_OK;
}
