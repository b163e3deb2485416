/* The masked-language-model head of a BERT-shaped encoder, as transformers' BertForMaskedLM
 * computes it (cls.predictions):
 *     h      = hidden of the encoder's last layer       [N, C]
 *     pre    = h W_t^T + b_t                            transform.dense   [C, C], [C]
 *     act    = gelu(pre)  (the config's hidden_act: "gelu" (erf) or gelu_new / gelu_pytorch_tanh)
 *     y      = LayerNorm(act) (w, b, layer_norm_eps)    transform.LayerNorm
 *     logits = y E^T + bias                             decoder tied to the word embeddings E [V, C]; bias [V]
 * with forward and backward (dhidden, and gradients of every head tensor; the tied decoder's
 * gradient adds into the word embeddings' gradient when the encoder has one: full fine-tuning).
 *
 *     bl_mlm_head h;
 *     BL_TRY(bl_mlm_head_init(&h, &enc, max_N, seed));
 *     BL_TRY(bl_mlm_forward(&h, hidden, N, logits));          -> logits [N, V]
 *     BL_TRY(bl_mlm_backward(&h, dlogits, dhidden));           -> dhidden [N, C] (written), grads +=
 *
 * Masking (BERT's recipe): bl_mlm_mask picks each maskable token with probability p (15%) and
 * replaces it by mask_id (80%), a random word in [rand_lo, rand_hi) (10%) or keeps it (10%). */
#ifndef BL_ENC_MLM_H
#define BL_ENC_MLM_H
#include "encoders/encoder.h"

#define BL_MLM_N_PARAMS 5
typedef struct bl_mlm_head {
    bl_encoder *enc;           /* word embeddings (tied decoder) */
    int64_t C, V, max_N, N;
    float eps;
    /* parameters and gradients, HF names in bl_mlm_param_name */
    float *p[BL_MLM_N_PARAMS];  /* dense.weight [C, C], dense.bias [C], LayerNorm.weight [C], LayerNorm.bias [C], bias [V] */
    float *g[BL_MLM_N_PARAMS];
    int64_t numel[BL_MLM_N_PARAMS];
    /* saved by forward */
    float *h;                  /* [max_N, C] input copy */
    float *pre, *act, *y;      /* [max_N, C] */
    float *mean, *rstd;        /* [max_N] */
    float *dy, *dact, *dpre;   /* [max_N, C] scratch */
    bl_arena arena;
} bl_mlm_head;

/* "cls.predictions.transform.dense.weight", ... "cls.predictions.bias". */
const char *bl_mlm_param_name(int i);
/* Head tensors initialised as transformers' _init_weights (N(0, init_range) dense, zero biases,
 * LayerNorm 1/0); enc must be a BERT-shaped encoder; max_N rows per call. */
balora_status bl_mlm_head_init(bl_mlm_head *h, bl_encoder *enc, int64_t max_N, uint64_t seed);
void bl_mlm_head_free(bl_mlm_head *h);
/* hidden [N, C] -> logits [N, V]. */
balora_status bl_mlm_forward(bl_mlm_head *h, const float *hidden, int64_t N, float *logits);
/* Backward of the last forward: dhidden [N, C] = d loss / d hidden (written); head gradients and
 * (when the encoder has one) the word embeddings' gradient accumulate. */
balora_status bl_mlm_backward(bl_mlm_head *h, const float *dlogits, float *dhidden);
/* Writes a BertForMaskedLM folder: dir/config.json (architectures ["BertForMaskedLM"], no
 * classifier fields) and dir/model.safetensors holding the encoder's tensors without the pooler and
 * the classifier (as transformers' BertForMaskedLM, add_pooling_layer=False) plus the head's
 * cls.predictions.* (the decoder tied to the word embeddings, not repeated). bl_enc_load of the folder
 * then creates the pooler and the classifier as transformers does for *ForSequenceClassification. */
balora_status bl_mlm_save(const bl_mlm_head *h, const char *dir);

/* BERT masking of ids[n] in place: labels[i] = original id where picked, else -100. Positions with
 * maskable[i] false (or NULL = all maskable) are never picked. Returns the number picked. */
int64_t bl_mlm_mask(int32_t *ids, int32_t *labels, const bool *maskable, int64_t n, double p, int32_t mask_id,
                    int32_t rand_lo, int32_t rand_hi, bl_rng *rng);

#endif
