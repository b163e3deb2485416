/* Sequence-classification fine-tuning of encoders (finetune.h). */
#include "encoders/finetune.h"
#include "data_glue/seqcls.h"
#include "encoders/predict.h"
#include "io/json.h"
#include "method/pissa_model.h"
#include "train/balora.h"
#include "train/cls.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void bl_seqcls_ft_default(bl_seqcls_ft_cfg *c) {
    memset(c, 0, sizeof *c);
    c->task = BL_GLUE_TASK_GENERIC;
    c->knobs = BL_DATA_KNOBS_DEFAULT;
    c->method = "lora";
    bl_lora_config_default(&c->lora); /* no targets: the model's row of the architecture table decides */
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
    c->save_keep = 3;
}

typedef enum ft_method { FT_LORA = 0, FT_PISSA, FT_BALORA, FT_FULL } ft_method;

/* No targets given: the default --targets of the model's row (model/arch.h). Targets given for a
 * DeBERTa: BERT's names are rewritten to DeBERTa's (query -> query_proj, ...) so one list fits all. */
static balora_status map_targets(bl_lora_config *lc, const bl_clsm *m) {
    if (!lc->n_targets && !lc->target_regex[0])
        return bl_lora_config_set_targets(lc, m->decoder ? m->dec->cfg.arch->targets_train : m->enc->cfg.row->targets_train);
    if (m->decoder || m->enc->cfg.arch != BL_ENC_DEBERTA_V2 || lc->target_regex[0]) return BALORA_STATUS_OK;
    for (int i = 0; i < lc->n_targets; i++)
        if (!strcmp(lc->targets[i], "query") || !strcmp(lc->targets[i], "key") || !strcmp(lc->targets[i], "value")) {
            size_t n = strlen(lc->targets[i]);
            memcpy(lc->targets[i] + n, "_proj", 6);
        }
    return BALORA_STATUS_OK;
}

/* Per-step progress of the trainer: the first / last log_every-step loss windows of results.json, then
 * the caller's progress (or a bl_log line per window). */
typedef struct ft_watch {
    const bl_seqcls_ft_cfg *c;
    bl_seqcls_ft_result *res;
    double win;
    int64_t win_n;
    bool have_first;
} ft_watch;

static void ft_on_step(const bl_progress *p, void *user) {
    ft_watch *fw = user;
    const bl_seqcls_ft_cfg *c = fw->c;
    fw->win += p->task_loss;
    fw->win_n++;
    int64_t le = c->log_every > 0 ? c->log_every : 10;
    if (fw->win_n == le || p->final) {
        double m = fw->win / (double)fw->win_n;
        if (!fw->have_first) { fw->res->first_loss = m; fw->have_first = true; }
        fw->res->last_loss = m;
        if (!c->progress) bl_log(BL_INFO, "step %lld/%lld  loss %.4f", (long long)p->step, (long long)p->total_steps, m);
        fw->win = 0;
        fw->win_n = 0;
    }
    if (c->progress) c->progress(p, c->progress_user);
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
    bl_train_data ds;
    bl_train_cls tc;
    bl_train_balora hook;
    bl_tok *tok = NULL;
    memset(&ad, 0, sizeof ad); memset(&tr, 0, sizeof tr); memset(&dv, 0, sizeof dv);
    memset(&s, 0, sizeof s); memset(&ds, 0, sizeof ds); memset(&tc, 0, sizeof tc); memset(&hook, 0, sizeof hook);
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
    res->train_meta = tr.meta;
    /* model */
    if ((st = bl_clsm_load(cm, c->model, tr.regression ? 1 : (c->num_labels > 0 ? c->num_labels : tr.n_labels), tr.regression,
                           c->seed))) goto done;
    if ((st = bl_tok_load(&tok, c->tokenizer ? c->tokenizer : c->model))) goto done;
    if (meth == FT_FULL && cm->decoder && c->out_dir) {
        st = bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: full fine-tuning of a decoder classifier cannot be saved; hint: use an "
                     "adapter (lora, pissa, ba-lora)", c->model);
        goto done;
    }
    /* adapter (or full fine-tuning, switched on by bl_train_cls_init) */
    if (meth != FT_FULL) {
        bl_lora_config lc = c->lora;
        if ((st = map_targets(&lc, cm))) goto done;
        if (meth != FT_LORA) { lc.init = BL_LORA_INIT_PISSA; lc.pissa_niter = c->pissa_niter; lc.keep_initial = true; }
        if ((st = bl_lora_init(&ad, cm->mods, &lc, c->seed))) goto done;
        if (meth != FT_LORA && (st = bl_pissa_init_adapter(&ad, c->pissa_niter, c->seed))) goto done;
    }
    /* tokens */
    int64_t max_len = c->max_len < cm->max_tokens ? c->max_len : cm->max_tokens;
    bl_seqcls_opts so = BL_SEQCLS_OPTS_DEFAULT;
    so.max_len = max_len;
    so.pad_id = cm->pad_id;
    if ((st = bl_seqcls_encode(&s, &tr, tok, &so))) goto done;
    if (s.n_truncated) bl_log(BL_INFO, "%s: %lld of %lld examples cut to %lld tokens", c->train, (long long)s.n_truncated,
                              (long long)s.n, (long long)max_len);
    if ((st = bl_train_data_seqcls(&ds, &s))) goto done;
    int64_t B = c->batch < tr.n ? c->batch : tr.n, NL = cm->num_labels;
    if ((st = bl_train_cls_init(&tc, cm, meth == FT_FULL ? NULL : &ad, B, ds.max_len))) goto done;
    /* the adapter's metadata (checkpoints and the final adapter) */
    char lr_s[32], seed_s[32], l1[32], l2[32], l3[32];
    snprintf(lr_s, sizeof lr_s, "%g", c->adam.lr);
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)c->seed);
    snprintf(l1, sizeof l1, "%g", meth == FT_BALORA ? c->reg.lambda1 : 0.0);
    snprintf(l2, sizeof l2, "%g", meth == FT_BALORA ? c->reg.lambda2 : 0.0);
    snprintf(l3, sizeof l3, "%g", meth == FT_BALORA ? c->reg.lambda3 : 0.0);
    if ((st = bl_data_meta_json(&tr, &meta))) goto done;
    meta_str = cJSON_PrintUnformatted(meta);
    {
        const char *keys[] = {"balora_method", "balora_lr", "balora_seed", "balora_lambda1", "balora_lambda2", "balora_lambda3",
                              "balora_data"};
        const char *vals[] = {c->method ? c->method : "lora", lr_s, seed_s, l1, l2, l3, meta_str ? meta_str : "{}"};
        tc.n_meta = 7;
        for (int i = 0; i < 7; i++) { tc.meta_keys[i] = keys[i]; tc.meta_vals[i] = vals[i]; }
    }
    char loraplus_s[32];
    if (c->adam.loraplus_lr_ratio > 0) { /* an optimizer setting PEFT does not store */
        snprintf(loraplus_s, sizeof loraplus_s, "%g", c->adam.loraplus_lr_ratio);
        tc.meta_keys[tc.n_meta] = "balora_loraplus_lr_ratio"; tc.meta_vals[tc.n_meta++] = loraplus_s;
    }
    if (meth != FT_LORA && meth != FT_FULL) { tc.pissa = true; tc.teacher_mode = BL_ADAPTER_INITIAL; }
    const bl_train_objective *obj = tr.regression ? &bl_objective_seqcls_mse : &bl_objective_seqcls;
    const bl_extra_loss *extra = NULL;
    if (meth == FT_BALORA) {
        /* the teacher: the original model (W_res + s B0 A0) with the head's initial weights */
        if ((st = bl_train_balora_init(&hook, &c->reg, obj, B, cm->num_labels))) goto done;
        extra = &hook.iface;
    }
    /* the one training loop */
    bl_train_cfg tcfg;
    bl_train_cfg_default(&tcfg);
    tcfg.objective = obj;
    tcfg.adam = c->adam;
    tcfg.schedule = c->schedule;
    tcfg.warmup_ratio = c->warmup_ratio;
    tcfg.warmup_steps = c->warmup_steps;
    tcfg.max_grad_norm = c->max_grad_norm;
    tcfg.batch_size = B;
    tcfg.grad_accum = c->grad_accum > 0 ? c->grad_accum : 1;
    tcfg.epochs = c->epochs;
    tcfg.max_steps = c->max_steps;
    tcfg.seed = c->seed;
    tcfg.max_len = ds.max_len;
    tcfg.pad_id = (int32_t)cm->pad_id;
    tcfg.out_dir = c->out_dir;
    tcfg.save_every = c->save_every;
    tcfg.save_keep = c->save_keep;
    tcfg.resume = c->resume;
    tcfg.stop_after = c->stop_after;
    tcfg.log_path = c->log_path;
    tcfg.config_json = c->config_json;
    ft_watch fw = {.c = c, .res = res};
    tcfg.progress = ft_on_step;
    tcfg.progress_user = &fw;
    bl_train_result trr;
    if ((st = bl_train_run(&tcfg, &tc.iface, &ds, extra, &trr))) goto done;
    res->steps = trr.steps;
    res->resumed_from = trr.resumed_from;
    if (c->stop_after > 0 && trr.steps < bl_train_total_steps(&tcfg, ds.n)) { /* as if killed: no dev scores, no outputs */
        res->stopped = true;
        res->seconds = bl_time_now() - t0;
        goto done;
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
        char steps[32];
        snprintf(steps, sizeof steps, "%lld", (long long)res->steps);
        /* the final adapter records the step count too */
        tc.meta_keys[tc.n_meta] = "balora_steps";
        tc.meta_vals[tc.n_meta] = steps;
        tc.n_meta++;
        char path[4200];
        if ((st = bl_path_join(path, sizeof path, c->out_dir, meth == FT_FULL ? "model" : "adapter"))) goto done;
        if ((st = tc.iface.save(tc.iface.self, path))) goto done;
        results = cJSON_CreateObject();
        cJSON_AddStringToObject(results, "model", c->model);
        cJSON_AddStringToObject(results, "method", c->method ? c->method : "lora");
        cJSON_AddStringToObject(results, "task", ti ? ti->name : "generic");
        if (c->config_json) {
            cJSON *cj = cJSON_Parse(c->config_json);
            if (cj) cJSON_AddItemToObject(results, "config", cj);
            else cJSON_AddStringToObject(results, "config", c->config_json);
        }
        cJSON_AddNumberToObject(results, "n_train", (double)res->n_train);
        if (meth == FT_BALORA) { /* the regularisers as they were applied */
            cJSON *rg = cJSON_AddObjectToObject(results, "balora");
            cJSON_AddNumberToObject(rg, "lambda1", c->reg.lambda1);
            cJSON_AddNumberToObject(rg, "lambda2", c->reg.lambda2);
            cJSON_AddNumberToObject(rg, "lambda3", c->reg.lambda3);
            cJSON_AddStringToObject(rg, "lambda1_schedule", bl_lambda_sched_name(c->reg.sched[0]));
            cJSON_AddStringToObject(rg, "lambda2_schedule", bl_lambda_sched_name(c->reg.sched[1]));
            cJSON_AddStringToObject(rg, "lambda3_schedule", bl_lambda_sched_name(c->reg.sched[2]));
            cJSON_AddNumberToObject(rg, "svd_k", (double)c->reg.svd_k);
            cJSON_AddStringToObject(rg, "svd_norm", bl_reg_svd_norm_name(c->reg.svd_norm));
        }
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
                int32_t nc = res->dev.n_classes;
                cJSON *cmx = nc > 0 && nc <= BL_GLUE_MAX_CLASSES ? cJSON_AddArrayToObject(d, "confusion_matrix") : NULL;
                for (int32_t t = 0; cmx && t < nc; t++) {
                    cJSON *row = cJSON_CreateArray();
                    for (int32_t q = 0; row && q < nc; q++) cJSON_AddItemToArray(row, cJSON_CreateNumber((double)res->dev.confusion[t * nc + q]));
                    cJSON_AddItemToArray(cmx, row);
                }
            }
        }
        if ((st = bl_path_join(path, sizeof path, c->out_dir, "results.json"))) goto done;
        if ((st = bl_json_save(results, path))) goto done;
    }
done:
    cJSON_Delete(meta);
    cJSON_Delete(results);
    free(meta_str);
    free(pred); free(gold);
    bl_train_balora_free(&hook);
    bl_train_cls_free(&tc);
    bl_train_data_free(&ds);
    bl_seqcls_free(&s);
    bl_glue_set_free(&dv);
    bl_glue_set_free(&tr);
    if (tok) bl_tok_free(tok);
    bl_lora_free(&ad);
    bl_clsm_free(cm);
    free(cm);
    return st;
}
