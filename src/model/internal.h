/* Internal to src/model: the shared tensor layout builder. */
#ifndef BL_MODEL_INTERNAL_H
#define BL_MODEL_INTERNAL_H
#include "model/model.h"

/* Builds params, linears and blocks for m->cfg and allocates m->weights (zeroed). */
balora_status bl_model_layout(bl_model *m);
/* Fails when a dimension is out of the range balora's kernels (LP64 BLAS) handle. */
balora_status bl_model_check_size(const bl_config *c, const char *src);

#endif
