/* Sequence-classification fine-tuning end to end (finetune.h) on a tiny random BERT with BERT's
 * vocabulary and an SST-2-format task written here (label = whether "good" occurs): LoRA, PiSSA,
 * BA-LoRA and full fine-tuning each reach a high dev accuracy; the saved adapter (PiSSA/BA-LoRA
 * converted to a plain LoRA on the original weights) or model reproduces the dev predictions when
 * loaded from disk; results.json records the exact effect of the data knobs. */
#include "harness.h"
#include "encoders/finetune.h"
#include "encoders/predict.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *WORDS[] = {"the", "movie", "was", "a", "film", "story", "plot", "actor", "scene", "music",
                              "very", "quite", "really", "long", "funny", "dark", "new", "old"};

/* The tokens the task uses, at their bert-base-uncased ids: a vocab.txt with only these (and fillers
 * elsewhere) tokenizes the task exactly as the real one, so the test runs without ../shared; with
 * ../shared the real vocabulary is used and these ids are checked against it. */
static const struct { const char *tok; int id; } VOCAB_IDS[] = {
    {"[PAD]", 0}, {"[UNK]", 100}, {"[CLS]", 101}, {"[SEP]", 102}, {"[MASK]", 103}, {"the", 1996}, {"movie", 3185},
    {"was", 2001}, {"a", 1037}, {"film", 2143}, {"story", 2466}, {"plot", 5436}, {"actor", 3364}, {"scene", 3496},
    {"music", 2189}, {"very", 2200}, {"quite", 3243}, {"really", 2428}, {"long", 2146}, {"funny", 6057}, {"dark", 2601},
    {"new", 2047}, {"old", 2214}, {"good", 2204}};
enum { BERT_VOCAB = 30522 };

/* vocab.txt into *out (malloc'd): the real one from ../shared when present, else the generated one */
static void bert_vocab(const char *shared, char **out, size_t *len) {
    size_t n = sizeof VOCAB_IDS / sizeof VOCAB_IDS[0];
    if (shared) {
        char p[1200];
        snprintf(p, sizeof p, "%s/tokenizers/bert-base-uncased/vocab.txt", shared);
        CHECK_OK(bl_file_read(p, out, len));
        if (!*out) return;
        /* the hard-coded ids are the real vocabulary's */
        int line = 0, found = 0;
        for (char *q = *out, *e; q < *out + *len; q = e + 1, line++) {
            e = memchr(q, '\n', (size_t)(*out + *len - q));
            if (!e) e = *out + *len;
            for (size_t i = 0; i < n; i++)
                if (VOCAB_IDS[i].id == line) {
                    bool same = (size_t)(e - q) == strlen(VOCAB_IDS[i].tok) && !memcmp(q, VOCAB_IDS[i].tok, (size_t)(e - q));
                    CHECK(same, "bert-base-uncased vocab.txt line %d is not '%s'", line, VOCAB_IDS[i].tok);
                    found += same;
                }
        }
        CHECK(line == BERT_VOCAB && found == (int)n, "vocab.txt: %d lines, %d of %zu task tokens at their ids", line, found, n);
        return;
    }
    printf("NOTE: ../shared absent: a generated vocab.txt with the task's tokens at their bert-base-uncased ids\n");
    size_t cap = (size_t)BERT_VOCAB * 16, o = 0;
    char *t = malloc(cap);
    for (int id = 0; id < BERT_VOCAB; id++) {
        const char *tok = NULL;
        for (size_t i = 0; i < n; i++) if (VOCAB_IDS[i].id == id) tok = VOCAB_IDS[i].tok;
        if (tok) o += (size_t)snprintf(t + o, cap - o, "%s\n", tok);
        else o += (size_t)snprintf(t + o, cap - o, "[unused%d]\n", id);
    }
    *out = t;
    *len = o;
}

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

int main(void) {
    balora_threads_set(1);
    const char *shared = t_shared_dir(); /* optional: the real vocabulary */
    const char *tmp = t_tmpdir();
    char mdir[700], train[700], dev[700], p[1200];
    snprintf(mdir, sizeof mdir, "%s/bert", tmp);
    snprintf(train, sizeof train, "%s/train.tsv", tmp);
    snprintf(dev, sizeof dev, "%s/dev.tsv", tmp);
    write_task(train, 256, 1);
    write_task(dev, 128, 2);
    bl_enc_config c;
    bl_enc_config_defaults(&c, BL_ENC_BERT);
    c.vocab_size = 30522; c.hidden = 32; c.n_head = 4; c.intermediate = 64; c.n_layer = 2; c.max_pos = 32; c.init_range = 0.2;
    bl_encoder m;
    CHECK_OK(bl_enc_init_random(&m, &c, 7));
    CHECK_OK(bl_enc_save(&m, mdir, false));
    bl_enc_free(&m);
    char *vocab = NULL;
    size_t vlen = 0;
    bert_vocab(shared, &vocab, &vlen);
    if (!vocab) return t_finish();
    snprintf(p, sizeof p, "%s/vocab.txt", mdir);
    CHECK_OK(bl_file_write_atomic(p, vocab, vlen));
    free(vocab);
    if (t_failures) return t_finish();

    const char *methods[4] = {"lora", "pissa", "ba-lora", "full"};
    for (int k = 0; k < 4; k++) {
        bl_seqcls_ft_cfg fc;
        bl_seqcls_ft_default(&fc);
        fc.model = mdir; fc.task = BL_GLUE_TASK_SST2; fc.train = train; fc.dev = dev;
        fc.method = methods[k];
        fc.lora.r = 4; fc.lora.alpha = 8;
        bl_lora_config_set_targets(&fc.lora, "query,key,value,dense");
        fc.adam.lr = 5e-3;
        /* full fine-tuning: fewer steps (each one updates the 1M floats of the embeddings) */
        fc.batch = 32; fc.epochs = k == 3 ? 4 : 8; fc.max_len = 16; fc.warmup_ratio = 0.1; fc.log_every = 8;
        if (k == 2) { fc.reg.lambda1 = 1e-2; fc.reg.lambda2 = 1e-2; fc.reg.lambda3 = 1e-2; fc.reg.svd_k = 1; }
        if (k == 0) { fc.knobs.label_noise = 0.1; fc.knobs.seed = 3; }
        char out[800];
        snprintf(out, sizeof out, "%s/run_%s", tmp, methods[k]);
        fc.out_dir = out;
        bl_seqcls_ft_result res;
        CHECK_OK(bl_seqcls_finetune(&fc, &res));
        fprintf(stderr, "%s: %lld steps, loss %.4f -> %.4f, dev accuracy %.3f (%.1f s)\n", methods[k], (long long)res.steps,
                res.first_loss, res.last_loss, res.dev.accuracy, res.seconds);
        CHECK(res.steps == (k == 3 ? 32 : 64) && res.have_dev && res.dev.n == 128, "%s: steps %lld", methods[k], (long long)res.steps);
        CHECK(res.dev.accuracy >= 0.9, "%s: dev accuracy %.3f (want >= 0.9, chance 0.5)", methods[k], res.dev.accuracy);
        /* the saved outputs reproduce the dev predictions */
        double *pred, *gold;
        int64_t n;
        bl_enc_predict_opts po = BL_ENC_PREDICT_DEFAULT;
        po.max_len = 16;
        po.tokenizer = mdir;
        char sub[900];
        if (k == 3) {
            snprintf(sub, sizeof sub, "%s/model", out);
            CHECK_OK(bl_enc_predict_file(sub, NULL, BL_GLUE_TASK_SST2, dev, &po, &pred, &gold, &n));
        } else {
            snprintf(sub, sizeof sub, "%s/adapter", out);
            CHECK_OK(bl_enc_predict_file(mdir, sub, BL_GLUE_TASK_SST2, dev, &po, &pred, &gold, &n));
        }
        if (!t_failures) {
            int64_t ok = 0;
            for (int64_t i = 0; i < n; i++) ok += pred[i] == gold[i];
            CHECK(fabs((double)ok / (double)n - res.dev.accuracy) < 1.5 / 128, "%s: reloaded accuracy %.3f vs %.3f", methods[k],
                  (double)ok / (double)n, res.dev.accuracy);
            free(pred); free(gold);
        }
        snprintf(p, sizeof p, "%s/results.json", out);
        cJSON *j;
        CHECK_OK(bl_json_load(p, &j));
        if (j) {
            cJSON *d = cJSON_GetObjectItem(j, "data");
            CHECK(d && cJSON_GetNumberValue(cJSON_GetObjectItem(d, "n_noisy")) == (k == 0 ? 26 : 0), "%s: n_noisy recorded", methods[k]);
            CHECK(cJSON_GetObjectItem(j, "dev") != NULL, "%s: dev metrics recorded", methods[k]);
            cJSON_Delete(j);
        }
    }
    /* gradient accumulation: 2 micro-batches of 16 = one batch of 32 (same adapter up to rounding) */
    char outs[2][800];
    double losses[2][2];
    for (int v = 0; v < 2; v++) {
        bl_seqcls_ft_cfg fc;
        bl_seqcls_ft_default(&fc);
        fc.model = mdir; fc.task = BL_GLUE_TASK_SST2; fc.train = train; fc.dev = NULL;
        fc.lora.r = 4; fc.lora.alpha = 8;
        fc.adam.lr = 5e-3; fc.epochs = 2; fc.max_len = 16;
        fc.batch = v ? 16 : 32;
        fc.grad_accum = v ? 2 : 1;
        snprintf(outs[v], sizeof outs[v], "%s/accum_%d", tmp, v);
        fc.out_dir = outs[v];
        bl_seqcls_ft_result res;
        CHECK_OK(bl_seqcls_finetune(&fc, &res));
        CHECK(res.steps == 16, "accumulation: %lld steps (want 16)", (long long)res.steps);
        losses[v][0] = res.first_loss;
        losses[v][1] = res.last_loss;
    }
    CHECK(fabs(losses[0][0] - losses[1][0]) < 1e-5 && fabs(losses[0][1] - losses[1][1]) < 1e-4,
          "accumulated step losses %.6f %.6f == one-batch %.6f %.6f", losses[1][0], losses[1][1], losses[0][0], losses[0][1]);
    bl_st_file fa, fb;
    snprintf(p, sizeof p, "%s/adapter/adapter_model.safetensors", outs[0]);
    CHECK_OK(bl_st_open(&fa, p));
    snprintf(p, sizeof p, "%s/adapter/adapter_model.safetensors", outs[1]);
    CHECK_OK(bl_st_open(&fb, p));
    int bad = 0;
    for (int t = 0; t < fa.n && fa.n == fb.n; t++) {
        const bl_st_tensor *ta = &fa.tensors[t];
        float *x = malloc(sizeof(float) * (size_t)ta->numel), *y = malloc(sizeof(float) * (size_t)ta->numel);
        CHECK_OK(bl_st_tensor_to_f32(&fa, ta, x));
        CHECK_OK(bl_st_read_f32(&fb, ta->name, ta->ndim, ta->shape, y));
        bad += t_allclose(ta->name, y, x, ta->numel, 1e-4, 1e-3) != 0;
        free(x); free(y);
    }
    CHECK(fa.n == fb.n && fa.n > 0 && bad == 0, "accumulated adapter == one-batch adapter (%d tensors differ)", bad);
    bl_st_close(&fa);
    bl_st_close(&fb);
    /* bad settings */
    bl_seqcls_ft_cfg fc;
    bl_seqcls_ft_default(&fc);
    fc.model = mdir; fc.task = BL_GLUE_TASK_SST2; fc.train = train; fc.method = "dora";
    bl_seqcls_ft_result res;
    CHECK_FAILS(bl_seqcls_finetune(&fc, &res), BALORA_STATUS_INVALID, "method 'dora'");
    fc.method = "lora";
    fc.knobs.label_noise = 1.5;
    CHECK_FAILS(bl_seqcls_finetune(&fc, &res), BALORA_STATUS_INVALID, "label noise");
    return t_finish();
}
