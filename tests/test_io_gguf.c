/* GGUF: the llama.cpp LoRA export of the golden adapters read back with the GGUF reader
 * (every KV, names, dims innermost first, 32-byte aligned offsets, data equal to PEFT's A and
 * to B with llama.cpp's q/k row permutation), raw header bytes checked by hand, rsLoRA alpha,
 * alpha_pattern folding, F16, refusals, and the reader on truncated / corrupted files. */
#include "harness.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *g_shared;

static uint64_t le64(const unsigned char *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static uint32_t le32(const unsigned char *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = (v << 8) | p[i]; return v; }

static const char *kv_str(const bl_gguf_file *g, const char *k) {
    const bl_gguf_kv *kv = bl_gguf_find_kv(g, k);
    return kv && kv->type == BL_GGUF_STRING ? kv->str : "(missing)";
}

/* Raw bytes: magic, version 3, counts, and the first KV written by hand-readable rules. */
static void check_raw_header(const char *path, uint64_t n_tensors, uint64_t n_kv) {
    char *b;
    size_t n;
    CHECK_OK(bl_file_read(path, &b, &n));
    const unsigned char *u = (const unsigned char *)b;
    CHECK(n > 64 && memcmp(u, "GGUF", 4) == 0, "magic");
    CHECK(le32(u + 4) == 3, "version %u", le32(u + 4));
    CHECK(le64(u + 8) == n_tensors && le64(u + 16) == n_kv, "counts %llu %llu", (unsigned long long)le64(u + 8), (unsigned long long)le64(u + 16));
    CHECK(le64(u + 24) == 20 && memcmp(u + 32, "general.architecture", 20) == 0, "first key");
    CHECK(le32(u + 52) == BL_GGUF_STRING, "first value is a string");
    CHECK(n % 32 == 0, "file padded to the alignment (%zu bytes)", n);
    free(b);
}

/* Compare every exported pair with the adapter: A as is; B with rows permuted for q/k. */
static void check_pairs(const bl_gguf_file *g, const char *adapter, const char *arch, int n_head, int n_head_kv, uint32_t type,
                        double b_scale, int *n_checked) {
    char p[1200];
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", adapter);
    bl_st_file f;
    CHECK_OK(bl_st_open(&f, p));
    for (int i = 0; i < f.n; i++) {
        const bl_st_tensor *ta = &f.tensors[i];
        const char *s = strstr(ta->name, ".lora_A.weight");
        if (!s) continue;
        char module[512], kb[600];
        snprintf(module, sizeof module, "%.*s", (int)(s - ta->name - strlen("base_model.model.")), ta->name + strlen("base_model.model."));
        snprintf(kb, sizeof kb, "base_model.model.%s.lora_B.weight", module);
        const bl_st_tensor *tb = bl_st_find(&f, kb);
        char gname[256], na[300], nb[300];
        CHECK_OK(bl_gguf_tensor_name(arch, module, gname, sizeof gname));
        snprintf(na, sizeof na, "%s.lora_a", gname);
        snprintf(nb, sizeof nb, "%s.lora_b", gname);
        const bl_gguf_tensor *ga = bl_gguf_find_tensor(g, na), *gb = bl_gguf_find_tensor(g, nb);
        CHECK(ga && gb, "%s / %s present", na, nb);
        if (!ga || !gb || !tb) continue;
        int64_t r = ta->shape[0], in = ta->shape[1], out = tb->shape[0];
        CHECK(ga->n_dims == 2 && ga->ne[0] == (uint64_t)in && ga->ne[1] == (uint64_t)r, "%s ne = [in, r]", na);
        CHECK(gb->n_dims == 2 && gb->ne[0] == (uint64_t)r && gb->ne[1] == (uint64_t)out, "%s ne = [r, out]", nb);
        CHECK(ga->type == type && gb->type == type, "%s type", na);
        CHECK(ga->offset % 32 == 0 && gb->offset % 32 == 0, "%s offsets aligned", na);
        float *A = malloc((size_t)(r * in) * 4), *B = malloc((size_t)(out * r) * 4);
        float *GA = malloc((size_t)(r * in) * 4), *GB = malloc((size_t)(out * r) * 4);
        CHECK_OK(bl_st_tensor_to_f32(&f, ta, A));
        CHECK_OK(bl_st_tensor_to_f32(&f, tb, B));
        for (int64_t k = 0; k < r * in; k++) {
            uint16_t h;
            if (type == BL_GGML_F16) { memcpy(&h, (const char *)ga->data + 2 * k, 2); GA[k] = bl_f16_to_f32(h); }
            else memcpy(&GA[k], (const char *)ga->data + 4 * k, 4);
        }
        for (int64_t k = 0; k < out * r; k++) {
            uint16_t h;
            if (type == BL_GGML_F16) { memcpy(&h, (const char *)gb->data + 2 * k, 2); GB[k] = bl_f16_to_f32(h); }
            else memcpy(&GB[k], (const char *)gb->data + 4 * k, 4);
        }
        /* expected B: llama.cpp's permute(B, heads): row h*hd + 2j + t <- row h*hd + t*hd/2 + j */
        int heads = !strcmp(arch, "llama") ? (strstr(gname, "attn_q.") ? n_head : strstr(gname, "attn_k.") ? n_head_kv : 0) : 0;
        float *WB = malloc((size_t)(out * r) * 4);
        for (int64_t row = 0; row < out; row++) {
            int64_t src = row;
            if (heads) {
                int64_t hd = out / heads, hh = row / hd, w = row % hd, j = w / 2, t = w % 2;
                src = hh * hd + t * (hd / 2) + j;
            }
            for (int64_t k = 0; k < r; k++) WB[row * r + k] = (float)(B[src * r + k] * b_scale);
        }
        double tol = type == BL_GGML_F16 ? 1.0 / 1024 : 0;
        t_allclose(na, GA, A, (long)(r * in), tol * 1e-3, tol);
        t_allclose(nb, GB, WB, (long)(out * r), tol * 1e-3, tol > 0 ? tol : 1e-7);
        if (heads) {
            int same = 0;
            for (int64_t k = 0; k < out * r; k++) same += GB[k] == (float)(B[k] * b_scale);
            CHECK(same < out * r, "%s: permutation changed nothing", nb);
        }
        (*n_checked)++;
        free(A); free(B); free(GA); free(GB); free(WB);
    }
    bl_st_close(&f);
}

static void export_and_check(const char *golden, const char *arch, int n_head, int n_head_kv, uint32_t type, double want_alpha,
                             int want_pairs) {
    char adapter[1024], out[1024];
    snprintf(adapter, sizeof adapter, "%s/golden/%s/lora", g_shared, golden);
    snprintf(out, sizeof out, "%s/%s_%u.gguf", t_tmpdir(), golden, type);
    bl_gguf_lora_options opt = {.arch = arch, .n_head = n_head, .n_head_kv = n_head_kv, .type = type};
    int n = 0;
    CHECK_OK(bl_gguf_export_lora(adapter, out, &opt, &n));
    CHECK(n == 2 * want_pairs, "%s: %d tensors", golden, n);
    check_raw_header(out, (uint64_t)n, 4);
    bl_gguf_file g;
    CHECK_OK(bl_gguf_open(&g, out));
    CHECK(g.version == 3 && g.n_kv == 4 && g.n_tensors == (uint64_t)n && g.alignment == 32, "%s: header", golden);
    CHECK(!strcmp(kv_str(&g, "general.type"), "adapter"), "general.type");
    CHECK(!strcmp(kv_str(&g, "general.architecture"), arch), "general.architecture");
    CHECK(!strcmp(kv_str(&g, "adapter.type"), "lora"), "adapter.type");
    const bl_gguf_kv *al = bl_gguf_find_kv(&g, "adapter.lora.alpha");
    CHECK(al && al->type == BL_GGUF_F32 && fabs(al->v.f - want_alpha) < 1e-6, "%s: alpha %g, want %g", golden, al ? al->v.f : -1, want_alpha);
    CHECK(g.data_offset % 32 == 0, "data section aligned");
    int checked = 0;
    check_pairs(&g, adapter, arch, n_head, n_head_kv, type, 1.0, &checked);
    CHECK(checked == want_pairs, "%s: %d pairs checked", golden, checked);
    bl_gguf_close(&g);
}

/* Plain write (no fsync: the truncation loop writes hundreds of files). */
static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
}

/* Reader robustness: every truncation fails cleanly; corruptions are named. */
static void check_reader_errors(void) {
    char good[1024], bad[1024];
    snprintf(good, sizeof good, "%s/llama_0.gguf", t_tmpdir());
    snprintf(bad, sizeof bad, "%s/bad.gguf", t_tmpdir());
    char *b;
    size_t n;
    CHECK_OK(bl_file_read(good, &b, &n));
    bl_gguf_file g;
    int cut_fail = 0, cut_total = 0;
    for (size_t len = 0; len < n; len += (len < 600 ? 1 : 97)) {
        write_file(bad, b, len);
        balora_status st = bl_gguf_open(&g, bad);
        cut_total++;
        if (st == BALORA_STATUS_FORMAT && strstr(balora_last_error(), bad)) cut_fail++;
        else if (!st) bl_gguf_close(&g);
    }
    CHECK(cut_fail == cut_total, "%d of %d truncations rejected with an error naming the file", cut_fail, cut_total);
    char *c = malloc(n);
    memcpy(c, b, n); c[0] = 'X';
    write_file(bad, c, n);
    CHECK_FAILS(bl_gguf_open(&g, bad), BALORA_STATUS_FORMAT, "not a GGUF file");
    memcpy(c, b, n); c[4] = 9;
    write_file(bad, c, n);
    CHECK_FAILS(bl_gguf_open(&g, bad), BALORA_STATUS_UNSUPPORTED, "version 9");
    memcpy(c, b, n); memset(c + 8, 0x7f, 8); /* absurd tensor count */
    write_file(bad, c, n);
    CHECK_FAILS(bl_gguf_open(&g, bad), BALORA_STATUS_FORMAT, "more than the file can hold");
    memcpy(c, b, n); c[52] = 77; /* value type of the first KV */
    write_file(bad, c, n);
    CHECK_FAILS(bl_gguf_open(&g, bad), BALORA_STATUS_FORMAT, "unknown value type 77");
    /* misalign the second tensor's offset: find it after the KVs by re-reading */
    CHECK_OK(bl_gguf_open(&g, good));
    const bl_gguf_tensor *t1 = &g.tensors[1];
    size_t nl = strlen(t1->name), at = 0;
    uint32_t nd = t1->n_dims;
    for (size_t i = 24; i + nl <= n && !at; i++)
        if (memcmp(b + i, t1->name, nl) == 0 && le64((const unsigned char *)b + i - 8) == nl) at = i + nl + 4 + 8 * nd + 4;
    bl_gguf_close(&g);
    CHECK(at > 0, "found the offset field");
    if (at) {
        memcpy(c, b, n); c[at] += 4;
        write_file(bad, c, n);
        CHECK_FAILS(bl_gguf_open(&g, bad), BALORA_STATUS_FORMAT, "not a multiple of the alignment");
    }
    free(c);
    free(b);
}

static const char *PATTERN_CFG = "{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,\"use_rslora\":false,\"fan_in_fan_out\":false,"
                                 "\"target_modules\":[\"v_proj\"],\"alpha_pattern\":{\"layers.1.self_attn.v_proj\":32}}";

static void check_alpha_pattern_and_refusals(void) {
    /* copy golden llama's weights with an alpha_pattern: layer 1's v_proj B is scaled by 32/8 */
    char dir[1024], p[1200], src[1024], out[1024];
    snprintf(dir, sizeof dir, "%s/pattern", t_tmpdir());
    CHECK_OK(bl_mkdir_p(dir));
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    write_file(p, PATTERN_CFG, strlen(PATTERN_CFG));
    snprintf(src, sizeof src, "%s/golden/llama/lora/adapter_model.safetensors", g_shared);
    bl_st_file f;
    CHECK_OK(bl_st_open(&f, src));
    bl_st_writer w;
    bl_st_writer_init(&w);
    for (int i = 0; i < f.n; i++)
        if (strstr(f.tensors[i].name, "v_proj"))
            CHECK_OK(bl_st_writer_add(&w, f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].ndim, f.tensors[i].shape, f.tensors[i].data));
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    CHECK_OK(bl_st_writer_save(&w, p));
    bl_st_writer_free(&w);
    bl_st_close(&f);
    snprintf(out, sizeof out, "%s/pattern.gguf", t_tmpdir());
    bl_gguf_lora_options opt = {.arch = "llama", .n_head = 4, .n_head_kv = 2, .type = BL_GGML_F32};
    CHECK_OK(bl_gguf_export_lora(dir, out, &opt, NULL));
    bl_gguf_file g;
    CHECK_OK(bl_gguf_open(&g, out));
    const bl_gguf_tensor *b0 = bl_gguf_find_tensor(&g, "blk.0.attn_v.weight.lora_b"), *b1 = bl_gguf_find_tensor(&g, "blk.1.attn_v.weight.lora_b");
    CHECK(b0 && b1, "v tensors");
    bl_st_file a;
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    CHECK_OK(bl_st_open(&a, p));
    float B0[32 * 4], B1[32 * 4], G0[32 * 4], G1[32 * 4];
    CHECK_OK(bl_st_read_f32(&a, "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight", 2, (int64_t[]){32, 4}, B0));
    CHECK_OK(bl_st_read_f32(&a, "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight", 2, (int64_t[]){32, 4}, B1));
    if (b0 && b1) {
        memcpy(G0, b0->data, sizeof G0);
        memcpy(G1, b1->data, sizeof G1);
        for (int i = 0; i < 128; i++) B1[i] *= 4.0f;
        t_allclose("layer 0 v lora_b (default alpha)", G0, B0, 128, 0, 1e-7);
        t_allclose("layer 1 v lora_b (alpha_pattern folded)", G1, B1, 128, 0, 1e-7);
    }
    bl_st_close(&a);
    bl_gguf_close(&g);

    /* lora_alpha 0: PEFT's scale is 0 but llama.cpp uses 1 when alpha is 0, so B must be zeroed */
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    const char *zero = "{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":0,\"target_modules\":[\"v_proj\"]}";
    write_file(p, zero, strlen(zero));
    CHECK_OK(bl_gguf_export_lora(dir, out, &opt, NULL));
    CHECK_OK(bl_gguf_open(&g, out));
    b0 = bl_gguf_find_tensor(&g, "blk.0.attn_v.weight.lora_b");
    int nonzero = 0;
    for (int i = 0; b0 && i < 128; i++) { float v; memcpy(&v, (const char *)b0->data + 4 * i, 4); nonzero += v != 0; }
    CHECK(b0 && nonzero == 0, "alpha 0: lora_b zeroed (%d non-zero)", nonzero);
    bl_gguf_close(&g);

    char ad[1024];
    snprintf(ad, sizeof ad, "%s/golden/gpt2_cls/lora", g_shared);
    bl_gguf_lora_options g2 = {.arch = "gpt2", .type = BL_GGML_F32};
    CHECK_FAILS(bl_gguf_export_lora(ad, out, &g2, NULL), BALORA_STATUS_UNSUPPORTED, "modules_to_save");
    snprintf(ad, sizeof ad, "%s/golden/llama/lora", g_shared);
    bl_gguf_lora_options noheads = {.arch = "llama", .type = BL_GGML_F32};
    CHECK_FAILS(bl_gguf_export_lora(ad, out, &noheads, NULL), BALORA_STATUS_INVALID, "head counts");
    bl_gguf_lora_options badheads = {.arch = "llama", .n_head = 3, .n_head_kv = 2, .type = BL_GGML_F32};
    CHECK_FAILS(bl_gguf_export_lora(ad, out, &badheads, NULL), BALORA_STATUS_INVALID, "n_head_kv = 2 does not divide n_head = 3");
    bl_gguf_lora_options wrong = {.arch = "gpt2", .type = BL_GGML_F32};
    CHECK_FAILS(bl_gguf_export_lora(ad, out, &wrong, NULL), BALORA_STATUS_UNSUPPORTED, "has no llama.cpp 'gpt2' tensor");
    bl_gguf_lora_options bert = {.arch = "bert", .type = BL_GGML_F32};
    CHECK_FAILS(bl_gguf_export_lora(ad, out, &bert, NULL), BALORA_STATUS_UNSUPPORTED, "architecture 'bert'");
    /* DoRA */
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    const char *dora = "{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8,\"use_dora\":true}";
    write_file(p, dora, strlen(dora));
    CHECK_FAILS(bl_gguf_export_lora(dir, out, &opt, NULL), BALORA_STATUS_UNSUPPORTED, "DoRA");
}

/* Head counts that contradict the adapter's shapes are refused, naming the field, its value and
 * the shape (before this check, --n-head 2 --n-head-kv 2 on a 4 / 2-head llama wrote a file that
 * llama.cpp loaded and ran with wrong logits); no output file is left behind. */
static void expect_heads_refused(const char *golden, const char *arch, int64_t nh, int64_t nkv, int64_t hd, const char *want1,
                                 const char *want2) {
    char ad[1024], out[1024];
    snprintf(ad, sizeof ad, "%s/golden/%s/lora", g_shared, golden);
    snprintf(out, sizeof out, "%s/refused_%s_%lld_%lld_%lld.gguf", t_tmpdir(), golden, (long long)nh, (long long)nkv, (long long)hd);
    bl_gguf_lora_options o = {.arch = arch, .n_head = nh, .n_head_kv = nkv, .head_dim = hd, .type = BL_GGML_F32,
                              .n_head_from = "--n-head", .n_head_kv_from = "--n-head-kv", .head_dim_from = "base/config.json field 'head_dim'"};
    CHECK_FAILS(bl_gguf_export_lora(ad, out, &o, NULL), BALORA_STATUS_INVALID, want1);
    CHECK(strstr(balora_last_error(), want2) != NULL, "%s %lld/%lld/%lld: message names '%s': %s", golden, (long long)nh, (long long)nkv,
          (long long)hd, want2, balora_last_error());
    FILE *f = fopen(out, "rb");
    CHECK(f == NULL, "%s: no file written for refused head counts", out);
    if (f) fclose(f);
}

static void check_head_counts(void) {
    /* llama: 4 heads / 2 kv heads of 16, hidden 64: q [64, 4], k and v [32, 4], o's lora_A [4, 64] */
    expect_heads_refused("llama", "llama", 2, 2, 0, "--n-head-kv = 2 contradicts module 'model.layers.0.self_attn.k_proj'",
                         "[32, 4], 32 rows, not 2 heads x head_dim 32 = 64 (head_dim 32 from module 'model.layers.0.self_attn.q_proj': 64 / n_head 2)");
    expect_heads_refused("llama", "llama", 8, 2, 0, "--n-head-kv = 2 contradicts", "not 2 heads x head_dim 8 = 16");
    expect_heads_refused("llama", "llama", 4, 1, 0, "--n-head-kv = 1 contradicts module 'model.layers.0.self_attn.k_proj'", "[32, 4]");
    expect_heads_refused("llama", "llama", 4, 3, 0, "--n-head-kv = 3 does not divide --n-head = 4", "hint");
    expect_heads_refused("llama", "llama", 4, 2, 8, "--n-head-kv = 2 contradicts module 'model.layers.0.self_attn.k_proj'",
                         "head_dim from base/config.json field 'head_dim'");
    expect_heads_refused("llama", "llama", 3, 0, 0, "--n-head = 3 contradicts module 'model.layers.0.self_attn.q_proj'",
                         "64 rows are not 3 heads of one size");
    /* only --n-head (n_head_kv defaults to it): 4 / 4 contradicts k_proj's 32 rows */
    expect_heads_refused("llama", "llama", 4, 0, 0, "--n-head (n_head_kv defaults to it) = 4 contradicts", "k_proj");
    /* mistral has 1 kv head: 2 contradicts k_proj's 16 rows with q's head_dim 16 */
    expect_heads_refused("mistral", "llama", 4, 2, 0, "--n-head-kv = 2 contradicts module 'model.layers.0.self_attn.k_proj'", "[16, 4]");
    /* qwen2 needs no head counts (no permutation), but wrong ones given are refused as well */
    expect_heads_refused("qwen2", "qwen2", 2, 2, 0, "--n-head-kv = 2 contradicts module 'model.layers.0.self_attn.v_proj'", "[32, 4]");
    /* the right counts (and head_dim) pass */
    char ad[1024], out[1024];
    snprintf(ad, sizeof ad, "%s/golden/llama/lora", g_shared);
    snprintf(out, sizeof out, "%s/heads_ok.gguf", t_tmpdir());
    bl_gguf_lora_options ok = {.arch = "llama", .n_head = 4, .n_head_kv = 2, .head_dim = 16, .type = BL_GGML_F32};
    CHECK_OK(bl_gguf_export_lora(ad, out, &ok, NULL));
}

/* qwen2 (llama.cpp arch "qwen2", NEOX RoPE: no q/k permutation): the exported tensors are the
 * adapter's bit for bit, with or without head counts, and the two files are identical. */
static void check_qwen2_bits(void) {
    char ad[1024], p1[1024], p2[1024], st[1200];
    snprintf(ad, sizeof ad, "%s/golden/qwen2/lora", g_shared);
    snprintf(p1, sizeof p1, "%s/qwen2_noheads.gguf", t_tmpdir());
    snprintf(p2, sizeof p2, "%s/qwen2_0.gguf", t_tmpdir());
    bl_gguf_lora_options o = {.arch = "qwen2", .type = BL_GGML_F32};
    CHECK_OK(bl_gguf_export_lora(ad, p1, &o, NULL));
    char *b1, *b2;
    size_t n1, n2;
    CHECK_OK(bl_file_read(p1, &b1, &n1));
    CHECK_OK(bl_file_read(p2, &b2, &n2));
    CHECK(n1 == n2 && memcmp(b1, b2, n1) == 0, "qwen2: export without head counts equals the one with them (%zu / %zu bytes)", n1, n2);
    free(b1); free(b2);
    bl_gguf_file g;
    CHECK_OK(bl_gguf_open(&g, p1));
    snprintf(st, sizeof st, "%s/adapter_model.safetensors", ad);
    bl_st_file f;
    CHECK_OK(bl_st_open(&f, st));
    int same = 0;
    for (int i = 0; i < f.n; i++) {
        const bl_st_tensor *t = &f.tensors[i];
        const char *lay = strstr(t->name, "layers."), *fac = strstr(t->name, ".lora_");
        CHECK(lay && fac && t->dtype == BL_DTYPE_F32, "%s: a layer's F32 factor", t->name);
        if (!lay || !fac) continue;
        int l = atoi(lay + 7);
        const char *gg = strstr(t->name, "q_proj") ? "attn_q" : strstr(t->name, "v_proj") ? "attn_v" : strstr(t->name, "down_proj") ? "ffn_down" : "?";
        char name[128];
        snprintf(name, sizeof name, "blk.%d.%s.weight.lora_%c", l, gg, fac[6] == 'A' ? 'a' : 'b');
        const bl_gguf_tensor *gt = bl_gguf_find_tensor(&g, name);
        CHECK(gt && gt->type == BL_GGML_F32 && gt->nbytes == (uint64_t)t->numel * 4, "%s -> %s present, F32, same size", t->name, name);
        if (gt && gt->nbytes == (uint64_t)t->numel * 4 && t->dtype == BL_DTYPE_F32) same += memcmp(gt->data, t->data, gt->nbytes) == 0;
    }
    CHECK(f.n == 12 && same == 12, "qwen2: %d of %d tensors bit for bit", same, f.n);
    bl_st_close(&f);
    bl_gguf_close(&g);
}

int main(void) {
    char name[64]; /* tensor names: self-contained, run without ../shared */
    CHECK_OK(bl_gguf_tensor_name("llama", "model.layers.12.mlp.down_proj", name, sizeof name));
    CHECK(!strcmp(name, "blk.12.ffn_down.weight"), "%s", name);
    CHECK_OK(bl_gguf_tensor_name("gpt2", "transformer.h.3.attn.c_attn", name, sizeof name));
    CHECK(!strcmp(name, "blk.3.attn_qkv.weight"), "%s", name);
    CHECK_OK(bl_gguf_tensor_name("gpt2", "h.0.mlp.c_proj", name, sizeof name));
    CHECK(!strcmp(name, "blk.0.ffn_down.weight"), "%s", name);
    g_shared = t_require_shared();
    /* llama: GQA 4 heads / 2 kv heads; q, k, v, o */
    export_and_check("llama", "llama", 4, 2, BL_GGML_F32, 8.0, 8);
    /* mistral: 1 kv head, all seven projections */
    export_and_check("mistral", "llama", 4, 1, BL_GGML_F32, 8.0, 14);
    /* gpt2_all: rsLoRA r = 4, alpha 8 -> llama.cpp alpha 8 * sqrt(4) = 16; c_attn, c_proj (x2), c_fc */
    export_and_check("gpt2_all", "gpt2", 0, 0, BL_GGML_F32, 16.0, 8);
    export_and_check("gpt2", "gpt2", 0, 0, BL_GGML_F16, 8.0, 2);
    /* qwen2: llama.cpp arch qwen2, q, v, down in 2 layers; rows as stored (no RoPE permutation) */
    export_and_check("qwen2", "qwen2", 4, 2, BL_GGML_F32, 8.0, 6);
    check_qwen2_bits();
    check_head_counts();
    check_alpha_pattern_and_refusals();
    check_reader_errors();
    return t_finish();
}
