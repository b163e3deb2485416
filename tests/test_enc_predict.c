/* Encoder predictions over data files (predict.h): a tiny random BERT with BERT's vocabulary and a
 * saved LoRA adapter, over the first 200 rows of GLUE SST-2 dev, 100 STS-B dev rows (regression) and
 * Adversarial GLUE's sst2; predictions equal the argmax of the logits of the in-memory model with
 * the adapter on; gold labels are the file's. */
#include "harness.h"
#include "adapters/lora.h"
#include "encoders/predict.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The first `lines` lines of a file, as a new file in the test's directory (keeps the test fast). */
static void head_copy(const char *src, const char *dst, int lines) {
    char *t;
    size_t n;
    CHECK_OK(bl_file_read(src, &t, &n));
    size_t k = 0;
    for (int l = 0; k < n && l < lines; k++) if (t[k] == '\n') l++;
    CHECK_OK(bl_file_write_atomic(dst, t, k));
    free(t);
}

static void make_model(const char *dir, const char *shared, bool regression, uint64_t seed) {
    bl_enc_config c;
    bl_enc_config_defaults(&c, BL_ENC_BERT);
    c.vocab_size = 30522; c.hidden = 16; c.n_head = 2; c.intermediate = 32; c.n_layer = 2; c.max_pos = 64; c.init_range = 0.3;
    c.regression = regression;
    c.num_labels = regression ? 1 : 2;
    bl_encoder m;
    CHECK_OK(bl_enc_init_random(&m, &c, seed));
    CHECK_OK(bl_enc_save(&m, dir, false));
    bl_enc_free(&m);
    char p[1200], *vocab;
    size_t vlen;
    snprintf(p, sizeof p, "%s/tokenizers/bert-base-uncased/vocab.txt", shared);
    CHECK_OK(bl_file_read(p, &vocab, &vlen));
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    CHECK_OK(bl_file_write_atomic(p, vocab, vlen));
    free(vocab);
}

int main(void) {
    balora_threads_set(1);
    const char *shared = t_require_shared();
    char mdir[700], adir[700], sst[900], p[1200];
    snprintf(mdir, sizeof mdir, "%s/bert", t_tmpdir());
    snprintf(adir, sizeof adir, "%s/adapter", t_tmpdir());
    snprintf(p, sizeof p, "%s/data/glue/SST-2/dev.tsv", shared);
    snprintf(sst, sizeof sst, "%s/sst2_dev_head.tsv", t_tmpdir());
    head_copy(p, sst, 201); /* header + 200 rows */
    make_model(mdir, shared, false, 3);
    if (t_failures) return t_finish();
    /* an adapter with non-zero B (so it changes the predictions) and a trained head copy */
    bl_encoder m;
    CHECK_OK(bl_enc_load(&m, mdir, NULL));
    bl_adapter ad;
    bl_lora_config lc;
    bl_lora_config_default(&lc);
    lc.r = 4; lc.alpha = 8;
    CHECK_OK(bl_lora_config_set_targets(&lc, "query,value"));
    CHECK_OK(bl_lora_init(&ad, &m.mods, &lc, 11));
    bl_rng rng;
    bl_rng_seed(&rng, 5);
    for (int i = 0; i < ad.n; i++)
        for (int64_t e = 0; e < ad.mods[i].out * ad.mods[i].r; e++) ad.mods[i].B[e] = 0.5f * bl_rng_normal(&rng);
    for (int h = 0; h < ad.n_heads; h++)
        for (int64_t e = 0; e < m.mods.params[ad.head_param[h]].numel; e++) ad.head_data[h][e] += 0.3f * bl_rng_normal(&rng);
    CHECK_OK(bl_lora_save(&ad, adir, 0, NULL, NULL));
    /* reference: the in-memory model, adapter on */
    bl_tok *tok;
    CHECK_OK(bl_tok_load(&tok, mdir));
    bl_glue_set d;
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_SST2, sst, NULL));
    double *ref = malloc(sizeof(double) * (size_t)d.n), *ref_off = malloc(sizeof(double) * (size_t)d.n);
    float *logits = malloc(sizeof(float) * (size_t)(2 * d.n));
    CHECK_OK(bl_enc_predict(&m, tok, &d, BL_ADAPTER_ON, 64, 16, ref, logits));
    CHECK_OK(bl_enc_predict(&m, tok, &d, BL_ADAPTER_OFF, 64, 16, ref_off, NULL));
    int argmax_ok = 1, n1 = 0, differ = 0;
    for (int64_t i = 0; i < d.n; i++) {
        argmax_ok &= ref[i] == (logits[2 * i + 1] > logits[2 * i] ? 1.0 : 0.0);
        n1 += ref[i] == 1.0;
        differ += ref[i] != ref_off[i];
    }
    CHECK(argmax_ok, "predictions are the argmax of the logits");
    CHECK(differ > 0, "the adapter changes some predictions (%d of %lld)", differ, (long long)d.n);
    /* batch size does not change predictions */
    double *ref1 = malloc(sizeof(double) * (size_t)d.n);
    CHECK_OK(bl_enc_predict(&m, tok, &d, BL_ADAPTER_ON, 64, 7, ref1, NULL));
    int same = 1;
    for (int64_t i = 0; i < d.n; i++) same &= ref1[i] == ref[i];
    CHECK(same, "batch 7 and batch 16 give the same predictions");
    /* from the files */
    double *pred, *gold;
    int64_t n;
    bl_enc_predict_opts po = BL_ENC_PREDICT_DEFAULT;
    po.max_len = 64;
    CHECK_OK(bl_enc_predict_file(mdir, adir, BL_GLUE_TASK_SST2, sst, &po, &pred, &gold, &n));
    CHECK(n == 200, "n %lld", (long long)n);
    int match = 1, gold_ok = 1;
    for (int64_t i = 0; i < n && i < d.n; i++) { match &= pred[i] == ref[i]; gold_ok &= gold[i] == d.label[i]; }
    CHECK(match && gold_ok, "predict_file == in-memory predictions, gold == file labels (%d positive)", n1);
    free(pred); free(gold);
    /* Adversarial GLUE sst2 through the same model: labels from the JSON */
    snprintf(p, sizeof p, "%s/data/advglue/dev_ann.json", shared);
    po.advglue = true;
    CHECK_OK(bl_enc_predict_file(mdir, adir, BL_GLUE_TASK_SST2, p, &po, &pred, &gold, &n));
    CHECK(n == 148 && gold[0] == 1 && gold[147] == 0, "advglue sst2: n %lld", (long long)n);
    free(pred); free(gold);
    po.advglue = false;
    /* merge the adapter into the base (src/adapters), save the encoder: the merged folder predicts
     * what the adapter did */
    char mgdir[700];
    snprintf(mgdir, sizeof mgdir, "%s/merged", t_tmpdir());
    CHECK_OK(bl_lora_merge_into_base(&ad));
    bl_lora_free(&ad);
    CHECK_OK(bl_enc_save(&m, mgdir, false));
    snprintf(p, sizeof p, "%s/vocab.txt", mdir);
    char mv[800];
    snprintf(mv, sizeof mv, "%s/vocab.txt", mgdir);
    head_copy(p, mv, 1 << 30);
    CHECK_OK(bl_enc_predict_file(mgdir, NULL, BL_GLUE_TASK_SST2, sst, &po, &pred, &gold, &n));
    match = 1;
    for (int64_t i = 0; i < n; i++) match &= pred[i] == ref[i];
    CHECK(n == 200 && match, "merged model == base + adapter");
    free(pred); free(gold);
    /* wrong label space: a 2-output model on MNLI (3 labels) */
    snprintf(p, sizeof p, "%s/data/glue/QNLI/dev.tsv", shared);
    CHECK_FAILS(bl_enc_predict_file(mdir, NULL, BL_GLUE_TASK_MNLI, p, &po, &pred, &gold, &n), BALORA_STATUS_FORMAT,
                "does not fit num_labels 3");
    /* regression: STS-B dev with a 1-output model; gold = scores */
    char rdir[700];
    snprintf(rdir, sizeof rdir, "%s/bert_reg", t_tmpdir());
    make_model(rdir, shared, true, 4);
    char stsb[900];
    snprintf(p, sizeof p, "%s/data/glue/STS-B/dev.tsv", shared);
    snprintf(stsb, sizeof stsb, "%s/stsb_dev_head.tsv", t_tmpdir());
    head_copy(p, stsb, 101);
    CHECK_OK(bl_enc_predict_file(rdir, NULL, BL_GLUE_TASK_STSB, stsb, &po, &pred, &gold, &n));
    int finite = 1;
    for (int64_t i = 0; i < n; i++) finite &= isfinite(pred[i]);
    CHECK(n == 100 && finite && gold[0] == 5.0 && gold[1] == 4.75, "stsb predictions n %lld", (long long)n);
    free(pred); free(gold);
    free(ref); free(ref1); free(ref_off); free(logits);
    bl_glue_set_free(&d);
    bl_tok_free(tok);
    bl_lora_free(&ad);
    bl_enc_free(&m);
    return t_finish();
}
