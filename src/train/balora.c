/* BA-LoRA terms plugged into the trainer (see balora.h). */
#include "train/balora.h"
#include <string.h>

static const char *const g_names[6] = {"l_cr", "l_dr", "l_svdr", "lambda1", "lambda2", "lambda3"};

static balora_status balora_nlg(void *self, const bl_train_batch *b, float *z, const bl_train_teacher *t, int64_t V,
                                int64_t step, int64_t total, float ce_scale, float scale, double *loss, double *terms) {
    bl_train_balora *h = self;
    const bl_reg_config *c = &h->cfg;
    *loss = 0.0;
    for (int i = 0; i < 6; i++) terms[i] = 0.0;
    /* no trained position: the terms are undefined and contribute nothing (fused zeroes the gradient) */
    bl_reg_teacher rt = {0};
    if (t) rt = (bl_reg_teacher){.logits = t->logits, .hidden = t->hidden, .head = t->head, .C = t->C, .stats = t->hidden && h->t_stats};
    h->t_stats = false;
    double v[3], l[3];
    BL_TRY(bl_reg_nlg_fused(&h->ws, c, step, total, b->B, b->T, V, z, b->labels, t ? &rt : NULL, ce_scale, scale, v, l));
    if (b->n_trained == 0) return BALORA_STATUS_OK;
    *loss = l[0] * v[0] + l[1] * v[1] + l[2] * v[2];
    terms[0] = v[0]; terms[1] = v[1]; terms[2] = v[2];
    terms[3] = l[0]; terms[4] = l[1]; terms[5] = l[2];
    return BALORA_STATUS_OK;
}

/* NLU: z [B, NL] -> ce_scale * d(objective sum)/dz + scale * d(terms)/dz. */
static balora_status balora_nlu(void *self, const bl_train_batch *b, float *z, const bl_train_teacher *t, int64_t NL,
                                int64_t step, int64_t total, float ce_scale, float scale, double *loss, double *terms) {
    bl_train_balora *h = self;
    *loss = 0.0;
    for (int i = 0; i < 6; i++) terms[i] = 0.0;
    const int64_t n = b->B * NL;
    memcpy(h->z, z, (size_t)n * sizeof(float));
    double sum;
    int64_t cnt;
    BL_TRY(h->task->loss(h->task, b, h->z, NL, ce_scale, z, &sum, &cnt));
    if (cnt == 0) return BALORA_STATUS_OK;
    memset(h->gz, 0, (size_t)n * sizeof(float));
    bl_reg_out ro;
    BL_TRY(bl_reg_apply(&h->ws, &h->cfg, step, total, b->B, 1, NL, h->z, t ? t->logits : NULL, NULL, h->gz, &ro));
    for (int64_t i = 0; i < n; i++) z[i] += scale * h->gz[i];
    *loss = ro.total;
    terms[0] = ro.cr; terms[1] = ro.dr; terms[2] = ro.svdr;
    terms[3] = ro.lambda[0]; terms[4] = ro.lambda[1]; terms[5] = ro.lambda[2];
    return BALORA_STATUS_OK;
}

/* The teacher's logits exist only now (the trainer keeps its hidden states): take L_CR's row statistics. */
static balora_status balora_teacher_seen(void *self, const bl_train_batch *b, const float *zt, int64_t V) {
    bl_train_balora *h = self;
    h->t_stats = false;
    BL_TRY(bl_reg_nlg_teacher_stats(&h->ws, &h->cfg, b->B, b->T, V, zt));
    h->t_stats = true;
    return BALORA_STATUS_OK;
}

balora_status bl_train_balora_init(bl_train_balora *h, const bl_reg_config *c, const bl_train_objective *task,
                                   int64_t max_rows, int64_t n_out) {
    memset(h, 0, sizeof *h);
    if (!task) task = &bl_objective_causal_lm;
    bool nlg = task == &bl_objective_causal_lm, nlu = task->kind == BL_TRAIN_LABELS_CLASS;
    if (!nlg && !nlu)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "BA-LoRA: no recipe for the %s objective; hint: causal LM (nlg) or sequence "
                       "classification (nlu)", task->name);
    if (c->task != (nlg ? BL_REG_TASK_NLG : BL_REG_TASK_NLU))
        return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA: the %s objective needs the %s terms (task %s)", task->name,
                       nlg ? "NLG" : "NLU", nlg ? "nlg" : "nlu");
    BL_TRY(bl_reg_config_check(c, n_out));
    h->cfg = *c;
    h->task = task;
    if (nlg) {
        BL_TRY(bl_reg_ws_init(&h->ws, BL_REG_TASK_NLG, max_rows, n_out, c->top_k_entropy > 0 ? c->top_k_entropy : 0));
        h->iface = (bl_extra_loss){.self = h, .n_terms = 6, .term_names = g_names, .needs_teacher = c->lambda1 > 0, .fn = balora_nlg,
                                   .teacher_seen = balora_teacher_seen};
        return BALORA_STATUS_OK;
    }
    BL_TRY(bl_reg_ws_init(&h->ws, BL_REG_TASK_NLU, max_rows, n_out, 0));
    for (int pass = 0; pass < 2; pass++) {
        h->z = bl_arena_take(&h->arena, (size_t)(max_rows * n_out) * sizeof(float));
        h->gz = bl_arena_take(&h->arena, (size_t)(max_rows * n_out) * sizeof(float));
        if (pass == 0) BL_TRY(bl_arena_alloc(&h->arena));
    }
    h->iface = (bl_extra_loss){.self = h, .n_terms = 6, .term_names = g_names, .needs_teacher = c->lambda1 > 0, .fn = balora_nlu};
    return BALORA_STATUS_OK;
}

void bl_train_balora_free(bl_train_balora *h) {
    bl_reg_ws_free(&h->ws);
    bl_arena_free(&h->arena);
    memset(h, 0, sizeof *h);
}
