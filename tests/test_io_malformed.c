/* Malformed inputs at the file level: non-UTF-8 JSON and safetensors headers, bad
 * data_offsets, bad adapter configs (each field named), a sharded index pointing at a missing
 * shard, non-UTF-8 GGUF strings. Every error names the file. Generated here, no ../shared. */
#include "harness.h"
#include "io/gguf.h"
#include "io/hf.h"
#include "io/inspect.h"
#include "io/merge.h"
#include "io/peft_files.h"
#include "encoders/encoder.h"
#include "model/model.h"
#include <cjson/cJSON.h>
#include <string.h>

static char g_path[1024];

static const char *put(const char *name, const void *data, size_t n) {
    snprintf(g_path, sizeof g_path, "%s/%s", t_tmpdir(), name);
    CHECK_OK(bl_file_write_atomic(g_path, data, n));
    return g_path;
}

static void put_safetensors(const char *name, const char *hdr, size_t data_len) {
    char buf[4096] = {0};
    size_t hl = strlen(hdr);
    for (int i = 0; i < 8; i++) buf[i] = (char)((hl >> (8 * i)) & 0xff);
    memcpy(buf + 8, hdr, hl);
    put(name, buf, 8 + hl + data_len);
}

static void check_json_and_headers(void) {
    cJSON *j;
    static const char bad_utf8[] = "{\"model_type\": \"ll\xff\xfe\"}";
    const char *p = put("bad_utf8.json", bad_utf8, sizeof bad_utf8 - 1);
    CHECK_FAILS(bl_json_load(p, &j), BALORA_STATUS_FORMAT, "not valid UTF-8 at byte 18");
    CHECK(strstr(balora_last_error(), p) != NULL, "names the file");
    p = put("bad.json", "{\"a\": [1, 2,,]}", 15);
    CHECK_FAILS(bl_json_load(p, &j), BALORA_STATUS_FORMAT, "invalid JSON near byte");
    CHECK(strstr(balora_last_error(), p) != NULL, "names the file");
    bl_st_file f;
    put_safetensors("u.safetensors", "{\"x\xc3\x28\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    CHECK_FAILS(bl_st_open(&f, g_path), BALORA_STATUS_FORMAT, "not valid UTF-8");
    put_safetensors("o.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4);
    CHECK_FAILS(bl_st_open(&f, g_path), BALORA_STATUS_FORMAT, "must be two integers");
    put_safetensors("h.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e300]}}", 4);
    CHECK_FAILS(bl_st_open(&f, g_path), BALORA_STATUS_FORMAT, "must be two integers");
    put_safetensors("s.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    CHECK_FAILS(bl_st_open(&f, g_path), BALORA_STATUS_FORMAT, "shape[0] is not a non-negative integer");
}

static void make_adapter(const char *dir, const char *config) {
    char p[1200];
    CHECK_OK(bl_mkdir_p(dir));
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    CHECK_OK(bl_file_write_atomic(p, config, strlen(config)));
    float a[2 * 4] = {0}, b[4 * 2] = {0};
    bl_st_writer w;
    bl_st_writer_init(&w);
    CHECK_OK(bl_st_writer_add(&w, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", BL_DTYPE_F32, 2, (int64_t[]){2, 4}, a));
    CHECK_OK(bl_st_writer_add(&w, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", BL_DTYPE_F32, 2, (int64_t[]){4, 2}, b));
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    CHECK_OK(bl_st_writer_save(&w, p));
    bl_st_writer_free(&w);
}

static void check_adapter_configs(void) {
    struct { const char *cfg; balora_status st; const char *needle; } cases[] = {
        {"{\"peft_type\":\"LORA\",\"r\":0,\"lora_alpha\":8}", BALORA_STATUS_FORMAT, "field 'r' must be positive"},
        {"{\"peft_type\":\"LORA\",\"r\":\"four\",\"lora_alpha\":8}", BALORA_STATUS_FORMAT, "field 'r' must be an integer"},
        {"{\"peft_type\":\"LORA\",\"r\":2}", BALORA_STATUS_FORMAT, "missing required field 'lora_alpha'"},
        {"{\"peft_type\":\"IA3\",\"r\":2,\"lora_alpha\":8}", BALORA_STATUS_UNSUPPORTED, "peft_type' is 'IA3'"},
        {"{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":8,\"rank_pattern\":[1]}", BALORA_STATUS_FORMAT, "'rank_pattern' must be an object"},
        {"{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":8,\"rank_pattern\":{\"q_proj\":1.5}}", BALORA_STATUS_FORMAT, "positive integer"},
        {"{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":8,\"rank_pattern\":{\"q_(proj\":2}}", BALORA_STATUS_FORMAT, "not a valid regular expression"},
        {"{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":8,\"use_rslora\":\"yes\"}", BALORA_STATUS_FORMAT, "field 'use_rslora' must be true or false"},
        {"[1, 2]", BALORA_STATUS_FORMAT, "not a JSON object"},
        /* fuzzing: cJSON reads 1e999 as inf, which was cast to int64 (UB; inspect printed r = INT64_MIN) */
        {"{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":8,\"rank_pattern\":{\"q_proj\":1e999}}", BALORA_STATUS_FORMAT, "positive integer <= 65536"},
        {"{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":8,\"rank_pattern\":{\"q_proj\":65537}}", BALORA_STATUS_FORMAT, "positive integer <= 65536"},
        {"{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":8,\"rank_pattern\":{\"q_proj\":-1}}", BALORA_STATUS_FORMAT, "positive integer"},
        {"{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":8,\"alpha_pattern\":{\"q_proj\":1e999}}", BALORA_STATUS_FORMAT, "positive finite number"},
        {"{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":8,\"alpha_pattern\":{\"q_proj\":\"8\"}}", BALORA_STATUS_FORMAT, "positive finite number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/ad%zu", t_tmpdir(), i);
        make_adapter(dir, cases[i].cfg);
        bl_peft_adapter a;
        CHECK_FAILS(bl_peft_open(&a, dir), cases[i].st, cases[i].needle);
        CHECK(strstr(balora_last_error(), "adapter_config.json") != NULL, "case %zu names the file: %s", i, balora_last_error());
    }
    /* a folder without adapter_model.safetensors */
    char dir[1024], p[1200];
    snprintf(dir, sizeof dir, "%s/noweights", t_tmpdir());
    CHECK_OK(bl_mkdir_p(dir));
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    CHECK_OK(bl_file_write_atomic(p, "{\"r\":2,\"lora_alpha\":4}", 22));
    bl_peft_adapter a;
    CHECK_FAILS(bl_peft_open(&a, dir), BALORA_STATUS_IO, "missing adapter_model.safetensors");
    /* unknown keys in the weights */
    snprintf(dir, sizeof dir, "%s/unknown", t_tmpdir());
    make_adapter(dir, "{\"r\":2,\"lora_alpha\":4}");
    bl_st_writer w;
    float z[2] = {0};
    bl_st_writer_init(&w);
    CHECK_OK(bl_st_writer_add(&w, "model.layers.0.q_proj.weight", BL_DTYPE_F32, 1, (int64_t[]){2}, z));
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    CHECK_OK(bl_st_writer_save(&w, p));
    bl_st_writer_free(&w);
    CHECK_OK(bl_peft_open(&a, dir));
    CHECK_FAILS(bl_peft_validate(&a), BALORA_STATUS_UNSUPPORTED, "unexpected tensor 'model.layers.0.q_proj.weight'");
    bl_peft_close(&a);
}

static void check_sharded_index(void) {
    char dir[1024], p[1200];
    snprintf(dir, sizeof dir, "%s/shards", t_tmpdir());
    CHECK_OK(bl_mkdir_p(dir));
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK_OK(bl_file_write_atomic(p, "{\"model_type\":\"llama\"}", 22));
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    const char *idx = "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\"}}";
    CHECK_OK(bl_file_write_atomic(p, idx, strlen(idx)));
    bl_hf_folder h;
    CHECK_FAILS(bl_hf_open(&h, dir), BALORA_STATUS_IO, "model-00001-of-00002.safetensors: cannot open");
    cJSON *o;
    CHECK_FAILS(bl_inspect_path(dir, &o), BALORA_STATUS_IO, "cannot open");
}

static void check_gguf_strings(void) {
    /* GGUF v3, 0 tensors, 1 KV whose key is not UTF-8 */
    unsigned char b[64] = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
    b[16] = 1;        /* n_kv = 1 */
    b[24] = 3;        /* key length 3 */
    b[32] = 'a'; b[33] = 0xff; b[34] = 'b';
    b[35] = 4;        /* u32 */
    const char *p = put("bad_key.gguf", b, 43);
    bl_gguf_file g;
    CHECK_FAILS(bl_gguf_open(&g, p), BALORA_STATUS_FORMAT, "not valid UTF-8");
    b[33] = 'x';
    CHECK_OK(bl_gguf_open(&g, put("ok.gguf", b, 43)));
    CHECK(g.n_kv == 1 && !strcmp(g.kvs[0].key, "axb") && g.kvs[0].type == BL_GGUF_U32, "minimal GGUF");
    bl_gguf_close(&g);
}

/* fuzzing: a huge num_labels overflowed num_labels * hidden (int64) when the head was sized */
static void check_num_labels(void) {
    const char *dec = "{\"model_type\":\"gpt2\",\"architectures\":[\"GPT2ForSequenceClassification\"],\"vocab_size\":16,"
                      "\"n_embd\":8,\"n_layer\":1,\"n_head\":2,\"n_positions\":8,\"num_labels\":1e15}";
    const char *enc = "{\"model_type\":\"bert\",\"architectures\":[\"BertForSequenceClassification\"],\"vocab_size\":16,"
                      "\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"intermediate_size\":16,"
                      "\"max_position_embeddings\":8,\"num_labels\":4611686018427387904}";
    cJSON *j = cJSON_Parse(dec);
    CHECK(j != NULL, "decoder config parses as JSON");
    bl_config c;
    CHECK_FAILS(bl_config_parse(&c, j, "dec/config.json"), BALORA_STATUS_FORMAT, "dec/config.json: field 'num_labels'");
    cJSON_Delete(j);
    j = cJSON_Parse(enc);
    CHECK(j != NULL, "encoder config parses as JSON");
    bl_enc_config e;
    CHECK_FAILS(bl_enc_config_parse(&e, j, "enc/config.json", 0), BALORA_STATUS_FORMAT, "enc/config.json: field 'num_labels'");
    cJSON_Delete(j);
}

int main(void) {
    check_json_and_headers();
    check_num_labels();
    check_adapter_configs();
    check_sharded_index();
    check_gguf_strings();
    return t_finish();
}
