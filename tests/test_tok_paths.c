/* The same tokenizer through two loading paths gives the same ids:
 *  - GPT-2: a tokenizer.json written here from encoder.json + vocab.bpe (as HF's GPT2TokenizerFast
 *    builds it) vs the original files;
 *  - BERT: a tokenizer.json written from vocab.txt (BertTokenizerFast's) vs vocab.txt;
 *  - LLaMA-2: a SentencePiece tokenizer.model written here from tokenizer.json with a small protobuf
 *    writer (pieces, scores = -id, types; trainer_spec BPE + byte_fallback) vs tokenizer.json;
 *  - Unigram: a tokenizer.model written from the hand-made Unigram tokenizer.json.
 * All compared with the reference files of tests/data/tok over every input line. */
#include "test_tok_common.h"
#include <sys/stat.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

static void put_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s, 1, n, f) != n) { fprintf(stderr, "cannot write %s\n", path); exit(1); }
    fclose(f);
}

static void write_json(const char *path, cJSON *root) {
    char *s = cJSON_PrintUnformatted(root);
    put_file(path, s, strlen(s));
    free(s);
}

static cJSON *added(int id, const char *content, bool normalized) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", id);
    cJSON_AddStringToObject(a, "content", content);
    cJSON_AddBoolToObject(a, "single_word", 0);
    cJSON_AddBoolToObject(a, "lstrip", 0);
    cJSON_AddBoolToObject(a, "rstrip", 0);
    cJSON_AddBoolToObject(a, "normalized", normalized);
    cJSON_AddBoolToObject(a, "special", 1);
    return a;
}

static void compare_dir(const char *dir, const char *what, const char *inputs, const char *ref, bool add_special, size_t skip_from) {
    bl_tok *t;
    balora_status st = bl_tok_load(&t, dir);
    CHECK(st == BALORA_STATUS_OK, "%s: %s", what, balora_last_error());
    if (st) return;
    char *b1, *b2;
    size_t n1, n2;
    char **in = tt_lines(tt_data(inputs), &n1, &b1);
    char **rf = tt_lines(tt_data(ref), &n2, &b2);
    if (skip_from < n1) n1 = n2 = skip_from;
    int bad = tt_compare(t, what, in, n1, rf, n2, add_special);
    CHECK(bad == 0, "%s: %d lines differ", what, bad);
    free(in); free(rf); free(b1); free(b2);
    bl_tok_free(t);
}

/* ---- protobuf writer ---- */
typedef struct pbw { char *p; size_t n, cap; } pbw;
static void pb_bytes(pbw *w, const void *s, size_t n) {
    if (w->n + n > w->cap) { w->cap = (w->n + n) * 2 + 64; w->p = realloc(w->p, w->cap); }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}
static void pb_varint(pbw *w, uint64_t v) {
    unsigned char b[10]; int k = 0;
    do { b[k] = v & 0x7F; v >>= 7; if (v) b[k] |= 0x80; k++; } while (v);
    pb_bytes(w, b, (size_t)k);
}
static void pb_key(pbw *w, int field, int wt) { pb_varint(w, (uint64_t)field << 3 | (uint64_t)wt); }
static void pb_len(pbw *w, int field, const void *s, size_t n) { pb_key(w, field, 2); pb_varint(w, n); pb_bytes(w, s, n); }
static void pb_float(pbw *w, int field, float f) { pb_key(w, field, 5); pb_bytes(w, &f, 4); }
static void pb_int(pbw *w, int field, uint64_t v) { pb_key(w, field, 0); pb_varint(w, v); }

static void pb_piece(pbw *m, const char *s, float score, int type) {
    pbw p = {0};
    pb_len(&p, 1, s, strlen(s));
    pb_float(&p, 2, score);
    pb_int(&p, 3, (uint64_t)type);
    pb_len(m, 1, p.p, p.n);
    free(p.p);
}

static void pb_specs(pbw *m, int model_type, bool byte_fallback, bool remove_ws) {
    pbw ts = {0}, ns = {0};
    pb_int(&ts, 3, (uint64_t)model_type);
    pb_int(&ts, 35, byte_fallback);
    pb_len(m, 2, ts.p, ts.n);
    pb_len(&ns, 1, "identity", 8);
    pb_int(&ns, 3, 1);
    pb_int(&ns, 4, remove_ws);
    pb_len(m, 3, ns.p, ns.n);
    free(ts.p); free(ns.p);
}

int main(void) {
    const char *shared = t_require_shared();
    const char *tmp = t_tmpdir();
    char path[4096], dir[2048];

    /* ---- GPT-2 tokenizer.json from encoder.json + vocab.bpe ---- */
    {
        char *text; size_t len;
        snprintf(path, sizeof path, "%s/tokenizers/gpt2/encoder.json", shared);
        CHECK_OK(bl_file_read(path, &text, &len));
        cJSON *vocab = cJSON_Parse(text);
        free(text);
        snprintf(path, sizeof path, "%s/tokenizers/gpt2/vocab.bpe", shared);
        CHECK_OK(bl_file_read(path, &text, &len));
        cJSON *merges = cJSON_CreateArray();
        char *save, *line = strtok_r(text, "\n", &save);
        for (int k = 0; line; line = strtok_r(NULL, "\n", &save), k++)
            if (k > 0 || strncmp(line, "#version", 8)) cJSON_AddItemToArray(merges, cJSON_CreateString(line));
        free(text);
        cJSON *root = cJSON_CreateObject(), *model = cJSON_CreateObject(), *arr = cJSON_CreateArray();
        cJSON_AddStringToObject(root, "version", "1.0");
        cJSON_AddItemToArray(arr, added(50256, "<|endoftext|>", true));
        cJSON_AddItemToObject(root, "added_tokens", arr);
        cJSON_AddNullToObject(root, "normalizer");
        const char *bl = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true}";
        cJSON_AddItemToObject(root, "pre_tokenizer", cJSON_Parse(bl));
        cJSON_AddItemToObject(root, "post_processor", cJSON_Parse(bl));
        cJSON_AddItemToObject(root, "decoder", cJSON_Parse(bl));
        cJSON_AddStringToObject(model, "type", "BPE");
        cJSON_AddNullToObject(model, "dropout");
        cJSON_AddNullToObject(model, "unk_token");
        cJSON_AddStringToObject(model, "continuing_subword_prefix", "");
        cJSON_AddStringToObject(model, "end_of_word_suffix", "");
        cJSON_AddBoolToObject(model, "fuse_unk", 0);
        cJSON_AddBoolToObject(model, "byte_fallback", 0);
        cJSON_AddItemToObject(model, "vocab", vocab);
        cJSON_AddItemToObject(model, "merges", merges);
        cJSON_AddItemToObject(root, "model", model);
        snprintf(dir, sizeof dir, "%s/gpt2json", tmp);
        mkdir(dir, 0755);
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        write_json(path, root);
        cJSON_Delete(root);
        compare_dir(dir, "gpt2 tokenizer.json", "inputs.jsonl", "gpt2.ids", true, (size_t)-1);
        snprintf(path, sizeof path, "%s/tokenizers/gpt2", shared);
        compare_dir(path, "gpt2 encoder.json", "inputs.jsonl", "gpt2.ids", true, (size_t)-1);
    }

    /* ---- BERT tokenizer.json from vocab.txt ---- */
    {
        char *text; size_t len;
        snprintf(path, sizeof path, "%s/tokenizers/bert-base-uncased/vocab.txt", shared);
        CHECK_OK(bl_file_read(path, &text, &len));
        cJSON *vocab = cJSON_CreateObject();
        char *p = text;
        for (int id = 0; p < text + len; id++) {
            char *e = strchr(p, '\n');
            if (e) *e = 0;
            cJSON_AddNumberToObject(vocab, p, id); /* bert-base-uncased's vocab.txt has no duplicate lines */
            if (!e) break;
            p = e + 1;
        }
        free(text);
        const char *head =
            "{\"version\":\"1.0\",\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,\"strip_accents\":null,\"lowercase\":true},"
            "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
            "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}}],"
            "\"pair\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}},{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":1}}],"
            "\"special_tokens\":{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[101],\"tokens\":[\"[CLS]\"]},\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[102],\"tokens\":[\"[SEP]\"]}}},"
            "\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true},"
            "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":100}}";
        cJSON *root = cJSON_Parse(head);
        CHECK(root != NULL, "bert json head");
        cJSON *arr = cJSON_CreateArray();
        const char *sp[5] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
        int spid[5] = {0, 100, 101, 102, 103};
        for (int k = 0; k < 5; k++) cJSON_AddItemToArray(arr, added(spid[k], sp[k], false));
        cJSON_AddItemToObject(root, "added_tokens", arr);
        cJSON_AddItemToObject(cJSON_GetObjectItem(root, "model"), "vocab", vocab);
        snprintf(dir, sizeof dir, "%s/bertjson", tmp);
        mkdir(dir, 0755);
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        write_json(path, root);
        cJSON_Delete(root);
        compare_dir(dir, "bert tokenizer.json", "inputs.jsonl", "bert.ids", true, (size_t)-1);
        compare_dir(dir, "bert tokenizer.json (no special)", "inputs.jsonl", "bert_nospecial.ids", false, (size_t)-1);
        /* clean_up_tokenization_spaces: true (BERT's default) joins "i ' m" to "i'm" as transformers does;
           false leaves only the WordPiece decoder's own per-token cleanup (" ." -> ".") */
        for (int clean = 0; clean < 2; clean++) {
            snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
            const char *cfg = clean ? "{\"clean_up_tokenization_spaces\": true}" : "{\"clean_up_tokenization_spaces\": false}";
            put_file(path, cfg, strlen(cfg));
            bl_tok *t;
            CHECK_OK(bl_tok_load(&t, dir));
            if (!t) continue;
            bl_tok_enc e = {0};
            char *txt;
            CHECK_OK(bl_tok_encode(t, "I'm here.", 9, true, &e));
            CHECK_OK(bl_tok_decode(t, e.ids, e.n, true, &txt, NULL));
            CHECK(!strcmp(txt, clean ? "i'm here." : "i ' m here."), "cleanup %d: '%s'", clean, txt);
            free(txt);
            bl_tok_enc_free(&e);
            bl_tok_free(t);
        }
    }

    /* ---- LLaMA-2: tokenizer.model from tokenizer.json ---- */
    {
        char *text; size_t len;
        snprintf(path, sizeof path, "%s/tokenizers/llama2/tokenizer.json", shared);
        CHECK_OK(bl_file_read(path, &text, &len));
        cJSON *root = cJSON_Parse(text);
        free(text);
        const cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "vocab");
        int n = cJSON_GetArraySize(vocab);
        const char **by_id = calloc((size_t)n, sizeof *by_id);
        const cJSON *it;
        cJSON_ArrayForEach(it, vocab) if ((int)it->valuedouble < n) by_id[(int)it->valuedouble] = it->string;
        /* scores: SentencePiece BPE merges the pair whose merged piece scores highest; a piece's score
           here is minus the rank of the first merge in tokenizer.json that makes it, so both paths
           have the same priorities (as the scores of the original tokenizer.model do) */
        bl_tok *ref;
        snprintf(path, sizeof path, "%s/tokenizers/llama2", shared);
        CHECK_OK(bl_tok_load(&ref, path));
        float *score = malloc((size_t)n * sizeof *score);
        for (int id = 0; id < n; id++) score[id] = -1e9f - (float)id;
        const cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "merges");
        int rank = 0;
        char joined[512];
        cJSON_ArrayForEach(it, merges) {
            const char *ms = it->valuestring, *sp = strchr(ms, ' ');
            snprintf(joined, sizeof joined, "%.*s%s", (int)(sp - ms), ms, sp + 1);
            int32_t v = bl_tok_token_to_id(ref, joined);
            if (v >= 0 && v < n && score[v] < -1e8f) score[v] = -(float)rank;
            rank++;
        }
        pbw m = {0};
        for (int id = 0; id < n; id++) {
            const char *s = by_id[id];
            int type = 1;
            if (!strcmp(s, "<unk>")) type = 2;
            else if (!strcmp(s, "<s>") || !strcmp(s, "</s>")) type = 3;
            else if (strlen(s) == 6 && !strncmp(s, "<0x", 3) && s[5] == '>') type = 6;
            pb_piece(&m, s, type == 1 ? score[id] : 0.0f, type);
        }
        pb_specs(&m, 2, true, false);
        snprintf(dir, sizeof dir, "%s/llamaspm", tmp);
        mkdir(dir, 0755);
        snprintf(path, sizeof path, "%s/tokenizer.model", dir);
        put_file(path, m.p, m.n);
        free(m.p); free(by_id); free(score);
        bl_tok_free(ref);
        cJSON_Delete(root);
        compare_dir(dir, "llama2 tokenizer.model", "inputs.jsonl", "llama2.ids", true, (size_t)-1);
        /* decoding through the SentencePiece path equals the tokenizer.json path */
        bl_tok *a, *b;
        snprintf(path, sizeof path, "%s/tokenizers/llama2", shared);
        CHECK_OK(bl_tok_load(&a, path));
        CHECK_OK(bl_tok_load(&b, dir));
        const char *s = " Hello\tworld  \xF0\x9F\x98\x80 caf\xC3\xA9\n";
        bl_tok_enc e = {0};
        CHECK_OK(bl_tok_encode(a, s, strlen(s), true, &e));
        char *ta, *tb;
        CHECK_OK(bl_tok_decode(a, e.ids, e.n, true, &ta, NULL));
        CHECK_OK(bl_tok_decode(b, e.ids, e.n, true, &tb, NULL));
        CHECK(!strcmp(ta, s) && !strcmp(tb, s), "llama decode: '%s' / '%s'", ta, tb);
        free(ta); free(tb);
        bl_tok_enc_free(&e);
        bl_tok_free(a); bl_tok_free(b);
    }

    /* ---- tokenizer_config.json's add_eos_token rebuilds LLaMA's template (as LlamaTokenizerFast does) ---- */
    {
        snprintf(dir, sizeof dir, "%s/llamaeos", tmp);
        mkdir(dir, 0755);
        char rel[2048], target[PATH_MAX];
        snprintf(rel, sizeof rel, "%s/tokenizers/llama2/tokenizer.json", shared);
        CHECK(realpath(rel, target) != NULL, "realpath %s", rel);
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        CHECK(symlink(target, path) == 0, "symlink");
        const char *cfg = "{\"tokenizer_class\": \"LlamaTokenizer\", \"add_bos_token\": true, \"add_eos_token\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        put_file(path, cfg, strlen(cfg));
        bl_tok *t;
        CHECK_OK(bl_tok_load(&t, dir));
        if (t) {
            bl_tok_enc e = {0};
            CHECK_OK(bl_tok_encode(t, "Hello world", 11, true, &e)); /* llama2.ids line 4: 1 22557 1526 */
            CHECK(e.n == 4 && e.ids[0] == 1 && e.ids[1] == 22557 && e.ids[2] == 1526 && e.ids[3] == 2, "BOS ... EOS: n=%zu", e.n);
            CHECK_OK(bl_tok_encode_pair(t, "a", 1, "b", 1, true, &e));
            CHECK(e.n == 6 && e.ids[2] == 2 && e.ids[3] == 1 && e.type_ids[3] == 1 && e.ids[5] == 2, "pair BOS A EOS BOS B EOS: n=%zu", e.n);
            bl_tok_enc_free(&e);
            bl_tok_free(t);
        }
    }

    /* ---- Unigram: tokenizer.model from the hand-made tokenizer.json (no charsmap: lines 1..15) ---- */
    {
        char *text; size_t len;
        CHECK_OK(bl_file_read(tt_data("unigram/tokenizer.json"), &text, &len));
        cJSON *root = cJSON_Parse(text);
        free(text);
        const cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "vocab"), *it;
        pbw m = {0};
        int id = 0;
        cJSON_ArrayForEach(it, vocab) {
            const char *s = cJSON_GetArrayItem(it, 0)->valuestring;
            pb_piece(&m, s, (float)cJSON_GetArrayItem(it, 1)->valuedouble, id == 0 ? 2 : id < 3 ? 3 : 1);
            id++;
        }
        pb_specs(&m, 1, false, true);
        snprintf(dir, sizeof dir, "%s/unispm", tmp);
        mkdir(dir, 0755);
        snprintf(path, sizeof path, "%s/tokenizer.model", dir);
        put_file(path, m.p, m.n);
        free(m.p);
        cJSON_Delete(root);
        /* the SentencePiece path adds BOS/EOS per tokenizer_config.json: compare without specials */
        bl_tok *t;
        CHECK_OK(bl_tok_load(&t, dir));
        if (t) {
            CHECK(bl_tok_model_type(t) == BL_TOK_MODEL_UNIGRAM, "unigram from .model");
            char *b1, *b2; size_t n1, n2;
            char **in = tt_lines(tt_data("unigram_inputs.jsonl"), &n1, &b1);
            char **rf = tt_lines(tt_data("unigram.ids"), &n2, &b2);
            bl_tok_enc e = {0};
            int bad = 0;
            for (size_t i = 0; i < 15 && i < n1; i++) {
                cJSON *j = cJSON_Parse(in[i]);
                CHECK_OK(bl_tok_encode(t, j->valuestring, strlen(j->valuestring), false, &e));
                int32_t want[64];
                size_t nw = tt_parse(rf[i], want, 64);
                if (nw) nw--; /* the reference ends with </s> */
                if (e.n != nw || memcmp(e.ids, want, nw * sizeof *want)) { bad++; fprintf(stderr, "unigram .model line %zu differs\n", i + 1); }
                cJSON_Delete(j);
            }
            CHECK(bad == 0, "unigram .model: %d lines differ", bad);
            bl_tok_enc_free(&e);
            free(in); free(rf); free(b1); free(b2);
            bl_tok_free(t);
        }
    }
    return t_finish();
}
