/* What a model folder, PEFT adapter folder, .safetensors, .gguf or llama2.c .bin file holds, as a JSON
 * description (the CLI prints it as text or as JSON; the library never prints).
 *
 * Common keys: "kind" ("model" | "adapter" | "safetensors" | "gguf" | "llama2c"), "path", "tensors"
 * [{name, dtype, shape, params}] (GGUF: {name, type, ne (innermost first), offset, params}),
 * "groups" [{pattern, tensors, params}] (layer indices replaced by '*'), "total_params".
 * model: "config" (model_type, architectures and the hyper-parameters present), "files",
 *        "architecture" (balora's row of the architecture table: supported, family, encoder,
 *        default_targets, default_targets_init (decoders), gguf_arch).
 * adapter: "config" (peft_type, task_type, r, lora_alpha, scaling, use_rslora, use_dora,
 * fan_in_fan_out, init_lora_weights, target_modules, modules_to_save, rank_pattern,
 * alpha_pattern), "lora_modules" [{module, r, alpha, scale, in, out}], "full_tensors",
 * "trainable_params", "consistent" (pairs complete, shapes and ranks agree) and "problem".
 * safetensors: "metadata". gguf: "version", "alignment", "kv" {key: value}.
 * llama2c (a .bin file): "config" (the header fields, shared_classifier), arrays as tensors. */
#ifndef BL_INSPECT_H
#define BL_INSPECT_H
#include "io/json.h"

balora_status bl_inspect_path(const char *path, cJSON **out);

#endif
