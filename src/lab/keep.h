/* Finished lab runs kept on disk (OUT/runs/), so that an interrupted lab job, rerun, skips them.
 *
 * A job's folder holds one fingerprint file (what its runs depend on: the preset, seeds, threads),
 * written on the first start and compared field by field on every later one, and one small JSON
 * record per finished run, written atomically. Numbers are kept as their bit patterns (hex), so a
 * run read back is bit-identical to the run computed (NaN included). Used by the decoder arm
 * (src/lab/run.c) and the encoder arm (src/lab/nlu.c). */
#ifndef BL_LAB_KEEP_H
#define BL_LAB_KEEP_H
#include "core/bl.h"
#include <cjson/cJSON.h>

/* o[key] = the bytes of p as 2 * bytes lowercase hex digits. */
balora_status bl_lab_keep_put(cJSON *o, const char *key, const void *p, size_t bytes);
/* p = the bytes of o[key]; a missing field or a wrong length is a FORMAT error naming path and key. */
balora_status bl_lab_keep_get(const cJSON *o, const char *path, const char *key, void *p, size_t bytes);
/* Writes o to path atomically; takes o (deleted, also on failure; NULL = out of memory). */
balora_status bl_lab_keep_write(cJSON *o, const char *path);
/* Takes f. runs_dir/file absent: creates runs_dir and writes f there. Present: every field of f must
 * equal the file's (else INVALID naming the field, both values and the hint to use another --out). */
balora_status bl_lab_keep_fingerprint(cJSON *f, const char *runs_dir, const char *file);

#endif
