/* balora demo: the catastrophic-inheritance demo, balora's main job. Offline, no arguments:
 * generates the synthetic corpus, pre-trains a tiny decoder, fine-tunes it with full
 * fine-tuning, LoRA, PiSSA, BA-LoRA and BA-LoRA's ablations over several seeds, and writes
 * ./balora-demo (report.md, results.json, pictures, logs). See src/lab/run.h. */
#include "args.h"
#include "cli.h"
#include "lab/run.h"

int lab_cli_run(const char *cmd, const bl_lab_preset *p, const char *out, int64_t seeds, int64_t threads, const char *methods);

int cmd_demo(int argc, char **argv) {
    const char *out = "balora-demo", *preset = "demo", *methods = NULL;
    int64_t seeds = 0, threads = 1;
    cli_opt opts[] = {
        {"out", CLI_OPT_STR, &out, "report folder (created)"},
        {"seeds", CLI_OPT_INT, &seeds, "seeds per method (0 = the preset's: 5 for demo)"},
        {"threads", CLI_OPT_INT, &threads, "threads (0 = all cores; the demo's tiny model runs fastest on 1)"},
        {"methods", CLI_OPT_STR, &methods, "comma list instead of all seven: full, lora, pissa, ba-lora, ba-lora-no-cr, ba-lora-no-dr, ba-lora-no-svdr"},
        {"preset", CLI_OPT_STR, &preset, "run another preset instead (balora lab --list)"},
    };
    int rc = cli_parse(argc, argv, "[--out DIR] [--seeds N]", opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    cli_catch_signals();
    const bl_lab_preset *p = bl_lab_preset_find(preset);
    if (!p) {
        fprintf(stderr, "balora demo: error: --preset %s: unknown; hint: balora lab --list\n", preset);
        return 2;
    }
    return lab_cli_run("demo", p, out, seeds, threads, methods);
}
