/* Incremental decoding with a key-value cache (gpt2 and the llama family: GQA, RoPE, sliding window).
 *
 * The tokens run through THE decoder block (src/model/block.c, bl_block_fwd) with its cache
 * option: this file only plans the session and packs the rows' tokens.
 *
 * A bl_kv session holds, for up to max_B independent rows (sequences), the keys (after RoPE) and
 * values of every layer for up to max_T tokens per row, plus every activation buffer a forward of
 * up to max_N tokens needs: all allocated once by bl_kv_init (one arena), nothing allocated after.
 *
 * bl_kv_append runs new tokens of some rows through the model and appends their keys/values to the
 * rows' caches; each token costs one token's forward (its projections, attention over its row's
 * cached keys, MLP), never the prefix again. The tokens of one call are packed (no padding): row r's
 * new tokens get positions len[r], len[r] + 1, ... — every row behaves exactly as if it were
 * decoded alone (per-row positions; no left padding, so no mask can be wrong), and rows of
 * different lengths share the linear layers' matrix products. Attention of a token at position p
 * sees its row's keys j <= p (and p - j <= sliding_window when the model has one, as transformers'
 * mask). Adapters attached to the model apply through bl_lin_fwd (the one attach point) in the
 * mode given to each call.
 *
 * Typical use (src/eval/generate.c):
 *     bl_kv kv; bl_kv_init(&kv, &m, B, prompt_max + max_new, 256);
 *     bl_kv_prefill(&kv, B, prompts, lens, BL_ADAPTER_ON);     -> kv.logits [B, V] (last prompt token)
 *     loop: pick next ids; bl_kv_append(&kv, n, segs, mode)   -> kv.logits [n, V]
 *     bl_kv_reset(&kv) before the next batch. */
#ifndef BL_MODEL_KV_H
#define BL_MODEL_KV_H
#include "model/model.h"

/* One row's new tokens in a bl_kv_append call. */
typedef struct bl_kv_seg {
    int64_t row;            /* which row (sequence) of the session */
    int64_t n;              /* tokens to append (>= 1) */
    const int64_t *ids;     /* [n] */
} bl_kv_seg;

typedef struct bl_kv {
    bl_model *m;
    int64_t max_B, max_T, max_N;  /* rows, tokens per row (prompt + generated), tokens per call */
    int64_t *len;             /* [max_B] tokens cached per row */
    float *logits;            /* [max_B, V] after a call: row i = logits after segment i's last token */
    int64_t n_logits_rows;    /* segments of the last call */
    /* ---- internals (kv.c) ---- */
    uint64_t attach_gen;
    int64_t Dkv;              /* n_kv_head * head_dim */
    float *K, *V;             /* [L, max_B, max_T, Dkv] keys (after RoPE) and values */
    int64_t *ids, *pos;       /* [max_N] packed tokens and their positions */
    float *x;                 /* [max_N, C] residual stream (the blocks run in place) */
    bl_run_layer *act;        /* one block's scratch activations for max_N tokens (internal.h) */
    float *S;                 /* [QB_rows, max_T] attention scores of a block of queries */
    int64_t S_rows;
    float *last;              /* [max_B, C] final-norm input of each segment's last token */
    float *hid;               /* [max_B, C] its final-norm output */
    float *lg;                /* [max_B, V] logits of the call in segment order (prefill collects from it) */
    float *u;                 /* [max_N, max_r] LoRA scratch for bl_lin_fwd */
    bl_lin_saved sv;          /* points at u */
    bl_kv_seg *segs;          /* [max_B] prefill's packed calls */
    bool *seg_done;           /* [max_B] the segment ends its row's prompt */
    float *rope_cos, *rope_sin; /* [max_T, head_dim/2] (llama family) */
    bl_arena arena;
} bl_kv;

/* Plans and allocates everything for max_B rows of max_T tokens and calls of up to max_N tokens
 * (max_N >= max_B so one decoding step of every row fits in one call). Call after attaching the
 * adapter. Fails (INVALID) for classification models, non-positive sizes, or (gpt2) max_T beyond
 * n_positions. */
balora_status bl_kv_init(bl_kv *s, bl_model *m, int64_t max_B, int64_t max_T, int64_t max_N);
void bl_kv_free(bl_kv *s);
/* Empties every row (the buffers stay). */
void bl_kv_reset(bl_kv *s);
/* Appends segs[i].n tokens to row segs[i].row for every i (rows distinct, sum of n <= max_N,
 * len + n <= max_T, ids in [0, V)), runs them, and leaves in s->logits row i the logits after
 * segment i's last token. On failure no row's length changes. */
balora_status bl_kv_append(bl_kv *s, int64_t n_seg, const bl_kv_seg *segs, bl_adapter_mode mode);
/* Runs whole prompts into rows 0..B-1 (which must be empty), packing rows into calls of at most
 * max_N tokens and splitting prompts longer than that; afterwards s->logits row b holds the logits
 * after prompt b's last token. lens[b] >= 1. */
balora_status bl_kv_prefill(bl_kv *s, int64_t B, const int64_t *const *prompts, const int64_t *lens,
                            bl_adapter_mode mode);

#endif
