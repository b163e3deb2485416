/* Text generation over the key-value cache: sampling, EOS / stop strings, streaming (generate.h). */
#include "eval/generate.h"
#include "eval/journal.h"
#include "train/data.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bl_gen_opts_default(bl_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_new_tokens = 128;
    o->temperature = 0.0;
    o->top_k = 0;
    o->top_p = 1.0;
    o->mode = BL_ADAPTER_ON;
    o->max_N = 256;
}

balora_status bl_gen_opts_check(const bl_gen_opts *o) {
    if (o->max_new_tokens < 1 || o->max_new_tokens > (1 << 20))
        return bl_fail(BALORA_STATUS_INVALID, "max new tokens %lld must be in [1, 1048576]", (long long)o->max_new_tokens);
    if (!(o->temperature >= 0.0) || !isfinite(o->temperature))
        return bl_fail(BALORA_STATUS_INVALID, "temperature %g must be >= 0 (0 = greedy)", o->temperature);
    if (o->top_k < 0) return bl_fail(BALORA_STATUS_INVALID, "top-k %lld must be >= 0 (0 = off)", (long long)o->top_k);
    if (!(o->top_p > 0.0 && o->top_p <= 1.0))
        return bl_fail(BALORA_STATUS_INVALID, "top-p %g must be in (0, 1] (1 = off)", o->top_p);
    if (o->n_stop < 0 || o->n_stop > BL_GEN_MAX_STOP || o->n_eos < 0 || o->n_eos > BL_GEN_MAX_EOS)
        return bl_fail(BALORA_STATUS_INVALID, "at most %d stop strings and %d EOS ids", BL_GEN_MAX_STOP, BL_GEN_MAX_EOS);
    for (int i = 0; i < o->n_stop; i++)
        if (!o->stop[i] || !o->stop[i][0]) return bl_fail(BALORA_STATUS_INVALID, "stop string %d is empty", i + 1);
    if (o->max_N < 1) return bl_fail(BALORA_STATUS_INVALID, "tokens per call %lld must be >= 1", (long long)o->max_N);
    return BALORA_STATUS_OK;
}

const char *bl_gen_finish_name(bl_gen_finish f) {
    return f == BL_GEN_FINISH_EOS ? "eos" : f == BL_GEN_FINISH_STOP ? "stop" : "length";
}

void bl_gen_out_free(bl_gen_out *o) {
    if (!o) return;
    free(o->ids);
    free(o->text);
    memset(o, 0, sizeof *o);
}

/* ------------------------------------------------------------------ sampling */

static int cmp_desc(const void *a, const void *b, void *z_) {
    const float *z = z_;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (z[i] > z[j]) return -1;
    if (z[i] < z[j]) return 1;
    return (i > j) - (i < j);
}

int64_t bl_gen_sample(const float *z, int64_t V, const bl_gen_opts *o, bl_rng *rng, double *p, int32_t *idx) {
    int64_t best = 0;
    for (int64_t v = 1; v < V; v++) if (z[v] > z[best]) best = v;
    if (o->temperature <= 0.0) return best;
    int64_t k = o->top_k > 0 && o->top_k < V ? o->top_k : V;
    int64_t n = V;
    if (k < V && k <= 64) {
        /* the k highest by insertion into a sorted prefix (ties: lower id first) */
        n = 0;
        for (int64_t v = 0; v < V; v++) {
            if (n == k && !(z[v] > z[idx[k - 1]])) continue;
            int64_t i = n < k ? n++ : k - 1;
            while (i > 0 && z[idx[i - 1]] < z[v]) { idx[i] = idx[i - 1]; i--; }
            idx[i] = (int32_t)v;
        }
    } else if (k < V || o->top_p < 1.0) {
        for (int64_t v = 0; v < V; v++) idx[v] = (int32_t)v;
        qsort_r(idx, (size_t)V, sizeof(int32_t), cmp_desc, (void *)z);
        n = k;
    }
    double inv_t = 1.0 / o->temperature, mx = z[best], sum = 0.0;
    int64_t keep = n;
    if (n == V && o->top_p >= 1.0) {
        /* nothing cut: every token stays */
        idx[0] = (int32_t)best;
        for (int64_t v = 0; v < V; v++) if (z[v] < z[idx[0]]) idx[0] = (int32_t)v;
        keep = 1;
    } else {
        for (int64_t i = 0; i < n; i++) { p[i] = exp(((double)z[idx[i]] - mx) * inv_t); sum += p[i]; }
    }
    if (o->top_p < 1.0) {
        /* transformers' TopPLogitsWarper: in ascending order remove tokens whose cumulative
         * probability is <= 1 - top_p; the most likely token always stays. idx is descending. */
        double tail = 0.0, lim = (1.0 - o->top_p) * sum;
        keep = n;
        for (int64_t i = n - 1; i >= 1; i--) {
            tail += p[i];
            if (tail <= lim) keep = i; else break;
        }
    }
    /* Draw among the kept tokens walking them in id order (not in sorted order), so that logits
     * perturbed by rounding (a batch computed in other shapes) reorder nothing: the draw changes
     * only when u falls within the perturbation of a boundary. Kept = logit >= the cut (ties of
     * the cut stay, as transformers' top-k keeps them). */
    float cut = z[idx[keep - 1]];
    double tot = 0.0;
    for (int64_t v = 0; v < V; v++) if (z[v] >= cut) tot += exp(((double)z[v] - mx) * inv_t);
    double u = bl_rng_uniform(rng) * tot, c = 0.0;
    int64_t last = best;
    for (int64_t v = 0; v < V; v++) {
        if (!(z[v] >= cut)) continue;
        c += exp(((double)z[v] - mx) * inv_t);
        last = v;
        if (u < c) return v;
    }
    return last;
}

/* ------------------------------------------------------------------ session */

#define TAKE(ptr, n) ((ptr) = bl_arena_take(a, (size_t)(n) * sizeof(*(ptr))))

static void plan(bl_generator *g, bl_arena *a) {
    int64_t B = g->max_B, V = g->m->cfg.vocab_size, M = g->o.max_new_tokens;
    TAKE(g->rng, B); TAKE(g->next, B); TAKE(g->lrow, B); TAKE(g->ids, B * M); TAKE(g->n_new, B);
    TAKE(g->active, B); TAKE(g->printed, B); TAKE(g->t_end, B); TAKE(g->finish, B);
    TAKE(g->dec, M); TAKE(g->segs, B); TAKE(g->probs, V); TAKE(g->idx, V);
}

balora_status bl_gen_init(bl_generator *g, bl_model *m, bl_tok *tok, const bl_gen_opts *o, int64_t max_B, int64_t max_prompt) {
    memset(g, 0, sizeof *g);
    BL_TRY(bl_gen_opts_check(o));
    if (o->n_stop > 0 && !tok)
        return bl_fail(BALORA_STATUS_INVALID, "stop strings need a tokenizer to decode the text; hint: pass --tokenizer DIR or drop --stop");
    if (max_B < 1 || max_prompt < 1)
        return bl_fail(BALORA_STATUS_INVALID, "generation: batch %lld and prompt length %lld must be positive",
                       (long long)max_B, (long long)max_prompt);
    if (m->cfg.vocab_size > INT32_MAX) return bl_fail(BALORA_STATUS_UNSUPPORTED, "vocabulary too large");
    if (tok && bl_tok_vocab_size(tok) > m->cfg.vocab_size)
        bl_log(BL_WARN, "the tokenizer has %d tokens but the model only %lld: ids past the model's vocabulary fail",
               bl_tok_vocab_size(tok), (long long)m->cfg.vocab_size);
    g->m = m; g->tok = tok; g->o = *o; g->max_B = max_B; g->max_prompt = max_prompt;
    int64_t T = max_prompt + o->max_new_tokens;
    if (m->cfg.family == BL_FAMILY_GPT2 && T > m->cfg.max_pos)
        return bl_fail(BALORA_STATUS_INVALID, "%s: a prompt of %lld tokens plus %lld new tokens exceeds the model's n_positions %lld; "
                       "hint: lower --max-new-tokens or shorten the prompt", m->source, (long long)max_prompt,
                       (long long)o->max_new_tokens, (long long)m->cfg.max_pos);
    if (m->cfg.family != BL_FAMILY_GPT2 && T > m->cfg.max_pos)
        bl_log(BL_WARN, "%s: prompts of up to %lld tokens plus %lld new tokens go past max_position_embeddings %lld (RoPE extrapolates; quality may drop)",
               m->source, (long long)max_prompt, (long long)o->max_new_tokens, (long long)m->cfg.max_pos);
    BL_TRY(bl_kv_init(&g->kv, m, max_B, T, o->max_N > max_B ? o->max_N : max_B));
    plan(g, &g->arena);
    balora_status st = bl_arena_alloc(&g->arena);
    if (st) { bl_kv_free(&g->kv); return st; }
    plan(g, &g->arena);
    return BALORA_STATUS_OK;
}

void bl_gen_free(bl_generator *g) {
    if (!g) return;
    bl_kv_free(&g->kv);
    bl_arena_free(&g->arena);
    memset(g, 0, sizeof *g);
}

static bool is_eos(const bl_gen_opts *o, int64_t id) {
    for (int i = 0; i < o->n_eos; i++) if (o->eos[i] == id) return true;
    return false;
}

/* Decoded completion of row b (without a trailing EOS) -> *text (malloc'd), *len. */
static balora_status row_text(bl_generator *g, int64_t b, char **text, size_t *len) {
    int64_t n = g->n_new[b];
    if (n > 0 && g->finish[b] == BL_GEN_FINISH_EOS) n--;
    const int64_t *ids = g->ids + b * g->o.max_new_tokens;
    for (int64_t i = 0; i < n; i++) g->dec[i] = (int32_t)ids[i];
    return bl_tok_decode(g->tok, g->dec, (size_t)n, true, text, len);
}

/* Position of the first stop string in text, or -1. */
static int64_t find_stop(const bl_gen_opts *o, const char *text) {
    int64_t at = -1;
    for (int i = 0; i < o->n_stop; i++) {
        const char *s = strstr(text, o->stop[i]);
        if (s && (at < 0 || s - text < at)) at = s - text;
    }
    return at;
}

/* Bytes of text that can be shown for good: without a trailing U+FFFD (a character still being
 * cut) and without a suffix that could begin a stop string. */
static size_t safe_len(const bl_gen_opts *o, const char *t, size_t n) {
    while (n >= 3 && (unsigned char)t[n - 3] == 0xEF && (unsigned char)t[n - 2] == 0xBF && (unsigned char)t[n - 1] == 0xBD) n -= 3;
    size_t hold = 0;
    for (int i = 0; i < o->n_stop; i++) {
        size_t sl = strlen(o->stop[i]);
        for (size_t k = sl - 1; k > hold; k--)
            if (k <= n && memcmp(t + n - k, o->stop[i], k) == 0) { hold = k; break; }
    }
    return n - hold;
}

/* After row b got a token: check stop strings, stream, mark finished. */
static balora_status row_update(bl_generator *g, int64_t b, int64_t index, bool last, bl_gen_stream_fn stream, void *user) {
    if (!g->tok) {
        if (stream && !(g->finish[b] == BL_GEN_FINISH_EOS && last)) {
            char piece[32];
            int k = snprintf(piece, sizeof piece, " %lld", (long long)g->ids[b * g->o.max_new_tokens + g->n_new[b] - 1]);
            stream(user, index, piece, (size_t)k);
        }
        return BALORA_STATUS_OK;
    }
    if (!stream && g->o.n_stop == 0) return BALORA_STATUS_OK;
    char *text = NULL;
    size_t len = 0;
    BL_TRY(row_text(g, b, &text, &len));
    int64_t at = find_stop(&g->o, text);
    size_t show;
    if (at >= 0) {
        g->finish[b] = BL_GEN_FINISH_STOP;
        show = (size_t)at;
        last = true;
    } else {
        show = last ? len : safe_len(&g->o, text, len);
    }
    if (stream && show > g->printed[b]) {
        stream(user, index, text + g->printed[b], show - g->printed[b]);
        g->printed[b] = show;
    }
    free(text);
    if (last) g->active[b] = false;
    return BALORA_STATUS_OK;
}

balora_status bl_gen_batch(bl_generator *g, int64_t B, const int64_t *const *prompts, const int64_t *lens,
                           const int64_t *index, bl_gen_out *out, bl_gen_stream_fn stream, void *user) {
    if (!g->m) return bl_fail(BALORA_STATUS_INVALID, "generation: session not initialised");
    if (B < 1 || B > g->max_B)
        return bl_fail(BALORA_STATUS_INVALID, "generation: %lld prompts in a batch (1..%lld)", (long long)B, (long long)g->max_B);
    for (int64_t b = 0; b < B; b++)
        if (lens[b] > g->max_prompt)
            return bl_fail(BALORA_STATUS_INVALID, "prompt %lld has %lld tokens, more than the %lld planned",
                           (long long)(index ? index[b] : b), (long long)lens[b], (long long)g->max_prompt);
    memset(out, 0, (size_t)B * sizeof *out);
    const bl_gen_opts *o = &g->o;
    int64_t V = g->m->cfg.vocab_size, M = o->max_new_tokens;
    double t0 = bl_time_now();
    bl_kv_reset(&g->kv);
    for (int64_t b = 0; b < B; b++) {
        uint64_t ix = index ? (uint64_t)index[b] : (uint64_t)b;
        bl_rng_seed(&g->rng[b], o->seed ^ (ix * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL));
        g->n_new[b] = 0; g->active[b] = true; g->printed[b] = 0; g->finish[b] = BL_GEN_FINISH_LENGTH;
        g->lrow[b] = b;
    }
    BL_TRY(bl_kv_prefill(&g->kv, B, prompts, lens, o->mode));
    for (;;) {
        int64_t nseg = 0;
        for (int64_t b = 0; b < B; b++) {
            if (!g->active[b]) continue;
            int64_t id = bl_gen_sample(g->kv.logits + g->lrow[b] * V, V, o, &g->rng[b], g->probs, g->idx);
            g->ids[b * M + g->n_new[b]++] = id;
            bool last = false;
            if (is_eos(o, id)) { g->finish[b] = BL_GEN_FINISH_EOS; last = true; }
            else if (g->n_new[b] == M) last = true;
            BL_TRY(row_update(g, b, index ? index[b] : b, last, stream, user));
            if (last) g->active[b] = false;
            if (!g->active[b]) { g->t_end[b] = bl_time_now() - t0; continue; }
            g->next[b] = id;
            g->lrow[b] = nseg;
            g->segs[nseg++] = (bl_kv_seg){.row = b, .n = 1, .ids = &g->next[b]};
        }
        if (nseg == 0) break;
        BL_TRY(bl_kv_append(&g->kv, nseg, g->segs, o->mode));
    }
    for (int64_t b = 0; b < B; b++) {
        bl_gen_out *r = &out[b];
        r->n_new = g->n_new[b];
        r->finish = g->finish[b];
        r->seconds = g->t_end[b];
        r->ids = bl_malloc((size_t)(r->n_new > 0 ? r->n_new : 1) * sizeof(int64_t));
        if (!r->ids) goto nomem;
        memcpy(r->ids, g->ids + b * M, (size_t)r->n_new * sizeof(int64_t));
        if (g->tok) {
            size_t len = 0;
            balora_status st = row_text(g, b, &r->text, &len);
            if (st) { for (int64_t i = 0; i <= b; i++) bl_gen_out_free(&out[i]); return st; }
            int64_t at = find_stop(o, r->text);
            if (at >= 0) r->text[at] = 0;
        }
    }
    return BALORA_STATUS_OK;
nomem:
    for (int64_t i = 0; i < B; i++) bl_gen_out_free(&out[i]);
    return BALORA_STATUS_NOMEM;
}

/* skip: NULL, or [n]: a batch whose prompts are all skipped is not run (the session is still planned
 * for every prompt, so that the other batches compute exactly what they would otherwise).
 * balora_interrupt stops after the current batch. */
static balora_status run_batches(bl_model *m, bl_tok *tok, const bl_gen_opts *o, int64_t n, const int64_t *const *prompts,
                                 const int64_t *lens, int64_t batch, const bool *skip, bl_gen_done_fn done, void *user,
                                 bl_gen_stream_fn stream, void *stream_user) {
    if (n < 1) return bl_fail(BALORA_STATUS_INVALID, "generation: no prompts");
    if (batch < 1) return bl_fail(BALORA_STATUS_INVALID, "generation: batch size %lld must be >= 1", (long long)batch);
    int64_t mp = 1, B = batch < n ? batch : n;
    for (int64_t i = 0; i < n; i++) {
        if (lens[i] < 1)
            return bl_fail(BALORA_STATUS_INVALID, "prompt %lld has no tokens; hint: a prompt needs at least one token", (long long)i);
        if (lens[i] > mp) mp = lens[i];
    }
    bl_generator g;
    BL_TRY(bl_gen_init(&g, m, tok, o, B, mp));
    bl_gen_out *out = bl_calloc((size_t)B, sizeof *out);
    int64_t *index = bl_calloc((size_t)B, sizeof *index);
    balora_status st = out && index ? BALORA_STATUS_OK : BALORA_STATUS_NOMEM;
    int64_t n_run = 0;
    for (int64_t i0 = 0; i0 < n && !st; i0 += B) {
        int64_t nb = n - i0 < B ? n - i0 : B;
        bool all = skip != NULL;
        for (int64_t b = 0; b < nb && all; b++) all = skip[i0 + b];
        if (all) continue;
        if (n_run > 0 && balora_interrupted()) {
            st = bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d) after %lld of %lld prompts generated",
                         balora_interrupted(), (long long)i0, (long long)n);
            break;
        }
        for (int64_t b = 0; b < nb; b++) index[b] = i0 + b;
        st = bl_gen_batch(&g, nb, prompts + i0, lens + i0, index, out, stream, stream_user);
        if (st) break;
        n_run++;
        for (int64_t b = 0; b < nb; b++) {
            if (!st && done) st = done(user, i0 + b, &out[b]);
            bl_gen_out_free(&out[b]);
        }
    }
    free(out);
    free(index);
    bl_gen_free(&g);
    return st;
}

balora_status bl_gen_run_all(bl_model *m, bl_tok *tok, const bl_gen_opts *o, int64_t n, const int64_t *const *prompts,
                             const int64_t *lens, int64_t batch, bl_gen_done_fn done, void *user,
                             bl_gen_stream_fn stream, void *stream_user) {
    return run_batches(m, tok, o, n, prompts, lens, batch, NULL, done, user, stream, stream_user);
}

/* ------------------------------------------------------------------ loading */

balora_status bl_gen_model_load(bl_gen_model *g, const char *model, const char *adapter, const char *tokenizer, bool need_tok) {
    memset(g, 0, sizeof *g);
    size_t ml = strlen(model);
    bool bin = !bl_dir_exists(model) && ml > 4 && !strcmp(model + ml - 4, ".bin");
    balora_status st = bin ? bl_model_load_llama2c(&g->m, model) : bl_model_load(&g->m, model);
    if (st) return st;
    if (g->m.cfg.head != BL_HEAD_CAUSAL_LM) {
        st = bl_fail(BALORA_STATUS_INVALID, "%s: %s is not a causal language model; hint: generation needs a *ForCausalLM or GPT2LMHeadModel",
                     model, g->m.cfg.architecture);
        bl_model_free(&g->m);
        return st;
    }
    if (adapter) {
        if ((st = bl_lora_load(&g->ad, &g->m.mods, adapter, false))) { bl_model_free(&g->m); return st; }
        g->have_adapter = true;
    }
    const char *tdir = tokenizer ? tokenizer : bin ? NULL : model;
    if (tdir) {
        st = bl_tok_load(&g->tok, tdir);
        if (st && (tokenizer || need_tok)) {
            bl_fail_prefix(st, "tokenizer of %s: ", tdir);
            bl_gen_model_free(g);
            return st;
        }
        if (st) { g->tok = NULL; bl_clear_error(); }
    } else if (need_tok) {
        bl_gen_model_free(g);
        return bl_fail(BALORA_STATUS_INVALID, "%s has no tokenizer; hint: pass --tokenizer DIR (or token ids with --prompt-ids)", model);
    }
    return BALORA_STATUS_OK;
}

void bl_gen_model_free(bl_gen_model *g) {
    if (!g) return;
    if (g->have_adapter) bl_lora_free(&g->ad);
    bl_model_free(&g->m);
    bl_tok_free(g->tok);
    memset(g, 0, sizeof *g);
}

static void add_eos(bl_gen_opts *o, int64_t id) {
    if (id < 0 || o->n_eos >= BL_GEN_MAX_EOS) return;
    for (int i = 0; i < o->n_eos; i++) if (o->eos[i] == id) return;
    o->eos[o->n_eos++] = id;
}

void bl_gen_model_eos(const bl_gen_model *g, bl_gen_opts *o) {
    if (g->tok) add_eos(o, bl_tok_special(g->tok, BL_TOK_EOS));
    add_eos(o, g->m.cfg.eos_token_id);
}

balora_status bl_gen_encode(bl_tok *tok, const char *text, int64_t **ids, int64_t *n) {
    bl_tok_enc e;
    memset(&e, 0, sizeof e);
    *ids = NULL; *n = 0;
    balora_status st = bl_tok_encode(tok, text, strlen(text), true, &e);
    if (!st) {
        *ids = bl_malloc((e.n ? e.n : 1) * sizeof(int64_t));
        if (!*ids) st = BALORA_STATUS_NOMEM;
        else { for (size_t i = 0; i < e.n; i++) (*ids)[i] = e.ids[i]; *n = (int64_t)e.n; }
    }
    bl_tok_enc_free(&e);
    return st;
}

char *bl_gen_format_prompt(const char *text, bool alpaca) {
    if (!alpaca) return bl_strdup(text);
    const char *tmpl = BL_ALPACA_TEMPLATE, *hole = strstr(tmpl, "{query}");
    size_t pre = (size_t)(hole - tmpl), tl = strlen(tmpl), ql = strlen(text);
    char *s = bl_malloc(tl - 7 + ql + 1);
    if (!s) return NULL;
    memcpy(s, tmpl, pre);
    memcpy(s + pre, text, ql);
    memcpy(s + pre + ql, hole + 7, tl - pre - 7 + 1);
    return s;
}

/* ------------------------------------------------------------------ perplexity */

balora_status bl_eval_perplexity(bl_model *m, bl_adapter_mode mode, const int64_t *ids, int64_t n, int64_t max_len,
                                 int64_t stride, double *ppl, int64_t *n_scored) {
    *ppl = NAN; *n_scored = 0;
    if (n < 2) return bl_fail(BALORA_STATUS_INVALID, "perplexity needs at least 2 tokens (got %lld)", (long long)n);
    if (max_len < 2 || stride < 1 || stride > max_len)
        return bl_fail(BALORA_STATUS_INVALID, "perplexity: window %lld must be >= 2 and stride %lld in [1, window]",
                       (long long)max_len, (long long)stride);
    if (m->cfg.head != BL_HEAD_CAUSAL_LM)
        return bl_fail(BALORA_STATUS_INVALID, "%s: perplexity needs a causal language model", m->source);
    int64_t W = max_len < n ? max_len : n;
    bl_run r;
    BL_TRY(bl_run_init(&r, m, 1, W));
    int64_t *labels = bl_malloc((size_t)W * sizeof(int64_t)); /* [W] */
    if (!labels) { bl_run_free(&r); return BALORA_STATUS_NOMEM; }
    balora_status st = BALORA_STATUS_OK;
    double nll = 0.0;
    int64_t count = 0, prev_end = 0;
    for (int64_t begin = 0; begin < n; begin += stride) {
        int64_t end = begin + W < n ? begin + W : n, T = end - begin, trg = end - prev_end;
        for (int64_t t = 0; t < T; t++) labels[t] = t < T - trg ? BL_IGNORE_INDEX : ids[begin + t];
        bl_batch bt = {.B = 1, .T = T, .input_ids = ids + begin};
        double loss = 0.0;
        int64_t k = 0;
        if ((st = bl_model_forward(&r, &bt, mode))) break;
        if ((st = bl_xent(r.logits, labels, 1, T, m->cfg.vocab_size, true, NULL, 1.0f, &loss, &k))) break;
        nll += loss * (double)k;
        count += k;
        prev_end = end;
        if (end == n) break;
    }
    free(labels);
    bl_run_free(&r);
    if (st) return st;
    *ppl = exp(nll / (double)count);
    *n_scored = count;
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ benchmarks */

void bl_bench_gen_opts_default(bl_bench_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_new_tokens = 512;
    o->batch = 8;
    o->samples = 1;
    o->top_p = 1.0;
    o->alpaca = -1;
}

typedef struct bench_ctx {
    const bl_bench_set *s;
    int64_t samples, n_total;
    bl_completions *out;
    double t0;
    int64_t tokens;
    bl_eval_journal *journal;
    cJSON *pending;         /* journal: the samples of the problem being generated */
} bench_ctx;

static balora_status bench_done(void *user, int64_t i, const bl_gen_out *o) {
    bench_ctx *c = user;
    if (c->journal) { /* kept per problem in the journal; *out is built from it at the end */
        int64_t p = i / c->samples;
        if (c->journal->gen[p]) return BALORA_STATUS_OK; /* done before (a batch shared with undone problems) */
        if (i % c->samples == 0) { cJSON_Delete(c->pending); c->pending = cJSON_CreateArray(); }
        if (!c->pending) return BALORA_STATUS_NOMEM;
        cJSON_AddItemToArray(c->pending, cJSON_CreateString(o->text ? o->text : ""));
        c->tokens += o->n_new;
        if (i % c->samples == c->samples - 1) {
            cJSON *a = c->pending;
            c->pending = NULL;
            BL_TRY(bl_eval_journal_add(c->journal, p, c->s->p[p].id, "completions", a));
            bl_log(BL_INFO, "generated the completions of %lld / %lld problems (%.1f tokens/s)", (long long)c->journal->n_gen,
                   (long long)(c->n_total / c->samples), (double)c->tokens / (bl_time_now() - c->t0 + 1e-9));
        }
        return BALORA_STATUS_OK;
    }
    bl_completion *x = &c->out->c[c->out->n];
    x->problem = i / c->samples;
    x->text = bl_strdup(o->text ? o->text : "");
    if (!x->text) return BALORA_STATUS_NOMEM;
    c->out->n++;
    c->tokens += o->n_new;
    if (c->out->n % 8 == 0 || c->out->n == c->n_total)
        bl_log(BL_INFO, "generated %lld / %lld completions (%.1f tokens/s)", (long long)c->out->n, (long long)c->n_total,
               (double)c->tokens / (bl_time_now() - c->t0 + 1e-9));
    return BALORA_STATUS_OK;
}

balora_status bl_bench_generate(const bl_bench_set *s, const bl_bench_gen_opts *bo, bl_completions *out) {
    memset(out, 0, sizeof *out);
    if (bo->samples < 1 || bo->samples > 1000)
        return bl_fail(BALORA_STATUS_INVALID, "samples per problem %lld must be in [1, 1000]", (long long)bo->samples);
    if (bo->samples > 1 && bo->temperature <= 0)
        return bl_fail(BALORA_STATUS_INVALID, "%lld samples per problem with greedy decoding would all be equal; hint: set a temperature > 0",
                       (long long)bo->samples);
    int64_t np = bo->limit > 0 && bo->limit < s->n ? bo->limit : s->n;
    if (np < 1) return bl_fail(BALORA_STATUS_INVALID, "no problems to generate for");
    bl_gen_opts o;
    bl_gen_opts_default(&o);
    o.max_new_tokens = bo->max_new_tokens;
    o.temperature = bo->temperature;
    o.top_p = bo->top_p;
    o.seed = bo->seed;
    static const char *const math_stop[] = {"### Instruction", NULL};
    static const char *const he_stop[] = {"\nclass", "\ndef", "\n#", "\nif", "\nprint", NULL};
    static const char *const mbpp_stop[] = {"\nclass", "\nassert", "\n\"\"\"", "\nprint", "\nif", "\n```", NULL};
    const char *const *stops = s->bench == BL_BENCH_HUMANEVAL ? he_stop : s->bench == BL_BENCH_MBPP ? mbpp_stop : math_stop;
    for (int i = 0; stops[i]; i++) o.stop[o.n_stop++] = stops[i];
    BL_TRY(bl_gen_opts_check(&o));
    bl_gen_model gm;
    BL_TRY(bl_gen_model_load(&gm, bo->model, bo->adapter, bo->tokenizer, true));
    bl_gen_model_eos(&gm, &o);
    int64_t n = np * bo->samples;
    int64_t **ids = bl_calloc((size_t)n, sizeof *ids), *lens = bl_calloc((size_t)n, sizeof *lens);
    out->c = bl_calloc((size_t)n, sizeof *out->c);
    balora_status st = ids && lens && out->c ? BALORA_STATUS_OK : BALORA_STATUS_NOMEM;
    bool alpaca = bo->alpaca < 0 ? (s->bench == BL_BENCH_GSM8K || s->bench == BL_BENCH_MATH) : bo->alpaca > 0;
    for (int64_t i = 0; i < np && !st; i++) {
        char *text = bl_gen_format_prompt(s->p[i].prompt, alpaca);
        if (!text) { st = BALORA_STATUS_NOMEM; break; }
        st = bl_gen_encode(gm.tok, text, &ids[i * bo->samples], &lens[i * bo->samples]);
        free(text);
        if (st) { bl_fail_prefix(st, "problem %s: ", s->p[i].id); break; }
        for (int64_t k = 1; k < bo->samples; k++) {
            ids[i * bo->samples + k] = ids[i * bo->samples]; /* shared, freed once */
            lens[i * bo->samples + k] = lens[i * bo->samples];
        }
    }
    bl_eval_journal *jn = bo->journal;
    bool *skip = NULL; /* [n] journal: samples of problems generated before */
    int64_t n_before = 0;
    if (!st && jn) {
        if (jn->n != s->n) st = bl_fail(BALORA_STATUS_INTERNAL, "generate: the journal is for another data set");
        else if (!(skip = bl_calloc((size_t)n, sizeof *skip))) st = BALORA_STATUS_NOMEM;
        for (int64_t i = 0; !st && i < n; i++) skip[i] = jn->gen[i / bo->samples] != NULL;
        for (int64_t i = 0; !st && i < np; i++) n_before += jn->gen[i] != NULL;
        if (!st && n_before)
            bl_log(BL_INFO, "%lld of %lld problems already generated in %s (skipped)", (long long)n_before, (long long)np, jn->path);
    }
    if (!st && n_before < np) {
        if (jn && balora_interrupted())
            st = bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d)", balora_interrupted());
        bench_ctx c = {.s = s, .samples = bo->samples, .n_total = n, .out = out, .t0 = bl_time_now(), .journal = jn};
        if (!st) st = run_batches(&gm.m, gm.tok, &o, n, (const int64_t *const *)ids, lens, bo->batch, skip, bench_done, &c, NULL, NULL);
        cJSON_Delete(c.pending);
        if (st == BALORA_STATUS_INTERRUPTED) {
            int64_t done = 0;
            for (int64_t i = 0; jn && i < np; i++) done += jn->gen[i] != NULL;
            if (jn)
                st = bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d) after generating for %lld of %lld problems; the "
                             "completions so far are kept in %s; hint: run the same command again to continue (the problems "
                             "done are skipped)", balora_interrupted(), (long long)done, (long long)np, jn->path);
            else
                st = bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d) while generating; nothing was kept; hint: give "
                             "--out REPORT.json to make an interrupted evaluation resumable", balora_interrupted());
        }
    }
    /* journal: every problem's samples, in problem order, as an uninterrupted run produces them */
    for (int64_t i = 0; !st && jn && i < np; i++) {
        const cJSON *a = jn->gen[i], *it;
        if (!a || cJSON_GetArraySize(a) != bo->samples) {
            st = bl_fail(BALORA_STATUS_INVALID, "%s: problem %lld has %d completions there but --samples is %lld; hint: use another "
                         "--out, or remove the file", jn->path, (long long)i, a ? cJSON_GetArraySize(a) : 0, (long long)bo->samples);
            break;
        }
        cJSON_ArrayForEach(it, a) {
            if (!cJSON_IsString(it)) { st = bl_fail(BALORA_STATUS_FORMAT, "%s: problem %lld: a completion is not a string", jn->path, (long long)i); break; }
            out->c[out->n].problem = i;
            if (!(out->c[out->n].text = bl_strdup(it->valuestring))) { st = BALORA_STATUS_NOMEM; break; }
            out->n++;
        }
    }
    free(skip);
    for (int64_t i = 0; ids && i < np; i++) free(ids[i * bo->samples]);
    free(ids);
    free(lens);
    bl_gen_model_free(&gm);
    if (st) bl_completions_free(out);
    return st;
}

balora_status bl_eval_ppl_file(const char *model, const char *adapter, const char *tokenizer, const char *path,
                               int64_t window, int64_t stride, double *ppl, int64_t *n_scored) {
    bl_gen_model gm;
    BL_TRY(bl_gen_model_load(&gm, model, adapter, tokenizer, true));
    char *text = NULL;
    size_t len = 0;
    int64_t *ids = NULL, n = 0;
    balora_status st = bl_file_read(path, &text, &len);
    if (!st) {
        size_t bad;
        if (!bl_utf8_valid(text, len, &bad))
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: not valid UTF-8 (byte offset %zu); hint: convert the file to UTF-8", path, bad);
    }
    if (!st) st = bl_gen_encode(gm.tok, text, &ids, &n);
    int64_t W = window > 0 ? window : gm.m.cfg.max_pos < 1024 ? gm.m.cfg.max_pos : 1024;
    if (gm.m.cfg.family == BL_FAMILY_GPT2 && W > gm.m.cfg.max_pos && !st)
        st = bl_fail(BALORA_STATUS_INVALID, "--window %lld exceeds the model's n_positions %lld", (long long)W, (long long)gm.m.cfg.max_pos);
    int64_t S = stride > 0 ? stride : (W / 2 > 0 ? W / 2 : 1);
    if (!st && n < 2) st = bl_fail(BALORA_STATUS_INVALID, "%s: the text has %lld token(s); perplexity needs at least 2", path, (long long)n);
    if (!st) st = bl_eval_perplexity(&gm.m, BL_ADAPTER_ON, ids, n, W, S, ppl, n_scored);
    free(text);
    free(ids);
    bl_gen_model_free(&gm);
    return st;
}

/* ------------------------------------------------------------------ MT-Bench judge */

typedef struct judge_ctx {
    FILE *f;
    const char *path;
    const bl_mt_set *s;
    const int64_t *qi;   /* [n] question of prompt i */
    const int *turn;     /* [n] */
} judge_ctx;

static balora_status judge_done(void *user, int64_t i, const bl_gen_out *o) {
    judge_ctx *c = user;
    cJSON *j = cJSON_CreateObject();
    if (!j) return BALORA_STATUS_NOMEM;
    cJSON_AddStringToObject(j, "question_id", c->s->q[c->qi[i]].id);
    cJSON_AddNumberToObject(j, "turn", c->turn[i]);
    cJSON_AddStringToObject(j, "judgment", o->text ? o->text : "");
    char *line = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!line) return BALORA_STATUS_NOMEM;
    int w = fprintf(c->f, "%s\n", line);
    free(line);
    if (w < 0) return bl_fail(BALORA_STATUS_IO, "%s: write failed", c->path);
    return BALORA_STATUS_OK;
}

balora_status bl_mt_judge_with_model(const char *judge, const char *tokenizer, const bl_mt_set *s, const bl_mt_templates *t,
                                     int64_t max_new_tokens, int64_t batch, const char *out_path) {
    if (!out_path) return bl_fail(BALORA_STATUS_INVALID, "MT-Bench judging: the judgments need a file; hint: add --out judgments.jsonl");
    int64_t n = 0;
    for (int64_t i = 0; i < s->n; i++) n += s->q[i].n_turns;
    if (n == 0) return bl_fail(BALORA_STATUS_INVALID, "MT-Bench judging: no questions");
    bl_gen_opts o;
    bl_gen_opts_default(&o);
    o.max_new_tokens = max_new_tokens;
    BL_TRY(bl_gen_opts_check(&o));
    bl_gen_model gm;
    BL_TRY(bl_gen_model_load(&gm, judge, NULL, tokenizer, true));
    bl_gen_model_eos(&gm, &o);
    int64_t **ids = bl_calloc((size_t)n, sizeof *ids), *lens = bl_calloc((size_t)n, sizeof *lens), *qi = bl_calloc((size_t)n, sizeof *qi);
    int *turn = bl_calloc((size_t)n, sizeof *turn);
    balora_status st = ids && lens && qi && turn ? BALORA_STATUS_OK : BALORA_STATUS_NOMEM;
    for (int64_t i = 0, k = 0; i < s->n && !st; i++)
        for (int tt = 1; tt <= s->q[i].n_turns && !st; tt++, k++) {
            char *sys = NULL, *prompt = NULL;
            if ((st = bl_mt_judge_prompt(t, &s->q[i], tt, &sys, &prompt))) break;
            size_t need = strlen(sys) + strlen(prompt) + 3;
            char *text = bl_malloc(need);
            if (!text) st = BALORA_STATUS_NOMEM;
            else {
                snprintf(text, need, "%s%s%s", sys, *sys ? "\n\n" : "", prompt);
                st = bl_gen_encode(gm.tok, text, &ids[k], &lens[k]);
                if (st) bl_fail_prefix(st, "judge prompt of question %s turn %d: ", s->q[i].id, tt);
            }
            free(text); free(sys); free(prompt);
            qi[k] = i;
            turn[k] = tt;
        }
    FILE *f = NULL;
    if (!st && !(f = fopen(out_path, "w"))) st = bl_fail(BALORA_STATUS_IO, "%s: cannot create", out_path);
    if (!st) {
        judge_ctx c = {.f = f, .path = out_path, .s = s, .qi = qi, .turn = turn};
        st = bl_gen_run_all(&gm.m, gm.tok, &o, n, (const int64_t *const *)ids, lens, batch, judge_done, &c, NULL, NULL);
    }
    if (f && fclose(f) != 0 && !st) st = bl_fail(BALORA_STATUS_IO, "%s: write failed", out_path);
    for (int64_t i = 0; ids && i < n; i++) free(ids[i]);
    free(ids); free(lens); free(qi); free(turn);
    bl_gen_model_free(&gm);
    return st;
}

/* ------------------------------------------------------------------ MT-Bench answers */

typedef struct mt_answer_ctx { bl_mt_set *s; const int64_t *qi; int turn; } mt_answer_ctx;

static balora_status mt_answer_done(void *user, int64_t i, const bl_gen_out *o) {
    mt_answer_ctx *c = user;
    char **slot = &c->s->q[c->qi[i]].answers[c->turn];
    free(*slot);
    *slot = bl_strdup(o->text ? o->text : "");
    return *slot ? BALORA_STATUS_OK : BALORA_STATUS_NOMEM;
}

/* Turn 1 prompt, or (turn 2) turn 1's prompt + answer + the second instruction. malloc'd. */
static char *mt_prompt(const bl_mt_question *q, int turn) {
    char *p1 = bl_gen_format_prompt(q->turns[0], true);
    if (!p1 || turn == 0) return p1;
    const char *mid = "\n\n### Instruction:\n", *end = "\n\n### Response:";
    size_t n = strlen(p1) + strlen(q->answers[0]) + strlen(mid) + strlen(q->turns[1]) + strlen(end) + 1;
    char *p = bl_malloc(n);
    if (p) snprintf(p, n, "%s%s%s%s%s", p1, q->answers[0], mid, q->turns[1], end);
    free(p1);
    return p;
}

balora_status bl_mt_answer_with_model(const char *model, const char *adapter, const char *tokenizer, bl_mt_set *s,
                                      int64_t max_new_tokens, int64_t batch, const char *answers_out) {
    if (s->n < 1) return bl_fail(BALORA_STATUS_INVALID, "MT-Bench: no questions");
    bl_gen_opts o;
    bl_gen_opts_default(&o);
    o.max_new_tokens = max_new_tokens;
    o.stop[o.n_stop++] = "### Instruction";
    BL_TRY(bl_gen_opts_check(&o));
    bl_gen_model gm;
    BL_TRY(bl_gen_model_load(&gm, model, adapter, tokenizer, true));
    bl_gen_model_eos(&gm, &o);
    int64_t **ids = bl_calloc((size_t)s->n, sizeof *ids), *lens = bl_calloc((size_t)s->n, sizeof *lens);
    int64_t *qi = bl_calloc((size_t)s->n, sizeof *qi);
    balora_status st = ids && lens && qi ? BALORA_STATUS_OK : BALORA_STATUS_NOMEM;
    for (int turn = 0; turn < 2 && !st; turn++) {
        int64_t n = 0;
        for (int64_t i = 0; i < s->n && !st; i++) {
            if (turn >= s->q[i].n_turns) continue;
            char *text = mt_prompt(&s->q[i], turn);
            if (!text) { st = BALORA_STATUS_NOMEM; break; }
            free(ids[n]);
            ids[n] = NULL;
            st = bl_gen_encode(gm.tok, text, &ids[n], &lens[n]);
            free(text);
            if (st) { bl_fail_prefix(st, "MT-Bench question %s turn %d: ", s->q[i].id, turn + 1); break; }
            qi[n++] = i;
        }
        if (!st && n > 0) {
            mt_answer_ctx c = {.s = s, .qi = qi, .turn = turn};
            bl_log(BL_INFO, "MT-Bench: answering turn %d of %lld question(s)", turn + 1, (long long)n);
            st = bl_gen_run_all(&gm.m, gm.tok, &o, n, (const int64_t *const *)ids, lens, batch, mt_answer_done, &c, NULL, NULL);
        }
    }
    FILE *f = NULL;
    if (!st && answers_out && !(f = fopen(answers_out, "w"))) st = bl_fail(BALORA_STATUS_IO, "%s: cannot create", answers_out);
    for (int64_t i = 0; f && i < s->n && !st; i++) {
        cJSON *j = cJSON_CreateObject(), *t = j ? cJSON_AddArrayToObject(j, "turns") : NULL;
        char *line = NULL;
        if (t) {
            cJSON_AddStringToObject(j, "question_id", s->q[i].id);
            for (int k = 0; k < s->q[i].n_turns; k++) cJSON_AddItemToArray(t, cJSON_CreateString(s->q[i].answers[k] ? s->q[i].answers[k] : ""));
            line = cJSON_PrintUnformatted(j);
        }
        cJSON_Delete(j);
        if (!line || fprintf(f, "%s\n", line) < 0) st = bl_fail(BALORA_STATUS_IO, "%s: write failed", answers_out);
        free(line);
    }
    if (f && fclose(f) != 0 && !st) st = bl_fail(BALORA_STATUS_IO, "%s: write failed", answers_out);
    for (int64_t i = 0; ids && i < s->n; i++) free(ids[i]);
    free(ids); free(lens); free(qi);
    bl_gen_model_free(&gm);
    return st;
}
