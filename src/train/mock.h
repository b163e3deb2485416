/* A tiny stand-in model implementing bl_train_model, for tests of the trainer without the
 * transformer engine: a softmax regression on fixed random token features,
 *   h = dropout(E[x])            E: [V, D] frozen
 *   logits = h W^T + bias        W: [V, D], bias: [V] trainable (bias not weight-decayed)
 * The teacher forward uses the initial W and bias. Can learn any bigram table. */
#ifndef BL_TRAIN_MOCK_H
#define BL_TRAIN_MOCK_H
#include "train/trainer.h"

typedef struct bl_mock_model {
    int64_t V, D, cap_B, cap_T;
    float dropout;
    float *E;       /* [V, D] frozen */
    float *W, *gW;  /* [V, D] */
    float *bias, *gbias; /* [V] */
    float *W0, *bias0;   /* initial values (teacher) */
    float *h;       /* [B, T, D] features after dropout */
    float *logits;  /* [B, T, V] */
    const char *names[2];
    float *w[2], *g[2];
    int64_t numel[2];
    bl_arena arena;
    bl_train_model iface;
} bl_mock_model;

balora_status bl_mock_init(bl_mock_model *m, int64_t V, int64_t D, int64_t cap_B, int64_t cap_T, float dropout, uint64_t seed);
void bl_mock_free(bl_mock_model *m);

#endif
