/* balora tokenize: encode text to ids (or --decode ids to text) with a Hugging Face tokenizer.
 * One example per input line; output one line per example. */
#include "args.h"
#include "cli.h"
#include "tok/tok.h"
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int line_fail(const char *src, size_t lineno, balora_status st) {
    fprintf(stderr, "balora tokenize: error (%s): %s line %zu: %s\n", balora_status_name(st), src, lineno, balora_last_error());
    return 1;
}

/* ids space-separated and a newline, formatted by hand (snprintf per id dominated the run time) */
static void print_ids(const bl_tok_enc *e, char *buf, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < e->n; i++) {
        if (o + 16 > cap) { fwrite(buf, 1, o, stdout); o = 0; }
        if (i) buf[o++] = ' ';
        int64_t v = e->ids[i];
        if (v < 0) { buf[o++] = '-'; v = -v; }
        char tmp[12];
        int k = 0;
        do { tmp[k++] = (char)('0' + v % 10); v /= 10; } while (v);
        while (k) buf[o++] = tmp[--k];
    }
    buf[o++] = '\n';
    fwrite(buf, 1, o, stdout);
}

static void print_json_string(const char *s, size_t n) {
    /* cJSON escapes the string the same way JSON.stringify does for control characters */
    char *tmp = malloc(n + 1);
    if (!tmp) { fputs("\"\"\n", stdout); return; }
    memcpy(tmp, s, n);
    tmp[n] = 0;
    cJSON *j = cJSON_CreateString(tmp);
    char *out = j ? cJSON_PrintUnformatted(j) : NULL;
    fputs(out ? out : "\"\"", stdout);
    fputc('\n', stdout);
    free(out);
    cJSON_Delete(j);
    free(tmp);
}

/* "12 5 7" -> ids; fails on anything else */
static int parse_ids(char *line, int32_t **ids, size_t *n, size_t *cap) {
    *n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (!*p) return 0;
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX || (*end && *end != ' ' && *end != '\t' && *end != '\r')) return -1;
        if (*n == *cap) {
            size_t c = *cap ? *cap * 2 : 256;
            int32_t *x = realloc(*ids, c * sizeof *x);
            if (!x) return -1;
            *ids = x;
            *cap = c;
        }
        (*ids)[(*n)++] = (int32_t)v;
        p = end;
    }
}

int cmd_tokenize(int argc, char **argv) {
    const char *tokdir = NULL, *input = NULL;
    bool pair = false, no_special = false, jsonl = false, decode = false;
    cli_opt opts[] = {
        {"tokenizer", CLI_OPT_STR, &tokdir, "tokenizer folder (tokenizer.json, vocab.json+merges.txt, encoder.json+vocab.bpe, vocab.txt, tokenizer.model) or a tokenizer.json file"},
        {"input", CLI_OPT_STR, &input, "read this file instead of standard input"},
        {"pair", CLI_OPT_FLAG, &pair, "each line holds two texts separated by a tab (sentence pair, [CLS] A [SEP] B [SEP])"},
        {"no-special", CLI_OPT_FLAG, &no_special, "add no BOS/EOS/CLS/SEP (encode); leave out special tokens (decode)"},
        {"jsonl", CLI_OPT_FLAG, &jsonl, "each line is a JSON string or {\"text\": ..., \"pair\": ...}; with --decode, print JSON strings"},
        {"decode", CLI_OPT_FLAG, &decode, "read lines of space-separated ids and print the decoded text"},
    };
    int rc = cli_parse(argc, argv, "--tokenizer DIR [--pair] [--no-special] [--jsonl] [--decode] [--input FILE] < text",
                       opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc == 1) return 0;
    if (rc) return rc;
    if (!tokdir) { fprintf(stderr, "balora tokenize: error: --tokenizer DIR is required (see balora tokenize --help)\n"); return 2; }
    if (decode && pair) { fprintf(stderr, "balora tokenize: error: --pair does not apply to --decode\n"); return 2; }
    bl_tok *t;
    balora_status st = bl_tok_load(&t, tokdir);
    if (st) return cli_fail(st);
    FILE *f = stdin;
    const char *src = "<stdin>";
    if (input) {
        f = fopen(input, "rb");
        if (!f) { bl_tok_free(t); fprintf(stderr, "balora tokenize: error (io): %s: cannot open: %s\n", input, strerror(errno)); return 1; }
        src = input;
    }
    char *line = NULL, *obuf = malloc(1 << 16);
    size_t lcap = 0, lineno = 0, idcap = 0, nids = 0;
    int32_t *ids = NULL;
    bl_tok_enc enc = {0};
    ssize_t got;
    rc = obuf ? 0 : 1;
    while (!rc && (got = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        size_t n = (size_t)got;
        if (n && line[n - 1] == '\n') line[--n] = 0;
        if (decode) {
            if (parse_ids(line, &ids, &nids, &idcap)) {
                fprintf(stderr, "balora tokenize: error: %s line %zu: expected space-separated token ids\n", src, lineno);
                rc = 1;
                break;
            }
            char *text;
            size_t tl;
            st = bl_tok_decode(t, ids, nids, no_special, &text, &tl);
            if (st) { rc = line_fail(src, lineno, st); break; }
            if (jsonl) print_json_string(text, tl);
            else { fwrite(text, 1, tl, stdout); fputc('\n', stdout); }
            free(text);
            continue;
        }
        const char *a = line, *b = NULL;
        size_t alen = n, blen = 0;
        cJSON *j = NULL;
        if (jsonl) {
            j = cJSON_ParseWithLength(line, n);
            const cJSON *jt = j, *jp = NULL;
            if (cJSON_IsObject(j)) { jt = cJSON_GetObjectItemCaseSensitive(j, "text"); jp = cJSON_GetObjectItemCaseSensitive(j, "pair"); }
            if (!cJSON_IsString(jt) || (jp && !cJSON_IsNull(jp) && !cJSON_IsString(jp))) {
                fprintf(stderr, "balora tokenize: error: %s line %zu: expected a JSON string or an object {\"text\": string, \"pair\": string}\n", src, lineno);
                cJSON_Delete(j);
                rc = 1;
                break;
            }
            a = jt->valuestring; alen = strlen(a);
            if (cJSON_IsString(jp)) { b = jp->valuestring; blen = strlen(b); }
        } else if (pair) {
            char *tab = memchr(line, '\t', n);
            if (!tab) {
                fprintf(stderr, "balora tokenize: error: %s line %zu: --pair needs two texts separated by a tab\n", src, lineno);
                rc = 1;
                break;
            }
            alen = (size_t)(tab - line);
            b = tab + 1;
            blen = n - alen - 1;
        }
        if (b) st = bl_tok_encode_pair(t, a, alen, b, blen, !no_special, &enc);
        else st = bl_tok_encode(t, a, alen, !no_special, &enc);
        cJSON_Delete(j);
        if (st) { rc = line_fail(src, lineno, st); break; }
        print_ids(&enc, obuf, 1 << 16);
    }
    if (!rc && ferror(f)) { fprintf(stderr, "balora tokenize: error (io): %s: read error\n", src); rc = 1; }
    if (input) fclose(f);
    free(line); free(obuf); free(ids);
    bl_tok_enc_free(&enc);
    bl_tok_free(t);
    if (fflush(stdout) != 0) { fprintf(stderr, "balora tokenize: error (io): cannot write the output\n"); rc = 1; }
    return rc;
}
