/* Decoder models: the tensor layout (one arena for every weight), loading from HF folders and
 * llama2.c checkpoints, random initialisation, full fine-tuning grads. */
#include "model/model.h"
#include "io/hf.h"
#include "model/internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ layout */

/* Builds params/linears/blocks with pointers carved from m->weights. Called twice: planning
 * (arena base NULL, arrays NULL: only counts) and for real. */
typedef struct builder {
    bl_model *m;
    bl_arena *a;
    int n_params, n_lin;
    bool real;
} builder;

static int add_param(builder *b, const char *name, int ndim, int64_t d0, int64_t d1, bool transposed, float **out) {
    int64_t numel = ndim == 1 ? d0 : d0 * d1;
    float *data = bl_arena_take(b->a, (size_t)numel * sizeof(float));
    int idx = b->n_params++;
    if (b->real) {
        bl_param *p = &b->m->mods.params[idx];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "%s", name);
        p->ndim = ndim;
        p->shape[0] = d0;
        p->shape[1] = ndim == 2 ? d1 : 0;
        p->numel = numel;
        p->transposed = transposed;
        p->data = data;
    }
    if (out) *out = data;
    return idx;
}

static bl_linear *add_linear(builder *b, const char *module, int layer, int64_t in, int64_t out, bool bias, bool conv1d) {
    char name[192];
    int li = b->n_lin++;
    bl_linear *L = b->real ? &b->m->mods.lin[li] : NULL;
    float *W = NULL, *bb = NULL;
    snprintf(name, sizeof name, "%s.weight", module);
    int wp = add_param(b, name, 2, out, in, conv1d, &W);
    int bp = -1;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", module);
        bp = add_param(b, name, 1, out, 0, false, &bb);
    }
    if (!L) return NULL;
    memset(L, 0, sizeof *L);
    snprintf(L->name, sizeof L->name, "%s", module);
    const char *dot = strrchr(L->name, '.');
    L->leaf = dot ? dot + 1 : L->name;
    L->layer = layer;
    L->in = in;
    L->out = out;
    L->conv1d = conv1d;
    L->W = W;
    L->b = bb;
    L->w_param = wp;
    L->b_param = bp;
    return L;
}

/* name + suffix (".weight", ".bias") */
static const char *nm2(char *buf, size_t cap, const char *name, const char *suffix) {
    snprintf(buf, cap, "%s%s", name, suffix);
    return buf;
}

/* Every tensor name comes from the architecture table row (model/arch.h). */
static void build(builder *b) {
    bl_model *m = b->m;
    const bl_config *c = &m->cfg;
    const bl_arch *A = c->arch;
    int64_t C = c->hidden, F = c->intermediate, V = c->vocab_size;
    int64_t Dq = c->n_head * c->head_dim, Dkv = c->n_kv_head * c->head_dim;
    char nm[192];
    bool ln = A->norm == BL_NORM_LAYERNORM_PRE;  /* LayerNorm has a bias, RMSNorm none */
    bool conv1d = A->conv1d;
    m->p_wpe = m->p_lnf_b = m->p_score = -1;
    m->p_wte = add_param(b, nm2(nm, sizeof nm, A->embed, ".weight"), 2, V, C, false, &m->wte);
    m->wpe = NULL;
    if (A->pos == BL_POS_LEARNED) m->p_wpe = add_param(b, nm2(nm, sizeof nm, A->pos_embed, ".weight"), 2, c->max_pos, C, false, &m->wpe);
    for (int l = 0; l < c->n_layer; l++) {
        bl_block tmp, *k = b->real ? &m->blocks[l] : &tmp;
        memset(k, 0, sizeof *k);
        k->p_ln1_b = k->p_ln2_b = -1;
        bl_arch_block_name(A, nm, sizeof nm, l, A->norm_path[BL_NORM_ATTN], ".weight");
        k->p_ln1_w = add_param(b, nm, 1, C, 0, false, &k->ln1_w);
        if (ln) {
            bl_arch_block_name(A, nm, sizeof nm, l, A->norm_path[BL_NORM_ATTN], ".bias");
            k->p_ln1_b = add_param(b, nm, 1, C, 0, false, &k->ln1_b);
        }
        for (int i = 0; i < (int)(sizeof A->lin / sizeof A->lin[0]) && A->lin[i].path; i++) {
            const bl_arch_linear *al = &A->lin[i];
            /* the post-attention norm sits before the MLP's first linear */
            if (al->role == BL_ROLE_GATE || (al->role == BL_ROLE_UP && A->mlp != BL_MLP_SWIGLU)) {
                bl_arch_block_name(A, nm, sizeof nm, l, A->norm_path[BL_NORM_MLP], ".weight");
                k->p_ln2_w = add_param(b, nm, 1, C, 0, false, &k->ln2_w);
                if (ln) {
                    bl_arch_block_name(A, nm, sizeof nm, l, A->norm_path[BL_NORM_MLP], ".bias");
                    k->p_ln2_b = add_param(b, nm, 1, C, 0, false, &k->ln2_b);
                }
            }
            bl_arch_block_name(A, nm, sizeof nm, l, al->path, NULL);
            switch (al->role) {
            case BL_ROLE_QKV: k->qkv = add_linear(b, nm, l, C, 3 * C, c->qkv_bias, conv1d); break;
            case BL_ROLE_Q: k->q = add_linear(b, nm, l, C, Dq, c->qkv_bias, conv1d); break;
            case BL_ROLE_K: k->k = add_linear(b, nm, l, C, Dkv, c->qkv_bias, conv1d); break;
            case BL_ROLE_V: k->v = add_linear(b, nm, l, C, Dkv, c->qkv_bias, conv1d); break;
            case BL_ROLE_O: k->o = add_linear(b, nm, l, Dq, C, c->o_bias, conv1d); break;
            case BL_ROLE_GATE: k->gate = add_linear(b, nm, l, C, F, c->mlp_bias, conv1d); break;
            case BL_ROLE_UP:
                if (A->mlp == BL_MLP_SWIGLU) k->up = add_linear(b, nm, l, C, F, c->mlp_bias, conv1d);
                else k->fc = add_linear(b, nm, l, C, F, c->mlp_bias, conv1d);
                break;
            case BL_ROLE_DOWN:
                if (A->mlp == BL_MLP_SWIGLU) k->down = add_linear(b, nm, l, F, C, c->mlp_bias, conv1d);
                else k->proj = add_linear(b, nm, l, F, C, c->mlp_bias, conv1d);
                break;
            default: break;
            }
        }
    }
    m->p_lnf_w = add_param(b, nm2(nm, sizeof nm, A->final_norm, ".weight"), 1, C, 0, false, &m->lnf_w);
    m->lnf_b = NULL;
    if (ln) m->p_lnf_b = add_param(b, nm2(nm, sizeof nm, A->final_norm, ".bias"), 1, C, 0, false, &m->lnf_b);
    m->p_lm_head = -1;
    m->lm_head = NULL;
    if (c->head == BL_HEAD_CAUSAL_LM) {
        if (c->tie_word_embeddings) { m->lm_head = m->wte; m->p_lm_head = m->p_wte; }
        else m->p_lm_head = add_param(b, nm2(nm, sizeof nm, A->lm_head, ".weight"), 2, V, C, false, &m->lm_head);
    } else {
        float *dummy;
        m->p_score = add_param(b, nm2(nm, sizeof nm, A->cls_out, ".weight"), 2, c->num_labels, C, false, &dummy);
    }
}

balora_status bl_model_layout(bl_model *m) {
    /* configs filled by hand (tests) name their family only: take its row */
    if (!m->cfg.arch) {
        const bl_arch_type *ty = NULL;
        const bl_arch *a = bl_arch_find(m->cfg.model_type, &ty);
        if (!a || a->family != m->cfg.family) { a = bl_arch_of_family(m->cfg.family); ty = a ? &a->types[0] : NULL; }
        if (!a || a->family == BL_FAMILY_ENCODER)
            return bl_fail(BALORA_STATUS_INVALID, "model layout: family %d is not a decoder of the architecture table", (int)m->cfg.family);
        m->cfg.arch = a;
        m->cfg.type = ty;
    }
    builder b = {.m = m, .a = &m->weights};
    build(&b); /* plan */
    int64_t L = m->cfg.n_layer;
    m->mods.params = bl_calloc((size_t)b.n_params, sizeof(bl_param));
    m->mods.lin = bl_calloc((size_t)b.n_lin, sizeof(bl_linear));
    m->blocks = bl_calloc((size_t)L, sizeof(bl_block));
    if (!m->mods.params || !m->mods.lin || !m->blocks) return BALORA_STATUS_NOMEM;
    BL_TRY(bl_arena_alloc(&m->weights));
    builder r = {.m = m, .a = &m->weights, .real = true};
    build(&r);
    m->mods.n_params = r.n_params;
    m->mods.n_lin = r.n_lin;
    m->mods.model_type = m->cfg.model_type;
    m->mods.task_type = m->cfg.head == BL_HEAD_SEQ_CLS ? "SEQ_CLS" : "CAUSAL_LM";
    m->mods.heads[0] = NULL;
    if (m->cfg.head == BL_HEAD_SEQ_CLS)
        for (int i = 0; i < 3 && m->cfg.arch->modules_to_save[i]; i++) {
            m->mods.heads[i] = m->cfg.arch->modules_to_save[i];
            m->mods.heads[i + 1] = NULL;
        }
    return BALORA_STATUS_OK;
}

void bl_model_free(bl_model *m) {
    if (!m) return;
    bl_arena_free(&m->weights);
    bl_arena_free(&m->grads);
    free(m->mods.params);
    free(m->mods.lin);
    free(m->blocks);
    memset(m, 0, sizeof *m);
}

balora_status bl_model_check_size(const bl_config *c, const char *src) {
    /* OpenBLAS is LP64: every matrix dimension must fit an int; keep sizes sane. */
    int64_t lim = (int64_t)1 << 30;
    if (c->hidden > lim / 8 || c->intermediate > lim / 8 || c->vocab_size > lim / 8 || c->n_layer > 4096 ||
        c->max_pos > lim / 8 || c->n_head * c->head_dim > lim / 8 || c->num_labels < 0 || c->num_labels > BL_MAX_LABELS)
        return bl_fail(BALORA_STATUS_INVALID, "%s: model dimensions out of range", src);
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ HF folders */

balora_status bl_model_load(bl_model *m, const char *dir) {
    memset(m, 0, sizeof *m);
    bl_hf_folder h;
    BL_TRY(bl_hf_open(&h, dir));
    balora_status st = bl_config_parse(&m->cfg, h.config, h.config_path);
    if (!st) st = bl_model_check_size(&m->cfg, h.config_path);
    if (!st) st = bl_model_layout(m);
    snprintf(m->source, sizeof m->source, "%s", dir);
    if (!st) st = bl_modules_read(&m->mods, &h, m->cfg.arch->prefix, false, NULL, NULL, NULL);
    bl_hf_close(&h);
    if (st) {
        bl_fail_prefix(st, "loading model %s: ", dir);
        bl_model_free(m);
    }
    return st;
}

/* ------------------------------------------------------------------ random */

balora_status bl_model_init_random(bl_model *m, const bl_config *c, uint64_t seed, float std) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    if (c->n_head <= 0 || c->n_kv_head <= 0 || c->n_head % c->n_kv_head || c->head_dim <= 0 || c->n_layer <= 0 ||
        c->hidden <= 0 || c->vocab_size <= 0 || c->intermediate <= 0 || c->max_pos <= 0)
        return bl_fail(BALORA_STATUS_INVALID, "random model: inconsistent config");
    BL_TRY(bl_model_check_size(c, "random model"));
    balora_status st = bl_model_layout(m);
    if (st) { bl_model_free(m); return st; }
    snprintf(m->source, sizeof m->source, "random(seed=%llu)", (unsigned long long)seed);
    bl_rng r;
    bl_rng_seed(&r, seed);
    for (int i = 0; i < m->mods.n_params; i++) {
        bl_param *p = &m->mods.params[i];
        bool is_bias = strstr(p->name, ".bias") != NULL;
        bool is_norm = p->ndim == 1 && !is_bias;
        for (int64_t k = 0; k < p->numel; k++)
            p->data[k] = is_bias ? 0.0f : is_norm ? 1.0f : std * bl_rng_normal(&r);
    }
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ grads, queries */

balora_status bl_model_set_full_ft(bl_model *m, bool on) {
    if (on) {
        if (!m->grads.base) {
            for (int i = 0; i < m->mods.n_params; i++) bl_arena_take(&m->grads, (size_t)m->mods.params[i].numel * sizeof(float));
            BL_TRY(bl_arena_alloc(&m->grads));
        }
        m->grads.used = 0;
        for (int i = 0; i < m->mods.n_params; i++)
            m->mods.params[i].grad = bl_arena_take(&m->grads, (size_t)m->mods.params[i].numel * sizeof(float));
    } else {
        for (int i = 0; i < m->mods.n_params; i++) m->mods.params[i].grad = NULL;
    }
    for (int i = 0; i < m->mods.n_lin; i++) {
        bl_linear *L = &m->mods.lin[i];
        L->gW = on ? m->mods.params[L->w_param].grad : NULL;
        L->gb = on && L->b_param >= 0 ? m->mods.params[L->b_param].grad : NULL;
    }
    m->full_ft = on;
    return BALORA_STATUS_OK;
}

void bl_model_freeze_embeddings(bl_model *m) {
    const int idx[3] = {m->p_wte, m->p_wpe, m->p_lm_head};
    for (int i = 0; i < 3; i++)
        if (idx[i] >= 0) m->mods.params[idx[i]].grad = NULL;
}

void bl_model_zero_grads(bl_model *m) {
    if (m->grads.base) memset(m->grads.base, 0, m->grads.size);
}

int64_t bl_model_n_params(const bl_model *m) { return bl_modules_n_params(&m->mods); }

bl_linear *bl_modules_find(bl_module_set *s, const char *name) {
    for (int i = 0; i < s->n_lin; i++)
        if (!strcmp(s->lin[i].name, name)) return &s->lin[i];
    return NULL;
}

bl_param *bl_modules_param(bl_module_set *s, const char *name) {
    for (int i = 0; i < s->n_params; i++)
        if (!strcmp(s->params[i].name, name)) return &s->params[i];
    return NULL;
}
