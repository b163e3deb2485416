/* balora: fine-tune transformer language models with LoRA, PiSSA and BA-LoRA, in C.
 *
 * The public API is small on purpose:
 *   - every function that can fail returns a balora_status; on failure
 *     balora_last_error() holds a message naming the file, the field and what is
 *     wrong, with a hint. The library never prints and never exits.
 *   - objects are opaque handles in init/free pairs (balora_model_init / balora_model_free,
 *     balora_tokenizer_init / balora_tokenizer_free); free functions accept NULL.
 *   - sizes are 64-bit; token ids are int64_t.
 *   - a handle is used by one thread at a time.
 * Typical use (error checks left out):
 *     balora_model *m;      balora_model_init(&m, "models/gpt2");
 *     balora_tokenizer *t;  balora_tokenizer_init(&t, "models/gpt2");
 *     int64_t ids[64], n;   balora_tokenizer_encode(t, "Hello", -1, true, ids, 64, &n);
 *     float *logits = malloc(n * balora_model_n_outputs(m) * sizeof(float));
 *     balora_model_forward(m, 1, n, ids, NULL, BALORA_ADAPTER_MODE_ON, logits, n * balora_model_n_outputs(m));
 *     balora_model_free(m); balora_tokenizer_free(t);
 * Internals (ops, model families, trainer, tokenizers) live under src/ with their own
 * headers; the CLI in cli/ is one user of this API. */
#ifndef BALORA_H
#define BALORA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BALORA_VERSION_MAJOR 0
#define BALORA_VERSION_MINOR 1
#define BALORA_VERSION_PATCH 0

typedef enum balora_status {
    BALORA_STATUS_OK = 0,
    BALORA_STATUS_IO,          /* a file could not be opened, read or written */
    BALORA_STATUS_FORMAT,      /* a file is malformed (bad JSON, truncated safetensors, ...) */
    BALORA_STATUS_INVALID,     /* an argument or a value is out of range or inconsistent */
    BALORA_STATUS_UNSUPPORTED, /* a valid input that balora cannot honour (named in the message) */
    BALORA_STATUS_NOMEM,       /* an allocation failed */
    BALORA_STATUS_INTERNAL,    /* a bug: please report it */
    BALORA_STATUS_INTERRUPTED  /* stopped by balora_interrupt; the work so far is kept (the message says where) */
} balora_status;

/* The message of the last failure in this thread ("" if none). */
const char *balora_last_error(void);
/* A short name for a status ("io", "format", ...). */
const char *balora_status_name(balora_status st);
/* "0.1.0" */
const char *balora_version(void);

/* Asks the running long job (training, eval, the lab) to stop at its next safe point: training
 * finishes the current optimizer step, writes a checkpoint in its output folder and returns
 * BALORA_STATUS_INTERRUPTED with a message naming the checkpoint; eval and the lab keep the
 * results written so far. Async-signal-safe: a SIGINT/SIGTERM handler may call it. signo is
 * kept (> 0; the CLI exits 128 + signo). */
void balora_interrupt(int signo);
/* 0, or the signo of the last balora_interrupt since balora_interrupt_clear. */
int balora_interrupted(void);
void balora_interrupt_clear(void);

/* Log callback: the library reports progress only through it (NULL = silent).
 * level: 0 = info, 1 = warning, 2 = verbose detail. */
typedef void (*balora_log_fn)(int level, const char *msg, void *user);
void balora_log_set(balora_log_fn fn, void *user);

/* Threads used by balora's own kernels and by the BLAS (never both at once). 0 = all cores. */
void balora_threads_set(int n);
int balora_threads_get(void);
/* Which BLAS kernels are in use, e.g. "OpenBLAS 0.3.21 core=SapphireRapids threads=2". */
const char *balora_blas_info(void);

/* ====================================================================== models */

typedef struct balora_model balora_model;

/* What a model's forward computes. */
typedef enum balora_model_kind {
    BALORA_MODEL_KIND_CAUSAL_LM = 0, /* *ForCausalLM / GPT2LMHeadModel / llama2.c: logits [B, T, vocab] */
    BALORA_MODEL_KIND_SEQ_CLS        /* encoders (bert, roberta, deberta-v2) and decoder
                                        *ForSequenceClassification: logits [B, num_labels] */
} balora_model_kind;

/* Loads a model: a Hugging Face folder (config.json + safetensors; the kind comes from its
 * architectures) or a llama2.c .bin checkpoint (a causal LM). Encoders load as classifiers (a head
 * missing from the checkpoint is created from seed 42). */
balora_status balora_model_init(balora_model **m, const char *path);
void balora_model_free(balora_model *m);
balora_model_kind balora_model_kind_get(const balora_model *m);
/* Vocabulary size (the ids a forward accepts are in [0, vocab)). */
int64_t balora_model_vocab_size(const balora_model *m);
/* Logits per position (causal LM: vocab) or per example (classifier: num_labels). */
int64_t balora_model_n_outputs(const balora_model *m);
/* The longest sequence the model's positions allow (0 = no limit of its own, e.g. RoPE). */
int64_t balora_model_max_tokens(const balora_model *m);
/* Number of base parameters. */
int64_t balora_model_n_params(const balora_model *m);
/* Writes the model as a Hugging Face folder (config.json, model.safetensors, the source folder's
 * tokenizer files): a llama2.c checkpoint converted, a merged adapter, a full fine-tune.
 * Decoders only for now (an encoder classifier fails with UNSUPPORTED). */
balora_status balora_model_save(const balora_model *m, const char *dir);

/* Whether a forward uses the attached adapter. */
typedef enum balora_adapter_mode {
    BALORA_ADAPTER_MODE_ON = 0,  /* y = W x + s B A x (no adapter attached: the base model) */
    BALORA_ADAPTER_MODE_OFF      /* the base model, the adapter ignored */
} balora_adapter_mode;

/* Runs the model on B sequences of T tokens: ids [B, T]; mask [B, T] (1 = real token, 0 = padding;
 * NULL = all real). Writes logits [B, T, vocab] (causal LM) or [B, num_labels] (classifier) into
 * logits, which holds cap floats (fails naming the size needed when too small). */
balora_status balora_model_forward(balora_model *m, int64_t B, int64_t T, const int64_t *ids, const int64_t *mask,
                                   balora_adapter_mode mode, float *logits, int64_t cap);

/* ====================================================================== adapters */

/* Loads a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) and attaches
 * it to m (replacing any adapter attached before). */
balora_status balora_adapter_load(balora_model *m, const char *dir);
/* Writes the attached adapter as a PEFT folder (a PiSSA adapter trained by balora_model_train: as
 * the config's pissa_save says). INVALID when m has none. */
balora_status balora_adapter_save(const balora_model *m, const char *dir);
/* Whether an adapter is attached. */
bool balora_adapter_attached(const balora_model *m);
/* Detaches and frees the adapter (the model is the base model again; PiSSA's W_res stays). */
void balora_adapter_detach(balora_model *m);
/* Merges the attached adapter into m's weights in memory (W += s B A) and detaches it. */
balora_status balora_adapter_merge(balora_model *m);
/* Merges an adapter folder into a model folder at the file level (each tensor keeps its dtype)
 * and writes out_dir: what `balora merge` does. */
balora_status balora_adapter_merge_files(const char *model_dir, const char *adapter_dir, const char *out_dir);

/* ====================================================================== tokenizers */

typedef struct balora_tokenizer balora_tokenizer;

typedef enum balora_token_role {
    BALORA_TOKEN_ROLE_BOS = 0, BALORA_TOKEN_ROLE_EOS, BALORA_TOKEN_ROLE_PAD, BALORA_TOKEN_ROLE_UNK,
    BALORA_TOKEN_ROLE_CLS, BALORA_TOKEN_ROLE_SEP, BALORA_TOKEN_ROLE_MASK
} balora_token_role;

/* Loads a Hugging Face tokenizer: a model folder (tokenizer.json, vocab.json + merges.txt,
 * vocab.txt, tokenizer.model, ...) or a tokenizer.json file. Ids equal transformers'. */
balora_status balora_tokenizer_init(balora_tokenizer **t, const char *dir_or_file);
void balora_tokenizer_free(balora_tokenizer *t);
/* Encodes UTF-8 text (len bytes; len < 0 = NUL-terminated). add_special: BOS / [CLS] ... [SEP] as
 * the tokenizer's post-processor adds them. Writes up to cap ids; *n = the full count (INVALID
 * when cap < *n: call again with a larger buffer). */
balora_status balora_tokenizer_encode(balora_tokenizer *t, const char *text, int64_t len, bool add_special,
                                      int64_t *ids, int64_t cap, int64_t *n);
/* Decodes ids as transformers' decode(ids, skip_special_tokens). *text: NUL-terminated, owned by
 * the caller (balora_string_free); *len (may be NULL) excludes the NUL. */
balora_status balora_tokenizer_decode(balora_tokenizer *t, const int64_t *ids, int64_t n, bool skip_special,
                                      char **text, int64_t *len);
int64_t balora_tokenizer_vocab_size(const balora_tokenizer *t);
/* The id of a special token, or -1 when the tokenizer has none for that role. */
int64_t balora_tokenizer_special(const balora_tokenizer *t, balora_token_role role);
/* Frees a string the library returned. */
void balora_string_free(char *s);

/* ====================================================================== generation */

#define BALORA_GENERATE_MAX_STOP 16

typedef struct balora_generate_config {
    int64_t max_new_tokens;       /* 128 */
    double temperature;           /* 0 = greedy (default) */
    int64_t top_k;                /* 0 = off */
    double top_p;                 /* 1 = off */
    uint64_t seed;                /* 0; sampling is reproducible for a seed */
    int n_stop;                   /* stop strings (need a tokenizer): the text is cut before the first */
    const char *stop[BALORA_GENERATE_MAX_STOP];
    balora_adapter_mode adapter;  /* BALORA_ADAPTER_MODE_ON */
} balora_generate_config;
void balora_generate_config_default(balora_generate_config *c);

/* Continues prompt [n_prompt] (a causal LM) with a key-value cache until max_new_tokens, an EOS
 * (the tokenizer's and config.json's) or a stop string. out_ids receives up to cap new ids (the EOS
 * included), *n_out their count. With a tokenizer (t may be NULL) and text non-NULL, *text is the
 * completion (special tokens skipped; balora_string_free). */
balora_status balora_model_generate(balora_model *m, balora_tokenizer *t, const int64_t *prompt, int64_t n_prompt,
                                    const balora_generate_config *c, int64_t *out_ids, int64_t cap, int64_t *n_out,
                                    char **text);

/* ====================================================================== training */

typedef enum balora_train_task {
    BALORA_TRAIN_TASK_CAUSAL_LM = 0, /* next-token cross-entropy on the response (or every) token */
    BALORA_TRAIN_TASK_SEQ_CLS        /* sequence classification (CE) or regression (MSE) */
} balora_train_task;

typedef enum balora_train_method {
    BALORA_TRAIN_METHOD_LORA = 0,   /* LoRA (init: default or gaussian) */
    BALORA_TRAIN_METHOD_PISSA,      /* LoRA initialised from the top-r SVD of each weight */
    BALORA_TRAIN_METHOD_BALORA,     /* PiSSA + BA-LoRA's regularisers (consistency, diversity, SVD) */
    BALORA_TRAIN_METHOD_FULL        /* every base weight (causal LM: but the embeddings and LM head) */
} balora_train_method;

/* One optimizer step's report. */
typedef struct balora_train_progress {
    int64_t step, total_steps;    /* done / planned */
    double epoch;                 /* fractional */
    double loss, task_loss;       /* total (task + BA-LoRA terms) and task loss of this step */
    double lr, grad_norm;         /* learning rate used; gradient L2 norm before clipping */
    int64_t tokens;               /* real tokens so far */
    double elapsed_s, eta_s;
    bool checkpoint;              /* a checkpoint was written at this step */
    bool final;                   /* the last report of the run */
} balora_train_progress;
typedef void (*balora_train_progress_fn)(const balora_train_progress *p, void *user);

/* The options of `balora train` (its --help names them the same; strings are borrowed). */
typedef struct balora_train_config {
    balora_train_task task;
    balora_train_method method;
    const char *data;             /* training data file (required) */
    const char *out_dir;          /* causal LM: checkpoints (out_dir/checkpoint-STEP); seq-cls: the run
                                     folder (out_dir/adapter or out_dir/model, results.json; required) */
    const char *tokenizer;        /* NULL = the model folder's */
    /* adapter */
    const char *targets;          /* "auto" (the architecture row's default: q_proj,v_proj; gpt2 c_attn; bert query,key,value; deberta-v2 query_proj,key_proj,value_proj), "all-linear", "a,b" */
    int64_t rank;                 /* 8 */
    double alpha;                 /* 8 */
    double dropout;               /* 0 */
    bool rslora;                  /* scale alpha / sqrt(r) */
    const char *init;             /* "auto", "default", "gaussian", "pissa", "pissa_niter_K" */
    const char *pissa_save;       /* "converted" (a rank-2r LoRA of the original model) or "as-is" */
    bool save_residual;           /* PiSSA, causal LM: also write out_dir/residual (W_res) */
    bool train_embeddings;        /* full, causal LM: also train the embeddings and LM head */
    /* optimizer and schedule */
    double lr;                    /* 2e-4 */
    const char *schedule;         /* "linear", "constant", "cosine" */
    double warmup_ratio;          /* 0 (seq-cls 0.06) */
    int64_t warmup_steps;         /* > 0 overrides warmup_ratio */
    double weight_decay, adam_beta1, adam_beta2, adam_eps; /* 0, 0.9, 0.999, 1e-8 */
    double loraplus_lr_ratio;     /* LoRA+: B matrices and biases at lr * ratio (0 = off; adapters only) */
    double max_grad_norm;         /* 1 (0 = no clipping) */
    int64_t batch_size;           /* 4 (seq-cls 32) */
    int64_t grad_accum;           /* 1 */
    int64_t epochs;               /* 1 (seq-cls 3); used when max_steps is 0 */
    int64_t max_steps;            /* 0 */
    int64_t max_len;              /* 512 (seq-cls 128) */
    int64_t seed;                 /* 42 */
    int64_t threads;              /* > 0: balora_threads_set(threads); 0 = leave the thread count as it is */
    /* checkpoints and logs (causal LM) */
    int64_t save_every;           /* 0 = no checkpoints */
    int64_t save_total_limit;     /* 3 */
    const char *resume;           /* NULL, a checkpoint folder, or "latest" */
    const char *log;              /* metrics per step: FILE.jsonl or FILE.csv (both tasks) */
    /* causal-LM data */
    const char *data_format;      /* "jsonl" (prompt/response), "text" or "tokens" */
    const char *prompt_field, *response_field; /* "query", "response" */
    const char *template_text;    /* "alpaca" or a template with {query} */
    bool no_shuffle, pad_to_max;
    /* BA-LoRA: < 0 / NULL = the recipe's value */
    const char *recipe;           /* "paper-v1" or "paper-v6" */
    double lambda1, lambda2, lambda3;
    const char *lambda_schedule[3];
    double lambda_warmup_ratio, lambda_ramp_ratio, tau;
    int64_t svd_k, top_k_entropy;
    const char *svd_norm;         /* "sum", "fro", "none" */
    /* sequence classification */
    const char *dev;              /* dev file scored after training (NULL = none) */
    const char *glue_task;        /* "sst2", "mnli", ... or NULL (generic CSV/TSV/JSONL) */
    const char *text_col, *text_pair_col, *label_col, *labels; /* generic data (NULL = defaults) */
    bool regression, no_header, skip_bad_rows;
    double label_noise, imbalance;
    int64_t imbalance_major, max_train, data_seed, num_labels, log_every; /* 0, 0, -1 (= seed), 0, 10 */
    /* progress after each optimizer step (NULL = none) */
    balora_train_progress_fn progress;
    void *progress_user;
} balora_train_config;
/* The defaults of `balora train` for a task (seq-cls: batch 32, 3 epochs, max_len 128, warmup 0.06). */
void balora_train_config_default(balora_train_config *c, balora_train_task task);

typedef struct balora_train_result {
    int64_t steps;                /* optimizer steps done in total (including before a resume) */
    double first_loss, last_loss;
    double seconds;
    int64_t tokens;               /* causal LM: tokens trained in this process */
    double dev_score;             /* seq-cls with a dev file: the GLUE score (else NAN) */
} balora_train_result;

/* Trains m. Causal LM: m must have no adapter; the new adapter (or, for full fine-tuning, the
 * weights) is trained in m, so a forward or generate afterwards uses it, and it is written to
 * out_dir as `balora train` writes it (also balora_adapter_save). Seq-cls: runs `balora train
 * --task seq-cls` on the folder m was loaded from, then attaches out_dir/adapter to m.
 * res may be NULL. */
balora_status balora_model_train(balora_model *m, const balora_train_config *c, balora_train_result *res);

#ifdef __cplusplus
}
#endif
#endif
