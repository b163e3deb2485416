/* tokenizer.json pipelines beyond the three real files, against tokenizers.js (tests/data/tok/variants,
 * written by dev/tok/gen_refs.mjs): LLaMA-3's and Qwen2's Split regexes with ByteLevel(use_regex=false),
 * ignore_merges, NFC, lstrip/rstrip added tokens, a TemplateProcessing with BOS, Metaspace with
 * prepend_scheme "first", RobertaProcessing, Whitespace + Digits, NFD + StripAccents + Lowercase.
 * Each head names everything but the vocabulary and merges, which come from ../shared. */
#include "test_tok_common.h"
#include <sys/stat.h>

static cJSON *gpt2_vocab, *gpt2_merges, *llama_vocab, *llama_merges, *bert_vocab;

static cJSON *read_json(const char *path) {
    char *text; size_t len;
    if (bl_file_read(path, &text, &len)) { fprintf(stderr, "%s\n", balora_last_error()); exit(1); }
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

static void load_bases(const char *shared) {
    char path[2048];
    snprintf(path, sizeof path, "%s/tokenizers/gpt2/encoder.json", shared);
    gpt2_vocab = read_json(path);
    snprintf(path, sizeof path, "%s/tokenizers/gpt2/vocab.bpe", shared);
    char *text; size_t len;
    CHECK_OK(bl_file_read(path, &text, &len));
    gpt2_merges = cJSON_CreateArray();
    char *save, *line = strtok_r(text, "\n", &save);
    for (; line; line = strtok_r(NULL, "\n", &save)) if (strncmp(line, "#version", 8)) cJSON_AddItemToArray(gpt2_merges, cJSON_CreateString(line));
    free(text);
    snprintf(path, sizeof path, "%s/tokenizers/llama2/tokenizer.json", shared);
    cJSON *l = read_json(path), *m = cJSON_GetObjectItem(l, "model");
    llama_vocab = cJSON_DetachItemFromObject(m, "vocab");
    llama_merges = cJSON_DetachItemFromObject(m, "merges");
    cJSON_Delete(l);
    snprintf(path, sizeof path, "%s/tokenizers/bert-base-uncased/vocab.txt", shared);
    CHECK_OK(bl_file_read(path, &text, &len));
    bert_vocab = cJSON_CreateObject();
    char *p = text;
    for (int id = 0; p < text + len; id++) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        cJSON_AddNumberToObject(bert_vocab, p, id);
        if (!e) break;
        p = e + 1;
    }
    free(text);
}

static void run_variant(const char *name, const char *base) {
    char path[2048];
    cJSON *head = read_json(tt_data((snprintf(path, sizeof path, "variants/%s.json", name), path)));
    cJSON *model = cJSON_GetObjectItem(head, "model");
    if (!strcmp(base, "gpt2")) {
        cJSON_AddItemReferenceToObject(model, "vocab", gpt2_vocab);
        cJSON_AddItemReferenceToObject(model, "merges", gpt2_merges);
    } else if (!strcmp(base, "llama2")) {
        cJSON_AddItemReferenceToObject(model, "vocab", llama_vocab);
        cJSON_AddItemReferenceToObject(model, "merges", llama_merges);
    } else cJSON_AddItemReferenceToObject(model, "vocab", bert_vocab);
    char *json = cJSON_PrintUnformatted(head);
    cJSON_Delete(head);
    bl_tok *t = NULL;
    balora_status st = bl_tok_load_json(&t, name, json, strlen(json));
    free(json);
    CHECK(st == BALORA_STATUS_OK, "%s: %s", name, balora_last_error());
    if (st) return;
    /* inputs.jsonl + the variant's extra lines */
    char *b1, *b2, *b3;
    size_t n1, n2, n3;
    /* variants/NAME.inputs.jsonl when present, else inputs.jsonl + variants/NAME.extra.jsonl */
    snprintf(path, sizeof path, "variants/%s.inputs.jsonl", name);
    bool own = bl_file_exists(tt_data(path));
    char **in = tt_lines(tt_data(own ? path : "inputs.jsonl"), &n1, &b1);
    char **ex = own ? tt_lines(tt_data("unigram.ids"), &n2, &b2) : tt_lines(tt_data((snprintf(path, sizeof path, "variants/%s.extra.jsonl", name), path)), &n2, &b2);
    if (own) n2 = 0;
    char **all = malloc((n1 + n2 + 1) * sizeof *all);
    memcpy(all, in, n1 * sizeof *all);
    memcpy(all + n1, ex, n2 * sizeof *all);
    char **ref = tt_lines(tt_data((snprintf(path, sizeof path, "variants/%s.ids", name), path)), &n3, &b3);
    int bad = tt_compare(t, name, all, n1 + n2, ref, n3, true);
    CHECK(bad == 0, "%s: %d of %zu lines differ", name, bad, n1 + n2);
    free(in); free(ex); free(all); free(ref); free(b1); free(b2); free(b3);
    /* pairs: ids, and token types where the reference has them */
    snprintf(path, sizeof path, "variants/%s.pair.ids", name);
    if (!bl_file_exists(tt_data(path))) { bl_tok_free(t); return; }
    char **pin = tt_lines(tt_data("pairs.jsonl"), &n1, &b1);
    char **pref = tt_lines(tt_data((snprintf(path, sizeof path, "variants/%s.pair.ids", name), path)), &n2, &b2);
    CHECK(n1 == n2, "%s pairs: %zu vs %zu", name, n1, n2);
    bl_tok_enc e = {0};
    static char got[1 << 16], gtt[1 << 16], line[1 << 17];
    bad = 0;
    for (size_t i = 0; i < n1 && i < n2; i++) {
        cJSON *j = cJSON_Parse(pin[i]);
        const char *a = cJSON_GetStringValue(cJSON_GetObjectItem(j, "text")), *b = cJSON_GetStringValue(cJSON_GetObjectItem(j, "pair"));
        CHECK_OK(bl_tok_encode_pair(t, a, strlen(a), b, strlen(b), true, &e));
        tt_format(e.ids, e.n, got, sizeof got);
        tt_format(e.type_ids, e.n, gtt, sizeof gtt);
        const char *tab = strchr(pref[i], '\t');
        bool has_types = tab && tab[1];
        snprintf(line, sizeof line, "%s\t%s", got, has_types ? gtt : "");
        if (strcmp(line, pref[i])) { if (bad < 3) fprintf(stderr, "%s pair %zu\n  want %s\n  got  %s\n", name, i + 1, pref[i], line); bad++; }
        cJSON_Delete(j);
    }
    CHECK(bad == 0, "%s: %d pairs differ", name, bad);
    bl_tok_enc_free(&e);
    free(pin); free(pref); free(b1); free(b2);
    /* the Split regexes stay linear on long runs (a backtracking \\s*[\\r\\n]+ must not turn quadratic) */
    size_t big = 1u << 17;
    char *s = malloc(big);
    const char *fill[4] = {" ", "a", " \n", "1"};
    for (int f = 0; f < 4; f++) {
        size_t fl = strlen(fill[f]);
        for (size_t i = 0; i < big; i++) s[i] = fill[f][i % fl];
        double t0 = bl_time_now();
        CHECK_OK(bl_tok_encode(t, s, big, false, &e));
        double dt = bl_time_now() - t0;
        CHECK(dt < 10.0, "%s: 128 KiB of '%s' took %.2f s", name, fill[f], dt);
    }
    bl_tok_enc_free(&e);
    free(s);
    bl_tok_free(t);
}

int main(void) {
    const char *shared = t_require_shared();
    load_bases(shared);
    run_variant("gpt2_llama3", "gpt2");
    run_variant("gpt2_qwen2", "gpt2");
    run_variant("gpt2_roberta", "gpt2");
    run_variant("llama2_metaspace", "llama2");
    run_variant("bert_nfd_digits", "bert");
    run_variant("bert_split_invert", "bert");
    /* hand-checked against HF's semantics where tokenizers.js differs (see gen_refs.mjs): Whitespace's \w
       is Unicode (ß is a letter; ² is not a word character but Digits isolates it, being numeric);
       StripAccents removes only Mn. Expected ids from a greedy WordPiece over vocab.txt:
       ß=1096, straße = st ##raße = 2358 27807, strasse = st ##ras ##se = 2358 8180 3366, x=1060, ²=1082. */
    {
        char path[256];
        snprintf(path, sizeof path, "variants/bert_nfd_digits.json");
        cJSON *head = read_json(tt_data(path));
        cJSON_AddItemReferenceToObject(cJSON_GetObjectItem(head, "model"), "vocab", bert_vocab);
        char *json = cJSON_PrintUnformatted(head);
        cJSON_Delete(head);
        bl_tok *t;
        CHECK_OK(bl_tok_load_json(&t, "bert_nfd_digits", json, strlen(json)));
        free(json);
        if (t) {
            int32_t ids[32];
            size_t n;
            const char *s1 = "\xC3\x9F stra\xC3\x9F" "e STRASSE";
            CHECK_OK(bl_tok_encode_ids(t, s1, strlen(s1), false, ids, 32, &n));
            CHECK(n == 6 && ids[0] == 1096 && ids[1] == 2358 && ids[2] == 27807 && ids[3] == 2358 && ids[4] == 8180 && ids[5] == 3366, "straße: n=%zu", n);
            CHECK_OK(bl_tok_encode_ids(t, "x\xC2\xB2", 3, false, ids, 32, &n));
            CHECK(n == 2 && ids[0] == 1060 && ids[1] == 1082, "x²: n=%zu %d %d", n, ids[0], ids[1]);
            bl_tok_free(t);
        }
    }
    /* Precompiled normalizer (SentencePiece charsmap): a hand-built darts-clone double array with the
       single key "A" -> "a" (units: root offset 1; unit 64 = label 'A' | has_leaf | offset 1; unit 65 =
       leaf value 0 = offset of "a" in the string pool). "Abc A" must encode like "abc a". */
    {
        static uint8_t blob[4 + 66 * 4 + 2];
        uint32_t units[66] = {0};
        units[0] = 1u << 10;
        units[64] = 0x41u | (1u << 8) | (1u << 10);
        units[65] = 1u << 31;
        uint32_t tsize = sizeof units;
        memcpy(blob, &tsize, 4);
        memcpy(blob + 4, units, sizeof units);
        blob[4 + sizeof units] = 'a';
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char enc[512];
        size_t o = 0, nb = sizeof blob;
        for (size_t i = 0; i < nb; i += 3) {
            uint32_t v = (uint32_t)blob[i] << 16 | (i + 1 < nb ? (uint32_t)blob[i + 1] << 8 : 0) | (i + 2 < nb ? blob[i + 2] : 0);
            enc[o++] = b64[v >> 18 & 63]; enc[o++] = b64[v >> 12 & 63];
            enc[o++] = i + 1 < nb ? b64[v >> 6 & 63] : '=';
            enc[o++] = i + 2 < nb ? b64[v & 63] : '=';
        }
        enc[o] = 0;
        cJSON *u = read_json(tt_data("unigram/tokenizer.json"));
        cJSON *nz = cJSON_CreateObject();
        cJSON_AddStringToObject(nz, "type", "Precompiled");
        cJSON_AddStringToObject(nz, "precompiled_charsmap", enc);
        cJSON_ReplaceItemInObject(u, "normalizer", nz);
        char *json = cJSON_PrintUnformatted(u);
        cJSON_Delete(u);
        bl_tok *t;
        CHECK_OK(bl_tok_load_json(&t, "precompiled", json, strlen(json)));
        free(json);
        if (t) {
            bl_tok_enc e1 = {0}, e2 = {0};
            CHECK_OK(bl_tok_encode(t, "Abc A", 5, false, &e1));
            CHECK_OK(bl_tok_encode(t, "abc a", 5, false, &e2));
            CHECK(e1.n == e2.n && e1.n > 0 && !memcmp(e1.ids, e2.ids, e1.n * sizeof *e1.ids), "precompiled: %zu vs %zu ids", e1.n, e2.n);
            CHECK_OK(bl_tok_encode(t, "B", 1, false, &e1));   /* no mapping: unchanged (unknown -> unk) */
            CHECK(e1.n == 2 && e1.ids[1] == 0, "B: n=%zu", e1.n);
            bl_tok_enc_free(&e1); bl_tok_enc_free(&e2);
            bl_tok_free(t);
        }
    }
    cJSON_Delete(gpt2_vocab); cJSON_Delete(gpt2_merges); cJSON_Delete(llama_vocab); cJSON_Delete(llama_merges); cJSON_Delete(bert_vocab);
    return t_finish();
}
