/* Regression tests for what the fuzz harnesses (fuzz/, scripts/fuzz.sh) found: each crafted input
 * is built here, and the parser must refuse it with a message naming the file and the field
 * (no crash, no sanitizer report, no leak in the sanitizer build). No ../shared. */
#include "harness.h"
#include "io/hf.h"
#include <string.h>

static char g_path[1200];

static const char *put(const char *dir, const char *name, const void *data, size_t n) {
    CHECK_OK(bl_mkdir_p(dir));
    snprintf(g_path, sizeof g_path, "%s/%s", dir, name);
    CHECK_OK(bl_file_write_atomic(g_path, data, n));
    return g_path;
}

/* io/hf.c: a weight_map entry that is not a file name was reported after the index JSON was freed
 * (heap use after free of the key). */
static void check_index_error_after_free(void) {
    static const char *const cases[][3] = {
        {"{\"weight_map\": {\"model.embed.weight\": 5}}", "weight_map['model.embed.weight'] is not a file name",
         "model.safetensors.index.json"},
        {"{\"weight_map\": {\"lm_head.weight\": \"../x\"}}", "weight_map['lm_head.weight'] = '../x' is not a plain file name",
         "model.safetensors.index.json"},
        {"{\"weight_map\": {\"a\": \"s1\", \"b\": \"s1\"}}", "s1", "/s1"}, /* the missing shard */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/index%zu", t_tmpdir(), i);
        put(dir, "config.json", "{}", 2);
        put(dir, "model.safetensors.index.json", cases[i][0], strlen(cases[i][0]));
        bl_hf_folder h;
        CHECK(bl_hf_open(&h, dir) != BALORA_STATUS_OK, "index %zu refused", i);
        CHECK(strstr(balora_last_error(), cases[i][1]) != NULL, "index %zu: error names the entry: %s", i, balora_last_error());
        CHECK(strstr(balora_last_error(), cases[i][2]) != NULL, "index %zu: error names the file: %s", i, balora_last_error());
    }
}

int main(void) {
    check_index_error_after_free();
    return t_finish();
}
