/* A PEFT adapter folder: part 0 of the input is adapter_config.json, part 1 (optional)
 * adapter_model.safetensors (FZ_SEP framing). Without weights: bl_peft_config_load and the rank /
 * alpha of a few module paths (rank_pattern / alpha_pattern); with them: bl_peft_open and
 * bl_peft_validate (what inspect, merge and the GGUF export do). */
#include "fuzz_util.h"
#include "io/peft_files.h"

static const char *const modules[] = {"model.layers.0.self_attn.q_proj", "model.layers.1.mlp.up_proj",
                                      "transformer.h.0.attn.c_attn", "lm_head"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_part p[2];
    size_t n = fz_split(data, size, p, 2);
    fz_clear();
    fz_write("adapter_config.json", p[0].d, p[0].n);
    if (n == 1) {
        bl_peft_config c;
        if (fz_check(bl_peft_config_load(&c, fz_dir()))) return 0;
        for (size_t i = 0; i < sizeof modules / sizeof *modules; i++) {
            int64_t r;
            double alpha;
            if (!bl_peft_module_rank_alpha(&c, modules[i], &r, &alpha)) bl_peft_scale(&c, r, alpha);
        }
        bl_peft_config_free(&c);
        return 0;
    }
    fz_write("adapter_model.safetensors", p[1].d, p[1].n);
    bl_peft_adapter a;
    if (fz_check(bl_peft_open(&a, fz_dir()))) return 0;
    fz_check(bl_peft_validate(&a));
    bl_peft_close(&a);
    return 0;
}
