/* Writing a model as a Hugging Face folder (config.json + model.safetensors). */
#include "model/model.h"
#include "io/hf.h"
#include "io/safetensors.h"
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
    if (c->family == BL_FAMILY_GPT2) {
        cJSON_AddNumberToObject(j, "n_embd", (double)c->hidden);
        cJSON_AddNumberToObject(j, "n_layer", (double)c->n_layer);
        cJSON_AddNumberToObject(j, "n_head", (double)c->n_head);
        cJSON_AddNumberToObject(j, "n_positions", (double)c->max_pos);
        if (c->intermediate == 4 * c->hidden) cJSON_AddNullToObject(j, "n_inner");
        else cJSON_AddNumberToObject(j, "n_inner", (double)c->intermediate);
        cJSON_AddStringToObject(j, "activation_function", act_name(c->act));
        cJSON_AddNumberToObject(j, "layer_norm_epsilon", c->norm_eps);
        cJSON_AddBoolToObject(j, "scale_attn_weights", c->scale_attn_weights);
        cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tie_word_embeddings);
    } else {
        cJSON_AddNumberToObject(j, "hidden_size", (double)c->hidden);
        cJSON_AddNumberToObject(j, "intermediate_size", (double)c->intermediate);
        cJSON_AddNumberToObject(j, "num_hidden_layers", (double)c->n_layer);
        cJSON_AddNumberToObject(j, "num_attention_heads", (double)c->n_head);
        cJSON_AddNumberToObject(j, "num_key_value_heads", (double)c->n_kv_head);
        if (c->head_dim * c->n_head != c->hidden) cJSON_AddNumberToObject(j, "head_dim", (double)c->head_dim);
        cJSON_AddNumberToObject(j, "max_position_embeddings", (double)c->max_pos);
        cJSON_AddNumberToObject(j, "rms_norm_eps", c->norm_eps);
        cJSON_AddNumberToObject(j, "rope_theta", c->rope_theta);
        cJSON_AddNullToObject(j, "rope_scaling");
        cJSON_AddStringToObject(j, "hidden_act", act_name(c->act));
        cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tie_word_embeddings);
        if (!strcmp(c->model_type, "llama")) {
            cJSON_AddBoolToObject(j, "attention_bias", c->qkv_bias);
            cJSON_AddBoolToObject(j, "mlp_bias", c->mlp_bias);
        }
        if (!strcmp(c->model_type, "mistral")) {
            if (c->sliding_window > 0) cJSON_AddNumberToObject(j, "sliding_window", (double)c->sliding_window);
            else cJSON_AddNullToObject(j, "sliding_window");
        }
        if (!strcmp(c->model_type, "qwen2")) cJSON_AddBoolToObject(j, "use_sliding_window", false);
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

balora_status bl_model_save(const bl_model *m, const char *dir) {
    BL_TRY(bl_mkdir_p(dir));
    char path[4200];
    balora_status st;
    if (bl_dir_exists(m->source)) {
        /* config.json and the tokenizer files of the folder the model came from, byte for byte */
        st = bl_hf_copy_side_files(m->source, dir, true, NULL);
    } else {
        BL_TRY(bl_path_join(path, sizeof path, dir, "config.json"));
        cJSON *j = bl_config_to_json(&m->cfg);
        if (!j) return bl_fail(BALORA_STATUS_NOMEM, "out of memory");
        st = bl_json_save(j, path);
        cJSON_Delete(j);
    }
    if (st) return st;
    /* Conv1D weights go back to [in, out]: one scratch buffer for all of them */
    int64_t tsize = 0;
    for (int i = 0; i < m->mods.n_params; i++)
        if (m->mods.params[i].transposed) tsize += m->mods.params[i].numel;
    float *tbuf = tsize ? bl_malloc((size_t)tsize * sizeof(float)) : NULL;
    if (tsize && !tbuf) return BALORA_STATUS_NOMEM;
    bl_st_writer w;
    bl_st_writer_init(&w);
    st = bl_st_writer_meta(&w, "format", "pt");
    float *tp = tbuf;
    for (int i = 0; !st && i < m->mods.n_params; i++) {
        const bl_param *p = &m->mods.params[i];
        int64_t shape[2] = {p->shape[0], p->shape[1]};
        const float *data = p->data;
        if (p->transposed) {
            int64_t out = p->shape[0], in = p->shape[1];
            for (int64_t r = 0; r < in; r++)
                for (int64_t c = 0; c < out; c++) tp[r * out + c] = p->data[c * in + r];
            shape[0] = in;
            shape[1] = out;
            data = tp;
            tp += p->numel;
        }
        st = bl_st_writer_add(&w, p->name, BL_DTYPE_F32, p->ndim, shape, data);
    }
    if (!st) st = bl_path_join(path, sizeof path, dir, "model.safetensors");
    if (!st) st = bl_st_writer_save(&w, path);
    bl_st_writer_free(&w);
    free(tbuf);
    return st;
}
