/* Incremental decoding with the key/value cache gives, at every position, the logits of a full
 * forward of the whole sequence (gpt2, llama, mistral, qwen2; base, LoRA and teacher modes;
 * a prompt chunk, then one token at a time; src/model/kv.h), and greedy decoding of stories260K with the cache
 * reproduces transformers' greedy_from_bos. */
#include "harness.h"
#include "adapters/lora.h"
#include "io/safetensors.h"
#include "model/kv.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Appends ids [B, n] (row b's tokens at ids + b * n) to rows 0..B-1; kv->logits row b then holds
 * the logits after row b's last new token. */
static balora_status decode_rows(bl_kv *kv, const int64_t *ids, int64_t B, int64_t n, bl_adapter_mode mode) {
    bl_kv_seg segs[8];
    for (int64_t b = 0; b < B; b++) segs[b] = (bl_kv_seg){.row = b, .n = n, .ids = ids + b * n};
    return bl_kv_append(kv, B, segs, mode);
}

static void check_arch(const char *shared, const char *arch) {
    char dir[1024], adir[1100];
    snprintf(dir, sizeof dir, "%s/golden/%s", shared, arch);
    snprintf(adir, sizeof adir, "%s/lora", dir);
    bl_model m;
    CHECK_OK(bl_model_load(&m, dir));
    bl_adapter ad;
    CHECK_OK(bl_lora_load(&ad, &m.mods, adir, true));
    for (int i = 0; i < ad.n; i++) /* INITIAL must differ from ON: perturb the trainable copy */
        for (int64_t k = 0; k < ad.mods[i].r * ad.mods[i].in; k++) ad.mods[i].A[k] *= 0.5f;
    enum { B = 2, T = 13 };
    int64_t ids[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (i * 37 + 11) % 256;
    int64_t V = m.cfg.vocab_size;
    bl_run r;
    CHECK_OK(bl_run_init(&r, &m, B, T));
    bl_kv kv;
    CHECK_OK(bl_kv_init(&kv, &m, B, T, B * 5));
    float *full = malloc(sizeof(float) * B * T * V);
    int64_t chunk[B * 5];
    for (int mode = 0; mode < 3; mode++) {
        bl_batch b = {.B = B, .T = T, .input_ids = ids};
        CHECK_OK(bl_model_forward(&r, &b, (bl_adapter_mode)mode));
        memcpy(full, r.logits, sizeof(float) * B * T * V);
        bl_kv_reset(&kv);
        double worst = 0;
        int64_t t = 0;
        while (t < T) {
            int64_t n = t == 0 ? 5 : 1;
            for (int64_t bb = 0; bb < B; bb++) memcpy(chunk + bb * n, ids + bb * T + t, sizeof(int64_t) * n);
            CHECK_OK(decode_rows(&kv, chunk, B, n, (bl_adapter_mode)mode));
            for (int64_t bb = 0; bb < B; bb++) /* the logits after each row's last new token */
                for (int64_t v = 0; v < V; v++)
                    worst = fmax(worst, fabs(kv.logits[bb * V + v] - full[(bb * T + t + n - 1) * V + v]));
            t += n;
        }
        CHECK(worst < 1e-4, "%s mode %d: cached decoding vs full forward max |diff| %g", arch, mode, worst);
        printf("ok %s mode %d: max |diff| %.2e\n", arch, mode, worst);
    }
    int64_t one = 1;
    CHECK_FAILS(decode_rows(&kv, &one, 1, 1, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "more than the 13 planned");
    free(full);
    bl_kv_free(&kv);
    bl_run_free(&r);
    bl_lora_free(&ad);
    bl_model_free(&m);
}

/* a random mistral-like model with sliding window 3 over 12 positions (window matters) */
static void check_window(void) {
    bl_config c;
    bl_config_defaults(&c, BL_FAMILY_LLAMA);
    c.vocab_size = 50; c.hidden = 16; c.n_layer = 2; c.n_head = 4; c.n_kv_head = 2; c.head_dim = 4; c.intermediate = 24;
    c.max_pos = 32; c.sliding_window = 3;
    bl_model m;
    CHECK_OK(bl_model_init_random(&m, &c, 7, 0.5f));
    enum { T = 12 };
    int64_t ids[T];
    for (int i = 0; i < T; i++) ids[i] = (i * 7 + 3) % 50;
    bl_run r;
    CHECK_OK(bl_run_init(&r, &m, 1, T));
    bl_batch b = {.B = 1, .T = T, .input_ids = ids};
    CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_ON));
    bl_kv kv;
    CHECK_OK(bl_kv_init(&kv, &m, 1, T, 1));
    double worst = 0;
    for (int t = 0; t < T; t++) {
        CHECK_OK(decode_rows(&kv, &ids[t], 1, 1, BL_ADAPTER_ON));
        for (int v = 0; v < 50; v++) worst = fmax(worst, fabs(kv.logits[v] - r.logits[t * 50 + v]));
    }
    CHECK(worst < 1e-4, "sliding window: cached decoding vs full forward %g", worst);
    /* and the window changes the result (it is applied at all) */
    c.sliding_window = 0;
    bl_model m2;
    CHECK_OK(bl_model_init_random(&m2, &c, 7, 0.5f));
    bl_run r2;
    CHECK_OK(bl_run_init(&r2, &m2, 1, T));
    CHECK_OK(bl_model_forward(&r2, &b, BL_ADAPTER_ON));
    double d = 0;
    for (int i = 0; i < T * 50; i++) d = fmax(d, fabs(r2.logits[i] - r.logits[i]));
    CHECK(d > 1e-3, "window makes a difference (%g)", d);
    printf("ok sliding window 3: max |diff| %.2e (no-window difference %.2e)\n", worst, d);
    bl_run_free(&r2); bl_model_free(&m2);
    bl_kv_free(&kv); bl_run_free(&r); bl_model_free(&m);
}

int main(void) {
    check_window(); /* self-contained: runs without ../shared */
    const char *shared = t_require_shared();
    const char *archs[] = {"gpt2", "gpt2_all", "llama", "mistral", "qwen2"};
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++) check_arch(shared, archs[i]);

    /* stories260K greedy decoding with the cache */
    char bin[1024], io[1024];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", shared);
    snprintf(io, sizeof io, "%s/golden/stories260K/io.safetensors", shared);
    bl_model m;
    CHECK_OK(bl_model_load_llama2c(&m, bin));
    bl_st_file f;
    CHECK_OK(bl_st_open(&f, io));
    const bl_st_tensor *tg = bl_st_find(&f, "greedy_from_bos");
    int64_t G = tg->shape[1];
    int64_t *want = malloc(sizeof(int64_t) * G), *seq = malloc(sizeof(int64_t) * G);
    CHECK_OK(bl_st_tensor_to_i64(&f, tg, want));
    bl_kv kv;
    CHECK_OK(bl_kv_init(&kv, &m, 1, G, 1));
    seq[0] = 1;
    for (int64_t t = 1; t < G; t++) {
        CHECK_OK(decode_rows(&kv, &seq[t - 1], 1, 1, BL_ADAPTER_ON));
        int64_t a = 0;
        for (int64_t v = 1; v < m.cfg.vocab_size; v++) if (kv.logits[v] > kv.logits[a]) a = v;
        seq[t] = a;
    }
    CHECK(memcmp(seq, want, sizeof(int64_t) * G) == 0, "stories260K greedy decoding with the cache matches transformers");
    bl_kv_free(&kv);
    free(want); free(seq);
    bl_st_close(&f);
    bl_model_free(&m);
    return t_finish();
}
