/* Writing a model as a Hugging Face folder (config.json + model.safetensors). */
#include "model/model.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *act_name(bl_act_kind a) {
    switch (a) {
    case BL_ACT_GELU_TANH: return "gelu_new";
    case BL_ACT_GELU_ERF: return "gelu";
    case BL_ACT_SILU: return "silu";
    default: return "relu";
    }
}

cJSON *bl_config_to_json(const bl_config *c) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(c->architecture));
    cJSON_AddStringToObject(j, "model_type", c->model_type);
    cJSON_AddNumberToObject(j, "vocab_size", (double)c->vocab_size);
    const bl_arch *A = bl_arch_of_family(c->family); /* config field names of the family */
    if (c->family == BL_FAMILY_GPT2) {
        cJSON_AddNumberToObject(j, A->f_hidden, (double)c->hidden);
        cJSON_AddNumberToObject(j, A->f_layers, (double)c->n_layer);
        cJSON_AddNumberToObject(j, A->f_heads, (double)c->n_head);
        cJSON_AddNumberToObject(j, A->f_pos, (double)c->max_pos);
        if (c->intermediate == 4 * c->hidden) cJSON_AddNullToObject(j, A->f_inter);
        else cJSON_AddNumberToObject(j, A->f_inter, (double)c->intermediate);
        cJSON_AddStringToObject(j, A->f_act, act_name(c->act));
        cJSON_AddNumberToObject(j, A->f_eps, c->norm_eps);
        cJSON_AddBoolToObject(j, "scale_attn_weights", c->scale_attn_weights);
        cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tie_word_embeddings);
    } else {
        cJSON_AddNumberToObject(j, A->f_hidden, (double)c->hidden);
        cJSON_AddNumberToObject(j, A->f_inter, (double)c->intermediate);
        cJSON_AddNumberToObject(j, A->f_layers, (double)c->n_layer);
        cJSON_AddNumberToObject(j, A->f_heads, (double)c->n_head);
        cJSON_AddNumberToObject(j, A->f_kv_heads, (double)c->n_kv_head);
        if (c->head_dim * c->n_head != c->hidden) cJSON_AddNumberToObject(j, "head_dim", (double)c->head_dim);
        cJSON_AddNumberToObject(j, A->f_pos, (double)c->max_pos);
        cJSON_AddNumberToObject(j, A->f_eps, c->norm_eps);
        cJSON_AddNumberToObject(j, "rope_theta", c->rope_theta);
        cJSON_AddNullToObject(j, "rope_scaling");
        cJSON_AddStringToObject(j, A->f_act, act_name(c->act));
        cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tie_word_embeddings);
        const bl_arch_type *ty = NULL;
        bl_arch_find(c->model_type, &ty);
        if (ty && ty->save_bias_fields) {
            cJSON_AddBoolToObject(j, ty->bias_field, c->qkv_bias);
            cJSON_AddBoolToObject(j, "mlp_bias", c->mlp_bias);
        }
        if (ty && ty->window_field) {
            if (c->sliding_window > 0) cJSON_AddNumberToObject(j, ty->window_field, (double)c->sliding_window);
            else cJSON_AddNullToObject(j, ty->window_field);
        }
        if (ty && ty->window_refused) cJSON_AddBoolToObject(j, ty->window_refused, false);
    }
    if (c->head == BL_HEAD_SEQ_CLS) {
        cJSON *i2l = cJSON_AddObjectToObject(j, "id2label"), *l2i = cJSON_AddObjectToObject(j, "label2id");
        for (int64_t k = 0; k < c->num_labels; k++) {
            char a[32], b[32];
            snprintf(a, sizeof a, "%lld", (long long)k);
            snprintf(b, sizeof b, "LABEL_%lld", (long long)k);
            cJSON_AddStringToObject(i2l, a, b);
            cJSON_AddNumberToObject(l2i, b, (double)k);
        }
    }
    if (c->pad_token_id >= 0) cJSON_AddNumberToObject(j, "pad_token_id", (double)c->pad_token_id);
    if (c->bos_token_id >= 0) cJSON_AddNumberToObject(j, "bos_token_id", (double)c->bos_token_id);
    if (c->eos_token_id >= 0) cJSON_AddNumberToObject(j, "eos_token_id", (double)c->eos_token_id);
    cJSON_AddStringToObject(j, "torch_dtype", "float32");
    return j;
}

balora_status bl_model_save_heads(const bl_model *m, const char *dir, bool trained_heads) {
    /* config.json and the tokenizer files of the folder the model came from, byte for byte; a
     * generated config.json for llama2.c / random models */
    if (bl_dir_exists(m->source)) return bl_modules_save(&m->mods, dir, NULL, m->source, trained_heads);
    cJSON *j = bl_config_to_json(&m->cfg);
    if (!j) return bl_fail(BALORA_STATUS_NOMEM, "out of memory");
    balora_status st = bl_modules_save(&m->mods, dir, j, NULL, trained_heads);
    cJSON_Delete(j);
    return st;
}

balora_status bl_model_save(const bl_model *m, const char *dir) { return bl_model_save_heads(m, dir, false); }
