/* The lab's encoder (NLU) arm: MLM pre-training, sequence-classification fine-tuning of the
 * REVIEW task with every method x seed, scores (nlu.h). */
#include "lab/nlu.h"
#include "lab/run.h"
#include "lab/keep.h"
#include "lab/tsne.h"
#include "adapters/lora.h"
#include "encoders/clsmodel.h"
#include "encoders/mlm.h"
#include "method/reg.h"
#include "ops/ops.h"
#include "method/pissa_model.h"
#include "train/balora.h"
#include "train/cls.h"
#include "train/mlm.h"
#include "train/optim.h"
#include "train/progress.h"
#include "train/trainer.h"
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NLU_MAX_LEN 128
#define NLU_EVAL_B 64

const char *bl_nlu_method_name(bl_nlu_method m) {
    static const char *const n[BL_NLU_M_COUNT] = {"full", "lora", "pissa", "ba-lora"};
    return (unsigned)m < BL_NLU_M_COUNT ? n[m] : "?";
}
const char *bl_nlu_metric_key(bl_nlu_metric k) {
    static const char *const n[BL_NLU_METRIC_COUNT] = {"acc_id", "acc_ood", "inherit", "final_loss"};
    return (unsigned)k < BL_NLU_METRIC_COUNT ? n[k] : "?";
}
const char *bl_nlu_metric_label(bl_nlu_metric k) {
    static const char *const n[BL_NLU_METRIC_COUNT] = {"ID acc", "OOD acc", "inherit", "final loss"};
    return (unsigned)k < BL_NLU_METRIC_COUNT ? n[k] : "?";
}

/* ------------------------------------------------------------------ presets (data) */

static const bl_lab_nlu_preset g_nlu_presets[] = {
    {.name = "nlu",
     .description = "the encoder arm: 2-layer x 64 BERT-shaped encoder pre-trained by masked-LM on the demo's corpus "
                    "(imbalance 4:1, cue agreement 0.9), then review sentiment classification with full / LoRA / PiSSA / "
                    "BA-LoRA x 3 seeds x 150 steps",
     .corpus_seed = 2024, .n_pre_arith = 3000, .n_pre_fact = 1500, .n_pre_review = 6000, .n_ft = 1000, .n_test = 200,
     .imbalance = 4.0, .cue_frac = 0.5, .cue_agree = 0.9,
     .layers = 2, .hidden = 64, .heads = 4, .intermediate = 128,
     .pre_steps = 1500, .pre_batch = 16, .mask_copies = 4, .mask_prob = 0.15, .pre_lr = 2e-3, .pre_warmup_ratio = 0.05,
     .pre_weight_decay = 0.01, .pre_seed = 7,
     .ft_steps = 150, .ft_batch = 16, .lr_adapter = 3e-3, .rank = 4, .alpha_per_rank = 1.0, .targets = "all-linear",
     .n_seeds = 3},
    {.name = "nlu-mini",
     .description = "a miniature run of the encoder arm for tests (1 layer x 16, a few steps; the numbers mean nothing)",
     .corpus_seed = 5, .n_pre_arith = 100, .n_pre_fact = 50, .n_pre_review = 300, .n_ft = 40, .n_test = 40,
     .imbalance = 3.0, .cue_frac = 0.5, .cue_agree = 0.9,
     .layers = 1, .hidden = 16, .heads = 2, .intermediate = 32,
     .pre_steps = 60, .pre_batch = 8, .mask_copies = 2, .mask_prob = 0.15, .pre_lr = 5e-3, .pre_warmup_ratio = 0.0,
     .pre_weight_decay = 0.0, .pre_seed = 3,
     .ft_steps = 4, .ft_batch = 8, .lr_adapter = 3e-3, .rank = 2, .alpha_per_rank = 1.0, .targets = "all-linear",
     .n_seeds = 2},
};

int bl_lab_nlu_preset_count(void) { return (int)(sizeof g_nlu_presets / sizeof g_nlu_presets[0]); }
const bl_lab_nlu_preset *bl_lab_nlu_preset_at(int i) { return i >= 0 && i < bl_lab_nlu_preset_count() ? &g_nlu_presets[i] : NULL; }
const bl_lab_nlu_preset *bl_lab_nlu_preset_find(const char *name) {
    for (int i = 0; name && i < bl_lab_nlu_preset_count(); i++)
        if (!strcmp(g_nlu_presets[i].name, name)) return &g_nlu_presets[i];
    return NULL;
}

void bl_lab_nlu_preset_corpus(const bl_lab_nlu_preset *p, bl_lab_corpus_config *o) {
    bl_lab_corpus_config_default(o);
    o->seed = p->corpus_seed;
    o->n_pre_arith = p->n_pre_arith;
    o->n_pre_fact = p->n_pre_fact;
    o->n_pre_review = p->n_pre_review;
    o->n_ft = p->n_ft;
    o->n_test = p->n_test;
    o->noise = 0.0; /* the arm's task is REVIEW: noise only touches ARITH / FACT */
    o->imbalance = p->imbalance;
    o->cue_frac = p->cue_frac;
    o->cue_agree = p->cue_agree;
}

static void enc_config(const bl_lab_nlu_preset *p, int64_t vocab, bl_enc_config *c) {
    bl_enc_config_defaults(c, BL_ENC_BERT);
    c->vocab_size = vocab;
    c->hidden = p->hidden;
    c->n_layer = p->layers;
    c->n_head = p->heads;
    c->head_dim = p->hidden / p->heads;
    c->intermediate = p->intermediate;
    c->max_pos = NLU_MAX_LEN;
    c->type_vocab = 2;
    c->pad_id = BL_LAB_TOK_PAD;
    c->init_range = 0.02;
    c->num_labels = 2;
    c->regression = false;
}

/* ------------------------------------------------------------------ MLM pre-training */

/* Static BERT masking of every document, mask_copies times: labels (kind TOKEN, scored by
 * bl_objective_masked_lm) hold the original token at each masked position; <bos> (position 0) and
 * the last token (<eos>) are never masked. */
static balora_status dataset_mlm(const bl_lab_corpus *c, const bl_lab_nlu_preset *p, bl_train_data *d, int64_t *n_masked) {
    memset(d, 0, sizeof *d);
    d->kind = BL_TRAIN_LABELS_TOKEN;
    int64_t nd = c->n_docs, n = nd * p->mask_copies, tot = 0;
    for (int64_t i = 0; i < nd; i++) {
        int64_t L = c->doc_off[i + 1] - c->doc_off[i];
        tot += L < NLU_MAX_LEN ? L : NLU_MAX_LEN;
    }
    tot *= p->mask_copies;
    for (int pass = 0; pass < 2; pass++) {
        d->off = bl_arena_take(&d->arena, (size_t)(n + 1) * sizeof *d->off);         /* [n + 1] */
        d->ids = bl_arena_take(&d->arena, (size_t)(tot ? tot : 1) * sizeof *d->ids);   /* [tot] */
        d->labels = bl_arena_take(&d->arena, (size_t)(tot ? tot : 1) * sizeof *d->labels);
        d->trained = bl_arena_take(&d->arena, (size_t)(n ? n : 1) * sizeof *d->trained);
        if (pass == 0) BL_TRY(bl_arena_alloc(&d->arena));
    }
    bool *ok = bl_malloc(sizeof(bool) * NLU_MAX_LEN);          /* [max_len] maskable */
    if (!ok) return BALORA_STATUS_NOMEM;
    bl_rng rng;
    bl_rng_seed(&rng, p->pre_seed ^ 0x4d4c4d6d61736bULL);
    int32_t mask_id = c->vocab_size;
    int64_t o = 0, k = 0;
    *n_masked = 0;
    for (int32_t cp = 0; cp < p->mask_copies; cp++)
        for (int64_t i = 0; i < nd; i++, k++) {
            int64_t L = c->doc_off[i + 1] - c->doc_off[i];
            if (L > NLU_MAX_LEN) L = NLU_MAX_LEN;
            int32_t *ids = d->ids + o, *lab = d->labels + o;
            memcpy(ids, c->pre_ids + c->doc_off[i], (size_t)L * sizeof(int32_t));
            for (int64_t j = 0; j < L; j++) ok[j] = j > 0 && j < L - 1;
            int64_t picked = bl_mlm_mask(ids, lab, ok, L, p->mask_prob, mask_id, BL_LAB_TOK_UNK + 1, c->vocab_size, &rng);
            if (picked == 0 && L > 2) { /* every example trains at least one position */
                int64_t j = 1 + (int64_t)bl_rng_below(&rng, (uint64_t)(L - 2));
                lab[j] = ids[j];
                ids[j] = mask_id;
                picked = 1;
            }
            d->off[k] = o;
            d->trained[k] = picked;
            d->total_trained += picked;
            *n_masked += picked;
            if (L > d->max_len) d->max_len = L;
            o += L;
        }
    d->n = n;
    d->off[n] = o;
    free(ok);
    return BALORA_STATUS_OK;
}

/* The fill-in probe of the pre-trained model on REVIEW set s (nlu.h: bl_lab_nlu_pre_result.probe). */
static balora_status mlm_probe_set(bl_train_mlm *mm, const bl_lab_corpus *c, const bl_lab_set *s, int64_t maxB, int64_t maxT,
                                   int64_t *ids, int64_t *mask, int32_t *pred, bl_lab_score *sc) {
    int32_t dot = bl_lab_word_id(c, "."), mask_id = c->vocab_size;
    const int32_t *cls = c->class_token[BL_LAB_TASK_REVIEW];
    int64_t V = mm->enc->cfg.vocab_size;
    for (int64_t i0 = 0; i0 < s->n_items; i0 += maxB) {
        int64_t nb = s->n_items - i0 < maxB ? s->n_items - i0 : maxB, T = 0;
        for (int64_t i = 0; i < nb; i++) if (s->items[i0 + i].prompt_len + 3 > T) T = s->items[i0 + i].prompt_len + 3;
        if (T > maxT) return bl_fail(BALORA_STATUS_INVALID, "lab nlu probe: a review of %lld tokens exceeds the run's %lld",
                                     (long long)T, (long long)maxT);
        for (int64_t i = 0; i < nb; i++) {
            const bl_lab_item *it = &s->items[i0 + i];
            int64_t L = it->prompt_len;
            for (int64_t t = 0; t < T; t++) {
                int64_t v = t < L ? s->ids[it->off + t] : t == L ? mask_id : t == L + 1 ? dot : t == L + 2 ? BL_LAB_TOK_EOS : BL_LAB_TOK_PAD;
                ids[i * T + t] = v;
                mask[i * T + t] = t < L + 3;
            }
        }
        BL_TRY(bl_train_mlm_logits(mm, nb, T, ids, mask));
        for (int64_t i = 0; i < nb; i++) {
            const float *z = mm->logits + (i * T + s->items[i0 + i].prompt_len) * V;
            pred[i0 + i] = z[cls[1]] > z[cls[0]] ? cls[1] : cls[0];
        }
    }
    return bl_lab_score_set(s, pred, sc);
}

static balora_status mlm_probe(bl_train_mlm *mm, const bl_lab_corpus *c, int64_t maxB, int64_t maxT, double *val) {
    const bl_lab_set *sets = c->sets[BL_LAB_TASK_REVIEW];
    int64_t n = 1;
    for (int sp = 0; sp < BL_LAB_SPLIT_COUNT; sp++) if (sets[sp].n_items > n) n = sets[sp].n_items;
    int64_t *ids = bl_malloc(sizeof(int64_t) * (size_t)(maxB * maxT));  /* [maxB, maxT] */
    int64_t *mask = bl_malloc(sizeof(int64_t) * (size_t)(maxB * maxT)); /* [maxB, maxT] */
    int32_t *pred = bl_malloc(sizeof(int32_t) * (size_t)n);             /* [n] */
    balora_status st = !ids || !mask || !pred ? BALORA_STATUS_NOMEM : BALORA_STATUS_OK;
    bl_lab_score sc;
    if (!st) st = mlm_probe_set(mm, c, &sets[BL_LAB_SPLIT_TEST_ID], maxB, maxT, ids, mask, pred, &sc);
    if (!st) val[BL_NLU_ACC_ID] = sc.accuracy;
    if (!st) st = mlm_probe_set(mm, c, &sets[BL_LAB_SPLIT_TEST_OOD], maxB, maxT, ids, mask, pred, &sc);
    if (!st) val[BL_NLU_ACC_OOD] = sc.accuracy;
    if (!st) st = mlm_probe_set(mm, c, &sets[BL_LAB_SPLIT_AFFECTED], maxB, maxT, ids, mask, pred, &sc);
    if (!st) val[BL_NLU_INHERIT] = sc.inheritance;
    val[BL_NLU_FINAL_LOSS] = NAN;
    free(ids); free(mask); free(pred);
    return st;
}

typedef struct curve_rec { float *curve; int64_t cap; bl_lab_nlu_progress_fn fn; void *user; } curve_rec;
static void on_pre_step(const bl_progress *p, void *user) {
    curve_rec *cr = user;
    if (cr->curve && p->step >= 1 && p->step <= cr->cap) cr->curve[p->step - 1] = (float)p->task_loss;
    int64_t every = p->total_steps >= 10 ? p->total_steps / 10 : 1;
    if (cr->fn && (p->step % every == 0 || p->final)) {
        char line[160], el[32], eta[32];
        bl_format_duration(p->elapsed_s, el, sizeof el);
        bl_format_duration(p->eta_s, eta, sizeof eta);
        snprintf(line, sizeof line, "nlu: masked-LM pre-training step %lld/%lld | loss %.4f | %s elapsed | ETA %s (pre-training)",
                 (long long)p->step, (long long)p->total_steps, p->task_loss, el, eta);
        cr->fn(line, cr->user);
    }
}

static double window_mean(const float *x, int64_t n, bool last) {
    int64_t w = n / 10 > 0 ? n / 10 : 1;
    double s = 0;
    for (int64_t i = 0; i < w; i++) s += x[last ? n - w + i : i];
    return s / (double)w;
}

static balora_status check_preset(const bl_lab_nlu_preset *p) {
    if (p->layers < 1 || p->hidden < 4 || p->heads < 1 || p->hidden % p->heads || p->intermediate < 1 || p->pre_steps < 2 ||
        p->pre_batch < 1 || p->mask_copies < 1 || !(p->mask_prob > 0 && p->mask_prob < 1) || !(p->pre_lr > 0) ||
        p->ft_steps < 2 || p->ft_batch < 1 || !(p->lr_adapter > 0) || p->rank < 1 || !(p->alpha_per_rank > 0) || !p->targets)
        return bl_fail(BALORA_STATUS_INVALID, "lab nlu preset '%s': need layers >= 1, hidden divisible by heads, intermediate "
                       ">= 1, pre_steps >= 2, 0 < mask_prob < 1, ft_steps >= 2, rank >= 1, positive learning rates",
                       p->name ? p->name : "?");
    return BALORA_STATUS_OK;
}

balora_status bl_lab_nlu_pretrain(const bl_lab_corpus *c, const bl_lab_nlu_preset *p, const char *out_dir, float *loss_curve,
                                  bl_lab_nlu_progress_fn progress, void *user, bl_lab_nlu_pre_result *res) {
    memset(res, 0, sizeof *res);
    BL_TRY(check_preset(p));
    if (c->n_docs < 1) return bl_fail(BALORA_STATUS_INVALID, "lab nlu: the corpus has no pre-training documents");
    bl_enc_config ec;
    enc_config(p, c->vocab_size + 1, &ec); /* + [MASK] */
    bl_encoder enc;
    memset(&enc, 0, sizeof enc);
    bl_train_data ds;
    memset(&ds, 0, sizeof ds);
    bl_train_mlm mm;
    memset(&mm, 0, sizeof mm);
    float *curve = loss_curve ? loss_curve : bl_calloc((size_t)p->pre_steps, sizeof(float)); /* [pre_steps] */
    if (!curve) return BALORA_STATUS_NOMEM;
    balora_status st = bl_enc_init_random(&enc, &ec, p->pre_seed);
    if (!st) st = dataset_mlm(c, p, &ds, &res->n_masked);
    if (!st) st = bl_train_mlm_init(&mm, &enc, p->pre_batch, ds.max_len, p->pre_seed);
    if (!st) {
        bl_train_cfg tc;
        bl_lab_pretrain_train_cfg(&tc, p->pre_lr, p->pre_weight_decay, p->pre_warmup_ratio, p->pre_batch, p->pre_steps,
                                  p->pre_seed, NLU_MAX_LEN);
        curve_rec cr = {curve, p->pre_steps, progress, user};
        tc.objective = &bl_objective_masked_lm;
        tc.progress = on_pre_step;
        tc.progress_user = &cr;
        bl_train_result tr;
        st = bl_train_run(&tc, &mm.iface, &ds, NULL, &tr);
        if (!st) {
            res->steps = tr.steps;
            res->seconds = tr.seconds;
            res->n_examples = ds.n;
            res->n_params = bl_enc_n_params(&enc) + mm.head.numel[0] + mm.head.numel[1] + mm.head.numel[2] +
                            mm.head.numel[3] + mm.head.numel[4];
            res->first_loss = window_mean(curve, p->pre_steps, false);
            res->last_loss = window_mean(curve, p->pre_steps, true);
        }
        if (!st) st = mlm_probe(&mm, c, p->pre_batch, ds.max_len, res->probe);
    }
    if (!st) st = bl_mlm_save(&mm.head, out_dir);
    bl_train_mlm_free(&mm);
    bl_train_data_free(&ds);
    bl_enc_free(&enc);
    if (!loss_curve) free(curve);
    return st;
}

/* ------------------------------------------------------------------ fine-tuning and scores */

/* Rows [i0, i0 + nb) of set s (or of perm) as a right-padded [nb, T] batch. */
static int64_t make_batch(const bl_lab_set *s, const int64_t *perm, int64_t i0, int64_t nb, int64_t *ids, int64_t *mask,
                          int64_t *labels) {
    int64_t T = 1;
    for (int64_t i = 0; i < nb; i++) {
        const bl_lab_item *it = &s->items[perm ? perm[i0 + i] : i0 + i];
        if (it->prompt_len > T) T = it->prompt_len;
    }
    for (int64_t i = 0; i < nb; i++) {
        const bl_lab_item *it = &s->items[perm ? perm[i0 + i] : i0 + i];
        for (int64_t t = 0; t < T; t++) {
            bool real = t < it->prompt_len;
            ids[i * T + t] = real ? s->ids[it->off + t] : BL_LAB_TOK_PAD;
            mask[i * T + t] = real;
        }
        if (labels) labels[i] = it->label;
    }
    return T;
}

static balora_status eval_set(bl_clsm *cm, const bl_lab_corpus *c, const bl_lab_set *s, int64_t *ids, int64_t *mask,
                              int32_t *pred, bl_lab_score *sc) {
    cm->train = false;
    for (int64_t i0 = 0; i0 < s->n_items; i0 += NLU_EVAL_B) {
        int64_t nb = s->n_items - i0 < NLU_EVAL_B ? s->n_items - i0 : NLU_EVAL_B;
        int64_t T = make_batch(s, NULL, i0, nb, ids, mask, NULL);
        BL_TRY(bl_clsm_forward(cm, nb, T, ids, mask, NULL, BL_ADAPTER_ON));
        for (int64_t i = 0; i < nb; i++) {
            const float *z = cm->logits + i * 2;
            pred[i0 + i] = c->class_token[BL_LAB_TASK_REVIEW][z[1] > z[0] ? 1 : 0];
        }
    }
    return bl_lab_score_set(s, pred, sc);
}

/* The pooled representation (what the classifier reads) of the first n/2 TEST_ID and the first n/2
 * TEST_OOD REVIEW items into feat [n, C]. */
static balora_status pooled_features(bl_clsm *cm, const bl_lab_corpus *c, int64_t n, int64_t *ids, int64_t *mask, float *feat) {
    const int64_t h = n / 2, C = cm->hidden;
    const int sp[2] = {BL_LAB_SPLIT_TEST_ID, BL_LAB_SPLIT_TEST_OOD};
    cm->train = false;
    for (int q = 0; q < 2; q++) {
        const bl_lab_set *s = &c->sets[BL_LAB_TASK_REVIEW][sp[q]];
        for (int64_t i0 = 0; i0 < h; i0 += NLU_EVAL_B) {
            int64_t nb = h - i0 < NLU_EVAL_B ? h - i0 : NLU_EVAL_B;
            int64_t T = make_batch(s, NULL, i0, nb, ids, mask, NULL);
            BL_TRY(bl_clsm_forward(cm, nb, T, ids, mask, NULL, BL_ADAPTER_ON));
            for (int64_t i = 0; i < nb; i++) BL_TRY(bl_clsm_features(cm, i, -1, false, mask, feat + (q * h + i0 + i) * C));
        }
    }
    return BALORA_STATUS_OK;
}

/* The REVIEW fine-tuning items as a classification dataset: <bos> + prompt -> label (0 / 1). */
static balora_status dataset_cls(const bl_lab_set *s, bl_train_data *d) {
    memset(d, 0, sizeof *d);
    d->kind = BL_TRAIN_LABELS_CLASS;
    int64_t n = s->n_items, tot = 0;
    for (int64_t i = 0; i < n; i++) tot += s->items[i].prompt_len;
    for (int pass = 0; pass < 2; pass++) {
        d->off = bl_arena_take(&d->arena, (size_t)(n + 1) * sizeof *d->off);              /* [n + 1] */
        d->ids = bl_arena_take(&d->arena, (size_t)(tot ? tot : 1) * sizeof *d->ids);       /* [tot] */
        d->cls_label = bl_arena_take(&d->arena, (size_t)(n ? n : 1) * sizeof *d->cls_label); /* [n] */
        d->trained = bl_arena_take(&d->arena, (size_t)(n ? n : 1) * sizeof *d->trained);   /* [n] */
        if (pass == 0) BL_TRY(bl_arena_alloc(&d->arena));
    }
    int64_t o = 0;
    for (int64_t i = 0; i < n; i++) {
        const bl_lab_item *it = &s->items[i];
        d->off[i] = o;
        memcpy(d->ids + o, s->ids + it->off, (size_t)it->prompt_len * sizeof(int32_t));
        d->cls_label[i] = it->label;
        d->trained[i] = 1;
        if (it->prompt_len > d->max_len) d->max_len = it->prompt_len;
        o += it->prompt_len;
    }
    d->off[n] = o;
    d->n = n;
    d->total_trained = n;
    return BALORA_STATUS_OK;
}

/* Per fine-tuning step: the loss curve, and the mid-run t-SNE features. */
typedef struct ft_watch {
    float *curve;
    bl_clsm *cm;
    const bl_lab_corpus *c;
    int64_t n_tsne, *ids, *mask;
    float *mid_feat;          /* NULL: no maps */
    balora_status st;
} ft_watch;

static void ft_on_step(const bl_progress *p, void *user) {
    ft_watch *w = user;
    w->curve[p->step - 1] = (float)p->task_loss;
    if (w->mid_feat && !w->st && p->step == p->total_steps / 2)
        w->st = pooled_features(w->cm, w->c, w->n_tsne, w->ids, w->mask, w->mid_feat);
}

/* One method x seed: load the pre-trained encoder, attach, train ft_steps (the one training loop,
 * src/train/trainer.h), score. val[BL_NLU_METRIC_COUNT]; loss_out [min(ft_steps, BL_NLU_MAX_CURVE)] the
 * per-step loss; feat (or NULL) [BL_NLU_N_SNAP, n_tsne, hidden] the pooled features of the t-SNE items
 * at steps 0, ft_steps / 2 and ft_steps (evaluation only: the training itself is the same with or without them). */
static balora_status finetune_one(const bl_lab_corpus *c, const bl_lab_nlu_preset *p, const char *model_dir, bl_nlu_method meth,
                                  uint64_t seed, double *val, float *loss_out, int64_t n_tsne, float *feat) {
    const bl_lab_set *ft = &c->sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_FT];
    if (ft->n_items < 1) return bl_fail(BALORA_STATUS_INVALID, "lab nlu: no REVIEW fine-tuning items; hint: n_ft >= 1");
    int64_t maxT = 1, maxN = ft->n_items;
    for (int sp = 0; sp < BL_LAB_SPLIT_COUNT; sp++) {
        const bl_lab_set *s = &c->sets[BL_LAB_TASK_REVIEW][sp];
        if (s->n_items > maxN) maxN = s->n_items;
        for (int64_t i = 0; i < s->n_items; i++) if (s->items[i].prompt_len > maxT) maxT = s->items[i].prompt_len;
    }
    int64_t B = p->ft_batch < ft->n_items ? p->ft_batch : ft->n_items, BE = B > NLU_EVAL_B ? B : NLU_EVAL_B, NL = 2;
    balora_status st = BALORA_STATUS_OK;
    bl_clsm cm;
    bl_encoder enc;
    bl_adapter ad;
    bl_train_cls tc;
    bl_train_data ds;
    bl_train_balora hook;
    memset(&cm, 0, sizeof cm); memset(&enc, 0, sizeof enc); memset(&ad, 0, sizeof ad);
    memset(&tc, 0, sizeof tc); memset(&ds, 0, sizeof ds); memset(&hook, 0, sizeof hook);
    float *curve = NULL;
    int64_t *ids = NULL, *mask = NULL;
    int32_t *pred = NULL;
    bl_enc_load_opts lo = BL_ENC_LOAD_DEFAULT;
    lo.num_labels = NL;
    lo.seed = seed;
    if ((st = bl_enc_load(&enc, model_dir, &lo))) goto done;
    bl_clsm_wrap_encoder(&cm, &enc);
    if (meth == BL_NLU_FULL) {
        if ((st = bl_enc_heads_trainable(&enc))) goto done;
    } else {
        bl_lora_config lc;
        bl_lora_config_default(&lc);
        lc.r = p->rank;
        lc.alpha = p->alpha_per_rank * p->rank;
        if ((st = bl_lora_config_set_targets(&lc, p->targets))) goto done;
        if (meth != BL_NLU_LORA) { lc.init = BL_LORA_INIT_PISSA; lc.pissa_niter = -1; lc.keep_initial = true; }
        if ((st = bl_lora_init(&ad, &enc.mods, &lc, seed))) goto done;
        if (meth != BL_NLU_LORA && (st = bl_pissa_init_adapter(&ad, -1, seed))) goto done;
    }
    /* the run serves training (B) and the evaluation batches (BE) */
    if ((st = bl_train_cls_init(&tc, &cm, meth == BL_NLU_FULL ? NULL : &ad, BE, maxT))) goto done;
    if (meth == BL_NLU_PISSA || meth == BL_NLU_BALORA) { tc.pissa = true; tc.teacher_mode = BL_ADAPTER_INITIAL; }
    if ((st = dataset_cls(ft, &ds))) goto done;
    ids = bl_malloc(sizeof(int64_t) * (size_t)(BE * maxT));         /* [BE, maxT] */
    mask = bl_malloc(sizeof(int64_t) * (size_t)(BE * maxT));        /* [BE, maxT] */
    pred = bl_malloc(sizeof(int32_t) * (size_t)maxN);               /* [maxN] */
    curve = bl_malloc(sizeof(float) * (size_t)p->ft_steps);         /* [ft_steps] */
    if (!ids || !mask || !pred || !curve) { st = BALORA_STATUS_NOMEM; goto done; }
    const bl_extra_loss *extra = NULL;
    if (meth == BL_NLU_BALORA) {
        /* the teacher: the original model (W_res + s B0 A0) with the head's initial weights */
        bl_reg_config reg;
        bl_reg_config_default(&reg, BL_REG_TASK_NLU); /* paper-v1 NLU lambdas */
        if ((st = bl_train_balora_init(&hook, &reg, &bl_objective_seqcls, B, NL))) goto done;
        extra = &hook.iface;
    }
    int64_t total = p->ft_steps;
    const int64_t FC = n_tsne * cm.hidden;
    if (feat && (st = pooled_features(&cm, c, n_tsne, ids, mask, feat))) goto done;
    bl_train_cfg tcfg;
    bl_train_cfg_default(&tcfg);
    tcfg.objective = &bl_objective_seqcls;
    tcfg.adam.lr = meth == BL_NLU_FULL ? p->lr_adapter / 10.0 : p->lr_adapter;
    tcfg.schedule = BL_SCHEDULE_LINEAR;
    tcfg.warmup_ratio = 0.06;
    tcfg.max_grad_norm = 1.0;
    tcfg.batch_size = B;
    tcfg.grad_accum = 1;
    tcfg.max_steps = total;
    tcfg.seed = seed;
    tcfg.max_len = maxT;
    tcfg.pad_id = BL_LAB_TOK_PAD;
    ft_watch fw = {.curve = curve, .cm = &cm, .c = c, .n_tsne = n_tsne, .ids = ids, .mask = mask, .mid_feat = feat ? feat + FC : NULL};
    tcfg.progress = ft_on_step;
    tcfg.progress_user = &fw;
    bl_train_result trr;
    if ((st = bl_train_run(&tcfg, &tc.iface, &ds, extra, &trr))) {
        bl_fail_prefix(st, "lab nlu: %s", bl_nlu_method_name(meth));
        goto done;
    }
    if ((st = fw.st)) goto done;
    if (feat && (st = pooled_features(&cm, c, n_tsne, ids, mask, feat + 2 * FC))) goto done;
    memcpy(loss_out, curve, sizeof(float) * (size_t)(total < BL_NLU_MAX_CURVE ? total : BL_NLU_MAX_CURVE));
    val[BL_NLU_FINAL_LOSS] = window_mean(curve, total, true);
    const bl_lab_set *sets = c->sets[BL_LAB_TASK_REVIEW];
    bl_lab_score sc;
    if ((st = eval_set(&cm, c, &sets[BL_LAB_SPLIT_TEST_ID], ids, mask, pred, &sc))) goto done;
    val[BL_NLU_ACC_ID] = sc.accuracy;
    if ((st = eval_set(&cm, c, &sets[BL_LAB_SPLIT_TEST_OOD], ids, mask, pred, &sc))) goto done;
    val[BL_NLU_ACC_OOD] = sc.accuracy;
    if ((st = eval_set(&cm, c, &sets[BL_LAB_SPLIT_AFFECTED], ids, mask, pred, &sc))) goto done;
    val[BL_NLU_INHERIT] = sc.inheritance;
done:
    free(ids); free(mask); free(pred); free(curve);
    bl_train_balora_free(&hook);
    bl_train_data_free(&ds);
    bl_train_cls_free(&tc);
    bl_clsm_free(&cm);
    bl_lora_free(&ad);
    bl_enc_free(&enc);
    return st;
}

/* t-SNE maps out [BL_NLU_N_SNAP][BL_NLU_TSNE_POINTS][2] of feat [BL_NLU_N_SNAP, n, C] (the decoder arm's settings). */
static balora_status tsne_maps(const float *feat, int64_t n, int64_t C, float *out) {
    bl_tsne_config tc;
    bl_tsne_config_default(&tc);
    tc.perplexity = n > 31 ? 10.0 : (double)(n - 1) / 3.0;
    tc.n_iter = BL_NLU_TSNE_ITERS;
    tc.seed = 1;
    for (int s = 0; s < BL_NLU_N_SNAP; s++) {
        bl_tsne_result r;
        BL_TRY(bl_tsne_run(feat + (int64_t)s * n * C, n, C, &tc, &r));
        memcpy(out + (int64_t)s * BL_NLU_TSNE_POINTS * 2, r.y, (size_t)(n * 2) * sizeof(float));
        bl_tsne_result_free(&r);
    }
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ finished runs kept on disk */

/* OUT/runs/ (src/lab/keep.h): nlu.json (what the runs depend on), nlu_pretrain.json (with the encoder in
 * OUT/nlu_model) and nlu_ft_METHOD_seedS.json, each written atomically as its run finishes. */
static balora_status nlu_fingerprint(const bl_lab_nlu_preset *p, int32_t ns, const char *runs_dir) {
    cJSON *f = cJSON_CreateObject();
    if (!f) return BALORA_STATUS_NOMEM;
    cJSON_AddNumberToObject(f, "format", 1);
    cJSON_AddStringToObject(f, "preset", p->name);
    cJSON_AddNumberToObject(f, "seeds", ns);
    cJSON_AddNumberToObject(f, "threads", balora_threads_get());
    char b[64];
    snprintf(b, sizeof b, "%llu / %llu", (unsigned long long)p->corpus_seed, (unsigned long long)p->pre_seed);
    cJSON_AddStringToObject(f, "corpus_seed / pre_seed", b);
    const struct { const char *k; double v; } nums[] = {
        {"n_pre_arith", (double)p->n_pre_arith}, {"n_pre_fact", (double)p->n_pre_fact}, {"n_pre_review", (double)p->n_pre_review},
        {"n_ft", (double)p->n_ft}, {"n_test", (double)p->n_test}, {"imbalance", p->imbalance}, {"cue_frac", p->cue_frac},
        {"cue_agree", p->cue_agree}, {"layers", p->layers}, {"hidden", p->hidden}, {"heads", p->heads},
        {"intermediate", p->intermediate}, {"pre_steps", (double)p->pre_steps}, {"pre_batch", (double)p->pre_batch},
        {"mask_copies", p->mask_copies}, {"mask_prob", p->mask_prob}, {"pre_lr", p->pre_lr},
        {"pre_warmup_ratio", p->pre_warmup_ratio}, {"pre_weight_decay", p->pre_weight_decay}, {"ft_steps", (double)p->ft_steps},
        {"ft_batch", (double)p->ft_batch}, {"lr_adapter", p->lr_adapter}, {"rank", p->rank}, {"alpha_per_rank", p->alpha_per_rank}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) cJSON_AddNumberToObject(f, nums[i].k, nums[i].v);
    cJSON_AddStringToObject(f, "targets", p->targets ? p->targets : "");
    return bl_lab_keep_fingerprint(f, runs_dir, "nlu.json");
}

/* One fine-tuning run's outcome: val [BL_NLU_METRIC_COUNT], loss [n_loss], map [BL_NLU_N_SNAP, BL_NLU_TSNE_POINTS, 2] or NULL. */
static balora_status nlu_ft_record(bool write, const char *path, double *val, float *loss, int64_t n_loss, float *map,
                                   double *seconds) {
    const size_t map_bytes = sizeof(float) * BL_NLU_N_SNAP * BL_NLU_TSNE_POINTS * 2;
    if (write) {
        cJSON *o = cJSON_CreateObject();
        if (!o) return BALORA_STATUS_NOMEM;
        balora_status st = bl_lab_keep_put(o, "val", val, BL_NLU_METRIC_COUNT * sizeof(double));
        if (!st) st = bl_lab_keep_put(o, "loss", loss, (size_t)n_loss * sizeof(float));
        if (!st && map) st = bl_lab_keep_put(o, "tsne", map, map_bytes);
        if (st) { cJSON_Delete(o); return st; }
        cJSON_AddNumberToObject(o, "seconds", *seconds);
        return bl_lab_keep_write(o, path);
    }
    cJSON *o = NULL;
    BL_TRY(bl_json_load(path, &o));
    balora_status st = bl_lab_keep_get(o, path, "val", val, BL_NLU_METRIC_COUNT * sizeof(double));
    if (!st) st = bl_lab_keep_get(o, path, "loss", loss, (size_t)n_loss * sizeof(float));
    if (!st && map) st = bl_lab_keep_get(o, path, "tsne", map, map_bytes);
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "seconds");
    *seconds = cJSON_IsNumber(sec) ? sec->valuedouble : 0;
    cJSON_Delete(o);
    return st;
}

/* The message of an interrupted encoder-arm job. */
static balora_status nlu_stopped(const char *what, bool mid_run, int64_t kept, const char *runs_dir) {
    return bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d) %s %s%s; %lld finished run(s) are kept in %s; hint: run the "
                   "same command again to continue (finished runs are skipped)", balora_interrupted(), mid_run ? "during" : "after",
                   what, mid_run ? ", which is not kept (runs are not checkpointed mid-way) and is redone by the rerun" : "",
                   (long long)kept, runs_dir);
}

balora_status bl_lab_nlu_run(const bl_lab_nlu_preset *p, const char *out_dir, int32_t n_seeds, bl_lab_nlu_progress_fn progress,
                             void *user, bl_lab_nlu_results *res) {
    memset(res, 0, sizeof *res);
    BL_TRY(check_preset(p));
    if (!out_dir) return bl_fail(BALORA_STATUS_INVALID, "lab nlu: an output folder is required");
    int32_t ns = n_seeds > 0 ? n_seeds : p->n_seeds;
    if (ns < 1 || ns > BL_NLU_MAX_SEEDS)
        return bl_fail(BALORA_STATUS_INVALID, "lab nlu: %d seeds; hint: 1..%d", (int)ns, BL_NLU_MAX_SEEDS);
    res->preset = *p;
    res->preset.n_seeds = ns;
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(res->started, sizeof res->started, "%Y-%m-%d %H:%M:%S", &tmv);
    double t0 = bl_time_now();
    bl_lab_corpus_config cc;
    bl_lab_nlu_preset_corpus(p, &cc);
    bl_lab_corpus c;
    BL_TRY(bl_lab_corpus_generate(&cc, &c));
    res->counts = c.counts;
    res->vocab = c.vocab_size + 1;
    res->n_ft = c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_FT].n_items;
    res->n_id = c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_ID].n_items;
    res->n_ood = c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_OOD].n_items;
    res->n_affected = c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_AFFECTED].n_items;
    char model_dir[4200], runs[4200], rec[4400], weights[4400], what[96], line[512];
    int64_t kept = 0;
    balora_status st = bl_path_join(model_dir, sizeof model_dir, out_dir, "nlu_model");
    if (!st) st = bl_path_join(runs, sizeof runs, out_dir, "runs");
    if (!st) st = bl_mkdir_p(out_dir);
    if (!st) st = nlu_fingerprint(p, ns, runs);
    if (!st) st = bl_path_join(rec, sizeof rec, runs, "nlu_pretrain.json");
    if (!st) st = bl_path_join(weights, sizeof weights, model_dir, "model.safetensors");
    if (!st && bl_file_exists(rec) && bl_file_exists(weights)) { /* kept by an earlier, interrupted job */
        cJSON *o = NULL;
        st = bl_json_load(rec, &o);
        if (!st) st = bl_lab_keep_get(o, rec, "result", &res->pre, sizeof res->pre);
        cJSON_Delete(o);
        if (!st) kept++;
        if (!st && progress) {
            snprintf(line, sizeof line, "nlu: pre-training kept from an earlier job (%.200s)", rec);
            progress(line, user);
        }
    } else if (!st) {
        if (progress) {
            snprintf(line, sizeof line, "nlu: masked-LM pre-training, %lld steps", (long long)p->pre_steps);
            progress(line, user);
        }
        st = bl_lab_nlu_pretrain(&c, p, model_dir, NULL, progress, user, &res->pre);
        if (st == BALORA_STATUS_INTERRUPTED) st = nlu_stopped("the masked-LM pre-training", true, 0, runs);
        cJSON *o = st ? NULL : cJSON_CreateObject();
        if (!st && !o) st = BALORA_STATUS_NOMEM;
        if (!st) st = bl_lab_keep_put(o, "result", &res->pre, sizeof res->pre);
        if (!st) { st = bl_lab_keep_write(o, rec); o = NULL; }
        cJSON_Delete(o);
        if (!st) kept++;
    }
    if (!st && progress) {
        snprintf(line, sizeof line, "nlu: pre-trained in %.1f s, MLM loss %.3f -> %.3f; fill-in probe: ID %.3f, OOD %.3f, "
                 "inherit %.3f", res->pre.seconds, res->pre.first_loss, res->pre.last_loss, res->pre.probe[BL_NLU_ACC_ID],
                 res->pre.probe[BL_NLU_ACC_OOD], res->pre.probe[BL_NLU_INHERIT]);
        progress(line, user);
    }
    for (int s = 0; s < ns; s++) res->seeds[s] = 1000u + (uint64_t)s;
    /* t-SNE items: the first h TEST_ID and the first h TEST_OOD reviews */
    int64_t h = BL_NLU_TSNE_POINTS / 2;
    if (h > res->n_id) h = res->n_id;
    if (h > res->n_ood) h = res->n_ood;
    res->n_tsne = h >= 4 ? 2 * h : 0;
    for (int64_t i = 0; i < res->n_tsne / 2; i++) {
        res->tsne_cls[i] = c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_ID].items[i].label;
        res->tsne_cls[h + i] = 2 + c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_OOD].items[i].label;
    }
    res->snap_step[0] = 0;
    res->snap_step[1] = p->ft_steps / 2;
    res->snap_step[2] = p->ft_steps;
    float *feat = NULL; /* [BL_NLU_N_SNAP, n_tsne, hidden] */
    if (!st && res->n_tsne) {
        feat = bl_malloc(sizeof(float) * (size_t)(BL_NLU_N_SNAP * res->n_tsne * p->hidden));
        if (!feat) st = BALORA_STATUS_NOMEM;
    }
    for (int m = 0; m < BL_NLU_M_COUNT && !st; m++) {
        double tm0 = bl_time_now();
        for (int s = 0; s < ns && !st; s++) {
            int map = m == BL_NLU_LORA ? 0 : m == BL_NLU_BALORA ? 1 : -1;
            bool ts = s == 0 && map >= 0 && feat;
            int64_t n_loss = p->ft_steps < BL_NLU_MAX_CURVE ? p->ft_steps : BL_NLU_MAX_CURVE;
            float *ts_map = ts ? &res->tsne[map][0][0][0] : NULL;
            double sec = 0, tr0 = bl_time_now();
            snprintf(what, sizeof what, "%s seed %llu", bl_nlu_method_name((bl_nlu_method)m), (unsigned long long)res->seeds[s]);
            snprintf(rec, sizeof rec, "%s/nlu_ft_%s_seed%llu.json", runs, bl_nlu_method_name((bl_nlu_method)m),
                     (unsigned long long)res->seeds[s]);
            if (bl_file_exists(rec)) { /* kept by an earlier, interrupted job */
                st = nlu_ft_record(false, rec, res->val[m][s], res->loss[m][s], n_loss, ts_map, &sec);
                if (!st) kept++;
                if (!st && progress) {
                    snprintf(line, sizeof line, "nlu: %s: kept from an earlier job (%.160s)", what, rec);
                    progress(line, user);
                }
            } else {
                st = finetune_one(&c, p, model_dir, (bl_nlu_method)m, res->seeds[s], res->val[m][s], res->loss[m][s], res->n_tsne,
                                  ts ? feat : NULL);
                if (!st && ts) st = tsne_maps(feat, res->n_tsne, p->hidden, ts_map);
                if (st == BALORA_STATUS_INTERRUPTED) st = nlu_stopped(what, true, kept, runs);
                sec = bl_time_now() - tr0;
                if (!st) st = nlu_ft_record(true, rec, res->val[m][s], res->loss[m][s], n_loss, ts_map, &sec);
                if (!st) kept++;
            }
            if (!st && progress) {
                snprintf(line, sizeof line, "nlu: %s seed %llu: ID %.3f, OOD %.3f, inherit %.3f", bl_nlu_method_name((bl_nlu_method)m),
                         (unsigned long long)res->seeds[s], res->val[m][s][BL_NLU_ACC_ID], res->val[m][s][BL_NLU_ACC_OOD],
                         res->val[m][s][BL_NLU_INHERIT]);
                progress(line, user);
            }
        }
        res->method_seconds[m] = bl_time_now() - tm0;
        if (!st && m + 1 < BL_NLU_M_COUNT && balora_interrupted()) st = nlu_stopped(what, false, kept, runs);
    }
    res->seconds = bl_time_now() - t0;
    free(feat);
    bl_lab_corpus_free(&c);
    return st;
}
