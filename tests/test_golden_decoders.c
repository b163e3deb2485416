/* Parity with transformers + PEFT (../shared/golden, README.md there): for gpt2, gpt2_all, llama,
 * mistral, qwen2 — base logits and loss, LoRA logits and loss with the lora/ adapter, and the
 * gradient of loss_lora with respect to every adapter tensor, within the golden tolerance
 * |got - want| <= 1e-4 + 1e-3 |want|. Also gpt2_cls (GPT2ForSequenceClassification: pooling at
 * the last non-pad token, score head in modules_to_save). */
#include "harness.h"
#include "adapters/lora.h"
#include "io/safetensors.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *read_f32(const bl_st_file *f, const char *name, int64_t *numel) {
    const bl_st_tensor *t = bl_st_find(f, name);
    if (!t) { fprintf(stderr, "%s: missing %s\n", f->path, name); return NULL; }
    float *p = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (bl_st_tensor_to_f32(f, t, p)) { free(p); return NULL; }
    if (numel) *numel = t->numel;
    return p;
}
static int64_t *read_i64(const bl_st_file *f, const char *name, int64_t *numel) {
    const bl_st_tensor *t = bl_st_find(f, name);
    if (!t) return NULL;
    int64_t *p = malloc((size_t)t->numel * sizeof(int64_t));
    if (bl_st_tensor_to_i64(f, t, p)) { free(p); return NULL; }
    if (numel) *numel = t->numel;
    return p;
}

static bool close1(double got, double want) { return fabs(got - want) <= T_GOLDEN_ATOL + T_GOLDEN_RTOL * fabs(want); }

static void run_arch(const char *shared, const char *arch) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/golden/%s", shared, arch);
    printf("== %s\n", arch);
    bl_model m;
    CHECK_OK(bl_model_load(&m, dir));
    if (t_failures) return;
    bl_st_file io;
    snprintf(path, sizeof path, "%s/io.safetensors", dir);
    CHECK_OK(bl_st_open(&io, path));
    int64_t n_ids, n_lab;
    int64_t *ids = read_i64(&io, "input_ids", &n_ids), *mask = read_i64(&io, "attention_mask", NULL);
    int64_t *labels = read_i64(&io, "labels", &n_lab);
    const bl_st_tensor *tid = bl_st_find(&io, "input_ids");
    bl_batch b = {.B = tid->shape[0], .T = tid->shape[1], .input_ids = ids, .attention_mask = mask};
    bool cls = m.cfg.head == BL_HEAD_SEQ_CLS;

    bl_adapter ad;
    char adir[1100];
    snprintf(adir, sizeof adir, "%s/lora", dir);
    /* the adapter must be attached before the run context is planned */
    bl_run r;
    for (int variant = 0; variant < 2; variant++) {
        bool lora = variant == 1;
        if (lora) CHECK_OK(bl_lora_load(&ad, &m.mods, adir, false));
        CHECK_OK(bl_run_init(&r, &m, b.B, b.T));
        CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_ON));
        int64_t nw;
        float *want = read_f32(&io, lora ? "logits_lora" : "logits_base", &nw);
        float *wl = read_f32(&io, lora ? "loss_lora" : "loss_base", NULL);
        CHECK(nw == r.n_logits, "%s: logits count %lld vs %lld", arch, (long long)r.n_logits, (long long)nw);
        char what[128];
        snprintf(what, sizeof what, "%s %s logits", arch, lora ? "lora" : "base");
        long bad = t_allclose(what, r.logits, want, nw, T_GOLDEN_ATOL, T_GOLDEN_RTOL);
        CHECK(bad == 0, "%s", what);
        double maxd = 0;
        for (int64_t i = 0; i < nw; i++) maxd = fmax(maxd, fabs(r.logits[i] - want[i]));
        double loss;
        int64_t cnt;
        float *dl = malloc((size_t)r.n_logits * sizeof(float));
        if (cls) CHECK_OK(bl_xent(r.logits, labels, b.B, 1, m.cfg.num_labels, false, dl, 1.0f, &loss, &cnt));
        else CHECK_OK(bl_xent(r.logits, labels, b.B, b.T, m.cfg.vocab_size, true, dl, 1.0f, &loss, &cnt));
        CHECK(close1(loss, wl[0]), "%s: loss %.7f vs %.7f", what, loss, wl[0]);
        printf("   %-5s logits max|diff| %.2e, loss %.7f (want %.7f)\n", lora ? "lora" : "base", maxd, loss, wl[0]);
        if (lora) {
            /* gradients of loss_lora wrt every adapter tensor */
            bl_lora_zero_grads(&ad);
            CHECK_OK(bl_model_backward(&r, dl));
            bl_st_file gf;
            snprintf(path, sizeof path, "%s/grads.safetensors", adir);
            CHECK_OK(bl_st_open(&gf, path));
            bl_param tr[256];
            int nt = bl_lora_trainables(&ad, tr, 256);
            CHECK(nt == gf.n, "%s: %d trainable tensors, grads.safetensors has %d", arch, nt, gf.n);
            double worst = 0;
            for (int i = 0; i < nt && i < 256; i++) {
                int64_t ng;
                float *g = read_f32(&gf, tr[i].name, &ng);
                CHECK(g && ng == tr[i].numel, "%s: grad %s", arch, tr[i].name);
                if (!g) continue;
                long gb = t_allclose(tr[i].name, tr[i].grad, g, ng, T_GOLDEN_ATOL, T_GOLDEN_RTOL);
                CHECK(gb == 0, "%s", tr[i].name);
                for (int64_t k = 0; k < ng; k++) worst = fmax(worst, fabs(tr[i].grad[k] - g[k]) / (T_GOLDEN_ATOL + T_GOLDEN_RTOL * fabs(g[k])));
                free(g);
            }
            printf("   grads: %d tensors, worst |diff|/tol %.3f\n", nt, worst);
            bl_st_close(&gf);
            /* teacher: adapter OFF reproduces the base logits exactly as the base model did */
            CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_OFF));
            float *wb = read_f32(&io, "logits_base", NULL);
            CHECK(t_allclose("adapter OFF = base", r.logits, wb, nw, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "OFF");
            free(wb);
        }
        free(dl); free(want); free(wl);
        bl_run_free(&r);
    }
    bl_lora_free(&ad);
    free(ids); free(mask); free(labels);
    bl_st_close(&io);
    bl_model_free(&m);
}

int main(void) {
    const char *shared = t_require_shared();
    const char *archs[] = {"gpt2", "gpt2_all", "llama", "mistral", "qwen2", "gpt2_cls"};
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++) run_arch(shared, archs[i]);
    return t_finish();
}
