/* The architecture table: one row per model family balora runs, the ONE place that knows
 * model_type strings, HF class names, tensor names, PEFT module names, default LoRA targets,
 * classifier heads, GGUF export names and what `inspect` reports.
 *
 * A row (bl_arch) describes a family's math by enums (norm, positions, attention features, MLP
 * kind) and its checkpoint by names; its model types (bl_arch_type) carry the per-type
 * differences of one family (llama / mistral / qwen2: bias and sliding-window fields; roberta /
 * xlm-roberta / camembert: class names). Readers:
 *   src/model/config.c, model.c, save.c   decoder config, tensor layout, config.json writer
 *   src/encoders/encoder.c, clsmodel.c    encoder config and layout, encoder-or-decoder choice
 *   src/io/gguf.c, src/io/inspect.c       llama.cpp names, inspect's config fields and family
 *   cli (init, convert, train, forward)   default --targets, is-encoder, GGUF arch of a base
 * No other file holds a list of model types or target names (tests/test_arch.c checks every row).
 *
 * Tensor names: a block tensor's checkpoint name is prefix + block + "<l>." + path
 * ("transformer." "h." "0." "attn.c_attn"); linears add ".weight" / ".bias". Names outside
 * blocks are full checkpoint names. PEFT module names are the linears' paths without
 * ".weight" (PEFT matches target_modules against their last component, bl_linear.leaf).
 *
 * Reserved (documented, not implemented; no row uses them, the loaders refuse them):
 * BL_MLP_MOE (a router + n experts of the gated MLP: moe_experts_field / moe_topk_field name the
 * config fields) and BL_ATTN_SOFTCAP (scores -> cap * tanh(scores / cap) before the softmax,
 * softcap_field names the config field). */
#ifndef BL_MODEL_ARCH_H
#define BL_MODEL_ARCH_H
#include <stdbool.h>
#include <stddef.h>

typedef enum bl_family {
    BL_FAMILY_GPT2 = 0,   /* gpt2: LayerNorm, learned positions, fused c_attn, gelu MLP */
    BL_FAMILY_LLAMA,      /* llama, mistral, qwen2: RMSNorm, RoPE, GQA, SwiGLU */
    BL_FAMILY_ENCODER     /* bert / roberta / deberta-v2: src/encoders */
} bl_family;

/* Which encoder a row is (src/encoders; decoders: -1). */
typedef enum bl_enc_arch { BL_ENC_BERT = 0, BL_ENC_ROBERTA, BL_ENC_DEBERTA_V2 } bl_enc_arch;

typedef enum bl_norm_kind {
    BL_NORM_LAYERNORM_PRE = 0, /* y = x + f(LN(x))           (gpt2) */
    BL_NORM_RMSNORM_PRE,       /* y = x + f(RMS(x))          (llama family) */
    BL_NORM_LAYERNORM_POST     /* y = LN(x + f(x))           (bert, roberta, deberta-v2) */
} bl_norm_kind;

typedef enum bl_pos_kind {
    BL_POS_LEARNED = 0,        /* absolute position embeddings added to the input (gpt2, bert) */
    BL_POS_LEARNED_OFFSET,     /* as LEARNED, positions start after pad_token_id (roberta) */
    BL_POS_ROPE,               /* rotary embeddings on q and k (rotate-half layout) */
    BL_POS_RELATIVE_BUCKETS    /* disentangled relative attention, log buckets (deberta-v2) */
} bl_pos_kind;

/* Attention features (bit set). */
enum {
    BL_ATTN_CAUSAL = 1 << 0,       /* causal mask (decoders) */
    BL_ATTN_FUSED_QKV = 1 << 1,    /* one [3C, C] projection (gpt2 c_attn) */
    BL_ATTN_GQA = 1 << 2,          /* num_key_value_heads may be < num_attention_heads */
    BL_ATTN_QKV_BIAS = 1 << 3,     /* q/k/v biases by default (the type's bias_field may change it) */
    BL_ATTN_O_BIAS = 1 << 4,       /* output-projection bias by default */
    BL_ATTN_SLIDING_WINDOW = 1 << 5, /* the type may set a window (its window_field) */
    BL_ATTN_RELATIVE = 1 << 6,     /* relative-position terms (deberta c2p / p2c) */
    BL_ATTN_SOFTCAP = 1 << 7       /* RESERVED: logit soft-capping (softcap_field); not implemented */
};

typedef enum bl_mlp_kind {
    BL_MLP_GELU = 0,  /* down(act(up(x))), act from the config (gelu variants, relu) */
    BL_MLP_SWIGLU,    /* down(silu(gate(x)) * up(x)) */
    BL_MLP_MOE        /* RESERVED: router over experts of SWIGLU MLPs; not implemented */
} bl_mlp_kind;

typedef enum bl_head_kind {
    BL_HEAD_CAUSAL_LM = 0,  /* *ForCausalLM / GPT2LMHeadModel: logits [B, T, V] */
    BL_HEAD_SEQ_CLS         /* *ForSequenceClassification: logits [B, num_labels] */
} bl_head_kind;
/* The most labels a classification head may have (keeps num_labels * hidden_size far from int64's range). */
#define BL_MAX_LABELS 100000

/* What a linear module does in a block. */
typedef enum bl_arch_role {
    BL_ROLE_QKV = 0, BL_ROLE_Q, BL_ROLE_K, BL_ROLE_V, BL_ROLE_O,
    BL_ROLE_UP,      /* gelu MLP in (c_fc, intermediate.dense) or gated MLP's up_proj */
    BL_ROLE_GATE,    /* gated MLP's gate_proj */
    BL_ROLE_DOWN,    /* MLP out (mlp.c_proj, output.dense, down_proj) */
    BL_ROLE_COUNT
} bl_arch_role;

/* Block tensors that are not linears. */
typedef enum bl_arch_norm_slot { BL_NORM_ATTN = 0, BL_NORM_MLP, BL_NORM_SLOTS } bl_arch_norm_slot;

/* Where `balora` commands take their default --targets from. */
typedef enum bl_arch_use {
    BL_USE_TRAIN = 0, /* train (causal LM and seq-cls), forward */
    BL_USE_INIT       /* init (PiSSA residual + adapter) */
} bl_arch_use;

/* One model_type of a family, with what differs between the types of that family. */
typedef struct bl_arch_type {
    const char *model_type;     /* config.json model_type */
    const char *class_prefix;   /* every HF class of the type starts with it ("Mistral") */
    const char *causal_lm;      /* HF causal-LM class ("MistralForCausalLM"), NULL: none */
    const char *seq_cls;        /* HF sequence-classification class */
    const char *bias_field;     /* config bool switching q/k/v/o biases ("attention_bias"), NULL: fixed */
    bool fixed_qkv_bias;        /* with bias_field NULL: q/k/v have biases, o has none (qwen2) */
    const char *window_field;   /* int field holding the sliding window ("sliding_window"), NULL: none */
    const char *window_refused; /* bool field that must be false ("use_sliding_window": qwen2's
                                   per-layer rule is not implemented), NULL: none */
    bool save_bias_fields;      /* bl_config_to_json writes attention_bias / mlp_bias */
    const char *gguf_arch;      /* llama.cpp general.architecture of its LoRA GGUF export, NULL: none */
    bool gguf_rope_pairs;       /* llama.cpp runs gguf_arch with its "normal" RoPE on adjacent pairs (2j, 2j+1)
                                   and its converter permutes q/k rows to match (llama, mistral): the export
                                   permutes lora_b of q and k alike. false: llama.cpp's NEOX RoPE, HF's
                                   rotate-half as is (qwen2), rows exported unchanged */
} bl_arch_type;

/* One linear of a block. */
typedef struct bl_arch_linear {
    bl_arch_role role;
    const char *path;           /* inside the block: "attn.c_attn"; PEFT leaf = last component */
    const char *gguf;           /* llama.cpp tensor ("attn_qkv"), NULL: no GGUF counterpart */
} bl_arch_linear;

typedef struct bl_arch {
    const char *name;           /* the family ("gpt2", "llama", "bert", "roberta", "deberta-v2") */
    bl_family family;
    int enc_arch;               /* bl_enc_arch of an encoder row, -1 for decoders */
    const bl_arch_type *types;  /* model types of the family; types[0] is the family's own */
    int n_types;
    unsigned heads;             /* supported heads: bit (1 << bl_head_kind) */
    bl_norm_kind norm;
    bl_pos_kind pos;
    unsigned attn;              /* BL_ATTN_* */
    bl_mlp_kind mlp;
    /* ---- checkpoint names */
    const char *prefix;         /* base-model prefix ("transformer.", "model.", "bert."); loaders also
                                   accept names without it */
    const char *block;          /* block path under the prefix: "h.", "layers.", "encoder.layer." */
    bool conv1d;                /* the checkpoint stores linears as [in, out] (GPT-2 Conv1D; PEFT
                                   fan_in_fan_out): loaders transpose to [out, in] and back */
    bl_arch_linear lin[7];      /* the block's linears in forward order (path NULL ends the list) */
    const char *norm_path[BL_NORM_SLOTS]; /* the block's norms (".weight" / ".bias" added) */
    const char *embed;          /* token embeddings, full name */
    const char *pos_embed;      /* absolute position embeddings, full name, NULL: none */
    const char *type_embed;     /* token-type embeddings (encoders), NULL: none */
    const char *embed_norm;     /* norm after the embeddings (encoders), NULL: none */
    const char *final_norm;     /* final norm (decoders), NULL: none */
    const char *rel_embed;      /* relative-position embeddings (deberta), NULL: none */
    const char *rel_norm;       /* their LayerNorm (deberta), NULL: none */
    const char *lm_head;        /* causal-LM head tensor module ("lm_head"), NULL: none */
    const char *pooler;         /* pooler linear module (bert, deberta), NULL: none */
    const char *cls_dense;      /* classifier's hidden projection module (roberta), NULL: none */
    const char *cls_out;        /* classifier output module ("score", "classifier", "classifier.out_proj") */
    const char *modules_to_save[3]; /* PEFT modules_to_save names of a SEQ_CLS adapter, NULL-terminated */
    /* ---- balora defaults */
    const char *targets_train;  /* default --targets of train / forward */
    const char *targets_init;   /* default --targets of init */
    /* ---- GGUF export (llama.cpp LoRA adapters) */
    const char *gguf_lm_head;   /* llama.cpp tensor of lm_head ("output"), NULL: none */
    /* ---- config.json field names (what bl_config_parse / bl_enc_config_parse read) */
    const char *f_hidden, *f_layers, *f_heads, *f_kv_heads, *f_inter, *f_pos, *f_eps, *f_act;
    const char *const *inspect_fields; /* config fields `inspect` prints, NULL-terminated */
    /* ---- reserved for later rows (NULL in every row today) */
    const char *moe_experts_field, *moe_topk_field, *softcap_field;
} bl_arch;

/* Every row, in the table's order, and their number. */
const bl_arch *bl_arch_rows(int *n);
/* The row of a model_type (and its type in *type, may be NULL); NULL when no row has it. */
const bl_arch *bl_arch_find(const char *model_type, const bl_arch_type **type);
/* The row whose family is a decoder family (gpt2 / llama). */
const bl_arch *bl_arch_of_family(bl_family f);
/* The row of an encoder (bl_enc_arch). */
const bl_arch *bl_arch_of_encoder(bl_enc_arch a);
/* The row and type whose HF class is `cls` (architectures[0]); NULL when none. */
const bl_arch *bl_arch_find_class(const char *cls, const bl_arch_type **type, bl_head_kind *head);
/* true when model_type names an encoder row (bert, roberta, xlm-roberta, camembert, deberta-v2). */
bool bl_arch_is_encoder(const char *model_type);
/* Default --targets of a model_type for a command; NULL when the model_type has no row. */
const char *bl_arch_default_targets(const char *model_type, bl_arch_use use);
/* The row's linear of a role, NULL when the family has none. */
const bl_arch_linear *bl_arch_linear_of(const bl_arch *a, bl_arch_role role);
/* Checkpoint name of block l's module `path` (prefix + block + l + "." + path + suffix). */
int bl_arch_block_name(const bl_arch *a, char *out, size_t cap, long l, const char *path, const char *suffix);
/* The row (decoder with a GGUF export) whose types export as llama.cpp arch `gguf_arch`, and the
 * first such type in *type (may be NULL; the types sharing a gguf_arch share gguf_rope_pairs). */
const bl_arch *bl_arch_find_gguf(const char *gguf_arch, const bl_arch_type **type);
/* "gpt2: c_attn; llama: q_proj,v_proj; ..." (the default targets per family, for --help). */
const char *bl_arch_targets_help(bl_arch_use use, char *buf, size_t cap);
/* Comma-separated list of the model types (for error hints) into buf: 0 all, 1 decoders, 2 encoders. */
const char *bl_arch_type_list(int which, char *buf, size_t cap);

#endif
