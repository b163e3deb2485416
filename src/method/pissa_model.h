/* PiSSA on a whole model (docs/METHOD.md section 2), as PEFT's PiSSA recipe writes it:
 *
 *   OUT/adapter   the PEFT adapter at step 0 (A, B = the principal factors; SEQ_CLS heads as
 *                 modules_to_save). adapter_config.json records init_lora_weights = true, as PEFT's
 *                 recipe does before saving: PEFT re-runs the SVD on load when the field names
 *                 "pissa" (subtracting the principal part from the residual a second time), and
 *                 refuses such an initial adapter in save_pretrained(path_initial_model_for_weight_conversion).
 *                 The PiSSA origin is kept in the safetensors "__metadata__" as
 *                 "balora_init" = "pissa" / "pissa_niter_K" (bl_pissa_adapter_is_step0 reads it).
 *   OUT/residual  a full model folder holding W_res for every adapted module in the checkpoint's own
 *                 orientation (GPT-2 Conv1D transposed back to [in, out]), every other tensor copied,
 *                 config.json and the tokenizer files copied.
 *
 * The SVD per module (bl_pissa_init, src/method/pissa.h) is applied to a whole attached adapter by
 * bl_pissa_init_adapter; a trained PiSSA adapter is written as a plain LoRA by
 * bl_pissa_save_converted; the step-0 folder pair by bl_pissa_save_step0. Every trainer and
 * `balora init` use these. */
#ifndef BL_METHOD_PISSA_MODEL_H
#define BL_METHOD_PISSA_MODEL_H
#include "adapters/lora.h"

/* Key and values of the metadata entry marking a step-0 PiSSA adapter. */
#define BL_PISSA_META_KEY "balora_init"

/* Writes dir/adapter_config.json + adapter_model.safetensors for an adapter whose factors were set
 * by PiSSA (a->cfg.init == BL_LORA_INIT_PISSA): init_lora_weights true, metadata balora_init =
 * init_name ("pissa" or "pissa_niter_K"). */
balora_status bl_pissa_save_step0(const bl_adapter *a, const char *dir, const char *init_name);

/* PiSSA initialisation of an attached adapter created with init BL_LORA_INIT_PISSA and
 * keep_initial: A, B from the top-r SVD of each adapted W (exact: niter < 0; randomized with
 * niter power iterations, seeded), W replaced by W_res, A0/B0 = the initial factors. The trainer's
 * teacher of such an adapter is then BL_ADAPTER_INITIAL (W_res + s B0 A0 = W). */
balora_status bl_pissa_init_adapter(bl_adapter *a, int niter, uint64_t seed);
/* Writes the adapter as PEFT's path_initial_model_for_weight_conversion does: a plain LoRA on the
 * ORIGINAL weights with A' = [A ; A0], B' = [B , -B0], r' = 2r, alpha' (METHOD.md section 2). */
balora_status bl_pissa_save_converted(const bl_adapter *a, const char *dir, int n_meta,
                                      const char *const *keys, const char *const *vals);

#endif
