/* Whole-model backward against finite differences, on tiny random models of every decoder
 * family and head: the gradient of the task loss with respect to every base tensor (full
 * fine-tuning: embeddings, positions, norms, biases, tied and untied heads) and every LoRA factor
 * (with dropout), sampled elements each, against central differences of the float32 forward.
 * Tolerance as in test_ops_grad.c: |analytic - numeric| <= 2e-3 (1 + |numeric|) with h = 1e-2
 * (loss is O(1); forward rounding noise / 2h <~ 1e-4; truncation h^2 |L'''| / 6 <~ 1e-4). */
#include "harness.h"
#include "adapters/lora.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 6 };
static int64_t ids[B * T], mask[B * T], labels[B * T];

static double loss_of(bl_run *r, bl_model *m, float *dl) {
    bl_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask};
    if (bl_model_forward(r, &b, BL_ADAPTER_ON)) { fprintf(stderr, "%s\n", balora_last_error()); exit(1); }
    double loss;
    int64_t n;
    balora_status st = m->cfg.head == BL_HEAD_SEQ_CLS
                           ? bl_xent(r->logits, labels, B, 1, m->cfg.num_labels, false, dl, 1.0f, &loss, &n)
                           : bl_xent(r->logits, labels, B, T, m->cfg.vocab_size, true, dl, 1.0f, &loss, &n);
    if (st) { fprintf(stderr, "%s\n", balora_last_error()); exit(1); }
    return loss;
}

/* checks up to 6 elements of data against grad */
static void check_tensor(bl_run *r, bl_model *m, const char *what, float *data, const float *grad, int64_t n) {
    int64_t step = n > 6 ? n / 6 : 1;
    int bad = 0;
    double worst = 0;
    for (int64_t i = 0; i < n; i += step) {
        float save = data[i];
        data[i] = save + 1e-2f;
        /* dropout masks must repeat: reseed the run's RNG before every forward */
        bl_rng_seed(&r->rng, 5);
        double lp = loss_of(r, m, NULL);
        data[i] = save - 1e-2f;
        bl_rng_seed(&r->rng, 5);
        double lm = loss_of(r, m, NULL);
        data[i] = save;
        double num = (lp - lm) / ((double)(save + 1e-2f) - (double)(save - 1e-2f));
        double err = fabs(num - grad[i]), tol = 2e-3 * (1 + fabs(num));
        if (err > tol) { bad++; fprintf(stderr, "  %s[%lld]: analytic %.6g numeric %.6g\n", what, (long long)i, grad[i], num); }
        if (err / tol > worst) worst = err / tol;
    }
    t_checks++;
    if (bad) t_failures++;
}

static void run_case(const char *name, bl_config *c, bool lora, float dropout) {
    printf("== %s\n", name);
    bl_model m;
    CHECK_OK(bl_model_init_random(&m, c, 42, 0.3f));
    bl_rng g;
    bl_rng_seed(&g, 9);
    for (int i = 0; i < m.mods.n_params; i++) /* non-trivial norms and biases */
        if (m.mods.params[i].ndim == 1)
            for (int64_t k = 0; k < m.mods.params[i].numel; k++) m.mods.params[i].data[k] += 0.3f * bl_rng_normal(&g);
    bl_adapter ad;
    memset(&ad, 0, sizeof ad);
    if (lora) {
        bl_lora_config lc;
        bl_lora_config_default(&lc);
        lc.r = 3; lc.alpha = 6; lc.dropout = dropout;
        CHECK_OK(bl_lora_config_set_targets(&lc, "all-linear"));
        CHECK_OK(bl_lora_init(&ad, &m.mods, &lc, 3));
        for (int i = 0; i < ad.n; i++) /* B = 0 at init: make it non-zero so every path carries gradient */
            for (int64_t k = 0; k < ad.mods[i].out * ad.mods[i].r; k++) ad.mods[i].B[k] = 0.3f * bl_rng_normal(&g);
    } else {
        CHECK_OK(bl_model_set_full_ft(&m, true));
        bl_model_zero_grads(&m);
    }
    bl_run r;
    CHECK_OK(bl_run_init(&r, &m, B, T));
    r.train = true;
    bl_rng_seed(&r.rng, 5);
    float *dl = malloc(sizeof(float) * B * T * (c->vocab_size > 8 ? c->vocab_size : 8));
    double l0 = loss_of(&r, &m, dl);
    CHECK(isfinite(l0) && l0 > 0, "loss %g", l0);
    CHECK_OK(bl_model_backward(&r, dl));
    int before = t_failures;
    if (lora) {
        bl_param tr[128];
        int n = bl_lora_trainables(&ad, tr, 128);
        for (int i = 0; i < n; i++) check_tensor(&r, &m, tr[i].name, tr[i].data, tr[i].grad, tr[i].numel);
        printf("   %d adapter tensors checked (dropout %.1f)\n", n, dropout);
    } else {
        for (int i = 0; i < m.mods.n_params; i++) {
            bl_param *p = &m.mods.params[i];
            check_tensor(&r, &m, p->name, p->data, p->grad, p->numel);
        }
        printf("   %d base tensors checked\n", m.mods.n_params);
    }
    CHECK(t_failures == before, "%s: gradients match finite differences", name);
    /* determinism: the same step (same dropout seed) twice gives bit-identical gradients */
    if (lora) {
        bl_param tr[128];
        int nt = bl_lora_trainables(&ad, tr, 128);
        float *g1 = malloc(sizeof(float) * tr[0].numel);
        for (int rep = 0; rep < 2; rep++) {
            bl_lora_zero_grads(&ad);
            bl_rng_seed(&r.rng, 5);
            loss_of(&r, &m, dl);
            CHECK_OK(bl_model_backward(&r, dl));
            if (rep == 0) memcpy(g1, tr[0].grad, sizeof(float) * tr[0].numel);
        }
        CHECK(nt > 0 && memcmp(g1, tr[0].grad, sizeof(float) * tr[0].numel) == 0, "%s: bit-identical gradients on a rerun", name);
        free(g1);
    }
    free(dl);
    bl_run_free(&r);
    bl_lora_free(&ad);
    bl_model_free(&m);
}

int main(void) {
    bl_rng g;
    bl_rng_seed(&g, 1);
    for (int i = 0; i < B * T; i++) {
        ids[i] = (int64_t)bl_rng_below(&g, 13);
        mask[i] = !(i / T == 1 && i % T >= T - 2); /* row 1: two right-padding tokens */
        labels[i] = mask[i] ? ids[i] : -100;
    }
    labels[2] = -100;

    bl_config gp;
    bl_config_defaults(&gp, BL_FAMILY_GPT2);
    gp.vocab_size = 13; gp.hidden = 8; gp.n_layer = 2; gp.n_head = 2; gp.n_kv_head = 2; gp.head_dim = 4;
    gp.intermediate = 12; gp.max_pos = 8;
    run_case("gpt2 full fine-tuning (tied head, positions, LayerNorm, gelu_new)", &gp, false, 0);
    run_case("gpt2 LoRA all-linear, dropout 0.2", &gp, true, 0.2f);
    gp.act = BL_ACT_GELU_ERF; gp.tie_word_embeddings = false;
    run_case("gpt2 full fine-tuning (gelu, untied lm_head)", &gp, false, 0);
    gp.tie_word_embeddings = true;

    bl_config ll;
    bl_config_defaults(&ll, BL_FAMILY_LLAMA);
    ll.vocab_size = 13; ll.hidden = 8; ll.n_layer = 2; ll.n_head = 4; ll.n_kv_head = 2; ll.head_dim = 2;
    ll.intermediate = 10; ll.max_pos = 16; ll.rope_theta = 100.0; ll.qkv_bias = true; ll.sliding_window = 2;
    run_case("llama full fine-tuning (GQA, RoPE, qkv bias, untied head, sliding window 2)", &ll, false, 0);
    run_case("llama LoRA all-linear, dropout 0.1", &ll, true, 0.1f);
    ll.tie_word_embeddings = true; ll.sliding_window = 0; ll.qkv_bias = false;
    run_case("llama full fine-tuning (tied head)", &ll, false, 0);

    /* sequence classification head (pooled at the token before the first pad) */
    int64_t cls_labels[B] = {1, 0};
    memcpy(labels, cls_labels, sizeof cls_labels);
    for (int t = T - 2; t < T; t++) ids[T + t] = 0; /* row 1 pads with pad_token_id 0 */
    for (int t = 0; t < T - 2; t++) if (ids[T + t] == 0) ids[T + t] = 1;
    for (int t = 0; t < T; t++) if (ids[t] == 0) ids[t] = 2;
    gp.head = BL_HEAD_SEQ_CLS; gp.num_labels = 3; gp.pad_token_id = 0; gp.act = BL_ACT_GELU_TANH;
    run_case("gpt2 sequence classification, full fine-tuning", &gp, false, 0);
    run_case("gpt2 sequence classification, LoRA + score head", &gp, true, 0);
    return t_finish();
}
