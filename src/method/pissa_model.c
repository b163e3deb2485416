/* PiSSA on a whole adapter: the SVD initialisation, the conversion to a plain LoRA and the step-0
 * folders (see pissa_model.h). */
#include "method/pissa_model.h"
#include "method/pissa.h"
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



balora_status bl_pissa_init_adapter(bl_adapter *a, int niter, uint64_t seed) {
    if (a->cfg.init != BL_LORA_INIT_PISSA || !a->set)
        return bl_fail(BALORA_STATUS_INTERNAL, "PiSSA: the adapter was not created for PiSSA");
    bl_rng rng;
    bl_rng_seed(&rng, seed ^ 0x5851f42d4c957f2dULL);
    for (int i = 0; i < a->n; i++) {
        bl_lora *m = &a->mods[i];
        bl_linear *L = &a->set->lin[a->lin_index[i]];
        balora_status st = bl_pissa_init(L->W, L->out, L->in, false, m->r, m->scale, niter, 0, &rng, m->A, m->B);
        if (st) return bl_fail_prefix(st, "PiSSA init of %s", L->name);
        if (!m->A0 || !m->B0) return bl_fail(BALORA_STATUS_INTERNAL, "PiSSA: %s has no initial factors (keep_initial)", L->name);
        memcpy(m->A0, m->A, (size_t)(m->r * m->in) * sizeof(float));
        memcpy(m->B0, m->B, (size_t)(m->out * m->r) * sizeof(float));
    }
    return BALORA_STATUS_OK;
}

balora_status bl_pissa_save_converted(const bl_adapter *a, const char *dir, int n_meta,
                                            const char *const *keys, const char *const *vals) {
    /* a shallow copy of the adapter whose modules hold the converted factors */
    bl_adapter conv = *a;
    int64_t total = 0;
    for (int i = 0; i < a->n; i++) total += 2 * a->mods[i].r * (a->mods[i].in + a->mods[i].out);
    bl_lora *mods = bl_calloc((size_t)a->n + 1, sizeof *mods);
    float *buf = bl_malloc((size_t)total * sizeof(float));
    if (!mods || !buf) { free(mods); free(buf); return BALORA_STATUS_NOMEM; }
    balora_status st = BALORA_STATUS_OK;
    float *p = buf;
    for (int i = 0; i < a->n && !st; i++) {
        const bl_lora *m = &a->mods[i];
        mods[i] = *m;
        mods[i].r = 2 * m->r;
        mods[i].A = p; p += 2 * m->r * m->in;   /* [2r, in] */
        mods[i].B = p; p += m->out * 2 * m->r;  /* [out, 2r] */
        mods[i].A0 = mods[i].B0 = NULL;
        st = bl_pissa_to_lora(m->out, m->in, m->r, m->A, m->B, m->A0, m->B0, mods[i].A, mods[i].B);
    }
    conv.mods = mods;
    conv.cfg.r = 2 * a->cfg.r;
    conv.cfg.alpha = bl_pissa_lora_alpha(a->cfg.alpha, a->cfg.rslora);
    conv.cfg.init = BL_LORA_INIT_DEFAULT;
    if (!st) st = bl_lora_save(&conv, dir, n_meta, keys, vals);
    free(buf);
    free(mods);
    return st;
}
