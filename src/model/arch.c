/* The architecture table (arch.h): one row per family. Adding a family = one row here (plus the
 * math that is really new, if any): see docs/DEVELOPING.md, "Adding a model family". */
#include "model/arch.h"
#include <stdio.h>
#include <string.h>

#define HEAD_LM (1u << BL_HEAD_CAUSAL_LM)
#define HEAD_CLS (1u << BL_HEAD_SEQ_CLS)

/* ------------------------------------------------------------------ model types */

static const bl_arch_type g_gpt2_types[] = {
    {.model_type = "gpt2", .class_prefix = "GPT2", .causal_lm = "GPT2LMHeadModel",
     .seq_cls = "GPT2ForSequenceClassification", .gguf_arch = "gpt2"},
};
static const bl_arch_type g_llama_types[] = {
    {.model_type = "llama", .class_prefix = "Llama", .causal_lm = "LlamaForCausalLM",
     .seq_cls = "LlamaForSequenceClassification", .bias_field = "attention_bias", .save_bias_fields = true,
     .gguf_arch = "llama", .gguf_rope_pairs = true},
    {.model_type = "mistral", .class_prefix = "Mistral", .causal_lm = "MistralForCausalLM",
     .seq_cls = "MistralForSequenceClassification", .bias_field = "attention_bias", .window_field = "sliding_window",
     .gguf_arch = "llama", .gguf_rope_pairs = true}, /* llama.cpp converts MistralForCausalLM as llama */
    {.model_type = "qwen2", .class_prefix = "Qwen2", .causal_lm = "Qwen2ForCausalLM",
     .seq_cls = "Qwen2ForSequenceClassification", .fixed_qkv_bias = true, .window_refused = "use_sliding_window",
     .gguf_arch = "qwen2"}, /* llama.cpp arch qwen2: NEOX RoPE, same block tensor names as llama */
};
static const bl_arch_type g_bert_types[] = {
    {.model_type = "bert", .class_prefix = "Bert", .seq_cls = "BertForSequenceClassification"},
};
static const bl_arch_type g_roberta_types[] = {
    {.model_type = "roberta", .class_prefix = "Roberta", .seq_cls = "RobertaForSequenceClassification"},
    {.model_type = "xlm-roberta", .class_prefix = "XLMRoberta", .seq_cls = "XLMRobertaForSequenceClassification"},
    {.model_type = "camembert", .class_prefix = "Camembert", .seq_cls = "CamembertForSequenceClassification"},
};
static const bl_arch_type g_deberta_types[] = {
    {.model_type = "deberta-v2", .class_prefix = "DebertaV2", .seq_cls = "DebertaV2ForSequenceClassification"},
};

#define NTYPES(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ------------------------------------------------------------------ inspect fields */

static const char *const g_decoder_fields[] = {
    "model_type", "architectures", "vocab_size", "hidden_size", "n_embd", "num_hidden_layers", "n_layer",
    "num_attention_heads", "n_head", "num_key_value_heads", "intermediate_size", "n_inner", "max_position_embeddings",
    "n_positions", "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "rope_theta", "rope_scaling", "sliding_window",
    "tie_word_embeddings", "attention_bias", "hidden_act", "activation_function", "type_vocab_size", "problem_type",
    "torch_dtype", NULL,
};
/* encoders: the same list (inspect's output is one schema) */
#define g_encoder_fields g_decoder_fields

/* ------------------------------------------------------------------ the rows */

/* BERT-style encoder block linears (roberta shares them; deberta renames q/k/v). */
#define ENC_LINEARS(q, k, v)                                                                                          \
    {{BL_ROLE_Q, "attention.self." q, NULL}, {BL_ROLE_K, "attention.self." k, NULL},                                 \
     {BL_ROLE_V, "attention.self." v, NULL}, {BL_ROLE_O, "attention.output.dense", NULL},                             \
     {BL_ROLE_UP, "intermediate.dense", NULL}, {BL_ROLE_DOWN, "output.dense", NULL}}

static const bl_arch g_rows[] = {
    {
        .name = "gpt2", .family = BL_FAMILY_GPT2, .enc_arch = -1, .types = g_gpt2_types, .n_types = NTYPES(g_gpt2_types),
        .heads = HEAD_LM | HEAD_CLS, .norm = BL_NORM_LAYERNORM_PRE, .pos = BL_POS_LEARNED,
        .attn = BL_ATTN_CAUSAL | BL_ATTN_FUSED_QKV | BL_ATTN_QKV_BIAS | BL_ATTN_O_BIAS, .mlp = BL_MLP_GELU,
        .prefix = "transformer.", .block = "h.", .conv1d = true,
        .lin = {{BL_ROLE_QKV, "attn.c_attn", "attn_qkv"}, {BL_ROLE_O, "attn.c_proj", "attn_output"},
                {BL_ROLE_UP, "mlp.c_fc", "ffn_up"}, {BL_ROLE_DOWN, "mlp.c_proj", "ffn_down"}},
        .norm_path = {"ln_1", "ln_2"},
        .embed = "transformer.wte", .pos_embed = "transformer.wpe", .final_norm = "transformer.ln_f",
        .lm_head = "lm_head", .cls_out = "score", .modules_to_save = {"score"},
        .targets_train = "c_attn", .targets_init = "c_attn",
        .f_hidden = "n_embd", .f_layers = "n_layer", .f_heads = "n_head", .f_inter = "n_inner",
        .f_pos = "n_positions", .f_eps = "layer_norm_epsilon", .f_act = "activation_function",
        .inspect_fields = g_decoder_fields,
    },
    {
        .name = "llama", .family = BL_FAMILY_LLAMA, .enc_arch = -1, .types = g_llama_types, .n_types = NTYPES(g_llama_types),
        .heads = HEAD_LM | HEAD_CLS, .norm = BL_NORM_RMSNORM_PRE, .pos = BL_POS_ROPE,
        .attn = BL_ATTN_CAUSAL | BL_ATTN_GQA | BL_ATTN_SLIDING_WINDOW, .mlp = BL_MLP_SWIGLU,
        .prefix = "model.", .block = "layers.",
        .lin = {{BL_ROLE_Q, "self_attn.q_proj", "attn_q"}, {BL_ROLE_K, "self_attn.k_proj", "attn_k"},
                {BL_ROLE_V, "self_attn.v_proj", "attn_v"}, {BL_ROLE_O, "self_attn.o_proj", "attn_output"},
                {BL_ROLE_GATE, "mlp.gate_proj", "ffn_gate"}, {BL_ROLE_UP, "mlp.up_proj", "ffn_up"},
                {BL_ROLE_DOWN, "mlp.down_proj", "ffn_down"}},
        .norm_path = {"input_layernorm", "post_attention_layernorm"},
        .embed = "model.embed_tokens", .final_norm = "model.norm",
        .lm_head = "lm_head", .cls_out = "score", .modules_to_save = {"score"},
        .targets_train = "q_proj,v_proj", .targets_init = "q_proj,v_proj", .gguf_lm_head = "output",
        .f_hidden = "hidden_size", .f_layers = "num_hidden_layers", .f_heads = "num_attention_heads",
        .f_kv_heads = "num_key_value_heads", .f_inter = "intermediate_size", .f_pos = "max_position_embeddings",
        .f_eps = "rms_norm_eps", .f_act = "hidden_act",
        .inspect_fields = g_decoder_fields,
    },
    {
        .name = "bert", .family = BL_FAMILY_ENCODER, .enc_arch = BL_ENC_BERT, .types = g_bert_types,
        .n_types = NTYPES(g_bert_types), .heads = HEAD_CLS, .norm = BL_NORM_LAYERNORM_POST, .pos = BL_POS_LEARNED,
        .attn = BL_ATTN_QKV_BIAS | BL_ATTN_O_BIAS, .mlp = BL_MLP_GELU,
        .prefix = "bert.", .block = "encoder.layer.", .lin = ENC_LINEARS("query", "key", "value"),
        .norm_path = {"attention.output.LayerNorm", "output.LayerNorm"},
        .embed = "bert.embeddings.word_embeddings", .pos_embed = "bert.embeddings.position_embeddings",
        .type_embed = "bert.embeddings.token_type_embeddings", .embed_norm = "bert.embeddings.LayerNorm",
        .pooler = "bert.pooler.dense", .cls_out = "classifier", .modules_to_save = {"classifier", "score"},
        .targets_train = "query,key,value", .targets_init = "query,value",
        .f_hidden = "hidden_size", .f_layers = "num_hidden_layers", .f_heads = "num_attention_heads",
        .f_inter = "intermediate_size", .f_pos = "max_position_embeddings", .f_eps = "layer_norm_eps", .f_act = "hidden_act",
        .inspect_fields = g_encoder_fields,
    },
    {
        .name = "roberta", .family = BL_FAMILY_ENCODER, .enc_arch = BL_ENC_ROBERTA, .types = g_roberta_types,
        .n_types = NTYPES(g_roberta_types), .heads = HEAD_CLS, .norm = BL_NORM_LAYERNORM_POST,
        .pos = BL_POS_LEARNED_OFFSET, .attn = BL_ATTN_QKV_BIAS | BL_ATTN_O_BIAS, .mlp = BL_MLP_GELU,
        .prefix = "roberta.", .block = "encoder.layer.", .lin = ENC_LINEARS("query", "key", "value"),
        .norm_path = {"attention.output.LayerNorm", "output.LayerNorm"},
        .embed = "roberta.embeddings.word_embeddings", .pos_embed = "roberta.embeddings.position_embeddings",
        .type_embed = "roberta.embeddings.token_type_embeddings", .embed_norm = "roberta.embeddings.LayerNorm",
        .cls_dense = "classifier.dense", .cls_out = "classifier.out_proj", .modules_to_save = {"classifier", "score"},
        .targets_train = "query,key,value", .targets_init = "query,value",
        .f_hidden = "hidden_size", .f_layers = "num_hidden_layers", .f_heads = "num_attention_heads",
        .f_inter = "intermediate_size", .f_pos = "max_position_embeddings", .f_eps = "layer_norm_eps", .f_act = "hidden_act",
        .inspect_fields = g_encoder_fields,
    },
    {
        .name = "deberta-v2", .family = BL_FAMILY_ENCODER, .enc_arch = BL_ENC_DEBERTA_V2, .types = g_deberta_types,
        .n_types = NTYPES(g_deberta_types), .heads = HEAD_CLS, .norm = BL_NORM_LAYERNORM_POST,
        .pos = BL_POS_RELATIVE_BUCKETS, .attn = BL_ATTN_QKV_BIAS | BL_ATTN_O_BIAS | BL_ATTN_RELATIVE, .mlp = BL_MLP_GELU,
        .prefix = "deberta.", .block = "encoder.layer.", .lin = ENC_LINEARS("query_proj", "key_proj", "value_proj"),
        .norm_path = {"attention.output.LayerNorm", "output.LayerNorm"},
        .embed = "deberta.embeddings.word_embeddings", .pos_embed = "deberta.embeddings.position_embeddings",
        .type_embed = "deberta.embeddings.token_type_embeddings", .embed_norm = "deberta.embeddings.LayerNorm",
        .rel_embed = "deberta.encoder.rel_embeddings", .rel_norm = "deberta.encoder.LayerNorm",
        .pooler = "pooler.dense", .cls_out = "classifier", .modules_to_save = {"classifier", "score"},
        .targets_train = "query_proj,key_proj,value_proj", .targets_init = "query_proj,value_proj",
        .f_hidden = "hidden_size", .f_layers = "num_hidden_layers", .f_heads = "num_attention_heads",
        .f_inter = "intermediate_size", .f_pos = "max_position_embeddings", .f_eps = "layer_norm_eps", .f_act = "hidden_act",
        .inspect_fields = g_encoder_fields,
    },
};

#define NROWS ((int)(sizeof g_rows / sizeof g_rows[0]))

/* ------------------------------------------------------------------ queries */

const bl_arch *bl_arch_rows(int *n) {
    if (n) *n = NROWS;
    return g_rows;
}

const bl_arch *bl_arch_find(const char *model_type, const bl_arch_type **type) {
    if (type) *type = NULL;
    if (!model_type) return NULL;
    for (int r = 0; r < NROWS; r++)
        for (int t = 0; t < g_rows[r].n_types; t++)
            if (!strcmp(g_rows[r].types[t].model_type, model_type)) {
                if (type) *type = &g_rows[r].types[t];
                return &g_rows[r];
            }
    return NULL;
}

const bl_arch *bl_arch_of_family(bl_family f) {
    for (int r = 0; r < NROWS; r++)
        if (g_rows[r].family == f) return &g_rows[r];
    return NULL;
}

const bl_arch *bl_arch_of_encoder(bl_enc_arch a) {
    for (int r = 0; r < NROWS; r++)
        if (g_rows[r].enc_arch == (int)a) return &g_rows[r];
    return NULL;
}

const bl_arch *bl_arch_find_class(const char *cls, const bl_arch_type **type, bl_head_kind *head) {
    for (int r = 0; cls && r < NROWS; r++)
        for (int t = 0; t < g_rows[r].n_types; t++) {
            const bl_arch_type *ty = &g_rows[r].types[t];
            int h = ty->causal_lm && !strcmp(ty->causal_lm, cls) ? BL_HEAD_CAUSAL_LM
                  : ty->seq_cls && !strcmp(ty->seq_cls, cls) ? BL_HEAD_SEQ_CLS : -1;
            if (h < 0) continue;
            if (type) *type = ty;
            if (head) *head = (bl_head_kind)h;
            return &g_rows[r];
        }
    return NULL;
}

bool bl_arch_is_encoder(const char *model_type) {
    const bl_arch *a = bl_arch_find(model_type, NULL);
    return a && a->family == BL_FAMILY_ENCODER;
}

const char *bl_arch_default_targets(const char *model_type, bl_arch_use use) {
    const bl_arch *a = bl_arch_find(model_type, NULL);
    if (!a) return NULL;
    return use == BL_USE_INIT ? a->targets_init : a->targets_train;
}

const bl_arch_linear *bl_arch_linear_of(const bl_arch *a, bl_arch_role role) {
    for (size_t i = 0; i < sizeof a->lin / sizeof a->lin[0] && a->lin[i].path; i++)
        if (a->lin[i].role == role) return &a->lin[i];
    return NULL;
}

int bl_arch_block_name(const bl_arch *a, char *out, size_t cap, long l, const char *path, const char *suffix) {
    return snprintf(out, cap, "%s%s%ld.%s%s", a->prefix, a->block, l, path, suffix ? suffix : "");
}

const bl_arch *bl_arch_find_gguf(const char *gguf_arch, const bl_arch_type **type) {
    if (type) *type = NULL;
    for (int r = 0; gguf_arch && r < NROWS; r++)
        for (int t = 0; t < g_rows[r].n_types; t++)
            if (g_rows[r].types[t].gguf_arch && !strcmp(g_rows[r].types[t].gguf_arch, gguf_arch)) {
                if (type) *type = &g_rows[r].types[t];
                return &g_rows[r];
            }
    return NULL;
}

const char *bl_arch_type_list(int which, char *b, size_t cap) {
    size_t o = 0;
    if (cap) b[0] = 0;
    for (int r = 0; r < NROWS; r++) {
        bool enc = g_rows[r].family == BL_FAMILY_ENCODER;
        if ((which == 1 && enc) || (which == 2 && !enc)) continue;
        for (int t = 0; t < g_rows[r].n_types && o + 40 < cap; t++)
            o += (size_t)snprintf(b + o, cap - o, "%s%s", o ? ", " : "", g_rows[r].types[t].model_type);
    }
    return b;
}

const char *bl_arch_targets_help(bl_arch_use use, char *b, size_t cap) {
    size_t o = 0;
    if (cap) b[0] = 0;
    for (int r = 0; r < NROWS && o + 80 < cap; r++)
        o += (size_t)snprintf(b + o, cap - o, "%s%s: %s", o ? "; " : "", g_rows[r].name,
                              use == BL_USE_INIT ? g_rows[r].targets_init : g_rows[r].targets_train);
    return b;
}
