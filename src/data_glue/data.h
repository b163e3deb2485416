/* Sequence-classification data: the GLUE TSV layouts, Adversarial GLUE, generic CSV / TSV / JSONL,
 * label maps, and the data knobs of the controlled experiments (label noise, class imbalance,
 * training-set size), with what was done recorded in a metadata struct.
 *
 * A bl_glue_set holds n examples: text_a[i] (always), text_b[i] (pair tasks; NULL array for
 * single-sentence data), and a target: label[i] (class id, -1 when the file has no labels) or
 * score[i] (regression, NAN when unlabelled). Strings are NUL-terminated UTF-8 and live as long as
 * the dataset. Typical use:
 *
 *     bl_glue_set tr;
 *     BL_TRY(bl_glue_load(&tr, BL_GLUE_TASK_SST2, "glue/SST-2/train.tsv", NULL));
 *     bl_data_knobs k = BL_DATA_KNOBS_DEFAULT; k.label_noise = 0.2; k.seed = 42;
 *     BL_TRY(bl_data_apply_knobs(&tr, &k));         // tr.meta.n_noisy = exact flipped count
 *     cJSON *meta; BL_TRY(bl_data_meta_json(&tr, &meta));  // into the run's metadata
 *     ...
 *     bl_glue_set_free(&tr);
 *
 * Label ids of GLUE: as the GLUE table says (data_glue/tasks.h). */
#ifndef BL_DATA_GLUE_H
#define BL_DATA_GLUE_H
#include "core/bl.h"
#include "data_glue/tasks.h"
#include "eval/metrics.h"
#include <cjson/cJSON.h>

#define BL_DATA_MAX_LABELS 128
#define BL_DATA_LABEL_NAME 64

/* GLUE tasks (names, columns, label names, metrics): the GLUE table, data_glue/tasks.h.
 * BL_GLUE_TASK_GENERIC = not a GLUE file. */

/* What was loaded and what the knobs did (all counts exact). */
typedef struct bl_data_meta {
    char source[1024];           /* the file */
    char format[16];             /* "glue-tsv", "advglue", "tsv", "csv", "jsonl" */
    char task[16];               /* GLUE task name or "generic" */
    int64_t n_file;              /* examples read from the file */
    int64_t n_skipped;           /* malformed rows skipped (only with skip_bad_rows) */
    int64_t count_file[BL_DATA_MAX_LABELS]; /* per-class counts as loaded */
    /* knobs (0 = off) */
    double label_noise;          /* requested fraction */
    int64_t n_noisy;             /* labels actually flipped = llround(label_noise * n) */
    double imbalance;            /* requested majority:minority ratio */
    int imbalance_major;         /* the class kept whole */
    int64_t n_imbalance_removed; /* examples dropped by the imbalance knob */
    int64_t max_train;           /* requested cap */
    int64_t n_max_train_removed; /* examples dropped by the cap */
    uint64_t seed;
    bool knobs_applied;
    int64_t count[BL_DATA_MAX_LABELS];      /* per-class counts now (after noise) */
} bl_data_meta;

typedef struct bl_glue_set {
    int64_t n;                /* examples */
    const char **text_a;      /* [n] */
    const char **text_b;      /* [n], or NULL for single-sentence data */
    int32_t *label;           /* [n] class id; -1 = unlabelled; unused (all -1) for regression */
    int32_t *label_clean;     /* [n] label before --label-noise (== label where not flipped) */
    float *score;             /* [n] regression target; NAN = unlabelled; NAN for classification */
    int64_t *row;             /* [n] source row: 1-based line of TSV/CSV/JSONL, idx for advglue */
    bool has_labels;          /* every example has a target */
    bool regression;
    int n_labels;             /* classes (1 for regression) */
    char label_names[BL_DATA_MAX_LABELS][BL_DATA_LABEL_NAME];
    bl_glue_task task;        /* BL_GLUE_TASK_GENERIC for generic files */
    bl_data_meta meta;
    /* storage */
    char *text;               /* the strings (the file buffer edited in place, or a pool) */
    void *block;              /* the arrays above, one allocation */
} bl_glue_set;

/* Options of the GLUE loader (NULL = defaults: strict). */
typedef struct bl_glue_opts {
    bool skip_bad_rows;       /* skip (and count) rows with too few fields or a bad label instead of failing */
} bl_glue_opts;

/* A GLUE TSV of `task`: train, dev (dev_matched / dev_mismatched for MNLI) or test file, with or
 * without the label column. Columns are found by the header names of the task (CoLA's train/dev
 * have no header: label column 1, sentence column 3). Fields are tab-separated without quoting,
 * as the GLUE files are written. */
balora_status bl_glue_load(bl_glue_set *d, bl_glue_task task, const char *path, const bl_glue_opts *opts);

/* One task of Adversarial GLUE's dev_ann.json (the tasks with Adversarial GLUE keys in tasks.h). */
balora_status bl_advglue_load(bl_glue_set *d, bl_glue_task task, const char *path);

/* Generic files: which columns hold what. */
typedef struct bl_data_spec {
    const char *format;      /* "csv", "tsv", "jsonl"; NULL = from the extension (.csv/.tsv/.jsonl/.json) */
    const char *text_col;    /* header name (or 0-based index when header is false); default "text" */
    const char *text_pair_col; /* NULL = single text */
    const char *label_col;   /* default "label"; NULL-or-"" with no_labels */
    bool no_labels;          /* the file has no targets */
    bool header;             /* CSV/TSV: first row names the columns (default true via BL_DATA_SPEC_DEFAULT) */
    bool regression;         /* float targets */
    /* Label map: comma-separated names in id order ("negative,positive"). Labels in the file may be
     * these names or integer ids. NULL: integer labels 0..K-1 if every label is an integer, else the
     * distinct names sorted (byte order), as transformers' run_glue sorts them. Load the dev set with
     * the train set's map (bl_glue_set_label_map). */
    const char *labels;
    bool skip_bad_rows;
} bl_data_spec;
#define BL_DATA_SPEC_DEFAULT ((bl_data_spec){ .text_col = "text", .label_col = "label", .header = true })

balora_status bl_data_load(bl_glue_set *d, const bl_data_spec *spec, const char *path);

/* The dataset's label map as "name0,name1,..." (for bl_data_spec.labels of the dev set). */
balora_status bl_glue_set_label_map(const bl_glue_set *d, char *out, size_t cap);

/* Data knobs, applied in this order: imbalance, max_train, label noise. */
typedef struct bl_data_knobs {
    double label_noise;   /* P in [0, 1): flip exactly llround(P * n) labels (chosen uniformly without
                             replacement) to a uniformly chosen other class; classification only */
    double imbalance;     /* R >= 1 (0 = off): every class other than `imbalance_major` keeps at most
                             floor(count[major] / R) examples, chosen uniformly; order is preserved */
    int imbalance_major;  /* the majority class (kept whole) */
    int64_t max_train;    /* N > 0: keep the first N examples (as transformers' max_train_samples); 0 = off */
    uint64_t seed;        /* imbalance and noise use independent streams derived from it */
} bl_data_knobs;
#define BL_DATA_KNOBS_DEFAULT ((bl_data_knobs){ .label_noise = 0, .imbalance = 0, .imbalance_major = 0, .max_train = 0, .seed = 0 })

/* Applies the knobs once (a second call fails). Requires labels. */
balora_status bl_data_apply_knobs(bl_glue_set *d, const bl_data_knobs *k);

/* The metadata as a JSON object (caller owns it): source, format, task, n, n_file, n_skipped,
 * label_names, counts before and after, and every knob with its exact effect. */
balora_status bl_data_meta_json(const bl_glue_set *d, cJSON **out);

void bl_glue_set_free(bl_glue_set *d);

#endif
