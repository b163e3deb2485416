/* Perplexity (bl_eval_perplexity) as the Hugging Face perplexity guide computes it, checked against
 * an independent computation here: bl_model_forward on each window and -log softmax in double of
 * the scored tokens (those past the previous window's end), token-weighted; one window over all
 * tokens equals exp(mean loss) of one forward; with an adapter; bad arguments fail. */
#include "adapters/lora.h"
#include "eval/generate.h"
#include "harness.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double ref_ppl(bl_model *m, bl_adapter_mode mode, const int64_t *ids, int64_t n, int64_t W, int64_t stride, int64_t *cnt) {
    int64_t V = m->cfg.vocab_size;
    bl_run r;
    CHECK_OK(bl_run_init(&r, m, 1, W));
    double nll = 0;
    int64_t prev = 0;
    *cnt = 0;
    for (int64_t begin = 0;; begin += stride) {
        int64_t end = begin + W < n ? begin + W : n;
        bl_batch b = {.B = 1, .T = end - begin, .input_ids = ids + begin};
        CHECK_OK(bl_model_forward(&r, &b, mode));
        for (int64_t t = (prev > begin + 1 ? prev : begin + 1); t < end; t++) { /* token t predicted at t - 1 */
            const float *z = r.logits + (t - 1 - begin) * V;
            double mx = z[0], s = 0;
            for (int64_t v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
            for (int64_t v = 0; v < V; v++) s += exp((double)z[v] - mx);
            nll += -((double)z[ids[t]] - mx - log(s));
            (*cnt)++;
        }
        prev = end;
        if (end == n) break;
    }
    bl_run_free(&r);
    return exp(nll / (double)*cnt);
}

static void check(const char *what, bl_model *m, bl_adapter_mode mode, const int64_t *ids, int64_t n, int64_t W, int64_t stride) {
    double got, want;
    int64_t ng, nw;
    CHECK_OK(bl_eval_perplexity(m, mode, ids, n, W, stride, &got, &ng));
    want = ref_ppl(m, mode, ids, n, W < n ? W : n, stride, &nw);
    /* stride < window: every token but the first is scored; stride == window: the first of each window is not */
    CHECK(ng == nw && (stride == W || ng == n - 1), "%s: %lld tokens scored (independent: %lld)", what, (long long)ng, (long long)nw);
    CHECK(fabs(got - want) <= 1e-4 * want, "%s window %lld stride %lld: perplexity %.6f, independent %.6f", what,
          (long long)W, (long long)stride, got, want);
    printf("%s window %lld stride %lld: perplexity %.4f\n", what, (long long)W, (long long)stride, got);
}

int main(void) {
    const char *sh = t_require_shared();
    char bin[1024], io[1024];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", sh);
    snprintf(io, sizeof io, "%s/golden/stories260K/io.safetensors", sh);
    bl_model m;
    CHECK_OK(bl_model_load_llama2c(&m, bin));
    bl_st_file f;
    CHECK_OK(bl_st_open(&f, io));
    int64_t ids[48 + 41];
    CHECK_OK(bl_st_tensor_to_i64(&f, bl_st_find(&f, "input_ids"), ids));
    CHECK_OK(bl_st_tensor_to_i64(&f, bl_st_find(&f, "greedy_from_bos"), ids + 48));
    bl_st_close(&f);
    int64_t n = 48 + 41;
    check("stories260K", &m, BL_ADAPTER_ON, ids, n, 16, 8);
    check("stories260K", &m, BL_ADAPTER_ON, ids, n, 20, 20);
    check("stories260K", &m, BL_ADAPTER_ON, ids, n, 32, 5);
    check("stories260K", &m, BL_ADAPTER_ON, ids, n, 2, 1);
    /* one window: exp(mean loss) of a single forward (bl_xent) */
    double p1;
    int64_t c1;
    CHECK_OK(bl_eval_perplexity(&m, BL_ADAPTER_ON, ids, n, 512, 512, &p1, &c1));
    bl_run r;
    CHECK_OK(bl_run_init(&r, &m, 1, n));
    bl_batch b = {.B = 1, .T = n, .input_ids = ids};
    CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_ON));
    double loss;
    int64_t k;
    CHECK_OK(bl_xent(r.logits, ids, 1, n, m.cfg.vocab_size, true, NULL, 1.0f, &loss, &k));
    CHECK(fabs(p1 - exp(loss)) <= 1e-5 * p1 && k == n - 1, "one window: %.6f vs exp(mean loss) %.6f", p1, exp(loss));
    bl_run_free(&r);
    /* the greedy continuation is far more likely than the mixed sequence */
    double pg, pm;
    CHECK_OK(bl_eval_perplexity(&m, BL_ADAPTER_ON, ids + 48, 41, 64, 64, &pg, &c1));
    CHECK_OK(bl_eval_perplexity(&m, BL_ADAPTER_ON, ids, 24, 64, 64, &pm, &c1));
    CHECK(pg < pm, "greedy text perplexity %.3f < other text %.3f", pg, pm);
    CHECK_FAILS(bl_eval_perplexity(&m, BL_ADAPTER_ON, ids, 1, 16, 8, &p1, &c1), BALORA_STATUS_INVALID, "at least 2 tokens");
    CHECK_FAILS(bl_eval_perplexity(&m, BL_ADAPTER_ON, ids, n, 16, 17, &p1, &c1), BALORA_STATUS_INVALID, "stride");
    int64_t bad[3] = {1, 9999, 3};
    CHECK_FAILS(bl_eval_perplexity(&m, BL_ADAPTER_ON, bad, 3, 16, 8, &p1, &c1), BALORA_STATUS_INVALID, "input_ids");
    bl_model_free(&m);

    /* golden llama with its adapter: ON and OFF */
    char dir[1024], lora[1100];
    snprintf(dir, sizeof dir, "%s/golden/llama", sh);
    snprintf(lora, sizeof lora, "%s/lora", dir);
    bl_gen_model g;
    CHECK_OK(bl_gen_model_load(&g, dir, lora, NULL, false));
    int64_t gi[60];
    for (int i = 0; i < 60; i++) gi[i] = (i * 53 + 7) % 256;
    check("llama+lora", &g.m, BL_ADAPTER_ON, gi, 60, 24, 10);
    check("llama base", &g.m, BL_ADAPTER_OFF, gi, 60, 24, 10);
    bl_gen_model_free(&g);
    return t_finish();
}
