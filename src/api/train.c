/* include/balora.h: balora_model_train, the orchestration of `balora train` (cli/cmd_train.c) over
 * src/train (causal LM) and src/encoders/finetune.h (sequence classification). Every call into the
 * trainer's internals is in this file. */
#include "api/internal.h"
#include "encoders/finetune.h"
#include "io/json.h"
#include "method/pissa.h"
#include "method/pissa_model.h"
#include "train/objective.h"
#include "train/balora.h"
#include "train/lm.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void balora_train_config_default(balora_train_config *c, balora_train_task task) {
    memset(c, 0, sizeof *c);
    c->task = task;
    c->method = BALORA_TRAIN_METHOD_LORA;
    c->targets = "auto"; c->init = "auto"; c->pissa_save = "converted";
    c->rank = 8; c->alpha = 8; c->dropout = 0;
    c->lr = 2e-4; c->schedule = "linear";
    c->adam_beta1 = 0.9; c->adam_beta2 = 0.999; c->adam_eps = 1e-8; c->max_grad_norm = 1.0;
    c->batch_size = 4; c->grad_accum = 1; c->epochs = 1; c->max_len = 512; c->seed = 42;
    c->save_total_limit = 3;
    c->data_format = "jsonl"; c->prompt_field = "query"; c->response_field = "response"; c->template_text = "alpaca";
    c->recipe = "paper-v1";
    c->lambda1 = c->lambda2 = c->lambda3 = -1;
    c->lambda_warmup_ratio = c->lambda_ramp_ratio = c->tau = -1;
    c->svd_k = c->top_k_entropy = -1;
    c->data_seed = -1; c->log_every = 10;
    if (task == BALORA_TRAIN_TASK_SEQ_CLS) { c->batch_size = 32; c->epochs = 3; c->max_len = 128; c->warmup_ratio = 0.06; }
}

static const char *method_name(balora_train_method m) {
    switch (m) {
    case BALORA_TRAIN_METHOD_LORA: return "lora";
    case BALORA_TRAIN_METHOD_PISSA: return "pissa";
    case BALORA_TRAIN_METHOD_BALORA: return "ba-lora";
    case BALORA_TRAIN_METHOD_FULL: return "full";
    }
    return NULL;
}

/* BA-LoRA's configuration: the recipe of the task, then each option that was set (as cmd_train.c's reg_from_opts). */
static balora_status reg_from_config(const balora_train_config *c, bl_reg_task task, bl_reg_config *rc) {
    BL_TRY(bl_reg_config_recipe(rc, c->recipe, task));
    const double lam[3] = {c->lambda1, c->lambda2, c->lambda3};
    double *lp[3] = {&rc->lambda1, &rc->lambda2, &rc->lambda3};
    for (int i = 0; i < 3; i++) {
        if (lam[i] >= 0) *lp[i] = lam[i];
        if (c->lambda_schedule[i]) BL_TRY(bl_lambda_sched_parse(c->lambda_schedule[i], &rc->sched[i]));
    }
    if (c->svd_k >= 0) rc->svd_k = c->svd_k;
    if (c->tau >= 0) rc->tau = c->tau;
    if (c->top_k_entropy >= 0) rc->top_k_entropy = c->top_k_entropy;
    if (c->lambda_warmup_ratio >= 0) rc->warmup_ratio = c->lambda_warmup_ratio;
    if (c->lambda_ramp_ratio >= 0) rc->ramp_ratio = c->lambda_ramp_ratio;
    if (c->svd_norm) BL_TRY(bl_reg_svd_norm_parse(c->svd_norm, &rc->svd_norm));
    return BALORA_STATUS_OK;
}

/* The run's options as JSON with `balora train`'s option names (config.json of each checkpoint,
 * results.json's "config"; usable with balora train --config). */
static char *config_json(const balora_train_config *c, const char *model) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
#define S(k, v) do { if (v) cJSON_AddStringToObject(o, k, v); } while (0)
#define N(k, v) cJSON_AddNumberToObject(o, k, (double)(v))
#define B(k, v) cJSON_AddBoolToObject(o, k, v)
    S("model", model); S("data", c->data); S("out", c->out_dir); S("method", method_name(c->method));
    S("pissa-save", c->pissa_save); B("save-residual", c->save_residual); B("train-embeddings", c->train_embeddings);
    S("targets", c->targets); N("rank", c->rank); N("alpha", c->alpha); N("dropout", c->dropout); B("rslora", c->rslora);
    S("init", c->init); N("lr", c->lr); S("schedule", c->schedule); N("warmup-ratio", c->warmup_ratio);
    N("warmup-steps", c->warmup_steps); N("weight-decay", c->weight_decay); N("loraplus-lr-ratio", c->loraplus_lr_ratio); N("adam-beta1", c->adam_beta1);
    N("adam-beta2", c->adam_beta2); N("adam-eps", c->adam_eps); N("max-grad-norm", c->max_grad_norm);
    N("batch-size", c->batch_size); N("grad-accum", c->grad_accum); N("epochs", c->epochs); N("max-steps", c->max_steps);
    N("max-len", c->max_len); N("seed", c->seed); N("threads", c->threads); S("log", c->log); S("tokenizer", c->tokenizer);
    S("recipe", c->recipe); N("lambda1", c->lambda1); N("lambda2", c->lambda2); N("lambda3", c->lambda3);
    S("lambda1-schedule", c->lambda_schedule[0]); S("lambda2-schedule", c->lambda_schedule[1]); S("lambda3-schedule", c->lambda_schedule[2]);
    N("lambda-warmup-ratio", c->lambda_warmup_ratio); N("lambda-ramp-ratio", c->lambda_ramp_ratio); N("svd-k", c->svd_k);
    S("svd-norm", c->svd_norm); N("distill-temp", c->tau); N("top-k-entropy", c->top_k_entropy);
    if (c->task == BALORA_TRAIN_TASK_CAUSAL_LM) {
        N("save-every", c->save_every); N("save-total-limit", c->save_total_limit); S("data-format", c->data_format);
        S("prompt-field", c->prompt_field); S("response-field", c->response_field); S("template", c->template_text);
        B("no-shuffle", c->no_shuffle); B("pad-to-max", c->pad_to_max);
    } else {
        S("task", "seq-cls"); S("dev", c->dev); S("glue-task", c->glue_task); S("text-col", c->text_col);
        S("text-pair-col", c->text_pair_col); S("label-col", c->label_col); S("labels", c->labels);
        B("regression", c->regression); B("no-header", c->no_header); B("skip-bad-rows", c->skip_bad_rows);
        N("num-labels", c->num_labels); N("label-noise", c->label_noise); N("imbalance", c->imbalance);
        N("imbalance-major", c->imbalance_major); N("max-train", c->max_train); N("data-seed", c->data_seed); N("log-every", c->log_every);
    }
#undef S
#undef N
#undef B
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

/* The trainer's progress record -> the public one. */
typedef struct progress_bridge { balora_train_progress_fn fn; void *user; } progress_bridge;
static void on_progress(const bl_progress *p, void *user) {
    const progress_bridge *b = user;
    balora_train_progress q = {.step = p->step, .total_steps = p->total_steps, .epoch = p->epoch, .loss = p->loss,
                               .task_loss = p->task_loss, .lr = p->lr, .grad_norm = p->grad_norm, .tokens = p->tokens,
                               .elapsed_s = p->elapsed_s, .eta_s = p->eta_s, .checkpoint = p->checkpoint, .final = p->final};
    b->fn(&q, b->user);
}

static balora_status check_common(const balora_train_config *c) {
    if (!c->data || !c->out_dir) return bl_fail(BALORA_STATUS_INVALID, "balora_train_config: data and out_dir are required");
    if (!method_name(c->method)) return bl_fail(BALORA_STATUS_INVALID, "balora_train_config.method: unknown value %d", (int)c->method);
    if (!c->targets || !c->init || !c->pissa_save || !c->schedule || !c->recipe || !c->data_format || !c->prompt_field ||
        !c->response_field || !c->template_text)
        return bl_fail(BALORA_STATUS_INVALID, "balora_train_config: a NULL string option; hint: start from balora_train_config_default");
    if (!(c->loraplus_lr_ratio >= 0) || (c->method == BALORA_TRAIN_METHOD_FULL && c->loraplus_lr_ratio > 0))
        return bl_fail(BALORA_STATUS_INVALID, "balora_train_config: loraplus_lr_ratio %g: needs an adapter (not full fine-tuning) and a ratio >= 0",
                       c->loraplus_lr_ratio);
    if (c->rank <= 0 || !(c->alpha > 0) || !(c->dropout >= 0 && c->dropout < 1) || c->threads < 0 || c->seed < 0)
        return bl_fail(BALORA_STATUS_INVALID, "balora_train_config: need rank >= 1, alpha > 0, 0 <= dropout < 1, threads >= 0, seed >= 0");
    if (c->threads > 0) balora_threads_set((int)c->threads);
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ causal LM (cmd_train.c's main path) */

static balora_status train_causal(balora_model *h, const balora_train_config *c, balora_train_result *res) {
    const char *init = c->init;
    bool use_balora = c->method == BALORA_TRAIN_METHOD_BALORA, full = c->method == BALORA_TRAIN_METHOD_FULL;
    bool pissa_method = c->method == BALORA_TRAIN_METHOD_PISSA;
    if (c->dev || c->glue_task || c->text_col || c->text_pair_col || c->label_col || c->labels || c->regression || c->no_header ||
        c->skip_bad_rows || c->num_labels || c->label_noise != 0 || c->imbalance != 0 || c->max_train || c->data_seed != -1)
        return bl_fail(BALORA_STATUS_INVALID, "balora_train_config: dev, glue_task, the column options and the data knobs belong to BALORA_TRAIN_TASK_SEQ_CLS");
    if (h->kind != BALORA_MODEL_KIND_CAUSAL_LM)
        return bl_fail(BALORA_STATUS_INVALID, "%s: a sequence classifier; hint: train it with task BALORA_TRAIN_TASK_SEQ_CLS", h->path);
    if (h->have_ad) return bl_fail(BALORA_STATUS_INVALID, "%s: the model already has an adapter; hint: balora_adapter_detach first", h->path);
    if (pissa_method && strcmp(init, "auto") != 0 && strncmp(init, "pissa", 5) != 0)
        return bl_fail(BALORA_STATUS_INVALID, "balora_train_config.init: method pissa takes pissa or pissa_niter_K, not %s", init);
    if (c->train_embeddings && !full) return bl_fail(BALORA_STATUS_INVALID, "balora_train_config.train_embeddings applies to method full");
    if (full && strcmp(init, "auto") != 0) return bl_fail(BALORA_STATUS_INVALID, "balora_train_config.init applies to adapters, not to method full");
    if (c->save_total_limit < 0) return bl_fail(BALORA_STATUS_INVALID, "balora_train_config.save_total_limit must be >= 0");
    bl_train_cfg tc;
    bl_train_cfg_default(&tc);
    BL_TRY(bl_schedule_parse(c->schedule, &tc.schedule));
    bl_train_data_cfg dc;
    bl_train_data_cfg_default(&dc);
    BL_TRY(bl_train_data_format_parse(c->data_format, &dc.format));

    bl_model *m = &h->dec;
    bl_adapter *ad = &h->ad;
    bl_train_lm lm = {0};
    bl_train_data ds = {0};
    const bl_train_tokenizer *tokp = NULL;
    bl_tok *tok = NULL;
    bl_train_tok tt = {0};
    char *cfg_json = NULL;
    bl_train_balora hook = {0};
    balora_status st = BALORA_STATUS_OK;
    bl_api_run_drop(h);

    bl_lora_config lc;
    bl_lora_config_default(&lc);
    bool pissa = false;
    int pissa_niter = -1;
    if (!full) { /* the adapter */
        lc.r = c->rank; lc.alpha = c->alpha; lc.dropout = c->dropout; lc.rslora = c->rslora;
        if (!strcmp(init, "auto")) init = use_balora || pissa_method ? "pissa" : "default";
        pissa = !strncmp(init, "pissa", 5);
        if (!strcmp(init, "gaussian")) lc.init = BL_LORA_INIT_GAUSSIAN;
        else if (pissa) {
            if ((st = bl_pissa_parse_init(init, &pissa_niter))) goto done;
            lc.init = BL_LORA_INIT_PISSA;
            lc.pissa_niter = pissa_niter > 0 ? pissa_niter : 0;
            lc.keep_initial = true;
        } else if (strcmp(init, "default") != 0) {
            st = bl_fail(BALORA_STATUS_INVALID, "balora_train_config.init: unknown '%s'; hint: default, gaussian, pissa or pissa_niter_K", init);
            goto done;
        }
        const char *tg = c->targets;
        if (!strcmp(tg, "auto")) tg = m->cfg.arch->targets_train;
        if ((st = bl_lora_config_set_targets(&lc, tg))) goto done;
        if (snprintf(lc.base_model, sizeof lc.base_model, "%s", h->path) >= (int)sizeof lc.base_model) {
            st = bl_fail(BALORA_STATUS_INVALID, "%s: the model path is longer than the %zu bytes of base_model_name_or_path", h->path, sizeof lc.base_model - 1);
            goto done;
        }
        if ((st = bl_lora_init(ad, &m->mods, &lc, (uint64_t)c->seed))) goto done;
        h->have_ad = true;
        if (pissa && (st = bl_pissa_init_adapter(ad, pissa_niter, (uint64_t)c->seed))) goto done;
    }
    dc.prompt_field = c->prompt_field;
    dc.response_field = c->response_field;
    dc.template_text = strcmp(c->template_text, "alpaca") == 0 ? NULL : c->template_text;
    dc.max_len = c->max_len;
    if (m->cfg.family == BL_FAMILY_GPT2 && c->max_len > m->cfg.max_pos) {
        bl_log(BL_WARN, "max_len %lld exceeds the model's %lld positions; using %lld", (long long)c->max_len, (long long)m->cfg.max_pos,
               (long long)m->cfg.max_pos);
        dc.max_len = m->cfg.max_pos;
    }
    dc.vocab_size = m->cfg.vocab_size;
    if (dc.format != BL_TRAIN_DATA_TOKENS) {
        const char *tdir = c->tokenizer ? c->tokenizer : (h->bin ? NULL : h->path);
        if (!tdir) {
            st = bl_fail(BALORA_STATUS_INVALID, "%s: a llama2.c checkpoint has no tokenizer; hint: set tokenizer or use data_format \"tokens\"", h->path);
            goto done;
        }
        if ((st = bl_tok_load(&tok, tdir))) { bl_fail_prefix(st, "loading the tokenizer (hint: the tokenizer option, or data_format \"tokens\")"); goto done; }
        bl_train_tok_init(&tt, tok, (int32_t)m->cfg.eos_token_id);
        tokp = &tt.iface;
    }
    if ((st = bl_train_data_load(&ds, c->data, &dc, tokp))) goto done;
    int64_t batch = c->batch_size > 0 ? c->batch_size : 1;
    st = full ? bl_train_lm_init_full(&lm, m, batch, ds.max_len, c->train_embeddings) : bl_train_lm_init(&lm, m, ad, batch, ds.max_len);
    if (st) goto done;
    bl_train_lm_set_meta(&lm, c->loraplus_lr_ratio);
    if (pissa) { lm.pissa = true; lm.pissa_as_is = !strcmp(c->pissa_save, "as-is"); lm.teacher_mode = BL_ADAPTER_INITIAL; }
    if ((c->save_residual || strcmp(c->pissa_save, "converted") != 0) && !pissa) {
        st = bl_fail(BALORA_STATUS_INVALID, "balora_train_config: pissa_save and save_residual apply to PiSSA-initialised adapters (method pissa or ba-lora, or init pissa)");
        goto done;
    }
    if (strcmp(c->pissa_save, "converted") != 0 && strcmp(c->pissa_save, "as-is") != 0) {
        st = bl_fail(BALORA_STATUS_INVALID, "balora_train_config.pissa_save: unknown '%s'; hint: converted or as-is", c->pissa_save);
        goto done;
    }
    const bl_extra_loss *extra = NULL;
    if (use_balora) {
        bl_reg_config rc;
        if ((st = reg_from_config(c, BL_REG_TASK_NLG, &rc))) goto done;
        if ((st = bl_train_balora_init(&hook, &rc, &bl_objective_causal_lm, batch * ds.max_len, m->cfg.vocab_size))) goto done;
        extra = &hook.iface;
    }
    tc.adam.lr = c->lr; tc.adam.beta1 = c->adam_beta1; tc.adam.beta2 = c->adam_beta2; tc.adam.eps = c->adam_eps;
    tc.adam.weight_decay = c->weight_decay;
    tc.adam.loraplus_lr_ratio = c->loraplus_lr_ratio;
    tc.warmup_ratio = c->warmup_ratio; tc.warmup_steps = c->warmup_steps; tc.max_grad_norm = c->max_grad_norm;
    tc.batch_size = c->batch_size; tc.grad_accum = c->grad_accum; tc.epochs = c->epochs; tc.max_steps = c->max_steps;
    tc.seed = (uint64_t)c->seed; tc.no_shuffle = c->no_shuffle; tc.pad_to_max = c->pad_to_max; tc.max_len = dc.max_len;
    tc.pad_id = 0;
    tc.out_dir = c->out_dir; tc.save_every = c->save_every; tc.save_keep = (int)c->save_total_limit; tc.resume = c->resume;
    tc.log_path = c->log;
    cfg_json = config_json(c, h->path);
    tc.config_json = cfg_json;
    progress_bridge pb = {c->progress, c->progress_user};
    if (c->progress) { tc.progress = on_progress; tc.progress_user = &pb; }
    bl_train_result r;
    if ((st = bl_train_run(&tc, &lm.iface, &ds, extra, &r))) goto done;
    if ((st = bl_mkdir_p(c->out_dir)) || (st = lm.iface.save(lm.iface.self, c->out_dir))) goto done;
    if (c->save_residual) { /* the base weights in memory hold W_res since the PiSSA initialisation */
        char res_dir[4200];
        if ((st = bl_path_join(res_dir, sizeof res_dir, c->out_dir, "residual")) || (st = bl_model_save(m, res_dir))) goto done;
    }
    h->pissa = lm.pissa;
    h->pissa_as_is = lm.pissa_as_is;
    if (res) *res = (balora_train_result){.steps = r.steps, .first_loss = r.first_loss, .last_loss = r.last_loss,
                                          .seconds = r.seconds, .tokens = r.tokens, .dev_score = NAN};
done:
    bl_train_balora_free(&hook);
    free(cfg_json);
    bl_train_lm_free(&lm);
    bl_train_data_free(&ds);
    bl_train_tok_free(&tt);
    if (tok) bl_tok_free(tok);
    if (st && h->have_ad) { bl_lora_free(ad); memset(ad, 0, sizeof *ad); h->have_ad = false; }
    return st;
}

/* ------------------------------------------------------------------ sequence classification (cmd_train.c's train_seqcls) */

/* Full fine-tuning: the tokenizer's files go beside the saved model (as cmd_train.c's copy_tokenizer). */
static balora_status copy_tokenizer(const char *src, const char *dst_dir) {
    static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                                        "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model", "spm.model"};
    char from[4200], to[4200];
    bool dir = bl_dir_exists(src);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (dir) BL_TRY(bl_path_join(from, sizeof from, src, files[i]));
        else if (i == 0) snprintf(from, sizeof from, "%s", src);
        else break;
        if (!bl_file_exists(from)) continue;
        BL_TRY(bl_path_join(to, sizeof to, dst_dir, files[i]));
        BL_TRY(bl_file_copy(from, to));
    }
    return BALORA_STATUS_OK;
}

static balora_status train_seqcls(balora_model *h, const balora_train_config *c, balora_train_result *res) {
    if (c->save_every || c->resume || c->no_shuffle || c->pad_to_max)
        return bl_fail(BALORA_STATUS_INVALID, "balora_train_config: save_every, resume, no_shuffle and pad_to_max apply to causal-LM training, not to seq-cls");
    if (strcmp(c->data_format, "jsonl") || strcmp(c->prompt_field, "query") || strcmp(c->response_field, "response") || strcmp(c->template_text, "alpaca"))
        return bl_fail(BALORA_STATUS_INVALID, "balora_train_config: data_format, prompt_field, response_field and template_text apply to causal-LM "
                       "training; hint: seq-cls reads GLUE TSVs (glue_task) or CSV/TSV/JSONL by extension (text_col, label_col)");
    if (c->train_embeddings) return bl_fail(BALORA_STATUS_INVALID, "balora_train_config.train_embeddings applies to causal-LM method full");
    if (h->kind != BALORA_MODEL_KIND_SEQ_CLS)
        return bl_fail(BALORA_STATUS_INVALID, "%s: a causal LM; hint: seq-cls needs an encoder or a *ForSequenceClassification folder", h->path);
    const char *method = method_name(c->method), *init = c->init;
    bool full = c->method == BALORA_TRAIN_METHOD_FULL, lora = c->method == BALORA_TRAIN_METHOD_LORA;
    bool pissa_family = c->method == BALORA_TRAIN_METHOD_PISSA || c->method == BALORA_TRAIN_METHOD_BALORA;
    if (c->log_every < 1 || c->num_labels < 0) return bl_fail(BALORA_STATUS_INVALID, "balora_train_config: need log_every >= 1, num_labels >= 0");
    bl_glue_task task = BL_GLUE_TASK_GENERIC;
    if (c->glue_task) BL_TRY(bl_glue_task_parse(c->glue_task, &task));
    if (task != BL_GLUE_TASK_GENERIC && (c->text_col || c->text_pair_col || c->label_col || c->labels || c->regression || c->no_header))
        return bl_fail(BALORA_STATUS_INVALID, "balora_train_config: glue_task %s has its own columns and labels; the column options are for generic files", c->glue_task);
    bl_seqcls_ft_cfg fc;
    bl_seqcls_ft_default(&fc);
    bl_data_spec spec = BL_DATA_SPEC_DEFAULT;
    if (c->text_col) spec.text_col = c->text_col;
    spec.text_pair_col = c->text_pair_col;
    if (c->label_col) spec.label_col = c->label_col;
    spec.labels = c->labels;
    spec.regression = c->regression;
    spec.header = !c->no_header;
    spec.skip_bad_rows = c->skip_bad_rows;
    fc.model = h->path;
    fc.tokenizer = c->tokenizer;
    fc.task = task;
    fc.spec = &spec;
    fc.train = c->data;
    fc.dev = c->dev;
    fc.skip_bad_rows = c->skip_bad_rows;
    fc.out_dir = c->out_dir;
    fc.knobs.label_noise = c->label_noise;
    fc.knobs.imbalance = c->imbalance;
    fc.knobs.imbalance_major = (int)c->imbalance_major;
    fc.knobs.max_train = c->max_train;
    fc.knobs.seed = (uint64_t)(c->data_seed >= 0 ? c->data_seed : c->seed);
    fc.method = method;
    fc.num_labels = c->num_labels;
    fc.seed = (uint64_t)c->seed;
    fc.log_every = c->log_every;
    fc.adam.lr = c->lr; fc.adam.beta1 = c->adam_beta1; fc.adam.beta2 = c->adam_beta2; fc.adam.eps = c->adam_eps;
    fc.adam.weight_decay = c->weight_decay;
    fc.adam.loraplus_lr_ratio = c->loraplus_lr_ratio;
    fc.warmup_ratio = c->warmup_ratio; fc.warmup_steps = c->warmup_steps; fc.max_grad_norm = c->max_grad_norm;
    fc.batch = c->batch_size; fc.grad_accum = c->grad_accum; fc.epochs = c->epochs; fc.max_steps = c->max_steps;
    fc.max_len = c->max_len;
    fc.log_path = c->log;
    if (fc.grad_accum < 1 || fc.max_steps < 0 || fc.warmup_steps < 0 || !(fc.warmup_ratio >= 0 && fc.warmup_ratio <= 1) || !(fc.max_grad_norm >= 0))
        return bl_fail(BALORA_STATUS_INVALID, "balora_train_config: need grad_accum >= 1, max_steps >= 0, warmup_steps >= 0, 0 <= warmup_ratio <= 1, max_grad_norm >= 0");
    BL_TRY(bl_schedule_parse(c->schedule, &fc.schedule));
    fc.lora.r = c->rank; fc.lora.alpha = c->alpha; fc.lora.dropout = c->dropout; fc.lora.rslora = c->rslora;
    if (snprintf(fc.lora.base_model, sizeof fc.lora.base_model, "%s", h->path) >= (int)sizeof fc.lora.base_model)
        return bl_fail(BALORA_STATUS_INVALID, "%s: the model path is longer than the %zu bytes of base_model_name_or_path", h->path, sizeof fc.lora.base_model - 1);
    if (!strcmp(init, "gaussian") && lora) fc.lora.init = BL_LORA_INIT_GAUSSIAN;
    else if (!strncmp(init, "pissa", 5) && pissa_family) {
        int niter = -1;
        BL_TRY(bl_pissa_parse_init(init, &niter));
        fc.pissa_niter = niter;
    } else if (strcmp(init, "auto") != 0 && !(strcmp(init, "default") == 0 && lora))
        return bl_fail(BALORA_STATUS_INVALID, "balora_train_config.init %s does not go with method %s; hint: lora takes default or gaussian, "
                       "pissa and ba-lora take pissa or pissa_niter_K, full takes none", init, method);
    /* "auto": no targets, bl_seqcls_finetune takes the model's default from the architecture table */
    if (!full && strcmp(c->targets, "auto") != 0) BL_TRY(bl_lora_config_set_targets(&fc.lora, c->targets));
    if (c->method == BALORA_TRAIN_METHOD_BALORA) BL_TRY(reg_from_config(c, BL_REG_TASK_NLU, &fc.reg));
    char *cfg_json = config_json(c, h->path);
    fc.config_json = cfg_json;
    progress_bridge pb = {c->progress, c->progress_user};
    if (c->progress) { fc.progress = on_progress; fc.progress_user = &pb; }
    bl_seqcls_ft_result r;
    balora_status st = bl_seqcls_finetune(&fc, &r);
    free(cfg_json);
    char sub[4200];
    if (!st) st = bl_path_join(sub, sizeof sub, c->out_dir, full ? "model" : "adapter");
    if (!st && full) st = copy_tokenizer(c->tokenizer ? c->tokenizer : h->path, sub);
    if (st) return st;
    /* the handle gets the result: the adapter attached to the model as loaded (its head shape must match
     * the trained head's), or the trained model folder (the handle is then that folder's model) */
    if (!full) {
        st = bl_lora_load(&h->ad, h->mods, sub, false);
        if (st) return bl_fail_prefix(st, "training done (%s written) but attaching it to the model failed: ", sub);
        h->have_ad = true;
        bl_api_run_drop(h);
    } else {
        bl_api_model_release(h);
        memset(h, 0, sizeof *h);
        if (snprintf(h->path, sizeof h->path, "%s", sub) >= (int)sizeof h->path) return bl_fail(BALORA_STATUS_INVALID, "%s: path too long", sub);
        h->mods = &h->dec.mods;
        BL_TRY(bl_api_model_load(h));
    }
    if (res) *res = (balora_train_result){.steps = r.steps, .first_loss = r.first_loss, .last_loss = r.last_loss, .seconds = r.seconds,
                                          .tokens = 0, .dev_score = r.have_dev ? r.dev.score : NAN};
    return BALORA_STATUS_OK;
}

balora_status balora_model_train(balora_model *m, const balora_train_config *c, balora_train_result *res) {
    if (!m || !c) return bl_fail(BALORA_STATUS_INVALID, "balora_model_train: NULL %s", m ? "config" : "model");
    BL_TRY(check_common(c));
    if (c->task == BALORA_TRAIN_TASK_CAUSAL_LM) return train_causal(m, c, res);
    if (c->task == BALORA_TRAIN_TASK_SEQ_CLS) return train_seqcls(m, c, res);
    return bl_fail(BALORA_STATUS_INVALID, "balora_train_config.task: unknown value %d", (int)c->task);
}
