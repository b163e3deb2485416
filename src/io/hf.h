/* A Hugging Face model folder: config.json plus model.safetensors, or sharded
 * model-0000N-of-0000M.safetensors with model.safetensors.index.json.
 * Tensor lookups accept names with or without the model prefix ("transformer.", "model.",
 * "bert.", ...): some checkpoints omit it. */
#ifndef BL_HF_H
#define BL_HF_H
#include "io/json.h"
#include "io/safetensors.h"

typedef struct bl_hf_folder {
    char dir[4096];
    char config_path[4200];
    cJSON *config;          /* parsed config.json (owned) */
    int n_files;
    bl_st_file *files;      /* one per shard */
} bl_hf_folder;

balora_status bl_hf_open(bl_hf_folder *h, const char *dir);
void bl_hf_close(bl_hf_folder *h);
/* Finds `name`; if absent, tries it with `prefix` removed or added (prefix like "transformer.").
 * Returns NULL when absent (no error set); *file receives the shard. */
const bl_st_tensor *bl_hf_find(const bl_hf_folder *h, const char *name, const char *prefix, const bl_st_file **file);
/* Finds and converts to float32 with a shape check; the error names the folder, tensor and shapes. */
balora_status bl_hf_read_f32(const bl_hf_folder *h, const char *name, const char *prefix, int ndim, const int64_t *shape, float *out);

/* Copies a model folder's side files (tokenizer files, generation_config.json, and config.json
 * when with_config) from from_dir to to_dir (created), skipping those absent; config.json is
 * required when with_config. *n_copied (may be NULL) counts the files copied. */
balora_status bl_hf_copy_side_files(const char *from_dir, const char *to_dir, bool with_config, int *n_copied);

#endif
