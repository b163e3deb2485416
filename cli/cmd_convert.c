/* balora convert: llama2.c checkpoint -> Hugging Face LLaMA folder; PEFT LoRA adapter -> llama.cpp GGUF. */
#include "args.h"
#include "cli.h"
#include "io/gguf.h"
#include "io/json.h"
#include "io/llama2c.h"
#include "model/arch.h"
#include <stdio.h>
#include <string.h>

/* "llama, mistral, gpt2": model types with a GGUF export; "llama, gpt2": their llama.cpp archs. */
static const char *gguf_types(char *b, size_t cap) {
    int n;
    const bl_arch *rows = bl_arch_rows(&n);
    size_t o = 0;
    b[0] = 0;
    for (int r = 0; r < n; r++)
        for (int t = 0; t < rows[r].n_types && o + 32 < cap; t++)
            if (rows[r].types[t].gguf_arch) o += (size_t)snprintf(b + o, cap - o, "%s%s", o ? ", " : "", rows[r].types[t].model_type);
    return b;
}

static const char *gguf_archs(char *b, size_t cap) {
    int n;
    const bl_arch *rows = bl_arch_rows(&n);
    size_t o = 0;
    b[0] = 0;
    for (int r = 0; r < n; r++)
        for (int t = 0; t < rows[r].n_types && o + 32 < cap; t++) {
            const char *g = rows[r].types[t].gguf_arch;
            if (g && !strstr(b, g)) o += (size_t)snprintf(b + o, cap - o, "%s%s", o ? ", " : "", g);
        }
    return b;
}

/* --base DIR: the head counts and head_dim (and the architecture when --arch is absent) from
 * its config.json, each with where it came from (the export names it when the adapter's shapes
 * contradict it). --n-head / --n-head-kv given on the command line win over the file. */
typedef struct heads_from { char nh[4300], nkv[4300], hd[4400]; } heads_from;

static balora_status read_base_config(const char *dir, const char **arch, bl_gguf_lora_options *opt, heads_from *from) {
    char path[4200];
    BL_TRY(bl_path_join(path, sizeof path, dir, "config.json"));
    cJSON *cfg;
    BL_TRY(bl_json_load(path, &cfg));
    const char *mt = NULL;
    char list[128];
    balora_status st = bl_json_str(cfg, path, "model_type", true, &mt);
    const bl_arch_type *ty = NULL;
    const bl_arch *row = st ? NULL : bl_arch_find(mt, &ty);
    if (!st && !*arch) {
        if (row && ty->gguf_arch) *arch = ty->gguf_arch; /* the table's llama.cpp architecture */
        else st = bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: model_type '%s' has no GGUF LoRA export (%s)", path, mt,
                          gguf_types(list, sizeof list));
    }
    const bl_arch *ga = *arch ? bl_arch_find_gguf(*arch, NULL) : NULL;
    if (!st && ga && ga->pos == BL_POS_ROPE) { /* head counts: RoPE row order, and checked against the shapes */
        if (!row) row = ga;
        int64_t h = opt->n_head, kv = 0, hidden = 0, hd = 0;
        if (h == 0) {
            st = bl_json_int(cfg, path, row->f_heads, true, &h);
            snprintf(from->nh, sizeof from->nh, "%s field '%s'", path, row->f_heads);
            opt->n_head_from = from->nh;
        }
        kv = h;
        if (!st && opt->n_head_kv == 0 && row->f_kv_heads && cJSON_GetObjectItemCaseSensitive(cfg, row->f_kv_heads)) {
            st = bl_json_int(cfg, path, row->f_kv_heads, true, &kv);
            snprintf(from->nkv, sizeof from->nkv, "%s field '%s'", path, row->f_kv_heads);
            opt->n_head_kv_from = from->nkv;
        }
        if (!st && h <= 0) st = bl_fail(BALORA_STATUS_INVALID, "%s: field '%s' = %lld must be positive", path, row->f_heads, (long long)h);
        if (!st && cJSON_GetObjectItemCaseSensitive(cfg, "head_dim") && !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cfg, "head_dim"))) {
            st = bl_json_int(cfg, path, "head_dim", true, &hd);
            snprintf(from->hd, sizeof from->hd, "%s field 'head_dim'", path);
        } else if (!st && !(st = bl_json_int(cfg, path, row->f_hidden, true, &hidden)) && hidden % h == 0) {
            hd = hidden / h; /* transformers' default head_dim */
            snprintf(from->hd, sizeof from->hd, "%s field '%s' %lld / %s %lld", path, row->f_hidden,
                     (long long)hidden, opt->n_head ? "--n-head" : row->f_heads, (long long)h);
        }
        if (!st) {
            if (opt->n_head <= 0) opt->n_head = h;
            if (opt->n_head_kv <= 0) opt->n_head_kv = kv;
            if (hd > 0) { opt->head_dim = hd; opt->head_dim_from = from->hd; }
        }
    }
    if (*arch && !ga) st = bl_fail(BALORA_STATUS_UNSUPPORTED, "--arch '%s': expected one of %s", *arch, gguf_archs(list, sizeof list));
    cJSON_Delete(cfg);
    return st;
}

static int convert_to_gguf(const char *adapter, const char *arch, const char *base, int64_t n_head, int64_t n_head_kv,
                           const char *dtype, const char *out) {
    if (!adapter || !out) {
        fprintf(stderr, "balora convert: error: --to gguf needs --adapter ADAPTER_DIR and --out FILE.gguf\n");
        return 2;
    }
    uint32_t type;
    if (!dtype || !strcmp(dtype, "f32")) type = BL_GGML_F32;
    else if (!strcmp(dtype, "f16")) type = BL_GGML_F16;
    else { fprintf(stderr, "balora convert: error: --dtype '%s': expected f32 or f16\n", dtype); return 2; }
    bl_gguf_lora_options opt = {.n_head = n_head, .n_head_kv = n_head_kv, .type = type,
                                .n_head_from = "--n-head", .n_head_kv_from = "--n-head-kv"};
    static heads_from from; /* static: large, and only one conversion per process */
    if (base) {
        balora_status st = read_base_config(base, &arch, &opt, &from);
        if (st) return cli_fail(st);
    }
    char list[128];
    if (!arch) {
        fprintf(stderr, "balora convert: error: --to gguf needs --arch %s (or --base MODEL_DIR)\n", gguf_archs(list, sizeof list));
        return 2;
    }
    opt.arch = arch;
    int n = 0;
    balora_status st = bl_gguf_export_lora(adapter, out, &opt, &n);
    if (st) return cli_fail(st);
    printf("wrote %s: llama.cpp LoRA adapter for '%s', %d tensors (%s)\n", out, arch, n, type == BL_GGML_F16 ? "F16" : "F32");
    return 0;
}

int cmd_convert(int argc, char **argv) {
    const char *from = NULL, *to = NULL, *out = NULL, *adapter = NULL, *arch = NULL, *base = NULL, *dtype = NULL;
    int64_t n_head = 0, n_head_kv = 0;
    cli_opt opts[] = {
        {"from", CLI_OPT_STR, &from, "input format of the positional FILE: llama2c"},
        {"to", CLI_OPT_STR, &to, "output format: gguf (a llama.cpp LoRA adapter from --adapter)"},
        {"out", CLI_OPT_STR, &out, "output folder (--from llama2c) or .gguf file (--to gguf)"},
        {"adapter", CLI_OPT_STR, &adapter, "PEFT LoRA adapter folder (--to gguf)"},
        {"arch", CLI_OPT_STR, &arch, "base architecture for --to gguf (llama.cpp's name): llama (also Mistral), qwen2 or gpt2"},
        {"base", CLI_OPT_STR, &base, "base model folder: its config.json gives the head counts (and --arch)"},
        {"n-head", CLI_OPT_INT, &n_head, "attention heads of the base (llama q_proj/k_proj row order; checked against the shapes; 0 = from --base)"},
        {"n-head-kv", CLI_OPT_INT, &n_head_kv, "key-value heads of the base (0 = from --base, else --n-head)"},
        {"dtype", CLI_OPT_STR, &dtype, "GGUF tensor type: f32 or f16 (default: f32)"},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(argc, argv, "--from llama2c FILE.bin --out DIR | --to gguf --adapter ADAPTER_DIR --arch llama|qwen2|gpt2 --out FILE.gguf",
                       opts, (int)(sizeof opts / sizeof opts[0]), pos, 1, &n_pos);
    if (rc) return rc == 1 ? 0 : rc;
    if (n_head < 0 || n_head_kv < 0) { fprintf(stderr, "balora convert: error: --n-head and --n-head-kv must be positive\n"); return 2; }
    if (to && !strcmp(to, "gguf") && !from) {
        if (n_pos) { fprintf(stderr, "balora convert: error: unexpected argument '%s' with --to gguf\n", pos[0]); return 2; }
        return convert_to_gguf(adapter, arch, base, n_head, n_head_kv, dtype, out);
    }
    if (from && !strcmp(from, "llama2c") && !to) {
        if (n_pos != 1 || !out) { fprintf(stderr, "balora convert: error: --from llama2c needs FILE.bin and --out DIR\n"); return 2; }
        balora_status st = bl_llama2c_to_hf(pos[0], out);
        if (st) return cli_fail(st);
        printf("wrote %s/config.json and %s/model.safetensors (LlamaForCausalLM, F32) from %s\n", out, out, pos[0]);
        return 0;
    }
    fprintf(stderr, "balora convert: error: use --from llama2c FILE.bin --out DIR, or --to gguf --adapter DIR --arch llama|qwen2|gpt2 "
                    "--out FILE.gguf (see balora convert --help)\n");
    return 2;
}
