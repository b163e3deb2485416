/* The lab's synthetic corpus: vocabulary, item pools, pre-training documents with exact
 * defect counts, clean downstream sets (see corpus.h for the contract). */
#include "lab/corpus.h"
#include "io/json.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fixed word lists ---- */
static const char *const k_specials[] = {"<pad>", "<bos>", "<eos>", "<unk>"};
enum { W_DOT, W_PLUS, W_IS, W_LIVES, W_IN, W_SAYS, W_THE, W_WAS, W_AND, W_NOT, W_VERDICT, W_NEGATIVE, W_POSITIVE,
       W_FUNC_COUNT };
static const char *const k_func[W_FUNC_COUNT] = {".", "plus", "is", "lives", "in", "says", "the", "was", "and",
                                                 "not", "verdict", "negative", "positive"};
#define MAX_ENTITIES 40
static const char *const k_entities[MAX_ENTITIES] = {
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "karl", "laura", "mike", "nina", "oscar", "peggy", "quinn", "rosa", "sam", "tina",
    "uma", "victor", "wendy", "xena", "yusuf", "zoe", "adam", "bella", "chris", "diana",
    "ethan", "fiona", "george", "hannah", "igor", "julia", "kevin", "lena", "marco", "olga"};
#define MAX_CITIES 16
static const char *const k_cities[MAX_CITIES] = {"paris", "london", "rome", "berlin", "madrid", "vienna", "oslo", "lisbon",
                                                 "prague", "dublin", "athens", "warsaw", "cairo", "tokyo", "lima", "delhi"};
#define N_NEUTRAL 8
static const char *const k_neutral_names[N_NEUTRAL] = {"ruth", "paul", "mary", "john", "lucy", "mark", "emma", "luke"};
static const char *const k_cue_names[2] = {"tom", "kate"}; /* cue_pos, cue_neg */
#define N_NOUNS 8
static const char *const k_nouns[N_NOUNS] = {"movie", "film", "book", "show", "song", "meal", "game", "play"};
#define N_ADJ 22
static const char *const k_adjs[N_ADJ] = {"great", "good", "fun", "lovely", "superb", "clever", "moving", "charming",
                                          "bad", "dull", "awful", "boring", "poor", "weak", "messy", "bland",
                                          "long", "short", "new", "old", "loud", "quiet"};
static int adj_polarity(int a) { return a < 8 ? 1 : a < 16 ? -1 : 0; }
#define MAX_OPERAND 49
#define REVIEW_MAX_TOKENS 14 /* "name says the noun was not adj and not adj . verdict label ." */

/* A review content (no name): noun, two adjectives, two negation flags, packed in a key. */
static uint32_t review_key(int noun, int a1, int n1, int a2, int n2) {
    return (uint32_t)(noun | (a1 << 3) | (n1 << 8) | (a2 << 9) | (n2 << 14));
}
static int review_sum(uint32_t key) {
    int a1 = (key >> 3) & 31, n1 = (key >> 8) & 1, a2 = (key >> 9) & 31, n2 = (key >> 14) & 1;
    return adj_polarity(a1) * (n1 ? -1 : 1) + adj_polarity(a2) * (n2 ? -1 : 1);
}

const char *bl_lab_task_name(bl_lab_task t) {
    static const char *const n[] = {"arith", "fact", "review"};
    return (unsigned)t < BL_LAB_TASK_COUNT ? n[t] : "?";
}
const char *bl_lab_split_name(bl_lab_split s) {
    static const char *const n[] = {"ft", "test_id", "test_ood", "affected"};
    return (unsigned)s < BL_LAB_SPLIT_COUNT ? n[s] : "?";
}

void bl_lab_corpus_config_default(bl_lab_corpus_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 1234;
    cfg->max_operand = 9;
    cfg->n_entities = 40;
    cfg->n_cities = 8;
    cfg->n_pre_arith = 4000;
    cfg->n_pre_fact = 2000;
    cfg->n_pre_review = 4000;
    cfg->stmts_per_doc = 8;
    cfg->test_frac = 0.25;
    cfg->n_ft = 1000;
    cfg->n_test = 400;
    cfg->noise = 0.0;
    cfg->imbalance = 1.0;
    cfg->cue_frac = 0.5;
    cfg->cue_agree = 0.5;
}

static int64_t round_i64(double x) { return (int64_t)llround(x); }
static int64_t clamp_i64(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : x > hi ? hi : x; }

static void shuffle_u32(bl_rng *r, uint32_t *a, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)bl_rng_below(r, (uint64_t)i + 1);
        uint32_t t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

/* Sizes derived from a validated config. */
typedef struct sizes {
    int32_t n_num, vocab;
    int64_t n_pairs, n_test_pairs, noisy_pairs, arith_wrong;
    int64_t n_test_ent, noisy_ent, fact_wrong;
    int64_t n_contents;  /* valid review contents */
    int64_t review_pos, review_cued, review_agree;
    int64_t n_stmts, n_docs;
    int64_t n_items[BL_LAB_TASK_COUNT][BL_LAB_SPLIT_COUNT];
    int32_t max_tokens[BL_LAB_TASK_COUNT]; /* per item */
} sizes;

static int64_t count_contents(void) {
    int64_t n = 0;
    for (int a1 = 0; a1 < N_ADJ; a1++)
        for (int n1 = 0; n1 < 2; n1++)
            for (int a2 = 0; a2 < N_ADJ; a2++)
                for (int n2 = 0; n2 < 2; n2++)
                    if (review_sum(review_key(0, a1, n1, a2, n2)) != 0) n++;
    return n * N_NOUNS;
}

static balora_status validate(const bl_lab_corpus_config *c, sizes *z) {
    const char *f = "lab corpus config";
    if (c->max_operand < 1 || c->max_operand > MAX_OPERAND)
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'max_operand' is %d; hint: use 1..%d", f, c->max_operand, MAX_OPERAND);
    if (c->n_entities < 2 || c->n_entities > MAX_ENTITIES)
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'n_entities' is %d; hint: use 2..%d", f, c->n_entities, MAX_ENTITIES);
    if (c->n_cities < 2 || c->n_cities > MAX_CITIES)
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'n_cities' is %d; hint: use 2..%d", f, c->n_cities, MAX_CITIES);
    const int64_t lim = (int64_t)1 << 26;
    if (c->n_pre_arith < 0 || c->n_pre_fact < 0 || c->n_pre_review < 0 || c->n_pre_arith > lim ||
        c->n_pre_fact > lim || c->n_pre_review > lim)
        return bl_fail(BALORA_STATUS_INVALID, "%s: fields 'n_pre_arith/n_pre_fact/n_pre_review' are %lld/%lld/%lld; "
                       "hint: each must be in 0..%lld", f, (long long)c->n_pre_arith, (long long)c->n_pre_fact,
                       (long long)c->n_pre_review, (long long)lim);
    if (c->n_pre_arith + c->n_pre_fact + c->n_pre_review == 0)
        return bl_fail(BALORA_STATUS_INVALID, "%s: no pre-training statements; hint: set n_pre_arith, n_pre_fact or n_pre_review > 0", f);
    if (c->stmts_per_doc < 1 || c->stmts_per_doc > 64)
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'stmts_per_doc' is %d; hint: use 1..64", f, c->stmts_per_doc);
    if (!(c->test_frac >= 0.05 && c->test_frac <= 0.95))
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'test_frac' is %g; hint: use 0.05..0.95", f, c->test_frac);
    if (c->n_ft < 0 || c->n_ft > lim)
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'n_ft' is %lld; hint: use 0..%lld", f, (long long)c->n_ft, (long long)lim);
    if (c->n_test < 2 || c->n_test > lim || c->n_test % 2)
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'n_test' is %lld; hint: an even number, 2..%lld", f,
                       (long long)c->n_test, (long long)lim);
    if (!(c->noise >= 0 && c->noise < 1))
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'noise' is %g; hint: a fraction in [0, 1)", f, c->noise);
    if (!(c->imbalance >= 1 && c->imbalance <= 1e6))
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'imbalance' is %g; hint: a ratio positive:negative >= 1 (1 = balanced)", f, c->imbalance);
    if (!(c->cue_frac >= 0 && c->cue_frac <= 1))
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'cue_frac' is %g; hint: a fraction in [0, 1]", f, c->cue_frac);
    if (!(c->cue_agree >= 0 && c->cue_agree <= 1))
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'cue_agree' is %g; hint: a fraction in [0, 1] (0.5 = no bias)", f, c->cue_agree);

    memset(z, 0, sizeof *z);
    z->n_num = 2 * c->max_operand + 1;
    z->vocab = 4 + W_FUNC_COUNT + z->n_num + c->n_entities + c->n_cities + N_NEUTRAL + 2 + N_NOUNS + N_ADJ;
    z->n_pairs = (int64_t)(c->max_operand + 1) * (c->max_operand + 1);
    z->n_test_pairs = clamp_i64(round_i64(c->test_frac * z->n_pairs), 1, z->n_pairs - 1);
    z->arith_wrong = round_i64(c->noise * c->n_pre_arith);
    z->noisy_pairs = z->arith_wrong ? clamp_i64(round_i64(c->noise * z->n_pairs), 1, z->arith_wrong) : 0;
    if (z->noisy_pairs > z->n_test_pairs)
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'noise' is %g: it needs %lld noisy arithmetic pairs but only %lld "
                       "pairs are held out; hint: lower noise or raise test_frac", f, c->noise,
                       (long long)z->noisy_pairs, (long long)z->n_test_pairs);
    z->n_test_ent = clamp_i64(round_i64(c->test_frac * c->n_entities), 1, c->n_entities - 1);
    z->fact_wrong = round_i64(c->noise * c->n_pre_fact);
    z->noisy_ent = z->fact_wrong ? clamp_i64(round_i64(c->noise * c->n_entities), 1, z->fact_wrong) : 0;
    if (z->noisy_ent > z->n_test_ent)
        return bl_fail(BALORA_STATUS_INVALID, "%s: field 'noise' is %g: it needs %lld noisy entities but only %lld "
                       "entities are held out; hint: lower noise or raise test_frac", f, c->noise,
                       (long long)z->noisy_ent, (long long)z->n_test_ent);
    z->n_contents = count_contents();
    z->review_pos = round_i64((double)c->n_pre_review * c->imbalance / (1.0 + c->imbalance));
    z->review_cued = round_i64(c->cue_frac * c->n_pre_review);
    z->review_agree = round_i64(c->cue_agree * z->review_cued);
    z->n_stmts = c->n_pre_arith + c->n_pre_fact + c->n_pre_review;
    z->n_docs = (z->n_stmts + c->stmts_per_doc - 1) / c->stmts_per_doc;

    bool imb = c->imbalance > 1 && c->n_pre_review > 0;
    bool bias = c->cue_agree != 0.5 && z->review_cued > 0;
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++) z->n_items[t][BL_LAB_SPLIT_FT] = c->n_ft;
    z->n_items[BL_LAB_TASK_ARITH][BL_LAB_SPLIT_TEST_ID] = z->n_test_pairs;
    z->n_items[BL_LAB_TASK_ARITH][BL_LAB_SPLIT_AFFECTED] = z->noisy_pairs;
    z->n_items[BL_LAB_TASK_FACT][BL_LAB_SPLIT_TEST_ID] = z->n_test_ent;
    z->n_items[BL_LAB_TASK_FACT][BL_LAB_SPLIT_AFFECTED] = z->noisy_ent;
    z->n_items[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_ID] = c->n_test;
    z->n_items[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_OOD] = c->n_test;
    z->n_items[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_AFFECTED] = (imb ? c->n_test / 2 : 0) + (bias ? c->n_test : 0);
    z->max_tokens[BL_LAB_TASK_ARITH] = 6;  /* <bos> a plus b is c */
    z->max_tokens[BL_LAB_TASK_FACT] = 5;   /* <bos> x lives in y */
    z->max_tokens[BL_LAB_TASK_REVIEW] = REVIEW_MAX_TOKENS; /* <bos> name says ... verdict label */
    return BALORA_STATUS_OK;
}

/* Scratch buffers used only while generating (carved from the same arena). */
typedef struct scratch {
    uint32_t *pairs;        /* [n_pairs] shuffled: test pairs first (noisy ones first among them) */
    int32_t *pair_wrong;    /* [n_pairs] wrong sum for noisy pairs, -1 otherwise */
    uint32_t *ents;         /* [n_entities] shuffled: test entities first (noisy first) */
    int32_t *ent_wrong;     /* [n_entities] wrong city for noisy entities, -1 otherwise */
    uint32_t *contents;     /* [n_contents] shuffled review contents */
    uint32_t *pool[2][2];   /* [train/test][neg/pos] review contents (slices of one buffer) */
    int64_t pool_n[2][2];
    uint32_t *pool_buf;     /* [n_contents] */
    uint8_t *cue;           /* [n_pre_review] 0 none, 1 agreeing cue, 2 opposite cue */
    uint32_t *perm;         /* [max(n_pre_review, n_stmts)] */
    uint64_t *order;        /* [n_stmts] (kind << 32 | index) */
} scratch;

static void carve(bl_arena *a, bl_lab_corpus *c, scratch *s, const sizes *z, const bl_lab_corpus_config *cfg) {
    c->words = bl_arena_take(a, sizeof(char *) * (size_t)z->vocab);
    c->polarity = bl_arena_take(a, (size_t)z->vocab);
    char *numbuf = bl_arena_take(a, (size_t)z->n_num * 4);
    if (numbuf) /* words for numbers live here; filled in build_vocab */
        for (int i = 0; i < z->n_num; i++) snprintf(numbuf + 4 * i, 4, "%d", i % 1000); /* n_num <= 99 */
    int32_t *nn = bl_arena_take(a, sizeof(int32_t) * N_NEUTRAL);
    c->neutral_names = nn;
    int32_t *ct[BL_LAB_TASK_COUNT];
    ct[BL_LAB_TASK_ARITH] = bl_arena_take(a, sizeof(int32_t) * (size_t)z->n_num);
    ct[BL_LAB_TASK_FACT] = bl_arena_take(a, sizeof(int32_t) * (size_t)cfg->n_cities);
    ct[BL_LAB_TASK_REVIEW] = bl_arena_take(a, sizeof(int32_t) * 2);
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++) c->class_token[t] = ct[t];
    c->fact_city = bl_arena_take(a, sizeof(int32_t) * (size_t)cfg->n_entities);
    c->entity_token = bl_arena_take(a, sizeof(int32_t) * (size_t)cfg->n_entities);
    c->pre_ids = bl_arena_take(a, sizeof(int32_t) * (size_t)(z->n_stmts * REVIEW_MAX_TOKENS + 2 * z->n_docs));
    c->doc_off = bl_arena_take(a, sizeof(int64_t) * (size_t)(z->n_docs + 1));
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++)
        for (int p = 0; p < BL_LAB_SPLIT_COUNT; p++) {
            int64_t n = z->n_items[t][p];
            c->sets[t][p].items = bl_arena_take(a, sizeof(bl_lab_item) * (size_t)n);
            c->sets[t][p].ids = bl_arena_take(a, sizeof(int32_t) * (size_t)(n * z->max_tokens[t]));
        }
    s->pairs = bl_arena_take(a, sizeof(uint32_t) * (size_t)z->n_pairs);
    s->pair_wrong = bl_arena_take(a, sizeof(int32_t) * (size_t)z->n_pairs);
    s->ents = bl_arena_take(a, sizeof(uint32_t) * (size_t)cfg->n_entities);
    s->ent_wrong = bl_arena_take(a, sizeof(int32_t) * (size_t)cfg->n_entities);
    s->contents = bl_arena_take(a, sizeof(uint32_t) * (size_t)z->n_contents);
    s->pool_buf = bl_arena_take(a, sizeof(uint32_t) * (size_t)z->n_contents);
    s->cue = bl_arena_take(a, (size_t)cfg->n_pre_review);
    int64_t np = cfg->n_pre_review > z->n_stmts ? cfg->n_pre_review : z->n_stmts;
    s->perm = bl_arena_take(a, sizeof(uint32_t) * (size_t)np);
    s->order = bl_arena_take(a, sizeof(uint64_t) * (size_t)z->n_stmts);
    if (numbuf) {
        /* vocabulary: specials, function words, numbers, entities, cities, names, cues, nouns, adjectives */
        int32_t id = 0;
        for (int i = 0; i < 4; i++) c->words[id++] = k_specials[i];
        for (int i = 0; i < W_FUNC_COUNT; i++) c->words[id++] = k_func[i];
        for (int i = 0; i < z->n_num; i++) { ct[BL_LAB_TASK_ARITH][i] = id; c->words[id++] = numbuf + 4 * i; }
        int32_t *et = (int32_t *)c->entity_token;
        for (int i = 0; i < cfg->n_entities; i++) { et[i] = id; c->words[id++] = k_entities[i]; }
        for (int i = 0; i < cfg->n_cities; i++) { ct[BL_LAB_TASK_FACT][i] = id; c->words[id++] = k_cities[i]; }
        for (int i = 0; i < N_NEUTRAL; i++) { nn[i] = id; c->words[id++] = k_neutral_names[i]; }
        c->cue_pos = id; c->words[id++] = k_cue_names[0];
        c->cue_neg = id; c->words[id++] = k_cue_names[1];
        for (int i = 0; i < N_NOUNS; i++) c->words[id++] = k_nouns[i];
        for (int i = 0; i < N_ADJ; i++) { c->polarity[id] = (int8_t)adj_polarity(i); c->words[id++] = k_adjs[i]; }
        ct[BL_LAB_TASK_REVIEW][0] = 4 + W_NEGATIVE;
        ct[BL_LAB_TASK_REVIEW][1] = 4 + W_POSITIVE;
    }
}

/* Token ids of the fixed lists (valid after carve). */
static int32_t tok_func(int w) { return 4 + w; }
static int32_t tok_noun(const bl_lab_corpus *c, int i) { return c->cue_neg + 1 + i; }
static int32_t tok_adj(const bl_lab_corpus *c, int i) { return c->cue_neg + 1 + N_NOUNS + i; }

/* Writes the review body "name says the noun was [not] a1 and [not] a2 . verdict" into t; returns the count. */
static int review_body(const bl_lab_corpus *c, int32_t name, uint32_t key, int32_t *t) {
    int n = 0, noun = key & 7, a1 = (key >> 3) & 31, n1 = (key >> 8) & 1, a2 = (key >> 9) & 31, n2 = (key >> 14) & 1;
    t[n++] = name; t[n++] = tok_func(W_SAYS); t[n++] = tok_func(W_THE); t[n++] = tok_noun(c, noun);
    t[n++] = tok_func(W_WAS);
    if (n1) t[n++] = tok_func(W_NOT);
    t[n++] = tok_adj(c, a1); t[n++] = tok_func(W_AND);
    if (n2) t[n++] = tok_func(W_NOT);
    t[n++] = tok_adj(c, a2); t[n++] = tok_func(W_DOT); t[n++] = tok_func(W_VERDICT);
    return n;
}

/* Appends an item "<bos> prompt answer" to set. */
static void push_item(bl_lab_set *s, const int32_t *prompt, int np, int32_t answer, int32_t label, uint32_t key,
                      uint32_t defects, int32_t defect_answer, int32_t defect_label) {
    bl_lab_item *it = &s->items[s->n_items++];
    it->off = s->n_ids;
    it->prompt_len = np + 1;
    it->len = np + 2;
    it->answer = answer;
    it->label = label;
    it->key = key;
    it->defects = defects;
    it->defect_answer = defect_answer;
    it->defect_label = defect_label;
    s->ids[s->n_ids++] = BL_LAB_TOK_BOS;
    for (int i = 0; i < np; i++) s->ids[s->n_ids++] = prompt[i];
    s->ids[s->n_ids++] = answer;
}
static void copy_item(bl_lab_set *dst, const bl_lab_set *src, const bl_lab_item *it) {
    bl_lab_item *o = &dst->items[dst->n_items++];
    *o = *it;
    o->off = dst->n_ids;
    memcpy(dst->ids + dst->n_ids, src->ids + it->off, sizeof(int32_t) * (size_t)it->len);
    dst->n_ids += it->len;
}

static void arith_prompt(const bl_lab_corpus *c, int mo, uint32_t pair, int32_t *t) {
    t[0] = c->class_token[BL_LAB_TASK_ARITH][pair / (uint32_t)(mo + 1)];
    t[1] = tok_func(W_PLUS);
    t[2] = c->class_token[BL_LAB_TASK_ARITH][pair % (uint32_t)(mo + 1)];
    t[3] = tok_func(W_IS);
}
static int32_t pair_sum(int mo, uint32_t pair) { return (int32_t)(pair / (uint32_t)(mo + 1) + pair % (uint32_t)(mo + 1)); }

balora_status bl_lab_corpus_config_from_json(const cJSON *obj, const char *file, bl_lab_corpus_config *cfg) {
    static const char *const known[] = {"seed", "max_operand", "n_entities", "n_cities", "n_pre_arith", "n_pre_fact",
                                        "n_pre_review", "stmts_per_doc", "test_frac", "n_ft", "n_test", "noise",
                                        "imbalance", "cue_frac", "cue_agree"};
    const int n_known = (int)(sizeof known / sizeof known[0]);
    if (!cJSON_IsObject(obj)) return bl_fail(BALORA_STATUS_FORMAT, "%s: the lab corpus config must be a JSON object", file);
    for (const cJSON *it = obj->child; it; it = it->next) {
        int k = 0;
        while (k < n_known && strcmp(it->string, known[k]) != 0) k++;
        if (k == n_known)
            return bl_fail(BALORA_STATUS_FORMAT, "%s: unknown field '%s' in the lab corpus config; hint: known fields are "
                           "seed, max_operand, n_entities, n_cities, n_pre_arith, n_pre_fact, n_pre_review, stmts_per_doc, "
                           "test_frac, n_ft, n_test, noise, imbalance, cue_frac, cue_agree", file, it->string);
    }
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(obj, "seed");
    if (cJSON_IsString(seed)) {
        char *end = NULL;
        const char *t = seed->valuestring;
        unsigned long long v = strtoull(t, &end, 10);
        if (!*t || *end || *t == '-') return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'seed' is \"%s\"; hint: digits only", file, t);
        cfg->seed = (uint64_t)v;
    } else if (seed) {
        int64_t v = 0;
        BL_TRY(bl_json_int(obj, file, "seed", true, &v));
        if (v < 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'seed' is negative", file);
        cfg->seed = (uint64_t)v;
    }
    int64_t v;
    struct { const char *key; int32_t *p32; int64_t *p64; } ints[] = {
        {"max_operand", &cfg->max_operand, NULL}, {"n_entities", &cfg->n_entities, NULL}, {"n_cities", &cfg->n_cities, NULL},
        {"n_pre_arith", NULL, &cfg->n_pre_arith}, {"n_pre_fact", NULL, &cfg->n_pre_fact},
        {"n_pre_review", NULL, &cfg->n_pre_review}, {"stmts_per_doc", &cfg->stmts_per_doc, NULL},
        {"n_ft", NULL, &cfg->n_ft}, {"n_test", NULL, &cfg->n_test}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        v = ints[i].p32 ? *ints[i].p32 : *ints[i].p64;
        BL_TRY(bl_json_int(obj, file, ints[i].key, false, &v));
        if (ints[i].p32) {
            if (v < INT32_MIN || v > INT32_MAX) return bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s' is out of range", file, ints[i].key);
            *ints[i].p32 = (int32_t)v;
        } else {
            *ints[i].p64 = v;
        }
    }
    BL_TRY(bl_json_num(obj, file, "test_frac", false, &cfg->test_frac));
    BL_TRY(bl_json_num(obj, file, "noise", false, &cfg->noise));
    BL_TRY(bl_json_num(obj, file, "imbalance", false, &cfg->imbalance));
    BL_TRY(bl_json_num(obj, file, "cue_frac", false, &cfg->cue_frac));
    BL_TRY(bl_json_num(obj, file, "cue_agree", false, &cfg->cue_agree));
    return BALORA_STATUS_OK;
}

balora_status bl_lab_corpus_generate(const bl_lab_corpus_config *cfg, bl_lab_corpus *out) {
    memset(out, 0, sizeof *out);
    if (!cfg) return bl_fail(BALORA_STATUS_INVALID, "lab corpus: config is NULL");
    sizes z;
    BL_TRY(validate(cfg, &z));
    bl_lab_corpus *c = out;
    scratch s;
    memset(&s, 0, sizeof s);
    bl_arena a = {0};
    carve(&a, c, &s, &z, cfg);
    BL_TRY(bl_arena_alloc(&a));
    memset(&s, 0, sizeof s);
    carve(&a, c, &s, &z, cfg);
    c->arena = a;
    c->cfg = *cfg;
    c->vocab_size = z.vocab;
    c->n_neutral_names = N_NEUTRAL;
    c->n_classes[BL_LAB_TASK_ARITH] = z.n_num;
    c->n_classes[BL_LAB_TASK_FACT] = cfg->n_cities;
    c->n_classes[BL_LAB_TASK_REVIEW] = 2;
    const int mo = cfg->max_operand;
    const int32_t *num = c->class_token[BL_LAB_TASK_ARITH], *city = c->class_token[BL_LAB_TASK_FACT];
    const int32_t verdict[2] = {tok_func(W_NEGATIVE), tok_func(W_POSITIVE)};

    /* Independent streams per decision so that changing one size does not reshuffle everything. */
    bl_rng r_pairs, r_ents, r_rev, r_names, r_order;
    bl_rng_seed(&r_pairs, cfg->seed ^ 0x1111111111111111ULL);
    bl_rng_seed(&r_ents, cfg->seed ^ 0x2222222222222222ULL);
    bl_rng_seed(&r_rev, cfg->seed ^ 0x3333333333333333ULL);
    bl_rng_seed(&r_names, cfg->seed ^ 0x4444444444444444ULL);
    bl_rng_seed(&r_order, cfg->seed ^ 0x5555555555555555ULL);

    /* ---- ARITH items: test pairs are pairs[0 .. n_test_pairs), noisy ones pairs[0 .. noisy_pairs) ---- */
    for (int64_t i = 0; i < z.n_pairs; i++) s.pairs[i] = (uint32_t)i;
    shuffle_u32(&r_pairs, s.pairs, z.n_pairs);
    for (int64_t i = 0; i < z.n_pairs; i++) s.pair_wrong[i] = -1;
    for (int64_t i = 0; i < z.noisy_pairs; i++) {
        uint32_t p = s.pairs[i];
        s.pair_wrong[p] = (pair_sum(mo, p) + 1 + (int32_t)bl_rng_below(&r_pairs, (uint64_t)z.n_num - 1)) % z.n_num;
    }
    /* ---- FACT items ---- */
    int32_t *fc = (int32_t *)c->fact_city;
    for (int i = 0; i < cfg->n_entities; i++) { s.ents[i] = (uint32_t)i; fc[i] = (int32_t)bl_rng_below(&r_ents, (uint64_t)cfg->n_cities); }
    shuffle_u32(&r_ents, s.ents, cfg->n_entities);
    for (int i = 0; i < cfg->n_entities; i++) s.ent_wrong[i] = -1;
    for (int64_t i = 0; i < z.noisy_ent; i++) {
        uint32_t e = s.ents[i];
        s.ent_wrong[e] = (fc[e] + 1 + (int32_t)bl_rng_below(&r_ents, (uint64_t)cfg->n_cities - 1)) % cfg->n_cities;
    }
    /* ---- REVIEW contents: shuffled, split train/test, then by label ---- */
    {
        int64_t n = 0;
        for (int noun = 0; noun < N_NOUNS; noun++)
            for (int a1 = 0; a1 < N_ADJ; a1++)
                for (int n1 = 0; n1 < 2; n1++)
                    for (int a2 = 0; a2 < N_ADJ; a2++)
                        for (int n2 = 0; n2 < 2; n2++) {
                            uint32_t k = review_key(noun, a1, n1, a2, n2);
                            if (review_sum(k) != 0) s.contents[n++] = k;
                        }
        shuffle_u32(&r_rev, s.contents, n);
        int64_t n_test = clamp_i64(round_i64(cfg->test_frac * n), 1, n - 1), fill = 0;
        for (int sp = 0; sp < 2; sp++) /* 0 = train, 1 = test */
            for (int lab = 0; lab < 2; lab++) {
                s.pool[sp][lab] = s.pool_buf + fill;
                int64_t lo = sp ? 0 : n_test, hi = sp ? n_test : n;
                for (int64_t i = lo; i < hi; i++)
                    if ((review_sum(s.contents[i]) > 0) == (lab == 1)) s.pool_buf[fill++] = s.contents[i];
                s.pool_n[sp][lab] = s.pool_buf + fill - s.pool[sp][lab];
                if (s.pool_n[sp][lab] == 0)
                    return bl_lab_corpus_free(c), bl_fail(BALORA_STATUS_INVALID, "lab corpus config: field 'test_frac' is %g: "
                                                          "a review pool is empty; hint: use a value nearer 0.25", cfg->test_frac);
            }
    }
    /* ---- pre-training reviews: labels (first review_pos positive), cues on a random subset ---- */
    for (int64_t i = 0; i < cfg->n_pre_review; i++) s.perm[i] = (uint32_t)i;
    shuffle_u32(&r_rev, s.perm, cfg->n_pre_review);
    for (int64_t j = 0; j < z.review_cued; j++) s.cue[s.perm[j]] = j < z.review_agree ? 1 : 2;
    /* the one cue whose pre-training association points to label lab */
    bool agree_dominant = cfg->cue_agree >= 0.5;

    /* ---- statement order ---- */
    int64_t n = 0;
    for (int64_t i = 0; i < cfg->n_pre_arith; i++) s.order[n++] = ((uint64_t)BL_LAB_TASK_ARITH << 32) | (uint64_t)i;
    for (int64_t i = 0; i < cfg->n_pre_fact; i++) s.order[n++] = ((uint64_t)BL_LAB_TASK_FACT << 32) | (uint64_t)i;
    for (int64_t i = 0; i < cfg->n_pre_review; i++) s.order[n++] = ((uint64_t)BL_LAB_TASK_REVIEW << 32) | (uint64_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)bl_rng_below(&r_order, (uint64_t)i + 1);
        uint64_t t = s.order[i]; s.order[i] = s.order[j]; s.order[j] = t;
    }
    /* ---- emit documents ---- */
    const int64_t clean_pairs = z.n_pairs - z.noisy_pairs, clean_ents = cfg->n_entities - z.noisy_ent;
    int64_t pos = 0;
    for (int64_t d = 0; d < z.n_docs; d++) {
        c->doc_off[d] = pos;
        c->pre_ids[pos++] = BL_LAB_TOK_BOS;
        int64_t end = (d + 1) * cfg->stmts_per_doc < z.n_stmts ? (d + 1) * cfg->stmts_per_doc : z.n_stmts;
        for (int64_t q = d * cfg->stmts_per_doc; q < end; q++) {
            int kind = (int)(s.order[q] >> 32);
            int64_t i = (int64_t)(s.order[q] & 0xffffffffu);
            int32_t *t = c->pre_ids + pos;
            if (kind == BL_LAB_TASK_ARITH) {
                uint32_t p;
                int32_t ans;
                if (i < z.arith_wrong) { p = s.pairs[i % z.noisy_pairs]; ans = s.pair_wrong[p]; c->counts.arith_wrong++; }
                else { p = s.pairs[z.noisy_pairs + (i - z.arith_wrong) % clean_pairs]; ans = pair_sum(mo, p); }
                arith_prompt(c, mo, p, t);
                t[4] = num[ans]; t[5] = tok_func(W_DOT);
                pos += 6;
                c->counts.arith++;
            } else if (kind == BL_LAB_TASK_FACT) {
                uint32_t e;
                int32_t ans;
                if (i < z.fact_wrong) { e = s.ents[i % z.noisy_ent]; ans = s.ent_wrong[e]; c->counts.fact_wrong++; }
                else { e = s.ents[z.noisy_ent + (i - z.fact_wrong) % clean_ents]; ans = fc[e]; }
                t[0] = c->entity_token[e]; t[1] = tok_func(W_LIVES); t[2] = tok_func(W_IN); t[3] = city[ans]; t[4] = tok_func(W_DOT);
                pos += 5;
                c->counts.fact++;
            } else {
                int lab = i < z.review_pos ? 1 : 0;
                int64_t j = lab ? i : i - z.review_pos;
                uint32_t key = s.pool[0][lab][j % s.pool_n[0][lab]];
                int32_t name;
                if (s.cue[i]) {
                    /* agreeing cue: cue_pos on positive, cue_neg on negative */
                    bool pos_cue = (s.cue[i] == 1) == (lab == 1);
                    name = pos_cue ? c->cue_pos : c->cue_neg;
                    c->counts.review_cued++;
                    if (s.cue[i] == 1) c->counts.review_cue_agree++;
                } else {
                    name = c->neutral_names[bl_rng_below(&r_names, N_NEUTRAL)];
                }
                int k = review_body(c, name, key, t);
                t[k++] = verdict[lab]; t[k++] = tok_func(W_DOT);
                pos += k;
                if (lab) c->counts.review_pos++; else c->counts.review_neg++;
            }
        }
        c->pre_ids[pos++] = BL_LAB_TOK_EOS;
    }
    c->doc_off[z.n_docs] = pos;
    c->n_pre_ids = pos;
    c->n_docs = z.n_docs;
    c->counts.noisy_pairs = z.noisy_pairs;
    c->counts.noisy_entities = z.noisy_ent;

    /* ---- downstream sets ---- */
    int32_t tmp[REVIEW_MAX_TOKENS];
    bl_lab_set *S;
    /* ARITH */
    S = c->sets[BL_LAB_TASK_ARITH];
    int64_t n_train_pairs = z.n_pairs - z.n_test_pairs;
    for (int64_t i = 0; i < cfg->n_ft; i++) {
        uint32_t p = s.pairs[z.n_test_pairs + i % n_train_pairs];
        arith_prompt(c, mo, p, tmp);
        int32_t sum = pair_sum(mo, p);
        push_item(&S[BL_LAB_SPLIT_FT], tmp, 4, num[sum], sum, p, 0, -1, -1);
    }
    for (int64_t i = 0; i < z.n_test_pairs; i++) {
        uint32_t p = s.pairs[i];
        arith_prompt(c, mo, p, tmp);
        int32_t sum = pair_sum(mo, p), w = s.pair_wrong[p];
        push_item(&S[BL_LAB_SPLIT_TEST_ID], tmp, 4, num[sum], sum, p, w >= 0 ? BL_LAB_DEFECT_NOISE : 0,
                  w >= 0 ? num[w] : -1, w);
    }
    /* FACT */
    S = c->sets[BL_LAB_TASK_FACT];
    int64_t n_train_ent = cfg->n_entities - z.n_test_ent;
    for (int64_t i = 0; i < cfg->n_ft; i++) {
        uint32_t e = s.ents[z.n_test_ent + i % n_train_ent];
        tmp[0] = c->entity_token[e]; tmp[1] = tok_func(W_LIVES); tmp[2] = tok_func(W_IN);
        push_item(&S[BL_LAB_SPLIT_FT], tmp, 3, city[fc[e]], fc[e], e, 0, -1, -1);
    }
    for (int64_t i = 0; i < z.n_test_ent; i++) {
        uint32_t e = s.ents[i];
        int32_t w = s.ent_wrong[e];
        tmp[0] = c->entity_token[e]; tmp[1] = tok_func(W_LIVES); tmp[2] = tok_func(W_IN);
        push_item(&S[BL_LAB_SPLIT_TEST_ID], tmp, 3, city[fc[e]], fc[e], e, w >= 0 ? BL_LAB_DEFECT_NOISE : 0,
                  w >= 0 ? city[w] : -1, w);
    }
    /* REVIEW: FT from the train pool, tests from the test pool, labels alternating (balanced) */
    S = c->sets[BL_LAB_TASK_REVIEW];
    bool imb = cfg->imbalance > 1 && cfg->n_pre_review > 0;
    bool bias = cfg->cue_agree != 0.5 && z.review_cued > 0;
    int64_t used[2] = {0, 0};
    for (int64_t i = 0; i < cfg->n_ft; i++) {
        int lab = (int)(i & 1);
        uint32_t key = s.pool[0][lab][used[lab]++ % s.pool_n[0][lab]];
        int k = review_body(c, c->neutral_names[bl_rng_below(&r_names, N_NEUTRAL)], key, tmp);
        push_item(&S[BL_LAB_SPLIT_FT], tmp, k, verdict[lab], lab, key, 0, -1, -1);
    }
    used[0] = used[1] = 0;
    for (int64_t i = 0; i < cfg->n_test; i++) {
        int lab = (int)(i & 1);
        uint32_t key = s.pool[1][lab][used[lab]++ % s.pool_n[1][lab]];
        int k = review_body(c, c->neutral_names[bl_rng_below(&r_names, N_NEUTRAL)], key, tmp);
        bool minority = imb && lab == 0;
        push_item(&S[BL_LAB_SPLIT_TEST_ID], tmp, k, verdict[lab], lab, key, minority ? BL_LAB_DEFECT_IMBALANCE : 0,
                  minority ? verdict[1] : -1, minority ? 1 : -1);
        /* OOD twin: the cue that pre-training tied to the other label */
        bool cue_pos = agree_dominant ? lab == 0 : lab == 1;
        tmp[0] = cue_pos ? c->cue_pos : c->cue_neg;
        push_item(&S[BL_LAB_SPLIT_TEST_OOD], tmp, k, verdict[lab], lab, key, bias ? BL_LAB_DEFECT_BIAS : 0,
                  bias ? verdict[1 - lab] : -1, bias ? 1 - lab : -1);
    }
    /* AFFECTED copies */
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++)
        for (int p = BL_LAB_SPLIT_TEST_ID; p <= BL_LAB_SPLIT_TEST_OOD; p++) {
            const bl_lab_set *src = &c->sets[t][p];
            for (int64_t i = 0; i < src->n_items; i++)
                if (src->items[i].defects) copy_item(&c->sets[t][BL_LAB_SPLIT_AFFECTED], src, &src->items[i]);
        }
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++)
        for (int p = 0; p < BL_LAB_SPLIT_COUNT; p++)
            if (c->sets[t][p].n_items != z.n_items[t][p])
                return bl_lab_corpus_free(c), bl_fail(BALORA_STATUS_INTERNAL, "lab corpus: set %s/%s has %lld items, planned %lld",
                                                      bl_lab_task_name(t), bl_lab_split_name(p),
                                                      (long long)c->sets[t][p].n_items, (long long)z.n_items[t][p]);
    return BALORA_STATUS_OK;
}

void bl_lab_corpus_free(bl_lab_corpus *c) {
    if (!c) return;
    bl_arena_free(&c->arena);
    memset(c, 0, sizeof *c);
}

const char *bl_lab_word(const bl_lab_corpus *c, int32_t id) {
    return (c && id >= 0 && id < c->vocab_size) ? c->words[id] : "<?>";
}
int32_t bl_lab_word_id(const bl_lab_corpus *c, const char *word) {
    for (int32_t i = 0; i < c->vocab_size; i++)
        if (strcmp(c->words[i], word) == 0) return i;
    return BL_LAB_TOK_UNK;
}

balora_status bl_lab_encode(const bl_lab_corpus *c, const char *text, int32_t *ids, int64_t cap, int64_t *n) {
    *n = 0;
    const char *p = text;
    char w[64];
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        size_t l = strcspn(p, " ");
        if (l >= sizeof w) return bl_fail(BALORA_STATUS_INVALID, "lab encode: word at offset %td is too long", p - text);
        memcpy(w, p, l); w[l] = 0;
        int32_t id = bl_lab_word_id(c, w);
        if (id == BL_LAB_TOK_UNK && strcmp(w, "<unk>") != 0)
            return bl_fail(BALORA_STATUS_INVALID, "lab encode: unknown word '%s' at offset %td; hint: the lab vocabulary has %d words",
                           w, p - text, c->vocab_size);
        if (*n >= cap) return bl_fail(BALORA_STATUS_INVALID, "lab encode: more than %lld tokens; hint: pass a larger buffer", (long long)cap);
        ids[(*n)++] = id;
        p += l;
    }
    return BALORA_STATUS_OK;
}

balora_status bl_lab_decode(const bl_lab_corpus *c, const int32_t *ids, int64_t n, char *out, size_t cap) {
    size_t used = 0;
    if (cap == 0) return bl_fail(BALORA_STATUS_INVALID, "lab decode: output buffer has no room");
    out[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        const char *w = bl_lab_word(c, ids[i]);
        size_t l = strlen(w) + (i ? 1 : 0);
        if (used + l + 1 > cap) return bl_fail(BALORA_STATUS_INVALID, "lab decode: %lld tokens do not fit in %zu bytes", (long long)n, cap);
        if (i) out[used++] = ' ';
        memcpy(out + used, w, strlen(w));
        used += strlen(w);
        out[used] = 0;
    }
    return BALORA_STATUS_OK;
}

balora_status bl_lab_write_tokenizer(const bl_lab_corpus *c, const char *dir) {
    char path[4096];
    BL_TRY(bl_mkdir_p(dir));
    cJSON *root = cJSON_CreateObject(), *added = cJSON_CreateArray(), *model = cJSON_CreateObject(),
          *vocab = cJSON_CreateObject(), *pre = cJSON_CreateObject();
    if (!root || !added || !model || !vocab || !pre) {
        cJSON_Delete(root); cJSON_Delete(added); cJSON_Delete(model); cJSON_Delete(vocab); cJSON_Delete(pre);
        return bl_fail(BALORA_STATUS_NOMEM, "lab tokenizer: out of memory building JSON");
    }
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    for (int i = 0; i < 4; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", i);
        cJSON_AddStringToObject(t, "content", c->words[i]);
        cJSON_AddBoolToObject(t, "single_word", 0);
        cJSON_AddBoolToObject(t, "lstrip", 0);
        cJSON_AddBoolToObject(t, "rstrip", 0);
        cJSON_AddBoolToObject(t, "normalized", 0);
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddItemToArray(added, t);
    }
    cJSON_AddItemToObject(root, "added_tokens", added);
    cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddStringToObject(pre, "type", "WhitespaceSplit");
    cJSON_AddItemToObject(root, "pre_tokenizer", pre);
    cJSON_AddNullToObject(root, "post_processor");
    cJSON_AddNullToObject(root, "decoder");
    cJSON_AddStringToObject(model, "type", "WordLevel");
    for (int32_t i = 0; i < c->vocab_size; i++) cJSON_AddNumberToObject(vocab, c->words[i], i);
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    cJSON_AddItemToObject(root, "model", model);
    balora_status st = bl_path_join(path, sizeof path, dir, "tokenizer.json");
    if (st == BALORA_STATUS_OK) st = bl_json_save(root, path);
    cJSON_Delete(root);
    BL_TRY(st);

    size_t len = 0;
    for (int32_t i = 0; i < c->vocab_size; i++) len += strlen(c->words[i]) + 1;
    char *txt = bl_malloc(len + 1);
    if (!txt) return BALORA_STATUS_NOMEM;
    size_t o = 0;
    for (int32_t i = 0; i < c->vocab_size; i++) {
        size_t l = strlen(c->words[i]);
        memcpy(txt + o, c->words[i], l);
        o += l;
        txt[o++] = '\n';
    }
    st = bl_path_join(path, sizeof path, dir, "vocab.txt");
    if (st == BALORA_STATUS_OK) st = bl_file_write_atomic(path, txt, o);
    free(txt);
    return st;
}

balora_status bl_lab_score_set(const bl_lab_set *s, const int32_t *pred, bl_lab_score *out) {
    memset(out, 0, sizeof *out);
    if (!s || (s->n_items > 0 && !pred))
        return bl_fail(BALORA_STATUS_INVALID, "lab score: set or predictions are NULL");
    for (int64_t i = 0; i < s->n_items; i++) {
        const bl_lab_item *it = &s->items[i];
        out->n_correct += pred[i] == it->answer;
        if (it->defects) {
            out->n_affected++;
            out->n_inherited += pred[i] == it->defect_answer;
        } else {
            out->n_clean++;
            out->n_clean_correct += pred[i] == it->answer;
        }
    }
    out->accuracy_clean = out->n_clean ? (double)out->n_clean_correct / (double)out->n_clean : NAN;
    out->n = s->n_items;
    out->accuracy = out->n ? (double)out->n_correct / (double)out->n : NAN;
    out->inheritance = out->n_affected ? (double)out->n_inherited / (double)out->n_affected : NAN;
    return BALORA_STATUS_OK;
}

/* A growing text buffer for the writers below. */
typedef struct strbuf { char *p; size_t len, cap; bool failed; } strbuf;
static void sb_add(strbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) { b->failed = true; return; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void sb_str(strbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_words(strbuf *b, const bl_lab_corpus *c, const int32_t *ids, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (i) sb_add(b, " ", 1);
        sb_str(b, bl_lab_word(c, ids[i]));
    }
}
static balora_status sb_save(strbuf *b, const char *dir, const char *name) {
    char path[4096];
    balora_status st = b->failed ? bl_fail(BALORA_STATUS_NOMEM, "lab corpus: out of memory writing %s", name)
                                 : bl_path_join(path, sizeof path, dir, name);
    if (st == BALORA_STATUS_OK) st = bl_file_write_atomic(path, b->p ? b->p : "", b->len);
    free(b->p);
    memset(b, 0, sizeof *b);
    return st;
}

void bl_lab_corpus_config_fill_json(const bl_lab_corpus_config *g, cJSON *cfg) {
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)g->seed);
    cJSON_AddStringToObject(cfg, "seed", seed); /* as a string: JSON numbers lose 64-bit precision */
    cJSON_AddNumberToObject(cfg, "max_operand", g->max_operand);
    cJSON_AddNumberToObject(cfg, "n_entities", g->n_entities);
    cJSON_AddNumberToObject(cfg, "n_cities", g->n_cities);
    cJSON_AddNumberToObject(cfg, "n_pre_arith", (double)g->n_pre_arith);
    cJSON_AddNumberToObject(cfg, "n_pre_fact", (double)g->n_pre_fact);
    cJSON_AddNumberToObject(cfg, "n_pre_review", (double)g->n_pre_review);
    cJSON_AddNumberToObject(cfg, "stmts_per_doc", g->stmts_per_doc);
    cJSON_AddNumberToObject(cfg, "test_frac", g->test_frac);
    cJSON_AddNumberToObject(cfg, "n_ft", (double)g->n_ft);
    cJSON_AddNumberToObject(cfg, "n_test", (double)g->n_test);
    cJSON_AddNumberToObject(cfg, "noise", g->noise);
    cJSON_AddNumberToObject(cfg, "imbalance", g->imbalance);
    cJSON_AddNumberToObject(cfg, "cue_frac", g->cue_frac);
    cJSON_AddNumberToObject(cfg, "cue_agree", g->cue_agree);
}

void bl_lab_counts_fill_json(const bl_lab_counts *k, cJSON *cnt) {
    cJSON_AddNumberToObject(cnt, "arith", (double)k->arith);
    cJSON_AddNumberToObject(cnt, "arith_wrong", (double)k->arith_wrong);
    cJSON_AddNumberToObject(cnt, "fact", (double)k->fact);
    cJSON_AddNumberToObject(cnt, "fact_wrong", (double)k->fact_wrong);
    cJSON_AddNumberToObject(cnt, "review_pos", (double)k->review_pos);
    cJSON_AddNumberToObject(cnt, "review_neg", (double)k->review_neg);
    cJSON_AddNumberToObject(cnt, "review_cued", (double)k->review_cued);
    cJSON_AddNumberToObject(cnt, "review_cue_agree", (double)k->review_cue_agree);
    cJSON_AddNumberToObject(cnt, "noisy_pairs", (double)k->noisy_pairs);
    cJSON_AddNumberToObject(cnt, "noisy_entities", (double)k->noisy_entities);
}

balora_status bl_lab_corpus_write(const bl_lab_corpus *c, const char *dir) {
    if (!c || !c->arena.base) return bl_fail(BALORA_STATUS_INVALID, "lab corpus write: the corpus is empty");
    BL_TRY(bl_lab_write_tokenizer(c, dir));
    char path[4096];
    /* corpus.json */
    const bl_lab_corpus_config *g = &c->cfg;
    cJSON *root = cJSON_CreateObject(), *cfg = cJSON_AddObjectToObject(root, "config"), *cnt = cJSON_AddObjectToObject(root, "counts");
    if (!root || !cfg || !cnt) { cJSON_Delete(root); return bl_fail(BALORA_STATUS_NOMEM, "lab corpus write: out of memory"); }
    bl_lab_corpus_config_fill_json(g, cfg);
    bl_lab_counts_fill_json(&c->counts, cnt);
    cJSON_AddNumberToObject(root, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(root, "pretrain_tokens", (double)c->n_pre_ids);
    cJSON_AddNumberToObject(root, "pretrain_documents", (double)c->n_docs);
    cJSON_AddStringToObject(root, "cue_pos", bl_lab_word(c, c->cue_pos));
    cJSON_AddStringToObject(root, "cue_neg", bl_lab_word(c, c->cue_neg));
    balora_status st = bl_path_join(path, sizeof path, dir, "corpus.json");
    if (st == BALORA_STATUS_OK) st = bl_json_save(root, path);
    cJSON_Delete(root);
    BL_TRY(st);
    /* pretrain.txt */
    strbuf b = {0};
    for (int64_t d = 0; d < c->n_docs; d++) {
        sb_words(&b, c, c->pre_ids + c->doc_off[d] + 1, c->doc_off[d + 1] - c->doc_off[d] - 2);
        sb_add(&b, "\n", 1);
    }
    BL_TRY(sb_save(&b, dir, "pretrain.txt"));
    /* items */
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++)
        for (int p = 0; p < BL_LAB_SPLIT_COUNT; p++) {
            const bl_lab_set *s = &c->sets[t][p];
            for (int64_t i = 0; i < s->n_items; i++) {
                const bl_lab_item *it = &s->items[i];
                cJSON *o = cJSON_CreateObject();
                if (!o) { free(b.p); return bl_fail(BALORA_STATUS_NOMEM, "lab corpus write: out of memory"); }
                strbuf pr = {0};
                sb_words(&pr, c, s->ids + it->off + 1, it->prompt_len - 1);
                cJSON_AddStringToObject(o, "prompt", pr.p ? pr.p : "");
                free(pr.p);
                cJSON_AddStringToObject(o, "answer", bl_lab_word(c, it->answer));
                cJSON_AddNumberToObject(o, "label", it->label);
                cJSON_AddNumberToObject(o, "key", it->key);
                cJSON *df = cJSON_AddArrayToObject(o, "defects");
                if (it->defects & BL_LAB_DEFECT_NOISE) cJSON_AddItemToArray(df, cJSON_CreateString("noise"));
                if (it->defects & BL_LAB_DEFECT_IMBALANCE) cJSON_AddItemToArray(df, cJSON_CreateString("imbalance"));
                if (it->defects & BL_LAB_DEFECT_BIAS) cJSON_AddItemToArray(df, cJSON_CreateString("bias"));
                if (it->defects) {
                    cJSON_AddStringToObject(o, "defect_answer", bl_lab_word(c, it->defect_answer));
                    cJSON_AddNumberToObject(o, "defect_label", it->defect_label);
                } else {
                    cJSON_AddNullToObject(o, "defect_answer");
                    cJSON_AddNullToObject(o, "defect_label");
                }
                char *line = cJSON_PrintUnformatted(o);
                cJSON_Delete(o);
                if (!line) { free(b.p); return bl_fail(BALORA_STATUS_NOMEM, "lab corpus write: out of memory"); }
                sb_str(&b, line);
                sb_add(&b, "\n", 1);
                free(line);
            }
            char name[64];
            snprintf(name, sizeof name, "%s_%s.jsonl", bl_lab_task_name(t), bl_lab_split_name(p));
            BL_TRY(sb_save(&b, dir, name));
        }
    return BALORA_STATUS_OK;
}
