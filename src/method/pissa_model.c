/* PiSSA step-0 folders (see pissa_model.h). */
#include "method/pissa_model.h"
#include <stdlib.h>
#include <string.h>

balora_status bl_pissa_save_step0(const bl_adapter *a, const char *dir, const char *init_name) {
    if (!a || !a->set || a->cfg.init != BL_LORA_INIT_PISSA)
        return bl_fail(BALORA_STATUS_INTERNAL, "PiSSA: the adapter to save was not initialised by PiSSA");
    if (!init_name || strncmp(init_name, "pissa", 5) != 0)
        return bl_fail(BALORA_STATUS_INVALID, "PiSSA: init name '%s' is not pissa or pissa_niter_K", init_name ? init_name : "(null)");
    /* a shallow copy whose config says init_lora_weights = true (PEFT must not re-initialise) */
    bl_adapter copy = *a;
    copy.cfg.init = BL_LORA_INIT_DEFAULT;
    const char *keys[1] = {BL_PISSA_META_KEY}, *vals[1] = {init_name};
    return bl_lora_save(&copy, dir, 1, keys, vals);
}

static balora_status copy_one(const char *from_dir, const char *to_dir, const char *name, bool required) {
    char src[4200], dst[4200];
    BL_TRY(bl_path_join(src, sizeof src, from_dir, name));
    BL_TRY(bl_path_join(dst, sizeof dst, to_dir, name));
    if (!bl_file_exists(src)) {
        if (required) return bl_fail(BALORA_STATUS_IO, "%s: missing; hint: the model must be a Hugging Face folder", src);
        return BALORA_STATUS_OK;
    }
    char *buf = NULL;
    size_t len = 0;
    BL_TRY(bl_file_read(src, &buf, &len));
    balora_status st = bl_file_write_atomic(dst, buf, len);
    free(buf);
    return st;
}

balora_status bl_pissa_copy_model_files(const char *from_dir, const char *to_dir, bool with_config) {
    static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "generation_config.json", "vocab.json", "merges.txt", "tokenizer.model",
                                        "vocab.txt", "spm.model", "added_tokens.json"};
    BL_TRY(bl_mkdir_p(to_dir));
    if (with_config) BL_TRY(copy_one(from_dir, to_dir, "config.json", true));
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) BL_TRY(copy_one(from_dir, to_dir, files[i], false));
    return BALORA_STATUS_OK;
}
