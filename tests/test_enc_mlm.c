/* The masked-LM head (src/encoders/mlm.h) and the encoder's backward from the hidden states
 * (bl_enc_backward_hidden): analytic gradients of a masked-LM cross-entropy against central finite
 * differences for every head tensor, the tied word embeddings (input and decoder) and base tensors
 * of the encoder (full fine-tuning, padded batch); BERT's 80/10/10 masking rates; bad input fails. */
#include "harness.h"
#include "encoders/mlm.h"
#include "ops/ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 6, V = 30 };

typedef struct fx {
    bl_encoder m;
    bl_enc_run r;
    bl_mlm_head h;
    int64_t ids[B * T], mask[B * T], labels[B * T];
    float logits[B * T * V], dlogits[B * T * V], dh[B * T * 16];
} fx;

static double loss_of(fx *f, bool grad) {
    bl_enc_batch b = {B, T, f->ids, f->mask, NULL};
    if (bl_enc_forward(&f->r, &b, BL_ADAPTER_ON)) return NAN;
    if (bl_mlm_forward(&f->h, bl_enc_layer_hidden(&f->r, f->m.cfg.n_layer), B * T, f->logits)) return NAN;
    double loss;
    int64_t n;
    if (bl_xent(f->logits, f->labels, B * T, 1, V, false, grad ? f->dlogits : NULL, 1.0f, &loss, &n)) return NAN;
    if (grad) {
        if (bl_mlm_backward(&f->h, f->dlogits, f->dh)) return NAN;
        if (bl_enc_backward_hidden(&f->r, f->dh)) return NAN;
    }
    return loss;
}

static int probe(fx *f, const char *what, float *x, const float *g, int64_t n, int k, bl_rng *rng) {
    int bad = 0;
    for (int i = 0; i < k; i++) {
        int64_t e = (int64_t)bl_rng_below(rng, (uint64_t)n);
        float keep = x[e], hh = 1e-2f;
        x[e] = keep + hh;
        double lp = loss_of(f, false);
        x[e] = keep - hh;
        double lm = loss_of(f, false);
        x[e] = keep;
        double fd = (lp - lm) / (2.0 * hh);
        if (!(fabs(fd - g[e]) <= 3e-4 + 3e-2 * fabs(fd))) {
            bad++;
            fprintf(stderr, "  %s[%lld]: analytic %.6g, finite difference %.6g\n", what, (long long)e, g[e], fd);
        }
    }
    return bad;
}

static void test_grad(bl_enc_act act) {
    fx *f = calloc(1, sizeof *f);
    bl_enc_config c;
    bl_enc_config_defaults(&c, BL_ENC_BERT);
    c.vocab_size = V; c.hidden = 16; c.n_head = 2; c.head_dim = 8; c.intermediate = 24; c.n_layer = 2;
    c.max_pos = 16; c.init_range = 0.3; c.num_labels = 2; c.act = act;
    CHECK_OK(bl_enc_init_random(&f->m, &c, 5));
    CHECK_OK(bl_enc_set_full_ft(&f->m, true));
    CHECK_OK(bl_enc_run_init(&f->r, &f->m, B, T));
    CHECK_OK(bl_mlm_head_init(&f->h, &f->m, B * T, 7));
    bl_rng rng;
    bl_rng_seed(&rng, 17);
    /* non-trivial head values (init has zero biases, unit LayerNorm) */
    for (int i = 1; i < BL_MLM_N_PARAMS; i++)
        for (int64_t e = 0; e < f->h.numel[i]; e++) f->h.p[i][e] += 0.2f * bl_rng_normal(&rng);
    for (int64_t i = 0; i < B * T; i++) {
        bool pad = i / T == 1 && i % T >= 4;
        f->mask[i] = pad ? 0 : 1;
        f->ids[i] = pad ? 0 : 1 + (int64_t)bl_rng_below(&rng, V - 1);
        f->labels[i] = !pad && i % 3 == 1 ? (int64_t)bl_rng_below(&rng, V) : -100;
    }
    bl_enc_zero_grads(&f->m);
    for (int i = 0; i < BL_MLM_N_PARAMS; i++) memset(f->h.g[i], 0, sizeof(float) * (size_t)f->h.numel[i]);
    double loss = loss_of(f, true);
    CHECK(isfinite(loss) && loss > 0, "masked-LM loss %g", loss);
    int bad = 0;
    for (int i = 0; i < BL_MLM_N_PARAMS; i++) {
        float *gc = malloc(sizeof(float) * (size_t)f->h.numel[i]);
        memcpy(gc, f->h.g[i], sizeof(float) * (size_t)f->h.numel[i]);
        bad += probe(f, bl_mlm_param_name(i), f->h.p[i], gc, f->h.numel[i], 8, &rng);
        free(gc);
    }
    /* encoder tensors: word embeddings (tied: input + decoder), a layer's query weight, the embedding LayerNorm */
    const char *names[] = {"embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight",
                           "encoder.layer.1.output.dense.weight", "embeddings.LayerNorm.weight", "embeddings.position_embeddings.weight"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        bl_param *p = NULL;
        for (int i = 0; i < f->m.mods.n_params; i++)
            if (strstr(f->m.mods.params[i].name, names[k])) p = &f->m.mods.params[i];
        CHECK(p && p->grad, "tensor %s with a gradient", names[k]);
        if (!p || !p->grad) continue;
        float *gc = malloc(sizeof(float) * (size_t)p->numel);
        memcpy(gc, p->grad, sizeof(float) * (size_t)p->numel);
        bad += probe(f, names[k], p->data, gc, p->numel, 10, &rng);
        free(gc);
    }
    CHECK(bad == 0, "%d gradient entries differ from finite differences", bad);
    /* bad input */
    CHECK_FAILS(bl_mlm_forward(&f->h, f->dh, B * T + 1, f->logits), BALORA_STATUS_INVALID, "rows");
    CHECK_FAILS(bl_enc_backward_hidden(&f->r, NULL), BALORA_STATUS_INVALID, "dhidden");
    bl_mlm_head_free(&f->h);
    bl_enc_run_free(&f->r);
    bl_enc_free(&f->m);
    /* another architecture: refused */
    bl_enc_config_defaults(&c, BL_ENC_ROBERTA);
    CHECK_OK(bl_enc_init_random(&f->m, &c, 1));
    CHECK_FAILS(bl_mlm_head_init(&f->h, &f->m, 4, 1), BALORA_STATUS_UNSUPPORTED, "bert");
    bl_enc_free(&f->m);
    free(f);
}

static void test_mask(void) {
    enum { N = 200000 };
    int32_t *ids = malloc(sizeof(int32_t) * N), *lab = malloc(sizeof(int32_t) * N);
    bool *ok = malloc(sizeof(bool) * N);
    for (int64_t i = 0; i < N; i++) { ids[i] = 5 + (int32_t)(i % 20); ok[i] = i % 10 != 0; }
    bl_rng rng;
    bl_rng_seed(&rng, 1);
    int64_t picked = bl_mlm_mask(ids, lab, ok, N, 0.15, 99, 5, 25, &rng);
    int64_t n_ok = 0, masked = 0, kept = 0, other = 0, bad = 0;
    for (int64_t i = 0; i < N; i++) {
        n_ok += ok[i];
        if (lab[i] == -100) { bad += ids[i] != 5 + (int32_t)(i % 20); continue; }
        bad += !ok[i];
        if (ids[i] == 99) masked++;
        else if (ids[i] == lab[i]) kept++;
        else other++;
    }
    CHECK(bad == 0, "%lld positions changed without a label or picked while not maskable", (long long)bad);
    double fp = (double)picked / (double)n_ok;
    CHECK(fabs(fp - 0.15) < 0.005, "picked fraction %g (want 0.15)", fp);
    CHECK(fabs((double)masked / picked - 0.8) < 0.01, "[MASK] share %g", (double)masked / picked);
    /* random replacement draws the original word with probability 1/20: kept ~ 0.1 + 0.1/20 */
    CHECK(fabs((double)kept / picked - 0.105) < 0.01, "kept share %g", (double)kept / picked);
    CHECK(fabs((double)other / picked - 0.095) < 0.01, "random share %g", (double)other / picked);
    free(ids); free(lab); free(ok);
}

int main(void) {
    test_grad(BL_ENC_ACT_GELU);
    test_grad(BL_ENC_ACT_GELU_TANH);
    test_mask();
    return t_finish();
}
