/* Tokenizer runtime: added-token matching, normalizers, pre-tokenizers, the models (BPE with a
 * priority queue over a linked list of symbols, WordPiece, Unigram/Viterbi), post-processing
 * templates and the decoder chain, following Hugging Face `tokenizers`. Loading is in tok_load.c. */
#include "tok/tok_internal.h"
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------ buffers */

balora_status tbuf_reserve(tbuf *b, size_t need) {
    if (need <= b->cap) return BALORA_STATUS_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = bl_realloc(b->p, cap);
    if (!p) return BALORA_STATUS_NOMEM;
    b->p = p;
    b->cap = cap;
    return BALORA_STATUS_OK;
}

balora_status tbuf_put(tbuf *b, const void *s, size_t n) {
    BL_TRY(tbuf_reserve(b, b->n + n + 1));
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return BALORA_STATUS_OK;
}

void tbuf_free(tbuf *b) { free(b->p); memset(b, 0, sizeof *b); }

balora_status tspans_push(tspans *s, size_t off, size_t len) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        tspan *v = bl_realloc(s->v, cap * sizeof *v);
        if (!v) return BALORA_STATUS_NOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (tspan){off, len};
    return BALORA_STATUS_OK;
}

static void tbuf_swap(tbuf *a, tbuf *b) { tbuf t = *a; *a = *b; *b = t; }
static void tspans_swap(tspans *a, tspans *b) { tspans t = *a; *a = *b; *b = t; }

/* ------------------------------------------------------------------ UTF-8 and character classes */

uint32_t tok_utf8_next(const char *s, size_t n, size_t *i) {
    const unsigned char *u = (const unsigned char *)s;
    size_t k = *i;
    uint32_t c = u[k];
    int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    if (extra) c &= 0x3F >> extra;
    k++;
    for (int e = 0; e < extra && k < n; e++, k++) c = (c << 6) | (u[k] & 0x3F);
    *i = k;
    return c;
}

static int utf8_len_lead(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

static int utf8_put(uint32_t cp, char *out) { return (int)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)out); }

/* Unicode White_Space (what Rust's char::is_whitespace tests). */
static bool is_ws(uint32_t c) {
    if (c == ' ' || (c >= 9 && c <= 13) || c == 0x85) return true;
    if (c < 0x80) return false;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

static bool is_punct_unicode(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

/* BERT: ASCII symbols count as punctuation too. */
static bool is_bert_punct(uint32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
    return is_punct_unicode(c);
}

static bool is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static bool is_other(uint32_t c) { /* Unicode category C*: Cc Cf Cs Co Cn */
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CS ||
           k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CN;
}

static bool is_word_char(uint32_t c) {
    if (c == '_') return true;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

/* Rust's char::is_numeric (what HF's Digits pre-tokenizer tests): categories Nd, Nl, No. */
static bool is_digit_char(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

/* \w of Oniguruma on UTF-8 (HF's Whitespace pre-tokenizer is the regex \w+|[^\w\s]+):
 * letters, marks, decimal digits, connector punctuation. */
static bool is_onig_word(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_ME) || k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_PC;
}

/* Full lower-case mapping of one code point (Rust char::to_lowercase): simple mapping except U+0130. */
static int lower_put(uint32_t c, char *out) {
    if (c == 0x130) { out[0] = 'i'; return 1 + utf8_put(0x307, out + 1); }
    return utf8_put((uint32_t)utf8proc_tolower((utf8proc_int32_t)c), out);
}

/* ------------------------------------------------------------------ normalizers */

void tok_norm_free(tnorm *n) {
    if (!n) return;
    for (int i = 0; i < n->n_sub; i++) tok_norm_free(&n->sub[i]);
    free(n->sub);
    free(n->a); free(n->b); free(n->charsmap);
    if (n->re) pcre2_code_free(n->re);
    n->sub = NULL; n->n_sub = 0; n->a = n->b = NULL; n->charsmap = NULL; n->re = NULL;
}

/* Unicode normalisation of x (NFC/NFD/NFKC/NFKD; strip_mn drops nonspacing marks after decomposition). */
static balora_status norm_unicode(bl_tok *t, tbuf *x, int options, bool strip_mn) {
    /* decompose into code points, then compose if asked, then re-encode */
    size_t cap_cp = x->n + 16;
    for (;;) {
        BL_TRY(tbuf_reserve(&t->s_tmp, cap_cp * sizeof(int32_t)));
        utf8proc_ssize_t r = utf8proc_decompose((const utf8proc_uint8_t *)x->p, (utf8proc_ssize_t)x->n,
                                                (utf8proc_int32_t *)t->s_tmp.p, (utf8proc_ssize_t)cap_cp,
                                                (utf8proc_option_t)(options & ~UTF8PROC_COMPOSE) | UTF8PROC_DECOMPOSE);
        if (r < 0) return bl_fail(BALORA_STATUS_INVALID, "tokenizer: Unicode normalisation failed: %s", utf8proc_errmsg(r));
        if ((size_t)r > cap_cp) { cap_cp = (size_t)r; continue; }
        if (options & UTF8PROC_COMPOSE) {
            r = utf8proc_normalize_utf32((utf8proc_int32_t *)t->s_tmp.p, r, (utf8proc_option_t)options);
            if (r < 0) return bl_fail(BALORA_STATUS_INVALID, "tokenizer: Unicode composition failed: %s", utf8proc_errmsg(r));
        }
        const int32_t *cp = (const int32_t *)t->s_tmp.p;
        BL_TRY(tbuf_reserve(&t->s_word, (size_t)r * 4 + 1));
        size_t o = 0;
        for (utf8proc_ssize_t i = 0; i < r; i++) {
            if (strip_mn && utf8proc_category(cp[i]) == UTF8PROC_CATEGORY_MN) continue;
            o += (size_t)utf8_put((uint32_t)cp[i], t->s_word.p + o);
        }
        x->n = 0;
        return tbuf_put(x, t->s_word.p, o);
    }
}

/* pcre2_match on valid UTF-8; when the JIT runs out of its stack (very long runs), the interpreter,
 * which uses the heap, takes over. */
static int re_match(pcre2_code *re, const char *s, size_t n, size_t from, pcre2_match_data *md) {
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) rc = pcre2_match(re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
    return rc;
}

/* Replace every occurrence of a in x by b. */
static balora_status norm_replace(bl_tok *t, tbuf *x, const tnorm *n) {
    tbuf *o = &t->s_tmp;
    o->n = 0;
    BL_TRY(tbuf_reserve(o, x->n + 1));
    size_t bl = strlen(n->b);
    if (n->re) {
        size_t i = 0;
        while (i <= x->n) {
            int rc = re_match(n->re, x->p, x->n, i, t->md);
            if (rc < 0) break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
            if (ov[1] == ov[0]) { /* empty match: copy one character and go on */
                if (ov[0] >= x->n) break;
                size_t c = (size_t)utf8_len_lead((unsigned char)x->p[ov[0]]);
                BL_TRY(tbuf_put(o, x->p + i, ov[0] - i + c));
                i = ov[0] + c;
                continue;
            }
            BL_TRY(tbuf_put(o, x->p + i, ov[0] - i));
            BL_TRY(tbuf_put(o, n->b, bl));
            i = ov[1];
        }
        if (i < x->n) BL_TRY(tbuf_put(o, x->p + i, x->n - i));
    } else {
        size_t al = strlen(n->a);
        if (al == 0) return BALORA_STATUS_OK;
        size_t i = 0;
        while (i < x->n) {
            const char *f = memmem(x->p + i, x->n - i, n->a, al);
            if (!f) break;
            size_t at = (size_t)(f - x->p);
            BL_TRY(tbuf_put(o, x->p + i, at - i));
            BL_TRY(tbuf_put(o, n->b, bl));
            i = at + al;
        }
        BL_TRY(tbuf_put(o, x->p + i, x->n - i));
    }
    tbuf_swap(x, o);
    return BALORA_STATUS_OK;
}

/* A precompiled charsmap is [u32 LE trie size T][T bytes of trie units][pool of NUL-terminated
 * replacements]. Both loaders (tokenizer.json's Precompiled, tokenizer.model's normalizer_spec)
 * check it here; an empty blob means "no mapping". */
balora_status tok_charsmap_check(const char *what, const uint8_t *cm, size_t len) {
    if (len == 0) return BALORA_STATUS_OK;
    if (len < 4)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: precompiled_charsmap is %zu bytes, shorter than its 4-byte size header (file truncated or corrupt?)", what, len);
    uint32_t ts = (uint32_t)cm[0] | (uint32_t)cm[1] << 8 | (uint32_t)cm[2] << 16 | (uint32_t)cm[3] << 24;
    if ((uint64_t)ts + 4 > (uint64_t)len || ts % 4)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: precompiled_charsmap is truncated (trie of %u bytes, blob of %zu; the trie size must be a multiple of 4 that fits the blob)", what, ts, len);
    return BALORA_STATUS_OK;
}

/* SentencePiece's precompiled normalisation (a darts-clone double array over UTF-8 bytes). Returns
 * the replacement of the shortest key that is a prefix of s (as HF's Precompiled does), or NULL.
 * Bounds are checked here too (not only by tok_charsmap_check): a bad blob maps nothing. */
static const char *charsmap_lookup(const tnorm *n, const char *s, size_t len) {
    const uint8_t *cm = n->charsmap;
    if (!cm || n->charsmap_len < 4) return NULL;
    uint32_t tsize = (uint32_t)cm[0] | (uint32_t)cm[1] << 8 | (uint32_t)cm[2] << 16 | (uint32_t)cm[3] << 24;
    if ((uint64_t)tsize > (uint64_t)n->charsmap_len - 4) return NULL;
    size_t n_units = tsize / 4;
    const uint8_t *units = cm + 4;
    const char *pool = (const char *)cm + 4 + tsize;
    size_t pool_len = n->charsmap_len - 4 - tsize;
#define UNIT(i) ((uint32_t)units[4 * (i)] | (uint32_t)units[4 * (i) + 1] << 8 | (uint32_t)units[4 * (i) + 2] << 16 | (uint32_t)units[4 * (i) + 3] << 24)
#define UOFF(u) (((u) >> 10) << (((u) & (1u << 9)) >> 6))
    if (n_units == 0) return NULL;
    size_t pos = 0;
    uint32_t u = UNIT(0);
    pos ^= UOFF(u);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0) break;
        pos ^= c;
        if (pos >= n_units) return NULL;
        u = UNIT(pos);
        if ((u & ((1u << 31) | 0xFF)) != c) return NULL;
        pos ^= UOFF(u);
        if (pos >= n_units) return NULL;
        if ((u >> 8) & 1) {
            uint32_t v = UNIT(pos) & ((1u << 31) - 1);
            if (v >= pool_len) return NULL;
            if (!memchr(pool + v, 0, pool_len - v)) return NULL;
            return pool + v;
        }
    }
#undef UNIT
#undef UOFF
    return NULL;
}

static balora_status norm_precompiled(bl_tok *t, tbuf *x, const tnorm *n) {
    tbuf *o = &t->s_tmp;
    o->n = 0;
    BL_TRY(tbuf_reserve(o, x->n + 1));
    size_t i = 0;
    utf8proc_int32_t state = 0;
    while (i < x->n) {
        /* one extended grapheme cluster [i, g) */
        size_t g = i;
        uint32_t prev = tok_utf8_next(x->p, x->n, &g);
        state = 0;
        while (g < x->n) {
            size_t k = g;
            uint32_t c = tok_utf8_next(x->p, x->n, &k);
            if (utf8proc_grapheme_break_stateful((utf8proc_int32_t)prev, (utf8proc_int32_t)c, &state)) break;
            prev = c;
            g = k;
        }
        const char *r = NULL;
        if (g - i < 6) r = charsmap_lookup(n, x->p + i, g - i);
        if (r) {
            BL_TRY(tbuf_put(o, r, strlen(r)));
        } else {
            size_t k = i;
            while (k < g) {
                size_t c0 = k;
                tok_utf8_next(x->p, x->n, &k);
                const char *rc = charsmap_lookup(n, x->p + c0, k - c0);
                if (rc) BL_TRY(tbuf_put(o, rc, strlen(rc)));
                else BL_TRY(tbuf_put(o, x->p + c0, k - c0));
            }
        }
        i = g;
    }
    tbuf_swap(x, o);
    return BALORA_STATUS_OK;
}

static balora_status norm_bert(bl_tok *t, tbuf *x, const tnorm *n) {
    tbuf *o = &t->s_tmp;
    o->n = 0;
    BL_TRY(tbuf_reserve(o, x->n * 3 + 16));
    size_t i = 0;
    while (i < x->n) {
        uint32_t c = tok_utf8_next(x->p, x->n, &i);
        if (n->clean_text) {
            if (c == 0 || c == 0xFFFD || (c != '\t' && c != '\n' && c != '\r' && is_other(c))) continue;
            if (is_ws(c)) c = ' ';
        }
        BL_TRY(tbuf_reserve(o, o->n + 8));
        if (n->chinese && is_cjk(c)) {
            o->p[o->n++] = ' ';
            o->n += (size_t)utf8_put(c, o->p + o->n);
            o->p[o->n++] = ' ';
        } else {
            o->n += (size_t)utf8_put(c, o->p + o->n);
        }
    }
    tbuf_swap(x, o);
    if (n->strip_accents) BL_TRY(norm_unicode(t, x, UTF8PROC_STABLE, true));
    if (n->lowercase) {
        o->n = 0;
        BL_TRY(tbuf_reserve(o, x->n * 2 + 16));
        i = 0;
        while (i < x->n) {
            uint32_t c = tok_utf8_next(x->p, x->n, &i);
            o->n += (size_t)lower_put(c, o->p + o->n);
        }
        tbuf_swap(x, o);
    }
    return BALORA_STATUS_OK;
}

static balora_status normalize(bl_tok *t, const tnorm *n, tbuf *x) {
    switch (n->kind) {
    case TN_SEQUENCE:
        for (int i = 0; i < n->n_sub; i++) BL_TRY(normalize(t, &n->sub[i], x));
        return BALORA_STATUS_OK;
    case TN_PREPEND: {
        if (x->n == 0) return BALORA_STATUS_OK;
        tbuf *o = &t->s_tmp;
        o->n = 0;
        BL_TRY(tbuf_put(o, n->a, strlen(n->a)));
        BL_TRY(tbuf_put(o, x->p, x->n));
        tbuf_swap(x, o);
        return BALORA_STATUS_OK;
    }
    case TN_REPLACE: return norm_replace(t, x, n);
    case TN_NFC: return norm_unicode(t, x, UTF8PROC_STABLE | UTF8PROC_COMPOSE, false);
    case TN_NFD: return norm_unicode(t, x, UTF8PROC_STABLE, false);
    case TN_NFKC: return norm_unicode(t, x, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, false);
    case TN_NFKD: return norm_unicode(t, x, UTF8PROC_STABLE | UTF8PROC_COMPAT, false);
    case TN_STRIP_ACCENTS: { /* removes nonspacing marks (the text is expected to be NFD already) */
        tbuf *o = &t->s_tmp;
        o->n = 0;
        BL_TRY(tbuf_reserve(o, x->n + 1));
        size_t i = 0;
        while (i < x->n) {
            size_t s = i;
            uint32_t c = tok_utf8_next(x->p, x->n, &i);
            if (utf8proc_category((utf8proc_int32_t)c) != UTF8PROC_CATEGORY_MN) BL_TRY(tbuf_put(o, x->p + s, i - s));
        }
        tbuf_swap(x, o);
        return BALORA_STATUS_OK;
    }
    case TN_LOWERCASE: {
        tbuf *o = &t->s_tmp;
        o->n = 0;
        BL_TRY(tbuf_reserve(o, x->n * 2 + 16));
        size_t i = 0;
        while (i < x->n) o->n += (size_t)lower_put(tok_utf8_next(x->p, x->n, &i), o->p + o->n);
        tbuf_swap(x, o);
        return BALORA_STATUS_OK;
    }
    case TN_STRIP: {
        size_t a = 0, b = x->n;
        if (n->left) while (a < b) { size_t k = a; if (!is_ws(tok_utf8_next(x->p, b, &k))) break; a = k; }
        if (n->right) while (b > a) {
            size_t s = b - 1;
            while (s > a && ((unsigned char)x->p[s] & 0xC0) == 0x80) s--;
            size_t k = s;
            if (!is_ws(tok_utf8_next(x->p, b, &k))) break;
            b = s;
        }
        memmove(x->p, x->p + a, b - a);
        x->n = b - a;
        x->p[x->n] = 0;
        return BALORA_STATUS_OK;
    }
    case TN_BERT: return norm_bert(t, x, n);
    case TN_PRECOMPILED: return norm_precompiled(t, x, n);
    case TN_BYTELEVEL: return BALORA_STATUS_OK; /* bytes are mapped by the BPE model (t->byte_level) */
    }
    return bl_fail(BALORA_STATUS_INTERNAL, "tokenizer: unknown normalizer kind %d", (int)n->kind);
}

/* ------------------------------------------------------------------ pre-tokenizers */

void tok_pre_free(tpre *p) {
    if (!p) return;
    for (int i = 0; i < p->n_sub; i++) tok_pre_free(&p->sub[i]);
    free(p->sub);
    if (p->re) pcre2_code_free(p->re);
    p->sub = NULL; p->n_sub = 0; p->re = NULL;
}


static balora_status emit_piece(bl_tok *t, const char *s, size_t a, size_t b) {
    if (b <= a) return BALORA_STATUS_OK;
    size_t off = t->s_pre2.n;
    BL_TRY(tbuf_put(&t->s_pre2, s + a, b - a));
    return tspans_push(&t->sp_b, off, b - a);
}

/* Split piece s[0..n) at delimiters; is_delim(segment) is given as alternating runs. */
static balora_status split_runs(bl_tok *t, const char *s, const tmark *m, size_t nm, tsplit_behavior beh) {
    size_t pend_a = 0; bool pend = false; /* for MERGED_NEXT: a pending match to prepend */
    for (size_t i = 0; i < nm; i++) {
        size_t a = m[i].a, b = m[i].b;
        if (a == b) continue;
        if (!m[i].match) {
            if (beh == TS_MERGED_NEXT && pend) { BL_TRY(emit_piece(t, s, pend_a, b)); pend = false; }
            else BL_TRY(emit_piece(t, s, a, b));
            continue;
        }
        switch (beh) {
        case TS_REMOVED: break;
        case TS_ISOLATED: BL_TRY(emit_piece(t, s, a, b)); break;
        case TS_CONTIGUOUS: {
            size_t j = i;
            while (j + 1 < nm && m[j + 1].match) j++;
            BL_TRY(emit_piece(t, s, a, m[j].b));
            i = j;
            break;
        }
        case TS_MERGED_PREV: {
            /* extend the last piece if it ended right here, else stand alone */
            tspans *sp = &t->sp_b;
            if (sp->n && i > 0 && !m[i - 1].match && m[i - 1].b == a && m[i - 1].b > m[i - 1].a) {
                BL_TRY(tbuf_put(&t->s_pre2, s + a, b - a));
                sp->v[sp->n - 1].len += b - a;
            } else BL_TRY(emit_piece(t, s, a, b));
            break;
        }
        case TS_MERGED_NEXT:
            if (pend) BL_TRY(emit_piece(t, s, pend_a, a));
            pend = true; pend_a = a;
            break;
        }
    }
    if (pend) BL_TRY(emit_piece(t, s, pend_a, m[nm - 1].b));
    return BALORA_STATUS_OK;
}

/* Appends the run [a, b); merges it into the previous run when `merge` and both are adjacent and alike. */
static balora_status marks_add(tmarks *m, size_t a, size_t b, bool match, bool merge) {
    if (a == b) return BALORA_STATUS_OK;
    if (merge && m->n && m->v[m->n - 1].match == match && m->v[m->n - 1].b == a) { m->v[m->n - 1].b = b; return BALORA_STATUS_OK; }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        tmark *v = bl_realloc(m->v, cap * sizeof *v);
        if (!v) return BALORA_STATUS_NOMEM;
        m->v = v; m->cap = cap;
    }
    m->v[m->n++] = (tmark){a, b, match};
    return BALORA_STATUS_OK;
}
static balora_status regex_marks(bl_tok *t, pcre2_code *re, const char *s, size_t n, bool invert, tmarks *m) {
    m->n = 0;
    size_t i = 0, last = 0;
    while (i <= n) {
        int rc = re_match(re, s, n, i, t->md);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return bl_fail(BALORA_STATUS_INVALID, "tokenizer: regex matching failed (PCRE2 error %d); hint: the pattern may need too much backtracking", rc);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
        size_t a = ov[0], b = ov[1];
        if (b == a) { /* empty match: move on by one character */
            if (a >= n) break;
            i = a + (size_t)utf8_len_lead((unsigned char)s[a]);
            continue;
        }
        /* every gap and every match is its own run (HF keeps adjacent matches apart, also with invert) */
        BL_TRY(marks_add(m, last, a, invert, false));
        BL_TRY(marks_add(m, a, b, !invert, false));
        last = i = b;
    }
    BL_TRY(marks_add(m, last, n, invert, false));
    return BALORA_STATUS_OK;
}

typedef enum { CC_WS, CC_PUNCT, CC_DIGIT, CC_WORD_BERT } char_class;
static bool in_class(char_class k, uint32_t c) {
    switch (k) {
    case CC_WS: return is_ws(c);
    case CC_PUNCT: return is_punct_unicode(c) || (c < 128 && is_bert_punct(c));
    case CC_DIGIT: return is_digit_char(c);
    case CC_WORD_BERT: return is_bert_punct(c);
    }
    return false;
}

/* Marks each character of class k; isolated chars as separate matches when `each`, else runs. */
static balora_status class_marks(const char *s, size_t n, char_class k, bool each, tmarks *m) {
    m->n = 0;
    size_t i = 0;
    while (i < n) {
        size_t a = i;
        uint32_t c = tok_utf8_next(s, n, &i);
        bool in = in_class(k, c);
        BL_TRY(marks_add(m, a, i, in, !(in && each))); /* class runs merge unless each char stands alone */
    }
    return BALORA_STATUS_OK;
}

static balora_status pre_one(bl_tok *t, const tpre *p, bool at_start);

/* Applies one pre-tokenizer to every piece of (s_pre, sp_a), producing (s_pre2, sp_b), then swaps. */
static balora_status pre_apply(bl_tok *t, const tpre *p, bool at_start) {
    t->s_pre2.n = 0;
    t->sp_b.n = 0;
    tmarks *m = &t->marks;
    for (size_t k = 0; k < t->sp_a.n; k++) {
        const char *s = t->s_pre.p + t->sp_a.v[k].off;
        size_t n = t->sp_a.v[k].len;
        switch (p->kind) {
        case TP_BYTELEVEL: {
            if (p->add_prefix_space && (n == 0 || s[0] != ' ')) {
                /* the piece with a space in front */
                BL_TRY(tbuf_reserve(&t->s_word, n + 2));
                t->s_word.p[0] = ' ';
                memcpy(t->s_word.p + 1, s, n);
                s = t->s_word.p;
                n += 1;
            }
            if (p->re) {
                BL_TRY(regex_marks(t, p->re, s, n, false, m));
                BL_TRY(split_runs(t, s, m->v, m->n, TS_ISOLATED));
            } else BL_TRY(emit_piece(t, s, 0, n));
            break;
        }
        case TP_SPLIT:
            BL_TRY(regex_marks(t, p->re, s, n, p->invert, m));
            BL_TRY(split_runs(t, s, m->v, m->n, p->behavior));
            break;
        case TP_METASPACE: {
            tbuf *w = &t->s_word;
            w->n = 0;
            size_t rl = strlen(p->repl);
            bool first = k == 0 && at_start;
            if ((p->prepend == 2 || (p->prepend == 1 && first)) && !(n >= 1 && s[0] == ' ') && !(n >= rl && memcmp(s, p->repl, rl) == 0))
                BL_TRY(tbuf_put(w, p->repl, rl));
            for (size_t i = 0; i < n; i++) {
                if (s[i] == ' ') BL_TRY(tbuf_put(w, p->repl, rl));
                else BL_TRY(tbuf_put(w, s + i, 1));
            }
            if (!p->split) { BL_TRY(emit_piece(t, w->p, 0, w->n)); break; }
            /* split before each replacement character (MergedWithNext) */
            size_t a = 0;
            for (size_t i = 1; i + rl <= w->n; i++)
                if (memcmp(w->p + i, p->repl, rl) == 0) { BL_TRY(emit_piece(t, w->p, a, i)); a = i; }
            BL_TRY(emit_piece(t, w->p, a, w->n));
            break;
        }
        case TP_BERT:
            /* split on whitespace (removed), then punctuation isolated */
            BL_TRY(class_marks(s, n, CC_WS, false, m));
            for (size_t j = 0; j < m->n; j++) {
                if (m->v[j].match) continue;
                size_t a = m->v[j].a, b = m->v[j].b;
                size_t i = a, run = a;
                while (i < b) {
                    size_t c0 = i;
                    uint32_t c = tok_utf8_next(s, b, &i);
                    if (is_bert_punct(c)) { BL_TRY(emit_piece(t, s, run, c0)); BL_TRY(emit_piece(t, s, c0, i)); run = i; }
                }
                BL_TRY(emit_piece(t, s, run, b));
            }
            break;
        case TP_WHITESPACE: { /* \w+|[^\w\s]+ */
            size_t i = 0;
            while (i < n) {
                size_t a = i;
                uint32_t c = tok_utf8_next(s, n, &i);
                if (is_ws(c)) continue;
                bool w = is_onig_word(c);
                size_t e = i;
                while (e < n) {
                    size_t k2 = e;
                    uint32_t d = tok_utf8_next(s, n, &k2);
                    bool dw = is_onig_word(d);
                    if (is_ws(d) || dw != w) break;
                    e = k2;
                }
                BL_TRY(emit_piece(t, s, a, e));
                i = e;
            }
            break;
        }
        case TP_WHITESPACE_SPLIT:
            BL_TRY(class_marks(s, n, CC_WS, false, m));
            BL_TRY(split_runs(t, s, m->v, m->n, TS_REMOVED));
            break;
        case TP_DIGITS:
            BL_TRY(class_marks(s, n, CC_DIGIT, p->individual_digits, m));
            BL_TRY(split_runs(t, s, m->v, m->n, TS_ISOLATED));
            break;
        case TP_PUNCTUATION:
            BL_TRY(class_marks(s, n, CC_PUNCT, true, m));
            BL_TRY(split_runs(t, s, m->v, m->n, p->behavior));
            break;
        case TP_SEQUENCE: break;
        }
    }
    tbuf_swap(&t->s_pre, &t->s_pre2);
    tspans_swap(&t->sp_a, &t->sp_b);
    return BALORA_STATUS_OK;
}

static balora_status pre_one(bl_tok *t, const tpre *p, bool at_start) {
    if (p->kind == TP_SEQUENCE) {
        for (int i = 0; i < p->n_sub; i++) BL_TRY(pre_one(t, &p->sub[i], at_start));
        return BALORA_STATUS_OK;
    }
    return pre_apply(t, p, at_start);
}

/* ------------------------------------------------------------------ output ids */

static balora_status ids_push(bl_tok *t, int32_t id, uint8_t special) {
    if (t->n_ids == t->cap_ids) {
        size_t cap = t->cap_ids ? t->cap_ids * 2 : 256;
        int32_t *v = bl_realloc(t->ids, cap * sizeof *v);
        if (!v) return BALORA_STATUS_NOMEM;
        t->ids = v;
        uint8_t *s = bl_realloc(t->ids_special, cap);
        if (!s) return BALORA_STATUS_NOMEM;
        t->ids_special = s;
        t->cap_ids = t->cap_special = cap;
    }
    t->ids_special[t->n_ids] = special;
    t->ids[t->n_ids++] = id;
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ word cache */

#define TOK_CACHE_SLOTS 16384   /* power of two */
#define TOK_CACHE_MAX_WORD 64   /* bytes: longer words are not cached */
#define TOK_CACHE_POOL (1u << 20)

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h ? h : 1;
}

static balora_status cache_init(tcache *c) {
    if (c->hash) return BALORA_STATUS_OK;
    c->slots = TOK_CACHE_SLOTS;
    c->hash = bl_calloc(c->slots, sizeof *c->hash);
    c->key_off = bl_calloc(c->slots, sizeof *c->key_off);
    c->key_len = bl_calloc(c->slots, sizeof *c->key_len);
    c->ids_off = bl_calloc(c->slots, sizeof *c->ids_off);
    c->ids_len = bl_calloc(c->slots, sizeof *c->ids_len);
    c->cap_ids = TOK_CACHE_POOL / 4;
    c->ids = bl_malloc(c->cap_ids * sizeof *c->ids);
    if (!c->hash || !c->key_off || !c->key_len || !c->ids_off || !c->ids_len || !c->ids) return BALORA_STATUS_NOMEM;
    return tbuf_reserve(&c->pool, TOK_CACHE_POOL);
}

static void cache_free(tcache *c) {
    free(c->hash); free(c->key_off); free(c->key_len); free(c->ids_off); free(c->ids_len); free(c->ids);
    tbuf_free(&c->pool);
    memset(c, 0, sizeof *c);
}

static bool cache_get(bl_tok *t, const char *w, size_t n, uint64_t h) {
    tcache *c = &t->cache;
    if (!c->hash) return false;
    size_t mask = c->slots - 1;
    for (size_t k = h & mask, probe = 0; probe < 8; k = (k + 1) & mask, probe++) {
        if (c->hash[k] == 0) return false;
        if (c->hash[k] == h && c->key_len[k] == n && memcmp(c->pool.p + c->key_off[k], w, n) == 0) {
            for (uint32_t i = 0; i < c->ids_len[k]; i++)
                if (ids_push(t, c->ids[c->ids_off[k] + i], 0) != BALORA_STATUS_OK) return false;
            return true;
        }
    }
    return false;
}

static void cache_put(bl_tok *t, const char *w, size_t n, uint64_t h, const int32_t *ids, size_t m) {
    tcache *c = &t->cache;
    if (cache_init(c) != BALORA_STATUS_OK) { bl_clear_error(); return; }
    if (c->used * 2 >= c->slots || c->pool.n + n > c->pool.cap || c->n_ids + m > c->cap_ids) {
        memset(c->hash, 0, c->slots * sizeof *c->hash); /* full: start afresh */
        c->used = 0; c->pool.n = 0; c->n_ids = 0;
    }
    size_t mask = c->slots - 1;
    for (size_t k = h & mask, probe = 0; probe < 8; k = (k + 1) & mask, probe++) {
        if (c->hash[k] != 0) continue;
        c->hash[k] = h;
        c->key_off[k] = (uint32_t)c->pool.n;
        c->key_len[k] = (uint32_t)n;
        memcpy(c->pool.p + c->pool.n, w, n);
        c->pool.n += n;
        c->ids_off[k] = (uint32_t)c->n_ids;
        c->ids_len[k] = (uint32_t)m;
        memcpy(c->ids + c->n_ids, ids, m * sizeof *ids);
        c->n_ids += m;
        c->used++;
        return;
    }
}

/* ------------------------------------------------------------------ BPE */

static balora_status sym_reserve(bl_tok *t, size_t n) {
    if (n <= t->w_cap) return BALORA_STATUS_OK;
    size_t cap = t->w_cap ? t->w_cap : 64;
    while (cap < n) cap *= 2;
    int32_t *a = bl_realloc(t->w_id, cap * sizeof *a);
    if (!a) return BALORA_STATUS_NOMEM;
    t->w_id = a;
    int32_t *b = bl_realloc(t->w_prev, cap * sizeof *b);
    if (!b) return BALORA_STATUS_NOMEM;
    t->w_prev = b;
    int32_t *c = bl_realloc(t->w_next, cap * sizeof *c);
    if (!c) return BALORA_STATUS_NOMEM;
    t->w_next = c;
    void *h = bl_realloc(t->heap, 3 * cap * sizeof *t->heap);
    if (!h) return BALORA_STATUS_NOMEM;
    t->heap = h;
    t->heap_cap = 3 * cap;
    t->w_cap = cap;
    return BALORA_STATUS_OK;
}

typedef struct theap theap;
static bool heap_less(const theap *a, const theap *b) { return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos); }

static void heap_push(theap *h, size_t *n, theap e) {
    size_t i = (*n)++;
    h[i] = e;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&h[i], &h[p])) break;
        theap tmp = h[i]; h[i] = h[p]; h[p] = tmp;
        i = p;
    }
}

static theap heap_pop(theap *h, size_t *n) {
    theap top = h[0];
    h[0] = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && heap_less(&h[l], &h[m])) m = l;
        if (r < *n && heap_less(&h[r], &h[m])) m = r;
        if (m == i) break;
        theap tmp = h[i]; h[i] = h[m]; h[m] = tmp;
        i = m;
    }
    return top;
}

static void bpe_try_pair(bl_tok *t, size_t *nh, int32_t pos) {
    if (pos < 0) return;
    int32_t r = t->w_next[pos];
    if (r < 0) return;
    int32_t rank, merged;
    if (!pairmap_get(&t->merges, t->w_id[pos], t->w_id[r], &rank, &merged)) return;
    heap_push(t->heap, nh, (theap){rank, pos, r, merged, t->w_id[pos], t->w_id[r]});
}

/* lookup of a (possibly prefixed/suffixed) piece in the model vocabulary */
static int32_t vocab_affix(bl_tok *t, const char *pre, const char *s, size_t n, const char *suf) {
    if (!pre && !suf) return idmap_get(t, s, n);
    tbuf *w = &t->s_word;
    w->n = 0;
    if (pre && tbuf_put(w, pre, strlen(pre))) return -1;
    if (tbuf_put(w, s, n)) return -1;
    if (suf && tbuf_put(w, suf, strlen(suf))) return -1;
    return idmap_get(t, w->p, w->n);
}

static balora_status bpe_word(bl_tok *t, const char *w, size_t n) {
    if (n == 0) return BALORA_STATUS_OK;
    if (n > (size_t)INT32_MAX / 4) return bl_fail(BALORA_STATUS_INVALID, "tokenizer: a single word of %zu bytes is too long (at most %d)", n, INT32_MAX / 4);
    uint64_t h = 0;
    if (n <= TOK_CACHE_MAX_WORD) {
        h = hash_bytes(w, n);
        if (cache_get(t, w, n, h)) return BALORA_STATUS_OK;
    }
    size_t first = t->n_ids;
    if (t->ignore_merges) {
        int32_t id;
        if (t->byte_level) {
            tbuf *b = &t->s_word;
            b->n = 0;
            BL_TRY(tbuf_reserve(b, 2 * n + 1));
            for (size_t i = 0; i < n; i++) { char c[3]; int k = tok_byte_char((unsigned char)w[i], c); memcpy(b->p + b->n, c, (size_t)k); b->n += (size_t)k; }
            id = idmap_get(t, b->p, b->n);
        } else id = vocab_affix(t, NULL, w, n, t->eow_suffix);
        if (id >= 0) {
            BL_TRY(ids_push(t, id, 0));
            if (h) cache_put(t, w, n, h, t->ids + first, 1);
            return BALORA_STATUS_OK;
        }
    }
    BL_TRY(sym_reserve(t, 4 * n + 1));
    int32_t m = 0;
    if (t->byte_level) {
        for (size_t i = 0; i < n; i++) {
            int32_t id = t->byte_id[(unsigned char)w[i]];
            if (id < 0) id = t->unk_id; /* HF: unk, or dropped when the model has no unk_token */
            if (id >= 0) t->w_id[m++] = id;
        }
    } else {
        size_t i = 0;
        bool prev_unk = false;
        while (i < n) {
            size_t a = i;
            i += (size_t)utf8_len_lead((unsigned char)w[a]);
            if (i > n) i = n;
            int32_t id = vocab_affix(t, a > 0 ? t->cont_prefix : NULL, w + a, i - a, i == n ? t->eow_suffix : NULL);
            if (id >= 0) { t->w_id[m++] = id; prev_unk = false; continue; }
            if (t->byte_fallback) {
                bool all = true;
                for (size_t k = a; k < i; k++) if (t->byte_id[(unsigned char)w[k]] < 0) all = false;
                if (all) {
                    for (size_t k = a; k < i; k++) t->w_id[m++] = t->byte_id[(unsigned char)w[k]];
                    prev_unk = false;
                    continue;
                }
            }
            if (t->unk_id < 0) continue; /* HF drops a character it cannot represent when there is no unk_token */
            if (t->fuse_unk && prev_unk) continue;
            t->w_id[m++] = t->unk_id;
            prev_unk = true;
        }
    }
    if (m == 0) return BALORA_STATUS_OK;
    for (int32_t i = 0; i < m; i++) { t->w_prev[i] = i - 1; t->w_next[i] = i + 1 < m ? i + 1 : -1; }
    size_t nh = 0;
    for (int32_t i = 0; i + 1 < m; i++) bpe_try_pair(t, &nh, i);
    while (nh > 0) {
        theap e = heap_pop(t->heap, &nh);
        if (t->w_id[e.pos] != e.lid || t->w_next[e.pos] != e.right || t->w_id[e.right] != e.rid) continue;
        int32_t r = e.right;
        t->w_id[e.pos] = e.merged;
        t->w_next[e.pos] = t->w_next[r];
        if (t->w_next[r] >= 0) t->w_prev[t->w_next[r]] = e.pos;
        t->w_id[r] = -1;
        t->w_next[r] = -1;
        if (nh + 2 > t->heap_cap) return bl_fail(BALORA_STATUS_INTERNAL, "tokenizer: BPE heap overflow");
        bpe_try_pair(t, &nh, t->w_prev[e.pos]);
        bpe_try_pair(t, &nh, e.pos);
    }
    for (int32_t i = 0; i >= 0; i = t->w_next[i]) BL_TRY(ids_push(t, t->w_id[i], 0));
    if (h) cache_put(t, w, n, h, t->ids + first, t->n_ids - first);
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ WordPiece */

static balora_status wordpiece_word(bl_tok *t, const char *w, size_t n) {
    if (n == 0) return BALORA_STATUS_OK;
    size_t nchars = 0;
    for (size_t i = 0; i < n; i++) if (((unsigned char)w[i] & 0xC0) != 0x80) nchars++;
    if (t->unk_id < 0) return bl_fail(BALORA_STATUS_FORMAT, "tokenizer: WordPiece model has no unk_token in its vocabulary");
    if ((int64_t)nchars > t->max_input_chars) return ids_push(t, t->unk_id, 0);
    size_t first = t->n_ids, start = 0;
    while (start < n) {
        size_t end = n;
        int32_t found = -1;
        while (end > start) {
            int32_t id = vocab_affix(t, start > 0 ? t->cont_prefix : NULL, w + start, end - start, NULL);
            if (id >= 0) { found = id; break; }
            end--;
            while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80) end--;
        }
        if (found < 0) { t->n_ids = first; return ids_push(t, t->unk_id, 0); }
        BL_TRY(ids_push(t, found, 0));
        start = end;
    }
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ Unigram */

static balora_status unigram_word(bl_tok *t, const char *w, size_t n) {
    if (n == 0) return BALORA_STATUS_OK;
    if (n > (size_t)INT32_MAX / 4) return bl_fail(BALORA_STATUS_INVALID, "tokenizer: a single word of %zu bytes is too long (at most %d)", n, INT32_MAX / 4);
    if (n + 1 > t->v_cap) {
        size_t cap = (n + 1) * 2;
        double *s = bl_realloc(t->v_score, cap * sizeof *s);
        if (!s) return BALORA_STATUS_NOMEM;
        t->v_score = s;
        int32_t *a = bl_realloc(t->v_start, cap * sizeof *a);
        if (!a) return BALORA_STATUS_NOMEM;
        t->v_start = a;
        int32_t *b = bl_realloc(t->v_id, cap * sizeof *b);
        if (!b) return BALORA_STATUS_NOMEM;
        t->v_id = b;
        t->v_cap = cap;
    }
    const double unk_score = t->min_score - 10.0;
    /* best[i]: best score of a segmentation of w[0..i); -1 start = unreachable */
    for (size_t i = 0; i <= n; i++) { t->v_start[i] = -1; t->v_score[i] = 0; t->v_id[i] = -1; }
    t->v_start[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (t->v_start[i] < 0 && i > 0) continue;
        if (((unsigned char)w[i] & 0xC0) == 0x80) continue;
        size_t clen = (size_t)utf8_len_lead((unsigned char)w[i]);
        bool single = false;
        size_t maxl = (size_t)t->max_piece_len;
        for (size_t e = i + 1; e <= n && e - i <= maxl; e++) {
            if (e < n && ((unsigned char)w[e] & 0xC0) == 0x80) continue;
            int32_t id = idmap_get(t, w + i, e - i);
            if (id < 0) continue;
            if (e - i == clen) single = true;
            double sc = t->v_score[i] + t->score[id];
            if (t->v_start[e] < 0 || sc > t->v_score[e]) { t->v_score[e] = sc; t->v_start[e] = (int32_t)i; t->v_id[e] = id; }
        }
        if (!single) {
            size_t e = i + clen;
            if (e > n) e = n;
            double sc = t->v_score[i] + unk_score;
            if (t->v_start[e] < 0 || sc > t->v_score[e]) { t->v_score[e] = sc; t->v_start[e] = (int32_t)i; t->v_id[e] = -2; }
        }
    }
    /* backtrack into w_id (reversed), then emit */
    BL_TRY(sym_reserve(t, n + 1));
    int32_t m = 0;
    for (size_t e = n; e > 0; e = (size_t)t->v_start[e]) {
        t->w_prev[m] = t->v_start[e];
        t->w_next[m] = (int32_t)e;
        t->w_id[m++] = t->v_id[e];
    }
    bool prev_unk = false;
    for (int32_t k = m - 1; k >= 0; k--) {
        int32_t id = t->w_id[k];
        if (id == -2 || id == t->unk_id) {
            if (t->byte_fallback) {
                bool all = true;
                for (int32_t b = t->w_prev[k]; b < t->w_next[k]; b++) if (t->byte_id[(unsigned char)w[b]] < 0) all = false;
                if (all) {
                    for (int32_t b = t->w_prev[k]; b < t->w_next[k]; b++) BL_TRY(ids_push(t, t->byte_id[(unsigned char)w[b]], 0));
                    prev_unk = false;
                    continue;
                }
            }
            if (t->unk_id < 0) return bl_fail(BALORA_STATUS_FORMAT, "tokenizer: Unigram model needs an unk_id for '%.*s'", (int)(t->w_next[k] - t->w_prev[k]), w + t->w_prev[k]);
            if (t->fuse_unk && prev_unk) continue;
            BL_TRY(ids_push(t, t->unk_id, 0));
            prev_unk = true;
            continue;
        }
        prev_unk = false;
        BL_TRY(ids_push(t, id, 0));
    }
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ one text (no post-processing) */

/* Pre-tokenizer and model over one piece of normalized text. */
static balora_status model_piece(bl_tok *t, const char *s, size_t n, bool at_start) {
    if (n == 0) return BALORA_STATUS_OK;
    t->s_pre.n = 0;
    t->sp_a.n = 0;
    BL_TRY(tbuf_put(&t->s_pre, s, n));
    BL_TRY(tspans_push(&t->sp_a, 0, n));
    if (t->pre) BL_TRY(pre_one(t, t->pre, at_start));
    for (size_t k = 0; k < t->sp_a.n; k++) {
        const char *w = t->s_pre.p + t->sp_a.v[k].off;
        size_t wl = t->sp_a.v[k].len;
        switch (t->model) {
        case BL_TOK_MODEL_BPE: BL_TRY(bpe_word(t, w, wl)); break;
        case BL_TOK_MODEL_WORDPIECE: BL_TRY(wordpiece_word(t, w, wl)); break;
        case BL_TOK_MODEL_UNIGRAM: BL_TRY(unigram_word(t, w, wl)); break;
        }
    }
    return BALORA_STATUS_OK;
}

static int added_at(const bl_tok *t, const char *text, size_t len, size_t i, bool normalized);
static bool ascii_ws(char c);

/* A segment of the text between non-normalized added tokens: normalize it, then split it at the
 * added tokens with normalized=true (matched on the normalized text, as HF does). */
static balora_status encode_segment(bl_tok *t, const char *s, size_t n, bool at_start) {
    if (n == 0) return BALORA_STATUS_OK;
    tbuf *x = &t->s_norm; /* not touched by the pre-tokenizers and models */
    x->n = 0;
    BL_TRY(tbuf_put(x, s, n));
    if (t->norm) BL_TRY(normalize(t, t->norm, x));
    if (!t->has_norm_added) return model_piece(t, x->p, x->n, at_start);
    size_t seg = 0, i = 0;
    while (i < x->n) {
        int k = t->added_first_norm[(unsigned char)x->p[i]] ? added_at(t, x->p, x->n, i, true) : -1;
        if (k < 0) { i++; continue; }
        const tadded *a = &t->added[k];
        size_t ms = i, me = i + a->len;
        if (a->lstrip) while (ms > seg && ascii_ws(x->p[ms - 1])) ms--;
        if (a->rstrip) while (me < x->n && ascii_ws(x->p[me])) me++;
        BL_TRY(model_piece(t, x->p + seg, ms - seg, at_start && seg == 0));
        BL_TRY(ids_push(t, a->id, a->special ? 1 : 0));
        seg = i = me;
    }
    return model_piece(t, x->p + seg, x->n - seg, at_start && seg == 0);
}

static bool ascii_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* The added token that starts at text[i] (longest), or -1. */
static int added_at(const bl_tok *t, const char *text, size_t len, size_t i, bool normalized) {
    int best = -1;
    size_t best_len = 0;
    for (int k = 0; k < t->n_added; k++) {
        const tadded *a = &t->added[k];
        if (a->normalized != normalized || a->len <= best_len || a->len > len - i || a->content[0] != text[i]) continue;
        if (memcmp(a->content, text + i, a->len) != 0) continue;
        if (a->single_word) {
            if (i > 0) {
                size_t s = i - 1;
                while (s > 0 && ((unsigned char)text[s] & 0xC0) == 0x80) s--;
                size_t q = s;
                if (is_word_char(tok_utf8_next(text, len, &q))) continue;
            }
            if (i + a->len < len) {
                size_t q = i + a->len;
                if (is_word_char(tok_utf8_next(text, len, &q))) continue;
            }
        }
        best = k;
        best_len = a->len;
    }
    return best;
}

static balora_status encode_text(bl_tok *t, const char *text, size_t len) {
    size_t bad;
    if (!bl_utf8_valid(text, len, &bad))
        return bl_fail(BALORA_STATUS_INVALID, "tokenizer: the text is not valid UTF-8 at byte %zu (0x%02X); hint: convert the input to UTF-8", bad, (unsigned char)text[bad]);
    size_t seg = 0, i = 0;
    while (i < len) {
        int k = t->added_first[(unsigned char)text[i]] ? added_at(t, text, len, i, false) : -1;
        if (k < 0) { i++; continue; }
        const tadded *a = &t->added[k];
        size_t ms = i, me = i + a->len;
        if (a->lstrip) while (ms > seg && ascii_ws(text[ms - 1])) ms--;
        if (a->rstrip) while (me < len && ascii_ws(text[me])) me++;
        BL_TRY(encode_segment(t, text + seg, ms - seg, seg == 0));
        BL_TRY(ids_push(t, a->id, a->special ? 1 : 0));
        seg = i = me;
    }
    return encode_segment(t, text + seg, len - seg, seg == 0);
}

/* ------------------------------------------------------------------ public encode */

static balora_status enc_reserve(bl_tok_enc *e, size_t n) {
    if (n <= e->cap) return BALORA_STATUS_OK;
    size_t cap = e->cap ? e->cap : 64;
    while (cap < n) cap *= 2;
    int32_t *a = bl_realloc(e->ids, cap * sizeof *a);
    if (!a) return BALORA_STATUS_NOMEM;
    e->ids = a;
    int32_t *b = bl_realloc(e->type_ids, cap * sizeof *b);
    if (!b) return BALORA_STATUS_NOMEM;
    e->type_ids = b;
    uint8_t *c = bl_realloc(e->special, cap);
    if (!c) return BALORA_STATUS_NOMEM;
    e->special = c;
    e->cap = cap;
    return BALORA_STATUS_OK;
}

void bl_tok_enc_free(bl_tok_enc *e) {
    if (!e) return;
    free(e->ids); free(e->type_ids); free(e->special);
    memset(e, 0, sizeof *e);
}

static balora_status enc_put(bl_tok_enc *e, int32_t id, int32_t type, uint8_t special) {
    BL_TRY(enc_reserve(e, e->n + 1));
    e->ids[e->n] = id;
    e->type_ids[e->n] = type;
    e->special[e->n] = special;
    e->n++;
    return BALORA_STATUS_OK;
}

/* t->ids holds A's ids in [0, na) and B's in [na, na + nb) (nb < 0: single). */
static balora_status post_process(bl_tok *t, size_t na, long nb, bool add_special, bl_tok_enc *out) {
    out->n = 0;
    BL_TRY(enc_reserve(out, t->n_ids + 16));
    if (!add_special || !t->tpl.present) {
        for (size_t i = 0; i < na; i++) BL_TRY(enc_put(out, t->ids[i], 0, t->ids_special[i]));
        for (long i = 0; i < nb; i++) BL_TRY(enc_put(out, t->ids[na + (size_t)i], 1, t->ids_special[na + (size_t)i]));
        return BALORA_STATUS_OK;
    }
    const ttpl_item *it = nb < 0 ? t->tpl.single : t->tpl.pair;
    int n_it = nb < 0 ? t->tpl.n_single : t->tpl.n_pair;
    for (int k = 0; k < n_it; k++) {
        if (it[k].seq < 0) {
            for (int j = 0; j < it[k].n_ids; j++) BL_TRY(enc_put(out, it[k].ids[j], it[k].type_id, 1));
        } else if (it[k].seq == 0) {
            for (size_t i = 0; i < na; i++) BL_TRY(enc_put(out, t->ids[i], it[k].type_id, t->ids_special[i]));
        } else {
            for (long i = 0; i < nb; i++) BL_TRY(enc_put(out, t->ids[na + (size_t)i], it[k].type_id, t->ids_special[na + (size_t)i]));
        }
    }
    return BALORA_STATUS_OK;
}

balora_status bl_tok_encode(bl_tok *t, const char *text, size_t len, bool add_special, bl_tok_enc *out) {
    if (!t || !out || (!text && len)) return bl_fail(BALORA_STATUS_INVALID, "bl_tok_encode: NULL argument");
    t->n_ids = 0;
    BL_TRY(encode_text(t, text ? text : "", len));
    return post_process(t, t->n_ids, -1, add_special, out);
}

balora_status bl_tok_encode_pair(bl_tok *t, const char *a, size_t alen, const char *b, size_t blen, bool add_special, bl_tok_enc *out) {
    if (!t || !out || (!a && alen) || (!b && blen)) return bl_fail(BALORA_STATUS_INVALID, "bl_tok_encode_pair: NULL argument");
    t->n_ids = 0;
    BL_TRY(encode_text(t, a ? a : "", alen));
    size_t na = t->n_ids;
    BL_TRY(encode_text(t, b ? b : "", blen));
    return post_process(t, na, (long)(t->n_ids - na), add_special, out);
}

balora_status bl_tok_encode_ids(bl_tok *t, const char *text, size_t len, bool add_special, int32_t *ids, size_t cap, size_t *n) {
    bl_tok_enc e = {0};
    balora_status st = bl_tok_encode(t, text, len, add_special, &e);
    if (st == BALORA_STATUS_OK) {
        if (n) *n = e.n;
        if (e.n > cap) st = bl_fail(BALORA_STATUS_INVALID, "bl_tok_encode_ids: the text needs %zu ids, the buffer holds %zu", e.n, cap);
        else if (e.n) memcpy(ids, e.ids, e.n * sizeof *ids);
    }
    bl_tok_enc_free(&e);
    return st;
}

/* ------------------------------------------------------------------ decoding */

void tok_dec_free(tdec *d) {
    if (!d) return;
    for (int i = 0; i < d->n_sub; i++) tok_dec_free(&d->sub[i]);
    free(d->sub);
    free(d->a); free(d->b);
    d->sub = NULL; d->n_sub = 0; d->a = d->b = NULL;
}

/* Appends bytes decoded leniently: invalid UTF-8 -> U+FFFD per maximal subpart (as Rust's
 * String::from_utf8_lossy and the WHATWG TextDecoder do). */
static balora_status put_lossy(tbuf *o, const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) { BL_TRY(tbuf_put(o, s + i, 1)); i++; continue; }
        size_t need; unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else { BL_TRY(tbuf_put(o, "\xEF\xBF\xBD", 3)); i++; continue; }
        size_t k = 1;
        for (; k <= need && i + k < n; k++) {
            unsigned char d = s[i + k];
            unsigned char l2 = k == 1 ? lo : 0x80, h2 = k == 1 ? hi : 0xBF;
            if (d < l2 || d > h2) break;
        }
        if (k == need + 1) { BL_TRY(tbuf_put(o, s + i, k)); i += k; }
        else { BL_TRY(tbuf_put(o, "\xEF\xBF\xBD", 3)); i += k; }
    }
    return BALORA_STATUS_OK;
}

/* token pieces live in (s_pre, sp_a); each decoder maps them to (s_pre2, sp_b). */
static balora_status dec_emit(bl_tok *t, const char *s, size_t n) {
    size_t off = t->s_pre2.n;
    BL_TRY(tbuf_put(&t->s_pre2, s, n));
    return tspans_push(&t->sp_b, off, n);
}

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }
/* "<0xAB>" -> 0xAB, else -1 */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int a = hexval(s[3]), b = hexval(s[4]);
    return a < 0 || b < 0 ? -1 : a * 16 + b;
}

static balora_status str_replace_all(tbuf *o, const char *s, size_t n, const char *a, const char *b) {
    size_t al = strlen(a), bl = strlen(b), i = 0;
    if (!al) return tbuf_put(o, s, n);
    while (i < n) {
        const char *f = memmem(s + i, n - i, a, al);
        if (!f) break;
        BL_TRY(tbuf_put(o, s + i, (size_t)(f - s) - i));
        BL_TRY(tbuf_put(o, b, bl));
        i = (size_t)(f - s) + al;
    }
    return tbuf_put(o, s + i, n - i);
}

static balora_status wp_cleanup(tbuf *o, tbuf *tmp) {
    static const char *const from[] = {" .", " ?", " !", " ,", " ' ", " n't", " 'm", " do not", " 's", " 've", " 're"};
    static const char *const to[] = {".", "?", "!", ",", "'", "n't", "'m", " don't", "'s", "'ve", "'re"};
    for (size_t k = 0; k < sizeof from / sizeof from[0]; k++) {
        tmp->n = 0;
        BL_TRY(tbuf_reserve(tmp, o->n + 1));
        BL_TRY(str_replace_all(tmp, o->p, o->n, from[k], to[k]));
        tbuf_swap(o, tmp);
    }
    return BALORA_STATUS_OK;
}

static balora_status dec_apply(bl_tok *t, const tdec *d) {
    if (d->kind == TD_SEQUENCE) {
        for (int i = 0; i < d->n_sub; i++) BL_TRY(dec_apply(t, &d->sub[i]));
        return BALORA_STATUS_OK;
    }
    t->s_pre2.n = 0;
    t->sp_b.n = 0;
    tbuf *w = &t->s_word;
    size_t nt = t->sp_a.n;
    switch (d->kind) {
    case TD_BYTELEVEL: { /* all tokens -> bytes -> one lossy UTF-8 string */
        tbuf *raw = &t->s_tmp;
        raw->n = 0;
        for (size_t k = 0; k < nt; k++) {
            const char *s = t->s_pre.p + t->sp_a.v[k].off;
            size_t n = t->sp_a.v[k].len, i = 0, start = raw->n;
            bool ok = true;
            while (i < n) {
                int b = tok_char_byte(tok_utf8_next(s, n, &i));
                if (b < 0) { ok = false; break; }
                unsigned char ub = (unsigned char)b;
                BL_TRY(tbuf_put(raw, &ub, 1));
            }
            if (!ok) { raw->n = start; BL_TRY(tbuf_put(raw, s, n)); }
        }
        w->n = 0;
        BL_TRY(tbuf_reserve(w, 1));
        BL_TRY(put_lossy(w, (const unsigned char *)raw->p, raw->n));
        BL_TRY(dec_emit(t, w->p, w->n));
        break;
    }
    case TD_REPLACE:
        for (size_t k = 0; k < nt; k++) {
            w->n = 0;
            BL_TRY(tbuf_reserve(w, 1));
            BL_TRY(str_replace_all(w, t->s_pre.p + t->sp_a.v[k].off, t->sp_a.v[k].len, d->a, d->b));
            BL_TRY(dec_emit(t, w->p, w->n));
        }
        break;
    case TD_BYTE_FALLBACK: {
        size_t k = 0;
        while (k < nt) {
            const char *s = t->s_pre.p + t->sp_a.v[k].off;
            size_t n = t->sp_a.v[k].len;
            if (byte_token(s, n) < 0) { BL_TRY(dec_emit(t, s, n)); k++; continue; }
            w->n = 0;
            size_t j = k;
            for (; j < nt; j++) {
                int b = byte_token(t->s_pre.p + t->sp_a.v[j].off, t->sp_a.v[j].len);
                if (b < 0) break;
                unsigned char ub = (unsigned char)b;
                BL_TRY(tbuf_put(w, &ub, 1));
            }
            size_t bad;
            if (bl_utf8_valid(w->p, w->n, &bad)) BL_TRY(dec_emit(t, w->p, w->n));
            else for (size_t q = k; q < j; q++) BL_TRY(dec_emit(t, "\xEF\xBF\xBD", 3));
            k = j;
        }
        break;
    }
    case TD_FUSE: {
        w->n = 0;
        BL_TRY(tbuf_reserve(w, 1));
        for (size_t k = 0; k < nt; k++) BL_TRY(tbuf_put(w, t->s_pre.p + t->sp_a.v[k].off, t->sp_a.v[k].len));
        BL_TRY(dec_emit(t, w->p, w->n));
        break;
    }
    case TD_STRIP: {
        size_t cl = strlen(d->a);
        for (size_t k = 0; k < nt; k++) {
            const char *s = t->s_pre.p + t->sp_a.v[k].off;
            size_t n = t->sp_a.v[k].len;
            for (int c = 0; c < d->start && cl && n >= cl && memcmp(s, d->a, cl) == 0; c++) { s += cl; n -= cl; }
            for (int c = 0; c < d->stop && cl && n >= cl && memcmp(s + n - cl, d->a, cl) == 0; c++) n -= cl;
            BL_TRY(dec_emit(t, s, n));
        }
        break;
    }
    case TD_METASPACE: /* HF: every replacement char of the first token is dropped (unless prepend never) */
        for (size_t k = 0; k < nt; k++) {
            w->n = 0;
            BL_TRY(tbuf_reserve(w, 1));
            BL_TRY(str_replace_all(w, t->s_pre.p + t->sp_a.v[k].off, t->sp_a.v[k].len, d->repl, k == 0 && d->prepend != 0 ? "" : " "));
            BL_TRY(dec_emit(t, w->p, w->n));
        }
        break;
    case TD_WORDPIECE: {
        size_t pl = strlen(d->a);
        for (size_t k = 0; k < nt; k++) {
            const char *s = t->s_pre.p + t->sp_a.v[k].off;
            size_t n = t->sp_a.v[k].len;
            w->n = 0;
            BL_TRY(tbuf_reserve(w, n + 2));
            if (k > 0) {
                if (pl && n >= pl && memcmp(s, d->a, pl) == 0) { s += pl; n -= pl; }
                else BL_TRY(tbuf_put(w, " ", 1));
            }
            BL_TRY(tbuf_put(w, s, n));
            if (d->cleanup) BL_TRY(wp_cleanup(w, &t->s_tmp));
            BL_TRY(dec_emit(t, w->p, w->n));
        }
        break;
    }
    case TD_BPE_SUFFIX: {
        for (size_t k = 0; k < nt; k++) {
            w->n = 0;
            BL_TRY(tbuf_reserve(w, 1));
            BL_TRY(str_replace_all(w, t->s_pre.p + t->sp_a.v[k].off, t->sp_a.v[k].len, d->a, k + 1 < nt ? " " : ""));
            BL_TRY(dec_emit(t, w->p, w->n));
        }
        break;
    }
    case TD_SEQUENCE: break;
    }
    tbuf_swap(&t->s_pre, &t->s_pre2);
    tspans_swap(&t->sp_a, &t->sp_b);
    return BALORA_STATUS_OK;
}

static balora_status load_tokens(bl_tok *t, const int32_t *ids, size_t n, bool skip_special) {
    t->s_pre.n = 0;
    t->sp_a.n = 0;
    BL_TRY(tbuf_reserve(&t->s_pre, 1));
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab || !t->str[id])
            return bl_fail(BALORA_STATUS_INVALID, "tokenizer: cannot decode id %d (position %zu): the vocabulary has ids 0..%d", id, i, t->n_vocab - 1);
        if (skip_special && t->is_special[id]) continue;
        size_t off = t->s_pre.n;
        BL_TRY(tbuf_put(&t->s_pre, t->str[id], t->len[id]));
        BL_TRY(tspans_push(&t->sp_a, off, t->len[id]));
    }
    return BALORA_STATUS_OK;
}

static balora_status finish_text(tbuf *src, char **text, size_t *len) {
    char *o = bl_malloc(src->n + 1);
    if (!o) return BALORA_STATUS_NOMEM;
    if (src->n) memcpy(o, src->p, src->n);
    o[src->n] = 0;
    *text = o;
    if (len) *len = src->n;
    return BALORA_STATUS_OK;
}

balora_status bl_tok_decode(bl_tok *t, const int32_t *ids, size_t n, bool skip_special, char **text, size_t *len) {
    if (!t || !text || (!ids && n)) return bl_fail(BALORA_STATUS_INVALID, "bl_tok_decode: NULL argument");
    *text = NULL;
    BL_TRY(load_tokens(t, ids, n, skip_special));
    if (t->dec) BL_TRY(dec_apply(t, t->dec));
    /* join what is left (HF joins with "" after a decoder, with " " without one) */
    tbuf *o = &t->s_norm;
    o->n = 0;
    BL_TRY(tbuf_reserve(o, 1));
    for (size_t k = 0; k < t->sp_a.n; k++) {
        if (!t->dec && k) BL_TRY(tbuf_put(o, " ", 1));
        BL_TRY(tbuf_put(o, t->s_pre.p + t->sp_a.v[k].off, t->sp_a.v[k].len));
    }
    /* transformers' decode also cleans up the joined text when clean_up_tokenization_spaces is set in
       tokenizer_config.json (default: only with a WordPiece decoder that cleans up, as for BERT) */
    bool clean = t->cleanup_spaces >= 0 ? t->cleanup_spaces == 1 : (t->dec && t->dec->kind == TD_WORDPIECE && t->dec->cleanup);
    if (clean) BL_TRY(wp_cleanup(o, &t->s_tmp));
    return finish_text(o, text, len);
}

balora_status bl_tok_decode_bytes(bl_tok *t, const int32_t *ids, size_t n, bool skip_special, char **bytes, size_t *len) {
    if (!t || !bytes || (!ids && n)) return bl_fail(BALORA_STATUS_INVALID, "bl_tok_decode_bytes: NULL argument");
    *bytes = NULL;
    BL_TRY(load_tokens(t, ids, n, skip_special));
    tbuf *o = &t->s_norm;
    o->n = 0;
    BL_TRY(tbuf_reserve(o, 1));
    const char *repl = NULL;
    if (t->pre && t->pre->kind == TP_METASPACE) repl = t->pre->repl;
    else if (t->model == BL_TOK_MODEL_BPE && !t->byte_level) repl = "\xE2\x96\x81";
    for (size_t k = 0; k < t->sp_a.n; k++) {
        const char *s = t->s_pre.p + t->sp_a.v[k].off;
        size_t m = t->sp_a.v[k].len;
        int b = byte_token(s, m);
        if (t->byte_level) {
            size_t i = 0, start = o->n;
            bool ok = true;
            while (i < m) {
                int c = tok_char_byte(tok_utf8_next(s, m, &i));
                if (c < 0) { ok = false; break; }
                unsigned char ub = (unsigned char)c;
                BL_TRY(tbuf_put(o, &ub, 1));
            }
            if (!ok) { o->n = start; BL_TRY(tbuf_put(o, s, m)); }
        } else if (b >= 0 && (t->byte_fallback || t->model == BL_TOK_MODEL_UNIGRAM)) {
            unsigned char ub = (unsigned char)b;
            BL_TRY(tbuf_put(o, &ub, 1));
        } else if (repl) {
            BL_TRY(str_replace_all(o, s, m, repl, " "));
        } else {
            BL_TRY(tbuf_put(o, s, m));
        }
    }
    return finish_text(o, bytes, len);
}

/* ------------------------------------------------------------------ accessors */

int32_t bl_tok_vocab_size(const bl_tok *t) { return t ? t->n_vocab : 0; }
bl_tok_model bl_tok_model_type(const bl_tok *t) { return t->model; }
int32_t bl_tok_special(const bl_tok *t, bl_tok_role role) { return t && role >= 0 && role < BL_TOK_N_ROLES ? t->role[role] : -1; }
const char *bl_tok_id_to_token(const bl_tok *t, int32_t id) { return t && id >= 0 && id < t->n_vocab ? t->str[id] : NULL; }
bool bl_tok_adds_special(const bl_tok *t) {
    if (!t || !t->tpl.present) return false;
    for (int k = 0; k < t->tpl.n_single; k++) if (t->tpl.single[k].seq < 0 && t->tpl.single[k].n_ids) return true;
    return false;
}
int32_t bl_tok_token_to_id(const bl_tok *t, const char *token) {
    if (!t || !token) return -1;
    size_t n = strlen(token);
    for (int k = 0; k < t->n_added; k++) if (t->added[k].len == n && memcmp(t->added[k].content, token, n) == 0) return t->added[k].id;
    return idmap_get(t, token, n);
}

void bl_tok_free(bl_tok *t) {
    if (!t) return;
    free(t->str); free(t->len); free(t->pool);
    free(t->vmap.slot);
    free(t->in_model);
    free(t->merges.e);
    free(t->cont_prefix); free(t->eow_suffix);
    free(t->score);
    if (t->norm) { tok_norm_free(t->norm); free(t->norm); }
    if (t->pre) { tok_pre_free(t->pre); free(t->pre); }
    if (t->dec) { tok_dec_free(t->dec); free(t->dec); }
    for (int k = 0; k < t->n_added; k++) free(t->added[k].content);
    free(t->added);
    free(t->is_special);
    tbuf_free(&t->s_norm); tbuf_free(&t->s_tmp); tbuf_free(&t->s_pre); tbuf_free(&t->s_pre2); tbuf_free(&t->s_word);
    free(t->sp_a.v); free(t->sp_b.v);
    free(t->w_id); free(t->w_prev); free(t->w_next); free(t->heap);
    free(t->v_score); free(t->v_start); free(t->v_id);
    free(t->ids); free(t->ids_special);
    cache_free(&t->cache);
    if (t->md) pcre2_match_data_free(t->md);
    free(t->marks.v);
    free(t);
}
