/* Decoder sequence classifiers through the seq-cls tools (clsmodel.h): the golden
 * GPT2ForSequenceClassification model (../shared/golden/gpt2_cls, 256-token vocabulary) with a
 * byte-level tokenizer.json written here (one token per byte, id = byte value).
 *   - padded batches predict what single unpadded examples do (pooling on the last real token);
 *   - LoRA fine-tuning on c_attn learns a byte-level task;
 *   - balora features writes the pooled final-norm state. */
#include "harness.h"
#include "encoders/finetune.h"
#include "encoders/predict.h"
#include "io/hf.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* GPT-2's byte-to-unicode map, as UTF-8 (at most 2 bytes for these code points). */
static void byte_token(int b, char *out) {
    int cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) cp = b;
    else {
        int n = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0; }
}

static void write_tokenizer(const char *path) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "version", "1.0");
    cJSON_AddNullToObject(j, "truncation");
    cJSON_AddNullToObject(j, "padding");
    cJSON_AddItemToObject(j, "added_tokens", cJSON_CreateArray());
    cJSON_AddNullToObject(j, "normalizer");
    cJSON *pt = cJSON_AddObjectToObject(j, "pre_tokenizer");
    cJSON_AddStringToObject(pt, "type", "ByteLevel");
    cJSON_AddBoolToObject(pt, "add_prefix_space", false);
    cJSON_AddBoolToObject(pt, "trim_offsets", true);
    cJSON_AddBoolToObject(pt, "use_regex", true);
    cJSON_AddNullToObject(j, "post_processor");
    cJSON *dec = cJSON_AddObjectToObject(j, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON_AddBoolToObject(dec, "add_prefix_space", true);
    cJSON_AddBoolToObject(dec, "trim_offsets", true);
    cJSON_AddBoolToObject(dec, "use_regex", true);
    cJSON *mo = cJSON_AddObjectToObject(j, "model");
    cJSON_AddStringToObject(mo, "type", "BPE");
    cJSON_AddNullToObject(mo, "dropout");
    cJSON_AddNullToObject(mo, "unk_token");
    cJSON_AddNullToObject(mo, "continuing_subword_prefix");
    cJSON_AddNullToObject(mo, "end_of_word_suffix");
    cJSON_AddBoolToObject(mo, "fuse_unk", false);
    cJSON_AddBoolToObject(mo, "byte_fallback", false);
    cJSON *v = cJSON_AddObjectToObject(mo, "vocab");
    for (int b = 0; b < 256; b++) {
        char t[4];
        byte_token(b, t);
        cJSON_AddNumberToObject(v, t, b);
    }
    cJSON_AddItemToObject(mo, "merges", cJSON_CreateArray());
    CHECK_OK(bl_json_save(j, path));
    cJSON_Delete(j);
}

static const char *WORDS[] = {"cat", "dog", "sun", "tree", "blue", "red", "cold", "warm", "house", "road"};

static void write_task(const char *path, int n, uint64_t seed) {
    bl_rng r;
    bl_rng_seed(&r, seed);
    size_t cap = (size_t)n * 96 + 32, o = 0;
    char *t = malloc(cap);
    o += (size_t)snprintf(t + o, cap - o, "text,label\n");
    for (int i = 0; i < n; i++) {
        int len = 2 + (int)bl_rng_below(&r, 4), y = (int)bl_rng_below(&r, 2), at = (int)bl_rng_below(&r, (uint64_t)len);
        for (int k = 0; k < len; k++)
            o += (size_t)snprintf(t + o, cap - o, "%s%s", k ? " " : "", (y && k == at) ? "zzz" : WORDS[bl_rng_below(&r, 10)]);
        o += (size_t)snprintf(t + o, cap - o, ",%d\n", y);
    }
    CHECK_OK(bl_file_write_atomic(path, t, o));
    free(t);
}

int main(void) {
    balora_threads_set(1);
    const char *shared = t_require_shared();
    const char *tmp = t_tmpdir();
    char model[900], tokp[700], train[700], dev[700], out[700], feat[700];
    snprintf(model, sizeof model, "%s/golden/gpt2_cls", shared);
    snprintf(tokp, sizeof tokp, "%s/tokenizer.json", tmp);
    snprintf(train, sizeof train, "%s/train.csv", tmp);
    snprintf(dev, sizeof dev, "%s/dev.csv", tmp);
    snprintf(out, sizeof out, "%s/run", tmp);
    snprintf(feat, sizeof feat, "%s/f.safetensors", tmp);
    write_tokenizer(tokp);
    write_task(train, 256, 1);
    write_task(dev, 96, 2);
    bl_tok *tok;
    CHECK_OK(bl_tok_load(&tok, tokp));
    if (t_failures) return t_finish();
    int32_t ids3[8];
    size_t n3;
    CHECK_OK(bl_tok_encode_ids(tok, "a b!", 4, true, ids3, 8, &n3));
    CHECK(n3 == 4 && ids3[0] == 'a' && ids3[1] == ' ' && ids3[3] == '!', "byte tokenizer: %zu ids", n3);

    /* padded batches == single examples */
    bl_clsm *m = calloc(1, sizeof *m);
    CHECK_OK(bl_clsm_load(m, model, 0, false, 0));
    CHECK(m->decoder && m->num_labels == 2 && m->pad_id == 0, "gpt2_cls as a classifier");
    bl_glue_set d;
    CHECK_OK(bl_data_load(&d, NULL, dev));
    float *lb = malloc(sizeof(float) * (size_t)(2 * d.n)), *l1 = malloc(sizeof(float) * (size_t)(2 * d.n));
    double *pb = malloc(sizeof(double) * (size_t)d.n), *p1 = malloc(sizeof(double) * (size_t)d.n);
    CHECK_OK(bl_clsm_predict(m, tok, &d, BL_ADAPTER_OFF, 32, 16, pb, lb));
    CHECK_OK(bl_clsm_predict(m, tok, &d, BL_ADAPTER_OFF, 32, 1, p1, l1));
    CHECK(t_allclose("gpt2_cls padded batch vs single", lb, l1, 2 * d.n, 1e-5, 1e-4) == 0, "pooling on the last real token");
    bl_clsm_free(m);
    free(m);

    /* LoRA fine-tuning on c_attn (the score head as modules_to_save) */
    bl_seqcls_ft_cfg fc;
    bl_seqcls_ft_default(&fc);
    fc.model = model; fc.tokenizer = tokp; fc.train = train; fc.dev = dev; fc.out_dir = out;
    fc.lora.r = 4; fc.lora.alpha = 8;
    CHECK_OK(bl_lora_config_set_targets(&fc.lora, "c_attn,c_proj,c_fc"));
    fc.adam.lr = 5e-3; fc.batch = 32; fc.epochs = 8; fc.max_len = 32; fc.log_every = 16;
    bl_seqcls_ft_result res;
    CHECK_OK(bl_seqcls_finetune(&fc, &res));
    fprintf(stderr, "gpt2_cls lora: %lld steps, loss %.4f -> %.4f, dev accuracy %.3f\n", (long long)res.steps, res.first_loss,
            res.last_loss, res.dev.accuracy);
    CHECK(res.have_dev && res.dev.accuracy >= 0.85, "gpt2_cls dev accuracy %.3f (chance 0.5)", res.dev.accuracy);
    CHECK(res.last_loss < 0.5 * res.first_loss, "loss %.4f -> %.4f", res.first_loss, res.last_loss);
    /* the saved adapter predicts the same */
    double *pred, *gold;
    int64_t n;
    bl_enc_predict_opts po = BL_ENC_PREDICT_DEFAULT;
    po.max_len = 32;
    po.tokenizer = tokp;
    char ad[800];
    snprintf(ad, sizeof ad, "%s/adapter", out);
    CHECK_OK(bl_enc_predict_file(model, ad, BL_GLUE_TASK_GENERIC, dev, &po, &pred, &gold, &n));
    if (!t_failures) {
        int64_t ok = 0;
        for (int64_t i = 0; i < n; i++) ok += pred[i] == gold[i];
        CHECK(fabs((double)ok / (double)n - res.dev.accuracy) < 1.5 / (double)n, "reloaded adapter accuracy %.3f", (double)ok / (double)n);
        free(pred); free(gold);
    }
    /* a decoder needs a classification checkpoint */
    char lm[900];
    snprintf(lm, sizeof lm, "%s/golden/gpt2", shared);
    bl_clsm *m2 = calloc(1, sizeof *m2);
    CHECK_FAILS(bl_clsm_load(m2, lm, 2, false, 0), BALORA_STATUS_UNSUPPORTED, "not a *ForSequenceClassification");
    free(m2);

    /* balora features on the decoder: the final-norm state of the last real token */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' features --model '%s' --tokenizer '%s' --data '%s' --max-len 32 --out '%s' 2>/dev/null",
             t_cli(), model, tokp, dev, feat);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "features on gpt2_cls: rc %d", rc);
    bl_st_file f;
    CHECK_OK(bl_st_open(&f, feat));
    if (!t_failures) {
        int64_t C = 64;
        float *x = malloc(sizeof(float) * (size_t)(d.n * C));
        CHECK_OK(bl_st_read_f32(&f, "features", 2, (int64_t[]){d.n, C}, x));
        /* score = features . score.weight^T reproduces the logits */
        bl_hf_folder h;
        CHECK_OK(bl_hf_open(&h, model));
        float W[2 * 64];
        CHECK_OK(bl_hf_read_f32(&h, "score.weight", NULL, 2, (int64_t[]){2, 64}, W));
        bl_hf_close(&h);
        double worst = 0;
        for (int64_t i = 0; i < d.n; i++)
            for (int c = 0; c < 2; c++) {
                double z = 0;
                for (int64_t e = 0; e < C; e++) z += (double)x[i * C + e] * W[c * C + e];
                if (fabs(z - l1[i * 2 + c]) > worst) worst = fabs(z - l1[i * 2 + c]);
            }
        CHECK(worst < 1e-4, "features x score = logits (worst %g)", worst);
        free(x);
        bl_st_close(&f);
    }
    free(lb); free(l1); free(pb); free(p1);
    bl_glue_set_free(&d);
    bl_tok_free(tok);
    return t_finish();
}
