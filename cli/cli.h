/* The balora command-line tool: one file per subcommand, each `int cmd_NAME(int argc, char **argv)`
 * returning the process exit code (0 ok, 1 runtime error, 2 usage error).
 * argv[0] is the subcommand name. Every command listed here must be defined (no fallback: the link fails). */
#ifndef BALORA_CLI_H
#define BALORA_CLI_H
#include "core/bl.h"
#include <stdio.h>

#define BALORA_CLI_COMMANDS(X) \
    X(train, "fine-tune a model with LoRA, PiSSA, BA-LoRA or full fine-tuning") \
    X(forward, "run a model (and adapter) on a batch; write logits, loss and gradients") \
    X(merge, "merge an adapter into its base model and write a model folder") \
    X(inspect, "show what a model folder, adapter or safetensors file holds") \
    X(convert, "convert a checkpoint (llama2.c .bin -> HF folder; adapter -> GGUF)") \
    X(init, "PiSSA initialisation: write the step-0 adapter and the residual model") \
    X(tokenize, "encode or decode text with a Hugging Face tokenizer") \
    X(generate, "generate text with a key-value cache") \
    X(eval, "evaluate: GLUE metrics, GSM8K, MATH, HumanEval, MBPP, perplexity") \
    X(features, "write pooled representations of examples (for t-SNE)") \
    X(pretrain, "pre-train a small model from scratch") \
    X(demo, "the catastrophic-inheritance demo (main job, offline, no arguments)") \
    X(lab, "run a catastrophic-inheritance lab preset")

#define BALORA_CLI_DECLARE(name, help) int cmd_##name(int argc, char **argv);
BALORA_CLI_COMMANDS(BALORA_CLI_DECLARE)

/* Print "balora: error: <last error>" to stderr and return 1; BALORA_STATUS_INTERRUPTED: print the
 * message (where the work was kept) and return 128 + the signal. */
int cli_fail(balora_status st);
/* Long jobs (train, pretrain, eval, lab, demo): SIGINT/SIGTERM call balora_interrupt (the job stops at
 * its next safe point and keeps its work); a second signal exits at once with 128 + signal. */
void cli_catch_signals(void);
/* The log callback the CLI installs (prints info and warnings to stderr; verbose with --verbose). */
void cli_log(int level, const char *msg, void *user);
extern int cli_verbose;

#endif
