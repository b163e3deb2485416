/* The lab end to end on the miniature preset: pre-training writes a loadable HF folder
 * (bit-exact round trip, llama and gpt2), the runner produces finite scores for every
 * method and seed, the report folder has its sections, keys and pictures, and the same
 * preset gives the same numbers twice (determinism). */
#include "harness.h"
#include "io/json.h"
#include "lab/report.h"
#include "lab/run.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Save a random model, load it back, compare the logits of one batch exactly. */
static void check_roundtrip(int family) {
    bl_lab_arch a = {.family = family, .layers = 2, .hidden = 16, .heads = 2};
    bl_config cfg;
    CHECK_OK(bl_lab_arch_config(&a, 40, &cfg));
    bl_model m, m2;
    CHECK_OK(bl_model_init_random(&m, &cfg, 11, 0.05f));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/rt_%d", t_tmpdir(), family);
    CHECK_OK(bl_model_save(&m, dir));
    balora_status st = bl_model_load(&m2, dir);
    CHECK(st == BALORA_STATUS_OK, "load: %s", balora_last_error());
    if (st) { bl_model_free(&m); return; }
    CHECK(m2.cfg.family == cfg.family && m2.cfg.hidden == 16 && m2.cfg.n_layer == 2 && m2.cfg.vocab_size == 40 &&
              m2.cfg.intermediate == cfg.intermediate && m2.cfg.tie_word_embeddings == cfg.tie_word_embeddings,
          "config round trip (family %d)", family);
    int64_t ids[2 * 7]; /* [2, 7] */
    for (int i = 0; i < 14; i++) ids[i] = (i * 7 + 3) % 40;
    bl_batch b = {.B = 2, .T = 7, .input_ids = ids};
    bl_run r1, r2;
    CHECK_OK(bl_run_init(&r1, &m, 2, 7));
    CHECK_OK(bl_run_init(&r2, &m2, 2, 7));
    CHECK_OK(bl_model_forward(&r1, &b, BL_ADAPTER_OFF));
    CHECK_OK(bl_model_forward(&r2, &b, BL_ADAPTER_OFF));
    CHECK(r1.n_logits == r2.n_logits && memcmp(r1.logits, r2.logits, (size_t)r1.n_logits * sizeof(float)) == 0,
          "logits differ after save + load (family %d)", family);
    bl_run_free(&r1);
    bl_run_free(&r2);
    bl_model_free(&m);
    bl_model_free(&m2);
}

static bool file_has_png_magic(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char h[8] = {0};
    size_t n = fread(h, 1, 8, f);
    fclose(f);
    static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    return n == 8 && memcmp(h, magic, 8) == 0;
}

static void check_report(const char *dir, const bl_lab_results *r) {
    char path[4200];
    static const char *const pics[] = {"loss", "scores", "tsne"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s.png", dir, pics[i]);
        CHECK(file_has_png_magic(path), "%s is not a PNG", path);
        snprintf(path, sizeof path, "%s/%s.svg", dir, pics[i]);
        CHECK(bl_file_exists(path), "%s missing", path);
    }
    snprintf(path, sizeof path, "%s/report.md", dir);
    char *md = NULL;
    size_t n = 0;
    CHECK_OK(bl_file_read(path, &md, &n));
    if (md) {
        static const char *const sections[] = {"# balora lab report", "## Results", "## What these numbers show", "## Pictures",
                                               "![scores](scores.png)", "![t-SNE maps](tsne.png)", "![fine-tuning loss](loss.png)",
                                               "## Exact configuration", "review acc (", "- Seeds: 1 2", "## What this does not show",
                                               "| pre-trained (no fine-tuning) |", "| ba-lora-no-svdr |", "took"};
        for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
            CHECK(strstr(md, sections[i]) != NULL, "report.md lacks '%s'", sections[i]);
        free(md);
    }
    snprintf(path, sizeof path, "%s/results.json", dir);
    cJSON *j = NULL;
    CHECK_OK(bl_json_load(path, &j));
    if (!j) return;
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "methods");
    CHECK(cJSON_IsObject(ms), "results.json: no methods object");
    for (int m = 0; m < BL_LAB_M_COUNT; m++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(ms, bl_lab_method_name((bl_lab_method)m));
        CHECK(cJSON_IsObject(o), "results.json: method %s missing", bl_lab_method_name((bl_lab_method)m));
        if (!o) continue;
        const cJSON *mean = cJSON_GetObjectItemCaseSensitive(o, "mean"), *sd = cJSON_GetObjectItemCaseSensitive(o, "std"),
                    *raw = cJSON_GetObjectItemCaseSensitive(o, "per_seed");
        for (int k = 0; k < BL_LAB_METRIC_COUNT; k++) {
            const char *key = bl_lab_metric_key((bl_lab_metric)k);
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(mean, key), *b = cJSON_GetObjectItemCaseSensitive(sd, key),
                        *c = cJSON_GetObjectItemCaseSensitive(raw, key);
            CHECK(cJSON_IsNumber(a) && isfinite(a->valuedouble), "%s mean.%s not a finite number", bl_lab_method_name((bl_lab_method)m), key);
            CHECK(cJSON_IsNumber(b) && b->valuedouble >= 0, "%s std.%s not a number >= 0", bl_lab_method_name((bl_lab_method)m), key);
            CHECK(cJSON_IsArray(c) && cJSON_GetArraySize(c) == r->preset.n_seeds, "%s per_seed.%s", bl_lab_method_name((bl_lab_method)m), key);
            if (cJSON_IsNumber(a) && k <= BL_LAB_AGREE_PT && k != BL_LAB_KL_PT)
                CHECK(a->valuedouble >= 0 && a->valuedouble <= 1, "%s %s = %g outside [0, 1]", bl_lab_method_name((bl_lab_method)m),
                      key, a->valuedouble);
        }
        if (m != BL_LAB_M_LORA)
            CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "welch_vs_lora")), "%s: no welch_vs_lora", bl_lab_method_name((bl_lab_method)m));
    }
    const cJSON *vars = cJSON_GetObjectItemCaseSensitive(j, "variants");
    CHECK(cJSON_IsArray(vars) && cJSON_GetArraySize(vars) == 1, "results.json: variants");
    const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(j, "seeds");
    CHECK(cJSON_IsArray(seeds) && cJSON_GetArraySize(seeds) == 2, "results.json: seeds");
    cJSON_Delete(j);
}

int main(void) {
    balora_threads_set(1);
    check_roundtrip(BL_FAMILY_LLAMA);
    check_roundtrip(BL_FAMILY_GPT2);

    const bl_lab_preset *p = bl_lab_preset_find("mini");
    CHECK(p != NULL, "no mini preset");
    CHECK(bl_lab_preset_find("demo") && bl_lab_preset_find("grid") && bl_lab_preset_find("rank-sweep") &&
              bl_lab_preset_find("ablation") && !bl_lab_preset_find("nope"), "preset table");
    if (!p) return t_finish();
    /* every preset is valid data: each variant's corpus generates, its model config is consistent, ranks fit */
    for (int i = 0; i < bl_lab_preset_count(); i++) {
        const bl_lab_preset *q = bl_lab_preset_at(i);
        bl_config mc;
        CHECK_OK(bl_lab_arch_config(&q->pretrain.arch, 124, &mc));
        CHECK(q->lr_adapter > 0 && fabs(bl_lab_lr_full(q) * 10 - q->lr_adapter) < 1e-12, "%s: the lr rule (full = adapter / 10)", q->name);
        CHECK(q->n_seeds >= 2 && q->ft_steps >= 2 && q->methods, "%s: seeds, steps, methods", q->name);
        for (int v = 0; v < (q->n_variants > 0 ? q->n_variants : 1); v++) {
            bl_lab_corpus_config cc;
            bl_lab_preset_corpus(q, q->n_variants > 0 ? v : -1, &cc);
            bl_lab_corpus c;
            balora_status st = bl_lab_corpus_generate(&cc, &c);
            CHECK(st == BALORA_STATUS_OK, "preset %s variant %d: corpus: %s", q->name, v, balora_last_error());
            if (!st) bl_lab_corpus_free(&c);
            int32_t rk = bl_lab_preset_rank(q, q->n_variants > 0 ? v : -1);
            CHECK(rk >= 1 && rk <= q->pretrain.arch.hidden, "preset %s variant %d: rank %d", q->name, v, rk);
        }
    }
    char dir[4096], dir2[4096];
    snprintf(dir, sizeof dir, "%s/mini", t_tmpdir());
    snprintf(dir2, sizeof dir2, "%s/mini2", t_tmpdir());
    bl_lab_run_opts o = {.out_dir = dir, .n_seeds = 2};
    bl_lab_results r, r2;
    balora_status st = bl_lab_run(p, &o, &r);
    CHECK(st == BALORA_STATUS_OK, "lab run: %s", balora_last_error());
    if (st) return t_finish();
    CHECK(r.n_variants == 1 && r.preset.n_seeds == 2, "shape");
    const bl_lab_variant_result *v = &r.var[0];
    /* the pre-trained model compared with itself is not recorded; its scores are finite */
    CHECK(isfinite(v->pre_val[BL_LAB_ACC_ID]) && isfinite(v->pre_val[BL_LAB_INHERIT]) && isnan(v->pre_val[BL_LAB_KL_PT]),
          "pre-trained scores");
    CHECK(v->pre.steps == p->pretrain.steps && v->pre.last_loss < v->pre.first_loss, "pre-training ran (loss %g -> %g)",
          v->pre.first_loss, v->pre.last_loss);
    for (int m = 0; m < BL_LAB_M_COUNT; m++) {
        const bl_lab_cell *c = &v->cell[m];
        CHECK(c->run, "method %d not run", m);
        for (int s = 0; s < 2; s++) {
            for (int k = 0; k < BL_LAB_METRIC_COUNT; k++)
                CHECK(isfinite(c->val[s * BL_LAB_METRIC_COUNT + k]), "%s seed %d: %s not finite", bl_lab_method_name((bl_lab_method)m),
                      s, bl_lab_metric_key((bl_lab_metric)k));
            CHECK(c->val[s * BL_LAB_METRIC_COUNT + BL_LAB_KL_PT] >= 0, "KL >= 0");
            for (int64_t t = 0; t < p->ft_steps; t++) CHECK(isfinite(c->loss[s * p->ft_steps + t]) && c->loss[s * p->ft_steps + t] > 0, "loss");
        }
    }
    CHECK(v->cell[BL_LAB_M_LORA].have_tsne && v->cell[BL_LAB_M_BALORA].have_tsne && !v->cell[BL_LAB_M_PISSA].have_tsne, "t-SNE cells");
    /* step 0: LoRA (B = 0) and PiSSA-initialised BA-LoRA both compute the pre-trained model, so their first
       step's loss (same seed, same batch, before any update) agrees within the golden tolerance, for every seed.
       (Their step-0 t-SNE maps are NOT comparable point by point: from the 1e-4 initial embedding, 50
       iterations turn float rounding in the features into a different map: a 1e-6 relative perturbation of
       20 points moves them by about the whole map's extent.) */
    {
        const bl_lab_cell *cl = &v->cell[BL_LAB_M_LORA], *cb = &v->cell[BL_LAB_M_BALORA];
        CHECK(cl->snap_step[0] == 0 && cb->snap_step[0] == 0 && cl->tsne && cb->tsne, "step-0 t-SNE snapshots");
        for (int s = 0; s < 2; s++) {
            float a = cl->loss[s * p->ft_steps], b = cb->loss[s * p->ft_steps];
            CHECK(t_allclose("step-1 loss, ba-lora vs lora", &b, &a, 1, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0,
                  "seed %d: ba-lora's step-0 model is not lora's (the pre-trained model): first loss %.9g vs %.9g", s, b, a);
        }
    }
    CHECK_OK(bl_lab_report_write(&r, dir));
    check_report(dir, &r);
    char *table = NULL;
    CHECK_OK(bl_lab_report_table(&r, 0, &table));
    CHECK(table && strstr(table, "| lora |") && strstr(table, "| full |"), "table");
    free(table);
    CHECK_FAILS(bl_lab_report_table(&r, 3, &table), BALORA_STATUS_INVALID, "no variant");

    /* determinism: the same preset again gives the same numbers */
    o.out_dir = dir2;
    st = bl_lab_run(p, &o, &r2);
    CHECK(st == BALORA_STATUS_OK, "second lab run: %s", balora_last_error());
    if (!st) {
        CHECK(r2.n_variants == 1, "second run: %d variants", r2.n_variants);
        for (int m = 0; r2.n_variants == 1 && m < BL_LAB_M_COUNT; m++)
            CHECK(memcmp(r.var[0].cell[m].val, r2.var[0].cell[m].val, 2 * BL_LAB_METRIC_COUNT * sizeof(double)) == 0,
                  "%s: scores differ between two identical runs", bl_lab_method_name((bl_lab_method)m));
        bl_lab_results_free(&r2);
    }
    bl_lab_results_free(&r);

    /* a preset with variants: two corpora (two pre-trainings) and a rank variant sharing the second one */
    {
        bl_lab_preset pv = *p;
        pv.methods = BL_LAB_M_BIT(BL_LAB_M_LORA) | BL_LAB_M_BIT(BL_LAB_M_BALORA);
        pv.n_variants = 3;
        pv.variants[0] = (bl_lab_variant){"clean", 0.0, 1.0, 0.5, 0};
        pv.variants[1] = (bl_lab_variant){"noisy r 1", 0.2, -1, -1, 1};
        pv.variants[2] = (bl_lab_variant){"noisy r 4", 0.2, -1, -1, 4};
        char dv[4096];
        snprintf(dv, sizeof dv, "%s/variants", t_tmpdir());
        bl_lab_run_opts ov = {.out_dir = dv};
        balora_status st2 = bl_lab_run(&pv, &ov, &r2);
        CHECK(st2 == BALORA_STATUS_OK, "variants run: %s", balora_last_error());
        if (!st2) {
            CHECK(r2.n_variants == 3 && r2.var[1].rank == 1 && r2.var[2].rank == 4 && r2.var[0].corpus.noise == 0.0 &&
                      r2.var[2].corpus.noise == 0.2 && r2.var[2].corpus.imbalance == p->imbalance, "variant settings");
            /* the clean corpus has no affected items: inheritance is n/a, never a made-up number */
            CHECK(isnan(r2.var[0].pre_val[BL_LAB_INHERIT]) && isfinite(r2.var[1].pre_val[BL_LAB_INHERIT]), "clean variant inheritance");
            /* variants 1 and 2 share the pre-trained model (same corpus) */
            CHECK(r2.var[1].pre.last_loss == r2.var[2].pre.last_loss && r2.var[0].pre.last_loss != r2.var[1].pre.last_loss,
                  "pre-training shared by same-corpus variants");
            CHECK(!r2.var[0].cell[BL_LAB_M_FULL].run && r2.var[0].cell[BL_LAB_M_LORA].run, "method mask");
            CHECK_OK(bl_lab_report_write(&r2, dv));
            char path[4200];
            snprintf(path, sizeof path, "%s/variants_inherit.png", dv);
            CHECK(file_has_png_magic(path), "variants_inherit.png");
            snprintf(path, sizeof path, "%s/report.md", dv);
            char *md = NULL;
            size_t n = 0;
            CHECK_OK(bl_file_read(path, &md, &n));
            CHECK(md && strstr(md, "## Variant 2: noisy r 4") && strstr(md, "variants_acc_id.png"), "variant sections");
            free(md);
            bl_lab_results_free(&r2);
        }
    }

    /* the gpt2 family end to end, with the paper-v6 recipe (the ablation preset's) */
    {
        bl_lab_preset pg = *p;
        pg.pretrain.arch.family = BL_FAMILY_GPT2;
        pg.reg_recipe = "paper-v6";
        pg.ft_batch = 16; /* paper-v6's k = 10 singular values need >= 10 answer rows per micro-batch */
        pg.methods = BL_LAB_M_BIT(BL_LAB_M_LORA) | BL_LAB_M_BIT(BL_LAB_M_PISSA) | BL_LAB_M_BIT(BL_LAB_M_BALORA);
        char dg[4096];
        snprintf(dg, sizeof dg, "%s/gpt2", t_tmpdir());
        bl_lab_run_opts og = {.out_dir = dg, .n_seeds = 2};
        balora_status st2 = bl_lab_run(&pg, &og, &r2);
        CHECK(st2 == BALORA_STATUS_OK, "gpt2 + paper-v6 run: %s", balora_last_error());
        if (!st2) {
            for (int s = 0; s < 2; s++)
                CHECK(isfinite(r2.var[0].cell[BL_LAB_M_BALORA].val[s * BL_LAB_METRIC_COUNT + BL_LAB_KL_PT]), "gpt2 ba-lora KL");
            bl_lab_results_free(&r2);
        }
    }

    /* method lists */
    {
        uint32_t mask;
        CHECK_OK(bl_lab_methods_parse("lora,ba-lora-no-dr", &mask));
        CHECK(mask == (BL_LAB_M_BIT(BL_LAB_M_LORA) | BL_LAB_M_BIT(BL_LAB_M_BALORA_NO_DR)), "mask %x", mask);
        CHECK_OK(bl_lab_methods_parse("all", &mask));
        CHECK(mask == BL_LAB_M_ALL, "all");
        CHECK_FAILS(bl_lab_methods_parse("lora,ba-lor", &mask), BALORA_STATUS_INVALID, "'ba-lor'");
        CHECK_FAILS(bl_lab_methods_parse("", &mask), BALORA_STATUS_INVALID, "empty");
        CHECK_FAILS(bl_lab_methods_parse(",", &mask), BALORA_STATUS_INVALID, "unknown method ''");
    }

    /* bad input: clear errors */
    bl_lab_preset bad = *p;
    bad.ft_steps = 1;
    CHECK_FAILS(bl_lab_run(&bad, &o, &r2), BALORA_STATUS_INVALID, "ft_steps");
    bad = *p;
    bad.pretrain.arch.heads = 3;
    CHECK_FAILS(bl_lab_run(&bad, &o, &r2), BALORA_STATUS_INVALID, "heads");
    bad = *p;
    bad.noise = 0.9;
    CHECK_FAILS(bl_lab_run(&bad, &o, &r2), BALORA_STATUS_INVALID, "noise");
    o.n_seeds = 1000;
    CHECK_FAILS(bl_lab_run(p, &o, &r2), BALORA_STATUS_INVALID, "seeds");
    return t_finish();
}
