/* Classifier predictions over datasets (predict.h). */
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

static balora_status clsm_predict(bl_clsm *m, bl_tok *tok, const bl_glue_set *d, bl_adapter_mode mode, int64_t max_len,
                                  int64_t batch, double *pred, float *logits, const bl_predict_keep *keep) {
    if (batch < 1) return bl_fail(BALORA_STATUS_INVALID, "predict: batch %lld", (long long)batch);
    if (max_len > m->max_tokens) max_len = m->max_tokens;
    bl_seqcls_set s;
    bl_seqcls_opts so = BL_SEQCLS_OPTS_DEFAULT;
    so.max_len = max_len;
    so.pad_id = m->pad_id;
    BL_TRY(bl_seqcls_encode(&s, d, tok, &so));
    int64_t n = s.n, B = batch < n ? batch : n, NL = m->num_labels;
    int64_t *buf = malloc(sizeof(int64_t) * (size_t)(3 * B * max_len + B)); /* ids, mask, types [B, max_len]; idx [B] */
    bool train = m->train;
    m->train = false;
    balora_status st = buf ? bl_clsm_run_init(m, B, max_len) : bl_fail(BALORA_STATUS_NOMEM, "predict: out of memory");
    int64_t *ids = buf, *mask = buf + B * max_len, *types = mask + B * max_len, *idx = types + B * max_len;
    if (!st && keep) st = keep->open(keep->user, n);
    for (int64_t s0 = 0; s0 < n && !st; s0 += B) {
        int64_t nb = n - s0 < B ? n - s0 : B, T, n_kept = 0;
        for (int64_t i = 0; keep && i < nb && keep->get(keep->user, s0 + i, &pred[s0 + i]); i++) n_kept++;
        if (keep && n_kept == nb && !logits) continue; /* kept by an earlier, interrupted run */
        for (int64_t i = 0; i < nb; i++) idx[i] = s0 + i;
        if ((st = bl_seqcls_batch(&s, idx, nb, ids, mask, types, NULL, NULL, &T))) break;
        if ((st = bl_clsm_forward(m, nb, T, ids, mask, types, mode))) break;
        for (int64_t i = 0; i < nb; i++) {
            const float *z = m->logits + i * NL;
            if (logits) memcpy(logits + (s0 + i) * NL, z, sizeof(float) * (size_t)NL);
            if (m->regression) { pred[s0 + i] = z[0]; continue; }
            int64_t best = 0;
            for (int64_t c = 1; c < NL; c++) if (z[c] > z[best]) best = c;
            pred[s0 + i] = (double)best;
        }
        for (int64_t i = 0; keep && i < nb && !st; i++) st = keep->put(keep->user, s0 + i, pred[s0 + i]);
        if (!st && keep && s0 + nb < n && balora_interrupted())
            st = bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d) after %lld of %lld examples; the predictions made are "
                         "kept; hint: run the same command again to continue", balora_interrupted(), (long long)(s0 + nb),
                         (long long)n);
    }
    m->train = train;
    free(buf);
    bl_seqcls_free(&s);
    return st;
}

balora_status bl_clsm_predict(bl_clsm *m, bl_tok *tok, const bl_glue_set *d, bl_adapter_mode mode, int64_t max_len,
                              int64_t batch, double *pred, float *logits) {
    return clsm_predict(m, tok, d, mode, max_len, batch, pred, logits, NULL);
}

balora_status bl_enc_predict(bl_encoder *m, bl_tok *tok, const bl_glue_set *d, bl_adapter_mode mode, int64_t max_len,
                             int64_t batch, double *pred, float *logits) {
    bl_clsm c;
    bl_clsm_wrap_encoder(&c, m);
    balora_status st = bl_clsm_predict(&c, tok, d, mode, max_len, batch, pred, logits);
    bl_clsm_free(&c);
    return st;
}

balora_status bl_enc_predict_file(const char *model, const char *adapter, bl_glue_task task, const char *data,
                                  const bl_enc_predict_opts *o, double **pred, double **gold, int64_t *n) {
    bl_enc_predict_opts opt = o ? *o : BL_ENC_PREDICT_DEFAULT;
    *pred = *gold = NULL;
    *n = 0;
    bl_clsm *m = bl_calloc(1, sizeof *m);
    if (!m) return BALORA_STATUS_NOMEM;
    bl_adapter ad;
    bl_glue_set d;
    bl_tok *tok = NULL;
    memset(&ad, 0, sizeof ad);
    memset(&d, 0, sizeof d);
    const bl_glue_task_info *ti = bl_glue_task_get(task);
    balora_status st = bl_clsm_load(m, model, ti ? ti->n_labels : 0, ti && ti->regression, 0);
    if (!st && adapter) st = bl_lora_load(&ad, m->mods, adapter, false);
    if (!st) st = bl_tok_load(&tok, opt.tokenizer ? opt.tokenizer : model);
    if (!st) {
        bl_glue_opts go = {.skip_bad_rows = opt.skip_bad_rows};
        if (ti) st = opt.advglue ? bl_advglue_load(&d, task, data) : bl_glue_load(&d, task, data, &go);
        else st = bl_data_load(&d, opt.spec, data);
    }
    if (!st && !ti && d.regression != m->regression)
        st = bl_fail(BALORA_STATUS_INVALID, "%s: the data is %s but the model %s is %s", data, d.regression ? "regression" : "classification",
                     model, m->regression ? "a regression model" : "a classifier");
    if (!st && !d.regression && d.n_labels > m->num_labels)
        st = bl_fail(BALORA_STATUS_INVALID, "%s: %d labels but the model %s has %lld outputs", data, d.n_labels, model,
                     (long long)m->num_labels);
    if (!st) {
        *pred = malloc(sizeof(double) * (size_t)d.n);
        *gold = malloc(sizeof(double) * (size_t)d.n);
        if (!*pred || !*gold) st = bl_fail(BALORA_STATUS_NOMEM, "predict: out of memory");
    }
    if (!st) st = clsm_predict(m, tok, &d, adapter ? BL_ADAPTER_ON : BL_ADAPTER_OFF, opt.max_len, opt.batch, *pred, NULL, opt.keep);
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
    bl_clsm_free(m);
    free(m);
    return st;
}
