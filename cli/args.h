/* A small table-driven option parser shared by every subcommand:
 * long options only (--name VALUE or --name=VALUE), typed, with defaults shown by --help,
 * and unchecked atoi nowhere. */
#ifndef BALORA_CLI_ARGS_H
#define BALORA_CLI_ARGS_H
#include <stdbool.h>
#include <stdint.h>

/* CLI_OPT_LATEST: a string whose value may be left out (a bare --resume) or be "true" (a config
 * file's `resume: true`, as Hugging Face's resume_from_checkpoint=True): both mean "latest". */
typedef enum cli_opt_type { CLI_OPT_STR, CLI_OPT_INT, CLI_OPT_FLOAT, CLI_OPT_FLAG, CLI_OPT_LATEST } cli_opt_type;

typedef struct cli_opt {
    const char *name;   /* without the leading "--" */
    cli_opt_type type;
    void *dst;          /* const char ** (STR, LATEST) / int64_t * / double * / bool * */
    const char *help;   /* the default shown is the dst's value when parsing starts */
} cli_opt;

/* Parses argv[1..argc) into the table. Positional arguments are stored (up to max_pos) in pos[]
 * and counted in *n_pos (pass NULL to refuse positionals).
 * Returns 0 on success, 1 if --help was printed (exit 0), 2 on a usage error (message printed). */
int cli_parse(int argc, char **argv, const char *usage_line, cli_opt *opts, int n_opts,
              const char **pos, int max_pos, int *n_pos);
/* Sets options from a JSON or YAML config file (keys = option names, '-' or '_' alike);
 * options given on the command line win. Returns 0, or 2 with a message printed. */
int cli_parse_config(const char *path, cli_opt *opts, int n_opts, const bool *given);
/* Frees the config values kept so far (string options set from a config then dangle); exit does it
 * too. For callers that parse many configs in one process (fuzz/fuzz_cli_config.c). */
void cli_free_config_strings(void);

#endif
