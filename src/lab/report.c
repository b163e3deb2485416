/* The lab's report folder: report.md, results.json, pictures (see report.h). */
#include "lab/report.h"
#include "io/json.h"
#include "lab/plot.h"
#include "lab/stats.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ a growing string */

typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = true; return; }
        if (b->s && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->n + (size_t)k) cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) { b->oom = true; return; }
        b->s = t;
        b->cap = cap;
    }
}

/* ------------------------------------------------------------------ statistics of a cell */

static const bl_lab_metric k_table[] = {BL_LAB_ACC_ID,   BL_LAB_ACC_OOD,  BL_LAB_INHERIT, BL_LAB_INH_NOISE,
                                        BL_LAB_INH_IMBAL, BL_LAB_INH_BIAS, BL_LAB_KL_PT,   BL_LAB_AGREE_PT,
                                        BL_LAB_FINAL_LOSS};
#define N_TABLE ((int)(sizeof k_table / sizeof k_table[0]))
static const bl_lab_metric k_test[] = {BL_LAB_ACC_ID, BL_LAB_ACC_OOD, BL_LAB_INHERIT, BL_LAB_KL_PT};
#define N_TEST ((int)(sizeof k_test / sizeof k_test[0]))

/* Values of metric k over the seeds of a cell into x [S]; returns how many are finite (all copied). */
static int cell_values(const bl_lab_cell *c, int S, bl_lab_metric k, double *x) {
    int f = 0;
    for (int s = 0; s < S; s++) {
        x[s] = c->val[(int64_t)s * BL_LAB_METRIC_COUNT + k];
        f += isfinite(x[s]) != 0;
    }
    return f;
}

static void cell_stat(const bl_lab_cell *c, int S, bl_lab_metric k, double *mean, double *sd) {
    double x[100] = {0};
    int f = cell_values(c, S, k, x);
    if (f < S) { *mean = NAN; *sd = NAN; return; }
    *mean = bl_stats_mean(x, S);
    *sd = S > 1 ? bl_stats_std(x, S) : 0.0;
}

/* Welch's test of method m against method ref on metric k; false when it cannot be computed. */
static bool cell_welch_ref(const bl_lab_variant_result *v, int S, bl_lab_method m, bl_lab_method ref, bl_lab_metric k, bl_welch *w) {
    const bl_lab_cell *a = &v->cell[m], *b = &v->cell[ref];
    if (!a->run || !b->run || m == ref || S < 2) return false;
    double x[100], y[100];
    if (cell_values(a, S, k, x) < S || cell_values(b, S, k, y) < S) return false;
    if (bl_stats_welch(x, S, y, S, w)) { bl_clear_error(); return false; }
    return isfinite(w->p) != 0;
}

static bool cell_welch(const bl_lab_variant_result *v, int S, bl_lab_method m, bl_lab_metric k, bl_welch *w) {
    return cell_welch_ref(v, S, m, BL_LAB_M_LORA, k, w);
}

static void fmt_num(char *buf, size_t cap, double x) {
    if (!isfinite(x)) snprintf(buf, cap, "n/a");
    else snprintf(buf, cap, "%.3f", x);
}

/* ------------------------------------------------------------------ the table */

static void table_md(sbuf *b, const bl_lab_results *r, int vi) {
    const bl_lab_variant_result *v = &r->var[vi];
    int S = r->preset.n_seeds;
    sb_printf(b, "| method |");
    for (int i = 0; i < N_TABLE; i++) sb_printf(b, " %s |", bl_lab_metric_label(k_table[i]));
    sb_printf(b, "\n|---|");
    for (int i = 0; i < N_TABLE; i++) sb_printf(b, "---|");
    sb_printf(b, "\n| pre-trained (no fine-tuning) |");
    for (int i = 0; i < N_TABLE; i++) {
        char t[32];
        fmt_num(t, sizeof t, v->pre_val[k_table[i]]);
        sb_printf(b, " %s |", t);
    }
    sb_printf(b, "\n");
    for (int m = 0; m < BL_LAB_M_COUNT; m++) {
        const bl_lab_cell *c = &v->cell[m];
        if (!c->run) continue;
        sb_printf(b, "| %s |", bl_lab_method_name((bl_lab_method)m));
        for (int i = 0; i < N_TABLE; i++) {
            double mu, sd;
            cell_stat(c, S, k_table[i], &mu, &sd);
            if (!isfinite(mu)) sb_printf(b, " n/a |");
            else sb_printf(b, " %.3f ± %.3f |", mu, sd);
        }
        sb_printf(b, "\n");
    }
}

static void welch_md(sbuf *b, const bl_lab_results *r, int vi) {
    const bl_lab_variant_result *v = &r->var[vi];
    int S = r->preset.n_seeds;
    sb_printf(b, "| method vs lora |");
    for (int i = 0; i < N_TEST; i++) sb_printf(b, " Δ %s (p) |", bl_lab_metric_label(k_test[i]));
    sb_printf(b, "\n|---|");
    for (int i = 0; i < N_TEST; i++) sb_printf(b, "---|");
    sb_printf(b, "\n");
    for (int m = 0; m < BL_LAB_M_COUNT; m++) {
        if (!v->cell[m].run || m == BL_LAB_M_LORA) continue;
        sb_printf(b, "| %s |", bl_lab_method_name((bl_lab_method)m));
        for (int i = 0; i < N_TEST; i++) {
            bl_welch w;
            if (!cell_welch(v, S, (bl_lab_method)m, k_test[i], &w)) sb_printf(b, " n/a |");
            else sb_printf(b, " %+.3f (p = %.3g)%s |", w.diff, w.p, w.p < 0.05 ? " *" : "");
        }
        sb_printf(b, "\n");
    }
}

/* ID accuracy per task (the ID acc column is their mean). */
static void tasks_md(sbuf *b, const bl_lab_results *r, int vi) {
    const bl_lab_variant_result *v = &r->var[vi];
    int S = r->preset.n_seeds;
    static const bl_lab_metric ks[3] = {BL_LAB_ACC_ARITH, BL_LAB_ACC_FACT, BL_LAB_ACC_REVIEW};
    sb_printf(b, "| method | arith acc (%lld items) | fact acc (%lld items) | review acc (%lld items) |\n|---|---|---|---|\n",
              (long long)v->n_eval[0][BL_LAB_SPLIT_TEST_ID], (long long)v->n_eval[1][BL_LAB_SPLIT_TEST_ID],
              (long long)v->n_eval[2][BL_LAB_SPLIT_TEST_ID]);
    sb_printf(b, "| pre-trained (no fine-tuning) |");
    for (int i = 0; i < 3; i++) {
        char t[32];
        fmt_num(t, sizeof t, v->pre_val[ks[i]]);
        sb_printf(b, " %s |", t);
    }
    sb_printf(b, "\n");
    for (int m = 0; m < BL_LAB_M_COUNT; m++) {
        if (!v->cell[m].run) continue;
        sb_printf(b, "| %s |", bl_lab_method_name((bl_lab_method)m));
        for (int i = 0; i < 3; i++) {
            double mu, sd;
            cell_stat(&v->cell[m], S, ks[i], &mu, &sd);
            if (!isfinite(mu)) sb_printf(b, " n/a |");
            else sb_printf(b, " %.3f ± %.3f |", mu, sd);
        }
        sb_printf(b, "\n");
    }
}

balora_status bl_lab_report_table(const bl_lab_results *r, int v, char **out) {
    *out = NULL;
    if (!r || v < 0 || v >= r->n_variants) return bl_fail(BALORA_STATUS_INVALID, "lab report: no variant %d", v);
    sbuf b = {0};
    table_md(&b, r, v);
    if (b.oom) { free(b.s); return bl_fail(BALORA_STATUS_NOMEM, "lab report: out of memory"); }
    *out = b.s;
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ results.json */

static void add_num(cJSON *o, const char *k, double x) {
    if (isfinite(x)) cJSON_AddNumberToObject(o, k, x);
    else cJSON_AddNullToObject(o, k);
}

static cJSON *preset_json(const bl_lab_preset *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", p->name);
    cJSON_AddStringToObject(o, "description", p->description);
    cJSON *m = cJSON_AddObjectToObject(o, "model");
    cJSON_AddStringToObject(m, "arch", p->pretrain.arch.family == BL_FAMILY_GPT2 ? "gpt2" : "llama");
    cJSON_AddNumberToObject(m, "layers", p->pretrain.arch.layers);
    cJSON_AddNumberToObject(m, "hidden", p->pretrain.arch.hidden);
    cJSON_AddNumberToObject(m, "heads", p->pretrain.arch.heads);
    cJSON_AddNumberToObject(m, "intermediate", p->pretrain.arch.intermediate);
    cJSON *pt = cJSON_AddObjectToObject(o, "pretrain");
    cJSON_AddNumberToObject(pt, "steps", (double)p->pretrain.steps);
    cJSON_AddNumberToObject(pt, "batch", (double)p->pretrain.batch);
    cJSON_AddNumberToObject(pt, "lr", p->pretrain.lr);
    cJSON_AddStringToObject(pt, "schedule", "cosine");
    cJSON_AddNumberToObject(pt, "warmup_ratio", p->pretrain.warmup_ratio);
    cJSON_AddNumberToObject(pt, "weight_decay", p->pretrain.weight_decay);
    cJSON_AddNumberToObject(pt, "seed", (double)p->pretrain.seed);
    cJSON *ft = cJSON_AddObjectToObject(o, "finetune");
    cJSON_AddNumberToObject(ft, "steps", (double)p->ft_steps);
    cJSON_AddNumberToObject(ft, "batch", (double)p->ft_batch);
    cJSON_AddNumberToObject(ft, "lr_adapter", p->lr_adapter);
    cJSON_AddNumberToObject(ft, "lr_full", bl_lab_lr_full(p));
    cJSON_AddStringToObject(ft, "schedule", "linear, warmup 5%");
    cJSON_AddNumberToObject(ft, "rank", p->rank);
    cJSON_AddNumberToObject(ft, "alpha_per_rank", p->alpha_per_rank);
    cJSON_AddStringToObject(ft, "targets", p->targets);
    cJSON_AddStringToObject(ft, "balora_recipe", p->reg_recipe);
    cJSON *ms = cJSON_AddArrayToObject(o, "methods");
    for (int k = 0; k < BL_LAB_M_COUNT; k++)
        if ((p->methods >> k) & 1u) cJSON_AddItemToArray(ms, cJSON_CreateString(bl_lab_method_name((bl_lab_method)k)));
    cJSON_AddNumberToObject(o, "n_seeds", p->n_seeds);
    return o;
}

static cJSON *methods_json(const bl_lab_results *r, int vi) {
    const bl_lab_variant_result *v = &r->var[vi];
    int S = r->preset.n_seeds;
    cJSON *ms = cJSON_CreateObject();
    for (int m = 0; m < BL_LAB_M_COUNT; m++) {
        const bl_lab_cell *c = &v->cell[m];
        if (!c->run) continue;
        cJSON *o = cJSON_AddObjectToObject(ms, bl_lab_method_name((bl_lab_method)m));
        cJSON *mean = cJSON_AddObjectToObject(o, "mean"), *sd = cJSON_AddObjectToObject(o, "std"),
              *raw = cJSON_AddObjectToObject(o, "per_seed"), *wl = cJSON_AddObjectToObject(o, "welch_vs_lora");
        for (int k = 0; k < BL_LAB_METRIC_COUNT; k++) {
            double mu, s;
            cell_stat(c, S, (bl_lab_metric)k, &mu, &s);
            add_num(mean, bl_lab_metric_key((bl_lab_metric)k), mu);
            add_num(sd, bl_lab_metric_key((bl_lab_metric)k), s);
            cJSON *arr = cJSON_AddArrayToObject(raw, bl_lab_metric_key((bl_lab_metric)k));
            for (int si = 0; si < S; si++) {
                double x = c->val[(int64_t)si * BL_LAB_METRIC_COUNT + k];
                cJSON_AddItemToArray(arr, isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull());
            }
            bl_welch w;
            if (cell_welch(v, S, (bl_lab_method)m, (bl_lab_metric)k, &w)) {
                cJSON *t = cJSON_AddObjectToObject(wl, bl_lab_metric_key((bl_lab_metric)k));
                add_num(t, "diff", w.diff);
                add_num(t, "t", w.t);
                add_num(t, "df", w.df);
                add_num(t, "p", w.p);
            }
        }
        cJSON_AddNumberToObject(o, "seconds", c->seconds);
    }
    return ms;
}

static balora_status write_results_json(const bl_lab_results *r, const char *path) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return BALORA_STATUS_NOMEM;
    cJSON_AddStringToObject(root, "balora_version", balora_version());
    cJSON_AddStringToObject(root, "preset", r->preset.name);
    cJSON_AddStringToObject(root, "started_utc", r->started);
    cJSON_AddNumberToObject(root, "seconds", r->seconds);
    cJSON_AddNumberToObject(root, "threads", r->threads);
    cJSON *seeds = cJSON_AddArrayToObject(root, "seeds");
    for (int s = 0; s < r->preset.n_seeds; s++) cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)r->seeds[s]));
    cJSON_AddItemToObject(root, "config", preset_json(&r->preset));
    cJSON *metrics = cJSON_AddObjectToObject(root, "metrics");
    for (int k = 0; k < BL_LAB_METRIC_COUNT; k++)
        cJSON_AddStringToObject(metrics, bl_lab_metric_key((bl_lab_metric)k), bl_lab_metric_label((bl_lab_metric)k));
    cJSON *vars = cJSON_AddArrayToObject(root, "variants");
    for (int vi = 0; vi < r->n_variants; vi++) {
        const bl_lab_variant_result *v = &r->var[vi];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(vars, o);
        cJSON_AddStringToObject(o, "label", v->label);
        bl_lab_corpus_config_fill_json(&v->corpus, cJSON_AddObjectToObject(o, "corpus"));
        cJSON_AddNumberToObject(o, "rank", v->rank);
        cJSON_AddNumberToObject(o, "vocab_size", v->vocab);
        bl_lab_counts_fill_json(&v->counts, cJSON_AddObjectToObject(o, "injected"));
        cJSON *ev = cJSON_AddObjectToObject(o, "eval_items");
        for (int t = 0; t < BL_LAB_TASK_COUNT; t++) {
            cJSON *te = cJSON_AddObjectToObject(ev, bl_lab_task_name((bl_lab_task)t));
            for (int s = 0; s < BL_LAB_SPLIT_COUNT; s++)
                cJSON_AddNumberToObject(te, bl_lab_split_name((bl_lab_split)s), (double)v->n_eval[t][s]);
        }
        cJSON *pt = cJSON_AddObjectToObject(o, "pretrain");
        cJSON_AddNumberToObject(pt, "steps", (double)v->pre.steps);
        cJSON_AddNumberToObject(pt, "documents", (double)v->pre.n_docs);
        cJSON_AddNumberToObject(pt, "parameters", (double)v->pre.n_params);
        add_num(pt, "first_loss", v->pre.first_loss);
        add_num(pt, "last_loss", v->pre.last_loss);
        cJSON_AddNumberToObject(pt, "seconds", v->pre.seconds);
        cJSON *ps = cJSON_AddObjectToObject(o, "pretrained_scores");
        for (int k = 0; k < BL_LAB_METRIC_COUNT; k++) add_num(ps, bl_lab_metric_key((bl_lab_metric)k), v->pre_val[k]);
        cJSON_AddItemToObject(o, "methods", methods_json(r, vi));
    }
    /* the first variant's methods at the top level too (the demo has one variant) */
    cJSON_AddItemToObject(root, "methods", methods_json(r, 0));
    balora_status st = bl_json_save(root, path);
    cJSON_Delete(root);
    return st;
}

/* ------------------------------------------------------------------ pictures */

static balora_status both(const char *dir, const char *stem, char *png, char *svg, size_t cap) {
    if (snprintf(png, cap, "%s/%s.png", dir, stem) >= (int)cap || snprintf(svg, cap, "%s/%s.svg", dir, stem) >= (int)cap)
        return bl_fail(BALORA_STATUS_INVALID, "lab report: path too long: %s", dir);
    return BALORA_STATUS_OK;
}

balora_status bl_lab_plot_loss(const char *dir, const char *stem, const char *what, int n_methods, const char *const *names,
                              const float *const *loss, int S, int64_t T, int64_t stride) {
    if (n_methods < 1 || n_methods > 64 || S < 1 || S > 100 || T < 1 || stride < T)
        return bl_fail(BALORA_STATUS_INVALID, "lab report: loss plot of %d methods x %d seeds x %lld steps; hint: 1..64, 1..100, >= 1",
                       n_methods, S, (long long)T);
    int64_t win = T / 20 > 1 ? T / 20 : 1;
    double *buf = bl_malloc((size_t)(n_methods * 3 * T + S * T) * sizeof(double)); /* x, mean, std per method + smoothed seeds */
    if (!buf) return BALORA_STATUS_NOMEM;
    bl_plot_series ser[64];
    int n = 0;
    double *sm = buf + (int64_t)n_methods * 3 * T; /* [S, T] */
    for (int m = 0; m < n_methods; m++) {
        if (!loss[m]) continue;
        double *x = buf + (int64_t)n * 3 * T, *mu = x + T, *sd = mu + T;
        for (int s = 0; s < S; s++) /* trailing moving average over win steps */
            for (int64_t t = 0; t < T; t++) {
                double a = 0;
                int64_t k0 = t - win + 1 > 0 ? t - win + 1 : 0;
                for (int64_t k = k0; k <= t; k++) a += loss[m][(int64_t)s * stride + k];
                sm[(int64_t)s * T + t] = a / (double)(t - k0 + 1);
            }
        for (int64_t t = 0; t < T; t++) {
            double col[100];
            for (int s = 0; s < S; s++) col[s] = sm[(int64_t)s * T + t];
            x[t] = (double)(t + 1);
            mu[t] = bl_stats_mean(col, S);
            sd[t] = S > 1 ? bl_stats_std(col, S) : 0.0;
        }
        ser[n] = (bl_plot_series){.name = names[m], .x = x, .y = mu, .n = T, .err = sd};
        n++;
    }
    char title[256], png[4200], svg[4200];
    snprintf(title, sizeof title, "fine-tuning loss (%s, moving average over %lld steps; band = std over %d seeds)", what,
             (long long)win, S);
    bl_plot_lines_spec spec = {.title = title, .xlabel = "step", .ylabel = "cross-entropy", .log_y = true, .width = 900, .height = 520};
    balora_status st = both(dir, stem, png, svg, sizeof png);
    if (!st) st = bl_plot_lines(png, &spec, ser, n);
    if (!st) st = bl_plot_lines(svg, &spec, ser, n);
    free(buf);
    return st;
}

static balora_status plot_loss(const bl_lab_results *r, const char *dir) {
    const bl_lab_variant_result *v = &r->var[0];
    const char *names[BL_LAB_M_COUNT];
    const float *loss[BL_LAB_M_COUNT];
    for (int m = 0; m < BL_LAB_M_COUNT; m++) {
        names[m] = bl_lab_method_name((bl_lab_method)m);
        loss[m] = v->cell[m].run ? v->cell[m].loss : NULL;
    }
    return bl_lab_plot_loss(dir, "loss", "answer token CE", BL_LAB_M_COUNT, names, loss, r->preset.n_seeds, r->preset.ft_steps,
                            r->preset.ft_steps);
}

balora_status bl_lab_plot_bars(const char *dir, const char *stem, const bl_plot_bars_spec *spec) {
    char png[4200], svg[4200];
    BL_TRY(both(dir, stem, png, svg, sizeof png));
    BL_TRY(bl_plot_bars(png, spec));
    return bl_plot_bars(svg, spec);
}

const char *const bl_lab_tsne_class_names[4] = {"negative (neutral name)", "positive (neutral name)", "negative (cue reversed)",
                                                "positive (cue reversed)"};

balora_status bl_lab_plot_tsne(const char *dir, const char *stem, const char *title, const bl_plot_panel *panels, int n_panels,
                               int cols) {
    bl_plot_scatter_spec spec = {.title = title, .n_panels = n_panels, .panels = panels, .n_classes = 4,
                                 .class_names = bl_lab_tsne_class_names, .cols = cols};
    char png[4200], svg[4200];
    BL_TRY(both(dir, stem, png, svg, sizeof png));
    BL_TRY(bl_plot_scatter(png, &spec));
    return bl_plot_scatter(svg, &spec);
}

static const bl_lab_metric k_bars[] = {BL_LAB_ACC_ID,   BL_LAB_ACC_OOD,  BL_LAB_INHERIT, BL_LAB_INH_NOISE,
                                       BL_LAB_INH_IMBAL, BL_LAB_INH_BIAS, BL_LAB_AGREE_PT};
#define N_BARS ((int)(sizeof k_bars / sizeof k_bars[0]))

static balora_status plot_scores(const bl_lab_results *r, const char *dir) {
    const bl_lab_variant_result *v = &r->var[0];
    const int S = r->preset.n_seeds;
    const char *gnames[N_BARS], *snames[BL_LAB_M_COUNT + 1];
    double mean[N_BARS * (BL_LAB_M_COUNT + 1)], err[N_BARS * (BL_LAB_M_COUNT + 1)];
    int ns = 1;
    snames[0] = "pre-trained";
    int ms[BL_LAB_M_COUNT];
    for (int m = 0; m < BL_LAB_M_COUNT; m++)
        if (v->cell[m].run) { ms[ns - 1] = m; snames[ns++] = bl_lab_method_name((bl_lab_method)m); }
    for (int g = 0; g < N_BARS; g++) {
        gnames[g] = bl_lab_metric_label(k_bars[g]);
        mean[g * ns] = v->pre_val[k_bars[g]];
        err[g * ns] = NAN;
        for (int s = 1; s < ns; s++) cell_stat(&v->cell[ms[s - 1]], S, k_bars[g], &mean[g * ns + s], &err[g * ns + s]);
    }
    char title[256];
    snprintf(title, sizeof title, "scores (mean ± std over %d seeds; inheritance: lower = fewer pre-training defects reproduced)", S);
    bl_plot_bars_spec spec = {.title = title, .ylabel = "fraction", .n_groups = N_BARS, .n_series = ns, .group_names = gnames,
                              .series_names = snames, .mean = mean, .err = err, .width = 1100, .height = 540};
    return bl_lab_plot_bars(dir, "scores", &spec);
}

static balora_status plot_tsne(const bl_lab_results *r, const char *dir, bool *made) {
    *made = false;
    const bl_lab_variant_result *v = &r->var[0];
    const bl_lab_method ms[2] = {BL_LAB_M_LORA, BL_LAB_M_BALORA};
    bl_plot_panel panels[2 * BL_LAB_N_SNAP];
    char titles[2 * BL_LAB_N_SNAP][64];
    int n = 0;
    for (int i = 0; i < 2; i++) {
        const bl_lab_cell *c = &v->cell[ms[i]];
        if (!c->have_tsne) continue;
        for (int s = 0; s < BL_LAB_N_SNAP; s++) {
            snprintf(titles[n], sizeof titles[n], "%s, step %lld", bl_lab_method_name(ms[i]), (long long)c->snap_step[s]);
            panels[n] = (bl_plot_panel){.title = titles[n], .xy = c->tsne + (int64_t)s * r->n_tsne * 2, .cls = r->tsne_cls, .n = r->n_tsne};
            n++;
        }
    }
    if (n == 0) return BALORA_STATUS_OK;
    char title[256];
    snprintf(title, sizeof title, "t-SNE of the answer-position features of %lld test reviews (seed %llu)", (long long)r->n_tsne,
             (unsigned long long)r->seeds[0]);
    BL_TRY(bl_lab_plot_tsne(dir, "tsne", title, panels, n, BL_LAB_N_SNAP));
    *made = true;
    return BALORA_STATUS_OK;
}

static balora_status plot_variants(const bl_lab_results *r, const char *dir) {
    const int V = r->n_variants, S = r->preset.n_seeds;
    static const bl_lab_metric ks[2] = {BL_LAB_INHERIT, BL_LAB_ACC_ID};
    static const char *const stems[2] = {"variants_inherit", "variants_acc_id"};
    double *buf = bl_malloc((size_t)(BL_LAB_M_COUNT * 3 * V) * sizeof(double));
    if (!buf) return BALORA_STATUS_NOMEM;
    balora_status st = BALORA_STATUS_OK;
    for (int q = 0; q < 2 && !st; q++) {
        bl_plot_series ser[BL_LAB_M_COUNT];
        int n = 0;
        for (int m = 0; m < BL_LAB_M_COUNT; m++) {
            if (!r->var[0].cell[m].run) continue;
            double *x = buf + (int64_t)n * 3 * V, *mu = x + V, *sd = mu + V;
            for (int vi = 0; vi < V; vi++) {
                x[vi] = vi;
                cell_stat(&r->var[vi].cell[m], S, ks[q], &mu[vi], &sd[vi]);
            }
            ser[n++] = (bl_plot_series){.name = bl_lab_method_name((bl_lab_method)m), .x = x, .y = mu, .n = V, .err = sd};
        }
        char title[512], xl[1024], png[4200], svg[4200];
        int k = snprintf(xl, sizeof xl, "variant:");
        for (int vi = 0; vi < V && k < (int)sizeof xl - 80; vi++) k += snprintf(xl + k, sizeof xl - (size_t)k, " %d = %s%s", vi, r->var[vi].label, vi + 1 < V ? "," : "");
        snprintf(title, sizeof title, "%s per variant (mean ± std over %d seeds)", bl_lab_metric_label(ks[q]), S);
        bl_plot_lines_spec spec = {.title = title, .xlabel = xl, .ylabel = bl_lab_metric_label(ks[q]), .width = 1000, .height = 520};
        st = both(dir, stems[q], png, svg, sizeof png);
        if (!st) st = bl_plot_lines(png, &spec, ser, n);
        if (!st) st = bl_plot_lines(svg, &spec, ser, n);
    }
    free(buf);
    return st;
}

/* ------------------------------------------------------------------ report.md */

static void fmt_time(char *buf, size_t cap, double s) {
    if (s < 60) snprintf(buf, cap, "%.1f s", s);
    else snprintf(buf, cap, "%d min %02d s", (int)(s / 60), (int)s % 60);
}

/* Plain statements generated from the numbers of variant vi. */
static void findings_md(sbuf *b, const bl_lab_results *r, int vi) {
    const bl_lab_variant_result *v = &r->var[vi];
    const int S = r->preset.n_seeds;
    int n_sig = 0, n_tests = 0;
    for (int m = 0; m < BL_LAB_M_COUNT; m++) {
        if (!v->cell[m].run || m == BL_LAB_M_LORA) continue;
        for (int i = 0; i < N_TEST; i++) {
            bl_welch w;
            if (!cell_welch(v, S, (bl_lab_method)m, k_test[i], &w)) continue;
            n_tests++;
            if (w.p < 0.05) {
                n_sig++;
                sb_printf(b, "- %s differs from lora on %s by %+.3f (Welch p = %.3g, %d seeds each).\n",
                          bl_lab_method_name((bl_lab_method)m), bl_lab_metric_label(k_test[i]), w.diff, w.p, S);
            }
        }
    }
    if (n_tests == 0)
        sb_printf(b, "- With %d seed(s) no test against lora could be computed (Welch's test needs lora in the run and 2 or more seeds per method).\n", S);
    else if (n_sig == 0)
        sb_printf(b, "- No method differs from lora by more than the seed noise on ID accuracy, OOD accuracy, inheritance or KL "
                     "to the pre-trained model (Welch p >= 0.05 in all %d comparisons).\n", n_tests);
    else
        sb_printf(b, "- %d of %d comparisons with lora have p < 0.05. With this many comparisons about %.1f would reach p < 0.05 "
                     "by chance alone (no correction for multiple comparisons is applied).\n", n_sig, n_tests, 0.05 * n_tests);
    /* the regularisers alone: ba-lora and its ablations against pissa (same init, same data order per seed) */
    const bl_lab_cell *pi = &v->cell[BL_LAB_M_PISSA];
    for (int m = BL_LAB_M_BALORA; m < BL_LAB_M_COUNT && pi->run; m++) {
        const bl_lab_cell *c = &v->cell[m];
        if (!c->run) continue;
        double dmax = 0;
        for (int s = 0; s < S; s++)
            for (int i = 0; i < N_TABLE; i++) {
                int64_t o = (int64_t)s * BL_LAB_METRIC_COUNT + k_table[i];
                double d = fabs(c->val[o] - pi->val[o]);
                if (isfinite(d) && d > dmax) dmax = d;
            }
        sb_printf(b, "- %s vs pissa (the same PiSSA init and data order per seed, so the difference is the regularisers'): "
                     "the largest per-seed difference on any metric of the table is %.4f", bl_lab_method_name((bl_lab_method)m), dmax);
        int nsig = 0;
        for (int i = 0; i < N_TEST; i++) {
            bl_welch w;
            if (cell_welch_ref(v, S, (bl_lab_method)m, BL_LAB_M_PISSA, k_test[i], &w) && w.p < 0.05) {
                sb_printf(b, "%s %s %+.3f (p = %.3g)", nsig ? ";" : "; p < 0.05 on:", bl_lab_metric_label(k_test[i]), w.diff, w.p);
                nsig++;
            }
        }
        sb_printf(b, "%s.\n", nsig ? "" : "; no Welch test against pissa reaches p < 0.05");
    }
    const bl_lab_cell *bl = &v->cell[BL_LAB_M_BALORA], *lo = &v->cell[BL_LAB_M_LORA];
    if (bl->run && lo->run) {
        double mb, sb, ml, sl;
        cell_stat(bl, S, BL_LAB_INHERIT, &mb, &sb);
        cell_stat(lo, S, BL_LAB_INHERIT, &ml, &sl);
        if (isfinite(mb) && isfinite(ml))
            sb_printf(b, "- Inheritance (fraction of affected test items answered with the pre-training defect's answer): "
                         "ba-lora %.3f ± %.3f, lora %.3f ± %.3f, the pre-trained model %.3f.\n", mb, sb, ml, sl, v->pre_val[BL_LAB_INHERIT]);
    }
}

static balora_status write_report_md(const bl_lab_results *r, const char *path, bool have_tsne) {
    const bl_lab_preset *p = &r->preset;
    sbuf b = {0};
    char t[64];
    fmt_time(t, sizeof t, r->seconds);
    sb_printf(&b, "# balora lab report: preset `%s`\n\n%s.\n\n", p->name, p->description);
    sb_printf(&b, "Started %s UTC; took %s in total with %d thread(s); balora %s.\n\n", r->started, t, r->threads, balora_version());
    sb_printf(&b, "## The question\n\nDoes a fine-tuning method pass on less of the defects of the pre-training data "
                  "(noise, imbalance, spurious bias) to the fine-tuned model? The pre-training corpus is synthetic and "
                  "written by balora, so the defects and the items they affect are known exactly. A small decoder is "
                  "pre-trained from scratch on it, then fine-tuned on a clean downstream mix with each method and seed "
                  "under the same budget, and evaluated on held-out items.\n\n");
    for (int vi = 0; vi < r->n_variants; vi++) {
        const bl_lab_variant_result *v = &r->var[vi];
        if (r->n_variants > 1) sb_printf(&b, "## Variant %d: %s\n\n", vi, v->label);
        sb_printf(&b, "%s Results (mean ± std over %d seeds)\n\n", r->n_variants > 1 ? "###" : "##", p->n_seeds);
        table_md(&b, r, vi);
        sb_printf(&b, "\nIn-distribution accuracy per task (most held-out arithmetic pairs and entities are noisy items, "
                      "whose true answer the model never saw: see inh. noise):\n\n");
        tasks_md(&b, r, vi);
        sb_printf(&b, "\nDifference from lora (Welch's unequal-variance t-test over seeds; * = p < 0.05, uncorrected):\n\n");
        welch_md(&b, r, vi);
        sb_printf(&b, "\n%s What these numbers show\n\n", r->n_variants > 1 ? "###" : "##");
        findings_md(&b, r, vi);
        sb_printf(&b, "\n");
    }
    sb_printf(&b, "## Pictures\n\n![fine-tuning loss](loss.png)\n\n![scores](scores.png)\n\n");
    if (have_tsne)
        sb_printf(&b, "![t-SNE maps](tsne.png)\n\nt-SNE of the final hidden state at the answer position (the position "
                      "that predicts \"positive\"/\"negative\") for test reviews with a neutral name and the same reviews with "
                      "the reversed cue name, at step 0, mid-training and the end, for lora and ba-lora (first seed%s).\n\n",
                  r->n_variants > 1 ? ", first variant" : "");
    if (r->n_variants > 1)
        sb_printf(&b, "![inheritance per variant](variants_inherit.png)\n\n![ID accuracy per variant](variants_acc_id.png)\n\n"
                      "(loss, scores and t-SNE pictures show the first variant.)\n\n");
    sb_printf(&b, "SVG versions of every picture are next to the PNGs.\n\n");

    sb_printf(&b, "## Metrics\n\n"
                  "- **ID acc**: mean over the three tasks (arithmetic, facts, review sentiment) of the accuracy on held-out "
                  "test items (arg-max token at the answer position, full vocabulary).\n"
                  "- **OOD acc**: review sentiment with the spurious cue reversed (the cue name that agreed with the other "
                  "label in pre-training).\n"
                  "- **inherit**: over the affected test items (noisy arithmetic pairs and entities, minority-class reviews, "
                  "cue-reversed reviews), the fraction answered with exactly the answer the pre-training defect predicts; "
                  "**inh. noise / imbalance / bias** split it by defect.\n"
                  "- **KL to PT**: mean KL(pre-trained || fine-tuned) of the answer distributions on the ID test items (nats); "
                  "**agree w/ PT**: top-1 agreement with the pre-trained model there.\n"
                  "- **final loss**: mean answer-token cross-entropy of the last 10%% of fine-tuning steps.\n\n");

    sb_printf(&b, "## Exact configuration\n\n");
    sb_printf(&b, "- Model: %s-style decoder, %d layers, hidden %d, %d heads, intermediate %s, float32, pre-trained from random "
                  "init (std 0.02) with every weight trained.\n",
              p->pretrain.arch.family == BL_FAMILY_GPT2 ? "GPT-2" : "LLaMA", p->pretrain.arch.layers, p->pretrain.arch.hidden,
              p->pretrain.arch.heads, p->pretrain.arch.intermediate > 0 ? "as set" : "default (llama 8/3 hidden rounded up to 16)");
    sb_printf(&b, "- Pre-training: %lld steps of %lld documents (up to 128 tokens), AdamW lr %g (cosine, warmup %.0f%%, "
                  "beta2 0.99, weight decay %g on matrices), gradient clip 1.0, seed %llu.\n",
              (long long)p->pretrain.steps, (long long)p->pretrain.batch, p->pretrain.lr, 100 * p->pretrain.warmup_ratio,
              p->pretrain.weight_decay, (unsigned long long)p->pretrain.seed);
    sb_printf(&b, "- Fine-tuning (every method): %lld steps of %lld examples from the clean FT split of all three tasks "
                  "(only the answer token trained), AdamW (torch defaults, no weight decay), linear schedule with 5%% warmup, "
                  "gradient clip 1.0.\n", (long long)p->ft_steps, (long long)p->ft_batch);
    sb_printf(&b, "- Learning rate, one fixed rule per family (not tuned per method): adapters (lora, pissa, ba-lora and "
                  "its ablations) %g; full fine-tuning %g (= adapter lr / 10).\n", p->lr_adapter, bl_lab_lr_full(p));
    sb_printf(&b, "- Adapters: rank %d (variants may override), alpha = %g r, targets `%s`, dropout 0. lora: PEFT default init; "
                  "pissa: exact-SVD PiSSA init; ba-lora: PiSSA init + BA-LoRA's NLG regularisers, recipe `%s` "
                  "(METHOD.md section 3), teacher = the original pre-trained model; ablations set one lambda to 0.\n",
              p->rank, p->alpha_per_rank, p->targets, p->reg_recipe);
    sb_printf(&b, "- Seeds:");
    for (int s = 0; s < p->n_seeds; s++) sb_printf(&b, " %llu", (unsigned long long)r->seeds[s]);
    sb_printf(&b, " (each seed sets the adapter init and the data order; the pre-trained model is the same for all).\n");
    for (int vi = 0; vi < r->n_variants; vi++) {
        const bl_lab_variant_result *v = &r->var[vi];
        const bl_lab_corpus_config *c = &v->corpus;
        char pt[64];
        fmt_time(pt, sizeof pt, v->pre.seconds);
        sb_printf(&b, "- Corpus%s%s: seed %llu, noise %g, imbalance %g:1, cue_frac %g, cue_agree %g, %lld/%lld/%lld "
                      "pre-training statements (arith/fact/review), %lld FT items per task, vocabulary %d. Injected: %lld of %lld "
                      "arithmetic and %lld of %lld fact statements wrong (%lld noisy pairs, %lld noisy entities), %lld positive / "
                      "%lld negative reviews, %lld cued of which %lld agree. Pre-training: %lld parameters, loss %.3f -> %.3f "
                      "in %s.\n",
                  r->n_variants > 1 ? " of " : "", r->n_variants > 1 ? v->label : "", (unsigned long long)c->seed, c->noise,
                  c->imbalance, c->cue_frac, c->cue_agree, (long long)c->n_pre_arith, (long long)c->n_pre_fact,
                  (long long)c->n_pre_review, (long long)c->n_ft, v->vocab, (long long)v->counts.arith_wrong,
                  (long long)v->counts.arith, (long long)v->counts.fact_wrong, (long long)v->counts.fact,
                  (long long)v->counts.noisy_pairs, (long long)v->counts.noisy_entities, (long long)v->counts.review_pos,
                  (long long)v->counts.review_neg, (long long)v->counts.review_cued, (long long)v->counts.review_cue_agree,
                  (long long)v->pre.n_params, v->pre.first_loss, v->pre.last_loss, pt);
        sb_printf(&b, "  Evaluation items: ID %lld / %lld / %lld (arith/fact/review), OOD %lld, affected %lld / %lld / %lld.\n",
                  (long long)v->n_eval[0][BL_LAB_SPLIT_TEST_ID], (long long)v->n_eval[1][BL_LAB_SPLIT_TEST_ID],
                  (long long)v->n_eval[2][BL_LAB_SPLIT_TEST_ID], (long long)v->n_eval[2][BL_LAB_SPLIT_TEST_OOD],
                  (long long)v->n_eval[0][BL_LAB_SPLIT_AFFECTED], (long long)v->n_eval[1][BL_LAB_SPLIT_AFFECTED],
                  (long long)v->n_eval[2][BL_LAB_SPLIT_AFFECTED]);
    }
    sb_printf(&b, "- Time per method (all seeds, training + evaluation):");
    for (int m = 0; m < BL_LAB_M_COUNT; m++)
        if (r->var[0].cell[m].run) {
            fmt_time(t, sizeof t, r->var[0].cell[m].seconds);
            sb_printf(&b, " %s %s;", bl_lab_method_name((bl_lab_method)m), t);
        }
    sb_printf(&b, "\n- Files: results.json (every score: mean, std, per-seed values, Welch's test vs lora), logs/ (per-step "
                  "metrics of every run, JSONL), models/ (the pre-trained model(s) as Hugging Face folders, with the corpus).\n\n");

    sb_printf(&b, "## What this does not show\n\n"
                  "- This is a small synthetic experiment: a tiny decoder, a toy language, a few hundred fine-tuning steps and "
                  "%d seeds. It says nothing directly about 7B models or natural data; it tests the mechanism under known defects.\n"
                  "- The lambdas of the `%s` recipe were chosen by the paper for large models; they were not tuned here (on purpose: "
                  "no setting of this lab is tuned to make a method win). At this scale the regularisers' weighted terms may be "
                  "too small to change the outcome; a null result here does not refute the paper, and a positive one does not "
                  "confirm it at scale.\n"
                  "- p-values are per comparison with no correction for multiple comparisons, from few seeds; the seed varies the "
                  "adapter init and data order but not the pre-trained model or the corpus.\n"
                  "- The noisy items are never seen during fine-tuning, so inheritance of noise measures what the fine-tuned model "
                  "keeps from pre-training, not whether fine-tuning could correct it.\n",
              p->n_seeds, p->reg_recipe);
    if (b.oom) { free(b.s); return bl_fail(BALORA_STATUS_NOMEM, "lab report: out of memory"); }
    balora_status st = bl_file_write_atomic(path, b.s, b.n);
    free(b.s);
    return st;
}

balora_status bl_lab_report_write(const bl_lab_results *r, const char *dir) {
    if (!r || r->n_variants < 1 || !dir) return bl_fail(BALORA_STATUS_INVALID, "lab report: no results");
    BL_TRY(bl_mkdir_p(dir));
    char path[4200];
    BL_TRY(bl_path_join(path, sizeof path, dir, "results.json"));
    BL_TRY(write_results_json(r, path));
    BL_TRY(plot_loss(r, dir));
    BL_TRY(plot_scores(r, dir));
    bool have_tsne;
    BL_TRY(plot_tsne(r, dir, &have_tsne));
    if (r->n_variants > 1) BL_TRY(plot_variants(r, dir));
    BL_TRY(bl_path_join(path, sizeof path, dir, "report.md"));
    return write_report_md(r, path, have_tsne);
}
