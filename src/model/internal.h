/* Internal to src/model: the tensor layout builder and THE decoder block (block.c), which both
 * the run context (decoder.c: training / full sequences) and the key-value cache (kv.c:
 * incremental decoding) call. */
#ifndef BL_MODEL_INTERNAL_H
#define BL_MODEL_INTERNAL_H
#include "model/kv.h"
#include "model/model.h"

/* Builds params, linears and blocks for m->cfg and allocates m->weights (zeroed). */
balora_status bl_model_layout(bl_model *m);
/* Fails when a dimension is out of the range balora's kernels (LP64 BLAS) handle. */
balora_status bl_model_check_size(const bl_config *c, const char *src);

/* Activations of one block forward over N tokens. A bl_run keeps one per layer (backward reads
 * them); a bl_kv session has one set of scratch (ln1 == ln2, mid == the residual: in place). */
struct bl_run_layer {
    float *ln1, *mean1, *rstd1;  /* [N, C], [N], [N] */
    float *q, *k, *v;            /* llama: [N, Dq], [N, Dkv], [N, Dkv] (q, k after RoPE); gpt2: q = qkv [N, 3C] */
    float *probs;                /* [B, H, T, T] full attention only (NULL with the cache) */
    float *att;                  /* [N, Dq] attention output (input of o / c_proj) */
    float *mid;                  /* [N, C] residual after attention (may be the block's x and out) */
    float *ln2, *mean2, *rstd2;  /* [N, C], [N], [N] */
    float *f1, *f2, *f3;         /* gpt2: fc [N, F], gelu(fc) [N, F]; llama: gate, up, silu(gate)*up [N, F] */
};

/* The key-value cache option of bl_block_fwd: the N tokens are packed segments of rows; each
 * segment's keys / values are appended to its row's cache and its queries attend over that row's
 * cached keys j <= p (and p - j <= sliding_window). */
typedef struct bl_block_cache {
    float *K, *V;              /* this layer's cache [max_B, max_T, Dkv] */
    int64_t max_T;
    int64_t n_seg;
    const bl_kv_seg *segs;     /* [n_seg] rows and token counts, in packed order */
    const int64_t *len;        /* [max_B] tokens cached per row before this call */
    float *S;                  /* [S_rows, max_T] score scratch */
    int64_t S_rows;
} bl_block_cache;

/* How one block forward runs. */
typedef struct bl_block_pass {
    bl_adapter_mode mode;
    bool train;                /* LoRA dropout (draws from rng) */
    bl_rng *rng;
    bl_lin_saved *sv;          /* [n_lin] per linear (what backward needs), or NULL: sv_shared for all */
    bl_lin_saved *sv_shared;   /* forward-only scratch (its u holds [N, max r]) */
    const int64_t *pos;        /* [N] positions of the tokens */
    int64_t B, T;              /* N = B * T (packed cache calls: B = 1, T = N) */
    const float *rope_cos, *rope_sin; /* [max_T, head_dim / 2] (RoPE rows) */
    const bl_attn_desc *full;  /* full attention over [B, T] (probs saved), or NULL: */
    const bl_block_cache *cache; /* the key-value cache option */
} bl_block_pass;

/* Block l: out = x + attn(...) + mlp(...) through the attach point. x, y->mid and out may be the
 * same buffer (in place). */
void bl_block_fwd(const bl_model *m, int64_t l, bl_run_layer *y, const float *x, float *out, const bl_block_pass *p);
/* x [N, C] = token embeddings (+ learned positions). */
balora_status bl_model_embed(const bl_model *m, float *x, const int64_t *ids, const int64_t *pos, int64_t N);
/* out [N, C] = final norm of x (mean: LayerNorm rows only). */
void bl_model_final_norm(const bl_model *m, float *out, float *mean, float *rstd, const float *x, int64_t N);

#endif
