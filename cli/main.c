/* balora: the command-line entry point and subcommand dispatch. */
#include "cli.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_verbose;

int cli_fail(balora_status st) {
    if (st == BALORA_STATUS_INTERRUPTED) {
        fprintf(stderr, "balora: %s\n", balora_last_error());
        return balora_interrupted() > 0 ? 128 + balora_interrupted() : 1;
    }
    fprintf(stderr, "balora: error (%s): %s\n", balora_status_name(st), balora_last_error());
    return 1;
}

/* The first SIGINT/SIGTERM asks the job to stop at its next safe point; a second one exits at once
 * (what is on disk is then what the last atomic write left). */
static void on_stop_signal(int sig) {
    if (balora_interrupted()) _exit(128 + sig);
    balora_interrupt(sig);
    static const char msg[] = "\nbalora: stopping at the next safe point (training: after this step, with a checkpoint; eval and the lab: keeping what is done); "
                              "signal again to quit at once\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
}

void cli_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART; /* reads and writes in progress go on */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cli_log(int level, const char *msg, void *user) {
    (void)user;
    if (level == BL_VERBOSE && !cli_verbose) return;
    fprintf(stderr, "%s%s\n", level == BL_WARN ? "balora: warning: " : "", msg);
}

/* Every command in cli.h's list is defined in its cli/cmd_NAME.c: a missing one fails the link. */
static const struct { const char *name, *help; int (*fn)(int, char **); } g_cmds[] = {
#define BALORA_CLI_ENTRY(name, help) {#name, help, cmd_##name},
    BALORA_CLI_COMMANDS(BALORA_CLI_ENTRY)
};

static void usage(FILE *f) {
    fprintf(f, "balora %s: fine-tune transformer language models with LoRA, PiSSA and BA-LoRA\n\n"
               "usage: balora <command> [options]   (balora <command> --help for its options)\n\ncommands:\n",
            balora_version());
    for (size_t i = 0; i < sizeof g_cmds / sizeof g_cmds[0]; i++) fprintf(f, "  %-10s %s\n", g_cmds[i].name, g_cmds[i].help);
    fprintf(f, "\nglobal: --verbose (before the command) prints detail, including which BLAS kernels are used.\n");
}

int main(int argc, char **argv) {
    bl_blas_prepare_process(argc, argv);
    balora_log_set(cli_log, NULL);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) cli_verbose = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { usage(stdout); return 0; }
        else if (strcmp(argv[i], "--version") == 0) { printf("balora %s\n", balora_version()); return 0; }
        else { fprintf(stderr, "balora: error: unknown option '%s'\n", argv[i]); usage(stderr); return 2; }
    }
    if (i >= argc) { usage(stderr); return 2; }
    balora_threads_set(0);
    if (cli_verbose) bl_log(BL_VERBOSE, "BLAS: %s", balora_blas_info());
    for (size_t k = 0; k < sizeof g_cmds / sizeof g_cmds[0]; k++)
        if (strcmp(argv[i], g_cmds[k].name) == 0) return g_cmds[k].fn(argc - i, argv + i);
    fprintf(stderr, "balora: error: unknown command '%s'\n\n", argv[i]);
    usage(stderr);
    return 2;
}
