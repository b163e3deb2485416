/* The journal of a long evaluation (balora eval --out REPORT.json: REPORT.json.progress.jsonl), so
 * that an interrupted run keeps its work and a rerun of the same command skips what is done.
 *
 * JSON lines, append-only, flushed after every line (a process killed in the middle of a write
 * leaves a torn last line, which is dropped on the next open):
 *   line 1    {"balora_eval_progress": 1, "fingerprint": {...}}   what the results depend on
 *             (benchmark, data and completions files by content, model files, options)
 *   then      {"index": I, "id": ID, "completions": [TEXT, ...]}   the samples generated for problem I
 *             {"index": I, "id": ID, "outcome": {...}}              problem I scored
 * Opening a journal whose fingerprint differs from this run's fails, naming the first field that
 * differs: another run's results are never mixed in. */
#ifndef BL_EVAL_JOURNAL_H
#define BL_EVAL_JOURNAL_H
#include "core/bl.h"
#include <cjson/cJSON.h>
#include <stdio.h>

typedef struct bl_eval_journal {
    char *path;
    FILE *f;            /* open for appending */
    int64_t n;          /* problems of the data set */
    cJSON **gen;        /* [n] the "completions" array of problem i, or NULL */
    cJSON **score;      /* [n] the "outcome" object of problem i, or NULL */
    cJSON *lines;       /* owns the parsed records */
    int64_t n_gen, n_score;
} bl_eval_journal;

/* Opens (or creates) path for a data set of n problems with these ids. fingerprint is compared with
 * the file's (or written into a new file). */
balora_status bl_eval_journal_open(bl_eval_journal *j, const char *path, const cJSON *fingerprint, int64_t n,
                                   const char *const *ids);
/* Appends {"index", "id", key: item} (item is taken over) and flushes it to the file. */
balora_status bl_eval_journal_add(bl_eval_journal *j, int64_t index, const char *id, const char *key, cJSON *item);
/* Closes the file (remove: and deletes it, once the final report is written). */
balora_status bl_eval_journal_close(bl_eval_journal *j, bool remove);

/* Adds key: "fnv1a64:HEX" of a file's bytes, or of a folder's regular files (names and contents, in
 * name order; a file over 64 MiB contributes its size and modification time instead of its bytes). */
balora_status bl_eval_fingerprint_path(cJSON *fp, const char *key, const char *path);

#endif
