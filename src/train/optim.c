/* AdamW, gradient clipping and LR schedules (see optim.h). */
#include "train/optim.h"
#include <math.h>
#include <string.h>

void bl_adamw_cfg_default(bl_adamw_cfg *c) {
    c->lr = 1e-3; c->beta1 = 0.9; c->beta2 = 0.999; c->eps = 1e-8; c->weight_decay = 0.0; c->loraplus_lr_ratio = 0.0;
}

balora_status bl_adamw_init(bl_adamw *o, const bl_adamw_cfg *cfg, int n, const char *const *names,
                            float *const *w, float *const *g, const int64_t *numel, const bool *decay) {
    memset(o, 0, sizeof *o);
    if (n <= 0) return bl_fail(BALORA_STATUS_INVALID, "optimizer: no trainable tensors; hint: check --targets and --method");
    if (!(cfg->lr >= 0) || !(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1) ||
        !(cfg->eps >= 0) || !(cfg->weight_decay >= 0) || !(cfg->loraplus_lr_ratio >= 0 && isfinite(cfg->loraplus_lr_ratio)))
        return bl_fail(BALORA_STATUS_INVALID, "optimizer: lr %g, betas (%g, %g), eps %g, weight decay %g: "
                       "need lr >= 0, 0 <= beta < 1, eps >= 0, weight decay >= 0 (and a LoRA+ ratio >= 0, here %g)", cfg->lr, cfg->beta1,
                       cfg->beta2, cfg->eps, cfg->weight_decay, cfg->loraplus_lr_ratio);
    o->cfg = *cfg;
    o->n = n;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (numel[i] <= 0 || !w[i] || !g[i])
            return bl_fail(BALORA_STATUS_INVALID, "optimizer: tensor '%s' is empty or has no gradient", names[i]);
        total += numel[i];
    }
    o->total = total;
    /* plan, allocate once, carve */
    for (int pass = 0; pass < 2; pass++) {
        o->p = bl_arena_take(&o->arena, (size_t)n * sizeof *o->p);
        o->m_all = bl_arena_take(&o->arena, (size_t)total * sizeof(float));
        o->v_all = bl_arena_take(&o->arena, (size_t)total * sizeof(float));
        if (pass == 0) BL_TRY(bl_arena_alloc(&o->arena));
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        bl_opt_param *p = &o->p[i];
        p->name = names[i]; p->w = w[i]; p->g = g[i]; p->numel = numel[i];
        p->m = o->m_all + off; p->v = o->v_all + off;
        p->decay = decay ? decay[i] : true;
        p->lr_mult = cfg->loraplus_lr_ratio > 0 && bl_loraplus_group_b(names[i]) ? cfg->loraplus_lr_ratio : 1.0;
        off += numel[i];
    }
    return BALORA_STATUS_OK;
}

bool bl_loraplus_group_b(const char *name) {
    size_t n = strlen(name);
    return strstr(name, "lora_B") || strstr(name, "lora_magnitude_vector") || (n >= 4 && !strcmp(name + n - 4, "bias"));
}

void bl_adamw_free(bl_adamw *o) { bl_arena_free(&o->arena); memset(o, 0, sizeof *o); }

void bl_adamw_zero_grad(bl_adamw *o) {
    for (int i = 0; i < o->n; i++) memset(o->p[i].g, 0, (size_t)o->p[i].numel * sizeof(float));
}

/* torch.optim.AdamW, _single_tensor_adamw, for one float32 tensor:
 *   w *= 1 - lr * wd
 *   m.lerp_(g, 1 - b1)            (m + (1 - b1) (g - m))
 *   v = b2 v + (1 - b2) g g
 *   w -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
 * Scalars are computed in double (Python floats) and applied as float32, as torch's CPU
 * kernels do with a float32 opmath type. Elementwise, so the thread count never changes it. */
void bl_adamw_step(bl_adamw *o, double lr) {
    o->t++;
    const double b1 = o->cfg.beta1, b2 = o->cfg.beta2;
    const double bc1 = 1.0 - pow(b1, (double)o->t), bc2 = 1.0 - pow(b2, (double)o->t);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)o->cfg.eps;
    const float w1 = (float)(1.0 - b1), b2f = (float)b2, w2 = (float)(1.0 - b2);
    for (int i = 0; i < o->n; i++) {
        bl_opt_param *p = &o->p[i];
        const double lr_i = lr * p->lr_mult; /* torch: each param group's own lr */
        const float step_size = (float)(lr_i / bc1);
        const float decay = (float)(1.0 - lr_i * (p->decay ? o->cfg.weight_decay : 0.0));
        float *restrict w = p->w, *restrict m = p->m, *restrict v = p->v;
        const float *restrict g = p->g;
        const int64_t n = p->numel;
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t k = 0; k < n; k++) {
            float wk = w[k] * decay;
            float gk = g[k];
            float mk = m[k] + w1 * (gk - m[k]);
            float vk = v[k] * b2f + w2 * gk * gk;
            m[k] = mk; v[k] = vk;
            float denom = sqrtf(vk) / bc2_sqrt + eps;
            w[k] = wk - step_size * (mk / denom);
        }
    }
}

double bl_clip_grad_norm(bl_adamw *o, double max_norm) {
    /* per-tensor sums of squares in double, in a fixed order, then the total */
    double total = 0.0;
    for (int i = 0; i < o->n; i++) {
        const float *g = o->p[i].g;
        double s = 0.0;
        for (int64_t k = 0; k < o->p[i].numel; k++) s += (double)g[k] * g[k];
        total += s;
    }
    double norm = sqrt(total);
    if (max_norm > 0 && isfinite(norm)) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            float c = (float)coef;
            for (int i = 0; i < o->n; i++) {
                float *g = o->p[i].g;
                for (int64_t k = 0; k < o->p[i].numel; k++) g[k] *= c;
            }
        }
    }
    return norm;
}

static const char *const g_sched_names[] = {"constant", "linear", "cosine"};

balora_status bl_schedule_parse(const char *name, bl_schedule *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, g_sched_names[i]) == 0) { *out = (bl_schedule)i; return BALORA_STATUS_OK; }
    return bl_fail(BALORA_STATUS_INVALID, "--schedule: unknown schedule '%s'; hint: constant, linear or cosine", name);
}
const char *bl_schedule_name(bl_schedule s) { return (unsigned)s < 3 ? g_sched_names[s] : "?"; }

int64_t bl_warmup_steps(int64_t total, int64_t warmup_steps, double warmup_ratio) {
    if (warmup_steps > 0) return warmup_steps;
    return (int64_t)ceil((double)total * warmup_ratio);
}

double bl_schedule_factor(bl_schedule s, int64_t step, int64_t warmup, int64_t total) {
    if (step < warmup) return (double)step / (double)(warmup > 1 ? warmup : 1);
    switch (s) {
    case BL_SCHEDULE_CONSTANT: return 1.0;
    case BL_SCHEDULE_LINEAR: {
        double f = (double)(total - step) / (double)(total - warmup > 1 ? total - warmup : 1);
        return f > 0 ? f : 0.0;
    }
    case BL_SCHEDULE_COSINE: {
        double progress = (double)(step - warmup) / (double)(total - warmup > 1 ? total - warmup : 1);
        double f = 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * progress));
        return f > 0 ? f : 0.0;
    }
    }
    return 1.0;
}

bool bl_adamw_decays(const char *name) {
    if (strstr(name, "bias") || strstr(name, "ln_")) return false;
    for (const char *p = name; *p; p++) /* "norm", any case */
        if ((p[0] | 32) == 'n' && p[1] && (p[1] | 32) == 'o' && p[2] && (p[2] | 32) == 'r' && p[3] && (p[3] | 32) == 'm') return false;
    return true;
}
