/* Tokenised sequence-classification examples: a bl_glue_set (data.h) through a tokenizer
 * (src/tok/tok.h) into padded batches for the encoders (src/encoders/encoder.h) or a GPT-2
 * classifier. As transformers' run_glue does: tokenizer(text_a, text_b, truncation=True,
 * max_length=L) with the tokenizer's post-processor ([CLS] a [SEP] b [SEP], <s> a </s></s> b </s>,
 * ...), token_type_ids from it, and truncation "longest_first" as `tokenizers` computes it for a
 * pair (the shorter text keeps its length when the longer one can absorb the cut; otherwise both
 * are cut to L/2, the first-longer one getting the odd token); a single text keeps its first
 * L - specials tokens. Padding is on the right, to the longest example of each batch.
 *
 *     bl_seqcls_set s;
 *     bl_seqcls_opts o = BL_SEQCLS_OPTS_DEFAULT; o.max_len = 128; o.pad_id = m.cfg.pad_id;
 *     BL_TRY(bl_seqcls_encode(&s, &dataset, tok, &o));
 *     int64_t T;  (buffers sized [B, s.max_len])
 *     BL_TRY(bl_seqcls_batch(&s, idx, B, ids, mask, types, labels, targets, &T));
 *     bl_enc_batch b = {B, T, ids, mask, types};
 */
#ifndef BL_DATA_SEQCLS_H
#define BL_DATA_SEQCLS_H
#include "data_glue/data.h"
#include "tok/tok.h"

typedef struct bl_seqcls_opts {
    int64_t max_len;     /* tokens per example including special tokens (default 128) */
    int64_t pad_id;      /* id written into padding positions (the model's pad_token_id) */
    bool add_special;    /* apply the tokenizer's post-processor (default true) */
} bl_seqcls_opts;
#define BL_SEQCLS_OPTS_DEFAULT ((bl_seqcls_opts){ .max_len = 128, .pad_id = 0, .add_special = true })

typedef struct bl_seqcls_set {
    int64_t n;           /* examples */
    int64_t max_len;     /* row stride of ids / types */
    int32_t *ids;        /* [n, max_len] (only the first len[i] are meaningful) */
    int8_t *types;       /* [n, max_len] token_type_ids */
    int32_t *len;        /* [n] tokens of each example */
    int64_t *labels;     /* [n] class id, -100 when unlabelled (and for regression) */
    float *targets;      /* [n] regression targets (NAN when unlabelled or classification) */
    bool regression;
    int64_t pad_id;
    int64_t n_truncated; /* examples that were cut to max_len */
    int64_t longest;     /* the longest example before truncation (tokens) */
    void *block;
} bl_seqcls_set;

balora_status bl_seqcls_encode(bl_seqcls_set *s, const bl_glue_set *d, bl_tok *tok, const bl_seqcls_opts *o);
/* Gathers examples idx[0..B) into a right-padded batch of T = their longest length:
 * ids, mask, types [B, T] (int64, rows T apart; buffers hold at least B * s->max_len),
 * labels [B] (may be NULL), targets [B] (may be NULL). *T receives the batch length. */
balora_status bl_seqcls_batch(const bl_seqcls_set *s, const int64_t *idx, int64_t B, int64_t *ids, int64_t *mask,
                              int64_t *types, int64_t *labels, float *targets, int64_t *T);
void bl_seqcls_free(bl_seqcls_set *s);

/* The truncation arithmetic alone (exposed for tests): lengths n1, n2 of the two texts (n2 < 0: single
 * text) cut to a budget of `budget` content tokens -> *k1, *k2 tokens kept. */
void bl_seqcls_truncate_lengths(int64_t n1, int64_t n2, int64_t budget, int64_t *k1, int64_t *k2);

#endif
