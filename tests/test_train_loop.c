/* The trainer on the mock model: causal cross-entropy against its definition and finite
 * differences; the gradient the loop assembles (token-weighted accumulation + an extra loss
 * with a teacher) against finite differences of the loss it reports; accumulation equal to one
 * big batch; loss falls on a learnable task; same seed -> identical tensors; kill + resume ->
 * bit-identical to an uninterrupted run; checkpoints pruned; metrics logs; resume mismatches. */
#include "harness.h"
#include "train/mock.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char g_path[512];
static const char *tmp_path(const char *name) {
    snprintf(g_path, sizeof g_path, "%s/%s", t_tmpdir(), name);
    return g_path;
}

static void test_ce(void) {
    enum { B = 2, T = 4, V = 5 };
    float z[B * T * V], d[B * T * V];
    int64_t lab[B * T] = {0, 3, -100, 1, 2, 4, 0, -100};
    bl_rng r;
    bl_rng_seed(&r, 7);
    for (int i = 0; i < B * T * V; i++) z[i] = 2.0f * bl_rng_normal(&r);
    double sum;
    int64_t cnt;
    CHECK_OK(bl_causal_ce(z, lab, B, T, V, 0.5f, d, &sum, &cnt));
    /* trained: (b0,t0)->3, (b0,t2)->1, (b1,t0)->4, (b1,t1)->0 */
    CHECK(cnt == 4, "count %lld", (long long)cnt);
    double want = 0;
    const int rr[4] = {0, 2, 4, 5}, yy[4] = {3, 1, 4, 0};
    for (int k = 0; k < 4; k++) {
        double se = 0;
        for (int v = 0; v < V; v++) se += exp((double)z[rr[k] * V + v]);
        want += log(se) - z[rr[k] * V + yy[k]];
    }
    CHECK(fabs(sum - want) < 1e-6 * fabs(want), "sum %.9g want %.9g", sum, want);
    for (int v = 0; v < V; v++) CHECK(d[1 * V + v] == 0 && d[3 * V + v] == 0 && d[7 * V + v] == 0, "untrained rows have zero gradient");
    /* finite differences of sum (x 0.5) */
    double worst = 0;
    for (int i = 0; i < B * T * V; i++) {
        float keep = z[i];
        double sp, sm;
        z[i] = keep + 1e-2f; bl_causal_ce(z, lab, B, T, V, 0, NULL, &sp, &cnt);
        z[i] = keep - 1e-2f; bl_causal_ce(z, lab, B, T, V, 0, NULL, &sm, &cnt);
        z[i] = keep;
        double fd = 0.5 * (sp - sm) / (double)(2e-2f);
        double e = fabs(fd - d[i]);
        if (e > worst) worst = e;
    }
    CHECK(worst < 2e-4, "CE gradient vs finite differences: worst abs error %g", worst);
    lab[2] = 5;
    CHECK_FAILS(bl_causal_ce(z, lab, B, T, V, 1, d, &sum, &cnt), BALORA_STATUS_INVALID, "value 5 at [0, 2]");
}

/* ---- an extra loss: lam * sum_v (z - z_teacher)^2, mean over the micro-batch's trained rows ---- */
typedef struct sq_hook { double lam; int calls; int teacher_equal_at_0; } sq_hook;
static balora_status sq_fn(void *self, const bl_train_batch *b, float *z, const bl_train_teacher *t, int64_t V, int64_t step,
                           int64_t total, float ce_scale, float scale, double *loss, double *terms) {
    sq_hook *h = self;
    (void)total;
    h->calls++;
    const float *zt = t->logits;
    float *dl = calloc((size_t)(b->B * b->T * V), sizeof(float)); /* the extra part, added after the task part */
    int64_t n = 0;
    double s = 0, maxdiff = 0;
    for (int64_t r = 0; r < b->B * b->T; r++) if (r % b->T + 1 < b->T && b->labels[r + 1] != -100) n++;
    for (int64_t r = 0; r < b->B * b->T; r++) {
        if (!(r % b->T + 1 < b->T && b->labels[r + 1] != -100)) continue;
        for (int64_t v = 0; v < V; v++) {
            double e = (double)z[r * V + v] - zt[r * V + v];
            s += e * e;
            if (fabs(e) > maxdiff) maxdiff = fabs(e);
            dl[r * V + v] += (float)(scale * h->lam * 2 * e / n);
        }
    }
    /* the contract: the whole gradient over the logits, task part included */
    double ce_sum;
    int64_t ce_n;
    balora_status st = bl_causal_ce(z, b->labels, b->B, b->T, V, ce_scale, z, &ce_sum, &ce_n);
    for (int64_t i = 0; i < b->B * b->T * V; i++) z[i] += dl[i];
    free(dl);
    if (st) return st;
    if (step == 0 && maxdiff == 0) h->teacher_equal_at_0++;
    *loss = n ? h->lam * s / n : 0;
    terms[0] = n ? s / n : 0;
    terms[1] = (double)step;
    return BALORA_STATUS_OK;
}
static const char *const g_hook_names[2] = {"sqdist", "step_seen"};

/* examples of a bigram task: x_{t+1} = (3 x_t + 1) mod V, varied lengths, some prompt masking */
static const char *write_bigram(const char *name, int n, int V, int masked) {
    const char *p = tmp_path(name);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < n; i++) {
        int len = 5 + i % 7, x = i % V;
        fprintf(f, "{\"input_ids\": [");
        int xs[32];
        for (int t = 0; t < len; t++) { xs[t] = x; fprintf(f, "%s%d", t ? ", " : "", x); x = (3 * x + 1) % V; }
        fprintf(f, "], \"labels\": [");
        for (int t = 0; t < len; t++) fprintf(f, "%s%d", t ? ", " : "", t < masked ? -100 : xs[t]);
        fprintf(f, "]}\n");
    }
    fclose(f);
    return p;
}

static void load(bl_train_data *d, const char *path, int V) {
    bl_train_data_cfg c;
    bl_train_data_cfg_default(&c);
    c.format = BL_TRAIN_DATA_TOKENS;
    c.vocab_size = V;
    c.max_len = 16;
    CHECK_OK(bl_train_data_load(d, path, &c, NULL));
}

static void test_gradient_assembly(void) {
    const int V = 7, D = 5;
    bl_train_data d;
    load(&d, write_bigram("g.jsonl", 4, V, 2), V);
    bl_mock_model m;
    CHECK_OK(bl_mock_init(&m, V, D, 2, d.max_len, 0.0f, 3));
    for (int64_t i = 0; i < V * D; i++) m.W[i] += 0.05f * (float)((i * 37) % 11 - 5); /* student != teacher */
    sq_hook h = {.lam = 0.3};
    bl_extra_loss x = {.self = &h, .n_terms = 2, .term_names = g_hook_names, .needs_teacher = true, .fn = sq_fn};
    bl_train_cfg c;
    bl_train_cfg_default(&c);
    c.adam.lr = 0; c.batch_size = 2; c.grad_accum = 2; c.max_steps = 1; c.max_grad_norm = 0; c.no_shuffle = true;
    bl_train_result res;
    CHECK_OK(bl_train_run(&c, &m.iface, &d, &x, &res));
    CHECK(h.calls == 2, "hook called per micro-batch: %d", h.calls);
    /* reference: L(W) = (1/N) sum over trained rows of [CE + lam ||z - zt||^2], all 4 examples */
    bl_train_batch b;
    CHECK_OK(bl_train_batch_init(&b, 4, d.max_len));
    int64_t all[4] = {0, 1, 2, 3};
    bl_train_batch_fill(&b, &d, all, 4, false, 0);
    float *zt = malloc(sizeof(float) * 4 * d.max_len * V);
    bl_mock_model big;
    CHECK_OK(bl_mock_init(&big, V, D, 4, d.max_len, 0.0f, 3));
    memcpy(big.W, m.W, sizeof(float) * V * D);
    float *z;
    big.iface.forward(&big, &b, true, false, NULL, &z);
    memcpy(zt, z, sizeof(float) * 4 * d.max_len * V);
    #define LOSS(out) do { double s_; int64_t n_; big.iface.forward(&big, &b, false, false, NULL, &z); \
        bl_causal_ce(z, b.labels, b.B, b.T, V, 0, NULL, &s_, &n_); double e_ = 0; \
        for (int64_t r = 0; r < b.B * b.T; r++) if (r % b.T + 1 < b.T && b.labels[r + 1] != -100) \
            for (int v = 0; v < V; v++) { double q = (double)z[r * V + v] - zt[r * V + v]; e_ += q * q; } \
        out = (s_ + h.lam * e_) / (double)n_; } while (0)
    double L0;
    LOSS(L0);
    CHECK(fabs(L0 - res.last_loss) < 1e-6 * L0, "reported loss %.9g vs reference %.9g", res.last_loss, L0);
    double worst = 0;
    for (int64_t i = 0; i < V * D + V; i++) {
        float *p = i < V * D ? &big.W[i] : &big.bias[i - V * D];
        float g = i < V * D ? m.gW[i] : m.gbias[i - V * D];
        float keep = *p;
        double lp, lm;
        *p = keep + 1e-2f; LOSS(lp);
        *p = keep - 1e-2f; LOSS(lm);
        *p = keep;
        double fd = (lp - lm) / (double)(2e-2f);
        double e = fabs(fd - g) / (1e-3 + fabs(fd));
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-2, "trainer gradient vs finite differences of its loss: worst rel error %g", worst);
    free(zt);
    bl_train_batch_free(&b);
    bl_mock_free(&big);
    bl_mock_free(&m);
    bl_train_data_free(&d);
}

typedef struct run_out { float W[16 * 8], bias[16]; double first, last; int64_t steps; int progress_calls; int finals; } run_out;
static void count_progress(const bl_progress *p, void *user) {
    run_out *o = user;
    o->progress_calls++;
    o->finals += p->final;
    char line[512];
    bl_progress_format(p, line, sizeof line);
}

static balora_status run(const bl_train_data *d, bl_train_cfg *c, float dropout, const bl_extra_loss *x, run_out *o) {
    bl_mock_model m;
    BL_TRY(bl_mock_init(&m, 16, 8, c->batch_size, d->max_len, dropout, 11));
    c->progress = count_progress;
    c->progress_user = o;
    bl_train_result res;
    balora_status st = bl_train_run(c, &m.iface, d, x, &res);
    memcpy(o->W, m.W, sizeof o->W);
    memcpy(o->bias, m.bias, sizeof o->bias);
    o->first = res.first_loss; o->last = res.last_loss; o->steps = res.steps;
    bl_mock_free(&m);
    return st;
}

static int count_lines(const char *path) {
    char *s; size_t n;
    if (bl_file_read(path, &s, &n)) return -1;
    int k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    free(s);
    return k;
}

static void test_training(void) {
    bl_train_data d;
    load(&d, write_bigram("big.jsonl", 40, 16, 1), 16);
    bl_train_cfg c;
    bl_train_cfg_default(&c);
    c.adam.lr = 0.05; c.batch_size = 4; c.grad_accum = 2; c.epochs = 3; c.schedule = BL_SCHEDULE_COSINE; c.warmup_ratio = 0.1;
    c.adam.weight_decay = 0.01;
    run_out a = {0}, b = {0}, s2 = {0};
    CHECK_OK(run(&d, &c, 0.1f, NULL, &a));
    CHECK(a.steps == 15, "3 epochs x ceil(10 micro / 2) = 15 steps, got %lld", (long long)a.steps);
    CHECK(a.progress_calls == 15 && a.finals == 1, "progress calls %d finals %d", a.progress_calls, a.finals);
    CHECK(a.last < 0.5 * a.first, "loss falls on a learnable task: %.4f -> %.4f", a.first, a.last);
    CHECK_OK(run(&d, &c, 0.1f, NULL, &b));
    CHECK(memcmp(a.W, b.W, sizeof a.W) == 0 && memcmp(a.bias, b.bias, sizeof a.bias) == 0, "same seed -> bit-identical tensors");
    c.seed = 43;
    CHECK_OK(run(&d, &c, 0.1f, NULL, &s2));
    CHECK(memcmp(a.W, s2.W, sizeof a.W) != 0, "another seed -> other tensors");
    c.seed = 42;

    /* accumulation = one big batch (no dropout, no shuffle, token-weighted) */
    run_out one = {0}, acc = {0};
    bl_train_cfg c1 = c, c2 = c;
    c1.no_shuffle = c2.no_shuffle = true;
    c1.batch_size = 8; c1.grad_accum = 1;
    c2.batch_size = 2; c2.grad_accum = 4;
    c1.max_steps = c2.max_steps = 4;
    sq_hook h0 = {.lam = 0.0};
    bl_extra_loss x0 = {.self = &h0, .n_terms = 2, .term_names = g_hook_names, .needs_teacher = true, .fn = sq_fn};
    CHECK_OK(run(&d, &c1, 0.0f, &x0, &one));
    CHECK(h0.teacher_equal_at_0 == 1 && h0.calls == 4, "the teacher equals the student at step 0 (%d, %d calls)", h0.teacher_equal_at_0, h0.calls);
    CHECK_OK(run(&d, &c2, 0.0f, NULL, &acc));
    long bad = t_allclose("accumulated vs one batch", acc.W, one.W, 16 * 8, 1e-5, 1e-4);
    CHECK(bad == 0 && fabs(one.first - acc.first) < 1e-6 * one.first, "first loss %.9g vs %.9g", one.first, acc.first);
    /* with a remainder: 40 examples as 4 x 3 micro-batches per step = steps of 12, 12, 12 and 4 examples,
     * the same partition as batches of 12 (the last step has 1 micro-batch) */
    run_out one2 = {0}, acc2 = {0};
    c1.batch_size = 12; c1.grad_accum = 1; c1.max_steps = 0; c1.epochs = 1;
    c2.batch_size = 4; c2.grad_accum = 3; c2.max_steps = 0; c2.epochs = 1;
    CHECK_OK(run(&d, &c1, 0.0f, NULL, &one2));
    CHECK_OK(run(&d, &c2, 0.0f, NULL, &acc2));
    CHECK(one2.steps == 4 && acc2.steps == 4, "steps %lld %lld", (long long)one2.steps, (long long)acc2.steps);
    bad = t_allclose("accumulated with a remainder step vs one batch", acc2.W, one2.W, 16 * 8, 1e-5, 1e-4);
    CHECK(bad == 0 && fabs(one2.last - acc2.last) < 1e-6 * one2.last, "last loss %.9g vs %.9g", one2.last, acc2.last);

    /* kill at step 7 (checkpoints every 3, keep 2), resume from latest: bit-identical */
    char out_full[512], out_kill[512], log_full[512], log_kill[512];
    snprintf(out_full, sizeof out_full, "%s", tmp_path("full"));
    snprintf(out_kill, sizeof out_kill, "%s", tmp_path("kill"));
    snprintf(log_full, sizeof log_full, "%s", tmp_path("full.jsonl"));
    snprintf(log_kill, sizeof log_kill, "%s", tmp_path("kill.csv"));
    sq_hook h1 = {.lam = 0.01}, h2 = {.lam = 0.01};
    bl_extra_loss x1 = {.self = &h1, .n_terms = 2, .term_names = g_hook_names, .needs_teacher = true, .fn = sq_fn};
    bl_extra_loss x2 = x1;
    x2.self = &h2;
    bl_train_cfg cf = c;
    cf.out_dir = out_full; cf.save_every = 3; cf.save_keep = 2; cf.log_path = log_full;
    cf.config_json = "{\"note\": \"test\"}";
    run_out full = {0}, part = {0}, rest = {0};
    CHECK_OK(run(&d, &cf, 0.1f, &x1, &full));
    bl_train_cfg ck = cf;
    ck.out_dir = out_kill; ck.log_path = log_kill; ck.stop_after = 7;
    CHECK_OK(run(&d, &ck, 0.1f, &x2, &part));
    CHECK(part.steps == 7 && memcmp(part.W, full.W, sizeof part.W) != 0, "killed at 7");
    CHECK(count_lines(log_kill) == 1 + 7, "csv log: header + 7 rows (%d)", count_lines(log_kill));
    ck.stop_after = 0; ck.resume = "latest";
    CHECK_OK(run(&d, &ck, 0.1f, &x2, &rest));
    CHECK(rest.steps == 15 && rest.progress_calls == 15 - 6, "resumed at 6: steps %lld calls %d", (long long)rest.steps, rest.progress_calls);
    CHECK(memcmp(rest.W, full.W, sizeof rest.W) == 0 && memcmp(rest.bias, full.bias, sizeof rest.bias) == 0,
          "kill + resume is bit-identical to the uninterrupted run");
    CHECK(rest.last == full.last, "same last loss %.9g %.9g", rest.last, full.last);
    CHECK(count_lines(log_full) == 15 && count_lines(log_kill) == 1 + 15, "logs: %d jsonl rows, %d csv lines", count_lines(log_full), count_lines(log_kill));
    char *txt; size_t n;
    CHECK_OK(bl_file_read(log_full, &txt, &n));
    CHECK(strstr(txt, "\"step\":15") && strstr(txt, "\"sqdist\":") && strstr(txt, "\"lr\":"), "jsonl fields");
    free(txt);
    CHECK_OK(bl_file_read(log_kill, &txt, &n));
    const char *hdr = "step,epoch,loss,task_loss,lr,grad_norm,tokens,tokens_per_s,elapsed_s,sqdist,step_seen\n";
    CHECK(strncmp(txt, hdr, strlen(hdr)) == 0, "csv header: %.100s", txt);
    CHECK(strstr(txt, "\n6,") && strstr(txt, "\n15,"), "rows");
    const char *r7 = strstr(txt, "\n7,");
    CHECK(r7 && !strstr(r7 + 1, "\n7,"), "row 7 appears once after the resume");
    free(txt);
    int64_t steps[8];
    int k;
    CHECK_OK(bl_checkpoint_list(out_full, steps, 8, &k));
    CHECK(k == 2 && steps[0] == 12 && steps[1] == 15, "kept the last 2 checkpoints: %d (%lld %lld)", k, (long long)steps[0], (long long)steps[k > 1 ? 1 : 0]);
    char p2[700];
    snprintf(p2, sizeof p2, "%s/checkpoint-15/mock_adapter.safetensors", out_full);
    CHECK(bl_file_exists(p2), "the adapter is in the checkpoint");
    snprintf(p2, sizeof p2, "%s/checkpoint-15/config.json", out_full);
    CHECK(bl_file_exists(p2), "config.json in the checkpoint");
    snprintf(p2, sizeof p2, "%s/checkpoint-15.tmp", out_full);
    CHECK(!bl_dir_exists(p2), "no temporary folder left");

    /* resume from an explicit folder with other options: clear errors */
    run_out junk = {0};
    bl_train_cfg cb = ck;
    char ckdir[700];
    snprintf(ckdir, sizeof ckdir, "%s/checkpoint-12", out_full);
    cb.resume = ckdir; cb.batch_size = 2; cb.out_dir = out_kill;
    CHECK_FAILS(run(&d, &cb, 0.1f, &x2, &junk), BALORA_STATUS_INVALID, "--batch-size 4 but this run has 2");
    cb = ck; cb.resume = ckdir; cb.epochs = 4;
    CHECK_FAILS(run(&d, &cb, 0.1f, &x2, &junk), BALORA_STATUS_INVALID, "planned step count");
    cb = ck; cb.resume = tmp_path("nowhere");
    CHECK_FAILS(run(&d, &cb, 0.1f, &x2, &junk), BALORA_STATUS_IO, "no trainer_state.safetensors");
    cb = ck; cb.out_dir = tmp_path("empty_out"); cb.resume = "latest";
    bl_mkdir_p(cb.out_dir);
    CHECK_FAILS(run(&d, &cb, 0.1f, &x2, &junk), BALORA_STATUS_INVALID, "no checkpoint-STEP folder");
    /* a resumed run from the final checkpoint does nothing more and keeps the tensors */
    cb = ck; cb.resume = "latest"; cb.out_dir = out_full; cb.log_path = NULL;
    CHECK_OK(run(&d, &cb, 0.1f, &x2, &junk));
    CHECK(junk.progress_calls == 0 && memcmp(junk.W, full.W, sizeof junk.W) == 0, "resume at the end");
    /* a checkpoint of another adapter shape, and a truncated one: clear errors naming the file */
    {
        bl_mock_model other;
        CHECK_OK(bl_mock_init(&other, 16, 4, 4, d.max_len, 0.0f, 11)); /* D = 4 instead of 8 */
        bl_train_cfg co = ck;
        co.resume = ckdir; co.out_dir = out_kill; co.log_path = NULL; co.progress = NULL;
        bl_train_result rr;
        CHECK_FAILS(bl_train_run(&co, &other.iface, &d, &x2, &rr), BALORA_STATUS_FORMAT, "param.W");
        bl_mock_free(&other);
        char st_path[800], *buf; size_t n2;
        snprintf(st_path, sizeof st_path, "%s/" BL_CHECKPOINT_STATE, ckdir);
        CHECK_OK(bl_file_read(st_path, &buf, &n2));
        CHECK_OK(bl_file_write_atomic(st_path, buf, n2 / 2));
        free(buf);
        cb = ck; cb.resume = ckdir;
        CHECK_FAILS(run(&d, &cb, 0.1f, &x2, &junk), BALORA_STATUS_FORMAT, "trainer_state.safetensors");
    }

    /* a fresh run into a folder with another run's checkpoints */
    cb = cf;
    CHECK_FAILS(run(&d, &cb, 0.1f, &x2, &junk), BALORA_STATUS_INVALID, "already holds checkpoints");

    /* bad options */
    cb = c; cb.batch_size = 0;
    CHECK_FAILS(run(&d, &cb, 0, NULL, &junk), BALORA_STATUS_INVALID, "--batch-size 0");
    cb = c; cb.warmup_ratio = 2;
    CHECK_FAILS(run(&d, &cb, 0, NULL, &junk), BALORA_STATUS_INVALID, "--warmup-ratio");
    cb = c; cb.save_every = 2; cb.out_dir = NULL;
    CHECK_FAILS(run(&d, &cb, 0, NULL, &junk), BALORA_STATUS_INVALID, "--out");
    bl_train_data_free(&d);
}

static void test_progress_format(void) {
    const char *names[1] = {"l_cr"};
    double vals[1] = {0.125};
    bl_progress p = {.step = 12, .total_steps = 100, .epoch = 0.24, .loss = 2.34567, .lr = 1.2e-4, .tokens_per_s = 1234.4,
                     .elapsed_s = 12, .eta_s = 3725, .n_extra = 1, .extra_names = names, .extra = vals};
    char buf[256];
    bl_progress_format(&p, buf, sizeof buf);
    CHECK(strcmp(buf, "step 12/100 (12%) | epoch 0.24 | loss 2.3457 | lr 1.20e-04 | 1234 tok/s | 00:12 elapsed | ETA 1:02:05 | l_cr 0.125") == 0,
          "line: '%s'", buf);
}

int main(void) {
    test_ce();
    test_gradient_assembly();
    test_training();
    test_progress_format();
    return t_finish();
}
