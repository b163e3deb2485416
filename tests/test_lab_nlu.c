/* The lab's encoder (NLU) arm end to end on the "nlu-mini" preset: masked-LM pre-training on the
 * corpus (the loss falls), the saved HF folder loads back, every method x seed produces finite
 * scores in [0, 1], the report files have their structure; bad presets fail clearly. */
#include "harness.h"
#include "encoders/encoder.h"
#include "io/safetensors.h"
#include "lab/nlu.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) { free(s); s = NULL; }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static void test_pretrain_loss_falls(const char *dir) {
    /* more steps than the mini preset so that learning is visible beyond the noise */
    bl_lab_nlu_preset p = *bl_lab_nlu_preset_find("nlu-mini");
    p.pre_steps = 150;
    bl_lab_corpus_config cc;
    bl_lab_nlu_preset_corpus(&p, &cc);
    bl_lab_corpus c;
    CHECK_OK(bl_lab_corpus_generate(&cc, &c));
    float *curve = calloc((size_t)p.pre_steps, sizeof(float));
    bl_lab_nlu_pre_result r;
    char md[4096];
    snprintf(md, sizeof md, "%s/pre", dir);
    CHECK_OK(bl_lab_nlu_pretrain(&c, &p, md, curve, NULL, NULL, &r));
    CHECK(r.steps == p.pre_steps, "steps %lld", (long long)r.steps);
    CHECK(r.n_masked > 0 && r.n_examples == c.n_docs * p.mask_copies, "examples %lld masked %lld", (long long)r.n_examples,
          (long long)r.n_masked);
    bool finite = true;
    for (int64_t i = 0; i < p.pre_steps; i++) finite = finite && isfinite(curve[i]);
    CHECK(finite, "every MLM loss finite");
    /* random init: loss about log(V); it must fall clearly */
    CHECK(r.first_loss > 0.8 * log((double)c.vocab_size + 1) && r.last_loss < r.first_loss - 0.5,
          "MLM loss %.3f -> %.3f (log V %.3f)", r.first_loss, r.last_loss, log((double)c.vocab_size + 1));
    /* the fill-in probe of the pre-trained model: finite rates */
    for (int k = 0; k < 3; k++) CHECK(r.probe[k] >= 0 && r.probe[k] <= 1, "probe %s = %g", bl_nlu_metric_key((bl_nlu_metric)k), r.probe[k]);
    CHECK(isnan(r.probe[BL_NLU_FINAL_LOSS]), "probe final loss NaN");
    /* the folder loads back as a classifier, with the [MASK] id in its vocabulary */
    bl_encoder e;
    bl_enc_load_opts o = BL_ENC_LOAD_DEFAULT;
    o.num_labels = 2;
    CHECK_OK(bl_enc_load(&e, md, &o));
    CHECK(e.cfg.vocab_size == c.vocab_size + 1 && e.cfg.hidden == p.hidden, "vocab %lld", (long long)e.cfg.vocab_size);
    bl_enc_free(&e);
    /* a BertForMaskedLM folder: the MLM head, neither pooler nor classifier */
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", md);
    bl_st_file sf;
    CHECK_OK(bl_st_open(&sf, path));
    CHECK(bl_st_find(&sf, "cls.predictions.transform.dense.weight") && bl_st_find(&sf, "cls.predictions.bias") &&
          bl_st_find(&sf, "bert.embeddings.word_embeddings.weight"), "MLM head and encoder tensors in model.safetensors");
    CHECK(!bl_st_find(&sf, "classifier.weight") && !bl_st_find(&sf, "bert.pooler.dense.weight"), "no pooler / classifier");
    bl_st_close(&sf);
    snprintf(path, sizeof path, "%s/config.json", md);
    char *cj = slurp(path);
    CHECK(cj && strstr(cj, "BertForMaskedLM") && !strstr(cj, "num_labels"), "config.json of a BertForMaskedLM");
    free(cj);
    free(curve);
    bl_lab_corpus_free(&c);
}

static void test_run(const char *dir) {
    const bl_lab_nlu_preset *p = bl_lab_nlu_preset_find("nlu-mini");
    CHECK(p != NULL, "nlu-mini preset");
    if (!p) return;
    bl_lab_nlu_results *r = calloc(1, sizeof *r);
    CHECK_OK(bl_lab_nlu_run(p, dir, 0, NULL, NULL, r));
    int n = r->preset.n_seeds;
    CHECK(n == p->n_seeds, "seeds %d", n);
    for (int m = 0; m < BL_NLU_M_COUNT; m++)
        for (int s = 0; s < n; s++)
            for (int k = 0; k < BL_NLU_METRIC_COUNT; k++) {
                double v = r->val[m][s][k];
                bool ok = isfinite(v) && (k == BL_NLU_FINAL_LOSS ? v >= 0 : v >= 0 && v <= 1);
                CHECK(ok, "%s seed %d %s = %g", bl_nlu_method_name((bl_nlu_method)m), s, bl_nlu_metric_key((bl_nlu_metric)k), v);
            }
    CHECK(r->n_affected > 0 && r->n_ood == r->n_id, "affected %lld, ood %lld, id %lld", (long long)r->n_affected,
          (long long)r->n_ood, (long long)r->n_id);
    CHECK_OK(bl_lab_nlu_report(r, dir));
    char path[4200];
    snprintf(path, sizeof path, "%s/nlu_results.json", dir);
    char *js = slurp(path);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    CHECK(root != NULL, "nlu_results.json parses");
    cJSON *meth = cJSON_GetObjectItem(root, "methods");
    for (int m = 0; m < BL_NLU_M_COUNT; m++) {
        cJSON *mj = cJSON_GetObjectItem(meth, bl_nlu_method_name((bl_nlu_method)m));
        for (int k = 0; k < BL_NLU_METRIC_COUNT; k++) {
            cJSON *kj = cJSON_GetObjectItem(mj, bl_nlu_metric_key((bl_nlu_metric)k));
            cJSON *mean = cJSON_GetObjectItem(kj, "mean");
            CHECK(cJSON_IsNumber(mean), "%s.%s.mean a number", bl_nlu_method_name((bl_nlu_method)m), bl_nlu_metric_key((bl_nlu_metric)k));
            CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(kj, "per_seed")) == n, "per_seed has %d values", n);
            if (m != BL_NLU_LORA) CHECK(cJSON_IsObject(cJSON_GetObjectItem(kj, "welch_vs_lora")) ||
                                        !cJSON_IsNumber(cJSON_GetObjectItem(kj, "std")), "welch_vs_lora");
        }
    }
    cJSON_Delete(root);
    free(js);
    snprintf(path, sizeof path, "%s/nlu_report.md", dir);
    char *md = slurp(path);
    CHECK(md && strstr(md, "| method |") && strstr(md, "| ba-lora |") && strstr(md, "| full |") && strstr(md, "MLM loss") &&
          strstr(md, "| pre-trained (MLM fill-in) |"),
          "nlu_report.md has the table");
    free(md);
    /* bad input */
    bl_lab_nlu_preset bad = *p;
    bad.heads = 3;
    CHECK_FAILS(bl_lab_nlu_run(&bad, dir, 0, NULL, NULL, r), BALORA_STATUS_INVALID, "heads");
    CHECK_FAILS(bl_lab_nlu_run(p, dir, 99, NULL, NULL, r), BALORA_STATUS_INVALID, "seeds");
    CHECK(bl_lab_nlu_preset_find("nope") == NULL, "unknown preset");
    free(r);
}

int main(void) {
    balora_threads_set(1); /* tiny models: threads only add overhead on a shared machine */
    char dir[] = "/tmp/balora_test_nlu_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    test_pretrain_loss_falls(dir);
    test_run(dir);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return t_finish();
}
