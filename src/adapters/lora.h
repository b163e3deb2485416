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
 * (PCRE2); "all-linear" = every linear module of the set (the LM head is never in the set). */
#ifndef BL_LORA_H
#define BL_LORA_H
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
/* scale for a config: alpha / r (or / sqrt(r)). */
float bl_lora_scale(const bl_lora_config *c);

/* Creates factors for every targeted module (PEFT-identical init from seed; PISSA leaves A/B
 * zero for src/method to fill), attaches them. Fails when no module matches (naming the
 * targets and listing the module leaf names present). SEQ_CLS: the head tensors become
 * trainable (modules_to_save). */
balora_status bl_lora_init(bl_adapter *a, bl_module_set *s, const bl_lora_config *c, uint64_t seed);
/* Loads adapter_config.json + adapter_model.safetensors from dir and attaches it. Unsupported
 * settings (use_dora, rank_pattern/alpha_pattern entries, bias != "none", layers_to_transform,
 * a key that names no module, a shape mismatch, a target without tensors) fail naming the field
 * or tensor. keep_initial: also copy the loaded factors into A0/B0. */
balora_status bl_lora_load(bl_adapter *a, bl_module_set *s, const char *dir, bool keep_initial);
/* Writes dir/adapter_config.json and dir/adapter_model.safetensors (created atomically; dir is
 * created). meta: n_meta key/value pairs for "__metadata__" (besides "format": "pt").
 * It reads only a->cfg, a->set (module names), a->n, a->mods (A, B and their r), a->lin_index and
 * the head fields, so a caller may fill a bl_adapter by hand without attaching it — e.g. PiSSA's
 * converted adapter (A' = [A; A0], B' = [B, -B0], r' = 2r, alpha' = 2 alpha). */
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
/* W += s B A for every module (and heads: data <- train_data); the adapter stays attached
 * but should be freed afterwards (merge command). GPT-2 Conv1D handled (W is [out, in]). */
balora_status bl_lora_merge_into_base(bl_adapter *a);

#endif
