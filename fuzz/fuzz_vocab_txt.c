/* WordPiece vocab.txt (BERT): part 0 of the input is the file, part 1 (optional) a text to encode
 * (FZ_SEP framing). */
#include "tok/tok.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_part p[2];
    size_t n = fz_split(data, size, p, 2);
    fz_clear();
    fz_write("vocab.txt", p[0].d, p[0].n);
    bl_tok *t;
    if (fz_check(bl_tok_load(&t, fz_dir()))) return 0;
    fz_tok_exercise(t, n > 1 ? p[1].d : NULL, n > 1 ? p[1].n : 0);
    bl_tok_free(t);
    return 0;
}
