/* llama2.c checkpoints (docs/FORMATS.md, legacy version 0): a header of 7 int32 then float32
 * arrays. bl_llama2c_open validates the header (sizes positive, heads divide dim, even head
 * size, file length exact) and points at each array; bl_llama2c_to_hf writes a Hugging Face
 * LLaMA folder (config.json + model.safetensors F32) with wq/wk rows permuted from llama2.c's
 * interleaved RoPE pairs to the rotate-half layout, as transformers' conversion does. */
#ifndef BL_LLAMA2C_H
#define BL_LLAMA2C_H
#include "core/bl.h"

typedef struct bl_llama2c_config {
    int64_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    bool shared_classifier;     /* vocab_size was positive in the file */
} bl_llama2c_config;

typedef struct bl_llama2c {
    char *path;
    char *buf;                  /* the whole file */
    size_t len;
    bl_llama2c_config cfg;
    /* pointers into buf (float32, possibly unaligned: read with memcpy) */
    const char *token_embedding;/* [vocab, dim] */
    const char *rms_att;        /* [L, dim] */
    const char *wq;             /* [L, dim, dim] */
    const char *wk;             /* [L, kv_dim, dim] */
    const char *wv;             /* [L, kv_dim, dim] */
    const char *wo;             /* [L, dim, dim] */
    const char *rms_ffn;        /* [L, dim] */
    const char *w1;             /* [L, hidden, dim] */
    const char *w2;             /* [L, dim, hidden] */
    const char *w3;             /* [L, hidden, dim] */
    const char *rms_final;      /* [dim] */
    const char *wcls;           /* [vocab, dim]; == token_embedding when shared */
} bl_llama2c;

balora_status bl_llama2c_open(bl_llama2c *m, const char *path);
void bl_llama2c_close(bl_llama2c *m);

/* Rows of a [n_heads * head_dim, cols] q/k matrix from interleaved pairs (row 2j, 2j+1 of a
 * head rotate together) to rotate-half (rows j and j + head_dim/2): dst row h*hd + t*hd/2 + j
 * = src row h*hd + 2j + t. bl_rope_rows_to_interleaved is the inverse. */
void bl_rope_rows_to_halves(const float *src, float *dst, int64_t n_heads, int64_t head_dim, int64_t cols);
void bl_rope_rows_to_interleaved(const float *src, float *dst, int64_t n_heads, int64_t head_dim, int64_t cols);

/* Writes out_dir/config.json (LlamaForCausalLM) and out_dir/model.safetensors (F32). */
balora_status bl_llama2c_to_hf(const char *bin_path, const char *out_dir);

#endif
