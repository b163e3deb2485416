/* balora generate: text generation with a key-value cache (src/eval/generate.h).
 *
 *   balora generate --model DIR [--adapter DIR] (--prompt TEXT | --prompt-ids "1 2 3" | --data FILE.jsonl
 *                   [--prompt-field F]) [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]
 *                   [--seed S] [--stop STR ...] [--batch-size B] [--template alpaca|none] [--out FILE.jsonl]
 *
 * One prompt: the completion streams to stdout as it is generated. --data: one JSON line per prompt
 * {index, prompt | prompt_ids, completion, completion_ids, prompt_tokens, completion_tokens,
 * finish_reason, seconds} to --out (or stdout). */
#include "args.h"
#include "cli.h"
#include "eval/generate.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "--model DIR [--adapter DIR] (--prompt TEXT | --prompt-ids \"1 2 3\" | --data FILE.jsonl [--prompt-field F]) [options]\n"
    "\n"
    "Generates with a key-value cache (each new token costs one token's forward). DIR is a Hugging Face folder or\n"
    "a llama2.c .bin; the tokenizer comes from DIR (or --tokenizer). temperature 0 = greedy; sampling applies\n"
    "temperature, top-k, top-p in that order, seeded per prompt (a prompt's result does not depend on the batch).\n"
    "--stop may be given several times; the completion is cut before the first stop string. EOS ids: the\n"
    "tokenizer's and config.json's eos_token_id. --data lines: {\"prompt\": TEXT} (or the --prompt-field; a list of\n"
    "ids is taken as token ids). JSONL output: index, prompt or prompt_ids, completion, completion_ids,\n"
    "prompt_tokens, completion_tokens, finish_reason (eos|stop|length), seconds";

typedef struct gen_ctx {
    FILE *out;
    const char *out_path;
    int64_t n;
    char **texts;          /* [n] prompt text as given, or NULL for ids */
    int64_t **ids;         /* [n] */
    int64_t *lens;         /* [n] */
    bool has_tok;
    double t0;
    int64_t n_tokens, done;
} gen_ctx;

static void stream_stdout(void *user, int64_t prompt, const char *piece, size_t len) {
    (void)user; (void)prompt;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
}

static balora_status write_record(void *user, int64_t i, const bl_gen_out *o) {
    gen_ctx *c = user;
    c->n_tokens += o->n_new;
    c->done++;
    if (!c->out) return BALORA_STATUS_OK;
    cJSON *j = cJSON_CreateObject();
    if (!j) return BALORA_STATUS_NOMEM;
    cJSON_AddNumberToObject(j, "index", (double)i);
    if (c->texts[i]) cJSON_AddStringToObject(j, "prompt", c->texts[i]);
    else {
        cJSON *a = cJSON_AddArrayToObject(j, "prompt_ids");
        for (int64_t t = 0; a && t < c->lens[i]; t++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)c->ids[i][t]));
    }
    if (o->text) cJSON_AddStringToObject(j, "completion", o->text);
    else cJSON_AddNullToObject(j, "completion");
    cJSON *a = cJSON_AddArrayToObject(j, "completion_ids");
    for (int64_t t = 0; a && t < o->n_new; t++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)o->ids[t]));
    cJSON_AddNumberToObject(j, "prompt_tokens", (double)c->lens[i]);
    cJSON_AddNumberToObject(j, "completion_tokens", (double)o->n_new);
    cJSON_AddStringToObject(j, "finish_reason", bl_gen_finish_name(o->finish));
    cJSON_AddNumberToObject(j, "seconds", o->seconds);
    char *line = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!line) return BALORA_STATUS_NOMEM;
    int w = fprintf(c->out, "%s\n", line);
    free(line);
    fflush(c->out);
    if (w < 0) return bl_fail(BALORA_STATUS_IO, "%s: write failed", c->out_path);
    if (c->n > 1) bl_log(BL_INFO, "generated %lld / %lld (%.1f tokens/s)", (long long)c->done, (long long)c->n,
                         (double)c->n_tokens / (bl_time_now() - c->t0 + 1e-9));
    return BALORA_STATUS_OK;
}

static balora_status parse_ids(const char *s, const char *what, int64_t **ids, int64_t *n) {
    size_t cap = strlen(s) / 2 + 2;
    *ids = malloc(cap * sizeof(int64_t));
    *n = 0;
    if (!*ids) return BALORA_STATUS_NOMEM;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || (*end && *end != ' ' && *end != ',' && *end != '\t' && *end != '\n'))
            return bl_fail(BALORA_STATUS_INVALID, "%s: '%s' is not a list of non-negative token ids (e.g. \"1 2 3\")", what, s);
        (*ids)[(*n)++] = v;
        p = end;
    }
    if (*n == 0) return bl_fail(BALORA_STATUS_INVALID, "%s: no token ids", what);
    return BALORA_STATUS_OK;
}

/* Reads --data: one object per line; the field is a string (text) or a list of ids. */
static balora_status read_data(const char *path, const char *field, gen_ctx *c) {
    char *buf;
    size_t len;
    BL_TRY(bl_file_read(path, &buf, &len));
    int64_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    c->texts = calloc((size_t)lines, sizeof(char *));
    c->ids = calloc((size_t)lines, sizeof(int64_t *));
    c->lens = calloc((size_t)lines, sizeof(int64_t));
    balora_status st = c->texts && c->ids && c->lens ? BALORA_STATUS_OK : bl_fail(BALORA_STATUS_NOMEM, "out of memory");
    int64_t ln = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line && !st; line = strtok_r(NULL, "\n", &save)) {
        ln++;
        while (*line == ' ' || *line == '\t' || *line == '\r') line++;
        if (!*line) continue;
        cJSON *j = cJSON_Parse(line);
        const cJSON *v = j ? cJSON_GetObjectItemCaseSensitive(j, field) : NULL;
        if (!j || !cJSON_IsObject(j)) st = bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: not a JSON object", path, (long long)ln);
        else if (!v) st = bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: missing field '%s'; hint: name the prompt's field with --prompt-field", path, (long long)ln, field);
        else if (cJSON_IsString(v)) {
            if (!(c->texts[c->n] = strdup(v->valuestring))) st = bl_fail(BALORA_STATUS_NOMEM, "out of memory");
            c->n++;
        } else if (cJSON_IsArray(v)) {
            int64_t k = cJSON_GetArraySize(v), t = 0;
            c->ids[c->n] = malloc((size_t)(k > 0 ? k : 1) * sizeof(int64_t));
            c->lens[c->n] = k;
            if (!c->ids[c->n]) st = bl_fail(BALORA_STATUS_NOMEM, "out of memory");
            const cJSON *e;
            cJSON_ArrayForEach(e, v) {
                if (st) break;
                if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble != (double)(int64_t)e->valuedouble)
                    st = bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: field '%s' must hold non-negative integer token ids", path, (long long)ln, field);
                else c->ids[c->n][t++] = (int64_t)e->valuedouble;
            }
            if (!st && k == 0) st = bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: field '%s' is an empty list", path, (long long)ln, field);
            c->n++;
        } else st = bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: field '%s' must be a string (text) or a list of token ids", path, (long long)ln, field);
        cJSON_Delete(j);
    }
    free(buf);
    if (!st && c->n == 0) st = bl_fail(BALORA_STATUS_FORMAT, "%s: no prompts", path);
    return st;
}

static void ctx_free(gen_ctx *c) {
    for (int64_t i = 0; i < c->n; i++) { if (c->texts) free(c->texts[i]); if (c->ids) free(c->ids[i]); }
    free(c->texts); free(c->ids); free(c->lens);
}

int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *adapter = NULL, *tokenizer = NULL, *prompt = NULL, *prompt_ids = NULL, *data = NULL;
    const char *field = "prompt", *tmpl = "none", *out = NULL, *stop_help = NULL;
    int64_t max_new = 128, top_k = 0, seed = 0, batch = 8;
    double temperature = 0.0, top_p = 1.0;
    bool no_adapter = false;
    cli_opt opts[] = {
        {"model", CLI_OPT_STR, &model, "Hugging Face model folder or llama2.c .bin"},
        {"adapter", CLI_OPT_STR, &adapter, "PEFT LoRA adapter folder"},
        {"tokenizer", CLI_OPT_STR, &tokenizer, "tokenizer folder or tokenizer.json (default: the model folder's)"},
        {"prompt", CLI_OPT_STR, &prompt, "one prompt (its completion streams to stdout)"},
        {"prompt-ids", CLI_OPT_STR, &prompt_ids, "one prompt as token ids \"1 2 3\" (models without a tokenizer)"},
        {"data", CLI_OPT_STR, &data, "JSONL of prompts, one object per line"},
        {"prompt-field", CLI_OPT_STR, &field, "--data: the prompt's field (a string, or a list of token ids)"},
        {"template", CLI_OPT_STR, &tmpl, "alpaca (METHOD.md's instruction prompt around each prompt) or none"},
        {"max-new-tokens", CLI_OPT_INT, &max_new, "tokens to generate at most per prompt"},
        {"temperature", CLI_OPT_FLOAT, &temperature, "0 = greedy; > 0 samples"},
        {"top-k", CLI_OPT_INT, &top_k, "sample among the k most likely tokens (0 = off)"},
        {"top-p", CLI_OPT_FLOAT, &top_p, "nucleus sampling: smallest set with this probability (1 = off)"},
        {"seed", CLI_OPT_INT, &seed, "sampling seed"},
        {"stop", CLI_OPT_STR, &stop_help, "stop string (repeatable); the completion is cut before it"},
        {"batch-size", CLI_OPT_INT, &batch, "prompts decoded together"},
        {"no-adapter", CLI_OPT_FLAG, &no_adapter, "with --adapter: generate with the adapter switched off (the base model)"},
        {"out", CLI_OPT_STR, &out, "write JSON lines here (default with --data: stdout)"},
    };
    /* --stop may repeat: take every occurrence out before the table parser sees argv */
    bl_gen_opts o;
    bl_gen_opts_default(&o);
    char **av = malloc((size_t)(argc + 1) * sizeof(char *));
    if (!av) return cli_fail(bl_fail(BALORA_STATUS_NOMEM, "out of memory"));
    int ac = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (i > 0 && !strcmp(a, "--stop")) {
            if (i + 1 >= argc) { fprintf(stderr, "balora generate: error: --stop needs a value\n"); free(av); return 2; }
            val = argv[++i];
        } else if (i > 0 && !strncmp(a, "--stop=", 7)) val = a + 7;
        if (!val) { av[ac++] = argv[i]; continue; }
        if (o.n_stop == BL_GEN_MAX_STOP) { fprintf(stderr, "balora generate: error: at most %d --stop strings\n", BL_GEN_MAX_STOP); free(av); return 2; }
        if (!*val) { fprintf(stderr, "balora generate: error: --stop: empty stop string\n"); free(av); return 2; }
        o.stop[o.n_stop++] = val;
    }
    av[ac] = NULL;
    int rc = cli_parse(ac, av, USAGE, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    free(av);
    if (rc == 1) return 0;
    if (rc) return rc;
    if (!model) { fprintf(stderr, "balora generate: error: --model DIR is required\n"); return 2; }
    if ((prompt != NULL) + (prompt_ids != NULL) + (data != NULL) != 1) {
        fprintf(stderr, "balora generate: error: give exactly one of --prompt TEXT, --prompt-ids \"1 2 3\" or --data FILE.jsonl\n");
        return 2;
    }
    bool alpaca = !strcmp(tmpl, "alpaca");
    if (!alpaca && strcmp(tmpl, "none")) { fprintf(stderr, "balora generate: error: --template must be alpaca or none, got '%s'\n", tmpl); return 2; }
    if (alpaca && prompt_ids) { fprintf(stderr, "balora generate: error: --template alpaca needs text prompts, not --prompt-ids\n"); return 2; }
    if (batch < 1) { fprintf(stderr, "balora generate: error: --batch-size must be >= 1\n"); return 2; }
    if (no_adapter && !adapter) { fprintf(stderr, "balora generate: error: --no-adapter needs --adapter\n"); return 2; }
    if (seed < 0) { fprintf(stderr, "balora generate: error: --seed must be >= 0\n"); return 2; }
    o.max_new_tokens = max_new; o.temperature = temperature; o.top_k = top_k; o.top_p = top_p; o.seed = (uint64_t)seed;
    o.mode = no_adapter ? BL_ADAPTER_OFF : BL_ADAPTER_ON;
    balora_status st = bl_gen_opts_check(&o);
    if (st) { fprintf(stderr, "balora generate: error: %s\n", balora_last_error()); return 2; }

    gen_ctx c;
    memset(&c, 0, sizeof c);
    if (data) st = read_data(data, field, &c);
    else {
        c.texts = calloc(1, sizeof(char *)); c.ids = calloc(1, sizeof(int64_t *)); c.lens = calloc(1, sizeof(int64_t));
        if (!c.texts || !c.ids || !c.lens) st = bl_fail(BALORA_STATUS_NOMEM, "out of memory");
        else if (prompt) { c.n = 1; if (!(c.texts[0] = strdup(prompt))) st = bl_fail(BALORA_STATUS_NOMEM, "out of memory"); }
        else { c.n = 1; st = parse_ids(prompt_ids, "--prompt-ids", &c.ids[0], &c.lens[0]); }
    }
    bool need_tok = o.n_stop > 0;
    for (int64_t i = 0; !st && i < c.n; i++) need_tok |= c.texts[i] != NULL;
    bl_gen_model gm;
    memset(&gm, 0, sizeof gm);
    if (!st) st = bl_gen_model_load(&gm, model, no_adapter ? adapter : adapter, tokenizer, need_tok);
    if (st) { ctx_free(&c); return cli_fail(st); }
    c.has_tok = gm.tok != NULL;
    /* tokenise text prompts */
    for (int64_t i = 0; !st && i < c.n; i++) {
        if (!c.texts[i]) continue;
        char *full = bl_gen_format_prompt(c.texts[i], alpaca);
        if (!full) { st = bl_fail(BALORA_STATUS_NOMEM, "out of memory"); break; }
        st = bl_gen_encode(gm.tok, full, &c.ids[i], &c.lens[i]);
        free(full);
        if (!st && c.lens[i] == 0) st = bl_fail(BALORA_STATUS_INVALID, "prompt %lld encodes to no tokens", (long long)i);
        if (st) bl_fail_prefix(st, "prompt %lld: ", (long long)i);
    }
    for (int64_t i = 0; !st && i < c.n; i++)
        for (int64_t t = 0; t < c.lens[i]; t++)
            if (c.ids[i][t] >= gm.m.cfg.vocab_size) {
                st = bl_fail(BALORA_STATUS_INVALID, "prompt %lld: token id %lld is outside the model's vocabulary [0, %lld)",
                             (long long)i, (long long)c.ids[i][t], (long long)gm.m.cfg.vocab_size);
                break;
            }
    bl_gen_model_eos(&gm, &o);
    bool single = data == NULL;
    if (!st && out) {
        c.out = fopen(out, "w");
        c.out_path = out;
        if (!c.out) st = bl_fail(BALORA_STATUS_IO, "%s: cannot create: %s", out, strerror(errno));
    } else if (!st && !single) { c.out = stdout; c.out_path = "stdout"; }
    c.t0 = bl_time_now();
    if (!st) {
        st = bl_gen_run_all(&gm.m, gm.tok, &o, c.n, (const int64_t *const *)c.ids, c.lens, batch, write_record, &c,
                            single ? stream_stdout : NULL, NULL);
        if (single) { printf("\n"); fflush(stdout); }
    }
    double secs = bl_time_now() - c.t0;
    if (c.out && c.out != stdout && fclose(c.out) != 0 && !st) st = bl_fail(BALORA_STATUS_IO, "%s: write failed", out);
    if (!st)
        bl_log(BL_INFO, "%lld prompt(s), %lld new tokens in %.2f s (%.1f tokens/s)%s%s", (long long)c.n, (long long)c.n_tokens, secs,
               (double)c.n_tokens / (secs + 1e-9), out ? "; written to " : "", out ? out : "");
    bl_gen_model_free(&gm);
    ctx_free(&c);
    return st ? cli_fail(st) : 0;
}
