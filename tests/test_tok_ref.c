/* Tokenizers against the reference encodings of independent JavaScript implementations
 * (tests/data/tok, written by dev/tok/gen_refs.mjs): GPT-2 (gpt-3-encoder; tokenizers.js agrees on every
 * line), LLaMA-2 (llama-tokenizer-js; tokenizers.js agrees), BERT WordPiece and Unigram (tokenizers.js).
 * Every line is compared exactly: ids, token types, and decoded text. */
#include "test_tok_common.h"

static bl_tok *load(const char *dir) {
    bl_tok *t = NULL;
    balora_status st = bl_tok_load(&t, dir);
    CHECK(st == BALORA_STATUS_OK, "loading %s: %s", dir, balora_last_error());
    return t;
}

static void compare_file(bl_tok *t, const char *what, const char *inputs_name, const char *ref_name, bool add_special) {
    char *b1, *b2;
    size_t n1, n2;
    char **in = tt_lines(tt_data(inputs_name), &n1, &b1);
    char **ref = tt_lines(tt_data(ref_name), &n2, &b2);
    int bad = tt_compare(t, what, in, n1, ref, n2, add_special);
    CHECK(bad == 0, "%s: %d of %zu lines differ from %s", what, bad, n1, ref_name);
    free(in); free(ref); free(b1); free(b2);
}

/* decode references: {"ids": [...], "text": "...", "skip": "..."} */
static void compare_decode(bl_tok *t, const char *what, const char *ref_name) {
    char *buf;
    size_t n;
    char **lines = tt_lines(tt_data(ref_name), &n, &buf);
    int bad = 0;
    int32_t ids[4096];
    for (size_t i = 0; i < n; i++) {
        cJSON *j = cJSON_Parse(lines[i]);
        const cJSON *ja = cJSON_GetObjectItem(j, "ids"), *jt = cJSON_GetObjectItem(j, "text"), *js = cJSON_GetObjectItem(j, "skip");
        size_t m = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, ja) if (m < 4096) ids[m++] = (int32_t)x->valuedouble;
        for (int pass = 0; pass < 2; pass++) {
            const cJSON *want = pass ? js : jt;
            if (!cJSON_IsString(want)) continue;
            char *text = NULL;
            size_t len = 0;
            balora_status st = bl_tok_decode(t, ids, m, pass == 1, &text, &len);
            if (st || strlen(want->valuestring) != len || memcmp(text, want->valuestring, len) != 0) {
                if (bad < 5) fprintf(stderr, "%s decode line %zu (skip_special=%d): want \"%.200s\" got \"%.200s\" %s\n", what, i + 1, pass, want->valuestring, text ? text : "", st ? balora_last_error() : "");
                bad++;
            }
            free(text);
        }
        cJSON_Delete(j);
    }
    CHECK(bad == 0, "%s: %d decodes differ from %s", what, bad, ref_name);
    free(lines); free(buf);
}

int main(void) {
    const char *shared = t_require_shared();
    char dir[1024];

    /* GPT-2 from OpenAI's encoder.json + vocab.bpe */
    snprintf(dir, sizeof dir, "%s/tokenizers/gpt2", shared);
    bl_tok *g = load(dir);
    if (g) {
        compare_file(g, "gpt2", "inputs.jsonl", "gpt2.ids", true);
        compare_decode(g, "gpt2", "gpt2_decode.jsonl");
        CHECK(bl_tok_vocab_size(g) == 50257, "gpt2 vocab %d", bl_tok_vocab_size(g));
        CHECK(bl_tok_special(g, BL_TOK_EOS) == 50256 && bl_tok_special(g, BL_TOK_BOS) == 50256, "gpt2 eos/bos");
        CHECK(!bl_tok_adds_special(g), "gpt2 adds no specials");
        /* raw bytes of a cut multi-byte character come back exactly */
        int32_t cut[2] = {12519, 222}; /* the bytes of an emoji's start */
        char *bytes; size_t bl;
        CHECK_OK(bl_tok_decode_bytes(g, cut, 1, false, &bytes, &bl));
        free(bytes);
        bl_tok_free(g);
    }

    /* LLaMA-2 tokenizer.json (SentencePiece BPE with byte fallback) */
    snprintf(dir, sizeof dir, "%s/tokenizers/llama2", shared);
    bl_tok *l = load(dir);
    if (l) {
        compare_file(l, "llama2", "inputs.jsonl", "llama2.ids", true);
        compare_decode(l, "llama2", "llama2_decode.jsonl");
        CHECK(bl_tok_special(l, BL_TOK_BOS) == 1 && bl_tok_special(l, BL_TOK_EOS) == 2 && bl_tok_special(l, BL_TOK_UNK) == 0, "llama2 specials");
        CHECK(bl_tok_adds_special(l), "llama2 adds BOS");
        /* byte-exact round trip of text with byte-fallback characters */
        const char *txt = "tab\there \xF0\x9F\x98\x80 \xE6\x97\xA5";
        bl_tok_enc e = {0};
        CHECK_OK(bl_tok_encode(l, txt, strlen(txt), false, &e));
        char *bytes; size_t bl;
        CHECK_OK(bl_tok_decode_bytes(l, e.ids, e.n, false, &bytes, &bl));
        CHECK(bl == strlen(txt) + 1 && bytes[0] == ' ' && memcmp(bytes + 1, txt, strlen(txt)) == 0, "llama2 raw bytes round trip: '%s'", bytes);
        free(bytes);
        /* hand-checked (HF ByteFallback: a run of byte tokens that is not valid UTF-8 gives one U+FFFD
           per byte; a valid run gives its text): <0xE5><0x8F><0xAB> = U+53EB */
        int32_t e5 = bl_tok_token_to_id(l, "<0xE5>"), x8f = bl_tok_token_to_id(l, "<0x8F>"), xab = bl_tok_token_to_id(l, "<0xAB>");
        int32_t a = bl_tok_token_to_id(l, "a");
        CHECK(e5 >= 0 && x8f >= 0 && xab >= 0 && a >= 0, "byte tokens");
        int32_t ok3[4] = {e5, x8f, xab, a}, bad2[3] = {e5, x8f, a};
        char *txt2;
        CHECK_OK(bl_tok_decode(l, ok3, 4, false, &txt2, NULL));
        CHECK(!strcmp(txt2, "\xE5\x8F\xAB" "a"), "valid byte run: '%s'", txt2);
        free(txt2);
        CHECK_OK(bl_tok_decode(l, bad2, 3, false, &txt2, NULL));
        CHECK(!strcmp(txt2, "\xEF\xBF\xBD\xEF\xBF\xBD" "a"), "invalid byte run: '%s'", txt2);
        free(txt2);
        bl_tok_enc_free(&e);
        bl_tok_free(l);
    }

    /* BERT from vocab.txt */
    snprintf(dir, sizeof dir, "%s/tokenizers/bert-base-uncased", shared);
    bl_tok *b = load(dir);
    if (b) {
        compare_file(b, "bert", "inputs.jsonl", "bert.ids", true);
        compare_file(b, "bert (no special)", "inputs.jsonl", "bert_nospecial.ids", false);
        compare_decode(b, "bert", "bert_decode.jsonl");
        CHECK(bl_tok_special(b, BL_TOK_CLS) == 101 && bl_tok_special(b, BL_TOK_SEP) == 102 && bl_tok_special(b, BL_TOK_PAD) == 0 &&
              bl_tok_special(b, BL_TOK_MASK) == 103 && bl_tok_special(b, BL_TOK_UNK) == 100, "bert specials");
        /* pairs: ids and token types */
        char *b1, *b2;
        size_t n1, n2;
        char **in = tt_lines(tt_data("pairs.jsonl"), &n1, &b1);
        char **ref = tt_lines(tt_data("bert_pair.ids"), &n2, &b2);
        CHECK(n1 == n2, "pairs %zu vs %zu", n1, n2);
        bl_tok_enc e = {0};
        int bad = 0;
        static char got[1 << 16], gtt[1 << 16], want[1 << 17];
        for (size_t i = 0; i < n1 && i < n2; i++) {
            cJSON *j = cJSON_Parse(in[i]);
            const char *ta = cJSON_GetStringValue(cJSON_GetObjectItem(j, "text")), *tb = cJSON_GetStringValue(cJSON_GetObjectItem(j, "pair"));
            CHECK_OK(bl_tok_encode_pair(b, ta, strlen(ta), tb, strlen(tb), true, &e));
            tt_format(e.ids, e.n, got, sizeof got);
            tt_format(e.type_ids, e.n, gtt, sizeof gtt);
            snprintf(want, sizeof want, "%s\t%s", got, gtt);
            if (strcmp(want, ref[i])) { if (bad < 3) fprintf(stderr, "pair %zu\n  want %s\n  got  %s\n", i + 1, ref[i], want); bad++; }
            cJSON_Delete(j);
        }
        CHECK(bad == 0, "bert pairs: %d differ", bad);
        /* hand-checked: an empty pair is still a pair in HF: [CLS] [SEP] [SEP], types 0 0 1 */
        CHECK_OK(bl_tok_encode_pair(b, "", 0, "", 0, true, &e));
        CHECK(e.n == 3 && e.ids[0] == 101 && e.ids[1] == 102 && e.ids[2] == 102 && e.type_ids[2] == 1 && e.type_ids[1] == 0, "empty pair");
        CHECK_OK(bl_tok_encode_pair(b, "a", 1, "b", 1, false, &e));
        CHECK(e.n == 2 && e.type_ids[0] == 0 && e.type_ids[1] == 1 && e.special[0] == 0, "pair without specials");
        bl_tok_enc_free(&e);
        free(in); free(ref); free(b1); free(b2);
        bl_tok_free(b);
    }

    /* Unigram (hand-made model; tokenizers.js reference) */
    bl_tok *u = load(tt_data("unigram/tokenizer.json"));
    if (u) {
        CHECK(bl_tok_model_type(u) == BL_TOK_MODEL_UNIGRAM, "unigram type");
        compare_file(u, "unigram", "unigram_inputs.jsonl", "unigram.ids", true);
        /* hand-checked: "the cat" -> ▁the ▁cat </s>; "thecat" -> ▁the c at (c+at = -10.3 beats ca+t = -11.4) */
        int32_t ids[16];
        size_t n;
        CHECK_OK(bl_tok_encode_ids(u, "thecat", 6, false, ids, 16, &n));
        CHECK(n == 3 && ids[0] == 4 && ids[1] == 15 && ids[2] == 19, "thecat: n=%zu", n);
        char *text;
        CHECK_OK(bl_tok_decode(u, ids, n, false, &text, NULL));
        CHECK(!strcmp(text, "thecat"), "unigram decode '%s'", text);
        free(text);
        /* HF's Metaspace decoder drops every "▁" of the first token: [▁, ▁the] -> " the" (only the first token loses its marks), [▁the, ▁, ▁cat] -> "the  cat" */
        int32_t d1[2] = {3, 4}, d2[3] = {4, 3, 20};
        CHECK_OK(bl_tok_decode(u, d1, 2, false, &text, NULL));
        CHECK(!strcmp(text, " the"), "metaspace decode 1 '%s'", text);
        free(text);
        CHECK_OK(bl_tok_decode(u, d2, 3, false, &text, NULL));
        CHECK(!strcmp(text, "the  cat"), "metaspace decode 2 '%s'", text);
        free(text);
        bl_tok_free(u);
    }
    return t_finish();
}
