/* What a model folder, PEFT adapter folder, .safetensors file or .gguf file holds, as a JSON
 * description (the CLI prints it as text or as JSON; the library never prints).
 *
 * Common keys: "kind" ("model" | "adapter" | "safetensors" | "gguf"), "path", "tensors"
 * [{name, dtype, shape, params}] (GGUF: {name, type, ne (innermost first), offset, params}),
 * "groups" [{pattern, tensors, params}] (layer indices replaced by '*'), "total_params".
 * model: "config" (model_type, architectures and the hyper-parameters present), "files".
 * adapter: "config" (peft_type, task_type, r, lora_alpha, scaling, use_rslora, use_dora,
 * fan_in_fan_out, init_lora_weights, target_modules, modules_to_save, rank_pattern,
 * alpha_pattern), "lora_modules" [{module, r, alpha, scale, in, out}], "full_tensors",
 * "trainable_params", "consistent" (pairs complete, shapes and ranks agree) and "problem".
 * safetensors: "metadata". gguf: "version", "alignment", "kv" {key: value}. */
#ifndef BL_INSPECT_H
#define BL_INSPECT_H
#include "io/json.h"

balora_status bl_inspect_path(const char *path, cJSON **out);

#endif
