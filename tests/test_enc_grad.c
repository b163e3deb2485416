/* Whole-encoder backward against finite differences, for bert, roberta and deberta-v2 (random tiny
 * models, padded batch, token types): LoRA factors on every linear (query/key/value, attention
 * output, intermediate, output, pooler), the classifier head (modules_to_save copy) and, with full
 * fine-tuning, every base tensor kind (embeddings, LayerNorms, relative embeddings). Classification
 * (cross-entropy) and regression (MSE), with and without LoRA dropout (the same masks on every
 * forward). Also: bad batches fail clearly. */
#include "harness.h"
#include "encoders/encoder.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 3, T = 7 };

typedef struct fixture {
    bl_encoder m;
    bl_lora lo[32];
    float *blocks[32];
    int n;
    int64_t ids[B * T], mask[B * T], types[B * T], labels[B];
    float targets[B];
} fixture;

static double loss_of(fixture *f, bl_enc_run *r) {
    bl_rng_seed(&r->rng, 99); /* the same LoRA dropout masks on every forward */
    bl_enc_batch b = {B, T, f->ids, f->mask, f->m.cfg.type_vocab >= 2 ? f->types : NULL};
    double loss = NAN;
    if (bl_enc_forward(r, &b, BL_ADAPTER_ON)) return NAN;
    if (bl_enc_loss(r, f->labels, f->targets, &loss, NULL)) return NAN;
    return loss;
}

/* Central differences on `n_probe` entries of x; returns the number of mismatches. */
static int probe(fixture *f, bl_enc_run *r, const char *what, float *x, const float *g, int64_t n, int n_probe, bl_rng *rng) {
    int bad = 0;
    for (int k = 0; k < n_probe; k++) {
        int64_t e = (int64_t)bl_rng_below(rng, (uint64_t)n);
        float keep = x[e], h = 1e-2f;
        x[e] = keep + h;
        double lp = loss_of(f, r);
        x[e] = keep - h;
        double lm = loss_of(f, r);
        x[e] = keep;
        double fd = (lp - lm) / (2.0 * h);
        if (!(fabs(fd - g[e]) <= 3e-4 + 3e-2 * fabs(fd))) {
            bad++;
            fprintf(stderr, "  %s[%lld]: analytic %.6g, finite difference %.6g\n", what, (long long)e, g[e], fd);
        }
    }
    return bad;
}

/* variant 1 (deberta-v2): c2p only, relative embeddings not normalised, absolute positions added
 * to the input, token types; (bert): gelu_new and a 3-way token-type vocabulary. */
static void run(bl_enc_arch arch, bool regression, float dropout, int variant) {
    fixture *f = calloc(1, sizeof *f);
    bl_enc_config c;
    bl_enc_config_defaults(&c, arch);
    c.vocab_size = 40; c.hidden = 16; c.n_head = 2; c.intermediate = 24; c.n_layer = 2;
    c.max_pos = 20; c.init_range = 0.3; c.num_labels = regression ? 1 : 3; c.regression = regression;
    if (arch == BL_ENC_DEBERTA_V2) { c.position_buckets = 4; c.att_span = 4; c.max_rel_pos = 16; }
    if (variant == 1 && arch == BL_ENC_DEBERTA_V2) { c.p2c = false; c.norm_rel_ebd = false; c.position_biased_input = true; c.type_vocab = 2; }
    if (variant == 1 && arch == BL_ENC_BERT) { c.act = BL_ENC_ACT_GELU_TANH; c.type_vocab = 3; }
    const char *an = arch == BL_ENC_BERT ? "bert" : arch == BL_ENC_ROBERTA ? "roberta" : "deberta-v2";
    CHECK_OK(bl_enc_init_random(&f->m, &c, 11));
    bl_encoder *m = &f->m;
    bl_rng rng;
    bl_rng_seed(&rng, 3);
    /* LoRA on every linear, non-zero B */
    for (int i = 0; i < m->mods.n_lin; i++) {
        bl_linear *L = &m->mods.lin[i];
        bl_lora *lo = &f->lo[f->n];
        int64_t r = 2;
        lo->in = L->in; lo->out = L->out; lo->r = r; lo->scale = 1.5f; lo->dropout = dropout;
        float *blk = calloc((size_t)(2 * r * (L->in + L->out)), sizeof(float));
        f->blocks[f->n++] = blk;
        lo->A = blk; lo->B = blk + r * L->in; lo->gA = lo->B + r * L->out; lo->gB = lo->gA + r * L->in;
        for (int64_t e = 0; e < r * (L->in + L->out); e++) blk[e] = 0.3f * bl_rng_normal(&rng);
        L->lora = lo;
    }
    m->mods.attach_gen++;
    CHECK_OK(bl_enc_heads_trainable(m));
    CHECK_OK(bl_enc_set_full_ft(m, true));
    /* batch: row 1 has 3 padding tokens, row 2 has 1; types 0/1 */
    for (int64_t i = 0; i < B * T; i++) {
        int64_t bi = i / T, t = i % T;
        bool pad = (bi == 1 && t >= 4) || (bi == 2 && t == 6);
        f->mask[i] = pad ? 0 : 1;
        f->ids[i] = pad ? c.pad_id : 2 + (int64_t)bl_rng_below(&rng, (uint64_t)c.vocab_size - 2);
        f->types[i] = t >= 3 && !pad ? 1 : 0;
    }
    for (int bi = 0; bi < B; bi++) { f->labels[bi] = bi % 3; f->targets[bi] = 0.5f * bi - 0.3f; }
    bl_enc_run r;
    CHECK_OK(bl_enc_run_init(&r, m, B, T));
    r.train = dropout > 0;
    bl_enc_batch b = {B, T, f->ids, f->mask, c.type_vocab >= 2 ? f->types : NULL};
    bl_rng_seed(&r.rng, 99);
    CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_ON));
    double loss;
    CHECK_OK(bl_enc_loss(&r, f->labels, f->targets, &loss, r.dlogits));
    for (int i = 0; i < f->n; i++) {
        memset(f->lo[i].gA, 0, sizeof(float) * (size_t)(f->lo[i].r * f->lo[i].in));
        memset(f->lo[i].gB, 0, sizeof(float) * (size_t)(f->lo[i].r * f->lo[i].out));
    }
    bl_enc_zero_grads(m);
    CHECK_OK(bl_enc_backward(&r, r.dlogits));
    float *dl = malloc(sizeof(float) * B * (size_t)c.num_labels);
    memcpy(dl, r.dlogits, sizeof(float) * B * (size_t)c.num_labels);
    int bad = 0;
    char what[256];
    for (int i = 0; i < m->mods.n_lin; i++) {
        bl_linear *L = &m->mods.lin[i];
        snprintf(what, sizeof what, "%s %s.lora_A", an, L->name);
        bad += probe(f, &r, what, L->lora->A, L->lora->gA, L->lora->r * L->in, 3, &rng);
        snprintf(what, sizeof what, "%s %s.lora_B", an, L->name);
        bad += probe(f, &r, what, L->lora->B, L->lora->gB, L->lora->r * L->out, 3, &rng);
    }
    for (int i = 0; i < m->mods.n_params; i++) {
        bl_param *p = &m->mods.params[i];
        float *x = p->train_data ? p->train_data : p->data;
        snprintf(what, sizeof what, "%s %s", an, p->name);
        bad += probe(f, &r, what, x, p->grad, p->numel, strstr(p->name, "embeddings.weight") ? 6 : 3, &rng);
    }
    CHECK(bad == 0, "%s%s%s: %d gradient entries disagree with finite differences", an, regression ? " (regression)" : "",
          dropout > 0 ? " (LoRA dropout)" : "", bad);
    if (dropout > 0) {
        /* dropout is live: another mask gives other logits */
        float z1[B * 3];
        memcpy(z1, r.logits, sizeof(float) * B * (size_t)c.num_labels);
        bl_rng_seed(&r.rng, 12345);
        CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_ON));
        double dd = 0;
        for (int64_t e = 0; e < B * c.num_labels; e++) dd += fabs(z1[e] - r.logits[e]);
        CHECK(dd > 1e-4, "%s: LoRA dropout changes the logits with another seed (%g)", an, dd);
        loss_of(f, &r);
    }
    /* the head's base data is untouched by training the copy: adapter off differs from on */
    float on[B * 3];
    memcpy(on, r.logits, sizeof(float) * B * (size_t)c.num_labels);
    CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_OFF));
    double diff = 0;
    for (int64_t e = 0; e < B * c.num_labels; e++) diff += fabs(on[e] - r.logits[e]);
    CHECK(diff > 1e-3, "%s: adapter off changes the logits (%g)", an, diff);
    /* features: hidden states of each layer, pooled */
    CHECK(bl_enc_layer_hidden(&r, 0) && bl_enc_layer_hidden(&r, c.n_layer) && !bl_enc_layer_hidden(&r, c.n_layer + 1), "layer hidden");
    /* bad input */
    int64_t bad_ids[B * T];
    memcpy(bad_ids, f->ids, sizeof bad_ids);
    bad_ids[5] = c.vocab_size + 3;
    bl_enc_batch bb = b;
    bb.input_ids = bad_ids;
    CHECK_FAILS(bl_enc_forward(&r, &bb, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "input_ids");
    int64_t zero_mask[B * T];
    memcpy(zero_mask, f->mask, sizeof zero_mask);
    for (int t = 0; t < T; t++) zero_mask[T + t] = 0;
    bb = b; bb.attention_mask = zero_mask;
    CHECK_FAILS(bl_enc_forward(&r, &bb, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "no real token");
    bb = b; bb.B = B + 1;
    CHECK_FAILS(bl_enc_forward(&r, &bb, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "does not fit");
    CHECK_FAILS(bl_enc_backward(&r, dl), BALORA_STATUS_INVALID, "no forward");
    if (m->type >= 0) {
        int64_t bt[B * T] = {0};
        bt[4] = c.type_vocab;
        bb = b; bb.token_type_ids = bt;
        CHECK_FAILS(bl_enc_forward(&r, &bb, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "token_type_ids");
    }
    m->mods.attach_gen++;
    CHECK_FAILS(bl_enc_forward(&r, &b, BL_ADAPTER_ON), BALORA_STATUS_INVALID, "after bl_enc_run_init");
    bl_enc_run_free(&r);
    for (int i = 0; i < m->mods.n_lin; i++) m->mods.lin[i].lora = NULL;
    for (int i = 0; i < f->n; i++) free(f->blocks[i]);
    free(dl);
    bl_enc_free(m);
    free(f);
}

int main(void) {
    balora_threads_set(1); /* tiny matrices: threads cost more than they give on a shared machine */
    run(BL_ENC_BERT, false, 0, 0);
    run(BL_ENC_ROBERTA, false, 0, 0);
    run(BL_ENC_DEBERTA_V2, false, 0, 0);
    run(BL_ENC_BERT, true, 0, 0);
    run(BL_ENC_DEBERTA_V2, true, 0, 0);
    run(BL_ENC_BERT, false, 0.3f, 0);
    run(BL_ENC_DEBERTA_V2, false, 0.3f, 0);
    run(BL_ENC_DEBERTA_V2, false, 0, 1);
    run(BL_ENC_BERT, false, 0, 1);
    return t_finish();
}
