/* MATH answer extraction and equivalence (see mathgrade.h). Each step below is one step of
 * Hendrycks' strip_string, in the same order; strings are rebuilt step by step (grading is not a
 * hot loop: a few hundred bytes per answer). */
#include "eval/mathgrade.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* A growable string. */
typedef struct sbuf { char *p; size_t n, cap; bool oom; } sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p; b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static char *sb_done(sbuf *b) {
    if (b->oom) { free(b->p); return NULL; }
    if (!b->p) { sb_add(b, "", 0); if (b->oom) return NULL; }
    return b->p;
}

/* Returns a new string with every occurrence of `from` replaced by `to`; frees s. */
static char *replace_all(char *s, const char *from, const char *to) {
    if (!s) return NULL;
    size_t fl = strlen(from);
    if (!strstr(s, from)) return s;
    sbuf b = {0};
    const char *p = s, *q;
    while ((q = strstr(p, from))) { sb_add(&b, p, (size_t)(q - p)); sb_str(&b, to); p = q + fl; }
    sb_str(&b, p);
    free(s);
    return sb_done(&b);
}

static size_t count_occ(const char *s, const char *sub) {
    size_t n = 0, l = strlen(sub);
    for (const char *q = strstr(s, sub); q; q = strstr(q + l, sub)) n++;
    return n;
}

static char *dup_n(const char *s, size_t n) {
    char *r = malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

char *bl_math_last_boxed(const char *s) {
    if (!s) return NULL;
    const char *idx = NULL;
    for (const char *q = strstr(s, "\\boxed"); q; q = strstr(q + 1, "\\boxed")) idx = q;
    if (!idx) for (const char *q = strstr(s, "\\fbox"); q; q = strstr(q + 1, "\\fbox")) idx = q;
    if (!idx) return NULL;
    const char *after = idx + (idx[1] == 'b' ? 6 : 5);
    if (idx[1] == 'b' && after[0] == ' ') { /* "\boxed 5$": up to the next '$' */
        const char *e = strchr(after + 1, '$');
        return dup_n(after + 1, e ? (size_t)(e - after - 1) : strlen(after + 1));
    }
    /* The first balanced {...} group from \boxed on, as last_boxed_only_string scans it. */
    int open = 0;
    for (const char *p = idx; *p; p++) {
        if (*p == '{') open++;
        else if (*p == '}') {
            open--;
            if (open == 0) {
                /* remove_boxed: must be exactly "\boxed{" ... "}" (or \fbox{). */
                if (*after != '{') return NULL;
                return dup_n(after + 1, (size_t)(p - after - 1));
            }
        }
    }
    return NULL;
}

static const char *rfind(const char *s, const char *sub) {
    const char *r = NULL;
    for (const char *q = strstr(s, sub); q; q = strstr(q + 1, sub)) r = q;
    return r;
}

char *bl_math_extract(const char *completion) {
    if (!completion) return NULL;
    const char *box = rfind(completion, "\\boxed");
    const char *fb = rfind(completion, "\\fbox");
    if (!box) box = fb;
    const char *ans = rfind(completion, "The answer is:");
    if (!ans) ans = rfind(completion, "The answer is");
    if (!ans || (box && box > ans)) return bl_math_last_boxed(completion);
    const char *p = ans + strlen("The answer is");
    if (*p == ':') p++;
    const char *e = strstr(p, ".\n");
    size_t n = e ? (size_t)(e - p) : strlen(p);
    while (n && isspace((unsigned char)*p)) { p++; n--; }
    while (n && isspace((unsigned char)p[n - 1])) n--;
    if (n && p[n - 1] == '.') n--;
    char *r = dup_n(p, n);
    if (r && strstr(r, "\\boxed")) { char *b = bl_math_last_boxed(r); if (b) { free(r); r = b; } }
    return r;
}

/* _remove_right_units: "\text{ " only marks units; keep what is left of it. */
static char *remove_right_units(char *s, bool *raised) {
    if (!strstr(s, "\\text{ ")) return s;
    if (count_occ(s, "\\text{ ") != 1) { *raised = true; free(s); return NULL; }
    *strstr(s, "\\text{ ") = 0;
    return s;
}

/* _fix_sqrt: "\sqrt3" -> "\sqrt{3}". */
static char *fix_sqrt(char *s, bool *raised) {
    if (!strstr(s, "\\sqrt")) return s;
    sbuf b = {0};
    const char *p = strstr(s, "\\sqrt");
    sb_add(&b, s, (size_t)(p - s));
    while (p) {
        const char *seg = p + 5, *next = strstr(seg, "\\sqrt");
        size_t n = next ? (size_t)(next - seg) : strlen(seg);
        sb_str(&b, "\\sqrt");
        if (n == 0) { *raised = true; free(s); free(b.p); return NULL; } /* split[0] on "" */
        if (seg[0] != '{') { sb_str(&b, "{"); sb_add(&b, seg, 1); sb_str(&b, "}"); sb_add(&b, seg + 1, n - 1); }
        else sb_add(&b, seg, n);
        p = next;
    }
    free(s);
    return sb_done(&b);
}

/* _fix_fracs: "\frac12" -> "\frac{1}{2}", "\frac1{72}" -> "\frac{1}{72}". */
static char *fix_fracs(char *s, bool *raised) {
    const char *p = strstr(s, "\\frac");
    if (!p) return s;
    sbuf b = {0};
    sb_add(&b, s, (size_t)(p - s));
    while (p) {
        const char *seg = p + 5, *next = strstr(seg, "\\frac");
        size_t n = next ? (size_t)(next - seg) : strlen(seg);
        sb_str(&b, "\\frac");
        if (n == 0) { *raised = true; free(s); free(b.p); return NULL; } /* substr[0] on "" */
        if (seg[0] == '{') sb_add(&b, seg, n);
        else if (n < 2) { free(b.p); return s; } /* the reference returns the string unchanged */
        else {
            char a = seg[0], c = seg[1];
            sb_str(&b, "{"); sb_add(&b, &a, 1); sb_str(&b, "}");
            if (c != '{') { sb_str(&b, "{"); sb_add(&b, &c, 1); sb_str(&b, "}"); }
            else sb_add(&b, &c, 1);
            sb_add(&b, seg + 2, n - 2);
        }
        p = next;
    }
    free(s);
    return sb_done(&b);
}

/* A Python int() whose str() gives back the same text: "0" or -?[1-9][0-9]*. */
static bool canonical_int(const char *s, size_t n) {
    bool neg = n && s[0] == '-';
    if (neg) { s++; n--; }
    if (n == 0) return false;
    if (s[0] == '0') return n == 1 && !neg;
    for (size_t i = 0; i < n; i++) if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

/* _fix_a_slash_b: "1/2" -> "\frac{1}{2}". */
static char *fix_a_slash_b(char *s) {
    if (count_occ(s, "/") != 1) return s;
    const char *sl = strchr(s, '/');
    size_t na = (size_t)(sl - s), nb = strlen(sl + 1);
    if (!canonical_int(s, na) || !canonical_int(sl + 1, nb)) return s;
    sbuf b = {0};
    sb_str(&b, "\\frac{"); sb_add(&b, s, na); sb_str(&b, "}{"); sb_add(&b, sl + 1, nb); sb_str(&b, "}");
    free(s);
    return sb_done(&b);
}

char *bl_math_strip(const char *in, bool *raised) {
    *raised = false;
    if (!in) return NULL;
    char *s = dup_n(in, strlen(in));
    s = replace_all(s, "\n", "");
    s = replace_all(s, "\\!", "");
    s = replace_all(s, "\\\\", "\\");
    s = replace_all(s, "tfrac", "frac");
    s = replace_all(s, "dfrac", "frac");
    s = replace_all(s, "\\left", "");
    s = replace_all(s, "\\right", "");
    s = replace_all(s, "^{\\circ}", "");
    s = replace_all(s, "^\\circ", "");
    s = replace_all(s, "\\$", "");
    if (!s) return NULL;
    if (!(s = remove_right_units(s, raised))) return NULL;
    s = replace_all(s, "\\%", "");
    s = replace_all(s, " .", " 0.");
    s = replace_all(s, "{.", "{0.");
    if (!s || !s[0]) return s;
    if (s[0] == '.') {
        sbuf b = {0};
        sb_str(&b, "0"); sb_str(&b, s);
        free(s);
        if (!(s = sb_done(&b))) return NULL;
    }
    /* "k = 5" -> "5" when there is exactly one '=' and at most 2 characters before it. */
    if (count_occ(s, "=") == 1) {
        char *eq = strchr(s, '=');
        if (eq - s <= 2) memmove(s, eq + 1, strlen(eq + 1) + 1);
    }
    if (!(s = fix_sqrt(s, raised))) return NULL;
    s = replace_all(s, " ", "");
    if (!s) return NULL;
    if (!(s = fix_fracs(s, raised))) return NULL;
    if (!strcmp(s, "0.5")) { free(s); s = dup_n("\\frac{1}{2}", 11); if (!s) return NULL; }
    return fix_a_slash_b(s);
}

bool bl_math_equiv(const char *a, const char *b) {
    if (!a && !b) return true;
    if (!a || !b) return false;
    bool ra, rb;
    char *sa = bl_math_strip(a, &ra), *sb = bl_math_strip(b, &rb);
    bool eq;
    if (ra || rb || !sa || !sb) eq = strcmp(a, b) == 0;
    else eq = strcmp(sa, sb) == 0;
    free(sa); free(sb);
    return eq;
}
