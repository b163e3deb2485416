/* balora train: fine-tune a causal LM with LoRA (PiSSA and BA-LoRA plug in through src/method).
 *   balora train --model DIR --data FILE --out ADAPTER_DIR [options]
 * The adapter folder (PEFT format) is written to --out; checkpoints go to --out/checkpoint-STEP.
 *
 * With --task seq-cls the same options (plus the seq-cls ones) fine-tune a sequence classifier
 * (src/encoders/finetune.h: encoders and decoder *ForSequenceClassification checkpoints) on GLUE or
 * generic data; --out is then a run folder: OUT/adapter (or OUT/model for --method full) and
 * OUT/results.json (the options, the data knobs' exact effect, losses and dev metrics). */
#include "cli.h"
#include "args.h"
#include "encoders/finetune.h"
#include "io/json.h"
#include "train/balora.h"
#include "method/pissa_model.h"
#include "train/lm.h"
#include "method/pissa.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct progress_ui { bool tty; int width; } progress_ui;

static void on_progress(const bl_progress *p, void *user) {
    progress_ui *ui = user;
    char line[1024];
    bl_progress_format(p, line, sizeof line);
    if (ui->tty) {
        int n = (int)strlen(line);
        fprintf(stderr, "\r%s%*s", line, ui->width > n ? ui->width - n : 0, "");
        ui->width = n;
        if (p->final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s%s\n", line, p->checkpoint ? " | checkpoint saved" : "");
    }
    fflush(stderr);
}

/* The options of this run as JSON (config.json of each checkpoint; usable with --config), less those
 * named in skip (NULL-terminated; may be NULL). */
static char *options_json(const cli_opt *opts, int n, const char *const *skip) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    for (int i = 0; i < n; i++) {
        const cli_opt *x = &opts[i];
        if (!strcmp(x->name, "resume") || !strcmp(x->name, "stop-after")) continue; /* not options of the run */
        bool skipped = false;
        for (int k = 0; skip && skip[k]; k++) skipped |= !strcmp(x->name, skip[k]);
        if (skipped) continue;
        switch (x->type) {
        case CLI_OPT_STR: { const char *s = *(const char **)x->dst; if (s) cJSON_AddStringToObject(o, x->name, s); break; }
        case CLI_OPT_INT: cJSON_AddNumberToObject(o, x->name, (double)*(int64_t *)x->dst); break;
        case CLI_OPT_FLOAT: cJSON_AddNumberToObject(o, x->name, *(double *)x->dst); break;
        case CLI_OPT_FLAG: cJSON_AddBoolToObject(o, x->name, *(bool *)x->dst); break;
        case CLI_OPT_LATEST: break; /* --resume only, skipped above */
        }
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* BA-LoRA's options (--method balora / ba-lora): -1 / NULL = the value of --recipe. */
typedef struct reg_opts {
    const char *recipe, *svd_norm, *sched[3];
    double lambda[3], tau, warmup, ramp;
    int64_t svd_k, top_k_entropy;
} reg_opts;

/* The regulariser configuration: the recipe of the task (NLG for causal LMs, NLU for classifiers),
 * then each option that was set. */
static balora_status reg_from_opts(const reg_opts *o, bl_reg_task task, bl_reg_config *rc) {
    BL_TRY(bl_reg_config_recipe(rc, o->recipe, task));
    double *lp[3] = {&rc->lambda1, &rc->lambda2, &rc->lambda3};
    for (int i = 0; i < 3; i++) {
        if (o->lambda[i] >= 0) *lp[i] = o->lambda[i];
        if (o->sched[i]) BL_TRY(bl_lambda_sched_parse(o->sched[i], &rc->sched[i]));
    }
    if (o->svd_k >= 0) rc->svd_k = o->svd_k;
    if (o->tau >= 0) rc->tau = o->tau;
    if (o->top_k_entropy >= 0) rc->top_k_entropy = o->top_k_entropy;
    if (o->warmup >= 0) rc->warmup_ratio = o->warmup;
    if (o->ramp >= 0) rc->ramp_ratio = o->ramp;
    if (o->svd_norm) BL_TRY(bl_reg_svd_norm_parse(o->svd_norm, &rc->svd_norm));
    return BALORA_STATUS_OK;
}

/* The options only --task seq-cls reads (src/data_glue/data.h, src/encoders/finetune.h). */
typedef struct seqcls_opts {
    const char *task, *dev, *glue_task, *text_col, *text_pair_col, *label_col, *labels;
    bool regression, no_header, skip_bad_rows;
    double label_noise, imbalance;
    int64_t imbalance_major, max_train, data_seed, num_labels, log_every;
} seqcls_opts;
#define SEQCLS_OPTS_DEFAULT ((seqcls_opts){ .task = "causal-lm", .data_seed = -1, .log_every = 10 })

/* --task seq-cls on the command line: its defaults are set before parsing so --help shows them
 * (a --task given in a --config file is handled after parsing, by parsing again). */
/* --task nlg / nlu (BA-LoRA's names, docs/METHOD.md 3.1/3.2) are causal-lm / seq-cls. */
static const char *task_canonical(const char *t) {
    if (t && !strcmp(t, "nlu")) return "seq-cls";
    if (t && !strcmp(t, "nlg")) return "causal-lm";
    return t;
}

static bool argv_wants_seqcls(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--task") && i + 1 < argc) return !strcmp(task_canonical(argv[i + 1]), "seq-cls");
        if (!strncmp(argv[i], "--task=", 7)) return !strcmp(task_canonical(argv[i] + 7), "seq-cls");
    }
    return false;
}

static void print_dev(const bl_seqcls_ft_result *r, const char *dev) {
    if (!r->have_dev) return;
    if (r->dev.task == BL_GLUE_TASK_STSB)
        bl_log(BL_INFO, "dev %s (%lld examples): pearson %.4f, spearman %.4f, score %.4f", dev, (long long)r->dev.n, r->dev.pearson,
               r->dev.spearman, r->dev.score);
    else
        bl_log(BL_INFO, "dev %s (%lld examples): accuracy %.4f, f1 %.4f, mcc %.4f, score %.4f", dev, (long long)r->dev.n,
               r->dev.accuracy, r->dev.f1, r->dev.mcc, r->dev.score);
}

/* --method full: the tokenizer's files go beside the saved model, so the folder is complete (as
 * transformers' Trainer saves them). src: a tokenizer folder or a tokenizer.json file. */
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

/* The value of option `name` of the table (the one table both tasks parse). */
static const void *opt_dst(const cli_opt *opts, int n, const char *name) {
    for (int i = 0; i < n; i++) if (!strcmp(opts[i].name, name)) return opts[i].dst;
    return NULL; /* every name below is in the table */
}
#define OPT_S(name) (*(const char *const *)opt_dst(opts, n_opts, name))
#define OPT_I(name) (*(const int64_t *)opt_dst(opts, n_opts, name))
#define OPT_F(name) (*(const double *)opt_dst(opts, n_opts, name))
#define OPT_B(name) (*(const bool *)opt_dst(opts, n_opts, name))

/* balora train --task seq-cls: fills bl_seqcls_ft_cfg from the parsed table and runs bl_seqcls_finetune. */
static int train_seqcls(const seqcls_opts *sq, const reg_opts *ro, const cli_opt *opts, int n_opts) {
    /* options of causal-LM training that have no meaning here */
    static const char *const lm_only[] = {"no-shuffle", "pad-to-max"};
    for (size_t i = 0; i < sizeof lm_only / sizeof lm_only[0]; i++) {
        const cli_opt *o = NULL;
        for (int k = 0; k < n_opts; k++) if (!strcmp(opts[k].name, lm_only[i])) o = &opts[k];
        bool set = o->type == CLI_OPT_STR ? *(const char **)o->dst != NULL : o->type == CLI_OPT_INT ? *(int64_t *)o->dst != 0 : *(bool *)o->dst;
        if (set) { fprintf(stderr, "balora train: error: --%s applies to causal-LM training, not to --task seq-cls\n", lm_only[i]); return 2; }
    }
    if (strcmp(OPT_S("data-format"), "jsonl") || strcmp(OPT_S("prompt-field"), "query") || strcmp(OPT_S("response-field"), "response") ||
        strcmp(OPT_S("template"), "alpaca")) {
        fprintf(stderr, "balora train: error: --data-format, --prompt-field, --response-field and --template apply to causal-LM training; "
                        "hint: --task seq-cls reads GLUE TSVs (--glue-task) or CSV/TSV/JSONL by extension (--text-col, --label-col)\n");
        return 2;
    }
    const char *model_dir = OPT_S("model"), *method = OPT_S("method"), *init = OPT_S("init"), *targets = OPT_S("targets");
    int64_t rank = OPT_I("rank"), threads = OPT_I("threads"), seed = OPT_I("seed");
    double alpha = OPT_F("alpha"), dropout = OPT_F("dropout");
    bool full = !strcmp(method, "full"), lora = !strcmp(method, "lora");
    bool pissa_family = !strcmp(method, "pissa") || !strcmp(method, "ba-lora") || !strcmp(method, "balora");
    if (!full && !lora && !pissa_family) {
        fprintf(stderr, "balora train: error: --method %s: unknown for --task seq-cls; hint: lora, pissa, ba-lora or full\n", method);
        return 2;
    }
    if (rank <= 0 || !(alpha > 0) || !(dropout >= 0 && dropout < 1) || threads < 0 || seed < 0 || sq->log_every < 1 || sq->num_labels < 0) {
        fprintf(stderr, "balora train: error: need --rank >= 1, --alpha > 0, 0 <= --dropout < 1, --threads >= 0, --seed >= 0, "
                        "--log-every >= 1, --num-labels >= 0\n");
        return 2;
    }
    bl_glue_task task = BL_GLUE_TASK_GENERIC;
    if (sq->glue_task && bl_glue_task_parse(sq->glue_task, &task)) {
        fprintf(stderr, "balora train: error: %s\n", balora_last_error());
        return 2;
    }
    if (task != BL_GLUE_TASK_GENERIC && (sq->text_col || sq->text_pair_col || sq->label_col || sq->labels || sq->regression || sq->no_header)) {
        fprintf(stderr, "balora train: error: --glue-task %s has its own columns and labels; the column options are for generic files\n",
                sq->glue_task);
        return 2;
    }
    balora_threads_set((int)threads);
    bl_log(BL_VERBOSE, "threads: %d; BLAS: %s", balora_threads_get(), balora_blas_info());

    bl_seqcls_ft_cfg fc;
    bl_seqcls_ft_default(&fc);
    bl_data_spec spec = BL_DATA_SPEC_DEFAULT;
    if (sq->text_col) spec.text_col = sq->text_col;
    spec.text_pair_col = sq->text_pair_col;
    if (sq->label_col) spec.label_col = sq->label_col;
    spec.labels = sq->labels;
    spec.regression = sq->regression;
    spec.header = !sq->no_header;
    spec.skip_bad_rows = sq->skip_bad_rows;
    fc.model = model_dir;
    fc.tokenizer = OPT_S("tokenizer");
    fc.task = task;
    fc.spec = &spec;
    fc.train = OPT_S("data");
    fc.dev = sq->dev;
    fc.skip_bad_rows = sq->skip_bad_rows;
    fc.out_dir = OPT_S("out");
    fc.knobs.label_noise = sq->label_noise;
    fc.knobs.imbalance = sq->imbalance;
    fc.knobs.imbalance_major = (int)sq->imbalance_major;
    fc.knobs.max_train = sq->max_train;
    fc.knobs.seed = (uint64_t)(sq->data_seed >= 0 ? sq->data_seed : seed);
    fc.method = method;
    fc.num_labels = sq->num_labels;
    fc.seed = (uint64_t)seed;
    fc.log_every = sq->log_every;
    fc.adam.lr = OPT_F("lr");
    fc.adam.beta1 = OPT_F("adam-beta1");
    fc.adam.beta2 = OPT_F("adam-beta2");
    fc.adam.eps = OPT_F("adam-eps");
    fc.adam.weight_decay = OPT_F("weight-decay");
    fc.adam.loraplus_lr_ratio = OPT_F("loraplus-lr-ratio");
    fc.warmup_ratio = OPT_F("warmup-ratio");
    fc.warmup_steps = OPT_I("warmup-steps");
    fc.max_grad_norm = OPT_F("max-grad-norm");
    fc.batch = OPT_I("batch-size");
    fc.grad_accum = OPT_I("grad-accum");
    fc.epochs = OPT_I("epochs");
    fc.max_steps = OPT_I("max-steps");
    fc.max_len = OPT_I("max-len");
    fc.log_path = OPT_S("log");
    fc.save_every = OPT_I("save-every");
    fc.save_keep = (int)OPT_I("save-total-limit");
    fc.resume = OPT_S("resume");
    fc.stop_after = OPT_I("stop-after");
    balora_status st = BALORA_STATUS_OK;
    if (fc.save_every < 0 || fc.save_keep < 0 || fc.stop_after < 0)
        st = bl_fail(BALORA_STATUS_INVALID, "need --save-every >= 0, --save-total-limit >= 0, --stop-after >= 0");
    if (!st && (fc.save_every > 0 || fc.resume) && !fc.out_dir)
        st = bl_fail(BALORA_STATUS_INVALID, "checkpoints need a run folder; hint: give --out");
    if (!st && (!(fc.adam.loraplus_lr_ratio >= 0) || (full && fc.adam.loraplus_lr_ratio > 0)))
        st = bl_fail(BALORA_STATUS_INVALID, "--loraplus-lr-ratio %g: needs an adapter (not --method full) and a ratio >= 0", fc.adam.loraplus_lr_ratio);
    if (!st && (fc.grad_accum < 1 || fc.max_steps < 0 || fc.warmup_steps < 0 || !(fc.warmup_ratio >= 0 && fc.warmup_ratio <= 1) || !(fc.max_grad_norm >= 0)))
        st = bl_fail(BALORA_STATUS_INVALID, "need --grad-accum >= 1, --max-steps >= 0, --warmup-steps >= 0, 0 <= --warmup-ratio <= 1, --max-grad-norm >= 0");
    if (!st) st = bl_schedule_parse(OPT_S("schedule"), &fc.schedule);
    if (st) { fprintf(stderr, "balora train: error: %s\n", balora_last_error()); return 2; }
    /* the adapter: rank, alpha, targets; PiSSA's SVD from --init pissa_niter_K */
    fc.lora.r = rank;
    fc.lora.alpha = alpha;
    fc.lora.dropout = dropout;
    fc.lora.rslora = OPT_B("rslora");
    snprintf(fc.lora.base_model, sizeof fc.lora.base_model, "%s", model_dir);
    if (!strcmp(init, "gaussian") && lora) fc.lora.init = BL_LORA_INIT_GAUSSIAN;
    else if (!strncmp(init, "pissa", 5) && pissa_family) {
        int niter = -1;
        st = bl_pissa_parse_init(init, &niter);
        fc.pissa_niter = niter;
    } else if (strcmp(init, "auto") != 0 && !(strcmp(init, "default") == 0 && lora))
        st = bl_fail(BALORA_STATUS_INVALID, "--init %s does not go with --method %s; hint: lora takes default or gaussian, pissa and ba-lora "
                     "take pissa or pissa_niter_K, full takes none", init, method);
    /* auto: no targets, bl_seqcls_finetune takes the model's default from the architecture table */
    if (!st && !full && strcmp(targets, "auto") != 0) st = bl_lora_config_set_targets(&fc.lora, targets);
    const char *rank_pattern = OPT_S("rank-pattern"), *alpha_pattern = OPT_S("alpha-pattern");
    if (!st && full && (rank_pattern || alpha_pattern))
        st = bl_fail(BALORA_STATUS_INVALID, "--rank-pattern / --alpha-pattern apply to adapters, not to --method full");
    if (!st && !full) st = bl_lora_config_set_patterns(&fc.lora, rank_pattern, alpha_pattern);
    if (!st && pissa_family && strcmp(method, "pissa") != 0) st = reg_from_opts(ro, BL_REG_TASK_NLU, &fc.reg);
    if (st) { fprintf(stderr, "balora train: error: %s\n", balora_last_error()); return 2; }
    if (pissa_family && strcmp(method, "pissa") != 0)
        bl_log(BL_INFO, "BA-LoRA (NLU): lambda %g / %g / %g (%s, %s, %s), k %lld, svd norm %s; teacher: W_res + s B0 A0 with the initial head",
               fc.reg.lambda1, fc.reg.lambda2, fc.reg.lambda3, bl_lambda_sched_name(fc.reg.sched[0]), bl_lambda_sched_name(fc.reg.sched[1]),
               bl_lambda_sched_name(fc.reg.sched[2]), (long long)fc.reg.svd_k, bl_reg_svd_norm_name(fc.reg.svd_norm));
    if (fc.knobs.label_noise != 0 || fc.knobs.imbalance != 0 || fc.knobs.max_train != 0)
        bl_log(BL_INFO, "data knobs: label noise %g, imbalance %g (major class %d), max train %lld, seed %llu", fc.knobs.label_noise,
               fc.knobs.imbalance, fc.knobs.imbalance_major, (long long)fc.knobs.max_train, (unsigned long long)fc.knobs.seed);
    static const char *const not_seqcls[] = {"data-format", "prompt-field", "response-field",
                                             "template", "no-shuffle", "pad-to-max", NULL};
    char *cfg_json = options_json(opts, n_opts, not_seqcls);
    fc.config_json = cfg_json;
    progress_ui ui = {.tty = isatty(fileno(stderr)) != 0};
    fc.progress = on_progress;
    fc.progress_user = &ui;
    bl_log(BL_INFO, "seq-cls: %s on %s (%s), method %s, lr %g %s, batch %lld x %lld accumulation, %d threads", model_dir, fc.train,
           task == BL_GLUE_TASK_GENERIC ? "generic" : bl_glue_task_name(task), method, fc.adam.lr, OPT_S("schedule"), (long long)fc.batch,
           (long long)fc.grad_accum, balora_threads_get());
    bl_seqcls_ft_result res;
    st = bl_seqcls_finetune(&fc, &res);
    free(cfg_json);
    if (!st && full && fc.out_dir && !res.stopped) {
        char mdir[4200];
        st = bl_path_join(mdir, sizeof mdir, fc.out_dir, "model");
        if (!st) st = copy_tokenizer(fc.tokenizer ? fc.tokenizer : model_dir, mdir);
    }
    if (st) return cli_fail(st);
    if (res.stopped) {
        bl_log(BL_INFO, "stopped after step %lld (--stop-after); resume with --resume latest", (long long)res.steps);
        return 0;
    }
    const bl_data_meta *dm = &res.train_meta;
    bl_log(BL_INFO, "data: %s: %lld of %lld examples trained on%s", fc.train, (long long)res.n_train, (long long)dm->n_file,
           dm->n_skipped ? " (malformed rows skipped)" : "");
    if (dm->max_train > 0) bl_log(BL_INFO, "--max-train %lld: %lld examples removed", (long long)dm->max_train, (long long)dm->n_max_train_removed);
    if (dm->imbalance > 0)
        bl_log(BL_INFO, "--imbalance %g: %lld examples removed (class %d kept whole)", dm->imbalance, (long long)dm->n_imbalance_removed,
               dm->imbalance_major);
    if (dm->label_noise > 0)
        bl_log(BL_INFO, "--label-noise %g: %lld of %lld labels flipped (seed %llu)", dm->label_noise, (long long)dm->n_noisy,
               (long long)res.n_train, (unsigned long long)dm->seed);
    bl_log(BL_INFO, "trained %lld steps on %lld examples, loss %.4f -> %.4f, %.1f s; %s/%s and %s/results.json written", (long long)res.steps,
           (long long)res.n_train, res.first_loss, res.last_loss, res.seconds, fc.out_dir, full ? "model" : "adapter", fc.out_dir);
    print_dev(&res, fc.dev);
    return 0;
}
#undef OPT_S
#undef OPT_I
#undef OPT_F
#undef OPT_B

int cmd_train(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *out = NULL, *method = "lora", *targets = "auto", *init = "auto";
    /* BA-LoRA (--method balora): -1 / NULL = the value of --recipe */
    reg_opts ro = {.recipe = "paper-v1", .lambda = {-1, -1, -1}, .tau = -1, .warmup = -1, .ramp = -1, .svd_k = -1, .top_k_entropy = -1};
    seqcls_opts sq = SEQCLS_OPTS_DEFAULT;
    const char *schedule = "linear", *resume = NULL, *log = NULL, *data_format = "jsonl", *prompt_field = "query";
    const char *response_field = "response", *template_text = "alpaca", *tokenizer = NULL;
    const char *rank_pattern = NULL, *alpha_pattern = NULL; /* PEFT rank_pattern / alpha_pattern */
    int64_t rank = 8, batch = 4, accum = 1, epochs = 1, max_steps = 0, max_len = 512, seed = 42, threads = 0;
    int64_t save_every = 0, save_limit = 3, warmup_steps = 0, stop_after = 0;
    double alpha = 8, dropout = 0, lr = 2e-4, warmup_ratio = 0, wd = 0, max_grad_norm = 1.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    double loraplus = 0;
    bool rslora = false, no_shuffle = false, pad_to_max = false, train_embeddings = false, save_residual = false;
    const char *pissa_save = "converted";
    bool seqcls = argv_wants_seqcls(argc, argv);
    /* --task seq-cls defaults (finetune.h, as transformers' run_glue examples) */
#define SEQCLS_DEFAULTS() do { batch = 32; epochs = 3; max_len = 128; warmup_ratio = 0.06; } while (0)
    if (seqcls) SEQCLS_DEFAULTS();
    char targets_help[512], th[384];
    snprintf(targets_help, sizeof targets_help, "modules to adapt: comma list of HF names, all-linear, or auto (%s)",
             bl_arch_targets_help(BL_USE_TRAIN, th, sizeof th));
    cli_opt opts[] = {
        {"model", CLI_OPT_STR, &model_dir, "base model: Hugging Face folder (config.json + safetensors) or llama2.c .bin"},
        {"data", CLI_OPT_STR, &data, "training data (see --data-format)"},
        {"out", CLI_OPT_STR, &out, "output adapter folder (PEFT format); checkpoints in OUT/checkpoint-STEP (seq-cls: run folder, OUT/adapter or OUT/model + OUT/results.json)"},
        {"method", CLI_OPT_STR, &method, "lora; pissa (LoRA with PiSSA init); ba-lora (alias balora: PiSSA-initialised adapter + BA-LoRA's regularisers, METHOD.md section 3); full (every base weight but the embeddings and LM head; --out gets a model folder)"},
        {"pissa-save", CLI_OPT_STR, &pissa_save, "PiSSA adapters: converted (a plain LoRA of rank 2r for the original model, METHOD.md 2) or as-is (the trained factors, init_lora_weights \"pissa\": valid on W_res, see --save-residual)"},
        {"save-residual", CLI_OPT_FLAG, &save_residual, "PiSSA: also write OUT/residual, the model folder holding W_res"},
        {"train-embeddings", CLI_OPT_FLAG, &train_embeddings, "--method full: also train the embeddings and the LM head (the paper's baseline freezes them)"},
        {"targets", CLI_OPT_STR, &targets, targets_help},
        {"rank", CLI_OPT_INT, &rank, "LoRA rank r"},
        {"alpha", CLI_OPT_FLOAT, &alpha, "LoRA alpha (scale alpha / r)"},
        {"rank-pattern", CLI_OPT_STR, &rank_pattern, "per-module ranks (PEFT rank_pattern): KEY=R,... or a JSON object {\"KEY\": R}; "
                                                     "KEY matches a module as '.*\\.KEY$', the first key that matches wins"},
        {"alpha-pattern", CLI_OPT_STR, &alpha_pattern, "per-module alphas (PEFT alpha_pattern): KEY=A,... or a JSON object, matched as --rank-pattern"},
        {"dropout", CLI_OPT_FLOAT, &dropout, "LoRA dropout on the adapter input"},
        {"rslora", CLI_OPT_FLAG, &rslora, "rank-stabilised scale alpha / sqrt(r)"},
        {"init", CLI_OPT_STR, &init, "adapter init: default (PEFT: kaiming-uniform A, B = 0), gaussian, pissa (exact SVD), pissa_niter_K; auto = default for lora, pissa for pissa and ba-lora"},
        {"lr", CLI_OPT_FLOAT, &lr, "peak learning rate"},
        {"schedule", CLI_OPT_STR, &schedule, "learning-rate schedule: constant, linear or cosine (after warmup)"},
        {"warmup-ratio", CLI_OPT_FLOAT, &warmup_ratio, "warmup steps as a fraction of all steps (ceil)"},
        {"warmup-steps", CLI_OPT_INT, &warmup_steps, "warmup steps (overrides --warmup-ratio when > 0)"},
        {"weight-decay", CLI_OPT_FLOAT, &wd, "AdamW decoupled weight decay"},
        {"loraplus-lr-ratio", CLI_OPT_FLOAT, &loraplus, "LoRA+: the B matrices (and 1-D tensors: biases) at this multiple of --lr, as PEFT's create_loraplus_optimizer (0 = off; the LoRA+ paper uses 16)"},
        {"adam-beta1", CLI_OPT_FLOAT, &beta1, "AdamW beta1"},
        {"adam-beta2", CLI_OPT_FLOAT, &beta2, "AdamW beta2"},
        {"adam-eps", CLI_OPT_FLOAT, &eps, "AdamW epsilon"},
        {"max-grad-norm", CLI_OPT_FLOAT, &max_grad_norm, "clip the global gradient L2 norm (0 = off)"},
        {"batch-size", CLI_OPT_INT, &batch, "examples per micro-batch"},
        {"grad-accum", CLI_OPT_INT, &accum, "micro-batches per optimizer step (loss averaged over their trained tokens)"},
        {"epochs", CLI_OPT_INT, &epochs, "passes over the data (when --max-steps is 0)"},
        {"max-steps", CLI_OPT_INT, &max_steps, "optimizer steps (0 = set by --epochs)"},
        {"max-len", CLI_OPT_INT, &max_len, "truncate examples to this many tokens (text: block length)"},
        {"seed", CLI_OPT_INT, &seed, "seed for the adapter init, data order and dropout"},
        {"threads", CLI_OPT_INT, &threads, "threads (0 = all cores); results are bit-identical for a given count"},
        {"save-every", CLI_OPT_INT, &save_every, "write a checkpoint every N steps (0 = never)"},
        {"save-total-limit", CLI_OPT_INT, &save_limit, "keep the last N checkpoints (0 = all)"},
        {"resume", CLI_OPT_LATEST, &resume, "continue from a checkpoint folder, or the latest in --out ('latest' or no value)"},
        {"log", CLI_OPT_STR, &log, "metrics log per step: FILE.jsonl or FILE.csv"},
        {"data-format", CLI_OPT_STR, &data_format, "jsonl (prompt/response), text (plain text, cut in --max-len blocks) or tokens (JSONL input_ids [+ labels])"},
        {"prompt-field", CLI_OPT_STR, &prompt_field, "jsonl: the prompt field"},
        {"response-field", CLI_OPT_STR, &response_field, "jsonl: the response field"},
        {"template", CLI_OPT_STR, &template_text, "jsonl: prompt template with {query}, or alpaca (METHOD.md section 4)"},
        {"tokenizer", CLI_OPT_STR, &tokenizer, "tokenizer folder or tokenizer.json (default: the model folder)"},
        {"no-shuffle", CLI_OPT_FLAG, &no_shuffle, "keep the data order (default: shuffled per epoch with the seed)"},
        {"pad-to-max", CLI_OPT_FLAG, &pad_to_max, "pad every batch to --max-len (default: to its longest example)"},
        {"recipe", CLI_OPT_STR, &ro.recipe, "balora: paper-v1 or paper-v6 (METHOD.md 3.2); the options below override it"},
        {"lambda1", CLI_OPT_FLOAT, &ro.lambda[0], "balora: weight of L_CR (consistency with the original model); -1 = recipe"},
        {"lambda2", CLI_OPT_FLOAT, &ro.lambda[1], "balora: weight of L_DR (diversity: -entropy); -1 = recipe"},
        {"lambda3", CLI_OPT_FLOAT, &ro.lambda[2], "balora: weight of L_SVDR (top-k singular value ratio); -1 = recipe"},
        {"lambda1-schedule", CLI_OPT_STR, &ro.sched[0], "balora: constant, cosine, adaptive, two_phase, linear_warmup, quadratic_warmup (default: recipe)"},
        {"lambda2-schedule", CLI_OPT_STR, &ro.sched[1], "balora: schedule of lambda2 (default: recipe)"},
        {"lambda3-schedule", CLI_OPT_STR, &ro.sched[2], "balora: schedule of lambda3 (default: recipe)"},
        {"lambda-warmup-ratio", CLI_OPT_FLOAT, &ro.warmup, "balora: w of the warmup schedules; -1 = recipe"},
        {"lambda-ramp-ratio", CLI_OPT_FLOAT, &ro.ramp, "balora: p of two_phase; -1 = recipe"},
        {"svd-k", CLI_OPT_INT, &ro.svd_k, "balora: k of L_SVDR; -1 = recipe"},
        {"svd-norm", CLI_OPT_STR, &ro.svd_norm, "balora: sum, fro or none (default: recipe)"},
        {"distill-temp", CLI_OPT_FLOAT, &ro.tau, "balora: temperature tau of L_CR; -1 = recipe"},
        {"tau", CLI_OPT_FLOAT, &ro.tau, "balora: alias of --distill-temp"},
        {"top-k-entropy", CLI_OPT_INT, &ro.top_k_entropy, "balora: L_DR over the top-K logits (0 = full softmax); -1 = recipe"},
        {"stop-after", CLI_OPT_INT, &stop_after, "testing: stop after step N as if killed (no final adapter)"},
        {"task", CLI_OPT_STR, &sq.task, "causal-lm (alias nlg), or seq-cls (alias nlu; sequence classification: GLUE / generic data; --help after it shows its defaults)"},
        {"dev", CLI_OPT_STR, &sq.dev, "seq-cls: dev file scored after training (same layout as --data)"},
        {"glue-task", CLI_OPT_STR, &sq.glue_task, "seq-cls: GLUE TSV layout: cola, sst2, mrpc, qqp, stsb, mnli, mnli-mm, qnli, rte, wnli (default: generic CSV/TSV/JSONL)"},
        {"text-col", CLI_OPT_STR, &sq.text_col, "seq-cls generic data: the text column (header name, or 0-based index with --no-header; default text)"},
        {"text-pair-col", CLI_OPT_STR, &sq.text_pair_col, "seq-cls generic data: the second text of sentence pairs"},
        {"label-col", CLI_OPT_STR, &sq.label_col, "seq-cls generic data: the label column (default label)"},
        {"labels", CLI_OPT_STR, &sq.labels, "seq-cls generic data: label names in id order, e.g. negative,positive (default: integer ids, else sorted names)"},
        {"regression", CLI_OPT_FLAG, &sq.regression, "seq-cls generic data: float targets (one output, mean squared error)"},
        {"no-header", CLI_OPT_FLAG, &sq.no_header, "seq-cls generic CSV/TSV: no header row (columns by 0-based index)"},
        {"skip-bad-rows", CLI_OPT_FLAG, &sq.skip_bad_rows, "seq-cls: skip (and count) malformed rows instead of failing"},
        {"num-labels", CLI_OPT_INT, &sq.num_labels, "seq-cls generic data: classifier outputs (0 = the data's label count)"},
        {"label-noise", CLI_OPT_FLOAT, &sq.label_noise, "seq-cls: flip exactly round(P * n) training labels to another class (seeded; reported)"},
        {"imbalance", CLI_OPT_FLOAT, &sq.imbalance, "seq-cls: subsample every class but --imbalance-major to count(major) / R (0 = off)"},
        {"imbalance-major", CLI_OPT_INT, &sq.imbalance_major, "seq-cls: the majority class kept whole by --imbalance"},
        {"max-train", CLI_OPT_INT, &sq.max_train, "seq-cls: keep the first N training examples (0 = all)"},
        {"data-seed", CLI_OPT_INT, &sq.data_seed, "seq-cls: seed of --label-noise and --imbalance (-1 = --seed)"},
        {"log-every", CLI_OPT_INT, &sq.log_every, "seq-cls: window of the first / last loss in results.json (steps)"},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    const char *usage = "--model DIR --data FILE --out ADAPTER_DIR [options]  |  --task seq-cls --model DIR --data TRAIN --out RUN_DIR [options]";
    int rc = cli_parse(argc, argv, usage, opts, n_opts, NULL, 0, NULL);
    sq.task = task_canonical(sq.task);
    if (!rc && !seqcls && sq.task && !strcmp(sq.task, "seq-cls")) { /* --task came from --config: its defaults, then parse again */
        seqcls = true;
        SEQCLS_DEFAULTS();
        rc = cli_parse(argc, argv, usage, opts, n_opts, NULL, 0, NULL);
        sq.task = task_canonical(sq.task);
    }
#undef SEQCLS_DEFAULTS
    if (rc) return rc == 1 ? 0 : 2;
    cli_catch_signals();
    if (!model_dir || !data || !out) {
        fprintf(stderr, "balora train: error: --model, --data and --out are required (see balora train --help)\n");
        return 2;
    }
    if (!sq.task || (strcmp(sq.task, "causal-lm") != 0 && strcmp(sq.task, "seq-cls") != 0)) {
        fprintf(stderr, "balora train: error: --task %s: unknown; hint: causal-lm (nlg) or seq-cls (nlu)\n", sq.task ? sq.task : "(null)");
        return 2;
    }
    if (seqcls && train_embeddings) {
        fprintf(stderr, "balora train: error: --train-embeddings applies to causal-lm --method full\n");
        return 2;
    }
    if (seqcls) return train_seqcls(&sq, &ro, opts, n_opts);
    if (sq.dev || sq.glue_task || sq.text_col || sq.text_pair_col || sq.label_col || sq.labels || sq.regression || sq.no_header ||
        sq.skip_bad_rows || sq.num_labels || sq.label_noise != 0 || sq.imbalance != 0 || sq.max_train || sq.data_seed != -1) {
        fprintf(stderr, "balora train: error: --dev, --glue-task, the column options and the data knobs belong to --task seq-cls\n");
        return 2;
    }
    /* pissa = a LoRA adapter with PiSSA init (the default init of pissa and ba-lora); ba-lora = balora */
    bool use_balora = !strcmp(method, "balora") || !strcmp(method, "ba-lora"), full = !strcmp(method, "full");
    bool pissa_method = !strcmp(method, "pissa");
    if (strcmp(method, "lora") != 0 && !use_balora && !full && !pissa_method) {
        fprintf(stderr, "balora train: error: --method %s: unknown; hint: lora, pissa, ba-lora (or balora) or full\n", method);
        return 2;
    }
    if (pissa_method && strcmp(init, "auto") != 0 && strncmp(init, "pissa", 5) != 0) {
        fprintf(stderr, "balora train: error: --method pissa takes --init pissa or pissa_niter_K, not %s\n", init);
        return 2;
    }
    if (train_embeddings && !full) {
        fprintf(stderr, "balora train: error: --train-embeddings applies to --method full\n");
        return 2;
    }
    if (full && strcmp(init, "auto") != 0) {
        fprintf(stderr, "balora train: error: --init applies to adapters, not to --method full\n");
        return 2;
    }
    if (!(loraplus >= 0) || (full && loraplus > 0)) {
        fprintf(stderr, "balora train: error: --loraplus-lr-ratio %g: needs an adapter (not --method full) and a ratio >= 0\n", loraplus);
        return 2;
    }
    if (rank <= 0 || !(alpha > 0) || !(dropout >= 0 && dropout < 1) || threads < 0 || save_limit < 0 || stop_after < 0 || seed < 0) {
        fprintf(stderr, "balora train: error: need --rank >= 1, --alpha > 0, 0 <= --dropout < 1, --threads >= 0, --seed >= 0, --save-total-limit >= 0\n");
        return 2;
    }
    bl_lora_config pat; /* rank_pattern / alpha_pattern, checked before the model is read (a usage error) */
    bl_lora_config_default(&pat);
    if (full && (rank_pattern || alpha_pattern)) {
        fprintf(stderr, "balora train: error: --rank-pattern / --alpha-pattern apply to adapters, not to --method full\n");
        return 2;
    }
    const char *bad_pattern = bl_lora_config_set_patterns(&pat, rank_pattern, NULL) ? "rank-pattern"
                            : bl_lora_config_set_patterns(&pat, rank_pattern, alpha_pattern) ? "alpha-pattern" : NULL;
    if (bad_pattern) {
        fprintf(stderr, "balora train: error: --%s: %s\n", bad_pattern, balora_last_error());
        return 2;
    }
    balora_threads_set((int)threads);
    bl_log(BL_VERBOSE, "threads: %d; BLAS: %s", balora_threads_get(), balora_blas_info());

    bl_train_cfg tc;
    bl_train_cfg_default(&tc);
    balora_status st = bl_schedule_parse(schedule, &tc.schedule);
    bl_train_data_cfg dc;
    bl_train_data_cfg_default(&dc);
    if (!st) st = bl_train_data_format_parse(data_format, &dc.format);
    if (st) { cli_fail(st); return 2; }

    bl_model m = {0};
    bl_adapter ad = {0};
    bl_train_lm lm = {0};
    bl_train_data ds = {0};
    const bl_train_tokenizer *tokp = NULL;
    bl_tok *tok = NULL;
    bl_train_tok tt = {0};
    char *cfg_json = NULL;
    int ret = 1;
    bl_train_balora hook = {0};

    st = ends_with(model_dir, ".bin") ? bl_model_load_llama2c(&m, model_dir) : bl_model_load(&m, model_dir);
    if (st) goto done;
    bl_log(BL_INFO, "model: %s (%s, %lld layers, hidden %lld, vocab %lld, %lld parameters)", model_dir, m.cfg.architecture,
           (long long)m.cfg.n_layer, (long long)m.cfg.hidden, (long long)m.cfg.vocab_size, (long long)bl_model_n_params(&m));

    bl_lora_config lc;
    bl_lora_config_default(&lc);
    bool pissa = false;
    int pissa_niter = -1;
    if (!full) { /* the adapter */
        lc.r = rank; lc.alpha = alpha; lc.dropout = dropout; lc.rslora = rslora;
        lc.patterns = pat.patterns;
        if (!strcmp(init, "auto")) init = use_balora || pissa_method ? "pissa" : "default";
        pissa = !strncmp(init, "pissa", 5);
        if (!strcmp(init, "gaussian")) lc.init = BL_LORA_INIT_GAUSSIAN;
        else if (pissa) {
            if ((st = bl_pissa_parse_init(init, &pissa_niter))) goto done;
            lc.init = BL_LORA_INIT_PISSA;
            lc.pissa_niter = pissa_niter > 0 ? pissa_niter : 0;
            lc.keep_initial = true;
        } else if (strcmp(init, "default") != 0) {
            st = bl_fail(BALORA_STATUS_INVALID, "--init: unknown '%s'; hint: default, gaussian, pissa or pissa_niter_K", init);
            goto done;
        }
        const char *tg = targets;
        if (!strcmp(targets, "auto")) tg = m.cfg.arch->targets_train;
        if ((st = bl_lora_config_set_targets(&lc, tg))) goto done;
        snprintf(lc.base_model, sizeof lc.base_model, "%s", model_dir);
        if ((st = bl_lora_init(&ad, &m.mods, &lc, (uint64_t)seed))) goto done;
        if (pissa) {
            double t0 = bl_time_now();
            if ((st = bl_pissa_init_adapter(&ad, pissa_niter, (uint64_t)seed))) goto done;
            bl_log(BL_INFO, "PiSSA: %d modules initialised from their top-%lld singular triplets (%s SVD) in %.1f s", ad.n, (long long)rank,
                   pissa_niter < 0 ? "exact" : "randomized", bl_time_now() - t0);
        }

    }
    dc.prompt_field = prompt_field;
    dc.response_field = response_field;
    dc.template_text = strcmp(template_text, "alpaca") == 0 ? NULL : template_text;
    dc.max_len = max_len;
    if (m.cfg.family == BL_FAMILY_GPT2 && max_len > m.cfg.max_pos) {
        bl_log(BL_WARN, "--max-len %lld exceeds the model's %lld positions; using %lld", (long long)max_len, (long long)m.cfg.max_pos, (long long)m.cfg.max_pos);
        dc.max_len = m.cfg.max_pos;
    }
    dc.vocab_size = m.cfg.vocab_size;
    if (dc.format != BL_TRAIN_DATA_TOKENS) {
        const char *tdir = tokenizer ? tokenizer : (ends_with(model_dir, ".bin") ? NULL : model_dir);
        if (!tdir) { st = bl_fail(BALORA_STATUS_INVALID, "%s: a llama2.c checkpoint has no tokenizer; hint: give --tokenizer or use --data-format tokens", model_dir); goto done; }
        if ((st = bl_tok_load(&tok, tdir))) { bl_fail_prefix(st, "loading the tokenizer (hint: --tokenizer DIR, or --data-format tokens)"); goto done; }
        bl_train_tok_init(&tt, tok, (int32_t)m.cfg.eos_token_id);
        tokp = &tt.iface;
    }
    if ((st = bl_train_data_load(&ds, data, &dc, tokp))) goto done;
    bl_log(BL_INFO, "data: %s: %lld examples, %lld trained tokens, longest %lld tokens", data, (long long)ds.n,
           (long long)ds.total_trained, (long long)ds.max_len);

    st = full ? bl_train_lm_init_full(&lm, &m, batch > 0 ? batch : 1, ds.max_len, train_embeddings)
              : bl_train_lm_init(&lm, &m, &ad, batch > 0 ? batch : 1, ds.max_len);
    if (st) goto done;
    if (full) {
        int64_t n_train = 0;
        for (int i = 0; i < lm.n; i++) n_train += lm.numel[i];
        bl_log(BL_INFO, "full fine-tuning: %d tensors, %lld of %lld parameters trainable%s", lm.n, (long long)n_train,
               (long long)bl_model_n_params(&m), train_embeddings ? "" : " (embeddings and LM head frozen)");
    }
    bl_train_lm_set_meta(&lm, loraplus);
    if (pissa) { lm.pissa = true; lm.pissa_as_is = !strcmp(pissa_save, "as-is"); lm.teacher_mode = BL_ADAPTER_INITIAL; }
    if ((save_residual || strcmp(pissa_save, "converted") != 0) && !pissa) {
        st = bl_fail(BALORA_STATUS_INVALID, "--pissa-save and --save-residual apply to PiSSA-initialised adapters (--method pissa or ba-lora, or --init pissa)");
        goto done;
    }
    if (strcmp(pissa_save, "converted") != 0 && strcmp(pissa_save, "as-is") != 0) {
        st = bl_fail(BALORA_STATUS_INVALID, "--pissa-save %s: unknown; hint: converted or as-is", pissa_save);
        goto done;
    }
    const bl_extra_loss *extra = NULL;
    if (use_balora) {
        bl_reg_config rc;
        if ((st = reg_from_opts(&ro, BL_REG_TASK_NLG, &rc))) goto done;
        if ((st = bl_train_balora_init(&hook, &rc, &bl_objective_causal_lm, (batch > 0 ? batch : 1) * ds.max_len, m.cfg.vocab_size))) goto done;
        extra = &hook.iface;
        bl_log(BL_INFO, "BA-LoRA: lambda %g / %g / %g (%s, %s, %s), k %lld, tau %g, top-k entropy %lld, svd norm %s; teacher: %s",
               rc.lambda1, rc.lambda2, rc.lambda3, bl_lambda_sched_name(rc.sched[0]), bl_lambda_sched_name(rc.sched[1]),
               bl_lambda_sched_name(rc.sched[2]), (long long)rc.svd_k, rc.tau, (long long)rc.top_k_entropy,
               bl_reg_svd_norm_name(rc.svd_norm), pissa ? "W_res + s B0 A0 (the original W)" : "the base model (adapter off)");
    }

    tc.adam.lr = lr; tc.adam.beta1 = beta1; tc.adam.beta2 = beta2; tc.adam.eps = eps; tc.adam.weight_decay = wd;
    tc.adam.loraplus_lr_ratio = loraplus;
    tc.warmup_ratio = warmup_ratio; tc.warmup_steps = warmup_steps; tc.max_grad_norm = max_grad_norm;
    tc.batch_size = batch; tc.grad_accum = accum; tc.epochs = epochs; tc.max_steps = max_steps;
    tc.seed = (uint64_t)seed; tc.no_shuffle = no_shuffle; tc.pad_to_max = pad_to_max; tc.max_len = dc.max_len;
    tc.pad_id = 0;
    tc.out_dir = out; tc.save_every = save_every; tc.save_keep = (int)save_limit; tc.resume = resume;
    tc.log_path = log; tc.stop_after = stop_after;
    int n_lm_opts = 0; /* the seq-cls rows (from --task on) are not options of causal-LM training */
    while (n_lm_opts < n_opts && strcmp(opts[n_lm_opts].name, "task") != 0) n_lm_opts++;
    cfg_json = options_json(opts, n_lm_opts, NULL);
    tc.config_json = cfg_json;
    progress_ui ui = {.tty = isatty(fileno(stderr)) != 0};
    tc.progress = on_progress;
    tc.progress_user = &ui;
    bl_log(BL_INFO, "training: %lld steps (%lld examples, batch %lld x %lld accumulation), lr %g %s, %d threads",
           (long long)bl_train_total_steps(&tc, ds.n), (long long)ds.n, (long long)batch, (long long)accum, lr, schedule, balora_threads_get());
    bl_train_result res;
    if ((st = bl_train_run(&tc, &lm.iface, &ds, extra, &res))) goto done;
    if (stop_after > 0 && res.steps == stop_after && res.steps < bl_train_total_steps(&tc, ds.n)) {
        bl_log(BL_INFO, "stopped after step %lld (--stop-after); resume with --resume latest", (long long)res.steps);
        ret = 0;
        goto done;
    }
    if ((st = bl_mkdir_p(out)) || (st = lm.iface.save(lm.iface.self, out))) goto done;
    if (save_residual) { /* the base weights in memory hold W_res since the PiSSA initialisation */
        char res_dir[4200];
        if ((st = bl_path_join(res_dir, sizeof res_dir, out, "residual")) || (st = bl_model_save(&m, res_dir))) goto done;
        bl_log(BL_INFO, "residual model (W_res) written to %s", res_dir);
    }
    bl_log(BL_INFO, "%s saved to %s (%lld steps, loss %.4f -> %.4f, %.1f s, %.0f tokens/s)", full ? "model" : "adapter", out, (long long)res.steps,
           res.first_loss, res.last_loss, res.seconds, res.seconds > 0 ? res.tokens / res.seconds : 0.0);
    ret = 0;
done:
    if (st) ret = cli_fail(st);
    bl_train_balora_free(&hook);
    free(cfg_json);
    bl_train_lm_free(&lm);
    bl_train_data_free(&ds);
    bl_train_tok_free(&tt);
    if (tok) bl_tok_free(tok);
    bl_lora_free(&ad);
    bl_model_free(&m);
    return ret;
}
