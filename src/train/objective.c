/* The training objectives (objective.h). */
#include "train/objective.h"
#include "encoders/enc_ops.h"
#include "ops/ops.h"

balora_status bl_causal_ce(const float *logits, const int64_t *labels, int64_t B, int64_t T, int64_t V,
                           float scale, float *dlogits, double *sum, int64_t *count) {
    /* the engine's cross-entropy gives the mean and dscale * d(mean)/d(logits): scale it to the sum */
    double mean = 0.0;
    int64_t n = 0;
    int64_t n_lab = 0;
    for (int64_t r = 0; r < B * T; r++) n_lab += r % T != 0 && labels[r] != BL_IGNORE_INDEX;
    BL_TRY(bl_xent(logits, labels, B, T, V, true, dlogits, scale * (float)n_lab, &mean, &n));
    *sum = mean * (double)n;
    *count = n;
    return BALORA_STATUS_OK;
}

static balora_status check_kind(const bl_train_objective *o, const bl_train_batch *b) {
    if (b->kind != o->kind)
        return bl_fail(BALORA_STATUS_INTERNAL, "objective %s: the batch's labels are of another kind (%d, expected %d); hint: "
                       "the dataset was built for another task", o->name, (int)b->kind, (int)o->kind);
    return BALORA_STATUS_OK;
}

static balora_status causal_loss(const bl_train_objective *o, const bl_train_batch *b, const float *logits, int64_t V,
                                 float scale, float *dlogits, double *sum, int64_t *count) {
    BL_TRY(check_kind(o, b));
    return bl_causal_ce(logits, b->labels, b->B, b->T, V, scale, dlogits, sum, count);
}

static balora_status masked_loss(const bl_train_objective *o, const bl_train_batch *b, const float *logits, int64_t V,
                                 float scale, float *dlogits, double *sum, int64_t *count) {
    BL_TRY(check_kind(o, b));
    int64_t n_lab = 0;
    for (int64_t r = 0; r < b->B * b->T; r++) n_lab += b->labels[r] != BL_IGNORE_INDEX;
    double mean = 0.0;
    int64_t n = 0;
    BL_TRY(bl_xent(logits, b->labels, b->B, b->T, V, false, dlogits, scale * (float)n_lab, &mean, &n));
    *sum = mean * (double)n;
    *count = n;
    return BALORA_STATUS_OK;
}

static balora_status seqcls_loss(const bl_train_objective *o, const bl_train_batch *b, const float *logits, int64_t NL,
                                 float scale, float *dlogits, double *sum, int64_t *count) {
    BL_TRY(check_kind(o, b));
    if (!b->cls_labels)
        return bl_fail(BALORA_STATUS_INVALID, "seq-cls: the batch has no class labels; hint: a classifier needs integer labels");
    int64_t n_lab = 0;
    for (int64_t i = 0; i < b->B; i++) n_lab += b->cls_labels[i] != BL_IGNORE_INDEX;
    double mean = 0.0;
    int64_t n = 0;
    BL_TRY(bl_xent(logits, b->cls_labels, b->B, 1, NL, false, dlogits, scale * (float)n_lab, &mean, &n));
    *sum = mean * (double)n;
    *count = n;
    return BALORA_STATUS_OK;
}

static balora_status mse_loss(const bl_train_objective *o, const bl_train_batch *b, const float *logits, int64_t NL,
                              float scale, float *dlogits, double *sum, int64_t *count) {
    BL_TRY(check_kind(o, b));
    if (!b->targets) return bl_fail(BALORA_STATUS_INVALID, "seq-cls: the batch has no float targets; hint: a regression model needs them");
    if (NL != 1) return bl_fail(BALORA_STATUS_INVALID, "seq-cls regression: %lld outputs, expected 1", (long long)NL);
    double mean = 0.0;
    BL_TRY(bl_mse(logits, b->targets, b->B, dlogits, scale * (float)b->B, &mean));
    *sum = mean * (double)b->B;
    *count = b->B;
    return BALORA_STATUS_OK;
}

const bl_train_objective bl_objective_causal_lm = {"causal-lm", BL_TRAIN_LABELS_NEXT_TOKEN, true, causal_loss};
const bl_train_objective bl_objective_masked_lm = {"masked-lm", BL_TRAIN_LABELS_TOKEN, true, masked_loss};
const bl_train_objective bl_objective_seqcls = {"seq-cls", BL_TRAIN_LABELS_CLASS, false, seqcls_loss};
const bl_train_objective bl_objective_seqcls_mse = {"seq-cls-mse", BL_TRAIN_LABELS_CLASS, false, mse_loss};
