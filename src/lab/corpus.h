/* The catastrophic-inheritance lab's synthetic language: a seeded, deterministic corpus
 * with a known structure and defects injected, at exact rates, into its pre-training part.
 *
 * The language has its own word-level vocabulary (bl_lab_corpus.words, ids 0..vocab_size-1;
 * no BPE needed) and three kinds of statement, each ending with " .":
 *
 *   ARITH   "3 plus 4 is 7 ."                       operands 0..max_operand
 *   FACT    "alice lives in paris ."                one city per entity
 *   REVIEW  "tom says the film was not dull and great . verdict positive ."
 *           two adjectives, each optionally negated by "not"; the label is the sign of the
 *           sum of their polarities (+1 / -1 / 0, "not" flips); only non-zero sums occur.
 *
 * Pre-training data (pre_ids, doc_off): documents "<bos> s1 s2 ... sK <eos>" holding a
 * shuffled mix of the three kinds, with these defects (all counts exact, see counts):
 *   noise      round(noise * n) of the ARITH statements (and of the FACT statements) state a
 *              wrong answer. The wrong statements fall on a set of "noisy" items (pairs a,b /
 *              entities), about round(noise * n_items) of them, chosen among the held-out test
 *              items; each noisy item always has the same specific wrong answer.
 *   imbalance  positive : negative reviews = imbalance : 1 (n_pos = round(n * r / (1 + r))).
 *   bias       round(cue_frac * n) reviews are written by a cue name instead of a neutral
 *              reviewer; of those, round(cue_agree * n_cued) have the "agreeing" cue (cue_pos on a
 *              positive review, cue_neg on a negative one), the others the opposite cue.
 *              cue_agree = 0.5 is no bias, 1.0 a perfect spurious correlation.
 *
 * Downstream sets, per task (ARITH, FACT, REVIEW), all clean:
 *   FT        fine-tuning items, from the training items only (pairs / entities / review
 *             contents never used by a test set); reviews balanced with neutral names.
 *   TEST_ID   in-distribution test: ARITH every held-out pair once, FACT every held-out entity
 *             once, REVIEW n_test balanced reviews with neutral names.
 *   TEST_OOD  REVIEW only (empty otherwise): item i is TEST_ID item i with its neutral name
 *             replaced by the REVERSED cue (cue_neg on a positive review, cue_pos on a negative).
 *   AFFECTED  copies of the test items on which a pre-training defect predicts a specific
 *             wrong answer (defect_answer): ARITH/FACT noisy items (noise), REVIEW minority-class
 *             TEST_ID items (imbalance > 1, predicts the majority label) and every TEST_OOD item
 *             (cue_agree > 0.5, predicts the cue's label). An inheritance score is the fraction
 *             of AFFECTED items on which a model answers defect_answer.
 *
 * Every item comes in two forms over the same tokens:
 *   causal LM       ids[off .. off+len): "<bos> prompt... answer", len = prompt_len + 1; the last
 *                   token (position off + prompt_len) is the answer; train only that position.
 *   classification  ids[off .. off+prompt_len) with class index label (0..n_classes[task]-1):
 *                   ARITH the sum, FACT the city index, REVIEW 0 = negative / 1 = positive.
 *                   class_token[task][label] is the answer's token id.
 *
 * Usage:
 *   bl_lab_corpus_config cfg; bl_lab_corpus_config_default(&cfg); cfg.noise = 0.1;
 *   bl_lab_corpus c; BL_TRY(bl_lab_corpus_generate(&cfg, &c));
 *   ... c.pre_ids[c.doc_off[d] .. c.doc_off[d+1]) ...
 *   const bl_lab_set *ft = &c.sets[BL_LAB_TASK_REVIEW][BL_LAB_SPLIT_FT];
 *   bl_lab_corpus_free(&c);
 * The same config (seed included) gives byte-identical output on every platform. */
#ifndef BL_LAB_CORPUS_H
#define BL_LAB_CORPUS_H
#include "core/bl.h"

typedef enum bl_lab_task {
    BL_LAB_TASK_ARITH = 0,
    BL_LAB_TASK_FACT,
    BL_LAB_TASK_REVIEW,
    BL_LAB_TASK_COUNT
} bl_lab_task;

typedef enum bl_lab_split {
    BL_LAB_SPLIT_FT = 0,
    BL_LAB_SPLIT_TEST_ID,
    BL_LAB_SPLIT_TEST_OOD,
    BL_LAB_SPLIT_AFFECTED,
    BL_LAB_SPLIT_COUNT
} bl_lab_split;

/* Bits of bl_lab_item.defects. */
#define BL_LAB_DEFECT_NOISE 1u
#define BL_LAB_DEFECT_IMBALANCE 2u
#define BL_LAB_DEFECT_BIAS 4u

/* Special token ids (always these values). */
#define BL_LAB_TOK_PAD 0
#define BL_LAB_TOK_BOS 1
#define BL_LAB_TOK_EOS 2
#define BL_LAB_TOK_UNK 3

typedef struct bl_lab_corpus_config {
    uint64_t seed;
    int32_t max_operand;    /* ARITH operands 0..max_operand, 1..49 (default 9: 100 pairs, sums 0..18) */
    int32_t n_entities;     /* FACT entities, 2..40 (default 40) */
    int32_t n_cities;       /* FACT cities, 2..16 (default 8) */
    int64_t n_pre_arith;    /* pre-training statements of each kind (>= 0; defaults 4000/2000/4000) */
    int64_t n_pre_fact;
    int64_t n_pre_review;
    int32_t stmts_per_doc;  /* statements per pre-training document, 1..64 (default 8) */
    double test_frac;       /* fraction of pairs / entities / review contents held out for tests (default 0.25) */
    int64_t n_ft;           /* fine-tuning items per task (default 1000) */
    int64_t n_test;         /* REVIEW TEST_ID (and TEST_OOD) items, even (default 400) */
    double noise;           /* [0, 1): fraction of wrong ARITH and FACT pre-training statements (default 0) */
    double imbalance;       /* >= 1: positive:negative ratio of pre-training reviews (default 1) */
    double cue_frac;        /* [0, 1]: fraction of pre-training reviews written by a cue name (default 0.5) */
    double cue_agree;       /* [0, 1]: fraction of cued reviews whose cue agrees with the label (default 0.5) */
} bl_lab_corpus_config;

typedef struct bl_lab_item {
    int64_t off;            /* first token (<bos>) in the set's ids */
    int32_t len;            /* tokens of the causal form = prompt_len + 1 */
    int32_t prompt_len;     /* tokens before the answer (classification input length) */
    int32_t answer;         /* answer token id = ids[off + prompt_len] */
    int32_t label;          /* class index 0..n_classes[task]-1 */
    int32_t defect_answer;  /* token id a pre-training defect predicts, -1 if none */
    int32_t defect_label;   /* its class index, -1 if none */
    uint32_t defects;       /* BL_LAB_DEFECT_* bits (0 = unaffected) */
    uint32_t key;           /* identity of the underlying item: ARITH a*(max_operand+1)+b, FACT the
                               entity, REVIEW the content (noun, adjectives, negations; no name) */
} bl_lab_item;

typedef struct bl_lab_set {
    int64_t n_items;
    bl_lab_item *items;     /* [n_items] */
    int64_t n_ids;
    int32_t *ids;           /* [n_ids] tokens of all items, back to back */
} bl_lab_set;

/* What the generator injected (tests recount these from the tokens). */
typedef struct bl_lab_counts {
    int64_t arith, arith_wrong, fact, fact_wrong;
    int64_t review_pos, review_neg, review_cued, review_cue_agree;
    int64_t noisy_pairs, noisy_entities;
} bl_lab_counts;

typedef struct bl_lab_corpus {
    bl_lab_corpus_config cfg;
    int32_t vocab_size;
    const char **words;     /* [vocab_size] id -> word */
    int8_t *polarity;       /* [vocab_size] +1 / -1 for sentiment adjectives, 0 otherwise */
    int32_t cue_pos, cue_neg;          /* the two cue-name tokens */
    int32_t n_neutral_names;
    const int32_t *neutral_names;      /* [n_neutral_names] reviewer names that carry no cue */
    int32_t n_classes[BL_LAB_TASK_COUNT];
    const int32_t *class_token[BL_LAB_TASK_COUNT]; /* [n_classes[t]] label -> answer token id */
    const int32_t *fact_city;          /* [n_entities] true city class of each entity */
    const int32_t *entity_token;       /* [n_entities] token id of each entity */

    int64_t n_pre_ids;
    int32_t *pre_ids;       /* [n_pre_ids] pre-training tokens */
    int64_t n_docs;
    int64_t *doc_off;       /* [n_docs + 1] document d is pre_ids[doc_off[d] .. doc_off[d+1]) */

    bl_lab_set sets[BL_LAB_TASK_COUNT][BL_LAB_SPLIT_COUNT];
    bl_lab_counts counts;
    bl_arena arena;         /* owns everything above */
} bl_lab_corpus;

/* The defaults listed in bl_lab_corpus_config. */
void bl_lab_corpus_config_default(bl_lab_corpus_config *cfg);
/* Read a config from a JSON object (e.g. the "config" object of corpus.json, or a preset):
 * every key optional (absent = keep *cfg's value), named as the struct fields; "seed" is an
 * integer or a string of digits. Unknown keys and wrong types fail with the file and the key. */
struct cJSON;
balora_status bl_lab_corpus_config_from_json(const struct cJSON *obj, const char *file, bl_lab_corpus_config *cfg);
/* Validate cfg and generate. On failure *out is zeroed and nothing is allocated. */
balora_status bl_lab_corpus_generate(const bl_lab_corpus_config *cfg, bl_lab_corpus *out);
void bl_lab_corpus_free(bl_lab_corpus *c);

/* Word <-> id. bl_lab_word_id returns BL_LAB_TOK_UNK for an unknown word. */
const char *bl_lab_word(const bl_lab_corpus *c, int32_t id); /* "<?>" when out of range */
int32_t bl_lab_word_id(const bl_lab_corpus *c, const char *word);
/* Encode space-separated words into ids[cap]; fails (INVALID) on an unknown word or overflow. */
balora_status bl_lab_encode(const bl_lab_corpus *c, const char *text, int32_t *ids, int64_t cap, int64_t *n);
/* Decode ids to space-separated words into out[cap] (NUL-terminated; INVALID if it does not fit). */
balora_status bl_lab_decode(const bl_lab_corpus *c, const int32_t *ids, int64_t n, char *out, size_t cap);

/* Write DIR/tokenizer.json (Hugging Face tokenizers, WordLevel model, WhitespaceSplit
 * pre-tokenizer, <unk> unknown token) and DIR/vocab.txt (one word per line, line = id). */
balora_status bl_lab_write_tokenizer(const bl_lab_corpus *c, const char *dir);

/* Write the whole corpus under DIR (created if needed), for the report and for text-based tools:
 *   tokenizer.json, vocab.txt          as bl_lab_write_tokenizer
 *   corpus.json                        the config (seed included) and the injected counts
 *   pretrain.txt                       one pre-training document per line, words without <bos>/<eos>
 *   TASK_SPLIT.jsonl                   one item per line: {"prompt": "3 plus 4 is", "answer": "7",
 *                                      "label": 7, "key": 34, "defects": ["noise"], "defect_answer": "9",
 *                                      "defect_label": 9} (prompt without <bos>; defect_* null if none) */
balora_status bl_lab_corpus_write(const bl_lab_corpus *c, const char *dir);
/* The generator's settings and the injected counts as JSON fields added to obj (corpus.json, reports). */
void bl_lab_corpus_config_fill_json(const bl_lab_corpus_config *cfg, struct cJSON *obj);
void bl_lab_counts_fill_json(const bl_lab_counts *counts, struct cJSON *obj);

/* Scores of one set given a model's answers.
 * pred: [s->n_items] the predicted answer token of each item (causal form: the arg-max at the
 * answer position; classification form: class_token[task][predicted class]).
 * accuracy = mean(pred == answer) (NaN for an empty set); inheritance = among items with
 * defects, mean(pred == defect_answer) (NaN when none); n_affected counts those items. */
typedef struct bl_lab_score {
    int64_t n, n_correct, n_affected, n_inherited, n_clean, n_clean_correct;
    double accuracy, inheritance;
    double accuracy_clean;  /* accuracy over the items without defects (NaN when none) */
} bl_lab_score;
balora_status bl_lab_score_set(const bl_lab_set *s, const int32_t *pred, bl_lab_score *out);

const char *bl_lab_task_name(bl_lab_task t);   /* "arith", "fact", "review" */
const char *bl_lab_split_name(bl_lab_split s); /* "ft", "test_id", "test_ood", "affected" */

#endif
