/* llama2.c checkpoints (FORMATS.md): a LLaMA model in Karpathy's float32 layout, read into a
 * bl_model with transformers' tensor names and rotate-half RoPE layout. */
#include "model/internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

balora_status bl_model_load_llama2c(bl_model *m, const char *path) {
    memset(m, 0, sizeof *m);
    char *buf = NULL;
    size_t len = 0;
    BL_TRY(bl_file_read(path, &buf, &len));
    balora_status st = BALORA_STATUS_OK;
    int32_t hd[7];
    if (len < sizeof hd) {
        free(buf);
        return bl_fail(BALORA_STATUS_FORMAT, "%s: %zu bytes is shorter than the 28-byte llama2.c header", path, len);
    }
    memcpy(hd, buf, sizeof hd);
    int64_t dim = hd[0], hidden = hd[1], L = hd[2], H = hd[3], Hkv = hd[4], V = hd[5], T = hd[6];
    bool shared = V > 0;
    if (V < 0) V = -V;
    if (dim <= 0 || hidden <= 0 || L <= 0 || H <= 0 || Hkv <= 0 || V <= 0 || T <= 0 || dim % H || H % Hkv ||
        (dim / H) % 2 || dim > 65536 || hidden > 262144 || L > 1024 || V > 4000000 || T > 1000000) {
        free(buf);
        return bl_fail(BALORA_STATUS_FORMAT, "%s: implausible llama2.c header (dim %lld, hidden_dim %lld, n_layers %lld, "
                       "n_heads %lld, n_kv_heads %lld, vocab_size %lld, seq_len %lld)", path, (long long)dim,
                       (long long)hidden, (long long)L, (long long)H, (long long)Hkv, (long long)hd[5], (long long)T);
    }
    int64_t hs = dim / H, kvd = Hkv * hs;
    int64_t nfloat = V * dim + L * dim + L * dim * dim + 2 * L * kvd * dim + L * dim * dim + L * dim +
                     3 * L * hidden * dim + dim + T * hs + (shared ? 0 : V * dim);
    if (len != sizeof hd + (size_t)nfloat * sizeof(float)) {
        free(buf);
        return bl_fail(BALORA_STATUS_FORMAT, "%s: file has %zu bytes but the header (dim %lld, %lld layers, vocab %lld, %s "
                       "classifier) implies %zu; hint: truncated or not a llama2.c float32 checkpoint", path, len,
                       (long long)dim, (long long)L, (long long)V, shared ? "shared" : "separate",
                       sizeof hd + (size_t)nfloat * sizeof(float));
    }
    bl_config *c = &m->cfg;
    bl_config_defaults(c, BL_FAMILY_LLAMA);
    c->vocab_size = V; c->hidden = dim; c->n_layer = L; c->n_head = H; c->n_kv_head = Hkv; c->head_dim = hs;
    c->intermediate = hidden; c->max_pos = T; c->norm_eps = 1e-5; c->rope_theta = 10000.0;
    c->tie_word_embeddings = shared; c->bos_token_id = 1; c->eos_token_id = 2;
    if ((st = bl_model_layout(m))) { free(buf); bl_model_free(m); return st; }
    snprintf(m->source, sizeof m->source, "%s", path);
    const float *f = (const float *)(buf + sizeof hd);
#define TAKE(dst, n) do { memcpy((dst), f, (size_t)(n) * sizeof(float)); f += (n); } while (0)
    TAKE(m->wte, V * dim);
    for (int l = 0; l < L; l++) TAKE(m->blocks[l].ln1_w, dim);
    /* wq / wk: llama2.c rotates interleaved pairs (2i, 2i+1); HF rotates halves (i, i + hs/2).
     * Row h*hs + c*hs/2 + i of the HF weight is row h*hs + 2i + c of the llama2.c weight. */
    for (int pass = 0; pass < 2; pass++) {
        int64_t nh = pass == 0 ? H : Hkv, rows = nh * hs;
        for (int l = 0; l < L; l++) {
            float *W = pass == 0 ? m->blocks[l].q->W : m->blocks[l].k->W;
            for (int64_t h = 0; h < nh; h++)
                for (int64_t half = 0; half < 2; half++)
                    for (int64_t i = 0; i < hs / 2; i++)
                        memcpy(W + (h * hs + half * hs / 2 + i) * dim, f + (h * hs + 2 * i + half) * dim, (size_t)dim * sizeof(float));
            f += rows * dim;
        }
    }
    for (int l = 0; l < L; l++) TAKE(m->blocks[l].v->W, kvd * dim);
    for (int l = 0; l < L; l++) TAKE(m->blocks[l].o->W, dim * dim);
    for (int l = 0; l < L; l++) TAKE(m->blocks[l].ln2_w, dim);
    for (int l = 0; l < L; l++) TAKE(m->blocks[l].gate->W, hidden * dim);
    for (int l = 0; l < L; l++) TAKE(m->blocks[l].down->W, dim * hidden);
    for (int l = 0; l < L; l++) TAKE(m->blocks[l].up->W, hidden * dim);
    TAKE(m->lnf_w, dim);
    f += T * hs; /* freq_cis_real and freq_cis_imag [seq_len, hs/2] each */
    if (!shared) TAKE(m->lm_head, V * dim);
#undef TAKE
    free(buf);
    return BALORA_STATUS_OK;
}

