/* LoRA adapters in PEFT's format (docs/FORMATS.md): create with PEFT-identical initialisation,
 * load, save, attach to a model's linear modules (bl_module_set, src/model/model.h).
 *
 * Key names: "base_model.model." + module path + ".lora_A.weight" [r, in] / ".lora_B.weight"
 * [out, r] (factors always in Linear orientation, also for GPT-2 Conv1D); SEQ_CLS heads in
 * modules_to_save as "base_model.model.score.weight". adapter_config.json has sorted keys and
 * only keys PEFT knows; balora's own metadata goes in the safetensors "__metadata__".
 *
 * Target matching as PEFT: a list of names matches a module whose path equals a name or ends
 * with "." + name; a single string is a regular expression that must match the whole path
 * (PCRE2); "all-linear" = every linear module of the set (the LM head is never in the set).
 *
 * Per-module ranks and alphas: rank_pattern / alpha_pattern, matched exactly as PEFT 0.11
 * (bl_peft_patterns_resolve, src/io/peft_files.h). The adapter folder is parsed and checked by
 * src/io/peft_files.h (the one PEFT parser); this file maps it onto a model's modules. */
#ifndef BL_LORA_H
#define BL_LORA_H
#include "io/peft_files.h"
#include "model/model.h"

typedef enum bl_lora_init_kind {
    BL_LORA_INIT_DEFAULT = 0,  /* PEFT init_lora_weights=true: A ~ U(-1/sqrt(in), 1/sqrt(in))
                                  (kaiming-uniform, a = sqrt(5)), B = 0 */
    BL_LORA_INIT_GAUSSIAN,     /* "gaussian": A ~ N(0, 1/r), B = 0 */
    BL_LORA_INIT_PISSA         /* "pissa"/"pissa_niter_K": factors are set by src/method (SVD) */
} bl_lora_init_kind;

#define BL_LORA_MAX_TARGETS 32
typedef struct bl_lora_config {
    int64_t r;                 /* rank (default 8) */
    double alpha;              /* lora_alpha (default 8) */
    bl_peft_patterns patterns; /* rank_pattern / alpha_pattern: per-module r and alpha (default none) */
    double dropout;            /* lora_dropout (default 0) */
    bool rslora;               /* scale = alpha / sqrt(r) instead of alpha / r */
    int n_targets;             /* target module names; "all-linear" allowed */
    char targets[BL_LORA_MAX_TARGETS][64];
    char target_regex[512];    /* used instead of targets when non-empty (PEFT string form) */
    bl_lora_init_kind init;
    int pissa_niter;           /* "pissa_niter_K": K (0 = exact SVD, "pissa") */
    bool keep_initial;         /* also allocate A0/B0 (BA-LoRA teacher with PiSSA) */
    char base_model[1024];     /* base_model_name_or_path written to adapter_config.json */
} bl_lora_config;

typedef struct bl_adapter {
    bl_lora_config cfg;
    bl_module_set *set;        /* attached to (NULL after bl_lora_free) */
    int n;                     /* number of adapted modules */
    bl_lora *mods;             /* [n], sorted by module path */
    int *lin_index;            /* [n] index in set->lin */
    int n_heads;               /* modules_to_save tensors (SEQ_CLS heads) */
    int *head_param;           /* [n_heads] index in set->params */
    float **head_data;         /* [n_heads] trained copy (set->params[i].train_data) */
    float **head_grad;         /* [n_heads] its gradient (set->params[i].grad) */
    bl_arena arena;            /* factors, grads, initial factors, head copies */
} bl_adapter;

/* PEFT defaults: r 8, alpha 8, dropout 0, no rsLoRA, default init, no targets. */
void bl_lora_config_default(bl_lora_config *c);
/* Parses "q_proj,v_proj" / "all-linear" into c->targets. */
balora_status bl_lora_config_set_targets(bl_lora_config *c, const char *comma_list);
/* Parses "KEY=R,KEY=R" (or the JSON object text {"KEY": R, ...}) into c->patterns.rank and
 * "KEY=A,..." (or {"KEY": A, ...}) into c->patterns.alpha (NULL or "" leaves that one empty). KEY is
 * a PEFT pattern key (a regular expression, see above; use the JSON form for keys with commas).
 * Refused (BALORA_STATUS_INVALID, naming the key): an empty or repeated key, a rank that is not an
 * integer in 1..65536, an alpha that is not a positive finite number; an invalid regular
 * expression fails with BALORA_STATUS_FORMAT. */
balora_status bl_lora_config_set_patterns(bl_lora_config *c, const char *rank_list, const char *alpha_list);
/* The r and alpha the config gives module `name` (after rank_pattern / alpha_pattern). */
balora_status bl_lora_module_rank_alpha(const bl_lora_config *c, const char *name, int64_t *r, double *alpha);
/* scale for one module: alpha / r (or alpha / sqrt(r) with rsLoRA). */
float bl_lora_scale(const bl_lora_config *c, int64_t r, double alpha);

/* Creates factors for every targeted module, each with its own r and alpha from c->patterns
 * (PEFT-identical init from seed; PISSA leaves A/B
 * zero for src/method to fill), attaches them. Fails when no module matches (naming the
 * targets and listing the module leaf names present). SEQ_CLS: the head tensors become
 * trainable (modules_to_save). */
balora_status bl_lora_init(bl_adapter *a, bl_module_set *s, const bl_lora_config *c, uint64_t seed);
/* Loads adapter_config.json + adapter_model.safetensors from dir (bl_peft_open + bl_peft_validate)
 * and attaches it, with per-module ranks and alphas from rank_pattern / alpha_pattern. Unsupported
 * settings (use_dora, bias != "none", layers_to_transform, layer_replication, embedding adapters,
 * modules_to_save other than the classification head), a key that names no module, a module
 * target_modules does not select, a rank that disagrees with r / rank_pattern, a shape mismatch,
 * a target without tensors fail naming the file, the field or tensor and the module.
 * keep_initial: also copy the loaded factors into A0/B0. */
balora_status bl_lora_load(bl_adapter *a, bl_module_set *s, const char *dir, bool keep_initial);
/* Writes dir/adapter_config.json and dir/adapter_model.safetensors (created atomically; dir is
 * created). meta: n_meta key/value pairs for "__metadata__" (besides "format": "pt").
 * It reads only a->cfg, a->set (module names), a->n, a->mods (A, B, their r and scale), a->lin_index
 * and the head fields, so a caller may fill a bl_adapter by hand without attaching it — e.g. PiSSA's
 * converted adapter (A' = [A; A0], B' = [B, -B0], r' = 2r, alpha' = 2 alpha).
 * Each module's alpha is its scale times r (or sqrt(r)); modules whose r or alpha differ from
 * cfg.r / cfg.alpha are written as rank_pattern / alpha_pattern (cfg.patterns verbatim when they
 * give every module its r and alpha, else one key per module leaf or per module), so that PEFT
 * and bl_lora_load rebuild the same ranks and scales. */
balora_status bl_lora_save(const bl_adapter *a, const char *dir, int n_meta, const char *const *meta_keys,
                           const char *const *meta_vals);
/* Detaches from the set and frees everything. Safe on a zeroed struct. */
void bl_lora_free(bl_adapter *a);

/* The trainable tensors, in PEFT key order (sorted), each with data and grad:
 * name = the adapter_model.safetensors key. Returns the count; fills up to cap entries. */
int bl_lora_trainables(const bl_adapter *a, bl_param *out, int cap);
void bl_lora_zero_grads(bl_adapter *a);
/* Writes the gradients, keyed like adapter_model.safetensors, to a safetensors file. */
balora_status bl_lora_save_grads(const bl_adapter *a, const char *path);
/* W += s B A for every module (bl_merge_lora_delta, the one merge kernel: src/io/merge.h) and
 * heads: data <- train_data; the adapter stays attached but should be freed afterwards.
 * In memory W is [out, in] for every module (GPT-2 Conv1D is transposed at load). */
balora_status bl_lora_merge_into_base(bl_adapter *a);

#endif
