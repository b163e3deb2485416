/* GSM8K grading (see gsm8k.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "eval/gsm8k.h"
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A number as written: not glued to a preceding word character or '.', optional '-' and '$',
 * an integer with thousands commas or plain digits, an optional decimal part (or ".5"),
 * optionally "/ denominator". */
static const char g_number_re[] =
    "(?<![\\w.])(-\\s?)?\\$?\\s?((?:\\d{1,3}(?:,\\d{3})+|\\d+)(?:\\.\\d+)?|\\.\\d+)"
    "(?:\\s?/\\s?((?:\\d{1,3}(?:,\\d{3})+|\\d+)(?:\\.\\d+)?))?";
static const char g_marker_re[] = "the\\s+answer\\s+is\\s*:?";

static pcre2_code *g_number, *g_marker;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void compile_once(void) {
    int err; PCRE2_SIZE off;
    g_number = pcre2_compile((PCRE2_SPTR)g_number_re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off, NULL);
    g_marker = pcre2_compile((PCRE2_SPTR)g_marker_re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_CASELESS, &err, &off, NULL);
}

/* Digits of s[0..len) without commas, spaces and '$' into buf; false if something else is there. */
static bool clean_digits(const char *s, size_t len, char *buf, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ',' || c == ' ' || c == '\t' || c == '$') continue;
        if (!((c >= '0' && c <= '9') || c == '.')) return false;
        if (k + 1 >= cap) return false;
        buf[k++] = c;
    }
    buf[k] = 0;
    return k > 0;
}

bool bl_gsm8k_parse_number(const char *s, size_t len, double *out) {
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')) i++;
    bool neg = false;
    if (i < len && s[i] == '-') { neg = true; i++; }
    while (i < len && (s[i] == ' ' || s[i] == '$')) i++;
    size_t slash = len;
    for (size_t j = i; j < len; j++) if (s[j] == '/') { slash = j; break; }
    char a[128], b[128];
    if (!clean_digits(s + i, slash - i, a, sizeof a)) return false;
    char *end;
    double v = strtod(a, &end);
    if (*end) return false;
    if (slash < len) {
        if (!clean_digits(s + slash + 1, len - slash - 1, b, sizeof b)) return false;
        double d = strtod(b, &end);
        if (*end || d == 0) return false;
        v /= d;
    }
    *out = neg ? -v : v;
    return isfinite(*out);
}

bool bl_gsm8k_find_number(const char *s, size_t len, bool last, double *value, size_t *start, size_t *end) {
    pthread_once(&g_once, compile_once);
    if (!g_number || !s) return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(g_number, NULL);
    if (!md) return false;
    bool found = false;
    size_t off = 0;
    while (off <= len) {
        int rc = pcre2_match(g_number, (PCRE2_SPTR)s, len, off, 0, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        double v;
        if (bl_gsm8k_parse_number(s + ov[0], ov[1] - ov[0], &v)) {
            found = true; *value = v; *start = ov[0]; *end = ov[1];
            if (!last) break;
        }
        off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    pcre2_match_data_free(md);
    return found;
}

balora_status bl_gsm8k_reference(const char *answer, double *out) {
    if (!answer) return bl_fail(BALORA_STATUS_FORMAT, "GSM8K reference: no answer text");
    const char *p = NULL;
    for (const char *q = strstr(answer, "####"); q; q = strstr(q + 1, "####")) p = q;
    if (!p) return bl_fail(BALORA_STATUS_FORMAT, "GSM8K reference has no '####' before the final answer; hint: is this a GSM8K answer field?");
    p += 4;
    size_t s, e;
    if (!bl_gsm8k_find_number(p, strlen(p), false, out, &s, &e))
        return bl_fail(BALORA_STATUS_FORMAT, "GSM8K reference: no number after '####' (\"%.40s\")", p);
    return BALORA_STATUS_OK;
}

bool bl_gsm8k_extract(const char *completion, double *out, char *text, size_t cap) {
    pthread_once(&g_once, compile_once);
    if (text && cap) text[0] = 0;
    if (!completion || !g_marker) return false;
    size_t len = strlen(completion), from = 0;
    bool marker = false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(g_marker, NULL);
    if (!md) return false;
    for (size_t off = 0; off <= len;) {
        if (pcre2_match(g_marker, (PCRE2_SPTR)completion, len, off, 0, md, NULL) < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        marker = true; from = ov[1];
        off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    pcre2_match_data_free(md);
    size_t s, e;
    bool ok = marker ? bl_gsm8k_find_number(completion + from, len - from, false, out, &s, &e)
                     : bl_gsm8k_find_number(completion, len, true, out, &s, &e);
    if (ok && text && cap) {
        size_t n = e - s < cap - 1 ? e - s : cap - 1;
        memcpy(text, completion + from + s, n);
        text[n] = 0;
    }
    return ok;
}

bool bl_gsm8k_equal(double got, double want) {
    if (!isfinite(got) || !isfinite(want)) return false;
    double scale = fabs(want) > 1 ? fabs(want) : 1;
    return fabs(got - want) <= 1e-9 * scale;
}
