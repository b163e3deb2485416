/* Shared by the libFuzzer harnesses (fuzz/fuzz_NAME.c, built with -DBALORA_FUZZ=ON, run by
 * scripts/fuzz.sh).
 *
 * Files: parsers that take a path read a file written under one temporary folder per process
 * (under $BALORA_FUZZ_TMP if set, else /dev/shm, else /tmp), removed at exit. fz_path(name) is
 * the path of `name` in it; fz_write(name, bytes) writes it; fz_clear() removes every file written
 * so far (call it first, so that no file of the previous input is seen).
 *
 * Framing (harnesses whose entry point reads several files, e.g. a tokenizer folder): the input is
 * split at each FZ_SEP ("\n--8<--\n") into at most FZ_MAX_PARTS parts; the last part keeps any
 * further separators. fz_split fills parts[] and returns their count (at least 1). */
#ifndef BALORA_FUZZ_UTIL_H
#define BALORA_FUZZ_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "balora.h"

#define FZ_SEP "\n--8<--\n"
#define FZ_MAX_PARTS 8

typedef struct fz_part { const uint8_t *d; size_t n; } fz_part;

static char fz_dir_path[4096];
/* names written so far (fz_clear removes them: cheaper than listing the folder at every input) */
static char fz_names[32][64];
static int fz_n_names;

static inline void fz_clear(void) {
    char p[8192];
    for (int i = 0; i < fz_n_names; i++) {
        snprintf(p, sizeof p, "%s/%s", fz_dir_path, fz_names[i]);
        unlink(p);
    }
}

static inline void fz_remove_dir(void) {
    fz_clear();
    rmdir(fz_dir_path);
}

static inline const char *fz_dir(void) {
    if (fz_dir_path[0]) return fz_dir_path;
    const char *base = getenv("BALORA_FUZZ_TMP");
    struct stat sb;
    if (!base || !*base) base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(fz_dir_path, sizeof fz_dir_path, "%s/balora-fuzz-XXXXXX", base);
    if (!mkdtemp(fz_dir_path)) { perror("fuzz_util: mkdtemp"); abort(); }
    atexit(fz_remove_dir);
    return fz_dir_path;
}

static inline const char *fz_path(const char *name) {
    static char p[8192];
    snprintf(p, sizeof p, "%s/%s", fz_dir(), name);
    return p;
}

/* Writes the bytes to fz_path(name) and returns that path (valid until the next fz_path/fz_write). */
static inline const char *fz_write(const char *name, const uint8_t *d, size_t n) {
    int k = 0;
    while (k < fz_n_names && strcmp(fz_names[k], name)) k++;
    if (k == fz_n_names) {
        if (k == 32 || strlen(name) >= sizeof fz_names[0]) { fprintf(stderr, "fuzz_util: too many or too long file names\n"); abort(); }
        snprintf(fz_names[fz_n_names++], sizeof fz_names[0], "%s", name);
    }
    const char *p = fz_path(name);
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(d, 1, n, f) != n) || fclose(f)) { perror("fuzz_util: writing a temporary file"); abort(); }
    return p;
}

static inline size_t fz_split(const uint8_t *d, size_t n, fz_part *parts, size_t max) {
    size_t k = 0, sep = sizeof FZ_SEP - 1;
    if (max > FZ_MAX_PARTS) max = FZ_MAX_PARTS;
    while (k + 1 < max) {
        const uint8_t *s = n >= sep ? memmem(d, n, FZ_SEP, sep) : NULL;
        if (!s) break;
        parts[k].d = d;
        parts[k].n = (size_t)(s - d);
        k++;
        n -= (size_t)(s - d) + sep;
        d = s + sep;
    }
    parts[k].d = d;
    parts[k].n = n;
    return k + 1;
}

/* The status of an entry point, passed through; with FZ_VERBOSE=1 in the environment its error is
 * printed (to check that a seed gets past the parser: FZ_VERBOSE=1 ./fuzz_NAME SEED). */
static inline balora_status fz_check(balora_status st) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FZ_VERBOSE") && *getenv("FZ_VERBOSE") == '1';
    if (verbose) fprintf(stderr, "fuzz: %s%s%s\n", balora_status_name(st), st ? ": " : "", st ? balora_last_error() : "");
    return st;
}

/* A NUL-terminated copy of bytes (for text entry points); free() it. */
static inline char *fz_strndup(const uint8_t *d, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, d, n);
    s[n] = 0;
    return s;
}

/* Tokenizer harnesses (include "tok/tok.h" first): encode a fixed text, the input's own text
 * (may be NULL) and a pair, then decode each result both ways; frees everything. */
#ifdef BL_TOK_H
static inline void fz_tok_exercise(bl_tok *t, const uint8_t *text, size_t n) {
    static const char fixed[] = "Hello world! It's 2024.\n  <s> [CLS] caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac <|endoftext|>\t[SEP]";
    bl_tok_enc e = {0};
    for (int k = 0; k < 3; k++) {
        const char *s = k == 0 ? fixed : (const char *)text;
        size_t len = k == 0 ? sizeof fixed - 1 : n;
        if (k == 1 && !text) continue;
        balora_status st = k < 2 ? bl_tok_encode(t, s, len, k == 0, &e)
                                 : bl_tok_encode_pair(t, fixed, 5, text ? (const char *)text : fixed, text ? n : 11, true, &e);
        if (st) continue;
        for (int skip = 0; skip < 2; skip++) {
            char *out = NULL;
            size_t out_len;
            if (!bl_tok_decode(t, e.ids, e.n, skip, &out, &out_len)) free(out);
            out = NULL;
            if (!bl_tok_decode_bytes(t, e.ids, e.n, skip, &out, &out_len)) free(out);
        }
        for (size_t i = 0; i < e.n; i++) {
            const char *tok = bl_tok_id_to_token(t, e.ids[i]);
            if (tok) bl_tok_token_to_id(t, tok);
        }
    }
    for (int r = 0; r < BL_TOK_N_ROLES; r++) bl_tok_special(t, (bl_tok_role)r);
    bl_tok_vocab_size(t);
    bl_tok_enc_free(&e);
}
#endif

#endif
