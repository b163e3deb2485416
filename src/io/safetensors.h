/* safetensors read and write (docs/FORMATS.md). The reader validates the whole header
 * (size limit, JSON object, known dtypes, offsets tiling the buffer, file length) and
 * names the file and the tensor in every error. */
#ifndef BL_SAFETENSORS_H
#define BL_SAFETENSORS_H
#include "core/bl.h"

typedef enum bl_dtype {
    BL_DTYPE_F32 = 0, BL_DTYPE_F16, BL_DTYPE_BF16, BL_DTYPE_F64,
    BL_DTYPE_I64, BL_DTYPE_I32, BL_DTYPE_I16, BL_DTYPE_I8, BL_DTYPE_U8, BL_DTYPE_BOOL,
    BL_DTYPE_COUNT
} bl_dtype;
const char *bl_dtype_name(bl_dtype dt);
size_t bl_dtype_size(bl_dtype dt);

#define BL_MAX_DIMS 8
typedef struct bl_st_tensor {
    char *name;
    bl_dtype dtype;
    int ndim;
    int64_t shape[BL_MAX_DIMS];
    int64_t numel;
    const void *data; /* points into the file's buffer */
    size_t nbytes;
} bl_st_tensor;

typedef struct bl_st_file {
    char *path;
    char *buf;          /* the whole file */
    size_t len;
    int n;              /* tensors, sorted by name */
    bl_st_tensor *tensors;
    int n_meta;
    char **meta_keys, **meta_vals;
} bl_st_file;

balora_status bl_st_open(bl_st_file *f, const char *path);
void bl_st_close(bl_st_file *f);
/* NULL if absent (no error set). */
const bl_st_tensor *bl_st_find(const bl_st_file *f, const char *name);
/* Looks up name, checks the shape (ndim dims, -1 = any) and converts to float32 into out
 * (numel floats). Errors name the file and the tensor. */
balora_status bl_st_read_f32(const bl_st_file *f, const char *name, int ndim, const int64_t *shape, float *out);
/* Converts any float/int tensor to float32 / int64. */
balora_status bl_st_tensor_to_f32(const bl_st_file *f, const bl_st_tensor *t, float *out);
balora_status bl_st_tensor_to_i64(const bl_st_file *f, const bl_st_tensor *t, int64_t *out);
const char *bl_st_meta(const bl_st_file *f, const char *key);

/* Writer: collect tensors (data is referenced, not copied, until bl_st_writer_save),
 * then write atomically with the header padded to a multiple of 8 and sorted keys. */
typedef struct bl_st_writer {
    int n, cap;
    struct { char *name; bl_dtype dtype; int ndim; int64_t shape[BL_MAX_DIMS]; const void *data; } *items;
    int n_meta;
    char *meta_keys[32], *meta_vals[32];
} bl_st_writer;
void bl_st_writer_init(bl_st_writer *w);
balora_status bl_st_writer_add(bl_st_writer *w, const char *name, bl_dtype dt, int ndim, const int64_t *shape, const void *data);
balora_status bl_st_writer_meta(bl_st_writer *w, const char *key, const char *val);
/* Each tensor is written in the dtype it was added with. */
balora_status bl_st_writer_save(bl_st_writer *w, const char *path);
void bl_st_writer_free(bl_st_writer *w);

#endif
