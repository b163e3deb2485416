/* balora forward: run a model (and an adapter) on a batch; write logits, the loss and, with
 * --grads, d loss / d (every trainable adapter tensor) keyed as in adapter_model.safetensors.
 * The tool to check balora against any reference implementation. */
#include "adapters/lora.h"
#include "args.h"
#include "cli.h"
#include "io/safetensors.h"
#include "model/model.h"
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "--model DIR [--adapter ADAPTER_DIR] --batch BATCH.safetensors --out OUT.safetensors [--grads]\n"
    "\n"
    "BATCH holds input_ids [B, T] (I64), optional attention_mask [B, T] (1 = real token) and optional labels\n"
    "([B, T] token ids with -100 = ignored for causal LMs, the shift is applied inside as transformers does;\n"
    "[B] class ids for *ForSequenceClassification). Other tensors are ignored. The model class comes from\n"
    "config.json's architectures; DIR may also be a llama2.c .bin checkpoint.\n"
    "OUT holds logits [B, T, V] (or [B, num_labels]) F32, loss (F32 scalar, mean over trained tokens; needs\n"
    "labels) and with --grads the gradient of the loss for every trainable adapter tensor.";

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

int cmd_forward(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *batch = NULL, *out = NULL;
    bool grads = false;
    int64_t threads = 0;
    cli_opt opts[] = {
        {"model", CLI_OPT_STR, &model, "Hugging Face model folder (or llama2.c .bin)"},
        {"adapter", CLI_OPT_STR, &adapter, "PEFT LoRA adapter folder"},
        {"batch", CLI_OPT_STR, &batch, "input safetensors: input_ids, attention_mask, labels"},
        {"out", CLI_OPT_STR, &out, "output safetensors: logits, loss, gradients"},
        {"grads", CLI_OPT_FLAG, &grads, "also write d loss / d adapter tensors (needs --adapter and labels)"},
        {"threads", CLI_OPT_INT, &threads, "threads (0 = all cores)"},
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
    if (threads < 0) { fprintf(stderr, "balora forward: error: --threads must be >= 0\n"); return 2; }
    if (threads > 0) balora_threads_set((int)threads);

    balora_status st;
    bl_model m;
    bl_adapter ad;
    bl_run r;
    bl_st_file bf;
    memset(&m, 0, sizeof m); memset(&ad, 0, sizeof ad); memset(&r, 0, sizeof r); memset(&bf, 0, sizeof bf);
    int64_t *ids = NULL, *mask = NULL, *labels = NULL;
    float *dlogits = NULL, *flabels = NULL;
    bool have_bf = false;

    if (bl_dir_exists(model)) st = bl_model_load(&m, model);
    else if (bl_file_exists(model)) st = bl_model_load_llama2c(&m, model);
    else st = bl_fail(BALORA_STATUS_IO, "%s: no such model folder or llama2.c checkpoint", model);
    if (st) goto fail;
    bl_log(BL_VERBOSE, "model %s: %s, %lld parameters", model, m.cfg.architecture, (long long)bl_model_n_params(&m));
    if (adapter && (st = bl_lora_load(&ad, &m.mods, adapter, false))) goto fail;
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
    bool cls = m.cfg.head == BL_HEAD_SEQ_CLS;
    bool regression = cls && m.cfg.num_labels == 1;
    if ((st = read_ids(&bf, "input_ids", true, 2, bt, &ids))) goto fail;
    if ((st = read_ids(&bf, "attention_mask", false, 2, bt, &mask))) goto fail;
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
    if ((st = bl_run_init(&r, &m, B, T))) goto fail;
    bl_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask};
    double t0 = bl_time_now();
    if ((st = bl_model_forward(&r, &b, BL_ADAPTER_ON))) goto fail;
    float loss32 = 0.0f;
    bool have_loss = labels || flabels;
    if (have_loss) {
        dlogits = malloc((size_t)r.n_logits * sizeof(float));
        if (!dlogits) { st = bl_fail(BALORA_STATUS_NOMEM, "out of memory"); goto fail; }
        double loss = 0;
        int64_t cnt = 0;
        if (regression) { /* transformers: num_labels == 1 is regression with MSE */
            for (int64_t i = 0; i < B; i++) {
                double d = (double)r.logits[i] - flabels[i];
                loss += d * d;
                dlogits[i] = (float)(2.0 * d / (double)B);
            }
            loss /= (double)B;
            cnt = B;
        } else if (cls) {
            st = bl_xent(r.logits, labels, B, 1, m.cfg.num_labels, false, dlogits, 1.0f, &loss, &cnt);
        } else {
            st = bl_xent(r.logits, labels, B, T, m.cfg.vocab_size, true, dlogits, 1.0f, &loss, &cnt);
        }
        if (st) { bl_fail_prefix(st, "%s: ", batch); goto fail; }
        if (cnt == 0) bl_log(BL_WARN, "%s: no trained tokens (every shifted label is -100): loss is 0", batch);
        loss32 = (float)loss;
        if (grads) {
            bl_lora_zero_grads(&ad);
            if ((st = bl_model_backward(&r, dlogits))) goto fail;
        }
    }
    bl_log(BL_VERBOSE, "forward%s: %lld x %lld tokens in %.3f s", grads ? " + backward" : "", (long long)B, (long long)T,
           bl_time_now() - t0);
    bl_st_writer w;
    bl_st_writer_init(&w);
    int64_t lshape[3] = {B, T, m.cfg.vocab_size};
    if (cls) { lshape[1] = m.cfg.num_labels; }
    st = bl_st_writer_add(&w, "logits", BL_DTYPE_F32, cls ? 2 : 3, lshape, r.logits);
    if (!st && have_loss) st = bl_st_writer_add(&w, "loss", BL_DTYPE_F32, 0, NULL, &loss32);
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
    if (have_loss) bl_log(BL_INFO, "loss %.6f", loss32);
    rc = 0;
    goto done;
fail:
    rc = cli_fail(st);
done:
    free(ids); free(mask); free(labels); free(flabels); free(dlogits);
    bl_run_free(&r);
    bl_lora_free(&ad);
    if (have_bf) bl_st_close(&bf);
    bl_model_free(&m);
    return rc;
}
