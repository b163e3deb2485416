/* Checkpoint folders: listing, removal, atomic publication (a folder is written as
 * checkpoint-STEP.tmp and renamed when complete, so a killed run never leaves a half
 * checkpoint under the final name). The contents are written by trainer.c. */
#include "train/checkpoint.h"
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

balora_status bl_rmtree(const char *path) {
    if (!bl_file_exists(path) && !bl_dir_exists(path)) return BALORA_STATUS_OK;
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return bl_fail(BALORA_STATUS_IO, "%s: cannot remove: %s", path, strerror(errno));
    return BALORA_STATUS_OK;
}

/* "checkpoint-123" -> 123, anything else -> -1 */
static int64_t parse_name(const char *name) {
    if (strncmp(name, "checkpoint-", 11) != 0) return -1;
    const char *s = name + 11;
    if (!*s) return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > INT64_MAX / 10 - 10) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

balora_status bl_checkpoint_list(const char *dir, int64_t *steps, int cap, int *n) {
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return bl_fail(BALORA_STATUS_IO, "%s: cannot list checkpoints: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t s = parse_name(e->d_name);
        if (s < 0) continue;
        char p[4400];
        snprintf(p, sizeof p, "%s/%s/" BL_CHECKPOINT_STATE, dir, e->d_name);
        if (!bl_file_exists(p)) continue;
        if (*n < cap) steps[(*n)++] = s;
    }
    closedir(d);
    /* ascending (insertion sort: a handful of entries) */
    for (int i = 1; i < *n; i++)
        for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) { int64_t t = steps[j]; steps[j] = steps[j - 1]; steps[j - 1] = t; }
    return BALORA_STATUS_OK;
}

balora_status bl_checkpoint_latest(const char *dir, char *out, size_t cap) {
    if (!dir) return bl_fail(BALORA_STATUS_INVALID, "--resume latest: no output folder to look in; hint: give --out");
    int64_t steps[4096];
    int n;
    BL_TRY(bl_checkpoint_list(dir, steps, 4096, &n));
    if (n == 0) return bl_fail(BALORA_STATUS_INVALID, "%s: --resume latest: no checkpoint-STEP folder here; hint: checkpoints are written with --save-every N", dir);
    if ((size_t)snprintf(out, cap, "%s/checkpoint-%lld", dir, (long long)steps[n - 1]) >= cap)
        return bl_fail(BALORA_STATUS_INVALID, "%s: path too long", dir);
    return BALORA_STATUS_OK;
}

balora_status bl_checkpoint_publish(const char *tmp, const char *final_dir) {
    BL_TRY(bl_rmtree(final_dir));
    if (rename(tmp, final_dir) != 0) return bl_fail(BALORA_STATUS_IO, "%s: cannot rename to %s: %s", tmp, final_dir, strerror(errno));
    return BALORA_STATUS_OK;
}

balora_status bl_checkpoint_prune(const char *dir, int keep) {
    if (keep <= 0) return BALORA_STATUS_OK;
    int64_t steps[4096];
    int n;
    BL_TRY(bl_checkpoint_list(dir, steps, 4096, &n));
    for (int i = 0; i + keep < n; i++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/checkpoint-%lld", dir, (long long)steps[i]);
        BL_TRY(bl_rmtree(p));
    }
    return BALORA_STATUS_OK;
}
