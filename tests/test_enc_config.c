/* Encoder configs and checkpoints: save/load round trips for every architecture, checkpoints
 * without the model prefix or with old gamma/beta LayerNorm names, heads absent from the
 * checkpoint initialised as transformers does, and every unsupported or malformed config field
 * failing with its name. */
#include "harness.h"
#include "encoders/encoder.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 6 };
static const int64_t IDS[B * T] = {2, 5, 9, 11, 7, 3, 2, 8, 4, 3, 0, 0};
static const int64_t MASK[B * T] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};

static void logits_of(bl_encoder *m, float *out) {
    bl_enc_run r;
    CHECK_OK(bl_enc_run_init(&r, m, B, T));
    int64_t ids[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = MASK[i] ? IDS[i] : m->cfg.pad_id;
    bl_enc_batch b = {B, T, ids, MASK, NULL};
    CHECK_OK(bl_enc_forward(&r, &b, BL_ADAPTER_OFF));
    memcpy(out, r.logits, sizeof(float) * B * (size_t)m->cfg.num_labels);
    bl_enc_run_free(&r);
}

/* Writes m's tensors to dir/model.safetensors with names transformed by `mode`:
 * 0 as is, 1 without the model prefix, 2 LayerNorm gamma/beta, 3 without the classifier and pooler. */
static void write_variant(const bl_encoder *m, const char *dir, int mode) {
    bl_mkdir_p(dir);
    char path[1200];
    cJSON *j;
    CHECK_OK(bl_enc_config_json(&m->cfg, &j));
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK_OK(bl_json_save(j, path));
    cJSON_Delete(j);
    bl_st_writer w;
    bl_st_writer_init(&w);
    static char names[256][200];
    for (int i = 0; i < m->mods.n_params; i++) {
        const bl_param *p = &m->mods.params[i];
        const char *nm = p->name;
        char *o = names[i];
        snprintf(o, 200, "%s", nm);
        if (mode == 1) {
            const char *dot = strchr(nm, '.');
            if (!strncmp(nm, "bert.", 5) || !strncmp(nm, "roberta.", 8) || !strncmp(nm, "deberta.", 8)) snprintf(o, 200, "%s", dot + 1);
        } else if (mode == 2 && strstr(nm, "LayerNorm.")) {
            size_t n = strlen(nm);
            if (!strcmp(nm + n - 7, ".weight")) snprintf(o, 200, "%.*s.gamma", (int)(n - 7), nm);
            else snprintf(o, 200, "%.*s.beta", (int)(n - 5), nm);
        } else if (mode == 3 && (strstr(nm, "classifier") || strstr(nm, "pooler"))) {
            continue;
        }
        CHECK_OK(bl_st_writer_add(&w, o, BL_DTYPE_F32, p->ndim, p->shape, p->data));
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(bl_st_writer_save(&w, path));
    bl_st_writer_free(&w);
}

static void round_trips(bl_enc_arch arch) {
    bl_enc_config c;
    bl_enc_config_defaults(&c, arch);
    c.init_range = 0.1;
    bl_encoder m;
    CHECK_OK(bl_enc_init_random(&m, &c, 9));
    float want[8], got[8];
    logits_of(&m, want);
    char dir[800];
    for (int mode = 0; mode < 4; mode++) {
        snprintf(dir, sizeof dir, "%s/%s_%d", t_tmpdir(), c.model_type, mode);
        if (mode == 0) CHECK_OK(bl_enc_save(&m, dir, false));
        else write_variant(&m, dir, mode);
        bl_encoder l;
        bl_enc_load_opts o = BL_ENC_LOAD_DEFAULT;
        o.seed = 4;
        CHECK_OK(bl_enc_load(&l, dir, &o));
        if (t_failures) return;
        CHECK(l.cfg.arch == arch && l.cfg.num_labels == 2 && l.cfg.hidden == c.hidden, "%s: config round trip", c.model_type);
        logits_of(&l, got);
        if (mode < 3) {
            CHECK(!memcmp(got, want, sizeof(float) * 2 * B), "%s mode %d: same logits after reload (%g vs %g)",
                  c.model_type, mode, got[0], want[0]);
        } else {
            /* new head: N(0, initializer_range) weights, zero biases */
            const bl_param *hw = &l.mods.params[l.head_w], *hb = &l.mods.params[l.head_b];
            double ss = 0;
            for (int64_t e = 0; e < hw->numel; e++) ss += (double)hw->data[e] * hw->data[e];
            double sd = sqrt(ss / (double)hw->numel), bs = 0;
            for (int64_t e = 0; e < hb->numel; e++) bs += fabs(hb->data[e]);
            CHECK(sd > 0.06 && sd < 0.14 && bs == 0, "%s: new head std %g (want ~0.1), |bias| %g", c.model_type, sd, bs);
            CHECK(memcmp(got, want, sizeof(float) * 2 * B) != 0, "%s: a new head gives other logits", c.model_type);
        }
        bl_enc_free(&l);
    }
    /* the checkpoint's classifier does not fit another label count */
    snprintf(dir, sizeof dir, "%s/%s_0", t_tmpdir(), c.model_type);
    bl_encoder l;
    bl_enc_load_opts o = BL_ENC_LOAD_DEFAULT;
    o.num_labels = 5;
    CHECK_FAILS(bl_enc_load(&l, dir, &o), BALORA_STATUS_FORMAT, "does not fit num_labels 5");
    o = BL_ENC_LOAD_DEFAULT;
    o.regression = true;
    snprintf(dir, sizeof dir, "%s/%s_3", t_tmpdir(), c.model_type);
    CHECK_OK(bl_enc_load(&l, dir, &o));
    CHECK(l.cfg.regression && l.cfg.num_labels == 1, "regression head");
    bl_enc_free(&l);
    bl_enc_free(&m);
}

static void config_errors(void) {
    static const struct { const char *json; balora_status st; const char *needle; } cases[] = {
        {"{\"model_type\":\"gpt2\"}", BALORA_STATUS_UNSUPPORTED, "'model_type' = \"gpt2\""},
        {"{\"model_type\":\"bert\",\"hidden_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":4,\"intermediate_size\":8,"
         "\"max_position_embeddings\":8}", BALORA_STATUS_FORMAT, "missing required field 'vocab_size'"},
        {"{\"model_type\":\"bert\",\"vocab_size\":9,\"hidden_size\":30,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
         "\"intermediate_size\":8,\"max_position_embeddings\":8}", BALORA_STATUS_FORMAT, "multiple of num_attention_heads"},
        {"{\"model_type\":\"bert\",\"vocab_size\":9,\"hidden_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
         "\"intermediate_size\":8,\"max_position_embeddings\":8,\"position_embedding_type\":\"relative_key\"}",
         BALORA_STATUS_UNSUPPORTED, "'position_embedding_type'"},
        {"{\"model_type\":\"bert\",\"vocab_size\":9,\"hidden_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
         "\"intermediate_size\":8,\"max_position_embeddings\":8,\"hidden_act\":\"swish\"}", BALORA_STATUS_UNSUPPORTED, "'hidden_act'"},
        {"{\"model_type\":\"bert\",\"vocab_size\":9,\"hidden_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
         "\"intermediate_size\":8,\"max_position_embeddings\":8,\"problem_type\":\"multi_label_classification\"}",
         BALORA_STATUS_UNSUPPORTED, "'problem_type'"},
        {"{\"model_type\":\"bert\",\"vocab_size\":9,\"hidden_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
         "\"intermediate_size\":8,\"max_position_embeddings\":8,\"num_labels\":3,\"problem_type\":\"regression\"}",
         BALORA_STATUS_UNSUPPORTED, "regression with num_labels 3"},
        {"{\"model_type\":\"deberta-v2\",\"vocab_size\":9,\"hidden_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
         "\"intermediate_size\":8,\"max_position_embeddings\":8,\"relative_attention\":true,\"pos_att_type\":[\"p2c\",\"c2p\"]}",
         BALORA_STATUS_UNSUPPORTED, "'share_att_key' = false"},
        {"{\"model_type\":\"deberta-v2\",\"vocab_size\":9,\"hidden_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
         "\"intermediate_size\":8,\"max_position_embeddings\":8,\"conv_kernel_size\":3}", BALORA_STATUS_UNSUPPORTED, "'conv_kernel_size'"},
        {"{\"model_type\":\"deberta-v2\",\"vocab_size\":9,\"hidden_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
         "\"intermediate_size\":8,\"max_position_embeddings\":8,\"pos_att_type\":\"p2p\",\"relative_attention\":true,"
         "\"share_att_key\":true}", BALORA_STATUS_UNSUPPORTED, "'pos_att_type' has \"p2p\""},
        {"{\"model_type\":\"deberta-v2\",\"vocab_size\":9,\"hidden_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
         "\"intermediate_size\":8,\"max_position_embeddings\":8,\"pooler_hidden_size\":16}", BALORA_STATUS_UNSUPPORTED, "'pooler_hidden_size'"},
        {"{\"model_type\":\"deberta-v2\",\"vocab_size\":9,\"hidden_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
         "\"intermediate_size\":8,\"max_position_embeddings\":8,\"embedding_size\":16}", BALORA_STATUS_UNSUPPORTED, "'embedding_size'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        bl_enc_config c;
        CHECK_FAILS(bl_enc_config_parse(&c, j, "config.json", 0), cases[i].st, cases[i].needle);
        cJSON_Delete(j);
    }
    /* a good deberta-v2 config: string pos_att_type, defaults */
    cJSON *j = cJSON_Parse("{\"model_type\":\"deberta-v2\",\"vocab_size\":9,\"hidden_size\":32,\"num_hidden_layers\":1,"
                           "\"num_attention_heads\":4,\"intermediate_size\":8,\"max_position_embeddings\":8,\"pos_att_type\":"
                           "\"p2c|c2p\",\"relative_attention\":true,\"share_att_key\":true,\"position_buckets\":256,"
                           "\"id2label\":{\"0\":\"a\",\"1\":\"b\",\"2\":\"c\"}}");
    bl_enc_config c;
    CHECK_OK(bl_enc_config_parse(&c, j, "config.json", 0));
    CHECK(c.c2p && c.p2c && c.att_span == 256 && c.max_rel_pos == 8 && c.num_labels == 3 && c.position_biased_input &&
          !c.norm_rel_ebd && c.type_vocab == 0, "deberta defaults");
    cJSON_Delete(j);
    /* a checkpoint missing a body tensor */
    bl_enc_config_defaults(&c, BL_ENC_BERT);
    bl_encoder m;
    CHECK_OK(bl_enc_init_random(&m, &c, 1));
    char dir[800];
    snprintf(dir, sizeof dir, "%s/bad", t_tmpdir());
    CHECK_OK(bl_enc_save(&m, dir, false));
    char path[900];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    bl_st_writer w;
    bl_st_writer_init(&w);
    for (int i = 0; i < m.mods.n_params; i++)
        if (!strstr(m.mods.params[i].name, "layer.1.output.dense.weight"))
            bl_st_writer_add(&w, m.mods.params[i].name, BL_DTYPE_F32, m.mods.params[i].ndim, m.mods.params[i].shape, m.mods.params[i].data);
    CHECK_OK(bl_st_writer_save(&w, path));
    bl_st_writer_free(&w);
    bl_encoder l;
    CHECK_FAILS(bl_enc_load(&l, dir, NULL), BALORA_STATUS_FORMAT, "missing tensor 'bert.encoder.layer.1.output.dense.weight'");
    CHECK_FAILS(bl_enc_load(&l, "/nonexistent/model", NULL), BALORA_STATUS_IO, "/nonexistent/model");
    bl_enc_run r;
    CHECK_FAILS(bl_enc_run_init(&r, &m, 2, c.max_pos + 1), BALORA_STATUS_INVALID, "max_position_embeddings");
    bl_enc_free(&m);
}

int main(void) {
    balora_threads_set(1);
    round_trips(BL_ENC_BERT);
    round_trips(BL_ENC_ROBERTA);
    round_trips(BL_ENC_DEBERTA_V2);
    config_errors();
    return t_finish();
}
