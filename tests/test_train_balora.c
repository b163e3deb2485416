/* BA-LoRA's terms in the trainer (src/train/balora.c over src/method/reg.h) on the mock model:
 * the gradient the loop assembles equals finite differences of the loss it reports
 * (CE + lambda1 L_CR + lambda2 L_DR + lambda3 L_SVDR, teacher = the initial model), the terms
 * are logged, and kill + resume stays bit-identical with the terms on. On the engine's decoder the
 * trainer keeps the teacher as hidden states (no [B, T, V] copy): its gradient equals the route that
 * copies the teacher's logits. */
#include "harness.h"
#include "train/balora.h"
#include "train/lm.h"
#include "train/mock.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { V = 9, D = 12 }; /* D > V: full-rank logits (the nuclear norm has a kink at zero singular values) */

static const char *write_data(const char *name, int n) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", t_tmpdir(), name);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < n; i++) {
        int len = 4 + i % 4, x = i % V;
        fprintf(f, "{\"input_ids\": [");
        for (int t = 0; t < len; t++) { fprintf(f, "%s%d", t ? ", " : "", x); x = (2 * x + 1) % V; }
        fprintf(f, "], \"labels\": [-100");
        x = i % V;
        for (int t = 1; t < len; t++) { x = (2 * x + 1) % V; fprintf(f, ", %d", x); }
        fprintf(f, "]}\n");
    }
    fclose(f);
    return p;
}

typedef struct logged { double vals[16]; int n; int calls; } logged;
static void on_progress(const bl_progress *p, void *user) {
    logged *l = user;
    l->calls++;
    l->n = p->n_extra;
    for (int i = 0; i < p->n_extra; i++) l->vals[i] = p->extra[i];
}

/* One step at lr 0 on a tiny random GPT-2 with LoRA (B != 0, so student != teacher): the gradient
 * of the adapter with the teacher kept as hidden states (lm.c's last_hidden) vs its logits. */
static void engine_hidden_vs_logits(const bl_train_data *d, const bl_reg_config *rc) {
    float *g[2] = {NULL, NULL};
    int64_t ng = 0;
    double loss[2] = {0, 0}, cr[2] = {0, 0};
    for (int route = 0; route < 2; route++) {
        bl_config c;
        bl_config_defaults(&c, BL_FAMILY_GPT2);
        c.vocab_size = V; c.hidden = 16; c.n_layer = 2; c.n_head = 2; c.n_kv_head = 2; c.head_dim = 8;
        c.intermediate = 32; c.max_pos = 32;
        bl_model m;
        memset(&m, 0, sizeof m);
        CHECK_OK(bl_model_init_random(&m, &c, 7, 0.3f));
        bl_lora_config lc;
        bl_lora_config_default(&lc);
        lc.r = 2; lc.alpha = 4;
        CHECK_OK(bl_lora_config_set_targets(&lc, "c_attn"));
        bl_adapter ad;
        memset(&ad, 0, sizeof ad);
        CHECK_OK(bl_lora_init(&ad, &m.mods, &lc, 1));
        for (int i = 0; i < ad.n; i++)
            for (int64_t k = 0; k < ad.mods[i].out * ad.mods[i].r; k++) ad.mods[i].B[k] = 0.2f * (float)((k * 7) % 5 - 2);
        bl_train_lm lm;
        CHECK_OK(bl_train_lm_init(&lm, &m, &ad, 5, d->max_len));
        CHECK(lm.iface.last_hidden && lm.iface.hidden_size == 16, "the decoder offers its hidden states");
        if (route == 1) lm.iface.last_hidden = NULL; /* the trainer keeps the teacher's logits instead */
        bl_train_balora h;
        CHECK_OK(bl_train_balora_init(&h, rc, NULL, 5 * d->max_len, V));
        logged lg = {0};
        bl_train_cfg tc;
        bl_train_cfg_default(&tc);
        tc.adam.lr = 0; tc.batch_size = 5; tc.max_steps = 1; tc.max_grad_norm = 0; tc.no_shuffle = true;
        tc.progress = on_progress; tc.progress_user = &lg;
        bl_train_result res;
        CHECK_OK(bl_train_run(&tc, &lm.iface, d, &h.iface, &res));
        loss[route] = res.last_loss;
        cr[route] = lg.vals[0];
        ng = 0;
        for (int i = 0; i < lm.iface.n_params; i++) ng += lm.iface.numel[i];
        g[route] = malloc(sizeof(float) * (size_t)ng);
        for (int i = 0, o = 0; i < lm.iface.n_params; o += (int)lm.iface.numel[i], i++)
            memcpy(g[route] + o, lm.iface.g[i], sizeof(float) * (size_t)lm.iface.numel[i]);
        bl_train_balora_free(&h);
        bl_train_lm_free(&lm);
        bl_lora_free(&ad);
        bl_model_free(&m);
    }
    double worst = 0, gmax = 0;
    for (int64_t i = 0; i < ng; i++) { worst = fmax(worst, fabs((double)g[0][i] - g[1][i])); gmax = fmax(gmax, fabs(g[1][i])); }
    CHECK(cr[0] > 1e-4 && fabs(cr[0] - cr[1]) <= 1e-5 * cr[1], "teacher as hidden states: L_CR %.9g vs %.9g with its logits", cr[0], cr[1]);
    CHECK(fabs(loss[0] - loss[1]) <= 1e-6 * fabs(loss[1]), "loss %.9g vs %.9g", loss[0], loss[1]);
    CHECK(gmax > 0 && worst <= 1e-4 * gmax, "gradient, teacher as hidden states vs logits: max diff %g (max %g)", worst, gmax);
    free(g[0]); free(g[1]);
}

int main(void) {
    bl_train_data d;
    bl_train_data_cfg dc;
    bl_train_data_cfg_default(&dc);
    dc.format = BL_TRAIN_DATA_TOKENS; dc.vocab_size = V; dc.max_len = 16;
    CHECK_OK(bl_train_data_load(&d, write_data("b.jsonl", 5), &dc, NULL));

    bl_reg_config rc;
    bl_reg_config_default(&rc, BL_REG_TASK_NLG);
    rc.lambda1 = 0.5; rc.lambda2 = 0.3; rc.lambda3 = 0.2; rc.svd_k = 2; rc.tau = 2.0;

    /* one step over all 5 examples at lr 0: the gradient at the start */
    bl_mock_model m;
    CHECK_OK(bl_mock_init(&m, V, D, 5, d.max_len, 0.0f, 4));
    for (int64_t i = 0; i < V * D; i++) m.W[i] += 0.1f * (float)((i * 29) % 13 - 6) / 6.0f; /* student != teacher */
    bl_train_balora h;
    CHECK_OK(bl_train_balora_init(&h, &rc, NULL, 5 * d.max_len, V));
    CHECK(h.iface.needs_teacher && h.iface.n_terms == 6, "hook shape");
    bl_train_cfg c;
    bl_train_cfg_default(&c);
    c.adam.lr = 0; c.batch_size = 5; c.max_steps = 1; c.max_grad_norm = 0; c.no_shuffle = true;
    logged lg = {0};
    c.progress = on_progress; c.progress_user = &lg;
    bl_train_result res;
    CHECK_OK(bl_train_run(&c, &m.iface, &d, &h.iface, &res));
    CHECK(lg.calls == 1 && lg.n == 6 && lg.vals[0] > 0 && lg.vals[3] == 0.5 && lg.vals[5] == 0.2, "terms logged: cr %g l1 %g", lg.vals[0], lg.vals[3]);

    /* reference loss on a separate copy */
    bl_mock_model r;
    CHECK_OK(bl_mock_init(&r, V, D, 5, d.max_len, 0.0f, 4));
    memcpy(r.W, m.W, sizeof(float) * V * D);
    bl_train_batch b;
    CHECK_OK(bl_train_batch_init(&b, 5, d.max_len));
    int64_t idx[5] = {0, 1, 2, 3, 4};
    bl_train_batch_fill(&b, &d, idx, 5, false, 0);
    float *z, *zt = malloc(sizeof(float) * 5 * d.max_len * V);
    r.iface.forward(&r, &b, true, false, NULL, &z);
    memcpy(zt, z, sizeof(float) * b.B * b.T * V);
    bl_reg_ws ws;
    CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLG, 5 * d.max_len, V, 0));
#define LOSS(out) do { double s_, cr_, dr_, sv_; int64_t n_; r.iface.forward(&r, &b, false, false, NULL, &z); \
        bl_causal_ce(z, b.labels, b.B, b.T, V, 0, NULL, &s_, &n_); \
        bl_reg_nlg_cr(&ws, b.B, b.T, V, z, zt, b.labels, rc.tau, 1, NULL, &cr_); \
        bl_reg_nlg_dr(&ws, b.B, b.T, V, z, b.labels, 0, 1, NULL, &dr_); \
        bl_reg_nlg_svdr(&ws, b.B, b.T, V, z, b.labels, rc.svd_k, rc.svd_norm, 1, NULL, &sv_); \
        out = s_ / (double)n_ + rc.lambda1 * cr_ + rc.lambda2 * dr_ + rc.lambda3 * sv_; } while (0)
    double L0;
    LOSS(L0);
    CHECK(fabs(L0 - res.last_loss) < 1e-6 * fabs(L0), "reported loss %.9g vs reference %.9g", res.last_loss, L0);
    double worst = 0;
    for (int64_t i = 0; i < V * D + V; i++) {
        float *p = i < V * D ? &r.W[i] : &r.bias[i - V * D];
        float g = i < V * D ? m.gW[i] : m.gbias[i - V * D];
        float keep = *p;
        double lp, lm;
        *p = keep + 1e-2f; LOSS(lp);
        *p = keep - 1e-2f; LOSS(lm);
        *p = keep;
        double fd = (lp - lm) / (double)(2e-2f), e = fabs(fd - g) / (2e-3 + fabs(fd));
        if (e > worst) worst = e;
    }
    CHECK(worst < 2e-2, "gradient with the BA-LoRA terms vs finite differences: worst rel error %g", worst);
    bl_reg_ws_free(&ws);
    free(zt);
    bl_train_batch_free(&b);
    bl_mock_free(&r);
    bl_mock_free(&m);
    bl_train_balora_free(&h);

    /* kill + resume with the terms (v6-style schedules), accumulation and dropout: bit-identical */
    CHECK_OK(bl_reg_config_recipe(&rc, "paper-v6", BL_REG_TASK_NLG));
    rc.svd_k = 2; rc.top_k_entropy = 4;
    float W1[V * D], W2[V * D];
    char out1[600], out2[600];
    snprintf(out1, sizeof out1, "%s/o1", t_tmpdir());
    snprintf(out2, sizeof out2, "%s/o2", t_tmpdir());
    for (int pass = 0; pass < 3; pass++) {
        CHECK_OK(bl_mock_init(&m, V, D, 2, d.max_len, 0.2f, 4));
        CHECK_OK(bl_train_balora_init(&h, &rc, NULL, 2 * d.max_len, V));
        bl_train_cfg_default(&c);
        c.adam.lr = 0.05; c.batch_size = 2; c.grad_accum = 2; c.epochs = 4; c.save_every = 2;
        c.out_dir = pass == 0 ? out1 : out2;
        if (pass == 1) c.stop_after = 3;
        if (pass == 2) c.resume = "latest";
        CHECK_OK(bl_train_run(&c, &m.iface, &d, &h.iface, &res));
        if (pass == 0) memcpy(W1, m.W, sizeof W1);
        if (pass == 2) memcpy(W2, m.W, sizeof W2);
        bl_train_balora_free(&h);
        bl_mock_free(&m);
    }
    CHECK(res.resumed_from == 2 && res.steps == 8, "resumed from %lld to %lld", (long long)res.resumed_from, (long long)res.steps);
    CHECK(memcmp(W1, W2, sizeof W1) == 0, "BA-LoRA kill + resume is bit-identical");
    bl_reg_config_default(&rc, BL_REG_TASK_NLG);
    rc.lambda1 = 0.5; rc.lambda2 = 0.3; rc.lambda3 = 0.2; rc.svd_k = 2; rc.tau = 2.0;
    engine_hidden_vs_logits(&d, &rc);
    bl_train_data_free(&d);
    return t_finish();
}
