/* JSON lines files, plain or gzip-compressed (zlib's gzopen reads both). */
#ifndef BL_EVAL_JSONL_H
#define BL_EVAL_JSONL_H
#include "core/bl.h"
#include <cjson/cJSON.h>

/* Called for each non-empty line with its parsed JSON object (freed after the call). */
typedef balora_status (*bl_jsonl_fn)(void *ctx, const char *path, int64_t lineno, const cJSON *obj);
/* Reads path line by line (any line length); a line that is not a JSON object is an error naming
 * the file and the line. A file that is one JSON array of objects (after whitespace) is read whole
 * and element N given as line N; the first non-OK status of fn stops the reading and is returned. */
balora_status bl_jsonl_read(const char *path, bl_jsonl_fn fn, void *ctx);

#endif
