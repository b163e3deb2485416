/* Dataset files as they are published: a JSON array of records (MetaMathQA-395K.json's layout)
 * reads exactly as the same records in JSONL, for causal-LM token data (train/data.c), generic
 * seq-cls data (data_glue) and the benchmark/eval reader (eval/jsonl.c: GSM8K, MATH, HumanEval,
 * MBPP, MT-Bench, GLUE JSONL); errors name the file and the record (record N = line N). Generated
 * here, no ../shared. */
#include "harness.h"
#include "data_glue/data.h"
#include "eval/jsonl.h"
#include "io/json.h"
#include "train/data.h"
#include <string.h>

static char g_path[1024];
static const char *put(const char *name, const char *text) {
    snprintf(g_path, sizeof g_path, "%s/%s", t_tmpdir(), name);
    CHECK_OK(bl_file_write_atomic(g_path, text, strlen(text)));
    return g_path;
}

static void check_train_tokens(void) {
    const char *lines = "{\"input_ids\": [1, 2, 3, 4]}\n{\"input_ids\": [5, 6, 7], \"labels\": [-100, 6, 7]}\n";
    const char *array = "\xEF\xBB\xBF  [\n  {\"input_ids\": [1, 2, 3, 4]},\n  {\"labels\": [-100, 6, 7], \"input_ids\": [5, 6, 7]}\n]\n";
    bl_train_data_cfg c;
    bl_train_data_cfg_default(&c);
    c.format = BL_TRAIN_DATA_TOKENS;
    c.vocab_size = 16;
    c.max_len = 16;
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s", put("t.jsonl", lines));
    snprintf(p2, sizeof p2, "%s", put("t.json", array));
    bl_train_data a = {0}, b = {0};
    CHECK_OK(bl_train_data_load(&a, p1, &c, NULL));
    CHECK_OK(bl_train_data_load(&b, p2, &c, NULL));
    CHECK(a.n == 2 && b.n == 2, "examples: JSONL %lld, array %lld", (long long)a.n, (long long)b.n);
    if (a.n == 2 && b.n == 2) {
        CHECK(!memcmp(a.off, b.off, 3 * sizeof(int64_t)) && !memcmp(a.ids, b.ids, (size_t)a.off[2] * sizeof(int32_t)) &&
              !memcmp(a.labels, b.labels, (size_t)a.off[2] * sizeof(int32_t)) && a.total_trained == b.total_trained,
              "the array's examples equal the JSONL's");
    }
    bl_train_data_free(&a);
    bl_train_data_free(&b);
    /* errors name the file and the record */
    CHECK_FAILS(bl_train_data_load(&a, put("bad1.json", "[{\"input_ids\": [1, 2]}, 7]"), &c, NULL), BALORA_STATUS_FORMAT,
                "bad1.json: record 2 of the JSON array is not an object");
    CHECK_FAILS(bl_train_data_load(&a, put("bad2.json", "[{\"input_ids\": [1, 2]}, {\"input_ids\": [1, 99]}]"), &c, NULL),
                BALORA_STATUS_INVALID, "bad2.json:2: field 'input_ids'[1] = 99 is out of range");
    CHECK_FAILS(bl_train_data_load(&a, put("bad3.json", "[{\"input_ids\": [1, 2]}, "), &c, NULL), BALORA_STATUS_FORMAT,
                "bad3.json: invalid JSON");
}

static void check_generic_seqcls(void) {
    bl_data_spec s = BL_DATA_SPEC_DEFAULT;
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s", put("g.jsonl", "{\"text\": \"caf\\u00e9 good\", \"label\": \"pos\"}\n{\"text\": \"bad \\\"x\\\"\", \"label\": \"neg\"}\n"));
    snprintf(p2, sizeof p2, "%s", put("g.json", "[{\"label\": \"pos\", \"text\": \"caf\\u00e9 good\"},\n {\"text\": \"bad \\\"x\\\"\", \"label\": \"neg\"}]"));
    bl_glue_set a = {0}, b = {0};
    CHECK_OK(bl_data_load(&a, &s, p1));
    CHECK_OK(bl_data_load(&b, &s, p2));
    CHECK(a.n == 2 && b.n == 2, "examples: JSONL %lld, array %lld", (long long)a.n, (long long)b.n);
    for (int64_t i = 0; i < a.n && i < b.n; i++)
        CHECK(!strcmp(a.text_a[i], b.text_a[i]) && a.label[i] == b.label[i] && a.row[i] == b.row[i],
              "example %lld: '%s' %d (row %lld) vs '%s' %d (row %lld)", (long long)i, a.text_a[i], a.label[i], (long long)a.row[i],
              b.text_a[i], b.label[i], (long long)b.row[i]);
    CHECK(b.n == 2 && !strcmp(b.text_a[0], "caf\xc3\xa9 good") && !strcmp(b.text_a[1], "bad \"x\""), "decoded strings");
    bl_glue_set_free(&a);
    bl_glue_set_free(&b);
    CHECK_FAILS(bl_data_load(&a, &s, put("g2.json", "[{\"text\": \"a\", \"label\": 1}, {\"label\": 0}]")), BALORA_STATUS_FORMAT,
                "g2.json: line 2: missing required field 'text'");
    bl_glue_set_free(&a);
}

typedef struct seen { int n; int64_t line[4]; char id[4][16]; } seen;
static balora_status on_rec(void *ctx, const char *path, int64_t lineno, const cJSON *obj) {
    (void)path;
    seen *s = ctx;
    const char *id = NULL;
    BL_TRY(bl_json_str(obj, "rec", "task_id", true, &id));
    if (s->n < 4) { s->line[s->n] = lineno; snprintf(s->id[s->n], sizeof s->id[0], "%s", id); }
    s->n++;
    return BALORA_STATUS_OK;
}

static void check_eval_reader(void) {
    seen a = {0}, b = {0};
    char p1[1024], p2[1024];
    snprintf(p1, sizeof p1, "%s", put("h.jsonl", "{\"task_id\": \"t/0\"}\n\n{\"task_id\": \"t/1\"}\n"));
    snprintf(p2, sizeof p2, "%s", put("h.json", "\n [ {\"task_id\": \"t/0\"}, {\"task_id\": \"t/1\"} ]"));
    CHECK_OK(bl_jsonl_read(p1, on_rec, &a));
    CHECK_OK(bl_jsonl_read(p2, on_rec, &b));
    CHECK(a.n == 2 && b.n == 2 && !strcmp(a.id[0], b.id[0]) && !strcmp(a.id[1], b.id[1]), "records: %d and %d", a.n, b.n);
    CHECK(b.line[0] == 1 && b.line[1] == 2, "array records numbered 1, 2: %lld %lld", (long long)b.line[0], (long long)b.line[1]);
    seen c = {0};
    CHECK_FAILS(bl_jsonl_read(put("h2.json", "[{\"task_id\": \"a\"}, [1]]"), on_rec, &c), BALORA_STATUS_FORMAT,
                "h2.json: record 2 of the JSON array is not an object");
    /* a file whose first byte is 0xEF without being a BOM is read as JSON lines (and fails as such) */
    CHECK_FAILS(bl_jsonl_read(put("h3.jsonl", "\xEFx\n"), on_rec, &c), BALORA_STATUS_FORMAT, "h3.jsonl: line 1");
}

int main(void) {
    check_train_tokens();
    check_generic_seqcls();
    check_eval_reader();
    return t_finish();
}
