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

