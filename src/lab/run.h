/* The catastrophic-inheritance lab's experiment runner (issue 7).
 *
 *   1. bl_lab_pretrain   pre-trains a small decoder from scratch (random init, every weight
 *                        trained incl. embeddings: the engine's full fine-tuning mode) on the
 *                        corpus's pre-training documents, and writes a normal Hugging Face
 *                        folder (config.json, model.safetensors, tokenizer.json, vocab.txt).
 *   2. bl_lab_run        for each variant of a preset (a corpus / rank setting): pre-train once,
 *                        then fine-tune with every method x seed on the clean downstream mix
 *                        (the FT split of all three tasks, only the answer token trained), same
 *                        budget for all; evaluate in-distribution and OOD accuracy, inheritance
 *                        (bl_lab_score_set on the AFFECTED sets), the distance to the pre-trained
 *                        model's predictions (KL and top-1 agreement at the answer position),
 *                        keep loss curves and answer-position features for t-SNE.
 *   3. src/lab/report.h  turns the results into report.md, results.json and pictures.
 *
 * A preset is data (bl_lab_preset, a static table): no code path depends on its name.
 *
 * Methods (same steps, batch and data order for all; lr by a fixed rule per family:
 * adapters = lr_adapter, full fine-tuning = lr_adapter / 10):
 *   full            every weight trained
 *   lora            PEFT default init (kaiming-uniform A, B = 0)
 *   pissa           PiSSA init (exact SVD; W_res in place, A0/B0 kept)
 *   ba-lora         PiSSA init + BA-LoRA's NLG regularisers (reg config of the preset,
 *                   paper-v1 by default), teacher = the original model (BL_ADAPTER_INITIAL)
 *   ba-lora-no-cr / -no-dr / -no-svdr   the ablations: one lambda set to 0 */
#ifndef BL_LAB_RUN_H
#define BL_LAB_RUN_H
#include "lab/corpus.h"
#include "model/model.h"
#include "train/trainer.h"

typedef enum bl_lab_method {
    BL_LAB_M_FULL = 0,
    BL_LAB_M_LORA,
    BL_LAB_M_PISSA,
    BL_LAB_M_BALORA,
    BL_LAB_M_BALORA_NO_CR,
    BL_LAB_M_BALORA_NO_DR,
    BL_LAB_M_BALORA_NO_SVDR,
    BL_LAB_M_COUNT
} bl_lab_method;
#define BL_LAB_M_BIT(m) (1u << (m))
#define BL_LAB_M_ALL ((1u << BL_LAB_M_COUNT) - 1u)
#define BL_LAB_M_MAIN (BL_LAB_M_BIT(BL_LAB_M_FULL) | BL_LAB_M_BIT(BL_LAB_M_LORA) | BL_LAB_M_BIT(BL_LAB_M_PISSA) | BL_LAB_M_BIT(BL_LAB_M_BALORA))

const char *bl_lab_method_name(bl_lab_method m); /* "full", "lora", "pissa", "ba-lora", "ba-lora-no-cr", ... */
/* "lora,ba-lora" -> a BL_LAB_M_BIT mask ("all" = every method). Unknown names fail naming them. */
balora_status bl_lab_methods_parse(const char *list, uint32_t *mask);

/* Scores of one fine-tuned model (or of the pre-trained model itself). */
typedef enum bl_lab_metric {
    BL_LAB_ACC_ID = 0,  /* mean over the three tasks of TEST_ID accuracy */
    BL_LAB_ACC_ARITH,   /* TEST_ID accuracy per task */
    BL_LAB_ACC_FACT,
    BL_LAB_ACC_REVIEW,
    BL_LAB_ACC_OOD,     /* REVIEW TEST_OOD (spurious cue reversed) */
    BL_LAB_INHERIT,     /* bl_lab_score_set inheritance over the AFFECTED items of all tasks, pooled */
    BL_LAB_INH_NOISE,   /* ... restricted to items with one defect bit: noise (ARITH + FACT), */
    BL_LAB_INH_IMBAL,   /* imbalance (minority-class reviews), */
    BL_LAB_INH_BIAS,    /* bias (cue-reversed reviews) */
    BL_LAB_KL_PT,       /* mean KL(p_pretrained || p_model) at the answer position, TEST_ID of all tasks (nats) */
    BL_LAB_AGREE_PT,    /* top-1 agreement with the pre-trained model there */
    BL_LAB_FINAL_LOSS,  /* mean task loss (CE) of the last 10% of steps (NaN for the pre-trained model) */
    BL_LAB_METRIC_COUNT
} bl_lab_metric;
const char *bl_lab_metric_key(bl_lab_metric k);   /* "acc_id", "acc_ood", "inherit", ... (results.json) */
const char *bl_lab_metric_label(bl_lab_metric k); /* "ID acc", "OOD acc", ... (tables, charts) */

typedef struct bl_lab_arch {
    int32_t family;       /* bl_family: BL_FAMILY_LLAMA or BL_FAMILY_GPT2 */
    int32_t layers, hidden, heads, intermediate; /* intermediate 0 = default (llama 8/3 C rounded to 16, gpt2 4 C) */
} bl_lab_arch;

typedef struct bl_lab_pretrain_cfg {
    bl_lab_arch arch;
    int64_t steps, batch;
    double lr, warmup_ratio, weight_decay;
    uint64_t seed;
} bl_lab_pretrain_cfg;

typedef struct bl_lab_pretrain_result {
    int64_t steps, n_docs, tokens;
    double first_loss, last_loss, seconds;
    int64_t n_params;
} bl_lab_pretrain_result;

/* Progress of a long job: a line the caller may show. */
typedef struct bl_lab_progress {
    int64_t run, n_runs;       /* 1-based index of the current run (pre-training counts as a run) */
    const char *what;          /* "pretrain noise=0.2" / "lora seed 2" */
    int64_t step, total_steps; /* within the run */
    double loss;
    double elapsed_s, eta_s;   /* whole job; eta < 0: unknown */
    bool eta_lower_bound;      /* eta_s only counts the current run (later runs' cost not measured yet) */
    bool run_done;             /* the run finished (one call per run with this set) */
} bl_lab_progress;
typedef void (*bl_lab_progress_fn)(const bl_lab_progress *p, void *user);

/* Pre-train on c's documents (each truncated to 128 tokens) and write an HF folder to out_dir
 * (created). log_path: metrics log (JSONL) or NULL. progress may be NULL. */
/* The lab's pre-training recipe, shared by the decoder and the encoder arms: AdamW (beta2 0.99,
 * weight decay), cosine schedule with warmup, gradient clipping at 1, no accumulation. */
void bl_lab_pretrain_train_cfg(bl_train_cfg *tc, double lr, double weight_decay, double warmup_ratio, int64_t batch,
                               int64_t steps, uint64_t seed, int64_t max_len);
/* Checkpoints of a pre-training, as the trainer's out_dir / save_every / resume (bl_train_cfg): dir
 * receives dir/checkpoint-STEP (every save_every steps, and when balora_interrupt stops the run);
 * resume: NULL, a checkpoint folder or "latest" (in dir). The resumed model is bit-identical to an
 * uninterrupted run's (same thread count). */
typedef struct bl_lab_ckpt {
    const char *dir;
    int64_t save_every;
    int save_keep;             /* keep the last N checkpoints (0 = all) */
    const char *resume;
} bl_lab_ckpt;
/* ck may be NULL (no checkpoints: an interrupted pre-training keeps nothing). */
balora_status bl_lab_pretrain(const bl_lab_corpus *c, const bl_lab_pretrain_cfg *p, const char *out_dir,
                              const char *log_path, const bl_lab_ckpt *ck, bl_lab_progress_fn progress, void *user,
                              bl_lab_pretrain_result *res);
/* The config of the model bl_lab_pretrain builds (also for tests). */
balora_status bl_lab_arch_config(const bl_lab_arch *a, int64_t vocab, bl_config *out);

/* ---------------------------------------------------------------- presets (data) */

#define BL_LAB_MAX_VARIANTS 12
typedef struct bl_lab_variant {
    const char *label;         /* "noise 0.2" (tables, folder names use it sanitised) */
    double noise, imbalance, cue_agree; /* < 0: the preset's value */
    int32_t rank;              /* <= 0: the preset's value */
} bl_lab_variant;

typedef struct bl_lab_preset {
    const char *name, *description;
    /* corpus */
    uint64_t corpus_seed;
    int64_t n_pre_arith, n_pre_fact, n_pre_review, n_ft, n_test;
    double noise, imbalance, cue_frac, cue_agree;
    /* model and pre-training */
    bl_lab_pretrain_cfg pretrain;
    /* fine-tuning: the same budget for every method */
    int64_t ft_steps, ft_batch;
    double lr_adapter;               /* adapters; full fine-tuning uses lr_adapter / 10 (the fixed rule, bl_lab_lr_full) */
    int32_t rank;
    double alpha_per_rank;           /* alpha = alpha_per_rank * r */
    const char *targets;             /* "all-linear" */
    const char *reg_recipe;          /* "paper-v1" */
    uint32_t methods;                /* BL_LAB_M_BIT mask */
    int32_t n_seeds;
    /* pictures */
    int32_t tsne_points;             /* review items in the t-SNE maps (half ID, half OOD) */
    int32_t tsne_iters;
    int32_t n_variants;              /* 0 = one variant with the preset's values */
    bl_lab_variant variants[BL_LAB_MAX_VARIANTS];
} bl_lab_preset;

/* The learning rate of full fine-tuning: lr_adapter / 10 (one fixed rule for every preset). */
double bl_lab_lr_full(const bl_lab_preset *p);

/* The built-in presets: "demo", "mini" (tests), "grid", "rank-sweep", "ablation". */
int bl_lab_preset_count(void);
const bl_lab_preset *bl_lab_preset_at(int i);
const bl_lab_preset *bl_lab_preset_find(const char *name); /* NULL when unknown */
/* The corpus config of variant v (-1 = the preset's own values). */
void bl_lab_preset_corpus(const bl_lab_preset *p, int v, bl_lab_corpus_config *out);
int32_t bl_lab_preset_rank(const bl_lab_preset *p, int v);

/* ---------------------------------------------------------------- results */

#define BL_LAB_N_SNAP 3   /* t-SNE snapshots: step 0, mid, end */

typedef struct bl_lab_cell {        /* one (variant, method) */
    bool run;                       /* the method is part of the preset */
    double *val;                    /* [n_seeds, BL_LAB_METRIC_COUNT] */
    double seconds;                 /* training time, all seeds */
    float *loss;                    /* [n_seeds, ft_steps] task loss per step */
    /* t-SNE of the first seed's answer-position features (lora and ba-lora only) */
    bool have_tsne;
    int64_t snap_step[BL_LAB_N_SNAP];
    float *tsne;                    /* [BL_LAB_N_SNAP, n_tsne, 2] */
} bl_lab_cell;

typedef struct bl_lab_variant_result {
    char label[64];
    bl_lab_corpus_config corpus;
    int32_t rank;
    bl_lab_counts counts;
    int32_t vocab;
    bl_lab_pretrain_result pre;
    double pre_val[BL_LAB_METRIC_COUNT]; /* the pre-trained model itself */
    int64_t n_eval[BL_LAB_TASK_COUNT][BL_LAB_SPLIT_COUNT]; /* set sizes */
    bl_lab_cell cell[BL_LAB_M_COUNT];
} bl_lab_variant_result;

typedef struct bl_lab_results {
    bl_lab_preset preset;           /* as run (seeds override applied) */
    int n_variants;
    bl_lab_variant_result *var;     /* [n_variants] */
    int64_t n_tsne;
    int32_t *tsne_cls;              /* [n_tsne] 0 neg/ID, 1 pos/ID, 2 neg/OOD, 3 pos/OOD */
    uint64_t *seeds;                /* [n_seeds] */
    double seconds;                 /* the whole job */
    int threads;
    char started[32];               /* UTC time "2026-01-01 12:00:00" */
    bl_arena arena;
} bl_lab_results;

typedef struct bl_lab_run_opts {
    const char *out_dir;            /* report folder (models under out_dir/models, logs under out_dir/logs) */
    int32_t n_seeds;                /* 0 = the preset's */
    uint32_t methods;               /* BL_LAB_M_BIT mask; 0 = the preset's */
    bl_lab_progress_fn progress;
    void *user;
} bl_lab_run_opts;

/* Runs the preset; on success *res owns the results (bl_lab_results_free). */
balora_status bl_lab_run(const bl_lab_preset *p, const bl_lab_run_opts *o, bl_lab_results *res);
void bl_lab_results_free(bl_lab_results *r);

/* Evaluate a causal LM (adapter attached or not) on the corpus: fills val[BL_LAB_METRIC_COUNT]
 * (FINAL_LOSS left NaN). pt_logp: [n_id, V] log-probabilities of the pre-trained model at the
 * answer position of every TEST_ID item (tasks in order), or NULL (KL_PT, AGREE_PT = NaN). */
balora_status bl_lab_evaluate(bl_model *m, const bl_lab_corpus *c, const float *pt_logp, double *val);

#endif
