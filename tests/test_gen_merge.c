/* Generation with an adapter attached equals generation from the merged model
 * (io/merge.h bl_merge_adapter, float32, into t_tmpdir()) for every golden decoder: the same greedy
 * tokens and logits within the golden tolerance; sampling with a seed gives the same tokens. */
#include "eval/generate.h"
#include "harness.h"
#include "io/merge.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void gen(bl_model *m, const bl_gen_opts *o, int64_t B, const int64_t *const *p, const int64_t *lens, bl_gen_out *out) {
    bl_generator g;
    CHECK_OK(bl_gen_init(&g, m, NULL, o, B, 16));
    CHECK_OK(bl_gen_batch(&g, B, p, lens, NULL, out, NULL, NULL));
    bl_gen_free(&g);
}

int main(void) {
    const char *sh = t_require_shared();
    const char *archs[] = {"gpt2", "gpt2_all", "llama", "mistral", "qwen2"};
    for (int a = 0; a < 5; a++) {
        char dir[1024], lora[1100], io[1100], out[1100];
        snprintf(dir, sizeof dir, "%s/golden/%s", sh, archs[a]);
        snprintf(lora, sizeof lora, "%s/lora", dir);
        snprintf(io, sizeof io, "%s/io.safetensors", dir);
        snprintf(out, sizeof out, "%s/merged_%s", t_tmpdir(), archs[a]);
        bl_merge_options mo = {.out_dtype = BL_DTYPE_F32};
        bl_merge_report rep;
        CHECK_OK(bl_merge_adapter(dir, lora, out, &mo, &rep));
        bl_gen_model with, merged;
        CHECK_OK(bl_gen_model_load(&with, dir, lora, NULL, false));
        CHECK_OK(bl_gen_model_load(&merged, out, NULL, NULL, false));
        bl_st_file f;
        CHECK_OK(bl_st_open(&f, io));
        int64_t ids[32];
        CHECK_OK(bl_st_tensor_to_i64(&f, bl_st_find(&f, "input_ids"), ids));
        bl_st_close(&f);
        const int64_t *p[2] = {ids, ids + 16};
        int64_t lens[2] = {4, 9};
        bl_gen_opts o;
        bl_gen_opts_default(&o);
        o.max_new_tokens = 40;
        for (int s = 0; s < 2; s++) {
            if (s) { o.temperature = 0.8; o.top_k = 50; o.seed = 3; }
            bl_gen_out x[2], y[2];
            gen(&with.m, &o, 2, p, lens, x);
            gen(&merged.m, &o, 2, p, lens, y);
            for (int b = 0; b < 2; b++) {
                CHECK(x[b].n_new == y[b].n_new && !memcmp(x[b].ids, y[b].ids, (size_t)x[b].n_new * sizeof(int64_t)),
                      "%s %s row %d: adapter attached = merged model", archs[a], s ? "sampled" : "greedy", b);
                bl_gen_out_free(&x[b]); bl_gen_out_free(&y[b]);
            }
        }
        /* the logits of the first steps (prefill over a whole prompt, then one token) */
        bl_kv k1, k2;
        CHECK_OK(bl_kv_init(&k1, &with.m, 2, 32, 32));
        CHECK_OK(bl_kv_init(&k2, &merged.m, 2, 32, 32));
        CHECK_OK(bl_kv_prefill(&k1, 2, p, lens, BL_ADAPTER_ON));
        CHECK_OK(bl_kv_prefill(&k2, 2, p, lens, BL_ADAPTER_ON));
        int64_t V = with.m.cfg.vocab_size;
        CHECK(t_allclose(archs[a], k1.logits, k2.logits, (long)(2 * V), T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s prefill logits", archs[a]);
        /* the base model differs (the adapter matters) */
        bl_kv k3;
        CHECK_OK(bl_kv_init(&k3, &with.m, 2, 32, 32));
        CHECK_OK(bl_kv_prefill(&k3, 2, p, lens, BL_ADAPTER_OFF));
        double d = 0;
        for (int64_t i = 0; i < 2 * V; i++) d += fabsf(k3.logits[i] - k1.logits[i]);
        CHECK(d > 1e-3, "%s: adapter off gives other logits (sum |diff| %g)", archs[a], d);
        bl_kv_free(&k1); bl_kv_free(&k2); bl_kv_free(&k3);
        bl_gen_model_free(&with);
        bl_gen_model_free(&merged);
    }
    return t_finish();
}
