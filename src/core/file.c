/* Whole-file reads, atomic writes, directories, numeric conversions, UTF-8 check. */
#include "core/bl.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <math.h>
#include <unistd.h>

balora_status bl_file_read(const char *path, char **data, size_t *len) {
    *data = NULL; *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return bl_fail(BALORA_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return bl_fail(BALORA_STATUS_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = bl_malloc(n + 1);
    if (!buf) { fclose(f); return bl_fail_prefix(BALORA_STATUS_NOMEM, "%s", path); }
    if (n && fread(buf, 1, n, f) != n) {
        free(buf); fclose(f);
        return bl_fail(BALORA_STATUS_IO, "%s: short read", path);
    }
    fclose(f);
    buf[n] = 0;
    *data = buf; *len = n;
    return BALORA_STATUS_OK;
}

balora_status bl_file_write_atomic(const char *path, const void *data, size_t len) {
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return bl_fail(BALORA_STATUS_INVALID, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return bl_fail(BALORA_STATUS_IO, "%s: cannot create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno; close(fd); unlink(tmp);
            return bl_fail(BALORA_STATUS_IO, "%s: write failed: %s", path, strerror(e));
        }
        p += w; left -= (size_t)w;
    }
    if (fsync(fd) != 0 && errno != EINVAL) { int e = errno; close(fd); unlink(tmp);
        return bl_fail(BALORA_STATUS_IO, "%s: fsync failed: %s", path, strerror(e)); }
    close(fd);
    if (rename(tmp, path) != 0) { int e = errno; unlink(tmp);
        return bl_fail(BALORA_STATUS_IO, "%s: rename from %s failed: %s", path, tmp, strerror(e)); }
    return BALORA_STATUS_OK;
}

balora_status bl_file_copy(const char *src, const char *dst) {
    char *data;
    size_t len;
    BL_TRY(bl_file_read(src, &data, &len));
    balora_status st = bl_file_write_atomic(dst, data, len);
    free(data);
    return st;
}

bool bl_file_exists(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISREG(st.st_mode); }
bool bl_dir_exists(const char *path) { struct stat st; return stat(path, &st) == 0 && S_ISDIR(st.st_mode); }

balora_status bl_mkdir_p(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return bl_fail(BALORA_STATUS_INVALID, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i]; buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return bl_fail(BALORA_STATUS_IO, "%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    if (!bl_dir_exists(path)) return bl_fail(BALORA_STATUS_IO, "%s: exists and is not a directory", path);
    return BALORA_STATUS_OK;
}

balora_status bl_path_join(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return bl_fail(BALORA_STATUS_INVALID, "path too long: %s/%s", dir, name);
    return BALORA_STATUS_OK;
}

float bl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 112) << 23) | (man << 13);
    float f; memcpy(&f, &bits, 4); return f;
}

uint16_t bl_f32_to_f16(float f) {
    uint32_t x; memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* overflow -> inf */
    if (absx < 0x38800000u) { /* subnormal or zero: round(|f| * 2^24) to nearest even */
        float a; memcpy(&a, &absx, 4);
        return (uint16_t)(sign | (uint32_t)lrintf(a * 16777216.0f));
    }
    uint32_t v = ((absx >> 13) - (112u << 10));
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (v & 1))) v++;
    return (uint16_t)(sign | v);
}

float bl_bf16_to_f32(uint16_t h) { uint32_t b = (uint32_t)h << 16; float f; memcpy(&f, &b, 4); return f; }
uint16_t bl_f32_to_bf16(float f) {
    uint32_t x; memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

double bl_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

bool bl_utf8_valid(const char *s, size_t n, size_t *bad_offset) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len; uint32_t cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
        else goto bad;
        if (i + len > n) goto bad;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) goto bad;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff)) goto bad;
        i += len;
        continue;
    bad:
        if (bad_offset) *bad_offset = i;
        return false;
    }
    return true;
}
