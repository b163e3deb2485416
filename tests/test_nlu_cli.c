/* balora train --task seq-cls and balora eval --task seq-cls --model end to end, through the CLI
 * binary: a tiny random BERT saved with bert-base-uncased's vocabulary learns an SST-2-format task
 * written here (label = whether "good" occurs) with LoRA, PiSSA and BA-LoRA; results.json records the
 * options, the data knobs' exact effect and dev metrics; the metrics log has one finite row per step
 * (BA-LoRA with its terms); `balora eval` of the saved adapter reproduces the dev accuracy in domain
 * and reports Adversarial GLUE's sst2 out of domain beside it; full fine-tuning writes a complete
 * model folder; a generic CSV with named columns and label words trains with --max-train /
 * --imbalance; --task seq-cls from a --config file takes its defaults; bad input fails with a clear
 * message and a non-zero exit. */
#include "harness.h"
#include "encoders/encoder.h"
#include "io/json.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *WORDS[] = {"the", "movie", "was", "a", "film", "story", "plot", "actor", "scene", "music",
                              "very", "quite", "really", "long", "funny", "dark", "new", "old"};

/* An SST-2 TSV (sentence<TAB>label) of n rows: label 1 iff the sentence holds "good". */
static void write_task(const char *path, int n, uint64_t seed) {
    bl_rng r;
    bl_rng_seed(&r, seed);
    size_t cap = (size_t)n * 128 + 64, o = 0;
    char *t = malloc(cap);
    o += (size_t)snprintf(t + o, cap - o, "sentence\tlabel\n");
    for (int i = 0; i < n; i++) {
        int len = 4 + (int)bl_rng_below(&r, 7), y = (int)bl_rng_below(&r, 2), at = (int)bl_rng_below(&r, (uint64_t)len);
        for (int k = 0; k < len; k++) {
            const char *wd = (y && k == at) ? "good" : WORDS[bl_rng_below(&r, sizeof WORDS / sizeof WORDS[0])];
            o += (size_t)snprintf(t + o, cap - o, "%s%s", k ? " " : "", wd);
        }
        o += (size_t)snprintf(t + o, cap - o, " \t%d\n", y);
    }
    CHECK_OK(bl_file_write_atomic(path, t, o));
    free(t);
}

static void write_text(const char *path, const char *text) { CHECK_OK(bl_file_write_atomic(path, text, strlen(text))); }

/* Runs `balora CMD ARGS`, stdout to out, stderr to err; returns the exit status. */
static int run_cli(const char *cmd_args, const char *out, const char *err) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", t_cli(), cmd_args, out, err);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool file_has(const char *path, const char *needle) {
    char *t;
    size_t n;
    if (bl_file_read(path, &t, &n)) return false;
    bool ok = strstr(t, needle) != NULL;
    free(t);
    return ok;
}

static void print_file(const char *path) {
    char *t;
    size_t n;
    if (bl_file_read(path, &t, &n)) return;
    fprintf(stderr, "%s: %.*s\n", path, (int)(n > 4000 ? 4000 : n), t);
    free(t);
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* A classification report: n examples, accuracy / MCC finite and in range, the confusion matrix
 * [2, 2] sums to n and its diagonal gives the accuracy. */
static void check_report(const char *what, const cJSON *r, double n) {
    CHECK(r != NULL, "%s: report present", what);
    if (!r) return;
    double acc = num(r, "accuracy"), mcc = num(r, "mcc"), f1 = num(r, "f1");
    CHECK(num(r, "n") == n, "%s: n %g (want %g)", what, num(r, "n"), n);
    CHECK(acc >= 0 && acc <= 1 && mcc >= -1 && mcc <= 1 && f1 >= 0 && f1 <= 1 && isfinite(num(r, "score")),
          "%s: accuracy %g, mcc %g, f1 %g, score %g", what, acc, mcc, f1, num(r, "score"));
    const cJSON *cm = cJSON_GetObjectItemCaseSensitive(r, "confusion_matrix");
    CHECK(cJSON_GetArraySize(cm) == 2, "%s: confusion matrix 2x2", what);
    double sum = 0, diag = 0;
    for (int t = 0; t < 2 && cJSON_GetArraySize(cm) == 2; t++)
        for (int p = 0; p < 2; p++) {
            double v = cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetArrayItem(cm, t), p));
            sum += v;
            if (t == p) diag += v;
        }
    CHECK(sum == n && fabs(diag / n - acc) < 1e-12, "%s: confusion matrix sums to %g (want %g), diagonal %g", what, sum, n, diag);
}

int main(void) {
    const char *shared = t_require_shared();
    const char *tmp = t_tmpdir();
    char mdir[700], train[700], dev[700], p[1200], out[700], err[700], args[6000], adv[900];
    snprintf(mdir, sizeof mdir, "%s/bert", tmp);
    snprintf(train, sizeof train, "%s/train.tsv", tmp);
    snprintf(dev, sizeof dev, "%s/dev.tsv", tmp);
    snprintf(out, sizeof out, "%s/stdout.txt", tmp);
    snprintf(err, sizeof err, "%s/stderr.txt", tmp);
    snprintf(adv, sizeof adv, "%s/data/advglue/dev_ann.json", shared);
    write_task(train, 256, 1);
    write_task(dev, 128, 2);
    bl_enc_config c;
    bl_enc_config_defaults(&c, BL_ENC_BERT);
    c.vocab_size = 30522; c.hidden = 32; c.n_head = 4; c.intermediate = 64; c.n_layer = 2; c.max_pos = 32; c.init_range = 0.2;
    bl_encoder m;
    CHECK_OK(bl_enc_init_random(&m, &c, 7));
    CHECK_OK(bl_enc_save(&m, mdir, false));
    bl_enc_free(&m);
    char *vocab;
    size_t vlen;
    snprintf(p, sizeof p, "%s/tokenizers/bert-base-uncased/vocab.txt", shared);
    CHECK_OK(bl_file_read(p, &vocab, &vlen));
    snprintf(p, sizeof p, "%s/vocab.txt", mdir);
    CHECK_OK(bl_file_write_atomic(p, vocab, vlen));
    free(vocab);
    if (t_failures) return t_finish();

    /* train each adapter method, then evaluate it in domain (dev) and out of domain (AdvGLUE sst2) */
    const char *methods[3] = {"lora", "pissa", "ba-lora"};
    for (int k = 0; k < 3; k++) {
        char run[800], log[900];
        snprintf(run, sizeof run, "%s/run_%s", tmp, methods[k]);
        snprintf(log, sizeof log, "%s/log_%s.%s", tmp, methods[k], k == 1 ? "csv" : "jsonl");
        snprintf(args, sizeof args, "train --task seq-cls --model '%s' --data '%s' --dev '%s' --glue-task sst2 --method %s --rank 4 "
                 "--alpha 8 --targets query,key,value,dense --lr 5e-3 --epochs 8 --max-len 16 --warmup-ratio 0.1 --threads 1 "
                 "--log '%s' --out '%s'%s%s", mdir, train, dev, methods[k], log, run,
                 k == 0 ? " --label-noise 0.1 --data-seed 3" : "",
                 k == 2 ? " --lambda1 0.01 --lambda2 0.01 --lambda3 0.01 --svd-k 1" : "");
        int rc = run_cli(args, out, err);
        CHECK(rc == 0, "train %s: exit %d", methods[k], rc);
        if (rc) { print_file(err); continue; }
        /* results.json: options, knobs, dev metrics */
        snprintf(p, sizeof p, "%s/results.json", run);
        cJSON *res = NULL;
        CHECK_OK(bl_json_load(p, &res));
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(res, "config"), *data = cJSON_GetObjectItemCaseSensitive(res, "data");
        const cJSON *dv = cJSON_GetObjectItemCaseSensitive(res, "dev");
        CHECK(!strcmp(str(res, "method"), methods[k]) && !strcmp(str(res, "task"), "sst2") && num(res, "steps") == 64,
              "%s: results method %s, task %s, steps %g", methods[k], str(res, "method"), str(res, "task"), num(res, "steps"));
        CHECK(!strcmp(str(cfg, "method"), methods[k]) && num(cfg, "rank") == 4 && num(cfg, "lr") == 5e-3 &&
              num(cfg, "label-noise") == (k == 0 ? 0.1 : 0) && !strcmp(str(cfg, "task"), "seq-cls"), "%s: options recorded", methods[k]);
        /* exactly llround(0.1 * 256) = 26 labels flipped, with its seed */
        CHECK(num(data, "n_noisy") == (k == 0 ? 26 : 0) && num(data, "label_noise") == (k == 0 ? 0.1 : 0) &&
              !strcmp(str(data, "seed"), k == 0 ? "3" : "42"), "%s: n_noisy %g, label_noise %g, seed %s", methods[k], num(data, "n_noisy"),
              num(data, "label_noise"), str(data, "seed"));
        CHECK(!cJSON_GetObjectItemCaseSensitive(cfg, "template") && !cJSON_GetObjectItemCaseSensitive(cfg, "no-shuffle"),
              "%s: causal-LM-only options are not recorded", methods[k]);
        const cJSON *rg = cJSON_GetObjectItemCaseSensitive(res, "balora");
        CHECK(k == 2 ? num(rg, "lambda1") == 0.01 && num(rg, "lambda3") == 0.01 && num(rg, "svd_k") == 1 && !strcmp(str(rg, "svd_norm"), "none")
                     : rg == NULL, "%s: BA-LoRA settings recorded", methods[k]);
        double dev_acc = num(dv, "accuracy");
        CHECK(num(dv, "n") == 128 && dev_acc >= 0.9, "%s: dev accuracy %g (want >= 0.9, chance 0.5)", methods[k], dev_acc);
        if (k == 0) CHECK(file_has(err, "--label-noise 0.1: 26 of 256 labels flipped (seed 3)"), "label noise reported on stderr");
        /* the metrics log: one row per step, finite losses; BA-LoRA's terms */
        char *text;
        size_t tlen;
        CHECK_OK(bl_file_read(log, &text, &tlen));
        int rows = 0;
        bool finite = true;
        for (char *line = text; line && *line; ) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = 0;
            if (k == 1) { if (rows++ > 0) { double st, ep, loss; finite &= sscanf(line, "%lf,%lf,%lf", &st, &ep, &loss) == 3 && isfinite(loss); } }
            else {
                cJSON *o = cJSON_Parse(line);
                rows++;
                finite &= o && isfinite(num(o, "loss")) && num(o, "step") == rows && isfinite(num(o, "grad_norm")) && num(o, "lr") >= 0;
                if (k == 2) finite &= isfinite(num(o, "l_cr")) && isfinite(num(o, "l_dr")) && isfinite(num(o, "l_svdr")) && num(o, "lambda1") == 0.01;
                cJSON_Delete(o);
            }
            line = nl ? nl + 1 : NULL;
        }
        free(text);
        CHECK(rows == (k == 1 ? 65 : 64) && finite, "%s: metrics log %d rows, finite %d", methods[k], rows, finite);
        cJSON_Delete(res);

        /* eval: dev in domain, AdvGLUE sst2 out of domain */
        char rep[900];
        snprintf(rep, sizeof rep, "%s/eval_%s.json", tmp, methods[k]);
        snprintf(args, sizeof args, "eval --task seq-cls --model '%s' --adapter '%s/adapter' --glue-task sst2 --data '%s' --ood-data '%s' "
                 "--out '%s'", mdir, run, dev, adv, rep);
        rc = run_cli(args, out, err);
        CHECK(rc == 0, "eval %s: exit %d", methods[k], rc);
        CHECK(file_has(out, "in-domain") && file_has(out, "out-of-domain") && file_has(out, "OOD - ID"), "%s: side-by-side table", methods[k]);
        cJSON *r = NULL;
        CHECK_OK(bl_json_load(rep, &r));
        check_report("in-domain", r, 128);
        const cJSON *ood = cJSON_GetObjectItemCaseSensitive(r, "out_of_domain");
        check_report("out-of-domain", ood, 148);
        CHECK(fabs(num(r, "accuracy") - dev_acc) < 1.5 / 128, "%s: eval accuracy %g vs training's dev %g", methods[k], num(r, "accuracy"), dev_acc);
        CHECK(fabs(num(cJSON_GetObjectItemCaseSensitive(r, "ood_minus_id"), "accuracy") - (num(ood, "accuracy") - num(r, "accuracy"))) < 1e-12,
              "%s: ood_minus_id", methods[k]);
        CHECK(!strcmp(str(r, "task"), "sst2") && !strcmp(str(ood, "task"), "sst2") && strstr(str(r, "adapter"), "adapter"), "%s: report names", methods[k]);
        fprintf(stderr, "%s: dev accuracy %.4f (train) / %.4f (eval), AdvGLUE sst2 accuracy %.4f mcc %.4f\n", methods[k], dev_acc,
                num(r, "accuracy"), num(ood, "accuracy"), num(ood, "mcc"));
        cJSON_Delete(r);
    }

    /* full fine-tuning: OUT/model is a complete model folder (weights, config, the tokenizer's vocab.txt) */
    {
        char run[800], rep[900];
        snprintf(run, sizeof run, "%s/run_full", tmp);
        snprintf(rep, sizeof rep, "%s/eval_full.json", tmp);
        snprintf(args, sizeof args, "train --task seq-cls --model '%s' --data '%s' --dev '%s' --glue-task sst2 --method full --lr 5e-3 "
                 "--epochs 4 --max-len 16 --warmup-ratio 0.1 --threads 1 --out '%s'", mdir, train, dev, run);
        int rc = run_cli(args, out, err);
        CHECK(rc == 0, "train full: exit %d", rc);
        snprintf(p, sizeof p, "%s/results.json", run);
        cJSON *res = NULL;
        if (!rc) CHECK_OK(bl_json_load(p, &res));
        double dev_acc = num(cJSON_GetObjectItemCaseSensitive(res, "dev"), "accuracy");
        CHECK(num(res, "steps") == 32 && dev_acc >= 0.9, "full: %g steps, dev accuracy %g", num(res, "steps"), dev_acc);
        cJSON_Delete(res);
        snprintf(p, sizeof p, "%s/model/vocab.txt", run);
        CHECK(bl_file_exists(p), "full: the tokenizer is saved with the model");
        snprintf(args, sizeof args, "eval --task seq-cls --model '%s/model' --glue-task sst2 --data '%s' --metrics accuracy,mcc --out '%s'",
                 run, dev, rep);
        rc = run_cli(args, out, err);
        cJSON *r = NULL;
        if (!rc) CHECK_OK(bl_json_load(rep, &r));
        CHECK(rc == 0 && fabs(num(r, "accuracy") - dev_acc) < 1.5 / 128, "full: eval exit %d, accuracy %g vs %g", rc, num(r, "accuracy"), dev_acc);
        const cJSON *tm = cJSON_GetObjectItemCaseSensitive(r, "task_metrics");
        CHECK(cJSON_GetArraySize(tm) == 2 && fabs(num(r, "score") - (num(r, "accuracy") + num(r, "mcc")) / 2) < 1e-12,
              "--metrics accuracy,mcc: score %g is their mean", num(r, "score"));
        cJSON_Delete(r);
    }

    /* generic CSV: named columns, label words with a given map, --max-train and --imbalance (exact counts) */
    char csv[800], run[800];
    snprintf(csv, sizeof csv, "%s/reviews.csv", tmp);
    snprintf(run, sizeof run, "%s/run_csv", tmp);
    {
        size_t cap = 64 * 80, o = 0;
        char *t = malloc(cap);
        o += (size_t)snprintf(t + o, cap - o, "id,review,sentiment\n");
        for (int i = 0; i < 60; i++) /* 40 pos, 20 neg */
            o += (size_t)snprintf(t + o, cap - o, "%d,\"the film, %s\",%s\n", i, i % 3 ? "good" : "dark", i % 3 ? "pos" : "neg");
        CHECK_OK(bl_file_write_atomic(csv, t, o));
        free(t);
    }
    snprintf(args, sizeof args, "train --task seq-cls --model '%s' --data '%s' --text-col review --label-col sentiment --labels neg,pos "
             "--max-train 48 --imbalance 4 --imbalance-major 1 --max-steps 2 --batch-size 8 --threads 1 --out '%s'", mdir, csv, run);
    int rc = run_cli(args, out, err);
    CHECK(rc == 0, "generic csv: exit %d", rc);
    snprintf(p, sizeof p, "%s/results.json", run);
    cJSON *res = NULL;
    if (!rc) CHECK_OK(bl_json_load(p, &res));
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(res, "data");
    /* 40 pos (major) kept; neg cut to floor(40 / 4) = 10, i.e. 10 of 20 removed; then the first 48 of 50 */
    CHECK(num(data, "n_imbalance_removed") == 10 && num(data, "n_max_train_removed") == 2 && num(res, "n_train") == 48 &&
          num(res, "steps") == 2 && !strcmp(str(data, "format"), "csv"),
          "generic csv knobs: imbalance removed %g, max-train removed %g, n_train %g", num(data, "n_imbalance_removed"),
          num(data, "n_max_train_removed"), num(res, "n_train"));
    cJSON_Delete(res);
    /* eval --model on the generic file: its columns and label names as given to train */
    {
        char rep[900];
        snprintf(rep, sizeof rep, "%s/eval_csv.json", tmp);
        snprintf(args, sizeof args, "eval --task seq-cls --model '%s' --adapter '%s/adapter' --data '%s' --text-col review "
                 "--label-column sentiment --labels neg,pos --max-len 64 --out '%s'", mdir, run, csv, rep);
        rc = run_cli(args, out, err);
        CHECK(rc == 0, "eval generic csv: exit %d", rc);
        cJSON *r = NULL;
        if (!rc) CHECK_OK(bl_json_load(rep, &r));
        if (r) check_report("generic csv", r, 60);
        cJSON_Delete(r);
        snprintf(args, sizeof args, "eval --task seq-cls --model '%s' --adapter '%s/adapter' --data '%s' --label-column sentiment "
                 "--labels neg,pos --out '%s'", mdir, run, csv, rep);
        rc = run_cli(args, out, err);
        CHECK(rc == 1 && file_has(err, "text"), "eval generic csv without --text-col: exit %d, names the missing column", rc);
    }

    /* --task seq-cls from a --config file: its defaults apply (batch 32, max-len 128, warmup 0.06), the command line wins */
    snprintf(p, sizeof p, "%s/run.yaml", tmp);
    write_text(p, "task: seq-cls\nglue_task: sst2\nmethod: pissa\nepochs: 5\n");
    snprintf(run, sizeof run, "%s/run_yaml", tmp);
    snprintf(args, sizeof args, "train --config '%s' --model '%s' --data '%s' --max-steps 1 --epochs 1 --threads 1 --out '%s'", p, mdir, train, run);
    rc = run_cli(args, out, err);
    CHECK(rc == 0, "--config task seq-cls: exit %d", rc);
    snprintf(p, sizeof p, "%s/results.json", run);
    res = NULL;
    if (!rc) CHECK_OK(bl_json_load(p, &res));
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(res, "config");
    CHECK(num(cfg, "batch-size") == 32 && num(cfg, "max-len") == 128 && num(cfg, "warmup-ratio") == 0.06 && num(cfg, "epochs") == 1 &&
          !strcmp(str(cfg, "method"), "pissa") && !strcmp(str(res, "task"), "sst2") && num(res, "steps") == 1,
          "--config seq-cls: batch %g, max-len %g, epochs %g", num(cfg, "batch-size"), num(cfg, "max-len"), num(cfg, "epochs"));
    cJSON_Delete(res);

    /* eval of the base model (no adapter) on a generic JSONL file (text / label fields) */
    snprintf(p, sizeof p, "%s/small.jsonl", tmp);
    write_text(p, "{\"text\": \"a good film\", \"label\": 1}\n{\"text\": \"a dark story\", \"label\": 0}\n"
                  "{\"text\": \"really good\", \"label\": 1}\n");
    char rep[900];
    snprintf(rep, sizeof rep, "%s/generic.json", tmp);
    snprintf(args, sizeof args, "eval --task seq-cls --model '%s' --data '%s' --out '%s'", mdir, p, rep);
    rc = run_cli(args, out, err);
    CHECK(rc == 0, "generic jsonl eval: exit %d", rc);
    cJSON *r = NULL;
    if (!rc) CHECK_OK(bl_json_load(rep, &r));
    check_report("generic jsonl", r, 3);
    CHECK(!strcmp(str(r, "task"), "generic") && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "adapter")), "generic report: task and no adapter");
    cJSON_Delete(r);

    /* bad input: clear message, non-zero exit */
    struct { const char *args; int rc; const char *msg; } bad[] = {
        {"train --task seq-cls --model M --data D --out O --glue-task sst3", 2, "sst3"},
        {"train --task seq-cls --model M --data D --out O --method dora", 2, "dora"},
        {"train --task seq-cls --model M --data D --out O --no-shuffle", 2, "--no-shuffle"},
        {"train --task nlx --model M --data D --out O", 2, "--task nlx"},
        {"train --model M --data D --out O --label-noise 0.2", 2, "--task seq-cls"},
        {"eval --task seq-cls --model M --data D --glue-task sst3", 2, "sst3"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = run_cli(bad[i].args, out, err);
        CHECK(rc == bad[i].rc && file_has(err, bad[i].msg), "'%s': exit %d (want %d), message naming '%s'", bad[i].args, rc, bad[i].rc, bad[i].msg);
    }
    /* missing label column, label out of range, bad label noise: the library's message, exit 1 */
    snprintf(args, sizeof args, "train --task seq-cls --model '%s' --data '%s' --text-col review --label-col stars --max-steps 1 --out '%s/x'",
             mdir, csv, tmp);
    rc = run_cli(args, out, err);
    CHECK(rc == 1 && file_has(err, "stars"), "missing label column: exit %d", rc);
    snprintf(p, sizeof p, "%s/bad.tsv", tmp);
    write_text(p, "sentence\tlabel\nthe movie was good \t1\nthe plot \t7\n");
    snprintf(args, sizeof args, "train --task seq-cls --glue-task sst2 --model '%s' --data '%s' --max-steps 1 --out '%s/x'", mdir, p, tmp);
    rc = run_cli(args, out, err);
    CHECK(rc == 1 && file_has(err, "bad.tsv") && file_has(err, "7"), "label out of range (train): exit %d", rc);
    snprintf(args, sizeof args, "eval --task seq-cls --glue-task sst2 --model '%s' --adapter '%s/run_lora/adapter' --data '%s'", mdir, tmp, p);
    rc = run_cli(args, out, err);
    CHECK(rc == 1 && file_has(err, "bad.tsv"), "label out of range (eval): exit %d", rc);
    snprintf(args, sizeof args, "train --task seq-cls --model '%s' --data '%s' --text-col review --label-col sentiment --labels neg "
             "--max-steps 1 --out '%s/x'", mdir, csv, tmp);
    rc = run_cli(args, out, err);
    CHECK(rc == 1 && file_has(err, "pos"), "label not in --labels: exit %d", rc);
    snprintf(args, sizeof args, "train --task seq-cls --glue-task sst2 --model '%s' --data '%s' --label-noise 1.5 --max-steps 1 --out '%s/x'",
             mdir, train, tmp);
    rc = run_cli(args, out, err);
    CHECK(rc == 1 && file_has(err, "noise"), "label noise 1.5: exit %d", rc);
    return t_finish();
}
