/* Per-module ranks and alphas against PEFT (../shared/golden/llama_pattern, README.md there): an
 * adapter over all seven projections with rank_pattern {"v_proj": 2, "layers.1.mlp.up_proj": 6}
 * and alpha_pattern {"o_proj": 3}. bl_lora_load gives every module its own r and scale; logits,
 * loss and the gradient of every adapter tensor match transformers + PEFT within the golden
 * tolerance. Saving writes the patterns back (PEFT's keys kept); an adapter created with
 * bl_lora_init and patterns, saved without its config's patterns, gets generated keys that
 * bl_lora_load resolves to the same ranks and scales; the in-memory merge equals the adapter.
 * Also PEFT 0.11's matching rules on their own (bl_peft_patterns_resolve). */
#include "harness.h"
#include "adapters/lora.h"
#include "io/json.h"
#include "io/peft_files.h"
#include "io/safetensors.h"
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *read_f32(const bl_st_file *f, const char *name, int64_t *numel) {
    const bl_st_tensor *t = bl_st_find(f, name);
    if (!t) { fprintf(stderr, "%s: missing %s\n", f->path, name); return NULL; }
    float *p = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (bl_st_tensor_to_f32(f, t, p)) { free(p); return NULL; }
    if (numel) *numel = t->numel;
    return p;
}
static int64_t *read_i64(const bl_st_file *f, const char *name) {
    const bl_st_tensor *t = bl_st_find(f, name);
    if (!t) return NULL;
    int64_t *p = malloc((size_t)t->numel * sizeof(int64_t));
    if (bl_st_tensor_to_i64(f, t, p)) { free(p); return NULL; }
    return p;
}

/* PEFT 0.11's rules: ".*\.KEY$" (a dot before the key), rank keys before alpha keys, first match
 * is the key for both dicts, no match: the module path itself is looked up. */
static void test_matching_rules(void) {
    bl_peft_patterns p;
    memset(&p, 0, sizeof p);
    p.n_rank = 2;
    snprintf(p.rank[0].key, sizeof p.rank[0].key, "layers.1.mlp.up_proj"); p.rank[0].value = 6;
    snprintf(p.rank[1].key, sizeof p.rank[1].key, "v_proj"); p.rank[1].value = 2;
    p.n_alpha = 2;
    snprintf(p.alpha[0].key, sizeof p.alpha[0].key, "o_proj"); p.alpha[0].value = 3;
    snprintf(p.alpha[1].key, sizeof p.alpha[1].key, "v_proj"); p.alpha[1].value = 5;
    struct { const char *module; int64_t r; double alpha; } cases[] = {
        {"model.layers.1.mlp.up_proj", 6, 8},
        {"model.layers.0.mlp.up_proj", 4, 8},
        {"model.layers.11.mlp.up_proj", 4, 8},   /* "layers.1." is not a suffix of it */
        {"model.layers.0.self_attn.v_proj", 2, 5}, /* rank key "v_proj" first; alpha_pattern has it too */
        {"model.layers.0.self_attn.o_proj", 4, 3},
        {"model.layers.0.self_attn.xo_proj", 4, 8}, /* needs the dot before the key */
        {"v_proj", 2, 5},                        /* no dot: no regex match, but the path itself is a key */
        {"w_proj", 4, 8},                        /* nothing at all */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t r = 0;
        double a = 0;
        CHECK_OK(bl_peft_patterns_resolve(&p, "test", cases[i].module, 4, 8, &r, &a));
        CHECK(r == cases[i].r && a == cases[i].alpha, "%s: r %lld alpha %g, want %lld %g", cases[i].module, (long long)r, a,
              (long long)cases[i].r, cases[i].alpha);
    }
    /* the first key that matches decides both: a rank key shadows a later alpha key */
    bl_peft_patterns q;
    memset(&q, 0, sizeof q);
    q.n_rank = 1; snprintf(q.rank[0].key, sizeof q.rank[0].key, "q_proj"); q.rank[0].value = 2;
    q.n_alpha = 1; snprintf(q.alpha[0].key, sizeof q.alpha[0].key, "layers.0.self_attn.q_proj"); q.alpha[0].value = 32;
    int64_t r;
    double a;
    CHECK_OK(bl_peft_patterns_resolve(&q, "test", "model.layers.0.self_attn.q_proj", 4, 8, &r, &a));
    CHECK(r == 2 && a == 8, "shadowed alpha key: r %lld alpha %g, want 2 8", (long long)r, a);
    /* no regex match: the whole module path as a key */
    q.n_rank = 1; snprintf(q.rank[0].key, sizeof q.rank[0].key, "model.layers.3.k_proj"); q.rank[0].value = 7;
    q.n_alpha = 0;
    CHECK_OK(bl_peft_patterns_resolve(&q, "test", "model.layers.3.k_proj", 4, 8, &r, &a));
    CHECK(r == 7 && a == 8, "exact-name fallback: r %lld, want 7", (long long)r);
    /* a regular expression key; an invalid one names the file and field */
    q.n_rank = 1; snprintf(q.rank[0].key, sizeof q.rank[0].key, "(q|k)_proj"); q.rank[0].value = 3;
    CHECK_OK(bl_peft_patterns_resolve(&q, "test", "model.layers.0.self_attn.k_proj", 4, 8, &r, &a));
    CHECK(r == 3, "regex key (q|k)_proj: r %lld, want 3", (long long)r);
    snprintf(q.rank[0].key, sizeof q.rank[0].key, "q_(proj");
    CHECK_FAILS(bl_peft_patterns_resolve(&q, "cfg.json", "model.x.q_proj", 4, 8, &r, &a), BALORA_STATUS_FORMAT,
                "cfg.json: field 'rank_pattern'");
    /* the config-side parser */
    bl_lora_config c;
    bl_lora_config_default(&c);
    CHECK_OK(bl_lora_config_set_patterns(&c, "v_proj=2,layers.1.mlp.up_proj=6", "o_proj=3"));
    CHECK(c.patterns.n_rank == 2 && c.patterns.n_alpha == 1 && !strcmp(c.patterns.rank[1].key, "layers.1.mlp.up_proj") &&
          c.patterns.alpha[0].value == 3, "set_patterns parsed");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "v_proj=2.5", NULL), BALORA_STATUS_INVALID, "positive integer");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "v_proj", NULL), BALORA_STATUS_INVALID, "KEY=VALUE");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, NULL, "o_(proj=3"), BALORA_STATUS_FORMAT, "alpha_pattern");
    /* the JSON object form gives the same patterns, in the object's order (a key may hold commas) */
    bl_lora_config cj;
    bl_lora_config_default(&cj);
    CHECK_OK(bl_lora_config_set_patterns(&cj, " {\"v_proj\": 2, \"layers.1.mlp.up_proj\": 6}", "{\"o_proj\": 3}"));
    CHECK_OK(bl_lora_config_set_patterns(&c, "v_proj=2,layers.1.mlp.up_proj=6", "o_proj=3"));
    CHECK(cj.patterns.n_rank == 2 && cj.patterns.n_alpha == 1 && !memcmp(&cj.patterns, &c.patterns, sizeof c.patterns),
          "JSON and KEY=V forms give the same patterns");
    CHECK_OK(bl_lora_config_set_patterns(&cj, "{\"layers\\\\.[0-9]{1,2}\\\\.self_attn\\\\.q_proj\": 3}", NULL));
    CHECK(cj.patterns.n_rank == 1 && !strcmp(cj.patterns.rank[0].key, "layers\\.[0-9]{1,2}\\.self_attn\\.q_proj") &&
          cj.patterns.rank[0].value == 3, "JSON key with a regex: '%s'", cj.patterns.rank[0].key);
    /* what is refused, each naming the field and the key */
    c.patterns.n_rank = 5;
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "q_proj=0", NULL), BALORA_STATUS_INVALID, "'q_proj' must be a positive integer");
    CHECK(c.patterns.n_rank == 5, "a refused pattern leaves the config as it was");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "q_proj=-3", NULL), BALORA_STATUS_INVALID, "positive integer");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "q_proj=65537", NULL), BALORA_STATUS_INVALID, "<= 65536");
    CHECK_OK(bl_lora_config_set_patterns(&c, "q_proj=65536", NULL));
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "q_proj=x", NULL), BALORA_STATUS_INVALID, "rank_pattern: value 'x'");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "q_proj=", NULL), BALORA_STATUS_INVALID, "no value");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "=4", NULL), BALORA_STATUS_INVALID, "empty key");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "{\"\": 4}", NULL), BALORA_STATUS_INVALID, "empty key");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "q_proj=4,q_proj=8", NULL), BALORA_STATUS_INVALID, "given twice");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "{\"q_proj\": 2.5}", NULL), BALORA_STATUS_INVALID, "positive integer");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "{\"q_proj\": 1e6}", NULL), BALORA_STATUS_INVALID, "<= 65536");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "{\"q_proj\": \"4\"}", NULL), BALORA_STATUS_INVALID, "positive integer");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, "{q_proj: 4}", NULL), BALORA_STATUS_INVALID, "not a JSON object");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, NULL, "o_proj=inf"), BALORA_STATUS_INVALID, "positive finite number");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, NULL, "o_proj=nan"), BALORA_STATUS_INVALID, "positive finite number");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, NULL, "o_proj=0"), BALORA_STATUS_INVALID, "alpha_pattern: value 0 for 'o_proj'");
    CHECK_FAILS(bl_lora_config_set_patterns(&c, NULL, "{\"o_proj\": 1e999}"), BALORA_STATUS_INVALID, "positive finite number");
    CHECK_OK(bl_lora_config_set_patterns(&c, NULL, "o_proj=0.5"));
    CHECK(c.patterns.n_rank == 0 && c.patterns.n_alpha == 1 && c.patterns.alpha[0].value == 0.5, "alpha 0.5 accepted");
}

/* Every module's r and scale as PEFT built them for this adapter. */
static void check_ranks(const bl_adapter *ad, const char *what) {
    CHECK(ad->n == 14, "%s: %d modules, want 14", what, ad->n);
    for (int i = 0; i < ad->n; i++) {
        const char *name = ad->set->lin[ad->lin_index[i]].name;
        int64_t r = strstr(name, "v_proj") ? 2 : !strcmp(name, "model.layers.1.mlp.up_proj") ? 6 : 4;
        double alpha = strstr(name, "o_proj") ? 3 : 8;
        CHECK(ad->mods[i].r == r && ad->mods[i].scale == (float)(alpha / (double)r), "%s: %s r %lld scale %g, want %lld %g", what,
              name, (long long)ad->mods[i].r, ad->mods[i].scale, (long long)r, alpha / (double)r);
    }
}

static void forward_logits(bl_model *m, const bl_batch *b, float *out, int64_t *n) {
    bl_run r;
    CHECK_OK(bl_run_init(&r, m, b->B, b->T));
    CHECK_OK(bl_model_forward(&r, b, BL_ADAPTER_ON));
    memcpy(out, r.logits, (size_t)r.n_logits * sizeof(float));
    *n = r.n_logits;
    bl_run_free(&r);
}

int main(void) {
    test_matching_rules(); /* self-contained */
    const char *shared = t_require_shared();
    char dir[1024], adir[1100], path[1300];
    snprintf(dir, sizeof dir, "%s/golden/llama_pattern", shared);
    snprintf(adir, sizeof adir, "%s/lora", dir);
    bl_model m;
    balora_status lst = bl_model_load(&m, dir);
    CHECK(lst == BALORA_STATUS_OK, "load %s: %s", dir, balora_last_error());
    if (lst) return t_finish();
    bl_st_file io;
    snprintf(path, sizeof path, "%s/io.safetensors", dir);
    CHECK_OK(bl_st_open(&io, path));
    const bl_st_tensor *tid = bl_st_find(&io, "input_ids");
    CHECK(tid != NULL, "input_ids in io.safetensors");
    if (!tid) return t_finish();
    int64_t *ids = read_i64(&io, "input_ids"), *mask = read_i64(&io, "attention_mask"), *labels = read_i64(&io, "labels");
    bl_batch b = {.B = tid->shape[0], .T = tid->shape[1], .input_ids = ids, .attention_mask = mask};
    int64_t nw;
    float *want = read_f32(&io, "logits_lora", &nw), *wl = read_f32(&io, "loss_lora", NULL);
    float *wbase = read_f32(&io, "logits_base", NULL);
    CHECK(want && wl && wbase, "golden logits and loss present");
    if (!want || !wl || !wbase) return t_finish();

    /* 1. load: per-module ranks and scales, logits, loss, every gradient */
    bl_adapter ad;
    CHECK_OK(bl_lora_load(&ad, &m.mods, adir, false));
    check_ranks(&ad, "loaded");
    bl_run r;
    CHECK_OK(bl_run_init(&r, &m, b.B, b.T));
    CHECK_OK(bl_model_forward(&r, &b, BL_ADAPTER_ON));
    CHECK(r.n_logits == nw, "logits count %lld vs %lld", (long long)r.n_logits, (long long)nw);
    CHECK(t_allclose("llama_pattern logits_lora", r.logits, want, nw, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "logits");
    float *dl = malloc((size_t)r.n_logits * sizeof(float));
    double loss;
    int64_t cnt;
    CHECK_OK(bl_xent(r.logits, labels, b.B, b.T, m.cfg.vocab_size, true, dl, 1.0f, &loss, &cnt));
    CHECK(fabs(loss - wl[0]) <= T_GOLDEN_ATOL + T_GOLDEN_RTOL * fabs(wl[0]), "loss %.7f vs %.7f", loss, wl[0]);
    printf("loss %.7f (want %.7f)\n", loss, wl[0]);
    bl_lora_zero_grads(&ad);
    CHECK_OK(bl_model_backward(&r, dl));
    bl_st_file gf;
    snprintf(path, sizeof path, "%s/grads.safetensors", adir);
    CHECK_OK(bl_st_open(&gf, path));
    bl_param tr[64];
    int nt = bl_lora_trainables(&ad, tr, 64);
    CHECK(nt == 28 && nt == gf.n, "%d trainable tensors, grads.safetensors has %d (want 28)", nt, gf.n);
    int compared = 0;
    for (int i = 0; i < nt && i < 64; i++) {
        int64_t ng = 0;
        float *g = read_f32(&gf, tr[i].name, &ng);
        CHECK(g && ng == tr[i].numel, "grad %s present with %lld elements (got %lld)", tr[i].name, (long long)tr[i].numel, (long long)ng);
        if (!g || ng != tr[i].numel) { free(g); continue; }
        CHECK(t_allclose(tr[i].name, tr[i].grad, g, ng, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "grad %s", tr[i].name);
        compared++;
        free(g);
    }
    CHECK(compared == 28, "compared %d gradients, want 28", compared);
    bl_st_close(&gf);
    bl_run_free(&r);

    /* 2. save: the patterns come back as PEFT wrote them; the reload is exact */
    char out[1200];
    snprintf(out, sizeof out, "%s/saved", t_tmpdir());
    CHECK_OK(bl_lora_save(&ad, out, 0, NULL, NULL));
    cJSON *gj = NULL, *wj = NULL;
    snprintf(path, sizeof path, "%s/adapter_config.json", adir);
    CHECK_OK(bl_json_load(path, &gj));
    snprintf(path, sizeof path, "%s/adapter_config.json", out);
    CHECK_OK(bl_json_load(path, &wj));
    const char *keys[] = {"rank_pattern", "alpha_pattern", "r", "lora_alpha"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        char *x = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(gj, keys[k]));
        char *y = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(wj, keys[k]));
        CHECK(x && y && !strcmp(x, y), "saved %s = %s (PEFT %s)", keys[k], y ? y : "?", x ? x : "?");
        free(x); free(y);
    }
    cJSON_Delete(gj); cJSON_Delete(wj);
    float *got = malloc((size_t)nw * sizeof(float)), *lora = malloc((size_t)nw * sizeof(float));
    int64_t n;
    forward_logits(&m, &b, lora, &n);
    bl_lora_free(&ad);
    bl_adapter ad2;
    CHECK_OK(bl_lora_load(&ad2, &m.mods, out, false));
    check_ranks(&ad2, "reloaded");
    forward_logits(&m, &b, got, &n);
    CHECK(t_allclose("reloaded = loaded", got, lora, n, 0, 0) == 0, "round trip exact");
    bl_lora_free(&ad2);

    /* 3. generated keys: the same ranks from bl_lora_init + patterns, saved after the config's
     * patterns are dropped (as a hand-built adapter would be) */
    bl_lora_config lc;
    bl_lora_config_default(&lc);
    lc.r = 4; lc.alpha = 8;
    CHECK_OK(bl_lora_config_set_targets(&lc, "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"));
    CHECK_OK(bl_lora_config_set_patterns(&lc, "v_proj=2,layers.1.mlp.up_proj=6", "o_proj=3"));
    bl_adapter ad3;
    CHECK_OK(bl_lora_init(&ad3, &m.mods, &lc, 5));
    check_ranks(&ad3, "bl_lora_init with patterns");
    memset(&ad3.cfg.patterns, 0, sizeof ad3.cfg.patterns);
    snprintf(out, sizeof out, "%s/generated", t_tmpdir());
    CHECK_OK(bl_lora_save(&ad3, out, 0, NULL, NULL));
    bl_lora_free(&ad3);
    bl_peft_config pc;
    CHECK_OK(bl_peft_config_load(&pc, out));
    CHECK(pc.patterns.n_rank == 2 && pc.patterns.n_alpha == 1, "generated %d rank and %d alpha keys, want 2 and 1",
          pc.patterns.n_rank, pc.patterns.n_alpha);
    bl_peft_config_free(&pc);
    CHECK_OK(bl_lora_load(&ad3, &m.mods, out, false));
    check_ranks(&ad3, "generated keys reloaded");
    bl_lora_free(&ad3);

    /* 4. the in-memory merge: the base model with W += s B A gives the adapter's logits */
    CHECK_OK(bl_lora_load(&ad2, &m.mods, adir, false));
    CHECK_OK(bl_lora_merge_into_base(&ad2));
    bl_lora_free(&ad2);
    forward_logits(&m, &b, got, &n);
    CHECK(t_allclose("merged base = logits_lora", got, want, n, T_GOLDEN_ATOL, T_GOLDEN_RTOL) == 0, "merge");
    double md = 0;
    for (int64_t i = 0; i < n; i++) md = fmax(md, fabs(got[i] - wbase[i]));
    CHECK(md > 1e-3, "merge changed W (max |merged - base| %.2e)", md);

    free(got); free(lora); free(dl); free(want); free(wl); free(wbase); free(ids); free(mask); free(labels);
    bl_st_close(&io);
    bl_model_free(&m);
    return t_finish();
}
