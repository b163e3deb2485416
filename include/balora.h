/* balora: fine-tune transformer language models with LoRA, PiSSA and BA-LoRA, in C.
 *
 * The public API is small on purpose:
 *   - every function that can fail returns a balora_status; on failure
 *     balora_last_error() holds a message naming the file, the field and what is
 *     wrong, with a hint. The library never prints and never exits.
 *   - objects come in init/free pairs (balora_model_init / balora_model_free, ...).
 *   - sizes are 64-bit.
 * Internals (ops, model families, trainer, tokenizers) live under src/ with their own
 * headers; the CLI in cli/ is one user of this API. */
#ifndef BALORA_H
#define BALORA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BALORA_VERSION_MAJOR 0
#define BALORA_VERSION_MINOR 1
#define BALORA_VERSION_PATCH 0

typedef enum balora_status {
    BALORA_STATUS_OK = 0,
    BALORA_STATUS_IO,          /* a file could not be opened, read or written */
    BALORA_STATUS_FORMAT,      /* a file is malformed (bad JSON, truncated safetensors, ...) */
    BALORA_STATUS_INVALID,     /* an argument or a value is out of range or inconsistent */
    BALORA_STATUS_UNSUPPORTED, /* a valid input that balora cannot honour (named in the message) */
    BALORA_STATUS_NOMEM,       /* an allocation failed */
    BALORA_STATUS_INTERNAL     /* a bug: please report it */
} balora_status;

/* The message of the last failure in this thread ("" if none). */
const char *balora_last_error(void);
/* A short name for a status ("io", "format", ...). */
const char *balora_status_name(balora_status st);
/* "0.1.0" */
const char *balora_version(void);

/* Log callback: the library reports progress only through it (NULL = silent).
 * level: 0 = info, 1 = warning, 2 = verbose detail. */
typedef void (*balora_log_fn)(int level, const char *msg, void *user);
void balora_log_set(balora_log_fn fn, void *user);

/* Threads used by balora's own kernels and by the BLAS (never both at once). 0 = all cores. */
void balora_threads_set(int n);
int balora_threads_get(void);
/* Which BLAS kernels are in use, e.g. "OpenBLAS 0.3.21 core=SapphireRapids threads=2". */
const char *balora_blas_info(void);

#ifdef __cplusplus
}
#endif
#endif
