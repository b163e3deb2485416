/* The one adapter attach point: y = x W^T + b (+ s * B A dropout(x)). Every model (decoders here,
 * encoders in src/encoders) applies its linear modules through these two functions. */
#include "model/model.h"
#include <string.h>

void bl_lin_fwd(const bl_linear *m, bl_adapter_mode mode, bool train, float *y, const float *x,
                int64_t N, bool accumulate, bl_lin_saved *sv, bl_rng *rng) {
    bl_linear_fwd(y, x, m->W, m->b, N, m->in, m->out, accumulate);
    if (sv) { sv->lora_on = false; sv->dropped = false; }
    const bl_lora *L = m->lora;
    if (!L || mode == BL_ADAPTER_OFF || !sv) return;
    if (mode == BL_ADAPTER_INITIAL) {
        if (L->A0 && L->B0) bl_lora_fwd(y, sv->u, x, L->A0, L->B0, L->scale, N, m->in, m->out, L->r);
        return;
    }
    const float *xd = x;
    if (train && L->dropout > 0.0f && sv->xd && sv->mask) {
        bl_dropout_fwd(sv->xd, sv->mask, x, L->dropout, N * m->in, rng);
        xd = sv->xd;
        sv->dropped = true;
    }
    bl_lora_fwd(y, sv->u, xd, L->A, L->B, L->scale, N, m->in, m->out, L->r);
    sv->lora_on = true;
}

int64_t bl_lin_scratch_floats(const bl_linear *m, int64_t N) {
    int64_t r = m->lora ? m->lora->r : 0;
    return N * (r + m->in);
}

void bl_lin_bwd(const bl_linear *m, float *dx, const float *dy, const float *x, int64_t N,
                const bl_lin_saved *sv, float *scratch) {
    bl_linear_bwd(dx, m->gW, m->gb, dy, x, m->W, N, m->in, m->out);
    const bl_lora *L = m->lora;
    if (!L || !sv || !sv->lora_on) return;
    float *du = scratch; /* [N, r] */
    if (sv->dropped) {
        float *dxd = scratch + N * L->r; /* [N, in] */
        if (dx) memset(dxd, 0, (size_t)(N * m->in) * sizeof(float));
        bl_lora_bwd(dx ? dxd : NULL, L->gA, L->gB, du, dy, sv->xd, sv->u, L->A, L->B, L->scale,
                    N, m->in, m->out, L->r);
        if (dx) bl_dropout_bwd(dx, dxd, sv->mask, N * m->in);
    } else {
        bl_lora_bwd(dx, L->gA, L->gB, du, dy, x, sv->u, L->A, L->B, L->scale, N, m->in, m->out, L->r);
    }
}
