/* Training end to end: a tiny randomly initialised BERT-shaped classifier, frozen, with adapters on
 * query/key/value/dense and the classifier trained as modules_to_save, learns a synthetic task
 * (label = whether token 3 occurs in the sequence) with a minimal Adam loop, for each method:
 *   LoRA    (PEFT's default init: A uniform, B zero),
 *   PiSSA   (src/method: A, B from the top-r SVD of W, W replaced by the residual),
 *   BA-LoRA (PiSSA + the NLU regularisers of src/method/reg.h on the logits, teacher = the
 *            original model: W_res + s B0 A0 with the head's initial weights, BL_ADAPTER_INITIAL).
 * Held-out accuracy must be well above chance for each; the untrained model's is not. */
#include "harness.h"
#include "encoders/encoder.h"
#include "method/pissa.h"
#include "method/reg.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { T = 12, V = 30, NTR = 384, NTE = 256, BS = 32, STEPS = 80, R = 4 };

typedef struct adam { float *p, *g, *m, *v; int64_t n; } adam;

static void make_data(bl_rng *r, int n, int64_t *ids, int64_t *mask, int64_t *lab) {
    for (int i = 0; i < n; i++) {
        int len = 6 + (int)bl_rng_below(r, T - 5); /* 6..T */
        int y = (int)bl_rng_below(r, 2);
        for (int t = 0; t < T; t++) {
            ids[i * T + t] = t == 0 ? 2 : (t < len ? 4 + (int64_t)bl_rng_below(r, V - 4) : 0);
            mask[i * T + t] = t < len;
        }
        if (y) ids[i * T + 1 + bl_rng_below(r, (uint64_t)len - 1)] = 3;
        lab[i] = y;
    }
}

static double accuracy(bl_enc_run *r, int n, const int64_t *ids, const int64_t *mask, const int64_t *lab) {
    int ok = 0;
    for (int s = 0; s < n; s += BS) {
        bl_enc_batch b = {BS, T, ids + s * T, mask + s * T, NULL};
        if (bl_enc_forward(r, &b, BL_ADAPTER_ON)) return -1;
        for (int i = 0; i < BS; i++) ok += (r->logits[2 * i + 1] > r->logits[2 * i]) == (lab[s + i] == 1);
    }
    return (double)ok / n;
}

typedef enum method { M_LORA = 0, M_PISSA, M_BALORA } method;
static const char *METHOD_NAME[3] = {"lora", "pissa", "ba-lora"};

static void train_arm(method meth, const int64_t *tr_ids, const int64_t *tr_mask, const int64_t *tr_lab,
                      const int64_t *te_ids, const int64_t *te_mask, const int64_t *te_lab) {
    bl_enc_config c;
    bl_enc_config_defaults(&c, BL_ENC_BERT);
    c.vocab_size = V; c.hidden = 32; c.n_head = 4; c.intermediate = 64; c.n_layer = 2; c.max_pos = T;
    c.init_range = 0.2;
    bl_encoder m;
    CHECK_OK(bl_enc_init_random(&m, &c, 1));
    bl_rng rng;
    bl_rng_seed(&rng, 2);
    int nl = m.mods.n_lin;
    bl_lora *lo = calloc((size_t)nl, sizeof *lo);
    adam *opt = calloc((size_t)(2 * nl + 4), sizeof *opt);
    int n_opt = 0;
    for (int i = 0; i < nl; i++) {
        bl_linear *L = &m.mods.lin[i];
        lo[i].in = L->in; lo[i].out = L->out; lo[i].r = R; lo[i].scale = 2.0f;
        lo[i].A = calloc((size_t)(R * L->in), sizeof(float)); lo[i].gA = calloc((size_t)(R * L->in), sizeof(float));
        lo[i].B = calloc((size_t)(R * L->out), sizeof(float)); lo[i].gB = calloc((size_t)(R * L->out), sizeof(float));
        if (meth == M_LORA) {
            float bound = 1.0f / sqrtf((float)L->in);
            for (int64_t e = 0; e < R * L->in; e++) lo[i].A[e] = bound * (float)(2 * bl_rng_uniform(&rng) - 1);
        } else {
            CHECK_OK(bl_pissa_init(L->W, L->out, L->in, false, R, lo[i].scale, -1, 0, &rng, lo[i].A, lo[i].B));
            lo[i].A0 = malloc(sizeof(float) * (size_t)(R * L->in));
            lo[i].B0 = malloc(sizeof(float) * (size_t)(R * L->out));
            memcpy(lo[i].A0, lo[i].A, sizeof(float) * (size_t)(R * L->in));
            memcpy(lo[i].B0, lo[i].B, sizeof(float) * (size_t)(R * L->out));
        }
        L->lora = &lo[i];
        opt[n_opt++] = (adam){lo[i].A, lo[i].gA, NULL, NULL, R * L->in};
        opt[n_opt++] = (adam){lo[i].B, lo[i].gB, NULL, NULL, R * L->out};
    }
    m.mods.attach_gen++;
    CHECK_OK(bl_enc_heads_trainable(&m));
    int heads[2] = {m.head_w, m.head_b};
    for (int k = 0; k < 2; k++) {
        bl_param *p = &m.mods.params[heads[k]];
        opt[n_opt++] = (adam){p->train_data, p->grad, NULL, NULL, p->numel};
    }
    for (int k = 0; k < n_opt; k++) { opt[k].m = calloc((size_t)opt[k].n, sizeof(float)); opt[k].v = calloc((size_t)opt[k].n, sizeof(float)); }
    bl_enc_run r;
    CHECK_OK(bl_enc_run_init(&r, &m, BS, T));
    double acc0 = accuracy(&r, NTE, te_ids, te_mask, te_lab);
    bl_reg_config rc;
    bl_reg_config_default(&rc, BL_REG_TASK_NLU);
    rc.svd_k = 1;
    bl_reg_ws ws = {0};
    if (meth == M_BALORA) CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLU, BS, 2, 0));
    float z_pt[BS * 2];
    double first_loss = 0, last_loss = 0, reg_sum = 0;
    const float lr = 5e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    for (int step = 1; step <= STEPS; step++) {
        int s = ((step - 1) * BS) % NTR;
        bl_enc_batch b = {BS, T, tr_ids + s * T, tr_mask + s * T, NULL};
        if (meth == M_BALORA) {
            CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_INITIAL)); /* the original model */
            memcpy(z_pt, r.logits, sizeof z_pt);
        }
        CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_ON));
        if (meth != M_LORA && step == 1) {
            /* PiSSA: the adapted model starts as the original one */
            float z0[BS * 2];
            memcpy(z0, r.logits, sizeof z0);
            if (meth == M_PISSA) {
                CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_INITIAL));
                memcpy(z_pt, r.logits, sizeof z_pt);
                CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_ON));
            }
            CHECK(t_allclose("pissa step 0 == original", z0, z_pt, BS * 2, 1e-4, 1e-3) == 0, "PiSSA starts at the original model");
        }
        double loss;
        CHECK_OK(bl_enc_loss(&r, tr_lab + s, NULL, &loss, r.dlogits));
        if (meth == M_BALORA) {
            bl_reg_out o;
            CHECK_OK(bl_reg_apply(&ws, &rc, step - 1, STEPS, BS, 1, 2, r.logits, z_pt, NULL, r.dlogits, &o));
            reg_sum += fabs(o.total);
            loss += o.total;
        }
        if (step <= 12) first_loss += loss / 12;
        if (step > STEPS - 12) last_loss += loss / 12;
        for (int k = 0; k < n_opt; k++) memset(opt[k].g, 0, sizeof(float) * (size_t)opt[k].n);
        CHECK_OK(bl_enc_backward(&r, r.dlogits));
        float c1 = 1.0f - powf(b1, (float)step), c2 = 1.0f - powf(b2, (float)step);
        for (int k = 0; k < n_opt; k++)
            for (int64_t e = 0; e < opt[k].n; e++) {
                float g = opt[k].g[e];
                opt[k].m[e] = b1 * opt[k].m[e] + (1 - b1) * g;
                opt[k].v[e] = b2 * opt[k].v[e] + (1 - b2) * g * g;
                opt[k].p[e] -= lr * (opt[k].m[e] / c1) / (sqrtf(opt[k].v[e] / c2) + eps);
            }
        if (t_failures) break;
    }
    double acc = accuracy(&r, NTE, te_ids, te_mask, te_lab);
    fprintf(stderr, "%s: held-out accuracy %.3f before, %.3f after %d steps; loss %.4f -> %.4f\n", METHOD_NAME[meth], acc0,
            acc, STEPS, first_loss, last_loss);
    CHECK(acc >= 0.9, "%s: accuracy after training %.3f (want >= 0.9; chance 0.5)", METHOD_NAME[meth], acc);
    CHECK(acc0 < 0.7, "%s: untrained accuracy %.3f should be near chance", METHOD_NAME[meth], acc0);
    CHECK(last_loss < 0.5 * first_loss, "%s: loss %.4f -> %.4f", METHOD_NAME[meth], first_loss, last_loss);
    if (meth == M_BALORA) CHECK(reg_sum > 0, "BA-LoRA terms were applied");
    bl_reg_ws_free(&ws);
    bl_enc_run_free(&r);
    for (int i = 0; i < nl; i++) {
        free(lo[i].A); free(lo[i].B); free(lo[i].gA); free(lo[i].gB); free(lo[i].A0); free(lo[i].B0);
        m.mods.lin[i].lora = NULL;
    }
    for (int k = 0; k < n_opt; k++) { free(opt[k].m); free(opt[k].v); }
    free(lo); free(opt);
    bl_enc_free(&m);
}

int main(void) {
    balora_threads_set(1); /* tiny matrices: threads cost more than they give on a shared machine */
    bl_rng rng;
    bl_rng_seed(&rng, 7);
    int64_t *tr_ids = malloc(sizeof(int64_t) * NTR * T), *tr_mask = malloc(sizeof(int64_t) * NTR * T), *tr_lab = malloc(sizeof(int64_t) * NTR);
    int64_t *te_ids = malloc(sizeof(int64_t) * NTE * T), *te_mask = malloc(sizeof(int64_t) * NTE * T), *te_lab = malloc(sizeof(int64_t) * NTE);
    make_data(&rng, NTR, tr_ids, tr_mask, tr_lab);
    make_data(&rng, NTE, te_ids, te_mask, te_lab);
    for (int meth = 0; meth < 3; meth++) train_arm((method)meth, tr_ids, tr_mask, tr_lab, te_ids, te_mask, te_lab);
    free(tr_ids); free(tr_mask); free(tr_lab); free(te_ids); free(te_mask); free(te_lab);
    return t_finish();
}
