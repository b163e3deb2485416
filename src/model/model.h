/* Models: configs, weights, the ONE adapter attach point, forward and backward.
 *
 * Layers of this header (each usable on its own):
 *   1. bl_config      every config.json field that changes the math (decoders here; the
 *                     encoders reuse the common fields and add their own).
 *   2. bl_param       one named base tensor (HF checkpoint name), for merge / full FT / inspect.
 *   3. bl_linear      one linear module with its HF module path, and THE attach point:
 *                         y = x W^T + b;  if lora: y += s * B (A dropout(x))
 *                     bl_lin_fwd / bl_lin_bwd are the only code that applies an adapter; the
 *                     encoders call them too. bl_module_set is the list of a model's linears
 *                     (+ its head tensors) that src/adapters attaches LoRA factors to.
 *   4. bl_model       a decoder (gpt2, llama, mistral, qwen2) loaded from an HF folder, a
 *                     llama2.c .bin, or built with random weights (benchmarks, tests).
 *   5. bl_run         a run context for up to max_B x max_T tokens: every activation and
 *                     scratch buffer allocated once; forward -> logits; backward(dlogits).
 *
 * Loss terms live outside the model: the caller computes its loss from run->logits and the
 * gradient d loss / d logits (bl_xent in ops.h for the task loss; BA-LoRA adds its terms), then
 * calls bl_model_backward, which ACCUMULATES (+=) into the grads of every trainable tensor:
 * LoRA gA/gB (always), head tensors in modules_to_save (SEQ_CLS), and every base weight when
 * full fine-tuning is on. Frozen base weights never get a gradient computed.
 *
 * Typical LoRA step (trainer):
 *     bl_model m; bl_model_load(&m, dir);
 *     bl_adapter ad; bl_lora_init(&ad, &m.mods, &cfg, seed);       (src/adapters/lora.h)
 *     bl_run r; bl_run_init(&r, &m, B, T);                       (after attaching adapters)
 *     r.train = true; bl_rng_seed(&r.rng, seed_for_this_step);   (dropout on)
 *     bl_model_forward(&r, &batch, BL_ADAPTER_ON);
 *     bl_xent(r.logits, labels, B, T, V, true, r.logits, 1.0f, &loss, &n);  (dlogits in place)
 *     bl_lora_zero_grads(&ad); bl_model_backward(&r, r.logits);  -> ad's gA/gB hold d loss/d A,B
 * BA-LoRA's teacher: bl_model_forward(&r, &batch, BL_ADAPTER_OFF) (LoRA: base model) or
 * BL_ADAPTER_INITIAL (PiSSA: W_res + s B0 A0 = the original W); copy r.logits away before the
 * student forward (a forward overwrites r.logits and the saved activations; backward always
 * uses the last forward, which must have been BL_ADAPTER_ON or BL_ADAPTER_OFF with full FT). */
#ifndef BL_MODEL_H
#define BL_MODEL_H
#include "core/bl.h"
#include "io/json.h"
#include "model/arch.h"
#include "ops/ops.h"

/* ====================================================================== 1. config */

/* bl_family, bl_head_kind and the per-family facts: the architecture table (model/arch.h). */

typedef enum bl_act_kind { BL_ACT_GELU_TANH = 0, BL_ACT_GELU_ERF, BL_ACT_SILU, BL_ACT_RELU } bl_act_kind;

typedef struct bl_config {
    char model_type[32];     /* "gpt2", "llama", "mistral", "qwen2", ... */
    char architecture[64];   /* architectures[0], e.g. "LlamaForCausalLM" */
    bl_family family;
    const bl_arch *arch;     /* its row of the architecture table (never NULL after parse/defaults) */
    const bl_arch_type *type; /* its model type in that row */
    bl_head_kind head;
    int64_t vocab_size;
    int64_t hidden;          /* n_embd / hidden_size */
    int64_t n_layer;
    int64_t n_head;
    int64_t n_kv_head;       /* = n_head without GQA */
    int64_t head_dim;        /* hidden / n_head */
    int64_t intermediate;    /* MLP width (gpt2: n_inner or 4 * n_embd) */
    int64_t max_pos;         /* n_positions / max_position_embeddings */
    double norm_eps;         /* layer_norm_epsilon / rms_norm_eps */
    double rope_theta;       /* llama family */
    bl_act_kind act;         /* activation_function / hidden_act */
    bool tie_word_embeddings;
    bool qkv_bias;           /* gpt2 and qwen2: true; llama: attention_bias */
    bool o_bias;             /* gpt2: true; llama: attention_bias */
    bool mlp_bias;           /* gpt2: true; llama: mlp_bias */
    int64_t sliding_window;  /* 0 = none (mistral's sliding_window; qwen2 only when use_sliding_window) */
    bool scale_attn_weights; /* gpt2 (true = divide scores by sqrt(head_dim)) */
    int64_t num_labels;      /* SEQ_CLS heads */
    int64_t pad_token_id;    /* -1 = none */
    int64_t bos_token_id, eos_token_id; /* -1 = none */
} bl_config;

/* Parses a config.json object. Unsupported values of fields that change the math fail with
 * UNSUPPORTED naming the file and the field (rope_scaling non-null, unknown hidden_act,
 * scale_attn_by_inverse_layer_idx true, an unknown model_type or architecture, ...). */
balora_status bl_config_parse(bl_config *c, const cJSON *json, const char *file);
/* Fills c for a random model of a family (benchmarks, tests). Sets derived fields. */
void bl_config_defaults(bl_config *c, bl_family family);

/* ====================================================================== 2. named tensors */

typedef struct bl_param {
    char name[160];           /* HF checkpoint name, e.g. "transformer.h.0.attn.c_attn.weight" */
    int ndim;
    int64_t shape[4];         /* as balora holds it (Linear orientation [out, in]) */
    int64_t numel;
    bool transposed;          /* the checkpoint stores the transpose (GPT-2 Conv1D) */
    float *data;              /* the base tensor: in the owner's weights arena, or memory the model
                                 does not own (borrowed: e.g. mapped from the checkpoint later);
                                 no code frees or reallocates a param's data one by one */
    bool borrowed;            /* data is not in the owner's arena (the owner's free leaves it) */
    float *train_data;        /* modules_to_save copy used with the adapter ON, or NULL */
    float *grad;              /* NULL = frozen; else accumulated by backward */
} bl_param;

/* ====================================================================== 3. linear + attach point */

typedef enum bl_adapter_mode {
    BL_ADAPTER_ON = 0,     /* y = W x + b + s B A dropout(x) */
    BL_ADAPTER_OFF,        /* y = W x + b (the base model; head tensors: their base data) */
    BL_ADAPTER_INITIAL     /* y = W x + b + s B0 A0 x (PiSSA's teacher: the original weight);
                              modules without A0/B0 act as OFF. Forward only. */
} bl_adapter_mode;

/* One LoRA module (owned by a bl_adapter; src/adapters/lora.h). */
typedef struct bl_lora {
    int64_t in, out, r;
    float scale;           /* alpha / r, or alpha / sqrt(r) with rsLoRA */
    float dropout;         /* probability on the input of A (training runs only) */
    float *A;              /* [r, in] */
    float *B;              /* [out, r] */
    float *gA;             /* [r, in]  accumulated */
    float *gB;             /* [out, r] accumulated */
    float *A0;             /* [r, in]  frozen initial factors (PiSSA), or NULL */
    float *B0;             /* [out, r] */
} bl_lora;

typedef struct bl_linear {
    char name[128];        /* HF module path: "model.layers.0.self_attn.q_proj", "transformer.h.0.attn.c_attn" */
    const char *leaf;      /* last path component ("q_proj", "c_attn") — points into name */
    int layer;             /* block index, -1 outside blocks */
    int64_t in, out;
    bool conv1d;           /* checkpoint stores W^T (GPT-2 Conv1D; PEFT fan_in_fan_out) */
    float *W;              /* [out, in] */
    float *b;              /* [out] or NULL */
    float *gW, *gb;        /* full fine-tuning only, else NULL */
    int w_param, b_param;  /* indices in the owner's bl_param list (-1: none) */
    bl_lora *lora;         /* attached adapter or NULL */
} bl_linear;

/* Activations one call of a linear keeps for its backward (carved from the run's arena). */
typedef struct bl_lin_saved {
    float *u;      /* [N, r]  A xd (NULL when no adapter is attached) */
    float *xd;     /* [N, in] dropout(x), only when training with dropout > 0, else NULL */
    float *mask;   /* [N, in] dropout mask (0 or 1/(1-p)), as xd */
    bool lora_on;  /* set by bl_lin_fwd: the LoRA branch (A, B) was applied */
    bool dropped;  /* set by bl_lin_fwd: xd/mask hold this call's dropout */
} bl_lin_saved;

/* THE attach point.  x [N, in] -> y [N, out] (accumulate: y += ...).
 * train enables LoRA dropout (draws from rng; sv->xd and sv->mask must then be non-NULL).
 * sv receives what backward needs; with an adapter attached sv->u is required (also as scratch
 * for BL_ADAPTER_INITIAL). Without an adapter sv may be NULL. */
void bl_lin_fwd(const bl_linear *m, bl_adapter_mode mode, bool train, float *y, const float *x,
                int64_t N, bool accumulate, bl_lin_saved *sv, bl_rng *rng);
/* dx += d/dx (NULL: not needed), gW/gb += (when non-NULL), lora gA/gB += (when attached).
 * scratch: [N, r + in] floats (bl_lin_scratch_floats). */
void bl_lin_bwd(const bl_linear *m, float *dx, const float *dy, const float *x, int64_t N,
                const bl_lin_saved *sv, float *scratch);
int64_t bl_lin_scratch_floats(const bl_linear *m, int64_t N);

/* What an adapter attaches to: a model's linears and head tensors. Embedded in bl_model and in
 * the encoders' model struct. */
typedef struct bl_module_set {
    int n_lin;
    bl_linear *lin;          /* every linear module that LoRA may target (not the LM head) */
    int n_params;
    bl_param *params;        /* every base tensor */
    const char *heads[4];    /* module names PEFT keeps in modules_to_save for SEQ_CLS ("score",
                                "classifier"); NULL-terminated */
    const char *model_type;  /* "gpt2", "llama", ... */
    const char *task_type;   /* "CAUSAL_LM" or "SEQ_CLS" */
    uint64_t attach_gen;     /* bumped on every attach/detach; runs check it */
} bl_module_set;

bl_linear *bl_modules_find(bl_module_set *s, const char *name);
bl_param *bl_modules_param(bl_module_set *s, const char *name);
int64_t bl_modules_n_params(const bl_module_set *s);

/* THE weight reader and writer (src/model/weights.c), for decoders and encoders alike. */
struct bl_hf_folder;
/* Called for a tensor absent from the checkpoint: OK = handled (e.g. a new head initialised). */
typedef balora_status (*bl_missing_fn)(void *ctx, int param_index);
/* Reads every param of s from an open HF folder (F32/F16/BF16 -> F32; transposed params are read
 * [in, out] and turned to [out, in]; old LayerNorm.gamma/.beta names accepted). prefix: the
 * row's base prefix, tried removed or added; prefix_all false: names not starting with it
 * (lm_head, score) are looked up as they are. missing NULL: an absent tensor is an error.
 * *failed (may be NULL) = the param that failed, -1 otherwise. */
balora_status bl_modules_read(bl_module_set *s, const struct bl_hf_folder *h, const char *prefix, bool prefix_all,
                              bl_missing_fn missing, void *ctx, int *failed);
/* Writes dir/config.json (config, or side_from's config.json copied byte for byte when config is
 * NULL), side_from's tokenizer / generation files (side_from NULL: none) and dir/model.safetensors
 * (F32, checkpoint names and orientation). trained_heads: modules_to_save tensors are written from
 * their trained copies (train_data) instead of their base data. */
balora_status bl_modules_save(const bl_module_set *s, const char *dir, const cJSON *config, const char *side_from,
                              bool trained_heads);

/* ====================================================================== 4. decoder model */

typedef struct bl_block {
    float *ln1_w, *ln1_b;    /* [C] (b: GPT-2 only)  — input_layernorm / ln_1 */
    float *ln2_w, *ln2_b;    /* [C]                  — post_attention_layernorm / ln_2 */
    int p_ln1_w, p_ln1_b, p_ln2_w, p_ln2_b; /* their indices in mods.params (-1: none) */
    bl_linear *qkv;          /* gpt2: attn.c_attn [3C, C] */
    bl_linear *q, *k, *v;    /* llama: q_proj [H*D, C], k_proj / v_proj [Hkv*D, C] */
    bl_linear *o;            /* attn.c_proj / o_proj [C, H*D] */
    bl_linear *fc, *proj;    /* gpt2: mlp.c_fc [F, C], mlp.c_proj [C, F] */
    bl_linear *gate, *up, *down; /* llama: gate_proj / up_proj [F, C], down_proj [C, F] */
} bl_block;

typedef struct bl_model {
    bl_config cfg;
    bl_module_set mods;      /* linears + params: the adapters' attach point */
    bl_block *blocks;        /* [n_layer] */
    float *wte;              /* [V, C] token embeddings */
    float *wpe;              /* [max_pos, C] gpt2 positions, else NULL */
    float *lnf_w, *lnf_b;    /* [C] final norm (b: gpt2) */
    float *lm_head;          /* [V, C]; == wte when tied (CAUSAL_LM) */
    /* indices in mods.params (-1: none); lm_head == wte's index when tied */
    int p_wte, p_wpe, p_lnf_w, p_lnf_b, p_lm_head;
    int p_score;             /* SEQ_CLS: score.weight [num_labels, C] */
    bool full_ft;            /* every base tensor has a grad */
    bl_arena weights;        /* every float of the model */
    bl_arena grads;          /* full fine-tuning grads */
    char source[4096];       /* where it was loaded from (errors, metadata) */
} bl_model;

/* Loads an HF folder (config.json + [sharded] safetensors, F32/F16/BF16 -> F32). The class comes
 * from config.json's architectures. GPT-2 Conv1D weights are transposed to [out, in]. */
balora_status bl_model_load(bl_model *m, const char *dir);
/* Loads a llama2.c checkpoint (docs/FORMATS.md, llama2.c), permuting wq/wk rows to the rotate-half layout;
 * the result is a LlamaForCausalLM with HF tensor names. */
balora_status bl_model_load_llama2c(bl_model *m, const char *path);
/* A model with random N(0, std) weights (norm weights 1, biases 0): benchmarks and tests. */
balora_status bl_model_init_random(bl_model *m, const bl_config *c, uint64_t seed, float std);
void bl_model_free(bl_model *m);
/* Writes an HF folder: dir/config.json (the source folder's config.json copied as is, or one
 * generated from cfg for llama2.c / random models) and the tokenizer / generation files of the
 * source folder, and dir/model.safetensors (F32, checkpoint
 * names and orientation: GPT-2 Conv1D transposed back, no lm_head when tied). For merge,
 * convert (llama2.c -> HF) and PiSSA residual models. */
balora_status bl_model_save(const bl_model *m, const char *dir);
/* As bl_model_save; trained_heads: the SEQ_CLS score head is written from its trained copy
 * (modules_to_save train_data): a fully fine-tuned or merged decoder classifier. */
balora_status bl_model_save_heads(const bl_model *m, const char *dir, bool trained_heads);
/* config.json for cfg (transformers' field names); caller frees with cJSON_Delete. */
cJSON *bl_config_to_json(const bl_config *c);
/* Full fine-tuning on/off: allocates (once) and attaches a grad to every base tensor. */
/* After bl_model_set_full_ft(m, true): freezes the token (and GPT-2 position) embeddings and the LM
 * head (their grads detached, so backward neither computes nor needs them): the paper's full
 * fine-tuning baseline trains every other base weight (docs/METHOD.md section 6). */
void bl_model_freeze_embeddings(bl_model *m);
balora_status bl_model_set_full_ft(bl_model *m, bool on);
void bl_model_zero_grads(bl_model *m); /* base-weight grads (full FT) only */
int64_t bl_model_n_params(const bl_model *m);

/* ====================================================================== 5. run context */

typedef struct bl_batch {
    int64_t B, T;
    const int64_t *input_ids;       /* [B, T] */
    const int64_t *attention_mask;  /* [B, T] 1 = real token, 0 = padding; NULL = all real */
} bl_batch;

typedef struct bl_run_layer bl_run_layer; /* saved activations of one block (decoder.c) */

typedef struct bl_run {
    bl_model *m;
    int64_t max_B, max_T;
    int64_t B, T;             /* of the last forward */
    int64_t n_logits;         /* B*T*V (CAUSAL_LM) or B*num_labels (SEQ_CLS) of the last forward */
    float *logits;            /* [B, T, V] or [B, num_labels] */
    float *hidden;            /* [B, T, C] final-norm output of the last forward (features) */
    int64_t *pool_idx;        /* [B] SEQ_CLS: the pooled position per row (HF's rule: the token
                                 before the first pad_token_id, else the last) */
    bool train;               /* LoRA dropout on (set by the caller; false after init) */
    bl_rng rng;               /* dropout draws; the trainer seeds it per step */
    /* ---- internals (decoder.c) ---- */
    bl_adapter_mode last_mode;
    bool have_forward;
    uint64_t attach_gen;
    int64_t *ids, *mask, *pos; /* [B, T] copies of the batch; positions 0..T-1 */
    float **res;              /* [n_layer + 1] residual stream [B, T, C]: res[0] embeddings */
    bl_run_layer *layers;     /* [n_layer] */
    bl_lin_saved *sv;         /* [n_lin] per linear module */
    float *lnf_mean, *lnf_rstd; /* [B*T] */
    float *rope_cos, *rope_sin; /* [max_T, head_dim/2] */
    float *d_res, *d_ln, *d_att, *d_qkv, *d_f1, *d_f2, *d_f3; /* backward buffers */
    float *scratch;           /* attention backward / linear backward scratch */
    bl_arena arena;
} bl_run;

/* Plans and allocates every buffer for batches up to max_B x max_T (max_T <= max positions for
 * GPT-2). Call after attaching adapters (a forward fails if adapters changed since). */
balora_status bl_run_init(bl_run *r, bl_model *m, int64_t max_B, int64_t max_T);
void bl_run_free(bl_run *r);
/* Checks the batch (shape within the plan, ids in [0, V)), runs the model -> r->logits. */
balora_status bl_model_forward(bl_run *r, const bl_batch *b, bl_adapter_mode mode);
/* dlogits: shaped like r->logits (may BE r->logits). Accumulates into every trainable grad. */
balora_status bl_model_backward(bl_run *r, const float *dlogits);

/* Incremental decoding with a key-value cache: src/model/kv.h. */

#endif
