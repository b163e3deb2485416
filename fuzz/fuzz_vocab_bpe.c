/* Legacy byte-level BPE files: part 0 of the input is vocab.json, part 1 merges.txt, part 2
 * (optional) a text to encode (FZ_SEP framing). The first byte's low bit picks the file names:
 * vocab.json + merges.txt (0) or GPT-2's original encoder.json + vocab.bpe (1). */
#include "tok/tok.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool openai = data[0] & 1;
    fz_part p[3];
    size_t n = fz_split(data + 1, size - 1, p, 3);
    fz_clear();
    fz_write(openai ? "encoder.json" : "vocab.json", p[0].d, p[0].n);
    if (n > 1) fz_write(openai ? "vocab.bpe" : "merges.txt", p[1].d, p[1].n);
    bl_tok *t;
    if (fz_check(bl_tok_load(&t, fz_dir()))) return 0;
    fz_tok_exercise(t, n > 2 ? p[2].d : NULL, n > 2 ? p[2].n : 0);
    bl_tok_free(t);
    return 0;
}
