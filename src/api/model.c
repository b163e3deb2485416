/* include/balora.h: models, adapters, forward, tokenizers, generation (training: train.c).
 * Every call into the internal layers of these parts is in this file. */
#include "api/internal.h"
#include "eval/generate.h"
#include "io/json.h"
#include "io/merge.h"
#include "method/pissa_model.h"
#include "train/lm.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NEED(p, what) do { if (!(p)) return bl_fail(BALORA_STATUS_INVALID, "%s: NULL %s", __func__, what); } while (0)

/* ------------------------------------------------------------------ models */

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* A folder's class: a causal LM (architectures[0] *ForCausalLM / *LMHeadModel, or none given) or a
 * classifier (everything else: the classifier loader names what it cannot run). */
static balora_status folder_is_causal(const char *dir, bool *causal) {
    char cfg[4200];
    BL_TRY(bl_path_join(cfg, sizeof cfg, dir, "config.json"));
    if (!bl_file_exists(cfg))
        return bl_fail(BALORA_STATUS_IO, "%s: no config.json; hint: balora_model_init takes a Hugging Face model folder or a llama2.c .bin", dir);
    cJSON *j = NULL;
    BL_TRY(bl_json_load(cfg, &j));
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "architectures");
    const cJSON *a0 = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    const char *arch = cJSON_IsString(a0) ? a0->valuestring : NULL;
    *causal = !arch || strstr(arch, "ForCausalLM") || strstr(arch, "LMHeadModel");
    cJSON_Delete(j);
    return BALORA_STATUS_OK;
}

balora_status bl_api_model_load(balora_model *m) {
    const char *p = m->path;
    bool causal = true;
    if (!bl_dir_exists(p)) {
        if (!bl_file_exists(p))
            return bl_fail(BALORA_STATUS_IO, "%s: no such model folder or llama2.c checkpoint; hint: give a Hugging Face folder "
                           "(config.json + safetensors) or a llama2.c .bin", p);
        if (!ends_with(p, ".bin"))
            return bl_fail(BALORA_STATUS_INVALID, "%s: a file that is not a llama2.c .bin; hint: a Hugging Face model is a folder", p);
        m->bin = true;
        BL_TRY(bl_model_load_llama2c(&m->dec, p));
    } else {
        BL_TRY(folder_is_causal(p, &causal));
        if (causal) BL_TRY(bl_model_load(&m->dec, p));
        else BL_TRY(bl_clsm_load(&m->cls, p, 0, false, 42));
    }
    if (causal && m->dec.cfg.head != BL_HEAD_CAUSAL_LM) { /* a config without architectures */
        bl_model_free(&m->dec);
        memset(&m->dec, 0, sizeof m->dec);
        BL_TRY(bl_clsm_load(&m->cls, p, 0, false, 42));
        causal = false;
    }
    m->kind = causal ? BALORA_MODEL_KIND_CAUSAL_LM : BALORA_MODEL_KIND_SEQ_CLS;
    m->mods = causal ? &m->dec.mods : m->cls.mods;
    return BALORA_STATUS_OK;
}

void bl_api_run_drop(balora_model *m) {
    /* a classifier's run stays with bl_clsm until it is planned again or freed */
    if (m->have_run && m->kind == BALORA_MODEL_KIND_CAUSAL_LM) bl_run_free(&m->run);
    m->have_run = false;
    m->run_B = m->run_T = 0;
}

void bl_api_model_release(balora_model *m) {
    bl_api_run_drop(m);
    if (m->have_ad) bl_lora_free(&m->ad);
    m->have_ad = false;
    if (m->kind == BALORA_MODEL_KIND_CAUSAL_LM) bl_model_free(&m->dec);
    else bl_clsm_free(&m->cls);
}

balora_status balora_model_init(balora_model **out, const char *path) {
    NEED(out, "model handle pointer");
    *out = NULL;
    NEED(path, "path");
    balora_model *m = bl_calloc(1, sizeof *m);
    if (!m) return BALORA_STATUS_NOMEM;
    if (strlen(path) >= sizeof m->path) { free(m); return bl_fail(BALORA_STATUS_INVALID, "model path longer than %zu bytes", sizeof m->path - 1); }
    snprintf(m->path, sizeof m->path, "%s", path);
    balora_status st = bl_api_model_load(m);
    if (st) { bl_api_model_release(m); free(m); return st; }
    *out = m;
    return BALORA_STATUS_OK;
}

void balora_model_free(balora_model *m) {
    if (!m) return;
    bl_api_model_release(m);
    free(m);
}

balora_model_kind balora_model_kind_get(const balora_model *m) { return m ? m->kind : BALORA_MODEL_KIND_CAUSAL_LM; }

int64_t balora_model_vocab_size(const balora_model *m) {
    if (!m) return 0;
    if (m->kind == BALORA_MODEL_KIND_CAUSAL_LM) return m->dec.cfg.vocab_size;
    return m->cls.decoder ? m->cls.dec->cfg.vocab_size : m->cls.enc->cfg.vocab_size;
}

int64_t balora_model_n_outputs(const balora_model *m) {
    if (!m) return 0;
    return m->kind == BALORA_MODEL_KIND_CAUSAL_LM ? m->dec.cfg.vocab_size : m->cls.num_labels;
}

int64_t balora_model_max_tokens(const balora_model *m) {
    if (!m) return 0;
    if (m->kind == BALORA_MODEL_KIND_SEQ_CLS) return m->cls.max_tokens;
    return m->dec.cfg.family == BL_FAMILY_GPT2 ? m->dec.cfg.max_pos : 0;
}

int64_t balora_model_n_params(const balora_model *m) {
    if (!m) return 0;
    if (m->kind == BALORA_MODEL_KIND_CAUSAL_LM) return bl_model_n_params(&m->dec);
    return m->cls.decoder ? bl_model_n_params(m->cls.dec) : bl_enc_n_params(m->cls.enc);
}

balora_status balora_model_save(const balora_model *m, const char *dir) {
    NEED(m, "model");
    NEED(dir, "folder");
    if (m->kind == BALORA_MODEL_KIND_CAUSAL_LM) return bl_model_save(&m->dec, dir);
    return bl_clsm_save(&m->cls, dir);
}

/* Plans (again) the run for at least B x T tokens after the adapters changed or for larger batches. */
static balora_status run_ready(balora_model *m, int64_t B, int64_t T) {
    bool fits = m->have_run && B <= m->run_B && T <= m->run_T && m->run_gen == m->mods->attach_gen;
    if (fits) return BALORA_STATUS_OK;
    int64_t nB = B > m->run_B ? B : m->run_B, nT = T > m->run_T ? T : m->run_T;
    if (m->run_gen != m->mods->attach_gen) { nB = B; nT = T; }
    bl_api_run_drop(m);
    if (m->kind == BALORA_MODEL_KIND_CAUSAL_LM) BL_TRY(bl_run_init(&m->run, &m->dec, nB, nT));
    else BL_TRY(bl_clsm_run_init(&m->cls, nB, nT)); /* frees its previous run itself */
    m->have_run = true;
    m->run_B = nB; m->run_T = nT;
    m->run_gen = m->mods->attach_gen;
    return BALORA_STATUS_OK;
}

balora_status balora_model_forward(balora_model *m, int64_t B, int64_t T, const int64_t *ids, const int64_t *mask,
                                   balora_adapter_mode mode, float *logits, int64_t cap) {
    NEED(m, "model");
    NEED(ids, "ids");
    NEED(logits, "logits buffer");
    if (B < 1 || T < 1) return bl_fail(BALORA_STATUS_INVALID, "balora_model_forward: B = %lld, T = %lld; both must be >= 1", (long long)B, (long long)T);
    if (mode != BALORA_ADAPTER_MODE_ON && mode != BALORA_ADAPTER_MODE_OFF)
        return bl_fail(BALORA_STATUS_INVALID, "balora_model_forward: unknown adapter mode %d", (int)mode);
    int64_t need = m->kind == BALORA_MODEL_KIND_CAUSAL_LM ? B * T * m->dec.cfg.vocab_size : B * m->cls.num_labels;
    if (cap < need)
        return bl_fail(BALORA_STATUS_INVALID, "balora_model_forward: the logits buffer holds %lld floats, the forward writes %lld "
                       "(B x T x vocab or B x num_labels)", (long long)cap, (long long)need);
    BL_TRY(run_ready(m, B, T));
    bl_adapter_mode md = mode == BALORA_ADAPTER_MODE_ON ? BL_ADAPTER_ON : BL_ADAPTER_OFF;
    const float *z;
    if (m->kind == BALORA_MODEL_KIND_CAUSAL_LM) {
        bl_batch b = {.B = B, .T = T, .input_ids = ids, .attention_mask = mask};
        m->run.train = false;
        BL_TRY(bl_model_forward(&m->run, &b, md));
        z = m->run.logits;
    } else {
        m->cls.train = false;
        BL_TRY(bl_clsm_forward(&m->cls, B, T, ids, mask, NULL, md));
        z = m->cls.logits;
    }
    memcpy(logits, z, sizeof(float) * (size_t)need);
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ adapters */

balora_status balora_adapter_load(balora_model *m, const char *dir) {
    NEED(m, "model");
    NEED(dir, "adapter folder");
    balora_adapter_detach(m);
    BL_TRY(bl_lora_load(&m->ad, m->mods, dir, false));
    m->have_ad = true;
    return BALORA_STATUS_OK;
}

balora_status balora_adapter_save(const balora_model *m, const char *dir) {
    NEED(m, "model");
    NEED(dir, "adapter folder");
    if (!m->have_ad) return bl_fail(BALORA_STATUS_INVALID, "%s: the model (%s) has no adapter to save; hint: balora_adapter_load or balora_model_train first", dir, m->path);
    const char *keys[1] = {"balora_version"}, *vals[1] = {balora_version()};
    BL_TRY(bl_mkdir_p(dir));
    if (m->pissa && !m->pissa_as_is) return bl_pissa_save_converted(&m->ad, dir, 1, keys, vals);
    return bl_lora_save(&m->ad, dir, 1, keys, vals);
}

bool balora_adapter_attached(const balora_model *m) { return m && m->have_ad; }

void balora_adapter_detach(balora_model *m) {
    if (!m || !m->have_ad) return;
    bl_api_run_drop(m);
    bl_lora_free(&m->ad);
    memset(&m->ad, 0, sizeof m->ad);
    m->have_ad = m->pissa = m->pissa_as_is = false;
}

balora_status balora_adapter_merge(balora_model *m) {
    NEED(m, "model");
    if (!m->have_ad) return bl_fail(BALORA_STATUS_INVALID, "%s: no adapter attached to merge", m->path);
    BL_TRY(bl_lora_merge_into_base(&m->ad));
    balora_adapter_detach(m);
    return BALORA_STATUS_OK;
}

balora_status balora_adapter_merge_files(const char *model_dir, const char *adapter_dir, const char *out_dir) {
    NEED(model_dir, "model folder");
    NEED(adapter_dir, "adapter folder");
    NEED(out_dir, "output folder");
    bl_merge_options opt = {.out_dtype = -1};
    bl_merge_report rep;
    return bl_merge_adapter(model_dir, adapter_dir, out_dir, &opt, &rep);
}

/* ------------------------------------------------------------------ tokenizers */

balora_status balora_tokenizer_init(balora_tokenizer **out, const char *dir_or_file) {
    NEED(out, "tokenizer handle pointer");
    *out = NULL;
    NEED(dir_or_file, "path");
    balora_tokenizer *t = bl_calloc(1, sizeof *t);
    if (!t) return BALORA_STATUS_NOMEM;
    balora_status st = bl_tok_load(&t->tok, dir_or_file);
    if (st) { free(t); return st; }
    *out = t;
    return BALORA_STATUS_OK;
}

void balora_tokenizer_free(balora_tokenizer *t) {
    if (!t) return;
    bl_tok_enc_free(&t->enc);
    bl_tok_free(t->tok);
    free(t);
}

balora_status balora_tokenizer_encode(balora_tokenizer *t, const char *text, int64_t len, bool add_special, int64_t *ids,
                                      int64_t cap, int64_t *n) {
    NEED(t, "tokenizer");
    NEED(text, "text");
    NEED(n, "count pointer");
    *n = 0;
    if (cap > 0) NEED(ids, "ids buffer");
    BL_TRY(bl_tok_encode(t->tok, text, len < 0 ? strlen(text) : (size_t)len, add_special, &t->enc));
    *n = (int64_t)t->enc.n;
    if ((int64_t)t->enc.n > cap)
        return bl_fail(BALORA_STATUS_INVALID, "balora_tokenizer_encode: the text needs %lld ids, the buffer holds %lld", (long long)t->enc.n, (long long)cap);
    for (size_t i = 0; i < t->enc.n; i++) ids[i] = t->enc.ids[i];
    return BALORA_STATUS_OK;
}

balora_status balora_tokenizer_decode(balora_tokenizer *t, const int64_t *ids, int64_t n, bool skip_special, char **text, int64_t *len) {
    NEED(t, "tokenizer");
    NEED(text, "text pointer");
    *text = NULL;
    if (len) *len = 0;
    if (n < 0) return bl_fail(BALORA_STATUS_INVALID, "balora_tokenizer_decode: n = %lld", (long long)n);
    if (n > 0) NEED(ids, "ids");
    int32_t *v = bl_malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v) return BALORA_STATUS_NOMEM;
    balora_status st = BALORA_STATUS_OK;
    for (int64_t i = 0; i < n && !st; i++) {
        if (ids[i] < 0 || ids[i] > INT32_MAX) st = bl_fail(BALORA_STATUS_INVALID, "balora_tokenizer_decode: id %lld at %lld is not a token id", (long long)ids[i], (long long)i);
        else v[i] = (int32_t)ids[i];
    }
    size_t l = 0;
    if (!st) st = bl_tok_decode(t->tok, v, (size_t)n, skip_special, text, &l);
    free(v);
    if (!st && len) *len = (int64_t)l;
    return st;
}

int64_t balora_tokenizer_vocab_size(const balora_tokenizer *t) { return t ? bl_tok_vocab_size(t->tok) : 0; }

int64_t balora_tokenizer_special(const balora_tokenizer *t, balora_token_role role) {
    static const bl_tok_role map[] = {BL_TOK_BOS, BL_TOK_EOS, BL_TOK_PAD, BL_TOK_UNK, BL_TOK_CLS, BL_TOK_SEP, BL_TOK_MASK};
    if (!t || (int)role < 0 || (size_t)role >= sizeof map / sizeof map[0]) return -1;
    return bl_tok_special(t->tok, map[role]);
}

void balora_string_free(char *s) { free(s); }

/* ------------------------------------------------------------------ generation */

void balora_generate_config_default(balora_generate_config *c) {
    memset(c, 0, sizeof *c);
    bl_gen_opts o;
    bl_gen_opts_default(&o);
    c->max_new_tokens = o.max_new_tokens;
    c->temperature = o.temperature;
    c->top_k = o.top_k;
    c->top_p = o.top_p;
    c->seed = o.seed;
    c->adapter = BALORA_ADAPTER_MODE_ON;
}

typedef struct gen_result {
    int64_t *ids, cap, n;
    char *text;
    bool want_text;
} gen_result;

static balora_status gen_done(void *user, int64_t i, const bl_gen_out *o) {
    (void)i;
    gen_result *r = user;
    r->n = o->n_new;
    for (int64_t k = 0; k < o->n_new && k < r->cap; k++) r->ids[k] = o->ids[k];
    if (r->want_text && o->text && !(r->text = bl_strdup(o->text))) return BALORA_STATUS_NOMEM;
    return BALORA_STATUS_OK;
}

static void add_eos(bl_gen_opts *o, int64_t id) { /* as bl_gen_model_eos */
    if (id < 0) return;
    for (int i = 0; i < o->n_eos; i++) if (o->eos[i] == id) return;
    if (o->n_eos < BL_GEN_MAX_EOS) o->eos[o->n_eos++] = id;
}

balora_status balora_model_generate(balora_model *m, balora_tokenizer *t, const int64_t *prompt, int64_t n_prompt,
                                    const balora_generate_config *c, int64_t *out_ids, int64_t cap, int64_t *n_out, char **text) {
    NEED(m, "model");
    NEED(prompt, "prompt");
    NEED(c, "config");
    NEED(n_out, "count pointer");
    *n_out = 0;
    if (text) *text = NULL;
    if (cap > 0) NEED(out_ids, "ids buffer");
    if (m->kind != BALORA_MODEL_KIND_CAUSAL_LM)
        return bl_fail(BALORA_STATUS_INVALID, "%s: a sequence classifier does not generate; hint: generation needs a *ForCausalLM model", m->path);
    if (n_prompt < 1) return bl_fail(BALORA_STATUS_INVALID, "balora_model_generate: the prompt has %lld tokens; it needs at least 1", (long long)n_prompt);
    for (int64_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= m->dec.cfg.vocab_size)
            return bl_fail(BALORA_STATUS_INVALID, "balora_model_generate: prompt token %lld is id %lld, outside the vocabulary [0, %lld)",
                           (long long)i, (long long)prompt[i], (long long)m->dec.cfg.vocab_size);
    if (c->n_stop < 0 || c->n_stop > BALORA_GENERATE_MAX_STOP)
        return bl_fail(BALORA_STATUS_INVALID, "balora_generate_config.n_stop = %d; 0..%d", c->n_stop, BALORA_GENERATE_MAX_STOP);
    if (c->n_stop > 0 && !t) return bl_fail(BALORA_STATUS_INVALID, "balora_model_generate: stop strings need a tokenizer");
    bl_gen_opts o;
    bl_gen_opts_default(&o);
    o.max_new_tokens = c->max_new_tokens;
    o.temperature = c->temperature;
    o.top_k = c->top_k;
    o.top_p = c->top_p;
    o.seed = c->seed;
    o.mode = c->adapter == BALORA_ADAPTER_MODE_OFF ? BL_ADAPTER_OFF : BL_ADAPTER_ON;
    o.n_stop = c->n_stop;
    for (int i = 0; i < c->n_stop; i++) o.stop[i] = c->stop[i];
    BL_TRY(bl_gen_opts_check(&o));
    if (t) add_eos(&o, bl_tok_special(t->tok, BL_TOK_EOS));
    add_eos(&o, m->dec.cfg.eos_token_id);
    bl_api_run_drop(m); /* the generator plans its own key-value cache */
    gen_result r = {.ids = out_ids, .cap = cap, .want_text = text != NULL};
    const int64_t *prompts[1] = {prompt};
    int64_t lens[1] = {n_prompt};
    balora_status st = bl_gen_run_all(&m->dec, t ? t->tok : NULL, &o, 1, prompts, lens, 1, gen_done, &r, NULL, NULL);
    if (!st && r.n > cap)
        st = bl_fail(BALORA_STATUS_INVALID, "balora_model_generate: %lld new tokens, the ids buffer holds %lld", (long long)r.n, (long long)cap);
    if (st) { free(r.text); return st; }
    *n_out = r.n;
    if (text) *text = r.text;
    return BALORA_STATUS_OK;
}
