/* Bad input gets a clear error, never a crash: invalid UTF-8, malformed or unsupported
 * tokenizer.json, broken tokenizer.model / vocab.txt / merges, bad ids. Also: encoding is linear
 * (long words, long runs of spaces), and random text round-trips byte-exactly. */
#include "test_tok_common.h"
#include <sys/stat.h>

static const char *tmp;

static const char *write_tmp(const char *sub, const char *name, const void *data, size_t n) {
    static char path[2][2048];
    static int k;
    k ^= 1;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", tmp, sub);
    mkdir(dir, 0755);
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    FILE *f = fopen(path[k], "wb");
    if (f) { fwrite(data, 1, n, f); fclose(f); }
    return path[k];
}

static balora_status load_json_text(const char *json) {
    bl_tok *t = NULL;
    balora_status st = bl_tok_load_json(&t, "test.json", json, strlen(json));
    bl_tok_free(t);
    return st;
}

#define MINI_BPE "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}"

int main(void) {
    tmp = t_tmpdir();

    /* ---- tokenizer.json ---- */
    CHECK_FAILS(load_json_text("{\"model\": {"), BALORA_STATUS_FORMAT, "test.json");
    CHECK_FAILS(load_json_text("[1, 2]"), BALORA_STATUS_FORMAT, "expected a JSON object");
    CHECK_FAILS(load_json_text("{}"), BALORA_STATUS_FORMAT, "field 'model'");
    CHECK_FAILS(load_json_text("{\"model\":{\"type\":\"Foo\",\"vocab\":{}}}"), BALORA_STATUS_UNSUPPORTED, "unknown model type 'Foo'");
    CHECK_FAILS(load_json_text("{\"model\":{\"type\":\"BPE\",\"vocab\":[1],\"merges\":[]}}"), BALORA_STATUS_FORMAT, "'vocab' must be an object");
    CHECK_FAILS(load_json_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}"), BALORA_STATUS_FORMAT, "non-negative integer id");
    CHECK_FAILS(load_json_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a c\"]}}"), BALORA_STATUS_FORMAT, "token 'c' is not in the vocabulary");
    CHECK_FAILS(load_json_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a\"]}}"), BALORA_STATUS_FORMAT, "two tokens separated by one space");
    CHECK_FAILS(load_json_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a a\"]}}"), BALORA_STATUS_FORMAT, "merged token 'aa' is not in the vocabulary");
    CHECK_FAILS(load_json_text("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":7}}"), BALORA_STATUS_FORMAT, "'merges' must be an array");
    CHECK_FAILS(load_json_text("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}"), BALORA_STATUS_FORMAT, "unk_token '[UNK]' is not in the WordPiece vocabulary");
    CHECK_FAILS(load_json_text("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\"]]}}"), BALORA_STATUS_FORMAT, "must be [\"piece\", score]");
    CHECK_FAILS(load_json_text("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",-1]],\"unk_id\":5}}"), BALORA_STATUS_FORMAT, "unk_id 5 is outside");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"normalizer\":{\"type\":\"Magic\"}}"), BALORA_STATUS_UNSUPPORTED, "unknown normalizer type 'Magic'");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"pre_tokenizer\":{\"type\":\"Magic\"}}"), BALORA_STATUS_UNSUPPORTED, "unknown pre-tokenizer type 'Magic'");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"decoder\":{\"type\":\"Magic\"}}"), BALORA_STATUS_UNSUPPORTED, "unknown decoder type 'Magic'");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"post_processor\":{\"type\":\"Magic\"}}"), BALORA_STATUS_UNSUPPORTED, "unknown post-processor type 'Magic'");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"normalizer\":{\"no_type\":1}}"), BALORA_STATUS_FORMAT, "missing 'type'");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(a\"},\"behavior\":\"Isolated\"}}"), BALORA_STATUS_FORMAT, "does not compile");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":\"Sideways\"}}"), BALORA_STATUS_FORMAT, "unknown split behavior");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{}}}"),
                BALORA_STATUS_FORMAT, "special token '<s>' of the template");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<s>\":{\"ids\":[77]}}}}"),
                BALORA_STATUS_FORMAT, "special token id 77 is not in the vocabulary");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"added_tokens\":[{\"id\":3}]}"), BALORA_STATUS_FORMAT, "field 'content'");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"!!\"}}"), BALORA_STATUS_FORMAT, "base64");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"/////w==\"}}"), BALORA_STATUS_FORMAT, "truncated");
    /* issue 17: post-processor ids and unk_id that do not fit int32 are refused before the cast
       (1e20 was cast to int32: undefined behaviour, caught by -fsanitize=float-cast-overflow) */
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<s>\":{\"ids\":[1e20]}}}}"),
                BALORA_STATUS_FORMAT, "special token '<s>': id 1e+20 is not a token id");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<s>\":{\"ids\":[-1]}}}}"),
                BALORA_STATUS_FORMAT, "id -1 is not a token id");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"post_processor\":{\"type\":\"BertProcessing\",\"cls\":[\"a\",0],\"sep\":[\"b\",1e20]}}"),
                BALORA_STATUS_FORMAT, "field 'sep': id 1e+20 is not a token id");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"post_processor\":{\"type\":\"RobertaProcessing\",\"cls\":[\"a\",0.5],\"sep\":[\"b\",1]}}"),
                BALORA_STATUS_FORMAT, "field 'cls': id 0.5 is not a token id");
    CHECK_OK(load_json_text("{" MINI_BPE ",\"post_processor\":{\"type\":\"BertProcessing\",\"cls\":[\"a\",0],\"sep\":[\"b\",1]}}"));
    CHECK_FAILS(load_json_text("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",-1]],\"unk_id\":1e20}}"), BALORA_STATUS_FORMAT, "unk_id 1e+20 is not a token id");
    /* a Precompiled charsmap shorter than its 4-byte size header, or whose size runs past the blob */
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"AAE=\"}}"), BALORA_STATUS_FORMAT,
                "2 bytes, shorter than its 4-byte size header");
    CHECK_FAILS(load_json_text("{" MINI_BPE ",\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"CAAAAAAAAAA=\"}}"), BALORA_STATUS_FORMAT,
                "trie of 8 bytes, blob of 8");
    /* deep nesting is refused, not a stack overflow */
    {
        char deep[4096] = "{" MINI_BPE ",\"normalizer\":";
        for (int i = 0; i < 40; i++) strcat(deep, "{\"type\":\"Sequence\",\"normalizers\":[");
        strcat(deep, "{\"type\":\"NFC\"}");
        for (int i = 0; i < 40; i++) strcat(deep, "]}");
        strcat(deep, "}");
        CHECK_FAILS(load_json_text(deep), BALORA_STATUS_FORMAT, "nested too deeply");
    }

    /* ---- a small valid BPE: text errors ---- */
    bl_tok *t = NULL;
    const char *mini = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"<unk>\":3},\"unk_token\":\"<unk>\",\"merges\":[\"a b\"]}}";
    CHECK_OK(bl_tok_load_json(&t, "mini", mini, strlen(mini)));
    if (t) {
        bl_tok_enc e = {0};
        CHECK_FAILS(bl_tok_encode(t, "ab\xff", 3, true, &e), BALORA_STATUS_INVALID, "not valid UTF-8 at byte 2");
        CHECK_FAILS(bl_tok_encode(t, "\xe6\x97", 2, true, &e), BALORA_STATUS_INVALID, "not valid UTF-8 at byte 0");
        CHECK_FAILS(bl_tok_encode(t, "\xed\xa0\x80", 3, true, &e), BALORA_STATUS_INVALID, "not valid UTF-8"); /* a surrogate */
        CHECK_OK(bl_tok_encode(t, "abxab", 5, true, &e));
        CHECK(e.n == 3 && e.ids[0] == 2 && e.ids[1] == 3 && e.ids[2] == 2, "unk in the middle: n=%zu", e.n);
        int32_t ids[2] = {2, 99};
        char *text = NULL;
        CHECK_FAILS(bl_tok_decode(t, ids, 2, false, &text, NULL), BALORA_STATUS_INVALID, "cannot decode id 99");
        CHECK(text == NULL, "no text on failure");
        int32_t small[1];
        size_t n;
        CHECK_FAILS(bl_tok_encode_ids(t, "abab", 4, true, small, 1, &n), BALORA_STATUS_INVALID, "needs 2 ids, the buffer holds 1");
        CHECK(n == 2, "n=%zu", n);
        bl_tok_enc_free(&e);
        bl_tok_free(t);
    }
    /* without an unk_token, HF's BPE drops characters it cannot represent (no error) */
    {
        const char *nounk = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}}";
        CHECK_OK(bl_tok_load_json(&t, "nounk", nounk, strlen(nounk)));
        if (t) {
            bl_tok_enc e = {0};
            CHECK_OK(bl_tok_encode(t, "axb", 3, true, &e));
            CHECK(e.n == 1 && e.ids[0] == 2, "dropped x, then a and b merge as in HF: n=%zu", e.n);
            CHECK_OK(bl_tok_encode(t, "xyz", 3, true, &e));
            CHECK(e.n == 0, "all dropped: n=%zu", e.n);
            bl_tok_enc_free(&e);
            bl_tok_free(t);
        }
    }

    /* ---- folders ---- */
    bl_tok *x = NULL;
    CHECK_FAILS(bl_tok_load(&x, "/nonexistent/tokenizer"), BALORA_STATUS_IO, "no such tokenizer folder");
    char empty[1024];
    snprintf(empty, sizeof empty, "%s/empty", tmp);
    mkdir(empty, 0755);
    CHECK_FAILS(bl_tok_load(&x, empty), BALORA_STATUS_IO, "no tokenizer found");
    write_tmp("badjson", "tokenizer.json", "{\"model\": [}", 12);
    snprintf(empty, sizeof empty, "%s/badjson", tmp);
    CHECK_FAILS(bl_tok_load(&x, empty), BALORA_STATUS_FORMAT, "tokenizer.json");
    write_tmp("emptyvocab", "vocab.txt", "", 0);
    snprintf(empty, sizeof empty, "%s/emptyvocab", tmp);
    CHECK_FAILS(bl_tok_load(&x, empty), BALORA_STATUS_FORMAT, "empty vocabulary");
    write_tmp("nounk", "vocab.txt", "[PAD]\nhello\n", 12);
    snprintf(empty, sizeof empty, "%s/nounk", tmp);
    CHECK_FAILS(bl_tok_load(&x, empty), BALORA_STATUS_FORMAT, "no [UNK]");
    write_tmp("gpt", "vocab.json", "{\"a\":0,\"b\":1}", 13);
    write_tmp("gpt", "merges.txt", "#version: 0.2\na c\n", 18);
    snprintf(empty, sizeof empty, "%s/gpt", tmp);
    CHECK_FAILS(bl_tok_load(&x, empty), BALORA_STATUS_FORMAT, "merges.txt: merge 1");
    /* tokenizer.model: garbage, truncated, no pieces */
    write_tmp("spm1", "tokenizer.model", "\x0a\xff\xff\xff\x0f", 5);
    snprintf(empty, sizeof empty, "%s/spm1", tmp);
    CHECK_FAILS(bl_tok_load(&x, empty), BALORA_STATUS_FORMAT, "claims");
    write_tmp("spm2", "tokenizer.model", "\x0f\x01\x02", 3);
    snprintf(empty, sizeof empty, "%s/spm2", tmp);
    CHECK_FAILS(bl_tok_load(&x, empty), BALORA_STATUS_FORMAT, "wire type");
    write_tmp("spm3", "tokenizer.model", "\x10\x01", 2);
    snprintf(empty, sizeof empty, "%s/spm3", tmp);
    CHECK_FAILS(bl_tok_load(&x, empty), BALORA_STATUS_FORMAT, "no pieces");
    write_tmp("spm4", "tokenizer.model", "\x0a\x05\x0a\x03\x61", 5);
    snprintf(empty, sizeof empty, "%s/spm4", tmp);
    CHECK_FAILS(bl_tok_load(&x, empty), BALORA_STATUS_FORMAT, "claims");
    CHECK(x == NULL, "no tokenizer on failure");

    /* ---- issue 17: a Unigram tokenizer.model whose precompiled charsmap lies about its size (the
       trie size header says more bytes than the blob holds, or the blob is shorter than the header):
       `balora tokenize` read past the buffer (exit 139). Now a FORMAT error naming the field. ---- */
    {
        unsigned char pm[256];
        const char *pieces[] = {"<unk>", "\xE2\x96\x81", "H", "e", "l", "o", "w", "r", "d", "!"};
        struct { unsigned char blob[8]; size_t n; const char *needle; } cm[] = {
            {{0xff, 0xff, 0xff, 0x0f, 'x', 0}, 6, "precompiled_charsmap is truncated"},   /* trie of 268 MB in 6 bytes */
            {{0x10, 0x00, 0x00, 0x00}, 4, "precompiled_charsmap is truncated"},           /* trie of 16 bytes, none there */
            {{0x02, 0x00}, 2, "shorter than its 4-byte size header"},
            {{0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, 8, NULL},                 /* valid: one unit, empty pool */
        };
        for (size_t c = 0; c < sizeof cm / sizeof cm[0]; c++) {
            size_t pn = 0;
            for (int k = 0; k < 10; k++) {
                size_t l = strlen(pieces[k]);
                pm[pn++] = 0x0A; pm[pn++] = (unsigned char)(l + 9);
                pm[pn++] = 0x0A; pm[pn++] = (unsigned char)l;
                memcpy(pm + pn, pieces[k], l); pn += l;
                float sc = -(float)k;
                pm[pn++] = 0x15; memcpy(pm + pn, &sc, 4); pn += 4;
                pm[pn++] = 0x18; pm[pn++] = (unsigned char)(k == 0 ? 2 : 1);
            }
            pm[pn++] = 0x1A; pm[pn++] = (unsigned char)(cm[c].n + 2);  /* normalizer_spec: field 3 */
            pm[pn++] = 0x12; pm[pn++] = (unsigned char)cm[c].n;        /*   precompiled_charsmap: field 2 */
            memcpy(pm + pn, cm[c].blob, cm[c].n); pn += cm[c].n;
            char sub[32], sdir[1024];
            snprintf(sub, sizeof sub, "spmcm%zu", c);
            snprintf(sdir, sizeof sdir, "%s/%s", tmp, sub);
            write_tmp(sub, "tokenizer.model", pm, pn);
            bl_tok *ct = NULL;
            if (cm[c].needle) {
                CHECK_FAILS(bl_tok_load(&ct, sdir), BALORA_STATUS_FORMAT, cm[c].needle);
                CHECK(strstr(balora_last_error(), "normalizer_spec") != NULL, "names the field: %s", balora_last_error());
                CHECK(ct == NULL, "no tokenizer on failure");
            } else {
                CHECK_OK(bl_tok_load(&ct, sdir));
                bl_tok_enc ce = {0};
                CHECK_OK(ct ? bl_tok_encode(ct, "Hello world!\n", 13, false, &ce) : BALORA_STATUS_INTERNAL);
                CHECK(ce.n > 0, "valid charsmap: %zu ids", ce.n);
                bl_tok_enc_free(&ce);
                bl_tok_free(ct);
            }
        }
    }

    /* ---- mutation fuzz: damaged tokenizer.json files load or fail cleanly, and whatever loads encodes
       and decodes without crashing (run under ASan/UBSan in CI) ---- */
    {
        char *base; size_t blen;
        char p2[1024];
        snprintf(p2, sizeof p2, "%s/tests/data/tok/unigram/tokenizer.json", t_source_dir());
        CHECK_OK(bl_file_read(p2, &base, &blen));
        char *mut = malloc(blen + 1);
        bl_rng fr;
        bl_rng_seed(&fr, 42);
        int loaded = 0, failed = 0;
        static const char junk[] = "{}[]\",:0123456789-.eE truefalsnul\\u\xff\x80";
        bl_tok_enc fe = {0};
        for (int trial = 0; trial < 400 && base; trial++) {
            memcpy(mut, base, blen);
            size_t n = blen;
            int edits = 1 + (int)bl_rng_below(&fr, 4);
            for (int k = 0; k < edits; k++) {
                size_t at = (size_t)bl_rng_below(&fr, n);
                int kind = (int)bl_rng_below(&fr, 3);
                if (kind == 0) mut[at] = junk[bl_rng_below(&fr, sizeof junk - 1)];
                else if (kind == 1) n = at + 1; /* truncate */
                else { memmove(mut + at, mut + at + 1, n - at - 1); n--; } /* delete a byte */
            }
            bl_tok *ft = NULL;
            if (bl_tok_load_json(&ft, "fuzz", mut, n) != BALORA_STATUS_OK) { failed++; CHECK(ft == NULL && balora_last_error()[0], "error message"); continue; }
            loaded++;
            const char *probe[4] = {"the cat sat", "", "\xE6\x97\xA5\xE6\x9C\xAC xyz", "</s> <s>"};
            for (int k = 0; k < 4; k++) {
                if (bl_tok_encode(ft, probe[k], strlen(probe[k]), true, &fe) != BALORA_STATUS_OK) continue;
                char *txt = NULL;
                if (bl_tok_decode(ft, fe.ids, fe.n, false, &txt, NULL) == BALORA_STATUS_OK) free(txt);
            }
            bl_tok_free(ft);
        }
        CHECK(loaded > 0 && failed > 0, "fuzz: %d loaded, %d failed", loaded, failed);
        bl_tok_enc_free(&fe);
        free(mut);
        free(base);
    }

    /* ---- mutation fuzz of a small SentencePiece tokenizer.model (BPE with byte pieces) ---- */
    {
        unsigned char pm[512];
        size_t pn = 0;
        const char *pieces[] = {"<unk>", "<s>", "</s>", "<0x41>", "\xE2\x96\x81", "a", "b", "ab", "\xE2\x96\x81" "a", "\xE2\x96\x81" "ab"};
        const int types[] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 1};
        for (int k = 0; k < 10; k++) {
            size_t l = strlen(pieces[k]);
            pm[pn++] = 0x0A; pm[pn++] = (unsigned char)(l + 9);          /* pieces: field 1, length */
            pm[pn++] = 0x0A; pm[pn++] = (unsigned char)l;                /*   piece: field 1 */
            memcpy(pm + pn, pieces[k], l); pn += l;
            float sc = -(float)k;
            pm[pn++] = 0x15; memcpy(pm + pn, &sc, 4); pn += 4;           /*   score: field 2, fixed32 */
            pm[pn++] = 0x18; pm[pn++] = (unsigned char)types[k];          /*   type: field 3 */
        }
        const unsigned char spec[] = {0x12, 0x05, 0x18, 0x02, 0x98, 0x02, 0x01}; /* trainer_spec: model_type BPE, byte_fallback */
        memcpy(pm + pn, spec, sizeof spec); pn += sizeof spec;
        char sdir[1024];
        snprintf(sdir, sizeof sdir, "%s/spmfuzz", tmp);
        write_tmp("spmfuzz", "tokenizer.model", pm, pn);
        bl_tok *st = NULL;
        CHECK_OK(bl_tok_load(&st, sdir));
        if (st) {
            bl_tok_enc se = {0};
            CHECK_OK(bl_tok_encode(st, "ab a", 4, false, &se));
            CHECK(se.n == 2 && se.ids[0] == 9 && se.ids[1] == 8, "spm: n=%zu", se.n);
            CHECK_OK(bl_tok_encode(st, "A", 1, false, &se)); /* byte fallback: "\xE2\x96\x81" then <0x41> */
            CHECK(se.n == 2 && se.ids[0] == 4 && se.ids[1] == 3, "spm byte fallback: n=%zu", se.n);
            bl_tok_enc_free(&se);
            bl_tok_free(st);
        }
        bl_rng fr;
        bl_rng_seed(&fr, 9);
        unsigned char mm[512];
        int ok = 0, bad = 0;
        for (int trial = 0; trial < 300; trial++) {
            memcpy(mm, pm, pn);
            size_t n = pn;
            int edits = 1 + (int)bl_rng_below(&fr, 3);
            for (int k = 0; k < edits; k++) {
                size_t at = (size_t)bl_rng_below(&fr, n);
                if (bl_rng_below(&fr, 4) == 0) n = at + 1;
                else mm[at] = (unsigned char)bl_rng_below(&fr, 256);
            }
            write_tmp("spmfuzz", "tokenizer.model", mm, n);
            st = NULL;
            if (bl_tok_load(&st, sdir) != BALORA_STATUS_OK) { bad++; continue; }
            ok++;
            bl_tok_enc se = {0};
            if (bl_tok_encode(st, "ab a A\n", 7, true, &se) == BALORA_STATUS_OK) {
                char *txt;
                if (bl_tok_decode(st, se.ids, se.n, false, &txt, NULL) == BALORA_STATUS_OK) free(txt);
            }
            bl_tok_enc_free(&se);
            bl_tok_free(st);
        }
        CHECK(ok > 0 && bad > 0, "spm fuzz: %d loaded, %d failed", ok, bad);
    }

    /* ---- real tokenizers: linear time, round trips ---- */
    const char *shared = t_shared_dir();
    if (shared) {
        char dir[1024];
        const char *names[3] = {"gpt2", "llama2", "bert-base-uncased"};
        size_t big = 1u << 18; /* 256 KiB */
        char *s = malloc(big + 1);
        bl_tok_enc e = {0};
        bl_rng rng;
        bl_rng_seed(&rng, 7);
        for (int k = 0; k < 3; k++) {
            snprintf(dir, sizeof dir, "%s/tokenizers/%s", shared, names[k]);
            bl_tok *r;
            CHECK_OK(bl_tok_load(&r, dir));
            if (!r) continue;
            /* one 1 MiB word, 256 KiB of spaces, 256 KiB of "ab": a quadratic merge loop would take hours */
            const char *fill[3] = {"a", " ", "ab"};
            for (int f = 0; f < 3; f++) {
                size_t fl = strlen(fill[f]);
                for (size_t i = 0; i < big; i++) s[i] = fill[f][i % fl];
                double t0 = bl_time_now();
                CHECK_OK(bl_tok_encode(r, s, big, true, &e));
                double dt = bl_time_now() - t0;
                if (getenv("BALORA_TOK_VERBOSE")) fprintf(stderr, "%s: 256 KiB of '%s': %.3f s, %zu ids\n", names[k], fill[f], dt, e.n);
                CHECK(dt < 10.0 && e.n > 0, "%s: 256 KiB of '%s' took %.2f s (%zu ids)", names[k], fill[f], dt, e.n);
            }
            /* random valid UTF-8 (ASCII, Latin, CJK, emoji, controls) round-trips through the raw bytes */
            if (k < 2) {
                for (int trial = 0; trial < 200; trial++) {
                    size_t n = 0, want = 1 + bl_rng_below(&rng, 60);
                    while (n < want) {
                        uint32_t c, cls = (uint32_t)bl_rng_below(&rng, 6);
                        if (cls == 0) c = 0x20 + (uint32_t)bl_rng_below(&rng, 95);
                        else if (cls == 1) c = (uint32_t)bl_rng_below(&rng, 0x20);
                        else if (cls == 2) c = 0xA0 + (uint32_t)bl_rng_below(&rng, 0x500);
                        else if (cls == 3) c = 0x4E00 + (uint32_t)bl_rng_below(&rng, 0x5000);
                        else if (cls == 4) c = 0x1F300 + (uint32_t)bl_rng_below(&rng, 0x300);
                        else c = ' ';
                        if (c == 0) c = 1;
                        if (c < 0x80) s[n++] = (char)c;
                        else if (c < 0x800) { s[n++] = (char)(0xC0 | c >> 6); s[n++] = (char)(0x80 | (c & 0x3F)); }
                        else if (c < 0x10000) { s[n++] = (char)(0xE0 | c >> 12); s[n++] = (char)(0x80 | ((c >> 6) & 0x3F)); s[n++] = (char)(0x80 | (c & 0x3F)); }
                        else { s[n++] = (char)(0xF0 | c >> 18); s[n++] = (char)(0x80 | ((c >> 12) & 0x3F)); s[n++] = (char)(0x80 | ((c >> 6) & 0x3F)); s[n++] = (char)(0x80 | (c & 0x3F)); }
                    }
                    CHECK_OK(bl_tok_encode(r, s, n, false, &e));
                    char *back; size_t bl;
                    CHECK_OK(bl_tok_decode_bytes(r, e.ids, e.n, false, &back, &bl));
                    size_t off = k == 1 ? 1 : 0; /* SentencePiece's leading "▁" */
                    CHECK(bl == n + off && memcmp(back + off, s, n) == 0, "%s: round trip of %zu random bytes", names[k], n);
                    free(back);
                    char *txt;
                    CHECK_OK(bl_tok_decode(r, e.ids, e.n, false, &txt, &bl));
                    CHECK(bl == n && memcmp(txt, s, n) == 0, "%s: decode of %zu random bytes", names[k], n);
                    free(txt);
                }
            }
            bl_tok_free(r);
        }
        bl_tok_enc_free(&e);
        free(s);
    } else printf("NOTE: ../shared absent: the real tokenizers' linear-time and round-trip checks do not run\n");
    return t_finish();
}
