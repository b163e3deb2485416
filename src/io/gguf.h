/* GGUF (version 2 and 3) reader, writer, and the llama.cpp LoRA adapter export (docs/FORMATS.md).
 *
 * File layout: magic "GGUF", u32 version, u64 tensor count, u64 KV count; KVs (string key,
 * u32 value type, value); tensor infos (string name, u32 n_dims, u64 ne[n_dims] innermost
 * first, u32 ggml type, u64 offset relative to the data section); padding to the alignment
 * (general.alignment, default 32); the data section, each tensor at an aligned offset.
 * Strings are u64 length + bytes (no NUL). Little-endian throughout. */
#ifndef BL_GGUF_H
#define BL_GGUF_H
#include "core/bl.h"

typedef enum bl_gguf_vtype {
    BL_GGUF_U8 = 0, BL_GGUF_I8 = 1, BL_GGUF_U16 = 2, BL_GGUF_I16 = 3, BL_GGUF_U32 = 4, BL_GGUF_I32 = 5,
    BL_GGUF_F32 = 6, BL_GGUF_BOOL = 7, BL_GGUF_STRING = 8, BL_GGUF_ARRAY = 9, BL_GGUF_U64 = 10, BL_GGUF_I64 = 11,
    BL_GGUF_F64 = 12, BL_GGUF_VTYPE_COUNT
} bl_gguf_vtype;

/* ggml tensor types balora names (others are listed by number). */
#define BL_GGML_F32 0
#define BL_GGML_F16 1
#define BL_GGML_BF16 30
#define BL_GGUF_DEFAULT_ALIGNMENT 32
#define BL_GGML_MAX_DIMS 4

typedef struct bl_gguf_kv {
    char *key;
    bl_gguf_vtype type;
    bl_gguf_vtype arr_type;  /* for arrays */
    uint64_t arr_n;          /* for arrays */
    const char *arr_data;    /* for arrays: first element in the file buffer */
    union { uint64_t u; int64_t i; double f; bool b; } v; /* scalars (integers widened) */
    char *str;               /* for strings (NUL-terminated copy) */
} bl_gguf_kv;

typedef struct bl_gguf_tensor {
    char *name;
    uint32_t n_dims;
    uint64_t ne[BL_GGML_MAX_DIMS];  /* innermost first; unused dims are 1 */
    uint32_t type;
    uint64_t offset;                /* relative to the data section */
    uint64_t nbytes;                /* 0 if the type's block size is unknown to balora */
    const void *data;               /* NULL if nbytes is 0 */
} bl_gguf_tensor;

typedef struct bl_gguf_file {
    char *path;
    char *buf;
    size_t len;
    uint32_t version;
    uint64_t n_kv, n_tensors;
    bl_gguf_kv *kvs;
    bl_gguf_tensor *tensors;
    uint32_t alignment;
    uint64_t data_offset;           /* start of the data section in the file */
} bl_gguf_file;

/* Validates everything it reads: counts and string lengths against the file size, known value
 * types, n_dims <= 4, offsets aligned and inside the file, no overlapping tensors. */
balora_status bl_gguf_open(bl_gguf_file *g, const char *path);
void bl_gguf_close(bl_gguf_file *g);
const bl_gguf_kv *bl_gguf_find_kv(const bl_gguf_file *g, const char *key);
const bl_gguf_tensor *bl_gguf_find_tensor(const bl_gguf_file *g, const char *name);
const char *bl_gguf_vtype_name(bl_gguf_vtype t);
const char *bl_ggml_type_name(uint32_t type); /* "F32", "Q4_K", ... or "?" */
/* Bytes of a tensor of `type` with n elements in its innermost row of ne0; 0 if unknown. */
uint64_t bl_ggml_nbytes(uint32_t type, const uint64_t *ne, uint32_t n_dims);

/* Writer: KVs and tensors (data referenced until save), written with 32-byte alignment. */
typedef struct bl_gguf_writer {
    int n_kv, cap_kv;
    struct { char *key; bl_gguf_vtype type; uint64_t u; double f; char *str; } *kvs;
    int n_t, cap_t;
    struct { char *name; uint32_t n_dims; uint64_t ne[BL_GGML_MAX_DIMS]; uint32_t type; const void *data; uint64_t nbytes; } *ts;
} bl_gguf_writer;
void bl_gguf_writer_init(bl_gguf_writer *w);
balora_status bl_gguf_writer_str(bl_gguf_writer *w, const char *key, const char *val);
balora_status bl_gguf_writer_u32(bl_gguf_writer *w, const char *key, uint32_t val);
balora_status bl_gguf_writer_f32(bl_gguf_writer *w, const char *key, float val);
/* ne innermost first; type F32, F16 or BF16. */
balora_status bl_gguf_writer_tensor(bl_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne,
                                    const void *data);
balora_status bl_gguf_writer_save(bl_gguf_writer *w, const char *path);
void bl_gguf_writer_free(bl_gguf_writer *w);

/* PEFT LoRA adapter -> llama.cpp LoRA GGUF. arch: a llama.cpp architecture of the table
 * (model/arch.h gguf_arch: "llama" (also Mistral), "qwen2", "gpt2").
 * n_head / n_head_kv: the base model's heads; needed where llama.cpp's RoPE row order applies
 * (gguf_rope_pairs: llama's q_proj / k_proj lora_b rows are permuted); 0 = unknown.
 * head_dim: the base's head size (config.json head_dim, or hidden_size / n_head); 0 = unknown.
 * Whatever head counts are given are checked against the adapter's shapes (q/k/v lora_B rows,
 * o_proj lora_A columns = heads x head_dim, head_dim from head_dim or else from the first module
 * that gives it; num_key_value_heads dividing num_attention_heads) and a contradiction is refused
 * naming the field (n_head_from / n_head_kv_from / head_dim_from: where the value came from, e.g.
 * "--n-head" or "base/config.json field 'num_attention_heads'"; NULL: "n_head", ...), its value
 * and the module's shape. type: BL_GGML_F32 or BL_GGML_F16. adapter.lora.alpha = lora_alpha
 * (times sqrt(r) for rsLoRA); a module whose scale differs from alpha / r_module
 * (alpha_pattern) has it folded into lora_b. */
typedef struct bl_gguf_lora_options {
    const char *arch;
    int64_t n_head, n_head_kv, head_dim;
    uint32_t type;
    const char *n_head_from, *n_head_kv_from, *head_dim_from;
} bl_gguf_lora_options;
balora_status bl_gguf_export_lora(const char *adapter_dir, const char *out_path, const bl_gguf_lora_options *opt, int *n_tensors);

/* HF module path -> llama.cpp base tensor name ("model.layers.3.self_attn.q_proj" ->
 * "blk.3.attn_q.weight"); error if the module has no GGUF counterpart. */
balora_status bl_gguf_tensor_name(const char *arch, const char *module, char *out, size_t cap);

#endif
