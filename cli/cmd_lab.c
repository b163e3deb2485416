/* balora lab: run a catastrophic-inheritance lab preset (src/lab/run.h) and write its report
 * folder (src/lab/report.h).
 *   balora lab --preset NAME [--out DIR] [--seeds N] [--threads N]
 *   balora lab --list
 * lab_cli_run is shared with balora demo (cmd_demo.c). */
#include "args.h"
#include "cli.h"
#include "lab/nlu.h"
#include "lab/report.h"
#include "lab/run.h"
#include "train/progress.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int lab_cli_run(const char *cmd, const bl_lab_preset *p, const char *out, int64_t seeds, int64_t threads, const char *methods);

typedef struct lab_ui { bool tty; int width; } lab_ui;

static void on_progress(const bl_lab_progress *p, void *user) {
    lab_ui *ui = user;
    char el[32], eta[32], line[512];
    bl_format_duration(p->elapsed_s, el, sizeof el);
    if (p->eta_s >= 0 && p->eta_lower_bound) {
        eta[0] = '>';
        bl_format_duration(p->eta_s, eta + 1, sizeof eta - 1);
    } else if (p->eta_s >= 0) bl_format_duration(p->eta_s, eta, sizeof eta);
    else snprintf(eta, sizeof eta, "?");
    if (p->run_done)
        snprintf(line, sizeof line, "[run %lld/%lld] %s done | loss %.4f | %s elapsed | ETA %s", (long long)p->run,
                 (long long)p->n_runs, p->what, p->loss, el, eta);
    else
        snprintf(line, sizeof line, "[run %lld/%lld] %s | step %lld/%lld | loss %.4f | %s elapsed | ETA %s", (long long)p->run,
                 (long long)p->n_runs, p->what, (long long)p->step, (long long)p->total_steps, p->loss, el, eta);
    if (ui->tty) {
        int n = (int)strlen(line);
        fprintf(stderr, "\r%s%*s", line, ui->width > n ? ui->width - n : 0, "");
        ui->width = n;
        if (p->run_done) { fputc('\n', stderr); ui->width = 0; }
    } else if (p->run_done || (p->total_steps >= 500 && p->step % (p->total_steps / 10) == 0)) {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

int lab_cli_run(const char *cmd, const bl_lab_preset *p, const char *out, int64_t seeds, int64_t threads, const char *methods) {
    uint32_t mask = 0;
    if (methods && bl_lab_methods_parse(methods, &mask)) {
        fprintf(stderr, "balora %s: error: --methods: %s\n", cmd, balora_last_error());
        return 2;
    }
    if (seeds < 0 || seeds > 100) {
        fprintf(stderr, "balora %s: error: --seeds %lld: need 1..100 (0 = the preset's %d)\n", cmd, (long long)seeds, p->n_seeds);
        return 2;
    }
    if (threads < 0 || threads > 1024) {
        fprintf(stderr, "balora %s: error: --threads %lld: need 0..1024\n", cmd, (long long)threads);
        return 2;
    }
    balora_threads_set((int)threads);
    int n_var = p->n_variants > 0 ? p->n_variants : 1;
    fprintf(stderr, "balora %s: preset '%s': %s\n", cmd, p->name, p->description);
    fprintf(stderr, "balora %s: %d variant(s), %d seed(s), %d thread(s); report folder %s\n", cmd, n_var,
            seeds > 0 ? (int)seeds : p->n_seeds, balora_threads_get(), out);
    lab_ui ui = {.tty = isatty(fileno(stderr)) != 0};
    bl_lab_run_opts o = {.out_dir = out, .n_seeds = (int32_t)seeds, .methods = mask, .progress = on_progress, .user = &ui};
    bl_lab_results r;
    balora_status st = bl_lab_run(p, &o, &r);
    if (st) return cli_fail(st);
    st = bl_lab_report_write(&r, out);
    if (st) { bl_lab_results_free(&r); return cli_fail(st); }
    for (int v = 0; v < r.n_variants; v++) {
        char *t = NULL;
        if ((st = bl_lab_report_table(&r, v, &t))) break;
        printf("\n%s%s(mean ± std over %d seeds)\n%s", r.n_variants > 1 ? r.var[v].label : "", r.n_variants > 1 ? " " : "",
               r.preset.n_seeds, t);
        free(t);
    }
    char el[32];
    bl_format_duration(r.seconds, el, sizeof el);
    printf("\ntook %s; report: %s/report.md (results.json, pictures and logs next to it)\n", el, out);
    bl_lab_results_free(&r);
    return st ? cli_fail(st) : 0;
}

/* ---- the encoder (NLU) arm: presets of src/lab/nlu.h ("nlu", "nlu-mini") ---- */

static void on_nlu_progress(const char *line, void *user) {
    (void)user;
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

/* Each fine-tuning run loads the pre-trained BertForMaskedLM folder, whose missing pooler and classifier
 * are created (logged at BL_INFO every time): shown with --verbose only. */
static void nlu_log(int level, const char *msg, void *user) {
    if (level == BL_INFO && !cli_verbose) return;
    cli_log(level == BL_INFO ? BL_VERBOSE : level, msg, user);
}

static int lab_nlu_cli_run(const bl_lab_nlu_preset *p, const char *out, int64_t seeds, int64_t threads) {
    if (seeds < 0 || seeds > BL_NLU_MAX_SEEDS) {
        fprintf(stderr, "balora lab: error: --seeds %lld: need 1..%d (0 = the preset's %d)\n", (long long)seeds, BL_NLU_MAX_SEEDS,
                p->n_seeds);
        return 2;
    }
    if (threads < 0 || threads > 1024) {
        fprintf(stderr, "balora lab: error: --threads %lld: need 0..1024\n", (long long)threads);
        return 2;
    }
    balora_threads_set((int)threads);
    fprintf(stderr, "balora lab: preset '%s': %s\nbalora lab: report folder %s\n", p->name, p->description, out);
    bl_lab_nlu_results *r = calloc(1, sizeof *r);
    if (!r) return cli_fail(BALORA_STATUS_NOMEM);
    balora_log_set(nlu_log, NULL);
    balora_status st = bl_lab_nlu_run(p, out, (int32_t)seeds, on_nlu_progress, NULL, r);
    balora_log_set(cli_log, NULL);
    if (!st) st = bl_lab_nlu_report(r, out);
    char *t = NULL;
    if (!st) st = bl_lab_nlu_table(r, &t);
    if (!st) {
        char el[32];
        bl_format_duration(r->seconds, el, sizeof el);
        printf("\n(mean ± std over %d seeds; * = Welch p < 0.05 against LoRA)\n%s\ntook %s; report: %s/nlu_report.md "
               "(nlu_results.json and the pre-trained encoder nlu_model/ next to it)\n", r->preset.n_seeds, t, el, out);
    }
    free(t);
    free(r);
    return st ? cli_fail(st) : 0;
}

int cmd_lab(int argc, char **argv) {
    const char *preset = NULL, *out = NULL, *methods = NULL;
    int64_t seeds = 0, threads = 1;
    bool list = false;
    cli_opt opts[] = {
        {"preset", CLI_OPT_STR, &preset, "preset to run (see --list)"},
        {"list", CLI_OPT_FLAG, &list, "list the presets and exit"},
        {"out", CLI_OPT_STR, &out, "report folder (default ./balora-lab-PRESET)"},
        {"seeds", CLI_OPT_INT, &seeds, "seeds per method (0 = the preset's)"},
        {"methods", CLI_OPT_STR, &methods, "comma list instead of the preset's: full, lora, pissa, ba-lora, ba-lora-no-cr, ba-lora-no-dr, ba-lora-no-svdr, all"},
        {"threads", CLI_OPT_INT, &threads, "threads (0 = all cores; the lab's tiny models run fastest on 1)"},
    };
    int rc = cli_parse(argc, argv, "--preset NAME [--out DIR] [--seeds N] | --list", opts, (int)(sizeof opts / sizeof opts[0]),
                       NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    cli_catch_signals();
    if (list) {
        for (int i = 0; i < bl_lab_preset_count(); i++) {
            const bl_lab_preset *p = bl_lab_preset_at(i);
            int nm = 0;
            for (int m = 0; m < BL_LAB_M_COUNT; m++) nm += (p->methods >> m) & 1u;
            printf("%-11s %s [%d variant(s) x %d method(s) x %d seed(s), %lld fine-tuning steps]\n", p->name, p->description,
                   p->n_variants > 0 ? p->n_variants : 1, nm, p->n_seeds, (long long)p->ft_steps);
        }
        for (int i = 0; i < bl_lab_nlu_preset_count(); i++) {
            const bl_lab_nlu_preset *q = bl_lab_nlu_preset_at(i);
            printf("%-11s %s [4 method(s) x %d seed(s), %lld fine-tuning steps]\n", q->name, q->description, q->n_seeds,
                   (long long)q->ft_steps);
        }
        return 0;
    }
    if (!preset) {
        fprintf(stderr, "balora lab: error: --preset NAME is required; hint: balora lab --list\n");
        return 2;
    }
    const bl_lab_preset *p = bl_lab_preset_find(preset);
    const bl_lab_nlu_preset *np = p ? NULL : bl_lab_nlu_preset_find(preset);
    if (np) {
        if (methods) {
            fprintf(stderr, "balora lab: error: --methods: the encoder arm (preset %s) always runs full, lora, pissa and ba-lora\n", preset);
            return 2;
        }
        char ndef[256];
        if (!out) {
            snprintf(ndef, sizeof ndef, "balora-lab-%s", np->name);
            out = ndef;
        }
        return lab_nlu_cli_run(np, out, seeds, threads);
    }
    if (!p) {
        fprintf(stderr, "balora lab: error: --preset %s: unknown; hint: balora lab --list\n", preset);
        return 2;
    }
    char def[256];
    if (!out) {
        snprintf(def, sizeof def, "balora-lab-%s", p->name);
        out = def;
    }
    return lab_cli_run("lab", p, out, seeds, threads, methods);
}
