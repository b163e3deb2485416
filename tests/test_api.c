/* The public API (include/balora.h) against the internal path it wraps: errors name what is wrong,
 * NULL handles are refused, forward logits equal bl_model_forward's, generation equals the greedy
 * argmax, training through the API writes the adapter `balora train` writes with the same options
 * (bit for bit), saved / reloaded / merged adapters give the same logits. Self-contained: a random
 * llama model and a WordPiece vocabulary written to a temporary folder. */
#include "balora.h"
#include "harness.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define V 64
static const char *WORDS[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog",
                              "ran", "far", "hello", "world", "##s", "##ed", ".", ","};

static char g_model[4200], g_data[4200];

/* A random llama (vocab 64, 2 layers) saved as a Hugging Face folder with a vocab.txt. */
static void make_model(const char *tmp) {
    bl_config c;
    bl_config_defaults(&c, BL_FAMILY_LLAMA);
    c.vocab_size = V; c.hidden = 32; c.n_layer = 2; c.n_head = 4; c.n_kv_head = 2; c.head_dim = 8;
    c.intermediate = 48; c.max_pos = 128;
    bl_model m;
    CHECK_OK(bl_model_init_random(&m, &c, 5, 0.2f));
    snprintf(g_model, sizeof g_model, "%s/llama", tmp);
    CHECK_OK(bl_model_save(&m, g_model));
    bl_model_free(&m);
    char p[4300];
    snprintf(p, sizeof p, "%s/vocab.txt", g_model);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL, "cannot write %s", p);
    if (!f) return;
    int n = (int)(sizeof WORDS / sizeof WORDS[0]);
    for (int i = 0; i < V; i++) {
        if (i < n) fprintf(f, "%s\n", WORDS[i]);
        else fprintf(f, "w%d\n", i);
    }
    fclose(f);
    snprintf(g_data, sizeof g_data, "%s/train.jsonl", tmp);
    f = fopen(g_data, "w");
    CHECK(f != NULL, "cannot write %s", g_data);
    if (!f) return;
    for (int e = 0; e < 12; e++) {
        fprintf(f, "{\"input_ids\": [");
        for (int t = 0; t < 6 + e % 5; t++) fprintf(f, "%s%d", t ? ", " : "", (e * 7 + t * 13 + 5) % V);
        fprintf(f, "]}\n");
    }
    fclose(f);
}

static void errors(const char *tmp) {
    balora_model *m = (balora_model *)1;
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/no-such-model", tmp);
    CHECK_FAILS(balora_model_init(&m, missing), BALORA_STATUS_IO, missing);
    CHECK(m == NULL, "a failed init leaves the handle NULL");
    CHECK_FAILS(balora_model_init(NULL, g_model), BALORA_STATUS_INVALID, "NULL");
    CHECK_FAILS(balora_model_init(&m, NULL), BALORA_STATUS_INVALID, "NULL");
    int64_t ids[2] = {1, 2};
    float z[8];
    CHECK_FAILS(balora_model_forward(NULL, 1, 2, ids, NULL, BALORA_ADAPTER_MODE_ON, z, 8), BALORA_STATUS_INVALID, "NULL model");
    CHECK_FAILS(balora_adapter_load(NULL, tmp), BALORA_STATUS_INVALID, "NULL model");
    CHECK_FAILS(balora_tokenizer_init(NULL, g_model), BALORA_STATUS_INVALID, "NULL");
    balora_tokenizer *t = (balora_tokenizer *)1;
    CHECK_FAILS(balora_tokenizer_init(&t, missing), BALORA_STATUS_IO, missing);
    CHECK(t == NULL, "a failed tokenizer init leaves the handle NULL");
    int64_t n;
    CHECK_FAILS(balora_tokenizer_encode(NULL, "x", -1, true, ids, 2, &n), BALORA_STATUS_INVALID, "NULL tokenizer");
    balora_train_config tc;
    balora_train_config_default(&tc, BALORA_TRAIN_TASK_CAUSAL_LM);
    CHECK_FAILS(balora_model_train(NULL, &tc, NULL), BALORA_STATUS_INVALID, "NULL model");
    /* the free functions take NULL */
    balora_model_free(NULL);
    balora_tokenizer_free(NULL);
    balora_adapter_detach(NULL);
    CHECK(!balora_adapter_attached(NULL), "NULL has no adapter");
}

/* The API's forward == bl_model_forward on the same folder, bit for bit. */
static void forward_matches_internal(balora_model *m) {
    CHECK(balora_model_kind_get(m) == BALORA_MODEL_KIND_CAUSAL_LM, "kind %d", (int)balora_model_kind_get(m));
    CHECK(balora_model_vocab_size(m) == V && balora_model_n_outputs(m) == V, "vocab %lld outputs %lld",
          (long long)balora_model_vocab_size(m), (long long)balora_model_n_outputs(m));
    enum { B = 2, T = 5 };
    int64_t ids[B * T], mask[B * T];
    for (int i = 0; i < B * T; i++) { ids[i] = (i * 11 + 3) % V; mask[i] = i < T + 3 ? 1 : 0; }
    float *got = calloc(B * T * V, sizeof(float));
    CHECK_OK(balora_model_forward(m, B, T, ids, mask, BALORA_ADAPTER_MODE_ON, got, B * T * V));
    CHECK_FAILS(balora_model_forward(m, B, T, ids, mask, BALORA_ADAPTER_MODE_ON, got, B * T * V - 1), BALORA_STATUS_INVALID, "holds");
    bl_model im;
    bl_run r;
    CHECK_OK(bl_model_load(&im, g_model));
    CHECK_OK(bl_run_init(&r, &im, B, T));
    bl_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask};
    CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_ON));
    CHECK(memcmp(got, r.logits, sizeof(float) * B * T * V) == 0, "API logits differ from bl_model_forward's");
    long nonfinite = 0;
    for (int i = 0; i < B * T * V; i++) nonfinite += !isfinite(got[i]);
    CHECK(nonfinite == 0, "%ld non-finite logits", nonfinite);
    /* a larger batch after a smaller one (the run is planned again) */
    float *one = calloc(T * V, sizeof(float));
    CHECK_OK(balora_model_forward(m, 1, T, ids, mask, BALORA_ADAPTER_MODE_ON, one, T * V));
    CHECK(t_allclose("row 0 alone vs in the batch (other GEMM shapes)", one, got, T * V, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "row 0");
    float *again = calloc(B * T * V, sizeof(float));
    CHECK_OK(balora_model_forward(m, B, T, ids, mask, BALORA_ADAPTER_MODE_ON, again, B * T * V));
    CHECK(memcmp(again, got, sizeof(float) * B * T * V) == 0, "the same batch again gives other logits");
    free(again);
    bl_run_free(&r);
    bl_model_free(&im);
    free(one);
    free(got);
}

static void tokenizer(void) {
    balora_tokenizer *t = NULL;
    CHECK_OK(balora_tokenizer_init(&t, g_model));
    if (!t) { CHECK(false, "no tokenizer"); return; }
    CHECK(balora_tokenizer_vocab_size(t) == V, "vocab %lld", (long long)balora_tokenizer_vocab_size(t));
    CHECK(balora_tokenizer_special(t, BALORA_TOKEN_ROLE_CLS) == 2 && balora_tokenizer_special(t, BALORA_TOKEN_ROLE_SEP) == 3,
          "CLS %lld SEP %lld", (long long)balora_tokenizer_special(t, BALORA_TOKEN_ROLE_CLS), (long long)balora_tokenizer_special(t, BALORA_TOKEN_ROLE_SEP));
    int64_t ids[16], n = -1;
    CHECK_OK(balora_tokenizer_encode(t, "The cat sat on the mat.", -1, true, ids, 16, &n));
    static const int64_t want[] = {2, 5, 6, 7, 8, 5, 9, 18, 3};
    CHECK(n == 9 && memcmp(ids, want, sizeof want) == 0, "ids (n %lld)", (long long)n);
    CHECK_FAILS(balora_tokenizer_encode(t, "The cat sat on the mat.", -1, true, ids, 4, &n), BALORA_STATUS_INVALID, "needs 9 ids");
    CHECK(n == 9, "the full count is reported when the buffer is short: %lld", (long long)n);
    CHECK_OK(balora_tokenizer_encode(t, "dogs ran", 4, false, ids, 16, &n));
    CHECK(n == 2 && ids[0] == 11 && ids[1] == 16, "'dogs' -> %lld ids", (long long)n);
    char *text = NULL;
    int64_t len = -1;
    CHECK_OK(balora_tokenizer_decode(t, want, 9, true, &text, &len));
    CHECK(text && !strcmp(text, "the cat sat on the mat.") && len == (int64_t)strlen(text), "decoded '%s'", text ? text : "(null)");
    balora_string_free(text);
    int64_t bad = V + 5;
    CHECK_FAILS(balora_tokenizer_decode(t, &bad, 1, true, &text, NULL), BALORA_STATUS_INVALID, "");
    balora_tokenizer_free(t);
}

/* Greedy generation == argmax of the forward, step by step. */
static void generate(balora_model *m) {
    balora_generate_config gc;
    balora_generate_config_default(&gc);
    gc.max_new_tokens = 4;
    int64_t seq[16] = {2, 5, 6, 7};
    int64_t n0 = 4, out[8], n_out = 0;
    CHECK_OK(balora_model_generate(m, NULL, seq, n0, &gc, out, 8, &n_out, NULL));
    CHECK(n_out == 4, "%lld new tokens", (long long)n_out);
    float *z = calloc(16 * V, sizeof(float));
    for (int64_t k = 0; k < n_out; k++) {
        int64_t T = n0 + k;
        CHECK_OK(balora_model_forward(m, 1, T, seq, NULL, BALORA_ADAPTER_MODE_ON, z, 16 * V));
        int64_t best = 0;
        for (int64_t v = 1; v < V; v++) if (z[(T - 1) * V + v] > z[(T - 1) * V + best]) best = v;
        CHECK(out[k] == best, "token %lld: generated %lld, argmax %lld", (long long)k, (long long)out[k], (long long)best);
        seq[T] = out[k];
    }
    free(z);
    int64_t small[2];
    CHECK_FAILS(balora_model_generate(m, NULL, seq, n0, &gc, small, 2, &n_out, NULL), BALORA_STATUS_INVALID, "holds 2");
    int64_t oob = V;
    CHECK_FAILS(balora_model_generate(m, NULL, &oob, 1, &gc, out, 8, &n_out, NULL), BALORA_STATUS_INVALID, "outside the vocabulary");
    /* with the tokenizer: the text is the decoded completion */
    balora_tokenizer *t = NULL;
    CHECK_OK(balora_tokenizer_init(&t, g_model));
    char *text = NULL;
    CHECK_OK(balora_model_generate(m, t, seq, n0, &gc, out, 8, &n_out, &text));
    CHECK(text != NULL, "no text with a tokenizer");
    balora_string_free(text);
    balora_tokenizer_free(t);
}

static bool same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool ok = !bl_file_read(a, &x, &nx) && !bl_file_read(b, &y, &ny) && nx == ny && memcmp(x, y, nx) == 0;
    free(x); free(y);
    return ok;
}

/* Trains a LoRA 3 steps through the API and through the CLI with the same options: the same adapter. */
static void train(const char *tmp) {
    balora_model *m = NULL;
    CHECK_OK(balora_model_init(&m, g_model));
    if (!m) return;
    char out_api[4300], out_cli[4300], saved[4300], a[4400], b[4400];
    snprintf(out_api, sizeof out_api, "%s/adapter-api", tmp);
    snprintf(out_cli, sizeof out_cli, "%s/adapter-cli", tmp);
    snprintf(saved, sizeof saved, "%s/adapter-saved", tmp);
    balora_train_config tc;
    balora_train_config_default(&tc, BALORA_TRAIN_TASK_CAUSAL_LM);
    tc.data = g_data; tc.out_dir = out_api; tc.data_format = "tokens";
    tc.max_steps = 3; tc.batch_size = 4; tc.lr = 1e-2; tc.rank = 4; tc.alpha = 8; tc.targets = "q_proj,v_proj,down_proj";
    tc.threads = 1;
    balora_train_result res;
    CHECK_OK(balora_model_train(m, &tc, &res));
    CHECK(res.steps == 3 && isfinite(res.first_loss) && isfinite(res.last_loss), "steps %lld loss %g -> %g", (long long)res.steps,
          res.first_loss, res.last_loss);
    CHECK(balora_adapter_attached(m), "the trained adapter is attached");
    CHECK_FAILS(balora_model_train(m, &tc, NULL), BALORA_STATUS_INVALID, "already has an adapter");
    char cmd[20000];
    snprintf(cmd, sizeof cmd, "'%s' train --model '%s' --data '%s' --out '%s' --data-format tokens --max-steps 3 --batch-size 4 "
             "--lr 1e-2 --rank 4 --alpha 8 --targets q_proj,v_proj,down_proj --threads 1 >'%s/cli.log' 2>&1",
             t_cli(), g_model, g_data, out_cli, tmp);
    int rc = system(cmd);
    CHECK(rc == 0, "balora train failed (rc %d): see %s/cli.log", rc, tmp);
    snprintf(a, sizeof a, "%s/adapter_model.safetensors", out_api);
    snprintf(b, sizeof b, "%s/adapter_model.safetensors", out_cli);
    CHECK(same_file(a, b), "API-trained and CLI-trained adapters differ: %s vs %s", a, b);
    snprintf(a, sizeof a, "%s/adapter_config.json", out_api);
    snprintf(b, sizeof b, "%s/adapter_config.json", out_cli);
    CHECK(same_file(a, b), "adapter_config.json differs: %s vs %s", a, b);
    /* balora_adapter_save writes what the trainer wrote */
    CHECK_OK(balora_adapter_save(m, saved));
    snprintf(a, sizeof a, "%s/adapter_model.safetensors", out_api);
    snprintf(b, sizeof b, "%s/adapter_model.safetensors", saved);
    CHECK(same_file(a, b), "balora_adapter_save differs from the trained adapter");

    /* adapter on != off; a fresh model + the saved adapter == the trained handle */
    enum { T = 6 };
    int64_t ids[T] = {2, 5, 6, 7, 8, 9};
    float on[T * V], off[T * V], re[T * V], merged[T * V];
    CHECK_OK(balora_model_forward(m, 1, T, ids, NULL, BALORA_ADAPTER_MODE_ON, on, T * V));
    CHECK_OK(balora_model_forward(m, 1, T, ids, NULL, BALORA_ADAPTER_MODE_OFF, off, T * V));
    CHECK(memcmp(on, off, sizeof on) != 0, "the trained adapter changes nothing");
    balora_model *m2 = NULL;
    CHECK_OK(balora_model_init(&m2, g_model));
    if (m2) {
        CHECK_OK(balora_adapter_load(m2, saved));
        CHECK_OK(balora_model_forward(m2, 1, T, ids, NULL, BALORA_ADAPTER_MODE_ON, re, T * V));
        CHECK(memcmp(on, re, sizeof on) == 0, "model + loaded adapter differs from the trained handle");
        /* merged in memory: the base model now gives the adapter's logits (float rounding apart) */
        CHECK_OK(balora_adapter_merge(m2));
        CHECK(!balora_adapter_attached(m2), "merge detaches the adapter");
        CHECK_OK(balora_model_forward(m2, 1, T, ids, NULL, BALORA_ADAPTER_MODE_ON, merged, T * V));
        CHECK(t_allclose("merged in memory", merged, on, T * V, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "merged logits");
        CHECK_FAILS(balora_adapter_merge(m2), BALORA_STATUS_INVALID, "no adapter");
        balora_model_free(m2);
    }
    /* merged at the file level: the same */
    char mdir[4300];
    snprintf(mdir, sizeof mdir, "%s/merged", tmp);
    CHECK_OK(balora_adapter_merge_files(g_model, saved, mdir));
    balora_model *m3 = NULL;
    CHECK_OK(balora_model_init(&m3, mdir));
    if (m3) {
        CHECK_OK(balora_model_forward(m3, 1, T, ids, NULL, BALORA_ADAPTER_MODE_ON, merged, T * V));
        CHECK(t_allclose("merged files", merged, on, T * V, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "merged folder logits");
        balora_model_free(m3);
    }
    /* detach: the base model again */
    balora_adapter_detach(m);
    CHECK_OK(balora_model_forward(m, 1, T, ids, NULL, BALORA_ADAPTER_MODE_ON, re, T * V));
    CHECK(memcmp(re, off, sizeof re) == 0, "after detach the model is the base model");
    CHECK_FAILS(balora_adapter_save(m, saved), BALORA_STATUS_INVALID, "no adapter");
    /* seq-cls options on a causal LM are refused */
    balora_train_config sc;
    balora_train_config_default(&sc, BALORA_TRAIN_TASK_SEQ_CLS);
    sc.data = g_data; sc.out_dir = out_api;
    CHECK_FAILS(balora_model_train(m, &sc, NULL), BALORA_STATUS_INVALID, "a causal LM");
    balora_model_free(m);
}

int main(int argc, char **argv) {
    bl_blas_prepare_process(argc, argv);
    const char *tmp = t_tmpdir();
    make_model(tmp);
    errors(tmp);
    balora_model *m = NULL;
    CHECK_OK(balora_model_init(&m, g_model));
    if (m) {
        forward_matches_internal(m);
        generate(m);
        balora_model_free(m);
    } else CHECK(false, "could not load %s", g_model);
    tokenizer();
    train(tmp);
    return t_finish();
}
