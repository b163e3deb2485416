/* The lab's encoder (NLU) arm end to end on the "nlu-mini" preset: masked-LM pre-training on the
 * corpus (the loss falls), the saved HF folder loads back, every method x seed produces finite
 * scores in [0, 1], the report files have their structure and the three pictures (loss, scores, t-SNE
 * maps: valid PNGs of non-trivial size, embedded in nlu_report.md); bad presets fail clearly. */
#include "harness.h"
#include "encoders/encoder.h"
#include "io/safetensors.h"
#include "lab/nlu.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* fontconfig's process-lifetime caches (under cairo's text): scripts/lsan.supp. */

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

/* A PNG file: the 8-byte signature, an IHDR chunk with a plausible size, and more than min_bytes. */
static void check_png(const char *dir, const char *name, long min_bytes) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "%s exists", name);
    if (!f) return;
    unsigned char h[24] = {0};
    size_t got = fread(h, 1, sizeof h, f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    CHECK(got == sizeof h && !memcmp(h, sig, 8) && !memcmp(h + 12, "IHDR", 4), "%s is a PNG", name);
    uint32_t w = (uint32_t)h[16] << 24 | (uint32_t)h[17] << 16 | (uint32_t)h[18] << 8 | h[19];
    uint32_t ht = (uint32_t)h[20] << 24 | (uint32_t)h[21] << 16 | (uint32_t)h[22] << 8 | h[23];
    CHECK(w >= 400 && w <= 8000 && ht >= 300 && ht <= 8000, "%s is %u x %u", name, w, ht);
    CHECK(n > min_bytes, "%s has %ld bytes (> %ld)", name, n, min_bytes);
    snprintf(path, sizeof path, "%s/%.*s.svg", dir, (int)(strlen(name) - 4), name);
    f = fopen(path, "rb");
    CHECK(f != NULL, "%s's SVG exists", name);
    if (f) fclose(f);
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
    /* what the pictures draw: per-step losses, t-SNE maps of ID and cue-reversed items */
    int64_t T = p->ft_steps;
    for (int m = 0; m < BL_NLU_M_COUNT; m++)
        for (int s = 0; s < n; s++)
            for (int64_t t = 0; t < T; t++)
                CHECK(isfinite(r->loss[m][s][t]) && r->loss[m][s][t] > 0, "loss[%d][%d][%lld] = %g", m, s, (long long)t,
                      r->loss[m][s][t]);
    CHECK(r->n_tsne >= 8 && r->n_tsne <= BL_NLU_TSNE_POINTS && r->n_tsne % 2 == 0, "n_tsne %lld", (long long)r->n_tsne);
    CHECK(r->snap_step[0] == 0 && r->snap_step[1] == T / 2 && r->snap_step[2] == T, "snapshot steps");
    int cls_seen[4] = {0};
    for (int64_t i = 0; i < r->n_tsne; i++) {
        int k = r->tsne_cls[i];
        CHECK(k >= 0 && k < 4 && (k >= 2) == (i >= r->n_tsne / 2), "tsne_cls[%lld] = %d", (long long)i, k);
        if (k >= 0 && k < 4) cls_seen[k]++;
    }
    CHECK(cls_seen[0] && cls_seen[1] && cls_seen[2] && cls_seen[3], "all four classes in the maps");
    double spread = 0;
    for (int i = 0; i < 2; i++)
        for (int s = 0; s < BL_NLU_N_SNAP; s++)
            for (int64_t j = 0; j < r->n_tsne; j++) {
                CHECK(isfinite(r->tsne[i][s][j][0]) && isfinite(r->tsne[i][s][j][1]), "map %d/%d point %lld finite", i, s, (long long)j);
                spread += fabs(r->tsne[i][s][j][0] - r->tsne[i][s][0][0]);
            }
    CHECK(spread > 0, "the maps are not collapsed");
    CHECK_OK(bl_lab_nlu_report(r, dir));
    check_png(dir, "nlu_loss.png", 5000);
    check_png(dir, "nlu_scores.png", 5000);
    check_png(dir, "nlu_tsne.png", 5000);
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
    CHECK(md && strstr(md, "![fine-tuning loss](nlu_loss.png)") && strstr(md, "![scores](nlu_scores.png)") &&
          strstr(md, "![t-SNE maps](nlu_tsne.png)"), "nlu_report.md embeds the three pictures");
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
