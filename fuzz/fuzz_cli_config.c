/* The CLI's --config file (cli/args.c cli_parse_config, compiled into this harness): the first
 * byte's low bit picks JSON (config.json) or YAML (config.yaml), the other bits which options count
 * as given on the command line; the rest is the file. The table holds one option of each type. */
#include "fuzz_util.h"
#include "args.h"
#include "cli.h"

/* cli/main.c's, without the message: the harness prints nothing of its own. */
int cli_fail(balora_status st) { return st ? 1 : 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *out = "out", *resume = NULL, *model = NULL;
    int64_t steps = 10, rank = 8;
    double lr = 1e-4;
    bool verbose = false, shuffle = true;
    cli_opt opts[] = {
        {"out", CLI_OPT_STR, &out, ""},         {"model", CLI_OPT_STR, &model, ""},
        {"resume", CLI_OPT_LATEST, &resume, ""}, {"max-steps", CLI_OPT_INT, &steps, ""},
        {"lora_r", CLI_OPT_INT, &rank, ""},     {"lr", CLI_OPT_FLOAT, &lr, ""},
        {"verbose", CLI_OPT_FLAG, &verbose, ""}, {"shuffle", CLI_OPT_FLAG, &shuffle, ""},
    };
    enum { N = sizeof opts / sizeof *opts };
    bool given[N];
    for (int i = 0; i < N; i++) given[i] = i < 7 && (data[0] >> (i + 1)) & 1;
    const char *path = fz_write(data[0] & 1 ? "config.yaml" : "config.json", data + 1, size - 1);
    if (cli_parse_config(path, opts, N, given) == 0) {
        /* string options point into the kept values: read them before they are freed */
        size_t len = strlen(out) + (model ? strlen(model) : 0) + (resume ? strlen(resume) : 0);
        (void)len;
    }
    cli_free_config_strings();
    return 0;
}
