/* balora features: the pooled representation of every example of a data file, from an encoder
 * (bert, roberta, deberta-v2) or a decoder classifier (GPT2ForSequenceClassification, ...) with an
 * optional adapter, written as safetensors for the t-SNE and other analyses of the lab. */
#include "adapters/lora.h"
#include "args.h"
#include "cli.h"
#include "data_glue/data.h"
#include "data_glue/seqcls.h"
#include "encoders/clsmodel.h"
#include "encoders/encoder.h"
#include "encoders/predict.h"
#include "model/arch.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "--model DIR [--adapter DIR] --data FILE --out F.safetensors [--layer L] [--pooling cls|mean] [--task T]\n"
    "\n"
    "Runs the encoder over every example of FILE and writes, per example, the hidden state of layer L\n"
    "(0 = embeddings, 1..n_layer = after that layer; at the first token with --pooling cls, the mean over\n"
    "real tokens with --pooling mean) or, with L = -1 (default), the vector the classifier reads (BERT's\n"
    "pooler output, RoBERTa's classifier.dense + tanh, DeBERTa's ContextPooler; for a decoder classifier the\n"
    "final-norm state of the pooled last real token, which hidden layers also use unless --pooling mean).\n"
    "FILE: a GLUE TSV with --task (the GLUE task: see --task below), Adversarial\n"
    "GLUE's dev_ann.json with --advglue and --task, or CSV/TSV/JSONL with --text-col [--text-pair-col]\n"
    "[--label-col]. The tokenizer is read from --tokenizer (default: the model folder).\n"
    "OUT holds features [n, C] F32, labels [n] I64 (-100 when unlabelled) or scores [n] F32 (regression),\n"
    "row [n] I64 (the example's line / idx in FILE), and metadata (model, adapter, data, layer, pooling).";

int cmd_features(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *data = NULL, *out = NULL, *task = NULL, *pooling = "cls";
    const char *text_col = "text", *pair_col = NULL, *label_col = "label", *labels_map = NULL, *format = NULL;
    const char *tokdir = NULL;
    int64_t layer = -1, max_len = 128, batch = 32, max_examples = 0, threads = 0, num_labels = 0;
    bool advglue = false, no_labels = false, regression = false, skip_bad = false;
    char model_help[400], l2[256], task_help[300], glue[200], adv[160];
    snprintf(task_help, sizeof task_help, "GLUE task of a GLUE TSV (%s) or Adversarial GLUE file (%s)",
             bl_glue_task_list(0, glue, sizeof glue), bl_glue_task_list(2, adv, sizeof adv));
    snprintf(model_help, sizeof model_help, "Hugging Face encoder folder (%s) or decoder classifier folder",
             bl_arch_type_list(2, l2, sizeof l2));
    cli_opt opts[] = {
        {"model", CLI_OPT_STR, &model, model_help},
        {"adapter", CLI_OPT_STR, &adapter, "PEFT LoRA adapter folder"},
        {"data", CLI_OPT_STR, &data, "examples: GLUE TSV, Adversarial GLUE JSON, CSV, TSV or JSONL"},
        {"out", CLI_OPT_STR, &out, "output safetensors"},
        {"layer", CLI_OPT_INT, &layer, "hidden layer (0 = embeddings, n_layer = last; -1 = the classifier's input)"},
        {"pooling", CLI_OPT_STR, &pooling, "cls (first token) or mean (over real tokens); for --layer >= 0"},
        {"task", CLI_OPT_STR, &task, task_help},
        {"advglue", CLI_OPT_FLAG, &advglue, "FILE is Adversarial GLUE's dev_ann.json (needs --task)"},
        {"format", CLI_OPT_STR, &format, "csv, tsv or jsonl (default: from the extension)"},
        {"text-col", CLI_OPT_STR, &text_col, "generic files: the text column"},
        {"text-pair-col", CLI_OPT_STR, &pair_col, "generic files: the second text column"},
        {"label-col", CLI_OPT_STR, &label_col, "generic files: the label column"},
        {"labels", CLI_OPT_STR, &labels_map, "generic files: label names in id order, comma-separated"},
        {"no-labels", CLI_OPT_FLAG, &no_labels, "generic files: the file has no labels"},
        {"regression", CLI_OPT_FLAG, &regression, "generic files: float targets"},
        {"num-labels", CLI_OPT_INT, &num_labels, "classifier outputs when the model has no head yet (0 = config)"},
        {"tokenizer", CLI_OPT_STR, &tokdir, "tokenizer folder or tokenizer.json (default: --model)"},
        {"max-len", CLI_OPT_INT, &max_len, "tokens per example, special tokens included (longer ones are cut)"},
        {"batch", CLI_OPT_INT, &batch, "examples per forward pass"},
        {"max-examples", CLI_OPT_INT, &max_examples, "only the first N examples (0 = all)"},
        {"skip-bad-rows", CLI_OPT_FLAG, &skip_bad, "skip (and count) malformed rows instead of failing"},
        {"threads", CLI_OPT_INT, &threads, "threads (0 = all cores)"},
    };
    int rc = cli_parse(argc, argv, USAGE, opts, (int)(sizeof opts / sizeof *opts), NULL, 0, NULL);
    if (rc == 1) return 0;
    if (rc) return rc;
    if (!model || !data || !out) {
        fprintf(stderr, "balora features: error: --model, --data and --out are required (see balora features --help)\n");
        return 2;
    }
    bool mean = !strcmp(pooling, "mean");
    if (!mean && strcmp(pooling, "cls")) {
        fprintf(stderr, "balora features: error: --pooling must be cls or mean, got '%s'\n", pooling);
        return 2;
    }
    if (batch < 1 || max_len < 2 || max_examples < 0 || threads < 0 || layer < -1) {
        fprintf(stderr, "balora features: error: --batch >= 1, --max-len >= 2, --max-examples >= 0, --threads >= 0 and "
                        "--layer >= -1 are required\n");
        return 2;
    }
    if (advglue && !task) {
        fprintf(stderr, "balora features: error: --advglue needs --task (%s)\n", adv);
        return 2;
    }
    if (threads > 0) balora_threads_set((int)threads);

    balora_status st = BALORA_STATUS_OK;
    bl_clsm *m = calloc(1, sizeof *m);
    if (!m) return cli_fail(bl_fail(BALORA_STATUS_NOMEM, "out of memory"));
    bl_adapter ad;
    bl_glue_set d;
    bl_seqcls_set s;
    bl_tok *tok = NULL;
    memset(&ad, 0, sizeof ad); memset(&d, 0, sizeof d); memset(&s, 0, sizeof s);
    float *feat = NULL;
    int64_t *ids = NULL, *mask = NULL, *types = NULL, *labels = NULL, *rows = NULL, *idx = NULL;
    float *scores = NULL;
    if ((st = bl_clsm_load(m, model, num_labels, false, 0))) goto fail;
    if (layer > m->n_layer) {
        st = bl_fail(BALORA_STATUS_INVALID, "--layer %lld: the model has %lld layers (0 = embeddings .. %lld, -1 = pooled)",
                     (long long)layer, (long long)m->n_layer, (long long)m->n_layer);
        goto fail;
    }
    if (adapter && (st = bl_lora_load(&ad, m->mods, adapter, false))) goto fail;
    if ((st = bl_tok_load(&tok, tokdir ? tokdir : model))) goto fail;
    if (task && strcmp(task, "generic")) {
        bl_glue_task t;
        if ((st = bl_glue_task_parse(task, &t))) goto fail;
        bl_glue_opts go = {.skip_bad_rows = skip_bad};
        st = advglue ? bl_advglue_load(&d, t, data) : bl_glue_load(&d, t, data, &go);
    } else {
        bl_data_spec sp = BL_DATA_SPEC_DEFAULT;
        sp.format = format; sp.text_col = text_col; sp.text_pair_col = pair_col; sp.label_col = label_col;
        sp.labels = labels_map; sp.no_labels = no_labels; sp.regression = regression; sp.skip_bad_rows = skip_bad;
        st = bl_data_load(&d, &sp, data);
    }
    if (st) goto fail;
    if (max_examples > 0) {
        bl_data_knobs k = BL_DATA_KNOBS_DEFAULT;
        k.max_train = max_examples;
        if ((st = bl_data_apply_knobs(&d, &k))) goto fail;
    }
    if (max_len > m->max_tokens) max_len = m->max_tokens;
    bl_seqcls_opts so = BL_SEQCLS_OPTS_DEFAULT;
    so.max_len = max_len;
    so.pad_id = m->pad_id;
    if ((st = bl_seqcls_encode(&s, &d, tok, &so))) goto fail;
    if (s.n_truncated) bl_log(BL_INFO, "%lld of %lld examples cut to %lld tokens", (long long)s.n_truncated, (long long)s.n, (long long)max_len);
    int64_t n = s.n, C = m->hidden, B = batch < n ? batch : n;
    feat = malloc(sizeof(float) * (size_t)(n * C));                 /* [n, C] */
    ids = malloc(sizeof(int64_t) * (size_t)(B * max_len));          /* [B, max_len] */
    mask = malloc(sizeof(int64_t) * (size_t)(B * max_len));
    types = malloc(sizeof(int64_t) * (size_t)(B * max_len));
    labels = malloc(sizeof(int64_t) * (size_t)n);                   /* [n] */
    scores = malloc(sizeof(float) * (size_t)n);
    rows = malloc(sizeof(int64_t) * (size_t)n);
    idx = malloc(sizeof(int64_t) * (size_t)B);
    if (!feat || !ids || !mask || !types || !labels || !scores || !rows || !idx) { st = bl_fail(BALORA_STATUS_NOMEM, "out of memory"); goto fail; }
    if ((st = bl_clsm_run_init(m, B, max_len))) goto fail;
    for (int64_t s0 = 0; s0 < n; s0 += B) {
        int64_t nb = n - s0 < B ? n - s0 : B, T;
        for (int64_t i = 0; i < nb; i++) idx[i] = s0 + i;
        if ((st = bl_seqcls_batch(&s, idx, nb, ids, mask, types, labels + s0, scores + s0, &T))) goto fail;
        if ((st = bl_clsm_forward(m, nb, T, ids, mask, types, adapter ? BL_ADAPTER_ON : BL_ADAPTER_OFF))) goto fail;
        for (int64_t i = 0; i < nb; i++)
            if ((st = bl_clsm_features(m, i, layer, mean, mask, feat + (s0 + i) * C))) goto fail;
    }
    for (int64_t i = 0; i < n; i++) rows[i] = d.row[i];
    bl_st_writer w;
    bl_st_writer_init(&w);
    char lay[32], nn[32];
    snprintf(lay, sizeof lay, "%lld", (long long)layer);
    snprintf(nn, sizeof nn, "%lld", (long long)n);
    st = bl_st_writer_add(&w, "features", BL_DTYPE_F32, 2, (int64_t[]){n, C}, feat);
    if (!st) st = d.regression ? bl_st_writer_add(&w, "scores", BL_DTYPE_F32, 1, (int64_t[]){n}, scores)
                               : bl_st_writer_add(&w, "labels", BL_DTYPE_I64, 1, (int64_t[]){n}, labels);
    if (!st) st = bl_st_writer_add(&w, "row", BL_DTYPE_I64, 1, (int64_t[]){n}, rows);
    if (!st) st = bl_st_writer_meta(&w, "model", model);
    if (!st && adapter) st = bl_st_writer_meta(&w, "adapter", adapter);
    if (!st) st = bl_st_writer_meta(&w, "data", data);
    if (!st) st = bl_st_writer_meta(&w, "task", d.meta.task);
    if (!st) st = bl_st_writer_meta(&w, "layer", lay);
    if (!st) st = bl_st_writer_meta(&w, "pooling", layer < 0 ? "classifier-input" : pooling);
    if (!st) st = bl_st_writer_meta(&w, "n", nn);
    if (!st) st = bl_st_writer_save(&w, out);
    bl_st_writer_free(&w);
    if (st) goto fail;
    bl_log(BL_INFO, "wrote %lld x %lld features to %s", (long long)n, (long long)C, out);
    rc = 0;
    goto done;
fail:
    rc = cli_fail(st);
done:
    free(feat); free(ids); free(mask); free(types); free(labels); free(scores); free(rows); free(idx);
    bl_seqcls_free(&s);
    bl_glue_set_free(&d);
    if (tok) bl_tok_free(tok);
    bl_lora_free(&ad);
    bl_clsm_free(m);
    free(m);
    return rc;
}
