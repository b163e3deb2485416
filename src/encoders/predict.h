/* Predictions of sequence classifiers (encoders, and decoders with a classification head such as
 * GPT2ForSequenceClassification, through clsmodel.h) over data files: what
 * `balora eval --task seq-cls --model DIR` and the GLUE-X style out-of-domain evaluation need.
 *
 *     double *pred, *gold; int64_t n;
 *     BL_TRY(bl_enc_predict_file(model_dir, adapter_dir_or_NULL, BL_GLUE_TASK_SST2, "dev.tsv", NULL, &pred, &gold, &n));
 *     ... bl_glue_score(task, pred, gold, n, 0, &result) (src/eval/metrics.h) ...
 *     free(pred); free(gold);
 */
#ifndef BL_ENC_PREDICT_H
#define BL_ENC_PREDICT_H
#include "data_glue/data.h"
#include "encoders/clsmodel.h"
#include "encoders/encoder.h"
#include "tok/tok.h"

/* The longest token sequence the model's position embeddings allow (BERT: max_position_embeddings;
 * RoBERTa: max_position_embeddings - pad_token_id - 1; DeBERTa without absolute positions: INT64_MAX). */
int64_t bl_enc_max_tokens(const bl_encoder *m);

/* Runs m over every example of d (tokenised by tok, cut to max_len tokens, `batch` examples per
 * forward): pred[i] = argmax class id (classification) or the score (regression); logits
 * [n, num_labels] (may be NULL). mode: BL_ADAPTER_ON with an adapter attached, else OFF. */
balora_status bl_enc_predict(bl_encoder *m, bl_tok *tok, const bl_glue_set *d, bl_adapter_mode mode, int64_t max_len,
                             int64_t batch, double *pred, float *logits);

/* The same for either kind of classifier (m->train is ignored: no dropout). Reinitialises m's run. */
balora_status bl_clsm_predict(bl_clsm *m, bl_tok *tok, const bl_glue_set *d, bl_adapter_mode mode, int64_t max_len,
                              int64_t batch, double *pred, float *logits);

/* Where predictions are kept as they are made (balora eval --out: the eval journal), so that an
 * interrupted run resumes: open(n) once, then for each batch of the same boundaries as an uninterrupted
 * run, get(i) for its examples (all kept: the batch is skipped) or put(i) after computing it. After each
 * computed batch an interrupt (balora_interrupted) stops with BALORA_STATUS_INTERRUPTED. */
typedef struct bl_predict_keep {
    balora_status (*open)(void *user, int64_t n);
    bool (*get)(void *user, int64_t i, double *pred);
    balora_status (*put)(void *user, int64_t i, double pred);
    void *user;
} bl_predict_keep;

typedef struct bl_enc_predict_opts {
    int64_t max_len;          /* default 128 (clamped to bl_enc_max_tokens) */
    int64_t batch;            /* default 32 */
    const char *tokenizer;    /* NULL: the model folder */
    bool advglue;             /* data is Adversarial GLUE's dev_ann.json (task names the subset) */
    bool skip_bad_rows;       /* GLUE TSVs: skip (and count) malformed rows instead of failing */
    const bl_data_spec *spec; /* task BL_GLUE_TASK_GENERIC: the columns (NULL = text/label defaults) */
    const bl_predict_keep *keep; /* NULL: nothing kept (and no interrupt point) */
} bl_enc_predict_opts;
#define BL_ENC_PREDICT_DEFAULT ((bl_enc_predict_opts){ .max_len = 128, .batch = 32 })

/* Loads the model (encoder or decoder classifier; + adapter, + tokenizer) and the data file of `task`
 * and predicts every example.
 * *pred, *gold: malloc'd [n] (class ids as doubles, or scores; gold NAN where the file has no label). */
balora_status bl_enc_predict_file(const char *model, const char *adapter, bl_glue_task task, const char *data,
                                  const bl_enc_predict_opts *o, double **pred, double **gold, int64_t *n);

#endif
