/* config.json -> bl_config for the decoder rows of the architecture table (model/arch.h).
 * Every field that changes the math is read; a value balora cannot honour is an error that names
 * the file and the field, never silently ignored. */
#include "model/model.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

void bl_config_defaults(bl_config *c, bl_family family) {
    memset(c, 0, sizeof *c);
    c->family = family == BL_FAMILY_GPT2 ? BL_FAMILY_GPT2 : BL_FAMILY_LLAMA;
    c->arch = bl_arch_of_family(c->family);
    c->type = &c->arch->types[0];
    c->head = BL_HEAD_CAUSAL_LM;
    c->pad_token_id = c->bos_token_id = c->eos_token_id = -1;
    snprintf(c->model_type, sizeof c->model_type, "%s", c->type->model_type);
    snprintf(c->architecture, sizeof c->architecture, "%s", c->type->causal_lm);
    if (c->family == BL_FAMILY_GPT2) {
        c->vocab_size = 50257; c->hidden = 768; c->n_layer = 12; c->n_head = 12; c->n_kv_head = 12;
        c->head_dim = 64; c->intermediate = 3072; c->max_pos = 1024; c->norm_eps = 1e-5;
        c->act = BL_ACT_GELU_TANH; c->tie_word_embeddings = true;
        c->qkv_bias = c->o_bias = c->mlp_bias = true; c->scale_attn_weights = true;
    } else {
        c->vocab_size = 32000; c->hidden = 768; c->n_layer = 12; c->n_head = 12; c->n_kv_head = 4;
        c->head_dim = 64; c->intermediate = 2048; c->max_pos = 2048; c->norm_eps = 1e-5;
        c->rope_theta = 10000.0; c->act = BL_ACT_SILU; c->scale_attn_weights = true;
    }
}

static balora_status get_int(const cJSON *j, const char *file, const char *key, bool req, int64_t *out, int64_t lo) {
    BL_TRY(bl_json_int(j, file, key, req, out));
    if (*out < lo)
        return bl_fail(BALORA_STATUS_INVALID, "%s: field '%s' = %lld must be >= %lld", file, key, (long long)*out, (long long)lo);
    return BALORA_STATUS_OK;
}

static balora_status parse_act(const char *file, const char *key, const char *s, bool gated, bl_act_kind *out) {
    if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh") || !strcmp(s, "gelu_fast")) *out = BL_ACT_GELU_TANH;
    else if (!strcmp(s, "gelu")) *out = BL_ACT_GELU_ERF;
    else if (gated && (!strcmp(s, "silu") || !strcmp(s, "swish"))) *out = BL_ACT_SILU;
    else if (!gated && !strcmp(s, "relu")) *out = BL_ACT_RELU;
    else
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field '%s' = \"%s\" is not supported; hint: balora supports %s", file,
                       key, s, gated ? "silu (SwiGLU) for the LLaMA family" : "gelu_new, gelu_pytorch_tanh, gelu, relu for GPT-2");
    if (gated && *out != BL_ACT_SILU)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field '%s' = \"%s\": only silu is supported in gated MLPs", file, key, s);
    return BALORA_STATUS_OK;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* A field that must be absent/null or have a given harmless value. */
static balora_status require_null(const cJSON *j, const char *file, const char *key, const char *hint) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (v && !cJSON_IsNull(v))
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field '%s' is set but balora does not support it; hint: %s", file, key, hint);
    return BALORA_STATUS_OK;
}

balora_status bl_config_parse(bl_config *c, const cJSON *j, const char *file) {
    const char *mt = NULL, *arch = NULL;
    BL_TRY(bl_json_str(j, file, "model_type", true, &mt));
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(j, "architectures");
    if (archs && !cJSON_IsNull(archs)) {
        if (!cJSON_IsArray(archs) || cJSON_GetArraySize(archs) < 1 || !cJSON_IsString(cJSON_GetArrayItem(archs, 0)))
            return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'architectures' must be a non-empty list of class names", file);
        if (cJSON_GetArraySize(archs) > 1)
            return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'architectures' lists %d classes; balora needs exactly one",
                           file, cJSON_GetArraySize(archs));
        arch = cJSON_GetArrayItem(archs, 0)->valuestring;
    }
    const bl_arch_type *ty = NULL;
    const bl_arch *row = bl_arch_find(mt, &ty);
    char l1[256], l2[256];
    if (!row || row->family == BL_FAMILY_ENCODER)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'model_type' = \"%s\" is not a supported decoder; hint: "
                       "balora's decoders are %s (encoders: %s)", file, mt, bl_arch_type_list(1, l1, sizeof l1), bl_arch_type_list(2, l2, sizeof l2));
    if (row->mlp == BL_MLP_MOE || (row->attn & BL_ATTN_SOFTCAP))
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: model_type \"%s\" needs a reserved feature (MoE MLP or soft-capped "
                       "attention) that is not implemented", file, mt);
    bool gpt2 = row->family == BL_FAMILY_GPT2, llama = !gpt2;
    bl_config_defaults(c, row->family);
    c->arch = row;
    c->type = ty;
    snprintf(c->model_type, sizeof c->model_type, "%s", mt);
    bl_head_kind head = BL_HEAD_CAUSAL_LM;
    if (!arch) arch = ty->causal_lm;
    snprintf(c->architecture, sizeof c->architecture, "%s", arch);
    bl_head_kind class_head = BL_HEAD_SEQ_CLS;
    if (ends_with(arch, "ForCausalLM") || (bl_arch_find_class(arch, NULL, &class_head) && class_head == BL_HEAD_CAUSAL_LM))
        head = BL_HEAD_CAUSAL_LM; /* (a known class of another type fails the prefix check below) */
    else if (ends_with(arch, "ForSequenceClassification"))
        head = BL_HEAD_SEQ_CLS;
    else
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'architectures' = \"%s\" is not supported; hint: use a "
                       "*ForCausalLM / %s or *ForSequenceClassification class", file, arch, ty->causal_lm);
    if (!(row->heads & (1u << head)))
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'architectures' = \"%s\": the %s family has no such head",
                       file, arch, row->name);
    c->head = head;
    if (strncmp(arch, ty->class_prefix, strlen(ty->class_prefix)) != 0)
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'architectures' = \"%s\" does not match model_type \"%s\"", file, arch, mt);

    BL_TRY(get_int(j, file, "vocab_size", true, &c->vocab_size, 1));
    int64_t v;
    if (gpt2) {
        BL_TRY(get_int(j, file, row->f_hidden, true, &c->hidden, 1));
        BL_TRY(get_int(j, file, row->f_layers, true, &c->n_layer, 1));
        BL_TRY(get_int(j, file, row->f_heads, true, &c->n_head, 1));
        BL_TRY(get_int(j, file, row->f_pos, true, &c->max_pos, 1));
        c->n_kv_head = c->n_head;
        c->intermediate = 4 * c->hidden;
        BL_TRY(get_int(j, file, row->f_inter, false, &c->intermediate, 1));
        BL_TRY(bl_json_num(j, file, row->f_eps, false, &c->norm_eps));
        const char *act = "gelu_new";
        BL_TRY(bl_json_str(j, file, row->f_act, false, &act));
        BL_TRY(parse_act(file, row->f_act, act, false, &c->act));
        BL_TRY(bl_json_bool(j, file, "scale_attn_weights", false, &c->scale_attn_weights));
        bool inv_idx = false;
        BL_TRY(bl_json_bool(j, file, "scale_attn_by_inverse_layer_idx", false, &inv_idx));
        if (inv_idx)
            return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'scale_attn_by_inverse_layer_idx' = true is not supported", file);
        /* reorder_and_upcast_attn only changes the order of float32 operations: same math. */
        c->tie_word_embeddings = true;
        BL_TRY(bl_json_bool(j, file, "tie_word_embeddings", false, &c->tie_word_embeddings));
        if (c->head == BL_HEAD_SEQ_CLS) {
            c->num_labels = 2;
        }
    } else {
        BL_TRY(get_int(j, file, row->f_hidden, true, &c->hidden, 1));
        BL_TRY(get_int(j, file, row->f_layers, true, &c->n_layer, 1));
        BL_TRY(get_int(j, file, row->f_heads, true, &c->n_head, 1));
        c->n_kv_head = c->n_head;
        BL_TRY(get_int(j, file, row->f_kv_heads, false, &c->n_kv_head, 1));
        BL_TRY(get_int(j, file, row->f_inter, true, &c->intermediate, 1));
        c->max_pos = 2048;
        BL_TRY(get_int(j, file, row->f_pos, false, &c->max_pos, 1));
        c->norm_eps = 1e-6;
        BL_TRY(bl_json_num(j, file, row->f_eps, false, &c->norm_eps));
        c->rope_theta = 10000.0;
        BL_TRY(bl_json_num(j, file, "rope_theta", false, &c->rope_theta));
        if (!(c->rope_theta > 0))
            return bl_fail(BALORA_STATUS_INVALID, "%s: field 'rope_theta' must be positive", file);
        BL_TRY(require_null(j, file, "rope_scaling", "only plain RoPE (rope_scaling null) is implemented"));
        const char *act = "silu";
        BL_TRY(bl_json_str(j, file, row->f_act, false, &act));
        BL_TRY(parse_act(file, row->f_act, act, true, &c->act));
        c->tie_word_embeddings = false;
        BL_TRY(bl_json_bool(j, file, "tie_word_embeddings", false, &c->tie_word_embeddings));
        bool ab = false;
        if (ty->fixed_qkv_bias) { c->qkv_bias = true; c->o_bias = false; }
        else {
            if (ty->bias_field) BL_TRY(bl_json_bool(j, file, ty->bias_field, false, &ab));
            c->qkv_bias = c->o_bias = ab;
        }
        BL_TRY(bl_json_bool(j, file, "mlp_bias", false, &c->mlp_bias));
        c->sliding_window = 0;
        if (ty->window_field) BL_TRY(get_int(j, file, ty->window_field, false, &c->sliding_window, 1));
        if (ty->window_refused) {
            bool use_sw = false;
            BL_TRY(bl_json_bool(j, file, ty->window_refused, false, &use_sw));
            if (use_sw)
                return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field '%s' = true is not supported for %s "
                               "(its per-layer max_window_layers rule); hint: set it to false for sequences shorter than "
                               "sliding_window", file, ty->window_refused, mt);
        }
        int64_t pt = 1;
        BL_TRY(get_int(j, file, "pretraining_tp", false, &pt, 1)); /* only splits matmuls: same math */
        if (c->head == BL_HEAD_SEQ_CLS) c->num_labels = 2;
    }
    if (c->hidden % c->n_head)
        return bl_fail(BALORA_STATUS_INVALID, "%s: hidden size %lld is not divisible by the number of heads %lld", file,
                       (long long)c->hidden, (long long)c->n_head);
    c->head_dim = c->hidden / c->n_head;
    if (llama) {
        v = c->head_dim;
        BL_TRY(get_int(j, file, "head_dim", false, &v, 1));
        c->head_dim = v;
        if (c->head_dim % 2)
            return bl_fail(BALORA_STATUS_INVALID, "%s: head_dim %lld must be even for RoPE", file, (long long)c->head_dim);
    }
    if (c->n_head % c->n_kv_head)
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'num_key_value_heads' = %lld does not divide num_attention_heads = %lld",
                       file, (long long)c->n_kv_head, (long long)c->n_head);
    if (!(c->norm_eps > 0) || !isfinite(c->norm_eps))
        return bl_fail(BALORA_STATUS_INVALID, "%s: the norm epsilon must be positive", file);
    BL_TRY(bl_json_int(j, file, "pad_token_id", false, &c->pad_token_id));
    BL_TRY(bl_json_int(j, file, "bos_token_id", false, &c->bos_token_id));
    BL_TRY(bl_json_int(j, file, "eos_token_id", false, &c->eos_token_id));
    if (c->head == BL_HEAD_SEQ_CLS) {
        const cJSON *id2 = cJSON_GetObjectItemCaseSensitive(j, "id2label");
        if (cJSON_IsObject(id2)) c->num_labels = cJSON_GetArraySize(id2);
        BL_TRY(get_int(j, file, "num_labels", false, &c->num_labels, 1));
        if (c->num_labels > BL_MAX_LABELS) /* as the encoders: keeps num_labels * hidden far from int64's range */
            return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'num_labels' (or the size of 'id2label') = %lld is out of range (at most %d)",
                           file, (long long)c->num_labels, BL_MAX_LABELS);
        const char *pt = NULL;
        BL_TRY(bl_json_str(j, file, "problem_type", false, &pt));
        if (pt && strcmp(pt, "single_label_classification") && strcmp(pt, "regression"))
            return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'problem_type' = \"%s\" is not supported", file, pt);
    }
    return BALORA_STATUS_OK;
}
