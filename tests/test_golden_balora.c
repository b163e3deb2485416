/* `balora forward --method ba-lora` end to end against ../shared/golden/<arch>/balora_{nlg,nlu}.safetensors
 * (golden/README.md): the lora/ adapter, teacher = the base model with the adapter switched off (for
 * classifiers: the head's initial weights), lambda1 0.5, lambda2 0.3, lambda3 0.2, svd_k 2, tau 1,
 * SVD norm sum (NLG; NLU uses docs/METHOD.md 3.1's unnormalised form). Every key — loss_task, loss_cr,
 * loss_dr, loss_svdr, loss and the gradient of the total for every adapter tensor — within
 * 1e-4 + 1e-3 |want|. Then, at the CLI level: lambda 0 removes a term; on a PiSSA pair written by
 * `balora init` the teacher is the original model (loss_cr = 0 at step 0), not the residual model
 * (--teacher off: loss_cr > 0); usage errors exit 2. */
#include "adapters/lora.h"
#include "harness.h"
#include "io/safetensors.h"
#include "method/reg.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int run(const char *cmd) {
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static float scalar(const bl_st_file *f, const char *name) {
    float v = NAN;
    CHECK_OK(bl_st_read_f32(f, name, 0, NULL, &v));
    return v;
}

static void compare_all(const bl_st_file *got, const bl_st_file *want, const char *what) {
    for (int i = 0; i < want->n; i++) {
        const bl_st_tensor *w = &want->tensors[i], *g = bl_st_find(got, w->name);
        CHECK(g != NULL && g->numel == w->numel, "%s: %s present with %lld elements", what, w->name, (long long)w->numel);
        if (!g || g->numel != w->numel) continue;
        float *a = malloc(sizeof(float) * (size_t)(g->numel ? g->numel : 1)), *b = malloc(sizeof(float) * (size_t)(w->numel ? w->numel : 1));
        CHECK_OK(bl_st_tensor_to_f32(got, g, a));
        CHECK_OK(bl_st_tensor_to_f32(want, w, b));
        CHECK(t_allclose(w->name, a, b, w->numel, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s: %s", what, w->name);
        free(a); free(b);
    }
}

static bool forward(const char *gdir, const char *extra, const char *out) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' forward --model '%s' --adapter '%s/lora' --batch '%s/io.safetensors' --out '%s' %s 2>/dev/null",
             t_cli(), gdir, gdir, gdir, out, extra);
    int rc = run(cmd);
    CHECK(rc == 0, "%s exited %d", cmd, rc);
    return rc == 0;
}

int main(void) {
    const char *shared = t_require_shared();
    struct { const char *arch, *file, *args; } cases[] = {
        {"llama", "balora_nlg", "--task nlg --svd-norm sum"},
        {"qwen2", "balora_nlg", "--task nlg --svd-norm sum"},
        {"bert", "balora_nlu", "--task nlu"},
        {"deberta_v3", "balora_nlu", "--task nlu"},
    };
    char gdir[1024], out[1300], path[1700], extra[1024];
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        snprintf(gdir, sizeof gdir, "%s/golden/%s", shared, cases[c].arch);
        snprintf(out, sizeof out, "%s/%s.safetensors", t_tmpdir(), cases[c].arch);
        snprintf(extra, sizeof extra, "--grads --method ba-lora %s --lambda1 0.5 --lambda2 0.3 --lambda3 0.2 --svd-k 2 --tau 1",
                 cases[c].args);
        if (!forward(gdir, extra, out)) continue;
        bl_st_file got, want;
        CHECK_OK(bl_st_open(&got, out));
        snprintf(path, sizeof path, "%s/%s.safetensors", gdir, cases[c].file);
        CHECK_OK(bl_st_open(&want, path));
        compare_all(&got, &want, cases[c].arch);
        CHECK(bl_st_find(&got, "logits") != NULL, "%s: logits written", cases[c].arch);
        CHECK(got.n == want.n + 1, "%s: %d tensors = golden %d + logits", cases[c].arch, got.n, want.n);
        /* the total is the weighted sum of the terms written */
        float tot = scalar(&got, "loss"), sum = scalar(&got, "loss_task") + 0.5f * scalar(&got, "loss_cr") +
                                                 0.3f * scalar(&got, "loss_dr") + 0.2f * scalar(&got, "loss_svdr");
        CHECK(fabsf(tot - sum) <= 1e-5f * (1 + fabsf(tot)), "%s: loss %g = weighted terms %g", cases[c].arch, tot, sum);
        bl_st_close(&got); bl_st_close(&want);
        printf("ok %s: %s (terms, total, gradients of the total)\n", cases[c].arch, cases[c].file);

        /* lambda1 = 0: no consistency term (value 0), total without it */
        snprintf(extra, sizeof extra, "--method ba-lora %s --lambda1 0 --lambda2 0.3 --lambda3 0.2 --svd-k 2 --tau 1", cases[c].args);
        snprintf(out, sizeof out, "%s/%s_nocr.safetensors", t_tmpdir(), cases[c].arch);
        if (!forward(gdir, extra, out)) continue;
        CHECK_OK(bl_st_open(&got, out));
        CHECK_OK(bl_st_open(&want, path));
        float cr = scalar(&got, "loss_cr"), tot0 = scalar(&got, "loss"), want_tot = scalar(&want, "loss") - 0.5f * scalar(&want, "loss_cr");
        CHECK(cr == 0.0f, "%s: lambda1 0 -> loss_cr 0 (got %g)", cases[c].arch, cr);
        CHECK(t_allclose("total without L_CR", &tot0, &want_tot, 1, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", cases[c].arch);
        bl_st_close(&got); bl_st_close(&want);
    }

    /* PiSSA: the teacher is the original model (W_res + s B0 A0), not the residual model */
    snprintf(gdir, sizeof gdir, "%s/golden/llama", shared);
    char pdir[1300], cmd[8192];
    snprintf(pdir, sizeof pdir, "%s/pissa_llama", t_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s' init --method pissa --model '%s' --targets q_proj,k_proj,v_proj,o_proj --rank 4 --alpha 8 --out '%s' 2>/dev/null",
             t_cli(), gdir, pdir);
    int rc = run(cmd);
    CHECK(rc == 0, "%s exited %d", cmd, rc);
    float cr_auto = NAN, cr_off = NAN;
    for (int teacher = 0; teacher < 2 && rc == 0; teacher++) {
        snprintf(out, sizeof out, "%s/pissa_%d.safetensors", t_tmpdir(), teacher);
        snprintf(cmd, sizeof cmd, "'%s' forward --model '%s/residual' --adapter '%s/adapter' --batch '%s/io.safetensors' --out '%s' "
                 "--grads --method ba-lora --lambda1 0.5 --lambda2 0.3 --lambda3 0.2 --svd-k 2 %s 2>/dev/null",
                 t_cli(), pdir, pdir, gdir, out, teacher ? "--teacher off" : "");
        int r2 = run(cmd);
        CHECK(r2 == 0, "%s exited %d", cmd, r2);
        if (r2) continue;
        bl_st_file got;
        CHECK_OK(bl_st_open(&got, out));
        *(teacher ? &cr_off : &cr_auto) = scalar(&got, "loss_cr");
        bl_st_close(&got);
    }
    CHECK(fabsf(cr_auto) < 1e-6f, "PiSSA step 0: L_CR against the original model is 0 (got %g)", cr_auto);
    CHECK(cr_off > 1e-3f, "PiSSA step 0: L_CR against the residual model (--teacher off) is not 0 (got %g)", cr_off);
    printf("ok PiSSA teacher: L_CR %g (original W) vs %g (residual model)\n", cr_auto, cr_off);

    /* a trained PiSSA adapter (B moved, no step-0 mark) with --initial-adapter: the teacher is
     * W_res + s B0 A0 from the step-0 adapter = the original model, so L_CR is the KL between the
     * student's logits and logits_base; without it the teacher is the residual model */
    char tdir[1600];
    snprintf(tdir, sizeof tdir, "%s/trained", pdir);
    if (rc == 0) {
        bl_model m;
        bl_adapter ad;
        memset(&m, 0, sizeof m); memset(&ad, 0, sizeof ad);
        snprintf(path, sizeof path, "%s/residual", pdir);
        CHECK_OK(bl_model_load(&m, path));
        snprintf(path, sizeof path, "%s/adapter", pdir);
        CHECK_OK(bl_lora_load(&ad, &m.mods, path, false));
        bl_rng rng;
        bl_rng_seed(&rng, 11);
        for (int i = 0; i < ad.n; i++)
            for (int64_t k = 0; k < ad.mods[i].out * ad.mods[i].r; k++) ad.mods[i].B[k] += 0.05f * bl_rng_normal(&rng);
        CHECK_OK(bl_lora_save(&ad, tdir, 0, NULL, NULL));
        bl_lora_free(&ad);
        bl_model_free(&m);
    }
    float cr_with = NAN, cr_without = NAN, cr_ref = NAN;
    for (int with = 0; with < 2 && rc == 0; with++) {
        snprintf(out, sizeof out, "%s/trained_%d.safetensors", t_tmpdir(), with);
        snprintf(cmd, sizeof cmd, "'%s' forward --model '%s/residual' --adapter '%s' --batch '%s/io.safetensors' --out '%s' "
                 "--method ba-lora --lambda1 0.5 --lambda2 0.3 --lambda3 0.2 --svd-k 2 %s%s%s 2>/dev/null",
                 t_cli(), pdir, tdir, gdir, out, with ? "--initial-adapter '" : "", with ? pdir : "", with ? "/adapter'" : "");
        int r2 = run(cmd);
        CHECK(r2 == 0, "%s exited %d", cmd, r2);
        if (r2) continue;
        bl_st_file got, io;
        CHECK_OK(bl_st_open(&got, out));
        *(with ? &cr_with : &cr_without) = scalar(&got, "loss_cr");
        if (with) {
            snprintf(path, sizeof path, "%s/io.safetensors", gdir);
            CHECK_OK(bl_st_open(&io, path));
            const bl_st_tensor *tz = bl_st_find(&got, "logits");
            int64_t n = tz ? tz->numel : 0, labels[32];
            float *z = malloc(sizeof(float) * (size_t)(n + 1)), *zb = malloc(sizeof(float) * (size_t)(n + 1));
            CHECK_OK(bl_st_tensor_to_f32(&got, tz, z));
            CHECK_OK(bl_st_tensor_to_f32(&io, bl_st_find(&io, "logits_base"), zb));
            CHECK_OK(bl_st_tensor_to_i64(&io, bl_st_find(&io, "labels"), labels));
            bl_reg_ws ws;
            memset(&ws, 0, sizeof ws);
            CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLG, 32, n / 32, 0));
            double v = 0;
            CHECK_OK(bl_reg_nlg_cr(&ws, 2, 16, n / 32, z, zb, labels, 1.0, 0.0, NULL, &v));
            cr_ref = (float)v;
            bl_reg_ws_free(&ws);
            free(z); free(zb);
            bl_st_close(&io);
        }
        bl_st_close(&got);
    }
    CHECK(t_allclose("L_CR with --initial-adapter vs KL(logits_base || student)", &cr_with, &cr_ref, 1, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0,
          "teacher = original model");
    CHECK(fabsf(cr_without - cr_ref) > 1e-3f, "without --initial-adapter the teacher is the residual model (%g vs %g)", cr_without, cr_ref);
    printf("ok trained PiSSA adapter: L_CR %g with --initial-adapter (reference %g), %g without\n", cr_with, cr_ref, cr_without);

    /* usage errors */
    const char *bad[] = {"--method ba-lora",                     /* no --adapter */
                         "--method nope --adapter '%s/lora'",
                         "--method ba-lora --adapter '%s/lora' --teacher maybe"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[2048];
        snprintf(args, sizeof args, bad[i], gdir);
        snprintf(cmd, sizeof cmd, "'%s' forward --model '%s' --batch '%s/io.safetensors' --out '%s/x.st' %s 2>/dev/null", t_cli(), gdir,
                 gdir, t_tmpdir(), args);
        rc = run(cmd);
        CHECK(rc == 2, "%s: exit %d, want 2", cmd, rc);
    }
    /* runtime errors: an NLU task on a causal LM, a bad recipe */
    const char *bad1[] = {"--method ba-lora --adapter '%s/lora' --task nlu", "--method ba-lora --adapter '%s/lora' --recipe paper-v9"};
    for (size_t i = 0; i < sizeof bad1 / sizeof *bad1; i++) {
        char args[2048];
        snprintf(args, sizeof args, bad1[i], gdir);
        snprintf(cmd, sizeof cmd, "'%s' forward --model '%s' --batch '%s/io.safetensors' --out '%s/x.st' %s 2>/dev/null", t_cli(), gdir,
                 gdir, t_tmpdir(), args);
        rc = run(cmd);
        CHECK(rc == 1, "%s: exit %d, want 1", cmd, rc);
    }
    return t_finish();
}
