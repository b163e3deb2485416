/* One face for the two kinds of sequence classifiers balora runs: the encoders of this directory
 * (bert, roberta, deberta-v2) and the engine's decoders with a classification head
 * (GPT2ForSequenceClassification etc., src/model: the score head on the last non-padding token,
 * as transformers pools it). Fine-tuning, prediction and features (finetune.h, predict.h,
 * `balora features`) go through it, so each works for both.
 *
 *     bl_clsm m;
 *     BL_TRY(bl_clsm_load(&m, dir, num_labels_or_0, regression, seed));
 *     ... attach an adapter to m.mods (src/adapters) ...
 *     BL_TRY(bl_clsm_run_init(&m, B, T));
 *     BL_TRY(bl_clsm_forward(&m, B, T, ids, mask, types, BL_ADAPTER_ON));    -> m.logits [B, num_labels]
 *     BL_TRY(bl_clsm_loss(&m, labels, targets, &loss));                      -> m.dlogits
 *     BL_TRY(bl_clsm_backward(&m));
 *     bl_clsm_free(&m);
 */
#ifndef BL_ENC_CLSMODEL_H
#define BL_ENC_CLSMODEL_H
#include "encoders/encoder.h"
#include "model/model.h"

typedef struct bl_clsm {
    bool decoder;              /* false: *enc; true: *dec (a *ForSequenceClassification decoder) */
    bl_encoder *enc;           /* the model (owned when loaded by bl_clsm_load, borrowed by bl_clsm_wrap_encoder) */
    bl_model *dec;
    bool owns;
    bl_encoder enc_store;
    bl_model dec_store;
    bl_enc_run er;
    bl_run dr;
    bl_module_set *mods;       /* the adapter attach point of whichever model */
    int64_t num_labels;
    bool regression;
    int64_t pad_id;            /* written into padding positions */
    int64_t max_tokens;        /* longest sequence its positions allow */
    int64_t hidden, n_layer;
    bool use_types;            /* pass token_type_ids (models with >= 2 token types) */
    bool train;                /* LoRA dropout on (copied into the run at each forward) */
    bl_rng *rng;               /* the run's dropout generator (valid after run_init) */
    float *logits;             /* [B, num_labels] of the last forward */
    float *dlogits;            /* [max_B, num_labels] loss gradient (bl_clsm_loss) */
    int64_t B, T;              /* of the last forward */
    bool have_run;
} bl_clsm;

/* An encoder folder (bert / roberta / deberta-v2; a head absent from the checkpoint is created) or
 * a decoder *ForSequenceClassification folder (its score head must be in the checkpoint).
 * num_labels > 0 / regression override the config (encoders); seed initialises new heads. */
balora_status bl_clsm_load(bl_clsm *m, const char *dir, int64_t num_labels, bool regression, uint64_t seed);
/* A view of an encoder owned elsewhere (bl_clsm_free then frees only the run). */
void bl_clsm_wrap_encoder(bl_clsm *m, bl_encoder *e);
balora_status bl_clsm_run_init(bl_clsm *m, int64_t max_B, int64_t max_T);
/* ids, mask, types [B, T] (types may be NULL). */
balora_status bl_clsm_forward(bl_clsm *m, int64_t B, int64_t T, const int64_t *ids, const int64_t *mask,
                              const int64_t *types, bl_adapter_mode mode);
/* Cross-entropy (labels, -100 ignored) or MSE (targets) of the last forward; gradient in m->dlogits. */
balora_status bl_clsm_loss(bl_clsm *m, const int64_t *labels, const float *targets, double *loss);
balora_status bl_clsm_backward(bl_clsm *m);
/* Features of example b of the last forward: layer < 0 = the vector the classifier reads (encoders:
 * r.pooled; decoders: the final-norm hidden state at the pooled token); layer 0..n_layer: the hidden
 * state after that layer at the first token (mean: averaged over real tokens; decoders: at the pooled
 * token unless mean). out [hidden]. */
balora_status bl_clsm_features(const bl_clsm *m, int64_t b, int64_t layer, bool mean, const int64_t *mask, float *out);
/* Full fine-tuning on (every base tensor trainable). */
balora_status bl_clsm_set_full_ft(bl_clsm *m, bool on);
/* Writes the model folder with the trained heads (encoders: bl_enc_save; decoders: bl_model_save_heads). */
balora_status bl_clsm_save(const bl_clsm *m, const char *dir);
void bl_clsm_free(bl_clsm *m);

#endif
