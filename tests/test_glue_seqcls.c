/* Sequence-classification tokenisation and batching: tokenizers' longest_first truncation
 * arithmetic, BERT's WordPiece ([CLS] a [SEP] b [SEP], token types) on GLUE QNLI/SST-2 dev rows with
 * truncation, right padding with the model's pad id, labels and regression targets. */
#include "harness.h"
#include "data_glue/seqcls.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void lengths(void) {
    static const int64_t cases[][5] = {
        /* n1, n2, budget -> k1, k2 */
        {10, 10, 15, 7, 8}, {3, 20, 15, 3, 12}, {20, 3, 15, 12, 3}, {20, 18, 15, 8, 7}, {9, 9, 15, 7, 8},
        {5, 6, 15, 5, 6}, {30, -1, 10, 10, -1}, {4, -1, 10, 4, -1}, {16, 2, 15, 13, 2}, {8, 8, 16, 8, 8},
        {20, 30, 0, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t k1, k2;
        bl_seqcls_truncate_lengths(cases[i][0], cases[i][1], cases[i][2], &k1, &k2);
        CHECK(k1 == cases[i][3] && k2 == cases[i][4], "truncate (%lld, %lld) to %lld: got (%lld, %lld), want (%lld, %lld)",
              (long long)cases[i][0], (long long)cases[i][1], (long long)cases[i][2], (long long)k1, (long long)k2,
              (long long)cases[i][3], (long long)cases[i][4]);
    }
}

int main(void) {
    lengths();
    const char *shared = t_require_shared();
    char p[1024];
    bl_tok *tok;
    snprintf(p, sizeof p, "%s/tokenizers/bert-base-uncased", shared);
    CHECK_OK(bl_tok_load(&tok, p));
    if (t_failures) return t_finish();
    int32_t CLS = bl_tok_special(tok, BL_TOK_CLS), SEP = bl_tok_special(tok, BL_TOK_SEP);
    CHECK(CLS == 101 && SEP == 102, "bert specials %d %d", CLS, SEP);
    /* QNLI dev: pairs, truncated to 24 tokens */
    bl_glue_set d;
    snprintf(p, sizeof p, "%s/data/glue/QNLI/dev.tsv", shared);
    /* keep the test small: the first 64 rows */
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_QNLI, p, NULL));
    bl_data_knobs k = BL_DATA_KNOBS_DEFAULT;
    k.max_train = 64;
    CHECK_OK(bl_data_apply_knobs(&d, &k));
    bl_seqcls_set s;
    bl_seqcls_opts o = BL_SEQCLS_OPTS_DEFAULT;
    o.max_len = 24;
    o.pad_id = 0;
    CHECK_OK(bl_seqcls_encode(&s, &d, tok, &o));
    CHECK(s.n == 64 && s.n_truncated > 0 && s.longest > 24, "qnli: %lld truncated, longest %lld", (long long)s.n_truncated, (long long)s.longest);
    bl_tok_enc ea = {0}, eb = {0};
    int bad = 0;
    for (int64_t i = 0; i < s.n; i++) {
        const int32_t *ids = s.ids + i * s.max_len;
        const int8_t *ty = s.types + i * s.max_len;
        int n = s.len[i];
        CHECK_OK(bl_tok_encode(tok, d.text_a[i], strlen(d.text_a[i]), false, &ea));
        CHECK_OK(bl_tok_encode(tok, d.text_b[i], strlen(d.text_b[i]), false, &eb));
        int64_t k1, k2;
        bl_seqcls_truncate_lengths((int64_t)ea.n, (int64_t)eb.n, 24 - 3, &k1, &k2);
        /* [CLS] a[:k1] [SEP] b[:k2] [SEP], types 0 .. 0 1 .. 1 */
        bool ok = n == 3 + k1 + k2 && ids[0] == CLS && ids[1 + k1] == SEP && ids[n - 1] == SEP;
        for (int64_t t = 0; t < k1 && ok; t++) ok = ids[1 + t] == ea.ids[t] && ty[1 + t] == 0;
        for (int64_t t = 0; t < k2 && ok; t++) ok = ids[2 + k1 + t] == eb.ids[t] && ty[2 + k1 + t] == 1;
        ok = ok && ty[0] == 0 && ty[1 + k1] == 0 && ty[n - 1] == 1;
        ok = ok && s.labels[i] == d.label[i] && isnan(s.targets[i]);
        if (!ok) { bad++; fprintf(stderr, "qnli row %lld: length %d, k1 %lld, k2 %lld\n", (long long)i, n, (long long)k1, (long long)k2); }
    }
    CHECK(bad == 0, "%d QNLI rows not laid out as [CLS] a [SEP] b [SEP]", bad);
    /* a batch: rows 1, 0, 5, padded to the longest with pad id 0 */
    int64_t idx[3] = {1, 0, 5}, ids[3 * 24], mask[3 * 24], types[3 * 24], labels[3], T;
    float tg[3];
    CHECK_OK(bl_seqcls_batch(&s, idx, 3, ids, mask, types, labels, tg, &T));
    int64_t want_T = s.len[1] > s.len[0] ? s.len[1] : s.len[0];
    if (s.len[5] > want_T) want_T = s.len[5];
    CHECK(T == want_T, "batch T %lld want %lld", (long long)T, (long long)want_T);
    bool padded = true;
    for (int b = 0; b < 3; b++)
        for (int64_t t = 0; t < T; t++) {
            bool real = t < s.len[idx[b]];
            padded &= mask[b * T + t] == real && (real || (ids[b * T + t] == 0 && types[b * T + t] == 0));
            if (real) padded &= ids[b * T + t] == s.ids[idx[b] * s.max_len + t];
        }
    CHECK(padded && labels[0] == d.label[1] && labels[1] == d.label[0], "batch layout");
    idx[2] = 64;
    CHECK_FAILS(bl_seqcls_batch(&s, idx, 3, ids, mask, types, labels, tg, &T), BALORA_STATUS_INVALID, "example 64 of 64");
    bl_seqcls_free(&s);
    bl_glue_set_free(&d);
    /* STS-B dev: regression targets; single-text SST-2 with a tiny max_len keeps [CLS] ... [SEP] */
    snprintf(p, sizeof p, "%s/data/glue/SST-2/dev.tsv", shared);
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_SST2, p, NULL));
    k.max_train = 16;
    CHECK_OK(bl_data_apply_knobs(&d, &k));
    o.max_len = 6;
    o.pad_id = 0;
    CHECK_OK(bl_seqcls_encode(&s, &d, tok, &o));
    bad = 0;
    for (int64_t i = 0; i < s.n; i++) {
        CHECK_OK(bl_tok_encode(tok, d.text_a[i], strlen(d.text_a[i]), false, &ea));
        int64_t want = ea.n < 4 ? (int64_t)ea.n + 2 : 6;
        const int32_t *r = s.ids + i * s.max_len;
        if (s.len[i] != want || r[0] != CLS || r[s.len[i] - 1] != SEP || r[1] != ea.ids[0]) bad++;
    }
    CHECK(bad == 0, "%d SST-2 rows not [CLS] first-4-tokens [SEP]", bad);
    bl_seqcls_free(&s);
    bl_glue_set_free(&d);
    snprintf(p, sizeof p, "%s/data/glue/STS-B/dev.tsv", shared);
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_STSB, p, NULL));
    k.max_train = 8;
    CHECK_OK(bl_data_apply_knobs(&d, &k));
    o.max_len = 64;
    CHECK_OK(bl_seqcls_encode(&s, &d, tok, &o));
    CHECK(s.regression && s.targets[0] == 5.0f && s.targets[1] == 4.75f && s.labels[0] == -100, "stsb targets");
    o.max_len = 3;
    bl_seqcls_set s2;
    CHECK_FAILS(bl_seqcls_encode(&s2, &d, tok, &o), BALORA_STATUS_INVALID, "no room next to the 3 special tokens");
    bl_seqcls_free(&s);
    bl_glue_set_free(&d);
    bl_tok_enc_free(&ea);
    bl_tok_enc_free(&eb);
    bl_tok_free(tok);
    return t_finish();
}
