/* llama2.c -> HF LLaMA conversion on the real stories260K checkpoint: header, shapes, values,
 * the q/k row permutation (un-permuting gives the file's rows back), and end to end: a slow,
 * obviously-correct HF-layout (rotate-half RoPE) forward pass over the converted folder
 * reproduces transformers' logits in golden/stories260K/io.safetensors. Plus header validation
 * on generated bad files and an unshared-classifier checkpoint. */
#include "harness.h"
#include "io/hf.h"
#include "io/llama2c.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- a slow reference forward pass of a HF LLaMA folder (float64 accumulation) ---- */
typedef struct ref_llama {
    int64_t d, hd, L, nh, nkv, V, hs;
    double eps, theta;
    bl_hf_folder *h;
} ref_llama;

static float *get(const ref_llama *m, const char *name, int64_t n0, int64_t n1) {
    float *v = malloc((size_t)(n0 * (n1 ? n1 : 1)) * sizeof *v);
    int64_t shape[2] = {n0, n1};
    CHECK_OK(bl_hf_read_f32(m->h, name, NULL, n1 ? 2 : 1, shape, v));
    return v;
}

static void rmsnorm(const double *x, const float *w, double *out, int64_t d, double eps) {
    double ss = 0;
    for (int64_t i = 0; i < d; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / (double)d + eps);
    for (int64_t i = 0; i < d; i++) out[i] = x[i] * r * w[i];
}

static void matvec(const float *W, const double *x, double *y, int64_t rows, int64_t cols) { /* y = W x, W [rows, cols] */
    for (int64_t r = 0; r < rows; r++) {
        double s = 0;
        for (int64_t c = 0; c < cols; c++) s += (double)W[r * cols + c] * x[c];
        y[r] = s;
    }
}

/* HF's rotate_half RoPE on one head vector at position pos. */
static void rope_halves(double *v, int64_t hs, int64_t pos, double theta) {
    int64_t half = hs / 2;
    for (int64_t i = 0; i < half; i++) {
        double inv = pow(theta, -2.0 * (double)i / (double)hs), a = (double)pos * inv;
        double x1 = v[i], x2 = v[i + half];
        v[i] = x1 * cos(a) - x2 * sin(a);
        v[i + half] = x2 * cos(a) + x1 * sin(a);
    }
}

/* logits [T, V] for one sequence. */
static void ref_forward(const ref_llama *m, const int64_t *ids, int64_t T, float *logits) {
    int64_t d = m->d, kv = m->hs * m->nkv, hd = m->hd;
    double *x = calloc((size_t)(T * d), sizeof *x), *h = calloc((size_t)d, sizeof *h);
    double *q = calloc((size_t)(T * d), sizeof *q), *k = calloc((size_t)(T * kv), sizeof *k), *v = calloc((size_t)(T * kv), sizeof *v);
    double *att = calloc((size_t)d, sizeof *att), *o = calloc((size_t)d, sizeof *o), *g = calloc((size_t)hd, sizeof *g), *u = calloc((size_t)hd, sizeof *u);
    double *sc = calloc((size_t)T, sizeof *sc);
    float *emb = get(m, "model.embed_tokens.weight", m->V, d);
    for (int64_t t = 0; t < T; t++) for (int64_t i = 0; i < d; i++) x[t * d + i] = emb[ids[t] * d + i];
    for (int64_t l = 0; l < m->L; l++) {
        char n[160];
#define W(suffix, r, c) (snprintf(n, sizeof n, "model.layers.%lld.%s.weight", (long long)l, suffix), get(m, n, r, c))
        float *wn1 = W("input_layernorm", d, 0), *wq = W("self_attn.q_proj", d, d), *wk = W("self_attn.k_proj", kv, d);
        float *wv = W("self_attn.v_proj", kv, d), *wo = W("self_attn.o_proj", d, d), *wn2 = W("post_attention_layernorm", d, 0);
        float *wg = W("mlp.gate_proj", hd, d), *wu = W("mlp.up_proj", hd, d), *wd = W("mlp.down_proj", d, hd);
#undef W
        for (int64_t t = 0; t < T; t++) {
            rmsnorm(x + t * d, wn1, h, d, m->eps);
            matvec(wq, h, q + t * d, d, d);
            matvec(wk, h, k + t * kv, kv, d);
            matvec(wv, h, v + t * kv, kv, d);
            for (int64_t hh = 0; hh < m->nh; hh++) rope_halves(q + t * d + hh * m->hs, m->hs, t, m->theta);
            for (int64_t hh = 0; hh < m->nkv; hh++) rope_halves(k + t * kv + hh * m->hs, m->hs, t, m->theta);
        }
        for (int64_t t = 0; t < T; t++) {
            for (int64_t hh = 0; hh < m->nh; hh++) {
                int64_t kh = hh / (m->nh / m->nkv);
                double mx = -1e300, sum = 0;
                for (int64_t s = 0; s <= t; s++) {
                    double dot = 0;
                    for (int64_t i = 0; i < m->hs; i++) dot += q[t * d + hh * m->hs + i] * k[s * kv + kh * m->hs + i];
                    sc[s] = dot / sqrt((double)m->hs);
                    if (sc[s] > mx) mx = sc[s];
                }
                for (int64_t s = 0; s <= t; s++) { sc[s] = exp(sc[s] - mx); sum += sc[s]; }
                for (int64_t i = 0; i < m->hs; i++) {
                    double acc = 0;
                    for (int64_t s = 0; s <= t; s++) acc += sc[s] / sum * v[s * kv + kh * m->hs + i];
                    att[hh * m->hs + i] = acc;
                }
            }
            matvec(wo, att, o, d, d);
            for (int64_t i = 0; i < d; i++) x[t * d + i] += o[i];
            rmsnorm(x + t * d, wn2, h, d, m->eps);
            matvec(wg, h, g, hd, d);
            matvec(wu, h, u, hd, d);
            for (int64_t i = 0; i < hd; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
            matvec(wd, g, o, d, hd);
            for (int64_t i = 0; i < d; i++) x[t * d + i] += o[i];
        }
        free(wn1); free(wq); free(wk); free(wv); free(wo); free(wn2); free(wg); free(wu); free(wd);
    }
    float *wn = get(m, "model.norm.weight", d, 0);
    for (int64_t t = 0; t < T; t++) {
        rmsnorm(x + t * d, wn, h, d, m->eps);
        for (int64_t vv = 0; vv < m->V; vv++) {
            double s = 0;
            for (int64_t i = 0; i < d; i++) s += (double)emb[vv * d + i] * h[i]; /* tied classifier */
            logits[t * m->V + vv] = (float)s;
        }
    }
    free(wn); free(emb); free(x); free(h); free(q); free(k); free(v); free(att); free(o); free(g); free(u); free(sc);
}

static int64_t cfg_int(const cJSON *c, const char *k) { const cJSON *v = cJSON_GetObjectItem(c, k); return v ? (int64_t)v->valuedouble : -1; }

static void check_forward_matches_golden(const char *shared, bl_hf_folder *h) {
    ref_llama m = {.h = h};
    m.d = cfg_int(h->config, "hidden_size"); m.hd = cfg_int(h->config, "intermediate_size");
    m.L = cfg_int(h->config, "num_hidden_layers"); m.nh = cfg_int(h->config, "num_attention_heads");
    m.nkv = cfg_int(h->config, "num_key_value_heads"); m.V = cfg_int(h->config, "vocab_size");
    m.hs = m.d / m.nh;
    m.eps = cJSON_GetObjectItem(h->config, "rms_norm_eps")->valuedouble;
    m.theta = cJSON_GetObjectItem(h->config, "rope_theta")->valuedouble;
    char p[1024];
    snprintf(p, sizeof p, "%s/golden/stories260K/io.safetensors", shared);
    bl_st_file io;
    CHECK_OK(bl_st_open(&io, p));
    const bl_st_tensor *ti = bl_st_find(&io, "input_ids");
    CHECK(ti && ti->ndim == 2, "input_ids");
    if (!ti) { bl_st_close(&io); return; }
    int64_t B = ti->shape[0], T = ti->shape[1];
    int64_t *ids = malloc((size_t)(B * T) * sizeof *ids);
    float *want = malloc((size_t)(B * T * m.V) * sizeof *want), *got = malloc((size_t)(B * T * m.V) * sizeof *got);
    CHECK_OK(bl_st_tensor_to_i64(&io, ti, ids));
    CHECK_OK(bl_st_read_f32(&io, "logits", 3, (int64_t[]){B, T, m.V}, want));
    for (int64_t b = 0; b < B; b++) ref_forward(&m, ids + b * T, T, got + b * T * m.V);
    t_allclose("stories260K logits (converted folder, reference forward) vs transformers", got, want, (long)(B * T * m.V),
               T_GOLDEN_ATOL, T_GOLDEN_RTOL);
    free(ids); free(want); free(got);
    bl_st_close(&io);
}

/* ---- the conversion itself ---- */
static void check_stories(const char *shared) {
    char bin[1024], out[1024];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", shared);
    snprintf(out, sizeof out, "%s/stories", t_tmpdir());
    bl_llama2c m;
    CHECK_OK(bl_llama2c_open(&m, bin));
    CHECK(m.cfg.dim == 64 && m.cfg.hidden_dim == 172 && m.cfg.n_layers == 5 && m.cfg.n_heads == 8 && m.cfg.n_kv_heads == 4 &&
          m.cfg.vocab_size == 512 && m.cfg.seq_len == 512 && m.cfg.shared_classifier, "stories260K header");
    CHECK_OK(bl_llama2c_to_hf(bin, out));
    bl_hf_folder h;
    CHECK_OK(bl_hf_open(&h, out));
    const char *arch = cJSON_GetArrayItem(cJSON_GetObjectItem(h.config, "architectures"), 0)->valuestring;
    CHECK(!strcmp(arch, "LlamaForCausalLM"), "architectures");
    CHECK(cJSON_GetObjectItem(h.config, "rms_norm_eps")->valuedouble == 1e-5, "rms_norm_eps");
    CHECK(cJSON_GetObjectItem(h.config, "rope_theta")->valuedouble == 10000.0, "rope_theta");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(h.config, "tie_word_embeddings")), "tie_word_embeddings");
    CHECK(cfg_int(h.config, "num_key_value_heads") == 4 && cfg_int(h.config, "intermediate_size") == 172, "config sizes");
    CHECK(h.files[0].n == 2 + 9 * 5, "tensor count %d", h.files[0].n);
    CHECK(bl_hf_find(&h, "lm_head.weight", NULL, NULL) == NULL, "tied: no lm_head");
    for (int i = 0; i < h.files[0].n; i++) CHECK(h.files[0].tensors[i].dtype == BL_DTYPE_F32, "F32");
    const bl_st_tensor *k3 = bl_hf_find(&h, "model.layers.3.self_attn.k_proj.weight", NULL, NULL);
    const bl_st_tensor *g4 = bl_hf_find(&h, "model.layers.4.mlp.down_proj.weight", NULL, NULL);
    CHECK(k3 && k3->shape[0] == 32 && k3->shape[1] == 64, "k_proj shape");
    CHECK(g4 && g4->shape[0] == 64 && g4->shape[1] == 172, "down_proj shape");

    /* values: the embedding is the file's first array; v_proj / down_proj are copied unpermuted */
    const float *file = (const float *)(m.buf + 28);
    float *emb = malloc(512 * 64 * sizeof *emb);
    CHECK_OK(bl_hf_read_f32(&h, "model.embed_tokens.weight", NULL, 2, (int64_t[]){512, 64}, emb));
    CHECK(memcmp(emb, file, 512 * 64 * sizeof *emb) == 0, "embedding bytes");
    CHECK(emb[0] == file[0] && emb[512 * 64 - 1] == file[512 * 64 - 1] && emb[0] != 0, "embedding values");
    free(emb);
    float v2[32 * 64], q[64 * 64], back[64 * 64], k[32 * 64];
    CHECK_OK(bl_hf_read_f32(&h, "model.layers.2.self_attn.v_proj.weight", NULL, 2, (int64_t[]){32, 64}, v2));
    CHECK(memcmp(v2, m.wv + 4 * 2 * 32 * 64, sizeof v2) == 0, "v_proj layer 2 unpermuted");

    /* the permutation: converted row h*8 + t*4 + j is the file's row h*8 + 2j + t (head size 8) */
    for (int layer = 0; layer < 5; layer += 2) {
        char nq[96], nk[96];
        snprintf(nq, sizeof nq, "model.layers.%d.self_attn.q_proj.weight", layer);
        snprintf(nk, sizeof nk, "model.layers.%d.self_attn.k_proj.weight", layer);
        CHECK_OK(bl_hf_read_f32(&h, nq, NULL, 2, (int64_t[]){64, 64}, q));
        CHECK_OK(bl_hf_read_f32(&h, nk, NULL, 2, (int64_t[]){32, 64}, k));
        const float *fq = (const float *)(m.wq + 4 * (int64_t)layer * 64 * 64), *fk = (const float *)(m.wk + 4 * (int64_t)layer * 32 * 64);
        int bad = 0, moved = 0;
        for (int hh = 0; hh < 8; hh++)
            for (int t = 0; t < 2; t++)
                for (int j = 0; j < 4; j++) {
                    bad += memcmp(q + (hh * 8 + t * 4 + j) * 64, fq + (hh * 8 + 2 * j + t) * 64, 64 * sizeof(float)) != 0;
                    if (hh < 4) bad += memcmp(k + (hh * 8 + t * 4 + j) * 64, fk + (hh * 8 + 2 * j + t) * 64, 64 * sizeof(float)) != 0;
                    moved += memcmp(q + (hh * 8 + t * 4 + j) * 64, fq + (hh * 8 + t * 4 + j) * 64, 64 * sizeof(float)) != 0;
                }
        CHECK(bad == 0, "layer %d: %d permuted rows differ", layer, bad);
        CHECK(moved > 0, "layer %d: the permutation moved nothing", layer);
        bl_rope_rows_to_interleaved(q, back, 8, 8, 64);
        CHECK(memcmp(back, fq, sizeof back) == 0, "layer %d: un-permuting q gives the file's rows", layer);
        bl_rope_rows_to_interleaved(k, back, 4, 8, 64);
        CHECK(memcmp(back, fk, 32 * 64 * sizeof(float)) == 0, "layer %d: un-permuting k gives the file's rows", layer);
    }
    check_forward_matches_golden(shared, &h);
    bl_hf_close(&h);
    bl_llama2c_close(&m);
}

/* A tiny synthetic checkpoint: dim 4, hidden 6, 1 layer, 2 heads, 1 kv head, vocab 5, seq 3. */
static size_t tiny_checkpoint(const char *path, int32_t vocab_field, long trunc, long extra, const int32_t *hdr_override) {
    int32_t hdr[7] = {4, 6, 1, 2, 1, vocab_field, 3};
    if (hdr_override) memcpy(hdr, hdr_override, sizeof hdr);
    int64_t V = 5, d = 4, kv = 2, hd = 6, hs = 2, seq = 3;
    int64_t floats = V * d + d + d * d + 2 * kv * d + d * d + d + 3 * hd * d + d + seq * hs + (vocab_field < 0 ? V * d : 0);
    size_t n = 28 + 4 * (size_t)floats;
    char *buf = calloc(1, n + (size_t)(extra > 0 ? extra : 0));
    memcpy(buf, hdr, sizeof hdr);
    for (int64_t i = 0; i < floats; i++) { float f = (float)i * 0.5f; memcpy(buf + 28 + 4 * i, &f, 4); }
    size_t len = n - (size_t)trunc + (size_t)(extra > 0 ? extra : 0);
    CHECK_OK(bl_file_write_atomic(path, buf, len));
    free(buf);
    return n;
}

static void check_bad_headers(void) {
    char p[512], out[512];
    snprintf(p, sizeof p, "%s/tiny.bin", t_tmpdir());
    snprintf(out, sizeof out, "%s/tiny_out", t_tmpdir());
    /* unshared classifier: lm_head = the array after freq_cis */
    tiny_checkpoint(p, -5, 0, 0, NULL);
    CHECK_OK(bl_llama2c_to_hf(p, out));
    bl_hf_folder h;
    CHECK_OK(bl_hf_open(&h, out));
    float lm[20];
    CHECK_OK(bl_hf_read_f32(&h, "lm_head.weight", NULL, 2, (int64_t[]){5, 4}, lm));
    int64_t before = 5 * 4 + 4 + 16 + 16 + 16 + 4 + 3 * 24 + 4 + 3 * 2;
    CHECK(lm[0] == (float)before * 0.5f && lm[19] == (float)(before + 19) * 0.5f, "lm_head values %g", lm[0]);
    CHECK(!cJSON_IsTrue(cJSON_GetObjectItem(h.config, "tie_word_embeddings")), "untied");
    bl_hf_close(&h);
    bl_llama2c m;
    tiny_checkpoint(p, 5, 4, 0, NULL);
    CHECK_FAILS(bl_llama2c_open(&m, p), BALORA_STATUS_FORMAT, "truncated?");
    CHECK(strstr(balora_last_error(), p) != NULL, "error names the file: %s", balora_last_error());
    tiny_checkpoint(p, 5, 0, 8, NULL);
    CHECK_FAILS(bl_llama2c_open(&m, p), BALORA_STATUS_FORMAT, "trailing data");
    tiny_checkpoint(p, -5, 80, 0, NULL); /* unshared file missing its classifier */
    CHECK_FAILS(bl_llama2c_open(&m, p), BALORA_STATUS_FORMAT, "implies");
    const int32_t neg[7] = {-4, 6, 1, 2, 1, 5, 3}, odd[7] = {6, 6, 1, 2, 1, 5, 3}, kvh[7] = {4, 6, 1, 2, 3, 5, 3},
                  huge[7] = {1 << 24, 1 << 24, 1 << 24, 1, 1, 5, 3};
    tiny_checkpoint(p, 5, 0, 0, neg);
    CHECK_FAILS(bl_llama2c_open(&m, p), BALORA_STATUS_FORMAT, "dim = -4");
    tiny_checkpoint(p, 5, 0, 0, odd);
    CHECK_FAILS(bl_llama2c_open(&m, p), BALORA_STATUS_FORMAT, "even head size");
    tiny_checkpoint(p, 5, 0, 0, kvh);
    CHECK_FAILS(bl_llama2c_open(&m, p), BALORA_STATUS_FORMAT, "n_kv_heads 3");
    tiny_checkpoint(p, 5, 0, 0, huge);
    CHECK_FAILS(bl_llama2c_open(&m, p), BALORA_STATUS_FORMAT, "needs ");
    CHECK_OK(bl_file_write_atomic(p, "abc", 3));
    CHECK_FAILS(bl_llama2c_open(&m, p), BALORA_STATUS_FORMAT, "shorter than the 28-byte");
}

int main(void) {
    check_bad_headers();
    const char *shared = t_require_shared();
    check_stories(shared);
    return t_finish();
}
