/* Sequence-classification fine-tuning of encoders (finetune.h). */
#include "encoders/finetune.h"
#include "data_glue/seqcls.h"
#include "encoders/predict.h"
#include "io/json.h"
#include "train/lm.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void bl_seqcls_ft_default(bl_seqcls_ft_cfg *c) {
    memset(c, 0, sizeof *c);
    c->task = BL_GLUE_TASK_GENERIC;
    c->knobs = BL_DATA_KNOBS_DEFAULT;
    c->method = "lora";
    bl_lora_config_default(&c->lora);
    bl_lora_config_set_targets(&c->lora, "query,key,value");
    c->pissa_niter = -1;
    bl_reg_config_default(&c->reg, BL_REG_TASK_NLU);
    bl_adamw_cfg_default(&c->adam);
    c->adam.lr = 2e-4;
    c->schedule = BL_SCHEDULE_LINEAR;
    c->warmup_ratio = 0.06;
    c->max_grad_norm = 1.0;
    c->batch = 32;
    c->grad_accum = 1;
    c->epochs = 3;
    c->max_len = 128;
    c->seed = 42;
    c->log_every = 10;
}

typedef enum ft_method { FT_LORA = 0, FT_PISSA, FT_BALORA, FT_FULL } ft_method;

/* Rewrites targets for DeBERTa's names (query -> query_proj, ...) so one default fits all. */
static void map_targets(bl_lora_config *lc, const bl_clsm *m) {
    if (m->decoder || m->enc->cfg.arch != BL_ENC_DEBERTA_V2 || lc->target_regex[0]) return;
    for (int i = 0; i < lc->n_targets; i++)
        if (!strcmp(lc->targets[i], "query") || !strcmp(lc->targets[i], "key") || !strcmp(lc->targets[i], "value")) {
            size_t n = strlen(lc->targets[i]);
            memcpy(lc->targets[i] + n, "_proj", 6);
        }
}

static void shuffle(int64_t *perm, int64_t n, uint64_t seed, int64_t epoch) {
    bl_rng r;
    bl_rng_seed(&r, seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(epoch + 1)));
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)bl_rng_below(&r, (uint64_t)i + 1);
        int64_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
}

balora_status bl_seqcls_finetune(const bl_seqcls_ft_cfg *c, bl_seqcls_ft_result *res) {
    memset(res, 0, sizeof *res);
    ft_method meth;
    if (!c->method || !strcmp(c->method, "lora")) meth = FT_LORA;
    else if (!strcmp(c->method, "pissa")) meth = FT_PISSA;
    else if (!strcmp(c->method, "ba-lora") || !strcmp(c->method, "balora")) meth = FT_BALORA;
    else if (!strcmp(c->method, "full")) meth = FT_FULL;
    else return bl_fail(BALORA_STATUS_INVALID, "seq-cls: method '%s' is unknown; hint: lora, pissa, ba-lora or full", c->method);
    if (!c->model || !c->train) return bl_fail(BALORA_STATUS_INVALID, "seq-cls: a model and a training file are required");
    if (c->batch < 1 || c->max_len < 2 || (c->max_steps <= 0 && c->epochs <= 0) || !(c->adam.lr > 0))
        return bl_fail(BALORA_STATUS_INVALID, "seq-cls: batch %lld, max_len %lld, epochs %lld / max_steps %lld and lr %g must "
                       "be positive", (long long)c->batch, (long long)c->max_len, (long long)c->epochs,
                       (long long)c->max_steps, c->adam.lr);
    double t0 = bl_time_now();
    balora_status st = BALORA_STATUS_OK;
    bl_clsm *cm = bl_calloc(1, sizeof *cm);
    if (!cm) return BALORA_STATUS_NOMEM;
    bl_adapter ad;
    bl_glue_set tr, dv;
    bl_seqcls_set s;
    bl_adamw opt;
    bl_reg_ws ws;
    bl_tok *tok = NULL;
    memset(&ad, 0, sizeof ad); memset(&tr, 0, sizeof tr); memset(&dv, 0, sizeof dv);
    memset(&s, 0, sizeof s); memset(&opt, 0, sizeof opt); memset(&ws, 0, sizeof ws);
    bl_param *tp = NULL;
    const char **names = NULL;
    float **w = NULL, **g = NULL;
    int64_t *numel = NULL, *perm = NULL, *buf = NULL, *labels = NULL;
    bool *decay = NULL;
    float *targets = NULL, *z_pt = NULL;
    double *pred = NULL, *gold = NULL;
    cJSON *meta = NULL, *results = NULL;
    char *meta_str = NULL;

    /* data */
    const bl_glue_task_info *ti = bl_glue_task_get(c->task);
    bl_glue_opts go = {.skip_bad_rows = c->skip_bad_rows};
    if (ti) st = bl_glue_load(&tr, c->task, c->train, &go);
    else st = bl_data_load(&tr, c->spec, c->train);
    if (st) goto done;
    if (!tr.has_labels) { st = bl_fail(BALORA_STATUS_INVALID, "%s: the training file has no labels", c->train); goto done; }
    if ((st = bl_data_apply_knobs(&tr, &c->knobs))) goto done;
    res->n_train = tr.n;
    /* model */
    if ((st = bl_clsm_load(cm, c->model, tr.regression ? 1 : (c->num_labels > 0 ? c->num_labels : tr.n_labels), tr.regression,
                           c->seed))) goto done;
    if ((st = bl_tok_load(&tok, c->tokenizer ? c->tokenizer : c->model))) goto done;
    if (meth == FT_FULL && cm->decoder && c->out_dir) {
        st = bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: full fine-tuning of a decoder classifier cannot be saved; hint: use an "
                     "adapter (lora, pissa, ba-lora)", c->model);
        goto done;
    }
    /* adapter or full fine-tuning */
    int n_tp = 0;
    if (meth == FT_FULL) {
        if ((st = bl_clsm_set_full_ft(cm, true))) goto done;
        n_tp = cm->mods->n_params;
        tp = bl_calloc((size_t)n_tp, sizeof *tp);
        if (!tp) { st = BALORA_STATUS_NOMEM; goto done; }
        for (int i = 0; i < n_tp; i++) tp[i] = cm->mods->params[i];
    } else {
        bl_lora_config lc = c->lora;
        map_targets(&lc, cm);
        if (meth != FT_LORA) { lc.init = BL_LORA_INIT_PISSA; lc.pissa_niter = c->pissa_niter; lc.keep_initial = true; }
        if ((st = bl_lora_init(&ad, cm->mods, &lc, c->seed))) goto done;
        if (meth != FT_LORA && (st = bl_train_pissa_init(&ad, c->pissa_niter, c->seed))) goto done;
        n_tp = bl_lora_trainables(&ad, NULL, 0);
        tp = bl_calloc((size_t)n_tp, sizeof *tp);
        if (!tp) { st = BALORA_STATUS_NOMEM; goto done; }
        bl_lora_trainables(&ad, tp, n_tp);
    }
    names = bl_calloc((size_t)n_tp, sizeof *names);
    w = bl_calloc((size_t)n_tp, sizeof *w);
    g = bl_calloc((size_t)n_tp, sizeof *g);
    numel = bl_calloc((size_t)n_tp, sizeof *numel);
    decay = bl_calloc((size_t)n_tp, sizeof *decay);
    if (!names || !w || !g || !numel || !decay) { st = BALORA_STATUS_NOMEM; goto done; }
    for (int i = 0; i < n_tp; i++) {
        names[i] = tp[i].name;
        /* the head's trainable copy when it has one (modules_to_save), else the tensor itself */
        w[i] = meth == FT_FULL && tp[i].train_data ? tp[i].train_data : tp[i].data;
        g[i] = tp[i].grad;
        numel[i] = tp[i].numel;
        size_t ln = strlen(tp[i].name);
        decay[i] = !(ln > 5 && !strcmp(tp[i].name + ln - 5, ".bias")) && !strstr(tp[i].name, "LayerNorm");
    }
    if ((st = bl_adamw_init(&opt, &c->adam, n_tp, names, w, g, numel, decay))) goto done;
    /* tokens */
    int64_t max_len = c->max_len < cm->max_tokens ? c->max_len : cm->max_tokens;
    bl_seqcls_opts so = BL_SEQCLS_OPTS_DEFAULT;
    so.max_len = max_len;
    so.pad_id = cm->pad_id;
    if ((st = bl_seqcls_encode(&s, &tr, tok, &so))) goto done;
    if (s.n_truncated) bl_log(BL_INFO, "%s: %lld of %lld examples cut to %lld tokens", c->train, (long long)s.n_truncated,
                              (long long)s.n, (long long)max_len);
    int64_t B = c->batch < tr.n ? c->batch : tr.n, NL = cm->num_labels;
    int64_t accum = c->grad_accum > 0 ? c->grad_accum : 1;
    int64_t micro = (tr.n + B - 1) / B;                 /* micro-batches per epoch */
    int64_t per_epoch = (micro + accum - 1) / accum;     /* optimizer steps per epoch */
    int64_t total = c->max_steps > 0 ? c->max_steps : c->epochs * per_epoch;
    int64_t warm = bl_warmup_steps(total, 0, c->warmup_ratio);
    perm = bl_malloc(sizeof(int64_t) * (size_t)tr.n);                       /* [n] */
    buf = bl_malloc(sizeof(int64_t) * (size_t)(3 * B * max_len));          /* ids, mask, types [B, max_len] */
    labels = bl_malloc(sizeof(int64_t) * (size_t)B);                        /* [B] */
    targets = bl_malloc(sizeof(float) * (size_t)B);                         /* [B] */
    z_pt = bl_malloc(sizeof(float) * (size_t)(B * NL));                     /* [B, NL] teacher logits */
    if (!perm || !buf || !labels || !targets || !z_pt) { st = BALORA_STATUS_NOMEM; goto done; }
    if ((st = bl_clsm_run_init(cm, B, max_len))) goto done;
    cm->train = true;
    if (meth == FT_BALORA && (st = bl_reg_ws_init(&ws, BL_REG_TASK_NLU, B, NL, 0))) goto done;
    int64_t *ids = buf, *mask = buf + B * max_len, *types = mask + B * max_len;
    double win = 0;
    int64_t win_n = 0;
    for (int64_t step = 0; step < total; step++) {
        int64_t epoch = step / per_epoch, k0 = (step % per_epoch) * accum;
        if (k0 == 0) shuffle(perm, tr.n, c->seed, epoch);
        int64_t k1 = k0 + accum < micro ? k0 + accum : micro; /* micro-batches [k0, k1) of this step */
        int64_t step_n = (k1 * B < tr.n ? k1 * B : tr.n) - k0 * B;
        double step_loss = 0;
        bl_adamw_zero_grad(&opt);
        for (int64_t k = k0; k < k1; k++) {
            int64_t nb = tr.n - k * B < B ? tr.n - k * B : B, T;
            float wgt = (float)nb / (float)step_n; /* the step's loss is the mean over its examples */
            if ((st = bl_seqcls_batch(&s, perm + k * B, nb, ids, mask, types, labels, targets, &T))) goto done;
            bl_rng_seed(cm->rng, c->seed ^ (0xd1b54a32d192ed03ULL * (uint64_t)(step * accum + (k - k0) + 1)));
            if (meth == FT_BALORA) {
                /* the teacher: the original model (W_res + s B0 A0) with the head's initial weights */
                if ((st = bl_clsm_forward(cm, nb, T, ids, mask, types, BL_ADAPTER_INITIAL))) goto done;
                memcpy(z_pt, cm->logits, sizeof(float) * (size_t)(nb * NL));
            }
            if ((st = bl_clsm_forward(cm, nb, T, ids, mask, types, BL_ADAPTER_ON))) goto done;
            double loss;
            if ((st = bl_clsm_loss(cm, labels, targets, &loss))) goto done;
            if (meth == FT_BALORA) {
                bl_reg_out ro;
                if ((st = bl_reg_apply(&ws, &c->reg, step, total, nb, 1, NL, cm->logits, z_pt, NULL, cm->dlogits, &ro))) goto done;
            }
            if (wgt != 1.0f) bl_scale(cm->dlogits, wgt, nb * NL);
            if ((st = bl_clsm_backward(cm))) goto done;
            step_loss += wgt * loss;
        }
        bl_clip_grad_norm(&opt, c->max_grad_norm);
        bl_adamw_step(&opt, c->adam.lr * bl_schedule_factor(c->schedule, step, warm, total));
        win += step_loss;
        win_n++;
        int64_t le = c->log_every > 0 ? c->log_every : 10;
        if (win_n == le || step == total - 1) {
            if (res->first_loss == 0) res->first_loss = win / (double)win_n;
            res->last_loss = win / (double)win_n;
            bl_log(BL_INFO, "step %lld/%lld  loss %.4f", (long long)(step + 1), (long long)total, win / (double)win_n);
            win = 0;
            win_n = 0;
        }
        res->steps = step + 1;
    }
    /* dev */
    if (c->dev) {
        if (ti) st = bl_glue_load(&dv, c->task, c->dev, &go);
        else {
            bl_data_spec sp = c->spec ? *c->spec : BL_DATA_SPEC_DEFAULT;
            char map[BL_DATA_MAX_LABELS * BL_DATA_LABEL_NAME];
            if (!tr.regression && !(st = bl_glue_set_label_map(&tr, map, sizeof map))) sp.labels = map;
            if (!st) st = bl_data_load(&dv, &sp, c->dev);
        }
        if (st) goto done;
        if (dv.has_labels) {
            pred = bl_malloc(sizeof(double) * (size_t)dv.n);
            gold = bl_malloc(sizeof(double) * (size_t)dv.n);
            if (!pred || !gold) { st = BALORA_STATUS_NOMEM; goto done; }
            if ((st = bl_clsm_predict(cm, tok, &dv, BL_ADAPTER_ON, max_len, B, pred, NULL))) goto done;
            for (int64_t i = 0; i < dv.n; i++) gold[i] = dv.regression ? dv.score[i] : dv.label[i];
            int32_t ncls = dv.regression ? 0 : (int32_t)(NL > 1 ? NL : 2);
            if (ncls <= 4) {
                if ((st = bl_glue_score(ti ? c->task : BL_GLUE_TASK_GENERIC, pred, gold, dv.n, ncls, &res->dev))) goto done;
            } else {
                res->dev.task = BL_GLUE_TASK_GENERIC;
                res->dev.n = dv.n;
                int64_t ok = 0;
                for (int64_t i = 0; i < dv.n; i++) ok += pred[i] == gold[i];
                res->dev.accuracy = res->dev.score = (double)ok / (double)dv.n;
            }
            res->have_dev = true;
        }
    }
    res->seconds = bl_time_now() - t0;
    /* outputs */
    if (c->out_dir) {
        if ((st = bl_mkdir_p(c->out_dir))) goto done;
        if ((st = bl_data_meta_json(&tr, &meta))) goto done;
        meta_str = cJSON_PrintUnformatted(meta);
        char lr[32], steps[32], seed[32], l1[32], l2[32], l3[32];
        snprintf(lr, sizeof lr, "%g", c->adam.lr);
        snprintf(steps, sizeof steps, "%lld", (long long)res->steps);
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
        snprintf(l1, sizeof l1, "%g", meth == FT_BALORA ? c->reg.lambda1 : 0.0);
        snprintf(l2, sizeof l2, "%g", meth == FT_BALORA ? c->reg.lambda2 : 0.0);
        snprintf(l3, sizeof l3, "%g", meth == FT_BALORA ? c->reg.lambda3 : 0.0);
        const char *keys[] = {"balora_method", "balora_lr", "balora_steps", "balora_seed", "balora_lambda1", "balora_lambda2",
                              "balora_lambda3", "balora_data"};
        const char *vals[] = {c->method ? c->method : "lora", lr, steps, seed, l1, l2, l3, meta_str ? meta_str : "{}"};
        char path[4200];
        if (meth == FT_FULL) {
            if ((st = bl_path_join(path, sizeof path, c->out_dir, "model"))) goto done;
            if ((st = bl_clsm_save(cm, path))) goto done;
        } else {
            if ((st = bl_path_join(path, sizeof path, c->out_dir, "adapter"))) goto done;
            if (meth == FT_LORA) st = bl_lora_save(&ad, path, 8, keys, vals);
            else st = bl_train_pissa_save_converted(&ad, path, 8, keys, vals);
            if (st) goto done;
        }
        results = cJSON_CreateObject();
        cJSON_AddStringToObject(results, "model", c->model);
        cJSON_AddStringToObject(results, "method", c->method ? c->method : "lora");
        cJSON_AddItemToObject(results, "data", meta);
        meta = NULL;
        cJSON_AddNumberToObject(results, "steps", (double)res->steps);
        cJSON_AddNumberToObject(results, "first_loss", res->first_loss);
        cJSON_AddNumberToObject(results, "last_loss", res->last_loss);
        cJSON_AddNumberToObject(results, "seconds", res->seconds);
        if (res->have_dev) {
            cJSON *d = cJSON_AddObjectToObject(results, "dev");
            cJSON_AddStringToObject(d, "file", c->dev);
            cJSON_AddNumberToObject(d, "n", (double)res->dev.n);
            cJSON_AddNumberToObject(d, "score", res->dev.score);
            if (dv.regression) {
                cJSON_AddNumberToObject(d, "pearson", res->dev.pearson);
                cJSON_AddNumberToObject(d, "spearman", res->dev.spearman);
            } else {
                cJSON_AddNumberToObject(d, "accuracy", res->dev.accuracy);
                cJSON_AddNumberToObject(d, "f1", res->dev.f1);
                cJSON_AddNumberToObject(d, "mcc", res->dev.mcc);
            }
        }
        if ((st = bl_path_join(path, sizeof path, c->out_dir, "results.json"))) goto done;
        if ((st = bl_json_save(results, path))) goto done;
    }
done:
    cJSON_Delete(meta);
    cJSON_Delete(results);
    free(meta_str);
    free(pred); free(gold); free(perm); free(buf); free(labels); free(targets); free(z_pt);
    free(tp); free(names); free(w); free(g); free(numel); free(decay);
    bl_reg_ws_free(&ws);
    bl_adamw_free(&opt);
    bl_seqcls_free(&s);
    bl_glue_set_free(&dv);
    bl_glue_set_free(&tr);
    if (tok) bl_tok_free(tok);
    bl_lora_free(&ad);
    bl_clsm_free(cm);
    free(cm);
    return st;
}
