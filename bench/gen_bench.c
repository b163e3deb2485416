/* Generation speed with and without the key-value cache (greedy decoding):
 *   cache   : src/model/kv.h (prefill the prompt, then one token's forward per new token);
 *   nocache : bl_model_forward of the whole growing sequence per new token, argmax at its end
 *             (what generation costs without a cache).
 * Models: a GPT-2-small-shaped model with random weights (124M parameters, V 50257) and, when a
 * path is given, stories260K (llama2.c .bin). Both modes must produce the same tokens (checked).
 * Prints "model,mode,batch,prompt,new_tokens,seconds,tokens_per_s" lines (tokens/s counts new tokens
 * over all rows, prefill included in the time).
 *   usage: gen_bench [stories260K.bin|-] [new_tokens=64] [prompt=16] [threads=0 (all)] [batch=8] [gpt2=1]
 * Built and run by bench/gen_bench.sh against build/libbalora.a. */
#include "core/bl.h"
#include "model/kv.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t argmax(const float *z, int64_t V) {
    int64_t a = 0;
    for (int64_t v = 1; v < V; v++) if (z[v] > z[a]) a = v;
    return a;
}

static int check(balora_status st) {
    if (st) { fprintf(stderr, "error: %s\n", balora_last_error()); exit(1); }
    return 0;
}

/* greedy with the cache for B identical-shape prompts (different ids per row); out [B, n_new] */
static double run_cache(bl_model *m, int64_t B, const int64_t *prompt, int64_t P, int64_t n_new, int64_t *out) {
    bl_kv kv;
    check(bl_kv_init(&kv, m, B, P + n_new, 256 > B ? 256 : B));
    const int64_t **pp = malloc((size_t)B * sizeof *pp);
    int64_t *lens = malloc((size_t)B * sizeof *lens), *next = malloc((size_t)B * sizeof *next);
    bl_kv_seg *segs = malloc((size_t)B * sizeof *segs);
    for (int64_t b = 0; b < B; b++) { pp[b] = prompt + b * P; lens[b] = P; }
    int64_t V = m->cfg.vocab_size;
    double t0 = bl_time_now();
    check(bl_kv_prefill(&kv, B, pp, lens, BL_ADAPTER_ON));
    for (int64_t t = 0; t < n_new; t++) {
        for (int64_t b = 0; b < B; b++) {
            next[b] = out[b * n_new + t] = argmax(kv.logits + b * V, V);
            segs[b] = (bl_kv_seg){.row = b, .n = 1, .ids = &next[b]};
        }
        if (t + 1 < n_new) check(bl_kv_append(&kv, B, segs, BL_ADAPTER_ON));
    }
    double s = bl_time_now() - t0;
    bl_kv_free(&kv);
    free(pp); free(lens); free(next); free(segs);
    return s;
}

static double run_nocache(bl_model *m, const int64_t *prompt, int64_t P, int64_t n_new, int64_t *out) {
    bl_run r;
    check(bl_run_init(&r, m, 1, P + n_new));
    int64_t *seq = malloc((size_t)(P + n_new) * sizeof *seq);
    memcpy(seq, prompt, (size_t)P * sizeof *seq);
    int64_t V = m->cfg.vocab_size;
    double t0 = bl_time_now();
    for (int64_t t = 0; t < n_new; t++) {
        bl_batch b = {.B = 1, .T = P + t, .input_ids = seq};
        check(bl_model_forward(&r, &b, BL_ADAPTER_ON));
        seq[P + t] = out[t] = argmax(r.logits + (P + t - 1) * V, V);
    }
    double s = bl_time_now() - t0;
    bl_run_free(&r);
    free(seq);
    return s;
}

static void bench(const char *name, bl_model *m, int64_t P, int64_t n_new, int64_t batch) {
    int64_t V = m->cfg.vocab_size;
    int64_t *prompt = malloc((size_t)(batch * P) * sizeof *prompt);
    for (int64_t i = 0; i < batch * P; i++) prompt[i] = (i * 7919 + 13) % V;
    int64_t *a = malloc((size_t)(batch * n_new) * sizeof *a), *b = malloc((size_t)n_new * sizeof *b);
    double s1 = run_cache(m, 1, prompt, P, n_new, a);
    printf("%s,cache,1,%lld,%lld,%.4f,%.1f\n", name, (long long)P, (long long)n_new, s1, n_new / s1);
    double s0 = run_nocache(m, prompt, P, n_new, b);
    printf("%s,nocache,1,%lld,%lld,%.4f,%.1f\n", name, (long long)P, (long long)n_new, s0, n_new / s0);
    int64_t agree = 0;
    while (agree < n_new && a[agree] == b[agree]) agree++;
    fprintf(stderr, "# %s: cache and no-cache greedy agree on %lld / %lld tokens; speed-up %.1fx\n", name, (long long)agree,
            (long long)n_new, s0 / s1);
    if (batch > 1) {
        double sb = run_cache(m, batch, prompt, P, n_new, a);
        printf("%s,cache,%lld,%lld,%lld,%.4f,%.1f\n", name, (long long)batch, (long long)P, (long long)n_new, sb,
               (double)(batch * n_new) / sb);
        int64_t same = 0;
        while (same < n_new && a[same] == b[same]) same++;
        fprintf(stderr, "# %s: row 0 of the batch agrees with one-by-one on %lld / %lld tokens\n", name, (long long)same, (long long)n_new);
    }
    fflush(stdout);
    free(prompt); free(a); free(b);
}

int main(int argc, char **argv) {
    bl_blas_prepare_process(argc, argv);
    const char *stories = argc > 1 && strcmp(argv[1], "-") ? argv[1] : NULL;
    int64_t n_new = argc > 2 ? atoll(argv[2]) : 64, P = argc > 3 ? atoll(argv[3]) : 16;
    balora_threads_set(argc > 4 ? atoi(argv[4]) : 0);
    int64_t batch = argc > 5 ? atoll(argv[5]) : 8;
    bool gpt2 = argc > 6 ? atoi(argv[6]) != 0 : true;
    if (n_new < 1 || P < 1 || batch < 1) { fprintf(stderr, "usage: gen_bench [stories260K.bin|-] [new_tokens] [prompt] [threads] [batch]\n"); return 2; }
    fprintf(stderr, "# %s\n", balora_blas_info());
    printf("model,mode,batch,prompt,new_tokens,seconds,tokens_per_s\n");
    if (stories) {
        bl_model m;
        check(bl_model_load_llama2c(&m, stories));
        bench("stories260K", &m, P, n_new, batch);
        bl_model_free(&m);
    }
    if (!gpt2) return 0;
    bl_config c;
    bl_config_defaults(&c, BL_FAMILY_GPT2); /* GPT-2 small: 12 layers, 768 wide, 12 heads, V 50257 */
    bl_model m;
    check(bl_model_init_random(&m, &c, 1, 0.02f));
    bench("gpt2-small-random", &m, P, n_new, batch);
    bl_model_free(&m);
    return 0;
}
