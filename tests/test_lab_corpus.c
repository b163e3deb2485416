/* The lab corpus: exact defect rates recounted from the tokens, cue reversed in OOD, no leakage
 * between fine-tuning and test items, item forms, determinism, tokenizer files, bad configs. */
#include "harness.h"
#include "lab/corpus.h"
#include "io/json.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_number_word(const char *w) {
    if (!*w) return 0;
    for (const char *p = w; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}
static int find_in(const int32_t *a, int n, int32_t x) {
    for (int i = 0; i < n; i++)
        if (a[i] == x) return i;
    return -1;
}

/* What the test recounts by parsing the pre-training tokens with only the word strings. */
typedef struct recount {
    int64_t arith, arith_wrong, fact, fact_wrong, pos, neg, cued, agree, bad_label;
    int32_t wrong_answer_of_pair[2500]; /* -1 none, else the (consistent) wrong sum; -2 inconsistent */
    int32_t stated_city[64];            /* -1 none; -2 inconsistent across statements */
} recount;

static int parse_pretraining(const bl_lab_corpus *c, recount *r) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 2500; i++) r->wrong_answer_of_pair[i] = -1;
    for (int i = 0; i < 64; i++) r->stated_city[i] = -1;
    int32_t dot = bl_lab_word_id(c, "."), plus = bl_lab_word_id(c, "plus"), is = bl_lab_word_id(c, "is");
    int32_t lives = bl_lab_word_id(c, "lives"), in = bl_lab_word_id(c, "in"), verdict = bl_lab_word_id(c, "verdict");
    int32_t notw = bl_lab_word_id(c, "not"), posw = bl_lab_word_id(c, "positive"), negw = bl_lab_word_id(c, "negative");
    int mo = c->cfg.max_operand;
    for (int64_t d = 0; d < c->n_docs; d++) {
        const int32_t *t = c->pre_ids + c->doc_off[d];
        int64_t n = c->doc_off[d + 1] - c->doc_off[d], i = 1;
        if (n < 3 || t[0] != BL_LAB_TOK_BOS || t[n - 1] != BL_LAB_TOK_EOS) return 0;
        while (i < n - 1) {
            const char *w0 = bl_lab_word(c, t[i]);
            if (is_number_word(w0)) {
                if (t[i + 1] != plus || t[i + 3] != is || t[i + 5] != dot) return 0;
                int a = atoi(w0), b = atoi(bl_lab_word(c, t[i + 2])), s = atoi(bl_lab_word(c, t[i + 4]));
                r->arith++;
                if (a + b != s) {
                    r->arith_wrong++;
                    int32_t *wa = &r->wrong_answer_of_pair[a * (mo + 1) + b];
                    if (*wa == -1) *wa = s; else if (*wa != s) *wa = -2;
                }
                i += 6;
            } else if (find_in(c->entity_token, c->cfg.n_entities, t[i]) >= 0) {
                int e = find_in(c->entity_token, c->cfg.n_entities, t[i]);
                if (t[i + 1] != lives || t[i + 2] != in || t[i + 4] != dot) return 0;
                int city = find_in(c->class_token[BL_LAB_TASK_FACT], c->n_classes[BL_LAB_TASK_FACT], t[i + 3]);
                if (city < 0) return 0;
                r->fact++;
                if (city != c->fact_city[e]) r->fact_wrong++;
                if (r->stated_city[e] == -1) r->stated_city[e] = city; else if (r->stated_city[e] != city) r->stated_city[e] = -2;
                i += 5;
            } else {
                int32_t name = t[i];
                int cue = name == c->cue_pos ? 1 : name == c->cue_neg ? -1 : 0;
                if (!cue && find_in(c->neutral_names, c->n_neutral_names, name) < 0) return 0;
                int64_t j = i + 5, sum = 0, sign = 1;
                for (; j < n && t[j] != dot; j++) {
                    if (t[j] == notw) sign = -1;
                    else if (c->polarity[t[j]]) { sum += sign * c->polarity[t[j]]; sign = 1; }
                    else if (strcmp(bl_lab_word(c, t[j]), "and") != 0) sign = 1;
                }
                if (j + 3 >= n || t[j + 1] != verdict || t[j + 3] != dot) return 0;
                int lab = t[j + 2] == posw ? 1 : t[j + 2] == negw ? 0 : -1;
                if (lab < 0) return 0;
                if ((sum > 0) != (lab == 1) || sum == 0) r->bad_label++;
                if (lab) r->pos++; else r->neg++;
                if (cue) { r->cued++; if ((cue == 1) == (lab == 1)) r->agree++; }
                i = j + 4;
            }
        }
    }
    return 1;
}

/* Items: causal form ends with the answer; classification form has the right label. */
static void check_items(const bl_lab_corpus *c, const char *what) {
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++)
        for (int p = 0; p < BL_LAB_SPLIT_COUNT; p++) {
            const bl_lab_set *s = &c->sets[t][p];
            int64_t bad = 0, end = 0;
            for (int64_t i = 0; i < s->n_items; i++) {
                const bl_lab_item *it = &s->items[i];
                if (it->off != end || it->len != it->prompt_len + 1 || s->ids[it->off] != BL_LAB_TOK_BOS ||
                    s->ids[it->off + it->prompt_len] != it->answer || it->label < 0 || it->label >= c->n_classes[t] ||
                    c->class_token[t][it->label] != it->answer ||
                    (it->defects ? (it->defect_answer == it->answer || c->class_token[t][it->defect_label] != it->defect_answer)
                                 : (it->defect_answer != -1)))
                    bad++;
                end = it->off + it->len;
            }
            CHECK(bad == 0 && end == s->n_ids, "%s: %s/%s has %lld malformed items", what, bl_lab_task_name(t),
                  bl_lab_split_name(p), (long long)bad);
        }
}

static void check_config(const bl_lab_corpus_config *cfg, const char *what) {
    bl_lab_corpus c;
    CHECK_OK(bl_lab_corpus_generate(cfg, &c));
    if (!c.arena.base) return;
    static recount r;
    CHECK(parse_pretraining(&c, &r), "%s: pre-training tokens do not parse", what);
    /* exact counts */
    CHECK(r.arith == cfg->n_pre_arith && r.fact == cfg->n_pre_fact && r.pos + r.neg == cfg->n_pre_review,
          "%s: statement counts %lld/%lld/%lld", what, (long long)r.arith, (long long)r.fact, (long long)(r.pos + r.neg));
    CHECK(r.arith_wrong == llround(cfg->noise * cfg->n_pre_arith), "%s: %lld wrong sums of %lld, want %lld", what,
          (long long)r.arith_wrong, (long long)r.arith, (long long)llround(cfg->noise * cfg->n_pre_arith));
    CHECK(r.fact_wrong == llround(cfg->noise * cfg->n_pre_fact), "%s: %lld wrong facts, want %lld", what,
          (long long)r.fact_wrong, (long long)llround(cfg->noise * cfg->n_pre_fact));
    int64_t want_pos = llround(cfg->n_pre_review * cfg->imbalance / (1 + cfg->imbalance));
    CHECK(r.pos == want_pos, "%s: %lld positive reviews, want %lld", what, (long long)r.pos, (long long)want_pos);
    if (r.neg) CHECK(fabs((double)r.pos / r.neg - cfg->imbalance) < 0.01 * cfg->imbalance + 2.0 / r.neg,
                     "%s: ratio %g, want %g", what, (double)r.pos / r.neg, cfg->imbalance);
    int64_t want_cued = llround(cfg->cue_frac * cfg->n_pre_review);
    CHECK(r.cued == want_cued, "%s: %lld cued reviews, want %lld", what, (long long)r.cued, (long long)want_cued);
    CHECK(r.agree == llround(cfg->cue_agree * want_cued), "%s: %lld agreeing cues, want %lld", what, (long long)r.agree,
          (long long)llround(cfg->cue_agree * want_cued));
    CHECK(r.bad_label == 0, "%s: %lld reviews whose verdict contradicts their words", what, (long long)r.bad_label);
    CHECK(c.counts.arith_wrong == r.arith_wrong && c.counts.review_cue_agree == r.agree && c.counts.review_pos == r.pos,
          "%s: reported counts differ from the recount", what);
    check_items(&c, what);

    /* the fact table agrees with the downstream answers */
    int64_t badf = 0;
    for (int p = BL_LAB_SPLIT_FT; p <= BL_LAB_SPLIT_TEST_ID; p++) {
        const bl_lab_set *fs = &c.sets[BL_LAB_TASK_FACT][p];
        for (int64_t i = 0; i < fs->n_items; i++)
            if (fs->items[i].label != c.fact_city[fs->items[i].key] ||
                fs->ids[fs->items[i].off + 1] != c.entity_token[fs->items[i].key]) badf++;
    }
    CHECK(badf == 0, "%s: %lld fact items disagree with the fact table", what, (long long)badf);
    /* noise: every pair/entity stated wrongly is an AFFECTED item with that wrong answer, and back */
    const bl_lab_set *aff = &c.sets[BL_LAB_TASK_ARITH][BL_LAB_SPLIT_AFFECTED];
    int64_t noisy_pairs = 0, mismatch = 0;
    int mo = cfg->max_operand;
    for (int p = 0; p < (mo + 1) * (mo + 1); p++) {
        int32_t w = r.wrong_answer_of_pair[p];
        if (w == -1) continue;
        noisy_pairs++;
        int64_t k = -1;
        for (int64_t i = 0; i < aff->n_items; i++)
            if ((int)aff->items[i].key == p) k = i;
        if (w < 0 || k < 0 || atoi(bl_lab_word(&c, aff->items[k].defect_answer)) != w) mismatch++;
    }
    CHECK(noisy_pairs == aff->n_items && mismatch == 0, "%s: %lld noisy pairs, %lld affected items, %lld mismatches", what,
          (long long)noisy_pairs, (long long)aff->n_items, (long long)mismatch);
    const bl_lab_set *afff = &c.sets[BL_LAB_TASK_FACT][BL_LAB_SPLIT_AFFECTED];
    int64_t noisy_ent = 0;
    mismatch = 0;
    for (int e = 0; e < cfg->n_entities; e++) {
        if (r.stated_city[e] == -2) mismatch++; /* a noisy entity is always stated with one city */
        if (r.stated_city[e] < 0 || r.stated_city[e] == c.fact_city[e]) continue;
        noisy_ent++;
        int64_t k = -1;
        for (int64_t i = 0; i < afff->n_items; i++)
            if ((int)afff->items[i].key == e) k = i;
        if (k < 0 || afff->items[k].defect_label != r.stated_city[e]) mismatch++;
    }
    CHECK(noisy_ent == afff->n_items && mismatch == 0, "%s: %lld noisy entities, %lld affected, %lld mismatches", what,
          (long long)noisy_ent, (long long)afff->n_items, (long long)mismatch);
    if (cfg->noise > 0 && cfg->n_pre_arith > 0) CHECK(aff->n_items > 0, "%s: noise but no affected arithmetic item", what);

    /* no leakage: no FT key in a test set; FT and test causal sequences never equal */
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++) {
        const bl_lab_set *ft = &c.sets[t][BL_LAB_SPLIT_FT];
        int64_t leaks = 0;
        for (int p = BL_LAB_SPLIT_TEST_ID; p <= BL_LAB_SPLIT_AFFECTED; p++) {
            const bl_lab_set *ts = &c.sets[t][p];
            for (int64_t i = 0; i < ts->n_items; i++)
                for (int64_t j = 0; j < ft->n_items; j++) {
                    const bl_lab_item *a = &ts->items[i], *b = &ft->items[j];
                    if (a->key == b->key) leaks++;
                    else if (a->len == b->len && !memcmp(ts->ids + a->off, ft->ids + b->off, sizeof(int32_t) * (size_t)a->len)) leaks++;
                }
        }
        CHECK(leaks == 0, "%s: %s: %lld test items share an item with fine-tuning", what, bl_lab_task_name(t), (long long)leaks);
    }
    /* REVIEW: FT and TEST_ID balanced with neutral names; OOD = ID twin with the reversed cue */
    const bl_lab_set *id = &c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_ID], *ood = &c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_OOD];
    const bl_lab_set *ft = &c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_FT];
    int64_t npos = 0, bad_name = 0, bad_ood = 0;
    for (int64_t i = 0; i < ft->n_items; i++) {
        npos += ft->items[i].label;
        if (find_in(c.neutral_names, c.n_neutral_names, ft->ids[ft->items[i].off + 1]) < 0) bad_name++;
    }
    CHECK(llabs(2 * npos - ft->n_items) <= 1, "%s: fine-tuning reviews not balanced: %lld of %lld positive", what,
          (long long)npos, (long long)ft->n_items);
    CHECK(id->n_items == cfg->n_test && ood->n_items == cfg->n_test, "%s: test sizes", what);
    npos = 0;
    for (int64_t i = 0; i < id->n_items; i++) {
        const bl_lab_item *a = &id->items[i], *b = &ood->items[i];
        npos += a->label;
        if (find_in(c.neutral_names, c.n_neutral_names, id->ids[a->off + 1]) < 0) bad_name++;
        int32_t cue = ood->ids[b->off + 1];
        /* pre-training tied cue_pos to positive when cue_agree >= 0.5: OOD puts it on negatives */
        int32_t want = (cfg->cue_agree >= 0.5) == (a->label == 0) ? c.cue_pos : c.cue_neg;
        if (cue != want || a->len != b->len || a->label != b->label || a->key != b->key ||
            memcmp(id->ids + a->off + 2, ood->ids + b->off + 2, sizeof(int32_t) * (size_t)(a->len - 2)))
            bad_ood++;
        bool biased = cfg->cue_agree != 0.5 && want_cued > 0;
        if (biased != (b->defects == BL_LAB_DEFECT_BIAS) || (biased && b->defect_label != 1 - a->label)) bad_ood++;
    }
    CHECK(2 * npos == id->n_items, "%s: test reviews not balanced", what);
    CHECK(bad_name == 0, "%s: %lld FT/ID reviews carry a cue name", what, (long long)bad_name);
    CHECK(bad_ood == 0, "%s: %lld OOD items without the reversed cue", what, (long long)bad_ood);
    int64_t want_aff = (cfg->imbalance > 1 ? cfg->n_test / 2 : 0) + (cfg->cue_agree != 0.5 && want_cued > 0 ? cfg->n_test : 0);
    CHECK(c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_AFFECTED].n_items == want_aff, "%s: %lld affected reviews, want %lld", what,
          (long long)c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_AFFECTED].n_items, (long long)want_aff);
    bl_lab_corpus_free(&c);
}

static int corpora_equal(const bl_lab_corpus *a, const bl_lab_corpus *b) {
    if (a->n_pre_ids != b->n_pre_ids || memcmp(a->pre_ids, b->pre_ids, sizeof(int32_t) * (size_t)a->n_pre_ids)) return 0;
    for (int t = 0; t < BL_LAB_TASK_COUNT; t++)
        for (int p = 0; p < BL_LAB_SPLIT_COUNT; p++) {
            const bl_lab_set *x = &a->sets[t][p], *y = &b->sets[t][p];
            if (x->n_ids != y->n_ids || x->n_items != y->n_items ||
                memcmp(x->ids, y->ids, sizeof(int32_t) * (size_t)x->n_ids) ||
                memcmp(x->items, y->items, sizeof(bl_lab_item) * (size_t)x->n_items))
                return 0;
        }
    return 1;
}

int main(void) {
    bl_lab_corpus_config cfg;
    bl_lab_corpus_config_default(&cfg);
    cfg.n_pre_arith = 2000; cfg.n_pre_fact = 1000; cfg.n_pre_review = 2000; cfg.n_ft = 300; cfg.n_test = 200;
    check_config(&cfg, "defaults (no defects)");
    bl_lab_corpus_config d = cfg;
    d.noise = 0.1; d.imbalance = 3; d.cue_frac = 0.4; d.cue_agree = 0.9;
    check_config(&d, "noise 0.1, imbalance 3, cue 0.4 x 0.9");
    d = cfg; d.noise = 0.2; d.max_operand = 19; d.test_frac = 0.3; d.n_pre_arith = 3333; d.imbalance = 1.7;
    d.cue_frac = 1; d.cue_agree = 1; d.seed = 99;
    check_config(&d, "noise 0.2, 0..19, imbalance 1.7, perfect cue");
    d = cfg; d.noise = 0.05; d.cue_agree = 0.2; d.cue_frac = 0.3; d.n_entities = 10; d.n_cities = 3; d.stmts_per_doc = 1;
    check_config(&d, "reversed association, small facts");
    d = cfg; d.n_pre_arith = 0; d.n_pre_fact = 0; d.noise = 0.3; d.imbalance = 10;
    check_config(&d, "reviews only");

    /* determinism and seed sensitivity */
    bl_lab_corpus a, b;
    d = cfg; d.noise = 0.1; d.imbalance = 2; d.cue_agree = 0.8;
    CHECK_OK(bl_lab_corpus_generate(&d, &a));
    CHECK_OK(bl_lab_corpus_generate(&d, &b));
    CHECK(corpora_equal(&a, &b), "same seed gave different corpora");
    bl_lab_corpus_free(&b);
    d.seed++;
    CHECK_OK(bl_lab_corpus_generate(&d, &b));
    CHECK(!corpora_equal(&a, &b), "a different seed gave the same corpus");
    bl_lab_corpus_free(&b);

    /* a readable sample, the vocabulary and the tokenizer files */
    char text[512];
    const bl_lab_set *rv = &a.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_TEST_OOD];
    CHECK_OK(bl_lab_decode(&a, rv->ids + rv->items[0].off, rv->items[0].len, text, sizeof text));
    printf("OOD review item: %s\n", text);
    CHECK(strstr(text, "<bos> ") == text && strstr(text, " verdict "), "decoded item '%s'", text);
    int32_t ids[32];
    int64_t n = 0;
    CHECK_OK(bl_lab_encode(&a, "3 plus 4 is 7 .", ids, 32, &n));
    CHECK(n == 6 && strcmp(bl_lab_word(&a, ids[4]), "7") == 0, "encode gave %lld tokens", (long long)n);
    CHECK_FAILS(bl_lab_encode(&a, "3 plus zebra", ids, 32, &n), BALORA_STATUS_INVALID, "unknown word 'zebra'");
    CHECK_FAILS(bl_lab_encode(&a, "3 plus 4", ids, 2, &n), BALORA_STATUS_INVALID, "more than 2 tokens");
    CHECK_FAILS(bl_lab_decode(&a, ids, 2, text, 3), BALORA_STATUS_INVALID, "do not fit");
    CHECK(a.vocab_size < 300, "vocabulary of %d words", a.vocab_size);
    for (int32_t i = 0; i < a.vocab_size; i++)
        CHECK(bl_lab_word_id(&a, a.words[i]) == i, "word '%s' is not unique", a.words[i]);
    printf("vocabulary: %d words, %lld pre-training tokens in %lld documents\n", a.vocab_size, (long long)a.n_pre_ids,
           (long long)a.n_docs);

    const char *dir = t_tmpdir();
    CHECK_OK(bl_lab_write_tokenizer(&a, dir));
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    cJSON *j = NULL;
    CHECK_OK(bl_json_load(path, &j));
    if (j) {
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
        const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
        CHECK(cJSON_IsString(type) && strcmp(type->valuestring, "WordLevel") == 0, "model type");
        CHECK(cJSON_GetArraySize(vocab) == a.vocab_size, "tokenizer.json vocab has %d entries", cJSON_GetArraySize(vocab));
        const cJSON *seven = cJSON_GetObjectItemCaseSensitive(vocab, "7");
        CHECK(cJSON_IsNumber(seven) && seven->valueint == ids[4], "vocab['7']");
        cJSON_Delete(j);
    }
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    char *vt = NULL;
    size_t vl = 0;
    CHECK_OK(bl_file_read(path, &vt, &vl));
    if (vt) {
        int lines = 0;
        for (size_t i = 0; i < vl; i++) lines += vt[i] == '\n';
        CHECK(lines == a.vocab_size && strncmp(vt, "<pad>\n<bos>\n<eos>\n<unk>\n", 24) == 0, "vocab.txt has %d lines", lines);
        free(vt);
    }
    bl_lab_corpus_free(&a);

    /* bad configurations */
    d = cfg; d.noise = 1.0;
    CHECK_FAILS(bl_lab_corpus_generate(&d, &a), BALORA_STATUS_INVALID, "'noise'");
    d = cfg; d.noise = 0.6;
    CHECK_FAILS(bl_lab_corpus_generate(&d, &a), BALORA_STATUS_INVALID, "raise test_frac");
    d = cfg; d.imbalance = 0.5;
    CHECK_FAILS(bl_lab_corpus_generate(&d, &a), BALORA_STATUS_INVALID, "'imbalance'");
    d = cfg; d.cue_agree = NAN;
    CHECK_FAILS(bl_lab_corpus_generate(&d, &a), BALORA_STATUS_INVALID, "'cue_agree'");
    d = cfg; d.n_test = 7;
    CHECK_FAILS(bl_lab_corpus_generate(&d, &a), BALORA_STATUS_INVALID, "'n_test'");
    d = cfg; d.max_operand = 50;
    CHECK_FAILS(bl_lab_corpus_generate(&d, &a), BALORA_STATUS_INVALID, "'max_operand'");
    d = cfg; d.n_pre_arith = d.n_pre_fact = d.n_pre_review = 0;
    CHECK_FAILS(bl_lab_corpus_generate(&d, &a), BALORA_STATUS_INVALID, "no pre-training");
    CHECK(a.arena.base == NULL, "failed generate left memory behind");
    CHECK_FAILS(bl_lab_corpus_generate(NULL, &a), BALORA_STATUS_INVALID, "NULL");
    return t_finish();
}
