/* bert / roberta / deberta-v2 sequence classifiers: config, weights, forward, backward (encoder.h). */
#include "encoders/encoder.h"
#include "encoders/enc_ops.h"
#include "io/hf.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ====================================================================== config */

static balora_status parse_act(const char *s, const char *file, const char *key, bool allow_tanh, bl_enc_act *out) {
    if (!strcmp(s, "gelu")) *out = BL_ENC_ACT_GELU;
    else if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh") || !strcmp(s, "gelu_fast")) *out = BL_ENC_ACT_GELU_TANH;
    else if (!strcmp(s, "relu")) *out = BL_ENC_ACT_RELU;
    else if (allow_tanh && !strcmp(s, "tanh")) *out = BL_ENC_ACT_TANH;
    else return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field '%s' = \"%s\" is not supported; hint: gelu, gelu_new, "
                        "gelu_pytorch_tanh or relu%s", file, key, s, allow_tanh ? " or tanh" : "");
    return BALORA_STATUS_OK;
}

void bl_enc_config_defaults(bl_enc_config *c, bl_enc_arch arch) {
    memset(c, 0, sizeof *c);
    c->arch = arch;
    c->row = bl_arch_of_encoder(arch);
    snprintf(c->model_type, sizeof c->model_type, "%s", c->row->types[0].model_type);
    snprintf(c->architecture, sizeof c->architecture, "%s", c->row->types[0].seq_cls);
    c->vocab_size = 64; c->hidden = 32; c->n_layer = 2; c->n_head = 4; c->head_dim = 8; c->intermediate = 64;
    c->max_pos = 64; c->type_vocab = arch == BL_ENC_BERT ? 2 : (arch == BL_ENC_ROBERTA ? 1 : 0);
    c->ln_eps = arch == BL_ENC_DEBERTA_V2 ? 1e-7 : 1e-12;
    c->act = BL_ENC_ACT_GELU;
    c->pad_id = arch == BL_ENC_ROBERTA ? 1 : 0;
    c->init_range = 0.02;
    c->num_labels = 2;
    if (arch == BL_ENC_ROBERTA) c->max_pos += c->pad_id + 1;
    if (arch == BL_ENC_DEBERTA_V2) {
        c->relative_attention = true;
        c->position_buckets = 8;
        c->max_rel_pos = c->max_pos;
        c->att_span = 8;
        c->c2p = c->p2c = true;
        c->norm_rel_ebd = true;
        c->position_biased_input = false;
    } else {
        c->position_biased_input = true;
    }
    c->pooler_act = arch == BL_ENC_DEBERTA_V2 ? BL_ENC_ACT_GELU : BL_ENC_ACT_TANH;
}

balora_status bl_enc_config_parse(bl_enc_config *c, const cJSON *j, const char *file, int64_t nl_override) {
    const char *mt = NULL;
    BL_TRY(bl_json_str(j, file, "model_type", true, &mt));
    const bl_arch_type *ty = NULL;
    const bl_arch *row = bl_arch_find(mt, &ty);
    char l2[256];
    if (!row || row->family != BL_FAMILY_ENCODER)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'model_type' = \"%s\" is not an encoder balora supports; "
                       "hint: %s (deberta-v2: DeBERTa-v3)", file, mt, bl_arch_type_list(2, l2, sizeof l2));
    bl_enc_arch arch = (bl_enc_arch)row->enc_arch;
    bl_enc_config_defaults(c, arch);
    snprintf(c->model_type, sizeof c->model_type, "%s", mt);
    snprintf(c->architecture, sizeof c->architecture, "%s", ty->seq_cls);
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(j, "architectures");
    if (cJSON_IsArray(archs) && cJSON_IsString(cJSON_GetArrayItem(archs, 0)))
        snprintf(c->architecture, sizeof c->architecture, "%s", cJSON_GetArrayItem(archs, 0)->valuestring);
    BL_TRY(bl_json_int(j, file, "vocab_size", true, &c->vocab_size));
    BL_TRY(bl_json_int(j, file, row->f_hidden, true, &c->hidden));
    BL_TRY(bl_json_int(j, file, row->f_layers, true, &c->n_layer));
    BL_TRY(bl_json_int(j, file, row->f_heads, true, &c->n_head));
    BL_TRY(bl_json_int(j, file, row->f_inter, true, &c->intermediate));
    BL_TRY(bl_json_int(j, file, row->f_pos, true, &c->max_pos));
    BL_TRY(bl_json_int(j, file, "type_vocab_size", false, &c->type_vocab));
    BL_TRY(bl_json_num(j, file, row->f_eps, false, &c->ln_eps));
    BL_TRY(bl_json_int(j, file, "pad_token_id", false, &c->pad_id));
    BL_TRY(bl_json_num(j, file, "initializer_range", false, &c->init_range));
    const char *act = "gelu";
    BL_TRY(bl_json_str(j, file, row->f_act, false, &act));
    BL_TRY(parse_act(act, file, row->f_act, false, &c->act));
    if (c->vocab_size < 1 || c->hidden < 1 || c->n_layer < 1 || c->n_head < 1 || c->intermediate < 1 || c->max_pos < 1 ||
        c->type_vocab < 0 || c->hidden % c->n_head != 0 || !(c->ln_eps > 0))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: inconsistent sizes (vocab_size %lld, hidden_size %lld, num_hidden_layers "
                       "%lld, num_attention_heads %lld, intermediate_size %lld, max_position_embeddings %lld, "
                       "type_vocab_size %lld); hint: hidden_size must be a multiple of num_attention_heads", file,
                       (long long)c->vocab_size, (long long)c->hidden, (long long)c->n_layer, (long long)c->n_head,
                       (long long)c->intermediate, (long long)c->max_pos, (long long)c->type_vocab);
    c->head_dim = c->hidden / c->n_head;
    int64_t ahs = c->head_dim;
    BL_TRY(bl_json_int(j, file, "attention_head_size", false, &ahs));
    if (ahs != c->head_dim)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'attention_head_size' = %lld differs from hidden_size / "
                       "num_attention_heads = %lld", file, (long long)ahs, (long long)c->head_dim);
    const char *pet = "absolute";
    BL_TRY(bl_json_str(j, file, "position_embedding_type", false, &pet));
    if (strcmp(pet, "absolute"))
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'position_embedding_type' = \"%s\" is not supported; hint: "
                       "only \"absolute\"", file, pet);
    int64_t es = c->hidden;
    BL_TRY(bl_json_int(j, file, "embedding_size", false, &es));
    if (es != c->hidden)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'embedding_size' = %lld differs from hidden_size %lld "
                       "(embed_proj is not supported)", file, (long long)es, (long long)c->hidden);
    /* labels */
    if (nl_override > 0) c->num_labels = nl_override;
    else {
        const cJSON *id2l = cJSON_GetObjectItemCaseSensitive(j, "id2label");
        if (cJSON_IsObject(id2l)) c->num_labels = cJSON_GetArraySize(id2l);
        BL_TRY(bl_json_int(j, file, "num_labels", false, &c->num_labels));
    }
    if (c->num_labels < 1 || c->num_labels > BL_MAX_LABELS)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'num_labels' (or the size of 'id2label') = %lld is out of range (1 to %d)", file,
                       (long long)c->num_labels, BL_MAX_LABELS);
    const char *pt = NULL;
    BL_TRY(bl_json_str(j, file, "problem_type", false, &pt));
    if (pt && !strcmp(pt, "regression")) c->regression = true;
    else if (pt && strcmp(pt, "single_label_classification"))
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'problem_type' = \"%s\" is not supported; hint: "
                       "single_label_classification or regression", file, pt);
    if (c->num_labels == 1) c->regression = true;
    if (c->regression && c->num_labels != 1)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: regression with num_labels %lld; hint: balora's regression head "
                       "has one output", file, (long long)c->num_labels);
    /* dropout: balora's encoders run it as eval mode */
    static const char *drops[] = {"hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout",
                                  "pooler_dropout", "cls_dropout"};
    for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
        double p = 0;
        BL_TRY(bl_json_num(j, file, drops[i], false, &p));
        if (p > 0)
            bl_log(BL_WARN, "%s: %s = %g: balora's encoders apply no hidden/attention/classifier dropout (eval-mode "
                   "forward); regularise with LoRA dropout instead", file, drops[i], p);
    }
    if (arch == BL_ENC_DEBERTA_V2) {
        int64_t conv = 0;
        BL_TRY(bl_json_int(j, file, "conv_kernel_size", false, &conv));
        if (conv > 0) return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'conv_kernel_size' = %lld (DeBERTa-v2 xlarge "
                                     "ConvLayer) is not supported", file, (long long)conv);
        c->relative_attention = false;
        BL_TRY(bl_json_bool(j, file, "relative_attention", false, &c->relative_attention));
        c->position_buckets = -1;
        BL_TRY(bl_json_int(j, file, "position_buckets", false, &c->position_buckets));
        c->max_rel_pos = -1;
        BL_TRY(bl_json_int(j, file, "max_relative_positions", false, &c->max_rel_pos));
        if (c->max_rel_pos < 1) c->max_rel_pos = c->max_pos;
        c->att_span = c->position_buckets > 0 ? c->position_buckets : c->max_rel_pos;
        c->c2p = c->p2c = false;
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pos_att_type");
        char buf[256] = "";
        if (cJSON_IsArray(pat)) {
            const cJSON *it;
            cJSON_ArrayForEach(it, pat) {
                if (!cJSON_IsString(it)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'pos_att_type' must hold strings", file);
                size_t o = strlen(buf);
                snprintf(buf + o, sizeof buf - o, "%s|", it->valuestring);
            }
        } else if (cJSON_IsString(pat)) {
            snprintf(buf, sizeof buf, "%s|", pat->valuestring);
        } else if (pat && !cJSON_IsNull(pat)) {
            return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'pos_att_type' must be a list or a string", file);
        }
        for (char *tok = strtok(buf, "|"); tok; tok = strtok(NULL, "|")) {
            while (*tok == ' ') tok++;
            if (!strncmp(tok, "c2p", 3)) c->c2p = true;
            else if (!strncmp(tok, "p2c", 3)) c->p2c = true;
            else if (*tok) return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'pos_att_type' has \"%s\"; hint: c2p and "
                                         "p2c are supported", file, tok);
        }
        bool share = false;
        BL_TRY(bl_json_bool(j, file, "share_att_key", false, &share));
        if (c->relative_attention && (c->c2p || c->p2c) && !share)
            return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'share_att_key' = false (separate pos_key_proj / "
                           "pos_query_proj) is not supported; hint: DeBERTa-v3 checkpoints use true", file);
        const char *nre = "none";
        BL_TRY(bl_json_str(j, file, "norm_rel_ebd", false, &nre));
        c->norm_rel_ebd = strstr(nre, "layer_norm") != NULL;
        c->position_biased_input = true;
        BL_TRY(bl_json_bool(j, file, "position_biased_input", false, &c->position_biased_input));
        int64_t phs = c->hidden;
        BL_TRY(bl_json_int(j, file, "pooler_hidden_size", false, &phs));
        if (phs != c->hidden)
            return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'pooler_hidden_size' = %lld differs from hidden_size %lld",
                           file, (long long)phs, (long long)c->hidden);
        const char *pact = "gelu";
        BL_TRY(bl_json_str(j, file, "pooler_hidden_act", false, &pact));
        BL_TRY(parse_act(pact, file, "pooler_hidden_act", true, &c->pooler_act));
        if (!c->relative_attention) c->c2p = c->p2c = false;
    }
    if (c->arch == BL_ENC_ROBERTA && c->pad_id < 0)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: roberta needs pad_token_id (positions start after it)", file);
    return BALORA_STATUS_OK;
}

/* ====================================================================== weights */

typedef struct pspec { char name[160]; int ndim; int64_t shape[2]; int kind; } pspec;
enum { PK_WEIGHT = 0, PK_BIAS, PK_LN_W, PK_LN_B, PK_EMB, PK_HEAD_W, PK_HEAD_B, PK_POOL_W, PK_POOL_B };

typedef struct builder {
    bl_encoder *m;
    int n, cap;
    pspec *spec;
} builder;

static int add_p(builder *b, const char *name, int ndim, int64_t d0, int64_t d1, int kind) {
    pspec *s = &b->spec[b->n];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim; s->shape[0] = d0; s->shape[1] = d1; s->kind = kind;
    return b->n++;
}

static const char *nm2(char *buf, size_t cap, const char *name, const char *suffix) {
    snprintf(buf, cap, "%s%s", name, suffix);
    return buf;
}

/* Declares every tensor (names, shapes) and every linear; the names come from the row of the
 * architecture table (model/arch.h). */
static balora_status declare(bl_encoder *m, builder *b, int *lin_w, int *lin_b, char (*lin_names)[128], int *n_lin) {
    const bl_enc_config *c = &m->cfg;
    const bl_arch *A = c->row;
    int64_t C = c->hidden, F = c->intermediate;
    char nm[160];
    m->pos = m->type = m->rel = m->rel_ln_w = m->rel_ln_b = m->head_dense_w = m->head_dense_b = -1;
    m->word = add_p(b, nm2(nm, sizeof nm, A->embed, ".weight"), 2, c->vocab_size, C, PK_EMB);
    if (c->position_biased_input) m->pos = add_p(b, nm2(nm, sizeof nm, A->pos_embed, ".weight"), 2, c->max_pos, C, PK_EMB);
    if (c->type_vocab > 0) m->type = add_p(b, nm2(nm, sizeof nm, A->type_embed, ".weight"), 2, c->type_vocab, C, PK_EMB);
    m->emb_ln_w = add_p(b, nm2(nm, sizeof nm, A->embed_norm, ".weight"), 1, C, 0, PK_LN_W);
    m->emb_ln_b = add_p(b, nm2(nm, sizeof nm, A->embed_norm, ".bias"), 1, C, 0, PK_LN_B);
    if ((A->attn & BL_ATTN_RELATIVE) && c->relative_attention) {
        m->rel = add_p(b, nm2(nm, sizeof nm, A->rel_embed, ".weight"), 2, 2 * c->att_span, C, PK_EMB);
        if (c->norm_rel_ebd) {
            m->rel_ln_w = add_p(b, nm2(nm, sizeof nm, A->rel_norm, ".weight"), 1, C, 0, PK_LN_W);
            m->rel_ln_b = add_p(b, nm2(nm, sizeof nm, A->rel_norm, ".bias"), 1, C, 0, PK_LN_B);
        }
    }
    int nl = 0;
    for (int64_t l = 0; l < c->n_layer; l++) {
        /* the six linears in the row's order: q, k, v, attention output, intermediate, output */
        for (int i = 0; i < 6; i++) {
            const bl_arch_linear *al = &A->lin[i];
            int64_t out = al->role == BL_ROLE_UP ? F : C, in = al->role == BL_ROLE_DOWN ? F : C;
            bl_arch_block_name(A, lin_names[nl], 128, (long)l, al->path, NULL);
            lin_w[nl] = add_p(b, nm2(nm, sizeof nm, lin_names[nl], ".weight"), 2, out, in, PK_WEIGHT);
            lin_b[nl] = add_p(b, nm2(nm, sizeof nm, lin_names[nl], ".bias"), 1, out, 0, PK_BIAS);
            nl++;
        }
        bl_enc_layer *ly = &m->layers[l];
        bl_arch_block_name(A, nm, sizeof nm, (long)l, A->norm_path[BL_NORM_ATTN], ".weight");
        ly->ln1_w = add_p(b, nm, 1, C, 0, PK_LN_W);
        bl_arch_block_name(A, nm, sizeof nm, (long)l, A->norm_path[BL_NORM_ATTN], ".bias");
        ly->ln1_b = add_p(b, nm, 1, C, 0, PK_LN_B);
        bl_arch_block_name(A, nm, sizeof nm, (long)l, A->norm_path[BL_NORM_MLP], ".weight");
        ly->ln2_w = add_p(b, nm, 1, C, 0, PK_LN_W);
        bl_arch_block_name(A, nm, sizeof nm, (long)l, A->norm_path[BL_NORM_MLP], ".bias");
        ly->ln2_b = add_p(b, nm, 1, C, 0, PK_LN_B);
    }
    if (A->pooler) {
        snprintf(lin_names[nl], 128, "%s", A->pooler);
        lin_w[nl] = add_p(b, nm2(nm, sizeof nm, A->pooler, ".weight"), 2, C, C, PK_POOL_W);
        lin_b[nl] = add_p(b, nm2(nm, sizeof nm, A->pooler, ".bias"), 1, C, 0, PK_POOL_B);
        nl++;
    }
    if (A->cls_dense) {
        m->head_dense_w = add_p(b, nm2(nm, sizeof nm, A->cls_dense, ".weight"), 2, C, C, PK_HEAD_W);
        m->head_dense_b = add_p(b, nm2(nm, sizeof nm, A->cls_dense, ".bias"), 1, C, 0, PK_HEAD_B);
    }
    m->head_w = add_p(b, nm2(nm, sizeof nm, A->cls_out, ".weight"), 2, c->num_labels, C, PK_HEAD_W);
    m->head_b = add_p(b, nm2(nm, sizeof nm, A->cls_out, ".bias"), 1, c->num_labels, 0, PK_HEAD_B);
    *n_lin = nl;
    return BALORA_STATUS_OK;
}

/* Builds params + linears with storage; data zeroed. */
static balora_status build(bl_encoder *m) {
    m->cfg.row = bl_arch_of_encoder(m->cfg.arch); /* the row always follows arch */
    if (!m->cfg.row) return bl_fail(BALORA_STATUS_INVALID, "encoder config: arch %d has no row in the architecture table", (int)m->cfg.arch);
    const bl_enc_config *c = &m->cfg;
    int cap = 16 + 16 * (int)c->n_layer;
    int lin_cap = 6 * (int)c->n_layer + 1;
    builder b = {m, 0, cap, NULL};
    m->layers = bl_calloc((size_t)c->n_layer, sizeof *m->layers);
    b.spec = bl_calloc((size_t)cap, sizeof *b.spec);
    int *lin_w = bl_calloc((size_t)lin_cap, sizeof(int)), *lin_b = bl_calloc((size_t)lin_cap, sizeof(int));
    char (*lin_names)[128] = bl_calloc((size_t)lin_cap, 128);
    m->mods.lin = bl_calloc((size_t)lin_cap, sizeof(bl_linear));
    m->mods.params = bl_calloc((size_t)cap, sizeof(bl_param));
    balora_status st = BALORA_STATUS_OK;
    if (!m->layers || !b.spec || !lin_w || !lin_b || !lin_names || !m->mods.lin || !m->mods.params) { st = BALORA_STATUS_NOMEM; goto out; }
    int nl = 0;
    declare(m, &b, lin_w, lin_b, lin_names, &nl);
    /* storage */
    m->weights = (bl_arena){0};
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < b.n; i++) {
            int64_t numel = b.spec[i].ndim == 2 ? b.spec[i].shape[0] * b.spec[i].shape[1] : b.spec[i].shape[0];
            m->mods.params[i].data = bl_arena_take(&m->weights, (size_t)numel * sizeof(float));
        }
        if (pass == 0 && (st = bl_arena_alloc(&m->weights))) goto out;
    }
    for (int i = 0; i < b.n; i++) {
        bl_param *p = &m->mods.params[i];
        snprintf(p->name, sizeof p->name, "%s", b.spec[i].name);
        p->ndim = b.spec[i].ndim;
        p->shape[0] = b.spec[i].shape[0];
        p->shape[1] = p->ndim == 2 ? b.spec[i].shape[1] : 0;
        p->numel = p->ndim == 2 ? p->shape[0] * p->shape[1] : p->shape[0];
    }
    m->mods.n_params = b.n;
    for (int i = 0; i < nl; i++) {
        bl_linear *L = &m->mods.lin[i];
        snprintf(L->name, sizeof L->name, "%s", lin_names[i]);
        const char *dot = strrchr(L->name, '.');
        L->leaf = dot ? dot + 1 : L->name;
        L->layer = i < 6 * c->n_layer ? i / 6 : -1;
        L->out = m->mods.params[lin_w[i]].shape[0];
        L->in = m->mods.params[lin_w[i]].shape[1];
        L->W = m->mods.params[lin_w[i]].data;
        L->b = m->mods.params[lin_b[i]].data;
        L->w_param = lin_w[i];
        L->b_param = lin_b[i];
    }
    m->mods.n_lin = nl;
    for (int64_t l = 0; l < c->n_layer; l++) {
        bl_linear *L = &m->mods.lin[6 * l];
        m->layers[l].q = &L[0]; m->layers[l].k = &L[1]; m->layers[l].v = &L[2];
        m->layers[l].ao = &L[3]; m->layers[l].fi = &L[4]; m->layers[l].fo = &L[5];
    }
    const bl_arch *A = c->row;
    m->pooler = A->pooler ? &m->mods.lin[nl - 1] : NULL;
    /* PEFT SEQ_CLS lists "classifier" and "score"; no encoder tensor is named score */
    for (int i = 0; i < 3; i++) m->mods.heads[i] = A->modules_to_save[i];
    m->mods.heads[3] = NULL;
    m->mods.model_type = m->cfg.model_type;
    m->mods.task_type = "SEQ_CLS";
out:
    free(b.spec); free(lin_w); free(lin_b); free(lin_names);
    return st;
}

void bl_enc_free(bl_encoder *m) {
    if (!m) return;
    for (int k = 0; k < 4; k++) free(m->own_head[k]); /* copies made by bl_enc_heads_trainable */
    free(m->layers);
    free(m->mods.lin);
    free(m->mods.params);
    bl_arena_free(&m->weights);
    bl_arena_free(&m->grads);
    memset(m, 0, sizeof *m);
}

static void init_normal(float *x, int64_t n, float std, bl_rng *r) {
    for (int64_t i = 0; i < n; i++) x[i] = std * bl_rng_normal(r);
}

static void init_param(bl_encoder *m, int i, bl_rng *r) {
    bl_param *p = &m->mods.params[i];
    const char *nm = p->name;
    size_t n = strlen(nm);
    bool is_bias = n > 5 && !strcmp(nm + n - 5, ".bias");
    bool is_ln_w = strstr(nm, "LayerNorm.weight") != NULL;
    if (is_ln_w) { for (int64_t k = 0; k < p->numel; k++) p->data[k] = 1.0f; return; }
    if (is_bias) { memset(p->data, 0, (size_t)p->numel * sizeof(float)); return; }
    init_normal(p->data, p->numel, (float)m->cfg.init_range, r);
    if (i == m->word && m->cfg.pad_id >= 0 && m->cfg.pad_id < m->cfg.vocab_size)
        memset(p->data + m->cfg.pad_id * p->shape[1], 0, (size_t)p->shape[1] * sizeof(float));
    if (i == m->pos && m->cfg.arch == BL_ENC_ROBERTA && m->cfg.pad_id < m->cfg.max_pos)
        memset(p->data + m->cfg.pad_id * p->shape[1], 0, (size_t)p->shape[1] * sizeof(float));
}

balora_status bl_enc_init_random(bl_encoder *m, const bl_enc_config *c, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    if (c->hidden % c->n_head) return bl_fail(BALORA_STATUS_INVALID, "encoder config: hidden %lld not a multiple of heads %lld",
                                              (long long)c->hidden, (long long)c->n_head);
    m->cfg.head_dim = c->hidden / c->n_head;
    if (c->regression) m->cfg.num_labels = 1;
    balora_status st = build(m);
    if (st) { bl_enc_free(m); return st; }
    bl_rng r;
    bl_rng_seed(&r, seed);
    for (int i = 0; i < m->mods.n_params; i++) init_param(m, i, &r);
    snprintf(m->source, sizeof m->source, "random(seed %llu)", (unsigned long long)seed);
    return BALORA_STATUS_OK;
}

static bool is_head_param(const bl_encoder *m, int i) {
    return i == m->head_w || i == m->head_b || i == m->head_dense_w || i == m->head_dense_b;
}

/* A tensor absent from the checkpoint: heads (pooler, classifier) are created as transformers
 * does; anything else is an error. */
typedef struct missing_ctx { bl_encoder *m; bl_rng *r; const char *dir; } missing_ctx;

static balora_status missing_head(void *ctx, int i) {
    missing_ctx *mc = ctx;
    bl_encoder *m = mc->m;
    bl_param *p = &m->mods.params[i];
    bool pool = m->pooler && (i == m->pooler->w_param || i == m->pooler->b_param);
    if (is_head_param(m, i) || pool) {
        init_param(m, i, mc->r);
        bl_log(BL_INFO, "%s: %s is not in the checkpoint: initialised as transformers does (N(0, %g) weights, "
               "zero biases)", mc->dir, p->name, m->cfg.init_range);
        return BALORA_STATUS_OK;
    }
    return bl_fail(BALORA_STATUS_FORMAT, "%s: missing tensor '%s' (model_type %s); hint: is this a complete %s "
                   "checkpoint?", mc->dir, p->name, m->cfg.model_type, m->cfg.model_type);
}

balora_status bl_enc_load(bl_encoder *m, const char *dir, const bl_enc_load_opts *o) {
    memset(m, 0, sizeof *m);
    bl_enc_load_opts opts = o ? *o : BL_ENC_LOAD_DEFAULT;
    bl_hf_folder h;
    BL_TRY(bl_hf_open(&h, dir));
    balora_status st = bl_enc_config_parse(&m->cfg, h.config, h.config_path, opts.regression ? 1 : opts.num_labels);
    if (st) { bl_hf_close(&h); return st; }
    if (opts.regression) { m->cfg.regression = true; m->cfg.num_labels = 1; }
    if ((st = build(m))) goto fail;
    snprintf(m->source, sizeof m->source, "%s", dir);
    bl_rng r;
    bl_rng_seed(&r, opts.seed);
    missing_ctx mc = {m, &r, dir};
    int failed = -1;
    if ((st = bl_modules_read(&m->mods, &h, m->cfg.row->prefix, true, missing_head, &mc, &failed))) {
        if (failed >= 0 && is_head_param(m, failed))
            bl_fail_prefix(st, "the classifier does not fit num_labels %lld (hint: pass the checkpoint's number of "
                           "labels, or a model without a classifier): ", (long long)m->cfg.num_labels);
        goto fail;
    }
    bl_hf_close(&h);
    return BALORA_STATUS_OK;
fail:
    bl_hf_close(&h);
    bl_enc_free(m);
    return st;
}

balora_status bl_enc_set_full_ft(bl_encoder *m, bool on) {
    bl_arena a = {0};
    if (on && !m->grads.base) {
        for (int i = 0; i < m->mods.n_params; i++) bl_arena_take(&a, (size_t)m->mods.params[i].numel * sizeof(float));
        BL_TRY(bl_arena_alloc(&a));
        m->grads = a;
    }
    a = m->grads;
    a.used = 0;
    for (int i = 0; i < m->mods.n_params; i++) {
        bl_param *p = &m->mods.params[i];
        float *g = on ? bl_arena_take(&a, (size_t)p->numel * sizeof(float)) : NULL; /* same carve every time */
        if (!p->train_data) p->grad = g; /* a modules_to_save head keeps its own grad */
    }
    for (int i = 0; i < m->mods.n_lin; i++) {
        bl_linear *L = &m->mods.lin[i];
        L->gW = m->mods.params[L->w_param].grad;
        L->gb = m->mods.params[L->b_param].grad;
    }
    m->full_ft = on;
    m->mods.attach_gen++;
    return BALORA_STATUS_OK;
}

void bl_enc_zero_grads(bl_encoder *m) {
    for (int i = 0; i < m->mods.n_params; i++)
        if (m->mods.params[i].grad) memset(m->mods.params[i].grad, 0, (size_t)m->mods.params[i].numel * sizeof(float));
}

int64_t bl_enc_n_params(const bl_encoder *m) { return bl_modules_n_params(&m->mods); }

balora_status bl_enc_heads_trainable(bl_encoder *m) {
    int idx[4] = {m->head_dense_w, m->head_dense_b, m->head_w, m->head_b};
    for (int k = 0; k < 4; k++) {
        if (idx[k] < 0) continue;
        bl_param *p = &m->mods.params[idx[k]];
        if (p->train_data) continue;
        float *blk = bl_calloc((size_t)p->numel * 2, sizeof(float)); /* [train_data | grad], owned by m */
        if (!blk) return BALORA_STATUS_NOMEM;
        m->own_head[k] = blk;
        memcpy(blk, p->data, (size_t)p->numel * sizeof(float));
        p->train_data = blk;
        p->grad = blk + p->numel;
    }
    m->mods.attach_gen++;
    return BALORA_STATUS_OK;
}

/* ====================================================================== save */

static const char *act_name(bl_enc_act a) {
    return a == BL_ENC_ACT_GELU ? "gelu" : a == BL_ENC_ACT_GELU_TANH ? "gelu_new" : a == BL_ENC_ACT_RELU ? "relu" : "tanh";
}

balora_status bl_enc_config_json(const bl_enc_config *c, cJSON **out) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return bl_fail(BALORA_STATUS_NOMEM, "encoder config: out of memory");
    cJSON *a = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(a, cJSON_CreateString(c->architecture));
    cJSON_AddStringToObject(j, "model_type", c->model_type);
    cJSON_AddNumberToObject(j, "vocab_size", (double)c->vocab_size);
    cJSON_AddNumberToObject(j, "hidden_size", (double)c->hidden);
    cJSON_AddNumberToObject(j, "num_hidden_layers", (double)c->n_layer);
    cJSON_AddNumberToObject(j, "num_attention_heads", (double)c->n_head);
    cJSON_AddNumberToObject(j, "intermediate_size", (double)c->intermediate);
    cJSON_AddNumberToObject(j, "max_position_embeddings", (double)c->max_pos);
    cJSON_AddNumberToObject(j, "type_vocab_size", (double)c->type_vocab);
    cJSON_AddNumberToObject(j, "layer_norm_eps", c->ln_eps);
    cJSON_AddStringToObject(j, "hidden_act", act_name(c->act));
    cJSON_AddNumberToObject(j, "pad_token_id", (double)c->pad_id);
    cJSON_AddNumberToObject(j, "initializer_range", c->init_range);
    cJSON_AddNumberToObject(j, "hidden_dropout_prob", 0);
    cJSON_AddNumberToObject(j, "attention_probs_dropout_prob", 0);
    cJSON_AddNumberToObject(j, "num_labels", (double)c->num_labels);
    cJSON_AddStringToObject(j, "problem_type", c->regression ? "regression" : "single_label_classification");
    if (c->arch != BL_ENC_DEBERTA_V2) cJSON_AddStringToObject(j, "position_embedding_type", "absolute");
    if (c->arch == BL_ENC_DEBERTA_V2) {
        cJSON_AddBoolToObject(j, "relative_attention", c->relative_attention);
        cJSON_AddNumberToObject(j, "position_buckets", (double)c->position_buckets);
        cJSON_AddNumberToObject(j, "max_relative_positions", (double)c->max_rel_pos);
        cJSON *p = cJSON_AddArrayToObject(j, "pos_att_type");
        if (c->p2c) cJSON_AddItemToArray(p, cJSON_CreateString("p2c"));
        if (c->c2p) cJSON_AddItemToArray(p, cJSON_CreateString("c2p"));
        cJSON_AddBoolToObject(j, "share_att_key", true);
        cJSON_AddStringToObject(j, "norm_rel_ebd", c->norm_rel_ebd ? "layer_norm" : "none");
        cJSON_AddBoolToObject(j, "position_biased_input", c->position_biased_input);
        cJSON_AddNumberToObject(j, "pooler_hidden_size", (double)c->hidden);
        cJSON_AddStringToObject(j, "pooler_hidden_act", act_name(c->pooler_act));
        cJSON_AddNumberToObject(j, "pooler_dropout", 0);
    }
    *out = j;
    return BALORA_STATUS_OK;
}

balora_status bl_enc_save(const bl_encoder *m, const char *dir, bool trained_heads) {
    cJSON *j;
    BL_TRY(bl_enc_config_json(&m->cfg, &j));
    balora_status st = bl_modules_save(&m->mods, dir, j, NULL, trained_heads);
    cJSON_Delete(j);
    return st;
}
