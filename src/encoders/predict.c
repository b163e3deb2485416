/* Encoder predictions over datasets (predict.h). */
#include "encoders/predict.h"
#include "adapters/lora.h"
#include "data_glue/seqcls.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t bl_enc_max_tokens(const bl_encoder *m) {
    const bl_enc_config *c = &m->cfg;
    if (c->arch == BL_ENC_ROBERTA) return c->max_pos - c->pad_id - 1;
    if (c->position_biased_input) return c->max_pos;
    return INT64_MAX;
}

balora_status bl_enc_predict(bl_encoder *m, bl_tok *tok, const bl_glue_set *d, bl_adapter_mode mode, int64_t max_len,
                             int64_t batch, double *pred, float *logits) {
    if (batch < 1) return bl_fail(BALORA_STATUS_INVALID, "predict: batch %lld", (long long)batch);
    if (max_len > bl_enc_max_tokens(m)) max_len = bl_enc_max_tokens(m);
    bl_seqcls_set s;
    bl_seqcls_opts so = BL_SEQCLS_OPTS_DEFAULT;
    so.max_len = max_len;
    so.pad_id = m->cfg.pad_id;
    BL_TRY(bl_seqcls_encode(&s, d, tok, &so));
    int64_t n = s.n, B = batch < n ? batch : n, NL = m->cfg.num_labels;
    int64_t *buf = malloc(sizeof(int64_t) * (size_t)(3 * B * max_len + B)); /* ids, mask, types [B, max_len]; idx [B] */
    bl_enc_run r;
    memset(&r, 0, sizeof r);
    balora_status st = buf ? bl_enc_run_init(&r, m, B, max_len) : bl_fail(BALORA_STATUS_NOMEM, "predict: out of memory");
    int64_t *ids = buf, *mask = buf + B * max_len, *types = mask + B * max_len, *idx = types + B * max_len;
    for (int64_t s0 = 0; s0 < n && !st; s0 += B) {
        int64_t nb = n - s0 < B ? n - s0 : B, T;
        for (int64_t i = 0; i < nb; i++) idx[i] = s0 + i;
        if ((st = bl_seqcls_batch(&s, idx, nb, ids, mask, types, NULL, NULL, &T))) break;
        bl_enc_batch eb = {nb, T, ids, mask, m->cfg.type_vocab >= 2 ? types : NULL};
        if ((st = bl_enc_forward(&r, &eb, mode))) break;
        for (int64_t i = 0; i < nb; i++) {
            const float *z = r.logits + i * NL;
            if (logits) memcpy(logits + (s0 + i) * NL, z, sizeof(float) * (size_t)NL);
            if (m->cfg.regression) { pred[s0 + i] = z[0]; continue; }
            int64_t best = 0;
            for (int64_t c = 1; c < NL; c++) if (z[c] > z[best]) best = c;
            pred[s0 + i] = (double)best;
        }
    }
    bl_enc_run_free(&r);
    free(buf);
    bl_seqcls_free(&s);
    return st;
}

balora_status bl_enc_predict_file(const char *model, const char *adapter, bl_glue_task task, const char *data,
                                  const bl_enc_predict_opts *o, double **pred, double **gold, int64_t *n) {
    bl_enc_predict_opts opt = o ? *o : BL_ENC_PREDICT_DEFAULT;
    *pred = *gold = NULL;
    *n = 0;
    bl_encoder m;
    bl_adapter ad;
    bl_glue_set d;
    bl_tok *tok = NULL;
    memset(&ad, 0, sizeof ad);
    memset(&d, 0, sizeof d);
    bl_enc_load_opts lo = BL_ENC_LOAD_DEFAULT;
    const bl_glue_task_info *ti = bl_glue_task_get(task);
    if (ti) { lo.num_labels = ti->n_labels; lo.regression = ti->regression; }
    BL_TRY(bl_enc_load(&m, model, &lo));
    balora_status st = BALORA_STATUS_OK;
    if (adapter) st = bl_lora_load(&ad, &m.mods, adapter, false);
    if (!st) st = bl_tok_load(&tok, opt.tokenizer ? opt.tokenizer : model);
    if (!st) {
        bl_glue_opts go = {.skip_bad_rows = opt.skip_bad_rows};
        if (ti) st = opt.advglue ? bl_advglue_load(&d, task, data) : bl_glue_load(&d, task, data, &go);
        else st = bl_data_load(&d, opt.spec, data);
    }
    if (!st && !ti && d.regression != m.cfg.regression)
        st = bl_fail(BALORA_STATUS_INVALID, "%s: the data is %s but the model %s is %s", data, d.regression ? "regression" : "classification",
                     model, m.cfg.regression ? "a regression model" : "a classifier");
    if (!st && !d.regression && d.n_labels > m.cfg.num_labels)
        st = bl_fail(BALORA_STATUS_INVALID, "%s: %d labels but the model %s has %lld outputs", data, d.n_labels, model,
                     (long long)m.cfg.num_labels);
    if (!st) {
        *pred = malloc(sizeof(double) * (size_t)d.n);
        *gold = malloc(sizeof(double) * (size_t)d.n);
        if (!*pred || !*gold) st = bl_fail(BALORA_STATUS_NOMEM, "predict: out of memory");
    }
    if (!st) st = bl_enc_predict(&m, tok, &d, adapter ? BL_ADAPTER_ON : BL_ADAPTER_OFF, opt.max_len, opt.batch, *pred, NULL);
    if (!st) {
        for (int64_t i = 0; i < d.n; i++)
            (*gold)[i] = d.regression ? (double)d.score[i] : (d.label[i] >= 0 ? (double)d.label[i] : NAN);
        *n = d.n;
    } else {
        free(*pred); free(*gold);
        *pred = *gold = NULL;
    }
    if (tok) bl_tok_free(tok);
    bl_glue_set_free(&d);
    bl_lora_free(&ad);
    bl_enc_free(&m);
    return st;
}
