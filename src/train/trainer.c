/* The training loop and the checkpoint contents (see trainer.h). */
#include "train/trainer.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "ops/ops.h"
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void bl_train_cfg_default(bl_train_cfg *c) {
    memset(c, 0, sizeof *c);
    bl_adamw_cfg_default(&c->adam);
    c->adam.lr = 2e-4;
    c->schedule = BL_SCHEDULE_LINEAR;
    c->max_grad_norm = 1.0;
    c->batch_size = 4;
    c->grad_accum = 1;
    c->epochs = 1;
    c->seed = 42;
    c->max_len = 512;
    c->save_keep = 3;
}

static int64_t micro_per_epoch(const bl_train_cfg *c, int64_t n) { return (n + c->batch_size - 1) / c->batch_size; }
static int64_t steps_per_epoch(const bl_train_cfg *c, int64_t n) {
    return (micro_per_epoch(c, n) + c->grad_accum - 1) / c->grad_accum;
}
int64_t bl_train_total_steps(const bl_train_cfg *c, int64_t n) {
    if (c->batch_size <= 0 || c->grad_accum <= 0 || n <= 0) return 0;
    return c->max_steps > 0 ? c->max_steps : c->epochs * steps_per_epoch(c, n);
}

/* ---- state kept between steps (and in checkpoints) ---- */
typedef struct trainer {
    const bl_train_cfg *cfg;
    const bl_train_model *model;
    const bl_train_objective *obj;
    const bl_train_data *data;
    const bl_extra_loss *extra;
    bl_adamw opt;
    bl_rng rng;           /* dropout: reseeded from (seed, step, micro-batch) before each forward */
    int64_t total, warmup, spe, mpe;
    int64_t perm_epoch;   /* epoch whose order is in perm */
    bl_arena arena;
    int64_t *perm;        /* [n] order of the current epoch */
    bool *decay;          /* [n_params] bl_adamw_decays of each name */
    float *teacher;       /* [B, T, hidden_size] teacher hidden states (model->last_hidden), else its logits
                             ([B, T, V] or [B, n_out]); or NULL */
    bool teacher_hidden;  /* teacher holds hidden states */
    bl_train_batch batch;
} trainer;

static balora_status write_state(trainer *tr, int64_t step, const char *path) {
    const bl_train_model *m = tr->model;
    bl_st_writer w;
    bl_st_writer_init(&w);
    balora_status st = BALORA_STATUS_OK;
    char name[1024];
    for (int i = 0; i < m->n_params && !st; i++) {
        int64_t shape[1] = {m->numel[i]};
        snprintf(name, sizeof name, "param.%s", m->names[i]);
        st = bl_st_writer_add(&w, name, BL_DTYPE_F32, 1, shape, tr->opt.p[i].w);
        snprintf(name, sizeof name, "exp_avg.%s", m->names[i]);
        if (!st) st = bl_st_writer_add(&w, name, BL_DTYPE_F32, 1, shape, tr->opt.p[i].m);
        snprintf(name, sizeof name, "exp_avg_sq.%s", m->names[i]);
        if (!st) st = bl_st_writer_add(&w, name, BL_DTYPE_F32, 1, shape, tr->opt.p[i].v);
    }
    /* the run's state as one JSON string (the safetensors reader keeps few metadata keys) */
    if (!st) {
        char js[1024];
        snprintf(js, sizeof js, "{\"step\": %" PRId64 ", \"optimizer_step\": %" PRId64 ", \"total_steps\": %" PRId64 ", \"seed\": %" PRIu64
                 ", \"batch_size\": %" PRId64 ", \"grad_accum\": %" PRId64 ", \"examples\": %" PRId64 ", \"trained_tokens\": %" PRId64
                 ", \"epoch\": %.6f}", step, tr->opt.t, tr->total, tr->cfg->seed, tr->cfg->batch_size, tr->cfg->grad_accum,
                 tr->data->n, tr->data->total_trained, (double)step / (double)tr->spe);
        st = bl_st_writer_meta(&w, "format", BL_CHECKPOINT_FORMAT);
        if (!st) st = bl_st_writer_meta(&w, "trainer_state", js);
    }

    if (!st) st = bl_st_writer_save(&w, path);
    bl_st_writer_free(&w);
    return st;
}

static balora_status save_checkpoint(trainer *tr, int64_t step) {
    const bl_train_cfg *c = tr->cfg;
    char final_dir[4400], tmp[4500], path[4600];
    snprintf(final_dir, sizeof final_dir, "%s/checkpoint-%lld", c->out_dir, (long long)step);
    snprintf(tmp, sizeof tmp, "%s.tmp", final_dir);
    BL_TRY(bl_rmtree(tmp));
    BL_TRY(bl_mkdir_p(tmp));
    if (tr->model->save) BL_TRY(tr->model->save(tr->model->self, tmp));
    if (c->config_json) {
        snprintf(path, sizeof path, "%s/config.json", tmp);
        BL_TRY(bl_file_write_atomic(path, c->config_json, strlen(c->config_json)));
    }
    snprintf(path, sizeof path, "%s/" BL_CHECKPOINT_STATE, tmp);
    BL_TRY(write_state(tr, step, path));
    BL_TRY(bl_checkpoint_publish(tmp, final_dir));
    return bl_checkpoint_prune(c->out_dir, c->save_keep);
}

/* balora_interrupt was called: keep the work of the steps done (a checkpoint at `step` unless one
 * was just written) and say how to go on. */
static balora_status stop_interrupted(trainer *tr, int64_t step, bool saved) {
    const bl_train_cfg *c = tr->cfg;
    int sig = balora_interrupted();
    if (!c->out_dir)
        return bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d) after step %lld of %lld; nothing was saved: the run has no "
                       "output folder; hint: give --out to make an interrupted run resumable", sig, (long long)step, (long long)tr->total);
    if (!saved) {
        balora_status st = save_checkpoint(tr, step);
        if (st) return bl_fail_prefix(st, "interrupted (signal %d) after step %lld, writing its checkpoint", sig, (long long)step);
    }
    return bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d) after step %lld of %lld; checkpoint written: %s/checkpoint-%lld; "
                   "hint: run the same command with --resume to continue from it", sig, (long long)step, (long long)tr->total,
                   c->out_dir, (long long)step);
}

static balora_status meta_i64(const bl_st_file *f, const cJSON *js, const char *key, int64_t *out) {
    char what[4200];
    snprintf(what, sizeof what, "%s (trainer_state metadata)", f->path);
    return bl_json_int(js, what, key, true, out);
}

static balora_status expect_same(const bl_st_file *f, const cJSON *js, const char *key, int64_t want, const char *option) {
    int64_t v;
    BL_TRY(meta_i64(f, js, key, &v));
    if (v != want)
        return bl_fail(BALORA_STATUS_INVALID, "%s: the checkpoint was made with %s %lld but this run has %lld; hint: resume with the same options and data",
                       f->path, option, (long long)v, (long long)want);
    return BALORA_STATUS_OK;
}

static balora_status load_state(trainer *tr, const char *dir, int64_t *step) {
    char path[4400];
    if ((size_t)snprintf(path, sizeof path, "%s/" BL_CHECKPOINT_STATE, dir) >= sizeof path)
        return bl_fail(BALORA_STATUS_INVALID, "--resume: path too long");
    if (!bl_file_exists(path))
        return bl_fail(BALORA_STATUS_IO, "%s: --resume: no " BL_CHECKPOINT_STATE " in this folder; hint: give a checkpoint-STEP folder or 'latest'", dir);
    bl_st_file f;
    BL_TRY(bl_st_open(&f, path));
    balora_status st = BALORA_STATUS_OK;
    const char *fmt = bl_st_meta(&f, "format");
    if (!fmt || strcmp(fmt, BL_CHECKPOINT_FORMAT) != 0)
        st = bl_fail(BALORA_STATUS_FORMAT, "%s: metadata 'format' is '%s', expected '" BL_CHECKPOINT_FORMAT "'", path, fmt ? fmt : "(missing)");
    const bl_train_cfg *c = tr->cfg;
    cJSON *js = NULL;
    const char *jtxt = bl_st_meta(&f, "trainer_state");
    if (!st && !jtxt) st = bl_fail(BALORA_STATUS_FORMAT, "%s: metadata 'trainer_state' is missing; hint: not a balora checkpoint", path);
    if (!st) st = bl_json_parse(path, jtxt, strlen(jtxt), &js);
    if (!st) st = expect_same(&f, js, "seed", (int64_t)c->seed, "--seed");
    if (!st) st = expect_same(&f, js, "batch_size", c->batch_size, "--batch-size");
    if (!st) st = expect_same(&f, js, "grad_accum", c->grad_accum, "--grad-accum");
    if (!st) st = expect_same(&f, js, "examples", tr->data->n, "a dataset of (examples)");
    if (!st) st = expect_same(&f, js, "trained_tokens", tr->data->total_trained, "a dataset of (trained tokens)");
    if (!st) st = expect_same(&f, js, "total_steps", tr->total, "a planned step count (--epochs / --max-steps)");
    int64_t s = 0, t = 0;
    if (!st) st = meta_i64(&f, js, "step", &s);
    if (!st) st = meta_i64(&f, js, "optimizer_step", &t);
    if (!st && (s < 0 || s > tr->total || t < 0))
        st = bl_fail(BALORA_STATUS_FORMAT, "%s: step %lld is outside 0..%lld", path, (long long)s, (long long)tr->total);
    const bl_train_model *m = tr->model;
    const char *pre[3] = {"param.", "exp_avg.", "exp_avg_sq."};
    for (int i = 0; i < m->n_params && !st; i++) {
        float *dst[3] = {tr->opt.p[i].w, tr->opt.p[i].m, tr->opt.p[i].v};
        for (int k = 0; k < 3 && !st; k++) {
            char name[1024];
            snprintf(name, sizeof name, "%s%s", pre[k], m->names[i]);
            int64_t shape[1] = {m->numel[i]};
            const bl_st_tensor *tt = bl_st_find(&f, name);
            if (!tt) st = bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' is missing; hint: the checkpoint belongs to a different adapter (--targets, --rank)", path, name);
            else if (tt->dtype != BL_DTYPE_F32) st = bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' is %s, expected F32", path, name, bl_dtype_name(tt->dtype));
            else st = bl_st_read_f32(&f, name, 1, shape, dst[k]);
        }
    }
    int n_state = f.n;
    if (!st && n_state != 3 * m->n_params)
        st = bl_fail(BALORA_STATUS_FORMAT, "%s: holds %d tensors, this adapter needs %d; hint: the checkpoint belongs to a different adapter (--targets, --rank)",
                     path, n_state, 3 * m->n_params);
    cJSON_Delete(js);
    bl_st_close(&f);
    if (st) return st;
    tr->opt.t = t;
    *step = s;
    return BALORA_STATUS_OK;
}

/* The examples of micro-batch `mi` of the epoch whose order is in perm. */
static int64_t micro_examples(const trainer *tr, int64_t mi, const int64_t **idx) {
    int64_t B = tr->cfg->batch_size, n = tr->data->n, s = mi * B, e = s + B < n ? s + B : n;
    *idx = tr->perm + s;
    return e - s;
}

static balora_status run_step(trainer *tr, int64_t step, bl_progress *p, double *extra_vals) {
    const bl_train_cfg *c = tr->cfg;
    const bl_train_model *m = tr->model;
    const int64_t V = m->n_out;
    int64_t epoch = step / tr->spe, k = step % tr->spe;
    if (epoch != tr->perm_epoch) {
        bl_train_data_order(tr->data, c->seed, epoch, !c->no_shuffle, tr->perm);
        tr->perm_epoch = epoch;
    }
    int64_t m0 = k * c->grad_accum, m1 = m0 + c->grad_accum < tr->mpe ? m0 + c->grad_accum : tr->mpe;
    /* trained tokens of the whole step: the weight of each micro-batch */
    int64_t step_trained = 0;
    for (int64_t mi = m0; mi < m1; mi++) {
        const int64_t *idx;
        int64_t n = micro_examples(tr, mi, &idx);
        for (int64_t i = 0; i < n; i++) step_trained += tr->data->trained[idx[i]];
    }
    const float scale = step_trained > 0 ? (float)(1.0 / (double)step_trained) : 0.0f;
    bl_adamw_zero_grad(&tr->opt);
    double task_sum = 0.0, extra_loss = 0.0;
    int n_terms = tr->extra ? tr->extra->n_terms : 0;
    for (int i = 0; i < n_terms; i++) extra_vals[i] = 0.0;
    for (int64_t mi = m0; mi < m1; mi++) {
        const int64_t *idx;
        int64_t n = micro_examples(tr, mi, &idx);
        bl_train_batch *b = &tr->batch;
        bl_train_batch_fill(b, tr->data, idx, n, c->pad_to_max, c->pad_id);
        float *logits = NULL;
        bl_train_teacher teach = {0};
        if (tr->teacher) {
            BL_TRY(m->forward(m->self, b, true, false, &tr->rng, &logits));
            if (tr->teacher_hidden) {
                const float *h = NULL, *head = NULL;
                BL_TRY(m->last_hidden(m->self, &h, &head));
                memcpy(tr->teacher, h, (size_t)(b->B * b->T * m->hidden_size) * sizeof(float));
                teach = (bl_train_teacher){.hidden = tr->teacher, .head = head, .C = m->hidden_size};
                if (tr->extra->teacher_seen) BL_TRY(tr->extra->teacher_seen(tr->extra->self, b, logits, V));
            } else {
                memcpy(tr->teacher, logits, (size_t)(b->B * (tr->obj->per_token ? b->T : 1) * V) * sizeof(float));
                teach.logits = tr->teacher;
            }
        }
        /* dropout draws depend only on (seed, step, micro-batch): resuming at a step restores them */
        bl_rng_seed(&tr->rng, c->seed ^ 0xd1b54a32d192ed03ULL ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(step * c->grad_accum + (mi - m0) + 1)));
        BL_TRY(m->forward(m->self, b, false, true, &tr->rng, &logits));
        double sum;
        int64_t cnt;
        /* the gradient overwrites the logits in place (with an extra loss: written by it, task part included) */
        BL_TRY(tr->obj->loss(tr->obj, b, logits, V, scale, tr->extra ? NULL : logits, &sum, &cnt));
        task_sum += sum;
        if (tr->extra) {
            double el = 0.0, terms[BL_MAX_EXTRA] = {0};
            float w = step_trained > 0 ? (float)((double)cnt / (double)step_trained) : 0.0f;
            BL_TRY(tr->extra->fn(tr->extra->self, b, logits, tr->teacher ? &teach : NULL, V, step, tr->total, scale, w, &el, terms));
            extra_loss += w * el;
            for (int i = 0; i < n_terms; i++) extra_vals[i] += w * terms[i];
        }
        BL_TRY(m->backward(m->self, b, logits));
        p->tokens += b->n_tokens;
    }
    p->grad_norm = bl_clip_grad_norm(&tr->opt, c->max_grad_norm);
    p->lr = c->adam.lr * bl_schedule_factor(c->schedule, step, tr->warmup, tr->total);
    bl_adamw_step(&tr->opt, p->lr);
    p->task_loss = step_trained > 0 ? task_sum / (double)step_trained : 0.0;
    p->loss = p->task_loss + extra_loss;
    if (!isfinite(p->loss))
        return bl_fail(BALORA_STATUS_INVALID, "training diverged at step %lld: loss is %g; hint: lower --lr or keep --max-grad-norm",
                       (long long)step + 1, p->loss);
    return BALORA_STATUS_OK;
}

static balora_status check_cfg(const bl_train_cfg *c, const bl_train_model *m, const bl_train_data *d, const bl_extra_loss *x) {
    if (c->batch_size <= 0) return bl_fail(BALORA_STATUS_INVALID, "--batch-size %lld: must be at least 1", (long long)c->batch_size);
    if (c->grad_accum <= 0) return bl_fail(BALORA_STATUS_INVALID, "--grad-accum %lld: must be at least 1", (long long)c->grad_accum);
    if (c->max_steps < 0) return bl_fail(BALORA_STATUS_INVALID, "--max-steps %lld: must be >= 0", (long long)c->max_steps);
    if (c->max_steps == 0 && c->epochs <= 0) return bl_fail(BALORA_STATUS_INVALID, "--epochs %lld: must be at least 1 (or give --max-steps)", (long long)c->epochs);
    if (!(c->warmup_ratio >= 0 && c->warmup_ratio <= 1)) return bl_fail(BALORA_STATUS_INVALID, "--warmup-ratio %g: must be in [0, 1]", c->warmup_ratio);
    if (c->warmup_steps < 0) return bl_fail(BALORA_STATUS_INVALID, "--warmup-steps %lld: must be >= 0", (long long)c->warmup_steps);
    if (!(c->max_grad_norm >= 0)) return bl_fail(BALORA_STATUS_INVALID, "--max-grad-norm %g: must be >= 0", c->max_grad_norm);
    if (c->save_every < 0) return bl_fail(BALORA_STATUS_INVALID, "--save-every %lld: must be >= 0", (long long)c->save_every);
    if ((c->save_every > 0 || (c->resume && !strcmp(c->resume, "latest"))) && !c->out_dir)
        return bl_fail(BALORA_STATUS_INVALID, "checkpoints need an output folder; hint: give --out");
    if (!m->forward || !m->backward || m->n_out <= 0) return bl_fail(BALORA_STATUS_INTERNAL, "trainer: the model has no forward/backward");
    if (d->n <= 0) return bl_fail(BALORA_STATUS_INVALID, "trainer: the dataset is empty");
    const bl_train_objective *o = c->objective ? c->objective : &bl_objective_causal_lm;
    if (d->kind != o->kind)
        return bl_fail(BALORA_STATUS_INTERNAL, "trainer: objective %s does not fit the dataset's labels (kind %d, expected %d)", o->name,
                       (int)d->kind, (int)o->kind);
    if (x && (x->n_terms < 0 || x->n_terms > BL_MAX_EXTRA - 1 || !x->fn))
        return bl_fail(BALORA_STATUS_INTERNAL, "trainer: the extra loss has %d terms (at most %d)", x->n_terms, BL_MAX_EXTRA - 1);
    return BALORA_STATUS_OK;
}

static balora_status train(trainer *tr, bl_train_result *res) {
    const bl_train_cfg *c = tr->cfg;
    const bl_train_model *m = tr->model;
    const bl_train_data *d = tr->data;
    const int64_t V = m->n_out, B = c->batch_size, T = d->max_len;
    tr->total = bl_train_total_steps(c, d->n);
    tr->spe = steps_per_epoch(c, d->n);
    tr->mpe = micro_per_epoch(c, d->n);
    tr->warmup = bl_warmup_steps(tr->total, c->warmup_steps, c->warmup_ratio);
    tr->perm_epoch = -1;
    bool teacher = tr->extra && tr->extra->needs_teacher;
    tr->teacher_hidden = teacher && tr->obj->per_token && m->last_hidden && m->hidden_size > 0;
    const int64_t tw = tr->teacher_hidden ? m->hidden_size : V; /* floats per teacher position */
    for (int pass = 0; pass < 2; pass++) {
        tr->perm = bl_arena_take(&tr->arena, (size_t)d->n * sizeof(int64_t));
        tr->decay = bl_arena_take(&tr->arena, (size_t)m->n_params * sizeof(bool));
        tr->teacher = teacher ? bl_arena_take(&tr->arena, (size_t)(B * T * tw) * sizeof(float)) : NULL;
        if (pass == 0) BL_TRY(bl_arena_alloc(&tr->arena));
    }
    for (int i = 0; i < m->n_params; i++) tr->decay[i] = bl_adamw_decays(m->names[i]);
    BL_TRY(bl_adamw_init(&tr->opt, &c->adam, m->n_params, m->names, m->w, m->g, m->numel, tr->decay));
    BL_TRY(bl_train_batch_init(&tr->batch, B, T));

    int64_t start = 0;
    if (c->resume) {
        char dir[4400];
        if (strcmp(c->resume, "latest") == 0) BL_TRY(bl_checkpoint_latest(c->out_dir, dir, sizeof dir));
        else snprintf(dir, sizeof dir, "%s", c->resume);
        BL_TRY(load_state(tr, dir, &start));
        bl_log(BL_INFO, "resuming from %s (step %lld of %lld)", dir, (long long)start, (long long)tr->total);
    }
    res->resumed_from = start;
    res->steps = start;
    if (c->out_dir) BL_TRY(bl_mkdir_p(c->out_dir));
    if (!c->resume && c->save_every > 0) {
        /* a fresh run must not mix its checkpoints with an older run's (pruning keeps the highest steps) */
        int64_t old[4];
        int n_old;
        BL_TRY(bl_checkpoint_list(c->out_dir, old, 4, &n_old));
        if (n_old > 0)
            return bl_fail(BALORA_STATUS_INVALID, "%s already holds checkpoints (checkpoint-%lld, ...) of another run; hint: --resume latest "
                           "to continue it, or use another --out", c->out_dir, (long long)old[0]);
    }

    bl_metrics_log log = {0};
    int n_extra = tr->extra ? tr->extra->n_terms : 0;
    const char *names[BL_MAX_EXTRA];
    double vals[BL_MAX_EXTRA] = {0};
    for (int i = 0; i < n_extra; i++) names[i] = tr->extra->term_names[i];
    if (c->log_path) BL_TRY(bl_metrics_open(&log, c->log_path, n_extra, names, start));
    bl_progress p = {.total_steps = tr->total, .n_extra = n_extra, .extra_names = names, .extra = vals};
    double t0 = bl_time_now();
    balora_status st = BALORA_STATUS_OK;
    if (balora_interrupted())
        st = bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d) before step %lld ran; nothing new to save",
                     balora_interrupted(), (long long)start + 1);
    for (int64_t s = start; s < tr->total && !st; s++) {
        st = run_step(tr, s, &p, vals);
        if (st) break;
        p.step = s + 1;
        p.epoch = (double)(s + 1) / (double)tr->spe;
        p.elapsed_s = bl_time_now() - t0;
        p.tokens_per_s = p.elapsed_s > 0 ? (double)p.tokens / p.elapsed_s : 0.0;
        p.eta_s = p.elapsed_s / (double)(s + 1 - start) * (double)(tr->total - s - 1);
        p.final = s + 1 == tr->total || (c->stop_after > 0 && s + 1 == c->stop_after);
        p.checkpoint = c->save_every > 0 && (s + 1) % c->save_every == 0;
        if (s == start) res->first_loss = p.loss;
        res->last_loss = p.loss;
        res->steps = s + 1;
        if (p.checkpoint) st = save_checkpoint(tr, s + 1);
        if (!st) st = bl_metrics_write(&log, &p);
        if (!st && c->progress) c->progress(&p, c->progress_user);
        if (c->stop_after > 0 && s + 1 == c->stop_after) break;
        if (!st && s + 1 < tr->total && balora_interrupted()) st = stop_interrupted(tr, s + 1, p.checkpoint);
    }
    bl_metrics_close(&log);
    res->seconds = bl_time_now() - t0;
    res->tokens = p.tokens;
    return st;
}

balora_status bl_train_run(const bl_train_cfg *cfg, const bl_train_model *model, const bl_train_data *data,
                           const bl_extra_loss *extra, bl_train_result *res) {
    memset(res, 0, sizeof *res);
    BL_TRY(check_cfg(cfg, model, data, extra));
    trainer tr = {.cfg = cfg, .model = model, .obj = cfg->objective ? cfg->objective : &bl_objective_causal_lm, .data = data,
                  .extra = extra};
    balora_status st = train(&tr, res);
    bl_train_batch_free(&tr.batch);
    bl_arena_free(&tr.arena);
    bl_adamw_free(&tr.opt);
    return st;
}
