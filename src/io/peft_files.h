/* A PEFT LoRA adapter folder read at the file level (docs/FORMATS.md, PEFT LoRA adapter folder): adapter_config.json and
 * adapter_model.safetensors, its tensors grouped into A/B pairs per module and full tensors
 * (modules_to_save). Used by inspect, merge and the GGUF export; no model engine needed.
 *
 *   bl_peft_adapter a;
 *   BL_TRY(bl_peft_open(&a, dir));       // parses; tolerates incomplete pairs (inspect shows them)
 *   st = bl_peft_validate(&a);           // strict: complete pairs, ranks, shapes, no DoRA
 *   ... a.pairs[i].module, .a, .b, .scale ...
 *   bl_peft_close(&a);
 */
#ifndef BL_PEFT_FILES_H
#define BL_PEFT_FILES_H
#include "io/json.h"
#include "io/safetensors.h"

#define BL_PEFT_PREFIX "base_model.model."

/* rank_pattern / alpha_pattern as PEFT 0.11 applies them (LoraModel._create_and_replace): the
 * keys of rank_pattern, then those of alpha_pattern, in the file's order, are tried as the
 * regular expression ".*\.KEY$" against the whole module path (e.g.
 * "model.layers.1.mlp.up_proj"); the first key that matches is the module's key, and
 * r = rank_pattern[key] (or r), alpha = alpha_pattern[key] (or lora_alpha). When no key
 * matches, the module path itself is looked up as a key. */
#define BL_PEFT_MAX_PATTERNS 64
typedef struct bl_peft_pattern {
    char key[160];
    double value;
} bl_peft_pattern;
typedef struct bl_peft_patterns {
    int n_rank, n_alpha;
    bl_peft_pattern rank[BL_PEFT_MAX_PATTERNS];   /* in the file's order */
    bl_peft_pattern alpha[BL_PEFT_MAX_PATTERNS];
} bl_peft_patterns;

/* A pattern object {KEY: value} (rank: positive integers, alpha: positive numbers) into out[*n],
 * in the object's order (pat NULL: none). Errors name file and field. */
balora_status bl_peft_pattern_parse(const char *file, const char *field, const cJSON *pat, bool integer, bl_peft_pattern *out,
                                    int *n);
/* The r and alpha of `module` under p (defaults r, alpha). file names the config in errors
 * (an invalid regular expression). */
balora_status bl_peft_patterns_resolve(const bl_peft_patterns *p, const char *file, const char *module, int64_t r,
                                       double alpha, int64_t *r_out, double *alpha_out);

typedef struct bl_peft_config {
    char path[4200];           /* .../adapter_config.json */
    cJSON *json;               /* owned */
    const char *peft_type;     /* "LORA" */
    const char *task_type;     /* may be NULL */
    int64_t r;
    double lora_alpha;             /* finite (0 is PEFT's scale 0) */
    double lora_dropout;           /* [0, 1) */
    bool use_rslora, use_dora, fan_in_fan_out;
    const char *bias;              /* "none" (default), "all", "lora_only" */
    const char *base_model;        /* base_model_name_or_path, or NULL */
    bool layers_to_transform, layer_replication; /* set (not null) */
    bl_peft_patterns patterns;     /* parsed rank_pattern / alpha_pattern */
    const cJSON *target_modules;   /* string or list; NULL if absent */
    const cJSON *modules_to_save;  /* list or NULL */
    const cJSON *rank_pattern;     /* object or NULL */
    const cJSON *alpha_pattern;    /* object or NULL */
    const cJSON *init_lora_weights;/* bool or string or NULL */
} bl_peft_config;

/* One adapted module: delta W = scale * B A ([out, r] x [r, in]).
 * For an embedding (lora_embedding_A [r, vocab], lora_embedding_B [dim, r]) the delta is
 * (B A)^T, added to the embedding matrix [vocab, dim]. */
typedef struct bl_peft_pair {
    char *module;              /* module path without "base_model.model.", e.g. "model.layers.0.self_attn.q_proj" */
    const bl_st_tensor *a, *b; /* NULL when missing (bl_peft_validate reports it) */
    bool embedding;
    int64_t r;                 /* rows of A (0 if A is missing) */
    double alpha;              /* after alpha_pattern */
    double scale;              /* alpha / r, or alpha / sqrt(r) with use_rslora */
} bl_peft_pair;

/* A full tensor saved with the adapter (modules_to_save, or trained biases). */
typedef struct bl_peft_full {
    char *base_name;           /* e.g. "score.weight" ("base_model.model." and ".modules_to_save.default" removed) */
    const bl_st_tensor *t;
} bl_peft_full;

typedef struct bl_peft_adapter {
    char dir[4096];
    char weights_path[4200];
    bl_peft_config cfg;
    bl_st_file file;
    int n_pairs;
    bl_peft_pair *pairs;       /* sorted by module */
    int n_full;
    bl_peft_full *full;
    int n_magnitude;           /* DoRA lora_magnitude_vector tensors */
    int n_unknown;             /* keys that are neither of the above */
    const char *first_unknown; /* points into file */
    int64_t trainable_params;  /* every tensor in the adapter file */
} bl_peft_adapter;

/* Reads adapter_config.json (peft_type must be LORA; r > 0; lora_alpha finite; lora_dropout in
 * [0, 1); target_modules a string or a list of strings; patterns {key: positive number}) and
 * adapter_model.safetensors; groups the keys. Errors name the file and the field. */
balora_status bl_peft_config_load(bl_peft_config *c, const char *dir);
void bl_peft_config_free(bl_peft_config *c);
balora_status bl_peft_open(bl_peft_adapter *a, const char *dir);
void bl_peft_close(bl_peft_adapter *a);

/* Strict checks: no DoRA, no unknown keys, every pair complete, A [r, in] and B [out, r]
 * with r matching the config's r (or rank_pattern). The first problem is the error. */
balora_status bl_peft_validate(const bl_peft_adapter *a);

/* The rank and alpha PEFT uses for `module` (bl_peft_patterns_resolve on the config's). */
balora_status bl_peft_module_rank_alpha(const bl_peft_config *c, const char *module, int64_t *r, double *alpha);
/* alpha / r, or alpha / sqrt(r) with rsLoRA. */
double bl_peft_scale(const bl_peft_config *c, int64_t r, double alpha);

#endif
