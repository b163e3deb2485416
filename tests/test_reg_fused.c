/* bl_reg_nlg_fused (the trainer's in-place BA-LoRA step) against the single-term functions it
 * replaces: the gradient it writes over the logits equals bl_causal_ce's gradient plus each
 * term's (bl_reg_nlg_cr/dr/svdr, themselves checked by test_reg_fd and test_reg_golden), and
 * the values equal theirs, on both SVD routes (Gram: 2|M| <= V; gesdd), full and top-K entropy,
 * constant and adaptive lambda1, tau 1 and not, the teacher given as logits or as hidden states + LM head
 * (recomputed by blocks, more rows than one teacher chunk), masked rows, no trained row. */
#include "harness.h"
#include "method/reg.h"
#include "ops/ops.h"
#include "train/trainer.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

typedef struct { int64_t B, T, V, C; int64_t k, top_k; bl_svd_norm norm; bool adaptive, hidden; const char *name; } shape;

static void one(const shape *s, int only) { /* only: 0 = CE + all terms, 1..3 = that term alone */
    const int64_t B = s->B, T = s->T, V = s->V, C = s->C, N = B * T, n = N * V;
    uint64_t seed = 1234 + (uint64_t)(V * 7 + T);
    float *z = malloc(sizeof(float) * (size_t)n), *zt = malloc(sizeof(float) * (size_t)n);
    float *ref = malloc(sizeof(float) * (size_t)n), *h = malloc(sizeof(float) * (size_t)(N * C));
    float *head = malloc(sizeof(float) * (size_t)(V * C));
    int64_t *lab = malloc(sizeof(int64_t) * (size_t)N);
    for (int64_t i = 0; i < n; i++) z[i] = 2.0f * frand(&seed);
    for (int64_t i = 0; i < N * C; i++) h[i] = frand(&seed);
    for (int64_t i = 0; i < V * C; i++) head[i] = 0.7f * frand(&seed);
    bl_linear_fwd(zt, h, head, NULL, N, C, V, false); /* teacher logits = h head^T */
    for (int64_t i = 0; i < N; i++) lab[i] = (i % 5 == 2) ? -100 : (int64_t)((i * 31 + 7) % V);

    bl_reg_config c;
    bl_reg_config_default(&c, BL_REG_TASK_NLG);
    c.lambda1 = 0.7; c.lambda2 = 0.4; c.lambda3 = 0.3;
    c.tau = s->norm == BL_SVD_NORM_SUM ? 1.0 : 1.7; /* tau = 1 shares the temperature-1 softmax */
    c.svd_k = s->k; c.top_k_entropy = s->top_k; c.svd_norm = s->norm;
    if (s->adaptive) c.sched[0] = BL_LAMBDA_SCHED_ADAPTIVE;
    if (only) {
        if (only != 1) c.lambda1 = 0;
        if (only != 2) c.lambda2 = 0;
        if (only != 3) c.lambda3 = 0;
    }
    bl_reg_ws ws;
    CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLG, N, V, s->top_k));
    const double ce_scale = only ? 0 : 0.37, w = 0.61;

    /* reference: CE in place on a copy, then each term added with weight w * lambda */
    double ce_sum, conf = 0, cr, dr, sv;
    int64_t cnt;
    CHECK_OK(bl_causal_ce(z, lab, B, T, V, (float)ce_scale, ref, &ce_sum, &cnt));
    cr = dr = sv = 0;
    if (s->adaptive && c.lambda1 > 0) CHECK_OK(bl_reg_teacher_conf(&ws, B, T, V, zt, lab, c.tau, &conf));
    double l[3];
    for (int i = 0; i < 3; i++) l[i] = bl_reg_lambda(&c, i, 3, 10, conf);
    if (c.lambda1 > 0) CHECK_OK(bl_reg_nlg_cr(&ws, B, T, V, z, zt, lab, c.tau, w * l[0], ref, &cr));
    if (c.lambda2 > 0) CHECK_OK(bl_reg_nlg_dr(&ws, B, T, V, z, lab, c.top_k_entropy, w * l[1], ref, &dr));
    if (c.lambda3 > 0) CHECK_OK(bl_reg_nlg_svdr(&ws, B, T, V, z, lab, c.svd_k, c.svd_norm, w * l[2], ref, &sv));

    float *z0 = malloc(sizeof(float) * (size_t)n);
    memcpy(z0, z, sizeof(float) * (size_t)n);
    for (int use_stats = 0; use_stats <= (s->hidden && c.lambda1 > 0 ? 1 : 0); use_stats++) {
    memcpy(z, z0, sizeof(float) * (size_t)n);
    bl_reg_teacher t = s->hidden ? (bl_reg_teacher){.hidden = h, .head = head, .C = C} : (bl_reg_teacher){.logits = zt};
    if (use_stats) { /* the trainer's route: statistics taken from the teacher's logits beforehand */
        CHECK_OK(bl_reg_nlg_teacher_stats(&ws, &c, B, T, V, zt));
        t.stats = true;
    }
    double vals[3], lam[3];
    CHECK_OK(bl_reg_nlg_fused(&ws, &c, 3, 10, B, T, V, z, lab, &t, ce_scale, w, vals, lam));
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)z[i] - ref[i]));
    CHECK(scale > 0 && worst <= 2e-6 * scale, "%s (only %d, stats %d): fused gradient vs the single terms: max diff %g (max |grad| %g)", s->name, only, use_stats, worst, scale);
    CHECK(fabs(vals[0] - cr) <= 1e-9 * fabs(cr) + 1e-300 && fabs(vals[1] - dr) <= 1e-12 * fabs(dr) && fabs(vals[2] - sv) <= 1e-12 * fabs(sv),
          "%s: values cr %.12g/%.12g dr %.12g/%.12g svdr %.12g/%.12g", s->name, vals[0], cr, vals[1], dr, vals[2], sv);
    CHECK(fabs(lam[0] - l[0]) <= 1e-12 && lam[1] == l[1] && lam[2] == l[2], "%s: lambdas %g %g %g vs %g %g %g", s->name,
          lam[0], lam[1], lam[2], l[0], l[1], l[2]);
    /* untrained rows (t = T-1, and rows whose next label is -100) are zero */
    for (int64_t r = 0; r < N; r++)
        if (r % T == T - 1 || lab[r + 1] == -100)
            for (int64_t j = 0; j < V; j++)
                if (z[r * V + j] != 0) { CHECK(0, "%s: row %lld untrained but has gradient", s->name, (long long)r); break; }
    }
    free(z0);
    bl_reg_ws_free(&ws);
    free(z); free(zt); free(ref); free(h); free(head); free(lab);
}

int main(void) {
    const shape shapes[] = {
        /* Gram route (2|M| <= V), sum norm (P = full), hidden teacher over > BL_REG_TEACHER_ROWS rows, V > chunk */
        {3, 24, 1300, 6, 3, 0, BL_SVD_NORM_SUM, false, true, "gram/sum/hidden"},
        /* Gram route, fro norm (low-rank form), top-K entropy, adaptive lambda1, logits teacher */
        {2, 10, 700, 5, 2, 4, BL_SVD_NORM_FRO, true, false, "gram/fro/topk/adaptive"},
        /* gesdd route (2|M| > V), none norm, hidden teacher, top-K */
        {2, 12, 9, 4, 3, 3, BL_SVD_NORM_NONE, false, true, "gesdd/none/hidden/topk"},
        /* gesdd route, sum norm, adaptive lambda1 */
        {3, 6, 7, 5, 2, 0, BL_SVD_NORM_SUM, true, false, "gesdd/sum/adaptive"},
        /* gesdd route, fro norm, k = rank */
        {3, 6, 7, 5, 7, 0, BL_SVD_NORM_FRO, false, true, "gesdd/fro/k=rank"},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int only = 0; only <= 3; only++) one(&shapes[i], only);

    /* no trained position: the gradient is zero, the terms 0 */
    {
        const int64_t B = 2, T = 4, V = 5;
        float z[2 * 4 * 5];
        int64_t lab[8];
        for (int i = 0; i < 40; i++) z[i] = (float)i;
        for (int i = 0; i < 8; i++) lab[i] = -100;
        bl_reg_config c;
        bl_reg_config_default(&c, BL_REG_TASK_NLG);
        bl_reg_ws ws;
        CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLG, B * T, V, 0));
        bl_reg_teacher t = {.logits = z};
        double vals[3], lam[3];
        CHECK_OK(bl_reg_nlg_fused(&ws, &c, 0, 1, B, T, V, z, lab, &t, 1, 1, vals, lam));
        int nz = 0;
        for (int i = 0; i < 40; i++) nz += z[i] != 0;
        CHECK(nz == 0 && vals[0] == 0 && vals[1] == 0 && vals[2] == 0, "no trained row: %d non-zero gradients", nz);
        /* bad input: a label out of range, L_CR without a teacher, too many rows */
        lab[2] = 9;
        CHECK_FAILS(bl_reg_nlg_fused(&ws, &c, 0, 1, B, T, V, z, lab, &t, 1, 1, vals, lam), BALORA_STATUS_INVALID, "labels[");
        lab[2] = 1;
        CHECK_FAILS(bl_reg_nlg_fused(&ws, &c, 0, 1, B, T, V, z, lab, NULL, 1, 1, vals, lam), BALORA_STATUS_INVALID, "teacher");
        CHECK_FAILS(bl_reg_nlg_fused(&ws, &c, 0, 1, B, 2 * T, V, z, lab, &t, 1, 1, vals, lam), BALORA_STATUS_INVALID, "workspace");
        bl_reg_ws_free(&ws);
    }
    return t_finish();
}
