/* balora train: fine-tune a causal LM with LoRA (PiSSA and BA-LoRA plug in through src/method).
 *   balora train --model DIR --data FILE --out ADAPTER_DIR [options]
 * The adapter folder (PEFT format) is written to --out; checkpoints go to --out/checkpoint-STEP. */
#include "cli.h"
#include "args.h"
#include "train/balora.h"
#include "train/lm.h"
#ifdef BL_TRAIN_HAVE_PISSA
#include "method/pissa.h"
#endif
#ifdef BL_TRAIN_HAVE_ENGINE
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

/* The options of this run as JSON (config.json of each checkpoint; usable with --config). */
static char *options_json(const cli_opt *opts, int n) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    for (int i = 0; i < n; i++) {
        const cli_opt *x = &opts[i];
        if (!strcmp(x->name, "resume") || !strcmp(x->name, "stop-after")) continue; /* not options of the run */
        switch (x->type) {
        case CLI_OPT_STR: { const char *s = *(const char **)x->dst; if (s) cJSON_AddStringToObject(o, x->name, s); break; }
        case CLI_OPT_INT: cJSON_AddNumberToObject(o, x->name, (double)*(int64_t *)x->dst); break;
        case CLI_OPT_FLOAT: cJSON_AddNumberToObject(o, x->name, *(double *)x->dst); break;
        case CLI_OPT_FLAG: cJSON_AddBoolToObject(o, x->name, *(bool *)x->dst); break;
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

int cmd_train(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *out = NULL, *method = "lora", *targets = "auto", *init = "auto";
    /* BA-LoRA (--method balora): -1 / NULL = the value of --recipe */
    const char *recipe = "paper-v1", *svd_norm = NULL, *l_sched[3] = {NULL, NULL, NULL};
    double lambda[3] = {-1, -1, -1}, tau = -1, lam_warmup = -1, lam_ramp = -1;
    int64_t svd_k = -1, top_k_entropy = -1;
    const char *schedule = "linear", *resume = NULL, *log = NULL, *data_format = "jsonl", *prompt_field = "query";
    const char *response_field = "response", *template_text = "alpaca", *tokenizer = NULL;
    int64_t rank = 8, batch = 4, accum = 1, epochs = 1, max_steps = 0, max_len = 512, seed = 42, threads = 0;
    int64_t save_every = 0, save_limit = 3, warmup_steps = 0, stop_after = 0;
    double alpha = 8, dropout = 0, lr = 2e-4, warmup_ratio = 0, wd = 0, max_grad_norm = 1.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    bool rslora = false, no_shuffle = false, pad_to_max = false;
    cli_opt opts[] = {
        {"model", CLI_OPT_STR, &model_dir, "base model: Hugging Face folder (config.json + safetensors) or llama2.c .bin"},
        {"data", CLI_OPT_STR, &data, "training data (see --data-format)"},
        {"out", CLI_OPT_STR, &out, "output adapter folder (PEFT format); checkpoints in OUT/checkpoint-STEP"},
        {"method", CLI_OPT_STR, &method, "lora; balora (LoRA-family adapter + BA-LoRA's regularisers, METHOD.md section 3); full (every weight; --out gets a model folder)"},
        {"targets", CLI_OPT_STR, &targets, "modules to adapt: comma list of HF names, all-linear, or auto (q_proj,v_proj; GPT-2: c_attn)"},
        {"rank", CLI_OPT_INT, &rank, "LoRA rank r"},
        {"alpha", CLI_OPT_FLOAT, &alpha, "LoRA alpha (scale alpha / r)"},
        {"dropout", CLI_OPT_FLOAT, &dropout, "LoRA dropout on the adapter input"},
        {"rslora", CLI_OPT_FLAG, &rslora, "rank-stabilised scale alpha / sqrt(r)"},
        {"init", CLI_OPT_STR, &init, "adapter init: default (PEFT: kaiming-uniform A, B = 0), gaussian, pissa (exact SVD), pissa_niter_K; auto = default for lora, pissa for balora"},
        {"lr", CLI_OPT_FLOAT, &lr, "peak learning rate"},
        {"schedule", CLI_OPT_STR, &schedule, "learning-rate schedule: constant, linear or cosine (after warmup)"},
        {"warmup-ratio", CLI_OPT_FLOAT, &warmup_ratio, "warmup steps as a fraction of all steps (ceil)"},
        {"warmup-steps", CLI_OPT_INT, &warmup_steps, "warmup steps (overrides --warmup-ratio when > 0)"},
        {"weight-decay", CLI_OPT_FLOAT, &wd, "AdamW decoupled weight decay"},
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
        {"resume", CLI_OPT_STR, &resume, "continue from a checkpoint folder, or 'latest' in --out"},
        {"log", CLI_OPT_STR, &log, "metrics log per step: FILE.jsonl or FILE.csv"},
        {"data-format", CLI_OPT_STR, &data_format, "jsonl (prompt/response), text (plain text, cut in --max-len blocks) or tokens (JSONL input_ids [+ labels])"},
        {"prompt-field", CLI_OPT_STR, &prompt_field, "jsonl: the prompt field"},
        {"response-field", CLI_OPT_STR, &response_field, "jsonl: the response field"},
        {"template", CLI_OPT_STR, &template_text, "jsonl: prompt template with {query}, or alpaca (METHOD.md section 4)"},
        {"tokenizer", CLI_OPT_STR, &tokenizer, "tokenizer folder or tokenizer.json (default: the model folder)"},
        {"no-shuffle", CLI_OPT_FLAG, &no_shuffle, "keep the data order (default: shuffled per epoch with the seed)"},
        {"pad-to-max", CLI_OPT_FLAG, &pad_to_max, "pad every batch to --max-len (default: to its longest example)"},
        {"recipe", CLI_OPT_STR, &recipe, "balora: paper-v1 or paper-v6 (METHOD.md 3.2); the options below override it"},
        {"lambda1", CLI_OPT_FLOAT, &lambda[0], "balora: weight of L_CR (consistency with the original model); -1 = recipe"},
        {"lambda2", CLI_OPT_FLOAT, &lambda[1], "balora: weight of L_DR (diversity: -entropy); -1 = recipe"},
        {"lambda3", CLI_OPT_FLOAT, &lambda[2], "balora: weight of L_SVDR (top-k singular value ratio); -1 = recipe"},
        {"lambda1-schedule", CLI_OPT_STR, &l_sched[0], "balora: constant, cosine, adaptive, two_phase, linear_warmup, quadratic_warmup (default: recipe)"},
        {"lambda2-schedule", CLI_OPT_STR, &l_sched[1], "balora: schedule of lambda2 (default: recipe)"},
        {"lambda3-schedule", CLI_OPT_STR, &l_sched[2], "balora: schedule of lambda3 (default: recipe)"},
        {"lambda-warmup-ratio", CLI_OPT_FLOAT, &lam_warmup, "balora: w of the warmup schedules; -1 = recipe"},
        {"lambda-ramp-ratio", CLI_OPT_FLOAT, &lam_ramp, "balora: p of two_phase; -1 = recipe"},
        {"svd-k", CLI_OPT_INT, &svd_k, "balora: k of L_SVDR; -1 = recipe"},
        {"svd-norm", CLI_OPT_STR, &svd_norm, "balora: sum, fro or none (default: recipe)"},
        {"distill-temp", CLI_OPT_FLOAT, &tau, "balora: temperature tau of L_CR; -1 = recipe"},
        {"top-k-entropy", CLI_OPT_INT, &top_k_entropy, "balora: L_DR over the top-K logits (0 = full softmax); -1 = recipe"},
        {"stop-after", CLI_OPT_INT, &stop_after, "testing: stop after step N as if killed (no final adapter)"},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    int rc = cli_parse(argc, argv, "--model DIR --data FILE --out ADAPTER_DIR [options]", opts, n_opts, NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model_dir || !data || !out) {
        fprintf(stderr, "balora train: error: --model, --data and --out are required (see balora train --help)\n");
        return 2;
    }
    bool use_balora = !strcmp(method, "balora"), full = !strcmp(method, "full");
    if (strcmp(method, "lora") != 0 && !use_balora && !full) {
        fprintf(stderr, "balora train: error: --method %s: unknown; hint: lora, balora or full\n", method);
        return 2;
    }
#ifndef BL_TRAIN_HAVE_BALORA
    if (use_balora) { fprintf(stderr, "balora train: error: --method balora needs src/method/reg.h, not in this build\n"); return 2; }
#endif
    if (full && strcmp(init, "auto") != 0) {
        fprintf(stderr, "balora train: error: --init applies to adapters, not to --method full\n");
        return 2;
    }
    if (rank <= 0 || !(alpha > 0) || !(dropout >= 0 && dropout < 1) || threads < 0 || save_limit < 0 || stop_after < 0 || seed < 0) {
        fprintf(stderr, "balora train: error: need --rank >= 1, --alpha > 0, 0 <= --dropout < 1, --threads >= 0, --seed >= 0, --save-total-limit >= 0\n");
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
#ifdef BL_TRAIN_HAVE_TOK
    bl_tok *tok = NULL;
    bl_train_tok tt = {0};
#endif
    char *cfg_json = NULL;
    int ret = 1;
#ifdef BL_TRAIN_HAVE_BALORA
    bl_train_balora hook = {0};
#endif

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
        if (!strcmp(init, "auto")) init = use_balora ? "pissa" : "default";
        pissa = !strncmp(init, "pissa", 5);
        if (!strcmp(init, "gaussian")) lc.init = BL_LORA_INIT_GAUSSIAN;
        else if (pissa) {
#ifdef BL_TRAIN_HAVE_PISSA
            if ((st = bl_pissa_parse_init(init, &pissa_niter))) goto done;
            lc.init = BL_LORA_INIT_PISSA;
            lc.pissa_niter = pissa_niter > 0 ? pissa_niter : 0;
            lc.keep_initial = true;
#else
            st = bl_fail(BALORA_STATUS_UNSUPPORTED, "--init %s needs src/method/pissa.h, not in this build", init);
            goto done;
#endif
        } else if (strcmp(init, "default") != 0) {
            st = bl_fail(BALORA_STATUS_INVALID, "--init: unknown '%s'; hint: default, gaussian, pissa or pissa_niter_K", init);
            goto done;
        }
        const char *tg = targets;
        if (!strcmp(targets, "auto")) tg = m.cfg.family == BL_FAMILY_GPT2 ? "c_attn" : "q_proj,v_proj";
        if ((st = bl_lora_config_set_targets(&lc, tg))) goto done;
        snprintf(lc.base_model, sizeof lc.base_model, "%s", model_dir);
        if ((st = bl_lora_init(&ad, &m.mods, &lc, (uint64_t)seed))) goto done;
#ifdef BL_TRAIN_HAVE_PISSA
        if (pissa) {
            double t0 = bl_time_now();
            if ((st = bl_train_pissa_init(&ad, pissa_niter, (uint64_t)seed))) goto done;
            bl_log(BL_INFO, "PiSSA: %d modules initialised from their top-%lld singular triplets (%s SVD) in %.1f s", ad.n, (long long)rank,
                   pissa_niter < 0 ? "exact" : "randomized", bl_time_now() - t0);
        }
#endif

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
#ifdef BL_TRAIN_HAVE_TOK
        const char *tdir = tokenizer ? tokenizer : (ends_with(model_dir, ".bin") ? NULL : model_dir);
        if (!tdir) { st = bl_fail(BALORA_STATUS_INVALID, "%s: a llama2.c checkpoint has no tokenizer; hint: give --tokenizer or use --data-format tokens", model_dir); goto done; }
        if ((st = bl_tok_load(&tok, tdir))) { bl_fail_prefix(st, "loading the tokenizer (hint: --tokenizer DIR, or --data-format tokens)"); goto done; }
        bl_train_tok_init(&tt, tok, (int32_t)m.cfg.eos_token_id);
        tokp = &tt.iface;
#else
        (void)tokenizer;
        st = bl_fail(BALORA_STATUS_UNSUPPORTED, "--data-format %s needs the tokenizers, not in this build; hint: --data-format tokens", data_format);
        goto done;
#endif
    }
    if ((st = bl_train_data_load(&ds, data, &dc, tokp))) goto done;
    bl_log(BL_INFO, "data: %s: %lld examples, %lld trained tokens, longest %lld tokens", data, (long long)ds.n,
           (long long)ds.total_trained, (long long)ds.max_len);

    st = full ? bl_train_lm_init_full(&lm, &m, batch > 0 ? batch : 1, ds.max_len)
              : bl_train_lm_init(&lm, &m, &ad, batch > 0 ? batch : 1, ds.max_len);
    if (st) goto done;
    if (full) bl_log(BL_INFO, "full fine-tuning: %d tensors, %lld parameters trainable", lm.n, (long long)bl_model_n_params(&m));
    lm.meta_keys[0] = "balora_version"; lm.meta_vals[0] = balora_version();
    lm.n_meta = 1;
    if (pissa) { lm.pissa = true; lm.teacher_mode = BL_ADAPTER_INITIAL; }
    const bl_extra_loss *extra = NULL;
#ifdef BL_TRAIN_HAVE_BALORA
    if (use_balora) {
        bl_reg_config rc;
        if ((st = bl_reg_config_recipe(&rc, recipe, BL_REG_TASK_NLG))) goto done;
        for (int i = 0; i < 3; i++) {
            double *lp[3] = {&rc.lambda1, &rc.lambda2, &rc.lambda3};
            if (lambda[i] >= 0) *lp[i] = lambda[i];
            if (l_sched[i] && (st = bl_lambda_sched_parse(l_sched[i], &rc.sched[i]))) goto done;
        }
        if (svd_k >= 0) rc.svd_k = svd_k;
        if (tau >= 0) rc.tau = tau;
        if (top_k_entropy >= 0) rc.top_k_entropy = top_k_entropy;
        if (lam_warmup >= 0) rc.warmup_ratio = lam_warmup;
        if (lam_ramp >= 0) rc.ramp_ratio = lam_ramp;
        if (svd_norm && (st = bl_reg_svd_norm_parse(svd_norm, &rc.svd_norm))) goto done;
        if ((st = bl_train_balora_init(&hook, &rc, (batch > 0 ? batch : 1) * ds.max_len, m.cfg.vocab_size))) goto done;
        extra = &hook.iface;
        bl_log(BL_INFO, "BA-LoRA: lambda %g / %g / %g (%s, %s, %s), k %lld, tau %g, top-k entropy %lld, svd norm %s; teacher: %s",
               rc.lambda1, rc.lambda2, rc.lambda3, bl_lambda_sched_name(rc.sched[0]), bl_lambda_sched_name(rc.sched[1]),
               bl_lambda_sched_name(rc.sched[2]), (long long)rc.svd_k, rc.tau, (long long)rc.top_k_entropy,
               bl_reg_svd_norm_name(rc.svd_norm), pissa ? "W_res + s B0 A0 (the original W)" : "the base model (adapter off)");
    }
#else
    (void)recipe; (void)svd_norm; (void)l_sched; (void)lambda; (void)tau; (void)lam_warmup; (void)lam_ramp; (void)svd_k; (void)top_k_entropy;
#endif

    tc.adam.lr = lr; tc.adam.beta1 = beta1; tc.adam.beta2 = beta2; tc.adam.eps = eps; tc.adam.weight_decay = wd;
    tc.warmup_ratio = warmup_ratio; tc.warmup_steps = warmup_steps; tc.max_grad_norm = max_grad_norm;
    tc.batch_size = batch; tc.grad_accum = accum; tc.epochs = epochs; tc.max_steps = max_steps;
    tc.seed = (uint64_t)seed; tc.no_shuffle = no_shuffle; tc.pad_to_max = pad_to_max; tc.max_len = dc.max_len;
    tc.pad_id = 0;
    tc.out_dir = out; tc.save_every = save_every; tc.save_keep = (int)save_limit; tc.resume = resume;
    tc.log_path = log; tc.stop_after = stop_after;
    cfg_json = options_json(opts, n_opts);
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
    bl_log(BL_INFO, "%s saved to %s (%lld steps, loss %.4f -> %.4f, %.1f s, %.0f tokens/s)", full ? "model" : "adapter", out, (long long)res.steps,
           res.first_loss, res.last_loss, res.seconds, res.seconds > 0 ? res.tokens / res.seconds : 0.0);
    ret = 0;
done:
    if (st) ret = cli_fail(st);
#ifdef BL_TRAIN_HAVE_BALORA
    bl_train_balora_free(&hook);
#endif
    free(cfg_json);
    bl_train_lm_free(&lm);
    bl_train_data_free(&ds);
#ifdef BL_TRAIN_HAVE_TOK
    bl_train_tok_free(&tt);
    if (tok) bl_tok_free(tok);
#endif
    bl_lora_free(&ad);
    bl_model_free(&m);
    return ret;
}
#endif
