/* The trainer's view of a sequence classifier and its dataset (see cls.h). */
#include "train/cls.h"
#include "method/pissa_model.h"
#include <string.h>

static balora_status cls_forward(void *self, const bl_train_batch *b, bool teacher, bool training, bl_rng *rng, float **logits) {
    bl_train_cls *t = self;
    bl_clsm *cm = t->cm;
    cm->train = training && !teacher;
    if (rng) *cm->rng = *rng;
    BL_TRY(bl_clsm_forward(cm, b->B, b->T, b->ids, b->mask, b->types, teacher ? t->teacher_mode : BL_ADAPTER_ON));
    if (rng) *rng = *cm->rng;
    *logits = cm->logits;
    return BALORA_STATUS_OK;
}

static balora_status cls_backward(void *self, const bl_train_batch *b, const float *dlogits) {
    bl_train_cls *t = self;
    memcpy(t->cm->dlogits, dlogits, (size_t)(b->B * t->cm->num_labels) * sizeof(float));
    return bl_clsm_backward(t->cm);
}

static balora_status cls_save(void *self, const char *dir) {
    bl_train_cls *t = self;
    if (!t->adapter) return bl_clsm_save(t->cm, dir);
    if (t->pissa) return bl_pissa_save_converted(t->adapter, dir, t->n_meta, t->meta_keys, t->meta_vals);
    return bl_lora_save(t->adapter, dir, t->n_meta, t->meta_keys, t->meta_vals);
}

balora_status bl_train_cls_init(bl_train_cls *t, bl_clsm *cm, bl_adapter *a, int64_t max_B, int64_t max_T) {
    memset(t, 0, sizeof *t);
    t->cm = cm;
    t->adapter = a;
    t->teacher_mode = BL_ADAPTER_OFF;
    int n;
    if (a) n = bl_lora_trainables(a, NULL, 0);
    else {
        BL_TRY(bl_clsm_set_full_ft(cm, true));
        n = cm->mods->n_params;
    }
    if (n <= 0) return bl_fail(BALORA_STATUS_INVALID, "sequence classifier: nothing to train; hint: check --targets");
    bl_param *tp = NULL;
    for (int pass = 0; pass < 2; pass++) {
        tp = bl_arena_take(&t->arena, (size_t)n * sizeof *tp);
        t->names = bl_arena_take(&t->arena, (size_t)n * sizeof *t->names);
        t->w = bl_arena_take(&t->arena, (size_t)n * sizeof *t->w);
        t->g = bl_arena_take(&t->arena, (size_t)n * sizeof *t->g);
        t->numel = bl_arena_take(&t->arena, (size_t)n * sizeof *t->numel);
        if (pass == 0) BL_TRY(bl_arena_alloc(&t->arena));
    }
    if (a) bl_lora_trainables(a, tp, n);
    else for (int i = 0; i < n; i++) tp[i] = cm->mods->params[i];
    for (int i = 0; i < n; i++) {
        t->names[i] = tp[i].name;
        /* full fine-tuning: the head's trainable copy when it has one (modules_to_save), else the tensor itself */
        t->w[i] = !a && tp[i].train_data ? tp[i].train_data : tp[i].data;
        t->g[i] = tp[i].grad;
        t->numel[i] = tp[i].numel;
        if (!t->w[i] || !t->g[i]) return bl_fail(BALORA_STATUS_INTERNAL, "classifier tensor '%s' has no data or gradient", t->names[i]);
    }
    t->n = n;
    BL_TRY(bl_clsm_run_init(cm, max_B, max_T));
    t->iface = (bl_train_model){.self = t, .n_out = cm->num_labels, .n_params = n, .names = t->names, .w = t->w, .g = t->g,
                                .numel = t->numel, .forward = cls_forward, .backward = cls_backward, .save = cls_save};
    return BALORA_STATUS_OK;
}

void bl_train_cls_free(bl_train_cls *t) { bl_arena_free(&t->arena); memset(t, 0, sizeof *t); }

balora_status bl_train_data_seqcls(bl_train_data *d, const bl_seqcls_set *s) {
    memset(d, 0, sizeof *d);
    d->kind = BL_TRAIN_LABELS_CLASS;
    int64_t n = s->n, tot = 0;
    for (int64_t i = 0; i < n; i++) tot += s->len[i];
    for (int pass = 0; pass < 2; pass++) {
        d->off = bl_arena_take(&d->arena, (size_t)(n + 1) * sizeof *d->off);             /* [n + 1] */
        d->ids = bl_arena_take(&d->arena, (size_t)(tot ? tot : 1) * sizeof *d->ids);      /* [tot] */
        d->types = bl_arena_take(&d->arena, (size_t)(tot ? tot : 1) * sizeof *d->types);  /* [tot] */
        d->trained = bl_arena_take(&d->arena, (size_t)(n ? n : 1) * sizeof *d->trained);  /* [n] */
        if (s->regression) d->target = bl_arena_take(&d->arena, (size_t)(n ? n : 1) * sizeof *d->target);
        else d->cls_label = bl_arena_take(&d->arena, (size_t)(n ? n : 1) * sizeof *d->cls_label);
        if (pass == 0) BL_TRY(bl_arena_alloc(&d->arena));
    }
    int64_t o = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t L = s->len[i];
        d->off[i] = o;
        memcpy(d->ids + o, s->ids + i * s->max_len, (size_t)L * sizeof(int32_t));
        memcpy(d->types + o, s->types + i * s->max_len, (size_t)L * sizeof(int8_t));
        if (s->regression) d->target[i] = s->targets[i];
        else d->cls_label[i] = s->labels[i];
        d->trained[i] = 1;
        if (L > d->max_len) d->max_len = L;
        o += L;
    }
    d->off[n] = o;
    d->n = n;
    d->total_trained = n;
    return BALORA_STATUS_OK;
}
