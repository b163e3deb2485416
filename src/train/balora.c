/* BA-LoRA terms plugged into the trainer (see balora.h). */
#include "train/balora.h"
#include <string.h>

#ifdef BL_TRAIN_HAVE_BALORA
static const char *const g_names[6] = {"l_cr", "l_dr", "l_svdr", "lambda1", "lambda2", "lambda3"};

static balora_status balora_fn(void *self, const bl_train_batch *b, const float *z, const float *zt, int64_t V,
                               int64_t step, int64_t total, float scale, float *dl, double *loss, double *terms) {
    bl_train_balora *h = self;
    const bl_reg_config *c = &h->cfg;
    *loss = 0.0;
    for (int i = 0; i < 6; i++) terms[i] = 0.0;
    if (b->n_trained == 0) return BALORA_STATUS_OK; /* no position: the terms are undefined, contribute nothing */
    double conf = 0.0;
    if (c->sched[0] == BL_LAMBDA_SCHED_ADAPTIVE && c->lambda1 > 0)
        BL_TRY(bl_reg_teacher_conf(&h->ws, b->B, b->T, V, zt, b->labels, c->tau, &conf));
    double l[3];
    for (int i = 0; i < 3; i++) l[i] = bl_reg_lambda(c, i, step, total, conf);
    double cr = 0, dr = 0, sv = 0;
    if (c->lambda1 > 0)
        BL_TRY(bl_reg_nlg_cr(&h->ws, b->B, b->T, V, z, zt, b->labels, c->tau, scale * l[0], l[0] != 0 ? dl : NULL, &cr));
    if (c->lambda2 > 0)
        BL_TRY(bl_reg_nlg_dr(&h->ws, b->B, b->T, V, z, b->labels, c->top_k_entropy, scale * l[1], l[1] != 0 ? dl : NULL, &dr));
    if (c->lambda3 > 0)
        BL_TRY(bl_reg_nlg_svdr(&h->ws, b->B, b->T, V, z, b->labels, c->svd_k, c->svd_norm, scale * l[2], l[2] != 0 ? dl : NULL, &sv));
    *loss = l[0] * cr + l[1] * dr + l[2] * sv;
    terms[0] = cr; terms[1] = dr; terms[2] = sv;
    terms[3] = l[0]; terms[4] = l[1]; terms[5] = l[2];
    return BALORA_STATUS_OK;
}

balora_status bl_train_balora_init(bl_train_balora *h, const bl_reg_config *c, int64_t max_rows, int64_t V) {
    memset(h, 0, sizeof *h);
    if (c->task != BL_REG_TASK_NLG)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "BA-LoRA: the causal-LM trainer needs the NLG terms (task nlg)");
    BL_TRY(bl_reg_config_check(c, V));
    h->cfg = *c;
    BL_TRY(bl_reg_ws_init(&h->ws, BL_REG_TASK_NLG, max_rows, V, c->top_k_entropy > 0 ? c->top_k_entropy : 0));
    h->iface = (bl_extra_loss){.self = h, .n_terms = 6, .term_names = g_names, .needs_teacher = c->lambda1 > 0, .fn = balora_fn};
    return BALORA_STATUS_OK;
}

void bl_train_balora_free(bl_train_balora *h) { bl_reg_ws_free(&h->ws); memset(h, 0, sizeof *h); }
#endif
