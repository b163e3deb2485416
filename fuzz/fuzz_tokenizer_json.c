/* tokenizer.json: part 0 of the input is the file (bl_tok_load_json: the same parser bl_tok_load
 * runs on a folder's tokenizer.json, which fuzz_tokenizer_config covers), part 1 (optional) a text
 * to encode (FZ_SEP framing). */
#include "tok/tok.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_part p[2];
    size_t n = fz_split(data, size, p, 2);
    bl_tok *t;
    if (fz_check(bl_tok_load_json(&t, "tokenizer.json", (const char *)p[0].d, p[0].n))) return 0;
    fz_tok_exercise(t, n > 1 ? p[1].d : NULL, n > 1 ? p[1].n : 0);
    bl_tok_free(t);
    return 0;
}
