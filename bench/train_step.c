/* Benchmark: one LoRA training step (forward + backward + AdamW) on a GPT-2-124M-shaped model
 * (12 layers, 768 wide, 12 heads, vocab 50257, batch 4 x 256, LoRA r = 8 on c_attn, c_proj
 * (attention and MLP) and c_fc) and on a LLaMA-shaped model of similar size, random weights.
 * Reports tokens/s, achieved GFLOP/s and the fraction of the machine's measured SGEMM rate;
 * then runs bench/train_step_torch.py (the same step in PyTorch, same shapes and threads) in the
 * same run and prints the ratio.
 *
 * Build and run:  bash bench/train_step.sh [steps] [threads]   (needs build/libbalora.a)
 * Not a test: never run by CTest. */
#include "adapters/lora.h"
#include "model/model.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Matmul FLOPs of one step (the multiply-adds of every GEMM, x2):
 * forward: every linear 2 N in out, LoRA 2 N r (in + out), attention 2 x 2 B H T^2 D, LM head 2 N C V;
 * backward (LoRA: frozen base weights get no dW): dX of every linear (= its forward), LoRA
 * dA, dB, du, dx (4 x its forward / 2 each...), attention 4 GEMMs (2 x forward), LM head dX. */
static double step_flops(const bl_model *m, int64_t B, int64_t T) {
    const bl_config *c = &m->cfg;
    double N = (double)(B * T), f = 0, lora = 0;
    for (int i = 0; i < m->mods.n_lin; i++) {
        const bl_linear *L = &m->mods.lin[i];
        f += 2 * N * L->in * L->out;
        if (L->lora) lora += 2 * N * L->lora->r * (L->in + L->out);
    }
    double attn = 2.0 * 2 * B * c->n_head * (double)T * T * c->head_dim * c->n_layer;
    double head = 2 * N * c->hidden * c->vocab_size;
    double fwd = f + lora + attn + head;
    double bwd = f + 2 * lora + 2 * attn + head;
    return fwd + bwd;
}

static double sgemm_rate(void) {
    int M = 1024, N = 2304, K = 768;
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * N * K), *c = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (int i = 0; i < N * K; i++) b[i] = (float)(i % 5) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c, N);
    double best = 1e30; /* best of 20: the machine is shared, the best run is the machine's rate */
    for (int r = 0; r < 20; r++) {
        double t0 = bl_time_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c, N);
        double dt = bl_time_now() - t0;
        if (dt < best) best = dt;
    }
    free(a); free(b); free(c);
    return 2.0 * M * N * K / best / 1e9;
}

typedef struct adamw { int n; bl_param *p; float **m, **v; int64_t t; } adamw;

static void adamw_step(adamw *o, float lr) {
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.0f;
    o->t++;
    float c1 = 1.0f - powf(b1, (float)o->t), c2 = 1.0f - powf(b2, (float)o->t);
    for (int i = 0; i < o->n; i++) {
        float *w = o->p[i].data, *g = o->p[i].grad, *m = o->m[i], *v = o->v[i];
        int64_t n = o->p[i].numel;
#pragma omp parallel for schedule(static) if (n > 4096)
        for (int64_t k = 0; k < n; k++) {
            m[k] = b1 * m[k] + (1 - b1) * g[k];
            v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k];
            w[k] -= lr * ((m[k] / c1) / (sqrtf(v[k] / c2) + eps) + wd * w[k]);
        }
    }
}

static int run(const char *name, bl_config *c, const char *targets, int64_t B, int64_t T, int steps, double peak,
               double *tok_s_out) {
    bl_model m;
    if (bl_model_init_random(&m, c, 1, 0.02f)) { fprintf(stderr, "%s\n", balora_last_error()); return 1; }
    bl_lora_config lc;
    bl_lora_config_default(&lc);
    lc.r = 8; lc.alpha = 16;
    bl_lora_config_set_targets(&lc, targets);
    bl_adapter ad;
    if (bl_lora_init(&ad, &m.mods, &lc, 2)) { fprintf(stderr, "%s\n", balora_last_error()); return 1; }
    for (int i = 0; i < ad.n; i++) /* non-zero B so the step is not degenerate */
        for (int64_t k = 0; k < ad.mods[i].out * ad.mods[i].r; k++) ad.mods[i].B[k] = 1e-3f;
    bl_run r;
    if (bl_run_init(&r, &m, B, T)) { fprintf(stderr, "%s\n", balora_last_error()); return 1; }
    r.train = true;
    int64_t *ids = malloc(sizeof(int64_t) * B * T);
    bl_rng g;
    bl_rng_seed(&g, 3);
    for (int64_t i = 0; i < B * T; i++) ids[i] = (int64_t)bl_rng_below(&g, (uint64_t)c->vocab_size);
    adamw o = {0};
    o.n = bl_lora_trainables(&ad, NULL, 0);
    o.p = calloc((size_t)o.n, sizeof *o.p);
    bl_lora_trainables(&ad, o.p, o.n);
    o.m = calloc((size_t)o.n, sizeof(float *));
    o.v = calloc((size_t)o.n, sizeof(float *));
    int64_t ntrain = 0;
    for (int i = 0; i < o.n; i++) {
        o.m[i] = calloc((size_t)o.p[i].numel, sizeof(float));
        o.v[i] = calloc((size_t)o.p[i].numel, sizeof(float));
        ntrain += o.p[i].numel;
    }
    bl_batch b = {.B = B, .T = T, .input_ids = ids};
    double tf = 0, tb = 0, tl = 0, to = 0, first_loss = 0, loss = 0, best = 1e30;
    int64_t cnt;
    for (int s = -1; s < steps; s++) { /* step -1: warm-up */
        double t0 = bl_time_now();
        bl_rng_seed(&r.rng, (uint64_t)(s + 10));
        if (bl_model_forward(&r, &b, BL_ADAPTER_ON)) { fprintf(stderr, "%s\n", balora_last_error()); return 1; }
        double t1 = bl_time_now();
        bl_xent(r.logits, ids, B, T, c->vocab_size, true, r.logits, 1.0f, &loss, &cnt);
        double t2 = bl_time_now();
        bl_lora_zero_grads(&ad);
        bl_model_backward(&r, r.logits);
        double t3 = bl_time_now();
        adamw_step(&o, 1e-4f);
        double t4 = bl_time_now();
        if (s < 0) { first_loss = loss; continue; }
        tf += t1 - t0; tl += t2 - t1; tb += t3 - t2; to += t4 - t3;
        if (t4 - t0 < best) best = t4 - t0;
    }
    double dt = (tf + tl + tb + to) / steps, fl = step_flops(&m, B, T);
    double tok_s = (double)(B * T) / dt, gf = fl / dt / 1e9, gf_best = fl / best / 1e9;
    printf("%-6s %lld params (%lld trainable), batch %lld x %lld: %.3f s/step (forward %.3f, loss %.3f, backward %.3f, "
           "AdamW %.4f)\n", name, (long long)bl_model_n_params(&m), (long long)ntrain, (long long)B, (long long)T, dt,
           tf / steps, tl / steps, tb / steps, to / steps);
    printf("%-6s %.0f tokens/s (mean of %d steps; best step %.0f tokens/s), %.1f GFLOP/step, %.1f GFLOP/s mean = %.0f%% "
           "of measured SGEMM (%.1f GFLOP/s), best step %.0f%%; loss %.4f -> %.4f\n",
           name, tok_s, steps, (double)(B * T) / best, fl / 1e9, gf, 100 * gf / peak, peak, 100 * gf_best / peak, first_loss, loss);
    *tok_s_out = tok_s;
    for (int i = 0; i < o.n; i++) { free(o.m[i]); free(o.v[i]); }
    free(o.m); free(o.v); free(o.p); free(ids);
    bl_run_free(&r);
    bl_lora_free(&ad);
    bl_model_free(&m);
    return 0;
}

/* runs the PyTorch script, returns its tokens/s for model `which` (or -1) */
static double torch_rate(const char *src, const char *which, int steps, int threads) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/bench/train_step_torch.py' --model %s --steps %d --threads %d 2>&1", src,
             which, steps, threads);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[1024];
    double rate = -1;
    while (fgets(line, sizeof line, p)) {
        fputs(line, stdout);
        const char *k = strstr(line, "TOKENS_PER_S=");
        if (k) rate = atof(k + 13);
    }
    pclose(p);
    return rate;
}

int main(int argc, char **argv) {
    /* idle OpenMP threads sleep instead of spinning while OpenBLAS's own threads run a GEMM
     * (measured faster on 2 shared cores); applied through the re-exec below, inherited by PyTorch */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    bl_blas_prepare_process(argc, argv);
    int steps = argc > 1 ? atoi(argv[1]) : 3;
    int threads = argc > 2 ? atoi(argv[2]) : 0;
    const char *src = getenv("BALORA_SOURCE_DIR") ? getenv("BALORA_SOURCE_DIR") : ".";
    if (steps < 1) steps = 1;
    balora_threads_set(threads);
    printf("OMP_WAIT_POLICY=%s\n", getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "(default)");
    threads = balora_threads_get();
    printf("BLAS: %s\n", balora_blas_info());
    double peak = sgemm_rate();
    printf("measured SGEMM (1024 x 2304 x 768): %.1f GFLOP/s with %d threads\n", peak, threads);

    bl_config gp;
    bl_config_defaults(&gp, BL_FAMILY_GPT2); /* 124M: 12 x 768, 12 heads, vocab 50257 */
    double ours_g = 0, ours_l = 0;
    const char *only = getenv("BALORA_BENCH_MODEL"); /* gpt2 or llama: run just one */
    if ((!only || !strcmp(only, "gpt2")) && run("gpt2", &gp, "c_attn,c_proj,c_fc", 4, 256, steps, peak, &ours_g)) return 1;
    bl_config ll;
    bl_config_defaults(&ll, BL_FAMILY_LLAMA);
    ll.vocab_size = 32000; ll.hidden = 768; ll.n_layer = 12; ll.n_head = 12; ll.n_kv_head = 12; ll.head_dim = 64;
    ll.intermediate = 2048; ll.max_pos = 2048;
    if ((!only || !strcmp(only, "llama")) &&
        run("llama", &ll, "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", 4, 256, steps, peak, &ours_l))
        return 1;

    if (getenv("BALORA_BENCH_NO_TORCH")) return 0;
    double tg = ours_g > 0 ? torch_rate(src, "gpt2", steps, threads) : -1;
    double tl = ours_l > 0 ? torch_rate(src, "llama", steps, threads) : -1;
    if (ours_g > 0 && tg > 0) printf("gpt2:  balora %.0f tokens/s, PyTorch %.0f tokens/s: ratio %.2fx\n", ours_g, tg, ours_g / tg);
    if ((ours_g > 0 && tg <= 0) || (ours_l > 0 && tl <= 0))
        printf("PyTorch comparison unavailable (is python3-torch installed for /usr/bin/python3?)\n");
    if (ours_l > 0 && tl > 0) printf("llama: balora %.0f tokens/s, PyTorch %.0f tokens/s: ratio %.2fx\n", ours_l, tl, ours_l / tl);
    return 0;
}
