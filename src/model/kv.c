/* Incremental decoding with a key-value cache (kv.h): the session's plan and the packing of rows'
 * tokens; the blocks run through bl_block_fwd (block.c) with its cache option. */
#include "model/internal.h"
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
    TAKE(s->act, 1);
    bl_run_layer tmp, *y = a->base ? s->act : &tmp;
    memset(y, 0, sizeof *y);
    TAKE(y->ln1, N * C); TAKE(y->mean1, N); TAKE(y->rstd1, N);
    y->ln2 = y->ln1; y->mean2 = y->mean1; y->rstd2 = y->rstd1; /* ln1 is dead once ln2 is computed */
    if (gpt2) TAKE(y->q, N * 3 * C);
    else { TAKE(y->q, N * Dq); TAKE(y->k, N * Dkv); TAKE(y->v, N * Dkv); }
    TAKE(y->att, N * Dq);
    y->mid = s->x; /* in place */
    TAKE(y->f1, N * F); TAKE(y->f2, N * F);
    if (!gpt2) TAKE(y->f3, N * F);
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
    int64_t C = c->hidden, Dkv = s->Dkv, V = c->vocab_size;
    BL_TRY(bl_model_embed(m, s->x, s->ids, s->pos, N));
    bl_block_cache kc = {.max_T = s->max_T, .n_seg = n_seg, .segs = segs, .len = s->len, .S = s->S, .S_rows = s->S_rows};
    bl_block_pass pass = {.mode = mode, .train = false, .rng = NULL, .sv = NULL, .sv_shared = &s->sv, .pos = s->pos,
                          .B = 1, .T = N, .rope_cos = s->rope_cos, .rope_sin = s->rope_sin, .cache = &kc};
    for (int64_t l = 0; l < c->n_layer; l++) {
        kc.K = s->K + l * s->max_B * s->max_T * Dkv;
        kc.V = s->V + l * s->max_B * s->max_T * Dkv;
        bl_block_fwd(m, l, s->act, s->x, s->x, &pass);
    }
    /* the head on each segment's last token only */
    for (int64_t i = 0, off = 0; i < n_seg; off += segs[i].n, i++)
        memcpy(s->last + i * C, s->x + (off + segs[i].n - 1) * C, (size_t)C * sizeof(float));
    bl_model_final_norm(m, s->hid, s->act->mean1, s->act->rstd1, s->last, n_seg);
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
