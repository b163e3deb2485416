/* balora forward: run a model (and an adapter) on a batch; write logits, the loss and, with
 * --grads, d loss / d (every trainable adapter tensor) keyed as in adapter_model.safetensors.
 * With --method ba-lora the loss is BA-LoRA's total (docs/METHOD.md section 3): the task loss plus the
 * weighted consistency, diversity and SVD terms, each also written (loss_task, loss_cr, loss_dr,
 * loss_svdr); the teacher is the same model with the adapter switched off (LoRA; classifiers: the
 * head's initial weights) or with the adapter's initial factors (PiSSA: W_res + s B0 A0 = W).
 * The tool to check balora against any reference implementation. */
#include "adapters/lora.h"
#include "args.h"
#include "cli.h"
#include "encoders/encoder.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "method/pissa_model.h"
#include "method/reg.h"
#include "model/model.h"
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "balora forward --model DIR [--adapter ADAPTER_DIR] --batch BATCH.safetensors --out OUT.safetensors [--grads]\n"
    "               [--method lora|ba-lora --task nlg|nlu --recipe paper-v1|paper-v6 --lambda1 L --lambda2 L --lambda3 L\n"
    "                --svd-k K --tau T --top-k-entropy K --svd-norm sum|fro|none --teacher auto|off|initial]\n"
    "\n"
    "BATCH holds input_ids [B, T] (I64), optional attention_mask [B, T] (1 = real token), optional token_type_ids\n"
    "(encoders) and optional labels ([B, T] token ids with -100 = ignored for causal LMs, the shift is applied inside\n"
    "as transformers does; [B] class ids for *ForSequenceClassification, floats for regression). Other tensors are\n"
    "ignored. The model class comes from config.json (gpt2, llama, mistral, qwen2; bert, roberta, deberta-v2); DIR\n"
    "may also be a llama2.c .bin checkpoint.\n"
    "OUT holds logits [B, T, V] (or [B, num_labels]) F32, loss (F32 scalar, mean over trained tokens; needs labels)\n"
    "and with --grads the gradient of the loss for every trainable adapter tensor.\n"
    "--method ba-lora (needs --adapter and labels): loss = loss_task + lambda1 loss_cr + lambda2 loss_dr +\n"
    "lambda3 loss_svdr (METHOD.md section 3), each term written unweighted; --grads are those of the total.\n"
    "The teacher of loss_cr: the model with the adapter off, or (--teacher initial, the default for a PiSSA\n"
    "adapter written by balora init or given --initial-adapter) W_res + s B0 A0 = the original weights.";

/* Reads an integer tensor as int64 with a shape check; NULL (no error) when absent and optional. */
static balora_status read_ids(const bl_st_file *f, const char *name, bool required, int ndim, const int64_t *shape,
                              int64_t **out) {
    *out = NULL;
    const bl_st_tensor *t = bl_st_find(f, name);
    if (!t) {
        if (!required) return BALORA_STATUS_OK;
        return bl_fail(BALORA_STATUS_FORMAT, "%s: missing tensor '%s' (hint: the batch needs input_ids [B, T] as I64)", f->path, name);
    }
    if (t->dtype != BL_DTYPE_I64 && t->dtype != BL_DTYPE_I32 && t->dtype != BL_DTYPE_I16 && t->dtype != BL_DTYPE_U8 &&
        t->dtype != BL_DTYPE_I8 && t->dtype != BL_DTYPE_BOOL)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' has dtype %s; expected an integer dtype (I64)", f->path, name,
                       bl_dtype_name(t->dtype));
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = shape[i] < 0 || t->shape[i] == shape[i];
    if (!ok) {
        if (ndim == 2)
            return bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' must have shape [%lld, %lld] (like input_ids)", f->path, name,
                           (long long)shape[0], (long long)shape[1]);
        return bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' must have %d dimension(s)%s", f->path, name, ndim,
                       ndim == 1 ? " [B]" : "");
    }
    if (t->numel <= 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' is empty", f->path, name);
    int64_t *p = malloc((size_t)t->numel * sizeof(int64_t));
    if (!p) return bl_fail(BALORA_STATUS_NOMEM, "out of memory");
    balora_status st = bl_st_tensor_to_i64(f, t, p);
    if (st) { free(p); return st; }
    *out = p;
    return BALORA_STATUS_OK;
}

/* A decoder (src/model) or an encoder (src/encoders) behind one forward / backward. */
typedef struct fwd_model {
    bool enc;
    bl_model m;
    bl_encoder e;
    bl_run r;
    bl_enc_run er;
    bl_module_set *set;
    bool cls, regression;
    int64_t n_out;            /* V (causal LM) or num_labels */
} fwd_model;

static balora_status fm_load(fwd_model *f, const char *path) {
    if (!bl_dir_exists(path)) {
        if (!bl_file_exists(path)) return bl_fail(BALORA_STATUS_IO, "%s: no such model folder or llama2.c checkpoint", path);
        BL_TRY(bl_model_load_llama2c(&f->m, path));
    } else {
        char cfg[4200];
        BL_TRY(bl_path_join(cfg, sizeof cfg, path, "config.json"));
        if (bl_file_exists(cfg)) {
            cJSON *j = NULL;
            BL_TRY(bl_json_load(cfg, &j));
            const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "model_type");
            f->enc = cJSON_IsString(mt) && bl_arch_is_encoder(mt->valuestring);
            cJSON_Delete(j);
        }
        if (f->enc) BL_TRY(bl_enc_load(&f->e, path, NULL));
        else BL_TRY(bl_model_load(&f->m, path));
    }
    if (f->enc) {
        f->set = &f->e.mods;
        f->cls = true;
        f->regression = f->e.cfg.regression;
        f->n_out = f->e.cfg.num_labels;
        bl_log(BL_VERBOSE, "model %s: %s, %lld parameters", path, f->e.cfg.architecture, (long long)bl_enc_n_params(&f->e));
    } else {
        f->set = &f->m.mods;
        f->cls = f->m.cfg.head == BL_HEAD_SEQ_CLS;
        f->regression = f->cls && f->m.cfg.num_labels == 1;
        f->n_out = f->cls ? f->m.cfg.num_labels : f->m.cfg.vocab_size;
        bl_log(BL_VERBOSE, "model %s: %s, %lld parameters", path, f->m.cfg.architecture, (long long)bl_model_n_params(&f->m));
    }
    return BALORA_STATUS_OK;
}

static balora_status fm_run_init(fwd_model *f, int64_t B, int64_t T) {
    return f->enc ? bl_enc_run_init(&f->er, &f->e, B, T) : bl_run_init(&f->r, &f->m, B, T);
}

static balora_status fm_forward(fwd_model *f, int64_t B, int64_t T, const int64_t *ids, const int64_t *mask,
                                const int64_t *types, bl_adapter_mode mode, float **logits) {
    if (f->enc) {
        bl_enc_batch b = {B, T, ids, mask, types};
        BL_TRY(bl_enc_forward(&f->er, &b, mode));
        *logits = f->er.logits;
    } else {
        bl_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask};
        BL_TRY(bl_model_forward(&f->r, &b, mode));
        *logits = f->r.logits;
    }
    return BALORA_STATUS_OK;
}

static balora_status fm_backward(fwd_model *f, const float *dlogits) {
    return f->enc ? bl_enc_backward(&f->er, dlogits) : bl_model_backward(&f->r, dlogits);
}

static void fm_free(fwd_model *f) {
    bl_enc_run_free(&f->er);
    bl_run_free(&f->r);
    if (f->enc) bl_enc_free(&f->e);
    else bl_model_free(&f->m);
}

/* A0/B0 of every adapted module from a step-0 adapter folder (PiSSA's initial factors). */
static balora_status load_initial(bl_adapter *ad, const char *dir) {
    char path[4200], key[512];
    BL_TRY(bl_path_join(path, sizeof path, dir, "adapter_model.safetensors"));
    bl_st_file f;
    BL_TRY(bl_st_open(&f, path));
    balora_status st = BALORA_STATUS_OK;
    for (int i = 0; !st && i < ad->n; i++) {
        bl_lora *L = &ad->mods[i];
        const char *mod = ad->set->lin[ad->lin_index[i]].name;
        int64_t sa[2] = {L->r, L->in}, sb[2] = {L->out, L->r};
        snprintf(key, sizeof key, "base_model.model."  "%s.lora_A.weight", mod);
        st = bl_st_read_f32(&f, key, 2, sa, L->A0);
        if (!st) {
            snprintf(key, sizeof key, "base_model.model."  "%s.lora_B.weight", mod);
            st = bl_st_read_f32(&f, key, 2, sb, L->B0);
        }
        if (st) bl_fail_prefix(st, "--initial-adapter %s: module %s: ", dir, mod);
    }
    bl_st_close(&f);
    return st;
}

int cmd_forward(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *batch = NULL, *out = NULL, *initial = NULL;
    const char *method = "lora", *task = NULL, *recipe = "paper-v1", *svd_norm = NULL, *teacher = "auto";
    double lambda[3] = {-1, -1, -1}, tau = -1;
    int64_t svd_k = -1, top_k = -1, step = 0, total_steps = 1;
    bool grads = false;
    int64_t threads = 0;
    cli_opt opts[] = {
        {"model", CLI_OPT_STR, &model, "Hugging Face model folder (or llama2.c .bin)"},
        {"adapter", CLI_OPT_STR, &adapter, "PEFT LoRA adapter folder"},
        {"batch", CLI_OPT_STR, &batch, "input safetensors: input_ids, attention_mask, labels (token_type_ids)"},
        {"out", CLI_OPT_STR, &out, "output safetensors: logits, loss, gradients"},
        {"grads", CLI_OPT_FLAG, &grads, "also write d loss / d adapter tensors (needs --adapter and labels)"},
        {"threads", CLI_OPT_INT, &threads, "threads (0 = all cores)"},
        {"method", CLI_OPT_STR, &method, "lora (the task loss) or ba-lora (task + BA-LoRA's three terms)"},
        {"task", CLI_OPT_STR, &task, "ba-lora: nlg (causal LM logits) or nlu (classifier logits); default from the model"},
        {"recipe", CLI_OPT_STR, &recipe, "ba-lora: paper-v1 or paper-v6 (METHOD.md 3.2); the options below override it"},
        {"lambda1", CLI_OPT_FLOAT, &lambda[0], "ba-lora: weight of L_CR (consistency); -1 = recipe"},
        {"lambda2", CLI_OPT_FLOAT, &lambda[1], "ba-lora: weight of L_DR (diversity); -1 = recipe"},
        {"lambda3", CLI_OPT_FLOAT, &lambda[2], "ba-lora: weight of L_SVDR (SVD); -1 = recipe"},
        {"svd-k", CLI_OPT_INT, &svd_k, "ba-lora: k of L_SVDR; -1 = recipe"},
        {"tau", CLI_OPT_FLOAT, &tau, "ba-lora: distillation temperature of L_CR (NLG); -1 = recipe"},
        {"distill-temp", CLI_OPT_FLOAT, &tau, "ba-lora: the same as --tau"},
        {"top-k-entropy", CLI_OPT_INT, &top_k, "ba-lora: L_DR over the top-K logits (0 = full softmax); -1 = recipe"},
        {"svd-norm", CLI_OPT_STR, &svd_norm, "ba-lora: sum, fro or none (default: recipe)"},
        {"step", CLI_OPT_INT, &step, "ba-lora: the step at which scheduled lambdas are evaluated"},
        {"total-steps", CLI_OPT_INT, &total_steps, "ba-lora: the total steps of the lambda schedules"},
        {"teacher", CLI_OPT_STR, &teacher, "ba-lora: off (adapter off), initial (W_res + s B0 A0) or auto"},
        {"initial-adapter", CLI_OPT_STR, &initial, "ba-lora: the step-0 PiSSA adapter (B0, A0) of a trained PiSSA adapter"},
    };
    int rc = cli_parse(argc, argv, USAGE, opts, (int)(sizeof opts / sizeof *opts), NULL, 0, NULL);
    if (rc == 1) return 0;
    if (rc) return rc;
    if (!model || !batch || !out) {
        fprintf(stderr, "balora forward: error: --model, --batch and --out are required (see balora forward --help)\n");
        return 2;
    }
    if (grads && !adapter) {
        fprintf(stderr, "balora forward: error: --grads needs --adapter (the gradients are those of the adapter's tensors)\n");
        return 2;
    }
    bool balora = !strcmp(method, "ba-lora") || !strcmp(method, "balora");
    if (!balora && strcmp(method, "lora") != 0) {
        fprintf(stderr, "balora forward: error: --method %s: unknown; hint: lora or ba-lora\n", method);
        return 2;
    }
    if (balora && !adapter) {
        fprintf(stderr, "balora forward: error: --method ba-lora needs --adapter (the teacher is the model without it)\n");
        return 2;
    }
    if (strcmp(teacher, "auto") && strcmp(teacher, "off") && strcmp(teacher, "initial")) {
        fprintf(stderr, "balora forward: error: --teacher %s: unknown; hint: auto, off or initial\n", teacher);
        return 2;
    }
    if (threads < 0 || step < 0 || total_steps < 1) {
        fprintf(stderr, "balora forward: error: need --threads >= 0, --step >= 0 and --total-steps >= 1\n");
        return 2;
    }
    if (threads > 0) balora_threads_set((int)threads);

    balora_status st;
    fwd_model fm;
    bl_adapter ad;
    bl_st_file bf;
    bl_reg_ws ws;
    memset(&fm, 0, sizeof fm); memset(&ad, 0, sizeof ad); memset(&bf, 0, sizeof bf); memset(&ws, 0, sizeof ws);
    int64_t *ids = NULL, *mask = NULL, *types = NULL, *labels = NULL;
    float *dlogits = NULL, *flabels = NULL, *zt = NULL;
    bool have_bf = false;
    bl_reg_out ro;
    memset(&ro, 0, sizeof ro);
    bl_adapter_mode tmode = BL_ADAPTER_OFF;
    bl_reg_config rcfg;

    if ((st = fm_load(&fm, model))) goto fail;
    bool use_initial = false;
    if (adapter && balora) {
        /* PiSSA: a step-0 adapter written by balora init, or --initial-adapter, gives B0 A0 */
        char ap[4200];
        bl_st_file af;
        if ((st = bl_path_join(ap, sizeof ap, adapter, "adapter_model.safetensors"))) goto fail;
        bool step0 = false;
        if (!bl_st_open(&af, ap)) { step0 = bl_st_meta(&af, BL_PISSA_META_KEY) != NULL; bl_st_close(&af); }
        bl_clear_error();
        use_initial = !strcmp(teacher, "initial") || (!strcmp(teacher, "auto") && (initial || step0));
        if (!strcmp(teacher, "initial") && !initial && !step0)
            bl_log(BL_WARN, "--teacher initial: %s is not marked as a step-0 PiSSA adapter and no --initial-adapter was given; "
                   "its own factors are taken as B0, A0 (the teacher then equals the student)", adapter);
    }
    if (adapter && (st = bl_lora_load(&ad, fm.set, adapter, use_initial))) goto fail;
    if (use_initial && initial && (st = load_initial(&ad, initial))) goto fail;
    tmode = use_initial ? BL_ADAPTER_INITIAL : BL_ADAPTER_OFF;
    if ((st = bl_st_open(&bf, batch))) goto fail;
    have_bf = true;
    const bl_st_tensor *ti = bl_st_find(&bf, "input_ids");
    if (!ti) { st = bl_fail(BALORA_STATUS_FORMAT, "%s: missing tensor 'input_ids' [B, T] (I64)", batch); goto fail; }
    if (ti->ndim != 2 || ti->shape[0] <= 0 || ti->shape[1] <= 0) {
        st = bl_fail(BALORA_STATUS_FORMAT, "%s: tensor 'input_ids' must have shape [B, T] with B, T > 0", batch);
        goto fail;
    }
    int64_t B = ti->shape[0], T = ti->shape[1];
    int64_t bt[2] = {B, T};
    const bool cls = fm.cls, regression = fm.regression;
    if ((st = read_ids(&bf, "input_ids", true, 2, bt, &ids))) goto fail;
    if ((st = read_ids(&bf, "attention_mask", false, 2, bt, &mask))) goto fail;
    if (fm.enc && (st = read_ids(&bf, "token_type_ids", false, 2, bt, &types))) goto fail;
    if (regression) {
        const bl_st_tensor *tl = bl_st_find(&bf, "labels");
        if (tl) {
            int64_t shp[1] = {B};
            flabels = malloc(sizeof(float) * (size_t)B);
            if (!flabels) { st = bl_fail(BALORA_STATUS_NOMEM, "out of memory"); goto fail; }
            if ((st = bl_st_read_f32(&bf, "labels", 1, shp, flabels))) goto fail;
        }
    } else if ((st = read_ids(&bf, "labels", false, cls ? 1 : 2, cls ? (int64_t[]){B} : bt, &labels))) goto fail;
    if (grads && !labels && !flabels) {
        st = bl_fail(BALORA_STATUS_INVALID, "%s: --grads needs 'labels' in the batch (the gradient is that of the loss)", batch);
        goto fail;
    }
    if (balora) {
        if (!labels && !flabels) {
            st = bl_fail(BALORA_STATUS_INVALID, "%s: --method ba-lora needs 'labels' in the batch (the task loss)", batch);
            goto fail;
        }
        bl_reg_task rt = cls ? BL_REG_TASK_NLU : BL_REG_TASK_NLG;
        if (task && (st = bl_reg_task_parse(task, &rt))) goto fail;
        if ((rt == BL_REG_TASK_NLU) != cls) {
            st = bl_fail(BALORA_STATUS_INVALID, "--task %s does not fit %s; hint: nlg for causal LMs, nlu for classifiers",
                         task, cls ? "a classifier ([B, num_labels] logits)" : "a causal LM ([B, T, V] logits)");
            goto fail;
        }
        if ((st = bl_reg_config_recipe(&rcfg, recipe, rt))) goto fail;
        double *lp[3] = {&rcfg.lambda1, &rcfg.lambda2, &rcfg.lambda3};
        for (int i = 0; i < 3; i++)
            if (lambda[i] >= 0) *lp[i] = lambda[i];
        if (svd_k >= 0) rcfg.svd_k = svd_k;
        if (tau >= 0) rcfg.tau = tau;
        if (top_k >= 0) rcfg.top_k_entropy = top_k;
        if (svd_norm && (st = bl_reg_svd_norm_parse(svd_norm, &rcfg.svd_norm))) goto fail;
        if ((st = bl_reg_config_check(&rcfg, fm.n_out))) goto fail;
        int64_t rows = cls ? B : B * T;
        if ((st = bl_reg_ws_init(&ws, rt, rows, fm.n_out, rcfg.top_k_entropy > 0 ? rcfg.top_k_entropy : 0))) goto fail;
    } else if (task || initial) {
        bl_log(BL_WARN, "--task / --initial-adapter apply to --method ba-lora only; ignored");
    }
    if ((st = fm_run_init(&fm, B, T))) goto fail;
    const int64_t n_logits = cls ? B * fm.n_out : B * T * fm.n_out;
    double t0 = bl_time_now();
    float *logits = NULL;
    if (balora) {
        /* teacher first: a forward overwrites the logits and the saved activations */
        zt = malloc(sizeof(float) * (size_t)n_logits);
        if (!zt) { st = bl_fail(BALORA_STATUS_NOMEM, "out of memory"); goto fail; }
        if ((st = fm_forward(&fm, B, T, ids, mask, types, tmode, &logits))) goto fail;
        memcpy(zt, logits, sizeof(float) * (size_t)n_logits);
    }
    if ((st = fm_forward(&fm, B, T, ids, mask, types, BL_ADAPTER_ON, &logits))) goto fail;
    float loss32 = 0.0f, task32 = 0.0f;
    bool have_loss = labels || flabels;
    if (have_loss) {
        dlogits = malloc((size_t)n_logits * sizeof(float));
        if (!dlogits) { st = bl_fail(BALORA_STATUS_NOMEM, "out of memory"); goto fail; }
        double loss = 0;
        int64_t cnt = 0;
        if (fm.enc) {
            st = bl_enc_loss(&fm.er, labels, flabels, &loss, dlogits);
            cnt = B;
        } else if (regression) { /* transformers: num_labels == 1 is regression with MSE */
            for (int64_t i = 0; i < B; i++) {
                double d = (double)logits[i] - flabels[i];
                loss += d * d;
                dlogits[i] = (float)(2.0 * d / (double)B);
            }
            loss /= (double)B;
            cnt = B;
        } else if (cls) {
            st = bl_xent(logits, labels, B, 1, fm.n_out, false, dlogits, 1.0f, &loss, &cnt);
        } else {
            st = bl_xent(logits, labels, B, T, fm.n_out, true, dlogits, 1.0f, &loss, &cnt);
        }
        if (st) { bl_fail_prefix(st, "%s: ", batch); goto fail; }
        if (cnt == 0) bl_log(BL_WARN, "%s: no trained tokens (every shifted label is -100): loss is 0", batch);
        task32 = (float)loss;
        if (balora) {
            if (cnt == 0) {
                st = bl_fail(BALORA_STATUS_INVALID, "%s: --method ba-lora: no trained position, the terms are undefined", batch);
                goto fail;
            }
            /* dlogits += d (lambda1 L_CR + lambda2 L_DR + lambda3 L_SVDR) / d logits */
            st = bl_reg_apply(&ws, &rcfg, step, total_steps, cls ? B : B, cls ? 1 : T, fm.n_out, logits, zt,
                              cls ? NULL : labels, dlogits, &ro);
            if (st) { bl_fail_prefix(st, "%s: ", batch); goto fail; }
            loss += ro.total;
        }
        loss32 = (float)loss;
        if (grads) {
            bl_lora_zero_grads(&ad);
            if ((st = fm_backward(&fm, dlogits))) goto fail;
        }
    }
    bl_log(BL_VERBOSE, "forward%s%s: %lld x %lld tokens in %.3f s", balora ? " + teacher" : "", grads ? " + backward" : "",
           (long long)B, (long long)T, bl_time_now() - t0);
    bl_st_writer w;
    bl_st_writer_init(&w);
    int64_t lshape[3] = {B, T, fm.n_out};
    if (cls) { lshape[1] = fm.n_out; }
    st = bl_st_writer_add(&w, "logits", BL_DTYPE_F32, cls ? 2 : 3, lshape, logits);
    if (!st && have_loss) st = bl_st_writer_add(&w, "loss", BL_DTYPE_F32, 0, NULL, &loss32);
    float terms[3] = {(float)ro.cr, (float)ro.dr, (float)ro.svdr};
    if (!st && balora) st = bl_st_writer_add(&w, "loss_task", BL_DTYPE_F32, 0, NULL, &task32);
    if (!st && balora) st = bl_st_writer_add(&w, "loss_cr", BL_DTYPE_F32, 0, NULL, &terms[0]);
    if (!st && balora) st = bl_st_writer_add(&w, "loss_dr", BL_DTYPE_F32, 0, NULL, &terms[1]);
    if (!st && balora) st = bl_st_writer_add(&w, "loss_svdr", BL_DTYPE_F32, 0, NULL, &terms[2]);
    bl_param *tr = NULL;
    if (!st && grads) {
        int n = bl_lora_trainables(&ad, NULL, 0);
        tr = calloc((size_t)n + 1, sizeof *tr);
        if (!tr) st = bl_fail(BALORA_STATUS_NOMEM, "out of memory");
        else {
            bl_lora_trainables(&ad, tr, n);
            for (int i = 0; !st && i < n; i++) {
                /* keys as in adapter_model.safetensors, without the "__" of metadata */
                st = bl_st_writer_add(&w, tr[i].name, BL_DTYPE_F32, tr[i].ndim, tr[i].shape, tr[i].grad);
            }
        }
    }
    if (!st) st = bl_st_writer_save(&w, out);
    bl_st_writer_free(&w);
    free(tr);
    if (st) goto fail;
    if (balora)
        bl_log(BL_INFO, "loss %.6f = task %.6f + %g * cr %.6g + %g * dr %.6g + %g * svdr %.6g (teacher: %s)", loss32, task32,
               ro.lambda[0], ro.cr, ro.lambda[1], ro.dr, ro.lambda[2], ro.svdr,
               tmode == BL_ADAPTER_INITIAL ? "W_res + s B0 A0" : "adapter off");
    else if (have_loss) bl_log(BL_INFO, "loss %.6f", loss32);
    rc = 0;
    goto done;
fail:
    rc = cli_fail(st);
done:
    free(ids); free(mask); free(types); free(labels); free(flabels); free(dlogits); free(zt);
    bl_reg_ws_free(&ws);
    bl_lora_free(&ad);
    if (have_bf) bl_st_close(&bf);
    fm_free(&fm);
    return rc;
}
