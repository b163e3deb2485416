/* Encoders and decoder classifiers behind one face (clsmodel.h). */
#include "encoders/clsmodel.h"
#include "encoders/enc_ops.h"
#include "encoders/predict.h"
#include "io/hf.h"
#include <stdlib.h>
#include <string.h>

static void fill_common(bl_clsm *m) {
    if (!m->decoder) {
        const bl_enc_config *c = &m->enc->cfg;
        m->mods = &m->enc->mods;
        m->num_labels = c->num_labels;
        m->regression = c->regression;
        m->pad_id = c->pad_id;
        m->max_tokens = bl_enc_max_tokens(m->enc);
        m->hidden = c->hidden;
        m->n_layer = c->n_layer;
        m->use_types = c->type_vocab >= 2;
    } else {
        const bl_config *c = &m->dec->cfg;
        m->mods = &m->dec->mods;
        m->num_labels = c->num_labels;
        m->regression = c->num_labels == 1;
        m->pad_id = c->pad_token_id >= 0 ? c->pad_token_id : 0;
        m->max_tokens = c->max_pos;
        m->hidden = c->hidden;
        m->n_layer = c->n_layer;
        m->use_types = false;
    }
}

void bl_clsm_wrap_encoder(bl_clsm *m, bl_encoder *e) {
    memset(m, 0, sizeof *m);
    m->enc = e;
    fill_common(m);
}

balora_status bl_clsm_load(bl_clsm *m, const char *dir, int64_t num_labels, bool regression, uint64_t seed) {
    memset(m, 0, sizeof *m);
    /* which kind: model_type of config.json */
    char cpath[4200];
    BL_TRY(bl_path_join(cpath, sizeof cpath, dir, "config.json"));
    if (!bl_file_exists(cpath)) return bl_fail(BALORA_STATUS_IO, "%s: no config.json; hint: --model takes a Hugging Face model folder", dir);
    cJSON *j;
    BL_TRY(bl_json_load(cpath, &j));
    const char *mt = NULL;
    balora_status st = bl_json_str(j, cpath, "model_type", true, &mt);
    bool enc = !st && bl_arch_is_encoder(mt);
    cJSON_Delete(j);
    BL_TRY(st);
    m->owns = true;
    if (enc) {
        bl_enc_load_opts o = BL_ENC_LOAD_DEFAULT;
        o.num_labels = num_labels;
        o.regression = regression;
        o.seed = seed;
        m->enc = &m->enc_store;
        BL_TRY(bl_enc_load(m->enc, dir, &o));
    } else {
        m->decoder = true;
        m->dec = &m->dec_store;
        BL_TRY(bl_model_load(m->dec, dir));
        const bl_config *c = &m->dec->cfg;
        const char *why = NULL;
        if (c->head != BL_HEAD_SEQ_CLS) why = "is not a *ForSequenceClassification model (no score head)";
        else if (regression && c->num_labels != 1) why = "is a classifier, not a regression model (num_labels 1)";
        else if (num_labels > 0 && c->num_labels != num_labels) why = "has another number of labels";
        if (why) {
            st = bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: %s %s (num_labels %lld, wanted %lld); hint: decoders need a "
                         "*ForSequenceClassification checkpoint whose score head fits the task", dir, c->architecture, why,
                         (long long)c->num_labels, (long long)(regression ? 1 : num_labels));
            bl_model_free(m->dec);
            m->dec = NULL;
            return st;
        }
    }
    fill_common(m);
    return BALORA_STATUS_OK;
}

balora_status bl_clsm_run_init(bl_clsm *m, int64_t max_B, int64_t max_T) {
    if (m->have_run) {
        if (m->decoder) bl_run_free(&m->dr); else bl_enc_run_free(&m->er);
        free(m->dlogits);
        m->dlogits = NULL;
        m->have_run = false;
    }
    m->dlogits = bl_calloc((size_t)(max_B * m->num_labels), sizeof(float)); /* [max_B, num_labels] */
    if (!m->dlogits) return BALORA_STATUS_NOMEM;
    balora_status st = m->decoder ? bl_run_init(&m->dr, m->dec, max_B, max_T) : bl_enc_run_init(&m->er, m->enc, max_B, max_T);
    if (st) { free(m->dlogits); m->dlogits = NULL; return st; }
    m->rng = m->decoder ? &m->dr.rng : &m->er.rng;
    m->have_run = true;
    return BALORA_STATUS_OK;
}

balora_status bl_clsm_forward(bl_clsm *m, int64_t B, int64_t T, const int64_t *ids, const int64_t *mask,
                              const int64_t *types, bl_adapter_mode mode) {
    if (!m->have_run) return bl_fail(BALORA_STATUS_INVALID, "classifier: no run (bl_clsm_run_init)");
    if (m->decoder) {
        m->dr.train = m->train;
        bl_batch b = {B, T, ids, mask};
        BL_TRY(bl_model_forward(&m->dr, &b, mode));
        m->logits = m->dr.logits;
    } else {
        m->er.train = m->train;
        bl_enc_batch b = {B, T, ids, mask, m->use_types ? types : NULL};
        BL_TRY(bl_enc_forward(&m->er, &b, mode));
        m->logits = m->er.logits;
    }
    m->B = B;
    m->T = T;
    return BALORA_STATUS_OK;
}

balora_status bl_clsm_loss(bl_clsm *m, const int64_t *labels, const float *targets, double *loss) {
    if (!m->logits) return bl_fail(BALORA_STATUS_INVALID, "classifier loss: no forward pass");
    if (m->regression) {
        if (!targets) return bl_fail(BALORA_STATUS_INVALID, "classifier loss: a regression model needs float targets");
        return bl_mse(m->logits, targets, m->B, m->dlogits, 1.0f, loss);
    }
    if (!labels) return bl_fail(BALORA_STATUS_INVALID, "classifier loss: a classifier needs integer labels");
    int64_t n;
    return bl_xent(m->logits, labels, m->B, 1, m->num_labels, false, m->dlogits, 1.0f, loss, &n);
}

balora_status bl_clsm_backward(bl_clsm *m) {
    return m->decoder ? bl_model_backward(&m->dr, m->dlogits) : bl_enc_backward(&m->er, m->dlogits);
}

balora_status bl_clsm_features(const bl_clsm *m, int64_t b, int64_t layer, bool mean, const int64_t *mask, float *out) {
    int64_t C = m->hidden, T = m->T;
    if (layer > m->n_layer) return bl_fail(BALORA_STATUS_INVALID, "features: layer %lld of %lld", (long long)layer, (long long)m->n_layer);
    const float *h; /* [T, C] of example b */
    int64_t at = 0;
    if (!m->decoder) {
        if (layer < 0) { memcpy(out, m->er.pooled + b * C, sizeof(float) * (size_t)C); return BALORA_STATUS_OK; }
        h = bl_enc_layer_hidden(&m->er, layer) + b * T * C;
    } else {
        at = m->dr.pool_idx[b];
        h = (layer < 0 ? m->dr.hidden : m->dr.res[layer]) + b * T * C;
        if (layer < 0) mean = false;
    }
    if (!mean) { memcpy(out, h + at * C, sizeof(float) * (size_t)C); return BALORA_STATUS_OK; }
    int64_t cnt = 0;
    for (int64_t c = 0; c < C; c++) out[c] = 0;
    for (int64_t t = 0; t < T; t++)
        if (mask[b * T + t]) { cnt++; for (int64_t c = 0; c < C; c++) out[c] += h[t * C + c]; }
    for (int64_t c = 0; c < C; c++) out[c] /= (float)(cnt > 0 ? cnt : 1);
    return BALORA_STATUS_OK;
}

balora_status bl_clsm_set_full_ft(bl_clsm *m, bool on) {
    return m->decoder ? bl_model_set_full_ft(m->dec, on) : bl_enc_set_full_ft(m->enc, on);
}

balora_status bl_clsm_save(const bl_clsm *m, const char *dir) {
    /* both through the one saver (bl_modules_save), heads from their trained copies */
    return m->decoder ? bl_model_save_heads(m->dec, dir, true) : bl_enc_save(m->enc, dir, true);
}

void bl_clsm_free(bl_clsm *m) {
    if (!m) return;
    if (m->have_run) { if (m->decoder) bl_run_free(&m->dr); else bl_enc_run_free(&m->er); }
    free(m->dlogits);
    if (m->owns) {
        if (m->enc) bl_enc_free(m->enc);
        if (m->dec) bl_model_free(m->dec);
    }
    memset(m, 0, sizeof *m);
}
