/* Incremental decoding with a key-value cache (kv.h). Every product goes through ops.h: the
 * linear layers through bl_lin_fwd (adapters included), attention of a row's new tokens over its
 * cached keys through bl_gemm + bl_softmax_rows on the visible range only. */
#include "model/kv.h"
#include <math.h>
#include <string.h>

#define TAKE(ptr, n) ((ptr) = bl_arena_take(a, (size_t)(n) * sizeof(*(ptr))))

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* query rows per score block: bounds S to S_rows x max_T floats */
#define KV_QBLOCK 64

static void plan(bl_kv *s, bl_arena *a) {
    const bl_config *c = &s->m->cfg;
    int64_t N = s->max_N, B = s->max_B, T = s->max_T, C = c->hidden, F = c->intermediate, L = c->n_layer;
    int64_t Dq = c->n_head * c->head_dim, Dkv = s->Dkv;
    bool gpt2 = c->family == BL_FAMILY_GPT2;
    int64_t max_r = 0;
    for (int i = 0; i < s->m->mods.n_lin; i++)
        if (s->m->mods.lin[i].lora) max_r = max64(max_r, s->m->mods.lin[i].lora->r);
    TAKE(s->len, B);
    TAKE(s->logits, B * c->vocab_size);
    TAKE(s->lg, B * c->vocab_size);
    TAKE(s->K, L * B * T * Dkv);
    TAKE(s->V, L * B * T * Dkv);
    TAKE(s->ids, N); TAKE(s->pos, N);
    TAKE(s->x, N * C);
    TAKE(s->ln, N * C); TAKE(s->mean, N); TAKE(s->rstd, N);
    if (gpt2) { TAKE(s->q, N * 3 * C); s->k = s->v = NULL; }
    else { TAKE(s->q, N * Dq); TAKE(s->k, N * Dkv); TAKE(s->v, N * Dkv); }
    TAKE(s->att, N * Dq);
    TAKE(s->f1, N * F); TAKE(s->f2, N * F);
    if (!gpt2) TAKE(s->f3, N * F); else s->f3 = NULL;
    s->S_rows = max64(c->n_head / c->n_kv_head, min64(KV_QBLOCK, N));
    TAKE(s->S, s->S_rows * T);
    TAKE(s->last, B * C); TAKE(s->hid, B * C);
    if (max_r > 0) TAKE(s->u, N * max_r); else s->u = NULL;
    TAKE(s->segs, B); TAKE(s->seg_done, B);
    if (!gpt2) { TAKE(s->rope_cos, T * c->head_dim / 2); TAKE(s->rope_sin, T * c->head_dim / 2); }
}

balora_status bl_kv_init(bl_kv *s, bl_model *m, int64_t max_B, int64_t max_T, int64_t max_N) {
    memset(s, 0, sizeof *s);
    const bl_config *c = &m->cfg;
    if (c->head != BL_HEAD_CAUSAL_LM || c->family == BL_FAMILY_ENCODER)
        return bl_fail(BALORA_STATUS_INVALID, "%s: generation needs a causal language model (%s is not one); "
                       "hint: use a *ForCausalLM / GPT2LMHeadModel checkpoint", m->source, c->architecture);
    if (max_B <= 0 || max_T <= 0 || max_N < max_B)
        return bl_fail(BALORA_STATUS_INVALID, "key-value cache: rows %lld, length %lld, tokens per call %lld must be "
                       "positive with tokens per call >= rows", (long long)max_B, (long long)max_T, (long long)max_N);
    if (c->family == BL_FAMILY_GPT2 && max_T > c->max_pos)
        return bl_fail(BALORA_STATUS_INVALID, "%s: %lld tokens per sequence exceed the model's n_positions %lld; "
                       "hint: shorten the prompt or lower --max-new-tokens", m->source, (long long)max_T, (long long)c->max_pos);
    if (max_T > ((int64_t)1 << 20) || max_B > ((int64_t)1 << 16) || max_N > ((int64_t)1 << 20))
        return bl_fail(BALORA_STATUS_INVALID, "key-value cache: %lld rows x %lld tokens (calls of %lld) is too large",
                       (long long)max_B, (long long)max_T, (long long)max_N);
    s->m = m;
    s->max_B = max_B; s->max_T = max_T; s->max_N = max_N;
    s->Dkv = c->n_kv_head * c->head_dim;
    bl_arena_free(&s->arena);
    plan(s, &s->arena);
    BL_TRY(bl_arena_alloc(&s->arena));
    plan(s, &s->arena);
    if (s->rope_cos) bl_rope_table(s->rope_cos, s->rope_sin, max_T, c->head_dim, c->rope_theta);
    s->sv.u = s->u;
    s->attach_gen = m->mods.attach_gen;
    return BALORA_STATUS_OK;
}

void bl_kv_free(bl_kv *s) {
    if (!s) return;
    bl_arena_free(&s->arena);
    memset(s, 0, sizeof *s);
}

void bl_kv_reset(bl_kv *s) {
    if (s->len) memset(s->len, 0, (size_t)s->max_B * sizeof(int64_t));
}

/* Attention of one segment (row r, n new tokens at packed offset off, first position p0) over the
 * row's cache in layer l -> s->att rows off..off+n-1. */
static void seg_attention(bl_kv *s, int64_t l, int64_t r, int64_t off, int64_t n, int64_t p0,
                          const float *q, int64_t qs) {
    const bl_config *c = &s->m->cfg;
    int64_t H = c->n_head, D = c->head_dim, grp = c->n_head / c->n_kv_head, Dq = H * D, Dkv = s->Dkv;
    int64_t sw = c->sliding_window > 0 ? c->sliding_window : 0;
    float scale = (c->family == BL_FAMILY_GPT2 && !c->scale_attn_weights) ? 1.0f : 1.0f / sqrtf((float)D);
    const float *Kr = s->K + (l * s->max_B + r) * s->max_T * Dkv; /* [max_T, Dkv] */
    const float *Vr = s->V + (l * s->max_B + r) * s->max_T * Dkv;
    float *S = s->S;
    if (n == 1) {
        /* one query: the grp query heads of a kv head are contiguous rows (stride D) */
        int64_t lo = sw ? max64(0, p0 - sw) : 0, Lk = p0 - lo + 1;
        for (int64_t g = 0; g < c->n_kv_head; g++) {
            bl_gemm(false, true, grp, Lk, D, scale, q + off * qs + g * grp * D, D, Kr + lo * Dkv + g * D, Dkv,
                    0.0f, S, Lk);
            bl_softmax_rows(S, S, grp, Lk);
            bl_gemm(false, false, grp, D, Lk, 1.0f, S, Lk, Vr + lo * Dkv + g * D, Dkv, 0.0f,
                    s->att + off * Dq + g * grp * D, D);
        }
        return;
    }
    int64_t QB = s->S_rows;
    for (int64_t h = 0; h < H; h++) {
        int64_t g = h / grp;
        for (int64_t i0 = 0; i0 < n; i0 += QB) {
            int64_t Tb = min64(QB, n - i0), plo = p0 + i0, phi = plo + Tb - 1;
            int64_t lo = sw ? max64(0, plo - sw) : 0, Lk = phi - lo + 1;
            bl_gemm(false, true, Tb, Lk, D, scale, q + (off + i0) * qs + h * D, qs, Kr + lo * Dkv + g * D, Dkv,
                    0.0f, S, Lk);
            for (int64_t i = 0; i < Tb; i++) {
                int64_t p = plo + i, jlo = sw ? max64(lo, p - sw) : lo;
                float *row = S + i * Lk;
                /* visible keys: jlo..p; the rest get probability 0 */
                memset(row, 0, (size_t)(jlo - lo) * sizeof(float));
                bl_softmax_rows(row + (jlo - lo), row + (jlo - lo), 1, p - jlo + 1);
                memset(row + (p - lo + 1), 0, (size_t)(Lk - (p - lo + 1)) * sizeof(float));
            }
            bl_gemm(false, false, Tb, D, Lk, 1.0f, S, Lk, Vr + lo * Dkv + g * D, Dkv, 0.0f,
                    s->att + (off + i0) * Dq + h * D, Dq);
        }
    }
}

/* Runs the segments; logits in segment order go to s->lg (not s->logits). */
static balora_status append(bl_kv *s, int64_t n_seg, const bl_kv_seg *segs, bl_adapter_mode mode) {
    bl_model *m = s->m;
    if (!m) return bl_fail(BALORA_STATUS_INVALID, "key-value cache: not initialised");
    if (s->attach_gen != m->mods.attach_gen)
        return bl_fail(BALORA_STATUS_INVALID, "key-value cache: adapters were attached or detached after bl_kv_init; "
                       "hint: create the session after attaching adapters");
    const bl_config *c = &m->cfg;
    if (n_seg < 1 || n_seg > s->max_B)
        return bl_fail(BALORA_STATUS_INVALID, "key-value cache: %lld segments (1..%lld allowed)", (long long)n_seg, (long long)s->max_B);
    int64_t N = 0;
    for (int64_t i = 0; i < n_seg; i++) {
        const bl_kv_seg *g = &segs[i];
        if (g->row < 0 || g->row >= s->max_B)
            return bl_fail(BALORA_STATUS_INVALID, "key-value cache: row %lld outside [0, %lld)", (long long)g->row, (long long)s->max_B);
        for (int64_t j = 0; j < i; j++)
            if (segs[j].row == g->row)
                return bl_fail(BALORA_STATUS_INVALID, "key-value cache: row %lld appears twice in one call", (long long)g->row);
        if (g->n < 1 || !g->ids)
            return bl_fail(BALORA_STATUS_INVALID, "key-value cache: segment %lld has no tokens", (long long)i);
        if (s->len[g->row] + g->n > s->max_T)
            return bl_fail(BALORA_STATUS_INVALID, "key-value cache: row %lld would hold %lld tokens, more than the %lld planned; "
                           "hint: raise the session's length (prompt + max new tokens)", (long long)g->row,
                           (long long)(s->len[g->row] + g->n), (long long)s->max_T);
        if (g->n > s->max_N - N)
            return bl_fail(BALORA_STATUS_INVALID, "key-value cache: more than %lld tokens in one call", (long long)s->max_N);
        for (int64_t t = 0; t < g->n; t++) {
            if (g->ids[t] < 0 || g->ids[t] >= c->vocab_size)
                return bl_fail(BALORA_STATUS_INVALID, "input_ids: id %lld (row %lld) is outside the vocabulary [0, %lld)",
                               (long long)g->ids[t], (long long)g->row, (long long)c->vocab_size);
            s->ids[N] = g->ids[t];
            s->pos[N] = s->len[g->row] + t;
            N++;
        }
    }
    int64_t C = c->hidden, F = c->intermediate, Dq = c->n_head * c->head_dim, Dkv = s->Dkv, V = c->vocab_size;
    bool gpt2 = c->family == BL_FAMILY_GPT2;
    float eps = (float)c->norm_eps;
    BL_TRY(bl_embedding_fwd(s->x, s->ids, m->wte, N, V, C, false, "input_ids"));
    if (gpt2) BL_TRY(bl_embedding_fwd(s->x, s->pos, m->wpe, N, c->max_pos, C, true, "position"));
    bl_lin_saved *sv = &s->sv;
    for (int64_t l = 0; l < c->n_layer; l++) {
        const bl_block *k = &m->blocks[l];
        const float *kp, *vp;
        int64_t qs, ks;
        if (gpt2) {
            bl_layernorm_fwd(s->ln, s->mean, s->rstd, s->x, k->ln1_w, k->ln1_b, N, C, eps);
            bl_lin_fwd(k->qkv, mode, false, s->q, s->ln, N, false, sv, NULL);
            qs = ks = 3 * C; kp = s->q + C; vp = s->q + 2 * C;
        } else {
            bl_rmsnorm_fwd(s->ln, s->rstd, s->x, k->ln1_w, N, C, eps);
            bl_lin_fwd(k->q, mode, false, s->q, s->ln, N, false, sv, NULL);
            bl_lin_fwd(k->k, mode, false, s->k, s->ln, N, false, sv, NULL);
            bl_lin_fwd(k->v, mode, false, s->v, s->ln, N, false, sv, NULL);
            bl_rope_fwd(s->q, s->rope_cos, s->rope_sin, s->pos, 1, N, c->n_head, c->head_dim, Dq);
            bl_rope_fwd(s->k, s->rope_cos, s->rope_sin, s->pos, 1, N, c->n_kv_head, c->head_dim, Dkv);
            qs = Dq; ks = Dkv; kp = s->k; vp = s->v;
        }
        /* append this call's keys and values to the rows' caches */
        for (int64_t i = 0, t = 0; i < n_seg; i++) {
            int64_t r = segs[i].row;
            float *Kr = s->K + (l * s->max_B + r) * s->max_T * Dkv, *Vr = s->V + (l * s->max_B + r) * s->max_T * Dkv;
            for (int64_t j = 0; j < segs[i].n; j++, t++) {
                memcpy(Kr + s->pos[t] * Dkv, kp + t * ks, (size_t)Dkv * sizeof(float));
                memcpy(Vr + s->pos[t] * Dkv, vp + t * ks, (size_t)Dkv * sizeof(float));
            }
        }
        for (int64_t i = 0, off = 0; i < n_seg; off += segs[i].n, i++)
            seg_attention(s, l, segs[i].row, off, segs[i].n, s->len[segs[i].row], s->q, qs);
        bl_lin_fwd(k->o, mode, false, s->x, s->att, N, true, sv, NULL);
        if (gpt2) {
            bl_layernorm_fwd(s->ln, s->mean, s->rstd, s->x, k->ln2_w, k->ln2_b, N, C, eps);
            bl_lin_fwd(k->fc, mode, false, s->f1, s->ln, N, false, sv, NULL);
            if (c->act == BL_ACT_GELU_TANH) bl_gelu_tanh_fwd(s->f2, s->f1, N * F);
            else if (c->act == BL_ACT_GELU_ERF) bl_gelu_erf_fwd(s->f2, s->f1, N * F);
            else bl_relu_fwd(s->f2, s->f1, N * F);
            bl_lin_fwd(k->proj, mode, false, s->x, s->f2, N, true, sv, NULL);
        } else {
            bl_rmsnorm_fwd(s->ln, s->rstd, s->x, k->ln2_w, N, C, eps);
            bl_lin_fwd(k->gate, mode, false, s->f1, s->ln, N, false, sv, NULL);
            bl_lin_fwd(k->up, mode, false, s->f2, s->ln, N, false, sv, NULL);
            bl_swiglu_fwd(s->f3, s->f1, s->f2, N * F);
            bl_lin_fwd(k->down, mode, false, s->x, s->f3, N, true, sv, NULL);
        }
    }
    /* the head on each segment's last token only */
    for (int64_t i = 0, off = 0; i < n_seg; off += segs[i].n, i++)
        memcpy(s->last + i * C, s->x + (off + segs[i].n - 1) * C, (size_t)C * sizeof(float));
    if (gpt2) bl_layernorm_fwd(s->hid, s->mean, s->rstd, s->last, m->lnf_w, m->lnf_b, n_seg, C, eps);
    else bl_rmsnorm_fwd(s->hid, s->rstd, s->last, m->lnf_w, n_seg, C, eps);
    bl_linear_fwd(s->lg, s->hid, m->lm_head, NULL, n_seg, C, V, false);
    for (int64_t i = 0; i < n_seg; i++) s->len[segs[i].row] += segs[i].n;
    return BALORA_STATUS_OK;
}

balora_status bl_kv_append(bl_kv *s, int64_t n_seg, const bl_kv_seg *segs, bl_adapter_mode mode) {
    BL_TRY(append(s, n_seg, segs, mode));
    memcpy(s->logits, s->lg, (size_t)(n_seg * s->m->cfg.vocab_size) * sizeof(float));
    s->n_logits_rows = n_seg;
    return BALORA_STATUS_OK;
}

balora_status bl_kv_prefill(bl_kv *s, int64_t B, const int64_t *const *prompts, const int64_t *lens,
                            bl_adapter_mode mode) {
    if (!s->m) return bl_fail(BALORA_STATUS_INVALID, "key-value cache: not initialised");
    if (B < 1 || B > s->max_B)
        return bl_fail(BALORA_STATUS_INVALID, "key-value cache: %lld prompts (1..%lld allowed)", (long long)B, (long long)s->max_B);
    for (int64_t b = 0; b < B; b++) {
        if (lens[b] < 1 || !prompts[b])
            return bl_fail(BALORA_STATUS_INVALID, "prompt %lld is empty; hint: a prompt needs at least one token (e.g. BOS)", (long long)b);
        if (lens[b] > s->max_T)
            return bl_fail(BALORA_STATUS_INVALID, "prompt %lld has %lld tokens, more than the %lld planned", (long long)b,
                           (long long)lens[b], (long long)s->max_T);
        if (s->len[b] != 0)
            return bl_fail(BALORA_STATUS_INVALID, "key-value cache: row %lld is not empty; hint: bl_kv_reset first", (long long)b);
    }
    int64_t V = s->m->cfg.vocab_size, b = 0, done = 0;
    while (b < B) {
        int64_t nseg = 0, budget = s->max_N;
        while (b < B && budget > 0 && nseg < s->max_B) {
            int64_t take = min64(lens[b] - done, budget);
            s->segs[nseg] = (bl_kv_seg){.row = b, .n = take, .ids = prompts[b] + done};
            budget -= take;
            done += take;
            s->seg_done[nseg++] = done == lens[b];
            if (done < lens[b]) break; /* the rest of this row goes in the next call */
            b++;
            done = 0;
        }
        BL_TRY(append(s, nseg, s->segs, mode));
        for (int64_t i = 0; i < nseg; i++)
            if (s->seg_done[i]) memcpy(s->logits + s->segs[i].row * V, s->lg + i * V, (size_t)V * sizeof(float));
    }
    s->n_logits_rows = B;
    return BALORA_STATUS_OK;
}
