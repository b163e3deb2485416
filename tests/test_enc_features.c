/* balora features end to end: a tiny random BERT saved with BERT's real vocabulary, run by the CLI
 * over GLUE SST-2 dev rows and a generic pair CSV; the written features equal the encoder's own
 * outputs (classifier input, first-token and mean-pooled hidden states), labels and rows match the
 * data; bad options fail with a clear message. */
#include "harness.h"
#include "data_glue/seqcls.h"
#include "encoders/encoder.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int run_cli(const char *args, const char *errfile) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' features %s >/dev/null 2>'%s'", t_cli(), args, errfile);
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

/* Expected features computed through the API: layer < 0 = pooled; else first token or mean. */
static void expect_features(bl_encoder *m, bl_tok *tok, bl_glue_set *d, int64_t layer, bool mean, float *want) {
    bl_seqcls_set s;
    bl_seqcls_opts o = BL_SEQCLS_OPTS_DEFAULT;
    o.max_len = 32;
    o.pad_id = m->cfg.pad_id;
    CHECK_OK(bl_seqcls_encode(&s, d, tok, &o));
    int64_t C = m->cfg.hidden;
    bl_enc_run r;
    CHECK_OK(bl_enc_run_init(&r, m, 1, 32));
    for (int64_t i = 0; i < s.n; i++) {
        int64_t ids[32], mask[32], types[32], T;
        CHECK_OK(bl_seqcls_batch(&s, &i, 1, ids, mask, types, NULL, NULL, &T));
        bl_enc_batch b = {1, T, ids, mask, types};
        CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_OFF));
        if (layer < 0) { memcpy(want + i * C, r.pooled, sizeof(float) * (size_t)C); continue; }
        const float *h = bl_enc_layer_hidden(&r, layer);
        for (int64_t c = 0; c < C; c++) {
            double a = 0;
            int64_t n = 0;
            for (int64_t t = 0; t < (mean ? T : 1); t++) if (mask[t]) { a += h[t * C + c]; n++; }
            want[i * C + c] = (float)(a / (double)n);
        }
    }
    bl_enc_run_free(&r);
    bl_seqcls_free(&s);
}

int main(void) {
    balora_threads_set(1);
    const char *shared = t_require_shared();
    const char *tmp = t_tmpdir();
    char mdir[600], p[1200], outp[700], errp[700], args[3000];
    snprintf(mdir, sizeof mdir, "%s/tinybert", tmp);
    snprintf(outp, sizeof outp, "%s/f.safetensors", tmp);
    snprintf(errp, sizeof errp, "%s/err.txt", tmp);
    /* a tiny BERT with bert-base-uncased's vocabulary */
    bl_enc_config c;
    bl_enc_config_defaults(&c, BL_ENC_BERT);
    c.vocab_size = 30522; c.hidden = 16; c.n_head = 2; c.intermediate = 32; c.n_layer = 2; c.max_pos = 64; c.init_range = 0.2;
    bl_encoder m;
    CHECK_OK(bl_enc_init_random(&m, &c, 5));
    CHECK_OK(bl_enc_save(&m, mdir, false));
    char *vocab;
    size_t vlen;
    snprintf(p, sizeof p, "%s/tokenizers/bert-base-uncased/vocab.txt", shared);
    CHECK_OK(bl_file_read(p, &vocab, &vlen));
    snprintf(p, sizeof p, "%s/vocab.txt", mdir);
    CHECK_OK(bl_file_write_atomic(p, vocab, vlen));
    free(vocab);
    bl_tok *tok;
    CHECK_OK(bl_tok_load(&tok, mdir));
    if (t_failures) return t_finish();

    /* SST-2 dev, the first 20 rows, three kinds of features */
    char sst[900];
    snprintf(sst, sizeof sst, "%s/data/glue/SST-2/dev.tsv", shared);
    bl_glue_set d;
    CHECK_OK(bl_glue_load(&d, BL_GLUE_TASK_SST2, sst, NULL));
    bl_data_knobs k = BL_DATA_KNOBS_DEFAULT;
    k.max_train = 20;
    CHECK_OK(bl_data_apply_knobs(&d, &k));
    struct { int64_t layer; const char *pool; } kinds[3] = {{-1, "cls"}, {2, "cls"}, {1, "mean"}};
    float *want = malloc(sizeof(float) * 20 * 16), *got = malloc(sizeof(float) * 20 * 16);
    for (int kk = 0; kk < 3; kk++) {
        snprintf(args, sizeof args, "--model '%s' --data '%s' --task sst2 --max-examples 20 --max-len 32 --batch 7 --layer %lld "
                 "--pooling %s --out '%s' --threads 1", mdir, sst, (long long)kinds[kk].layer, kinds[kk].pool, outp);
        int rc = run_cli(args, errp);
        CHECK(rc == 0, "features layer %lld: rc %d", (long long)kinds[kk].layer, rc);
        if (rc) continue;
        bl_st_file f;
        CHECK_OK(bl_st_open(&f, outp));
        CHECK_OK(bl_st_read_f32(&f, "features", 2, (int64_t[]){20, 16}, got));
        int64_t lab[20], row[20];
        CHECK_OK(bl_st_tensor_to_i64(&f, bl_st_find(&f, "labels"), lab));
        CHECK_OK(bl_st_tensor_to_i64(&f, bl_st_find(&f, "row"), row));
        bool ok = true;
        for (int i = 0; i < 20; i++) ok &= lab[i] == d.label[i] && row[i] == d.row[i];
        CHECK(ok, "labels and rows");
        CHECK(bl_st_meta(&f, "layer") && atoi(bl_st_meta(&f, "layer")) == kinds[kk].layer, "metadata layer");
        expect_features(&m, tok, &d, kinds[kk].layer, !strcmp(kinds[kk].pool, "mean"), want);
        char what[64];
        snprintf(what, sizeof what, "features layer %lld %s", (long long)kinds[kk].layer, kinds[kk].pool);
        CHECK(t_allclose(what, got, want, 20 * 16, 1e-5, 1e-4) == 0, "%s", what);
        bl_st_close(&f);
    }
    /* a generic CSV of pairs without labels */
    snprintf(p, sizeof p, "%s/pairs.csv", tmp);
    const char *csv = "premise,hypothesis\n\"A man, smiling.\",A person is happy.\nThe cat sat.,\"No, it stood.\"\n";
    CHECK_OK(bl_file_write_atomic(p, csv, strlen(csv)));
    snprintf(args, sizeof args, "--model '%s' --data '%s' --text-col premise --text-pair-col hypothesis --no-labels --out '%s'",
             mdir, p, outp);
    CHECK(run_cli(args, errp) == 0, "generic csv");
    bl_st_file f;
    CHECK_OK(bl_st_open(&f, outp));
    int64_t lab[2];
    CHECK_OK(bl_st_tensor_to_i64(&f, bl_st_find(&f, "labels"), lab));
    CHECK(lab[0] == -100 && lab[1] == -100 && bl_st_find(&f, "features")->shape[0] == 2, "unlabelled pairs");
    bl_st_close(&f);
    /* bad usage and bad input */
    CHECK(run_cli("--data x.tsv", errp) == 2 && file_has(errp, "required"), "missing options");
    snprintf(args, sizeof args, "--model '%s' --data '%s' --task sst2 --pooling max --out '%s'", mdir, sst, outp);
    CHECK(run_cli(args, errp) == 2 && file_has(errp, "--pooling"), "bad pooling");
    snprintf(args, sizeof args, "--model '%s' --data '%s' --task sst2 --layer 7 --out '%s'", mdir, sst, outp);
    CHECK(run_cli(args, errp) == 1 && file_has(errp, "the model has 2 layers"), "layer out of range");
    snprintf(args, sizeof args, "--model '%s' --data '%s' --task squad --out '%s'", mdir, sst, outp);
    CHECK(run_cli(args, errp) == 1 && file_has(errp, "squad"), "unknown task");
    snprintf(args, sizeof args, "--model '%s/nope' --data '%s' --task sst2 --out '%s'", tmp, sst, outp);
    CHECK(run_cli(args, errp) == 1 && file_has(errp, "nope"), "missing model");
    snprintf(args, sizeof args, "--model '%s' --data '%s' --task qnli --out '%s'", mdir, sst, outp);
    CHECK(run_cli(args, errp) == 1 && file_has(errp, "no column 'question'"), "wrong task layout");
    free(want); free(got);
    bl_glue_set_free(&d);
    bl_tok_free(tok);
    bl_enc_free(&m);
    return t_finish();
}
