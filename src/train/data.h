/* Training data: examples as token ids + labels, epoch order, [B, T] batches.
 *
 * Formats (bl_train_data_format):
 *   jsonl  : one JSON object per line with a prompt field and a response field (default
 *            "query" / "response", as in MetaMathQA). The prompt is formatted with a template
 *            containing {query} (default: the Alpaca prompt of docs/METHOD.md 4), the response
 *            follows it directly, then EOS. Labels are -100 on the prompt tokens: only the
 *            response (and EOS) is trained. As in Alpaca/MetaMath, the prompt length is the
 *            token count of the formatted prompt tokenised alone.
 *   text   : a plain UTF-8 text file, tokenised as a whole and cut into max_len blocks (the
 *            remainder is dropped as in transformers' run_clm, unless it is the only block);
 *            labels = input ids.
 *   tokens : JSONL with an "input_ids" array and an optional "labels" array (same length,
 *            -100 = untrained; absent = every token trained). Ids and labels are checked
 *            against the vocabulary size.
 * Every example is truncated to max_len tokens. Labels are NOT shifted: position t is
 * trained to predict labels[t + 1] (the causal shift happens in the loss, as transformers
 * does), so an example's trained-token count is the number of labels[1..] != -100.
 *
 * Other tasks build a bl_train_data themselves with another label kind: masked LM (labels at the
 * masked positions, no shift: src/lab/nlu.c) and sequence classification (a class id or a float
 * target per example, token_type_ids: bl_train_data_seqcls in src/train/cls.h). */
#ifndef BL_TRAIN_DATA_H
#define BL_TRAIN_DATA_H
#include "core/bl.h"

#ifndef BL_IGNORE_INDEX
#define BL_IGNORE_INDEX (-100)
#endif

typedef enum bl_train_data_format { BL_TRAIN_DATA_JSONL = 0, BL_TRAIN_DATA_TEXT, BL_TRAIN_DATA_TOKENS } bl_train_data_format;
balora_status bl_train_data_format_parse(const char *name, bl_train_data_format *out);
const char *bl_train_data_format_name(bl_train_data_format f);

/* The Alpaca prompt of docs/METHOD.md section 4 (the default template). */
extern const char *const BL_ALPACA_TEMPLATE;

/* The seam to a tokenizer (src/tok plugs in here). encode() writes up to cap ids and sets *n to
 * the full count (the caller retries with a bigger buffer when *n > cap). add_special: add what
 * the tokenizer adds around a sequence (e.g. LLaMA's BOS). */
typedef struct bl_train_tokenizer {
    void *self;
    balora_status (*encode)(void *self, const char *text, size_t len, bool add_special, int32_t *ids, int64_t cap, int64_t *n);
    int32_t eos_id;     /* appended to jsonl examples; -1 = none */
} bl_train_tokenizer;

typedef struct bl_train_data_cfg {
    bl_train_data_format format;
    const char *prompt_field;   /* "query" */
    const char *response_field; /* "response" */
    const char *template_text;  /* NULL = BL_ALPACA_TEMPLATE; must contain {query} */
    int64_t max_len;            /* truncation length (> 1) */
    int64_t vocab_size;         /* ids and labels must be in [0, vocab_size) */
} bl_train_data_cfg;
void bl_train_data_cfg_default(bl_train_data_cfg *c);

/* What the labels of a dataset (and of its batches) mean: the objective checks it (objective.h). */
typedef enum bl_train_label_kind {
    BL_TRAIN_LABELS_NEXT_TOKEN = 0, /* labels per token; position t is trained to predict labels[t + 1] (causal LM) */
    BL_TRAIN_LABELS_TOKEN,          /* labels per token; position t is trained to predict labels[t] (masked LM) */
    BL_TRAIN_LABELS_CLASS,          /* one class id (cls_label) or float target (target) per example (seq-cls) */
} bl_train_label_kind;

typedef struct bl_train_data {
    bl_train_label_kind kind;
    int64_t n;          /* examples */
    int64_t *off;       /* [n + 1] example i is ids[off[i] .. off[i+1]) */
    int32_t *ids;       /* [off[n]] */
    int32_t *labels;    /* [off[n]] -100 = untrained (token kinds; NULL for CLASS) */
    int8_t *types;      /* [off[n]] token_type_ids, or NULL (all 0 / not used by the model) */
    int64_t *cls_label; /* [n] class ids (CLASS, classification), or NULL */
    float *target;      /* [n] float targets (CLASS, regression), or NULL */
    int64_t *trained;   /* [n] trained items of each example (tokens as the kind counts them; CLASS: 1) */
    int64_t max_len;    /* longest example */
    int64_t total_trained;
    bl_arena arena;     /* the one allocation holding the arrays above */
} bl_train_data;

/* tok may be NULL for the tokens format (required for jsonl and text). */
balora_status bl_train_data_load(bl_train_data *d, const char *path, const bl_train_data_cfg *cfg, const bl_train_tokenizer *tok);
void bl_train_data_free(bl_train_data *d);

/* The order of epoch `epoch`: a Fisher-Yates shuffle seeded by (seed, epoch), the same on every
 * machine; shuffle = false gives 0..n-1. perm: [d->n]. */
void bl_train_data_order(const bl_train_data *d, uint64_t seed, int64_t epoch, bool shuffle, int64_t *perm);

/* A [B, T] batch: what every objective needs (objective.h). T is the longest example in the batch
 * (padding to the longest, as DataCollatorForSeq2Seq does) or t_cap with pad_to_max. Right padding:
 * pad id, label -100, mask 0, token type 0. */
typedef struct bl_train_batch {
    bl_train_label_kind kind; /* of the dataset it came from */
    int64_t B, T;       /* this batch (B <= cap_B, T <= cap_T) */
    int64_t cap_B, cap_T;
    int64_t *ids;       /* [B, T] (int64 as the model's bl_batch and bl_xent take them) */
    int64_t *labels;    /* [B, T] token labels (CLASS: all -100) */
    int64_t *mask;      /* [B, T] 1 = real token */
    int64_t *types;     /* [B, T] token_type_ids, or NULL when the dataset has none */
    int64_t *cls_labels; /* [B] class ids, or NULL when the dataset has none */
    float *targets;     /* [B] float targets, or NULL when the dataset has none */
    int64_t n_trained;  /* trained items (tokens as the kind counts them, or examples) */
    int64_t n_tokens;   /* real tokens */
    int64_t *types_buf, *cls_buf; /* [cap_B, cap_T], [cap_B] storage of types / cls_labels */
    float *targets_buf; /* [cap_B] */
    bl_arena arena;
} bl_train_batch;
balora_status bl_train_batch_init(bl_train_batch *b, int64_t cap_B, int64_t cap_T);
void bl_train_batch_free(bl_train_batch *b);
/* Fill with examples idx[0..n) (n <= cap_B; each at most cap_T long). */
void bl_train_batch_fill(bl_train_batch *b, const bl_train_data *d, const int64_t *idx, int64_t n, bool pad_to_max, int32_t pad_id);

#endif
