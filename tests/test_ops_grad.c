/* Every op's backward against central finite differences of its forward.
 *
 * Method: for an op with output y, the scalar L = sum_i w_i y_i (w random, fixed) is computed
 * in double from the float32 forward; dL/dp from the op's backward (fed dy = w) is compared with
 * (L(p + h) - L(p - h)) / 2h for a sample of elements p of every input.
 *
 * Tolerance: |analytic - numeric| <= 2e-3 * (1 + |numeric|) ... justified as follows. With
 * h = 1e-2 the central difference has truncation error h^2/6 |L'''| ~ 2e-5 for the O(1)
 * smooth functions here. The float32 forward rounds each output to ~6e-8 relative; L sums at
 * most a few hundred O(1) terms, so its noise is <~ 1e-5 absolute, i.e. <~ 1e-3 after dividing
 * by 2h = 2e-2 (worst case, all rounding errors aligned; typically ~1e-4). A real backward bug
 * (missing term, wrong sign, wrong factor, wrong index) gives errors of the order of the
 * gradient itself, i.e. >> 2e-3 (1 + |g|) for the O(0.1..1) gradients here.
 *
 * Every gradient buffer starts at 0.5 and the check subtracts 0.5: this proves the ops
 * accumulate (+=) as ops.h promises instead of overwriting. */
#include "harness.h"
#include "model/model.h"
#include "ops/ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bl_rng g_rng;
static float *rnd(int64_t n, float a) {
    float *p = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = (float)((bl_rng_uniform(&g_rng) * 2.0 - 1.0) * a);
    return p;
}
static float *filled(int64_t n, float v) {
    float *p = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = v;
    return p;
}

/* the op under test: g_fwd() recomputes g_out (g_nout floats) from the current inputs */
static void (*g_fwd)(void);
static float *g_out, *g_w;
static int64_t g_nout;
static double g_h = 1e-2;

static double loss_now(void) {
    g_fwd();
    double s = 0.0;
    for (int64_t i = 0; i < g_nout; i++) s += (double)g_w[i] * (double)g_out[i];
    return s;
}

/* Compares analytic[i] - 0.5 (buffers start at 0.5) with the numeric derivative of L wrt p[i],
 * for up to 48 elements spread over p. */
static void check_grad(const char *what, float *p, int64_t n, const float *analytic) {
    int64_t step = n > 48 ? n / 48 : 1;
    double worst = 0.0;
    int64_t worst_i = -1;
    double wa = 0, wn = 0;
    int bad = 0;
    for (int64_t i = 0; i < n; i += step) {
        float save = p[i];
        p[i] = (float)(save + g_h);
        double lp = loss_now();
        p[i] = (float)(save - g_h);
        double lm = loss_now();
        p[i] = save;
        /* the perturbation actually applied (float rounding of save +- h) */
        double num = (lp - lm) / (((double)(float)(save + g_h)) - ((double)(float)(save - g_h)));
        double ana = (double)analytic[i] - 0.5;
        double err = fabs(ana - num), tol = 2e-3 * (1.0 + fabs(num));
        if (err / tol > worst) { worst = err / tol; worst_i = i; wa = ana; wn = num; }
        if (err > tol) bad++;
    }
    g_fwd(); /* restore outputs */
    t_checks++;
    if (bad) {
        t_failures++;
        fprintf(stderr, "FAIL %s: %d elements off; worst [%lld] analytic %.6g numeric %.6g\n", what, bad,
                (long long)worst_i, wa, wn);
    } else {
        printf("ok   %-36s worst err/tol %.3f\n", what, worst);
    }
}

/* ---------------------------------------------------------------- linear (+ LoRA) */
static int64_t N_, IN_, OUT_, R_;
static float *x_, *W_, *b_, *A_, *B_, *y_, *u_;
static float s_ = 2.0f;

static void fwd_linear(void) { bl_linear_fwd(y_, x_, W_, b_, N_, IN_, OUT_, false); }
static void fwd_lora(void) {
    bl_linear_fwd(y_, x_, W_, b_, N_, IN_, OUT_, false);
    bl_lora_fwd(y_, u_, x_, A_, B_, s_, N_, IN_, OUT_, R_);
}

static void test_linear(void) {
    N_ = 5; IN_ = 7; OUT_ = 6; R_ = 3;
    x_ = rnd(N_ * IN_, 1); W_ = rnd(OUT_ * IN_, 0.5f); b_ = rnd(OUT_, 0.5f);
    A_ = rnd(R_ * IN_, 0.5f); B_ = rnd(OUT_ * R_, 0.5f);
    y_ = malloc(sizeof(float) * N_ * OUT_); u_ = malloc(sizeof(float) * N_ * R_);
    g_w = rnd(N_ * OUT_, 1); g_out = y_; g_nout = N_ * OUT_;

    float *dx = filled(N_ * IN_, 0.5f), *dW = filled(OUT_ * IN_, 0.5f), *db = filled(OUT_, 0.5f);
    g_fwd = fwd_linear; g_fwd();
    bl_linear_bwd(dx, dW, db, g_w, x_, W_, N_, IN_, OUT_);
    check_grad("linear dx", x_, N_ * IN_, dx);
    check_grad("linear dW", W_, OUT_ * IN_, dW);
    check_grad("linear db", b_, OUT_, db);

    /* accumulate flag: y += x W^T + b */
    float *y2 = filled(N_ * OUT_, 1.25f);
    bl_linear_fwd(y2, x_, W_, b_, N_, IN_, OUT_, true);
    float *want = malloc(sizeof(float) * N_ * OUT_);
    for (int64_t i = 0; i < N_ * OUT_; i++) want[i] = y_[i] + 1.25f;
    CHECK(t_allclose("linear accumulate", y2, want, N_ * OUT_, 1e-6, 1e-6) == 0, "accumulate");

    /* LoRA branch */
    float *dA = filled(R_ * IN_, 0.5f), *dB = filled(OUT_ * R_, 0.5f), *du = malloc(sizeof(float) * N_ * R_);
    for (int64_t i = 0; i < N_ * IN_; i++) dx[i] = 0.5f;
    g_fwd = fwd_lora; g_fwd();
    bl_linear_bwd(dx, NULL, NULL, g_w, x_, W_, N_, IN_, OUT_);
    bl_lora_bwd(dx, dA, dB, du, g_w, x_, u_, A_, B_, s_, N_, IN_, OUT_, R_);
    check_grad("linear+lora dx", x_, N_ * IN_, dx);
    check_grad("linear+lora dA", A_, R_ * IN_, dA);
    check_grad("linear+lora dB", B_, OUT_ * R_, dB);
    free(dx); free(dW); free(db); free(dA); free(dB); free(du); free(y2); free(want);
}

/* the attach point bl_lin_fwd / bl_lin_bwd with dropout (same seed each call = same mask),
 * full-FT grads and the modes */
static bl_linear lin_;
static bl_lora lora_;
static bl_lin_saved sv_;
static void fwd_attach(void) {
    bl_rng r; bl_rng_seed(&r, 77);
    bl_lin_fwd(&lin_, BL_ADAPTER_ON, true, y_, x_, N_, false, &sv_, &r);
}

static void test_attach_point(void) {
    memset(&lin_, 0, sizeof lin_); memset(&lora_, 0, sizeof lora_);
    lin_.in = IN_; lin_.out = OUT_; lin_.W = W_; lin_.b = b_;
    lin_.gW = filled(OUT_ * IN_, 0.5f); lin_.gb = filled(OUT_, 0.5f);
    lora_.in = IN_; lora_.out = OUT_; lora_.r = R_; lora_.scale = s_; lora_.dropout = 0.3f;
    lora_.A = A_; lora_.B = B_; lora_.gA = filled(R_ * IN_, 0.5f); lora_.gB = filled(OUT_ * R_, 0.5f);
    lin_.lora = &lora_;
    sv_.u = u_; sv_.xd = malloc(sizeof(float) * N_ * IN_); sv_.mask = malloc(sizeof(float) * N_ * IN_);
    float *scratch = malloc(sizeof(float) * bl_lin_scratch_floats(&lin_, N_));
    float *dx = filled(N_ * IN_, 0.5f);
    g_fwd = fwd_attach; g_fwd();
    int zeros = 0;
    for (int64_t i = 0; i < N_ * IN_; i++) zeros += sv_.mask[i] == 0.0f;
    CHECK(sv_.dropped && zeros > 0 && zeros < N_ * IN_, "dropout drew a mixed mask (%d zeros)", zeros);
    bl_lin_bwd(&lin_, dx, g_w, x_, N_, &sv_, scratch);
    check_grad("attach point (dropout) dx", x_, N_ * IN_, dx);
    check_grad("attach point (dropout) gA", A_, R_ * IN_, lora_.gA);
    check_grad("attach point (dropout) gB", B_, OUT_ * R_, lora_.gB);
    check_grad("attach point full-FT gW", W_, OUT_ * IN_, lin_.gW);
    check_grad("attach point full-FT gb", b_, OUT_, lin_.gb);

    /* OFF = plain linear; INITIAL with A0/B0 = linear + s B0 A0 x */
    float *yoff = malloc(sizeof(float) * N_ * OUT_), *ylin = malloc(sizeof(float) * N_ * OUT_);
    bl_lin_fwd(&lin_, BL_ADAPTER_OFF, false, yoff, x_, N_, false, &sv_, NULL);
    bl_linear_fwd(ylin, x_, W_, b_, N_, IN_, OUT_, false);
    CHECK(t_allclose("mode OFF", yoff, ylin, N_ * OUT_, 0, 0) == 0, "OFF is the base linear");
    CHECK(!sv_.lora_on, "OFF leaves the LoRA branch unused");
    lora_.A0 = A_; lora_.B0 = B_; lora_.dropout = 0.0f;
    bl_lin_fwd(&lin_, BL_ADAPTER_INITIAL, false, yoff, x_, N_, false, &sv_, NULL);
    bl_lin_fwd(&lin_, BL_ADAPTER_ON, false, ylin, x_, N_, false, &sv_, NULL);
    CHECK(t_allclose("mode INITIAL", yoff, ylin, N_ * OUT_, 0, 0) == 0, "INITIAL with A0=A, B0=B equals ON");
    free(yoff); free(ylin); free(scratch); free(dx); free(sv_.xd); free(sv_.mask);
    free(lin_.gW); free(lin_.gb); free(lora_.gA); free(lora_.gB);
    free(x_); free(W_); free(b_); free(A_); free(B_); free(y_); free(u_); free(g_w);
}

/* ---------------------------------------------------------------- norms */
static float *nx_, *nw_, *nb_, *ny_, *nmean_, *nrstd_;
static int64_t NN_, NC_;
static void fwd_ln(void) { bl_layernorm_fwd(ny_, nmean_, nrstd_, nx_, nw_, nb_, NN_, NC_, 1e-5f); }
static void fwd_rms(void) { bl_rmsnorm_fwd(ny_, nrstd_, nx_, nw_, NN_, NC_, 1e-6f); }

static void test_norms(void) {
    NN_ = 4; NC_ = 9;
    nx_ = rnd(NN_ * NC_, 2); nw_ = rnd(NC_, 1.5f); nb_ = rnd(NC_, 1);
    ny_ = malloc(sizeof(float) * NN_ * NC_); nmean_ = malloc(sizeof(float) * NN_); nrstd_ = malloc(sizeof(float) * NN_);
    g_w = rnd(NN_ * NC_, 1); g_out = ny_; g_nout = NN_ * NC_;
    float *dx = filled(NN_ * NC_, 0.5f), *dw = filled(NC_, 0.5f), *db = filled(NC_, 0.5f);
    g_fwd = fwd_ln; g_fwd();
    bl_layernorm_bwd(dx, dw, db, g_w, nx_, nmean_, nrstd_, nw_, NN_, NC_);
    check_grad("layernorm dx", nx_, NN_ * NC_, dx);
    check_grad("layernorm dw", nw_, NC_, dw);
    check_grad("layernorm db", nb_, NC_, db);
    for (int64_t i = 0; i < NN_ * NC_; i++) dx[i] = 0.5f;
    for (int64_t i = 0; i < NC_; i++) dw[i] = 0.5f;
    g_fwd = fwd_rms; g_fwd();
    bl_rmsnorm_bwd(dx, dw, g_w, nx_, nrstd_, nw_, NN_, NC_);
    check_grad("rmsnorm dx", nx_, NN_ * NC_, dx);
    check_grad("rmsnorm dw", nw_, NC_, dw);
    /* forward value: the RMS of a normalised row with w = 1 is 1 */
    float *ones = filled(NC_, 1.0f);
    bl_rmsnorm_fwd(ny_, nrstd_, nx_, ones, 1, NC_, 0.0f);
    double ss = 0; for (int64_t c = 0; c < NC_; c++) ss += (double)ny_[c] * ny_[c];
    CHECK(fabs(ss / NC_ - 1.0) < 1e-5, "rmsnorm row rms %g", ss / NC_);
    free(ones); free(dx); free(dw); free(db);
    free(nx_); free(nw_); free(nb_); free(ny_); free(nmean_); free(nrstd_); free(g_w);
}

/* ---------------------------------------------------------------- activations */
static float *ax_, *ay_, *aup_;
static int64_t AN_;
static int act_kind;
static void fwd_act(void) {
    switch (act_kind) {
    case 0: bl_gelu_tanh_fwd(ay_, ax_, AN_); break;
    case 1: bl_gelu_erf_fwd(ay_, ax_, AN_); break;
    case 2: bl_swiglu_fwd(ay_, ax_, aup_, AN_); break;
    default: bl_relu_fwd(ay_, ax_, AN_); break;
    }
}
static void test_activations(void) {
    AN_ = 40;
    ax_ = rnd(AN_, 3); aup_ = rnd(AN_, 2); ay_ = malloc(sizeof(float) * AN_);
    for (int64_t i = 0; i < AN_; i++) if (fabsf(ax_[i]) < 0.05f) ax_[i] = 0.3f; /* relu: no kink within h */
    g_w = rnd(AN_, 1); g_out = ay_; g_nout = AN_;
    const char *names[4] = {"gelu_tanh dx", "gelu_erf dx", "swiglu dgate", "relu dx"};
    for (act_kind = 0; act_kind < 4; act_kind++) {
        float *dx = filled(AN_, 0.5f), *dup = filled(AN_, 0.5f);
        g_fwd = fwd_act; g_fwd();
        switch (act_kind) {
        case 0: bl_gelu_tanh_bwd(dx, g_w, ax_, AN_); break;
        case 1: bl_gelu_erf_bwd(dx, g_w, ax_, AN_); break;
        case 2: bl_swiglu_bwd(dx, dup, g_w, ax_, aup_, AN_); break;
        default: bl_relu_bwd(dx, g_w, ax_, AN_); break;
        }
        check_grad(names[act_kind], ax_, AN_, dx);
        if (act_kind == 2) check_grad("swiglu dup", aup_, AN_, dup);
        free(dx); free(dup);
    }
    /* values: gelu_new(1) = 0.8411920, gelu(1) = 0.8413447 (torch) */
    float one = 1.0f, v;
    bl_gelu_tanh_fwd(&v, &one, 1); CHECK(fabsf(v - 0.8411920f) < 1e-6f, "gelu_tanh(1) = %.7f", v);
    bl_gelu_erf_fwd(&v, &one, 1); CHECK(fabsf(v - 0.8413447f) < 1e-6f, "gelu(1) = %.7f", v);
    free(ax_); free(aup_); free(ay_); free(g_w);
}

/* ---------------------------------------------------------------- embedding */
static float *et_, *ey_;
static int64_t eids_[6] = {3, 1, 3, 0, 4, 3};
static void fwd_emb(void) { bl_embedding_fwd(ey_, eids_, et_, 6, 5, 4, false, "test"); }
static void test_embedding(void) {
    et_ = rnd(5 * 4, 1); ey_ = malloc(sizeof(float) * 6 * 4);
    g_w = rnd(6 * 4, 1); g_out = ey_; g_nout = 6 * 4;
    float *dt = filled(5 * 4, 0.5f);
    g_fwd = fwd_emb; g_fwd();
    bl_embedding_bwd(dt, g_w, eids_, 6, 4);
    check_grad("embedding dtable (repeated ids)", et_, 5 * 4, dt);
    int64_t bad[2] = {1, 5};
    CHECK_FAILS(bl_embedding_fwd(ey_, bad, et_, 2, 5, 4, false, "input_ids"), BALORA_STATUS_INVALID, "id 5 at position 1");
    free(et_); free(ey_); free(dt); free(g_w);
}

/* ---------------------------------------------------------------- RoPE */
static float *rx_, *rcos_, *rsin_, *ry_;
static const int64_t *rpos_;
static int64_t RB = 2, RT = 5, RH = 3, RD = 8, RS = 3 * 8 + 4;
static void fwd_rope(void) {
    memcpy(ry_, rx_, sizeof(float) * RB * RT * RS);
    bl_rope_fwd(ry_, rcos_, rsin_, rpos_, RB, RT, RH, RD, RS);
}
static void test_rope(void) {
    rx_ = rnd(RB * RT * RS, 1); ry_ = malloc(sizeof(float) * RB * RT * RS);
    rcos_ = malloc(sizeof(float) * 16 * RD / 2); rsin_ = malloc(sizeof(float) * 16 * RD / 2);
    bl_rope_table(rcos_, rsin_, 16, RD, 10000.0);
    g_w = rnd(RB * RT * RS, 1); g_out = ry_; g_nout = RB * RT * RS;
    static const int64_t pos[10] = {3, 4, 5, 6, 7, 0, 1, 2, 9, 15};
    for (int variant = 0; variant < 2; variant++) {
        rpos_ = variant ? pos : NULL;
        float *dx = malloc(sizeof(float) * RB * RT * RS);
        g_fwd = fwd_rope; g_fwd();
        memcpy(dx, g_w, sizeof(float) * RB * RT * RS);
        bl_rope_bwd(dx, rcos_, rsin_, rpos_, RB, RT, RH, RD, RS); /* in place on the gradient */
        for (int64_t i = 0; i < RB * RT * RS; i++) dx[i] += 0.5f;
        check_grad(variant ? "rope dx (position ids)" : "rope dx", rx_, RB * RT * RS, dx);
        free(dx);
    }
    /* position 0 is the identity; the padding columns of the stride are untouched */
    rpos_ = NULL; fwd_rope();
    CHECK(memcmp(ry_, rx_, sizeof(float) * RH * RD) == 0, "rope at position 0 is the identity");
    CHECK(memcmp(ry_ + RH * RD, rx_ + RH * RD, sizeof(float) * 4) == 0, "rope leaves stride padding alone");
    /* rotate-half pairs (i, i + D/2): token 1, head 0, i = 0 rotates by angle 1 rad */
    float x1 = rx_[RS], x2 = rx_[RS + RD / 2];
    CHECK(fabsf(ry_[RS] - (x1 * cosf(1) - x2 * sinf(1))) < 1e-6f, "rope rotate-half value");
    free(rx_); free(ry_); free(rcos_); free(rsin_); free(g_w);
}

/* ---------------------------------------------------------------- attention */
static bl_attn_desc ad_;
static float *aqkv_, *aq_, *ak_, *av_, *aout_, *aprobs_, *abias_, *arq_;
static float *acos_, *asin_;
static bool a_fused_rope;
static void fwd_attn(void) {
    if (a_fused_rope) { /* q, k, v inside one [B, T, (H + 2 Hkv) D] buffer; RoPE on q and k first */
        int64_t W = (ad_.n_head + 2 * ad_.n_kv_head) * ad_.head_dim;
        memcpy(arq_, aqkv_, sizeof(float) * ad_.B * ad_.T * W);
        bl_rope_fwd(arq_, acos_, asin_, NULL, ad_.B, ad_.T, ad_.n_head + ad_.n_kv_head, ad_.head_dim, W);
        bl_attn_fwd(&ad_, aout_, aprobs_, arq_, arq_ + ad_.n_head * ad_.head_dim,
                    arq_ + (ad_.n_head + ad_.n_kv_head) * ad_.head_dim);
    } else {
        bl_attn_fwd(&ad_, aout_, aprobs_, aq_, ak_, av_);
    }
}

static void test_attention(void) {
    /* (a) causal + padding mask + GQA (4 heads / 2 kv heads) + RoPE, fused strided qkv */
    static const int64_t mask[2 * 6] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    int64_t B = 2, T = 6, H = 4, Hkv = 2, D = 4, W = (H + 2 * Hkv) * D;
    memset(&ad_, 0, sizeof ad_);
    ad_.B = B; ad_.T = T; ad_.n_head = H; ad_.n_kv_head = Hkv; ad_.head_dim = D;
    ad_.q_stride = ad_.k_stride = ad_.v_stride = W; ad_.o_stride = H * D;
    ad_.scale = 1.0f / sqrtf((float)D); ad_.causal = true; ad_.key_mask = mask;
    aqkv_ = rnd(B * T * W, 1.5f); arq_ = malloc(sizeof(float) * B * T * W);
    aout_ = malloc(sizeof(float) * B * T * H * D); aprobs_ = malloc(sizeof(float) * B * H * T * T);
    acos_ = malloc(sizeof(float) * T * D / 2); asin_ = malloc(sizeof(float) * T * D / 2);
    bl_rope_table(acos_, asin_, T, D, 10000.0);
    g_w = rnd(B * T * H * D, 1); g_out = aout_; g_nout = B * T * H * D;
    a_fused_rope = true;
    g_fwd = fwd_attn; g_fwd();
    /* causal + padding: probabilities vanish on future and padded keys, rows sum to 1 */
    double worst = 0; bool masked_ok = true;
    for (int64_t b = 0; b < B; b++) for (int64_t h = 0; h < H; h++) for (int64_t i = 0; i < T; i++) {
        const float *p = aprobs_ + ((b * H + h) * T + i) * T;
        double s = 0; for (int64_t j = 0; j < T; j++) { s += p[j]; if ((j > i || !mask[b * T + j]) && p[j] != 0.0f) masked_ok = false; }
        if (fabs(s - 1) > worst) worst = fabs(s - 1);
    }
    CHECK(masked_ok && worst < 1e-5, "masked probabilities zero (%d) and rows sum to 1 (%g)", masked_ok, worst);
    float *dqkv = filled(B * T * W, 0.5f), *scratch = malloc(sizeof(float) * bl_attn_bwd_scratch(&ad_));
    float *drq = calloc((size_t)(B * T * W), sizeof(float));
    bl_attn_bwd(&ad_, drq, drq + H * D, drq + (H + Hkv) * D, NULL, scratch, g_w, arq_, arq_ + H * D,
                arq_ + (H + Hkv) * D, aprobs_);
    bl_rope_bwd(drq, acos_, asin_, NULL, B, T, H + Hkv, D, W);
    for (int64_t i = 0; i < B * T * W; i++) dqkv[i] += drq[i];
    check_grad("attn causal+pad+GQA+RoPE dqkv", aqkv_, B * T * W, dqkv);
    free(dqkv); free(scratch); free(drq); free(arq_); free(aout_); free(aprobs_); free(g_w); free(acos_); free(asin_); free(aqkv_);

    /* (b) bidirectional + padding + sliding window 3 + additive score bias, separate q/k/v */
    B = 2; T = 5; H = 2; Hkv = 2; D = 3;
    static const int64_t mask2[2 * 5] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    memset(&ad_, 0, sizeof ad_);
    ad_.B = B; ad_.T = T; ad_.n_head = H; ad_.n_kv_head = Hkv; ad_.head_dim = D;
    ad_.q_stride = ad_.k_stride = ad_.v_stride = ad_.o_stride = H * D;
    ad_.scale = 0.7f; ad_.window = 3; ad_.key_mask = mask2;
    aq_ = rnd(B * T * H * D, 1.5f); ak_ = rnd(B * T * H * D, 1.5f); av_ = rnd(B * T * H * D, 1.5f);
    abias_ = rnd(B * H * T * T, 1.0f); ad_.bias = abias_;
    aout_ = malloc(sizeof(float) * B * T * H * D); aprobs_ = malloc(sizeof(float) * B * H * T * T);
    g_w = rnd(B * T * H * D, 1); g_out = aout_; g_nout = B * T * H * D;
    a_fused_rope = false; g_fwd = fwd_attn; g_fwd();
    float *dq = filled(B * T * H * D, 0.5f), *dk = filled(B * T * H * D, 0.5f), *dv = filled(B * T * H * D, 0.5f);
    float *dbias = filled(B * H * T * T, 0.5f);
    scratch = malloc(sizeof(float) * bl_attn_bwd_scratch(&ad_));
    bl_attn_bwd(&ad_, dq, dk, dv, dbias, scratch, g_w, aq_, ak_, av_, aprobs_);
    check_grad("attn window+bias dq", aq_, B * T * H * D, dq);
    check_grad("attn window+bias dk", ak_, B * T * H * D, dk);
    check_grad("attn window+bias dv", av_, B * T * H * D, dv);
    check_grad("attn window+bias dbias", abias_, B * H * T * T, dbias);
    /* window: query 4 sees keys 2..4 only */
    CHECK(aprobs_[4 * T + 0] == 0.0f && aprobs_[4 * T + 1] == 0.0f && aprobs_[4 * T + 2] > 0.0f, "sliding window");
    /* a fully masked row has zero output */
    static const int64_t none[2 * 5] = {0};
    ad_.key_mask = none; ad_.window = 0; g_fwd();
    double mx = 0; for (int64_t i = 0; i < B * T * H * D; i++) mx = fmax(mx, fabs(aout_[i]));
    CHECK(mx == 0.0, "fully masked rows give zero output (max %g)", mx);
    free(dq); free(dk); free(dv); free(dbias); free(scratch);
    free(aq_); free(ak_); free(av_); free(abias_); free(aout_); free(aprobs_); free(g_w);
}

/* (c) causal over several row blocks (T > 64: the kernels skip future key blocks), GQA, padding:
 * output against a naive double-precision attention, and gradients by finite differences */
static void test_attention_long(void) {
    int64_t B = 1, T = 150, H = 2, Hkv = 1, D = 4;
    static int64_t mask[150];
    for (int i = 0; i < T; i++) mask[i] = i < 141;
    memset(&ad_, 0, sizeof ad_);
    ad_.B = B; ad_.T = T; ad_.n_head = H; ad_.n_kv_head = Hkv; ad_.head_dim = D;
    ad_.q_stride = H * D; ad_.k_stride = ad_.v_stride = Hkv * D; ad_.o_stride = H * D;
    ad_.scale = 0.5f; ad_.causal = true; ad_.key_mask = mask;
    aq_ = rnd(T * H * D, 1.5f); ak_ = rnd(T * Hkv * D, 1.5f); av_ = rnd(T * Hkv * D, 1.5f);
    aout_ = malloc(sizeof(float) * T * H * D); aprobs_ = malloc(sizeof(float) * B * H * T * T);
    g_w = rnd(T * H * D, 1); g_out = aout_; g_nout = T * H * D;
    a_fused_rope = false; g_fwd = fwd_attn; g_fwd();
    double worst = 0;
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < T; i++) {
            double sc[150], mx = -1e300, sum = 0;
            for (int64_t j = 0; j <= i; j++) {
                if (!mask[j]) continue;
                double s = 0;
                for (int64_t c = 0; c < D; c++) s += (double)aq_[i * H * D + h * D + c] * ak_[j * D + c];
                sc[j] = 0.5 * s;
                if (sc[j] > mx) mx = sc[j];
            }
            for (int64_t j = 0; j <= i; j++) if (mask[j]) sum += exp(sc[j] - mx);
            for (int64_t c = 0; c < D; c++) {
                double o = 0;
                for (int64_t j = 0; j <= i; j++) if (mask[j]) o += exp(sc[j] - mx) / sum * av_[j * D + c];
                worst = fmax(worst, fabs(o - aout_[i * H * D + h * D + c]));
            }
        }
    CHECK(worst < 1e-5, "long causal attention vs naive reference: max |diff| %g", worst);
    float *dq = filled(T * H * D, 0.5f), *dk = filled(T * Hkv * D, 0.5f), *dv = filled(T * Hkv * D, 0.5f);
    float *scratch = malloc(sizeof(float) * bl_attn_bwd_scratch(&ad_));
    for (int64_t i = 0; i < bl_attn_bwd_scratch(&ad_); i++) scratch[i] = NAN; /* garbage must never be read */
    bl_attn_bwd(&ad_, dq, dk, dv, NULL, scratch, g_w, aq_, ak_, av_, aprobs_);
    check_grad("attn causal T=150 (blocks) dq", aq_, T * H * D, dq);
    check_grad("attn causal T=150 (blocks) dk", ak_, T * Hkv * D, dk);
    check_grad("attn causal T=150 (blocks) dv", av_, T * Hkv * D, dv);
    free(dq); free(dk); free(dv); free(scratch);
    free(aq_); free(ak_); free(av_); free(aout_); free(aprobs_); free(g_w);
}

/* ---------------------------------------------------------------- cross-entropy */
static float *xl_;
static int64_t xlab_[2 * 5] = {7, 2, -100, 4, 6, 1, 0, 3, -100, -100};
static bool x_shift;
static double xent_loss(void) {
    double loss; int64_t n;
    bl_xent(xl_, xlab_, 2, 5, 7, x_shift, NULL, 1.0f, &loss, &n);
    return loss;
}
static void test_xent(void) {
    xl_ = rnd(2 * 5 * 7, 3);
    xlab_[0] = 5;
    for (int shift = 0; shift < 2; shift++) {
        x_shift = shift;
        /* reference loss in double */
        double ref = 0; int64_t cnt = 0;
        for (int64_t b = 0; b < 2; b++) for (int64_t t = 0; t < 5; t++) {
            int64_t lab = shift ? (t + 1 < 5 ? xlab_[b * 5 + t + 1] : -100) : xlab_[b * 5 + t];
            if (lab == -100) continue;
            const float *z = xl_ + (b * 5 + t) * 7;
            double s = 0; for (int c = 0; c < 7; c++) s += exp((double)z[c]);
            ref += log(s) - z[lab]; cnt++;
        }
        ref /= (double)cnt;
        double loss; int64_t n;
        float *dl = malloc(sizeof(float) * 70);
        CHECK_OK(bl_xent(xl_, xlab_, 2, 5, 7, x_shift, dl, 1.0f, &loss, &n));
        CHECK(n == cnt && fabs(loss - ref) < 1e-6, "xent loss %.8f vs %.8f, count %lld vs %lld", loss, ref, (long long)n, (long long)cnt);
        /* numeric gradient of the loss itself */
        int bad = 0; double worst = 0;
        for (int64_t i = 0; i < 70; i++) {
            float save = xl_[i];
            xl_[i] = save + 1e-2f; double lp = xent_loss();
            xl_[i] = save - 1e-2f; double lm = xent_loss();
            xl_[i] = save;
            double num = (lp - lm) / ((double)(save + 1e-2f) - (double)(save - 1e-2f));
            double err = fabs(num - dl[i]), tol = 2e-3 * (1 + fabs(num));
            if (err > tol) bad++;
            if (err / tol > worst) worst = err / tol;
        }
        t_checks++;
        if (bad) { t_failures++; fprintf(stderr, "FAIL xent dlogits (shift %d): %d bad\n", shift, bad); }
        else printf("ok   xent dlogits (shift %d, ignored rows) worst err/tol %.3f\n", shift, worst);
        /* in place: dlogits over the logits buffer gives the same */
        float *inplace = malloc(sizeof(float) * 70);
        memcpy(inplace, xl_, sizeof(float) * 70);
        double loss2;
        CHECK_OK(bl_xent(inplace, xlab_, 2, 5, 7, x_shift, inplace, 1.0f, &loss2, &n));
        CHECK(loss2 == loss && memcmp(inplace, dl, sizeof(float) * 70) == 0, "in-place dlogits");
        free(inplace); free(dl);
    }
    int64_t badlab[2] = {3, 7};
    double loss; int64_t n;
    CHECK_FAILS(bl_xent(xl_, badlab, 1, 2, 7, false, NULL, 1.0f, &loss, &n), BALORA_STATUS_INVALID, "value 7 at [0, 1]");
    int64_t allign[2] = {-100, -100};
    CHECK_OK(bl_xent(xl_, allign, 1, 2, 7, false, NULL, 1.0f, &loss, &n));
    CHECK(n == 0 && loss == 0.0, "all ignored: loss 0, count 0");
    free(xl_);
}

/* bl_fast_expf (used by softmax, attention, xent, gelu_tanh, swiglu) within 2.5 ulp of exp */
static void test_fast_exp(void) {
    double worst = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = -87.0f + 175.0f * (float)i / 2000000.0f;
        double want = exp((double)x), got = bl_fast_expf(x);
        double rel = fabs(got - want) / want;
        if (rel > worst) worst = rel;
    }
    CHECK(worst < 2.5 * 5.96e-8, "fast exp max relative error %.3g", worst);
    CHECK(bl_fast_expf(-1000.0f) < 1e-37f && bl_fast_expf(0.0f) == 1.0f, "fast exp clamps and exp(0) = 1");
    printf("ok   fast exp: max relative error %.3g (float eps 1.19e-7)\n", worst);
}

int main(void) {
    bl_rng_seed(&g_rng, 1234);
    test_fast_exp();
    test_linear();
    test_attach_point();
    test_norms();
    test_activations();
    test_embedding();
    test_rope();
    test_attention();
    test_attention_long();
    test_xent();
    return t_finish();
}
