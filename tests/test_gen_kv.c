/* Incremental decoding with the key-value cache (src/model/kv.h) against step-by-step
 * recomputation without a cache (bl_model_forward of the growing sequence, argmax at the last
 * position), token for token and logits within the golden tolerance:
 *   - the golden decoders gpt2, llama, mistral, qwen2, each without and with its lora/ adapter;
 *   - stories260K greedy from BOS equals transformers' greedy_from_bos (40 tokens);
 *   - a random llama-family model with a small sliding window and GQA, prompts split over several
 *     calls and query blocks (max_N small);
 *   - batched prompts of different lengths (packed, split over calls) give what one-by-one gives;
 *   - bad calls fail cleanly (row twice, too long, id out of range, adapters changed). */
#include "adapters/lora.h"
#include "harness.h"
#include "io/safetensors.h"
#include "model/kv.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t argmax(const float *z, int64_t V) {
    int64_t a = 0;
    for (int64_t v = 1; v < V; v++) if (z[v] > z[a]) a = v;
    return a;
}

/* Reference: full forward of the growing sequence each step. out [n_new], lg [n_new, V]. */
static void ref_greedy(bl_model *m, bl_adapter_mode mode, const int64_t *prompt, int64_t np, int64_t n_new,
                       int64_t *out, float *lg) {
    int64_t V = m->cfg.vocab_size, T = np + n_new;
    bl_run r;
    CHECK_OK(bl_run_init(&r, m, 1, T));
    int64_t *seq = calloc((size_t)T, sizeof(int64_t));
    memcpy(seq, prompt, (size_t)np * sizeof(int64_t));
    for (int64_t t = 0; t < n_new; t++) {
        bl_batch b = {.B = 1, .T = np + t, .input_ids = seq};
        CHECK_OK(bl_model_forward(&r, &b, mode));
        const float *z = r.logits + (np + t - 1) * V;
        memcpy(lg + t * V, z, (size_t)V * sizeof(float));
        seq[np + t] = out[t] = argmax(z, V);
    }
    free(seq);
    bl_run_free(&r);
}

/* Greedy with the cache for B prompts decoded together (rows in lockstep). out [B, n_new], lg [B, n_new, V]. */
static void kv_greedy(bl_model *m, bl_adapter_mode mode, int64_t B, const int64_t *const *prompts, const int64_t *lens,
                      int64_t n_new, int64_t max_N, int64_t *out, float *lg) {
    int64_t V = m->cfg.vocab_size, maxlen = 0;
    for (int64_t b = 0; b < B; b++) if (lens[b] > maxlen) maxlen = lens[b];
    bl_kv kv;
    CHECK_OK(bl_kv_init(&kv, m, B, maxlen + n_new, max_N));
    CHECK_OK(bl_kv_prefill(&kv, B, prompts, lens, mode));
    bl_kv_seg segs[16];
    int64_t next[16];
    for (int64_t t = 0; t < n_new; t++) {
        for (int64_t b = 0; b < B; b++) {
            const float *z = kv.logits + b * V;
            memcpy(lg + (b * n_new + t) * V, z, (size_t)V * sizeof(float));
            next[b] = out[b * n_new + t] = argmax(z, V);
            segs[b] = (bl_kv_seg){.row = b, .n = 1, .ids = &next[b]};
        }
        if (t + 1 < n_new) CHECK_OK(bl_kv_append(&kv, B, segs, mode));
    }
    for (int64_t b = 0; b < B; b++) CHECK(kv.len[b] == lens[b] + n_new - 1, "row %lld holds %lld tokens", (long long)b, (long long)kv.len[b]);
    bl_kv_free(&kv);
}

static void compare(const char *what, bl_model *m, bl_adapter_mode mode, int64_t B, const int64_t *const *prompts,
                    const int64_t *lens, int64_t n_new, int64_t max_N) {
    int64_t V = m->cfg.vocab_size;
    int64_t *got = calloc((size_t)(B * n_new), sizeof(int64_t)), *want = calloc((size_t)n_new, sizeof(int64_t));
    float *lg = calloc((size_t)(B * n_new * V), sizeof(float)), *rl = calloc((size_t)(n_new * V), sizeof(float));
    kv_greedy(m, mode, B, prompts, lens, n_new, max_N, got, lg);
    for (int64_t b = 0; b < B; b++) {
        ref_greedy(m, mode, prompts[b], lens[b], n_new, want, rl);
        int64_t agree = 0;
        while (agree < n_new && got[b * n_new + agree] == want[agree]) agree++;
        CHECK(agree == n_new, "%s row %lld: cached greedy agrees with recomputation for %lld of %lld tokens",
              what, (long long)b, (long long)agree, (long long)n_new);
        char name[160];
        snprintf(name, sizeof name, "%s row %lld logits (cache vs recomputation)", what, (long long)b);
        CHECK(t_allclose(name, lg + b * n_new * V, rl, (long)(agree * V), T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", name);
    }
    free(got); free(want); free(lg); free(rl);
}

static void golden(const char *sh, const char *arch) {
    char dir[1024], lora[1100], io[1100];
    snprintf(dir, sizeof dir, "%s/golden/%s", sh, arch);
    snprintf(lora, sizeof lora, "%s/lora", dir);
    snprintf(io, sizeof io, "%s/io.safetensors", dir);
    bl_model m;
    CHECK_OK(bl_model_load(&m, dir));
    bl_st_file f;
    CHECK_OK(bl_st_open(&f, io));
    int64_t ids[32];
    CHECK_OK(bl_st_tensor_to_i64(&f, bl_st_find(&f, "input_ids"), ids));
    const int64_t *p[3] = {ids, ids + 16, ids + 3};
    int64_t lens[3] = {5, 11, 1};
    char what[128];
    for (int with = 0; with < 2; with++) {
        bl_adapter ad;
        memset(&ad, 0, sizeof ad);
        if (with) CHECK_OK(bl_lora_load(&ad, &m.mods, lora, false));
        snprintf(what, sizeof what, "%s%s", arch, with ? "+lora" : "");
        compare(what, &m, BL_ADAPTER_ON, 1, p, lens, 40, 64);          /* one prompt */
        compare(what, &m, BL_ADAPTER_ON, 3, p, lens, 24, 7);           /* batch, calls split */
        if (with) {
            /* the adapter really changes generation, and OFF is the base model */
            int64_t a[24], b[24];
            float *l1 = malloc(sizeof(float) * 24 * m.cfg.vocab_size), *l2 = malloc(sizeof(float) * 24 * m.cfg.vocab_size);
            kv_greedy(&m, BL_ADAPTER_ON, 1, p, lens, 24, 64, a, l1);
            kv_greedy(&m, BL_ADAPTER_OFF, 1, p, lens, 24, 64, b, l2);
            double d = 0;
            for (int64_t i = 0; i < m.cfg.vocab_size; i++) d += fabsf(l1[i] - l2[i]);
            CHECK(d > 1e-3, "%s: the adapter changes the first logits (sum |diff| %g)", arch, d);
            snprintf(what, sizeof what, "%s+lora OFF", arch);
            compare(what, &m, BL_ADAPTER_OFF, 1, p, lens, 20, 64);
            /* adapters changed after the session was made */
            bl_kv kv;
            CHECK_OK(bl_kv_init(&kv, &m, 1, 8, 8));
            bl_lora_free(&ad);
            bl_kv_seg sg = {.row = 0, .n = 1, .ids = ids};
            CHECK_FAILS(bl_kv_append(&kv, 1, &sg, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "adapters were attached or detached");
            bl_kv_free(&kv);
            free(l1); free(l2);
        }
        bl_lora_free(&ad);
    }
    bl_st_close(&f);
    bl_model_free(&m);
}

static void stories(const char *sh) {
    char bin[1024], io[1024];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", sh);
    snprintf(io, sizeof io, "%s/golden/stories260K/io.safetensors", sh);
    bl_model m;
    CHECK_OK(bl_model_load_llama2c(&m, bin));
    bl_st_file f;
    CHECK_OK(bl_st_open(&f, io));
    const bl_st_tensor *tg = bl_st_find(&f, "greedy_from_bos");
    CHECK(tg && tg->numel == 41, "greedy_from_bos has 41 tokens");
    int64_t want[41], got[40];
    CHECK_OK(bl_st_tensor_to_i64(&f, tg, want));
    float *lg = malloc(sizeof(float) * 40 * m.cfg.vocab_size);
    int64_t bos = 1, len = 1;
    const int64_t *p = &bos;
    kv_greedy(&m, BL_ADAPTER_ON, 1, &p, &len, 40, 16, got, lg);
    CHECK(memcmp(got, want + 1, sizeof got) == 0, "stories260K greedy from BOS with the cache equals transformers' greedy_from_bos");
    compare("stories260K", &m, BL_ADAPTER_ON, 1, &p, &len, 40, 16);
    /* batch: BOS alone and two longer prompts taken from the greedy text */
    const int64_t *pb[3] = {want, want, want + 5};
    int64_t lb[3] = {1, 9, 4};
    compare("stories260K batch", &m, BL_ADAPTER_ON, 3, pb, lb, 20, 6);
    free(lg);
    bl_st_close(&f);
    bl_model_free(&m);
}

static void random_models(void) {
    for (int fam = 0; fam < 2; fam++) {
        bl_config c;
        bl_config_defaults(&c, fam ? BL_FAMILY_LLAMA : BL_FAMILY_GPT2);
        c.vocab_size = 97; c.hidden = 32; c.n_layer = 2; c.n_head = 4; c.n_kv_head = fam ? 2 : 4; c.head_dim = 8;
        c.intermediate = 48; c.max_pos = 96;
        if (fam) c.sliding_window = 5;
        bl_model m;
        CHECK_OK(bl_model_init_random(&m, &c, 7 + fam, 0.3f));
        int64_t ids[40];
        for (int i = 0; i < 40; i++) ids[i] = (i * 37 + 11) % c.vocab_size;
        const int64_t *p[4] = {ids, ids + 3, ids + 20, ids + 9};
        int64_t lens[4] = {17, 2, 9, 1};
        const char *what = fam ? "random llama (GQA, sliding window 5)" : "random gpt2";
        compare(what, &m, BL_ADAPTER_ON, 1, p, lens, 30, 4);   /* prompt of 17 over 5 calls, query blocks of 4 */
        compare(what, &m, BL_ADAPTER_ON, 4, p, lens, 20, 5);
        compare(what, &m, BL_ADAPTER_ON, 4, p, lens, 20, 512);

        /* errors */
        bl_kv kv;
        CHECK_FAILS(bl_kv_init(&kv, &m, 2, 10, 1), BALORA_STATUS_INVALID, "tokens per call");
        CHECK_OK(bl_kv_init(&kv, &m, 2, 10, 16));
        int64_t bad = c.vocab_size;
        bl_kv_seg s2[2] = {{.row = 0, .n = 2, .ids = ids}, {.row = 0, .n = 1, .ids = ids}};
        CHECK_FAILS(bl_kv_append(&kv, 2, s2, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "appears twice");
        bl_kv_seg s1 = {.row = 1, .n = 11, .ids = ids};
        CHECK_FAILS(bl_kv_append(&kv, 1, &s1, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "more than the 10 planned");
        s1 = (bl_kv_seg){.row = 1, .n = 1, .ids = &bad};
        CHECK_FAILS(bl_kv_append(&kv, 1, &s1, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "outside the vocabulary");
        s1 = (bl_kv_seg){.row = 2, .n = 1, .ids = ids};
        CHECK_FAILS(bl_kv_append(&kv, 1, &s1, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "row 2 outside");
        CHECK(kv.len[0] == 0 && kv.len[1] == 0, "failed calls leave the rows empty");
        s1 = (bl_kv_seg){.row = 1, .n = 3, .ids = ids};
        CHECK_OK(bl_kv_append(&kv, 1, &s1, BL_ADAPTER_ON));
        int64_t one = 3;
        const int64_t *pp[2] = {ids, ids};
        int64_t ll[2] = {2, 2};
        CHECK_FAILS(bl_kv_prefill(&kv, 2, pp, ll, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "not empty");
        bl_kv_reset(&kv);
        ll[1] = 0;
        CHECK_FAILS(bl_kv_prefill(&kv, 2, pp, ll, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "empty");
        (void)one;
        bl_kv_free(&kv);
        if (!fam) {
            CHECK_FAILS(bl_kv_init(&kv, &m, 1, 97, 4), BALORA_STATUS_INVALID, "n_positions");
        }
        bl_model_free(&m);
    }
}

int main(void) {
    balora_threads_set(1); /* tiny models: one thread is fastest, and the suite runs tests in parallel */
    random_models(); /* self-contained: runs without ../shared */
    const char *sh = t_require_shared();
    const char *archs[] = {"gpt2", "llama", "mistral", "qwen2"};
    for (int i = 0; i < 4; i++) golden(sh, archs[i]);
    stories(sh);
    return t_finish();
}
