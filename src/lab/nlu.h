/* The catastrophic-inheritance lab's encoder (NLU) arm (issue 7):
 *
 *   1. bl_lab_nlu_pretrain  masked-language-model pre-training of a tiny BERT-shaped encoder from
 *                           scratch (random init, every weight trained: the encoders' full
 *                           fine-tuning mode, through the trainer of src/train/trainer.h) on the
 *                           corpus's pre-training documents; BERT masking (15%, 80/10/10, static:
 *                           mask_copies differently masked copies of each document). Vocabulary =
 *                           the corpus's words + one reserved [MASK] id (= corpus vocab_size);
 *                           <bos> plays [CLS] (token 0, the pooler's input), <eos> [SEP], <pad> pad.
 *                           Writes an HF BertForMaskedLM folder (bl_mlm_save: config.json,
 *                           model.safetensors with bert.* and cls.predictions.*, decoder tied to
 *                           the embeddings); fine-tuning creates the pooler and the classifier
 *                           from each seed, as transformers does.
 *   2. bl_lab_nlu_run       then fine-tunes the REVIEW task's classification form (sentiment,
 *                           <bos> + prompt -> 0 negative / 1 positive; the corpus's FT split) with
 *                           full fine-tuning, LoRA, PiSSA and BA-LoRA (PiSSA init + the NLU
 *                           regularisers, paper-v1 NLU lambdas), n_seeds each, same steps / batch /
 *                           data order, and scores ID accuracy (TEST_ID), OOD accuracy (TEST_OOD:
 *                           the spurious name cue reversed) and inheritance (bl_lab_score_set on the
 *                           AFFECTED items: the prediction follows the pre-training defect — the
 *                           cue's label on cue-reversed items, the majority label on minority-class
 *                           items — against the true label).
 *   3. bl_lab_nlu_report    writes nlu_report.md and nlu_results.json (mean ± std over seeds, Welch
 *                           test of each method against LoRA) and the pictures nlu_loss, nlu_scores,
 *                           nlu_tsne (.png and .svg, drawn by the decoder arm's code in report.h).
 *
 * Presets are data (bl_lab_nlu_preset_find): "nlu" and "nlu-mini" (tests). */
#ifndef BL_LAB_NLU_H
#define BL_LAB_NLU_H
#include "lab/corpus.h"

typedef enum bl_nlu_method { BL_NLU_FULL = 0, BL_NLU_LORA, BL_NLU_PISSA, BL_NLU_BALORA, BL_NLU_M_COUNT } bl_nlu_method;
const char *bl_nlu_method_name(bl_nlu_method m); /* "full", "lora", "pissa", "ba-lora" */

typedef enum bl_nlu_metric { BL_NLU_ACC_ID = 0, BL_NLU_ACC_OOD, BL_NLU_INHERIT, BL_NLU_FINAL_LOSS, BL_NLU_METRIC_COUNT } bl_nlu_metric;
const char *bl_nlu_metric_key(bl_nlu_metric k);   /* "acc_id", "acc_ood", "inherit", "final_loss" */
const char *bl_nlu_metric_label(bl_nlu_metric k); /* "ID acc", ... */

#define BL_NLU_MAX_SEEDS 16
#define BL_NLU_MAX_CURVE 2048   /* fine-tuning loss steps kept per run (the loss picture shows the first ones) */
#define BL_NLU_N_SNAP 3         /* t-SNE maps at step 0, ft_steps / 2, ft_steps */
#define BL_NLU_TSNE_POINTS 200  /* held-out review items in the maps: half TEST_ID, half TEST_OOD */
#define BL_NLU_TSNE_ITERS 500

typedef struct bl_lab_nlu_preset {
    const char *name, *description;
    /* corpus */
    uint64_t corpus_seed;
    int64_t n_pre_arith, n_pre_fact, n_pre_review, n_ft, n_test;
    double imbalance, cue_frac, cue_agree;
    /* encoder and MLM pre-training */
    int32_t layers, hidden, heads, intermediate;
    int64_t pre_steps, pre_batch;
    int32_t mask_copies;
    double mask_prob, pre_lr, pre_warmup_ratio, pre_weight_decay;
    uint64_t pre_seed;
    /* fine-tuning: the same budget for every method; full fine-tuning lr = lr_adapter / 10 */
    int64_t ft_steps, ft_batch;
    double lr_adapter;
    int32_t rank;
    double alpha_per_rank;
    const char *targets;
    int32_t n_seeds;
} bl_lab_nlu_preset;

const bl_lab_nlu_preset *bl_lab_nlu_preset_find(const char *name); /* NULL when unknown */
int bl_lab_nlu_preset_count(void);
const bl_lab_nlu_preset *bl_lab_nlu_preset_at(int i);
void bl_lab_nlu_preset_corpus(const bl_lab_nlu_preset *p, bl_lab_corpus_config *out);

typedef struct bl_lab_nlu_pre_result {
    int64_t steps, n_examples, n_masked, n_params;
    double first_loss, last_loss;      /* mean MLM loss of the first / last 10% of steps */
    double seconds;
    /* The pre-trained model itself, by fill-in: "<bos> review... verdict [MASK] . <eos>", the arg-max of
     * the MLM logits over the two verdict words; ID acc, OOD acc, inherit as the fine-tuned models'
     * (FINAL_LOSS NaN). Shows how much of the pre-training defect the pre-trained encoder carries. */
    double probe[BL_NLU_METRIC_COUNT];
} bl_lab_nlu_pre_result;

/* A progress line the caller may show (pre-training every 10% of its steps with the ETA, then each run). */
typedef void (*bl_lab_nlu_progress_fn)(const char *line, void *user);

/* Pre-train on c's documents (each truncated to 128 tokens) and write the HF folder out_dir
 * (created). loss_curve: [p->pre_steps] per-step MLM loss, or NULL. */
balora_status bl_lab_nlu_pretrain(const bl_lab_corpus *c, const bl_lab_nlu_preset *p, const char *out_dir,
                                  float *loss_curve, bl_lab_nlu_progress_fn progress, void *user, bl_lab_nlu_pre_result *res);

typedef struct bl_lab_nlu_results {
    bl_lab_nlu_preset preset;          /* as run (seeds override applied) */
    bl_lab_counts counts;
    int32_t vocab;
    int64_t n_ft, n_id, n_ood, n_affected;
    bl_lab_nlu_pre_result pre;
    double val[BL_NLU_M_COUNT][BL_NLU_MAX_SEEDS][BL_NLU_METRIC_COUNT];
    double method_seconds[BL_NLU_M_COUNT];
    uint64_t seeds[BL_NLU_MAX_SEEDS];
    double seconds;
    char started[32];
    /* pictures: per-step fine-tuning loss (first min(ft_steps, BL_NLU_MAX_CURVE) steps) */
    float loss[BL_NLU_M_COUNT][BL_NLU_MAX_SEEDS][BL_NLU_MAX_CURVE];
    /* t-SNE maps of the pooled representation (what the classifier reads) of n_tsne held-out review
     * items, first seed, LoRA (map 0) and BA-LoRA (map 1), at steps snap_step[] */
    int64_t n_tsne;                                         /* 0 = no maps (too few test items) */
    int32_t tsne_cls[BL_NLU_TSNE_POINTS];                   /* label + 2 * (cue reversed, i.e. TEST_OOD) */
    int64_t snap_step[BL_NLU_N_SNAP];
    float tsne[2][BL_NLU_N_SNAP][BL_NLU_TSNE_POINTS][2];
} bl_lab_nlu_results;

/* Runs the preset (n_seeds 0 = the preset's; 1..BL_NLU_MAX_SEEDS) with models under out_dir/nlu_model. */
balora_status bl_lab_nlu_run(const bl_lab_nlu_preset *p, const char *out_dir, int32_t n_seeds, bl_lab_nlu_progress_fn progress,
                             void *user, bl_lab_nlu_results *res);
/* out_dir/nlu_report.md, out_dir/nlu_results.json and the pictures out_dir/nlu_{loss,scores,tsne}.{png,svg}. */
balora_status bl_lab_nlu_report(const bl_lab_nlu_results *r, const char *out_dir);
/* The Markdown table (caller frees). */
balora_status bl_lab_nlu_table(const bl_lab_nlu_results *r, char **out);

#endif
