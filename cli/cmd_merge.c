/* balora merge: write a model folder with a LoRA adapter merged into its base weights. */
#include "args.h"
#include "cli.h"
#include "io/merge.h"

int cmd_merge(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *out = NULL, *dtype = NULL;
    cli_opt opts[] = {
        {"model", CLI_OPT_STR, &model, "base model folder (config.json + model.safetensors or shards)"},
        {"adapter", CLI_OPT_STR, &adapter, "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)"},
        {"out", CLI_OPT_STR, &out, "output model folder (created)"},
        {"dtype", CLI_OPT_STR, &dtype, "write every float tensor as f32, f16 or bf16 (default: keep each tensor's dtype)"},
    };
    int rc = cli_parse(argc, argv, "--model DIR --adapter ADAPTER_DIR --out DIR2 [--dtype f32|f16|bf16]", opts,
                       (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc) return rc == 1 ? 0 : rc;
    if (!model || !adapter || !out) {
        fprintf(stderr, "balora merge: error: --model, --adapter and --out are required (see balora merge --help)\n");
        return 2;
    }
    bl_merge_options opt = {.out_dtype = -1};
    balora_status st = bl_merge_parse_dtype(dtype, &opt.out_dtype);
    if (st) { fprintf(stderr, "balora merge: error: %s\n", balora_last_error()); return 2; }
    bl_merge_report rep;
    st = bl_merge_adapter(model, adapter, out, &opt, &rep);
    if (st) return cli_fail(st);
    printf("merged %d LoRA module(s), replaced %d tensor(s) (modules_to_save), wrote %d tensors to %s/model.safetensors"
           " (+ config.json, %d tokenizer/generation file(s))\n", rep.n_merged, rep.n_replaced, rep.n_tensors, out,
           rep.n_copied_files);
    return 0;
}
