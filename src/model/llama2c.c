/* llama2.c checkpoints (docs/FORMATS.md, llama2.c checkpoints): a LLaMA model in Karpathy's float32 layout, read into a
 * bl_model with transformers' tensor names and rotate-half RoPE layout. The file itself is
 * parsed and validated by src/io/llama2c.c (shared with `balora convert --from llama2c`). */
#include "io/llama2c.h"
#include "model/internal.h"
#include <stdio.h>
#include <string.h>

/* Copies n floats from a possibly unaligned pointer into the file. */
static void take(float *dst, const char *src, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

balora_status bl_model_load_llama2c(bl_model *m, const char *path) {
    memset(m, 0, sizeof *m);
    bl_llama2c f;
    BL_TRY(bl_llama2c_open(&f, path));
    const bl_llama2c_config *h = &f.cfg;
    int64_t dim = h->dim, hidden = h->hidden_dim, L = h->n_layers, H = h->n_heads, Hkv = h->n_kv_heads;
    int64_t V = h->vocab_size, hs = dim / H, kvd = Hkv * hs;
    bl_config *c = &m->cfg;
    bl_config_defaults(c, BL_FAMILY_LLAMA);
    c->vocab_size = V; c->hidden = dim; c->n_layer = L; c->n_head = H; c->n_kv_head = Hkv; c->head_dim = hs;
    c->intermediate = hidden; c->max_pos = h->seq_len; c->norm_eps = 1e-5; c->rope_theta = 10000.0;
    c->tie_word_embeddings = h->shared_classifier; c->bos_token_id = 1; c->eos_token_id = 2;
    balora_status st = bl_model_layout(m);
    if (st) { bl_llama2c_close(&f); bl_model_free(m); return st; }
    snprintf(m->source, sizeof m->source, "%s", path);
    take(m->wte, f.token_embedding, V * dim);
    for (int64_t l = 0; l < L; l++) {
        bl_block *b = &m->blocks[l];
        size_t fo = sizeof(float);
        take(b->ln1_w, f.rms_att + (size_t)(l * dim) * fo, dim);
        /* q / k: llama2.c rotates interleaved pairs, transformers rotates halves. The file's
         * arrays may be unaligned, so stage through the destination's own layout via memcpy. */
        take(b->o->W, f.wq + (size_t)(l * dim * dim) * fo, dim * dim); /* o as scratch [dim, dim] */
        bl_rope_rows_to_halves(b->o->W, b->q->W, H, hs, dim);
        take(b->v->W, f.wk + (size_t)(l * kvd * dim) * fo, kvd * dim); /* v as scratch [kvd, dim] */
        bl_rope_rows_to_halves(b->v->W, b->k->W, Hkv, hs, dim);
        take(b->v->W, f.wv + (size_t)(l * kvd * dim) * fo, kvd * dim);
        take(b->o->W, f.wo + (size_t)(l * dim * dim) * fo, dim * dim);
        take(b->ln2_w, f.rms_ffn + (size_t)(l * dim) * fo, dim);
        take(b->gate->W, f.w1 + (size_t)(l * hidden * dim) * fo, hidden * dim);
        take(b->down->W, f.w2 + (size_t)(l * dim * hidden) * fo, dim * hidden);
        take(b->up->W, f.w3 + (size_t)(l * hidden * dim) * fo, hidden * dim);
    }
    take(m->lnf_w, f.rms_final, dim);
    if (!h->shared_classifier) take(m->lm_head, f.wcls, V * dim);
    bl_llama2c_close(&f);
    return BALORA_STATUS_OK;
}
