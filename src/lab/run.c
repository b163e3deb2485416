/* The lab's experiment runner: pre-training, fine-tuning every method x seed, evaluation
 * (see run.h). */
#include "lab/run.h"
#include "lab/keep.h"
#include "adapters/lora.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "lab/tsne.h"
#include "train/balora.h"
#include "method/pissa_model.h"
#include "train/lm.h"
#include "train/trainer.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LAB_PRE_MAX_LEN 128
#define LAB_EVAL_B 64

/* ------------------------------------------------------------------ names */

const char *bl_lab_method_name(bl_lab_method m) {
    static const char *const n[BL_LAB_M_COUNT] = {"full", "lora", "pissa", "ba-lora", "ba-lora-no-cr", "ba-lora-no-dr",
                                                  "ba-lora-no-svdr"};
    return (unsigned)m < BL_LAB_M_COUNT ? n[m] : "?";
}

balora_status bl_lab_methods_parse(const char *list, uint32_t *mask) {
    *mask = 0;
    if (!list || !*list) return bl_fail(BALORA_STATUS_INVALID, "lab: empty method list; hint: e.g. lora,ba-lora or all");
    const char *s = list;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        bool found = false;
        if (n == 3 && !strncmp(s, "all", 3)) { *mask |= BL_LAB_M_ALL; found = true; }
        for (int m = 0; m < BL_LAB_M_COUNT && !found; m++)
            if (strlen(bl_lab_method_name((bl_lab_method)m)) == n && !strncmp(s, bl_lab_method_name((bl_lab_method)m), n)) {
                *mask |= BL_LAB_M_BIT(m);
                found = true;
            }
        if (!found) {
            *mask = 0;
            return bl_fail(BALORA_STATUS_INVALID, "lab: unknown method '%.*s'; hint: full, lora, pissa, ba-lora, ba-lora-no-cr, "
                           "ba-lora-no-dr, ba-lora-no-svdr or all", (int)n, s);
        }
        s += n;
        if (*s == ',') s++;
    }
    return BALORA_STATUS_OK;
}

const char *bl_lab_metric_key(bl_lab_metric k) {
    static const char *const n[BL_LAB_METRIC_COUNT] = {"acc_id", "acc_arith", "acc_fact", "acc_review", "acc_ood", "inherit",
                                                       "inherit_noise", "inherit_imbalance", "inherit_bias", "kl_to_pretrained",
                                                       "agree_with_pretrained", "final_loss"};
    return (unsigned)k < BL_LAB_METRIC_COUNT ? n[k] : "?";
}

const char *bl_lab_metric_label(bl_lab_metric k) {
    static const char *const n[BL_LAB_METRIC_COUNT] = {"ID acc", "arith acc", "fact acc", "review acc", "OOD acc", "inherit",
                                                       "inh. noise", "inh. imbalance", "inh. bias", "KL to PT",
                                                       "agree w/ PT", "final loss"};
    return (unsigned)k < BL_LAB_METRIC_COUNT ? n[k] : "?";
}

/* ------------------------------------------------------------------ model config and writer */

balora_status bl_lab_arch_config(const bl_lab_arch *a, int64_t vocab, bl_config *c) {
    if (a->family != BL_FAMILY_LLAMA && a->family != BL_FAMILY_GPT2)
        return bl_fail(BALORA_STATUS_INVALID, "lab model: family must be llama or gpt2");
    if (a->layers < 1 || a->layers > 64 || a->hidden < 4 || a->hidden > 4096 || a->heads < 1 || a->hidden % a->heads ||
        (a->hidden / a->heads) % 2 || a->intermediate < 0 || vocab < 5)
        return bl_fail(BALORA_STATUS_INVALID,
                       "lab model: layers %d, hidden %d, heads %d, intermediate %d: need 1..64 layers, hidden 4..4096 "
                       "divisible by heads into an even head size; hint: e.g. --layers 2 --hidden 64 --heads 4",
                       a->layers, a->hidden, a->heads, a->intermediate);
    bl_config_defaults(c, (bl_family)a->family);
    c->vocab_size = vocab;
    c->hidden = a->hidden;
    c->n_layer = a->layers;
    c->n_head = c->n_kv_head = a->heads;
    c->head_dim = a->hidden / a->heads;
    if (a->intermediate > 0) c->intermediate = a->intermediate;
    else if (a->family == BL_FAMILY_GPT2) c->intermediate = 4 * (int64_t)a->hidden;
    else c->intermediate = ((8 * (int64_t)a->hidden / 3 + 15) / 16) * 16;
    c->max_pos = LAB_PRE_MAX_LEN;
    c->tie_word_embeddings = a->family == BL_FAMILY_GPT2;
    c->bos_token_id = BL_LAB_TOK_BOS;
    c->eos_token_id = BL_LAB_TOK_EOS;
    c->pad_token_id = BL_LAB_TOK_PAD;
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ in-memory datasets */

/* Pre-training: every document (truncated to max_len), every token trained. */
static balora_status dataset_pretrain(const bl_lab_corpus *c, int64_t max_len, bl_train_data *d) {
    memset(d, 0, sizeof *d);
    int64_t n = c->n_docs, tot = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t L = c->doc_off[i + 1] - c->doc_off[i];
        tot += L < max_len ? L : max_len;
    }
    for (int pass = 0; pass < 2; pass++) {
        d->off = bl_arena_take(&d->arena, (size_t)(n + 1) * sizeof *d->off);
        d->ids = bl_arena_take(&d->arena, (size_t)(tot ? tot : 1) * sizeof *d->ids);
        d->labels = bl_arena_take(&d->arena, (size_t)(tot ? tot : 1) * sizeof *d->labels);
        d->trained = bl_arena_take(&d->arena, (size_t)(n ? n : 1) * sizeof *d->trained);
        if (pass == 0) BL_TRY(bl_arena_alloc(&d->arena));
    }
    d->n = n;
    int64_t o = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t L = c->doc_off[i + 1] - c->doc_off[i];
        if (L > max_len) L = max_len;
        d->off[i] = o;
        memcpy(d->ids + o, c->pre_ids + c->doc_off[i], (size_t)L * sizeof(int32_t));
        memcpy(d->labels + o, c->pre_ids + c->doc_off[i], (size_t)L * sizeof(int32_t));
        d->trained[i] = L - 1;
        d->total_trained += L - 1;
        if (L > d->max_len) d->max_len = L;
        o += L;
    }
    d->off[n] = o;
    return BALORA_STATUS_OK;
}

/* Fine-tuning: the FT split of every task, causal form, only the answer token trained. */
static balora_status dataset_ft(const bl_lab_corpus *c, bl_train_data *d) {
    memset(d, 0, sizeof *d);
    int64_t n = 0, tot = 0;
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++) {
        const bl_lab_set *s = &c->sets[t][BL_LAB_SPLIT_FT];
        n += s->n_items;
        for (int64_t i = 0; i < s->n_items; i++) tot += s->items[i].len;
    }
    if (n == 0) return bl_fail(BALORA_STATUS_INVALID, "lab: the corpus has no fine-tuning items; hint: n_ft >= 1");
    for (int pass = 0; pass < 2; pass++) {
        d->off = bl_arena_take(&d->arena, (size_t)(n + 1) * sizeof *d->off);
        d->ids = bl_arena_take(&d->arena, (size_t)tot * sizeof *d->ids);
        d->labels = bl_arena_take(&d->arena, (size_t)tot * sizeof *d->labels);
        d->trained = bl_arena_take(&d->arena, (size_t)n * sizeof *d->trained);
        if (pass == 0) BL_TRY(bl_arena_alloc(&d->arena));
    }
    int64_t k = 0, o = 0;
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++) {
        const bl_lab_set *s = &c->sets[t][BL_LAB_SPLIT_FT];
        for (int64_t i = 0; i < s->n_items; i++, k++) {
            const bl_lab_item *it = &s->items[i];
            d->off[k] = o;
            memcpy(d->ids + o, s->ids + it->off, (size_t)it->len * sizeof(int32_t));
            for (int32_t j = 0; j < it->len; j++) d->labels[o + j] = j == it->prompt_len ? it->answer : BL_IGNORE_INDEX;
            d->trained[k] = 1;
            d->total_trained += 1;
            if (it->len > d->max_len) d->max_len = it->len;
            o += it->len;
        }
    }
    d->n = n;
    d->off[n] = o;
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ pre-training */

typedef struct pre_prog {
    bl_lab_progress_fn fn;
    void *user;
    bl_lab_progress base;
} pre_prog;

static void pre_on_progress(const bl_progress *p, void *user) {
    pre_prog *pp = user;
    if (!pp->fn) return;
    bl_lab_progress q = pp->base;
    q.step = p->step;
    q.total_steps = p->total_steps;
    q.loss = p->task_loss;
    q.elapsed_s = p->elapsed_s;
    q.eta_s = p->eta_s;
    pp->fn(&q, pp->user);
}

void bl_lab_pretrain_train_cfg(bl_train_cfg *tc, double lr, double weight_decay, double warmup_ratio, int64_t batch,
                               int64_t steps, uint64_t seed, int64_t max_len) {
    bl_train_cfg_default(tc);
    tc->adam.lr = lr;
    tc->adam.weight_decay = weight_decay;
    tc->adam.beta2 = 0.99;
    tc->schedule = BL_SCHEDULE_COSINE;
    tc->warmup_ratio = warmup_ratio;
    tc->max_grad_norm = 1.0;
    tc->batch_size = batch;
    tc->grad_accum = 1;
    tc->max_steps = steps;
    tc->seed = seed;
    tc->max_len = max_len;
    tc->pad_id = BL_LAB_TOK_PAD;
}

static balora_status pretrain_impl(const bl_lab_corpus *c, const bl_lab_pretrain_cfg *p, const char *out_dir,
                                   const char *log_path, const bl_lab_ckpt *ck, pre_prog *pp, bl_lab_pretrain_result *res) {
    memset(res, 0, sizeof *res);
    if (p->steps < 1 || p->batch < 1 || !(p->lr > 0) || !(p->warmup_ratio >= 0 && p->warmup_ratio < 1) || !(p->weight_decay >= 0))
        return bl_fail(BALORA_STATUS_INVALID, "lab pretrain: need steps >= 1, batch >= 1, lr > 0, 0 <= warmup ratio < 1, weight decay >= 0");
    bl_config cfg;
    BL_TRY(bl_lab_arch_config(&p->arch, c->vocab_size, &cfg));
    bl_model m = {0};
    bl_train_data ds = {0};
    bl_train_lm tm = {0};
    balora_status st = bl_model_init_random(&m, &cfg, p->seed, 0.02f);
    if (!st) st = dataset_pretrain(c, LAB_PRE_MAX_LEN, &ds);
    if (!st && ds.n == 0) st = bl_fail(BALORA_STATUS_INVALID, "lab pretrain: the corpus has no pre-training documents");
    if (!st) st = bl_train_lm_init_full(&tm, &m, p->batch, ds.max_len, true); /* from scratch: every weight */
    if (!st) {
        bl_train_cfg tc;
        bl_lab_pretrain_train_cfg(&tc, p->lr, p->weight_decay, p->warmup_ratio, p->batch, p->steps, p->seed, LAB_PRE_MAX_LEN);
        tc.log_path = log_path;
        tc.progress = pre_on_progress;
        tc.progress_user = pp;
        if (ck) {
            tc.out_dir = ck->dir;
            tc.save_every = ck->save_every;
            tc.save_keep = ck->save_keep;
            tc.resume = ck->resume;
        }
        bl_train_result tr;
        st = bl_train_run(&tc, &tm.iface, &ds, NULL, &tr);
        if (!st) {
            res->steps = tr.steps;
            res->tokens = tr.tokens;
            res->first_loss = tr.first_loss;
            res->last_loss = tr.last_loss;
            res->seconds = tr.seconds;
            res->n_docs = ds.n;
            res->n_params = bl_model_n_params(&m);
        }
    }
    bl_train_lm_free(&tm);
    if (!st) st = bl_model_save(&m, out_dir);
    if (!st) st = bl_lab_write_tokenizer(c, out_dir);
    bl_train_data_free(&ds);
    bl_model_free(&m);
    return st;
}

balora_status bl_lab_pretrain(const bl_lab_corpus *c, const bl_lab_pretrain_cfg *p, const char *out_dir,
                              const char *log_path, const bl_lab_ckpt *ck, bl_lab_progress_fn progress, void *user,
                              bl_lab_pretrain_result *res) {
    pre_prog pp = {.fn = progress, .user = user, .base = {.run = 1, .n_runs = 1, .what = "pretrain", .eta_s = -1}};
    return pretrain_impl(c, p, out_dir, log_path, ck, &pp, res);
}

/* ------------------------------------------------------------------ evaluation */

/* An evaluation context: a run for LAB_EVAL_B prompts of up to max_T tokens. */
typedef struct evaluator {
    bl_model *m;
    bl_run run;
    int64_t max_T, V, C;
    int64_t *ids, *mask; /* [LAB_EVAL_B, max_T] */
    bl_arena arena;
} evaluator;

static int64_t corpus_max_prompt(const bl_lab_corpus *c) {
    int64_t mx = 1;
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++)
        for (int s = 0; s < BL_LAB_SPLIT_COUNT; s++)
            for (int64_t i = 0; i < c->sets[t][s].n_items; i++)
                if (c->sets[t][s].items[i].prompt_len > mx) mx = c->sets[t][s].items[i].prompt_len;
    return mx;
}

static void eval_free(evaluator *e) {
    bl_run_free(&e->run);
    bl_arena_free(&e->arena);
    memset(e, 0, sizeof *e);
}

static balora_status eval_init(evaluator *e, bl_model *m, const bl_lab_corpus *c) {
    memset(e, 0, sizeof *e);
    e->m = m;
    e->max_T = corpus_max_prompt(c);
    e->V = m->cfg.vocab_size;
    e->C = m->cfg.hidden;
    for (int pass = 0; pass < 2; pass++) {
        e->ids = bl_arena_take(&e->arena, (size_t)(LAB_EVAL_B * e->max_T) * sizeof(int64_t));
        e->mask = bl_arena_take(&e->arena, (size_t)(LAB_EVAL_B * e->max_T) * sizeof(int64_t));
        if (pass == 0) BL_TRY(bl_arena_alloc(&e->arena));
    }
    balora_status st = bl_run_init(&e->run, m, LAB_EVAL_B, e->max_T);
    if (st) eval_free(e);
    return st;
}

/* For items[0..n) of set s: pred [n] (arg-max token at the answer position), and optionally
 * logp [n, V] (log-softmax there) and feat [n, C] (final hidden state there). */
static balora_status eval_items(evaluator *e, const bl_lab_set *s, int64_t n, int32_t *pred, float *logp, float *feat) {
    const int64_t V = e->V, C = e->C;
    for (int64_t i0 = 0; i0 < n; i0 += LAB_EVAL_B) {
        int64_t B = n - i0 < LAB_EVAL_B ? n - i0 : LAB_EVAL_B, T = 1;
        for (int64_t b = 0; b < B; b++)
            if (s->items[i0 + b].prompt_len > T) T = s->items[i0 + b].prompt_len;
        for (int64_t b = 0; b < B; b++) {
            const bl_lab_item *it = &s->items[i0 + b];
            for (int64_t t = 0; t < T; t++) {
                bool real = t < it->prompt_len;
                e->ids[b * T + t] = real ? s->ids[it->off + t] : BL_LAB_TOK_PAD;
                e->mask[b * T + t] = real;
            }
        }
        bl_batch bb = {.B = B, .T = T, .input_ids = e->ids, .attention_mask = e->mask};
        e->run.train = false;
        BL_TRY(bl_model_forward(&e->run, &bb, BL_ADAPTER_ON));
        for (int64_t b = 0; b < B; b++) {
            int64_t pos = b * T + s->items[i0 + b].prompt_len - 1;
            const float *z = e->run.logits + pos * V; /* [V] */
            int64_t best = 0;
            float mx = z[0];
            for (int64_t v = 1; v < V; v++)
                if (z[v] > mx) { mx = z[v]; best = v; }
            if (pred) pred[i0 + b] = (int32_t)best;
            if (logp) {
                double sum = 0;
                for (int64_t v = 0; v < V; v++) sum += exp((double)z[v] - mx);
                double lse = mx + log(sum);
                for (int64_t v = 0; v < V; v++) logp[(i0 + b) * V + v] = (float)((double)z[v] - lse);
            }
            if (feat) memcpy(feat + (i0 + b) * C, e->run.hidden + pos * C, (size_t)C * sizeof(float));
        }
    }
    return BALORA_STATUS_OK;
}

static int64_t n_id_items(const bl_lab_corpus *c) {
    int64_t n = 0;
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++) n += c->sets[t][BL_LAB_SPLIT_TEST_ID].n_items;
    return n;
}

static int64_t max_set_items(const bl_lab_corpus *c) {
    int64_t mx = 1;
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++)
        for (int s = 0; s < BL_LAB_SPLIT_COUNT; s++)
            if (c->sets[t][s].n_items > mx) mx = c->sets[t][s].n_items;
    return mx;
}

/* val[BL_LAB_METRIC_COUNT]; pt_logp [n_id, V] or NULL; logp_out [n_id, V] or NULL (receives this model's). */
static balora_status eval_all(evaluator *e, const bl_lab_corpus *c, const float *pt_logp, float *logp_out, double *val) {
    const int64_t V = e->V, n_id = n_id_items(c), mx = max_set_items(c);
    for (int k = 0; k < BL_LAB_METRIC_COUNT; k++) val[k] = NAN;
    int32_t *pred = bl_malloc((size_t)mx * sizeof(int32_t));            /* [mx] */
    float *logp = bl_malloc((size_t)(n_id * V) * sizeof(float));       /* [n_id, V] */
    if (!pred || !logp) { free(pred); free(logp); return BALORA_STATUS_NOMEM; }
    balora_status st = BALORA_STATUS_OK;
    double acc_sum = 0, kl = 0;
    int n_acc = 0;
    int64_t agree = 0, row = 0;
    for (int t = 0; t < BL_LAB_TASK_COUNT && !st; t++) {
        const bl_lab_set *s = &c->sets[t][BL_LAB_SPLIT_TEST_ID];
        st = eval_items(e, s, s->n_items, pred, logp + row * V, NULL);
        bl_lab_score sc;
        if (!st) st = bl_lab_score_set(s, pred, &sc);
        if (st) break;
        val[BL_LAB_ACC_ARITH + t] = sc.accuracy;
        if (s->n_items > 0) { acc_sum += sc.accuracy; n_acc++; }
        row += s->n_items;
    }
    if (!st && n_acc) val[BL_LAB_ACC_ID] = acc_sum / n_acc;
    if (!st && pt_logp && n_id > 0) {
        for (int64_t i = 0; i < n_id; i++) {
            const float *p = pt_logp + i * V, *q = logp + i * V;
            double d = 0;
            int64_t ap = 0, aq = 0;
            for (int64_t v = 0; v < V; v++) {
                d += exp((double)p[v]) * ((double)p[v] - (double)q[v]);
                if (p[v] > p[ap]) ap = v;
                if (q[v] > q[aq]) aq = v;
            }
            kl += d;
            agree += ap == aq;
        }
        val[BL_LAB_KL_PT] = kl / (double)n_id;
        val[BL_LAB_AGREE_PT] = (double)agree / (double)n_id;
    }
    if (!st && logp_out) memcpy(logp_out, logp, (size_t)(n_id * V) * sizeof(float));
    if (!st) {
        const bl_lab_set *s = &c->sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_OOD];
        st = eval_items(e, s, s->n_items, pred, NULL, NULL);
        bl_lab_score sc;
        if (!st) st = bl_lab_score_set(s, pred, &sc);
        if (!st) val[BL_LAB_ACC_OOD] = sc.accuracy;
    }
    int64_t aff = 0, inh = 0, bit_n[3] = {0}, bit_inh[3] = {0};
    for (int t = 0; t < BL_LAB_TASK_COUNT && !st; t++) {
        const bl_lab_set *s = &c->sets[t][BL_LAB_SPLIT_AFFECTED];
        st = eval_items(e, s, s->n_items, pred, NULL, NULL);
        bl_lab_score sc;
        if (!st) st = bl_lab_score_set(s, pred, &sc);
        if (st) break;
        aff += sc.n_affected;
        inh += sc.n_inherited;
        for (int64_t i = 0; i < s->n_items; i++) {
            const bl_lab_item *it = &s->items[i];
            for (int k = 0; k < 3; k++)
                if (it->defects & (1u << k)) {
                    bit_n[k]++;
                    bit_inh[k] += pred[i] == it->defect_answer;
                }
        }
    }
    if (!st) {
        val[BL_LAB_INHERIT] = aff ? (double)inh / (double)aff : NAN;
        for (int k = 0; k < 3; k++) val[BL_LAB_INH_NOISE + k] = bit_n[k] ? (double)bit_inh[k] / (double)bit_n[k] : NAN;
    }
    free(pred);
    free(logp);
    return st;
}

balora_status bl_lab_evaluate(bl_model *m, const bl_lab_corpus *c, const float *pt_logp, double *val) {
    evaluator e;
    BL_TRY(eval_init(&e, m, c));
    balora_status st = eval_all(&e, c, pt_logp, NULL, val);
    eval_free(&e);
    return st;
}

/* The t-SNE points: the first n/2 REVIEW TEST_ID items and the first n/2 TEST_OOD items. */
static int64_t tsne_count(const bl_lab_corpus *c, int64_t want) {
    int64_t a = c->sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_ID].n_items;
    int64_t b = c->sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_OOD].n_items;
    int64_t h = want / 2;
    if (h > a) h = a;
    if (h > b) h = b;
    return 2 * h;
}

static balora_status tsne_features(evaluator *e, const bl_lab_corpus *c, int64_t n, float *feat /* [n, C] */) {
    int64_t h = n / 2;
    BL_TRY(eval_items(e, &c->sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_ID], h, NULL, NULL, feat));
    return eval_items(e, &c->sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_OOD], h, NULL, NULL, feat + h * e->C);
}

/* ------------------------------------------------------------------ presets */

#define DEMO_PRETRAIN {.arch = {.family = BL_FAMILY_LLAMA, .layers = 2, .hidden = 64, .heads = 4}, \
                       .steps = 2000, .batch = 16, .lr = 3e-3, .warmup_ratio = 0.05, .weight_decay = 0.01, .seed = 7}

static const bl_lab_preset g_presets[] = {
    {.name = "demo",
     .description = "the quick demo: 2-layer x 64 LLaMA-style decoder, noise 0.2 / imbalance 4:1 / cue agreement 0.9, "
                    "2000 pre-training steps, 7 methods x 5 seeds x 200 fine-tuning steps (about 3 minutes on one core)",
     .corpus_seed = 2024, .n_pre_arith = 3000, .n_pre_fact = 1500, .n_pre_review = 6000, .n_ft = 1000, .n_test = 200,
     .noise = 0.2, .imbalance = 4.0, .cue_frac = 0.5, .cue_agree = 0.9,
     .pretrain = DEMO_PRETRAIN,
     .ft_steps = 200, .ft_batch = 16, .lr_adapter = 3e-3, .rank = 4, .alpha_per_rank = 1.0,
     .targets = "all-linear", .reg_recipe = "paper-v1", .methods = BL_LAB_M_ALL, .n_seeds = 5,
     .tsne_points = 200, .tsne_iters = 500},
    {.name = "mini",
     .description = "a miniature end-to-end run for tests (1 layer x 16, a few steps; the numbers mean nothing)",
     .corpus_seed = 5, .n_pre_arith = 200, .n_pre_fact = 100, .n_pre_review = 200, .n_ft = 40, .n_test = 40,
     .noise = 0.2, .imbalance = 3.0, .cue_frac = 0.5, .cue_agree = 0.9,
     .pretrain = {.arch = {.family = BL_FAMILY_LLAMA, .layers = 1, .hidden = 16, .heads = 2}, .steps = 6, .batch = 8,
                  .lr = 3e-3, .warmup_ratio = 0.0, .weight_decay = 0.0, .seed = 3},
     .ft_steps = 4, .ft_batch = 8, .lr_adapter = 3e-3, .rank = 2, .alpha_per_rank = 1.0,
     .targets = "all-linear", .reg_recipe = "paper-v1", .methods = BL_LAB_M_ALL, .n_seeds = 2,
     .tsne_points = 20, .tsne_iters = 50},
    {.name = "ablation",
     .description = "the demo's corpus and model with BA-LoRA's paper-v6 recipe (larger lambdas, schedules), 10 seeds and 2x the "
                    "fine-tuning steps: BA-LoRA vs each regulariser removed, LoRA and PiSSA",
     .corpus_seed = 2024, .n_pre_arith = 3000, .n_pre_fact = 1500, .n_pre_review = 6000, .n_ft = 1000, .n_test = 200,
     .noise = 0.2, .imbalance = 4.0, .cue_frac = 0.5, .cue_agree = 0.9,
     .pretrain = DEMO_PRETRAIN,
     .ft_steps = 400, .ft_batch = 16, .lr_adapter = 3e-3, .rank = 4, .alpha_per_rank = 1.0,
     .targets = "all-linear", .reg_recipe = "paper-v6", .methods = BL_LAB_M_ALL & ~BL_LAB_M_BIT(BL_LAB_M_FULL), .n_seeds = 10,
     .tsne_points = 200, .tsne_iters = 500},
    {.name = "grid",
     .description = "the defect grid: noise 0 / 0.1 / 0.2, imbalance 1 / 2 / 4, cue agreement 0.5 / 0.75 / 0.95 "
                    "(one defect varied at a time), full / lora / pissa / ba-lora x 3 seeds; a pre-training per cell",
     .corpus_seed = 2024, .n_pre_arith = 3000, .n_pre_fact = 1500, .n_pre_review = 6000, .n_ft = 1000, .n_test = 200,
     .noise = 0.0, .imbalance = 1.0, .cue_frac = 0.5, .cue_agree = 0.5,
     .pretrain = DEMO_PRETRAIN,
     .ft_steps = 200, .ft_batch = 16, .lr_adapter = 3e-3, .rank = 4, .alpha_per_rank = 1.0,
     .targets = "all-linear", .reg_recipe = "paper-v1", .methods = BL_LAB_M_MAIN, .n_seeds = 3,
     .tsne_points = 200, .tsne_iters = 500, .n_variants = 7,
     .variants = {{"clean", 0.0, 1.0, 0.5, 0}, {"noise 0.1", 0.1, 1.0, 0.5, 0}, {"noise 0.2", 0.2, 1.0, 0.5, 0},
                  {"imbalance 2", 0.0, 2.0, 0.5, 0}, {"imbalance 4", 0.0, 4.0, 0.5, 0},
                  {"cue 0.75", 0.0, 1.0, 0.75, 0}, {"cue 0.95", 0.0, 1.0, 0.95, 0}}},
    {.name = "rank-sweep",
     .description = "LoRA rank r = 1 .. 128 (paper appendix C.2) on a 2-layer x 128 decoder, lora / pissa / ba-lora x 3 seeds; "
                    "one pre-training shared by all ranks",
     .corpus_seed = 2024, .n_pre_arith = 3000, .n_pre_fact = 1500, .n_pre_review = 6000, .n_ft = 1000, .n_test = 200,
     .noise = 0.2, .imbalance = 4.0, .cue_frac = 0.5, .cue_agree = 0.9,
     .pretrain = {.arch = {.family = BL_FAMILY_LLAMA, .layers = 2, .hidden = 128, .heads = 4}, .steps = 800, .batch = 16,
                  .lr = 2e-3, .warmup_ratio = 0.05, .weight_decay = 0.01, .seed = 7},
     .ft_steps = 200, .ft_batch = 16, .lr_adapter = 2e-3, .rank = 8, .alpha_per_rank = 1.0,
     .targets = "all-linear", .reg_recipe = "paper-v1",
     .methods = BL_LAB_M_BIT(BL_LAB_M_LORA) | BL_LAB_M_BIT(BL_LAB_M_PISSA) | BL_LAB_M_BIT(BL_LAB_M_BALORA), .n_seeds = 3,
     .tsne_points = 200, .tsne_iters = 500, .n_variants = 8,
     .variants = {{"r 1", -1, -1, -1, 1}, {"r 2", -1, -1, -1, 2}, {"r 4", -1, -1, -1, 4}, {"r 8", -1, -1, -1, 8},
                  {"r 16", -1, -1, -1, 16}, {"r 32", -1, -1, -1, 32}, {"r 64", -1, -1, -1, 64}, {"r 128", -1, -1, -1, 128}}},
};

double bl_lab_lr_full(const bl_lab_preset *p) { return p->lr_adapter / 10.0; }

int bl_lab_preset_count(void) { return (int)(sizeof g_presets / sizeof g_presets[0]); }
const bl_lab_preset *bl_lab_preset_at(int i) { return i >= 0 && i < bl_lab_preset_count() ? &g_presets[i] : NULL; }
const bl_lab_preset *bl_lab_preset_find(const char *name) {
    for (int i = 0; name && i < bl_lab_preset_count(); i++)
        if (!strcmp(g_presets[i].name, name)) return &g_presets[i];
    return NULL;
}

void bl_lab_preset_corpus(const bl_lab_preset *p, int v, bl_lab_corpus_config *c) {
    bl_lab_corpus_config_default(c);
    c->seed = p->corpus_seed;
    c->n_pre_arith = p->n_pre_arith;
    c->n_pre_fact = p->n_pre_fact;
    c->n_pre_review = p->n_pre_review;
    c->n_ft = p->n_ft;
    c->n_test = p->n_test;
    c->noise = p->noise;
    c->imbalance = p->imbalance;
    c->cue_frac = p->cue_frac;
    c->cue_agree = p->cue_agree;
    if (v >= 0 && v < p->n_variants) {
        const bl_lab_variant *x = &p->variants[v];
        if (x->noise >= 0) c->noise = x->noise;
        if (x->imbalance >= 0) c->imbalance = x->imbalance;
        if (x->cue_agree >= 0) c->cue_agree = x->cue_agree;
    }
}

int32_t bl_lab_preset_rank(const bl_lab_preset *p, int v) {
    if (v >= 0 && v < p->n_variants && p->variants[v].rank > 0) return p->variants[v].rank;
    return p->rank;
}

/* ------------------------------------------------------------------ the runner */

typedef struct job {
    const bl_lab_preset *p;
    const bl_lab_run_opts *o;
    bl_lab_results *res;
    int64_t run, n_runs, n_pre_left, n_ft_left;
    double t0, pre_time_sum, ft_time_sum;
    int64_t n_pre_done, n_ft_done, n_skipped;
    double run_t0;
    char what[128];
} job;

static double job_eta(const job *j, int64_t step, int64_t total, bool pre, bool *lower) {
    *lower = false;
    double now = bl_time_now(), in_run = now - j->run_t0;
    double left_in_run = step > 0 && total > step ? in_run / (double)step * (double)(total - step) : 0;
    double run_est = step > 0 ? in_run / (double)step * (double)total : -1;
    double pre_avg = j->n_pre_done ? j->pre_time_sum / (double)j->n_pre_done : (pre ? run_est : -1);
    double ft_avg = j->n_ft_done ? j->ft_time_sum / (double)j->n_ft_done : (!pre ? run_est : -1);
    int64_t pre_left = j->n_pre_left - (pre ? 1 : 0), ft_left = j->n_ft_left - (pre ? 0 : 1);
    if ((pre_left > 0 && pre_avg < 0) || (ft_left > 0 && ft_avg < 0)) {
        *lower = true;
        return step > 0 ? left_in_run : -1;
    }
    return left_in_run + (pre_left > 0 ? pre_left * pre_avg : 0) + (ft_left > 0 ? ft_left * ft_avg : 0);
}

static void job_report(job *j, int64_t step, int64_t total, double loss, bool pre, bool done) {
    if (!j->o->progress) return;
    bl_lab_progress q = {.run = j->run, .n_runs = j->n_runs, .what = j->what, .step = step, .total_steps = total,
                         .loss = loss, .elapsed_s = bl_time_now() - j->t0, .run_done = done};
    q.eta_s = job_eta(j, step, total, pre, &q.eta_lower_bound);
    j->o->progress(&q, j->o->user);
}

typedef struct ft_ctx {
    job *j;
    float *loss;            /* [steps] */
    evaluator *ev;          /* for the mid snapshot, or NULL */
    const bl_lab_corpus *c;
    int64_t mid_step, n_tsne;
    float *mid_feat;        /* [n_tsne, C] */
    balora_status st;
} ft_ctx;

static void ft_on_progress(const bl_progress *p, void *user) {
    ft_ctx *x = user;
    if (p->step >= 1 && p->step <= p->total_steps) x->loss[p->step - 1] = (float)p->task_loss;
    if (x->ev && p->step == x->mid_step && !x->st) x->st = tsne_features(x->ev, x->c, x->n_tsne, x->mid_feat);
    job_report(x->j, p->step, p->total_steps, p->task_loss, false, false);
}

static void pre_progress_bridge(const bl_lab_progress *q, void *user) {
    job *j = user;
    job_report(j, q->step, q->total_steps, q->loss, true, false);
}

/* One fine-tuning run: method m, seed, on the pre-trained model in pre_dir. */
static balora_status ft_run(job *j, const bl_lab_corpus *c, const bl_train_data *ds, const char *pre_dir, bl_lab_method meth,
                            int32_t rank, uint64_t seed, const float *pt_logp, double *val, float *loss, bool want_tsne,
                            int64_t n_tsne, float *feat /* [3, n_tsne, C] */, int64_t *snap_step, const char *log_path) {
    const bl_lab_preset *p = j->p;
    bl_model m = {0};
    bl_adapter ad = {0};
    bl_train_lm lm = {0};
    bl_train_lm fm = {0};
    evaluator ev = {0};
    bl_train_balora hook = {0};
    const bl_train_model *tmodel = NULL;
    const bl_extra_loss *extra = NULL;
    balora_status st = bl_model_load(&m, pre_dir);
    bool full = meth == BL_LAB_M_FULL;
    bool pissa = meth >= BL_LAB_M_PISSA;
    if (!st && full) {
        st = bl_train_lm_init_full(&fm, &m, p->ft_batch, ds->max_len, false); /* the paper's baseline */
        tmodel = &fm.iface;
    } else if (!st) {
        bl_lora_config lc;
        bl_lora_config_default(&lc);
        lc.r = rank;
        lc.alpha = p->alpha_per_rank * rank;
        if (pissa) { lc.init = BL_LORA_INIT_PISSA; lc.pissa_niter = 0; lc.keep_initial = true; }
        st = bl_lora_config_set_targets(&lc, p->targets);
        if (!st) {
            snprintf(lc.base_model, sizeof lc.base_model, "%s", pre_dir);
            st = bl_lora_init(&ad, &m.mods, &lc, seed);
        }
        if (!st && pissa) st = bl_pissa_init_adapter(&ad, -1, seed);
        if (!st) st = bl_train_lm_init(&lm, &m, &ad, p->ft_batch, ds->max_len);
        if (!st && pissa) { lm.pissa = true; lm.teacher_mode = BL_ADAPTER_INITIAL; }
        tmodel = &lm.iface;
        if (!st && meth >= BL_LAB_M_BALORA) {
            bl_reg_config rc;
            st = bl_reg_config_recipe(&rc, p->reg_recipe, BL_REG_TASK_NLG);
            if (meth == BL_LAB_M_BALORA_NO_CR) rc.lambda1 = 0;
            if (meth == BL_LAB_M_BALORA_NO_DR) rc.lambda2 = 0;
            if (meth == BL_LAB_M_BALORA_NO_SVDR) rc.lambda3 = 0;
            if (!st) st = bl_train_balora_init(&hook, &rc, &bl_objective_causal_lm, p->ft_batch * ds->max_len, m.cfg.vocab_size);
            extra = &hook.iface;
        }
    }
    int64_t C = m.cfg.hidden;
    if (!st) st = eval_init(&ev, &m, c);
    if (!st && want_tsne) st = tsne_features(&ev, c, n_tsne, feat);
    ft_ctx x = {.j = j, .loss = loss, .ev = want_tsne ? &ev : NULL, .c = c, .mid_step = p->ft_steps / 2, .n_tsne = n_tsne,
                .mid_feat = want_tsne ? feat + n_tsne * C : NULL};
    if (!st) {
        bl_train_cfg tc;
        bl_train_cfg_default(&tc);
        tc.adam.lr = full ? bl_lab_lr_full(p) : p->lr_adapter;
        tc.schedule = BL_SCHEDULE_LINEAR;
        tc.warmup_ratio = 0.05;
        tc.max_grad_norm = 1.0;
        tc.batch_size = p->ft_batch;
        tc.grad_accum = 1;
        tc.max_steps = p->ft_steps;
        tc.seed = seed;
        tc.max_len = ds->max_len;
        tc.pad_id = BL_LAB_TOK_PAD;
        tc.log_path = log_path;
        tc.progress = ft_on_progress;
        tc.progress_user = &x;
        bl_train_result tr;
        st = bl_train_run(&tc, tmodel, ds, extra, &tr);
        if (!st) st = x.st;
    }
    if (!st && want_tsne) st = tsne_features(&ev, c, n_tsne, feat + 2 * n_tsne * C);
    if (!st) st = eval_all(&ev, c, pt_logp, NULL, val);
    if (!st) {
        int64_t k0 = p->ft_steps - (p->ft_steps + 9) / 10;
        double s = 0;
        for (int64_t k = k0; k < p->ft_steps; k++) s += loss[k];
        val[BL_LAB_FINAL_LOSS] = s / (double)(p->ft_steps - k0);
        snap_step[0] = 0; snap_step[1] = p->ft_steps / 2; snap_step[2] = p->ft_steps;
    }
    eval_free(&ev);
    bl_train_balora_free(&hook);
    bl_train_lm_free(&fm);
    bl_train_lm_free(&lm);
    bl_lora_free(&ad);
    bl_model_free(&m);
    return st;
}

static void sanitize(const char *in, char *out, size_t cap) {
    size_t k = 0;
    for (const char *s = in; *s && k + 1 < cap; s++) out[k++] = (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ? *s : '_';
    out[k] = 0;
}

static balora_status tsne_cell(const bl_lab_preset *p, const float *feat, int64_t n, int64_t C, float *out /* [3, n, 2] */) {
    bl_tsne_config tc;
    bl_tsne_config_default(&tc);
    tc.perplexity = n > 31 ? 10.0 : (double)(n - 1) / 3.0;
    tc.n_iter = p->tsne_iters;
    if (tc.exaggeration_iters > tc.n_iter / 2) tc.exaggeration_iters = tc.momentum_switch_iter = tc.n_iter / 2;
    tc.seed = 1;
    for (int s = 0; s < BL_LAB_N_SNAP; s++) {
        bl_tsne_result r;
        BL_TRY(bl_tsne_run(feat + (int64_t)s * n * C, n, C, &tc, &r));
        memcpy(out + (int64_t)s * n * 2, r.y, (size_t)(n * 2) * sizeof(float));
        bl_tsne_result_free(&r);
    }
    return BALORA_STATUS_OK;
}

void bl_lab_results_free(bl_lab_results *r) {
    if (!r) return;
    bl_arena_free(&r->arena);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ finished runs kept on disk */

/* OUT/runs/: lab.json (what the runs depend on), pretrain_VARIANT.json and ft_VARIANT_METHOD_seedS.json,
 * written atomically as each run finishes (src/lab/keep.h). */
/* lab.json: written on the first start, compared on every later one. */
static balora_status runs_fingerprint(const bl_lab_preset *p, const char *runs_dir) {
    cJSON *f = cJSON_CreateObject();
    if (!f) return BALORA_STATUS_NOMEM;
    cJSON_AddNumberToObject(f, "format", 1);
    cJSON_AddStringToObject(f, "preset", p->name);
    cJSON_AddNumberToObject(f, "seeds", p->n_seeds);
    cJSON_AddNumberToObject(f, "methods", (double)p->methods);
    cJSON_AddNumberToObject(f, "threads", balora_threads_get());
    /* the preset's contents (a preset edited between two jobs, or a test's variant of one) */
    char b[64];
    snprintf(b, sizeof b, "%llu", (unsigned long long)p->corpus_seed);
    cJSON_AddStringToObject(f, "corpus_seed", b);
    const struct { const char *k; double v; } nums[] = {
        {"n_pre_arith", (double)p->n_pre_arith}, {"n_pre_fact", (double)p->n_pre_fact}, {"n_pre_review", (double)p->n_pre_review},
        {"n_ft", (double)p->n_ft}, {"n_test", (double)p->n_test}, {"noise", p->noise}, {"imbalance", p->imbalance},
        {"cue_frac", p->cue_frac}, {"cue_agree", p->cue_agree}, {"family", p->pretrain.arch.family},
        {"layers", p->pretrain.arch.layers}, {"hidden", p->pretrain.arch.hidden}, {"heads", p->pretrain.arch.heads},
        {"intermediate", p->pretrain.arch.intermediate}, {"pretrain_steps", (double)p->pretrain.steps},
        {"pretrain_batch", (double)p->pretrain.batch}, {"pretrain_lr", p->pretrain.lr}, {"pretrain_warmup_ratio", p->pretrain.warmup_ratio},
        {"pretrain_weight_decay", p->pretrain.weight_decay}, {"pretrain_seed", (double)p->pretrain.seed},
        {"ft_steps", (double)p->ft_steps}, {"ft_batch", (double)p->ft_batch}, {"lr_adapter", p->lr_adapter}, {"rank", p->rank},
        {"alpha_per_rank", p->alpha_per_rank}, {"tsne_points", p->tsne_points}, {"tsne_iters", p->tsne_iters},
        {"n_variants", p->n_variants}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) cJSON_AddNumberToObject(f, nums[i].k, nums[i].v);
    cJSON_AddStringToObject(f, "targets", p->targets ? p->targets : "");
    cJSON_AddStringToObject(f, "reg_recipe", p->reg_recipe ? p->reg_recipe : "");
    for (int v = 0; v < p->n_variants && v < BL_LAB_MAX_VARIANTS; v++) {
        char k[32], val[160];
        const bl_lab_variant *x = &p->variants[v];
        snprintf(k, sizeof k, "variant_%d", v);
        snprintf(val, sizeof val, "%s | noise %.17g | imbalance %.17g | cue_agree %.17g | rank %d", x->label ? x->label : "", x->noise,
                 x->imbalance, x->cue_agree, (int)x->rank);
        cJSON_AddStringToObject(f, k, val);
    }
    return bl_lab_keep_fingerprint(f, runs_dir, "lab.json");
}

static balora_status pre_record_write(const char *path, const bl_lab_pretrain_result *r) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return BALORA_STATUS_NOMEM;
    balora_status st = bl_lab_keep_put(o, "result", r, sizeof *r);
    if (st) { cJSON_Delete(o); return st; }
    cJSON_AddNumberToObject(o, "steps", (double)r->steps);
    cJSON_AddNumberToObject(o, "last_loss", r->last_loss);
    return bl_lab_keep_write(o, path);
}
static balora_status pre_record_read(const char *path, bl_lab_pretrain_result *r) {
    cJSON *o = NULL;
    BL_TRY(bl_json_load(path, &o));
    balora_status st = bl_lab_keep_get(o, path, "result", r, sizeof *r);
    cJSON_Delete(o);
    return st;
}

typedef struct ft_record {
    double *val;       /* [BL_LAB_METRIC_COUNT] */
    float *loss;       /* [ft_steps] */
    int64_t ft_steps;
    float *tsne;       /* [BL_LAB_N_SNAP, n_tsne, 2] or NULL */
    int64_t n_tsne;
    int64_t *snap_step;/* [BL_LAB_N_SNAP] with tsne */
    double seconds;
} ft_record;
static balora_status ft_record_write(const char *path, const ft_record *r) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return BALORA_STATUS_NOMEM;
    balora_status st = bl_lab_keep_put(o, "val", r->val, BL_LAB_METRIC_COUNT * sizeof(double));
    if (!st) st = bl_lab_keep_put(o, "loss", r->loss, (size_t)r->ft_steps * sizeof(float));
    if (!st && r->tsne) st = bl_lab_keep_put(o, "tsne", r->tsne, (size_t)(BL_LAB_N_SNAP * r->n_tsne * 2) * sizeof(float));
    if (!st && r->tsne) st = bl_lab_keep_put(o, "snap_step", r->snap_step, BL_LAB_N_SNAP * sizeof(int64_t));
    if (st) { cJSON_Delete(o); return st; }
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    return bl_lab_keep_write(o, path);
}
static balora_status ft_record_read(const char *path, ft_record *r) {
    cJSON *o = NULL;
    BL_TRY(bl_json_load(path, &o));
    balora_status st = bl_lab_keep_get(o, path, "val", r->val, BL_LAB_METRIC_COUNT * sizeof(double));
    if (!st) st = bl_lab_keep_get(o, path, "loss", r->loss, (size_t)r->ft_steps * sizeof(float));
    if (!st && r->tsne) st = bl_lab_keep_get(o, path, "tsne", r->tsne, (size_t)(BL_LAB_N_SNAP * r->n_tsne * 2) * sizeof(float));
    if (!st && r->tsne) st = bl_lab_keep_get(o, path, "snap_step", r->snap_step, BL_LAB_N_SNAP * sizeof(int64_t));
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "seconds");
    r->seconds = cJSON_IsNumber(sec) ? sec->valuedouble : 0;
    cJSON_Delete(o);
    return st;
}

/* The message of an interrupted lab job. */
static balora_status lab_stopped(const job *j, const char *runs_dir, bool mid_run) {
    int64_t kept = j->n_pre_done + j->n_ft_done + j->n_skipped;
    if (mid_run)
        return bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d) during run %lld of %lld (%s), which is not kept (runs are not "
                       "checkpointed mid-way) and is redone by the rerun; %lld finished run(s) are kept in %s; hint: run the same "
                       "command again to continue (finished runs are skipped)", balora_interrupted(), (long long)j->run,
                       (long long)j->n_runs, j->what, (long long)kept, runs_dir);
    return bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d) after run %lld of %lld; %lld finished run(s) are kept in %s; hint: "
                   "run the same command again to continue (finished runs are skipped)", balora_interrupted(), (long long)j->run,
                   (long long)j->n_runs, (long long)kept, runs_dir);
}

static balora_status results_alloc(bl_lab_results *r, const bl_lab_preset *p, int n_var, int64_t n_tsne) {
    int S = p->n_seeds;
    for (int pass = 0; pass < 2; pass++) {
        r->var = bl_arena_take(&r->arena, (size_t)n_var * sizeof *r->var);
        r->seeds = bl_arena_take(&r->arena, (size_t)S * sizeof *r->seeds);
        r->tsne_cls = bl_arena_take(&r->arena, (size_t)(n_tsne ? n_tsne : 1) * sizeof *r->tsne_cls);
        for (int v = 0; v < n_var; v++)
            for (int m = 0; m < BL_LAB_M_COUNT; m++) {
                bool on = (p->methods >> m) & 1u;
                double *val = bl_arena_take(&r->arena, on ? (size_t)(S * BL_LAB_METRIC_COUNT) * sizeof(double) : 0);
                float *loss = bl_arena_take(&r->arena, on ? (size_t)(S * p->ft_steps) * sizeof(float) : 0);
                bool ts = on && (m == BL_LAB_M_LORA || m == BL_LAB_M_BALORA) && n_tsne > 0;
                float *tsne = bl_arena_take(&r->arena, ts ? (size_t)(BL_LAB_N_SNAP * n_tsne * 2) * sizeof(float) : 0);
                if (pass == 1) {
                    bl_lab_cell *cell = &r->var[v].cell[m];
                    cell->run = on;
                    cell->val = on ? val : NULL;
                    cell->loss = on ? loss : NULL;
                    cell->tsne = ts ? tsne : NULL;
                }
            }
        if (pass == 0) BL_TRY(bl_arena_alloc(&r->arena));
    }
    r->n_variants = n_var;
    r->n_tsne = n_tsne;
    return BALORA_STATUS_OK;
}

static bool same_corpus(const bl_lab_corpus_config *a, const bl_lab_corpus_config *b) {
    return a->noise == b->noise && a->imbalance == b->imbalance && a->cue_agree == b->cue_agree && a->seed == b->seed;
}

balora_status bl_lab_run(const bl_lab_preset *preset, const bl_lab_run_opts *o, bl_lab_results *res) {
    memset(res, 0, sizeof *res);
    if (!preset || !o || !o->out_dir) return bl_fail(BALORA_STATUS_INVALID, "lab: preset and output folder are required");
    bl_lab_preset p = *preset;
    if (o->n_seeds > 0) p.n_seeds = o->n_seeds;
    if (o->methods) p.methods = o->methods & BL_LAB_M_ALL;
    if (p.n_seeds < 1 || p.n_seeds > 100) return bl_fail(BALORA_STATUS_INVALID, "lab: seeds = %d; hint: 1..100", p.n_seeds);
    if (p.ft_steps < 2 || p.ft_batch < 1 || !(p.lr_adapter > 0) || !p.methods)
        return bl_fail(BALORA_STATUS_INVALID, "lab preset '%s': need ft_steps >= 2, ft_batch >= 1, lr > 0 and a method", p.name);
    int n_var = p.n_variants > 0 ? p.n_variants : 1;
    /* t-SNE points from the first variant's corpus sizes (same n_test everywhere) */
    int64_t n_tsne = 0;
    {
        bl_lab_corpus c;
        bl_lab_corpus_config cc;
        bl_lab_preset_corpus(&p, p.n_variants > 0 ? 0 : -1, &cc);
        BL_TRY(bl_lab_corpus_generate(&cc, &c));
        n_tsne = tsne_count(&c, p.tsne_points);
        bl_config mc; /* the model's settings are checked before any work (or any kept run) */
        balora_status st0 = bl_lab_arch_config(&p.pretrain.arch, c.vocab_size, &mc);
        bl_lab_corpus_free(&c);
        if (st0) return st0;
        if (n_tsne < 8) n_tsne = 0;
    }
    BL_TRY(results_alloc(res, &p, n_var, n_tsne));
    res->preset = p;
    res->threads = balora_threads_get();
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(res->started, sizeof res->started, "%Y-%m-%d %H:%M:%S", &tmv);
    for (int s = 0; s < p.n_seeds; s++) res->seeds[s] = 1 + (uint64_t)s;

    int n_meth = 0;
    for (int m = 0; m < BL_LAB_M_COUNT; m++) n_meth += (p.methods >> m) & 1u;
    /* pre-trainings: one per distinct corpus (consecutive variants with the same corpus share it) */
    int n_pre = 0;
    for (int v = 0; v < n_var; v++) {
        bl_lab_corpus_config a, b;
        bl_lab_preset_corpus(&p, p.n_variants > 0 ? v : -1, &a);
        if (v > 0) bl_lab_preset_corpus(&p, v - 1, &b);
        if (v == 0 || !same_corpus(&a, &b)) n_pre++;
    }
    job j = {.p = &p, .o = o, .res = res, .n_runs = n_pre + (int64_t)n_var * n_meth * p.n_seeds, .t0 = bl_time_now(),
             .n_pre_left = n_pre, .n_ft_left = (int64_t)n_var * n_meth * p.n_seeds};
    balora_status st = bl_mkdir_p(o->out_dir);
    char models[4096], logs[4096], runs[4096], pre_dir[4096] = "", path[4096], rec[4400], vname[64];
    if (!st) st = bl_path_join(models, sizeof models, o->out_dir, "models");
    if (!st) st = bl_path_join(logs, sizeof logs, o->out_dir, "logs");
    if (!st) st = bl_path_join(runs, sizeof runs, o->out_dir, "runs");
    if (!st) st = bl_mkdir_p(logs);
    if (!st) st = runs_fingerprint(&p, runs);
    if (!st && balora_interrupted()) st = lab_stopped(&j, runs, false);
    bl_lab_corpus c = {0};
    bool have_c = false;
    float *pt_logp = NULL, *feat = NULL;
    bl_train_data ds = {0};
    for (int v = 0; v < n_var && !st; v++) {
        bl_lab_variant_result *vr = &res->var[v];
        bl_lab_corpus_config cc;
        bl_lab_preset_corpus(&p, p.n_variants > 0 ? v : -1, &cc);
        snprintf(vr->label, sizeof vr->label, "%s", p.n_variants > 0 ? p.variants[v].label : p.name);
        vr->corpus = cc;
        vr->rank = bl_lab_preset_rank(&p, p.n_variants > 0 ? v : -1);
        bool reuse = have_c && same_corpus(&cc, &c.cfg);
        if (!reuse) {
            if (have_c) { bl_lab_corpus_free(&c); have_c = false; }
            bl_train_data_free(&ds);
            free(pt_logp); pt_logp = NULL;
            free(feat); feat = NULL;
            if ((st = bl_lab_corpus_generate(&cc, &c))) break;
            have_c = true;
            sanitize(vr->label, vname, sizeof vname);
            if ((st = bl_path_join(pre_dir, sizeof pre_dir, models, vname))) break;
            char sub[4096];
            if ((st = bl_path_join(sub, sizeof sub, pre_dir, "corpus"))) break;
            if ((st = bl_lab_corpus_write(&c, sub))) break;
            if (snprintf(path, sizeof path, "%s/pretrain_%s.jsonl", logs, vname) >= (int)sizeof path) {
                st = bl_fail(BALORA_STATUS_INVALID, "lab: output path too long: %s", logs);
                break;
            }
            j.run++;
            snprintf(j.what, sizeof j.what, "pretrain (%s)", vr->label);
            j.run_t0 = bl_time_now();
            char model_file[4200];
            snprintf(rec, sizeof rec, "%s/pretrain_%s.json", runs, vname);
            snprintf(model_file, sizeof model_file, "%s/model.safetensors", pre_dir);
            if (bl_file_exists(rec) && bl_file_exists(model_file)) { /* kept by an earlier, interrupted job */
                if ((st = pre_record_read(rec, &vr->pre))) break;
                j.n_skipped++;
                j.n_pre_left--;
                bl_log(BL_INFO, "lab: %s: kept from an earlier job (%s)", j.what, rec);
            } else {
                pre_prog pp = {.fn = pre_progress_bridge, .user = &j, .base = {.eta_s = -1}};
                if ((st = pretrain_impl(&c, &p.pretrain, pre_dir, path, NULL, &pp, &vr->pre))) {
                    if (st == BALORA_STATUS_INTERRUPTED) st = lab_stopped(&j, runs, true);
                    break;
                }
                if ((st = pre_record_write(rec, &vr->pre))) break;
                j.pre_time_sum += bl_time_now() - j.run_t0;
                j.n_pre_done++;
                j.n_pre_left--;
                job_report(&j, vr->pre.steps, vr->pre.steps, vr->pre.last_loss, true, true);
                if (balora_interrupted()) { st = lab_stopped(&j, runs, false); break; }
            }
            if ((st = dataset_ft(&c, &ds))) break;
            int64_t V = c.vocab_size, C = p.pretrain.arch.hidden;
            pt_logp = bl_malloc((size_t)(n_id_items(&c) * V + 1) * sizeof(float));          /* [n_id, V] */
            feat = bl_malloc((size_t)(BL_LAB_N_SNAP * (n_tsne ? n_tsne : 1) * C) * sizeof(float)); /* [3, n_tsne, C] */
            if (!pt_logp || !feat) { st = BALORA_STATUS_NOMEM; break; }
        } else {
            vr->pre = res->var[v - 1].pre;
        }
        vr->counts = c.counts;
        vr->vocab = c.vocab_size;
        for (int t = 0; t < BL_LAB_TASK_COUNT; t++)
            for (int s = 0; s < BL_LAB_SPLIT_COUNT; s++) vr->n_eval[t][s] = c.sets[t][s].n_items;
        /* the pre-trained model itself: reference scores and the answer distributions */
        {
            bl_model m;
            if ((st = bl_model_load(&m, pre_dir))) break;
            evaluator ev;
            st = eval_init(&ev, &m, &c);
            if (!st) st = eval_all(&ev, &c, NULL, pt_logp, vr->pre_val);
            eval_free(&ev);
            bl_model_free(&m);
            if (st) break;
        }
        if (v == 0 && n_tsne > 0) {
            /* classes of the t-SNE points: first half TEST_ID, second half TEST_OOD; label 0 neg / 1 pos */
            int64_t h = n_tsne / 2;
            for (int64_t i = 0; i < h; i++) {
                res->tsne_cls[i] = c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_ID].items[i].label;
                res->tsne_cls[h + i] = 2 + c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_OOD].items[i].label;
            }
        }
        sanitize(vr->label, vname, sizeof vname);
        for (int m = 0; m < BL_LAB_M_COUNT && !st; m++) {
            bl_lab_cell *cell = &vr->cell[m];
            if (!cell->run) continue;
            double t_cell = bl_time_now();
            for (int s = 0; s < p.n_seeds && !st; s++) {
                j.run++;
                snprintf(j.what, sizeof j.what, "%s%s%s seed %llu", n_var > 1 ? vr->label : "", n_var > 1 ? ": " : "",
                         bl_lab_method_name((bl_lab_method)m), (unsigned long long)res->seeds[s]);
                j.run_t0 = bl_time_now();
                if (snprintf(path, sizeof path, "%s/ft_%s_%s_seed%llu.jsonl", logs, vname, bl_lab_method_name((bl_lab_method)m),
                             (unsigned long long)res->seeds[s]) >= (int)sizeof path) {
                    st = bl_fail(BALORA_STATUS_INVALID, "lab: output path too long: %s", logs);
                    break;
                }
                bool ts = s == 0 && v == 0 && cell->tsne != NULL; /* maps of the first variant only */
                double *val = cell->val + (int64_t)s * BL_LAB_METRIC_COUNT;
                ft_record fr = {.val = val, .loss = cell->loss + (int64_t)s * p.ft_steps, .ft_steps = p.ft_steps,
                                .tsne = ts ? cell->tsne : NULL, .n_tsne = n_tsne, .snap_step = cell->snap_step};
                snprintf(rec, sizeof rec, "%s/ft_%s_%s_seed%llu.json", runs, vname, bl_lab_method_name((bl_lab_method)m),
                         (unsigned long long)res->seeds[s]);
                if (bl_file_exists(rec)) { /* kept by an earlier, interrupted job */
                    if ((st = ft_record_read(rec, &fr))) break;
                    if (ts) cell->have_tsne = true;
                    j.n_skipped++;
                    j.n_ft_left--;
                    bl_log(BL_INFO, "lab: %s: kept from an earlier job (%s)", j.what, rec);
                    continue;
                }
                st = ft_run(&j, &c, &ds, pre_dir, (bl_lab_method)m, vr->rank, res->seeds[s], pt_logp, val,
                            cell->loss + (int64_t)s * p.ft_steps, ts, n_tsne, feat, cell->snap_step, path);
                if (st == BALORA_STATUS_INTERRUPTED) { st = lab_stopped(&j, runs, true); break; }
                if (st) { bl_fail_prefix(st, "%s", j.what); break; }
                if (ts) {
                    st = tsne_cell(&p, feat, n_tsne, p.pretrain.arch.hidden, cell->tsne);
                    if (st) break;
                    cell->have_tsne = true;
                }
                fr.seconds = bl_time_now() - j.run_t0;
                if ((st = ft_record_write(rec, &fr))) break;
                j.ft_time_sum += bl_time_now() - j.run_t0;
                j.n_ft_done++;
                j.n_ft_left--;
                job_report(&j, p.ft_steps, p.ft_steps, val[BL_LAB_FINAL_LOSS], false, true);
                if (balora_interrupted() && j.n_ft_left > 0) { st = lab_stopped(&j, runs, false); break; }
            }
            cell->seconds = bl_time_now() - t_cell;
        }
    }
    res->seconds = bl_time_now() - j.t0;
    free(pt_logp);
    free(feat);
    bl_train_data_free(&ds);
    if (have_c) bl_lab_corpus_free(&c);
    if (st) bl_lab_results_free(res);
    return st;
}
