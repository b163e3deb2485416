/* Merge a PEFT LoRA adapter into its base model at the file level:
 * W += s * B A for every adapted module (transposed for fan_in_fan_out / Conv1D weights and
 * for embeddings), modules_to_save tensors replace the base's, every other tensor is copied.
 * Computed in float32, written back in each tensor's own dtype unless out_dtype is set.
 * Writes OUT/config.json (torch_dtype updated when out_dtype is set), OUT/model.safetensors
 * and copies tokenizer and generation files when present. Strict: an adapter tensor that
 * matches no base tensor, a shape mismatch or DoRA is an error and nothing is written. */
#ifndef BL_MERGE_H
#define BL_MERGE_H
#include "io/safetensors.h"

typedef struct bl_merge_options {
    int out_dtype;       /* -1: keep each tensor's dtype; else BL_DTYPE_F32/F16/BF16 for every float tensor */
} bl_merge_options;

typedef struct bl_merge_report {
    int n_merged;        /* LoRA pairs added to base weights */
    int n_replaced;      /* modules_to_save tensors */
    int n_tensors;       /* tensors written */
    int n_copied_files;  /* tokenizer / generation files copied */
} bl_merge_report;

balora_status bl_merge_adapter(const char *model_dir, const char *adapter_dir, const char *out_dir,
                               const bl_merge_options *opt, bl_merge_report *report);

/* THE merge kernel (file-level merge above and bl_lora_merge_into_base): W += s B A with
 * B [out, r], A [r, in]; W is [out, in], or [in, out] when transposed (fan_in_fan_out / Conv1D
 * as stored in the checkpoint, and embeddings [vocab, dim] with A [r, vocab], B [dim, r]).
 * Goes through src/ops (bl_gemm). module names the tensor in errors. */
balora_status bl_merge_lora_delta(float *W, bool transposed, int64_t out, int64_t in, int64_t r, float s,
                                  const float *B, const float *A, const char *module);

/* "f32" / "f16" / "bf16" -> BL_DTYPE_*; error otherwise. */
balora_status bl_merge_parse_dtype(const char *s, int *out);

#endif
