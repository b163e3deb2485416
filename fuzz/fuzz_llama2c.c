/* llama2.c checkpoints: bl_llama2c_open on the input (header checks and the weight pointers), then
 * bl_model_load_llama2c (the model the CLI builds from it: wq/wk permuted, HF names). */
#include "fuzz_util.h"
#include "io/llama2c.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bl_llama2c m;
    if (fz_check(bl_llama2c_open(&m, fz_write("model.bin", data, size)))) return 0;
    /* every pointer lies in the file: read the last float of the classifier */
    float last;
    memcpy(&last, m.wcls + (m.cfg.vocab_size * m.cfg.dim - 1) * 4, sizeof last);
    bl_llama2c_close(&m);
    bl_model model;
    if (!fz_check(bl_model_load_llama2c(&model, fz_path("model.bin")))) bl_model_free(&model);
    return 0;
}
