/* The trainer's test model (see mock.h). */
#include "train/mock.h"
#include "io/safetensors.h"
#include <string.h>

static balora_status mock_forward(void *self, const bl_train_batch *b, bool teacher, bool training, bl_rng *rng, float **logits) {
    bl_mock_model *m = self;
    if (b->B > m->cap_B || b->T > m->cap_T)
        return bl_fail(BALORA_STATUS_INTERNAL, "mock: batch %lldx%lld exceeds %lldx%lld", (long long)b->B, (long long)b->T, (long long)m->cap_B, (long long)m->cap_T);
    const int64_t V = m->V, D = m->D, R = b->B * b->T;
    const float *W = teacher ? m->W0 : m->W, *bias = teacher ? m->bias0 : m->bias;
    const float keep = 1.0f - m->dropout;
    for (int64_t r = 0; r < R; r++) {
        const float *e = m->E + (int64_t)b->ids[r] * D;
        float *h = m->h + r * D;
        for (int64_t k = 0; k < D; k++) {
            float x = e[k];
            if (training && !teacher && m->dropout > 0) x = bl_rng_uniform(rng) < m->dropout ? 0.0f : x / keep;
            h[k] = x;
        }
    }
    #pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const float *h = m->h + r * D;
        for (int64_t v = 0; v < V; v++) {
            float s = bias[v];
            for (int64_t k = 0; k < D; k++) s += h[k] * W[v * D + k];
            m->logits[r * V + v] = s;
        }
    }
    *logits = m->logits;
    return BALORA_STATUS_OK;
}

static balora_status mock_backward(void *self, const bl_train_batch *b, const float *dl) {
    bl_mock_model *m = self;
    const int64_t V = m->V, D = m->D, R = b->B * b->T;
    #pragma omp parallel for schedule(static)
    for (int64_t v = 0; v < V; v++) { /* each thread owns rows of gW: fixed summation order */
        for (int64_t r = 0; r < R; r++) {
            float d = dl[r * V + v];
            if (d == 0.0f) continue;
            m->gbias[v] += d;
            const float *h = m->h + r * D;
            for (int64_t k = 0; k < D; k++) m->gW[v * D + k] += d * h[k];
        }
    }
    return BALORA_STATUS_OK;
}

static balora_status mock_save(void *self, const char *dir) {
    bl_mock_model *m = self;
    char path[4200];
    BL_TRY(bl_path_join(path, sizeof path, dir, "mock_adapter.safetensors"));
    bl_st_writer w;
    bl_st_writer_init(&w);
    balora_status st = bl_st_writer_add(&w, "W", BL_DTYPE_F32, 2, (int64_t[]){m->V, m->D}, m->W);
    if (!st) st = bl_st_writer_add(&w, "bias", BL_DTYPE_F32, 1, (int64_t[]){m->V}, m->bias);
    if (!st) st = bl_st_writer_save(&w, path);
    bl_st_writer_free(&w);
    return st;
}

balora_status bl_mock_init(bl_mock_model *m, int64_t V, int64_t D, int64_t cap_B, int64_t cap_T, float dropout, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->V = V; m->D = D; m->cap_B = cap_B; m->cap_T = cap_T; m->dropout = dropout;
    for (int pass = 0; pass < 2; pass++) {
        m->E = bl_arena_take(&m->arena, (size_t)(V * D) * sizeof(float));
        m->W = bl_arena_take(&m->arena, (size_t)(V * D) * sizeof(float));
        m->gW = bl_arena_take(&m->arena, (size_t)(V * D) * sizeof(float));
        m->W0 = bl_arena_take(&m->arena, (size_t)(V * D) * sizeof(float));
        m->bias = bl_arena_take(&m->arena, (size_t)V * sizeof(float));
        m->gbias = bl_arena_take(&m->arena, (size_t)V * sizeof(float));
        m->bias0 = bl_arena_take(&m->arena, (size_t)V * sizeof(float));
        m->h = bl_arena_take(&m->arena, (size_t)(cap_B * cap_T * D) * sizeof(float));
        m->logits = bl_arena_take(&m->arena, (size_t)(cap_B * cap_T * V) * sizeof(float));
        if (pass == 0) BL_TRY(bl_arena_alloc(&m->arena));
    }
    bl_rng r;
    bl_rng_seed(&r, seed);
    for (int64_t i = 0; i < V * D; i++) m->E[i] = bl_rng_normal(&r);
    for (int64_t i = 0; i < V * D; i++) m->W0[i] = m->W[i] = 0.1f * bl_rng_normal(&r);
    m->names[0] = "W"; m->names[1] = "bias";
    m->w[0] = m->W; m->w[1] = m->bias;
    m->g[0] = m->gW; m->g[1] = m->gbias;
    m->numel[0] = V * D; m->numel[1] = V;
    m->iface = (bl_train_model){.self = m, .n_out = V, .n_params = 2, .names = m->names, .w = m->w, .g = m->g,
                                .numel = m->numel, .forward = mock_forward,
                                .backward = mock_backward, .save = mock_save};
    return BALORA_STATUS_OK;
}

void bl_mock_free(bl_mock_model *m) { bl_arena_free(&m->arena); memset(m, 0, sizeof *m); }
