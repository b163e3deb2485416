/* Benchmark: peak resident memory and step time of a LoRA run vs a BA-LoRA run (METHOD.md 3: the
 * teacher is computed without a second copy of the weights: adapter off, or PiSSA's W_res + s B0 A0).
 *
 * One process per configuration (peak RSS = getrusage ru_maxrss of that process, which includes the
 * model, the run's activations, the trainer's buffers and BA-LoRA's teacher hidden states [B, T, C] +
 * workspace; no [B, T, V] buffer beyond the run's logits: the trainer writes the whole gradient over
 * them and recomputes the teacher's logits from its hidden states by column blocks):
 *     memory_bench MODE [B T steps threads [l1,l2,l3]]   (lambdas: paper-v1 unless given; 0 turns a term off)
 *   MODE: lora          plain LoRA (default init), the trainer's loop (bl_train_run)
 *         balora        LoRA + BA-LoRA's three terms (paper-v1 NLG), teacher = adapter off
 *         pissa-balora  PiSSA init + BA-LoRA, teacher = W_res + s B0 A0 (the paper's setting)
 *         parts         time of each piece of a BA-LoRA step on the same shapes (no training loop):
 *                       student forward, teacher forward, task CE, L_CR, L_DR, L_SVDR, backward; then
 *                       the trainer's route: CE value + bl_reg_nlg_fused (teacher as hidden states)
 * Model: GPT-2-small shape (12 layers, 768 wide, 12 heads, vocab 50257), random weights, LoRA r = 8
 * on c_attn; data: random token ids, every token trained. Prints one line:
 *     MODE peak_rss_mib=... base_rss_mib=... step_s=... steps=... B=... T=...
 * bench/memory_bench.sh runs the three in separate processes and prints them side by side with the
 * ratios. Not a test: never run by CTest. */
#include "adapters/lora.h"
#include "method/reg.h"
#include "model/model.h"
#include "train/balora.h"
#include "train/lm.h"
#include "train/trainer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static double rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static int die(const char *what) {
    fprintf(stderr, "memory_bench: %s: %s\n", what, balora_last_error());
    return 1;
}

/* Seconds of each piece of one BA-LoRA step (paper-v1 NLG terms) on random ids. */
static int time_parts(bl_model *m, bl_adapter *ad, int64_t B, int64_t T) {
    const int64_t V = m->cfg.vocab_size, n = B * T * V;
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)(2 * B * T));
    float *zt = malloc(sizeof(float) * (size_t)n), *dl = malloc(sizeof(float) * (size_t)n);
    if (!ids || !zt || !dl) return 1;
    int64_t *labels = ids + B * T;
    bl_rng rng;
    bl_rng_seed(&rng, 5);
    for (int64_t i = 0; i < B * T; i++) labels[i] = ids[i] = (int64_t)bl_rng_below(&rng, (uint64_t)V);
    for (int i = 0; i < ad->n; i++) /* B != 0 so that the student differs from the teacher */
        for (int64_t k = 0; k < ad->mods[i].out * ad->mods[i].r; k++) ad->mods[i].B[k] = 0.01f * bl_rng_normal(&rng);
    bl_run r;
    memset(&r, 0, sizeof r);
    bl_reg_ws ws;
    memset(&ws, 0, sizeof ws);
    if (bl_run_init(&r, m, B, T) || bl_reg_ws_init(&ws, BL_REG_TASK_NLG, B * T, V, 0)) return die("init");
    bl_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = NULL};
    double t[8], v = 0, loss = 0;
    int64_t cnt = 0;
    t[0] = bl_time_now();
    if (bl_model_forward(&r, &b, BL_ADAPTER_OFF)) return die("teacher");
    memcpy(zt, r.logits, sizeof(float) * (size_t)n);
    t[1] = bl_time_now();
    if (bl_model_forward(&r, &b, BL_ADAPTER_ON)) return die("student");
    t[2] = bl_time_now();
    if (bl_xent(r.logits, labels, B, T, V, true, dl, 1.0f, &loss, &cnt)) return die("ce");
    t[3] = bl_time_now();
    if (bl_reg_nlg_cr(&ws, B, T, V, r.logits, zt, labels, 1.0, 1e-4, dl, &v)) return die("cr");
    t[4] = bl_time_now();
    if (bl_reg_nlg_dr(&ws, B, T, V, r.logits, labels, 0, 3e-4, dl, &v)) return die("dr");
    t[5] = bl_time_now();
    if (bl_reg_nlg_svdr(&ws, B, T, V, r.logits, labels, 3, BL_SVD_NORM_SUM, 1e-4, dl, &v)) return die("svdr");
    t[6] = bl_time_now();
    if (bl_model_backward(&r, dl)) return die("backward");
    t[7] = bl_time_now();
    /* the trainer's route: teacher kept as hidden states, the whole gradient written over the logits */
    const int64_t C = m->cfg.hidden;
    float *th = malloc(sizeof(float) * (size_t)(B * T * C));
    if (!th) return 1;
    if (bl_model_forward(&r, &b, BL_ADAPTER_OFF)) return die("teacher");
    memcpy(th, r.hidden, sizeof(float) * (size_t)(B * T * C));
    bl_reg_config rc;
    bl_reg_config_default(&rc, BL_REG_TASK_NLG);
    double vals[3], lam[3], tf[4];
    tf[3] = bl_time_now();
    if (bl_reg_nlg_teacher_stats(&ws, &rc, B, T, V, r.logits)) return die("teacher stats");
    tf[3] = bl_time_now() - tf[3];
    if (bl_model_forward(&r, &b, BL_ADAPTER_ON)) return die("student");
    bl_reg_teacher tt = {.hidden = th, .head = m->lm_head, .C = C, .stats = true};
    tf[0] = bl_time_now();
    if (bl_xent(r.logits, labels, B, T, V, true, NULL, 1.0f, &loss, &cnt)) return die("ce");
    tf[1] = bl_time_now();
    if (bl_reg_nlg_fused(&ws, &rc, 0, 1, B, T, V, r.logits, labels, &tt, 1.0 / (double)cnt, 1.0, vals, lam)) return die("fused");
    tf[2] = bl_time_now();
    free(th);
    printf("parts B=%lld T=%lld threads=%d: teacher_fwd=%.3f student_fwd=%.3f ce=%.3f l_cr=%.3f l_dr=%.3f l_svdr=%.3f backward=%.3f s\n",
           (long long)B, (long long)T, balora_threads_get(), t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3], t[5] - t[4],
           t[6] - t[5], t[7] - t[6]);
    printf("parts (trainer route: teacher as hidden states, gradient in place): teacher_stats=%.3f ce_value=%.3f "
           "fused_terms_and_grad=%.3f s (vs ce+l_cr+l_dr+l_svdr above %.3f s + a [B,T,V] teacher copy)\n", tf[3],
           tf[1] - tf[0], tf[2] - tf[1], t[6] - t[2]);
    bl_reg_ws_free(&ws);
    bl_run_free(&r);
    free(ids); free(zt); free(dl);
    return 0;
}

int main(int argc, char **argv) {
    bl_blas_prepare_process(argc, argv);
    if (argc < 2) {
        fprintf(stderr, "usage: memory_bench lora|balora|pissa-balora [B=4 T=128 steps=3 threads=0]\n");
        return 2;
    }
    const char *mode = argv[1];
    const int64_t B = argc > 2 ? atoll(argv[2]) : 4, T = argc > 3 ? atoll(argv[3]) : 128;
    const int64_t steps = argc > 4 ? atoll(argv[4]) : 3;
    const int threads = argc > 5 ? atoi(argv[5]) : 0;
    const bool parts = !strcmp(mode, "parts");
    const bool balora = strcmp(mode, "lora") != 0 && !parts, pissa = !strcmp(mode, "pissa-balora");
    if (strcmp(mode, "lora") && strcmp(mode, "balora") && !pissa && !parts) { fprintf(stderr, "memory_bench: unknown mode %s\n", mode); return 2; }
    if (B < 1 || T < 2 || steps < 1) { fprintf(stderr, "memory_bench: need B >= 1, T >= 2, steps >= 1\n"); return 2; }
    if (threads > 0) balora_threads_set(threads);

    bl_config c;
    bl_config_defaults(&c, BL_FAMILY_GPT2);
    c.vocab_size = 50257; c.hidden = 768; c.n_layer = 12; c.n_head = 12; c.n_kv_head = 12; c.head_dim = 64;
    c.intermediate = 3072; c.max_pos = 1024;
    bl_model m;
    memset(&m, 0, sizeof m);
    if (bl_model_init_random(&m, &c, 1, 0.02f)) return die("model");

    bl_lora_config lc;
    bl_lora_config_default(&lc);
    lc.r = 8; lc.alpha = 16;
    if (bl_lora_config_set_targets(&lc, "c_attn")) return die("targets");
    if (pissa) { lc.init = BL_LORA_INIT_PISSA; lc.keep_initial = true; }
    bl_adapter ad;
    memset(&ad, 0, sizeof ad);
    if (bl_lora_init(&ad, &m.mods, &lc, 1)) return die("adapter");
    if (pissa && bl_train_pissa_init(&ad, 4, 1)) return die("pissa");

    if (parts) return time_parts(&m, &ad, B, T);

    /* data: steps * B examples of T random ids, as the tokens format (JSONL) */
    char path[256];
    snprintf(path, sizeof path, "/tmp/memory_bench_%d.jsonl", (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); return 1; }
    bl_rng rng;
    bl_rng_seed(&rng, 3);
    for (int64_t e = 0; e < steps * B; e++) {
        fputs("{\"input_ids\": [", f);
        for (int64_t t = 0; t < T; t++) fprintf(f, "%s%llu", t ? ", " : "", (unsigned long long)bl_rng_below(&rng, (uint64_t)c.vocab_size));
        fputs("]}\n", f);
    }
    fclose(f);
    bl_train_data_cfg dc;
    bl_train_data_cfg_default(&dc);
    dc.format = BL_TRAIN_DATA_TOKENS; dc.max_len = T; dc.vocab_size = c.vocab_size;
    bl_train_data data;
    memset(&data, 0, sizeof data);
    balora_status st = bl_train_data_load(&data, path, &dc, NULL);
    unlink(path);
    if (st) return die("data");

    bl_train_lm lm;
    memset(&lm, 0, sizeof lm);
    if (bl_train_lm_init(&lm, &m, &ad, B, T)) return die("train_lm");
    if (pissa) { lm.pissa = true; lm.teacher_mode = BL_ADAPTER_INITIAL; }
    bl_train_balora hook;
    memset(&hook, 0, sizeof hook);
    const bl_extra_loss *extra = NULL;
    if (balora) {
        bl_reg_config rc;
        bl_reg_config_default(&rc, BL_REG_TASK_NLG);
        if (argc > 6 && sscanf(argv[6], "%lf,%lf,%lf", &rc.lambda1, &rc.lambda2, &rc.lambda3) != 3) {
            fprintf(stderr, "memory_bench: lambdas must be given as l1,l2,l3\n");
            return 2;
        }
        if (bl_train_balora_init(&hook, &rc, B * T, c.vocab_size)) return die("balora");
        extra = &hook.iface;
    }
    const double base_rss = rss_mib(); /* model + adapter + run + workspaces planned, before training */
    bl_train_cfg tc;
    bl_train_cfg_default(&tc);
    tc.batch_size = B; tc.grad_accum = 1; tc.max_steps = steps; tc.max_len = T; tc.no_shuffle = true; tc.pad_to_max = true;
    tc.adam.lr = 1e-4;
    bl_train_result res;
    memset(&res, 0, sizeof res);
    if (bl_train_run(&tc, &lm.iface, &data, extra, &res)) return die("train");
    const double peak = rss_mib();
    if (balora) printf("lambdas=%g,%g,%g ", hook.cfg.lambda1, hook.cfg.lambda2, hook.cfg.lambda3);
    printf("%s peak_rss_mib=%.1f base_rss_mib=%.1f step_s=%.3f steps=%lld B=%lld T=%lld first_loss=%.4f last_loss=%.4f threads=%d\n",
           mode, peak, base_rss, res.seconds / (double)res.steps, (long long)res.steps, (long long)B, (long long)T,
           res.first_loss, res.last_loss, balora_threads_get());
    if (balora) bl_train_balora_free(&hook);
    bl_train_lm_free(&lm);
    bl_train_data_free(&data);
    bl_lora_free(&ad);
    bl_model_free(&m);
    return 0;
}
