/* Tokenised sequence-classification examples and padded batches (seqcls.h). */
#include "data_glue/seqcls.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void bl_seqcls_truncate_lengths(int64_t n1, int64_t n2, int64_t budget, int64_t *k1, int64_t *k2) {
    if (budget < 0) budget = 0;
    if (n2 < 0) { *k1 = n1 < budget ? n1 : budget; *k2 = -1; return; }
    if (n1 + n2 <= budget) { *k1 = n1; *k2 = n2; return; }
    /* tokenizers' LongestFirst for a pair: a = the shorter */
    int64_t a = n1, b = n2;
    bool swap = false;
    if (a > b) { swap = true; int64_t t = a; a = b; b = t; }
    if (a > budget) b = a;
    else b = a > budget - a ? a : budget - a;
    if (a + b > budget) { a = budget / 2; b = a + budget % 2; }
    if (swap) { int64_t t = a; a = b; b = t; }
    *k1 = n1 < a ? n1 : a;
    *k2 = n2 < b ? n2 : b;
}

void bl_seqcls_free(bl_seqcls_set *s) {
    if (!s) return;
    free(s->block);
    memset(s, 0, sizeof *s);
}

/* content tokens (not added by the post-processor) of an encoding */
static int64_t n_content(const bl_tok_enc *e) {
    int64_t n = 0;
    for (size_t i = 0; i < e->n; i++) n += !e->special[i];
    return n;
}

balora_status bl_seqcls_encode(bl_seqcls_set *s, const bl_glue_set *d, bl_tok *tok, const bl_seqcls_opts *o) {
    memset(s, 0, sizeof *s);
    bl_seqcls_opts opt = o ? *o : BL_SEQCLS_OPTS_DEFAULT;
    if (opt.max_len < 2 || opt.max_len > 1000000)
        return bl_fail(BALORA_STATUS_INVALID, "sequence classification: max_len %lld out of range", (long long)opt.max_len);
    if (d->n < 1) return bl_fail(BALORA_STATUS_INVALID, "%s: no examples to tokenise", d->meta.source);
    int64_t n = d->n, L = opt.max_len;
    size_t bytes = (size_t)(n * L) * (sizeof(int32_t) + 1) + (size_t)n * (sizeof(int32_t) + sizeof(int64_t) + sizeof(float)) + 64;
    char *blk = bl_calloc(1, bytes);
    if (!blk) return BALORA_STATUS_NOMEM;
    s->block = blk;
    s->labels = (int64_t *)blk;                                               /* [n] */
    s->targets = (float *)(blk + (size_t)n * sizeof(int64_t));                 /* [n] */
    s->len = (int32_t *)((char *)s->targets + (size_t)n * sizeof(float));      /* [n] */
    s->ids = (int32_t *)((char *)s->len + (size_t)n * sizeof(int32_t));        /* [n, L] */
    s->types = (int8_t *)((char *)s->ids + (size_t)(n * L) * sizeof(int32_t)); /* [n, L] */
    s->n = n;
    s->max_len = L;
    s->regression = d->regression;
    s->pad_id = opt.pad_id;
    bl_tok_enc full = {0}, ea = {0}, eb = {0};
    balora_status st = BALORA_STATUS_OK;
    for (int64_t i = 0; i < n && !st; i++) {
        const char *a = d->text_a[i], *b = d->text_b ? d->text_b[i] : NULL;
        if (b) st = bl_tok_encode_pair(tok, a, strlen(a), b, strlen(b), opt.add_special, &full);
        else st = bl_tok_encode(tok, a, strlen(a), opt.add_special, &full);
        if (st) { bl_fail_prefix(st, "%s: row %lld: ", d->meta.source, (long long)d->row[i]); break; }
        int32_t *ids = s->ids + i * L;
        int8_t *ty = s->types + i * L;
        if ((int64_t)full.n > s->longest) s->longest = (int64_t)full.n;
        if ((int64_t)full.n <= L) {
            for (size_t k = 0; k < full.n; k++) { ids[k] = full.ids[k]; ty[k] = (int8_t)full.type_ids[k]; }
            s->len[i] = (int32_t)full.n;
        } else {
            /* cut content tokens, keep every template token */
            int64_t n_spec = (int64_t)full.n - n_content(&full);
            if (n_spec >= L) {
                st = bl_fail(BALORA_STATUS_INVALID, "%s: max_len %lld leaves no room next to the %lld special tokens", d->meta.source,
                             (long long)L, (long long)n_spec);
                break;
            }
            int64_t n1, n2 = -1, k1, k2;
            if (b) {
                if ((st = bl_tok_encode(tok, a, strlen(a), false, &ea))) break;
                if ((st = bl_tok_encode(tok, b, strlen(b), false, &eb))) break;
                n1 = n_content(&ea);
                n2 = n_content(&eb);
            } else {
                n1 = n_content(&full);
            }
            bl_seqcls_truncate_lengths(n1, n2, L - n_spec, &k1, &k2);
            int64_t seen = 0, w = 0;
            for (size_t k = 0; k < full.n; k++) {
                bool keep = true;
                if (!full.special[k]) {
                    keep = seen < n1 ? seen < k1 : (seen - n1) < k2;
                    seen++;
                }
                if (keep) { ids[w] = full.ids[k]; ty[w] = (int8_t)full.type_ids[k]; w++; }
            }
            s->len[i] = (int32_t)w;
            s->n_truncated++;
        }
        s->labels[i] = (!d->regression && d->label[i] >= 0) ? d->label[i] : -100;
        s->targets[i] = d->regression ? d->score[i] : NAN;
    }
    bl_tok_enc_free(&full);
    bl_tok_enc_free(&ea);
    bl_tok_enc_free(&eb);
    if (st) bl_seqcls_free(s);
    return st;
}

balora_status bl_seqcls_batch(const bl_seqcls_set *s, const int64_t *idx, int64_t B, int64_t *ids, int64_t *mask,
                              int64_t *types, int64_t *labels, float *targets, int64_t *T) {
    if (B < 1) return bl_fail(BALORA_STATUS_INVALID, "sequence classification batch: B = %lld", (long long)B);
    int64_t t = 1;
    for (int64_t b = 0; b < B; b++) {
        if (idx[b] < 0 || idx[b] >= s->n)
            return bl_fail(BALORA_STATUS_INVALID, "sequence classification batch: example %lld of %lld", (long long)idx[b], (long long)s->n);
        if (s->len[idx[b]] > t) t = s->len[idx[b]];
    }
    for (int64_t b = 0; b < B; b++) {
        int64_t e = idx[b], n = s->len[e];
        for (int64_t k = 0; k < t; k++) {
            bool real = k < n;
            ids[b * t + k] = real ? s->ids[e * s->max_len + k] : s->pad_id;
            mask[b * t + k] = real;
            if (types) types[b * t + k] = real ? s->types[e * s->max_len + k] : 0;
        }
        if (labels) labels[b] = s->labels[e];
        if (targets) targets[b] = s->targets[e];
    }
    *T = t;
    return BALORA_STATUS_OK;
}
