/* Datasets: Alpaca-formatted JSONL with prompt masking, plain text blocks, pre-tokenised
 * JSONL, truncation, every malformed-input error (naming file and line), epoch order and
 * batch padding. A byte tokenizer stands in for the real ones: id = byte + 3, BOS = 1, EOS = 2. */
#include "harness.h"
#include "train/data.h"
#include <stdlib.h>
#include <string.h>

static balora_status byte_encode(void *self, const char *text, size_t len, bool special, int32_t *ids, int64_t cap, int64_t *n) {
    (void)self;
    int64_t k = 0;
    if (special) { if (k < cap) ids[k] = 1; k++; }
    for (size_t i = 0; i < len; i++) { if (k < cap) ids[k] = (unsigned char)text[i] + 3; k++; }
    *n = k;
    return BALORA_STATUS_OK;
}
static const bl_train_tokenizer g_tok = {NULL, byte_encode, 2};

static char g_path[512];
static const char *write_file(const char *name, const char *text, size_t len) {
    snprintf(g_path, sizeof g_path, "%s/%s", t_tmpdir(), name);
    FILE *f = fopen(g_path, "wb");
    fwrite(text, 1, len, f);
    fclose(f);
    return g_path;
}
#define WRITE(name, text) write_file(name, text, strlen(text))

static void test_jsonl(void) {
    bl_train_data_cfg c;
    bl_train_data_cfg_default(&c);
    c.vocab_size = 259;
    c.template_text = "Q:{query}\nA:";
    bl_train_data d;
    const char *p = WRITE("a.jsonl", "{\"query\": \"hi\", \"response\": \"yo\"}\n\n  \n{\"query\": \"x\", \"response\": \"\\u00e9\", \"extra\": 1}\n");
    CHECK_OK(bl_train_data_load(&d, p, &c, &g_tok));
    CHECK(d.n == 2, "n = %lld", (long long)d.n);
    /* BOS Q : h i \n A : y o EOS */
    const char *prompt = "Q:hi\nA:";
    int64_t len0 = d.off[1] - d.off[0];
    CHECK(len0 == 1 + 7 + 2 + 1, "len0 = %lld", (long long)len0);
    CHECK(d.ids[0] == 1 && d.labels[0] == -100, "BOS masked");
    for (int t = 0; t < 7; t++) CHECK(d.ids[1 + t] == (unsigned char)prompt[t] + 3 && d.labels[1 + t] == -100, "prompt tok %d", t);
    CHECK(d.ids[8] == 'y' + 3 && d.labels[8] == 'y' + 3 && d.labels[9] == 'o' + 3, "response trained");
    CHECK(d.ids[10] == 2 && d.labels[10] == 2, "EOS appended and trained");
    CHECK(d.trained[0] == 3, "trained = %lld", (long long)d.trained[0]);
    /* é is two UTF-8 bytes */
    CHECK(d.off[2] - d.off[1] == 1 + 6 + 2 + 1 && d.trained[1] == 3, "utf-8 response");
    CHECK(d.total_trained == 6 && d.max_len == 11, "totals");
    bl_train_data_free(&d);

    /* default Alpaca template, custom fields, truncation */
    bl_train_data_cfg_default(&c);
    c.vocab_size = 259;
    c.prompt_field = "instruction"; c.response_field = "output";
    c.max_len = 200;
    p = WRITE("b.jsonl", "{\"instruction\": \"Add 1 and 2.\", \"output\": \"3\"}\n");
    CHECK_OK(bl_train_data_load(&d, p, &c, &g_tok));
    int64_t want = 1 + (int64_t)strlen(BL_ALPACA_TEMPLATE) - 7 + 12 + 1 + 1;
    CHECK(d.n == 1 && d.off[1] == want, "alpaca length %lld want %lld", (long long)d.off[1], (long long)want);
    CHECK(d.ids[want - 2] == '3' + 3 && d.labels[want - 3] == -100 && d.labels[want - 2] == '3' + 3, "alpaca masking");
    CHECK(strstr(BL_ALPACA_TEMPLATE, "### Instruction:\n{query}\n\n### Response:") != NULL, "template text");
    bl_train_data_free(&d);
    c.max_len = 50; /* the prompt alone is longer: nothing trained */
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &g_tok), BALORA_STATUS_INVALID, "no example has a trained token");
    c.max_len = 200;
    c.template_text = "no hole";
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &g_tok), BALORA_STATUS_INVALID, "{query}");
    c.template_text = NULL;
    CHECK_FAILS(bl_train_data_load(&d, p, &c, NULL), BALORA_STATUS_INVALID, "needs a tokenizer");

    /* errors name the file and the line */
    bl_train_data_cfg_default(&c);
    c.vocab_size = 259;
    p = WRITE("bad.jsonl", "{\"query\": \"a\", \"response\": \"b\"}\n{\"query\": \"a\", \"response\": \n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &g_tok), BALORA_STATUS_FORMAT, "bad.jsonl:2: bad JSON");
    p = WRITE("miss.jsonl", "\n{\"query\": \"a\"}\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &g_tok), BALORA_STATUS_FORMAT, "miss.jsonl:2: missing field 'response'");
    p = WRITE("type.jsonl", "{\"query\": 3, \"response\": \"b\"}\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &g_tok), BALORA_STATUS_FORMAT, "type.jsonl:1: field 'query' must be a string");
    p = WRITE("arr.jsonl", "[1, 2]\n"); /* read as a JSON array of records: record 1 is no object */
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &g_tok), BALORA_STATUS_FORMAT, "arr.jsonl: record 1 of the JSON array is not an object");
    p = WRITE("arr2.jsonl", "{\"query\": \"a\", \"response\": \"b\"}\n[1, 2]\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &g_tok), BALORA_STATUS_FORMAT, "arr2.jsonl:2: expected a JSON object");
    p = write_file("latin1.jsonl", "{\"query\": \"a\", \"response\": \"b\"}\n{\"query\": \"caf\xe9\", \"response\": \"b\"}\n", strlen("{\"query\": \"a\", \"response\": \"b\"}\n{\"query\": \"caf\xe9\", \"response\": \"b\"}\n"));
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &g_tok), BALORA_STATUS_FORMAT, "latin1.jsonl:2: text is not valid UTF-8");
    p = WRITE("empty.jsonl", "\n \n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &g_tok), BALORA_STATUS_INVALID, "empty.jsonl: the dataset is empty");
    snprintf(g_path, sizeof g_path, "%s/nope.jsonl", t_tmpdir());
    CHECK_FAILS(bl_train_data_load(&d, g_path, &c, &g_tok), BALORA_STATUS_IO, "nope.jsonl");
    c.vocab_size = 100; /* the tokenizer emits ids up to 258 */
    p = WRITE("v.jsonl", "{\"query\": \"a\", \"response\": \"b\"}\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &g_tok), BALORA_STATUS_INVALID, "v.jsonl:1: the tokenizer produced id");
}

static void test_tokens(void) {
    bl_train_data_cfg c;
    bl_train_data_cfg_default(&c);
    c.format = BL_TRAIN_DATA_TOKENS;
    c.vocab_size = 10;
    c.max_len = 4;
    bl_train_data d;
    const char *p = WRITE("t.jsonl", "{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [4, 5, 6, 7, 8, 9], \"labels\": [-100, -100, 6, 7, -100, 9]}\n");
    CHECK_OK(bl_train_data_load(&d, p, &c, NULL));
    CHECK(d.n == 2 && d.off[1] == 3 && d.off[2] == 7, "offsets %lld %lld", (long long)d.off[1], (long long)d.off[2]);
    CHECK(d.labels[0] == 1 && d.labels[2] == 3 && d.trained[0] == 2, "labels default to ids");
    CHECK(d.labels[3] == -100 && d.labels[5] == 6 && d.labels[6] == 7 && d.trained[1] == 2, "given labels, truncated to 4");
    CHECK(d.max_len == 4 && d.total_trained == 4, "max_len %lld", (long long)d.max_len);

    /* epoch order: a permutation, deterministic, different per epoch and seed */
    bl_train_data_free(&d);
    char big[4096] = "";
    for (int i = 0; i < 50; i++) strcat(big, "{\"input_ids\": [1, 2]}\n");
    p = WRITE("many.jsonl", big);
    CHECK_OK(bl_train_data_load(&d, p, &c, NULL));
    int64_t a[50], b[50], e1[50], s2[50], id[50];
    bl_train_data_order(&d, 42, 0, true, a);
    bl_train_data_order(&d, 42, 0, true, b);
    bl_train_data_order(&d, 42, 1, true, e1);
    bl_train_data_order(&d, 43, 0, true, s2);
    bl_train_data_order(&d, 42, 0, false, id);
    int seen[50] = {0}, same_e = 1, same_s = 1, moved = 0;
    for (int i = 0; i < 50; i++) {
        CHECK(a[i] == b[i], "deterministic at %d", i);
        seen[a[i]]++;
        same_e &= a[i] == e1[i]; same_s &= a[i] == s2[i];
        moved += a[i] != i;
        CHECK(id[i] == i, "no shuffle");
    }
    for (int i = 0; i < 50; i++) CHECK(seen[i] == 1, "permutation: %d seen %d times", i, seen[i]);
    CHECK(!same_e && !same_s && moved > 10, "shuffles differ by epoch and seed (moved %d)", moved);
    bl_train_data_free(&d);

    /* errors */
    p = WRITE("r.jsonl", "{\"input_ids\": [1]}\n{\"input_ids\": [1, 2], \"labels\": [1, 10]}\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, NULL), BALORA_STATUS_INVALID, "r.jsonl:2: field 'labels'[1] = 10 is out of range");
    p = WRITE("r2.jsonl", "{\"input_ids\": [1, -100]}\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, NULL), BALORA_STATUS_INVALID, "r2.jsonl:1: field 'input_ids'[1] = -100 is out of range");
    p = WRITE("r3.jsonl", "{\"input_ids\": [1, 2], \"labels\": [-5, 2]}\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, NULL), BALORA_STATUS_INVALID, "r3.jsonl:1: field 'labels'[0] = -5");
    p = WRITE("r4.jsonl", "{\"input_ids\": [1, 2], \"labels\": [2]}\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, NULL), BALORA_STATUS_FORMAT, "same length");
    p = WRITE("r5.jsonl", "{\"input_ids\": [1, 2.5]}\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, NULL), BALORA_STATUS_FORMAT, "r5.jsonl:1: field 'input_ids'[1] is not an integer");
    p = WRITE("r6.jsonl", "{\"ids\": [1]}\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, NULL), BALORA_STATUS_FORMAT, "r6.jsonl:1: missing field 'input_ids'");
    p = WRITE("r7.jsonl", "{\"input_ids\": [1], \"labels\": [-100]}\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, NULL), BALORA_STATUS_INVALID, "no example has a trained token");
    p = WRITE("r8.jsonl", "{\"input_ids\": []}\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, NULL), BALORA_STATUS_FORMAT, "r8.jsonl:1: field 'input_ids' is empty");
    p = WRITE("r9.jsonl", "{\"input_ids\": \"1 2\"}\n");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, NULL), BALORA_STATUS_FORMAT, "must be an array");
}

static void test_text_and_batch(void) {
    bl_train_data_cfg c;
    bl_train_data_cfg_default(&c);
    c.format = BL_TRAIN_DATA_TEXT;
    c.vocab_size = 259;
    c.max_len = 4;
    bl_train_data d;
    const char *p = WRITE("t.txt", "abcdefghij"); /* BOS + 10 bytes = 11 tokens: 2 blocks of 4, 3 dropped */
    CHECK_OK(bl_train_data_load(&d, p, &c, &g_tok));
    CHECK(d.n == 2 && d.off[2] == 8, "blocks %lld", (long long)d.n);
    CHECK(d.ids[0] == 1 && d.ids[4] == 'd' + 3 && d.labels[4] == d.ids[4] && d.trained[0] == 3, "block content");
    bl_train_data_free(&d);
    c.max_len = 100; /* shorter than one block: kept */
    CHECK_OK(bl_train_data_load(&d, p, &c, &g_tok));
    CHECK(d.n == 1 && d.off[1] == 11, "short text kept whole");

    /* batch: longest in batch, right padding, mask, trained count */
    bl_train_batch b;
    CHECK_OK(bl_train_batch_init(&b, 2, 16));
    bl_train_data_free(&d);
    c.format = BL_TRAIN_DATA_TOKENS; c.vocab_size = 10; c.max_len = 16;
    p = WRITE("bt.jsonl", "{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [4, 5], \"labels\": [4, -100]}\n{\"input_ids\": [6, 7, 8, 9, 1]}\n");
    CHECK_OK(bl_train_data_load(&d, p, &c, NULL));
    int64_t idx[2] = {1, 0};
    bl_train_batch_fill(&b, &d, idx, 2, false, 0);
    CHECK(b.B == 2 && b.T == 3, "shape %lldx%lld", (long long)b.B, (long long)b.T);
    const int64_t want_ids[6] = {4, 5, 0, 1, 2, 3}, want_lab[6] = {4, -100, -100, 1, 2, 3}, want_mask[6] = {1, 1, 0, 1, 1, 1};
    for (int i = 0; i < 6; i++)
        CHECK(b.ids[i] == want_ids[i] && b.labels[i] == want_lab[i] && b.mask[i] == want_mask[i], "batch elem %d", i);
    CHECK(b.n_trained == 2 && b.n_tokens == 5, "trained %lld tokens %lld", (long long)b.n_trained, (long long)b.n_tokens);
    int64_t one = 2;
    bl_train_batch_fill(&b, &d, &one, 1, true, 0);
    CHECK(b.B == 1 && b.T == 16 && b.mask[5] == 0 && b.mask[4] == 1 && b.n_trained == 4, "pad to max");
    bl_train_batch_free(&b);
    bl_train_data_free(&d);

    bl_train_data_cfg_default(&c);
    c.format = BL_TRAIN_DATA_TEXT; c.vocab_size = 259;
    p = write_file("bad.txt", "line one\nline two\nbad \xff here\n", 28);
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &g_tok), BALORA_STATUS_FORMAT, "bad.txt:3: text is not valid UTF-8");
    p = WRITE("e.txt", "");
    CHECK_FAILS(bl_train_data_load(&d, p, &c, &g_tok), BALORA_STATUS_INVALID, "e.txt: the dataset is empty");
    bl_train_data_format f;
    CHECK_OK(bl_train_data_format_parse("tokens", &f));
    CHECK(f == BL_TRAIN_DATA_TOKENS, "parse");
    CHECK_FAILS(bl_train_data_format_parse("csv", &f), BALORA_STATUS_INVALID, "unknown format 'csv'");
}

int main(void) {
    test_jsonl();
    test_tokens();
    test_text_and_batch();
    return t_finish();
}
