/* The encoder arm's report: nlu_report.md and nlu_results.json (nlu.h). */
#include "io/json.h"
#include "lab/nlu.h"
#include "lab/report.h"
#include "lab/stats.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void seed_vals(const bl_lab_nlu_results *r, int m, int k, double *x) {
    for (int s = 0; s < r->preset.n_seeds; s++) x[s] = r->val[m][s][k];
}

/* Welch test of method m against LoRA on metric k; false when it cannot run (n < 2, non-finite). */
static bool welch_vs_lora(const bl_lab_nlu_results *r, int m, int k, bl_welch *out) {
    int n = r->preset.n_seeds;
    if (m == BL_NLU_LORA || n < 2) return false;
    double a[BL_NLU_MAX_SEEDS], b[BL_NLU_MAX_SEEDS];
    seed_vals(r, m, k, a);
    seed_vals(r, BL_NLU_LORA, k, b);
    for (int s = 0; s < n; s++) if (!isfinite(a[s]) || !isfinite(b[s])) return false;
    return bl_stats_welch(a, n, b, n, out) == BALORA_STATUS_OK;
}

balora_status bl_lab_nlu_table(const bl_lab_nlu_results *r, char **out) {
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return BALORA_STATUS_NOMEM;
    int n = r->preset.n_seeds;
    fprintf(f, "| method |");
    for (int k = 0; k < BL_NLU_METRIC_COUNT; k++) fprintf(f, " %s |", bl_nlu_metric_label((bl_nlu_metric)k));
    fprintf(f, "\n|---|");
    for (int k = 0; k < BL_NLU_METRIC_COUNT; k++) fprintf(f, "---|");
    fprintf(f, "\n");
    fprintf(f, "| pre-trained (MLM fill-in) |");
    for (int k = 0; k < BL_NLU_METRIC_COUNT; k++) {
        if (isfinite(r->pre.probe[k])) fprintf(f, " %.3f |", r->pre.probe[k]);
        else fprintf(f, " – |");
    }
    fprintf(f, "\n");
    for (int m = 0; m < BL_NLU_M_COUNT; m++) {
        fprintf(f, "| %s |", bl_nlu_method_name((bl_nlu_method)m));
        for (int k = 0; k < BL_NLU_METRIC_COUNT; k++) {
            double x[BL_NLU_MAX_SEEDS];
            seed_vals(r, m, k, x);
            fprintf(f, " %.3f ± %.3f", bl_stats_mean(x, n), bl_stats_std(x, n));
            bl_welch w;
            if (k != BL_NLU_FINAL_LOSS && welch_vs_lora(r, m, k, &w) && w.p < 0.05) fprintf(f, " %s", "*");
            fprintf(f, " |");
        }
        fprintf(f, "\n");
    }
    fclose(f);
    *out = buf;
    return BALORA_STATUS_OK;
}

/* nlu_loss, nlu_scores and (when there are maps) nlu_tsne, .png and .svg, by the decoder arm's picture code. */
static balora_status nlu_pictures(const bl_lab_nlu_results *r, const char *dir, bool *have_tsne) {
    const bl_lab_nlu_preset *p = &r->preset;
    const int S = p->n_seeds;
    *have_tsne = false;
    const char *names[BL_NLU_M_COUNT];
    const float *loss[BL_NLU_M_COUNT];
    for (int m = 0; m < BL_NLU_M_COUNT; m++) {
        names[m] = bl_nlu_method_name((bl_nlu_method)m);
        loss[m] = &r->loss[m][0][0];
    }
    int64_t T = p->ft_steps < BL_NLU_MAX_CURVE ? p->ft_steps : BL_NLU_MAX_CURVE;
    BL_TRY(bl_lab_plot_loss(dir, "nlu_loss", "classification CE", BL_NLU_M_COUNT, names, loss, S, T, BL_NLU_MAX_CURVE));
    static const bl_nlu_metric ks[3] = {BL_NLU_ACC_ID, BL_NLU_ACC_OOD, BL_NLU_INHERIT};
    const char *gnames[3], *snames[BL_NLU_M_COUNT + 1];
    double mean[3 * (BL_NLU_M_COUNT + 1)], err[3 * (BL_NLU_M_COUNT + 1)];
    const int ns = BL_NLU_M_COUNT + 1;
    snames[0] = "pre-trained (fill-in)";
    for (int m = 0; m < BL_NLU_M_COUNT; m++) snames[m + 1] = names[m];
    for (int g = 0; g < 3; g++) {
        gnames[g] = bl_nlu_metric_label(ks[g]);
        mean[g * ns] = r->pre.probe[ks[g]];
        err[g * ns] = NAN;
        for (int m = 0; m < BL_NLU_M_COUNT; m++) {
            double x[BL_NLU_MAX_SEEDS];
            seed_vals(r, m, ks[g], x);
            mean[g * ns + m + 1] = bl_stats_mean(x, S);
            err[g * ns + m + 1] = S > 1 ? bl_stats_std(x, S) : NAN;
        }
    }
    char title[256];
    snprintf(title, sizeof title, "encoder arm scores (mean ± std over %d seeds; inherit: lower = fewer defects reproduced)", S);
    bl_plot_bars_spec spec = {.title = title, .ylabel = "fraction", .n_groups = 3, .n_series = ns, .group_names = gnames,
                              .series_names = snames, .mean = mean, .err = err, .width = 1000, .height = 520};
    BL_TRY(bl_lab_plot_bars(dir, "nlu_scores", &spec));
    if (r->n_tsne < 4) return BALORA_STATUS_OK;
    const bl_nlu_method ms[2] = {BL_NLU_LORA, BL_NLU_BALORA};
    bl_plot_panel panels[2 * BL_NLU_N_SNAP];
    char titles[2 * BL_NLU_N_SNAP][64];
    for (int i = 0; i < 2; i++)
        for (int s = 0; s < BL_NLU_N_SNAP; s++) {
            int k = i * BL_NLU_N_SNAP + s;
            snprintf(titles[k], sizeof titles[k], "%s, step %lld", bl_nlu_method_name(ms[i]), (long long)r->snap_step[s]);
            panels[k] = (bl_plot_panel){.title = titles[k], .xy = &r->tsne[i][s][0][0], .cls = r->tsne_cls, .n = r->n_tsne};
        }
    snprintf(title, sizeof title, "t-SNE of the pooled representation (classifier input) of %lld test reviews (seed %llu)",
             (long long)r->n_tsne, (unsigned long long)r->seeds[0]);
    BL_TRY(bl_lab_plot_tsne(dir, "nlu_tsne", title, panels, 2 * BL_NLU_N_SNAP, BL_NLU_N_SNAP));
    *have_tsne = true;
    return BALORA_STATUS_OK;
}

balora_status bl_lab_nlu_report(const bl_lab_nlu_results *r, const char *out_dir) {
    BL_TRY(bl_mkdir_p(out_dir));
    const bl_lab_nlu_preset *p = &r->preset;
    int n = p->n_seeds;
    /* results.json */
    cJSON *root = cJSON_CreateObject();
    if (!root) return BALORA_STATUS_NOMEM;
    cJSON_AddStringToObject(root, "preset", p->name);
    cJSON_AddStringToObject(root, "description", p->description);
    cJSON_AddStringToObject(root, "started_utc", r->started);
    cJSON_AddNumberToObject(root, "seconds", r->seconds);
    cJSON *cfg = cJSON_AddObjectToObject(root, "corpus");
    bl_lab_corpus_config cc;
    bl_lab_nlu_preset_corpus(p, &cc);
    bl_lab_corpus_config_fill_json(&cc, cfg);
    bl_lab_counts_fill_json(&r->counts, cfg);
    cJSON *enc = cJSON_AddObjectToObject(root, "encoder");
    cJSON_AddStringToObject(enc, "model_type", "bert");
    cJSON_AddNumberToObject(enc, "layers", p->layers);
    cJSON_AddNumberToObject(enc, "hidden", p->hidden);
    cJSON_AddNumberToObject(enc, "heads", p->heads);
    cJSON_AddNumberToObject(enc, "intermediate", p->intermediate);
    cJSON_AddNumberToObject(enc, "vocab", r->vocab);
    cJSON_AddNumberToObject(enc, "mask_token_id", r->vocab - 1);
    cJSON_AddNumberToObject(enc, "n_params", (double)r->pre.n_params);
    cJSON *pre = cJSON_AddObjectToObject(root, "mlm_pretraining");
    cJSON_AddNumberToObject(pre, "steps", (double)r->pre.steps);
    cJSON_AddNumberToObject(pre, "batch", (double)p->pre_batch);
    cJSON_AddNumberToObject(pre, "lr", p->pre_lr);
    cJSON_AddNumberToObject(pre, "mask_prob", p->mask_prob);
    cJSON_AddNumberToObject(pre, "mask_copies", p->mask_copies);
    cJSON_AddNumberToObject(pre, "examples", (double)r->pre.n_examples);
    cJSON_AddNumberToObject(pre, "masked_tokens", (double)r->pre.n_masked);
    cJSON_AddNumberToObject(pre, "loss_first_10pct", r->pre.first_loss);
    cJSON_AddNumberToObject(pre, "loss_last_10pct", r->pre.last_loss);
    cJSON_AddNumberToObject(pre, "seconds", r->pre.seconds);
    cJSON *pj = cJSON_AddObjectToObject(pre, "fill_in_probe");
    for (int k = 0; k < BL_NLU_METRIC_COUNT; k++)
        if (isfinite(r->pre.probe[k])) cJSON_AddNumberToObject(pj, bl_nlu_metric_key((bl_nlu_metric)k), r->pre.probe[k]);
    cJSON *ftj = cJSON_AddObjectToObject(root, "finetuning");
    cJSON_AddStringToObject(ftj, "task", "review sentiment (classification form)");
    cJSON_AddNumberToObject(ftj, "steps", (double)p->ft_steps);
    cJSON_AddNumberToObject(ftj, "batch", (double)p->ft_batch);
    cJSON_AddNumberToObject(ftj, "lr_adapter", p->lr_adapter);
    cJSON_AddNumberToObject(ftj, "lr_full", p->lr_adapter / 10.0);
    cJSON_AddNumberToObject(ftj, "rank", p->rank);
    cJSON_AddNumberToObject(ftj, "alpha", p->alpha_per_rank * p->rank);
    cJSON_AddStringToObject(ftj, "targets", p->targets);
    cJSON_AddStringToObject(ftj, "reg_recipe", "paper-v1 (NLU)");
    cJSON_AddNumberToObject(ftj, "n_train", (double)r->n_ft);
    cJSON_AddNumberToObject(ftj, "n_test_id", (double)r->n_id);
    cJSON_AddNumberToObject(ftj, "n_test_ood", (double)r->n_ood);
    cJSON_AddNumberToObject(ftj, "n_affected", (double)r->n_affected);
    cJSON *seeds = cJSON_AddArrayToObject(root, "seeds");
    for (int s = 0; s < n; s++) cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)r->seeds[s]));
    cJSON *meth = cJSON_AddObjectToObject(root, "methods");
    for (int m = 0; m < BL_NLU_M_COUNT; m++) {
        cJSON *mj = cJSON_AddObjectToObject(meth, bl_nlu_method_name((bl_nlu_method)m));
        cJSON_AddNumberToObject(mj, "seconds", r->method_seconds[m]);
        for (int k = 0; k < BL_NLU_METRIC_COUNT; k++) {
            double x[BL_NLU_MAX_SEEDS];
            seed_vals(r, m, k, x);
            cJSON *kj = cJSON_AddObjectToObject(mj, bl_nlu_metric_key((bl_nlu_metric)k));
            double mu = bl_stats_mean(x, n), sd = bl_stats_std(x, n);
            if (isfinite(mu)) cJSON_AddNumberToObject(kj, "mean", mu); else cJSON_AddNullToObject(kj, "mean");
            if (isfinite(sd)) cJSON_AddNumberToObject(kj, "std", sd); else cJSON_AddNullToObject(kj, "std");
            cJSON *arr = cJSON_AddArrayToObject(kj, "per_seed");
            for (int s = 0; s < n; s++) cJSON_AddItemToArray(arr, isfinite(x[s]) ? cJSON_CreateNumber(x[s]) : cJSON_CreateNull());
            bl_welch w;
            if (welch_vs_lora(r, m, k, &w)) {
                cJSON *wj = cJSON_AddObjectToObject(kj, "welch_vs_lora");
                cJSON_AddNumberToObject(wj, "diff", w.diff);
                if (isfinite(w.t)) cJSON_AddNumberToObject(wj, "t", w.t); else cJSON_AddNullToObject(wj, "t");
                cJSON_AddNumberToObject(wj, "df", w.df);
                cJSON_AddNumberToObject(wj, "p", w.p);
            }
        }
    }
    char path[4200];
    balora_status st = bl_path_join(path, sizeof path, out_dir, "nlu_results.json");
    if (!st) st = bl_json_save(root, path);
    cJSON_Delete(root);
    if (st) return st;
    bool have_tsne;
    BL_TRY(nlu_pictures(r, out_dir, &have_tsne));
    /* nlu_report.md */
    char *table = NULL;
    BL_TRY(bl_lab_nlu_table(r, &table));
    BL_TRY(bl_path_join(path, sizeof path, out_dir, "nlu_report.md"));
    FILE *f = fopen(path, "w");
    if (!f) { free(table); return bl_fail(BALORA_STATUS_IO, "%s: cannot write; hint: check the folder's permissions", path); }
    fprintf(f, "# balora lab — encoder (NLU) arm: preset `%s`\n\n", p->name);
    fprintf(f, "%s.\n\nStarted %s UTC; took %.1f s. Raw numbers: [nlu_results.json](nlu_results.json); "
               "pre-trained encoder: `nlu_model/` (a Hugging Face BertForMaskedLM folder: config.json, model.safetensors).\n\n",
            p->description, r->started, r->seconds);
    char dec[4200];
    if (!bl_path_join(dec, sizeof dec, out_dir, "report.md") && access(dec, F_OK) == 0)
        fprintf(f, "The decoder arm's report in this folder: [report.md](report.md).\n\n");
    else
        fprintf(f, "The decoder arm: `balora demo` or `balora lab --preset demo` (report.md; give both the same --out to keep "
                   "the two reports side by side).\n\n");
    fprintf(f, "## Set-up\n\n"
               "- Corpus seed %llu: %lld / %lld / %lld pre-training arith / fact / review statements; pre-training reviews "
               "positive:negative = %g:1; %g of them by a cue name, whose cue agrees with the label in %g of those.\n",
            (unsigned long long)p->corpus_seed, (long long)p->n_pre_arith, (long long)p->n_pre_fact, (long long)p->n_pre_review,
            p->imbalance, p->cue_frac, p->cue_agree);
    fprintf(f, "- Encoder: BERT-shaped, %d layer(s) x %d hidden, %d heads, intermediate %d, vocabulary %d (the corpus's words + "
               "[MASK] = id %d), %lld parameters incl. the MLM head.\n",
            p->layers, p->hidden, p->heads, p->intermediate, r->vocab, r->vocab - 1, (long long)r->pre.n_params);
    fprintf(f, "- Masked-LM pre-training from random init, every weight trained: %lld steps x batch %lld, lr %g (cosine), "
               "15%%-style masking (p = %g, 80/10/10) with %d static masked copies of each document: %lld examples, %lld "
               "masked tokens. MLM loss (mean of the first / last 10%% of steps): %.3f -> %.3f (%.1f s).\n",
            (long long)r->pre.steps, (long long)p->pre_batch, p->pre_lr, p->mask_prob, p->mask_copies, (long long)r->pre.n_examples,
            (long long)r->pre.n_masked, r->pre.first_loss, r->pre.last_loss, r->pre.seconds);
    fprintf(f, "- Fine-tuning: review sentiment (classification form, [CLS] = <bos>, pooler + classifier), %lld clean balanced "
               "examples, %lld steps x batch %lld for every method; adapters rank %d, alpha %g, targets %s, lr %g; full "
               "fine-tuning lr %g; BA-LoRA = PiSSA init + the NLU regularisers with paper-v1 NLU lambdas; seeds",
            (long long)r->n_ft, (long long)p->ft_steps, (long long)p->ft_batch, p->rank, p->alpha_per_rank * p->rank, p->targets,
            p->lr_adapter, p->lr_adapter / 10.0);
    for (int s = 0; s < n; s++) fprintf(f, " %llu", (unsigned long long)r->seeds[s]);
    fprintf(f, ".\n- Scores: ID acc on %lld balanced neutral-name test reviews; OOD acc on the same reviews with the "
               "spurious cue name reversed (%lld); inherit = share of the %lld affected items (cue-reversed, and minority-class "
               "when imbalanced) on which the prediction follows the pre-training defect against the true label. The first row is "
               "the pre-trained encoder itself, without fine-tuning: the verdict word filled in by its MLM head "
               "(\"<bos> review . verdict [MASK] . <eos>\", positive vs negative).\n\n",
            (long long)r->n_id, (long long)r->n_ood, (long long)r->n_affected);
    fprintf(f, "## Results (mean ± std over %d seeds; * = Welch p < 0.05 against LoRA)\n\n%s\n", n, table);
    fprintf(f, "## Pictures\n\n![fine-tuning loss](nlu_loss.png)\n\n![scores](nlu_scores.png)\n\n");
    if (have_tsne)
        fprintf(f, "![t-SNE maps](nlu_tsne.png)\n\nt-SNE of the pooled representation the classifier reads, for %lld held-out "
                   "reviews (half neutral-name test items, half with the cue name reversed), coloured by label and cue; "
                   "LoRA and BA-LoRA, seed %llu, at steps %lld / %lld / %lld (perplexity %g, %d iterations; each map is "
                   "embedded on its own, so axes and orientation are not comparable across panels). The two halves are the "
                   "same reviews with only the name changed: where the name does not move the representation, a "
                   "cue-reversed point covers its neutral-name twin.\n\n",
                (long long)r->n_tsne, (unsigned long long)r->seeds[0], (long long)r->snap_step[0], (long long)r->snap_step[1],
                (long long)r->snap_step[2], r->n_tsne > 31 ? 10.0 : (double)(r->n_tsne - 1) / 3.0, BL_NLU_TSNE_ITERS);
    fprintf(f, "SVG versions: nlu_loss.svg, nlu_scores.svg%s.\n\n", have_tsne ? ", nlu_tsne.svg" : "");
    fprintf(f, "What this does and does not show: one tiny encoder, one corpus, %d seeds and a short fine-tuning budget; "
               "differences without a * are within the seed noise. Settings are fixed by rule, not tuned per method.\n", n);
    free(table);
    if (fclose(f) != 0) return bl_fail(BALORA_STATUS_IO, "%s: write failed", path);
    return BALORA_STATUS_OK;
}
