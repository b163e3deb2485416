/* Checked allocation and the one-allocation-per-lifetime arena. */
#include "core/bl.h"
#include <stdlib.h>
#include <string.h>

void *bl_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) bl_fail(BALORA_STATUS_NOMEM, "out of memory allocating %zu bytes", n);
    return p;
}
void *bl_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) bl_fail(BALORA_STATUS_NOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}
void *bl_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) bl_fail(BALORA_STATUS_NOMEM, "out of memory reallocating to %zu bytes", n);
    return q;
}
char *bl_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = bl_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void *bl_arena_take(bl_arena *a, size_t bytes) {
    size_t off = (a->used + 63) & ~(size_t)63;
    a->used = off + bytes;
    if (!a->base) return NULL;
    return a->base + off;
}

balora_status bl_arena_alloc(bl_arena *a) {
    size_t n = (a->used + 63) & ~(size_t)63;
    if (n == 0) n = 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, n) != 0)
        return bl_fail(BALORA_STATUS_NOMEM, "out of memory: arena of %zu bytes (%.1f MiB)", n, n / 1048576.0);
    memset(p, 0, n);
    a->base = p;
    a->size = n;
    a->used = 0;
    return BALORA_STATUS_OK;
}

void bl_arena_free(bl_arena *a) {
    free(a->base);
    a->base = NULL;
    a->size = a->used = 0;
}
