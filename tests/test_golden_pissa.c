/* PiSSA at the model level against ../shared/golden/<arch>/pissa (PEFT 0.14's PiSSA):
 *   1. the golden step-0 adapter on the golden residual weights (residual_weights.safetensors
 *      replacing the targeted base tensors) reproduces logits_pissa, loss_pissa and
 *      pissa/grads.safetensors for every decoder architecture;
 *   2. docs/METHOD.md section 5, "teacher built from the residual model": with the adapter loaded with
 *      its initial factors, BL_ADAPTER_INITIAL (W_res + s B0 A0) gives the ORIGINAL model's logits
 *      (logits_base), while BL_ADAPTER_OFF on the residual model does not; L_CR at step 0 is 0
 *      against the INITIAL teacher and clearly not against the residual one;
 *   3. every BA-LoRA term, alone, gives every adapter a non-zero gradient through the whole model
 *      on a non-degenerate input (B moved off its initial value), and the gradients are finite. */
#include "adapters/lora.h"
#include "harness.h"
#include "io/safetensors.h"
#include "method/reg.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *read_all(const bl_st_file *f, const char *name, int64_t *n) {
    const bl_st_tensor *t = bl_st_find(f, name);
    CHECK(t != NULL, "%s: tensor %s present", f->path, name);
    if (!t) return NULL;
    float *p = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    CHECK_OK(bl_st_tensor_to_f32(f, t, p));
    if (n) *n = t->numel;
    return p;
}

/* Replace every tensor of residual_weights.safetensors in the model (checkpoint orientation in
 * the file; GPT-2 Conv1D weights are held transposed). Returns the count. */
static int load_residual(bl_model *m, const char *path) {
    bl_st_file f;
    CHECK_OK(bl_st_open(&f, path));
    int n = 0;
    for (int i = 0; i < f.n; i++) {
        const bl_st_tensor *t = &f.tensors[i];
        bl_param *p = bl_modules_param(&m->mods, t->name);
        CHECK(p != NULL && p->numel == t->numel, "%s: %s names a model tensor of the same size", path, t->name);
        if (!p || p->numel != t->numel) continue;
        float *buf = read_all(&f, t->name, NULL);
        if (!buf) continue;
        if (p->transposed) {
            int64_t rows = p->shape[0], cols = p->shape[1]; /* held [out, in]; file [in, out] */
            CHECK(t->ndim == 2 && t->shape[0] == cols && t->shape[1] == rows, "%s: %s stored as [in, out]", path, t->name);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < cols; c++) p->data[r * cols + c] = buf[c * rows + r];
        } else {
            memcpy(p->data, buf, sizeof(float) * (size_t)p->numel);
        }
        free(buf);
        n++;
    }
    bl_st_close(&f);
    return n;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void check_arch(const char *shared, const char *arch, bool defects) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/golden/%s", shared, arch);
    bl_model m;
    bl_adapter ad;
    bl_run r;
    memset(&m, 0, sizeof m); memset(&ad, 0, sizeof ad); memset(&r, 0, sizeof r);
    CHECK_OK(bl_model_load(&m, dir));
    snprintf(path, sizeof path, "%s/pissa/residual_weights.safetensors", dir);
    int nres = load_residual(&m, path);
    snprintf(path, sizeof path, "%s/pissa", dir);
    CHECK_OK(bl_lora_load(&ad, &m.mods, path, true));
    CHECK(nres == ad.n, "%s: %d residual tensors for %d adapted modules", arch, nres, ad.n);

    bl_st_file io;
    snprintf(path, sizeof path, "%s/io.safetensors", dir);
    CHECK_OK(bl_st_open(&io, path));
    int64_t B = 2, T = 16, V = m.cfg.vocab_size, nl = 0;
    int64_t ids[32], mask[32], labels[32];
    const bl_st_tensor *ti = bl_st_find(&io, "input_ids");
    CHECK(ti && ti->numel == B * T, "%s: input_ids [2, 16]", arch);
    CHECK_OK(bl_st_tensor_to_i64(&io, ti, ids));
    CHECK_OK(bl_st_tensor_to_i64(&io, bl_st_find(&io, "attention_mask"), mask));
    CHECK_OK(bl_st_tensor_to_i64(&io, bl_st_find(&io, "labels"), labels));
    float *want_pissa = read_all(&io, "logits_pissa", &nl), *want_base = read_all(&io, "logits_base", NULL);
    float *want_loss = read_all(&io, "loss_pissa", NULL);
    CHECK(nl == B * T * V, "%s: logits [2, 16, V]", arch);

    CHECK_OK(bl_run_init(&r, &m, B, T));
    bl_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask};
    float *dl = malloc(sizeof(float) * (size_t)nl), *z = malloc(sizeof(float) * (size_t)nl);
    float *zt = malloc(sizeof(float) * (size_t)nl);

    /* 1. forward + backward of the task loss */
    CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_ON));
    CHECK(t_allclose("logits_pissa", r.logits, want_pissa, nl, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s: logits_pissa", arch);
    double loss = 0;
    int64_t cnt = 0;
    CHECK_OK(bl_xent(r.logits, labels, B, T, V, true, dl, 1.0f, &loss, &cnt));
    float l32 = (float)loss;
    CHECK(t_allclose("loss_pissa", &l32, want_loss, 1, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s: loss_pissa", arch);
    bl_lora_zero_grads(&ad);
    CHECK_OK(bl_model_backward(&r, dl));
    bl_st_file gr;
    snprintf(path, sizeof path, "%s/pissa/grads.safetensors", dir);
    CHECK_OK(bl_st_open(&gr, path));
    bl_param tp[128];
    int ntp = bl_lora_trainables(&ad, tp, 128);
    CHECK(ntp == gr.n, "%s: %d trainables, %d golden grads", arch, ntp, gr.n);
    for (int i = 0; i < ntp && i < 128; i++) {
        int64_t n = 0;
        float *g = read_all(&gr, tp[i].name, &n);
        if (!g) continue;
        CHECK(n == tp[i].numel, "%s: %s size", arch, tp[i].name);
        if (n == tp[i].numel) CHECK(t_allclose(tp[i].name, tp[i].grad, g, n, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s grad", arch);
        free(g);
    }
    bl_st_close(&gr);
    printf("ok %s: pissa logits, loss and %d gradients\n", arch, ntp);

    if (defects) {
        /* 2. the teacher is the original model, not the residual one */
        CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_INITIAL));
        memcpy(zt, r.logits, sizeof(float) * (size_t)nl);
        CHECK(t_allclose("INITIAL vs logits_base", zt, want_base, nl, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0,
              "%s: W_res + s B0 A0 is the original model", arch);
        CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_OFF));
        double off_diff = max_abs_diff(r.logits, want_base, nl);
        CHECK(off_diff > 1e-2, "%s: the residual model (adapter off) differs from the original: max |diff| %g", arch, off_diff);
        memcpy(z, r.logits, sizeof(float) * (size_t)nl); /* residual-model logits */
        bl_reg_ws ws;
        memset(&ws, 0, sizeof ws);
        CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLG, B * T, V, 0));
        double cr_init = 0, cr_res = 0;
        CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_ON));
        CHECK_OK(bl_reg_nlg_cr(&ws, B, T, V, r.logits, zt, labels, 1.0, 0.0, NULL, &cr_init));
        CHECK_OK(bl_reg_nlg_cr(&ws, B, T, V, r.logits, z, labels, 1.0, 0.0, NULL, &cr_res));
        CHECK(fabs(cr_init) < 1e-6, "%s: L_CR at step 0 against the original model is 0 (got %g)", arch, cr_init);
        CHECK(cr_res > 1e3 * fabs(cr_init) && cr_res > 1e-5, "%s: L_CR against the residual model is not 0 (got %g)", arch, cr_res);

        /* 3. every term alone has a non-zero gradient for every adapted module: move B off B0 */
        bl_rng rng;
        bl_rng_seed(&rng, 7);
        for (int i = 0; i < ad.n; i++)
            for (int64_t k = 0; k < ad.mods[i].out * ad.mods[i].r; k++) ad.mods[i].B[k] += 0.05f * bl_rng_normal(&rng);
        CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_ON));
        memcpy(z, r.logits, sizeof(float) * (size_t)nl);
        for (int term = 0; term < 3; term++) {
            memset(dl, 0, sizeof(float) * (size_t)nl);
            double v = 0;
            if (term == 0) CHECK_OK(bl_reg_nlg_cr(&ws, B, T, V, z, zt, labels, 1.0, 1.0, dl, &v));
            if (term == 1) CHECK_OK(bl_reg_nlg_dr(&ws, B, T, V, z, labels, 0, 1.0, dl, &v));
            if (term == 2) CHECK_OK(bl_reg_nlg_svdr(&ws, B, T, V, z, labels, 2, BL_SVD_NORM_SUM, 1.0, dl, &v));
            CHECK(isfinite(v), "%s: term %d finite", arch, term);
            bl_lora_zero_grads(&ad);
            CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_ON)); /* backward uses the last forward */
            CHECK_OK(bl_model_backward(&r, dl));
            for (int i = 0; i < ntp && i < 128; i++) {
                double s2 = 0;
                bool fin = true;
                for (int64_t k = 0; k < tp[i].numel; k++) { s2 += (double)tp[i].grad[k] * tp[i].grad[k]; fin &= isfinite(tp[i].grad[k]); }
                CHECK(fin && s2 > 1e-20, "%s: term %d: gradient of %s is finite and non-zero (|g|^2 = %g)", arch, term, tp[i].name, s2);
            }
        }
        bl_reg_ws_free(&ws);
        printf("ok %s: teacher INITIAL == original (OFF differs by %.3g), L_CR %.3g vs %.3g, every term's gradient non-zero\n",
               arch, off_diff, cr_init, cr_res);
    }
    free(dl); free(z); free(zt); free(want_pissa); free(want_base); free(want_loss);
    bl_st_close(&io);
    bl_run_free(&r);
    bl_lora_free(&ad);
    bl_model_free(&m);
}

int main(void) {
    const char *shared = t_require_shared();
    const char *archs[] = {"gpt2", "gpt2_all", "llama", "mistral", "qwen2"};
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++) check_arch(shared, archs[i], true);
    return t_finish();
}
