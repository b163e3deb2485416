/* A sharded Hugging Face folder: bl_hf_open reads config.json ({} here),
 * model.safetensors.index.json (part 0 of the input) and the shards it names; parts 1.. are
 * written as the files "a", "b", "c", ... (FZ_SEP framing, fuzz_util.h). */
#include "fuzz_util.h"
#include "io/hf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_part p[FZ_MAX_PARTS];
    size_t n = fz_split(data, size, p, FZ_MAX_PARTS);
    fz_clear();
    fz_write("config.json", (const uint8_t *)"{}", 2);
    fz_write("model.safetensors.index.json", p[0].d, p[0].n);
    for (size_t k = 1; k < n; k++) {
        char name[2] = {(char)('a' + k - 1), 0};
        fz_write(name, p[k].d, p[k].n);
    }
    bl_hf_folder h;
    if (fz_check(bl_hf_open(&h, fz_dir()))) return 0;
    for (int k = 0; k < h.n_files; k++)
        for (int i = 0; i < h.files[k].n; i++) {
            const bl_st_file *in;
            if (!bl_hf_find(&h, h.files[k].tensors[i].name, "model.", &in)) abort(); /* mapped tensors are found */
        }
    bl_hf_close(&h);
    return 0;
}
