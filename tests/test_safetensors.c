/* safetensors round trip, dtype conversion and every malformed-file rejection in docs/FORMATS.md. */
#include "harness.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void write_raw(const char *path, const char *hdr, const void *data, size_t dlen, long hdr_len_override) {
    size_t hl = strlen(hdr);
    uint64_t n = hdr_len_override >= 0 ? (uint64_t)hdr_len_override : hl;
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 8; i++) fputc((int)((n >> (8 * i)) & 0xff), f);
    fwrite(hdr, 1, hl, f);
    if (dlen) fwrite(data, 1, dlen, f);
    fclose(f);
}

int main(void) {
    const char *dir = t_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/a.safetensors", dir);

    /* round trip */
    float a[6] = {1, -2, 3.5f, 0.25f, -0.0f, 1e-3f};
    int64_t ids[4] = {1, 2, -100, 7};
    uint16_t h[3] = {bl_f32_to_f16(1.5f), bl_f32_to_f16(-2.0f), bl_f32_to_f16(6.1035156e-05f)};
    uint16_t b[2] = {bl_f32_to_bf16(3.0f), bl_f32_to_bf16(-0.5f)};
    bl_st_writer w;
    bl_st_writer_init(&w);
    CHECK_OK(bl_st_writer_add(&w, "z.a", BL_DTYPE_F32, 2, (int64_t[]){2, 3}, a));
    CHECK_OK(bl_st_writer_add(&w, "ids", BL_DTYPE_I64, 2, (int64_t[]){2, 2}, ids));
    CHECK_OK(bl_st_writer_add(&w, "h", BL_DTYPE_F16, 1, (int64_t[]){3}, h));
    CHECK_OK(bl_st_writer_add(&w, "b", BL_DTYPE_BF16, 1, (int64_t[]){2}, b));
    CHECK_OK(bl_st_writer_add(&w, "scalar", BL_DTYPE_F32, 0, NULL, a));
    CHECK_FAILS(bl_st_writer_add(&w, "h", BL_DTYPE_F16, 1, (int64_t[]){3}, h), BALORA_STATUS_INVALID, "twice");
    CHECK_OK(bl_st_writer_meta(&w, "format", "pt"));
    CHECK_OK(bl_st_writer_save(&w, path));
    bl_st_writer_free(&w);

    bl_st_file f;
    CHECK_OK(bl_st_open(&f, path));
    CHECK(f.n == 5, "n=%d", f.n);
    CHECK(bl_st_meta(&f, "format") && !strcmp(bl_st_meta(&f, "format"), "pt"), "metadata");
    float got[6];
    CHECK_OK(bl_st_read_f32(&f, "z.a", 2, (int64_t[]){2, 3}, got));
    CHECK(memcmp(got, a, sizeof a) == 0, "f32 round trip");
    CHECK_FAILS(bl_st_read_f32(&f, "z.a", 2, (int64_t[]){3, 2}, got), BALORA_STATUS_FORMAT, "has shape [2, 3], expected [3, 2]");
    CHECK_FAILS(bl_st_read_f32(&f, "nope", 1, (int64_t[]){1}, got), BALORA_STATUS_FORMAT, "missing tensor 'nope'");
    CHECK_FAILS(bl_st_read_f32(&f, "ids", 2, (int64_t[]){2, 2}, got), BALORA_STATUS_FORMAT, "expected a float dtype");
    CHECK_OK(bl_st_read_f32(&f, "h", 1, (int64_t[]){3}, got));
    CHECK(got[0] == 1.5f && got[1] == -2.0f && got[2] == 6.1035156e-05f, "f16: %g %g %g", got[0], got[1], got[2]);
    CHECK_OK(bl_st_read_f32(&f, "b", 1, (int64_t[]){2}, got));
    CHECK(got[0] == 3.0f && got[1] == -0.5f, "bf16");
    int64_t ig[4];
    CHECK_OK(bl_st_tensor_to_i64(&f, bl_st_find(&f, "ids"), ig));
    CHECK(memcmp(ig, ids, sizeof ids) == 0, "i64");
    const bl_st_tensor *s = bl_st_find(&f, "scalar");
    CHECK(s && s->ndim == 0 && s->numel == 1, "scalar");
    /* header padded to a multiple of 8 */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | (unsigned char)f.buf[i];
    CHECK(hl % 8 == 0, "header length %llu not padded", (unsigned long long)hl);
    bl_st_close(&f);

    /* f16 conversions incl. subnormals and rounding */
    CHECK(bl_f16_to_f32(bl_f32_to_f16(65504.0f)) == 65504.0f, "f16 max");
    CHECK(bl_f16_to_f32(bl_f32_to_f16(5.9604645e-08f)) == 5.9604645e-08f, "f16 min subnormal");
    CHECK(isinf(bl_f16_to_f32(bl_f32_to_f16(1e6f))), "f16 overflow");
    CHECK(bl_bf16_to_f32(bl_f32_to_bf16(1.00390625f)) == 1.0f, "bf16 ties to even");

    /* malformed files */
    float data[2] = {1, 2};
    struct { const char *hdr; size_t dlen; long override; const char *needle; } bad[] = {
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, -1, "outside"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, -1, "need 12"},
        {"{\"x\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, "unsupported dtype 'Q4'"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1, "hole or overlap"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, -1, "trailing data"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1, "duplicate"},
        /* issue 17: three __metadata__ keys overflowed the metadata arrays (sized from the first) */
        {"{\"__metadata__\":{\"a\":\"1\"},\"__metadata__\":{\"b\":\"2\",\"c\":\"3\"},\"__metadata__\":{\"d\":\"4\",\"e\":\"5\"},"
         "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, "more than one '__metadata__' key"},
        {"{\"__metadata__\":{},\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"__metadata__\":{\"b\":\"2\"}}", 8, -1,
         "more than one '__metadata__' key"},
        {"{\"__metadata__\":{\"a\":1},\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, "value 'a' is not a string"},
        /* a zero-byte tensor inside another's range is an overlap, whatever the names */
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8, -1, "hole or overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8, -1, "hole or overlap"},
        {"[1,2]", 0, -1, "does not start with '{'"},
        {"{\"x\": ", 0, -1, "not valid JSON"},
        {"{}", 0, 200000000, "exceeds 100,000,000"},
        {"{}", 0, 5000, "runs past the end"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_raw(path, bad[i].hdr, data, bad[i].dlen, bad[i].override);
        CHECK_FAILS(bl_st_open(&f, path), BALORA_STATUS_FORMAT, bad[i].needle);
        CHECK(strstr(balora_last_error(), path) != NULL, "error names the file: %s", balora_last_error());
    }
    /* issue 17: a zero-byte tensor sharing its start offset with a non-empty one. The tiling check
       sorts by (start, end) as the safetensors crate does, so this is accepted whatever the names
       (it used to depend on which name sorted first); likewise at the end of the buffer. */
    {
        const char *names[][2] = {{"a", "z"}, {"z", "a"}};
        for (int k = 0; k < 2; k++) {
            for (int at = 0; at < 2; at++) {
                char hdr[512];
                snprintf(hdr, sizeof hdr,
                         "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"%s\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[%d,%d]},"
                         "\"e0\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[%d,%d]}}",
                         names[k][0], names[k][1], at * 8, at * 8, at * 8, at * 8);
                write_raw(path, hdr, data, 8, -1);
                CHECK_OK(bl_st_open(&f, path));
                CHECK(f.n == 3, "zero-byte tensor '%s' at %d next to '%s': n=%d", names[k][1], at * 8, names[k][0], f.n);
                const bl_st_tensor *zt = f.n == 3 ? bl_st_find(&f, names[k][1]) : NULL;
                CHECK(zt && zt->nbytes == 0 && zt->numel == 0, "zero-byte tensor found");
                float g2[2] = {0};
                CHECK_OK(f.n == 3 ? bl_st_read_f32(&f, names[k][0], 1, (int64_t[]){2}, g2) : BALORA_STATUS_INTERNAL);
                CHECK(g2[0] == 1 && g2[1] == 2, "the non-empty tensor's data");
                bl_st_close(&f);
            }
        }
    }
    FILE *tf = fopen(path, "wb"); fputs("abc", tf); fclose(tf);
    CHECK_FAILS(bl_st_open(&f, path), BALORA_STATUS_FORMAT, "truncated");
    CHECK_FAILS(bl_st_open(&f, "/nonexistent/x.safetensors"), BALORA_STATUS_IO, "cannot open");
    return t_finish();
}
