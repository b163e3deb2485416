/* AdamW against a double-precision trace of torch.optim.AdamW's formulas, gradient clipping
 * against the closed form, and the transformers LR schedules at hand-computed points. */
#include "harness.h"
#include "train/optim.h"
#include <math.h>
#include <string.h>

static int close_rel(double got, double want, double rtol, double atol) { return fabs(got - want) <= atol + rtol * fabs(want); }

static void test_adamw_trace(void) {
    /* two tensors: a (decayed, 3 elems) and b (not decayed, 2 elems); 3 steps with
     * different gradients and learning rates. */
    float a[3] = {0.5f, -1.25f, 2.0f}, b[2] = {0.1f, -0.3f};
    float ga[3], gb[2];
    const char *names[2] = {"a", "b"};
    float *w[2] = {a, b}, *g[2] = {ga, gb};
    int64_t numel[2] = {3, 2};
    bool decay[2] = {true, false};
    bl_adamw_cfg cfg;
    bl_adamw_cfg_default(&cfg);
    cfg.lr = 0.01; cfg.weight_decay = 0.1; cfg.beta1 = 0.8; cfg.beta2 = 0.95; cfg.eps = 1e-6;
    bl_adamw o;
    CHECK_OK(bl_adamw_init(&o, &cfg, 2, names, w, g, numel, decay));
    /* reference in double */
    double W[5] = {0.5, -1.25, 2.0, 0.1, -0.3}, M[5] = {0}, V[5] = {0};
    const double grads[3][5] = {{0.3, -0.2, 1.5, -0.05, 0.7}, {-0.1, 0.4, 0.9, 0.2, 0.0}, {2.0, -3.0, 0.01, 0.5, -0.25}};
    const double lrs[3] = {0.01, 0.005, 0.0025};
    for (int s = 0; s < 3; s++) {
        for (int k = 0; k < 3; k++) ga[k] = (float)grads[s][k];
        for (int k = 0; k < 2; k++) gb[k] = (float)grads[s][3 + k];
        bl_adamw_step(&o, lrs[s]);
        int t = s + 1;
        double bc1 = 1 - pow(0.8, t), bc2 = 1 - pow(0.95, t);
        for (int k = 0; k < 5; k++) {
            double gk = (float)grads[s][k];
            if (k < 3) W[k] *= 1 - lrs[s] * 0.1;
            M[k] = 0.8 * M[k] + 0.2 * gk;
            V[k] = 0.95 * V[k] + 0.05 * gk * gk;
            W[k] -= lrs[s] / bc1 * M[k] / (sqrt(V[k]) / sqrt(bc2) + 1e-6);
        }
        for (int k = 0; k < 5; k++) {
            float got = k < 3 ? a[k] : b[k - 3];
            CHECK(close_rel(got, W[k], 1e-6, 1e-7), "step %d elem %d: got %.9g want %.9g", t, k, got, W[k]);
            float gm = o.m_all[k], gv = o.v_all[k];
            CHECK(close_rel(gm, M[k], 1e-6, 1e-9), "m step %d elem %d: got %.9g want %.9g", t, k, gm, M[k]);
            CHECK(close_rel(gv, V[k], 1e-6, 1e-12), "v step %d elem %d: got %.9g want %.9g", t, k, gv, V[k]);
        }
    }
    CHECK(o.t == 3, "t = %lld", (long long)o.t);
    /* the first step of Adam moves every weight by ~lr (sign of the gradient) when decay is 0 */
    bl_adamw_free(&o);
    float c[2] = {1.0f, 1.0f}, gc[2] = {1e-3f, -5.0f};
    float *w2[1] = {c}, *g2[1] = {gc};
    int64_t n2[1] = {2};
    cfg.weight_decay = 0; cfg.eps = 1e-8;
    CHECK_OK(bl_adamw_init(&o, &cfg, 1, names, w2, g2, n2, NULL));
    bl_adamw_step(&o, 0.1);
    CHECK(close_rel(c[0], 0.9, 1e-5, 0) && close_rel(c[1], 1.1, 1e-6, 0), "first step: %.9g %.9g", c[0], c[1]);
    bl_adamw_zero_grad(&o);
    CHECK(gc[0] == 0 && gc[1] == 0, "zero_grad");
    bl_adamw_free(&o);
    /* bad configs */
    cfg.beta1 = 1.0;
    CHECK_FAILS(bl_adamw_init(&o, &cfg, 1, names, w2, g2, n2, NULL), BALORA_STATUS_INVALID, "beta");
    bl_adamw_free(&o);
    bl_adamw_cfg_default(&cfg);
    CHECK_FAILS(bl_adamw_init(&o, &cfg, 0, names, w2, g2, n2, NULL), BALORA_STATUS_INVALID, "no trainable");
    bl_adamw_free(&o);
}

/* LoRA+ (PEFT create_loraplus_optimizer): lora_B factors and 1-D tensors (biases) move at ratio x lr,
 * decay included; lora_A and head weights at lr. Two AdamW steps against the double trace with each
 * group's own lr; with the same gradients, B's first step is exactly ratio x A's in the trace. */
static void test_loraplus(void) {
    const char *names[4] = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", "score.weight", "classifier.bias"};
    CHECK(!bl_loraplus_group_b(names[0]) && bl_loraplus_group_b(names[1]) && !bl_loraplus_group_b(names[2]) && bl_loraplus_group_b(names[3]),
          "group B: lora_B and biases only");
    float t[4][2] = {{0.5f, -0.25f}, {0.5f, -0.25f}, {0.5f, -0.25f}, {0.5f, -0.25f}}, gr[4][2];
    float *w[4] = {t[0], t[1], t[2], t[3]}, *g[4] = {gr[0], gr[1], gr[2], gr[3]};
    int64_t numel[4] = {2, 2, 2, 2};
    bool decay[4] = {true, true, true, false};
    bl_adamw_cfg cfg;
    bl_adamw_cfg_default(&cfg);
    cfg.lr = 0.01; cfg.weight_decay = 0.1; cfg.loraplus_lr_ratio = 16;
    bl_adamw o;
    CHECK_OK(bl_adamw_init(&o, &cfg, 4, names, w, g, numel, decay));
    double W[4][2], M[4][2] = {{0}}, V[4][2] = {{0}};
    for (int i = 0; i < 4; i++) for (int k = 0; k < 2; k++) W[i][k] = t[i][k];
    const double grads[2][2] = {{0.3, -0.7}, {-0.1, 0.4}}, lrs[2] = {0.01, 0.004}, mult[4] = {1, 16, 1, 16};
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 4; i++) for (int k = 0; k < 2; k++) gr[i][k] = (float)grads[s][k];
        bl_adamw_step(&o, lrs[s]);
        double bc1 = 1 - pow(0.9, s + 1), bc2 = 1 - pow(0.999, s + 1);
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 2; k++) {
                double lr = lrs[s] * mult[i], gk = (float)grads[s][k];
                if (decay[i]) W[i][k] *= 1 - lr * 0.1;
                M[i][k] = 0.9 * M[i][k] + 0.1 * gk;
                V[i][k] = 0.999 * V[i][k] + 0.001 * gk * gk;
                W[i][k] -= lr / bc1 * M[i][k] / (sqrt(V[i][k]) / sqrt(bc2) + 1e-8);
                CHECK(close_rel(t[i][k], W[i][k], 1e-6, 1e-7), "LoRA+ step %d tensor %d elem %d: got %.9g want %.9g", s + 1, i, k, t[i][k], W[i][k]);
            }
        if (s == 0) { /* same start, same gradient, A and B both decayed: B's move is 16 x A's */
            double dA = t[0][0] - 0.5, dB = t[1][0] - 0.5;
            CHECK(close_rel(dB, 16 * dA, 1e-5, 0), "B's step %.9g is 16 x A's %.9g", dB, dA);
        }
    }
    bl_adamw_free(&o);
    cfg.loraplus_lr_ratio = -1;
    CHECK_FAILS(bl_adamw_init(&o, &cfg, 4, names, w, g, numel, decay), BALORA_STATUS_INVALID, "LoRA+ ratio >= 0, here -1");
    bl_adamw_free(&o);
}

static void test_clip(void) {
    float a[2] = {3, 0}, b[1] = {4};
    float ga[2] = {3, 0}, gb[1] = {4};
    const char *names[2] = {"a", "b"};
    float *w[2] = {a, b}, *g[2] = {ga, gb};
    int64_t numel[2] = {2, 1};
    bl_adamw_cfg cfg;
    bl_adamw_cfg_default(&cfg);
    bl_adamw o;
    CHECK_OK(bl_adamw_init(&o, &cfg, 2, names, w, g, numel, NULL));
    double n = bl_clip_grad_norm(&o, 10.0);
    CHECK(n == 5.0 && ga[0] == 3 && gb[0] == 4, "no clip below max: norm %g", n);
    n = bl_clip_grad_norm(&o, 1.0);
    double c = 1.0 / (5.0 + 1e-6);
    CHECK(n == 5.0, "norm %g", n);
    CHECK(close_rel(ga[0], 3 * c, 1e-7, 0) && close_rel(gb[0], 4 * c, 1e-7, 0) && ga[1] == 0, "clipped %g %g", ga[0], gb[0]);
    n = bl_clip_grad_norm(&o, 0.0); /* 0 = off: only measures */
    CHECK(close_rel(n, 5.0 * c, 1e-6, 0), "norm after clip %g", n);
    bl_adamw_free(&o);
}

static void test_schedules(void) {
    bl_schedule s;
    CHECK_OK(bl_schedule_parse("cosine", &s));
    CHECK(s == BL_SCHEDULE_COSINE, "parse");
    CHECK_FAILS(bl_schedule_parse("exp", &s), BALORA_STATUS_INVALID, "unknown schedule 'exp'");
    CHECK(bl_warmup_steps(100, 0, 0.03) == 3, "ceil(100*0.03)");
    CHECK(bl_warmup_steps(10, 0, 0.03) == 1, "ceil(0.3) = 1");
    CHECK(bl_warmup_steps(10, 4, 0.5) == 4, "steps win over ratio");
    CHECK(bl_warmup_steps(10, 0, 0.0) == 0, "no warmup");
    /* warmup 4, total 10 */
    const double lin[11] = {0, 0.25, 0.5, 0.75, 1.0, 5.0 / 6, 4.0 / 6, 3.0 / 6, 2.0 / 6, 1.0 / 6, 0};
    for (int i = 0; i <= 10; i++) {
        double f = bl_schedule_factor(BL_SCHEDULE_LINEAR, i, 4, 10);
        CHECK(close_rel(f, lin[i], 1e-12, 1e-15), "linear step %d: %g want %g", i, f, lin[i]);
        double want_c = i < 4 ? i / 4.0 : 0.5 * (1 + cos(M_PI * (i - 4) / 6.0));
        double fc = bl_schedule_factor(BL_SCHEDULE_COSINE, i, 4, 10);
        CHECK(close_rel(fc, want_c, 1e-12, 1e-15), "cosine step %d: %g want %g", i, fc, want_c);
        double fk = bl_schedule_factor(BL_SCHEDULE_CONSTANT, i, 4, 10);
        CHECK(fk == (i < 4 ? i / 4.0 : 1.0), "constant step %d: %g", i, fk);
    }
    CHECK(close_rel(bl_schedule_factor(BL_SCHEDULE_COSINE, 7, 4, 10), 0.5, 1e-12, 1e-15), "cosine midpoint");
    CHECK(bl_schedule_factor(BL_SCHEDULE_LINEAR, 0, 0, 5) == 1.0, "no warmup starts at peak");
    CHECK(bl_schedule_factor(BL_SCHEDULE_LINEAR, 12, 0, 10) == 0.0, "clamped at 0 past the end");
}

int main(void) {
    test_adamw_trace();
    test_loraplus();
    test_clip();
    test_schedules();
    return t_finish();
}
