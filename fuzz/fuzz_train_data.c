/* Training data of every format (bl_train_data_load): the first byte picks the format (jsonl
 * prompt/response, text, tokens; low bits), custom field names and template (bit 2) and max_len
 * (the second byte); the rest is the file. A byte-level tokenizer (id = byte, EOS = 256) stands in
 * for src/tok. A loaded set is then ordered and its first examples batched, as the trainer does. */
#include "fuzz_util.h"
#include "train/data.h"

static balora_status byte_encode(void *self, const char *text, size_t len, bool add_special, int32_t *ids, int64_t cap, int64_t *n) {
    (void)self;
    int64_t k = 0;
    if (add_special) { if (k < cap) ids[k] = 256; k++; }
    for (size_t i = 0; i < len; i++, k++)
        if (k < cap) ids[k] = (uint8_t)text[i];
    *n = k;
    return BALORA_STATUS_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    bl_train_data_cfg cfg;
    bl_train_data_cfg_default(&cfg);
    cfg.format = (bl_train_data_format)(data[0] % 3);
    if (data[0] & 4) {
        cfg.prompt_field = "instruction";
        cfg.response_field = "output";
        cfg.template_text = "Q: {query}\nA:";
    }
    cfg.max_len = 2 + data[1];
    cfg.vocab_size = 257;
    bl_train_tokenizer tok = {.self = NULL, .encode = byte_encode, .eos_id = 256};
    bl_train_data d;
    if (fz_check(bl_train_data_load(&d, fz_write("train.data", data + 2, size - 2), &cfg, &tok))) return 0;
    int64_t *perm = malloc((size_t)d.n * sizeof *perm);
    bl_train_batch b;
    if (perm && !bl_train_batch_init(&b, 4, d.max_len)) {
        bl_train_data_order(&d, 1, 0, true, perm);
        bl_train_batch_fill(&b, &d, perm, d.n < 4 ? d.n : 4, false, 0);
        bl_train_batch_free(&b);
    }
    free(perm);
    bl_train_data_free(&d);
    return 0;
}
