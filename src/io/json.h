/* cJSON helpers whose errors name the file and the field. */
#ifndef BL_JSON_H
#define BL_JSON_H
#include "core/bl.h"
#include <cjson/cJSON.h>

/* Parse a JSON file; errors give the file and the byte offset of the syntax error. */
balora_status bl_json_load(const char *path, cJSON **out);
balora_status bl_json_parse(const char *what, const char *text, size_t len, cJSON **out);
/* Getters: fail with "<file>: field '<key>' ..." when missing (if required) or of the wrong type.
 * When the field is absent and not required, *out keeps its value (the default). */
balora_status bl_json_int(const cJSON *obj, const char *file, const char *key, bool required, int64_t *out);
balora_status bl_json_num(const cJSON *obj, const char *file, const char *key, bool required, double *out);
balora_status bl_json_bool(const cJSON *obj, const char *file, const char *key, bool required, bool *out);
/* *out points into obj (do not free); NULL when absent and not required. */
balora_status bl_json_str(const cJSON *obj, const char *file, const char *key, bool required, const char **out);
/* A JSON array of records (a file published as one array, like MetaMathQA-395K.json) as JSON lines:
 * element N printed unformatted on line N, so a JSONL reader's line numbers are record numbers.
 * text not starting with '[' (after whitespace and a UTF-8 BOM): *out = NULL, OK. An element that is
 * not an object is an error naming the file and the record. *out is malloc'd (NUL-terminated). */
balora_status bl_json_array_as_lines(const char *path, const char *text, size_t len, char **out, size_t *out_len);
/* Write JSON pretty-printed, atomically. */
balora_status bl_json_save(const cJSON *obj, const char *path);

#endif
