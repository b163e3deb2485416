/* safetensors, one file: bl_st_open on the input, then every tensor converted to float32 and int64
 * and a metadata lookup (what inspect, merge and the loaders do with it). */
#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bl_st_file f;
    if (fz_check(bl_st_open(&f, fz_write("model.safetensors", data, size)))) return 0;
    for (int i = 0; i < f.n; i++) {
        const bl_st_tensor *t = &f.tensors[i];
        if (bl_st_find(&f, t->name) != t) abort(); /* sorted by name: the lookup finds each one */
        size_t n = t->numel > 0 ? (size_t)t->numel : 1;
        float *x = malloc(n * sizeof *x);
        int64_t *y = malloc(n * sizeof *y);
        if (x && y) {
            bl_st_tensor_to_f32(&f, t, x);
            bl_st_tensor_to_i64(&f, t, y);
        }
        free(x);
        free(y);
    }
    bl_st_meta(&f, "format");
    bl_st_close(&f);
    return 0;
}
