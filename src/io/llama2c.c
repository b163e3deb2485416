/* llama2.c checkpoints: validation, RoPE row layouts and conversion to a HF LLaMA folder. */
#include "io/llama2c.h"
#include "io/json.h"
#include "io/safetensors.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_BYTES 28
#define MAX_SIDE ((int64_t)1 << 24)

void bl_llama2c_close(bl_llama2c *m) {
    if (!m) return;
    free(m->buf);
    free(m->path);
    memset(m, 0, sizeof *m);
}

static balora_status check_header(const char *path, const int32_t h[7], bl_llama2c_config *c) {
    static const char *names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; i++) {
        int64_t v = i == 5 ? (h[i] < 0 ? -(int64_t)h[i] : h[i]) : h[i];
        if (v <= 0 || v > MAX_SIDE)
            return bl_fail(BALORA_STATUS_FORMAT, "%s: llama2.c header: %s = %" PRId32 " (must be between 1 and %" PRId64
                           "; hint: not a llama2.c checkpoint, or a newer 'version 1+' export?)", path, names[i], h[i], MAX_SIDE);
    }
    c->dim = h[0]; c->hidden_dim = h[1]; c->n_layers = h[2]; c->n_heads = h[3]; c->n_kv_heads = h[4];
    c->shared_classifier = h[5] > 0;
    c->vocab_size = h[5] > 0 ? h[5] : -(int64_t)h[5];
    c->seq_len = h[6];
    if (c->dim % c->n_heads || (c->dim / c->n_heads) % 2)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: llama2.c header: dim %" PRId64 " is not n_heads %" PRId64 " times an even head size",
                       path, c->dim, c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: llama2.c header: n_kv_heads %" PRId64 " does not divide n_heads %" PRId64,
                       path, c->n_kv_heads, c->n_heads);
    return BALORA_STATUS_OK;
}

/* Float count of every array, in file order (NULL dst: only counts). */
static int64_t layout(const bl_llama2c_config *c, const char *base, bl_llama2c *m) {
    int64_t d = c->dim, kv = c->dim / c->n_heads * c->n_kv_heads, hd = c->hidden_dim, L = c->n_layers;
    int64_t hs = c->dim / c->n_heads;
    struct { const char **dst; int64_t n; } parts[] = {
        {m ? &m->token_embedding : NULL, c->vocab_size * d}, {m ? &m->rms_att : NULL, L * d},
        {m ? &m->wq : NULL, L * d * d}, {m ? &m->wk : NULL, L * kv * d}, {m ? &m->wv : NULL, L * kv * d},
        {m ? &m->wo : NULL, L * d * d}, {m ? &m->rms_ffn : NULL, L * d}, {m ? &m->w1 : NULL, L * hd * d},
        {m ? &m->w2 : NULL, L * d * hd}, {m ? &m->w3 : NULL, L * hd * d}, {m ? &m->rms_final : NULL, d},
        {NULL, c->seq_len * hs}, /* freq_cis_real and freq_cis_imag [seq_len, head_size/2] each: skipped */
        {m ? &m->wcls : NULL, c->shared_classifier ? 0 : c->vocab_size * d},
    };
    int64_t off = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (parts[i].dst) *parts[i].dst = base + HEADER_BYTES + 4 * off;
        off += parts[i].n;
    }
    if (m && c->shared_classifier) m->wcls = m->token_embedding;
    return off;
}

balora_status bl_llama2c_open(bl_llama2c *m, const char *path) {
    memset(m, 0, sizeof *m);
    BL_TRY(bl_file_read(path, &m->buf, &m->len));
    balora_status st = BALORA_STATUS_OK;
    m->path = bl_strdup(path);
    if (!m->path) st = BALORA_STATUS_NOMEM;
    if (!st && m->len < HEADER_BYTES)
        st = bl_fail(BALORA_STATUS_FORMAT, "%s: %zu bytes, shorter than the 28-byte llama2.c header (truncated?)", path, m->len);
    int32_t h[7];
    if (!st) { memcpy(h, m->buf, sizeof h); st = check_header(path, h, &m->cfg); }
    if (!st) {
        /* every side is <= 2^24, so products of three stay below 2^72: check in double first */
        const bl_llama2c_config *c = &m->cfg;
        double kv = (double)(c->dim / c->n_heads * c->n_kv_heads);
        double approx = (double)c->vocab_size * c->dim * (c->shared_classifier ? 1 : 2)
                        + (double)c->n_layers * c->dim * (2.0 * c->dim + 2.0 * kv + 3.0 * c->hidden_dim + 2) + c->dim
                        + (double)c->seq_len * (double)(c->dim / c->n_heads) + HEADER_BYTES / 4;
        if (approx * 4 > (double)m->len * 2 + 1e6)
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: the header (dim %" PRId64 ", %" PRId64 " layers, vocab %" PRId64 ") needs %.0f bytes "
                         "but the file has %zu (truncated, or not a llama2.c checkpoint?)", path, c->dim, c->n_layers, c->vocab_size,
                         approx * 4, m->len);
    }
    if (!st) {
        int64_t floats = layout(&m->cfg, m->buf, m);
        uint64_t want = HEADER_BYTES + 4 * (uint64_t)floats;
        if (want != m->len)
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: file is %zu bytes but its header (dim %" PRId64 ", hidden %" PRId64 ", %" PRId64
                         " layers, %" PRId64 " heads, %" PRId64 " kv heads, vocab %" PRId64 "%s, seq_len %" PRId64 ") implies %" PRIu64
                         " bytes (%s)", path, m->len, m->cfg.dim, m->cfg.hidden_dim, m->cfg.n_layers, m->cfg.n_heads, m->cfg.n_kv_heads,
                         m->cfg.vocab_size, m->cfg.shared_classifier ? " shared" : " unshared", m->cfg.seq_len, want,
                         want > m->len ? "truncated?" : "trailing data, or not a legacy llama2.c checkpoint?");
    }
    if (st) bl_llama2c_close(m);
    return st;
}

void bl_rope_rows_to_halves(const float *src, float *dst, int64_t n_heads, int64_t head_dim, int64_t cols) {
    int64_t half = head_dim / 2;
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t t = 0; t < 2; t++)
            for (int64_t j = 0; j < half; j++)
                memcpy(dst + (h * head_dim + t * half + j) * cols, src + (h * head_dim + 2 * j + t) * cols, (size_t)cols * sizeof *dst);
}

void bl_rope_rows_to_interleaved(const float *src, float *dst, int64_t n_heads, int64_t head_dim, int64_t cols) {
    int64_t half = head_dim / 2;
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t t = 0; t < 2; t++)
            for (int64_t j = 0; j < half; j++)
                memcpy(dst + (h * head_dim + 2 * j + t) * cols, src + (h * head_dim + t * half + j) * cols, (size_t)cols * sizeof *dst);
}

static balora_status write_config(const bl_llama2c_config *c, const char *out_dir) {
    char path[4200];
    BL_TRY(bl_path_join(path, sizeof path, out_dir, "config.json"));
    cJSON *j = cJSON_CreateObject();
    if (!j) return bl_fail(BALORA_STATUS_NOMEM, "out of memory");
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("LlamaForCausalLM"));
    cJSON_AddStringToObject(j, "model_type", "llama");
    cJSON_AddNumberToObject(j, "vocab_size", (double)c->vocab_size);
    cJSON_AddNumberToObject(j, "hidden_size", (double)c->dim);
    cJSON_AddNumberToObject(j, "intermediate_size", (double)c->hidden_dim);
    cJSON_AddNumberToObject(j, "num_hidden_layers", (double)c->n_layers);
    cJSON_AddNumberToObject(j, "num_attention_heads", (double)c->n_heads);
    cJSON_AddNumberToObject(j, "num_key_value_heads", (double)c->n_kv_heads);
    cJSON_AddNumberToObject(j, "max_position_embeddings", (double)c->seq_len);
    cJSON_AddNumberToObject(j, "rms_norm_eps", 1e-5);
    cJSON_AddNumberToObject(j, "rope_theta", 10000.0);
    cJSON_AddStringToObject(j, "hidden_act", "silu");
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->shared_classifier);
    cJSON_AddBoolToObject(j, "attention_bias", false);
    cJSON_AddNumberToObject(j, "bos_token_id", 1);
    cJSON_AddNumberToObject(j, "eos_token_id", 2);
    cJSON_AddStringToObject(j, "torch_dtype", "float32");
    balora_status st = bl_json_save(j, path);
    cJSON_Delete(j);
    return st;
}

static balora_status add_layer_tensors(bl_st_writer *w, const bl_llama2c *m, int64_t l, const float *q, const float *k) {
    const bl_llama2c_config *c = &m->cfg;
    int64_t d = c->dim, kv = d / c->n_heads * c->n_kv_heads, hd = c->hidden_dim;
    struct { const char *name; const void *data; int ndim; int64_t s0, s1; } t[] = {
        {"input_layernorm", m->rms_att + 4 * l * d, 1, d, 0},
        {"self_attn.q_proj", q, 2, d, d},
        {"self_attn.k_proj", k, 2, kv, d},
        {"self_attn.v_proj", m->wv + 4 * l * kv * d, 2, kv, d},
        {"self_attn.o_proj", m->wo + 4 * l * d * d, 2, d, d},
        {"post_attention_layernorm", m->rms_ffn + 4 * l * d, 1, d, 0},
        {"mlp.gate_proj", m->w1 + 4 * l * hd * d, 2, hd, d},
        {"mlp.down_proj", m->w2 + 4 * l * d * hd, 2, d, hd},
        {"mlp.up_proj", m->w3 + 4 * l * hd * d, 2, hd, d},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "model.layers.%" PRId64 ".%s.weight", l, t[i].name);
        BL_TRY(bl_st_writer_add(w, name, BL_DTYPE_F32, t[i].ndim, (int64_t[]){t[i].s0, t[i].s1}, t[i].data));
    }
    return BALORA_STATUS_OK;
}

static balora_status write_weights(const bl_llama2c *m, const char *out_dir) {
    const bl_llama2c_config *c = &m->cfg;
    int64_t d = c->dim, hs = d / c->n_heads, kv = hs * c->n_kv_heads, L = c->n_layers;
    char path[4200];
    BL_TRY(bl_path_join(path, sizeof path, out_dir, "model.safetensors"));
    bl_arena ar = {0};
    float *q = NULL, *k = NULL; /* [L, dim, dim], [L, kv_dim, dim]: rows in rotate-half order */
    for (int pass = 0; pass < 2; pass++) {
        q = bl_arena_take(&ar, (size_t)(L * d * d) * sizeof *q);
        k = bl_arena_take(&ar, (size_t)(L * kv * d) * sizeof *k);
        if (pass == 0) BL_TRY(bl_arena_alloc(&ar));
    }
    for (int64_t l = 0; l < L; l++) {
        bl_rope_rows_to_halves((const float *)(m->wq + 4 * l * d * d), q + l * d * d, c->n_heads, hs, d);
        bl_rope_rows_to_halves((const float *)(m->wk + 4 * l * kv * d), k + l * kv * d, c->n_kv_heads, hs, d);
    }
    bl_st_writer w;
    bl_st_writer_init(&w);
    balora_status st = bl_st_writer_meta(&w, "format", "pt");
    if (!st) st = bl_st_writer_add(&w, "model.embed_tokens.weight", BL_DTYPE_F32, 2, (int64_t[]){c->vocab_size, d}, m->token_embedding);
    if (!st) st = bl_st_writer_add(&w, "model.norm.weight", BL_DTYPE_F32, 1, (int64_t[]){d}, m->rms_final);
    if (!st && !c->shared_classifier) st = bl_st_writer_add(&w, "lm_head.weight", BL_DTYPE_F32, 2, (int64_t[]){c->vocab_size, d}, m->wcls);
    for (int64_t l = 0; !st && l < L; l++) st = add_layer_tensors(&w, m, l, q + l * d * d, k + l * kv * d);
    if (!st) st = bl_st_writer_save(&w, path);
    bl_st_writer_free(&w);
    bl_arena_free(&ar);
    return st;
}

balora_status bl_llama2c_to_hf(const char *bin_path, const char *out_dir) {
    bl_llama2c m;
    BL_TRY(bl_llama2c_open(&m, bin_path));
    balora_status st = bl_mkdir_p(out_dir);
    if (!st) st = write_weights(&m, out_dir);
    if (!st) st = write_config(&m.cfg, out_dir);
    bl_llama2c_close(&m);
    return st;
}
