/* Encoder models for sequence classification and regression: bert, roberta, deberta-v2
 * (DeBERTa-v3), as transformers' *ForSequenceClassification compute them, with forward and
 * backward through the engine's ops and THE adapter attach point (bl_lin_fwd / bl_lin_bwd,
 * src/model/model.h), so LoRA / PiSSA / BA-LoRA adapters from src/adapters attach unchanged.
 *
 * USING IT (trainer, eval, features):
 *
 *     bl_encoder m;
 *     bl_enc_load_opts o = BL_ENC_LOAD_DEFAULT; o.num_labels = 2;   (0: from config.json)
 *     BL_TRY(bl_enc_load(&m, "path/to/hf-folder", &o));
 *     // adapters: m.mods is a bl_module_set like a decoder's:
 *     //   bl_lora_init(&ad, &m.mods, &cfg, seed)  or  bl_lora_load(&ad, &m.mods, dir, false)
 *     //   target names: query,key,value,dense (bert/roberta), query_proj,key_proj,value_proj,dense
 *     //   (deberta-v2). Heads (modules_to_save "classifier"; their params have train_data/grad).
 *     bl_enc_run r;
 *     BL_TRY(bl_enc_run_init(&r, &m, max_B, max_T));                 (after attaching adapters)
 *     bl_enc_batch b = {B, T, ids, attention_mask, token_type_ids /+ NULL/};
 *     BL_TRY(bl_enc_forward(&r, &b, BL_ADAPTER_ON));                 -> r.logits [B, num_labels]
 *     double loss;
 *     BL_TRY(bl_enc_loss(&r, labels /+ int64 [B] +/, targets /+ float [B], regression +/, &loss, r.dlogits));
 *     bl_lora_zero_grads(&ad);
 *     BL_TRY(bl_enc_backward(&r, r.dlogits));                       -> LoRA gA/gB, head grads +=
 *
 * Outputs of the last forward: r.logits [B, num_labels] (num_labels 1 = regression score),
 * r.pooled [B, C] (the vector the final classifier projection reads: BERT pooler output,
 * RoBERTa classifier.dense+tanh output, DeBERTa ContextPooler output), and
 * bl_enc_layer_hidden(&r, l) [B, T, C] (l = 0: embeddings output, l = n_layer: last layer).
 *
 * Modes (as decoders): BL_ADAPTER_ON (student: adapters + the head's trained copy),
 * BL_ADAPTER_OFF (base model with the head's initial weights: BA-LoRA's teacher for LoRA),
 * BL_ADAPTER_INITIAL (PiSSA teacher: W_res + s B0 A0; head's initial weights). Backward uses the
 * last forward, which must be ON (or OFF with full fine-tuning).
 *
 * Differences from transformers, by design: dropout layers (hidden, attention, classifier) run
 * as in eval mode (a config with non-zero dropout loads with a warning); LoRA dropout is applied
 * (bl_lin_fwd) when r.train is set. Padding query rows of DeBERTa attend normally instead of
 * being zeroed: only padding positions' hidden states differ, never a real token's or the logits. */
#ifndef BL_ENCODER_H
#define BL_ENCODER_H
#include "core/bl.h"
#include "model/model.h"

/* bl_enc_arch (which encoder row of the architecture table): model/arch.h */
/* Activations of encoders (hidden_act, pooler_hidden_act). */
typedef enum bl_enc_act { BL_ENC_ACT_GELU = 0 /* erf */, BL_ENC_ACT_GELU_TANH, BL_ENC_ACT_RELU, BL_ENC_ACT_TANH } bl_enc_act;

typedef struct bl_enc_config {
    bl_enc_arch arch;
    const bl_arch *row;         /* its row of the architecture table (model/arch.h) */
    char model_type[32];        /* "bert", "roberta", "deberta-v2" */
    char architecture[64];      /* architectures[0] */
    int64_t vocab_size, hidden, n_layer, n_head, head_dim, intermediate;
    int64_t max_pos;            /* max_position_embeddings */
    int64_t type_vocab;         /* type_vocab_size (0: no token-type embeddings) */
    double ln_eps;              /* layer_norm_eps */
    bl_enc_act act;             /* hidden_act: gelu (erf), gelu_new / gelu_pytorch_tanh, relu */
    int64_t pad_id;             /* pad_token_id (RoBERTa positions start after it) */
    double init_range;          /* initializer_range: new heads ~ N(0, init_range), bias 0 */
    int64_t num_labels;         /* 1 = regression */
    bool regression;            /* problem_type "regression" or num_labels == 1 */
    /* deberta-v2 */
    bool relative_attention;
    int64_t position_buckets;   /* <= 0: none */
    int64_t max_rel_pos;        /* max_relative_positions (< 1: max_position_embeddings) */
    int64_t att_span;           /* position_buckets if > 0 else max_rel_pos */
    bool c2p, p2c;              /* pos_att_type */
    bool norm_rel_ebd;          /* norm_rel_ebd contains "layer_norm" */
    bool position_biased_input; /* absolute position embeddings added to the input */
    bl_enc_act pooler_act;      /* pooler_hidden_act (deberta ContextPooler; bert/roberta: tanh) */
} bl_enc_config;

/* Parses config.json of bert / roberta / deberta-v2 (xlm-roberta, camembert: as roberta). Fields
 * balora cannot honour fail (UNSUPPORTED) naming the field: position_embedding_type other than
 * "absolute", share_att_key false with relative attention, conv_kernel_size > 0, embedding_size !=
 * hidden_size, pooler_hidden_size != hidden_size, problem_type multi_label_classification, ...
 * num_labels_override > 0 replaces num_labels / id2label. */
balora_status bl_enc_config_parse(bl_enc_config *c, const cJSON *json, const char *file, int64_t num_labels_override);

/* Weights (float32 [out, in]). Params are in m->mods.params under their HF names; the pointers
 * below point into them. Head tensors: "classifier.weight"/"classifier.bias" (bert, deberta) or
 * "classifier.dense.*" + "classifier.out_proj.*" (roberta). */
typedef struct bl_enc_layer {
    bl_linear *q, *k, *v;      /* attention.self.query/key/value (deberta: query_proj/...) [C, C] */
    bl_linear *ao;             /* attention.output.dense [C, C] */
    bl_linear *fi;             /* intermediate.dense [F, C] */
    bl_linear *fo;             /* output.dense [C, F] */
    int ln1_w, ln1_b;          /* attention.output.LayerNorm (param indices) */
    int ln2_w, ln2_b;          /* output.LayerNorm */
} bl_enc_layer;

typedef struct bl_encoder {
    bl_enc_config cfg;
    bl_module_set mods;        /* linears (adapter targets) + every tensor; heads = {"classifier"} */
    bl_enc_layer *layers;      /* [n_layer] */
    int word, pos, type;       /* embeddings (param index, -1 when absent) */
    int emb_ln_w, emb_ln_b;
    int rel, rel_ln_w, rel_ln_b; /* deberta: encoder.rel_embeddings, encoder.LayerNorm (-1 absent) */
    bl_linear *pooler;         /* bert pooler.dense / deberta pooler.dense; NULL for roberta */
    int head_w, head_b;        /* classifier(.out_proj) weight / bias */
    int head_dense_w, head_dense_b; /* roberta classifier.dense; -1 otherwise */
    bool full_ft;
    float *own_head[4];        /* head copies made by bl_enc_heads_trainable (freed with the model) */
    bl_arena weights;          /* every float */
    bl_arena grads;            /* full fine-tuning */
    char source[1024];
} bl_encoder;

typedef struct bl_enc_load_opts {
    int64_t num_labels;        /* 0: from config.json (num_labels / id2label; default 2) */
    bool regression;           /* force regression (num_labels 1, MSE) */
    uint64_t seed;             /* initialisation of head tensors absent from the checkpoint */
} bl_enc_load_opts;
#define BL_ENC_LOAD_DEFAULT ((bl_enc_load_opts){ .num_labels = 0, .regression = false, .seed = 0 })

/* Loads an HF folder. Tensors may lack the model prefix ("bert." ...); old "gamma"/"beta"
 * LayerNorm names are accepted. Head tensors (pooler, classifier) absent from the checkpoint are
 * created as transformers does: N(0, initializer_range) weights, zero biases (logged). */
balora_status bl_enc_load(bl_encoder *m, const char *dir, const bl_enc_load_opts *o);
/* A model with every tensor initialised as transformers' _init_weights (N(0, init_range) for
 * linears and embeddings, padding row zero, LayerNorm 1/0, biases 0): tests, benchmarks. */
balora_status bl_enc_init_random(bl_encoder *m, const bl_enc_config *c, uint64_t seed);
/* A small config of an architecture (tests): callers then adjust fields. */
void bl_enc_config_defaults(bl_enc_config *c, bl_enc_arch arch);
void bl_enc_free(bl_encoder *m);
/* config.json for a config (the fields bl_enc_config_parse reads; caller owns the object). */
balora_status bl_enc_config_json(const bl_enc_config *c, cJSON **out);
/* Writes dir/config.json and dir/model.safetensors (float32, HF names) so that bl_enc_load and
 * transformers load it. trained_heads: write the heads' modules_to_save copies (train_data)
 * instead of their base values (a merged or fully fine-tuned classifier). */
balora_status bl_enc_save(const bl_encoder *m, const char *dir, bool trained_heads);
/* Full fine-tuning: a gradient for every base tensor (allocated once). */
balora_status bl_enc_set_full_ft(bl_encoder *m, bool on);
void bl_enc_zero_grads(bl_encoder *m); /* base grads (full FT) and head grads */
int64_t bl_enc_n_params(const bl_encoder *m);
/* Head tensors as PEFT's modules_to_save: sets train_data (a copy of the base data) and grad for
 * every classifier tensor, so training changes the copy and BL_ADAPTER_OFF sees the initial head.
 * src/adapters does this itself when it attaches to a SEQ_CLS set; this is for code that trains
 * the head without that library (tests, full fine-tuning of the head only). Idempotent. */
balora_status bl_enc_heads_trainable(bl_encoder *m);

typedef struct bl_enc_batch {
    int64_t B, T;
    const int64_t *input_ids;       /* [B, T] */
    const int64_t *attention_mask;  /* [B, T] 1 real, 0 padding; NULL = all real */
    const int64_t *token_type_ids;  /* [B, T] or NULL (zeros) */
} bl_enc_batch;

typedef struct bl_enc_saved bl_enc_saved; /* per-layer activations (encoder.c) */

typedef struct bl_enc_run {
    bl_encoder *m;
    int64_t max_B, max_T, B, T;
    float *logits;             /* [B, num_labels] */
    float *dlogits;            /* [B, num_labels] free buffer for the caller's loss gradient */
    float *pooled;             /* [B, C] */
    bool train;                /* LoRA dropout on */
    bl_rng rng;
    /* internals */
    bl_adapter_mode last_mode;
    bool have_forward;
    uint64_t attach_gen;
    bl_arena arena;
    bl_enc_saved *sv;
} bl_enc_run;

balora_status bl_enc_run_init(bl_enc_run *r, bl_encoder *m, int64_t max_B, int64_t max_T);
void bl_enc_run_free(bl_enc_run *r);
/* Checks the batch (shape within the plan, ids in range, positions within max_position_embeddings,
 * every row with at least one real token) and runs the model. */
balora_status bl_enc_forward(bl_enc_run *r, const bl_enc_batch *b, bl_adapter_mode mode);
/* Task loss of the last forward: cross-entropy (mean over the batch; labels int64 [B], -100
 * ignored) or, for regression, mean squared error against targets (float [B]). dlogits (may be
 * NULL, may be r->dlogits) = d loss / d logits. */
balora_status bl_enc_loss(bl_enc_run *r, const int64_t *labels, const float *targets, double *loss, float *dlogits);
/* Accumulates into every trainable gradient (LoRA gA/gB, head grads, base grads with full FT). */
balora_status bl_enc_backward(bl_enc_run *r, const float *dlogits);
/* As bl_enc_backward, from d loss / d (last layer's hidden states) dhidden [B, T, C] instead of
 * the head (token-level heads such as the masked-LM head, src/encoders/mlm.h). */
balora_status bl_enc_backward_hidden(bl_enc_run *r, const float *dhidden);
/* Hidden states [B, T, C] after layer l of the last forward (0 = embeddings, n_layer = last). */
const float *bl_enc_layer_hidden(const bl_enc_run *r, int64_t l);

#endif
