/* tokenizer.model: a SentencePiece ModelProto (protobuf), read with a small wire-format reader and
 * turned into the pipeline HF's converters build from it:
 *   BPE (LLaMA, Mistral): normalizer Prepend("▁") + Replace(" " -> "▁") when add_dummy_prefix,
 *     BPE with merges derived from the pieces' scores, byte_fallback, fuse_unk; decoder
 *     Replace("▁" -> " "), ByteFallback, Fuse, Strip(" ", 1, 0)   (LlamaConverter)
 *   Unigram (T5, DeBERTa-v3): normalizer Precompiled(charsmap) [+ Replace(" {2,}" -> " ")],
 *     pre-tokenizer Metaspace(prepend always when add_dummy_prefix); decoder Metaspace (SpmConverter).
 * Fields used (sentencepiece_model.proto): ModelProto.pieces=1 {piece=1, score=2, type=3},
 * trainer_spec=2 {model_type=3, byte_fallback=35}, normalizer_spec=3 {precompiled_charsmap=2,
 * add_dummy_prefix=3, remove_extra_whitespaces=4}. */
#include "tok/tok_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pb { const uint8_t *p, *end; const char *what; } pb;

static balora_status pb_varint(pb *r, uint64_t *v) {
    *v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (r->p >= r->end) return bl_fail(BALORA_STATUS_FORMAT, "%s: truncated protobuf varint", r->what);
        uint8_t b = *r->p++;
        *v |= (uint64_t)(b & 0x7F) << s;
        if (!(b & 0x80)) return BALORA_STATUS_OK;
    }
    return bl_fail(BALORA_STATUS_FORMAT, "%s: protobuf varint too long", r->what);
}

/* Reads one field: its number, wire type, and either a varint/fixed value or a sub-buffer. */
static balora_status pb_field(pb *r, uint32_t *field, int *wt, uint64_t *v, pb *sub) {
    uint64_t key;
    BL_TRY(pb_varint(r, &key));
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0: return pb_varint(r, v);
    case 1:
        if (r->end - r->p < 8) return bl_fail(BALORA_STATUS_FORMAT, "%s: truncated protobuf fixed64", r->what);
        memcpy(v, r->p, 8); r->p += 8; return BALORA_STATUS_OK;
    case 5: {
        if (r->end - r->p < 4) return bl_fail(BALORA_STATUS_FORMAT, "%s: truncated protobuf fixed32", r->what);
        uint32_t x; memcpy(&x, r->p, 4); r->p += 4; *v = x; return BALORA_STATUS_OK;
    }
    case 2: {
        uint64_t n;
        BL_TRY(pb_varint(r, &n));
        if (n > (uint64_t)(r->end - r->p)) return bl_fail(BALORA_STATUS_FORMAT, "%s: protobuf field %u claims %llu bytes, %zu left", r->what, *field, (unsigned long long)n, (size_t)(r->end - r->p));
        *sub = (pb){r->p, r->p + n, r->what};
        r->p += n;
        return BALORA_STATUS_OK;
    }
    default: return bl_fail(BALORA_STATUS_FORMAT, "%s: unsupported protobuf wire type %d (field %u); hint: is this a SentencePiece tokenizer.model?", r->what, *wt, *field);
    }
}

typedef struct spm_piece { size_t off, len; float score; int type; } spm_piece;

static int cmp_score(const void *a, const void *b, void *ctx) {
    const spm_piece *p = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (p[x].score != p[y].score) return p[x].score > p[y].score ? -1 : 1;
    return x < y ? -1 : x > y;
}

balora_status tok_load_spm(bl_tok *t, const char *path, const cJSON *cfg) {
    (void)cfg;
    char *data;
    size_t len;
    BL_TRY(bl_file_read(path, &data, &len));
    pb r = {(const uint8_t *)data, (const uint8_t *)data + len, path};
    spm_piece *pieces = NULL;
    size_t n = 0, cap = 0;
    int model_type = 1;
    bool byte_fallback = false, add_dummy = true, remove_ws = true;
    const uint8_t *charsmap = NULL;
    size_t charsmap_len = 0;
    balora_status st = BALORA_STATUS_OK;
    while (!st && r.p < r.end) {
        uint32_t f; int wt; uint64_t v; pb sub;
        if ((st = pb_field(&r, &f, &wt, &v, &sub))) break;
        if (f == 1 && wt == 2) {
            spm_piece sp = {0, 0, 0, 1};
            bool have = false;
            while (!st && sub.p < sub.end) {
                uint32_t g; int w2; uint64_t x; pb s2;
                if ((st = pb_field(&sub, &g, &w2, &x, &s2))) break;
                if (g == 1 && w2 == 2) { sp.off = (size_t)(s2.p - (const uint8_t *)data); sp.len = (size_t)(s2.end - s2.p); have = true; }
                else if (g == 2 && w2 == 5) { uint32_t u = (uint32_t)x; memcpy(&sp.score, &u, 4); }
                else if (g == 3 && w2 == 0) sp.type = (int)x;
            }
            if (st) break;
            if (!have) { st = bl_fail(BALORA_STATUS_FORMAT, "%s: piece %zu has no string", path, n); break; }
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                spm_piece *np = bl_realloc(pieces, cap * sizeof *np);
                if (!np) { st = BALORA_STATUS_NOMEM; break; }
                pieces = np;
            }
            pieces[n++] = sp;
        } else if (f == 2 && wt == 2) {
            while (!st && sub.p < sub.end) {
                uint32_t g; int w2; uint64_t x; pb s2;
                if ((st = pb_field(&sub, &g, &w2, &x, &s2))) break;
                if (g == 3 && w2 == 0) model_type = (int)x;
                else if (g == 35 && w2 == 0) byte_fallback = x != 0;
            }
        } else if (f == 3 && wt == 2) {
            while (!st && sub.p < sub.end) {
                uint32_t g; int w2; uint64_t x; pb s2;
                if ((st = pb_field(&sub, &g, &w2, &x, &s2))) break;
                if (g == 2 && w2 == 2) { charsmap = s2.p; charsmap_len = (size_t)(s2.end - s2.p); }
                else if (g == 3 && w2 == 0) add_dummy = x != 0;
                else if (g == 4 && w2 == 0) remove_ws = x != 0;
            }
        }
    }
    if (!st && n == 0) st = bl_fail(BALORA_STATUS_FORMAT, "%s: no pieces; hint: is this a SentencePiece tokenizer.model?", path);
    if (!st) {
        char what[4200];
        snprintf(what, sizeof what, "%s: normalizer_spec", path);
        st = tok_charsmap_check(what, charsmap, charsmap_len);
    }
    if (!st && model_type != 1 && model_type != 2)
        st = bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: SentencePiece model_type %d is not supported (only UNIGRAM=1 and BPE=2)", path, model_type);
    for (size_t i = 0; !st && i < n; i++) {
        size_t bad;
        if (!bl_utf8_valid(data + pieces[i].off, pieces[i].len, &bad)) st = bl_fail(BALORA_STATUS_FORMAT, "%s: piece %zu is not valid UTF-8", path, i);
        else st = tok_vocab_add(t, (int32_t)i, data + pieces[i].off, pieces[i].len);
        if (pieces[i].type == 6) byte_fallback = true;
        if (pieces[i].type == 2 && t->unk_id < 0) t->unk_id = (int32_t)i;
    }
    t->byte_fallback = byte_fallback;
    t->fuse_unk = true;
    /* normalizer, pre-tokenizer, decoder */
    if (!st && (!(t->norm = bl_calloc(1, sizeof *t->norm)) || !(t->dec = bl_calloc(1, sizeof *t->dec)))) st = BALORA_STATUS_NOMEM;
    if (!st && model_type == 2) {
        t->model = BL_TOK_MODEL_BPE;
        tnorm *nm = t->norm;
        nm->kind = TN_SEQUENCE;
        if (!(nm->sub = bl_calloc(2, sizeof *nm->sub))) st = BALORA_STATUS_NOMEM;
        if (!st && add_dummy) { nm->sub[nm->n_sub].kind = TN_PREPEND; if (!(nm->sub[nm->n_sub++].a = bl_strdup("\xE2\x96\x81"))) st = BALORA_STATUS_NOMEM; }
        if (!st) {
            tnorm *rp = &nm->sub[nm->n_sub++];
            rp->kind = TN_REPLACE;
            if (!(rp->a = bl_strdup(" ")) || !(rp->b = bl_strdup("\xE2\x96\x81"))) st = BALORA_STATUS_NOMEM;
        }
        tdec *d = t->dec;
        d->kind = TD_SEQUENCE;
        if (!st && !(d->sub = bl_calloc(4, sizeof *d->sub))) st = BALORA_STATUS_NOMEM;
        if (!st) {
            d->n_sub = 4;
            d->sub[0].kind = TD_REPLACE;
            d->sub[1].kind = TD_BYTE_FALLBACK;
            d->sub[2].kind = TD_FUSE;
            d->sub[3].kind = TD_STRIP;
            d->sub[3].start = add_dummy ? 1 : 0;
            if (!(d->sub[0].a = bl_strdup("\xE2\x96\x81")) || !(d->sub[0].b = bl_strdup(" ")) || !(d->sub[3].a = bl_strdup(" "))) st = BALORA_STATUS_NOMEM;
        }
        if (remove_ws) bl_log(BL_VERBOSE, "%s: remove_extra_whitespaces is ignored for BPE, as HF's LlamaConverter does", path);
    } else if (!st) {
        t->model = BL_TOK_MODEL_UNIGRAM;
        if (!(t->score = bl_calloc(n, sizeof *t->score))) st = BALORA_STATUS_NOMEM;
        t->min_score = 1e300;
        for (size_t i = 0; !st && i < n; i++) {
            t->score[i] = pieces[i].score;
            if (pieces[i].score < t->min_score) t->min_score = pieces[i].score;
            if ((int)pieces[i].len > t->max_piece_len) t->max_piece_len = (int)pieces[i].len;
        }
        tnorm *nm = t->norm;
        nm->kind = TN_SEQUENCE;
        if (!st && !(nm->sub = bl_calloc(2, sizeof *nm->sub))) st = BALORA_STATUS_NOMEM;
        if (!st && charsmap_len) {
            tnorm *pc = &nm->sub[nm->n_sub++];
            pc->kind = TN_PRECOMPILED;
            if (!(pc->charsmap = bl_malloc(charsmap_len))) st = BALORA_STATUS_NOMEM;
            else { memcpy(pc->charsmap, charsmap, charsmap_len); pc->charsmap_len = charsmap_len; }
        }
        if (!st && remove_ws) {
            tnorm *rp = &nm->sub[nm->n_sub++];
            rp->kind = TN_REPLACE;
            if (!(rp->a = bl_strdup(" {2,}")) || !(rp->b = bl_strdup(" "))) st = BALORA_STATUS_NOMEM;
            else st = tok_compile(path, " {2,}", 5, false, &rp->re);
        }
        if (!st && !(t->pre = bl_calloc(1, sizeof *t->pre))) st = BALORA_STATUS_NOMEM;
        if (!st) {
            t->pre->kind = TP_METASPACE;
            snprintf(t->pre->repl, sizeof t->pre->repl, "\xE2\x96\x81");
            t->pre->prepend = add_dummy ? 2 : 0;
            t->pre->split = true;
            t->dec->kind = TD_METASPACE;
            snprintf(t->dec->repl, sizeof t->dec->repl, "\xE2\x96\x81");
            t->dec->prepend = t->pre->prepend;
        }
    }
    /* control / unknown pieces are special added tokens; user-defined ones are added tokens */
    for (size_t i = 0; !st && i < n; i++) {
        int ty = pieces[i].type;
        if (ty != 2 && ty != 3 && ty != 4) continue;
        char *s = bl_malloc(pieces[i].len + 1);
        if (!s) { st = BALORA_STATUS_NOMEM; break; }
        memcpy(s, data + pieces[i].off, pieces[i].len);
        s[pieces[i].len] = 0;
        if (*s) {
            tadded *a = bl_realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
            if (!a) { free(s); st = BALORA_STATUS_NOMEM; break; }
            t->added = a;
            t->added[t->n_added++] = (tadded){(int32_t)i, s, pieces[i].len, ty != 4, false, false, false, false};
        } else free(s);
    }
    /* BPE merges from scores: every split of a piece into two pieces, ranked by the piece's score */
    if (!st && model_type == 2) {
        int32_t *order = bl_malloc(n * sizeof *order);
        if (!order) st = BALORA_STATUS_NOMEM;
        for (size_t i = 0; !st && i < n; i++) order[i] = (int32_t)i;
        if (!st) qsort_r(order, n, sizeof *order, cmp_score, pieces);
        if (!st) st = tok_vocab_seal(t);
        size_t n_merges = 0;
        for (size_t i = 0; i < n; i++) n_merges += pieces[i].len;
        if (!st) st = tok_pairmap_init(&t->merges, n_merges);
        int32_t rank = 0;
        for (size_t k = 0; !st && k < n; k++) {
            int32_t id = order[k];
            if (pieces[id].type != 1 && pieces[id].type != 4) continue;
            const char *s = t->str[id];
            uint32_t L = t->len[id];
            for (uint32_t cut = 1; !st && cut < L; cut++) {
                if (((unsigned char)s[cut] & 0xC0) == 0x80) continue;
                int32_t a = idmap_get(t, s, cut), b = idmap_get(t, s + cut, L - cut);
                if (a < 0 || b < 0) continue;
                if ((pieces[a].type != 1 && pieces[a].type != 4) || (pieces[b].type != 1 && pieces[b].type != 4)) continue;
                st = pairmap_put(&t->merges, a, b, rank++, id);
            }
        }
        tok_vocab_unseal(t);
        free(order);
    }
    free(pieces);
    free(data);
    return st;
}
