/* A program that embeds balora through its installed header only (tests/cli_install.sh builds it
 * with `pkg-config --cflags --libs balora`).
 *   embed MODEL TOKENIZER DATA.jsonl OUT_DIR
 * Loads MODEL, tokenizes a sentence with TOKENIZER, runs a forward (finite logits of the right
 * size), generates 4 tokens, trains a LoRA adapter 3 steps on DATA (token ids) and saves it. */
#include <balora.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define TRY(x) do { if ((x) != BALORA_STATUS_OK) { \
    fprintf(stderr, "embed: %s failed (%s): %s\n", #x, balora_status_name(balora_status_last), balora_last_error()); return 1; } } while (0)
static balora_status balora_status_last;
#define CALL(x) (balora_status_last = (x))

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: embed MODEL TOKENIZER DATA OUT_DIR\n"); return 2; }
    printf("balora %s\n", balora_version());
    balora_model *m = NULL;
    balora_tokenizer *t = NULL;
    TRY(CALL(balora_model_init(&m, argv[1])));
    TRY(CALL(balora_tokenizer_init(&t, argv[2])));
    int64_t ids[64], n = 0, V = balora_model_n_outputs(m);
    TRY(CALL(balora_tokenizer_encode(t, "the cat sat on the mat", -1, true, ids, 64, &n)));
    for (int64_t i = 0; i < n; i++) ids[i] %= balora_model_vocab_size(m);
    float *logits = malloc((size_t)(n * V) * sizeof(float));
    if (!logits) return 1;
    TRY(CALL(balora_model_forward(m, 1, n, ids, NULL, BALORA_ADAPTER_MODE_ON, logits, n * V)));
    int64_t bad = 0;
    for (int64_t i = 0; i < n * V; i++) bad += !isfinite(logits[i]);
    printf("forward: %lld tokens x %lld logits, %lld not finite\n", (long long)n, (long long)V, (long long)bad);
    if (bad || V != balora_model_vocab_size(m) || balora_model_kind_get(m) != BALORA_MODEL_KIND_CAUSAL_LM) return 1;

    balora_generate_config gc;
    balora_generate_config_default(&gc);
    gc.max_new_tokens = 4;
    int64_t out[8], n_out = 0;
    TRY(CALL(balora_model_generate(m, NULL, ids, n, &gc, out, 8, &n_out, NULL)));
    printf("generated %lld tokens:", (long long)n_out);
    for (int64_t i = 0; i < n_out; i++) printf(" %lld", (long long)out[i]);
    printf("\n");
    if (n_out < 1) return 1;

    balora_train_config tc;
    balora_train_config_default(&tc, BALORA_TRAIN_TASK_CAUSAL_LM);
    tc.data = argv[3];
    tc.data_format = "tokens";
    tc.out_dir = argv[4];
    tc.max_steps = 3;
    tc.batch_size = 2;
    balora_train_result r;
    TRY(CALL(balora_model_train(m, &tc, &r)));
    printf("trained %lld steps, loss %.4f -> %.4f\n", (long long)r.steps, r.first_loss, r.last_loss);
    TRY(CALL(balora_adapter_save(m, argv[4])));
    if (r.steps != 3 || !isfinite(r.last_loss)) return 1;
    /* the errors are the library's, with a message */
    balora_model *none = NULL;
    if (balora_model_init(&none, "/nonexistent/balora-model") == BALORA_STATUS_OK) return 1;
    printf("missing model: %s\n", balora_last_error());
    free(logits);
    balora_tokenizer_free(t);
    balora_model_free(m);
    printf("ok\n");
    return 0;
}
