/* GGUF: bl_gguf_open on the input, then a lookup of every key and tensor it holds. */
#include "fuzz_util.h"
#include "io/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bl_gguf_file g;
    if (fz_check(bl_gguf_open(&g, fz_write("model.gguf", data, size)))) return 0;
    for (uint64_t i = 0; i < g.n_kv; i++) {
        bl_gguf_find_kv(&g, g.kvs[i].key);
        bl_gguf_vtype_name(g.kvs[i].type);
    }
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        bl_gguf_find_tensor(&g, g.tensors[i].name);
        bl_ggml_type_name(g.tensors[i].type);
        bl_ggml_nbytes(g.tensors[i].type, g.tensors[i].ne, g.tensors[i].n_dims);
    }
    bl_gguf_close(&g);
    return 0;
}
