/* Golden parity of the encoders with transformers + PEFT (../shared/golden/{bert,roberta,deberta_v3}):
 * logits and loss of the base model, of the LoRA adapter (query/key/value + the classifier as
 * modules_to_save) and of the PiSSA adapter on the residual weights, and every gradient in
 * lora/grads.safetensors and pissa/grads.safetensors, within 1e-4 + 1e-3 |want|.
 * The adapters are attached here by hand (bl_lora structs on the encoder's bl_module_set), so the
 * test depends only on the attach point, not on the adapter library. BA-LoRA's NLU terms
 * (src/method/reg.h) on the classifier logits end to end: balora_nlu.safetensors. */
#include "harness.h"
#include "encoders/encoder.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "method/reg.h"
#include "adapters/lora.h"
#include "method/pissa_model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct attached {
    int n;
    bl_lora mods[64];
    float *blocks[64];
    float *head_blocks[8];
    int n_head;
} attached;

static float *read_tensor(const bl_st_file *f, const char *key, int64_t numel) {
    const bl_st_tensor *t = bl_st_find(f, key);
    if (!t || t->numel != numel) return NULL;
    float *x = malloc(sizeof(float) * (size_t)numel);
    if (bl_st_tensor_to_f32(f, t, x)) { free(x); return NULL; }
    return x;
}

/* Attaches adapter_model.safetensors of dir: every lin with lora_A/lora_B keys, every head param. */
static int attach(bl_encoder *m, const char *dir, attached *at) {
    memset(at, 0, sizeof *at);
    char p[1200];
    if (snprintf(p, sizeof p, "%s/adapter_config.json", dir) >= (int)sizeof p) return -1;
    cJSON *cfg;
    if (bl_json_load(p, &cfg)) return -1;
    int64_t r = 0;
    double alpha = 0;
    bl_json_int(cfg, p, "r", true, &r);
    bl_json_num(cfg, p, "lora_alpha", true, &alpha);
    cJSON_Delete(cfg);
    if (snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir) >= (int)sizeof p) return -1;
    bl_st_file f;
    if (bl_st_open(&f, p)) return -1;
    int used = 0;
    for (int i = 0; i < m->mods.n_lin; i++) {
        bl_linear *L = &m->mods.lin[i];
        char ka[300], kb[300];
        snprintf(ka, sizeof ka, "base_model.model.%s.lora_A.weight", L->name);
        snprintf(kb, sizeof kb, "base_model.model.%s.lora_B.weight", L->name);
        if (!bl_st_find(&f, ka)) continue;
        bl_lora *lo = &at->mods[at->n];
        lo->in = L->in; lo->out = L->out; lo->r = r;
        lo->scale = (float)(alpha / (double)r);
        float *blk = calloc((size_t)(2 * r * (L->in + L->out)), sizeof(float)); /* A | B | gA | gB */
        at->blocks[at->n] = blk;
        lo->A = blk; lo->B = blk + r * L->in; lo->gA = lo->B + r * L->out; lo->gB = lo->gA + r * L->in;
        float *A = read_tensor(&f, ka, r * L->in), *B = read_tensor(&f, kb, r * L->out);
        if (!A || !B) { free(A); free(B); bl_st_close(&f); return -1; }
        memcpy(lo->A, A, sizeof(float) * (size_t)(r * L->in));
        memcpy(lo->B, B, sizeof(float) * (size_t)(r * L->out));
        free(A); free(B);
        L->lora = lo;
        at->n++;
        used += 2;
    }
    for (int i = 0; i < m->mods.n_params; i++) {
        bl_param *pp = &m->mods.params[i];
        char k[300];
        snprintf(k, sizeof k, "base_model.model.%s", pp->name);
        if (!bl_st_find(&f, k)) continue;
        float *x = read_tensor(&f, k, pp->numel);
        if (!x) { bl_st_close(&f); return -1; }
        float *blk = calloc((size_t)(2 * pp->numel), sizeof(float));
        memcpy(blk, x, sizeof(float) * (size_t)pp->numel);
        free(x);
        pp->train_data = blk;
        pp->grad = blk + pp->numel;
        at->head_blocks[at->n_head++] = blk;
        used++;
    }
    int total = f.n;
    bl_st_close(&f);
    m->mods.attach_gen++;
    return used == total ? used : -2;
}

static void detach(bl_encoder *m, attached *at) {
    for (int i = 0; i < m->mods.n_lin; i++) m->mods.lin[i].lora = NULL;
    for (int i = 0; i < m->mods.n_params; i++) { m->mods.params[i].train_data = NULL; m->mods.params[i].grad = NULL; }
    for (int i = 0; i < at->n; i++) free(at->blocks[i]);
    for (int i = 0; i < at->n_head; i++) free(at->head_blocks[i]);
    m->mods.attach_gen++;
}

/* Compares every tensor of grads.safetensors with the matching gradient. */
static void check_grads(bl_encoder *m, const char *path, const char *arch) {
    bl_st_file g;
    CHECK_OK(bl_st_open(&g, path));
    int matched = 0;
    for (int t = 0; t < g.n; t++) {
        const bl_st_tensor *tt = &g.tensors[t];
        if (tt->ndim == 0) continue; /* balora_nlu.safetensors also holds the loss terms */
        float *want = malloc(sizeof(float) * (size_t)tt->numel);
        bl_st_tensor_to_f32(&g, tt, want);
        const float *got = NULL;
        for (int i = 0; i < m->mods.n_lin && !got; i++) {
            bl_linear *L = &m->mods.lin[i];
            if (!L->lora) continue;
            char k[300];
            snprintf(k, sizeof k, "base_model.model.%s.lora_A.weight", L->name);
            if (!strcmp(k, tt->name)) got = L->lora->gA;
            snprintf(k, sizeof k, "base_model.model.%s.lora_B.weight", L->name);
            if (!strcmp(k, tt->name)) got = L->lora->gB;
        }
        for (int i = 0; i < m->mods.n_params && !got; i++) {
            char k[300];
            snprintf(k, sizeof k, "base_model.model.%s", m->mods.params[i].name);
            if (!strcmp(k, tt->name)) got = m->mods.params[i].grad;
        }
        CHECK(got != NULL, "%s: no gradient for %s", arch, tt->name);
        if (got) {
            char what[400];
            snprintf(what, sizeof what, "%s %s", arch, tt->name);
            CHECK(t_allclose(what, got, want, tt->numel, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", what);
            matched++;
        }
        free(want);
    }
    int n_tensors = 0;
    for (int t = 0; t < g.n; t++) n_tensors += g.tensors[t].ndim > 0;
    CHECK(matched == n_tensors && n_tensors > 0, "%s: matched %d of %d gradients", arch, matched, n_tensors);
    bl_st_close(&g);
}

/* Opens dir/io.safetensors and reads the batch: input_ids, attention_mask [2, 16], labels [2]. */
static void open_io(const char *dir, bl_st_file *io, int64_t *ids, int64_t *mask, int64_t *labels) {
    char p[1200];
    snprintf(p, sizeof p, "%s/io.safetensors", dir);
    CHECK_OK(bl_st_open(io, p));
    CHECK_OK(bl_st_tensor_to_i64(io, bl_st_find(io, "input_ids"), ids));
    CHECK_OK(bl_st_tensor_to_i64(io, bl_st_find(io, "attention_mask"), mask));
    CHECK_OK(bl_st_tensor_to_i64(io, bl_st_find(io, "labels"), labels));
}

static void run_arch(const char *shared, const char *arch) {
    char dir[1024], p[1200];
    snprintf(dir, sizeof dir, "%s/golden/%s", shared, arch);
    bl_st_file io;
    int64_t ids[32], mask[32], labels[2];
    open_io(dir, &io, ids, mask, labels);
    const char *variants[3] = {"base", "lora", "pissa"};
    for (int v = 0; v < 3; v++) {
        bl_encoder m;
        CHECK_OK(bl_enc_load(&m, dir, NULL));
        if (t_failures) break;
        int64_t NL = m.cfg.num_labels;
        attached at = {0};
        if (v == 2) {
            /* PiSSA: targeted weights are the residuals */
            snprintf(p, sizeof p, "%s/pissa/residual_weights.safetensors", dir);
            bl_st_file rw;
            CHECK_OK(bl_st_open(&rw, p));
            for (int t = 0; t < rw.n; t++) {
                bl_param *pp = NULL;
                for (int i = 0; i < m.mods.n_params; i++) if (!strcmp(m.mods.params[i].name, rw.tensors[t].name)) pp = &m.mods.params[i];
                CHECK(pp != NULL, "residual %s names no tensor", rw.tensors[t].name);
                if (pp) CHECK_OK(bl_st_tensor_to_f32(&rw, &rw.tensors[t], pp->data));
            }
            bl_st_close(&rw);
        }
        if (v > 0) {
            snprintf(p, sizeof p, "%s/%s", dir, variants[v]);
            int used = attach(&m, p, &at);
            CHECK(used > 0, "%s/%s: attaching the adapter failed (%d)", arch, variants[v], used);
        }
        bl_enc_run r;
        CHECK_OK(bl_enc_run_init(&r, &m, 2, 16));
        bl_enc_batch b = {2, 16, ids, mask, NULL};
        CHECK_OK(bl_enc_forward(&r, &b, v ? BL_ADAPTER_ON : BL_ADAPTER_OFF));
        double loss;
        CHECK_OK(bl_enc_loss(&r, labels, NULL, &loss, r.dlogits));
        char key[64], what[128];
        snprintf(key, sizeof key, "logits_%s", variants[v]);
        float want[8], wl;
        CHECK_OK(bl_st_read_f32(&io, key, 2, (int64_t[]){2, NL}, want));
        snprintf(what, sizeof what, "%s %s", arch, key);
        CHECK(t_allclose(what, r.logits, want, 2 * NL, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", what);
        snprintf(key, sizeof key, "loss_%s", variants[v]);
        CHECK_OK(bl_st_read_f32(&io, key, 0, NULL, &wl));
        float lf = (float)loss;
        snprintf(what, sizeof what, "%s %s", arch, key);
        CHECK(t_allclose(what, &lf, &wl, 1, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s: %.7f vs %.7f", what, loss, wl);
        if (v > 0) {
            CHECK_OK(bl_enc_backward(&r, r.dlogits));
            snprintf(p, sizeof p, "%s/%s/grads.safetensors", dir, variants[v]);
            check_grads(&m, p, arch);
            /* the adapter switched off gives the base model (BA-LoRA's teacher for LoRA) */
            if (v == 1) {
                CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_OFF));
                CHECK_OK(bl_st_read_f32(&io, "logits_base", 2, (int64_t[]){2, NL}, want));
                snprintf(what, sizeof what, "%s adapter off == logits_base", arch);
                CHECK(t_allclose(what, r.logits, want, 2 * NL, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", what);
                CHECK_FAILS(bl_enc_backward(&r, r.dlogits), BALORA_STATUS_INVALID, "adapter off");
            }
        }
        bl_enc_run_free(&r);
        if (v > 0) detach(&m, &at);
        bl_enc_free(&m);
    }
    bl_st_close(&io);
}

/* BA-LoRA NLU end to end (golden/README.md): the lora/ adapter, teacher = the base model with the
 * adapter switched off (the head's initial weights), lambda1 0.5, lambda2 0.3, lambda3 0.2, k 2. */
static void run_balora(const char *shared, const char *arch) {
    char dir[1024], p[1200];
    snprintf(dir, sizeof dir, "%s/golden/%s", shared, arch);
    bl_st_file io, gold;
    int64_t ids[32], mask[32], labels[2];
    open_io(dir, &io, ids, mask, labels);
    snprintf(p, sizeof p, "%s/balora_nlu.safetensors", dir);
    CHECK_OK(bl_st_open(&gold, p));
    bl_encoder m;
    CHECK_OK(bl_enc_load(&m, dir, NULL));
    int64_t NL = m.cfg.num_labels;
    attached at;
    snprintf(p, sizeof p, "%s/lora", dir);
    CHECK(attach(&m, p, &at) > 0, "%s: attach lora", arch);
    bl_enc_run r;
    CHECK_OK(bl_enc_run_init(&r, &m, 2, 16));
    bl_enc_batch b = {2, 16, ids, mask, NULL};
    float z_pt[8];
    CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_OFF));
    memcpy(z_pt, r.logits, sizeof(float) * (size_t)(2 * NL));
    CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_ON));
    double task;
    CHECK_OK(bl_enc_loss(&r, labels, NULL, &task, r.dlogits));
    bl_reg_config rc;
    bl_reg_config_default(&rc, BL_REG_TASK_NLU);
    rc.lambda1 = 0.5; rc.lambda2 = 0.3; rc.lambda3 = 0.2; rc.svd_k = 2; rc.tau = 1; rc.svd_norm = BL_SVD_NORM_NONE;
    bl_reg_ws ws;
    CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLU, 2, NL, 0));
    bl_reg_out o;
    CHECK_OK(bl_reg_apply(&ws, &rc, 0, 1, 2, 1, NL, r.logits, z_pt, NULL, r.dlogits, &o));
    struct { const char *key; double got; } terms[5] = {
        {"loss_task", task}, {"loss_cr", o.cr}, {"loss_dr", o.dr}, {"loss_svdr", o.svdr}, {"loss", task + o.total}};
    for (int i = 0; i < 5; i++) {
        float want, got = (float)terms[i].got;
        CHECK_OK(bl_st_read_f32(&gold, terms[i].key, 0, NULL, &want));
        char what[128];
        snprintf(what, sizeof what, "%s balora %s", arch, terms[i].key);
        CHECK(t_allclose(what, &got, &want, 1, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s: %.7g vs %.7g", what, terms[i].got, want);
    }
    CHECK_OK(bl_enc_backward(&r, r.dlogits));
    snprintf(p, sizeof p, "%s/balora_nlu.safetensors", dir);
    char what[64];
    snprintf(what, sizeof what, "%s balora", arch);
    check_grads(&m, p, what);
    bl_reg_ws_free(&ws);
    bl_enc_run_free(&r);
    detach(&m, &at);
    bl_enc_free(&m);
    bl_st_close(&gold);
    bl_st_close(&io);
}

/* The adapter library (src/adapters) on the encoder's module set: bl_lora_load of the PEFT folder,
 * logits and every trainable's gradient; save and reload; bl_lora_init target matching. */
static void run_library(const char *shared, const char *arch) {
    char dir[1024], p[1200];
    snprintf(dir, sizeof dir, "%s/golden/%s", shared, arch);
    bl_st_file io;
    int64_t ids[32], mask[32], labels[2];
    open_io(dir, &io, ids, mask, labels);
    bl_encoder m;
    CHECK_OK(bl_enc_load(&m, dir, NULL));
    int64_t NL = m.cfg.num_labels;
    bl_adapter ad;
    snprintf(p, sizeof p, "%s/lora", dir);
    CHECK_OK(bl_lora_load(&ad, &m.mods, p, false));
    bl_enc_run r;
    CHECK_OK(bl_enc_run_init(&r, &m, 2, 16));
    bl_enc_batch b = {2, 16, ids, mask, NULL};
    CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_ON));
    float want[8], on[8];
    CHECK_OK(bl_st_read_f32(&io, "logits_lora", 2, (int64_t[]){2, NL}, want));
    char what[300];
    snprintf(what, sizeof what, "%s bl_lora_load logits_lora", arch);
    CHECK(t_allclose(what, r.logits, want, 2 * NL, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", what);
    memcpy(on, r.logits, sizeof(float) * (size_t)(2 * NL));
    double loss;
    CHECK_OK(bl_enc_loss(&r, labels, NULL, &loss, r.dlogits));
    bl_lora_zero_grads(&ad);
    CHECK_OK(bl_enc_backward(&r, r.dlogits));
    bl_param tr[64];
    int n = bl_lora_trainables(&ad, tr, 64);
    snprintf(p, sizeof p, "%s/lora/grads.safetensors", dir);
    bl_st_file g;
    CHECK_OK(bl_st_open(&g, p));
    CHECK(n == g.n, "%s: %d trainables, %d golden gradients", arch, n, g.n);
    for (int i = 0; i < n && i < 64; i++) {
        float *w = malloc(sizeof(float) * (size_t)tr[i].numel);
        CHECK_OK(bl_st_read_f32(&g, tr[i].name, tr[i].ndim, tr[i].shape, w));
        snprintf(what, sizeof what, "%.20s library %.200s", arch, tr[i].name);
        CHECK(t_allclose(what, tr[i].grad, w, tr[i].numel, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", what);
        free(w);
    }
    bl_st_close(&g);
    /* save, reload into a fresh model: same logits */
    snprintf(p, sizeof p, "%s/%s_adapter", t_tmpdir(), arch);
    CHECK_OK(bl_lora_save(&ad, p, 0, NULL, NULL));
    bl_enc_run_free(&r);
    bl_lora_free(&ad);
    bl_enc_free(&m);
    CHECK_OK(bl_enc_load(&m, dir, NULL));
    CHECK_OK(bl_lora_load(&ad, &m.mods, p, false));
    CHECK_OK(bl_enc_run_init(&r, &m, 2, 16));
    CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_ON));
    snprintf(what, sizeof what, "%s saved adapter reloaded", arch);
    CHECK(t_allclose(what, r.logits, on, 2 * NL, 0, 0) == 0, "%s", what);
    bl_enc_run_free(&r);
    bl_lora_free(&ad);
    /* bl_lora_init: "dense" matches attention.output.dense, intermediate.dense, output.dense and the pooler */
    bl_lora_config lc;
    bl_lora_config_default(&lc);
    CHECK_OK(bl_lora_config_set_targets(&lc, m.cfg.arch == BL_ENC_DEBERTA_V2 ? "query_proj,value_proj,dense" : "query,value,dense"));
    CHECK_OK(bl_lora_init(&ad, &m.mods, &lc, 1));
    int64_t want_n = 5 * m.cfg.n_layer + (m.pooler ? 1 : 0);
    CHECK(ad.n == want_n, "%s: bl_lora_init adapted %d modules, want %lld", arch, ad.n, (long long)want_n);
    CHECK(ad.n_heads == (m.cfg.arch == BL_ENC_ROBERTA ? 4 : 2), "%s: %d head tensors in modules_to_save", arch, ad.n_heads);
    bl_lora_free(&ad);
    bl_enc_free(&m);
    bl_st_close(&io);
}

/* PiSSA initialisation on the encoders (exact SVD, src/method through the trainer's helper):
 * s B A and the residual W - s B A of every adapted module against PEFT's (pissa/), which fixes
 * them up to the signs of the singular vectors. */
static void run_pissa_init(const char *shared, const char *arch) {
    char dir[1024], p[1200];
    snprintf(dir, sizeof dir, "%s/golden/%s", shared, arch);
    bl_encoder m;
    CHECK_OK(bl_enc_load(&m, dir, NULL));
    bl_lora_config lc;
    bl_lora_config_default(&lc);
    lc.r = 4; lc.alpha = 8; lc.init = BL_LORA_INIT_PISSA; lc.pissa_niter = -1; lc.keep_initial = true;
    CHECK_OK(bl_lora_config_set_targets(&lc, m.cfg.arch == BL_ENC_DEBERTA_V2 ? "query_proj,key_proj,value_proj" : "query,key,value"));
    bl_adapter ad;
    CHECK_OK(bl_lora_init(&ad, &m.mods, &lc, 0));
    CHECK_OK(bl_pissa_init_adapter(&ad, -1, 0));
    bl_st_file ga, gr;
    snprintf(p, sizeof p, "%s/pissa/adapter_model.safetensors", dir);
    CHECK_OK(bl_st_open(&ga, p));
    snprintf(p, sizeof p, "%s/pissa/residual_weights.safetensors", dir);
    CHECK_OK(bl_st_open(&gr, p));
    CHECK(ad.n == 6, "%s: %d modules", arch, ad.n);
    for (int i = 0; i < ad.n; i++) {
        const bl_lora *lo = &ad.mods[i];
        const bl_linear *L = &m.mods.lin[ad.lin_index[i]];
        int64_t out = L->out, in = L->in, r = lo->r;
        float *A = malloc(sizeof(float) * (size_t)(r * in)), *B = malloc(sizeof(float) * (size_t)(out * r));
        float *got = malloc(sizeof(float) * (size_t)(out * in)), *want = malloc(sizeof(float) * (size_t)(out * in));
        char k[300], what[400];
        snprintf(k, sizeof k, "base_model.model.%s.lora_A.weight", L->name);
        CHECK_OK(bl_st_read_f32(&ga, k, 2, (int64_t[]){r, in}, A));
        snprintf(k, sizeof k, "base_model.model.%s.lora_B.weight", L->name);
        CHECK_OK(bl_st_read_f32(&ga, k, 2, (int64_t[]){out, r}, B));
        for (int64_t o = 0; o < out; o++)
            for (int64_t c = 0; c < in; c++) {
                double g = 0, w = 0;
                for (int64_t t = 0; t < r; t++) { g += (double)lo->B[o * r + t] * lo->A[t * in + c]; w += (double)B[o * r + t] * A[t * in + c]; }
                got[o * in + c] = (float)(lo->scale * g);
                want[o * in + c] = (float)(lo->scale * w);
            }
        snprintf(what, sizeof what, "%s PiSSA s B A of %s", arch, L->name);
        CHECK(t_allclose(what, got, want, out * in, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", what);
        snprintf(k, sizeof k, "%s.weight", L->name);
        CHECK_OK(bl_st_read_f32(&gr, k, 2, (int64_t[]){out, in}, want));
        snprintf(what, sizeof what, "%s PiSSA residual of %s", arch, L->name);
        CHECK(t_allclose(what, L->W, want, out * in, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "%s", what);
        free(A); free(B); free(got); free(want);
    }
    bl_st_close(&ga);
    bl_st_close(&gr);
    bl_lora_free(&ad);
    bl_enc_free(&m);
}

int main(void) {
    balora_threads_set(1); /* tiny matrices: threads cost more than they give on a shared machine */
    const char *shared = t_require_shared();
    run_arch(shared, "bert");
    run_arch(shared, "roberta");
    run_arch(shared, "deberta_v3");
    run_balora(shared, "bert");
    run_balora(shared, "deberta_v3");
    run_library(shared, "bert");
    run_library(shared, "roberta");
    run_library(shared, "deberta_v3");
    run_pissa_init(shared, "bert");
    run_pissa_init(shared, "roberta");
    run_pissa_init(shared, "deberta_v3");
    return t_finish();
}
