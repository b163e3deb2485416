/* balora inspect: show what a model folder, adapter folder, .safetensors or .gguf file holds. */
#include "args.h"
#include "cli.h"
#include "io/inspect.h"
#include <stdlib.h>
#include <string.h>

static const char *with_commas(double v, char *buf, size_t cap) {
    char raw[64];
    snprintf(raw, sizeof raw, "%.0f", v);
    size_t n = strlen(raw), o = 0;
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        buf[o++] = raw[i];
        if ((n - i - 1) % 3 == 0 && i + 1 < n && raw[i] != '-') buf[o++] = ',';
    }
    buf[o] = 0;
    return buf;
}

static void print_compact(const cJSON *v) {
    char *s = cJSON_PrintUnformatted(v);
    fputs(s ? s : "?", stdout);
    free(s);
}

static double num(const cJSON *o, const char *k) { const cJSON *v = cJSON_GetObjectItem(o, k); return cJSON_IsNumber(v) ? v->valuedouble : 0; }

static void print_config(const cJSON *cfg) {
    const cJSON *it;
    int col = 0;
    cJSON_ArrayForEach(it, cfg) {
        printf("%s%s ", col == 0 ? "  " : ", ", it->string);
        if (cJSON_IsString(it)) fputs(it->valuestring, stdout);
        else print_compact(it);
        if (++col == 4) { putchar('\n'); col = 0; }
    }
    if (col) putchar('\n');
}

static void print_tensors(const cJSON *o, bool gguf) {
    const cJSON *ts = cJSON_GetObjectItem(o, "tensors"), *t;
    char c[64];
    printf("tensors (%d):\n", cJSON_GetArraySize(ts));
    cJSON_ArrayForEach(t, ts) {
        char shape[160] = "[";
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(t, gguf ? "ne" : "shape"))
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%.0f", strlen(shape) > 1 ? ", " : "", d->valuedouble);
        strncat(shape, "]", sizeof shape - strlen(shape) - 1);
        printf("  %-64s %-5s %-18s %14s", cJSON_GetObjectItem(t, "name")->valuestring,
               cJSON_GetObjectItem(t, gguf ? "type" : "dtype")->valuestring, shape, with_commas(num(t, "params"), c, sizeof c));
        if (gguf) printf("  @%.0f", num(t, "offset"));
        putchar('\n');
    }
    if (gguf) printf("  (GGUF dims are innermost first)\n");
}

static void print_groups(const cJSON *o) {
    const cJSON *g;
    char c[64];
    printf("parameters by group (layer numbers as *):\n");
    cJSON_ArrayForEach(g, cJSON_GetObjectItem(o, "groups"))
        printf("  %-64s %4.0f x %14s\n", cJSON_GetObjectItem(g, "pattern")->valuestring, num(g, "tensors"),
               with_commas(num(g, "params"), c, sizeof c));
    printf("total parameters: %s\n", with_commas(num(o, "total_params"), c, sizeof c));
}

static void print_adapter(const cJSON *o) {
    char c[64];
    printf("PEFT adapter folder: %s\n", cJSON_GetObjectItem(o, "path")->valuestring);
    print_config(cJSON_GetObjectItem(o, "config"));
    const cJSON *mods = cJSON_GetObjectItem(o, "lora_modules"), *m;
    printf("LoRA modules (%d):\n", cJSON_GetArraySize(mods));
    cJSON_ArrayForEach(m, mods)
        printf("  %-56s r %-3.0f in %-6.0f out %-6.0f scale %g\n", cJSON_GetObjectItem(m, "module")->valuestring, num(m, "r"),
               num(m, "in"), num(m, "out"), num(m, "scale"));
    const cJSON *full = cJSON_GetObjectItem(o, "full_tensors"), *f;
    if (cJSON_GetArraySize(full)) {
        printf("full tensors (modules_to_save):");
        cJSON_ArrayForEach(f, full) printf(" %s", f->valuestring);
        putchar('\n');
    }
    print_tensors(o, false);
    printf("trainable parameters: %s\n", with_commas(num(o, "trainable_params"), c, sizeof c));
    const cJSON *pr = cJSON_GetObjectItem(o, "problem");
    if (cJSON_IsTrue(cJSON_GetObjectItem(o, "consistent"))) printf("A/B pairs: complete, shapes and ranks consistent\n");
    else printf("A/B pairs: NOT consistent: %s\n", cJSON_IsString(pr) ? pr->valuestring : "?");
}

static void print_text(const cJSON *o) {
    const char *kind = cJSON_GetObjectItem(o, "kind")->valuestring, *path = cJSON_GetObjectItem(o, "path")->valuestring;
    if (!strcmp(kind, "adapter")) { print_adapter(o); return; }
    if (!strcmp(kind, "model")) {
        printf("model folder: %s (", path);
        print_compact(cJSON_GetObjectItem(o, "files"));
        printf(")\nconfig.json:\n");
        print_config(cJSON_GetObjectItem(o, "config"));
        const cJSON *a = cJSON_GetObjectItem(o, "architecture");
        if (cJSON_IsTrue(cJSON_GetObjectItem(a, "supported"))) {
            const cJSON *g = cJSON_GetObjectItem(a, "gguf_arch");
            printf("balora: family %s (%s), default --targets %s, GGUF LoRA export %s\n",
                   cJSON_GetObjectItem(a, "family")->valuestring,
                   cJSON_IsTrue(cJSON_GetObjectItem(a, "encoder")) ? "encoder" : "decoder",
                   cJSON_GetObjectItem(a, "default_targets")->valuestring, cJSON_IsString(g) ? g->valuestring : "none");
        } else {
            printf("balora: model_type not supported\n");
        }
    } else if (!strcmp(kind, "gguf")) {
        printf("GGUF file: %s (version %.0f, alignment %.0f)\nkey-values:\n", path, num(o, "version"), num(o, "alignment"));
        const cJSON *kv;
        cJSON_ArrayForEach(kv, cJSON_GetObjectItem(o, "kv")) {
            printf("  %-40s ", kv->string);
            if (cJSON_IsString(kv)) fputs(kv->valuestring, stdout); else print_compact(kv);
            putchar('\n');
        }
    } else if (!strcmp(kind, "llama2c")) {
        printf("llama2.c checkpoint: %s\nheader:\n", path);
        print_config(cJSON_GetObjectItem(o, "config"));
    } else {
        printf("safetensors file: %s\nmetadata: ", path);
        print_compact(cJSON_GetObjectItem(o, "metadata"));
        putchar('\n');
    }
    print_tensors(o, !strcmp(kind, "gguf"));
    print_groups(o);
}

int cmd_inspect(int argc, char **argv) {
    bool json = false;
    cli_opt opts[] = {{"json", CLI_OPT_FLAG, &json, "print machine-readable JSON"}};
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(argc, argv, "PATH [--json]   (model folder, adapter folder, .safetensors, .gguf or llama2.c .bin file)", opts, 1, pos, 1, &n_pos);
    if (rc) return rc == 1 ? 0 : rc;
    if (n_pos != 1) { fprintf(stderr, "balora inspect: error: give one PATH (see balora inspect --help)\n"); return 2; }
    cJSON *o;
    balora_status st = bl_inspect_path(pos[0], &o);
    if (st) return cli_fail(st);
    if (json) {
        char *s = cJSON_Print(o);
        if (s) puts(s);
        free(s);
    } else {
        print_text(o);
    }
    const cJSON *cons = cJSON_GetObjectItem(o, "consistent");
    rc = cJSON_IsFalse(cons) ? 1 : 0;
    if (rc) fprintf(stderr, "balora: error (format): %s\n", cJSON_GetObjectItem(o, "problem")->valuestring);
    cJSON_Delete(o);
    return rc;
}
