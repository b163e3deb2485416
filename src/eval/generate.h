/* Text generation: sampling (greedy, temperature, top-k, top-p; seeded), EOS and stop strings,
 * batches of prompts of different lengths over the key-value cache (src/model/kv.h), and the
 * model + adapter + tokenizer bundle the CLI's generate and eval commands load.
 *
 * Sampling, in the order transformers applies its logits warpers: temperature, then top-k (the k
 * highest logits), then top-p (drop the least likely tokens whose cumulative probability is
 * <= 1 - top_p, always keeping the most likely), then one draw from the renormalised probabilities.
 * temperature 0 is greedy (argmax, the first of ties), whatever top-k / top-p say. Tokens whose
 * logit ties the lowest kept one are kept too (transformers' top-k keeps such ties; its top-p splits
 * them in torch.sort's unspecified order). The draw walks the kept tokens in id order, so logits
 * perturbed by rounding (a batch computed in other shapes) change a draw only when it falls within
 * the perturbation of a boundary.
 * Every prompt draws from its own generator seeded by (seed, the prompt's index), so a prompt's
 * completion does not depend on the batch it was decoded in, and a seed repeats its results.
 *
 * A completion ends at max_new_tokens, at an EOS id (kept in ids, not in the text), or when its
 * decoded text contains a stop string: the text is then cut before the first stop string (as
 * vLLM / the OpenAI API do); ids keep every generated token. */
#ifndef BL_EVAL_GENERATE_H
#define BL_EVAL_GENERATE_H
#include "adapters/lora.h"
#include "model/kv.h"
#include "tok/tok.h"

#define BL_GEN_MAX_EOS 8
#define BL_GEN_MAX_STOP 16

typedef struct bl_gen_opts {
    int64_t max_new_tokens;     /* default 128 */
    double temperature;         /* 0 = greedy (default) */
    int64_t top_k;              /* 0 = off */
    double top_p;               /* 1 = off; in (0, 1] */
    uint64_t seed;
    int n_stop;
    const char *stop[BL_GEN_MAX_STOP]; /* stop strings (need a tokenizer) */
    int n_eos;
    int64_t eos[BL_GEN_MAX_EOS];       /* ids that end a completion */
    bl_adapter_mode mode;       /* BL_ADAPTER_ON (default) or BL_ADAPTER_OFF (the base model) */
    int64_t max_N;              /* tokens per forward call while reading prompts (default 256) */
} bl_gen_opts;
void bl_gen_opts_default(bl_gen_opts *o);
balora_status bl_gen_opts_check(const bl_gen_opts *o);

typedef enum bl_gen_finish { BL_GEN_FINISH_LENGTH = 0, BL_GEN_FINISH_EOS, BL_GEN_FINISH_STOP } bl_gen_finish;
const char *bl_gen_finish_name(bl_gen_finish f); /* "length", "eos", "stop" */

typedef struct bl_gen_out {
    int64_t *ids;        /* [n_new] generated ids (the EOS included when it ended on one); malloc'd */
    int64_t n_new;
    char *text;          /* the completion (special tokens skipped, cut before a stop string); NULL
                            without a tokenizer; malloc'd */
    bl_gen_finish finish;
    double seconds;      /* from the start of its batch to its last token */
} bl_gen_out;
void bl_gen_out_free(bl_gen_out *o);

/* Streaming: called with each new piece of a completion as it becomes final (text held back while
 * it may still be the start of a stop string or an incomplete UTF-8 character). Without a
 * tokenizer the pieces are the ids, " 12 7 ...". */
typedef void (*bl_gen_stream_fn)(void *user, int64_t prompt, const char *piece, size_t len);

typedef struct bl_generator {
    bl_model *m;
    bl_tok *tok;               /* may be NULL (ids only) */
    bl_gen_opts o;
    int64_t max_B, max_prompt;
    bl_kv kv;
    /* per row [max_B] */
    bl_rng *rng;
    int64_t *next, *lrow;      /* the token to append; its row in kv.logits */
    int64_t *ids;              /* [max_B, max_new_tokens] */
    int64_t *n_new;
    bool *active;
    size_t *printed;           /* bytes of text already streamed */
    double *t_end;
    bl_gen_finish *finish;
    int32_t *dec;              /* [max_new_tokens] ids for the tokenizer */
    bl_kv_seg *segs;           /* [max_B] */
    double *probs;             /* [V] sampler scratch */
    int32_t *idx;              /* [V] */
    bl_arena arena;
} bl_generator;

/* Plans a session for batches of up to max_B prompts of up to max_prompt tokens, each followed by
 * up to o->max_new_tokens (gpt2: the sum must fit n_positions). */
balora_status bl_gen_init(bl_generator *g, bl_model *m, bl_tok *tok, const bl_gen_opts *o, int64_t max_B, int64_t max_prompt);
void bl_gen_free(bl_generator *g);
/* Generates for B prompts (ids, lens[b] >= 1). index[b] = the prompt's index in its data set (seeds
 * its sampler; NULL = 0..B-1). out[b] receives the result (free with bl_gen_out_free). stream may
 * be NULL. */
balora_status bl_gen_batch(bl_generator *g, int64_t B, const int64_t *const *prompts, const int64_t *lens,
                           const int64_t *index, bl_gen_out *out, bl_gen_stream_fn stream, void *user);

/* One draw from logits [V] as described above. probs [V] and idx [V] are scratch. */
int64_t bl_gen_sample(const float *logits, int64_t V, const bl_gen_opts *o, bl_rng *rng, double *probs, int32_t *idx);

/* ---- many prompts ---- */
/* Called for each prompt once generated (out is freed after the call). */
typedef balora_status (*bl_gen_done_fn)(void *user, int64_t i, const bl_gen_out *out);
/* Generates for n prompts in consecutive batches of up to `batch` with one session planned for the
 * longest prompt; done() receives each result in prompt order (index i seeds its sampler).
 * balora_interrupt stops it after the current batch (BALORA_STATUS_INTERRUPTED). */
balora_status bl_gen_run_all(bl_model *m, bl_tok *tok, const bl_gen_opts *o, int64_t n, const int64_t *const *prompts,
                             const int64_t *lens, int64_t batch, bl_gen_done_fn done, void *user,
                             bl_gen_stream_fn stream, void *stream_user);

/* ---- the model a command generates with ---- */
typedef struct bl_gen_model {
    bl_model m;
    bl_adapter ad;
    bool have_adapter;
    bl_tok *tok;               /* NULL when none was found and none was required */
} bl_gen_model;
/* model: an HF folder or a llama2.c .bin file; adapter: a PEFT folder or NULL; tokenizer: a folder
 * or tokenizer.json, NULL = the model folder's (a .bin has none). need_tok: fail without one. */
balora_status bl_gen_model_load(bl_gen_model *g, const char *model, const char *adapter, const char *tokenizer, bool need_tok);
void bl_gen_model_free(bl_gen_model *g);
/* Adds the tokenizer's EOS and the model config's eos_token_id to o->eos (once each). */
void bl_gen_model_eos(const bl_gen_model *g, bl_gen_opts *o);
/* Tokenises text (BOS etc. as the tokenizer adds them) into a malloc'd int64 array. */
balora_status bl_gen_encode(bl_tok *tok, const char *text, int64_t **ids, int64_t *n);
/* "{query}"-template formatting: the Alpaca prompt (docs/METHOD.md 4) when alpaca is true, else
 * the text itself. malloc'd. */
char *bl_gen_format_prompt(const char *text, bool alpaca);

/* ---- perplexity ---- */
/* Perplexity of the model over ids [n] as the Hugging Face perplexity guide computes it: windows
 * of max_len tokens moved by stride; each window scores only the tokens not scored by the
 * previous one (the others are context, label -100); token-weighted: exp(sum of token losses /
 * tokens scored). stride in [1, max_len]. *n_scored = tokens scored (n - 1). */
balora_status bl_eval_perplexity(bl_model *m, bl_adapter_mode mode, const int64_t *ids, int64_t n, int64_t max_len,
                                 int64_t stride, double *ppl, int64_t *n_scored);

/* ---- model-backed benchmarks (balora eval --model) ---- */
#include "eval/bench.h"
typedef struct bl_bench_gen_opts {
    const char *model, *adapter, *tokenizer; /* as bl_gen_model_load */
    int64_t limit;             /* first N problems (0 = all) */
    int64_t max_new_tokens;    /* default 512 */
    int64_t batch;             /* prompts decoded together (default 8) */
    int64_t samples;           /* completions per problem (pass@k; default 1) */
    double temperature, top_p; /* default 0 (greedy), 1; samples > 1 needs temperature > 0 */
    uint64_t seed;
    int alpaca;                /* -1 (default): the Alpaca template for gsm8k / math only; 0: none; 1: always */
    /* NULL, or the journal (eval/journal.h) that keeps each problem's completions as they are made:
     * problems it holds are not generated again (their batches are skipped when every prompt of
     * the batch is done; batches stay those of an uninterrupted run), and balora_interrupt stops
     * after the current batch with BALORA_STATUS_INTERRUPTED. */
    struct bl_eval_journal *journal;
} bl_bench_gen_opts;
void bl_bench_gen_opts_default(bl_bench_gen_opts *o);
/* Generates completions for the first `limit` problems of s: GSM8K and MATH prompts in the Alpaca
 * template (docs/METHOD.md 4), HumanEval / MBPP prompts as the loaders give them; stop strings:
 * "### Instruction" (gsm8k, math), Codex's "\nclass", "\ndef", "\n#", "\nif", "\nprint"
 * (humaneval), bigcode's "\nclass", "\nassert", "\n\"\"\"", "\nprint", "\nif", "\n```" (mbpp); plus EOS.
 * *out is shaped as bl_completions_load would read it. */
balora_status bl_bench_generate(const bl_bench_set *s, const bl_bench_gen_opts *o, bl_completions *out);

/* MT-Bench judging with a model balora runs (src/eval/mtbench.h protocol): for every question and
 * turn, the judge reads system + "\n\n" + prompt (plain text: no chat template is applied) and
 * writes greedily up to max_new_tokens; the judgments ({"question_id", "turn", "judgment"} lines)
 * go to out_path, in question order. The answers must be loaded into s. */
#include "eval/mtbench.h"
balora_status bl_mt_judge_with_model(const char *judge, const char *tokenizer, const bl_mt_set *s, const bl_mt_templates *t,
                                     int64_t max_new_tokens, int64_t batch, const char *out_path);

/* MT-Bench answers from a model (+ adapter), greedy, in the Alpaca format the paper fine-tunes with:
 * turn 1 = the Alpaca prompt of question 1; turn 2 = turn 1's prompt + answer 1 + "\n\n### Instruction:\n"
 * + question 2 + "\n\n### Response:"; stop string "### Instruction". Fills s->q[i].answers; when
 * answers_out is set, also writes them as {"question_id", "turns": [a1, a2]} lines. */
balora_status bl_mt_answer_with_model(const char *model, const char *adapter, const char *tokenizer, bl_mt_set *s,
                                      int64_t max_new_tokens, int64_t batch, const char *answers_out);

/* Perplexity of a model (+ adapter) on a UTF-8 text file, tokenised whole (with the tokenizer's
 * BOS, as the HF guide's tokenizer call): window 0 = min(model positions, 1024), stride 0 = window/2. */
balora_status bl_eval_ppl_file(const char *model, const char *adapter, const char *tokenizer, const char *path,
                               int64_t window, int64_t stride, double *ppl, int64_t *n_scored);

#endif
