/* Sampling and the generation loop (src/eval/generate.h):
 *   - bl_gen_sample: greedy = argmax; top-k = 1 equals greedy at any temperature; draws follow the
 *     softmax at the temperature (frequencies over many draws), top-k and top-p keep exactly the
 *     tokens transformers' warpers keep;
 *   - bl_gen_batch: greedy equals the cache-free recomputation; a batch of prompts of different
 *     lengths gives what one-by-one gives (greedy and sampled, since each prompt has its own
 *     seeded generator); a seed repeats its results and another seed changes them; top-k = 1
 *     sampling equals greedy; EOS ends a row (kept in ids); max_new_tokens;
 *   - stop strings with the GPT-2 tokenizer: the text is cut before the first stop string and the
 *     streamed pieces add up to the final text. */
#include "eval/generate.h"
#include "harness.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void sampler(void) {
    enum { V = 6 };
    float z[V] = {1.0f, 3.0f, 0.5f, 2.0f, -1.0f, 2.0f};
    double p[V];
    int32_t idx[V];
    bl_gen_opts o;
    bl_gen_opts_default(&o);
    bl_rng rng;
    bl_rng_seed(&rng, 1);
    CHECK(bl_gen_sample(z, V, &o, &rng, p, idx) == 1, "greedy is the argmax");
    o.temperature = 1.7; o.top_k = 1;
    int ok = 1;
    for (int i = 0; i < 200; i++) ok &= bl_gen_sample(z, V, &o, &rng, p, idx) == 1;
    CHECK(ok, "top-k 1 always gives the argmax");
    /* frequencies at temperature 0.8 follow softmax(z / 0.8) */
    for (int mode = 0; mode < 4; mode++) {
        o.temperature = 0.8; o.top_k = 0; o.top_p = 1.0;
        if (mode == 1) o.top_k = 3;           /* keeps 1, 3, 5 (ties: lower id first) */
        if (mode == 2) o.top_p = 0.6;
        if (mode == 3) { o.top_k = 4; o.top_p = 0.9; }
        double w[V], sum = 0;
        for (int v = 0; v < V; v++) { w[v] = exp(z[v] / 0.8); }
        bool keep[V] = {1, 1, 1, 1, 1, 1};
        if (mode == 1 || mode == 3) { keep[0] = mode == 3; keep[2] = keep[4] = false; }
        if (mode == 2 || mode == 3) {
            /* transformers' TopP over the kept set, ascending cumulative <= 1 - p removed */
            double s = 0; for (int v = 0; v < V; v++) if (keep[v]) s += w[v];
            int order[V] = {4, 2, 0, 5, 3, 1}; /* ascending logits (ties: the higher id first) */
            double cum = 0;
            for (int i = 0; i < V - 1; i++) {
                int v = order[i];
                if (!keep[v]) continue;
                cum += w[v] / s;
                if (cum <= 1.0 - o.top_p) keep[v] = false; else break;
            }
        }
        /* tokens tied with the lowest kept logit stay too (generate.h) */
        float cutz = 1e30f;
        for (int v = 0; v < V; v++) if (keep[v] && z[v] < cutz) cutz = z[v];
        for (int v = 0; v < V; v++) if (z[v] == cutz) keep[v] = true;
        for (int v = 0; v < V; v++) { if (!keep[v]) w[v] = 0; sum += w[v]; }
        long cnt[V] = {0};
        int n = 40000;
        for (int i = 0; i < n; i++) cnt[bl_gen_sample(z, V, &o, &rng, p, idx)]++;
        double worst = 0;
        for (int v = 0; v < V; v++) {
            double want = w[v] / sum, got = (double)cnt[v] / n, sd = sqrt(want * (1 - want) / n) + 1e-12;
            if (want == 0) CHECK(cnt[v] == 0, "mode %d: token %d is never drawn (drawn %ld times)", mode, v, cnt[v]);
            else if (fabs(got - want) / sd > worst) worst = fabs(got - want) / sd;
        }
        CHECK(worst < 5.0, "mode %d: frequencies follow the warped softmax (worst deviation %.2f sd)", mode, worst);
    }
    /* a big vocabulary through the sorting path */
    enum { BV = 1000 };
    static float zb[BV];
    static double pb[BV];
    static int32_t ib[BV];
    for (int v = 0; v < BV; v++) zb[v] = (float)((v * 7919) % 1000) / 100.0f;
    o.temperature = 1.0; o.top_k = 100; o.top_p = 0.5;
    ok = 1;
    for (int i = 0; i < 500; i++) { int64_t t = bl_gen_sample(zb, BV, &o, &rng, pb, ib); ok &= zb[t] >= 9.0f; }
    CHECK(ok, "top-k 100 / top-p 0.5 over 1000 tokens draws only among the highest logits");
    bl_gen_opts bad = o;
    bad.top_p = 0; CHECK_FAILS(bl_gen_opts_check(&bad), BALORA_STATUS_INVALID, "top-p");
    bad = o; bad.temperature = -1; CHECK_FAILS(bl_gen_opts_check(&bad), BALORA_STATUS_INVALID, "temperature");
    bad = o; bad.max_new_tokens = 0; CHECK_FAILS(bl_gen_opts_check(&bad), BALORA_STATUS_INVALID, "max new tokens");
}

static void run(bl_model *m, bl_tok *tok, const bl_gen_opts *o, int64_t B, int64_t maxB, const int64_t *const *p,
                const int64_t *lens, const int64_t *index, bl_gen_out *out) {
    bl_generator g;
    int64_t mp = 0;
    for (int64_t b = 0; b < B; b++) if (lens[b] > mp) mp = lens[b];
    CHECK_OK(bl_gen_init(&g, m, tok, o, maxB, mp));
    CHECK_OK(bl_gen_batch(&g, B, p, lens, index, out, NULL, NULL));
    bl_gen_free(&g);
}

static bool same(const bl_gen_out *a, const bl_gen_out *b) {
    return a->n_new == b->n_new && a->finish == b->finish && !memcmp(a->ids, b->ids, (size_t)a->n_new * sizeof(int64_t));
}

static void generation(const char *sh) {
    char bin[1024];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", sh);
    bl_model m;
    CHECK_OK(bl_model_load_llama2c(&m, bin));
    int64_t V = m.cfg.vocab_size;
    int64_t seq[64] = {1};
    /* cache-free greedy reference for BOS */
    bl_run r;
    CHECK_OK(bl_run_init(&r, &m, 1, 64));
    for (int t = 1; t < 31; t++) {
        bl_batch bt = {.B = 1, .T = t, .input_ids = seq};
        CHECK_OK(bl_model_forward(&r, &bt, BL_ADAPTER_ON));
        const float *z = r.logits + (t - 1) * V;
        int64_t a = 0;
        for (int64_t v = 1; v < V; v++) if (z[v] > z[a]) a = v;
        seq[t] = a;
    }
    bl_run_free(&r);
    bl_gen_opts o;
    bl_gen_opts_default(&o);
    o.max_new_tokens = 30;
    const int64_t *p[4] = {seq, seq, seq + 2, seq + 10};
    int64_t lens[4] = {1, 7, 3, 12}, index[4] = {0, 1, 2, 3};
    bl_gen_out one[4], all[4];
    run(&m, NULL, &o, 1, 1, p, lens, NULL, one);
    CHECK(one[0].n_new == 30 && one[0].finish == BL_GEN_FINISH_LENGTH && !memcmp(one[0].ids, seq + 1, 30 * sizeof(int64_t)),
          "greedy generation from BOS equals the cache-free recomputation");
    CHECK(one[0].text == NULL, "no text without a tokenizer");
    bl_gen_out_free(&one[0]);
    /* batch vs one-by-one: greedy, then sampled */
    for (int s = 0; s < 3; s++) {
        if (s == 1) { o.temperature = 0.9; o.top_p = 0.95; o.seed = 1234; }
        if (s == 2) { o.temperature = 1.3; o.top_k = 20; o.top_p = 1.0; o.seed = 99; o.max_N = 5; }
        run(&m, NULL, &o, 4, 4, p, lens, index, all);
        for (int b = 0; b < 4; b++) {
            run(&m, NULL, &o, 1, 1, &p[b], &lens[b], &index[b], &one[b]);
            CHECK(same(&all[b], &one[b]), "setting %d prompt %d: batched equals one-by-one", s, b);
        }
        if (s > 0) {
            bl_gen_out again[4];
            run(&m, NULL, &o, 4, 4, p, lens, index, again);
            bool rep = true;
            for (int b = 0; b < 4; b++) rep &= same(&again[b], &all[b]);
            CHECK(rep, "setting %d: the same seed repeats its results", s);
            for (int b = 0; b < 4; b++) bl_gen_out_free(&again[b]);
            bl_gen_opts o2 = o;
            o2.seed = o.seed + 1;
            run(&m, NULL, &o2, 4, 4, p, lens, index, again);
            bool diff = false;
            for (int b = 0; b < 4; b++) diff |= !same(&again[b], &all[b]);
            CHECK(diff, "setting %d: another seed gives other samples", s);
            for (int b = 0; b < 4; b++) bl_gen_out_free(&again[b]);
        }
        for (int b = 0; b < 4; b++) { bl_gen_out_free(&all[b]); bl_gen_out_free(&one[b]); }
    }
    /* top-k 1 sampling equals greedy */
    bl_gen_opts og, ok1;
    bl_gen_opts_default(&og);
    og.max_new_tokens = 25;
    ok1 = og; ok1.temperature = 2.0; ok1.top_k = 1; ok1.seed = 5;
    run(&m, NULL, &og, 4, 4, p, lens, index, all);
    run(&m, NULL, &ok1, 4, 4, p, lens, index, one);
    for (int b = 0; b < 4; b++) {
        CHECK(same(&all[b], &one[b]), "prompt %d: top-k 1 sampling equals greedy", b);
        bl_gen_out_free(&all[b]); bl_gen_out_free(&one[b]);
    }
    /* EOS: make the 6th greedy token from BOS an EOS id */
    og.n_eos = 1; og.eos[0] = seq[6];
    int first = 1;
    while (seq[first] != seq[6]) first++;
    run(&m, NULL, &og, 1, 1, p, lens, NULL, one);
    CHECK(one[0].finish == BL_GEN_FINISH_EOS && one[0].n_new == first && one[0].ids[first - 1] == seq[6],
          "EOS ends the completion (kept in ids): n_new %lld, want %d", (long long)one[0].n_new, first);
    bl_gen_out_free(&one[0]);
    /* errors */
    bl_generator g;
    og.n_stop = 1; og.stop[0] = "x";
    CHECK_FAILS(bl_gen_init(&g, &m, NULL, &og, 1, 4), BALORA_STATUS_INVALID, "stop strings need a tokenizer");
    bl_model_free(&m);
}

typedef struct sbuf { char s[8192]; size_t n; } sbuf;
static void collect(void *user, int64_t prompt, const char *piece, size_t len) {
    (void)prompt;
    sbuf *b = user;
    if (b->n + len < sizeof b->s) { memcpy(b->s + b->n, piece, len); b->n += len; b->s[b->n] = 0; }
}

static void stop_strings(const char *sh) {
    char tdir[1024];
    snprintf(tdir, sizeof tdir, "%s/tokenizers/gpt2", sh);
    bl_tok *tok;
    CHECK_OK(bl_tok_load(&tok, tdir));
    bl_config c;
    bl_config_defaults(&c, BL_FAMILY_GPT2);
    c.hidden = 16; c.n_layer = 1; c.n_head = 2; c.n_kv_head = 2; c.head_dim = 8; c.intermediate = 32; c.max_pos = 128;
    bl_model m;
    CHECK_OK(bl_model_init_random(&m, &c, 3, 0.5f));
    int64_t *ids, n;
    CHECK_OK(bl_gen_encode(tok, "Once upon a time", &ids, &n));
    bl_gen_opts o;
    bl_gen_opts_default(&o);
    o.max_new_tokens = 40; o.temperature = 1.0; o.seed = 11;
    bl_gen_out full, cut;
    const int64_t *p = ids;
    run(&m, tok, &o, 1, 1, &p, &n, NULL, &full);
    size_t L = strlen(full.text);
    CHECK(L > 20, "the random model produced text (%zu bytes)", L);
    /* a stop string taken from the middle of the text */
    char stop[8];
    memcpy(stop, full.text + L / 2, 3);
    stop[3] = 0;
    const char *first = strstr(full.text, stop);
    o.n_stop = 2; o.stop[0] = "\x01never"; o.stop[1] = stop;
    bl_generator g;
    CHECK_OK(bl_gen_init(&g, &m, tok, &o, 1, n));
    sbuf sb = {.n = 0};
    CHECK_OK(bl_gen_batch(&g, 1, &p, &n, NULL, &cut, collect, &sb));
    bl_gen_free(&g);
    CHECK(cut.finish == BL_GEN_FINISH_STOP, "finished on the stop string");
    CHECK(strlen(cut.text) == (size_t)(first - full.text) && !strncmp(cut.text, full.text, strlen(cut.text)),
          "text cut before the first stop string: '%s' vs '%s' (stop '%s')", cut.text, full.text, stop);
    CHECK(cut.n_new <= full.n_new && !memcmp(cut.ids, full.ids, (size_t)cut.n_new * sizeof(int64_t)), "same tokens up to the stop");
    CHECK(!strcmp(sb.s, cut.text), "streamed pieces add up to the completion: '%s' vs '%s'", sb.s, cut.text);
    bl_gen_out_free(&cut);
    /* streaming without stop strings gives the whole text */
    o.n_stop = 0;
    CHECK_OK(bl_gen_init(&g, &m, tok, &o, 1, n));
    sb.n = 0; sb.s[0] = 0;
    CHECK_OK(bl_gen_batch(&g, 1, &p, &n, NULL, &cut, collect, &sb));
    bl_gen_free(&g);
    CHECK(!strcmp(sb.s, full.text) && !strcmp(cut.text, full.text), "streamed text equals the completion");
    /* the Alpaca template */
    char *pr = bl_gen_format_prompt("What is 2+2?", true);
    CHECK(pr && !strcmp(pr, "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
                             "### Instruction:\nWhat is 2+2?\n\n### Response:"), "Alpaca prompt: %s", pr);
    free(pr);
    bl_gen_out_free(&cut);
    bl_gen_out_free(&full);
    free(ids);
    bl_model_free(&m);
    bl_tok_free(tok);
}

int main(void) {
    sampler();
    const char *sh = t_require_shared();
    generation(sh);
    stop_strings(sh);
    return t_finish();
}
