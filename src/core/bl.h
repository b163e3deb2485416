/* Internal common header: status and last-error, logging, arena, RNG, small utilities.
 * Every internal function that can fail returns balora_status and sets the error
 * message through bl_fail(). Internal names are prefixed bl_. */
#ifndef BL_CORE_H
#define BL_CORE_H

#include "balora.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ---- */
/* Set the thread's last-error message and return st. printf-style. */
balora_status bl_fail(balora_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current last-error message with more context ("loading model X: ...") and return st. */
balora_status bl_fail_prefix(balora_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bl_clear_error(void);
#define BL_TRY(expr) do { balora_status bl_st_ = (expr); if (bl_st_ != BALORA_STATUS_OK) return bl_st_; } while (0)

/* ---- logging (goes to the callback set by balora_log_set; silent by default) ---- */
void bl_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define BL_INFO 0
#define BL_WARN 1
#define BL_VERBOSE 2

/* ---- memory ---- */
/* Checked allocations: on failure they set the last error and return NULL. */
void *bl_malloc(size_t n);
void *bl_calloc(size_t count, size_t size);
void *bl_realloc(void *p, size_t n);
char *bl_strdup(const char *s);

/* An arena: one allocation per lifetime, named pointers carved out of it.
 * Usage: two passes. bl_arena_plan() counts bytes with a NULL base; bl_arena_alloc()
 * allocates once; then carve with bl_arena_take(), 64-byte aligned. */
typedef struct bl_arena {
    char *base;      /* NULL while planning */
    size_t size;     /* total bytes (after planning) */
    size_t used;
} bl_arena;
void *bl_arena_take(bl_arena *a, size_t bytes); /* returns NULL while planning */
balora_status bl_arena_alloc(bl_arena *a);       /* allocates a->used bytes (zeroed), resets used */
void bl_arena_free(bl_arena *a);

/* ---- RNG: deterministic, seedable, splittable (xoshiro256**) ---- */
typedef struct bl_rng { uint64_t s[4]; } bl_rng;
void bl_rng_seed(bl_rng *r, uint64_t seed);
uint64_t bl_rng_u64(bl_rng *r);
double bl_rng_uniform(bl_rng *r);           /* [0, 1) */
float bl_rng_normal(bl_rng *r);             /* N(0, 1), Box-Muller */
uint64_t bl_rng_below(bl_rng *r, uint64_t n); /* [0, n) without modulo bias */

/* ---- files ---- */
/* Read a whole file into a malloc'd buffer (NUL-terminated; *len excludes the NUL). */
balora_status bl_file_read(const char *path, char **data, size_t *len);
/* Write atomically: path.tmp.<pid> then fsync then rename. */
balora_status bl_file_write_atomic(const char *path, const void *data, size_t len);
/* Copies a file (read whole, written atomically). */
balora_status bl_file_copy(const char *src, const char *dst);
bool bl_file_exists(const char *path);
bool bl_dir_exists(const char *path);
balora_status bl_mkdir_p(const char *path);
/* snprintf into a fixed buffer; fails (INVALID) if the result does not fit. */
balora_status bl_path_join(char *out, size_t cap, const char *dir, const char *name);

/* ---- numbers ---- */
float bl_f16_to_f32(uint16_t h);
uint16_t bl_f32_to_f16(float f);
float bl_bf16_to_f32(uint16_t h);
uint16_t bl_f32_to_bf16(float f); /* round to nearest even */
double bl_time_now(void);         /* monotonic seconds */

/* ---- UTF-8 ---- */
/* true if s[0..n) is valid UTF-8; on false *bad_offset is the first bad byte. */
bool bl_utf8_valid(const char *s, size_t n, size_t *bad_offset);

/* ---- threads and BLAS ---- */
/* Before any BLAS call in a process: if OPENBLAS_CORETYPE is unset, pick the core type
 * this CPU supports and re-exec the program so OpenBLAS initialises with its fast kernels.
 * Call first thing in main(); returns only if no re-exec was needed (or it failed). */
void bl_blas_prepare_process(int argc, char **argv);

#endif
