/* BA-LoRA configuration: paper presets, name parsing, lambda schedules (docs/METHOD.md 3.4),
 * the adaptive lambda1's teacher confidence, validation errors. */
#include "harness.h"
#include "method/reg.h"
#include <math.h>
#include <string.h>

static void near(const char *what, double got, double want) {
    CHECK(fabs(got - want) <= 1e-12 * (1 + fabs(want)), "%s: got %.15g want %.15g", what, got, want);
}

int main(void) {
    bl_reg_config c;
    /* paper-v1 defaults per task */
    bl_reg_config_default(&c, BL_REG_TASK_NLU);
    near("nlu l1", c.lambda1, 1e-4); near("nlu l2", c.lambda2, 4e-4); near("nlu l3", c.lambda3, 1e-4);
    CHECK(c.svd_k == 3 && c.svd_norm == BL_SVD_NORM_NONE && c.top_k_entropy == 0, "nlu v1 k/norm");
    CHECK_OK(bl_reg_config_recipe(&c, "paper-v1", BL_REG_TASK_NLG));
    near("nlg l1", c.lambda1, 1e-4); near("nlg l2", c.lambda2, 3e-4); near("nlg l3", c.lambda3, 1e-4);
    CHECK(c.svd_k == 3 && c.svd_norm == BL_SVD_NORM_SUM && c.tau == 1.0, "nlg v1 k/norm/tau");
    for (int i = 0; i < 3; i++) CHECK(c.sched[i] == BL_LAMBDA_SCHED_CONSTANT, "v1 constant schedules");
    /* paper-v6 */
    CHECK_OK(bl_reg_config_recipe(&c, "paper-v6", BL_REG_TASK_NLG));
    near("v6 l1", c.lambda1, 0.025); near("v6 l2", c.lambda2, 0.005); near("v6 l3", c.lambda3, 0.005);
    CHECK(c.sched[0] == BL_LAMBDA_SCHED_COSINE && c.sched[1] == BL_LAMBDA_SCHED_TWO_PHASE &&
          c.sched[2] == BL_LAMBDA_SCHED_TWO_PHASE, "v6 schedules");
    CHECK(c.svd_k == 10 && c.top_k_entropy == 20 && c.tau == 2.0 && c.svd_norm == BL_SVD_NORM_FRO, "v6 k/topk/tau/norm");
    CHECK_OK(bl_reg_config_check(&c, 32000));
    CHECK_FAILS(bl_reg_config_recipe(&c, "paper-v6", BL_REG_TASK_NLU), BALORA_STATUS_UNSUPPORTED, "NLG only");
    CHECK_FAILS(bl_reg_config_recipe(&c, "paper-v2", BL_REG_TASK_NLG), BALORA_STATUS_INVALID, "unknown name 'paper-v2'");

    /* v6 schedules over S = 1000 steps */
    CHECK_OK(bl_reg_config_recipe(&c, "paper-v6", BL_REG_TASK_NLG));
    const int64_t S = 1000;
    near("cosine t=0", bl_reg_lambda(&c, 0, 0, S, 0), 0.025);
    near("cosine t=S/2", bl_reg_lambda(&c, 0, 500, S, 0), 0.1 * 0.025 + 0.9 * 0.025 * 0.5);
    near("cosine t=S", bl_reg_lambda(&c, 0, S, S, 0), 0.0025);
    near("two_phase before warm-up", bl_reg_lambda(&c, 1, 199, S, 0), 0);
    near("two_phase at w", bl_reg_lambda(&c, 1, 200, S, 0), 0);
    near("two_phase mid-ramp", bl_reg_lambda(&c, 1, 225, S, 0), 0.0025);
    near("two_phase after ramp", bl_reg_lambda(&c, 2, 250, S, 0), 0.005);
    near("two_phase end", bl_reg_lambda(&c, 2, S, S, 0), 0.005);
    c.sched[1] = BL_LAMBDA_SCHED_LINEAR_WARMUP;
    c.sched[2] = BL_LAMBDA_SCHED_QUADRATIC_WARMUP;
    near("linear warm-up", bl_reg_lambda(&c, 1, 100, S, 0), 0.0025);
    near("quadratic warm-up", bl_reg_lambda(&c, 2, 100, S, 0), 0.005 * 0.25);
    near("linear after", bl_reg_lambda(&c, 1, 400, S, 0), 0.005);
    c.sched[0] = BL_LAMBDA_SCHED_ADAPTIVE;
    near("adaptive conf 0", bl_reg_lambda(&c, 0, 3, S, 0.0), 0.0025);
    near("adaptive conf 1", bl_reg_lambda(&c, 0, 3, S, 1.0), 0.025);
    c.l1_min = 0.01; c.l1_max = 0.02;
    near("adaptive custom", bl_reg_lambda(&c, 0, 3, S, 0.5), 0.015);

    /* parse helpers */
    bl_lambda_sched s;
    const char *names[] = {"constant", "cosine", "adaptive", "two_phase", "linear_warmup", "quadratic_warmup"};
    for (int i = 0; i < 6; i++) {
        CHECK_OK(bl_lambda_sched_parse(names[i], &s));
        CHECK(s == (bl_lambda_sched)i && !strcmp(bl_lambda_sched_name(s), names[i]), "sched %s", names[i]);
    }
    CHECK_FAILS(bl_lambda_sched_parse("linear", &s), BALORA_STATUS_INVALID, "unknown value 'linear'");
    bl_svd_norm n;
    CHECK_OK(bl_reg_svd_norm_parse("fro", &n)); CHECK(n == BL_SVD_NORM_FRO, "fro");
    CHECK_OK(bl_reg_svd_norm_parse("sum", &n)); CHECK(n == BL_SVD_NORM_SUM, "sum");
    CHECK_FAILS(bl_reg_svd_norm_parse("l2", &n), BALORA_STATUS_INVALID, "svd-norm");
    bl_reg_task t;
    CHECK_OK(bl_reg_task_parse("nlu", &t)); CHECK(t == BL_REG_TASK_NLU, "nlu");
    CHECK_FAILS(bl_reg_task_parse("cls", &t), BALORA_STATUS_INVALID, "nlu or nlg");

    /* validation */
    bl_reg_config_default(&c, BL_REG_TASK_NLG);
    c.lambda2 = -1;
    CHECK_FAILS(bl_reg_config_check(&c, 100), BALORA_STATUS_INVALID, "lambda2");
    bl_reg_config_default(&c, BL_REG_TASK_NLG);
    c.sched[2] = BL_LAMBDA_SCHED_ADAPTIVE;
    CHECK_FAILS(bl_reg_config_check(&c, 100), BALORA_STATUS_INVALID, "lambda1 only");
    bl_reg_config_default(&c, BL_REG_TASK_NLG);
    c.svd_k = 0;
    CHECK_FAILS(bl_reg_config_check(&c, 100), BALORA_STATUS_INVALID, "svd_k");
    bl_reg_config_default(&c, BL_REG_TASK_NLG);
    c.tau = 0;
    CHECK_FAILS(bl_reg_config_check(&c, 100), BALORA_STATUS_INVALID, "tau");

    /* adaptive lambda1 through bl_reg_apply: a confident teacher gets l1_max, a flat one l1_min */
    enum { B = 1, T = 3, V = 8 };
    float z[B * T * V], sharp[B * T * V], flat[B * T * V], g[B * T * V] = {0};
    for (int i = 0; i < B * T * V; i++) { z[i] = (float)(i % 5) * 0.1f; flat[i] = 0.0f; sharp[i] = (i % V == 2) ? 60.0f : 0.0f; }
    int64_t lab[T] = {1, 2, 3};
    bl_reg_ws ws;
    CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLG, B * T, V, 0));
    bl_reg_config_default(&c, BL_REG_TASK_NLG);
    c.sched[0] = BL_LAMBDA_SCHED_ADAPTIVE;
    bl_reg_out o;
    CHECK_OK(bl_reg_apply(&ws, &c, 0, 10, B, T, V, z, flat, lab, g, &o));
    CHECK(fabs(o.conf) < 1e-12 && fabs(o.lambda[0] - 1e-5) < 1e-15, "flat teacher: conf %g lambda1 %g", o.conf, o.lambda[0]);
    CHECK_OK(bl_reg_apply(&ws, &c, 0, 10, B, T, V, z, sharp, lab, g, &o));
    CHECK(o.conf > 0.999 && fabs(o.lambda[0] - 1e-4) < 1e-6, "sharp teacher: conf %g lambda1 %g", o.conf, o.lambda[0]);
    CHECK(o.n_pos == 2, "shifted positions: %lld", (long long)o.n_pos);
    /* a non-constant schedule needs the step count */
    bl_reg_config_default(&c, BL_REG_TASK_NLG);
    c.sched[1] = BL_LAMBDA_SCHED_TWO_PHASE;
    CHECK_FAILS(bl_reg_apply(&ws, &c, 0, 0, B, T, V, z, flat, lab, g, &o), BALORA_STATUS_INVALID, "total step count");
    /* two_phase at step 0: L_DR is off (value 0), the others on */
    CHECK_OK(bl_reg_apply(&ws, &c, 0, 100, B, T, V, z, flat, lab, g, &o));
    CHECK(o.lambda[1] == 0 && o.dr == 0 && o.cr != 0 && o.svdr != 0, "two_phase at step 0 switches L_DR off");
    bl_reg_ws_free(&ws);
    return t_finish();
}
