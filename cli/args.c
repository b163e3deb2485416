/* Option parsing for the subcommands (see args.h). */
#include "args.h"
#include "cli.h"
#include "io/json.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static void print_help(const char *cmd, const char *usage_line, const cli_opt *opts, int n) {
    /* usage lines may be written with or without the leading "balora CMD" */
    if (strncmp(usage_line, "balora ", 7) == 0) printf("usage: %s\n\noptions:\n", usage_line);
    else printf("usage: balora %s %s\n\noptions:\n", cmd, usage_line);
    for (int i = 0; i < n; i++) {
        char def[96] = "";
        switch (opts[i].type) {
        case CLI_OPT_STR:
        case CLI_OPT_LATEST: { const char *s = *(const char **)opts[i].dst; if (s) snprintf(def, sizeof def, " (default: %s)", s); break; }
        case CLI_OPT_INT: snprintf(def, sizeof def, " (default: %" PRId64 ")", *(int64_t *)opts[i].dst); break;
        case CLI_OPT_FLOAT: snprintf(def, sizeof def, " (default: %g)", *(double *)opts[i].dst); break;
        case CLI_OPT_FLAG: break;
        }
        char left[64];
        snprintf(left, sizeof left, "--%s%s", opts[i].name,
                 opts[i].type == CLI_OPT_FLAG ? "" : opts[i].type == CLI_OPT_STR ? " S" : opts[i].type == CLI_OPT_LATEST ? " [S]" : opts[i].type == CLI_OPT_INT ? " N" : " X");
        printf("  %-24s %s%s\n", left, opts[i].help, def);
    }
}

static bool same_name(const char *a, const char *b, size_t blen) {
    size_t i = 0;
    for (; a[i] && i < blen; i++) {
        char x = a[i] == '_' ? '-' : a[i], y = b[i] == '_' ? '-' : b[i];
        if (x != y) return false;
    }
    return a[i] == 0 && i == blen;
}

static int set_value(const char *cmd, cli_opt *o, const char *val) {
    char *end;
    switch (o->type) {
    case CLI_OPT_STR: *(const char **)o->dst = val; return 0;
    case CLI_OPT_LATEST: *(const char **)o->dst = !strcmp(val, "true") ? "latest" : val; return 0;
    case CLI_OPT_INT: {
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (errno || end == val || *end) { fprintf(stderr, "balora %s: error: --%s expects an integer, got '%s'\n", cmd, o->name, val); return 2; }
        *(int64_t *)o->dst = v; return 0;
    }
    case CLI_OPT_FLOAT: {
        errno = 0;
        double v = strtod(val, &end);
        if (errno || end == val || *end || !isfinite(v)) { fprintf(stderr, "balora %s: error: --%s expects a number, got '%s'\n", cmd, o->name, val); return 2; }
        *(double *)o->dst = v; return 0;
    }
    case CLI_OPT_FLAG:
        if (!strcmp(val, "true") || !strcmp(val, "1") || !strcmp(val, "yes")) *(bool *)o->dst = true;
        else if (!strcmp(val, "false") || !strcmp(val, "0") || !strcmp(val, "no")) *(bool *)o->dst = false;
        else { fprintf(stderr, "balora %s: error: --%s expects true or false, got '%s'\n", cmd, o->name, val); return 2; }
        return 0;
    }
    return 2;
}

int cli_parse(int argc, char **argv, const char *usage_line, cli_opt *opts, int n_opts,
              const char **pos, int max_pos, int *n_pos) {
    const char *cmd = argv[0];
    bool given[256] = {0};
    const char *config = NULL;
    if (n_pos) *n_pos = 0;
    if (n_opts > 256) return 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { print_help(cmd, usage_line, opts, n_opts); return 1; }
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (!pos || !n_pos || *n_pos >= max_pos) {
                fprintf(stderr, "balora %s: error: unexpected argument '%s' (see balora %s --help)\n", cmd, a, cmd);
                return 2;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        if (same_name("config", name, nlen)) {
            if (eq) config = eq + 1;
            else if (i + 1 < argc) config = argv[++i];
            else { fprintf(stderr, "balora %s: error: --config needs a file\n", cmd); return 2; }
            continue;
        }
        int k = -1;
        for (int j = 0; j < n_opts; j++) if (same_name(opts[j].name, name, nlen)) k = j;
        if (k < 0) {
            fprintf(stderr, "balora %s: error: unknown option '--%.*s' (see balora %s --help)\n", cmd, (int)nlen, name, cmd);
            return 2;
        }
        const char *val;
        if (eq) val = eq + 1;
        else if (opts[k].type == CLI_OPT_FLAG) val = "true";
        else if (opts[k].type == CLI_OPT_LATEST && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) val = "latest";
        else if (i + 1 < argc) val = argv[++i];
        else { fprintf(stderr, "balora %s: error: --%s needs a value\n", cmd, opts[k].name); return 2; }
        int rc = set_value(cmd, &opts[k], val);
        if (rc) return rc;
        given[k] = true;
    }
    if (config) return cli_parse_config(config, opts, n_opts, given);
    return 0;
}

/* Config values live until exit (string options point into them); freed by an atexit hook. */
static char **g_config_strings;
static size_t g_n_config_strings;
void cli_free_config_strings(void) {
    for (size_t i = 0; i < g_n_config_strings; i++) free(g_config_strings[i]);
    free(g_config_strings);
    g_config_strings = NULL;
    g_n_config_strings = 0;
}
static char *keep_string(const char *val) {
    static bool hooked;
    char **grown = realloc(g_config_strings, (g_n_config_strings + 1) * sizeof *grown);
    if (!grown) return NULL;
    if (!hooked) { atexit(cli_free_config_strings); hooked = true; }
    g_config_strings = grown;
    char *copy = strdup(val);
    if (copy) g_config_strings[g_n_config_strings++] = copy;
    return copy;
}

static int apply_kv(const char *path, cli_opt *opts, int n_opts, const bool *given, const char *key, const char *val) {
    for (int j = 0; j < n_opts; j++) {
        if (!same_name(opts[j].name, key, strlen(key))) continue;
        if (given[j]) return 0;
        char *copy = keep_string(val);
        if (!copy) return 2;
        char cmd[512];
        snprintf(cmd, sizeof cmd, "(config %s)", path);
        return set_value(cmd, &opts[j], copy);
    }
    fprintf(stderr, "balora: error: %s: unknown option '%s'\n", path, key);
    return 2;
}

int cli_parse_config(const char *path, cli_opt *opts, int n_opts, const bool *given) {
    size_t n = strlen(path);
    bool yaml = n > 5 && (!strcmp(path + n - 5, ".yaml") || !strcmp(path + n - 4, ".yml"));
    if (!yaml) {
        cJSON *root;
        balora_status st = bl_json_load(path, &root);
        if (st) { cli_fail(st); return 2; }
        if (!cJSON_IsObject(root)) { fprintf(stderr, "balora: error: %s: config must be a JSON object\n", path); cJSON_Delete(root); return 2; }
        const cJSON *it;
        int rc = 0;
        cJSON_ArrayForEach(it, root) {
            char buf[64];
            const char *val = buf;
            if (cJSON_IsString(it)) val = it->valuestring;
            else if (cJSON_IsBool(it)) val = cJSON_IsTrue(it) ? "true" : "false";
            else if (cJSON_IsNumber(it)) snprintf(buf, sizeof buf, "%.17g", it->valuedouble);
            else { fprintf(stderr, "balora: error: %s: option '%s' must be a string, number or boolean\n", path, it->string); rc = 2; break; }
            if ((rc = apply_kv(path, opts, n_opts, given, it->string, val))) break;
        }
        cJSON_Delete(root);
        return rc;
    }
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "balora: error: %s: cannot open config\n", path); return 2; }
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int rc = 0, depth = 0;
    char key[256] = "";
    bool have_key = false;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            fprintf(stderr, "balora: error: %s: YAML error at line %zu: %s\n", path, p.problem_mark.line + 1, p.problem ? p.problem : "?");
            rc = 2; break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
            depth++;
            if (depth > 1) { fprintf(stderr, "balora: error: %s: config must be a flat mapping of option: value\n", path); rc = 2; }
        } else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT) depth--;
        else if (t == YAML_SCALAR_EVENT && depth == 1) {
            const char *v = (const char *)ev.data.scalar.value;
            if (!have_key) { snprintf(key, sizeof key, "%s", v); have_key = true; }
            else { rc = apply_kv(path, opts, n_opts, given, key, v); have_key = false; }
        }
        yaml_event_delete(&ev);
        if (rc || t == YAML_STREAM_END_EVENT) break;
    }
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}
