/* The public handles of include/balora.h over the internal layers (src/model, src/encoders,
 * src/adapters, src/tok). Only the files of src/api see this. */
#ifndef BL_API_INTERNAL_H
#define BL_API_INTERNAL_H
#include "adapters/lora.h"
#include "encoders/clsmodel.h"
#include "model/model.h"
#include "tok/tok.h"

struct balora_model {
    balora_model_kind kind;
    bool bin;                 /* loaded from a llama2.c .bin */
    /* BALORA_MODEL_KIND_CAUSAL_LM */
    bl_model dec;
    bl_run run;               /* planned lazily by a forward, for run_B x run_T tokens */
    bool have_run;
    int64_t run_B, run_T;
    uint64_t run_gen;         /* mods->attach_gen the run was planned with */
    /* BALORA_MODEL_KIND_SEQ_CLS */
    bl_clsm cls;
    /* both */
    bl_module_set *mods;      /* the adapter attach point */
    bl_adapter ad;
    bool have_ad;
    bool pissa, pissa_as_is;  /* the adapter was PiSSA-trained here: how balora_adapter_save writes it */
    char path[4096];          /* where the model was loaded from */
};

struct balora_tokenizer {
    bl_tok *tok;
    bl_tok_enc enc;
};

/* Frees the planned run (after the adapters or the weights changed). */
void bl_api_run_drop(balora_model *m);
/* Loads the model at m->path into m (the kind from the file); m zeroed but for path. */
balora_status bl_api_model_load(balora_model *m);
/* Frees everything of m but the struct. */
void bl_api_model_release(balora_model *m);

#endif
